package cibatest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

const (
	testIssuer = "https://sim.example"
	clientID   = "urn:test:client"
)

// RSA key generation is slow under -race: each kind of key is made once.
var (
	brokerKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	clientRSA = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	otherRSA  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// privateJWK wraps a raw private key as a jwk.Key with a thumbprint kid.
func privateJWK(t testing.TB, raw any) jwk.Key {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatalf("import key: %v", err)
	}
	if err := jwk.AssignKeyID(k); err != nil {
		t.Fatalf("assign kid: %v", err)
	}
	return k
}

func ecJWK(t testing.TB) jwk.Key {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate EC key: %v", err)
	}
	return privateJWK(t, raw)
}

// publicSet is the JSON of a JWK Set with the public halves of keys.
func publicSet(t testing.TB, keys ...jwk.Key) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		pub, err := k.PublicKey()
		if err != nil {
			t.Fatalf("public key: %v", err)
		}
		if err := set.AddKey(pub); err != nil {
			t.Fatalf("add key: %v", err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatalf("encode JWKS: %v", err)
	}
	return b
}

// env is a broker with one private_key_jwt client (RSA key) and an
// in-process HTTP client.
type env struct {
	t   testing.TB
	b   *cibatest.Broker
	hc  *http.Client
	key jwk.Key
}

// clientKey is the client's key (clientRSA, registered as e.key) for a
// ciba.Client.
func (e *env) clientKey() ciba.Key {
	kid, _ := e.key.KeyID()
	return ciba.Key{Signer: clientRSA(), ID: kid}
}

func newEnv(t testing.TB, cfg cibatest.Config) *env {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if cfg.SigningKey == nil {
		cfg.SigningKey = brokerKey()
	}
	b, err := cibatest.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	key := privateJWK(t, clientRSA())
	if err := b.RegisterClient(cibatest.Client{ID: clientID, JWKS: publicSet(t, key)}); err != nil {
		t.Fatalf("RegisterClient: %v", err)
	}
	return &env{t: t, b: b, hc: b.HTTPClient(), key: key}
}

// claims are the default claims of a client assertion.
func assertionClaims(iss string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss,
		"sub": iss,
		"aud": testIssuer,
		"iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(),
		"jti": rand.Text(),
	}
}

// signAssertion signs claims with key (its kid goes in the header).
func signAssertion(t testing.TB, key jwk.Key, alg jwa.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("marshal claims: %v", err)
	}
	tok, err := jws.Sign(payload, jws.WithKey(alg, key))
	if err != nil {
		t.Fatalf("sign assertion: %v", err)
	}
	return string(tok)
}

// assertion is a fresh, valid RS256 assertion for the env's client.
func (e *env) assertion() string {
	return signAssertion(e.t, e.key, jwa.RS256(), assertionClaims(clientID))
}

func (e *env) withAuth(form url.Values) url.Values {
	out := url.Values{}
	for k, v := range form {
		out[k] = v
	}
	out.Set("client_assertion_type", ciba.ClientAssertionType)
	out.Set("client_assertion", e.assertion())
	return out
}

// reply is a decoded JSON response.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r reply) str(k string) string {
	s, _ := r.body[k].(string)
	return s
}

func (e *env) do(req *http.Request) reply {
	e.t.Helper()
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (e *env) get(path string) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, testIssuer+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(req)
}

// postForm posts form as it is (no client authentication added).
func (e *env) postForm(path string, form url.Values) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, testIssuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(req)
}

func (e *env) authorize(form url.Values) reply {
	e.t.Helper()
	return e.postForm("/ciba/bc-authorize", e.withAuth(form))
}

// start runs a bc-authorize that must succeed.
func (e *env) start(form url.Values) reply {
	e.t.Helper()
	r := e.authorize(form)
	if r.status != http.StatusOK || r.str("auth_req_id") == "" {
		e.t.Fatalf("bc-authorize = %d %s, want 200 with auth_req_id", r.status, r.raw)
	}
	return r
}

func (e *env) token(authReqID string) reply {
	e.t.Helper()
	return e.postForm("/oauth2/token", e.withAuth(url.Values{
		"grant_type":  {ciba.GrantType},
		"auth_req_id": {authReqID},
	}))
}

// wantError checks an OAuth error response.
func wantError(t *testing.T, r reply, status int, code, description string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d error %q", r.status, r.raw, status, code)
	}
	if description != "" && r.str("error_description") != description {
		t.Fatalf("error_description = %q, want %q", r.str("error_description"), description)
	}
}

// wantAuthorized checks the reply to bc-authorize with form: accepted when
// code is "", otherwise refused with error code, cleanly (wantCleanError).
func wantAuthorized(t *testing.T, r reply, code string, form url.Values) {
	t.Helper()
	if code == "" {
		if r.status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", r.status, r.raw)
		}
		return
	}
	wantCleanError(t, r, http.StatusBadRequest, code, form)
}

// wantCleanError checks an error response and that it neither echoes the
// login hint, not even partly, nor leaves RFC 6749's charset in its
// description.
func wantCleanError(t *testing.T, r reply, status int, code string, form url.Values) {
	t.Helper()
	wantError(t, r, status, code, "")
	desc := r.str("error_description")
	if desc == "" {
		t.Error("error_description is empty, want a helpful one")
	}
	// Not whole, and not past its first eight characters (the number
	// after "sub:ssn:").
	if hint := form.Get("login_hint"); len(hint) > 4 && strings.Contains(desc, hint) || len(hint) > 8 && strings.Contains(r.raw, hint[8:]) {
		t.Errorf("response %s echoes the login hint", r.raw)
	}
	for _, c := range desc {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			t.Errorf("error_description %q has characters RFC 6749 forbids", desc)
			break
		}
	}
}

func seForm(nationalID string) url.Values {
	return url.Values{
		"scope":                 {"openid"},
		"login_hint":            {"sub:ssn:" + nationalID},
		"acr_values":            {cibatest.ACRSwedishBankID},
		"binding_message":       {"Samtal med kundtjänst"},
		"authorization_details": {`[{"type":"phoneAuth","callInitiator":"user"}]`},
	}
}

func noForm(nationalID string) url.Values {
	return url.Values{
		"scope":                 {"openid"},
		"login_hint":            {"sub:ssn:" + nationalID},
		"acr_values":            {cibatest.ACRNorwegianBankID},
		"authorization_details": {`[{"type":"customerServiceCall.v1"}]`},
	}
}

// newest returns the most recent request the broker lists.
func (e *env) newest() cibatest.Request {
	e.t.Helper()
	rs := e.b.Requests()
	if len(rs) == 0 {
		e.t.Fatal("Requests() is empty")
	}
	return rs[0]
}

// handlerTransport serves requests with h in-process (for JWKS URLs).
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
