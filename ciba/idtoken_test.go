package ciba

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

func TestValidateIDToken(t *testing.T) {
	now := time.Now()
	f := newFakeBroker(t)
	pub, _ := f.key.PublicKey()
	kid, _ := f.key.KeyID()
	claims := func(mod func(map[string]any)) map[string]any {
		c := f.goodClaims(now)
		if mod != nil {
			mod(c)
		}
		return c
	}
	signed := func(mod func(map[string]any)) string {
		return signToken(t, f.key, jwa.RS256(), claims(mod), nil)
	}
	good := signed(nil)
	parts := strings.Split(good, ".")
	tests := []struct {
		name   string
		token  string
		reason string // "" = valid
	}{
		{"valid", good, ""},
		{"valid with azp and several audiences", signed(func(c map[string]any) { c["aud"] = []string{"ivr", "api"}; c["azp"] = "ivr" }), ""},
		{"valid a little past exp, within skew", signed(func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() }), ""},
		{"valid without kid", signToken(t, f.key, jwa.RS256(), claims(nil), map[string]any{"kid": ""}), ""},
		{"wrong signature", parts[0] + "." + parts[1] + "." + signedParts(t, testRSAKey(), claims(nil))[2], "signature"},
		{"payload altered after signing", parts[0] + "." + signedParts(t, f.key, claims(func(c map[string]any) { c["ssn"] = "199001011234" }))[1] + "." + parts[2], "signature"},
		{"alg none", rawToken(t, map[string]any{"alg": "none", "kid": kid}, claims(nil), func([]byte) []byte { return nil }), "algorithm"},
		{"alg none, no signature part", strings.TrimSuffix(rawToken(t, map[string]any{"alg": "none"}, claims(nil), func([]byte) []byte { return nil }), "."), "compact"},
		{"HMAC with the public key as secret", rawToken(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"}, claims(nil), hmacWithPublicKey(t, pub)), "algorithm"},
		{"RS512 not allowed", signToken(t, f.key, jwa.RS512(), claims(nil), nil), "algorithm"},
		{"ES256 header with an RSA kid", rawToken(t, map[string]any{"alg": "ES256", "kid": kid}, claims(nil), func(in []byte) []byte { return make([]byte, 64) }), "kid"},
		{"crit header", signToken(t, f.key, jwa.RS256(), claims(nil), map[string]any{"crit": []string{"exp"}, "exp": 1}), "critical"},
		{"wrong iss", signed(func(c map[string]any) { c["iss"] = "https://evil.example" }), "issuer"},
		{"iss with trailing slash", signed(func(c map[string]any) { c["iss"] = f.issuer + "/" }), "issuer"},
		{"wrong aud", signed(func(c map[string]any) { c["aud"] = "someone-else" }), "audience"},
		{"no aud", signed(func(c map[string]any) { delete(c, "aud") }), "audience"},
		{"several audiences without azp", signed(func(c map[string]any) { c["aud"] = []string{"ivr", "api"} }), "azp"},
		{"azp of another client", signed(func(c map[string]any) { c["azp"] = "other" }), "azp"},
		{"expired", signed(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }), "expired"},
		{"no exp", signed(func(c map[string]any) { delete(c, "exp") }), "exp"},
		{"iat in the future", signed(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() }), "future"},
		{"no iat", signed(func(c map[string]any) { delete(c, "iat") }), "iat"},
		{"nbf in the future", signed(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() }), "nbf"},
		{"exp as a string", signed(func(c map[string]any) { c["exp"] = "9999999999" }), "exp"},
		{"exp out of range", signed(func(c map[string]any) { c["exp"] = 1e300 }), "exp"},
		{"iss not a string", signed(func(c map[string]any) { c["iss"] = 1 }), "iss"},
		{"aud a number", signed(func(c map[string]any) { c["aud"] = 1 }), "aud"},
		{"aud with a member that is not a string", signed(func(c map[string]any) { c["aud"] = []any{"ivr", 1} }), "aud"},
		{"amr not an array", signed(func(c map[string]any) { c["amr"] = "pwd" }), "amr"},
		{"auth_time as a string", signed(func(c map[string]any) { c["auth_time"] = "1716374501" }), "auth_time"},
		{"a second exp differing in case", signed(func(c map[string]any) { c["Exp"] = now.Add(time.Hour).Unix() }), "case"},
		{"unknown kid", signToken(t, testRSAKey(), jwa.RS256(), claims(nil), nil), "unknown kid"},
		{"garbage", "not.a.jwt", "header"},
		{"empty", "", "compact"},
	}
	c := newTestClient(t, f, func(cfg *Config) { cfg.Now = func() time.Time { return now } })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := c.ValidateIDToken(t.Context(), tt.token)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused a valid token: %v", err)
				}
				if tok.Issuer != f.issuer || tok.Subject != "{bb9c2364-dfae-44f3-bcfd-999053d94f9e}" || !tok.IssuedAt.Equal(time.Unix(now.Unix(), 0)) {
					t.Errorf("token = %+v", *tok)
				}
				var idura struct {
					SSN     string `json:"ssn"`
					Country string `json:"country"`
				}
				if err := tok.Claims(&idura); err != nil || idura.SSN != "196802020575" || idura.Country != "SE" {
					t.Errorf("Claims = %+v, %v", idura, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidIDToken) {
				t.Fatalf("err = %v, want ErrInvalidIDToken", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("err = %q, want reason %q", err, tt.reason)
			}
			if tok != nil {
				t.Error("token returned with an error")
			}
			assertNoSecrets(t, err, tt.token[:min(len(tt.token), 20)]+"x", "196802020575", "Terne")
		})
	}
}

// signedParts signs claims and returns the three parts.
func signedParts(t *testing.T, key jwk.Key, claims map[string]any) []string {
	t.Helper()
	return strings.Split(signToken(t, key, jwa.RS256(), claims, nil), ".")
}

func TestValidateIDTokenES256AndKeyTypeMismatch(t *testing.T) {
	f := newFakeBroker(t)
	f.key = testECKey()
	ecPub, _ := f.key.PublicKey()
	rsaPub, _ := testRSA2().PublicKey()
	f.jwks = []jwk.Key{ecPub, rsaPub}
	c := newTestClient(t, f, nil)
	tok := signToken(t, f.key, jwa.ES256(), f.goodClaims(time.Now()), nil)
	if _, err := c.ValidateIDToken(t.Context(), tok); err != nil {
		t.Fatalf("ES256 token refused: %v", err)
	}
	// An RS256 header naming the EC key's kid must not verify with it.
	ecKid, _ := f.key.KeyID()
	bad := rawToken(t, map[string]any{"alg": "RS256", "kid": ecKid}, f.goodClaims(time.Now()), func(in []byte) []byte {
		var raw ecdsa.PrivateKey
		jwk.Export(f.key, &raw)
		h := sha256.Sum256(in)
		sig, _ := ecdsa.SignASN1(rand.Reader, &raw, h[:])
		return sig
	})
	if _, err := c.ValidateIDToken(t.Context(), bad); !errors.Is(err, ErrInvalidIDToken) {
		t.Fatalf("err = %v, want refusal", err)
	}
}

func TestJWKSRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeBroker(t)
		c := newTestClient(t, f, nil)
		tok := signToken(t, f.key, jwa.RS256(), f.goodClaims(time.Now()), nil)
		if _, err := c.ValidateIDToken(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ValidateIDToken(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		if f.jwksFetches != 1 {
			t.Fatalf("%d JWKS fetches for a known kid, want 1", f.jwksFetches)
		}

		// The broker rotates to a key we have not seen: one refresh finds it.
		time.Sleep(JWKSMinRefresh) // fake time inside the bubble
		f.mu.Lock()
		f.key = testRSAKey()
		pub, _ := f.key.PublicKey()
		f.jwks = append(f.jwks, pub)
		f.mu.Unlock()
		tok = signToken(t, f.key, jwa.RS256(), f.goodClaims(time.Now()), nil)
		if _, err := c.ValidateIDToken(t.Context(), tok); err != nil {
			t.Fatalf("token from the rotated key refused: %v", err)
		}
		if f.jwksFetches != 2 {
			t.Fatalf("%d JWKS fetches, want 2", f.jwksFetches)
		}

		// Forged tokens with random kids cannot make us fetch more often
		// than once per JWKSMinRefresh.
		for range 5 {
			forged := signToken(t, testECKey(), jwa.ES256(), f.goodClaims(time.Now()), map[string]any{"kid": randomString(t)})
			if _, err := c.ValidateIDToken(t.Context(), forged); !errors.Is(err, ErrInvalidIDToken) || !strings.Contains(err.Error(), "unknown kid") {
				t.Fatalf("err = %v, want unknown kid", err)
			}
		}
		if f.jwksFetches != 2 {
			t.Errorf("%d JWKS fetches within JWKSMinRefresh, want 2", f.jwksFetches)
		}
		time.Sleep(JWKSMinRefresh)
		forged := signToken(t, testECKey(), jwa.ES256(), f.goodClaims(time.Now()), map[string]any{"kid": "nope"})
		if _, err := c.ValidateIDToken(t.Context(), forged); !errors.Is(err, ErrInvalidIDToken) {
			t.Fatalf("err = %v, want unknown kid after a refresh", err)
		}
		if f.jwksFetches != 3 {
			t.Errorf("%d JWKS fetches, want 3 (a refresh for the unknown kid)", f.jwksFetches)
		}
	})
}

func TestJWKSSkipsSymmetricAndEncryptionKeys(t *testing.T) {
	f := newFakeBroker(t)
	oct, err := jwk.Import([]byte("a shared secret that must never verify anything"))
	if err != nil {
		t.Fatal(err)
	}
	oct.Set(jwk.KeyIDKey, "hmac")
	f.jwks = append(f.jwks, oct)
	c := newTestClient(t, f, nil)
	tok := rawToken(t, map[string]any{"alg": "HS256", "kid": "hmac"}, f.goodClaims(time.Now()), func([]byte) []byte { return []byte("x") })
	if _, err := c.ValidateIDToken(t.Context(), tok); !errors.Is(err, ErrInvalidIDToken) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.ValidateIDToken(t.Context(), signToken(t, f.key, jwa.RS256(), f.goodClaims(time.Now()), nil)); err != nil {
		t.Fatalf("good token refused next to an oct key: %v", err)
	}
	for _, k := range c.jwks.keys {
		if k.kid == "hmac" {
			t.Error("oct key kept in the cache")
		}
	}
}

func TestIDTokenClaims(t *testing.T) {
	tok, err := NewIDToken([]byte(`{"iss":"i","sub":"s","aud":"a","exp":1716375701,"iat":1716374501.5,"auth_time":1716374490,"acr":"urn:grn:authn:no:bankid","amr":["hwk"],"socialno":"01010112345","givenname":"Kari","address":{"country":"NO"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Issuer != "i" || tok.Subject != "s" || len(tok.Audience) != 1 || tok.Audience[0] != "a" || tok.ACR != "urn:grn:authn:no:bankid" || len(tok.AMR) != 1 || tok.AMR[0] != "hwk" {
		t.Errorf("token = %+v", *tok)
	}
	if tok.IssuedAt.UnixMilli() != 1716374501500 || tok.Expiry.Unix() != 1716375701 || tok.AuthTime.Unix() != 1716374490 || !tok.NotBefore.IsZero() {
		t.Errorf("times: iat %v exp %v auth_time %v nbf %v", tok.IssuedAt, tok.Expiry, tok.AuthTime, tok.NotBefore)
	}
	var own struct {
		SocialNo  string `json:"socialno"`
		GivenName string `json:"givenname"`
		Address   struct {
			Country string `json:"country"`
		} `json:"address"`
		Issuer string `json:"iss"`
	}
	if err := tok.Claims(&own); err != nil || own.SocialNo != "01010112345" || own.GivenName != "Kari" || own.Address.Country != "NO" || own.Issuer != "i" {
		t.Errorf("Claims = %+v, %v", own, err)
	}
	var wrong struct {
		GivenName int `json:"givenname"`
	}
	if err := tok.Claims(&wrong); err == nil {
		t.Error("Claims decoded a string into an int")
	}
	if err := (&IDToken{}).Claims(&own); err == nil {
		t.Error("Claims of an IDToken without a claims set succeeded")
	}
	for _, bad := range []string{`[]`, `null`, `"x"`, `{"iss":1}`, `{"aud":[1]}`, `{"aud":{}}`, `{"exp":-1}`, `{"exp":1e300}`, `{"exp":"1"}`, `{"amr":"pwd"}`, `{"ISS":"i"}`, `{} {}`} {
		if _, err := NewIDToken([]byte(bad)); !errors.Is(err, ErrInvalidIDToken) {
			t.Errorf("NewIDToken(%s) = %v, want ErrInvalidIDToken", bad, err)
		}
	}
}

func TestRefreshJWKS(t *testing.T) {
	f := newFakeBroker(t)
	c := newTestClient(t, f, nil)
	if err := c.RefreshJWKS(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f.jwksFetches != 1 || len(c.jwks.keys) != 1 {
		t.Fatalf("fetches %d keys %d", f.jwksFetches, len(c.jwks.keys))
	}
	// The token now validates without another fetch.
	if _, err := c.ValidateIDToken(t.Context(), signToken(t, f.key, jwa.RS256(), f.goodClaims(time.Now()), nil)); err != nil || f.jwksFetches != 1 {
		t.Fatalf("err %v fetches %d", err, f.jwksFetches)
	}
	f.jwks = nil
	if err := c.RefreshJWKS(t.Context()); !errors.Is(err, ErrTransport) {
		t.Fatalf("empty JWKS: err = %v", err)
	}
}

// FuzzNewIDToken checks that no claims set makes decoding panic, and that
// a decoded token's claims set decodes again.
func FuzzNewIDToken(f *testing.F) {
	for _, s := range []string{`{"iss":"i","aud":["a"],"exp":1.5,"amr":["x"]}`, `{"aud":null,"exp":null}`, `{"exp":-0}`, `{"aud":"a","Aud":"b"}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, claims []byte) {
		tok, err := NewIDToken(claims)
		if err != nil {
			return
		}
		var all map[string]any
		if err := tok.Claims(&all); err != nil {
			t.Fatalf("accepted a claims set that does not decode: %v", err)
		}
	})
}
