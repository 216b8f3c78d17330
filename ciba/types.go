package ciba

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// GrantType is the CIBA grant type sent to the token endpoint.
const GrantType = "urn:openid:params:grant-type:ciba"

// ClientAssertionType is the client_assertion_type of private_key_jwt.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// DefaultInterval is the polling interval used when the broker returns none
// (CIBA Core §7.3).
const DefaultInterval = 5 * time.Second

// SlowDownStep is the minimum amount by which the polling interval grows on
// every slow_down (CIBA Core §11).
const SlowDownStep = 5 * time.Second

// AuthRequest is a backchannel authentication request. Exactly one of
// LoginHint, LoginHintToken and IDTokenHint must be set.
//
// The hints identify a person; every printed form of an AuthRequest redacts
// them, so a request can be logged by accident without leaking anything.
type AuthRequest struct {
	Scope                   []string        // must contain "openid"; defaults to ["openid"]
	LoginHint               string          // e.g. "sub:ssn:196802020575" (Idura)
	LoginHintToken          string          // a JWT hint
	IDTokenHint             string          // a previously issued ID token
	ACRValues               []string        // e.g. "urn:grn:authn:se:bankid"
	BindingMessage          string          // shown on the user's device
	AuthorizationDetails    json.RawMessage // RAR JSON array, sent URL-encoded
	RequestedExpiry         time.Duration   // sent in whole seconds; 0 omits it
	UserCode                string          // CIBA user_code
	RequestContext          json.RawMessage // Transmit/FAPI request_context JSON
	ClientNotificationToken string          // ping mode bearer token
	Extra                   url.Values      // any further provider parameters
}

// String describes the request without its hints or tokens.
func (r AuthRequest) String() string {
	var b strings.Builder
	b.WriteString("ciba.AuthRequest{scope=")
	b.WriteString(strings.Join(r.Scope, " "))
	switch {
	case r.LoginHint != "":
		b.WriteString(" login_hint=[redacted]")
	case r.LoginHintToken != "":
		b.WriteString(" login_hint_token=[redacted]")
	case r.IDTokenHint != "":
		b.WriteString(" id_token_hint=[redacted]")
	}
	if len(r.ACRValues) > 0 {
		b.WriteString(" acr_values=" + strings.Join(r.ACRValues, " "))
	}
	if r.BindingMessage != "" {
		b.WriteString(" binding_message=[set]")
	}
	if len(r.AuthorizationDetails) > 0 {
		b.WriteString(" authorization_details=" + string(r.AuthorizationDetails))
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v redacts too.
func (r AuthRequest) GoString() string { return r.String() }

// Format prints the redacted form for every verb.
func (r AuthRequest) Format(f fmt.State, verb rune) { formatRedacted(f, verb, r.String()) }

// LogValue redacts the request for log/slog.
func (r AuthRequest) LogValue() slog.Value { return slog.StringValue(r.String()) }

// AuthResponse is the broker's acknowledgement of an AuthRequest.
type AuthResponse struct {
	// AuthReqID identifies the request at the token endpoint. It is a bearer
	// handle: do not log it.
	AuthReqID string
	// ExpiresIn is the lifetime the broker gave the request.
	ExpiresIn time.Duration
	// Interval is the polling interval the broker asked for; 0 when absent
	// (poll every DefaultInterval then).
	Interval time.Duration
	// BindingMessage is Idura's non-standard camelCase "bindingMessage": the
	// Norwegian BankID word pair the caller must pick in the app.
	BindingMessage string
	// ExpiresAt is the local receipt time plus ExpiresIn: the deadline after
	// which polling stops even if the broker never says expired_token.
	ExpiresAt time.Time
}

// PollInterval is Interval, or DefaultInterval when the broker gave none.
func (a *AuthResponse) PollInterval() time.Duration {
	if a.Interval > 0 {
		return a.Interval
	}
	return DefaultInterval
}

// String hides the auth_req_id.
func (a AuthResponse) String() string {
	return fmt.Sprintf("ciba.AuthResponse{expires_in=%s interval=%s binding_message=%q}", a.ExpiresIn, a.Interval, a.BindingMessage)
}

// GoString is String.
func (a AuthResponse) GoString() string { return a.String() }

// Format prints the redacted form for every verb.
func (a AuthResponse) Format(f fmt.State, verb rune) { formatRedacted(f, verb, a.String()) }

// LogValue hides the auth_req_id.
func (a AuthResponse) LogValue() slog.Value { return slog.StringValue(a.String()) }

// TokenResponse is a successful token response. Client.Token never returns
// one whose ID token failed validation: IDToken is the validated token.
type TokenResponse struct {
	AccessToken  string
	TokenType    string
	RefreshToken string
	// RawIDToken is the ID token as the broker sent it (a compact JWS),
	// e.g. for a later AuthRequest.IDTokenHint.
	RawIDToken string
	// IDToken is RawIDToken validated: its standard claims, and Claims for
	// the rest.
	IDToken   *IDToken
	Scope     string
	ExpiresIn time.Duration
}

// String hides the tokens.
func (t TokenResponse) String() string {
	return fmt.Sprintf("ciba.TokenResponse{token_type=%q scope=%q expires_in=%s id_token=%t}", t.TokenType, t.Scope, t.ExpiresIn, t.RawIDToken != "")
}

// GoString is String.
func (t TokenResponse) GoString() string { return t.String() }

// Format prints the redacted form for every verb.
func (t TokenResponse) Format(f fmt.State, verb rune) { formatRedacted(f, verb, t.String()) }

// formatRedacted formats a redacting type by its redacted form s. String
// alone covers %v, %s, %q, %x and %X; any other verb (%d, %t, …) would
// print the fields, so it prints s as a bad verb instead.
func formatRedacted(f fmt.State, verb rune, s string) {
	if !strings.ContainsRune("vsqxX", verb) {
		fmt.Fprintf(f, "%%!%c(%s)", verb, s)
		return
	}
	if verb == 'v' {
		verb = 's'
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), s)
}

// LogValue hides the tokens.
func (t TokenResponse) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Error is an OAuth/CIBA error response from the broker. Error() prints only
// the code: error_description is broker text that may echo the login hint.
// errors.Is compares Code, so errors.Is(err, ErrSlowDown) works for any
// slow_down response.
type Error struct {
	Code        string        // "authorization_pending", "slow_down", …
	Description string        // error_description, informational only
	StatusCode  int           // HTTP status, 0 for sentinels
	RetryAfter  time.Duration // from a Retry-After header, 0 if none
}

func (e *Error) Error() string { return "ciba: broker error " + e.Code }

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinel errors, compared by code with errors.Is.
var (
	ErrAuthorizationPending = &Error{Code: "authorization_pending"}
	ErrSlowDown             = &Error{Code: "slow_down"}
	ErrAccessDenied         = &Error{Code: "access_denied"}
	ErrExpiredToken         = &Error{Code: "expired_token"}
	ErrInvalidGrant         = &Error{Code: "invalid_grant"}
	ErrInvalidRequest       = &Error{Code: "invalid_request"}
	ErrInvalidClient        = &Error{Code: "invalid_client"}
	ErrUnknownUserID        = &Error{Code: "unknown_user_id"}
	ErrUnauthorizedClient   = &Error{Code: "unauthorized_client"}
	ErrInvalidBindingMsg    = &Error{Code: "invalid_binding_message"}
)

// ErrTransport wraps failures to reach the broker or to read its answer
// (connection refused, timeouts, 5xx, a body that is not the JSON expected).
// Such failures are worth retrying; broker *Error values are not.
var ErrTransport = errors.New("ciba: broker unreachable or answered garbage")

// ErrExpired is returned by Poll when the request's deadline (from
// expires_in) passes without a decision, whether or not the broker ever said
// expired_token.
var ErrExpired = errors.New("ciba: authentication request expired")

// ErrInvalidIDToken wraps every reason an ID token is refused.
var ErrInvalidIDToken = errors.New("ciba: invalid ID token")
