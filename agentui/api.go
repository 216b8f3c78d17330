package agentui

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/ivr/callerverify/internal/store"
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
