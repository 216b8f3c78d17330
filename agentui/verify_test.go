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
		{"the kind and value form works as the number did", "CA1", `{"kind":"national_id","value":"` + validSE + `"}`, true, "", nil, "", http.StatusAccepted, "", true},
		{"a kind the broker does not take is refused before anything starts", "CA1", `{"kind":"email","value":"a@b.se"}`, true, "", nil, "", http.StatusUnprocessableEntity, "national identity number", false},
		{"an unknown kind is refused", "CA1", `{"kind":"shoe_size","value":"42"}`, true, "", nil, "", http.StatusUnprocessableEntity, "Verify with", false},
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

			if !tt.csrf {
				csrf = ""
			}
			r := e.verify(t, c, tt.sid, tt.body, cmp.Or(tt.origin, e.origin), csrf)
			if r.status != tt.want {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.want)
			}
			if strings.Contains(r.body, "2385") && r.status != http.StatusAccepted || strings.Contains(r.body, "012385") {
				t.Errorf("response %s shows the number", r.body)
			}
			if !strings.Contains(r.err, tt.wantInErr) {
				t.Errorf("error %q, want it to mention %q", r.err, tt.wantInErr)
			}
			started := calls.startedCalls()
			if got := len(started) > 0; got != tt.started {
				t.Fatalf("verification started = %v, want %v", got, tt.started)
			}
			if !tt.started || tt.want != http.StatusAccepted {
				return
			}
			if s := started[0]; s.sid != "CA1" || s.agent != testAgent || s.kind != store.IDNationalID || s.value != validSE {
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

// verifyReply is the answer to POST /agent/api/calls/{sid}/verify: its
// status, its body, and the error text in it.
type verifyReply struct {
	status    int
	body, err string
}

// verify asks, as the agent logged in on c, to verify call sid with the
// JSON body, from origin, sending csrf as the CSRF token unless it is "".
func (e *env) verify(t *testing.T, c *http.Client, sid, body, origin, csrf string) verifyReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/agent/api/calls/"+sid+"/verify", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &out)
	return verifyReply{status: resp.StatusCode, body: string(raw), err: out.Error}
}

// TestAgentVerifiesWithTheBrokersKinds: at a broker that takes customer
// numbers, phone numbers and e-mail addresses, the agent picks one; what
// each refuses is said in words for that kind, and the form offers exactly
// the kinds configured.
func TestAgentVerifiesWithTheBrokersKinds(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	kinds := []store.IDKind{store.IDCustomer, store.IDPhone, store.IDEmail}
	tests := []struct {
		name      string
		body      string
		want      int
		wantInErr string
		kind      store.IDKind // started with; "" = nothing started
		value     string
	}{
		{"a customer number", `{"kind":"customer_number","value":"3100 1019"}`, http.StatusAccepted, "", store.IDCustomer, "31001019"},
		{"a customer number with a wrong check digit", `{"kind":"customer_number","value":"31001018"}`, http.StatusUnprocessableEntity, "check digit", "", ""},
		{"a customer number too short", `{"kind":"customer_number","value":"12"}`, http.StatusUnprocessableEntity, "number of digits", "", ""},
		{"a phone number", `{"kind":"phone","value":"+46 70-174 06 11"}`, http.StatusAccepted, "", store.IDPhone, "+46701740611"},
		{"a phone number without a country code", `{"kind":"phone","value":"070 174 06 11"}`, http.StatusUnprocessableEntity, "international form", "", ""},
		{"an e-mail address", `{"kind":"email","value":" Johan@Example.COM "}`, http.StatusAccepted, "", store.IDEmail, "johan@example.com"},
		{"not an e-mail address", `{"kind":"email","value":"johan at example"}`, http.StatusUnprocessableEntity, "not an e-mail address", "", ""},
		{"no kind: the first offered", `{"value":"31001019"}`, http.StatusAccepted, "", store.IDCustomer, "31001019"},
		{"a national identity number is not offered here", `{"number":"` + validSE + `"}`, http.StatusUnprocessableEntity, "a customer number, a phone number or an e-mail address", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := &fakeCalls{live: []store.CallView{*callView("CA1", store.ViewUnverified, t0)}}
			e := newEnv(t, agentui.Config{VerifyWith: kinds, Approver: "Mosaic"}, calls)
			c := e.client(t)
			csrf := e.login(t, c)

			r := e.verify(t, c, "CA1", tt.body, e.origin, csrf)
			if r.status != tt.want {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.want)
			}
			if !strings.Contains(r.err, tt.wantInErr) {
				t.Errorf("error %q, want it to mention %q", r.err, tt.wantInErr)
			}
			started := calls.startedCalls()
			switch {
			case tt.kind == "" && len(started) > 0:
				t.Errorf("started %+v, want nothing started", started)
			case tt.kind != "" && (len(started) != 1 || started[0].kind != tt.kind || started[0].value != tt.value):
				t.Errorf("started %+v, want one %s %q", started, tt.kind, tt.value)
			}
		})
	}

	t.Run("the form offers the kinds configured", func(t *testing.T) {
		e := newEnv(t, agentui.Config{VerifyWith: kinds, Approver: "Mosaic"}, &fakeCalls{})
		c := e.client(t)
		e.login(t, c)
		resp, err := c.Get(e.srv.URL + "/agent/")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`value="customer_number"`, `value="phone"`, `value="email"`, `data-approver="Mosaic"`, "Customer number", "E-mail address"} {
			if !strings.Contains(string(page), want) {
				t.Errorf("dashboard has no %s", want)
			}
		}
		if strings.Contains(string(page), `value="national_id"`) {
			t.Error("dashboard offers a national identity number the broker does not take")
		}
	})

	t.Run("a kind agents cannot verify with is a start-up error", func(t *testing.T) {
		_, err := agentui.NewServer(agentui.Config{VerifyWith: []store.IDKind{store.IDCallerID}}, newMemStore(), &fakeCalls{}, agentui.NewHub(discardLog()), discardLog())
		if err == nil || !strings.Contains(err.Error(), "caller_id") {
			t.Errorf("NewServer = %v, want an error naming caller_id", err)
		}
	})
}
