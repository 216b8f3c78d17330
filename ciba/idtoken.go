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
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// maxIDToken bounds the size of an ID token we are willing to parse.
const maxIDToken = 64 << 10

// IDToken is an ID token that passed every check of
// Client.ValidateIDToken. Its fields are the standard claims (OpenID
// Connect Core §2); Claims decodes the whole claims set into a type of the
// caller's, for the claims a broker adds (Idura's "ssn", say).
//
// Every printed form of an IDToken hides the subject and the claims, which
// may identify a person.
type IDToken struct {
	Issuer          string    // iss: the broker's issuer
	Subject         string    // sub: the user at the broker
	Audience        []string  // aud: contains the client's client_id
	AuthorizedParty string    // azp: the client's client_id, or ""
	Expiry          time.Time // exp
	IssuedAt        time.Time // iat
	NotBefore       time.Time // nbf; zero when absent
	AuthTime        time.Time // auth_time; zero when absent
	ACR             string    // acr; "" when absent
	AMR             []string  // amr; nil when absent

	claims []byte // the claims set: the JWS payload, verified
}

// Claims decodes the token's claims set, standard claims included, into v
// with encoding/json: typically a struct of the caller's with the claims it
// needs, or a map[string]any for all of them.
func (t *IDToken) Claims(v any) error {
	if t == nil || t.claims == nil {
		return errors.New("ciba: ID token has no claims set")
	}
	if err := json.Unmarshal(t.claims, v); err != nil {
		return fmt.Errorf("ciba: ID token claims: %w", err)
	}
	return nil
}

// String hides the subject and the claims beyond iss, aud and acr.
func (t IDToken) String() string {
	return fmt.Sprintf("ciba.IDToken{iss=%q aud=%q acr=%q sub=[redacted]}", t.Issuer, t.Audience, t.ACR)
}

// GoString is String, so that %#v hides the same.
func (t IDToken) GoString() string { return t.String() }

// Format prints the redacted form for every verb.
func (t IDToken) Format(f fmt.State, verb rune) { formatRedacted(f, verb, t.String()) }

// LogValue hides the subject and the claims for log/slog.
func (t IDToken) LogValue() slog.Value { return slog.StringValue(t.String()) }

// NewIDToken decodes a JWT claims set (a JSON object) into an IDToken. It
// checks only that the standard claims have their JSON types: no signature,
// issuer, audience or time, for which use Client.ValidateIDToken. It serves
// fakes of Client.Token in tests, which need an IDToken with claims of
// their choosing.
func NewIDToken(claims []byte) (*IDToken, error) {
	t, err := parseClaims(bytes.Clone(claims))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidIDToken, err)
	}
	return t, nil
}

// ValidateIDToken checks an ID token and returns it decoded. Nothing in an
// ID token may be trusted before this succeeds. It checks, in order:
//
//   - the JWS header: compact form, alg one of RS256, PS256, ES256 (so never
//     none and never HMAC), no crit;
//   - the signature, with the broker's key named by kid (the JWKS is fetched
//     again, at most once per JWKSMinRefresh, when kid is unknown), a key
//     whose type fits alg and whose own alg, if any, equals it;
//   - the claims set: a JSON object whose standard claims have their types
//     (iss, sub, azp and acr strings; aud a string or an array of strings;
//     exp, iat, nbf and auth_time numbers; amr an array of strings), and no
//     key that differs from a standard claim's name only in case;
//   - iss exactly the discovered issuer; aud containing Config.ClientID, and
//     azp equal to it when present or when aud has several members;
//   - exp (required), iat (required, not in the future) and nbf, each with
//     Config.Skew of tolerance.
//
// Every error wraps ErrInvalidIDToken (or ErrTransport when the JWKS could
// not be fetched) and never contains the token.
func (c *Client) ValidateIDToken(ctx context.Context, raw string) (*IDToken, error) {
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
	tok, err := parseClaims(payload)
	if err != nil {
		return nil, invalidIDToken(err.Error())
	}
	if err := c.checkClaims(tok); err != nil {
		return nil, err
	}
	return tok, nil
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

// standardClaims are the claims an IDToken has as fields, as JSON.
type standardClaims struct {
	Issuer          string      `json:"iss"`
	Subject         string      `json:"sub"`
	Audience        audience    `json:"aud"`
	AuthorizedParty string      `json:"azp"`
	Expiry          numericDate `json:"exp"`
	IssuedAt        numericDate `json:"iat"`
	NotBefore       numericDate `json:"nbf"`
	AuthTime        numericDate `json:"auth_time"`
	ACR             string      `json:"acr"`
	AMR             []string    `json:"amr"`
}

// standardNames are the JSON names of standardClaims.
var standardNames = []string{"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "auth_time", "acr", "amr"}

// parseClaims decodes the claims set of a token. encoding/json matches
// names without regard to case, so a key such as "Exp" is refused: the
// claims read here are then the ones any other reader of the token sees.
func parseClaims(payload []byte) (*IDToken, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(payload, &keys); err != nil || keys == nil {
		return nil, errors.New("claims set is not a JSON object")
	}
	for k := range keys {
		for _, n := range standardNames {
			if k != n && strings.EqualFold(k, n) {
				return nil, fmt.Errorf("claim %q differs from %s only in case", k, n)
			}
		}
	}
	var sc standardClaims
	if err := json.Unmarshal(payload, &sc); err != nil {
		return nil, fmt.Errorf("claims set: %w", err)
	}
	return &IDToken{
		Issuer:          sc.Issuer,
		Subject:         sc.Subject,
		Audience:        sc.Audience,
		AuthorizedParty: sc.AuthorizedParty,
		Expiry:          time.Time(sc.Expiry),
		IssuedAt:        time.Time(sc.IssuedAt),
		NotBefore:       time.Time(sc.NotBefore),
		AuthTime:        time.Time(sc.AuthTime),
		ACR:             sc.ACR,
		AMR:             sc.AMR,
		claims:          payload,
	}, nil
}

// audience is the aud claim: one string or an array of strings (RFC 7519
// §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		*a = audience{s}
		return err
	case b[0] == '[':
		var s []string
		if err := json.Unmarshal(b, &s); err != nil {
			return &json.UnmarshalTypeError{Value: "array with a member that is not a string", Type: reflect.TypeFor[audience]()}
		}
		*a = s
		return nil
	}
	return &json.UnmarshalTypeError{Value: "value that is neither a string nor an array", Type: reflect.TypeFor[audience]()}
}

// maxNumericDate bounds the numeric dates accepted (the year 36812): larger
// ones are garbage, and would overflow time arithmetic.
const maxNumericDate = 1 << 40

// numericDate is a JWT NumericDate (RFC 7519 §2): seconds since the epoch,
// possibly fractional. A string holding a number is refused. The zero
// time stands for an absent claim.
type numericDate time.Time

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return &json.UnmarshalTypeError{Value: "non-number", Type: reflect.TypeFor[numericDate]()}
	}
	x, err := strconv.ParseFloat(string(b), 64)
	if err != nil || x < 0 || x > maxNumericDate {
		return &json.UnmarshalTypeError{Value: "number out of range", Type: reflect.TypeFor[numericDate]()}
	}
	sec, frac := math.Modf(x)
	*d = numericDate(time.Unix(int64(sec), int64(frac*1e9)))
	return nil
}

func (c *Client) checkClaims(cl *IDToken) error {
	if cl.Issuer != c.meta.Issuer {
		return invalidIDToken("wrong issuer")
	}
	if !slices.Contains(cl.Audience, c.cfg.ClientID) {
		return invalidIDToken("audience does not contain the client's client_id")
	}
	if (len(cl.Audience) > 1 || cl.AuthorizedParty != "") && cl.AuthorizedParty != c.cfg.ClientID {
		return invalidIDToken("azp is not the client's client_id")
	}
	now, skew := c.now(), c.cfg.Skew
	switch {
	case cl.Expiry.IsZero():
		return invalidIDToken("no exp")
	case !now.Before(cl.Expiry.Add(skew)):
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
// PS256 or ES256 signatures: a service can call it at start to check its
// broker configuration. Validation fetches on its own when needed.
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
