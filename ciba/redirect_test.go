package ciba_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

// TestRedirectsAreRefused is the attack of the security review: the binary
// gave ciba its own http.Client, which follows redirects, so a broker
// answering bc-authorize (or the token endpoint) with a 307 to another host
// had that host receive the login hint with the full national identity
// number and a valid client assertion.
func TestRedirectsAreRefused(t *testing.T) {
	var stolen atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer evil.Close()

	var b *cibatest.Broker
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			http.Redirect(w, r, evil.URL+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		b.ServeHTTP(w, r) // discovery and JWKS as usual
	}))
	defer redirecting.Close()
	var err error
	b, err = cibatest.New(cibatest.Config{Issuer: redirecting.URL, SigningKey: brokerKey()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.RegisterClient(cibatest.Client{ID: "ivr", Secret: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		hc   *http.Client
	}{
		{"the default client", nil},
		{"a client of the caller's that follows redirects", &http.Client{}},
		{"http.DefaultClient", http.DefaultClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ciba.New(t.Context(), ciba.Config{Issuer: redirecting.URL, ClientID: "ivr", Secret: "s3cret", HTTPClient: tc.hc})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Authenticate(t.Context(), seRequest(t, cibatest.SEApprove))
			if !errors.Is(err, ciba.ErrRedirect) || !strings.Contains(err.Error(), "redirect") {
				t.Errorf("Authenticate through a redirect: %v, want an error that names the redirect", err)
			}
			if strings.Contains(err.Error(), cibatest.SEApprove) {
				t.Errorf("the error holds the number: %v", err)
			}
			if _, err := c.Token(t.Context(), "some-auth-req-id"); !errors.Is(err, ciba.ErrRedirect) {
				t.Errorf("Token through a redirect: %v, want ErrRedirect", err)
			}
			if err := c.CheckClientAuth(t.Context()); !errors.Is(err, ciba.ErrRedirect) {
				t.Errorf("CheckClientAuth through a redirect: %v, want ErrRedirect", err)
			}
		})
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("the other host received %d requests", n)
	}
	if http.DefaultClient.CheckRedirect != nil {
		t.Error("ciba changed http.DefaultClient")
	}
}
