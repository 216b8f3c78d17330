package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

// TestKeyRotation follows the documented rotation path against a broker
// that reads our JWKS URL: the new key is published before it signs, the
// old one stays published while its assertions may still be in flight, and
// at no step does the broker refuse our client authentication.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	oldFile, _ := writeKey(t, dir, "old.pem", "RS256")
	newFile, _ := writeKey(t, dir, "new.pem", "RS256")

	// Our /.well-known/jwks.json, as serve builds it from the settings.
	var jwks atomic.Pointer[http.Handler]
	publish := func(b BrokerConfig) {
		keys, err := publishedKeys(b)
		if err != nil {
			t.Fatal(err)
		}
		var h http.Handler = jwksHandler(keys)
		jwks.Store(&h)
	}
	ours := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*jwks.Load()).ServeHTTP(w, r) }))
	defer ours.Close()

	sim, err := cibatest.New(cibatest.Config{Issuer: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFetchClient(ours.Client())
	if err := sim.RegisterClient(cibatest.Client{ID: "ivr", JWKSURL: ours.URL + "/.well-known/jwks.json"}); err != nil {
		t.Fatal(err)
	}
	authOK := func(keyFile string) error {
		key, err := ciba.LoadKey(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ciba.New(t.Context(), ciba.Config{Issuer: sim.Issuer(), ClientID: "ivr", Key: key, HTTPClient: sim.HTTPClient()})
		if err != nil {
			t.Fatal(err)
		}
		return c.CheckClientAuth(t.Context())
	}

	steps := []struct {
		name    string
		config  BrokerConfig
		signer  string
		wantErr bool
	}{
		{"before: the old key signs and is published", BrokerConfig{KeyFile: oldFile}, oldFile, false},
		{"a key that was never published is refused", BrokerConfig{KeyFile: oldFile}, newFile, true},
		{"1: publish the new key beside the old one", BrokerConfig{KeyFile: oldFile, PublishKeys: []string{newFile}}, oldFile, false},
		{"1: the broker can already verify the new key before it is used", BrokerConfig{KeyFile: oldFile, PublishKeys: []string{newFile}}, newFile, false},
		{"2: sign with the new key, keep the old one published", BrokerConfig{KeyFile: newFile, PublishKeys: []string{oldFile}}, newFile, false},
		{"2: an assertion the old key signed just before the switch still passes", BrokerConfig{KeyFile: newFile, PublishKeys: []string{oldFile}}, oldFile, false},
		{"3: drop the old key once its assertions have expired", BrokerConfig{KeyFile: newFile}, newFile, false},
	}
	for _, s := range steps {
		publish(s.config)
		err := authOK(s.signer)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: client authentication error = %v, want error %v", s.name, err, s.wantErr)
		}
	}
}
