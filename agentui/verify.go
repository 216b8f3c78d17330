package agentui

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// kindField is how the verify form asks for one kind of identifier.
type kindField struct {
	Kind        store.IDKind
	Label       string // the field's label
	Placeholder string
	InputMode   string // the input's inputmode: numeric, tel, email
	MaxLength   int
}

// kindFieldOf are the kinds an agent can verify with, as the form asks for
// them. The caller id is not one: the agent types what the caller reads out.
var kindFieldOf = map[store.IDKind]kindField{
	store.IDNationalID: {store.IDNationalID, "National identity number", "YYYYMMDDNNNN or DDMMYYNNNNN", "numeric", 16},
	store.IDCustomer:   {store.IDCustomer, "Customer number", "The caller's customer number", "numeric", 40},
	store.IDPhone:      {store.IDPhone, "Phone number", "+46 70 123 45 67", "tel", 24},
	store.IDEmail:      {store.IDEmail, "E-mail address", "name@example.com", "email", 254},
}

func kindFields(ks []store.IDKind) []kindField {
	out := make([]kindField, 0, len(ks))
	for _, k := range ks {
		out = append(out, kindFieldOf[k])
	}
	return out
}

// verifyRequest is the body of POST /agent/api/calls/{sid}/verify:
// {"kind": "customer_number", "value": "…"}. {"number": "…"} is the
// national identity number, as before kinds existed.
type verifyRequest struct {
	Kind   store.IDKind `json:"kind"`
	Value  string       `json:"value"`
	Number string       `json:"number"`
}

// verifyResponse carries nothing of the identifier but its masked form.
type verifyResponse struct {
	VerificationID string `json:"verificationId"`
	MaskedID       string `json:"maskedId"`
	Status         string `json:"status"`
	// Code is the code the request shows the user, at brokers that show
	// one: the agent tells the caller to check it.
	Code string `json:"code,omitempty"`
}

// handleVerify starts a verification for a live call, as the logged-in
// agent, with the identifier the caller read out.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request, sess store.Session) {
	sid := chi.URLParam(r, "sid")
	var req verifyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: `send JSON: {"kind": "...", "value": "..."}`})
		return
	}
	if req.Kind == "" && req.Value == "" {
		req.Kind, req.Value = store.IDNationalID, req.Number
	}
	req.Kind = cmp.Or(req.Kind, s.cfg.VerifyWith[0])
	if _, ok := kindFieldOf[req.Kind]; !ok || !slices.Contains(s.cfg.VerifyWith, req.Kind) {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "Verify with " + kindWords(s.cfg.VerifyWith) + ".", Field: "kind"})
		return
	}
	v, err := s.calls.StartAgentVerification(r.Context(), sid, req.Kind, req.Value, sess.Agent)
	var bad *ivr.InvalidIDError
	switch {
	case err == nil && v.Status == store.VerUnknownUser:
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: fmt.Sprintf("%s does not know this %s: check it with the caller.", s.cfg.Approver, ivr.KindName(req.Kind)), Field: "value"})
	case err == nil && v.Status.Done() && v.Status != store.VerApproved:
		s.log.Warn("agent verification did not start", "call_sid", sid, "verification_id", v.ID, "state", v.Status)
		writeJSON(w, http.StatusBadGateway, apiError{Error: "Could not start " + s.cfg.Approver + " (" + cmp.Or(v.Error, string(v.Status)) + "). Please try again."})
	case err == nil:
		s.log.Info("agent started verification", "call_sid", sid, "verification_id", v.ID, "agent", sess.Agent, "kind", req.Kind)
		writeJSON(w, http.StatusAccepted, verifyResponse{VerificationID: v.ID, MaskedID: v.MaskedID, Status: string(v.Status), Code: ivr.BindingCode(v)})
	case errors.Is(err, ivr.ErrKindNotOffered):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "Verify with " + kindWords(s.cfg.VerifyWith) + ".", Field: "kind"})
	case errors.Is(err, ivr.ErrCallEnded):
		writeJSON(w, http.StatusConflict, apiError{Error: "This call has ended."})
	case errors.Is(err, ivr.ErrCallInIVR):
		writeJSON(w, http.StatusConflict, apiError{Error: "The caller is still in the phone menu and can verify there. Start a verification once you are talking to them."})
	case errors.Is(err, ivr.ErrVerificationInFlight):
		writeJSON(w, http.StatusConflict, apiError{Error: s.cfg.Approver + " is already running for this caller: wait for it to finish."})
	case errors.Is(err, ivr.ErrRateLimited):
		msg := "Too many verification requests recently. Please try again later."
		if rl, ok := errors.AsType[*ivr.RateLimitError](err); ok {
			msg = rateLimitMessage(rl)
		}
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusTooManyRequests, apiError{Error: msg})
	case errors.As(err, &bad):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: invalidMessage(req.Kind, err), Field: "value"})
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{Error: "This call is not live any more."})
	case errors.Is(err, store.ErrConflict):
		writeJSON(w, http.StatusConflict, apiError{Error: "The call changed meanwhile. Please try again."})
	default:
		s.log.Error("start agent verification", "call_sid", sid, "agent", sess.Agent, "err", err)
		writeJSON(w, http.StatusBadGateway, apiError{Error: "Could not start " + s.cfg.Approver + ". Please try again."})
	}
}

// kindWords lists kinds in words: "a customer number, a phone number or an
// e-mail address".
func kindWords(ks []store.IDKind) string {
	var s string
	for i, k := range ks {
		switch {
		case i == 0:
		case i == len(ks)-1:
			s += " or "
		default:
			s += ", "
		}
		w := ivr.KindName(k)
		if w[0] == 'e' {
			s += "an " + w
		} else {
			s += "a " + w
		}
	}
	return s
}

// rateLimitMessage says in words which limit refused an agent's start.
func rateLimitMessage(rl *ivr.RateLimitError) string {
	switch rl.Scope {
	case store.LimitAgent:
		return fmt.Sprintf("You have started many verifications recently (%s per agent). Please try again later.", rl.Limit)
	case store.LimitGlobal:
		return fmt.Sprintf("The service has started many verifications in all recently (%s). Please try again in a minute.", rl.Limit)
	}
	return fmt.Sprintf("Too many verification requests recently (%s). Please try again later.", rl.Limit)
}

// invalidMessage says, in words an agent can act on, why an identifier of
// kind k was refused.
func invalidMessage(k store.IDKind, err error) string {
	var bad *ivr.InvalidIDError
	if !errors.As(err, &bad) {
		return "That is not a valid " + ivr.KindName(k) + "."
	}
	switch k {
	case store.IDCustomer:
		switch bad.Reason {
		case ivr.ReasonEmpty:
			return "Enter the caller's customer number."
		case ivr.ReasonChecksum:
			return "The check digit does not match: ask the caller to repeat the customer number."
		}
		return "That is not a customer number: check the number of digits with the caller."
	case store.IDPhone:
		if bad.Reason == ivr.ReasonEmpty {
			return "Enter the caller's phone number."
		}
		return "Enter the phone number in international form, such as +46 70 123 45 67."
	case store.IDEmail:
		if bad.Reason == ivr.ReasonEmpty {
			return "Enter the caller's e-mail address."
		}
		return "That is not an e-mail address: check the spelling with the caller."
	}
	switch bad.Reason {
	case ivr.ReasonEmpty:
		return "Enter the caller's national identity number."
	case ivr.ReasonLength:
		return "Enter 12 (or 10) digits for a Swedish personnummer, or 11 for a Norwegian fødselsnummer."
	case ivr.ReasonDate:
		return "The birth date in that number is not a real, past date."
	case ivr.ReasonChecksum:
		return "The check digit does not match: ask the caller to repeat the number."
	}
	return "That is not a valid national identity number."
}
