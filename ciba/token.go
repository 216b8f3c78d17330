package ciba

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Token asks the token endpoint once for the outcome of authReqID (CIBA Core
// §10.1). It returns the tokens, with TokenResponse.IDToken the validated
// ID token, or an error: a broker *Error (compare with
// errors.Is against ErrAuthorizationPending, ErrSlowDown, ErrAccessDenied,
// ErrExpiredToken, ErrInvalidGrant, …; 400, 401 and 403 are treated alike),
// an error wrapping ErrTransport, or one wrapping ErrInvalidIDToken.
//
// Token never has two requests in flight for one auth_req_id: a second call
// for the same id waits for the first to finish (or for its ctx to end).
func (c *Client) Token(ctx context.Context, authReqID string) (*TokenResponse, error) {
	const step = "token request"
	if authReqID == "" {
		return nil, fmt.Errorf("ciba: %s: empty auth_req_id", step)
	}
	release, err := c.acquire(ctx, authReqID)
	if err != nil {
		return nil, fmt.Errorf("ciba: %s: %w", step, err)
	}
	defer release()
	form := url.Values{"grant_type": {GrantType}, "auth_req_id": {authReqID}}
	status, h, body, err := c.post(ctx, step, c.meta.TokenEndpoint, form)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, brokerError(step, status, h, body)
	}
	tr, err := decodeTokenResponse(body)
	if err != nil {
		return nil, fmt.Errorf("ciba: %s: %w: %w", step, ErrTransport, err)
	}
	if tr.RawIDToken == "" {
		return nil, fmt.Errorf("ciba: %s: %w: token response without id_token", step, ErrInvalidIDToken)
	}
	idt, err := c.ValidateIDToken(ctx, tr.RawIDToken)
	if err != nil {
		return nil, fmt.Errorf("ciba: %s: %w", step, err)
	}
	tr.IDToken = idt
	return tr, nil
}

// acquire waits until no other token request for id is in flight, then
// marks one as in flight until release is called.
func (c *Client) acquire(ctx context.Context, id string) (release func(), err error) {
	for {
		c.inflightMu.Lock()
		busy, ok := c.inflight[id]
		if !ok {
			done := make(chan struct{})
			c.inflight[id] = done
			c.inflightMu.Unlock()
			return func() {
				c.inflightMu.Lock()
				delete(c.inflight, id)
				c.inflightMu.Unlock()
				close(done)
			}, nil
		}
		c.inflightMu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// decodeTokenResponse decodes a token endpoint success body, accepting
// expires_in as a number or a string. Its errors never quote the body.
func decodeTokenResponse(body []byte) (*TokenResponse, error) {
	var r struct {
		AccessToken  string  `json:"access_token"`
		TokenType    string  `json:"token_type"`
		RefreshToken string  `json:"refresh_token"`
		IDToken      string  `json:"id_token"`
		Scope        string  `json:"scope"`
		ExpiresIn    seconds `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, errors.New("invalid token response JSON")
	}
	if r.AccessToken == "" && r.IDToken == "" {
		return nil, errors.New("token response without tokens")
	}
	return &TokenResponse{
		AccessToken:  r.AccessToken,
		TokenType:    r.TokenType,
		RefreshToken: r.RefreshToken,
		RawIDToken:   r.IDToken,
		Scope:        r.Scope,
		ExpiresIn:    r.ExpiresIn.duration(),
	}, nil
}

// maxTransportFailures is how many transport failures in a row Poll rides
// out (polling on at the current interval) before giving up.
const maxTransportFailures = 3

// Poll asks for the token every interval (ar.Interval, DefaultInterval when
// the broker gave none) until the user decides, the request expires or ctx
// ends. On slow_down the interval grows by at least SlowDownStep for this
// and all later polls, and a Retry-After header is honoured. onPending, when
// not nil, gets the broker's error_description of every
// authorization_pending (e.g. Idura's "awaiting user identification").
//
// Poll stops at ar.ExpiresAt (now + ar.ExpiresIn when ExpiresAt is zero; no
// deadline but ctx when both are zero) even if the broker never says
// expired_token: it never polls after the deadline, but returns there;
// then, and when it does say so, the error matches ErrExpired (and, in the
// latter case, ErrExpiredToken too). access_denied, invalid_grant, an ID
// token that fails validation, or repeated transport failures end polling
// with that error.
func (c *Client) Poll(ctx context.Context, ar *AuthResponse, onPending func(description string)) (*TokenResponse, error) {
	if ar == nil || ar.AuthReqID == "" {
		return nil, errors.New("ciba: poll: no auth_req_id")
	}
	deadline := ar.ExpiresAt
	if deadline.IsZero() && ar.ExpiresIn > 0 {
		deadline = c.now().Add(ar.ExpiresIn)
	}
	interval := ar.PollInterval()
	wait := interval
	transportFailures := 0
	timer := time.NewTimer(interval)
	timer.Stop()
	defer timer.Stop()
	for {
		if !deadline.IsZero() {
			left := deadline.Sub(c.now())
			if left <= 0 {
				return nil, fmt.Errorf("ciba: poll: %w", ErrExpired)
			}
			if wait >= left {
				// The next poll would come after the deadline: wait for the
				// deadline and stop there.
				timer.Reset(left)
				select {
				case <-ctx.Done():
					return nil, fmt.Errorf("ciba: poll: %w", context.Cause(ctx))
				case <-timer.C:
				}
				return nil, fmt.Errorf("ciba: poll: %w", ErrExpired)
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ciba: poll: %w", context.Cause(ctx))
		case <-timer.C:
		}
		tok, err := c.Token(ctx, ar.AuthReqID)
		if err == nil {
			return tok, nil
		}
		wait = interval
		var be *Error
		switch {
		case errors.As(err, &be) && be.Code == ErrAuthorizationPending.Code:
			transportFailures = 0
			if onPending != nil {
				onPending(be.Description)
			}
		case errors.As(err, &be) && be.Code == ErrSlowDown.Code:
			transportFailures = 0
			interval += SlowDownStep
			wait = interval
		case errors.As(err, &be) && be.Code == ErrExpiredToken.Code:
			return nil, fmt.Errorf("ciba: poll: %w: %w", ErrExpired, err)
		case errors.Is(err, ErrTransport) && ctx.Err() == nil:
			transportFailures++
			if transportFailures >= maxTransportFailures {
				return nil, err
			}
		default:
			return nil, err
		}
		if be != nil && be.RetryAfter > wait {
			wait = be.RetryAfter
		}
	}
}

// CheckClientAuth proves the broker accepts the client's authentication
// without starting an authentication: it asks the token endpoint for a random
// auth_req_id. invalid_grant (or expired_token) means the client was
// authenticated and only the id was refused; invalid_client,
// unauthorized_client and anything else are returned as errors.
func (c *Client) CheckClientAuth(ctx context.Context) error {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("ciba: check client auth: %w", err)
	}
	_, err := c.Token(ctx, "ciba-check-"+base64.RawURLEncoding.EncodeToString(b[:]))
	switch {
	case err == nil:
		return errors.New("ciba: check client auth: broker issued a token for a made-up auth_req_id")
	case errors.Is(err, ErrInvalidGrant), errors.Is(err, ErrExpiredToken):
		return nil
	}
	return fmt.Errorf("ciba: check client auth: %w", err)
}
