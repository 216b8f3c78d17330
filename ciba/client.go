package ciba

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/ivr/callerverify/internal/netutil"
)

// AuthMethod is a token endpoint client authentication method.
type AuthMethod string

// Client authentication methods.
const (
	PrivateKeyJWT     AuthMethod = "private_key_jwt"
	ClientSecretBasic AuthMethod = "client_secret_basic"
	ClientSecretPost  AuthMethod = "client_secret_post"
)

// Defaults and limits.
const (
	DefaultAssertionLifetime = 60 * time.Second
	MaxAssertionLifetime     = 5 * time.Minute
	DefaultSkew              = 30 * time.Second
	DefaultHTTPTimeout       = 10 * time.Second
	// JWKSMinRefresh is the shortest time between two JWKS fetches caused by
	// ID tokens with an unknown kid, so that forged tokens cannot make us
	// hammer the broker.
	JWKSMinRefresh = 10 * time.Second
)

// maxBody bounds every response body read from the broker.
const maxBody = 1 << 20

// Config configures a Client. Issuer and ClientID are required, plus Key or
// Secret depending on AuthMethod.
type Config struct {
	Issuer   string // broker issuer URL; https, or http on loopback only
	ClientID string // the client's client_id at the broker
	// Key signs the client assertions of private_key_jwt: a crypto.Signer
	// with the kid the broker knows it by (from LoadKey or GenerateKey, or
	// a signer of the caller's own). Key.Alg defaults from the key type:
	// RS256 for RSA, ES256 for P-256.
	Key    Key
	Secret string // client secret for client_secret_basic / client_secret_post
	// AuthMethod defaults to private_key_jwt when Key.Signer is set, else
	// to the profile's first secret method (client_secret_basic for Idura).
	AuthMethod AuthMethod
	// Audience is the client assertion's aud; default the discovered issuer.
	Audience string
	// AssertionLifetime is the client assertion's exp - iat; default 60s,
	// at most 5 minutes.
	AssertionLifetime time.Duration
	// HTTPClient talks to the broker; default a client with a 10s timeout.
	// Its CheckRedirect is replaced: the client never follows a redirect.
	HTTPClient *http.Client
	// Profile describes the broker; default Idura.
	Profile *Profile
	// Skew is the clock skew tolerated on ID token exp, iat and nbf;
	// default 30s.
	Skew time.Duration
	// Now is the clock for assertions and ID token checks; default time.Now.
	Now func() time.Time
}

// Metadata is the part of the broker's discovery document the client uses,
// with fallbacks filled in from the profile.
type Metadata struct {
	Issuer                                string   `json:"issuer"`
	TokenEndpoint                         string   `json:"token_endpoint"`
	BackchannelAuthenticationEndpoint     string   `json:"backchannel_authentication_endpoint"`
	JWKSURI                               string   `json:"jwks_uri"`
	BackchannelTokenDeliveryModes         []string `json:"backchannel_token_delivery_modes_supported,omitempty"`
	BackchannelUserCodeParameterSupported bool     `json:"backchannel_user_code_parameter_supported,omitempty"`
	TokenEndpointAuthMethods              []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgs          []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	IDTokenSigningAlgs                    []string `json:"id_token_signing_alg_values_supported,omitempty"`
	ACRValuesSupported                    []string `json:"acr_values_supported,omitempty"`
}

// Client is a CIBA client for one broker and one client registration. It is
// safe for concurrent use.
type Client struct {
	cfg      Config
	profile  *Profile
	meta     Metadata
	hc       *http.Client
	now      func() time.Time
	method   AuthMethod
	alg      jwa.SignatureAlgorithm // client assertion alg
	audience string

	inflightMu sync.Mutex
	inflight   map[string]chan struct{} // auth_req_id -> released when its token request ends

	jwks jwksCache
}

// New validates cfg, fetches the broker's discovery document and returns a
// client. Configuration errors name the offending field; discovery failures
// wrap ErrTransport.
func New(ctx context.Context, cfg Config) (*Client, error) {
	c := &Client{cfg: cfg, inflight: map[string]chan struct{}{}}
	if err := c.configure(); err != nil {
		return nil, err
	}
	if err := c.discover(ctx); err != nil {
		return nil, err
	}
	c.audience = cfg.Audience
	if c.audience == "" {
		c.audience = c.meta.Issuer
	}
	c.jwks = jwksCache{uri: c.meta.JWKSURI}
	return c, nil
}

func (c *Client) configure() error {
	cfg := &c.cfg
	if err := checkURL(cfg.Issuer); err != nil {
		return fmt.Errorf("ciba: config: Issuer: %w", err)
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		return errors.New("ciba: config: ClientID: required")
	}
	c.profile = cfg.Profile
	if c.profile == nil {
		c.profile = Idura
	}
	c.method = cfg.AuthMethod
	if c.method == "" {
		if cfg.Key.Signer != nil {
			c.method = PrivateKeyJWT
		} else {
			c.method = ClientSecretBasic
			for _, m := range c.profile.AuthMethods {
				if m != PrivateKeyJWT {
					c.method = m
					break
				}
			}
		}
	}
	switch c.method {
	case PrivateKeyJWT:
		if cfg.Key.Signer == nil {
			return errors.New("ciba: config: Key: a Signer is required for private_key_jwt")
		}
		alg, err := cfg.Key.algorithm()
		if err != nil {
			return fmt.Errorf("ciba: config: Key: %w", err)
		}
		if cfg.Key.ID == "" {
			return errors.New("ciba: config: Key: no ID, the kid the broker knows the key by (LoadKey and GenerateKey set it)")
		}
		c.alg, _ = jwa.LookupSignatureAlgorithm(alg)
	case ClientSecretBasic, ClientSecretPost:
		if cfg.Secret == "" {
			return fmt.Errorf("ciba: config: Secret: required for %s", c.method)
		}
	default:
		return fmt.Errorf("ciba: config: AuthMethod: unknown %q", string(c.method))
	}
	if len(c.profile.AuthMethods) > 0 && !slices.Contains(c.profile.AuthMethods, c.method) {
		return fmt.Errorf("ciba: config: AuthMethod: %s not allowed by profile %s", c.method, c.profile.Name)
	}
	switch {
	case cfg.AssertionLifetime == 0:
		cfg.AssertionLifetime = DefaultAssertionLifetime
	case cfg.AssertionLifetime < 0 || cfg.AssertionLifetime > MaxAssertionLifetime:
		return fmt.Errorf("ciba: config: AssertionLifetime: must be between 1s and %s", MaxAssertionLifetime)
	}
	switch {
	case cfg.Skew == 0:
		cfg.Skew = DefaultSkew
	case cfg.Skew < 0 || cfg.Skew > 5*time.Minute:
		return errors.New("ciba: config: Skew: must be between 0 and 5m")
	}
	// Redirects are refused whatever client we are given: a broker (or
	// something in front of it) answering with a redirect would have the
	// next request, with its login hint and client assertion, sent to
	// another host.
	hc := http.Client{Timeout: DefaultHTTPTimeout}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = refuseRedirect
	c.hc = &hc
	c.now = cfg.Now
	if c.now == nil {
		c.now = time.Now
	}
	return nil
}

// ErrRedirect is the cause of a failed request that the broker answered
// with a redirect: the client never follows one.
var ErrRedirect = errors.New("the broker answered with a redirect, which is refused (a request carries the login hint and a client assertion)")

func refuseRedirect(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("%w: to %s://%s", ErrRedirect, req.URL.Scheme, req.URL.Host)
}

// checkURL accepts an absolute https URL, or http on a loopback host, with
// no user info, query or fragment.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("not an absolute URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not have user info, query or fragment")
	}
	if u.Scheme == "https" || u.Scheme == "http" && netutil.IsLoopbackHost(u.Hostname()) {
		return nil
	}
	return errors.New("must be https (http only on loopback)")
}

// Issuer returns the broker's issuer as discovered.
func (c *Client) Issuer() string { return c.meta.Issuer }

// Metadata returns the discovered endpoints.
func (c *Client) Metadata() Metadata {
	m := c.meta
	m.BackchannelTokenDeliveryModes = append([]string(nil), m.BackchannelTokenDeliveryModes...)
	m.TokenEndpointAuthMethods = append([]string(nil), m.TokenEndpointAuthMethods...)
	m.TokenEndpointAuthSigningAlgs = append([]string(nil), m.TokenEndpointAuthSigningAlgs...)
	m.IDTokenSigningAlgs = append([]string(nil), m.IDTokenSigningAlgs...)
	m.ACRValuesSupported = append([]string(nil), m.ACRValuesSupported...)
	return m
}

// Profile returns the broker profile the client was configured with.
func (c *Client) Profile() *Profile { return c.profile }

// Request builds an AuthRequest from in with the client's profile, filling in
// the issuer for hint formats that need it (Auth0's iss_sub).
func (c *Client) Request(in RequestInput) (AuthRequest, error) {
	if in.Issuer == "" {
		in.Issuer = c.meta.Issuer
	}
	return c.profile.Request(in)
}

func (c *Client) discover(ctx context.Context) error {
	base := strings.TrimSuffix(c.cfg.Issuer, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/openid-configuration", nil)
	if err != nil {
		return fmt.Errorf("ciba: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("ciba: discovery: %w: %w", ErrTransport, err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ciba: discovery: %w: status %d", ErrTransport, resp.StatusCode)
	}
	var m Metadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&m); err != nil {
		return fmt.Errorf("ciba: discovery: %w: invalid JSON", ErrTransport)
	}
	if m.Issuer == "" {
		return fmt.Errorf("ciba: discovery: %w: no issuer", ErrTransport)
	}
	// OpenID Connect Discovery §4.3: the issuer must be the one we asked;
	// a trailing slash is the only difference tolerated.
	if strings.TrimSuffix(m.Issuer, "/") != base {
		return errors.New("ciba: discovery: issuer in the discovery document differs from Config.Issuer")
	}
	if m.TokenEndpoint == "" {
		m.TokenEndpoint = base + cmp.Or(c.profile.TokenPath, "/token")
	}
	if m.BackchannelAuthenticationEndpoint == "" {
		m.BackchannelAuthenticationEndpoint = base + cmp.Or(c.profile.BackchannelPath, "/bc-authorize")
	}
	if m.JWKSURI == "" {
		m.JWKSURI = base + cmp.Or(c.profile.JWKSPath, "/jwks")
	}
	for _, e := range []struct{ name, url string }{
		{"token_endpoint", m.TokenEndpoint},
		{"backchannel_authentication_endpoint", m.BackchannelAuthenticationEndpoint},
		{"jwks_uri", m.JWKSURI},
	} {
		if err := checkEndpoint(e.url); err != nil {
			return fmt.Errorf("ciba: discovery: %s: %w", e.name, err)
		}
	}
	c.meta = m
	return nil
}

// checkEndpoint is checkURL but allows a query string.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	u.RawQuery = ""
	return checkURL(u.String())
}

// post sends form to endpoint with client authentication and returns the
// status, headers and body. Transport failures wrap ErrTransport.
func (c *Client) post(ctx context.Context, step, endpoint string, form url.Values) (int, http.Header, []byte, error) {
	if err := c.authenticate(form); err != nil {
		return 0, nil, nil, fmt.Errorf("ciba: %s: %w", step, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("ciba: %s: %w", step, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.method == ClientSecretBasic {
		// RFC 6749 §2.3.1: form-encode both parts before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.Secret))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("ciba: %s: %w: %w", step, ErrTransport, scrubURLError(err))
	}
	defer drain(resp.Body)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("ciba: %s: %w: read body: %w", step, ErrTransport, scrubURLError(err))
	}
	return resp.StatusCode, resp.Header, body, nil
}

// scrubURLError keeps the cause of a *url.Error but drops the URL, in case
// an endpoint carries something in its query.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// brokerError turns a non-2xx response into an error: any 4xx with a JSON
// "error" member becomes *Error; everything else wraps ErrTransport. The
// body never appears in the error text.
func brokerError(step string, status int, h http.Header, body []byte) error {
	if status >= 400 && status < 500 {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" && validErrorCode(e.Error) {
			return fmt.Errorf("ciba: %s: %w", step, &Error{
				Code:        e.Error,
				Description: e.Description,
				StatusCode:  status,
				RetryAfter:  retryAfter(h.Get("Retry-After")),
			})
		}
	}
	return fmt.Errorf("ciba: %s: %w: status %d", step, ErrTransport, status)
}

// validErrorCode reports whether code has the RFC 6749 charset for error
// codes (%x20-21 / %x23-5B / %x5D-7E), so that Error() prints nothing else.
func validErrorCode(code string) bool {
	if len(code) > 64 {
		return false
	}
	for _, r := range code {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

// retryAfter parses a Retry-After header in delta-seconds form (the HTTP-date
// form is not used by token endpoints); 0 when absent or invalid.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 3600 {
		return 0
	}
	return time.Duration(n) * time.Second
}

func drain(r io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, maxBody))
	_ = r.Close()
}
