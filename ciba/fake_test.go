package ciba

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
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
)

// Keys are expensive to make; the tests share a few.
var (
	testRSAKey = sync.OnceValue(func() jwk.Key { return mustKey(RS256) })
	testRSA2   = sync.OnceValue(func() jwk.Key { return mustKey(RS256) })
	testECKey  = sync.OnceValue(func() jwk.Key { return mustKey(ES256) })
	testPSKey  = sync.OnceValue(func() jwk.Key { return mustKey(PS256) })
)

// mustKey makes a private JWK for alg with kid, alg and use set: the
// fake broker signs ID tokens with it, and clientKey makes it a client's.
func mustKey(alg string) jwk.Key {
	k, err := GenerateKey(alg)
	if err != nil {
		panic(err)
	}
	j, err := jwk.Import(k.Signer)
	if err != nil {
		panic(err)
	}
	sa, _ := jwa.LookupSignatureAlgorithm(k.Alg)
	_ = j.Set(jwk.KeyIDKey, k.ID)
	_ = j.Set(jwk.AlgorithmKey, sa)
	_ = j.Set(jwk.KeyUsageKey, jwk.ForSignature)
	return j
}

// clientKey is a private JWK as the client's Key.
func clientKey(j jwk.Key) Key {
	var raw any
	if err := jwk.Export(j, &raw); err != nil {
		panic(err)
	}
	k := Key{Signer: raw.(crypto.Signer)}
	k.ID, _ = j.KeyID()
	if a, ok := j.Algorithm(); ok {
		k.Alg = a.String()
	}
	return k
}

// handlerTransport serves requests with h in the calling goroutine, so that
// it works inside synctest bubbles.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	sr := req.Clone(req.Context())
	sr.Body = io.NopCloser(bytes.NewReader(body))
	sr.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, sr)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// reply is one scripted HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

// fakeBroker is a minimal scriptable broker for unit tests: discovery, JWKS,
// and bc-authorize / token endpoints that answer from queues.
type fakeBroker struct {
	issuer string
	key    jwk.Key // ID token signing key (private)

	mu          sync.Mutex
	discovery   map[string]any
	jwks        []jwk.Key // public keys served
	jwksFetches int
	authReplies []reply
	tokReplies  []reply
	requests    []recorded
	inflight    int
	maxInflight int
	tokenTimes  []time.Time
	now         func() time.Time
}

type recorded struct {
	path   string
	form   url.Values
	header http.Header
}

func newFakeBroker(t testing.TB) *fakeBroker {
	t.Helper()
	f := &fakeBroker{issuer: "https://broker.example", key: testRSA2(), now: time.Now}
	pub, err := f.key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	f.jwks = []jwk.Key{pub}
	f.discovery = map[string]any{
		"issuer":         f.issuer,
		"token_endpoint": f.issuer + "/oauth2/token",
		"jwks_uri":       f.issuer + "/.well-known/jwks",
	}
	return f
}

func (f *fakeBroker) httpClient() *http.Client {
	return &http.Client{Transport: handlerTransport{f}}
}

func (f *fakeBroker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u, _ := url.Parse(f.issuer); u != nil {
		r.URL.Path = strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(u.Path, "/"))
	}
	f.mu.Lock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		d := f.discovery
		f.mu.Unlock()
		writeTestJSON(w, 200, d)
		return
	case "/.well-known/jwks":
		f.jwksFetches++
		set := jwk.NewSet()
		for _, k := range f.jwks {
			set.AddKey(k)
		}
		f.mu.Unlock()
		writeTestJSON(w, 200, set)
		return
	}
	_ = r.ParseForm()
	f.requests = append(f.requests, recorded{r.URL.Path, r.PostForm, r.Header.Clone()})
	var q *[]reply
	switch r.URL.Path {
	case "/ciba/bc-authorize":
		q = &f.authReplies
	case "/oauth2/token":
		q = &f.tokReplies
		f.tokenTimes = append(f.tokenTimes, f.now())
		f.inflight++
		f.maxInflight = max(f.maxInflight, f.inflight)
		defer func() { f.mu.Lock(); f.inflight--; f.mu.Unlock() }()
	default:
		f.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	if len(*q) == 0 {
		f.mu.Unlock()
		writeTestJSON(w, 400, map[string]string{"error": "authorization_pending"})
		return
	}
	rep := (*q)[0]
	if len(*q) > 1 {
		*q = (*q)[1:]
	}
	f.mu.Unlock()
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func (f *fakeBroker) queueAuth(r ...reply) {
	f.mu.Lock()
	f.authReplies = append(f.authReplies, r...)
	f.mu.Unlock()
}
func (f *fakeBroker) queueToken(r ...reply) {
	f.mu.Lock()
	f.tokReplies = append(f.tokReplies, r...)
	f.mu.Unlock()
}

func (f *fakeBroker) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// newTestClient makes a client for f with private_key_jwt.
func newTestClient(t *testing.T, f *fakeBroker, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Issuer:     f.issuer,
		ClientID:   "ivr",
		Key:        clientKey(testRSAKey()),
		HTTPClient: f.httpClient(),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// goodClaims are valid ID token claims from f for client "ivr".
func (f *fakeBroker) goodClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":            f.issuer,
		"aud":            "ivr",
		"sub":            "{bb9c2364-dfae-44f3-bcfd-999053d94f9e}",
		"iat":            now.Unix(),
		"nbf":            now.Unix(),
		"exp":            now.Add(20 * time.Minute).Unix(),
		"ssn":            "196802020575",
		"name":           "Terne Paulsen",
		"givenname":      "Terne",
		"family_name":    "Paulsen",
		"country":        "SE",
		"identityscheme": "sebankid",
	}
}

// sign makes a compact JWS of claims with key and alg, with kid from the key
// unless header overrides it.
func signToken(t testing.TB, key jwk.Key, alg jwa.SignatureAlgorithm, claims map[string]any, header map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	for k, v := range header {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := header["kid"]; ok {
		// The key's own kid would win over the header's.
		key, _ = key.Clone()
		key.Remove(jwk.KeyIDKey)
	}
	b, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawToken assembles a token from a header, claims and a signature function.
func rawToken(t testing.TB, header, claims map[string]any, sig func(signingInput []byte) []byte) string {
	t.Helper()
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	return in + "." + base64.RawURLEncoding.EncodeToString(sig([]byte(in)))
}

// hmacWithPublicKey signs with HS256 using the PEM of the broker's public
// key as the secret: the classic algorithm-confusion forgery.
func hmacWithPublicKey(t testing.TB, pub jwk.Key) func([]byte) []byte {
	t.Helper()
	var raw rsa.PublicKey
	if err := jwk.Export(pub, &raw); err != nil {
		t.Fatal(err)
	}
	pemBytes, err := jwk.EncodePEM(&raw)
	if err != nil {
		t.Fatal(err)
	}
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, pemBytes)
		m.Write(in)
		return m.Sum(nil)
	}
}

func randomString(t testing.TB) string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
