package cibatest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ivr/callerverify/ciba"
)

// seBindingMaxLen is the longest Swedish binding_message accepted, in
// characters: the rule of the ciba package's Idura profile (0 = no limit).
func seBindingMaxLen() int {
	m, _ := ciba.Idura.Method("se-bankid")
	return m.BindingMessage.MaxLen
}

// AddUser registers u (or replaces the user with the same number).
func (b *Broker) AddUser(u User) {
	b.mu.Lock()
	b.users[u.NationalID] = u
	b.mu.Unlock()
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// handleAuthorize serves POST /ciba/bc-authorize. Error descriptions are
// fixed texts (printable ASCII, as RFC 6749 asks) and never contain the
// login hint.
func (b *Broker) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	form, ok := parseForm(w, r)
	if !ok {
		return
	}
	clientID, err := b.authenticate(r, form)
	if err != nil {
		b.writeAuthError(w, err)
		return
	}
	bad := func(desc string) { oauthError(w, http.StatusBadRequest, "invalid_request", desc) }

	if !hasScope(form.Get("scope"), "openid") {
		bad("scope must include openid")
		return
	}
	var want string
	switch acr := strings.TrimSpace(form.Get("acr_values")); acr {
	case ACRSwedishBankID:
		want = "SE"
	case ACRNorwegianBankID:
		want = "NO"
	case "":
		bad("acr_values is required: urn:grn:authn:se:bankid or urn:grn:authn:no:bankid")
		return
	default:
		bad("acr_values must be exactly one of urn:grn:authn:se:bankid or urn:grn:authn:no:bankid")
		return
	}
	if form.Has("login_hint_token") || form.Has("id_token_hint") {
		bad("only login_hint is supported, in the form sub:ssn:<number>")
		return
	}
	hint := form.Get("login_hint")
	if hint == "" {
		bad("login_hint is required, in the form sub:ssn:<number>")
		return
	}
	nationalID, ok := strings.CutPrefix(hint, "sub:ssn:")
	if !ok || !allDigits(nationalID) {
		bad("login_hint must be sub:ssn: followed by the digits of the national identity number")
		return
	}
	if country(nationalID) != want {
		if want == "SE" {
			bad("login_hint must carry a 12-digit personnummer (YYYYMMDDNNNN) for urn:grn:authn:se:bankid")
		} else {
			bad("login_hint must carry an 11-digit fodselsnummer (DDMMYYNNNNN) for urn:grn:authn:no:bankid")
		}
		return
	}

	var bindingMessage, callInitiator string
	details := form.Get("authorization_details")
	if want == "SE" {
		bindingMessage = form.Get("binding_message")
		maxLen := seBindingMaxLen()
		switch {
		case bindingMessage == "":
			bad("binding_message is required for Swedish BankID")
			return
		case maxLen > 0 && utf8.RuneCountInString(bindingMessage) > maxLen:
			bad(fmt.Sprintf("binding_message must be at most %d characters", maxLen))
			return
		case !printable(bindingMessage):
			bad("binding_message must be plain printable text")
			return
		}
		var desc string
		callInitiator, desc = parseSwedishDetails(details, form)
		if desc != "" {
			bad(desc)
			return
		}
	} else {
		if form.Has("binding_message") {
			bad("binding_message must not be sent for Norwegian BankID: the word pair is returned as bindingMessage")
			return
		}
		if desc := checkNorwegianDetails(details); desc != "" {
			bad(desc)
			return
		}
	}

	now := b.now()
	expiresIn := b.cfg.ExpiresInSE
	if want == "NO" {
		expiresIn = b.cfg.ExpiresInNO
	}
	expiresSec := ceilSeconds(expiresIn)
	interval := time.Duration(ceilSeconds(b.cfg.Interval)) * time.Second
	if b.cfg.Interval < 0 {
		interval = 5 * time.Second // the CIBA default the client falls back to
	}
	req := &request{
		simID:         randomHex(8),
		authReqID:     randomID(32),
		clientID:      clientID,
		country:       want,
		acr:           strings.TrimSpace(form.Get("acr_values")),
		binding:       bindingMessage,
		callInitiator: callInitiator,
		ssnScope:      hasScope(form.Get("scope"), "ssn"),
		created:       now,
		expires:       now.Add(time.Duration(expiresSec) * time.Second),
		interval:      interval,
	}
	if want == "NO" {
		req.binding, req.choices = wordPairs()
	}

	b.mu.Lock()
	user, known := b.users[nationalID]
	if known {
		req.user = user
		b.sweepLocked(now)
		b.seq++
		req.seq = b.seq
		b.reqs[req.simID] = req
		b.byAuthReq[req.authReqID] = req
	}
	b.mu.Unlock()
	if !known {
		oauthError(w, http.StatusBadRequest, "unknown_user_id", "no BankID user is registered for that national identity number")
		return
	}

	resp := map[string]any{
		"auth_req_id": req.authReqID,
		"expires_in":  expiresSec,
	}
	if b.cfg.Interval > 0 {
		resp["interval"] = ceilSeconds(b.cfg.Interval)
	}
	if want == "NO" {
		resp["bindingMessage"] = req.binding
	}
	writeJSON(w, http.StatusOK, resp)
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
