package cibatest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ivr/callerverify/ciba"
)

const (
	// idTokenLifetime is the ID token's exp - iat.
	idTokenLifetime = 5 * time.Minute
	// accessTokenExpiresIn is the idura token response's expires_in, sent
	// as a string as in Idura's example.
	accessTokenExpiresIn = "120"
)

// handleToken serves the token endpoint for the CIBA grant.
func (b *Broker) handleToken(w http.ResponseWriter, r *http.Request) {
	form, clientID, ok := b.clientRequest(w, r)
	if !ok {
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case ciba.GrantType:
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only urn:openid:params:grant-type:ciba is supported")
		return
	}
	id := form.Get("auth_req_id")
	if id == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "auth_req_id is required")
		return
	}

	now := b.now()
	b.mu.Lock()
	b.sweepLocked(now)
	req := b.byAuthReq[id]
	if req == nil || req.clientID != clientID || req.tokenIssued {
		b.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "invalid_grant", "auth_req_id is unknown, belongs to another client or was already used")
		return
	}
	req.polls++
	if req.polls > 1 && now.Sub(req.lastPoll) < req.interval {
		req.interval += ciba.SlowDownStep
		req.lastPoll = now
		interval := req.interval
		b.mu.Unlock()
		desc := b.spec.slowDown
		if desc == "" {
			desc = fmt.Sprintf("polling too fast: wait at least %d s between polls", ceilSeconds(interval))
		}
		if b.spec.retryAfter {
			// Auth0: the wait grows while the client keeps polling too fast.
			w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(interval), 10))
		}
		oauthError(w, http.StatusBadRequest, "slow_down", desc)
		return
	}
	req.lastPoll = now
	state, pending, at := req.status(now)
	if state == StateExpired && b.cfg.SilentExpiry {
		state = StatePending
		_, pending, _ = req.status(req.expires.Add(-time.Nanosecond))
	}
	if state == StateApproved {
		req.tokenIssued = true // reserved; undone if signing fails
	}
	var (
		user     = req.user
		reqACR   = req.acr
		reqCntry = req.country
		ssnScope = req.ssnScope
	)
	b.mu.Unlock()

	switch state {
	case StatePending:
		oauthError(w, http.StatusBadRequest, "authorization_pending", pending)
		return
	case StateDeclined:
		oauthError(w, http.StatusBadRequest, "access_denied", b.spec.denied)
		return
	case StateCancelled:
		oauthError(w, http.StatusBadRequest, "access_denied", DeniedCancelled)
		return
	case StateExpired:
		oauthError(w, http.StatusBadRequest, b.spec.expiredCode, b.spec.expired)
		return
	}

	var claims map[string]any
	if b.spec.name == ProfileIdura {
		claims = b.idTokenClaims(clientID, user, reqCntry, reqACR, ssnScope, at, now)
	} else {
		claims = b.userClaims(clientID, user, at, now)
	}
	key := b.currentKey()
	var (
		idToken string
		err     error
	)
	if b.cfg.IDTokenHook != nil {
		idToken, err = b.cfg.IDTokenHook(claims, key)
	} else {
		idToken, err = sign(claims, key)
	}
	if err != nil {
		b.mu.Lock()
		req.tokenIssued = false
		b.mu.Unlock()
		oauthError(w, http.StatusInternalServerError, "server_error", "the ID token could not be issued")
		return
	}
	expiresIn := b.spec.accessTokenExpiresIn
	if expiresIn == nil {
		expiresIn = accessTokenExpiresIn
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": randomID(32),
		"token_type":   "Bearer",
		"expires_in":   expiresIn,
		"id_token":     idToken,
		"scope":        "openid",
	})
}

// userClaims are the ID token claims of the auth0, transmit and generic
// profiles: sub is the user id (Auth0's "auth0|…"), plus the name, and the
// e-mail and phone number where the profile releases them.
func (b *Broker) userClaims(clientID string, u User, authTime, now time.Time) map[string]any {
	c := map[string]any{
		"iss":         b.cfg.Issuer,
		"aud":         []string{clientID},
		"sub":         u.UserID,
		"iat":         now.Unix(),
		"exp":         now.Add(idTokenLifetime).Unix(),
		"name":        u.name(),
		"given_name":  u.GivenName,
		"family_name": u.FamilyName,
	}
	if u.UserID == "" { // a user added with only a phone or e-mail
		c["sub"], _ = subject(b.cfg.Issuer, u.key())
	}
	if u.Email != "" {
		c["email"] = u.Email
	}
	switch b.spec.name {
	case ProfileTransmit:
		if u.Phone != "" {
			c["phone_number"] = u.Phone
		}
	case ProfileGeneric:
		c["auth_time"] = authTime.Unix()
	}
	return c
}

// idTokenClaims are Idura-like claims. As at Idura, the Norwegian national
// identity number (socialno) is released only when the "ssn" scope was
// asked for; the Swedish ssn claim always is.
func (b *Broker) idTokenClaims(clientID string, u User, cntry, acr string, ssnScope bool, authTime, now time.Time) map[string]any {
	sub, nameID := subject(b.cfg.Issuer, u.NationalID)
	c := map[string]any{
		"iss":                   b.cfg.Issuer,
		"aud":                   []string{clientID},
		"sub":                   sub,
		"iat":                   now.Unix(),
		"nbf":                   now.Unix(),
		"exp":                   now.Add(idTokenLifetime).Unix(),
		"auth_time":             authTime.Unix(),
		"acr":                   acr,
		"authenticationtype":    acr,
		"authenticationinstant": authTime.UTC().Format("2006-01-02T15:04:05.000Z"),
		"nameidentifier":        nameID,
		"country":               cntry,
		"name":                  strings.TrimSpace(u.GivenName + " " + u.FamilyName),
		"given_name":            u.GivenName,
		"family_name":           u.FamilyName,
	}
	if bd := u.birthDate(); bd != "" {
		c["birthdate"] = bd
	}
	if cntry == "SE" {
		c["identityscheme"] = "sebankid"
		c["ssn"] = u.NationalID
	} else {
		c["identityscheme"] = "nobankid-oidc"
		if ssnScope {
			c["socialno"] = u.NationalID
		}
	}
	return c
}
