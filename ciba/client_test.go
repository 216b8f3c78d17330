package ciba

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

func TestNewRejectsBadConfig(t *testing.T) {
	f := newFakeBroker(t)
	tests := []struct {
		name  string
		mod   func(*Config)
		field string // the error must name it
	}{
		{"plain http issuer off loopback", func(c *Config) { c.Issuer = "http://broker.example" }, "Issuer"},
		{"missing issuer", func(c *Config) { c.Issuer = "" }, "Issuer"},
		{"relative issuer", func(c *Config) { c.Issuer = "/broker" }, "Issuer"},
		{"issuer with query", func(c *Config) { c.Issuer = "https://broker.example?x=1" }, "Issuer"},
		{"ftp issuer", func(c *Config) { c.Issuer = "ftp://broker.example" }, "Issuer"},
		{"missing client id", func(c *Config) { c.ClientID = " " }, "ClientID"},
		{"private_key_jwt without key", func(c *Config) { c.Key = Key{}; c.AuthMethod = PrivateKeyJWT }, "Key"},
		{"private_key_jwt without a signer", func(c *Config) { c.Key.Signer = nil; c.AuthMethod = PrivateKeyJWT }, "Key"},
		{"secret method without secret", func(c *Config) { c.Key = Key{}; c.AuthMethod = ClientSecretPost }, "Secret"},
		{"unknown auth method", func(c *Config) { c.AuthMethod = "tls_client_auth" }, "AuthMethod"},
		{"method the profile forbids", func(c *Config) { c.Profile = Transmit; c.Key = clientKey(testRSAKey()) }, "AuthMethod"},
		{"assertion lifetime above 5 minutes", func(c *Config) { c.AssertionLifetime = 6 * time.Minute }, "AssertionLifetime"},
		{"negative skew", func(c *Config) { c.Skew = -time.Second }, "Skew"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Issuer: f.issuer, ClientID: "ivr", Key: clientKey(testRSAKey()), HTTPClient: f.httpClient()}
			tt.mod(&cfg)
			_, err := New(t.Context(), cfg)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

func TestNewAcceptsLoopbackHTTP(t *testing.T) {
	for _, issuer := range []string{"http://127.0.0.1:9999", "http://127.3.4.5", "http://[::1]:8080", "http://localhost:1234/broker", "https://broker.example/"} {
		t.Run(issuer, func(t *testing.T) {
			f := newFakeBroker(t)
			f.issuer = issuer
			f.discovery["issuer"] = issuer
			delete(f.discovery, "token_endpoint")
			delete(f.discovery, "jwks_uri")
			c := newTestClient(t, f, nil)
			base := strings.TrimSuffix(issuer, "/")
			m := c.Metadata()
			if m.BackchannelAuthenticationEndpoint != base+"/ciba/bc-authorize" || m.TokenEndpoint != base+"/oauth2/token" || m.JWKSURI != base+"/.well-known/jwks" {
				t.Errorf("fallback endpoints = %+v", m)
			}
			if c.Issuer() != issuer {
				t.Errorf("Issuer() = %q, want %q", c.Issuer(), issuer)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	t.Run("backchannel endpoint from discovery is used", func(t *testing.T) {
		f := newFakeBroker(t)
		f.discovery["backchannel_authentication_endpoint"] = f.issuer + "/other/bc"
		c := newTestClient(t, f, nil)
		if got := c.Metadata().BackchannelAuthenticationEndpoint; got != f.issuer+"/other/bc" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("issuer mismatch is refused", func(t *testing.T) {
		f := newFakeBroker(t)
		f.discovery["issuer"] = "https://evil.example"
		_, err := New(t.Context(), Config{Issuer: f.issuer, ClientID: "ivr", Key: clientKey(testRSAKey()), HTTPClient: f.httpClient()})
		if err == nil {
			t.Fatal("want error")
		}
	})
	t.Run("http endpoint off loopback is refused", func(t *testing.T) {
		f := newFakeBroker(t)
		f.discovery["token_endpoint"] = "http://broker.example/token"
		_, err := New(t.Context(), Config{Issuer: f.issuer, ClientID: "ivr", Key: clientKey(testRSAKey()), HTTPClient: f.httpClient()})
		if err == nil || !strings.Contains(err.Error(), "token_endpoint") {
			t.Fatalf("err = %v, want token_endpoint refused", err)
		}
	})
	t.Run("unreachable broker wraps ErrTransport", func(t *testing.T) {
		hc := &http.Client{Transport: handlerTransport{http.NotFoundHandler()}}
		_, err := New(t.Context(), Config{Issuer: "https://broker.example", ClientID: "ivr", Key: clientKey(testRSAKey()), HTTPClient: hc})
		if !errors.Is(err, ErrTransport) {
			t.Fatalf("err = %v, want ErrTransport", err)
		}
	})
}

// decodeJWT returns the header and claims of a compact JWT without checking it.
func decodeJWT(t *testing.T, s string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	var h, c map[string]any
	for i, dst := range []*map[string]any{&h, &c} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return h, c
}

func TestClientAssertion(t *testing.T) {
	for _, key := range []struct {
		alg string
		key func() jwk.Key
	}{{RS256, testRSAKey}, {PS256, testPSKey}, {ES256, testECKey}} {
		t.Run(key.alg, func(t *testing.T) {
			f := newFakeBroker(t)
			c := newTestClient(t, f, func(cfg *Config) { cfg.Key = clientKey(key.key()) })
			f.queueToken(reply{400, nil, `{"error":"authorization_pending"}`})
			for range 2 {
				_, _ = c.Token(t.Context(), "req-1")
			}
			reqs := f.recorded()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			seen := map[string]bool{}
			for _, r := range reqs {
				if got := r.form.Get("client_assertion_type"); got != ClientAssertionType {
					t.Errorf("client_assertion_type = %q", got)
				}
				h, cl := decodeJWT(t, r.form.Get("client_assertion"))
				kid, _ := Thumbprint(c.cfg.Key.Signer.Public())
				if h["alg"] != key.alg || h["kid"] != kid || h["typ"] != "JWT" {
					t.Errorf("header = %v, want alg %s kid %s", h, key.alg, kid)
				}
				if cl["iss"] != "ivr" || cl["sub"] != "ivr" || cl["aud"] != f.issuer {
					t.Errorf("claims = %v", cl)
				}
				iat, exp := cl["iat"].(float64), cl["exp"].(float64)
				if exp-iat != 60 {
					t.Errorf("exp - iat = %v, want 60", exp-iat)
				}
				jti, _ := cl["jti"].(string)
				if len(jti) < 16 || seen[jti] {
					t.Errorf("jti %q empty, short or reused", jti)
				}
				seen[jti] = true
			}
		})
	}
	t.Run("audience is configurable", func(t *testing.T) {
		f := newFakeBroker(t)
		c := newTestClient(t, f, func(cfg *Config) {
			cfg.Audience = f.issuer + "/oauth2/token"
			cfg.AssertionLifetime = 5 * time.Minute
		})
		_, _ = c.Token(t.Context(), "req-1")
		_, cl := decodeJWT(t, f.recorded()[0].form.Get("client_assertion"))
		if cl["aud"] != f.issuer+"/oauth2/token" || cl["exp"].(float64)-cl["iat"].(float64) != 300 {
			t.Errorf("claims = %v", cl)
		}
	})
}

func TestClientSecretMethods(t *testing.T) {
	t.Run("client_secret_basic is the default without a key", func(t *testing.T) {
		f := newFakeBroker(t)
		c := newTestClient(t, f, func(cfg *Config) { cfg.Key = Key{}; cfg.Secret = "s3cr:t" })
		_, _ = c.Token(t.Context(), "req-1")
		r := f.recorded()[0]
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte("ivr:s3cr%3At"))
		if got := r.header.Get("Authorization"); got != want {
			t.Errorf("Authorization = %q, want %q", got, want)
		}
		if r.form.Has("client_secret") || r.form.Has("client_assertion") {
			t.Errorf("form carries credentials: %v", r.form)
		}
	})
	t.Run("client_secret_post", func(t *testing.T) {
		f := newFakeBroker(t)
		c := newTestClient(t, f, func(cfg *Config) {
			cfg.Key = Key{}
			cfg.Secret = "s3cret"
			cfg.AuthMethod = ClientSecretPost
			cfg.Profile = Auth0
		})
		_, _ = c.Token(t.Context(), "req-1")
		r := f.recorded()[0]
		if r.form.Get("client_id") != "ivr" || r.form.Get("client_secret") != "s3cret" || r.header.Get("Authorization") != "" {
			t.Errorf("form %v header %v", r.form, r.header)
		}
	})
	t.Run("transmit profile defaults to client_secret_post", func(t *testing.T) {
		f := newFakeBroker(t)
		c := newTestClient(t, f, func(cfg *Config) { cfg.Key = Key{}; cfg.Secret = "s"; cfg.Profile = Transmit })
		if c.method != ClientSecretPost {
			t.Errorf("method = %s", c.method)
		}
	})
}

func TestAuthenticate(t *testing.T) {
	f := newFakeBroker(t)
	c := newTestClient(t, f, nil)
	f.queueAuth(reply{200, nil, `{"auth_req_id":"3857f8ff-21b9","expires_in":"900","interval":3,"bindingMessage":"Frekk Julekos","extra":{"x":1}}`})
	req, err := Idura.Request(RequestInput{Method: "no-bankid", NationalID: "01010112345"})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	ar, err := c.Authenticate(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if ar.AuthReqID != "3857f8ff-21b9" || ar.ExpiresIn != 900*time.Second || ar.Interval != 3*time.Second || ar.BindingMessage != "Frekk Julekos" {
		t.Errorf("response = %+v", ar)
	}
	if ar.ExpiresAt.Before(before.Add(900*time.Second)) || ar.ExpiresAt.After(time.Now().Add(900*time.Second)) {
		t.Errorf("ExpiresAt = %v", ar.ExpiresAt)
	}
	form := f.recorded()[0].form
	want := map[string]string{
		"scope":                 "openid ssn",
		"login_hint":            "sub:ssn:01010112345",
		"acr_values":            "urn:grn:authn:no:bankid",
		"authorization_details": `[{"type":"customerServiceCall.v1"}]`,
		"client_id":             "ivr",
		"client_assertion_type": ClientAssertionType,
	}
	for k, v := range want {
		if got := form.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if form.Has("binding_message") {
		t.Error("binding_message sent for NO")
	}
}

func TestAuthFormChecks(t *testing.T) {
	tests := []struct {
		name string
		req  AuthRequest
	}{
		{"no hint", AuthRequest{}},
		{"two hints", AuthRequest{LoginHint: "a", IDTokenHint: "b"}},
		{"scope without openid", AuthRequest{LoginHint: "a", Scope: []string{"profile"}}},
		{"authorization_details not JSON", AuthRequest{LoginHint: "a", AuthorizationDetails: []byte("[{")}},
		{"authorization_details not an array", AuthRequest{LoginHint: "a", AuthorizationDetails: []byte(`{"type":"x"}`)}},
		{"request_context not an object", AuthRequest{LoginHint: "a", RequestContext: []byte(`[1]`)}},
		{"extra overrides client auth", AuthRequest{LoginHint: "a", Extra: map[string][]string{"client_assertion": {"x"}}}},
		{"negative expiry", AuthRequest{LoginHint: "a", RequestedExpiry: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := authForm(tt.req); err == nil {
				t.Error("authForm accepted it")
			}
		})
	}
	t.Run("every CIBA parameter is sent", func(t *testing.T) {
		form, err := authForm(AuthRequest{
			Scope: []string{"openid", "ssn"}, LoginHintToken: "tok", ACRValues: []string{"a", "b"},
			BindingMessage: "hi", AuthorizationDetails: []byte(` [ {"type": "x"} ] `), RequestedExpiry: 1500 * time.Millisecond,
			UserCode: "1234", RequestContext: []byte(`{"channel":"sms"}`), ClientNotificationToken: "cnt",
			Extra: map[string][]string{"audience": {"api"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := "acr_values=a+b&audience=api&authorization_details=%5B%7B%22type%22%3A%22x%22%7D%5D&binding_message=hi&client_notification_token=cnt&login_hint_token=tok&request_context=%7B%22channel%22%3A%22sms%22%7D&requested_expiry=2&scope=openid+ssn&user_code=1234"
		if got := form.Encode(); got != want {
			t.Errorf("form =\n%s\nwant\n%s", got, want)
		}
	})
}

func TestBrokerErrors(t *testing.T) {
	const hint = "sub:ssn:196802020575"
	tests := []struct {
		name       string
		rep        reply
		wantIs     error
		wantStatus int
		wantRetry  time.Duration
	}{
		{"400 unknown user", reply{400, nil, `{"error":"unknown_user_id","error_description":"no user sub:ssn:196802020575"}`}, ErrUnknownUserID, 400, 0},
		{"401 invalid client", reply{401, nil, `{"error":"invalid_client"}`}, ErrInvalidClient, 401, 0},
		{"403 access denied", reply{403, nil, `{"error":"access_denied"}`}, ErrAccessDenied, 403, 0},
		{"429 slow down with Retry-After", reply{429, http.Header{"Retry-After": {"12"}}, `{"error":"slow_down"}`}, ErrSlowDown, 429, 12 * time.Second},
		{"500 with JSON error is transport", reply{500, nil, `{"error":"server_error","error_description":"sub:ssn:196802020575"}`}, ErrTransport, 0, 0},
		{"502 html", reply{502, nil, `<html>sub:ssn:196802020575</html>`}, ErrTransport, 0, 0},
		{"400 not JSON", reply{400, nil, `Bad Request sub:ssn:196802020575`}, ErrTransport, 0, 0},
		{"200 garbage", reply{200, nil, `<html>ok</html>`}, ErrTransport, 0, 0},
		{"200 without auth_req_id", reply{200, nil, `{"expires_in":120}`}, ErrTransport, 0, 0},
		{"error code with odd characters", reply{400, nil, `{"error":"x\"\n y"}`}, ErrTransport, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBroker(t)
			c := newTestClient(t, f, nil)
			f.queueAuth(tt.rep)
			_, err := c.Authenticate(t.Context(), AuthRequest{LoginHint: hint, BindingMessage: "x"})
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			if tt.wantStatus != 0 {
				be, ok := errors.AsType[*Error](err)
				if !ok || be.StatusCode != tt.wantStatus || be.RetryAfter != tt.wantRetry {
					t.Errorf("err = %#v, want status %d retry %s", be, tt.wantStatus, tt.wantRetry)
				}
			}
			assertNoSecrets(t, err, "196802020575", "client_assertion", "<html>")
		})
	}
	t.Run("connection failure", func(t *testing.T) {
		f := newFakeBroker(t)
		c := newTestClient(t, f, nil)
		c.hc = &http.Client{Transport: failingTransport{}}
		_, err := c.Token(t.Context(), "secret-auth-req-id")
		if !errors.Is(err, ErrTransport) {
			t.Fatalf("err = %v", err)
		}
		assertNoSecrets(t, err, "secret-auth-req-id", "broker.example")
	})
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("dial tcp: connection refused")
}

// assertNoSecrets fails when err's text contains any of secrets.
func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q leaks %q", err, s)
		}
	}
}

func TestCheckClientAuth(t *testing.T) {
	tests := []struct {
		name    string
		rep     reply
		wantErr error
	}{
		{"invalid_grant means authenticated", reply{400, nil, `{"error":"invalid_grant"}`}, nil},
		{"invalid_client", reply{401, nil, `{"error":"invalid_client"}`}, ErrInvalidClient},
		{"unauthorized_client", reply{400, nil, `{"error":"unauthorized_client"}`}, ErrUnauthorizedClient},
		{"broker down", reply{503, nil, ``}, ErrTransport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBroker(t)
			c := newTestClient(t, f, nil)
			f.queueToken(tt.rep)
			err := c.CheckClientAuth(t.Context())
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			r := f.recorded()[0]
			if r.path != "/oauth2/token" || r.form.Get("grant_type") != GrantType || len(r.form.Get("auth_req_id")) < 20 {
				t.Errorf("request = %s %v", r.path, r.form)
			}
		})
	}
}

func TestClientRequestFillsTheIssuer(t *testing.T) {
	f := newFakeBroker(t)
	f.issuer = "https://tenant.eu.auth0.com/"
	f.discovery["issuer"] = f.issuer
	c := newTestClient(t, f, func(cfg *Config) { cfg.Profile = Auth0 })
	if c.Profile().Name != "auth0" {
		t.Fatalf("profile %q", c.Profile().Name)
	}
	req, err := c.Request(RequestInput{UserID: "auth0|42", BindingMessage: "Call 1234"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"format":"iss_sub","iss":"https://tenant.eu.auth0.com/","sub":"auth0|42"}`; req.LoginHint != want {
		t.Errorf("login_hint = %s, want %s", req.LoginHint, want)
	}
}

func TestKeyConfig(t *testing.T) {
	f := newFakeBroker(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, ecKey := clientKey(testRSAKey()), clientKey(testECKey())
	tests := []struct {
		name    string
		key     Key
		wantErr string // "" = accepted
	}{
		{"RSA, alg defaulted to RS256", Key{Signer: rsaKey.Signer, ID: "k"}, ""},
		{"RSA with PS256", Key{Signer: rsaKey.Signer, ID: "k", Alg: PS256}, ""},
		{"P-256, alg defaulted to ES256", Key{Signer: ecKey.Signer, ID: "k"}, ""},
		{"an opaque signer (a KMS key)", Key{Signer: opaqueSigner{ecKey.Signer}, ID: "k"}, ""},
		{"no kid", Key{Signer: ecKey.Signer}, "no ID"},
		{"RS512", Key{Signer: rsaKey.Signer, ID: "k", Alg: "RS512"}, "RS512"},
		{"ES256 with an RSA key", Key{Signer: rsaKey.Signer, ID: "k", Alg: ES256}, "ES256"},
		{"RSA 1024", Key{Signer: small, ID: "k"}, "2048"},
		{"P-384", Key{Signer: p384, ID: "k"}, "P-256"},
		{"Ed25519", Key{Signer: ed, ID: "k"}, "unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(t.Context(), Config{Issuer: f.issuer, ClientID: "ivr", Key: tt.key, HTTPClient: f.httpClient()})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "Key:") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want a Key error about %q", err, tt.wantErr)
			}
		})
	}
}

// opaqueSigner hides the concrete key type, as a KMS or HSM signer does.
type opaqueSigner struct{ s crypto.Signer }

func (o opaqueSigner) Public() crypto.PublicKey { return o.s.Public() }
func (o opaqueSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, digest, opts)
}

func TestPrintedFormsHideSecrets(t *testing.T) {
	ar := AuthResponse{AuthReqID: "secret-req-id", ExpiresIn: time.Minute, BindingMessage: "Frekk Julekos"}
	idt, err := NewIDToken([]byte(`{"iss":"https://broker","sub":"secret-sub","ssn":"196802020575","name":"Terne Paulsen","country":"SE"}`))
	if err != nil {
		t.Fatal(err)
	}
	tr := TokenResponse{AccessToken: "secret-at", RawIDToken: "secret-idt", IDToken: idt, RefreshToken: "secret-rt"}
	cl := *idt
	req := AuthRequest{LoginHint: "sub:ssn:196802020575", BindingMessage: "x"}
	key := clientKey(testRSAKey())
	var printed []string
	for _, v := range []interface {
		fmt.Stringer
		LogValue() slog.Value
	}{ar, tr, cl, req, key} {
		printed = append(printed, v.LogValue().String())
		for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%t", "%10.3v"} {
			printed = append(printed, fmt.Sprintf(format, v))
		}
	}
	printed = append(printed, fmt.Sprintf("%+v", Config{Key: key}), fmt.Sprintf("%d", []Key{key}))
	d := key.Signer.(*rsa.PrivateKey).D
	for _, s := range printed {
		for _, secret := range []string{"secret-", "196802020575", "Terne", d.String(), d.Text(16)} {
			if strings.Contains(s, secret) {
				t.Errorf("%q leaks %q", s, secret)
			}
		}
	}
}
