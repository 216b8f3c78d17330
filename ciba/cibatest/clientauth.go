package cibatest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/ivr/callerverify/ciba"
)

const (
	// clockSkew is tolerated on the client assertion's exp, iat and nbf.
	clockSkew = 30 * time.Second
	// maxAssertionLife bounds exp-iat, as Idura recommends.
	maxAssertionLife = 5 * time.Minute
	// jwksTTL is how long a fetched client JWKS is used before a refetch
	// (an unknown kid refetches at once).
	jwksTTL = 10 * time.Minute
)

// Client is an application registered at the broker. It authenticates with
// private_key_jwt against JWKS or JWKSURL, or with Secret
// (client_secret_basic / client_secret_post), as far as the profile allows
// (transmit: secrets only). Both kinds may be set.
type Client struct {
	ID string
	// JWKS is the JSON of the JWK Set registered for private_key_jwt, as
	// ciba.PublicJWKS makes it or an operator's file holds it (private keys
	// are reduced to their public part), or
	JWKS []byte
	// JWKSURL is fetched with the broker's fetch client (SetFetchClient),
	// cached for 10 minutes and refetched when an assertion names an
	// unknown kid.
	JWKSURL string
	// Secret enables client_secret_basic and client_secret_post.
	Secret string
	// DeliveryMode is DeliveryPoll (also "") or DeliveryPing; ping only
	// where the profile offers it (generic). A ping client must send a
	// client_notification_token with every request, and is told at
	// NotificationEndpoint when a request ends.
	DeliveryMode string
	// NotificationEndpoint is the ping client's absolute http(s)
	// client notification endpoint, POSTed to with the broker's fetch client
	// (SetFetchClient).
	NotificationEndpoint string
}

type client struct {
	Client
	keys      jwk.Set // parsed from JWKS
	fetched   jwk.Set // from JWKSURL
	fetchedAt time.Time
}

// RegisterClient registers c, replacing any client with the same ID.
func (b *Broker) RegisterClient(c Client) error {
	if c.ID == "" {
		return errors.New("cibatest: register client: empty ID")
	}
	if c.JWKS == nil && c.JWKSURL == "" && c.Secret == "" {
		return errors.New("cibatest: register client: needs JWKS, JWKSURL or Secret")
	}
	if c.JWKS != nil && c.JWKSURL != "" {
		return errors.New("cibatest: register client: JWKS and JWKSURL are exclusive")
	}
	var keys jwk.Set
	if c.JWKS != nil {
		set, err := jwk.Parse(c.JWKS)
		if err != nil {
			return fmt.Errorf("cibatest: register client: JWKS is not a JWK Set: %w", err)
		}
		if keys, err = jwk.PublicSetOf(set); err != nil {
			return fmt.Errorf("cibatest: register client: public keys: %w", err)
		}
		if keys.Len() == 0 {
			return errors.New("cibatest: register client: empty JWKS")
		}
	}
	if c.JWKSURL != "" && !absoluteHTTP(c.JWKSURL) {
		return errors.New("cibatest: register client: JWKSURL must be an absolute http(s) URL")
	}
	if c.Secret == "" && !b.spec.allows(methodPrivateKeyJWT) {
		return fmt.Errorf("cibatest: register client: profile %s accepts client secrets only: Secret is required", b.spec.name)
	}
	switch c.DeliveryMode {
	case "", DeliveryPoll:
		c.DeliveryMode = DeliveryPoll
		if c.NotificationEndpoint != "" {
			return errors.New("cibatest: register client: NotificationEndpoint is only for ping mode")
		}
	case DeliveryPing:
		if !b.spec.offersPing() {
			return fmt.Errorf("cibatest: register client: profile %s offers poll mode only", b.spec.name)
		}
		if !absoluteHTTP(c.NotificationEndpoint) {
			return errors.New("cibatest: register client: ping mode needs NotificationEndpoint, an absolute http(s) URL")
		}
	default:
		return errors.New("cibatest: register client: DeliveryMode must be poll or ping")
	}
	b.mu.Lock()
	b.clients[c.ID] = &client{Client: c, keys: keys}
	b.mu.Unlock()
	return nil
}

// absoluteHTTP reports whether s is an absolute http(s) URL.
func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// authError is a client authentication failure: always 401 invalid_client
// with a fixed description.
type authError struct {
	desc  string
	basic bool // the client tried HTTP Basic: answer with WWW-Authenticate
}

func (e *authError) Error() string { return e.desc }

func (b *Broker) writeAuthError(w http.ResponseWriter, err error) {
	var ae *authError
	desc := "client authentication failed"
	if errors.As(err, &ae) {
		desc = ae.desc
		if ae.basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="cibatest"`)
		}
	}
	oauthError(w, http.StatusUnauthorized, "invalid_client", desc)
}

// clientRequest reads the form of a request to an endpoint that
// authenticates the client (bc-authorize, token) and authenticates it. When
// either fails it has answered the request, and ok is false.
func (b *Broker) clientRequest(w http.ResponseWriter, r *http.Request) (form url.Values, clientID string, ok bool) {
	form, ok = parseForm(w, r)
	if !ok {
		return nil, "", false
	}
	clientID, err := b.authenticate(r, form)
	if err != nil {
		b.writeAuthError(w, err)
		return nil, "", false
	}
	return form, clientID, true
}

// authenticate returns the authenticated client's ID.
func (b *Broker) authenticate(r *http.Request, form url.Values) (string, error) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	assertion := form.Get("client_assertion")
	assertionType := form.Get("client_assertion_type")
	postSecret := form.Get("client_secret")
	formID := form.Get("client_id")

	methods := 0
	for _, used := range []bool{hasBasic, assertion != "" || assertionType != "", postSecret != ""} {
		if used {
			methods++
		}
	}
	switch {
	case methods == 0:
		return "", &authError{desc: "client authentication required (" + b.methodsText() + ")"}
	case methods > 1:
		return "", &authError{desc: "use exactly one client authentication method", basic: hasBasic}
	case hasBasic && !b.spec.allows(methodSecretBasic),
		postSecret != "" && !b.spec.allows(methodSecretPost),
		!hasBasic && postSecret == "" && !b.spec.allows(methodPrivateKeyJWT):
		return "", &authError{desc: "client authentication method not accepted: use " + b.methodsText(), basic: hasBasic}
	case hasBasic:
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic.
		if id, err := url.QueryUnescape(basicID); err == nil {
			basicID = id
		}
		if s, err := url.QueryUnescape(basicSecret); err == nil {
			basicSecret = s
		}
		if formID != "" && formID != basicID {
			return "", &authError{desc: "client_id differs from the authenticated client", basic: true}
		}
		return b.checkSecret(basicID, basicSecret, true)
	case postSecret != "":
		return b.checkSecret(formID, postSecret, false)
	}
	if assertionType != ciba.ClientAssertionType {
		return "", &authError{desc: "client_assertion_type must be " + ciba.ClientAssertionType}
	}
	if assertion == "" {
		return "", &authError{desc: "client_assertion is missing"}
	}
	return b.verifyAssertion(r.Context(), assertion, formID)
}

func (b *Broker) checkSecret(id, secret string, basic bool) (string, error) {
	b.mu.Lock()
	c := b.clients[id]
	b.mu.Unlock()
	if c == nil || c.Secret == "" || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return "", &authError{desc: "unknown client or wrong client secret", basic: basic}
	}
	return id, nil
}

// assertionClaims are the claims of a private_key_jwt assertion. Numeric
// dates may be fractional.
type assertionClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *json.Number    `json:"exp"`
	Iat *json.Number    `json:"iat"`
	Nbf *json.Number    `json:"nbf"`
	Jti string          `json:"jti"`
}

func numericDate(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(*n), 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, 0).Add(time.Duration(f * float64(time.Second))), true
}

// allowedAssertionAlg maps the accepted algorithms to their key type.
func allowedAssertionAlg(alg jwa.SignatureAlgorithm) (jwa.KeyType, bool) {
	switch alg {
	case jwa.RS256(), jwa.PS256():
		return jwa.RSA(), true
	case jwa.ES256():
		return jwa.EC(), true
	}
	return jwa.KeyType{}, false
}

// verifyAssertion checks a private_key_jwt client assertion: signature
// against the client's keys, iss = sub = client_id, aud, exp, iat, nbf and
// a jti not seen before. The jti is remembered only once everything else
// passed.
func (b *Broker) verifyAssertion(ctx context.Context, assertion, formID string) (string, error) {
	fail := func(desc string) (string, error) { return "", &authError{desc: desc} }
	if strings.Count(assertion, ".") != 2 {
		return fail("client_assertion must be a compact JWS")
	}
	msg, err := jws.ParseString(assertion)
	if err != nil || len(msg.Signatures()) != 1 {
		return fail("client_assertion is not a valid JWS")
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg, ok := hdr.Algorithm()
	if !ok {
		return fail("client_assertion has no alg")
	}
	kty, ok := allowedAssertionAlg(alg)
	if !ok {
		return fail("client_assertion alg must be RS256, PS256 or ES256")
	}
	kid, _ := hdr.KeyID()

	var cl assertionClaims
	if err := json.Unmarshal(msg.Payload(), &cl); err != nil {
		return fail("client_assertion payload is not a JSON claims set")
	}
	if cl.Iss == "" {
		return fail("client_assertion has no iss")
	}
	if formID != "" && formID != cl.Iss {
		return fail("client_id differs from the client_assertion iss")
	}
	b.mu.Lock()
	c := b.clients[cl.Iss]
	b.mu.Unlock()
	if c == nil || (c.keys == nil && c.JWKSURL == "") {
		return fail("unknown client or no keys registered for private_key_jwt")
	}

	set, fetched, err := b.clientKeys(ctx, c, kid)
	if err != nil {
		return fail("client JWKS could not be fetched")
	}
	if !verifyWithSet(assertion, alg, kty, kid, set) {
		if c.JWKSURL == "" || fetched {
			return fail("client_assertion signature does not verify with the registered keys")
		}
		// The client may have rotated its keys: refetch once.
		set, err = b.fetchClientKeys(ctx, c)
		if err != nil || !verifyWithSet(assertion, alg, kty, kid, set) {
			return fail("client_assertion signature does not verify with the registered keys")
		}
	}

	if cl.Sub != cl.Iss {
		return fail("client_assertion sub must equal iss (the client_id)")
	}
	if !b.audienceOK(cl.Aud) {
		return fail("client_assertion aud must be the issuer")
	}
	now := b.now()
	exp, ok := numericDate(cl.Exp)
	if !ok {
		return fail("client_assertion has no exp")
	}
	if !now.Before(exp.Add(clockSkew)) {
		return fail("client_assertion has expired")
	}
	if iat, ok := numericDate(cl.Iat); ok {
		if iat.After(now.Add(clockSkew)) {
			return fail("client_assertion iat is in the future")
		}
		if exp.Sub(iat) > maxAssertionLife+clockSkew {
			return fail("client_assertion lives longer than 5 minutes")
		}
	} else if exp.Sub(now) > maxAssertionLife+clockSkew {
		return fail("client_assertion lives longer than 5 minutes")
	}
	if nbf, ok := numericDate(cl.Nbf); ok && nbf.After(now.Add(clockSkew)) {
		return fail("client_assertion is not valid yet")
	}
	if cl.Jti == "" {
		return fail("client_assertion has no jti")
	}
	if !b.useJTI(cl.Iss, cl.Jti, exp.Add(clockSkew), now) {
		return fail("client_assertion jti was already used")
	}
	return cl.Iss, nil
}

// verifyWithSet verifies the JWS with the key named by kid, or with every
// key of the right type when there is no kid.
func verifyWithSet(assertion string, alg jwa.SignatureAlgorithm, kty jwa.KeyType, kid string, set jwk.Set) bool {
	if set == nil {
		return false
	}
	try := func(k jwk.Key) bool {
		if k.KeyType() != kty {
			return false
		}
		if ka, ok := k.Algorithm(); ok && ka.String() != alg.String() {
			return false
		}
		_, err := jws.Verify([]byte(assertion), jws.WithKey(alg, k))
		return err == nil
	}
	if kid != "" {
		k, ok := set.LookupKeyID(kid)
		return ok && try(k)
	}
	for i := range set.Len() {
		if k, ok := set.Key(i); ok && try(k) {
			return true
		}
	}
	return false
}

// methodsText names the client authentication methods of the profile.
func (b *Broker) methodsText() string {
	if b.spec.allows(methodPrivateKeyJWT) {
		return "private_key_jwt, client_secret_basic or client_secret_post"
	}
	return "client_secret_basic or client_secret_post"
}

// audienceOK accepts the issuer with or without a trailing slash, or the
// token endpoint, as a string or in an array.
func (b *Broker) audienceOK(raw json.RawMessage) bool {
	var auds []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		auds = []string{one}
	} else if err := json.Unmarshal(raw, &auds); err != nil {
		return false
	}
	for _, a := range auds {
		switch a {
		case b.cfg.Issuer, b.base, b.base + "/", b.base + b.spec.tokenPath:
			return true
		}
	}
	return false
}

// useJTI records a jti until forgetAt and reports whether it was fresh.
func (b *Broker) useJTI(clientID, jti string, forgetAt, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.nextJTISwp) {
		for k, t := range b.seenJTI {
			if now.After(t) {
				delete(b.seenJTI, k)
			}
		}
		b.nextJTISwp = now.Add(time.Minute)
	}
	key := clientID + "\x00" + jti
	if t, seen := b.seenJTI[key]; seen && !now.After(t) {
		return false
	}
	b.seenJTI[key] = forgetAt
	return true
}

// clientKeys returns the client's static keys, or its cached fetched keys,
// fetching them when missing, stale or lacking kid; fetched reports a
// fetch.
func (b *Broker) clientKeys(ctx context.Context, c *client, kid string) (set jwk.Set, fetched bool, err error) {
	if c.keys != nil {
		return c.keys, false, nil
	}
	b.mu.Lock()
	set, at := c.fetched, c.fetchedAt
	b.mu.Unlock()
	fresh := set != nil && b.now().Sub(at) < jwksTTL
	if fresh && kid != "" {
		_, fresh = set.LookupKeyID(kid)
	}
	if fresh {
		return set, false, nil
	}
	got, err := b.fetchClientKeys(ctx, c)
	if err != nil {
		if set != nil {
			return set, true, nil // keep using the old keys while the URL is down
		}
		return nil, true, err
	}
	return got, true, nil
}

func (b *Broker) fetchClientKeys(ctx context.Context, c *client) (jwk.Set, error) {
	b.mu.Lock()
	hc := b.fetchClient
	b.mu.Unlock()
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.JWKSURL, nil)
	if err != nil {
		return nil, fmt.Errorf("cibatest: fetch client jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cibatest: fetch client jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cibatest: fetch client jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("cibatest: fetch client jwks: %w", err)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("cibatest: parse client jwks: %w", err)
	}
	pub, err := jwk.PublicSetOf(set)
	if err != nil {
		return nil, fmt.Errorf("cibatest: parse client jwks: %w", err)
	}
	b.mu.Lock()
	c.fetched, c.fetchedAt = pub, b.now()
	b.mu.Unlock()
	return pub, nil
}
