package cibatest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/ivr/callerverify/ciba"
)

// Identifiers of the two eIDs.
const (
	ACRSwedishBankID   = "urn:grn:authn:se:bankid"
	ACRNorwegianBankID = "urn:grn:authn:no:bankid"
)

// keepOldKeys is how many retired signing keys the JWKS keeps publishing.
const keepOldKeys = 2

// signingKey wraps raw as a jwk.Key with alg RS256, use sig and the
// thumbprint as kid.
func signingKey(raw *rsa.PrivateKey) (jwk.Key, error) {
	k, err := jwk.Import(raw)
	if err != nil {
		return nil, fmt.Errorf("import signing key: %w", err)
	}
	if err := jwk.AssignKeyID(k); err != nil {
		return nil, fmt.Errorf("assign kid: %w", err)
	}
	if err := k.Set(jwk.AlgorithmKey, jwa.RS256()); err != nil {
		return nil, fmt.Errorf("set alg: %w", err)
	}
	if err := k.Set(jwk.KeyUsageKey, "sig"); err != nil {
		return nil, fmt.Errorf("set use: %w", err)
	}
	return k, nil
}

// RotateSigningKey makes a new signing key current. The JWKS publishes it
// first, followed by the previous keys (the last two), so tokens already
// issued still verify.
func (b *Broker) RotateSigningKey() {
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("cibatest: generate signing key: " + err.Error()) // only for bad sizes
	}
	k, err := signingKey(raw)
	if err != nil {
		panic("cibatest: " + err.Error())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keys = append([]jwk.Key{k}, b.keys...)
	if len(b.keys) > keepOldKeys+1 {
		b.keys = b.keys[:keepOldKeys+1]
	}
}

// JWKS returns the broker's public signing keys, current first.
func (b *Broker) JWKS() jwk.Set {
	b.mu.Lock()
	keys := append([]jwk.Key(nil), b.keys...)
	b.mu.Unlock()
	set := jwk.NewSet()
	for _, k := range keys {
		pub, err := k.PublicKey()
		if err != nil {
			continue // cannot happen for RSA keys
		}
		_ = set.AddKey(pub)
	}
	return set
}

func (b *Broker) currentKey() jwk.Key {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.keys[0]
}

// sign signs claims with the current key, RS256, typ JWT.
func sign(claims map[string]any, key jwk.Key) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return "", fmt.Errorf("set typ: %w", err)
	}
	tok, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return string(tok), nil
}

func (b *Broker) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_ = json.NewEncoder(w).Encode(b.JWKS())
}

func (b *Broker) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	doc := map[string]any{
		"issuer":                              b.cfg.Issuer,
		"token_endpoint":                      b.base + "/oauth2/token",
		"jwks_uri":                            b.base + "/.well-known/jwks",
		"backchannel_authentication_endpoint": b.base + "/ciba/bc-authorize",
		"backchannel_token_delivery_modes_supported":       []string{"poll"},
		"backchannel_user_code_parameter_supported":        false,
		"grant_types_supported":                            []string{ciba.GrantType},
		"token_endpoint_auth_methods_supported":            []string{"private_key_jwt", "client_secret_basic", "client_secret_post"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "PS256", "ES256"},
		"id_token_signing_alg_values_supported":            []string{"RS256"},
		"acr_values_supported":                             []string{ACRSwedishBankID, ACRNorwegianBankID},
		"scopes_supported":                                 []string{"openid"},
		"subject_types_supported":                          []string{"public"},
		"response_types_supported":                         []string{"id_token"},
		"claims_supported": []string{
			"iss", "aud", "sub", "iat", "nbf", "exp", "auth_time", "acr",
			"identityscheme", "authenticationtype", "country", "name",
			"given_name", "family_name", "birthdate", "ssn", "socialno",
		},
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}
