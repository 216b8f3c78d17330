package ciba

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// maxIDToken bounds the size of an ID token we are willing to parse.
const maxIDToken = 64 << 10

// ValidateIDToken checks an ID token and returns its claims. Nothing in an ID
// token may be trusted before this succeeds. It checks, in order:
//
//   - the JWS header: compact form, alg one of RS256, PS256, ES256 (so never
//     none and never HMAC), no crit;
//   - the signature, with the broker's key named by kid (the JWKS is fetched
//     again, at most once per JWKSMinRefresh, when kid is unknown), a key
//     whose type fits alg and whose own alg, if any, equals it;
//   - iss exactly the discovered issuer; aud containing our client_id, and
//     azp equal to it when present or when aud has several members;
//   - exp (required), iat (required, not in the future) and nbf, each with
//     Config.Skew of tolerance.
//
// Every error wraps ErrInvalidIDToken (or ErrTransport when the JWKS could
// not be fetched) and never contains the token.
func (c *Client) ValidateIDToken(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > maxIDToken {
		return nil, invalidIDToken("too large")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, invalidIDToken("not a compact JWS")
	}
	hdr, err := decodeHeader(parts[0])
	if err != nil {
		return nil, invalidIDToken(err.Error())
	}
	alg, ok := jwa.LookupSignatureAlgorithm(hdr.Alg)
	if !ok || !allowedAlg(hdr.Alg) {
		return nil, invalidIDToken("algorithm not allowed")
	}
	keys, err := c.jwks.keysFor(ctx, c.hc, c.now, hdr.Kid, alg)
	if err != nil {
		return nil, err
	}
	var payload []byte
	for _, k := range keys {
		if p, err := jws.Verify([]byte(raw), jws.WithCompact(), jws.WithKey(alg, k.raw)); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, invalidIDToken("signature does not verify")
	}
	claims, err := parseClaims(payload)
	if err != nil {
		return nil, invalidIDToken(err.Error())
	}
	if err := c.checkClaims(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

func invalidIDToken(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalidIDToken, reason)
}

type joseHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

func decodeHeader(seg string) (joseHeader, error) {
	var h joseHeader
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return h, errors.New("header is not base64url")
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, errors.New("header is not JSON")
	}
	if len(h.Crit) > 0 {
		return h, errors.New("critical header extensions not supported")
	}
	return h, nil
}

// parseClaims decodes the payload of a verified token.
func parseClaims(payload []byte) (*Claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errors.New("payload is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after payload")
	}
	c := &Claims{Raw: m}
	str := func(names ...string) (string, error) {
		for _, n := range names {
			v, ok := m[n]
			if !ok || v == nil {
				continue
			}
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("claim %s is not a string", n)
			}
			if s != "" {
				return s, nil
			}
		}
		return "", nil
	}
	var err error
	for _, f := range []struct {
		dst   *string
		names []string
	}{
		{&c.Issuer, []string{"iss"}},
		{&c.Subject, []string{"sub"}},
		{&c.AuthorizedParty, []string{"azp"}},
		{&c.Name, []string{"name"}},
		{&c.GivenName, []string{"given_name", "givenname"}},
		{&c.FamilyName, []string{"family_name", "surname"}},
		{&c.SSN, []string{"ssn"}},
		{&c.SocialNo, []string{"socialno"}},
		{&c.Country, []string{"country"}},
		{&c.IdentityScheme, []string{"identityscheme"}},
		{&c.AuthenticationType, []string{"authenticationtype"}},
		{&c.BirthDate, []string{"birthdate"}},
		{&c.ACR, []string{"acr"}},
	} {
		if *f.dst, err = str(f.names...); err != nil {
			return nil, err
		}
	}
	switch aud := m["aud"].(type) {
	case nil:
	case string:
		c.Audience = []string{aud}
	case []any:
		for _, a := range aud {
			s, ok := a.(string)
			if !ok {
				return nil, errors.New("claim aud has a non-string member")
			}
			c.Audience = append(c.Audience, s)
		}
	default:
		return nil, errors.New("claim aud is neither a string nor an array")
	}
	for _, f := range []struct {
		dst  *time.Time
		name string
	}{{&c.ExpiresAt, "exp"}, {&c.IssuedAt, "iat"}, {&c.NotBefore, "nbf"}} {
		v, ok := m[f.name]
		if !ok || v == nil {
			continue
		}
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("claim %s is not a number", f.name)
		}
		x, err := n.Float64()
		if err != nil || math.IsNaN(x) || x < 0 || x > 1<<40 {
			return nil, fmt.Errorf("claim %s is out of range", f.name)
		}
		sec, frac := math.Modf(x)
		*f.dst = time.Unix(int64(sec), int64(frac*1e9))
	}
	return c, nil
}

func (c *Client) checkClaims(cl *Claims) error {
	if cl.Issuer != c.meta.Issuer {
		return invalidIDToken("wrong issuer")
	}
	if !slices.Contains(cl.Audience, c.cfg.ClientID) {
		return invalidIDToken("audience does not contain our client_id")
	}
	if (len(cl.Audience) > 1 || cl.AuthorizedParty != "") && cl.AuthorizedParty != c.cfg.ClientID {
		return invalidIDToken("azp is not our client_id")
	}
	now, skew := c.now(), c.cfg.Skew
	switch {
	case cl.ExpiresAt.IsZero():
		return invalidIDToken("no exp")
	case !now.Before(cl.ExpiresAt.Add(skew)):
		return invalidIDToken("expired")
	case cl.IssuedAt.IsZero():
		return invalidIDToken("no iat")
	case cl.IssuedAt.After(now.Add(skew)):
		return invalidIDToken("issued in the future")
	case !cl.NotBefore.IsZero() && cl.NotBefore.After(now.Add(skew)):
		return invalidIDToken("not yet valid (nbf)")
	}
	return nil
}

// jwksCache holds the broker's signing keys in memory. It is fetched with
// the client's own http.Client on first use, and again when a token names a
// kid it does not know (at most once per JWKSMinRefresh).
type jwksCache struct {
	uri string

	fetchMu sync.Mutex // one fetch at a time

	mu        sync.Mutex
	keys      []verifyKey
	fetched   bool
	lastFetch time.Time
}

// verifyKey is a broker public key ready for jws.Verify.
type verifyKey struct {
	kid string
	alg string // the JWK's alg, "" if none
	raw any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// fits reports whether k may verify a signature made with alg.
func (k verifyKey) fits(alg jwa.SignatureAlgorithm) bool {
	if k.alg != "" && k.alg != alg.String() {
		return false
	}
	switch alg.String() {
	case RS256, PS256:
		_, ok := k.raw.(*rsa.PublicKey)
		return ok
	case ES256:
		pk, ok := k.raw.(*ecdsa.PublicKey)
		return ok && pk.Curve == elliptic.P256()
	}
	return false
}

// keysFor returns the candidate keys for a token header: those with kid
// (any key fitting alg when the token has no kid).
func (j *jwksCache) keysFor(ctx context.Context, hc *http.Client, now func() time.Time, kid string, alg jwa.SignatureAlgorithm) ([]verifyKey, error) {
	j.mu.Lock()
	fetched := j.fetched
	found := j.lookup(kid, alg)
	j.mu.Unlock()
	if len(found) > 0 {
		return found, nil
	}
	if fetched && kid == "" {
		return nil, invalidIDToken("no key fits the token")
	}

	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	j.mu.Lock()
	// Someone else may have fetched while we waited.
	found = j.lookup(kid, alg)
	recent := j.fetched && now().Sub(j.lastFetch) < JWKSMinRefresh
	j.mu.Unlock()
	if len(found) > 0 {
		return found, nil
	}
	if recent {
		return nil, invalidIDToken("unknown kid")
	}
	keys, err := fetchJWKS(ctx, hc, j.uri)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	j.fetched, j.lastFetch, j.keys = true, now(), keys
	found = j.lookup(kid, alg)
	j.mu.Unlock()
	if len(found) == 0 {
		return nil, invalidIDToken("unknown kid")
	}
	return found, nil
}

// lookup must be called with j.mu held.
func (j *jwksCache) lookup(kid string, alg jwa.SignatureAlgorithm) []verifyKey {
	var out []verifyKey
	for _, k := range j.keys {
		if (kid == "" || k.kid == kid) && k.fits(alg) {
			out = append(out, k)
		}
	}
	return out
}

func fetchJWKS(ctx context.Context, hc *http.Client, uri string) ([]verifyKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("ciba: fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ciba: fetch JWKS: %w: %w", ErrTransport, scrubURLError(err))
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ciba: fetch JWKS: %w: status %d", ErrTransport, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("ciba: fetch JWKS: %w: %w", ErrTransport, err)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("ciba: fetch JWKS: %w: invalid JWKS", ErrTransport)
	}
	var keys []verifyKey
	for i := range set.Len() {
		k, _ := set.Key(i)
		if use, ok := k.KeyUsage(); ok && use != string(jwk.ForSignature) {
			continue
		}
		// Only public keys: a JWKS that carries a private or symmetric key
		// is a broker misconfiguration, and an "oct" key would let a token
		// signed with HMAC verify.
		raw, err := jwk.PublicRawKeyOf(k)
		if err != nil {
			continue
		}
		switch raw.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
		default:
			continue
		}
		vk := verifyKey{raw: raw}
		vk.kid, _ = k.KeyID()
		if a, ok := k.Algorithm(); ok {
			vk.alg = a.String()
		}
		keys = append(keys, vk)
	}
	return keys, nil
}

// RefreshJWKS fetches the broker's JWKS now and replaces the cached keys. It
// fails when the JWKS cannot be fetched or holds no key usable for RS256,
// PS256 or ES256 signatures. `ivrd check` uses it; validation fetches on its
// own when needed.
func (c *Client) RefreshJWKS(ctx context.Context) error {
	j := &c.jwks
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	keys, err := fetchJWKS(ctx, c.hc, j.uri)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("ciba: fetch JWKS: %w: no RSA or P-256 signing keys", ErrTransport)
	}
	j.mu.Lock()
	j.fetched, j.lastFetch, j.keys = true, c.now(), keys
	j.mu.Unlock()
	return nil
}
