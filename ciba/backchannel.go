package ciba

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// reservedParams may not be set through AuthRequest.Extra.
var reservedParams = []string{
	"scope", "login_hint", "login_hint_token", "id_token_hint", "acr_values",
	"binding_message", "authorization_details", "requested_expiry", "user_code",
	"request_context", "client_notification_token", "client_id", "client_secret",
	"client_assertion", "client_assertion_type", "grant_type", "auth_req_id",
}

// Authenticate sends a backchannel authentication request (CIBA Core §7.1)
// and returns the broker's acknowledgement. Broker refusals (unknown_user_id,
// invalid_request, invalid_client, …) are *Error values; transport failures
// wrap ErrTransport.
func (c *Client) Authenticate(ctx context.Context, req AuthRequest) (*AuthResponse, error) {
	form, err := authForm(req)
	if err != nil {
		return nil, fmt.Errorf("ciba: authentication request: %w", err)
	}
	const step = "authentication request"
	status, h, body, err := c.post(ctx, step, c.meta.BackchannelAuthenticationEndpoint, form)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, brokerError(step, status, h, body)
	}
	ar, err := decodeAuthResponse(body)
	if err != nil {
		return nil, fmt.Errorf("ciba: %s: %w: %w", step, ErrTransport, err)
	}
	if ar.ExpiresIn > 0 {
		ar.ExpiresAt = c.now().Add(ar.ExpiresIn)
	}
	return ar, nil
}

// authForm checks req and encodes it as form parameters.
func authForm(req AuthRequest) (url.Values, error) {
	form := url.Values{}
	scope := req.Scope
	if len(scope) == 0 {
		scope = []string{"openid"}
	}
	if !slices.Contains(scope, "openid") {
		return nil, errors.New("scope must contain openid")
	}
	form.Set("scope", strings.Join(scope, " "))
	hints := 0
	for _, p := range []struct{ name, v string }{
		{"login_hint", req.LoginHint},
		{"login_hint_token", req.LoginHintToken},
		{"id_token_hint", req.IDTokenHint},
	} {
		if p.v != "" {
			hints++
			form.Set(p.name, p.v)
		}
	}
	if hints != 1 {
		return nil, errors.New("exactly one of login_hint, login_hint_token and id_token_hint is required")
	}
	if len(req.ACRValues) > 0 {
		form.Set("acr_values", strings.Join(req.ACRValues, " "))
	}
	if req.BindingMessage != "" {
		form.Set("binding_message", req.BindingMessage)
	}
	if len(req.AuthorizationDetails) > 0 {
		compact, err := compactJSON(req.AuthorizationDetails, '[')
		if err != nil {
			return nil, fmt.Errorf("authorization_details: %w", err)
		}
		form.Set("authorization_details", compact)
	}
	if req.RequestedExpiry < 0 {
		return nil, errors.New("requested_expiry is negative")
	}
	if req.RequestedExpiry > 0 {
		secs := int64((req.RequestedExpiry + time.Second - 1) / time.Second)
		form.Set("requested_expiry", strconv.FormatInt(secs, 10))
	}
	if req.UserCode != "" {
		form.Set("user_code", req.UserCode)
	}
	if len(req.RequestContext) > 0 {
		compact, err := compactJSON(req.RequestContext, '{')
		if err != nil {
			return nil, fmt.Errorf("request_context: %w", err)
		}
		form.Set("request_context", compact)
	}
	if req.ClientNotificationToken != "" {
		form.Set("client_notification_token", req.ClientNotificationToken)
	}
	for k, vs := range req.Extra {
		if slices.Contains(reservedParams, k) {
			return nil, fmt.Errorf("extra parameter %q is reserved", k)
		}
		for _, v := range vs {
			form.Add(k, v)
		}
	}
	return form, nil
}

// compactJSON checks raw is JSON whose first token is open ('[' or '{') and
// returns it without insignificant whitespace.
func compactJSON(raw json.RawMessage, open byte) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", errors.New("not valid JSON")
	}
	if buf.Len() == 0 || buf.Bytes()[0] != open {
		if open == '[' {
			return "", errors.New("not a JSON array")
		}
		return "", errors.New("not a JSON object")
	}
	return buf.String(), nil
}

// maxSeconds bounds expires_in and interval (a year): larger values are
// garbage, and would overflow time.Duration arithmetic later.
const maxSeconds = 366 * 24 * 3600

// seconds decodes a JSON number or a string holding one (Idura's docs show
// expires_in as "120"). null decodes as 0.
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*s = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(str))
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f != f { // NaN
		return errors.New("not a number of seconds")
	}
	if f < 0 || f > maxSeconds {
		return errors.New("number of seconds out of range")
	}
	*s = seconds(f)
	return nil
}

func (s seconds) duration() time.Duration { return time.Duration(s) * time.Second }

// maxAuthReqID bounds the auth_req_id length; CIBA asks for an opaque
// handle of at least 128 bits, Auth0 sends a JWT-sized one.
const maxAuthReqID = 4096

// decodeAuthResponse decodes a bc-authorize success body. It keeps Idura's
// camelCase bindingMessage, accepts numbers as strings and ignores unknown
// members. Its errors never quote the body.
func decodeAuthResponse(body []byte) (*AuthResponse, error) {
	var r struct {
		AuthReqID      string  `json:"auth_req_id"`
		ExpiresIn      seconds `json:"expires_in"`
		Interval       seconds `json:"interval"`
		BindingMessage string  `json:"bindingMessage"`
		// Some brokers echo a snake_case binding_message.
		BindingMessageSnake string `json:"binding_message"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, errors.New("invalid authentication response JSON")
	}
	if r.AuthReqID == "" {
		return nil, errors.New("authentication response without auth_req_id")
	}
	if len(r.AuthReqID) > maxAuthReqID || !printable(r.AuthReqID) {
		return nil, errors.New("authentication response with a malformed auth_req_id")
	}
	if r.ExpiresIn <= 0 {
		return nil, errors.New("authentication response without a positive expires_in")
	}
	msg := r.BindingMessage
	if msg == "" {
		msg = r.BindingMessageSnake
	}
	return &AuthResponse{
		AuthReqID:      r.AuthReqID,
		ExpiresIn:      r.ExpiresIn.duration(),
		Interval:       r.Interval.duration(),
		BindingMessage: msg,
	}, nil
}

// printable reports whether s is visible ASCII only.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
