package ciba

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/lestrrat-go/jwx/v3/jws"
)

// authenticate adds client authentication to form. client_secret_basic is
// added as a header by post.
func (c *Client) authenticate(form url.Values) error {
	switch c.method {
	case PrivateKeyJWT:
		a, err := c.signAssertion()
		if err != nil {
			return err
		}
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_assertion_type", ClientAssertionType)
		form.Set("client_assertion", a)
	case ClientSecretPost:
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.Secret)
	}
	return nil
}

// assertionClaims are the claims of a private_key_jwt client assertion
// (RFC 7523 §3).
type assertionClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Jti string `json:"jti"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

// signAssertion returns a fresh client assertion: iss = sub = client_id,
// aud = the configured audience, a random jti, iat now, exp now+lifetime.
// Every request gets its own.
func (c *Client) signAssertion() (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("client assertion: jti: %w", err)
	}
	now := c.now()
	payload, err := json.Marshal(assertionClaims{
		Iss: c.cfg.ClientID,
		Sub: c.cfg.ClientID,
		Aud: c.audience,
		Jti: base64.RawURLEncoding.EncodeToString(jti[:]),
		Iat: now.Unix(),
		Exp: now.Add(c.cfg.AssertionLifetime).Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.TypeKey, "JWT"); err != nil {
		return "", fmt.Errorf("client assertion: header: %w", err)
	}
	if err := h.Set(jws.KeyIDKey, c.cfg.Key.ID); err != nil {
		return "", fmt.Errorf("client assertion: header: %w", err)
	}
	signed, err := jws.Sign(payload, jws.WithKey(c.alg, c.cfg.Key.Signer, jws.WithProtectedHeaders(h)))
	if err != nil {
		// jwx errors do not carry key material; keep only a fixed text anyway.
		return "", fmt.Errorf("client assertion: sign with %s failed", c.alg.String())
	}
	return string(signed), nil
}
