package cibatest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/ciba/cibatest"
)

func TestDiscovery(t *testing.T) {
	e := newEnv(t, cibatest.Config{})
	r := e.get("/.well-known/openid-configuration")
	if r.status != http.StatusOK {
		t.Fatalf("discovery status = %d, want 200", r.status)
	}
	wantStr := map[string]string{
		"issuer":                              testIssuer,
		"token_endpoint":                      testIssuer + "/oauth2/token",
		"jwks_uri":                            testIssuer + "/.well-known/jwks",
		"backchannel_authentication_endpoint": testIssuer + "/ciba/bc-authorize",
	}
	for k, want := range wantStr {
		if got := r.str(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	wantList := map[string][]string{
		"backchannel_token_delivery_modes_supported":       {"poll"},
		"grant_types_supported":                            {ciba.GrantType},
		"token_endpoint_auth_methods_supported":            {"private_key_jwt", "client_secret_basic", "client_secret_post"},
		"token_endpoint_auth_signing_alg_values_supported": {"RS256", "PS256", "ES256"},
		"id_token_signing_alg_values_supported":            {"RS256"},
		"acr_values_supported":                             {cibatest.ACRSwedishBankID, cibatest.ACRNorwegianBankID},
	}
	for k, want := range wantList {
		var got []string
		for _, v := range r.body[k].([]any) {
			got = append(got, v.(string))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
}

func TestIssuerWithPathAndSlash(t *testing.T) {
	b, err := cibatest.New(cibatest.Config{Issuer: "http://127.0.0.1:8080/broker/", SigningKey: brokerKey()})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.HTTPClient().Get("http://127.0.0.1:8080/broker/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != "http://127.0.0.1:8080/broker/" || doc["token_endpoint"] != "http://127.0.0.1:8080/broker/oauth2/token" {
		t.Errorf("issuer, token_endpoint = %v, %v; want the issuer verbatim and endpoints under /broker", doc["issuer"], doc["token_endpoint"])
	}
	if _, err := cibatest.New(cibatest.Config{Issuer: "sim.example"}); err == nil {
		t.Error("New with a relative issuer: got nil error")
	}
}

func TestJWKSAndRotation(t *testing.T) {
	e := newEnv(t, cibatest.Config{})
	jwks := func() jwk.Set {
		r := e.get("/.well-known/jwks")
		set, err := jwk.Parse([]byte(r.raw))
		if err != nil {
			t.Fatalf("parse JWKS: %v", err)
		}
		return set
	}
	first := jwks()
	if first.Len() != 1 {
		t.Fatalf("JWKS has %d keys, want 1", first.Len())
	}
	k0, _ := first.Key(0)
	if isPriv, _ := jwk.IsPrivateKey(k0); isPriv {
		t.Fatal("JWKS publishes a private key")
	}
	oldKid, _ := k0.KeyID()
	if oldKid == "" {
		t.Fatal("JWKS key has no kid")
	}
	e.b.RotateSigningKey()
	second := jwks()
	if second.Len() != 2 {
		t.Fatalf("after rotation JWKS has %d keys, want 2", second.Len())
	}
	k1, _ := second.Key(0)
	newKid, _ := k1.KeyID()
	k2, _ := second.Key(1)
	if k2kid, _ := k2.KeyID(); newKid == oldKid || k2kid != oldKid {
		t.Fatalf("after rotation kids = %q, %q; want a new one first, then %q", newKid, k2kid, oldKid)
	}

	// Tokens are now signed with the new key.
	synctest.Test(t, func(t *testing.T) {
		e.t = t
		ar := e.start(seForm(cibatest.SEApprove))
		time.Sleep(6 * time.Second) // fake time: the script approves at 6 s
		tok := e.token(ar.str("auth_req_id"))
		if tok.status != http.StatusOK {
			t.Fatalf("token = %d %s, want 200", tok.status, tok.raw)
		}
		hdr := decodeSegment(t, tok.str("id_token"), 0)
		if hdr["kid"] != newKid || hdr["alg"] != "RS256" {
			t.Errorf("ID token header = %v, want alg RS256 and kid %q", hdr, newKid)
		}
	})
}

func decodeSegment(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("decode segment: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode segment: %v", err)
	}
	return m
}

func TestClientAuthentication(t *testing.T) {
	ecKey := ecJWK(t)
	other := privateJWK(t, otherRSA())
	tests := []struct {
		name string
		form func(e *env) url.Values // the client authentication part
		user func(r *http.Request)   // extra request changes (Basic)
		ok   bool
	}{
		{name: "RS256 assertion is accepted", ok: true, form: func(e *env) url.Values {
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), assertionClaims(clientID)))
		}},
		{name: "PS256 assertion is accepted", ok: true, form: func(e *env) url.Values {
			return pkjwt(signAssertion(t, e.key, jwa.PS256(), assertionClaims(clientID)))
		}},
		{name: "ES256 assertion from an EC client is accepted", ok: true, form: func(e *env) url.Values {
			c := assertionClaims("ec-client")
			return pkjwt(signAssertion(t, ecKey, jwa.ES256(), c))
		}},
		{name: "aud with trailing slash is accepted", ok: true, form: func(e *env) url.Values {
			c := assertionClaims(clientID)
			c["aud"] = testIssuer + "/"
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), c))
		}},
		{name: "aud as token endpoint in an array is accepted", ok: true, form: func(e *env) url.Values {
			c := assertionClaims(clientID)
			c["aud"] = []string{"https://elsewhere.example", testIssuer + "/oauth2/token"}
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), c))
		}},
		{name: "matching client_id is accepted", ok: true, form: func(e *env) url.Values {
			f := pkjwt(signAssertion(t, e.key, jwa.RS256(), assertionClaims(clientID)))
			f.Set("client_id", clientID)
			return f
		}},
		{name: "bad signature is refused", form: func(e *env) url.Values {
			// Signed by another key but claiming the registered kid.
			k, _ := other.Clone()
			kid, _ := e.key.KeyID()
			k.Set(jwk.KeyIDKey, kid)
			return pkjwt(signAssertion(t, k, jwa.RS256(), assertionClaims(clientID)))
		}},
		{name: "unknown kid is refused", form: func(e *env) url.Values {
			return pkjwt(signAssertion(t, other, jwa.RS256(), assertionClaims(clientID)))
		}},
		{name: "tampered payload is refused", form: func(e *env) url.Values {
			a := signAssertion(t, e.key, jwa.RS256(), assertionClaims(clientID))
			parts := strings.Split(a, ".")
			c := assertionClaims(clientID)
			c["exp"] = time.Now().Add(4 * time.Minute).Unix()
			p, _ := json.Marshal(c)
			parts[1] = base64.RawURLEncoding.EncodeToString(p)
			return pkjwt(strings.Join(parts, "."))
		}},
		{name: "wrong aud is refused", form: func(e *env) url.Values {
			c := assertionClaims(clientID)
			c["aud"] = "https://other.example"
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), c))
		}},
		{name: "expired assertion is refused", form: func(e *env) url.Values {
			c := assertionClaims(clientID)
			c["iat"] = time.Now().Add(-10 * time.Minute).Unix()
			c["exp"] = time.Now().Add(-5 * time.Minute).Unix()
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), c))
		}},
		{name: "assertion living longer than 5 minutes is refused", form: func(e *env) url.Values {
			c := assertionClaims(clientID)
			c["exp"] = time.Now().Add(time.Hour).Unix()
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), c))
		}},
		{name: "missing exp is refused", form: func(e *env) url.Values {
			c := assertionClaims(clientID)
			delete(c, "exp")
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), c))
		}},
		{name: "missing jti is refused", form: func(e *env) url.Values {
			c := assertionClaims(clientID)
			delete(c, "jti")
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), c))
		}},
		{name: "sub different from iss is refused", form: func(e *env) url.Values {
			c := assertionClaims(clientID)
			c["sub"] = "someone-else"
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), c))
		}},
		{name: "unknown client is refused", form: func(e *env) url.Values {
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), assertionClaims("nobody")))
		}},
		{name: "client_id different from iss is refused", form: func(e *env) url.Values {
			f := pkjwt(signAssertion(t, e.key, jwa.RS256(), assertionClaims(clientID)))
			f.Set("client_id", "secret-client")
			return f
		}},
		{name: "HS256 is refused", form: func(e *env) url.Values {
			k, _ := jwk.Import([]byte("0123456789abcdef0123456789abcdef"))
			return pkjwt(signAssertion(t, k, jwa.HS256(), assertionClaims(clientID)))
		}},
		{name: "wrong client_assertion_type is refused", form: func(e *env) url.Values {
			f := pkjwt(signAssertion(t, e.key, jwa.RS256(), assertionClaims(clientID)))
			f.Set("client_assertion_type", "urn:wrong")
			return f
		}},
		{name: "garbage assertion is refused", form: func(e *env) url.Values {
			return pkjwt("not.a.jwt")
		}},
		{name: "no client authentication is refused", form: func(e *env) url.Values { return url.Values{} }},
		{name: "client_secret_post is accepted", ok: true, form: func(e *env) url.Values {
			return url.Values{"client_id": {"secret-client"}, "client_secret": {"s3cret"}}
		}},
		{name: "wrong client_secret_post is refused", form: func(e *env) url.Values {
			return url.Values{"client_id": {"secret-client"}, "client_secret": {"nope"}}
		}},
		{name: "client_secret_basic is accepted", ok: true, form: func(e *env) url.Values { return url.Values{} },
			user: func(r *http.Request) { r.SetBasicAuth("secret-client", "s3cret") }},
		{name: "wrong client_secret_basic is refused", form: func(e *env) url.Values { return url.Values{} },
			user: func(r *http.Request) { r.SetBasicAuth("secret-client", "wrong") }},
		{name: "client_id alone is refused", form: func(e *env) url.Values {
			return url.Values{"client_id": {clientID}}
		}},
		{name: "two methods at once are refused", form: func(e *env) url.Values {
			return pkjwt(signAssertion(t, e.key, jwa.RS256(), assertionClaims(clientID)))
		}, user: func(r *http.Request) { r.SetBasicAuth("secret-client", "s3cret") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cibatest.Config{})
			if err := e.b.RegisterClient(cibatest.Client{ID: "ec-client", JWKS: publicSet(t, ecKey)}); err != nil {
				t.Fatal(err)
			}
			if err := e.b.RegisterClient(cibatest.Client{ID: "secret-client", Secret: "s3cret"}); err != nil {
				t.Fatal(err)
			}
			form := tt.form(e)
			for k, v := range seForm(cibatest.SEApprove) {
				form[k] = v
			}
			req, _ := http.NewRequest(http.MethodPost, testIssuer+"/ciba/bc-authorize", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.user != nil {
				tt.user(req)
			}
			r := e.do(req)
			if tt.ok {
				if r.status != http.StatusOK {
					t.Fatalf("got %d %s, want 200", r.status, r.raw)
				}
				return
			}
			wantError(t, r, http.StatusUnauthorized, "invalid_client", "")
		})
	}
}

func pkjwt(assertion string) url.Values {
	return url.Values{"client_assertion_type": {ciba.ClientAssertionType}, "client_assertion": {assertion}}
}

func TestAssertionReplay(t *testing.T) {
	e := newEnv(t, cibatest.Config{})
	a := e.assertion()
	form := seForm(cibatest.SEApprove)
	form.Set("client_assertion_type", ciba.ClientAssertionType)
	form.Set("client_assertion", a)
	if r := e.postForm("/ciba/bc-authorize", form); r.status != http.StatusOK {
		t.Fatalf("first use = %d %s, want 200", r.status, r.raw)
	}
	// The same assertion again, on the other endpoint too.
	wantError(t, e.postForm("/ciba/bc-authorize", form), http.StatusUnauthorized, "invalid_client", "client_assertion jti was already used")
	wantError(t, e.postForm("/oauth2/token", url.Values{
		"grant_type": {ciba.GrantType}, "auth_req_id": {"x"},
		"client_assertion_type": {ciba.ClientAssertionType}, "client_assertion": {a},
	}), http.StatusUnauthorized, "invalid_client", "")
}

func TestJTIForgottenAfterExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{})
		c := assertionClaims(clientID)
		c["jti"] = "fixed"
		form := seForm(cibatest.SEApprove)
		form.Set("client_assertion_type", ciba.ClientAssertionType)
		form.Set("client_assertion", signAssertion(t, e.key, jwa.RS256(), c))
		if r := e.postForm("/ciba/bc-authorize", form); r.status != http.StatusOK {
			t.Fatalf("first = %d %s", r.status, r.raw)
		}
		time.Sleep(5 * time.Minute)
		// A new assertion reusing the jti after the old one expired.
		c = assertionClaims(clientID)
		c["jti"] = "fixed"
		form.Set("client_assertion", signAssertion(t, e.key, jwa.RS256(), c))
		if r := e.postForm("/ciba/bc-authorize", form); r.status != http.StatusOK {
			t.Fatalf("jti reused after expiry = %d %s, want 200", r.status, r.raw)
		}
	})
}

func TestClientJWKSURL(t *testing.T) {
	first := privateJWK(t, clientRSA())
	second := privateJWK(t, otherRSA())
	var (
		fetches atomic.Int32
		served  atomic.Pointer[[]byte]
	)
	set1 := publicSet(t, first)
	served.Store(&set1)
	jwksSite := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write(*served.Load())
	})
	e := newEnv(t, cibatest.Config{})
	e.b.SetFetchClient(&http.Client{Transport: handlerTransport{jwksSite}})
	if err := e.b.RegisterClient(cibatest.Client{ID: "url-client", JWKSURL: "https://rp.example/jwks.json"}); err != nil {
		t.Fatal(err)
	}
	call := func(key jwk.Key) reply {
		form := seForm(cibatest.SEApprove)
		form.Set("client_assertion_type", ciba.ClientAssertionType)
		form.Set("client_assertion", signAssertion(t, key, jwa.RS256(), assertionClaims("url-client")))
		return e.postForm("/ciba/bc-authorize", form)
	}
	if r := call(first); r.status != http.StatusOK {
		t.Fatalf("with the published key = %d %s, want 200", r.status, r.raw)
	}
	if r := call(first); r.status != http.StatusOK || fetches.Load() != 1 {
		t.Fatalf("again = %d, fetches = %d; want 200 from the cache (1 fetch)", r.status, fetches.Load())
	}
	// Unknown kid before the RP publishes it: refused after one refetch.
	wantError(t, call(second), http.StatusUnauthorized, "invalid_client", "")
	// The RP rotates: new kid → refetch → accepted.
	set2 := publicSet(t, first, second)
	served.Store(&set2)
	if r := call(second); r.status != http.StatusOK {
		t.Fatalf("after RP rotation = %d %s, want 200", r.status, r.raw)
	}
	if got := fetches.Load(); got != 3 {
		t.Errorf("fetches = %d, want 3", got)
	}
}

func TestAuthorizeParameters(t *testing.T) {
	// An unregistered but well-formed Swedish number.
	const unknownSE = "194001019999"
	// The Swedish binding message limit is the ciba package's Idura rule.
	m, _ := ciba.Idura.Method("se-bankid")
	maxSE := m.BindingMessage.MaxLen
	tests := []struct {
		name string
		base func() url.Values
		mod  func(url.Values)
		code string // "" = success
	}{
		{"valid Swedish request", se, nil, ""},
		{"valid Swedish request from an agent (RP)", se, set("authorization_details", `[{"type":"phoneAuth","callInitiator":"RP"}]`), ""},
		{"valid Norwegian request", no, nil, ""},
		{"scope without openid", se, set("scope", "profile"), "invalid_request"},
		{"missing acr_values", se, del("acr_values"), "invalid_request"},
		{"unknown acr_values", se, set("acr_values", "urn:grn:authn:dk:mitid:low"), "invalid_request"},
		{"missing login_hint", se, del("login_hint"), "invalid_request"},
		{"login_hint without sub:ssn:", se, set("login_hint", cibatest.SEApprove), "invalid_request"},
		{"login_hint with a dash", se, set("login_hint", "sub:ssn:19850312-2387"), "invalid_request"},
		{"Swedish 10-digit number", se, set("login_hint", "sub:ssn:"+cibatest.SEApprove[2:]), "invalid_request"},
		{"Norwegian number with Swedish acr", se, set("login_hint", "sub:ssn:"+cibatest.NOApprove), "invalid_request"},
		{"Swedish number with Norwegian acr", no, set("login_hint", "sub:ssn:"+cibatest.SEApprove), "invalid_request"},
		{"Swedish without binding_message", se, del("binding_message"), "invalid_request"},
		{"Swedish binding_message at the ciba profile's limit", se, set("binding_message", strings.Repeat("x", maxSE)), ""},
		{"Swedish binding_message over the ciba profile's limit", se, set("binding_message", strings.Repeat("x", maxSE+1)), "invalid_request"},
		{"Swedish without authorization_details", se, del("authorization_details"), "invalid_request"},
		{"Swedish with legacy top-level callInitiator", se, func(f url.Values) { f.Del("authorization_details"); f.Set("callInitiator", "RP") }, "invalid_request"},
		{"Swedish authorization_details not JSON", se, set("authorization_details", "phoneAuth"), "invalid_request"},
		{"Swedish authorization_details of the wrong type", se, set("authorization_details", `[{"type":"customerServiceCall.v1"}]`), "invalid_request"},
		{"Swedish callInitiator neither user nor RP", se, set("authorization_details", `[{"type":"phoneAuth","callInitiator":"agent"}]`), "invalid_request"},
		{"Swedish callInitiator missing", se, set("authorization_details", `[{"type":"phoneAuth"}]`), "invalid_request"},
		{"Norwegian with binding_message", no, set("binding_message", "Hei"), "invalid_request"},
		{"Norwegian without authorization_details", no, del("authorization_details"), "invalid_request"},
		{"Norwegian with phoneAuth details", no, set("authorization_details", `[{"type":"phoneAuth","callInitiator":"user"}]`), "invalid_request"},
		{"Norwegian with two details", no, set("authorization_details", `[{"type":"customerServiceCall.v1"},{"type":"customerServiceCall.v1"}]`), "invalid_request"},
		{"repeated login_hint", se, func(f url.Values) { f.Add("login_hint", "sub:ssn:"+cibatest.SEDecline) }, "invalid_request"},
		{"unregistered Swedish number", se, set("login_hint", "sub:ssn:"+unknownSE), "unknown_user_id"},
		{"unregistered Norwegian number", no, set("login_hint", "sub:ssn:01010012345"), "unknown_user_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cibatest.Config{})
			form := tt.base()
			if tt.mod != nil {
				tt.mod(form)
			}
			wantAuthorized(t, e.authorize(form), tt.code, form)
		})
	}
}

func se() url.Values { return seForm(cibatest.SEApprove) }
func no() url.Values { return noForm(cibatest.NOApprove) }

func set(k, v string) func(url.Values) { return func(f url.Values) { f.Set(k, v) } }
func del(k string) func(url.Values)    { return func(f url.Values) { f.Del(k) } }

func TestAuthorizeResponse(t *testing.T) {
	e := newEnv(t, cibatest.Config{})
	r := e.start(seForm(cibatest.SEApprove))
	id := r.str("auth_req_id")
	if len(id) < 22 || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_") != "" {
		t.Errorf("auth_req_id %q: want ≥128 bits in A-Za-z0-9.-_", id)
	}
	if r.body["expires_in"] != 120.0 || r.body["interval"] != 2.0 {
		t.Errorf("SE expires_in, interval = %v, %v; want 120, 2", r.body["expires_in"], r.body["interval"])
	}
	if _, ok := r.body["bindingMessage"]; ok {
		t.Error("SE response has bindingMessage")
	}
	if again := e.start(seForm(cibatest.SEApprove)); again.str("auth_req_id") == id {
		t.Error("second request for the same number reused the auth_req_id")
	}
	if n := len(e.b.Requests()); n != 2 {
		t.Errorf("Requests() has %d entries, want 2 (a pending request does not block a new one)", n)
	}
	view := e.newest()
	if view.MaskedID != "********-**87" || view.Country != "SE" || view.Name != "Astrid Lindqvist" ||
		view.BindingMessage != "Samtal med kundtjänst" || view.CallInitiator != "user" || view.ID == id {
		t.Errorf("newest request = %+v", view)
	}

	e2 := newEnv(t, cibatest.Config{Interval: -1, ExpiresInSE: 30 * time.Second})
	r2 := e2.start(seForm(cibatest.SEApprove))
	if _, ok := r2.body["interval"]; ok || r2.body["expires_in"] != 30.0 {
		t.Errorf("with Interval -1: body %s, want no interval and expires_in 30", r2.raw)
	}
}

func TestSwedishPendingOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{})
		start := time.Now()
		id := e.start(seForm(cibatest.SEApprove)).str("auth_req_id")
		for _, want := range []string{
			cibatest.PendingFirstInteraction,
			cibatest.PendingAcknowledgement,
			cibatest.PendingIdentification,
		} {
			wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", want)
			if got := e.newest().Pending; got != want {
				t.Errorf("Requests()[0].Pending = %q, want %q", got, want)
			}
			time.Sleep(2 * time.Second)
		}
		tok := e.token(id)
		if tok.status != http.StatusOK {
			t.Fatalf("token at 6 s = %d %s, want 200", tok.status, tok.raw)
		}
		if tok.str("token_type") != "Bearer" || tok.str("expires_in") != "120" || tok.str("scope") != "openid" || tok.str("access_token") == "" {
			t.Errorf("token response = %s", tok.raw)
		}
		claims := verifyIDToken(t, e, tok.str("id_token"))
		want := map[string]any{
			"iss": testIssuer, "acr": cibatest.ACRSwedishBankID, "identityscheme": "sebankid",
			"authenticationtype": cibatest.ACRSwedishBankID, "country": "SE", "ssn": cibatest.SEApprove,
			"name": "Astrid Lindqvist", "given_name": "Astrid", "family_name": "Lindqvist", "birthdate": "1985-03-12",
			"auth_time": float64(start.Add(6 * time.Second).Unix()),
		}
		for k, v := range want {
			if claims[k] != v {
				t.Errorf("claim %s = %v, want %v", k, claims[k], v)
			}
		}
		if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != clientID {
			t.Errorf("aud = %v, want [%s]", claims["aud"], clientID)
		}
		if sub, _ := claims["sub"].(string); len(sub) != 38 || sub[0] != '{' {
			t.Errorf("sub = %q, want a braced GUID", sub)
		}
		if _, ok := claims["socialno"]; ok {
			t.Error("SE token has socialno")
		}
		if got := e.newest().State; got != cibatest.StateApproved {
			t.Errorf("state = %q, want approved", got)
		}
	})
}

// verifyIDToken checks the ID token with jwx against the broker's published
// JWKS and returns its claims.
func verifyIDToken(t *testing.T, e *env, idToken string) map[string]any {
	t.Helper()
	set, err := jwk.Parse([]byte(e.get("/.well-known/jwks").raw))
	if err != nil {
		t.Fatalf("parse JWKS: %v", err)
	}
	if _, err := jwt.Parse([]byte(idToken), jwt.WithKeySet(set), jwt.WithIssuer(testIssuer), jwt.WithAudience(clientID)); err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	c := decodeSegment(t, idToken, 1)
	iat, exp := c["iat"].(float64), c["exp"].(float64)
	if exp-iat != 300 || c["nbf"] != iat {
		t.Errorf("iat, nbf, exp = %v, %v, %v; want nbf = iat and exp 5 min later", iat, c["nbf"], exp)
	}
	return c
}

func TestNorwegianApproval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{})
		form := noForm(cibatest.NOApprove)
		form.Set("scope", "openid ssn") // socialno is released only with the ssn scope
		ar := e.start(form)
		pair := ar.str("bindingMessage")
		words := strings.Fields(pair)
		capitalised := func(w string) bool { r, _ := utf8.DecodeRuneInString(w); return unicode.IsUpper(r) }
		if len(words) != 2 || !capitalised(words[0]) || !capitalised(words[1]) {
			t.Errorf("bindingMessage %q, want two capitalised words", pair)
		}
		if ar.body["expires_in"] != 900.0 {
			t.Errorf("expires_in = %v, want 900", ar.body["expires_in"])
		}
		view := e.newest()
		if view.BindingMessage != pair || len(view.WordPairChoices) != 3 || !slices.Contains(view.WordPairChoices, pair) {
			t.Errorf("request %+v: want the pair among 3 choices", view)
		}
		if c := slices.Compact(slices.Sorted(slices.Values(view.WordPairChoices))); len(c) != 3 {
			t.Errorf("choices %v are not distinct", view.WordPairChoices)
		}
		if view.MaskedID != "******-***15" {
			t.Errorf("MaskedID = %q", view.MaskedID)
		}
		id := ar.str("auth_req_id")
		wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", cibatest.PendingNorwegian)
		time.Sleep(4 * time.Second)
		tok := e.token(id)
		if tok.status != http.StatusOK {
			t.Fatalf("token at 4 s = %d %s", tok.status, tok.raw)
		}
		c := verifyIDToken(t, e, tok.str("id_token"))
		if c["socialno"] != cibatest.NOApprove || c["identityscheme"] != "nobankid-oidc" || c["country"] != "NO" || c["ssn"] != nil {
			t.Errorf("NO claims = %v", c)
		}

		// Without the ssn scope the token carries no socialno, as at Idura.
		ar = e.start(noForm(cibatest.NOApprove))
		time.Sleep(4 * time.Second)
		tok = e.token(ar.str("auth_req_id"))
		if tok.status != http.StatusOK {
			t.Fatalf("token without ssn scope = %d %s", tok.status, tok.raw)
		}
		if c := verifyIDToken(t, e, tok.str("id_token")); c["socialno"] != nil || c["name"] != "Kari Nordmann" {
			t.Errorf("NO claims without the ssn scope = %v, want a name and no socialno", c)
		}
	})
}

func TestDecline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{})
		se := e.start(seForm(cibatest.SEDecline)).str("auth_req_id")
		no := e.start(noForm(cibatest.NODecline)).str("auth_req_id")
		wantError(t, e.token(se), http.StatusBadRequest, "authorization_pending", cibatest.PendingFirstInteraction)
		wantError(t, e.token(no), http.StatusBadRequest, "authorization_pending", cibatest.PendingNorwegian)
		time.Sleep(2 * time.Second)
		wantError(t, e.token(se), http.StatusBadRequest, "authorization_pending", cibatest.PendingAcknowledgement)
		time.Sleep(2 * time.Second)
		wantError(t, e.token(se), http.StatusBadRequest, "access_denied", "user declined")
		wantError(t, e.token(no), http.StatusBadRequest, "access_denied", "user declined")
		for _, r := range e.b.Requests() {
			if r.State != cibatest.StateDeclined {
				t.Errorf("%s request state = %q, want declined", r.Country, r.State)
			}
		}
	})
}

func TestExpiry(t *testing.T) {
	for _, silent := range []bool{false, true} {
		name := "expired_token"
		if silent {
			name = "silent expiry keeps answering pending"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, cibatest.Config{SilentExpiry: silent})
				slow := e.start(seForm(cibatest.SEApproveSlow)).str("auth_req_id")
				id := e.start(seForm(cibatest.SENoAnswer)).str("auth_req_id")
				time.Sleep(119 * time.Second)
				wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", cibatest.PendingFirstInteraction)
				time.Sleep(2 * time.Second)
				if silent {
					wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", cibatest.PendingFirstInteraction)
				} else {
					wantError(t, e.token(id), http.StatusBadRequest, "expired_token", "")
				}
				if st := e.newest().State; st != cibatest.StateExpired {
					t.Errorf("state = %q, want expired", st)
				}
				// The slow user approved at 60 s, before expiry: the token
				// is still there to fetch.
				if tok := e.token(slow); tok.status != http.StatusOK {
					t.Errorf("slow approval after 121 s = %d %s, want 200", tok.status, tok.raw)
				}
			})
		})
	}
}

func TestScriptOutlivedByExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{ExpiresInNO: 30 * time.Second})
		id := e.start(noForm(cibatest.NOApproveSlow)).str("auth_req_id")
		time.Sleep(61 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "expired_token", "")
	})
}

func TestSlowDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{})
		id := e.start(seForm(cibatest.SENoAnswer)).str("auth_req_id")
		wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", "") // the first poll is never early
		time.Sleep(time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "slow_down", "") // 1 s < 2 s: interval becomes 7 s
		time.Sleep(5 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "slow_down", "") // 5 s < 7 s: 12 s
		time.Sleep(11 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "slow_down", "") // 11 s < 12 s: 17 s
		time.Sleep(17 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", "")
		time.Sleep(17 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", "")
		if n := e.b.Polls(id); n != 6 {
			t.Errorf("Polls(auth_req_id) = %d, want 6", n)
		}
		if n := e.b.Polls(e.newest().ID); n != 6 {
			t.Errorf("Polls(sim id) = %d, want 6", n)
		}
	})
}

func TestSlowDownWithoutInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{Interval: -1})
		id := e.start(seForm(cibatest.SENoAnswer)).str("auth_req_id")
		e.token(id)
		time.Sleep(4 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "slow_down", "") // the 5 s default applies
	})
}

func TestTokenEndpointErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{})
		if err := e.b.RegisterClient(cibatest.Client{ID: "secret-client", Secret: "s3cret"}); err != nil {
			t.Fatal(err)
		}
		id := e.start(seForm(cibatest.SEApprove)).str("auth_req_id")

		other := e.postForm("/oauth2/token", url.Values{
			"grant_type": {ciba.GrantType}, "auth_req_id": {id},
			"client_id": {"secret-client"}, "client_secret": {"s3cret"},
		})
		wantError(t, other, http.StatusBadRequest, "invalid_grant", "")
		wantError(t, e.token("unknown"), http.StatusBadRequest, "invalid_grant", "")
		wantError(t, e.postForm("/oauth2/token", e.withAuth(url.Values{"grant_type": {"authorization_code"}, "auth_req_id": {id}})),
			http.StatusBadRequest, "unsupported_grant_type", "")
		wantError(t, e.postForm("/oauth2/token", e.withAuth(url.Values{"grant_type": {ciba.GrantType}})),
			http.StatusBadRequest, "invalid_request", "")

		time.Sleep(6 * time.Second)
		if tok := e.token(id); tok.status != http.StatusOK {
			t.Fatalf("token = %d %s", tok.status, tok.raw)
		}
		time.Sleep(2 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "invalid_grant", "") // single use
	})
}

func TestParametersInURLRefused(t *testing.T) {
	e := newEnv(t, cibatest.Config{})
	form := e.withAuth(seForm(cibatest.SEApprove))
	req, _ := http.NewRequest(http.MethodPost, testIssuer+"/ciba/bc-authorize?login_hint=sub:ssn:"+cibatest.SEApprove, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wantError(t, e.do(req), http.StatusBadRequest, "invalid_request", "")
}

func TestManualRequestsGoMethods(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{})
		id := e.start(seForm(cibatest.SEManual)).str("auth_req_id")
		sim := e.newest().ID
		time.Sleep(100 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", cibatest.PendingFirstInteraction)
		if err := e.b.Open(sim); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", cibatest.PendingAcknowledgement)
		if err := e.b.Acknowledge(sim); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		wantError(t, e.token(id), http.StatusBadRequest, "authorization_pending", cibatest.PendingIdentification)
		if err := e.b.Approve(sim, "ignored for SE"); err != nil {
			t.Fatal(err)
		}
		if err := e.b.Decline(sim); !errors.Is(err, cibatest.ErrNotPending) {
			t.Errorf("Decline after Approve = %v, want ErrNotPending", err)
		}
		if err := e.b.Approve("nope", ""); !errors.Is(err, cibatest.ErrNotFound) {
			t.Errorf("Approve(unknown) = %v, want ErrNotFound", err)
		}
		time.Sleep(2 * time.Second)
		if tok := e.token(id); tok.status != http.StatusOK {
			t.Fatalf("token = %d %s", tok.status, tok.raw)
		}
	})
}

func TestSimHTTPAPI(t *testing.T) {
	type step struct {
		action string
		body   string // form body, or JSON when it starts with {
		status int
		state  string
	}
	tests := []struct {
		name      string
		form      url.Values
		steps     func(pair string) []step
		wantToken string // "ok" or an error code
	}{
		{"Swedish open, acknowledge, approve", seForm(cibatest.SEManual), func(string) []step {
			return []step{
				{"open", "", 200, cibatest.StatePending},
				{"acknowledge", "", 200, cibatest.StatePending},
				{"approve", "", 200, cibatest.StateApproved},
				{"decline", "", 409, cibatest.StateApproved},
			}
		}, "ok"},
		{"Swedish decline", seForm(cibatest.SEManual), func(string) []step {
			return []step{{"decline", "", 200, cibatest.StateDeclined}}
		}, "access_denied"},
		{"Norwegian right pair as form", noForm(cibatest.NOManual), func(pair string) []step {
			return []step{{"approve", url.Values{"wordPair": {pair}}.Encode(), 200, cibatest.StateApproved}}
		}, "ok"},
		{"Norwegian right pair as JSON", noForm(cibatest.NOManual), func(pair string) []step {
			b, _ := json.Marshal(map[string]string{"wordPair": pair})
			return []step{{"approve", string(b), 200, cibatest.StateApproved}}
		}, "ok"},
		{"Norwegian wrong pair declines", noForm(cibatest.NOManual), func(pair string) []step {
			return []step{
				{"approve", url.Values{"wordPair": {"Feil Ord"}}.Encode(), 200, cibatest.StateDeclined},
				{"approve", url.Values{"wordPair": {pair}}.Encode(), 409, cibatest.StateDeclined},
			}
		}, "access_denied"},
		{"scripted request can be declined by hand", seForm(cibatest.SEApproveSlow), func(string) []step {
			return []step{{"decline", "", 200, cibatest.StateDeclined}}
		}, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, cibatest.Config{})
				ar := e.start(tt.form)
				list := e.get("/sim/requests")
				var views []cibatest.Request
				if err := json.Unmarshal([]byte(list.raw), &views); err != nil || len(views) != 1 {
					t.Fatalf("GET /sim/requests = %d %s", list.status, list.raw)
				}
				if strings.Contains(list.raw, ar.str("auth_req_id")) || strings.Contains(list.raw, tt.form.Get("login_hint")[8:]) {
					t.Fatalf("sim list leaks the auth_req_id or the full number: %s", list.raw)
				}
				sim := views[0].ID
				for _, s := range tt.steps(views[0].BindingMessage) {
					req, _ := http.NewRequest(http.MethodPost, testIssuer+"/sim/requests/"+sim+"/"+s.action, strings.NewReader(s.body))
					if strings.HasPrefix(s.body, "{") {
						req.Header.Set("Content-Type", "application/json")
					} else {
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					}
					r := e.do(req)
					state := r.str("state")
					if rq, ok := r.body["request"].(map[string]any); ok {
						state, _ = rq["state"].(string)
					}
					if r.status != s.status || state != s.state {
						t.Fatalf("%s = %d state %q (%s), want %d %q", s.action, r.status, state, r.raw, s.status, s.state)
					}
				}
				time.Sleep(2 * time.Second)
				tok := e.token(ar.str("auth_req_id"))
				if tt.wantToken == "ok" {
					if tok.status != http.StatusOK {
						t.Fatalf("token = %d %s, want 200", tok.status, tok.raw)
					}
				} else {
					wantError(t, tok, http.StatusBadRequest, tt.wantToken, "user declined")
				}
			})
		})
	}
	t.Run("unknown id is 404", func(t *testing.T) {
		e := newEnv(t, cibatest.Config{})
		for _, a := range []string{"open", "acknowledge", "approve", "decline"} {
			if r := e.postForm("/sim/requests/nope/"+a, url.Values{}); r.status != http.StatusNotFound {
				t.Errorf("%s unknown = %d, want 404", a, r.status)
			}
		}
		if r := e.get("/sim/requests"); r.status != 200 || strings.TrimSpace(r.raw) != "[]" {
			t.Errorf("empty list = %d %s, want 200 []", r.status, r.raw)
		}
	})
}

func TestIDTokenHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gotKid string
		e := newEnv(t, cibatest.Config{IDTokenHook: func(claims map[string]any, key jwk.Key) (string, error) {
			gotKid, _ = key.KeyID()
			if claims["ssn"] != cibatest.SEApprove {
				return "", errors.New("hook saw no ssn")
			}
			return "tampered.token.here", nil
		}})
		id := e.start(seForm(cibatest.SEApprove)).str("auth_req_id")
		time.Sleep(6 * time.Second)
		tok := e.token(id)
		if tok.status != http.StatusOK || tok.str("id_token") != "tampered.token.here" || gotKid == "" {
			t.Fatalf("token = %d %s (hook kid %q), want the hook's token", tok.status, tok.raw, gotKid)
		}
	})
}

func TestOutageAndLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{Latency: 100 * time.Millisecond})
		e.b.SetOutage(cibatest.Outage{Status: http.StatusServiceUnavailable})
		if r := e.authorize(seForm(cibatest.SEApprove)); r.status != http.StatusServiceUnavailable || r.body != nil {
			t.Errorf("during outage = %d %s, want 503 without JSON", r.status, r.raw)
		}
		if r := e.get("/sim/requests"); r.status != http.StatusOK {
			t.Errorf("sim API during outage = %d, want 200", r.status)
		}
		e.b.SetOutage(cibatest.Outage{Garbage: true})
		if r := e.get("/.well-known/openid-configuration"); r.status != http.StatusOK || r.body != nil {
			t.Errorf("garbage = %d %s, want 200 with non-JSON", r.status, r.raw)
		}
		e.b.SetOutage(cibatest.Outage{Latency: 3 * time.Second})
		start := time.Now()
		if r := e.get("/.well-known/jwks"); r.status != http.StatusOK {
			t.Errorf("slow jwks = %d", r.status)
		}
		if got := time.Since(start); got != 3100*time.Millisecond {
			t.Errorf("request took %v, want 3.1s (outage + configured latency)", got)
		}
		e.b.SetOutage(cibatest.Outage{})
		e.start(seForm(cibatest.SEApprove))
	})
}

func TestLatencyHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{Latency: time.Minute})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, testIssuer+"/.well-known/jwks", nil)
		start := time.Now()
		if _, err := e.hc.Do(req); err == nil {
			t.Fatal("request with a 1 s deadline against 1 min latency succeeded")
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("gave up after %v, want 1s", got)
		}
	})
}

func TestRegisterClientValidation(t *testing.T) {
	b, err := cibatest.New(cibatest.Config{Issuer: testIssuer, SigningKey: brokerKey()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []cibatest.Client{
		{},
		{ID: "x"},
		{ID: "x", JWKS: []byte(`{"keys":[]}`)},
		{ID: "x", JWKS: []byte(`not a JWKS`)},
		{ID: "x", JWKS: []byte{}},
		{ID: "x", JWKSURL: "not a url"},
		{ID: "x", JWKS: publicSet(t, ecJWK(t)), JWKSURL: "https://rp.example/jwks"},
	} {
		if err := b.RegisterClient(c); err == nil {
			t.Errorf("RegisterClient(%+v) = nil, want an error", c.ID)
		}
	}
}

func TestAddUser(t *testing.T) {
	e := newEnv(t, cibatest.Config{})
	const n = "194001019999"
	wantError(t, e.authorize(seForm(n)), http.StatusBadRequest, "unknown_user_id", "")
	e.b.AddUser(cibatest.User{NationalID: n, GivenName: "Test", FamilyName: "Person"})
	e.start(seForm(n))
	if got := e.newest(); got.Name != "Test Person" || got.MaskedID != "********-**99" {
		t.Errorf("newest = %+v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, cibatest.Config{})
		var wg sync.WaitGroup
		var approved atomic.Int32
		for i := range 20 {
			// One user each: a second request for a user would supersede
			// the first.
			se, no := fmt.Sprintf("19900101%04d", i), fmt.Sprintf("010190%05d", i)
			e.b.AddUser(cibatest.User{NationalID: se, GivenName: "Sven", FamilyName: "Svensson", Script: cibatest.ScriptApproveFast})
			e.b.AddUser(cibatest.User{NationalID: no, GivenName: "Nora", FamilyName: "Nilsen", Script: cibatest.ScriptApproveFast})
			wg.Go(func() {
				form := seForm(se)
				if i%2 == 1 {
					form = noForm(no)
				}
				id := e.start(form).str("auth_req_id")
				for {
					time.Sleep(2 * time.Second)
					tok := e.token(id)
					if tok.status == http.StatusOK {
						approved.Add(1)
						return
					}
					if tok.str("error") != "authorization_pending" {
						t.Errorf("poll = %d %s", tok.status, tok.raw)
						return
					}
				}
			})
			wg.Go(func() { e.b.Requests() })
		}
		wg.Wait()
		if approved.Load() != 20 {
			t.Errorf("approved = %d, want 20", approved.Load())
		}
	})
}

func BenchmarkAuthorizeAndPoll(b *testing.B) {
	e := newEnv(b, cibatest.Config{})
	for b.Loop() {
		r := e.authorize(seForm(cibatest.SENoAnswer))
		if r.status != http.StatusOK {
			b.Fatalf("bc-authorize = %d", r.status)
		}
		if tok := e.token(r.str("auth_req_id")); tok.str("error") != "authorization_pending" {
			b.Fatalf("token = %d %s", tok.status, tok.raw)
		}
	}
}
