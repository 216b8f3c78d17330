package agentui

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

// apiHandler is a JSON handler for a logged-in agent.
type apiHandler func(w http.ResponseWriter, r *http.Request, sess store.Session)

type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// api requires a valid session: 401 without one.
func (s *Server) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.session(r)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "not logged in"})
			return
		}
		h(w, r, sess)
	}
}

// csrf requires the session's CSRF token in the X-CSRF-Token header and a
// same-origin Origin: 403 otherwise.
func (s *Server) csrf(h apiHandler) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, sess store.Session) {
		if !s.checkCSRF(r, sess) {
			writeJSON(w, http.StatusForbidden, apiError{Error: "missing or wrong CSRF token or origin; reload the page"})
			return
		}
		h(w, r, sess)
	}
}

type callsResponse struct {
	Calls  []store.CallView `json:"calls"`
	Recent []store.CallView `json:"recent"`
}

// handleCalls returns live calls and calls that ended within RecentWindow.
func (s *Server) handleCalls(w http.ResponseWriter, r *http.Request, _ store.Session) {
	live, err := s.calls.LiveCalls(r.Context())
	if err != nil {
		s.log.Error("list live calls", "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "could not list calls"})
		return
	}
	recent, err := s.calls.RecentCalls(r.Context(), s.cfg.Now().Add(-s.cfg.RecentWindow))
	if err != nil {
		s.log.Error("list recent calls", "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "could not list calls"})
		return
	}
	writeJSON(w, http.StatusOK, callsResponse{Calls: nonNil(live), Recent: nonNil(recent)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) handleTimeline(w http.ResponseWriter, r *http.Request, _ store.Session) {
	sid := chi.URLParam(r, "sid")
	events, err := s.calls.Timeline(r.Context(), sid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such call"})
		return
	case err != nil:
		s.log.Error("call timeline", "call_sid", sid, "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "could not load the timeline"})
		return
	}
	out := make([]eventJSON, 0, len(events))
	for _, e := range events {
		out = append(out, toEventJSON(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"callSid": sid, "events": out})
}

type verifyRequest struct {
	Number string `json:"number"`
}

// verifyResponse carries nothing of the number but its masked form.
type verifyResponse struct {
	VerificationID string `json:"verificationId"`
	MaskedID       string `json:"maskedId"`
	Status         string `json:"status"`
}

// handleVerify starts a verification for a live call, as the logged-in
// agent, with the number the caller read out.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request, sess store.Session) {
	sid := chi.URLParam(r, "sid")
	var req verifyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "send JSON: {\"number\": \"...\"}"})
		return
	}
	// Checked here too so that a typo is answered before anything is stored.
	if _, err := ivr.ParseNationalID(req.Number, s.cfg.Now()); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: numberMessage(err), Field: "number"})
		return
	}
	v, err := s.calls.StartAgentVerification(r.Context(), sid, req.Number, sess.Agent)
	var bad *ivr.InvalidIDError
	switch {
	case err == nil && v.Status == store.VerUnknownUser:
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "BankID does not know this number: check it with the caller.", Field: "number"})
	case err == nil && v.Status.Done() && v.Status != store.VerApproved:
		s.log.Warn("agent verification did not start", "call_sid", sid, "verification_id", v.ID, "state", v.Status)
		writeJSON(w, http.StatusBadGateway, apiError{Error: "Could not start BankID (" + cmp.Or(v.Error, string(v.Status)) + "). Please try again."})
	case err == nil:
		s.log.Info("agent started verification", "call_sid", sid, "verification_id", v.ID, "agent", sess.Agent)
		writeJSON(w, http.StatusAccepted, verifyResponse{VerificationID: v.ID, MaskedID: v.MaskedID, Status: string(v.Status)})
	case errors.Is(err, ivr.ErrCallEnded):
		writeJSON(w, http.StatusConflict, apiError{Error: "This call has ended."})
	case errors.Is(err, ivr.ErrCallInIVR):
		writeJSON(w, http.StatusConflict, apiError{Error: "The caller is still in the phone menu and can verify there. Start a verification once you are talking to them."})
	case errors.Is(err, ivr.ErrVerificationInFlight):
		writeJSON(w, http.StatusConflict, apiError{Error: "BankID is already running for this caller: wait for it to finish."})
	case errors.Is(err, ivr.ErrRateLimited):
		msg := "Too many BankID requests recently. Please try again later."
		if rl, ok := errors.AsType[*ivr.RateLimitError](err); ok {
			msg = rateLimitMessage(rl)
		}
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusTooManyRequests, apiError{Error: msg})
	case errors.As(err, &bad):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: numberMessage(err), Field: "number"})
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{Error: "This call is not live any more."})
	case errors.Is(err, store.ErrConflict):
		writeJSON(w, http.StatusConflict, apiError{Error: "The call changed meanwhile. Please try again."})
	default:
		s.log.Error("start agent verification", "call_sid", sid, "agent", sess.Agent, "err", err)
		writeJSON(w, http.StatusBadGateway, apiError{Error: "Could not start BankID. Please try again."})
	}
}

// rateLimitMessage says in words which limit refused an agent's start.
func rateLimitMessage(rl *ivr.RateLimitError) string {
	switch rl.Scope {
	case store.LimitAgent:
		return fmt.Sprintf("You have started many BankID requests recently (%s per agent). Please try again later.", rl.Limit)
	case store.LimitGlobal:
		return fmt.Sprintf("The service has started many BankID requests in all recently (%s). Please try again in a minute.", rl.Limit)
	}
	return fmt.Sprintf("Too many BankID requests recently (%s). Please try again later.", rl.Limit)
}

// numberMessage says, in words an agent can act on, why a number was refused.
func numberMessage(err error) string {
	var bad *ivr.InvalidIDError
	if !errors.As(err, &bad) {
		return "That is not a valid national identity number."
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
