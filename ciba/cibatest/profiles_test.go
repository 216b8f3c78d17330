package cibatest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

// profileInfo is what the tests expect of one of the auth0, transmit and
// generic profiles.
type profileInfo struct {
	name                     string
	issuer                   string
	authorize, token, jwks   string // paths
	modes, methods           []string
	cp                       *ciba.Profile
	approve, slow, decline   string // test users (Auth0: customer numbers)
	noAnswer, manual         string
	pending, denied          string // token error descriptions
	expiredCode, expiredDesc string // "" description: not checked
	interval                 any    // bc-authorize interval member; nil = absent
}

func auth0Info() profileInfo {
	return profileInfo{
		name:      cibatest.ProfileAuth0,
		issuer:    "https://tenant.sim.example/", // Auth0 issuers end with a slash
		authorize: "/bc-authorize", token: "/oauth/token", jwks: "/.well-known/jwks.json",
		modes:   []string{"poll"},
		methods: []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		cp:      ciba.Auth0,
		approve: cibatest.Auth0Approve, slow: cibatest.Auth0ApproveSlow, decline: cibatest.Auth0Decline,
		noAnswer: cibatest.Auth0NoAnswer, manual: cibatest.Auth0Manual,
		pending: cibatest.PendingAuth0, denied: cibatest.DeniedAuth0,
		expiredCode: "access_denied", expiredDesc: cibatest.DeniedAuth0,
		interval: 5.0,
	}
}

func transmitInfo() profileInfo {
	return profileInfo{
		name:      cibatest.ProfileTransmit,
		issuer:    "https://transmit.sim.example",
		authorize: "/cis/oidc/backchannel", token: "/oidc/token", jwks: "/cis/oidc/jwks",
		modes:   []string{"poll"},
		methods: []string{"client_secret_basic", "client_secret_post"},
		cp:      ciba.Transmit,
		approve: cibatest.TransmitApprove, slow: cibatest.TransmitApproveSlow, decline: cibatest.TransmitDecline,
		noAnswer: cibatest.TransmitNoAnswer, manual: cibatest.TransmitManual,
		pending: cibatest.PendingGeneric, denied: cibatest.DeniedGeneric,
		expiredCode: "expired_token",
	}
}

func genericInfo() profileInfo {
	return profileInfo{
		name:      cibatest.ProfileGeneric,
		issuer:    "https://ciba.sim.example",
		authorize: "/bc-authorize", token: "/token", jwks: "/jwks",
		modes:   []string{"poll", "ping"},
		methods: []string{"private_key_jwt", "client_secret_basic", "client_secret_post"},
		cp:      ciba.Generic,
		approve: cibatest.GenericApprove, slow: cibatest.GenericApproveSlow, decline: cibatest.GenericDecline,
		noAnswer: cibatest.GenericNoAnswer, manual: cibatest.GenericManual,
		pending: cibatest.PendingGeneric, denied: cibatest.DeniedGeneric,
		expiredCode: "expired_token",
		interval:    2.0, // Config.Interval's default
	}
}

func profileInfos() []profileInfo { return []profileInfo{auth0Info(), transmitInfo(), genericInfo()} }

// userID is the id the broker knows user by.
func (p profileInfo) userID(user string) string {
	if p.name == cibatest.ProfileAuth0 {
		return cibatest.Auth0UserIDPrefix + user
	}
	return user
}

// form is a valid bc-authorize form (without client authentication) for
// one of the profile's test users.
func (p profileInfo) form(user string) url.Values {
	f := url.Values{"scope": {"openid"}}
	if p.name == cibatest.ProfileAuth0 {
		h, _ := json.Marshal(map[string]string{"format": "iss_sub", "iss": p.issuer, "sub": p.userID(user)})
		f.Set("login_hint", string(h))
		f.Set("binding_message", "Call 4711: confirm")
		return f
	}
	f.Set("login_hint", user)
	return f
}

// input is the ciba client's RequestInput for one of the test users.
func (p profileInfo) input(user string) ciba.RequestInput {
	in := ciba.RequestInput{UserID: p.userID(user)}
	if p.name == cibatest.ProfileAuth0 {
		in.BindingMessage = "Call 4711: confirm"
	}
	return in
}

// testUser finds a built-in user of the profile by user id.
func (p profileInfo) testUser(t *testing.T, user string) cibatest.User {
	t.Helper()
	for _, u := range cibatest.UsersFor(p.name) {
		if u.UserID == p.userID(user) {
			return u
		}
	}
	t.Fatalf("no %s user %s", p.name, user)
	return cibatest.User{}
}

const (
	secretClientID = "rp-secret"
	clientSecret   = "s3cret"
)

// penv is a broker speaking one profile, with a secret client (used by the
// raw requests, with client_secret_post) and, where the profile accepts
// private_key_jwt, clientID with an RSA key.
type penv struct {
	*env
	p profileInfo
}

func newPenv(t *testing.T, p profileInfo, cfg cibatest.Config) *penv {
	t.Helper()
	cfg.Issuer, cfg.Profile, cfg.SigningKey = p.issuer, p.name, brokerKey()
	b, err := cibatest.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := b.RegisterClient(cibatest.Client{ID: secretClientID, Secret: clientSecret}); err != nil {
		t.Fatalf("RegisterClient: %v", err)
	}
	key := privateJWK(t, clientRSA())
	if slices.Contains(p.methods, "private_key_jwt") {
		if err := b.RegisterClient(cibatest.Client{ID: clientID, JWKS: publicSet(t, key)}); err != nil {
			t.Fatalf("RegisterClient: %v", err)
		}
	}
	return &penv{env: &env{t: t, b: b, hc: b.HTTPClient(), key: key}, p: p}
}

func (e *penv) url(path string) string { return strings.TrimSuffix(e.p.issuer, "/") + path }

func (e *penv) get(path string) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url(path), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(req)
}

// post posts form as it is.
func (e *penv) post(path string, form url.Values) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url(path), strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(req)
}

// withSecret adds client_secret_post authentication as client id.
func withSecret(form url.Values, id string) url.Values {
	out := url.Values{}
	for k, v := range form {
		out[k] = v
	}
	out.Set("client_id", id)
	out.Set("client_secret", clientSecret)
	return out
}

func (e *penv) authorize(form url.Values) reply {
	e.t.Helper()
	return e.post(e.p.authorize, withSecret(form, secretClientID))
}

func (e *penv) start(form url.Values) reply {
	e.t.Helper()
	r := e.authorize(form)
	if r.status != http.StatusOK || r.str("auth_req_id") == "" {
		e.t.Fatalf("bc-authorize = %d %s, want 200 with auth_req_id", r.status, r.raw)
	}
	return r
}

func (e *penv) token(authReqID string) reply {
	e.t.Helper()
	return e.post(e.p.token, withSecret(url.Values{"grant_type": {ciba.GrantType}, "auth_req_id": {authReqID}}, secretClientID))
}

// client is a ciba.Client of the profile authenticating with method.
func (e *penv) client(method ciba.AuthMethod) (*ciba.Client, error) {
	cfg := ciba.Config{
		Issuer: e.p.issuer, ClientID: secretClientID, Secret: clientSecret, AuthMethod: method,
		Profile: e.p.cp, HTTPClient: e.hc,
	}
	if method == ciba.PrivateKeyJWT {
		cfg.ClientID, cfg.Secret, cfg.Key = clientID, "", e.clientKey()
	}
	return ciba.New(e.t.Context(), cfg)
}

func TestNewProfile(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", cibatest.ProfileIdura}, {"idura", cibatest.ProfileIdura}, {"auth0", cibatest.ProfileAuth0},
		{"transmit", cibatest.ProfileTransmit}, {"generic", cibatest.ProfileGeneric},
	} {
		b, err := cibatest.New(cibatest.Config{Issuer: testIssuer, Profile: tt.in, SigningKey: brokerKey()})
		if err != nil || b.Profile() != tt.want {
			t.Errorf("New(Profile %q): Profile() = %v, %v; want %s", tt.in, b, err, tt.want)
		}
	}
	if _, err := cibatest.New(cibatest.Config{Issuer: testIssuer, Profile: "okta", SigningKey: brokerKey()}); err == nil {
		t.Error("New with an unknown profile: got nil error")
	}
}

func TestProfileDiscovery(t *testing.T) {
	for _, p := range profileInfos() {
		t.Run(p.name, func(t *testing.T) {
			e := newPenv(t, p, cibatest.Config{})
			r := e.get("/.well-known/openid-configuration")
			if r.status != http.StatusOK {
				t.Fatalf("discovery = %d %s", r.status, r.raw)
			}
			for k, want := range map[string]string{
				"issuer":                              p.issuer,
				"backchannel_authentication_endpoint": e.url(p.authorize),
				"token_endpoint":                      e.url(p.token),
				"jwks_uri":                            e.url(p.jwks),
			} {
				if got := r.str(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
				if k != "issuer" && strings.Contains(strings.TrimPrefix(r.str(k), "https://"), "//") {
					t.Errorf("%s = %q has an empty path segment", k, r.str(k))
				}
			}
			for k, want := range map[string][]string{
				"backchannel_token_delivery_modes_supported": p.modes,
				"token_endpoint_auth_methods_supported":      p.methods,
				"grant_types_supported":                      {ciba.GrantType},
			} {
				var got []string
				for _, v := range r.body[k].([]any) {
					got = append(got, v.(string))
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
			_, algs := r.body["token_endpoint_auth_signing_alg_values_supported"]
			if algs != slices.Contains(p.methods, "private_key_jwt") {
				t.Errorf("token_endpoint_auth_signing_alg_values_supported present = %t, want it exactly with private_key_jwt", algs)
			}
			jwks := e.get(p.jwks)
			if set, err := jwk.Parse([]byte(jwks.raw)); err != nil || set.Len() != 1 {
				t.Errorf("JWKS at %s = %d %s", p.jwks, jwks.status, jwks.raw)
			}
			// Idura's paths are not this broker's.
			if r := e.post("/ciba/bc-authorize", withSecret(p.form(p.approve), secretClientID)); p.authorize != "/ciba/bc-authorize" && r.status != http.StatusNotFound {
				t.Errorf("POST /ciba/bc-authorize = %d, want 404", r.status)
			}
		})
	}
}

// TestProfileApproveWithCibaClient runs the whole flow with the real ciba
// client, which finds the endpoints by discovery, once per client
// authentication method the profile accepts.
func TestProfileApproveWithCibaClient(t *testing.T) {
	for _, p := range profileInfos() {
		for _, m := range p.methods {
			t.Run(p.name+" with "+m, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					e := newPenv(t, p, cibatest.Config{})
					c, err := e.client(ciba.AuthMethod(m))
					if err != nil {
						t.Fatalf("ciba.New: %v", err)
					}
					if got := c.Metadata().BackchannelAuthenticationEndpoint; got != e.url(p.authorize) {
						t.Errorf("discovered backchannel endpoint %q, want %q", got, e.url(p.authorize))
					}
					req, err := c.Request(p.input(p.approve))
					if err != nil {
						t.Fatalf("Request: %v", err)
					}
					ar, err := c.Authenticate(t.Context(), req)
					if err != nil {
						t.Fatalf("Authenticate: %v", err)
					}
					start := time.Now()
					tok, err := c.Poll(t.Context(), ar, nil)
					if err != nil {
						t.Fatalf("Poll: %v", err)
					}
					// The user approves at 4 s; the client polls at its
					// interval (5 s at Auth0 and Transmit, 2 s generic).
					want := 5 * time.Second
					if p.name == cibatest.ProfileGeneric {
						want = 4 * time.Second
					}
					if got := time.Since(start); got != want {
						t.Errorf("approved after %v, want %v", got, want)
					}
					u := p.testUser(t, p.approve)
					var cl struct {
						Issuer     string `json:"iss"`
						Subject    string `json:"sub"`
						Name       string `json:"name"`
						GivenName  string `json:"given_name"`
						FamilyName string `json:"family_name"`
						Email      string `json:"email"`
						Phone      string `json:"phone_number"`
					}
					if err := tok.IDToken.Claims(&cl); err != nil {
						t.Fatal(err)
					}
					if tok.IDToken.Issuer != p.issuer || tok.IDToken.Subject != p.userID(p.approve) || cl.GivenName != u.GivenName ||
						cl.FamilyName != u.FamilyName || cl.Name != u.GivenName+" "+u.FamilyName {
						t.Errorf("claims iss %q sub %q name %q %q %q, want %q %q and %s %s",
							tok.IDToken.Issuer, tok.IDToken.Subject, cl.Name, cl.GivenName, cl.FamilyName, p.issuer, p.userID(p.approve), u.GivenName, u.FamilyName)
					}
					if cl.Email != u.Email {
						t.Errorf("email claim %q, want %q", cl.Email, u.Email)
					}
					if cl.Phone != u.Phone {
						t.Errorf("phone_number claim %q, want %q", cl.Phone, u.Phone)
					}
				})
			})
		}
	}
}

// TestProfileTokenResponse checks the token response and ID token of each
// profile against the JWKS it publishes.
func TestProfileTokenResponse(t *testing.T) {
	for _, p := range profileInfos() {
		t.Run(p.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newPenv(t, p, cibatest.Config{})
				ar := e.start(p.form(p.approve))
				if ar.body["interval"] != p.interval {
					t.Errorf("interval = %v, want %v", ar.body["interval"], p.interval)
				}
				if ar.body["expires_in"] != 300.0 {
					t.Errorf("expires_in = %v, want 300", ar.body["expires_in"])
				}
				if _, ok := ar.body["bindingMessage"]; ok {
					t.Error("response has Idura's bindingMessage")
				}
				time.Sleep(4 * time.Second)
				tok := e.token(ar.str("auth_req_id"))
				if tok.status != http.StatusOK {
					t.Fatalf("token = %d %s", tok.status, tok.raw)
				}
				wantExp := 3600.0
				if p.name == cibatest.ProfileAuth0 {
					wantExp = 86400
				}
				if tok.body["expires_in"] != wantExp || tok.str("scope") != "openid" || tok.str("token_type") != "Bearer" || tok.str("access_token") == "" {
					t.Errorf("token response %s, want expires_in %v, scope openid, token_type Bearer", tok.raw, wantExp)
				}
				set, err := jwk.Parse([]byte(e.get(p.jwks).raw))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := jwt.Parse([]byte(tok.str("id_token")), jwt.WithKeySet(set), jwt.WithIssuer(p.issuer), jwt.WithAudience(secretClientID)); err != nil {
					t.Fatalf("ID token does not verify: %v", err)
				}
				c := decodeSegment(t, tok.str("id_token"), 1)
				if c["sub"] != p.userID(p.approve) {
					t.Errorf("sub = %v, want %s", c["sub"], p.userID(p.approve))
				}
				for _, k := range []string{"ssn", "socialno", "country", "identityscheme"} {
					if _, ok := c[k]; ok {
						t.Errorf("claim %s present in a %s token", k, p.name)
					}
				}
				if aud, _ := c["aud"].([]any); len(aud) != 1 || aud[0] != secretClientID {
					t.Errorf("aud = %v, want [%s]", c["aud"], secretClientID)
				}
				wantError(t, e.token(ar.str("auth_req_id")), http.StatusBadRequest, "invalid_grant", "") // used up
			})
		})
	}
}

// TestProfileOutcomes checks pending, decline, slow approval and expiry,
// each with the profile's texts: Auth0 answers expiry with access_denied.
func TestProfileOutcomes(t *testing.T) {
	for _, p := range profileInfos() {
		t.Run(p.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newPenv(t, p, cibatest.Config{})
				decline := e.start(p.form(p.decline)).str("auth_req_id")
				slow := e.start(p.form(p.slow)).str("auth_req_id")
				never := e.start(p.form(p.noAnswer)).str("auth_req_id")
				wantError(t, e.token(decline), http.StatusBadRequest, "authorization_pending", p.pending)
				time.Sleep(5 * time.Second)
				wantError(t, e.token(decline), http.StatusBadRequest, "access_denied", p.denied)
				wantError(t, e.token(slow), http.StatusBadRequest, "authorization_pending", p.pending)
				time.Sleep(55 * time.Second)
				if tok := e.token(slow); tok.status != http.StatusOK {
					t.Errorf("slow approval at 60 s = %d %s, want 200", tok.status, tok.raw)
				}
				wantError(t, e.token(never), http.StatusBadRequest, "authorization_pending", p.pending)
				time.Sleep(235 * time.Second) // 295 s
				wantError(t, e.token(never), http.StatusBadRequest, "authorization_pending", p.pending)
				time.Sleep(5 * time.Second)
				wantError(t, e.token(never), http.StatusBadRequest, p.expiredCode, p.expiredDesc)
				states := map[string]string{}
				for _, r := range e.b.Requests() {
					states[r.Name] = r.State
					if r.Profile != p.name || r.Country != "" || r.MaskedID != "" {
						t.Errorf("request %+v: want profile %s, no country and no masked national id", r, p.name)
					}
				}
				for user, want := range map[string]string{p.decline: cibatest.StateDeclined, p.slow: cibatest.StateApproved, p.noAnswer: cibatest.StateExpired} {
					u := p.testUser(t, user)
					if got := states[u.GivenName+" "+u.FamilyName]; got != want {
						t.Errorf("%s %s: state %q, want %q", u.GivenName, u.FamilyName, got, want)
					}
				}
			})
		})
	}
}

func TestProfileAuthorizeParameters(t *testing.T) {
	hint := func(v map[string]any) string { b, _ := json.Marshal(v); return string(b) }
	a0 := auth0Info()
	tests := []struct {
		name string
		p    profileInfo
		user string
		mod  func(url.Values)
		code string // "" = success
	}{
		{"auth0: valid request", a0, a0.approve, nil, ""},
		{"auth0: issuer without its trailing slash is tolerated", a0, a0.approve,
			set("login_hint", hint(map[string]any{"format": "iss_sub", "iss": "https://tenant.sim.example", "sub": "auth0|" + a0.approve})), ""},
		{"auth0: unknown user", a0, a0.approve,
			set("login_hint", hint(map[string]any{"format": "iss_sub", "iss": a0.issuer, "sub": "auth0|39999995"})), "unknown_user_id"},
		{"auth0: customer number without the connection", a0, a0.approve,
			set("login_hint", hint(map[string]any{"format": "iss_sub", "iss": a0.issuer, "sub": a0.approve})), "unknown_user_id"},
		{"auth0: login_hint not JSON", a0, a0.approve, set("login_hint", "auth0|"+a0.approve), "invalid_request"},
		{"auth0: login_hint a JSON array", a0, a0.approve, set("login_hint", `["iss_sub"]`), "invalid_request"},
		{"auth0: other hint format", a0, a0.approve,
			set("login_hint", hint(map[string]any{"format": "email", "email": "maria.garcia@example.com"})), "invalid_request"},
		{"auth0: other issuer", a0, a0.approve,
			set("login_hint", hint(map[string]any{"format": "iss_sub", "iss": "https://other.example/", "sub": "auth0|" + a0.approve})), "invalid_request"},
		{"auth0: no sub", a0, a0.approve, set("login_hint", hint(map[string]any{"format": "iss_sub", "iss": a0.issuer})), "invalid_request"},
		{"auth0: sub not a string", a0, a0.approve,
			set("login_hint", hint(map[string]any{"format": "iss_sub", "iss": a0.issuer, "sub": 31001019})), "invalid_request"},
		{"auth0: missing login_hint", a0, a0.approve, del("login_hint"), "invalid_request"},
		{"auth0: id_token_hint", a0, a0.approve, set("id_token_hint", "a.b.c"), "invalid_request"},
		{"auth0: scope without openid", a0, a0.approve, set("scope", "profile"), "invalid_request"},
		{"auth0: authorization_details not an array", a0, a0.approve, set("authorization_details", `{"type":"x"}`), "invalid_request"},
		{"auth0: authorization_details array", a0, a0.approve, set("authorization_details", `[{"type":"payment"}]`), ""},

		{"transmit: user id", transmitInfo(), cibatest.TransmitApprove, nil, ""},
		{"transmit: phone", transmitInfo(), cibatest.TransmitApprovePhone, nil, ""},
		{"transmit: email in capitals", transmitInfo(), strings.ToUpper(cibatest.TransmitApproveEmail), nil, ""},
		{"transmit: typed hint and every channel field", transmitInfo(), cibatest.TransmitApproveEmail,
			set("request_context", `{"channel":"email","login_hint_type":"email","custom_message":"Ready to authenticate?"}`), ""},
		{"transmit: link channel", transmitInfo(), cibatest.TransmitApprovePhone, set("request_context", `{"channel":"link"}`), ""},
		{"transmit: unknown user id", transmitInfo(), "59999994", nil, "unknown_user_id"},
		{"transmit: unknown phone", transmitInfo(), "+46701740699", nil, "unknown_user_id"},
		{"transmit: unknown email", transmitInfo(), "nobody@example.com", nil, "unknown_user_id"},
		{"transmit: phone typed as a user id", transmitInfo(), cibatest.TransmitApprovePhone,
			set("request_context", `{"login_hint_type":"user_id"}`), "unknown_user_id"},
		{"transmit: user id typed as a phone", transmitInfo(), cibatest.TransmitApprove,
			set("request_context", `{"login_hint_type":"phone"}`), "invalid_request"},
		{"transmit: phone with spaces", transmitInfo(), "+46 70 174 06 11", nil, "invalid_request"},
		{"transmit: phone with letters", transmitInfo(), "+4670ABC0611", nil, "invalid_request"},
		{"transmit: email without domain", transmitInfo(), "johan@", nil, "invalid_request"},
		{"transmit: unknown hint type", transmitInfo(), cibatest.TransmitApprove, set("request_context", `{"login_hint_type":"ssn"}`), "invalid_request"},
		{"transmit: unknown channel", transmitInfo(), cibatest.TransmitApprove, set("request_context", `{"channel":"fax"}`), "invalid_request"},
		{"transmit: request_context not JSON", transmitInfo(), cibatest.TransmitApprove, set("request_context", "channel=sms"), "invalid_request"},
		{"transmit: request_context an array", transmitInfo(), cibatest.TransmitApprove, set("request_context", `["sms"]`), "invalid_request"},
		{"transmit: channel not a string", transmitInfo(), cibatest.TransmitApprove, set("request_context", `{"channel":1}`), "invalid_request"},
		{"transmit: custom_message too long", transmitInfo(), cibatest.TransmitApprove,
			set("request_context", `{"custom_message":"`+strings.Repeat("x", 257)+`"}`), "invalid_request"},
		{"transmit: missing login_hint", transmitInfo(), cibatest.TransmitApprove, del("login_hint"), "invalid_request"},
		{"transmit: scope without openid", transmitInfo(), cibatest.TransmitApprove, set("scope", "email"), "invalid_request"},

		{"generic: user id", genericInfo(), cibatest.GenericApprove, nil, ""},
		{"generic: unknown user id", genericInfo(), "79999990", nil, "unknown_user_id"},
		{"generic: hint with a space", genericInfo(), "7300 1018", nil, "invalid_request"},
		{"generic: missing login_hint", genericInfo(), cibatest.GenericApprove, del("login_hint"), "invalid_request"},
		{"generic: login_hint_token", genericInfo(), cibatest.GenericApprove, set("login_hint_token", "a.b.c"), "invalid_request"},
		{"generic: scope without openid", genericInfo(), cibatest.GenericApprove, set("scope", "profile"), "invalid_request"},
		{"generic: user_code is ignored", genericInfo(), cibatest.GenericApprove, set("user_code", "1234"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newPenv(t, tt.p, cibatest.Config{})
			form := tt.p.form(tt.user)
			if tt.mod != nil {
				tt.mod(form)
			}
			wantAuthorized(t, e.authorize(form), tt.code, form)
		})
	}
}

func TestProfileBindingMessage(t *testing.T) {
	const auth0Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-_.,:# "
	tests := []struct {
		p       profileInfo
		msg     string // "" = none
		ok      bool
		comment string
	}{
		{auth0Info(), "", false, "missing"},
		{auth0Info(), strings.Repeat("a", 64), true, "64 characters"},
		{auth0Info(), strings.Repeat("a", 65), false, "65 characters"},
		{auth0Info(), auth0Chars[:64], true, "letters and digits"},
		{auth0Info(), "Call #4711: ok, +-_.", true, "every allowed sign and a space"},
		{auth0Info(), "Hello!", false, "an exclamation mark"},
		{auth0Info(), "Kundtjänst", false, "a letter outside ASCII"},
		{auth0Info(), "a/b", false, "a slash"},
		{transmitInfo(), "", true, "none"},
		{transmitInfo(), "Välkommen åter, ärende #4711!", true, "printable text"},
		{transmitInfo(), strings.Repeat("ö", 64), true, "64 characters"},
		{transmitInfo(), strings.Repeat("a", 65), false, "65 characters"},
		{transmitInfo(), "line\nbreak", false, "a control character"},
		{genericInfo(), "", true, "none"},
		{genericInfo(), strings.Repeat("a", 64), true, "64 characters"},
		{genericInfo(), strings.Repeat("a", 65), false, "65 characters"},
		{genericInfo(), "tab\there", false, "a control character"},
	}
	for _, tt := range tests {
		verdict := "refused"
		if tt.ok {
			verdict = "accepted"
		}
		t.Run(tt.p.name+": "+tt.comment+" is "+verdict, func(t *testing.T) {
			e := newPenv(t, tt.p, cibatest.Config{})
			form := tt.p.form(tt.p.approve)
			form.Del("binding_message")
			if tt.msg != "" {
				form.Set("binding_message", tt.msg)
			}
			r := e.authorize(form)
			if tt.ok {
				if r.status != http.StatusOK {
					t.Fatalf("got %d %s, want 200", r.status, r.raw)
				}
				if got := e.newest().BindingMessage; got != tt.msg {
					t.Errorf("Request.BindingMessage = %q, want %q", got, tt.msg)
				}
				return
			}
			wantCleanError(t, r, http.StatusBadRequest, "invalid_binding_message", form)
		})
	}
	t.Run("idura: the error names the ciba profile's limit", func(t *testing.T) {
		m, _ := ciba.Idura.Method("se-bankid")
		e := newEnv(t, cibatest.Config{})
		form := seForm(cibatest.SEApprove)
		form.Set("binding_message", strings.Repeat("x", m.BindingMessage.MaxLen+1))
		wantError(t, e.authorize(form), http.StatusBadRequest, "invalid_request",
			"binding_message must be at most "+itoa(m.BindingMessage.MaxLen)+" characters")
	})
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestRequestedExpiry(t *testing.T) {
	tests := []struct {
		p     profileInfo
		value string // "" = not sent
		want  float64
	}{
		{auth0Info(), "", 300}, {auth0Info(), "1", 1}, {auth0Info(), "300", 300}, {auth0Info(), "120", 120},
		{auth0Info(), "0", 0}, {auth0Info(), "301", 0}, {auth0Info(), "-5", 0}, {auth0Info(), "1.5", 0}, {auth0Info(), "soon", 0},
		{genericInfo(), "", 300}, {genericInfo(), "600", 600}, {genericInfo(), "86400", 86400},
		{genericInfo(), "0", 0}, {genericInfo(), "86401", 0}, {genericInfo(), "x", 0},
		{transmitInfo(), "600", 300}, // not a Transmit parameter: ignored
	}
	for _, tt := range tests {
		t.Run(tt.p.name+" requested_expiry "+tt.value, func(t *testing.T) {
			e := newPenv(t, tt.p, cibatest.Config{})
			form := tt.p.form(tt.p.approve)
			if tt.value != "" {
				form.Set("requested_expiry", tt.value)
			}
			r := e.authorize(form)
			if tt.want == 0 {
				wantCleanError(t, r, http.StatusBadRequest, "invalid_request", form)
				return
			}
			if r.status != http.StatusOK || r.body["expires_in"] != tt.want {
				t.Fatalf("got %d %s, want expires_in %v", r.status, r.raw, tt.want)
			}
		})
	}
	t.Run("auth0 request expires at requested_expiry as access_denied", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := auth0Info()
			e := newPenv(t, p, cibatest.Config{})
			form := p.form(p.noAnswer)
			form.Set("requested_expiry", "10")
			id := e.start(form).str("auth_req_id")
			time.Sleep(10 * time.Second)
			wantError(t, e.token(id), http.StatusBadRequest, "access_denied", cibatest.DeniedAuth0)
		})
	})
	t.Run("Config.ExpiresIn is the default lifetime", func(t *testing.T) {
		e := newPenv(t, genericInfo(), cibatest.Config{ExpiresIn: 42 * time.Second})
		if r := e.start(genericInfo().form(cibatest.GenericApprove)); r.body["expires_in"] != 42.0 {
			t.Errorf("expires_in = %v, want 42", r.body["expires_in"])
		}
	})
}

func TestTransmitMinimumPollInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := transmitInfo()
		e := newPenv(t, p, cibatest.Config{Interval: time.Second}) // Transmit ignores Config.Interval
		ar := e.start(p.form(p.noAnswer))
		if _, ok := ar.body["interval"]; ok {
			t.Fatalf("bc-authorize %s has an interval; Transmit sends none", ar.raw)
		}
		id := ar.str("auth_req_id")
		for range 3 { // every 5 s is fine: polls at 0, 5 and 10 s
			wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", p.pending)
			time.Sleep(5 * time.Second)
		}
		wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", p.pending) // 15 s
		time.Sleep(4 * time.Second)
		r := e.token(id)
		wantError(t, r, http.StatusBadRequest, "slow_down", "polling too fast: wait at least 10 s between polls") // 4 s < 5 s
		if ra := r.header.Get("Retry-After"); ra != "" {
			t.Errorf("Transmit slow_down has Retry-After %q, want none", ra)
		}
		time.Sleep(10 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", p.pending)
		time.Sleep(9 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "slow_down", "") // 9 s < 10 s
	})
}

func TestAuth0SlowDownRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := auth0Info()
		e := newPenv(t, p, cibatest.Config{})
		id := e.start(p.form(p.noAnswer)).str("auth_req_id")
		r := e.token(id)
		wantError(t, r, http.StatusBadRequest, "authorization_pending", cibatest.PendingAuth0)
		if ra := r.header.Get("Retry-After"); ra != "" {
			t.Errorf("pending answer has Retry-After %q", ra)
		}
		for _, want := range []string{"10", "15", "20"} { // grows while the client keeps polling too fast
			time.Sleep(time.Second)
			r := e.token(id)
			wantError(t, r, http.StatusBadRequest, "slow_down", cibatest.SlowDownAuth0)
			if got := r.header.Get("Retry-After"); got != want {
				t.Errorf("Retry-After = %q, want %q", got, want)
			}
		}
		time.Sleep(20 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", cibatest.PendingAuth0)

		// The ciba client honours Retry-After.
		c, err := e.client(ciba.ClientSecretPost)
		if err != nil {
			t.Fatal(err)
		}
		ar, err := c.Authenticate(t.Context(), mustRequest(t, c, p.input(p.noAnswer)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Token(t.Context(), ar.AuthReqID); !errors.Is(err, ciba.ErrAuthorizationPending) {
			t.Fatalf("first poll: %v", err)
		}
		_, err = c.Token(t.Context(), ar.AuthReqID)
		var ce *ciba.Error
		if !errors.As(err, &ce) || ce.Code != "slow_down" || ce.RetryAfter != 10*time.Second {
			t.Errorf("second poll at once: %v (%+v), want slow_down with RetryAfter 10s", err, ce)
		}
	})
}

func mustRequest(t *testing.T, c *ciba.Client, in ciba.RequestInput) ciba.AuthRequest {
	t.Helper()
	req, err := c.Request(in)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestGenericSlowDownWithoutRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := genericInfo()
		e := newPenv(t, p, cibatest.Config{})
		id := e.start(p.form(p.noAnswer)).str("auth_req_id")
		e.token(id)
		time.Sleep(time.Second)
		r := e.token(id)
		wantError(t, r, http.StatusBadRequest, "slow_down", "polling too fast: wait at least 7 s between polls")
		if ra := r.header.Get("Retry-After"); ra != "" {
			t.Errorf("Retry-After = %q, want none", ra)
		}
	})
}

// TestProfileClientAuthMethods tries each client authentication method at
// each profile's bc-authorize.
func TestProfileClientAuthMethods(t *testing.T) {
	idura := profileInfo{name: cibatest.ProfileIdura, issuer: testIssuer, authorize: "/ciba/bc-authorize",
		methods: []string{"private_key_jwt", "client_secret_basic", "client_secret_post"}}
	for _, p := range append([]profileInfo{idura}, profileInfos()...) {
		for _, m := range []string{"private_key_jwt", "client_secret_basic", "client_secret_post"} {
			ok := slices.Contains(p.methods, m)
			verdict := "refused"
			if ok {
				verdict = "accepted"
			}
			t.Run(p.name+": "+m+" is "+verdict, func(t *testing.T) {
				e := newPenv(t, p, cibatest.Config{})
				// Register a client with both kinds of credential, so that only
				// the profile decides.
				if err := e.b.RegisterClient(cibatest.Client{ID: "both", Secret: clientSecret, JWKS: publicSet(t, e.key)}); err != nil {
					t.Fatal(err)
				}
				form := p.form(p.approve)
				if p.name == cibatest.ProfileIdura {
					form = seForm(cibatest.SEApprove)
				}
				req := func(form url.Values) *http.Request {
					r, _ := http.NewRequest(http.MethodPost, e.url(p.authorize), strings.NewReader(form.Encode()))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					return r
				}
				var r *http.Request
				switch m {
				case "private_key_jwt":
					c := assertionClaims("both")
					c["aud"] = p.issuer
					form.Set("client_assertion_type", ciba.ClientAssertionType)
					form.Set("client_assertion", signAssertion(t, e.key, jwa.RS256(), c))
					r = req(form)
				case "client_secret_basic":
					r = req(form)
					r.SetBasicAuth("both", clientSecret)
				default:
					r = req(withSecret(form, "both"))
				}
				got := e.do(r)
				if ok {
					if got.status != http.StatusOK {
						t.Fatalf("got %d %s, want 200", got.status, got.raw)
					}
					return
				}
				wantError(t, got, http.StatusUnauthorized, "invalid_client", "")
			})
		}
	}
	t.Run("transmit: a client without a secret cannot register", func(t *testing.T) {
		e := newPenv(t, transmitInfo(), cibatest.Config{})
		if err := e.b.RegisterClient(cibatest.Client{ID: "keys-only", JWKS: publicSet(t, e.key)}); err == nil {
			t.Error("RegisterClient with only a JWKS at transmit: got nil error")
		}
	})
	t.Run("auth0: assertion aud may be the token endpoint", func(t *testing.T) {
		p := auth0Info()
		e := newPenv(t, p, cibatest.Config{})
		c := assertionClaims(clientID)
		c["aud"] = e.url(p.token)
		form := p.form(p.approve)
		form.Set("client_assertion_type", ciba.ClientAssertionType)
		form.Set("client_assertion", signAssertion(t, e.key, jwa.RS256(), c))
		if r := e.post(p.authorize, form); r.status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", r.status, r.raw)
		}
	})
}

// TestTransmitHintsWithCibaClient names a Transmit user by phone and by
// e-mail, as the ciba client sends them (login_hint_type in
// request_context), and checks what the /sim view shows.
func TestTransmitHintsWithCibaClient(t *testing.T) {
	tests := []struct {
		name       string
		in         ciba.RequestInput
		hintType   string
		maskedHint string
		channel    string
	}{
		{"phone by SMS", ciba.RequestInput{Phone: cibatest.TransmitApprovePhone, Channel: "sms"}, cibatest.HintPhone, "+46 70 *** ** 11", "sms"},
		{"e-mail by e-mail", ciba.RequestInput{Email: cibatest.TransmitApproveEmail, Channel: "email"}, cibatest.HintEmail, "j***@example.com", "email"},
		{"user id, default channel", ciba.RequestInput{UserID: cibatest.TransmitApprove}, cibatest.HintUserID, "******13", "sms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newPenv(t, transmitInfo(), cibatest.Config{})
				c, err := e.client(ciba.ClientSecretBasic)
				if err != nil {
					t.Fatal(err)
				}
				ar, err := c.Authenticate(t.Context(), mustRequest(t, c, tt.in))
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				v, ok := e.b.RequestForAuthReqID(ar.AuthReqID)
				if !ok || v.HintType != tt.hintType || v.MaskedHint != tt.maskedHint || v.Channel != tt.channel || v.Name != "Johan Andersson" {
					t.Errorf("RequestForAuthReqID = %+v, %t; want hint %s %q, channel %s", v, ok, tt.hintType, tt.maskedHint, tt.channel)
				}
				tok, err := c.Poll(t.Context(), ar, nil)
				if err != nil {
					t.Fatalf("Poll: %v", err)
				}
				if tok.IDToken.Subject != cibatest.TransmitApprove {
					t.Errorf("sub = %q, want the user id", tok.IDToken.Subject)
				}
			})
		})
	}
}

func TestRequestView(t *testing.T) {
	tests := []struct {
		name string
		e    func(t *testing.T) (*penv, url.Values)
		want cibatest.Request // the fields compared below
	}{
		{"idura Swedish", func(t *testing.T) (*penv, url.Values) {
			p := profileInfo{name: cibatest.ProfileIdura, issuer: testIssuer, authorize: "/ciba/bc-authorize", methods: []string{"private_key_jwt"}}
			return newPenv(t, p, cibatest.Config{}), seForm(cibatest.SEApprove)
		}, cibatest.Request{Profile: "idura", Country: "SE", MaskedID: "********-**87", HintType: "ssn", MaskedHint: "********-**87",
			Name: "Astrid Lindqvist", BindingMessage: "Samtal med kundtjänst", CallInitiator: "user"}},
		{"auth0", func(t *testing.T) (*penv, url.Values) {
			p := auth0Info()
			return newPenv(t, p, cibatest.Config{}), p.form(p.manual)
		}, cibatest.Request{Profile: "auth0", HintType: "user_id", MaskedHint: "auth0|******51", Name: "Chloe Martin", BindingMessage: "Call 4711: confirm"}},
		{"transmit by phone with a request_context", func(t *testing.T) (*penv, url.Values) {
			p := transmitInfo()
			f := p.form(cibatest.TransmitManualPhone)
			f.Set("request_context", `{"channel":"link","custom_message":"Your bank is on the line"}`)
			f.Set("binding_message", "Ref 1234")
			return newPenv(t, p, cibatest.Config{}), f
		}, cibatest.Request{Profile: "transmit", HintType: "phone", MaskedHint: "+46 70 *** ** 55", Name: "Nils Forsberg",
			BindingMessage: "Ref 1234", Channel: "link", CustomMessage: "Your bank is on the line"}},
		{"transmit by e-mail", func(t *testing.T) (*penv, url.Values) {
			p := transmitInfo()
			f := p.form(cibatest.TransmitManualEmail)
			f.Set("request_context", `{"channel":"email","login_hint_type":"email"}`)
			return newPenv(t, p, cibatest.Config{}), f
		}, cibatest.Request{Profile: "transmit", HintType: "email", MaskedHint: "n***@example.com", Name: "Nils Forsberg", Channel: "email"}},
		{"generic", func(t *testing.T) (*penv, url.Values) {
			p := genericInfo()
			return newPenv(t, p, cibatest.Config{}), p.form(p.manual)
		}, cibatest.Request{Profile: "generic", HintType: "user_id", MaskedHint: "******50", Name: "Aino Laine"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, form := tt.e(t)
			var ar reply
			if e.p.name == cibatest.ProfileIdura {
				ar = e.env.start(form)
			} else {
				ar = e.start(form)
			}
			id := ar.str("auth_req_id")
			got, ok := e.b.RequestForAuthReqID(id)
			if !ok {
				t.Fatal("RequestForAuthReqID: not found")
			}
			if list := e.b.Requests(); len(list) != 1 || list[0].ID != got.ID {
				t.Errorf("RequestForAuthReqID gives %s, Requests %v", got.ID, list)
			}
			w := tt.want
			if got.Profile != w.Profile || got.Country != w.Country || got.MaskedID != w.MaskedID || got.HintType != w.HintType ||
				got.MaskedHint != w.MaskedHint || got.Name != w.Name || got.BindingMessage != w.BindingMessage ||
				got.CallInitiator != w.CallInitiator || got.Channel != w.Channel || got.CustomMessage != w.CustomMessage ||
				got.State != cibatest.StatePending {
				t.Errorf("view = %+v\nwant   %+v", got, w)
			}
			if _, ok := e.b.RequestForAuthReqID("unknown"); ok {
				t.Error("RequestForAuthReqID(unknown) found a request")
			}
			// The /sim list leaks neither the hint nor the auth_req_id.
			list := e.get("/sim/requests").raw
			for _, secret := range []string{id, cibatest.TransmitManualPhone, cibatest.TransmitManualEmail, cibatest.SEApprove,
				cibatest.Auth0Manual, cibatest.GenericManual} {
				if strings.Contains(list, secret) {
					t.Errorf("/sim/requests leaks %q: %s", secret, list)
				}
			}
		})
	}
}

// TestSimAPIEveryProfile moves manual requests of every profile through
// the /sim HTTP API.
func TestSimAPIEveryProfile(t *testing.T) {
	for _, p := range profileInfos() {
		for _, action := range []string{"approve", "decline"} {
			t.Run(p.name+" "+action, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					e := newPenv(t, p, cibatest.Config{})
					id := e.start(p.form(p.manual)).str("auth_req_id")
					sim := e.newest().ID
					for _, a := range []string{"open", "acknowledge"} { // change nothing outside Sweden
						r := e.post("/sim/requests/"+sim+"/"+a, url.Values{})
						if r.status != http.StatusOK || r.str("state") != cibatest.StatePending || r.str("pending") != p.pending {
							t.Errorf("%s = %d %s, want 200 pending %q", a, r.status, r.raw, p.pending)
						}
					}
					r := e.post("/sim/requests/"+sim+"/"+action, url.Values{})
					want := map[string]string{"approve": cibatest.StateApproved, "decline": cibatest.StateDeclined}[action]
					if r.status != http.StatusOK || r.str("state") != want {
						t.Fatalf("%s = %d %s, want 200 %s", action, r.status, r.raw, want)
					}
					time.Sleep(5 * time.Second)
					tok := e.token(id)
					if action == "approve" {
						if tok.status != http.StatusOK {
							t.Errorf("token = %d %s, want 200", tok.status, tok.raw)
						}
						return
					}
					wantError(t, tok, http.StatusBadRequest, "access_denied", p.denied)
				})
			})
		}
	}
}

// TestSupersede starts a second request for a user with a pending one: the
// first is cancelled, at the same client only.
func TestSupersede(t *testing.T) {
	idura := profileInfo{name: cibatest.ProfileIdura, issuer: testIssuer, authorize: "/ciba/bc-authorize", token: "/oauth2/token",
		methods: []string{"private_key_jwt"}, manual: cibatest.SEManual}
	for _, p := range append([]profileInfo{idura}, profileInfos()...) {
		t.Run(p.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newPenv(t, p, cibatest.Config{})
				form := p.form(p.manual)
				if p.name == cibatest.ProfileIdura {
					form = seForm(p.manual)
				}
				if err := e.b.RegisterClient(cibatest.Client{ID: "other-client", Secret: clientSecret}); err != nil {
					t.Fatal(err)
				}
				other := e.post(p.authorize, withSecret(form, "other-client")).str("auth_req_id")
				first := e.start(form).str("auth_req_id")
				firstView, _ := e.b.RequestForAuthReqID(first)
				time.Sleep(3 * time.Second)
				second := e.start(form).str("auth_req_id")

				if v, _ := e.b.RequestForAuthReqID(first); v.State != cibatest.StateCancelled {
					t.Errorf("first request state = %q, want cancelled", v.State)
				}
				if v, _ := e.b.RequestForAuthReqID(second); v.State != cibatest.StatePending {
					t.Errorf("second request state = %q, want pending", v.State)
				}
				if v, _ := e.b.RequestForAuthReqID(other); v.State != cibatest.StatePending {
					t.Errorf("other client's request state = %q, want pending (not superseded)", v.State)
				}
				wantError(t, e.token(first), http.StatusBadRequest, "access_denied", cibatest.DeniedCancelled)
				if r := e.token(second); r.str("error") != "authorization_pending" {
					t.Errorf("second request token = %d %s, want authorization_pending", r.status, r.raw)
				}
				if err := e.b.Approve(firstView.ID, ""); !errors.Is(err, cibatest.ErrNotPending) {
					t.Errorf("Approve(cancelled) = %v, want ErrNotPending", err)
				}
				// A finished request is not cancelled by the next one.
				if err := e.b.Decline(e.newest().ID); err != nil {
					t.Fatal(err)
				}
				e.start(form)
				if v, _ := e.b.RequestForAuthReqID(second); v.State != cibatest.StateDeclined {
					t.Errorf("declined request became %q after a newer request", v.State)
				}
			})
		})
	}
}
