// Package cibatest is an in-process simulator of a CIBA broker, for tests,
// demos and a standalone simulator, named like net/http/httptest. By default it is
// Idura Verify with Swedish and Norwegian BankID; Config.Profile makes it
// Auth0, Transmit Security Mosaic or a plain CIBA Core broker instead.
//
// A Broker is an http.Handler serving discovery, JWKS, the backchannel
// authentication endpoint and the token endpoint as the profile's broker
// documents them, client authentication checked for real (private_key_jwt,
// or a client secret, as far as the profile accepts them), declines,
// expiry, unknown users and slow_down. Test users answer by a script chosen
// by their identifier (see Users and UsersFor); any request can also be
// moved by hand through the Go methods or the small /sim HTTP API that a
// "BankID app" page uses. A new request for a user who still has a pending
// one at the same client cancels the older one (StateCancelled; its token
// answers access_denied).
//
// The profiles, with their routes under the issuer's path:
//
//	idura     POST /ciba/bc-authorize  POST /oauth2/token  GET /.well-known/jwks
//	          login_hint sub:ssn:<national id>; acr_values and
//	          authorization_details per country; the Swedish
//	          binding_message of at most ciba.MaxBindingMessage
//	          characters (Idura documents no limit); the Swedish pending
//	          sub-states; the Norwegian word pair (bindingMessage); poll.
//	auth0     POST /bc-authorize       POST /oauth/token   GET /.well-known/jwks.json
//	          login_hint {"format":"iss_sub","iss":<issuer>,"sub":"auth0|<id>"};
//	          binding_message required (at most ciba.MaxBindingMessage
//	          characters of ciba.Auth0BindingCharset); requested_expiry
//	          1..300 s; interval 5; Auth0's error texts, expiry answered
//	          as access_denied, slow_down with a growing Retry-After; poll.
//	transmit  POST /cis/oidc/backchannel  POST /oidc/token  GET /cis/oidc/jwks
//	          login_hint an e-mail address, E.164 phone number or user id;
//	          request_context {channel, login_hint_type, custom_message};
//	          client secrets only; no interval, 5 s enforced; poll.
//	generic   POST /bc-authorize       POST /token         GET /jwks
//	          CIBA Core: login_hint a user id; poll and ping.
//
// and, for every profile:
//
//	GET  /.well-known/openid-configuration
//	GET  /sim/requests                       JSON list of Request, newest first
//	POST /sim/requests/{id}/open             SE: the user opened the app
//	POST /sim/requests/{id}/acknowledge      SE: the user confirmed the call
//	POST /sim/requests/{id}/approve          wordPair as form field or JSON (NO)
//	POST /sim/requests/{id}/decline
//
// Ping mode (CIBA Core §10.2, generic profile only): a Client registered
// with DeliveryMode DeliveryPing must send a client_notification_token with
// each request. When the request ends (approved, declined, expired or
// cancelled, scripted or by hand) the broker POSTs {"auth_req_id":…} to the
// client's NotificationEndpoint with that token as bearer token, once and
// without retries, using the fetch client (SetFetchClient); the client then
// asks the token endpoint. SetDropNotifications simulates a lost
// notification, Notifications counts the ones sent.
//
// The /sim API has no authentication: it is for tests and demos. Standalone,
// a Broker is served like any handler (http.ListenAndServe(addr, b)); a
// client's JWKS file is registered as it is (Client.JWKS takes its bytes).
//
// The broker never logs, and all its time comes from Config.Now, so it runs
// inside testing/synctest bubbles, reached through HTTPClient without a
// socket. Its only goroutines are the time.AfterFunc timers that send ping
// notifications; they run on the bubble's fake clock, and Close stops them.
//
// It knows nothing of the service that uses it (telephony, storage) nor of
// the ciba client's internals.
package cibatest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Config configures a Broker. Only Issuer is required.
type Config struct {
	// Issuer is the broker's issuer, e.g. "http://127.0.0.1:8444". It is
	// used verbatim as iss and, without a trailing slash, as the base of
	// every endpoint URL. A path in it ("http://host/broker") is served
	// too: ServeHTTP then answers under that path.
	Issuer string
	// Profile is the broker spoken: ProfileIdura (also ""), ProfileAuth0,
	// ProfileTransmit or ProfileGeneric.
	Profile string
	// Interval is the polling interval returned by bc-authorize of the
	// idura and generic profiles; default 2 s. Negative omits the field,
	// and the broker then expects the CIBA default of 5 s between polls.
	// Auth0 always returns 5 s; Transmit returns none and expects 5 s.
	Interval time.Duration
	// ExpiresInSE and ExpiresInNO are the request lifetimes of the idura
	// profile; defaults 120 s and 900 s, as in Idura's examples.
	ExpiresInSE time.Duration
	ExpiresInNO time.Duration
	// ExpiresIn is the request lifetime of the auth0, transmit and generic
	// profiles when the client sends no requested_expiry; default 300 s
	// (Auth0's default).
	ExpiresIn time.Duration
	// SilentExpiry makes the token endpoint keep answering
	// authorization_pending after expiry instead of expired_token (Idura
	// documents no expired_token); no ping notification is sent at expiry
	// then.
	SilentExpiry bool
	// IDTokenHook, when set, is called with the claims and the current
	// private signing key and its result is issued instead of the normal ID
	// token (tests make tampered tokens).
	IDTokenHook func(claims map[string]any, key jwk.Key) (string, error)
	// Latency is added to every response.
	Latency time.Duration
	// Now is the clock; default time.Now (which is fake inside synctest).
	Now func() time.Time
	// SigningKey is the initial ID token signing key; a 2048-bit key is
	// generated when nil. Tests share one to save key generation time.
	SigningKey *rsa.PrivateKey
}

// Outage makes the broker endpoints (discovery, JWKS, bc-authorize, token)
// misbehave; the /sim API keeps working. The zero Outage is none.
type Outage struct {
	Status  int           // answer every request with this HTTP status and a plain-text body; 0 = none
	Garbage bool          // answer 200 with a body that is not JSON
	Latency time.Duration // added to every broker response
}

// Broker is a simulated Idura Verify CIBA broker. It is safe for concurrent
// use.
type Broker struct {
	cfg       Config
	spec      *spec
	base      string // issuer without trailing slash
	mux       *http.ServeMux
	transport http.RoundTripper

	mu          sync.Mutex
	keys        []jwk.Key // private signing keys, current first
	clients     map[string]*client
	users       map[string]User     // by userKey(kind, value)
	reqs        map[string]*request // by sim id
	byAuthReq   map[string]*request // by auth_req_id
	latest      map[string]*request // by client_id + "\x00" + user key: the newest request
	seq         int64
	seenJTI     map[string]time.Time // client_id + "\x00" + jti -> forget after
	nextJTISwp  time.Time
	nextReqSwp  time.Time
	outage      Outage
	fetchClient *http.Client

	// observer is Observe's fn; atomic, so that serving a request does
	// not take mu to learn whether anyone observes.
	observer atomic.Pointer[func(Exchange)]

	// ping notifications
	notes    int  // sent
	dropping bool // SetDropNotifications
	closed   bool // Close was called
	sending  sync.WaitGroup
}

// New returns a broker speaking cfg.Profile with the profile's built-in
// users (UsersFor) registered and a fresh RS256 signing key (kid = its
// RFC 7638 thumbprint) unless cfg.SigningKey is set.
func New(cfg Config) (*Broker, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("cibatest: new: issuer must be an absolute http(s) URL without query or fragment")
	}
	sp, ok := specFor(cfg.Profile)
	if !ok {
		return nil, errors.New("cibatest: new: profile must be idura, auth0, transmit or generic")
	}
	cfg.Profile = sp.name
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.ExpiresInSE <= 0 {
		cfg.ExpiresInSE = 120 * time.Second
	}
	if cfg.ExpiresInNO <= 0 {
		cfg.ExpiresInNO = 900 * time.Second
	}
	if cfg.ExpiresIn <= 0 {
		cfg.ExpiresIn = 300 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	raw := cfg.SigningKey
	if raw == nil {
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("cibatest: generate signing key: %w", err)
		}
	}
	key, err := signingKey(raw)
	if err != nil {
		return nil, fmt.Errorf("cibatest: new: %w", err)
	}
	b := &Broker{
		cfg:       cfg,
		spec:      sp,
		base:      strings.TrimSuffix(cfg.Issuer, "/"),
		keys:      []jwk.Key{key},
		clients:   map[string]*client{},
		users:     map[string]User{},
		reqs:      map[string]*request{},
		byAuthReq: map[string]*request{},
		latest:    map[string]*request{},
		seenJTI:   map[string]time.Time{},
	}
	for _, u := range UsersFor(sp.name) {
		b.addUserLocked(u)
	}
	b.transport = inProcess{b}
	b.routes(strings.TrimSuffix(u.Path, "/"))
	return b, nil
}

func (b *Broker) routes(prefix string) {
	m := http.NewServeMux()
	m.HandleFunc("GET "+prefix+"/.well-known/openid-configuration", b.broker(b.handleDiscovery))
	m.HandleFunc("GET "+prefix+b.spec.jwksPath, b.broker(b.handleJWKS))
	m.HandleFunc("POST "+prefix+b.spec.authorizePath, b.observed("bc-authorize", b.broker(b.handleAuthorize)))
	m.HandleFunc("POST "+prefix+b.spec.tokenPath, b.observed("token", b.broker(b.handleToken)))
	m.HandleFunc("GET "+prefix+"/sim/requests", b.handleSimList)
	m.HandleFunc("POST "+prefix+"/sim/requests/{id}/open", b.handleSimAction(actOpen))
	m.HandleFunc("POST "+prefix+"/sim/requests/{id}/acknowledge", b.handleSimAction(actAcknowledge))
	m.HandleFunc("POST "+prefix+"/sim/requests/{id}/approve", b.handleSimAction(actApprove))
	m.HandleFunc("POST "+prefix+"/sim/requests/{id}/decline", b.handleSimAction(actDecline))
	b.mux = m
}

// ServeHTTP serves the broker endpoints and the /sim API under the issuer's
// path.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = b.arrived(r)
	if !wait(r, b.cfg.Latency) {
		return
	}
	b.mux.ServeHTTP(w, r)
}

// Issuer returns Config.Issuer.
func (b *Broker) Issuer() string { return b.cfg.Issuer }

// SetOutage starts (or, with the zero Outage, ends) a simulated outage.
func (b *Broker) SetOutage(o Outage) {
	b.mu.Lock()
	b.outage = o
	b.mu.Unlock()
}

// SetFetchClient sets the client used to fetch clients' JWKS URLs and to
// send ping notifications; nil means http.DefaultClient.
func (b *Broker) SetFetchClient(c *http.Client) {
	b.mu.Lock()
	b.fetchClient = c
	b.mu.Unlock()
}

// broker wraps the broker endpoints with the outage simulation.
func (b *Broker) broker(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		o := b.outage
		b.mu.Unlock()
		if !wait(r, o.Latency) {
			return
		}
		switch {
		case o.Status != 0:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(o.Status)
			_, _ = io.WriteString(w, http.StatusText(o.Status)+"\n")
		case o.Garbage:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<html><body>502 Bad Gateway (simulated)</body></html>\n")
		default:
			h(w, r)
		}
	}
}

// wait sleeps d unless the request's context ends first; it reports whether
// the request should still be answered.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (b *Broker) now() time.Time { return b.cfg.Now() }

// HTTPClient returns a client whose transport serves every request through
// b in the calling goroutine, without a socket, whatever the URL's host: it
// works inside synctest bubbles.
func (b *Broker) HTTPClient() *http.Client {
	return &http.Client{Transport: b.transport}
}

// Transport returns the in-process transport used by HTTPClient.
func (b *Broker) Transport() http.RoundTripper { return b.transport }

type inProcess struct{ b *Broker }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("cibatest: read request body: %w", err)
		}
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	sr := req.Clone(req.Context())
	sr.Body = io.NopCloser(bytes.NewReader(body))
	sr.ContentLength = int64(len(body))
	sr.RequestURI = req.URL.RequestURI()
	sr.RemoteAddr = "127.0.0.1:1"
	sr.Proto, sr.ProtoMajor, sr.ProtoMinor = "HTTP/1.1", 1, 1
	if sr.Host == "" {
		sr.Host = req.URL.Host
	}
	rec := httptest.NewRecorder()
	t.b.ServeHTTP(rec, sr)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// writeJSON writes v with the no-store headers OAuth asks for.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError writes {"error","error_description"}. The description is
// always a fixed text of ours: it never echoes a parameter.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	body := map[string]string{"error": code}
	if description != "" {
		body["error_description"] = description
	}
	writeJSON(w, status, body)
}

// randomID returns n random bytes, base64url without padding
// (charset A-Za-z0-9-_).
func randomID(n int) string {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return base64.RawURLEncoding.EncodeToString(p)
}

func randomHex(n int) string {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return hex.EncodeToString(p)
}

// parseForm reads an x-www-form-urlencoded body (at most 64 KiB). Only the
// body counts: parameters in the URL are refused, because a login hint
// there would end up in access logs.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if r.URL.RawQuery != "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "parameters must be sent in the form body, not the URL")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "body must be application/x-www-form-urlencoded and at most 64 KiB")
		return nil, false
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			oauthError(w, http.StatusBadRequest, "invalid_request", "parameter "+safeName(k)+" is repeated")
			return nil, false
		}
	}
	return r.PostForm, true
}

// safeName returns a parameter name for an error text if it is a plain
// identifier, else a placeholder.
func safeName(k string) string {
	if len(k) > 40 {
		return "(name too long)"
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "(unprintable name)"
		}
	}
	return k
}
