package agentui_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

func TestAgentStartsVerification(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		sid       string
		body      string
		csrf      bool
		origin    string // "" means the server's own
		callsErr  error
		status    store.VerificationStatus
		want      int
		wantInErr string
		started   bool
	}{
		{"valid number starts BankID as the agent", "CA1", `{"number":"` + validSE + `"}`, true, "", nil, "", http.StatusAccepted, "", true},
		{"spaces and a dash are fine", "CA1", `{"number":"19900101-2385"}`, true, "", nil, "", http.StatusAccepted, "", true},
		{"missing CSRF token is refused", "CA1", `{"number":"` + validSE + `"}`, false, "", nil, "", http.StatusForbidden, "CSRF", false},
		{"foreign origin is refused", "CA1", `{"number":"` + validSE + `"}`, true, "https://evil.example", nil, "", http.StatusForbidden, "CSRF", false},
		{"too short a number is explained", "CA1", `{"number":"12345"}`, true, "", nil, "", http.StatusUnprocessableEntity, "12 (or 10) digits", false},
		{"wrong check digit is explained", "CA1", `{"number":"199001012384"}`, true, "", nil, "", http.StatusUnprocessableEntity, "check digit", false},
		{"letters are refused", "CA1", `{"number":"abc"}`, true, "", nil, "", http.StatusUnprocessableEntity, "digits", false},
		{"malformed JSON is 400", "CA1", `number=1`, true, "", nil, "", http.StatusBadRequest, "JSON", false},
		{"unknown call is 404", "CA9", `{"number":"` + validSE + `"}`, true, "", nil, "", http.StatusNotFound, "not live", true},
		{"a conflict asks to retry", "CA1", `{"number":"` + validSE + `"}`, true, "", store.ErrConflict, "", http.StatusConflict, "try again", true},
		{"the service's own number check is explained", "CA1", `{"number":"` + validSE + `"}`, true, "", &ivr.InvalidIDError{Reason: ivr.ReasonDate}, "", http.StatusUnprocessableEntity, "birth date", true},
		{"a number BankID does not know is explained", "CA1", `{"number":"` + validSE + `"}`, true, "", nil, store.VerUnknownUser, http.StatusUnprocessableEntity, "does not know", true},
		{"a start that failed at once is a 502", "CA1", `{"number":"` + validSE + `"}`, true, "", nil, store.VerFailed, http.StatusBadGateway, "Could not start BankID", true},
		{"an ended call is a 409", "CA1", `{"number":"` + validSE + `"}`, true, "", ivr.ErrCallEnded, "", http.StatusConflict, "has ended", true},
		{"a caller still in the IVR is a 409 that says why", "CA1", `{"number":"` + validSE + `"}`, true, "", ivr.ErrCallInIVR, "", http.StatusConflict, "still in the phone menu", true},
		{"a rate-limited number is a 429 with the limit", "CA1", `{"number":"` + validSE + `"}`, true, "", &ivr.RateLimitError{Scope: store.LimitNumber, Limit: ivr.RateLimit{Max: 3, Window: 10 * time.Minute}}, "", http.StatusTooManyRequests, "at most 3 in 10 minutes", true},
		{"an agent over their own limit is told so in words", "CA1", `{"number":"` + validSE + `"}`, true, "", &ivr.RateLimitError{Scope: store.LimitAgent, Limit: ivr.RateLimit{Max: 10, Window: time.Hour}}, "", http.StatusTooManyRequests, "at most 10 in 1 hour per agent", true},
		{"a second start while BankID runs is a 409", "CA1", `{"number":"` + validSE + `"}`, true, "", ivr.ErrVerificationInFlight, "", http.StatusConflict, "already running", true},
		{"broker trouble is a calm 502", "CA1", `{"number":"` + validSE + `"}`, true, "", errors.New("ciba: bc-authorize: connection refused"), "", http.StatusBadGateway, "Could not start BankID", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := &fakeCalls{live: []store.CallView{*callView("CA1", store.ViewUnverified, t0)}, err: tt.callsErr, status: tt.status}
			e := newEnv(t, agentui.Config{}, calls)
			c := e.client(t)
			csrf := e.login(t, c)
			ws := e.dial(t)
			read(t, ws) // snapshot

			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/agent/api/calls/"+tt.sid+"/verify", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", cmp.Or(tt.origin, e.origin))
			if tt.csrf {
				req.Header.Set("X-CSRF-Token", csrf)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.want)
			}
			if strings.Contains(string(body), "2385") && resp.StatusCode != http.StatusAccepted ||
				strings.Contains(string(body), "012385") {
				t.Errorf("response %s shows the number", body)
			}
			var out struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(body, &out)
			if !strings.Contains(out.Error, tt.wantInErr) {
				t.Errorf("error %q, want it to mention %q", out.Error, tt.wantInErr)
			}
			started := calls.startedCalls()
			if got := len(started) > 0; got != tt.started {
				t.Fatalf("verification started = %v, want %v", got, tt.started)
			}
			if !tt.started || tt.want != http.StatusAccepted {
				return
			}
			if s := started[0]; s.sid != "CA1" || s.agent != testAgent || !strings.Contains(tt.body, s.number) {
				t.Errorf("started %+v, want CA1 by %s with the number typed", s, testAgent)
			}
			// Dashboards see the agent-started verification, attributed to the agent.
			m := read(t, ws)
			if m.Type != "event" || m.Event.Actor != "agent:anna" || m.Call == nil || m.Call.State != store.ViewStarting ||
				m.Call.Verification == nil || m.Call.Verification.Initiator != "agent:anna" {
				t.Errorf("dashboard got %+v, want the verification started by agent:anna", m)
			}
		})
	}
}
