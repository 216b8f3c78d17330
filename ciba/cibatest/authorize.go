package cibatest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ivr/callerverify/ciba"
)

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// authParams is what a profile read from a bc-authorize request.
type authParams struct {
	hintKind, hint         string // HintSSN, … and the identifier, to find the user
	country, acr           string // idura: "SE" or "NO" and the acr_values
	callInitiator          string // idura SE
	binding                string // the client's binding_message, or the NO word pair
	choices                []string
	ssnScope               bool   // the "ssn" scope was asked for
	channel, customMessage string // transmit request_context
	expiresIn              time.Duration
}

// badParam is a 400 answer of bc-authorize, with a fixed description.
type badParam struct{ code, desc string }

func invalid(desc string) (authParams, *badParam) {
	return authParams{}, &badParam{"invalid_request", desc}
}

func invalidBinding(desc string) (authParams, *badParam) {
	return authParams{}, &badParam{"invalid_binding_message", desc}
}

// handleAuthorize serves the backchannel authentication endpoint. Error
// descriptions are fixed texts (printable ASCII, as RFC 6749 asks) and
// never contain the login hint.
func (b *Broker) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	form, clientID, ok := b.clientRequest(w, r)
	if !ok {
		return
	}
	var (
		p   authParams
		bad *badParam
	)
	switch b.spec.name {
	case ProfileIdura:
		p, bad = b.iduraParams(form)
	case ProfileAuth0:
		p, bad = b.auth0Params(form)
	case ProfileTransmit:
		p, bad = b.transmitParams(form)
	default:
		p, bad = b.genericParams(form)
	}
	if bad != nil {
		oauthError(w, http.StatusBadRequest, bad.code, bad.desc)
		return
	}
	b.mu.Lock()
	c := b.clients[clientID]
	b.mu.Unlock()
	var notifyToken string
	if c.DeliveryMode == DeliveryPing {
		notifyToken = form.Get("client_notification_token")
		switch {
		case notifyToken == "":
			oauthError(w, http.StatusBadRequest, "invalid_request", "client_notification_token is required for a ping mode client")
			return
		case !validBearer(notifyToken):
			oauthError(w, http.StatusBadRequest, "invalid_request", "client_notification_token must be a bearer token (RFC 6750 b64token) of at most 1024 characters")
			return
		}
	}

	now := b.now()
	expiresSec := ceilSeconds(p.expiresIn)
	interval := b.spec.interval
	if interval == 0 {
		interval = time.Duration(ceilSeconds(b.cfg.Interval)) * time.Second
		if b.cfg.Interval < 0 {
			interval = ciba.DefaultInterval // the CIBA default the client falls back to
		}
	}
	req := &request{
		spec:          b.spec,
		simID:         randomHex(8),
		authReqID:     randomID(32),
		clientID:      clientID,
		country:       p.country,
		acr:           p.acr,
		binding:       p.binding,
		choices:       p.choices,
		callInitiator: p.callInitiator,
		ssnScope:      p.ssnScope,
		hintType:      p.hintKind,
		maskedHint:    maskHint(p.hintKind, p.hint),
		channel:       p.channel,
		customMessage: p.customMessage,
		created:       now,
		expires:       now.Add(time.Duration(expiresSec) * time.Second),
		interval:      interval,
	}
	if notifyToken != "" {
		req.ping = &pingTarget{endpoint: c.NotificationEndpoint, token: notifyToken}
	}

	b.mu.Lock()
	user, known := b.users[userKey(p.hintKind, p.hint)]
	if known {
		req.user = user
		b.sweepLocked(now)
		b.seq++
		req.seq = b.seq
		b.supersedeLocked(req, now)
		b.reqs[req.simID] = req
		b.byAuthReq[req.authReqID] = req
		b.scheduleLocked(req, now)
	}
	b.mu.Unlock()
	if !known {
		desc := "no user is registered for that login hint"
		if b.spec.name == ProfileIdura {
			desc = "no BankID user is registered for that national identity number"
		}
		oauthError(w, http.StatusBadRequest, "unknown_user_id", desc)
		return
	}

	resp := map[string]any{
		"auth_req_id": req.authReqID,
		"expires_in":  expiresSec,
	}
	if b.spec.sendInterval && (b.spec.interval > 0 || b.cfg.Interval > 0) {
		resp["interval"] = ceilSeconds(interval)
	}
	if p.country == "NO" {
		resp["bindingMessage"] = req.binding
	}
	writeJSON(w, http.StatusOK, resp)
}

// iduraParams reads an Idura request: sub:ssn: hints, acr_values, and the
// Swedish or Norwegian parameters.
func (b *Broker) iduraParams(form url.Values) (authParams, *badParam) {
	bad := invalid
	if !hasScope(form.Get("scope"), "openid") {
		return bad("scope must include openid")
	}
	var want string
	switch acr := strings.TrimSpace(form.Get("acr_values")); acr {
	case ACRSwedishBankID:
		want = "SE"
	case ACRNorwegianBankID:
		want = "NO"
	case "":
		return bad("acr_values is required: urn:grn:authn:se:bankid or urn:grn:authn:no:bankid")
	default:
		return bad("acr_values must be exactly one of urn:grn:authn:se:bankid or urn:grn:authn:no:bankid")
	}
	if form.Has("login_hint_token") || form.Has("id_token_hint") {
		return bad("only login_hint is supported, in the form sub:ssn:<number>")
	}
	hint := form.Get("login_hint")
	if hint == "" {
		return bad("login_hint is required, in the form sub:ssn:<number>")
	}
	nationalID, ok := strings.CutPrefix(hint, "sub:ssn:")
	if !ok || !allDigits(nationalID) {
		return bad("login_hint must be sub:ssn: followed by the digits of the national identity number")
	}
	if country(nationalID) != want {
		if want == "SE" {
			return bad("login_hint must carry a 12-digit personnummer (YYYYMMDDNNNN) for urn:grn:authn:se:bankid")
		}
		return bad("login_hint must carry an 11-digit fodselsnummer (DDMMYYNNNNN) for urn:grn:authn:no:bankid")
	}
	p := authParams{
		hintKind: HintSSN,
		hint:     nationalID,
		country:  want,
		acr:      strings.TrimSpace(form.Get("acr_values")),
		ssnScope: hasScope(form.Get("scope"), "ssn"),
	}
	details := form.Get("authorization_details")
	if want == "SE" {
		p.binding = form.Get("binding_message")
		switch {
		case p.binding == "":
			return bad("binding_message is required for Swedish BankID")
		case utf8.RuneCountInString(p.binding) > ciba.MaxBindingMessage:
			return bad(fmt.Sprintf("binding_message must be at most %d characters", ciba.MaxBindingMessage))
		case !printable(p.binding):
			return bad("binding_message must be plain printable text")
		}
		var desc string
		p.callInitiator, desc = parseSwedishDetails(details, form)
		if desc != "" {
			return bad(desc)
		}
		p.expiresIn = b.cfg.ExpiresInSE
		return p, nil
	}
	if form.Has("binding_message") {
		return bad("binding_message must not be sent for Norwegian BankID: the word pair is returned as bindingMessage")
	}
	if desc := checkNorwegianDetails(details); desc != "" {
		return bad(desc)
	}
	p.binding, p.choices = wordPairs()
	p.expiresIn = b.cfg.ExpiresInNO
	return p, nil
}

// auth0MaxExpiry bounds Auth0's requested_expiry, in seconds. Its
// binding_message rules are ciba.MaxBindingMessage and
// ciba.Auth0BindingCharset.
const auth0MaxExpiry = 300

// auth0Params reads an Auth0 request: an iss_sub JSON login_hint, a
// required binding_message and an optional requested_expiry.
func (b *Broker) auth0Params(form url.Values) (authParams, *badParam) {
	bad := invalid
	if !hasScope(form.Get("scope"), "openid") {
		return bad("scope must include openid")
	}
	if form.Has("login_hint_token") || form.Has("id_token_hint") {
		return bad("only login_hint is supported, as JSON in the iss_sub format")
	}
	raw := form.Get("login_hint")
	if raw == "" {
		return bad("login_hint is required, as JSON in the iss_sub format")
	}
	var h struct {
		Format string `json:"format"`
		Iss    string `json:"iss"`
		Sub    string `json:"sub"`
	}
	if !jsonObject(raw) || json.Unmarshal([]byte(raw), &h) != nil {
		return bad("login_hint must be a JSON object with format, iss and sub")
	}
	switch {
	case h.Format != "iss_sub":
		return bad("login_hint format must be iss_sub")
	case strings.TrimSuffix(h.Iss, "/") != b.base:
		return bad("login_hint iss must be the issuer of this tenant")
	case !validUserID(h.Sub):
		return bad("login_hint sub must be a user id")
	}
	msg := form.Get("binding_message")
	if msg == "" || utf8.RuneCountInString(msg) > ciba.MaxBindingMessage ||
		strings.ContainsFunc(msg, func(r rune) bool { return !strings.ContainsRune(ciba.Auth0BindingCharset, r) }) {
		return invalidBinding(fmt.Sprintf("binding_message is required: at most %d characters of A-Z a-z 0-9, space and +-_.,:#", ciba.MaxBindingMessage))
	}
	expires := b.cfg.ExpiresIn
	if form.Has("requested_expiry") {
		n, err := strconv.Atoi(form.Get("requested_expiry"))
		if err != nil || n < 1 || n > auth0MaxExpiry {
			return bad("requested_expiry must be a whole number of seconds from 1 to 300")
		}
		expires = time.Duration(n) * time.Second
	}
	if d := form.Get("authorization_details"); d != "" && !jsonArray(d) {
		return bad("authorization_details must be a JSON array")
	}
	return authParams{hintKind: HintUserID, hint: h.Sub, binding: msg, expiresIn: expires}, nil
}

// Transmit and generic limits.
const (
	maxCustomMessage = 256 // Transmit request_context custom_message, characters
	maxGenericExpiry = 86400
)

// optionalBinding checks an optional binding_message of at most
// ciba.MaxBindingMessage printable characters.
func optionalBinding(msg string) *badParam {
	if msg != "" && (utf8.RuneCountInString(msg) > ciba.MaxBindingMessage || !printable(msg)) {
		_, bad := invalidBinding(fmt.Sprintf("binding_message must be at most %d printable characters", ciba.MaxBindingMessage))
		return bad
	}
	return nil
}

// transmitParams reads a Transmit request: an e-mail address, E.164 phone
// number or user id as login_hint, typed or inferred, and an optional
// request_context and binding_message.
func (b *Broker) transmitParams(form url.Values) (authParams, *badParam) {
	bad := invalid
	if !hasScope(form.Get("scope"), "openid") {
		return bad("scope must include openid")
	}
	if form.Has("login_hint_token") || form.Has("id_token_hint") {
		return bad("only login_hint is supported: an email address, phone number or user id")
	}
	hint := form.Get("login_hint")
	if hint == "" {
		return bad("login_hint is required: an email address, phone number or user id")
	}
	if len(hint) > maxHint {
		return bad("login_hint is too long")
	}
	var rc struct {
		Channel       string `json:"channel"`
		LoginHintType string `json:"login_hint_type"`
		CustomMessage string `json:"custom_message"`
	}
	if raw := form.Get("request_context"); raw != "" {
		if !jsonObject(raw) || json.Unmarshal([]byte(raw), &rc) != nil {
			return bad("request_context must be a JSON object with string members channel, login_hint_type and custom_message")
		}
	}
	switch rc.Channel {
	case "":
		rc.Channel = "sms" // Mosaic's default
	case "sms", "email", "link":
	default:
		return bad("request_context channel must be sms, email or link")
	}
	kind := rc.LoginHintType
	switch kind {
	case "":
		switch {
		case strings.Contains(hint, "@"):
			kind = HintEmail
		case strings.HasPrefix(hint, "+"):
			kind = HintPhone
		default:
			kind = HintUserID
		}
	case HintEmail, HintPhone, HintUserID:
	default:
		return bad("request_context login_hint_type must be email, phone or user_id")
	}
	switch {
	case kind == HintEmail && !validEmail(hint):
		return bad("login_hint is not a valid email address")
	case kind == HintPhone && !validPhone(hint):
		return bad("login_hint is not an E.164 phone number")
	case kind == HintUserID && !validUserID(hint):
		return bad("login_hint is not a valid user id")
	}
	if utf8.RuneCountInString(rc.CustomMessage) > maxCustomMessage || !printable(rc.CustomMessage) {
		return bad("request_context custom_message must be at most 256 printable characters")
	}
	msg := form.Get("binding_message")
	if bad := optionalBinding(msg); bad != nil {
		return authParams{}, bad
	}
	return authParams{
		hintKind: kind, hint: hint, binding: msg,
		channel: rc.Channel, customMessage: rc.CustomMessage,
		expiresIn: b.cfg.ExpiresIn,
	}, nil
}

// genericParams reads a CIBA Core request: a user id as login_hint, an
// optional binding_message and requested_expiry.
func (b *Broker) genericParams(form url.Values) (authParams, *badParam) {
	bad := invalid
	if !hasScope(form.Get("scope"), "openid") {
		return bad("scope must include openid")
	}
	if form.Has("login_hint_token") || form.Has("id_token_hint") {
		return bad("only login_hint is supported: a user id")
	}
	hint := form.Get("login_hint")
	if hint == "" {
		return bad("login_hint is required: a user id")
	}
	if !validUserID(hint) {
		return bad("login_hint must be a user id: printable, without spaces, at most 256 characters")
	}
	msg := form.Get("binding_message")
	if bad := optionalBinding(msg); bad != nil {
		return authParams{}, bad
	}
	expires := b.cfg.ExpiresIn
	if form.Has("requested_expiry") {
		n, err := strconv.Atoi(form.Get("requested_expiry"))
		if err != nil || n < 1 || n > maxGenericExpiry {
			return bad("requested_expiry must be a positive whole number of seconds, at most 86400")
		}
		expires = time.Duration(n) * time.Second
	}
	return authParams{hintKind: HintUserID, hint: hint, binding: msg, expiresIn: expires}, nil
}

// jsonObject and jsonArray report whether s is JSON starting with { or [.
func jsonObject(s string) bool { return jsonStarts(s, '{') }
func jsonArray(s string) bool  { return jsonStarts(s, '[') }

func jsonStarts(s string, open byte) bool {
	t := strings.TrimSpace(s)
	return t != "" && t[0] == open && json.Valid([]byte(t))
}

// validBearer reports whether s is an RFC 6750 b64token of at most 1024
// characters (CIBA Core §7.1 bounds client_notification_token so).
func validBearer(s string) bool {
	if s == "" || len(s) > 1024 {
		return false
	}
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

func hasScope(scope, want string) bool {
	for _, s := range strings.Fields(scope) {
		if s == want {
			return true
		}
	}
	return false
}

func printable(s string) bool {
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

// parseSwedishDetails checks authorization_details for Swedish BankID:
// [{"type":"phoneAuth","callInitiator":"user"|"RP"}]. It returns the call
// initiator, or a description of what is wrong.
func parseSwedishDetails(details string, form url.Values) (initiator, problem string) {
	const shape = "authorization_details must be a JSON array with one object of type phoneAuth and callInitiator user or RP"
	if details == "" {
		if form.Has("callInitiator") {
			return "", "authorization_details is required for Swedish BankID; a top-level callInitiator is the pre-2026 form and no longer accepted"
		}
		return "", "authorization_details is required for Swedish BankID: " + shape[len("authorization_details must be "):]
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(details), &list); err != nil {
		return "", shape
	}
	if len(list) != 1 || list[0]["type"] != "phoneAuth" {
		return "", shape
	}
	switch ci := list[0]["callInitiator"]; ci {
	case "user", "RP":
		return ci.(string), ""
	}
	return "", shape
}

// checkNorwegianDetails checks authorization_details for Norwegian BankID:
// [{"type":"customerServiceCall.v1"}].
func checkNorwegianDetails(details string) string {
	const shape = "authorization_details must be a JSON array with one object of type customerServiceCall.v1"
	if details == "" {
		return "authorization_details is required for Norwegian BankID: a JSON array with one object of type customerServiceCall.v1"
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(details), &list); err != nil {
		return shape
	}
	if len(list) != 1 || list[0]["type"] != "customerServiceCall.v1" {
		return shape
	}
	return ""
}
