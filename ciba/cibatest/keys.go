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
