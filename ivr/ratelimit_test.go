package ivr_test

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
	"github.com/ivr/callerverify/ivr/ivrtest"
)

const rateLimitedSV = "Vi har redan skickat flera BankID-förfrågningar"

// from returns a caller option: the call comes from this caller id.
func from(number string) func(*ivrtest.Caller) {
	return func(c *ivrtest.Caller) { c.From = number }
}

// checkRateLimited checks a call that met a rate limit: told calmly,
// handed to agents unverified, the refusal in the audit trail without the
// number, and no BankID request sent.
func checkRateLimited(t *testing.T, e *env, tr *ivrtest.Transcript, wantDetail string) {
	t.Helper()
	if !strings.Contains(sayLines(tr), rateLimitedSV) || !strings.Contains(sayLines(tr), "Du kopplas nu till en medarbetare") {
		t.Errorf("caller over the limit not told so:\n%s", tr)
	}
	if tr.Outcome != "enqueued:support" {
		t.Errorf("outcome %q, want the agents' queue", tr.Outcome)
	}
	if c := e.storedCall(tr.CallSID); c.Outcome != store.OutcomeUnverified || c.VerificationID != "" {
		t.Errorf("call outcome %q verification %q, want unverified and none", c.Outcome, c.VerificationID)
	}
	evs, err := e.db.Events(t.Context(), tr.CallSID)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ev := range evs {
		if ev.Kind == store.EventRateLimited {
			found = true
			if !strings.Contains(ev.Detail, wantDetail) {
				t.Errorf("rate_limited detail %q, want it to mention %q", ev.Detail, wantDetail)
			}
			for _, u := range cibatest.Users() {
				if strings.Contains(ev.Detail, u.NationalID) || strings.Contains(ev.Detail, "+467") {
					t.Errorf("rate_limited detail %q holds personal data", ev.Detail)
				}
			}
		}
	}
	if !found {
		t.Errorf("no rate_limited event among %v", e.eventKinds(tr.CallSID))
	}
	if countKind(e.eventKinds(tr.CallSID), store.EventHandedOff) != 1 {
		t.Errorf("events %v, want one handed_off", e.eventKinds(tr.CallSID))
	}
}

func TestRateLimitPerNumberSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t) // defaults: 3 per number, 5 per caller id, per 10 min
		// Three different people enter the same number: each is verified.
		for i := range 3 {
			tr := e.call(&caller{numbers: []string{cibatest.SEApprove}}, from("+4670000000"+strconv.Itoa(i)))
			if !strings.Contains(sayLines(tr), "Tack, Astrid") {
				t.Fatalf("call %d under the limit was not verified", i)
			}
		}
		// A restart forgets nothing: the counts are in the store.
		e.restart()
		tr := e.call(&caller{numbers: []string{cibatest.SEApprove}}, from("+46700000009"))
		checkRateLimited(t, e, tr, "national identity number")
		if n := len(e.broker.Requests()); n != 3 {
			t.Errorf("%d BankID requests, want 3: the fourth must not reach the person's phone", n)
		}
		// The window slides: ten minutes later the number may be used again.
		<-time.After(10 * time.Minute)
		tr = e.call(&caller{numbers: []string{cibatest.SEApprove}}, from("+46700000009"))
		if !strings.Contains(sayLines(tr), "Tack, Astrid") {
			t.Errorf("call after the window was not verified:\n%s", tr)
		}
		e.checkEnded(tr.CallSID)
	})
}

func TestRateLimitPerCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *ivr.Config) { c.RateLimitCaller = ivr.RateLimit{Max: 2, Window: 5 * time.Minute} })
		// One caller id tries number after number (one declines and retries:
		// two verifications in one call).
		tr := e.call(&caller{numbers: []string{cibatest.SEDecline, cibatest.NOApprove}, retries: []string{"1"}}, from("+46701111111"))
		if !strings.Contains(sayLines(tr), "Takk, Kari") && !strings.Contains(sayLines(tr), "Tack, Kari") {
			t.Fatalf("second verification of the call not verified:\n%s", tr)
		}
		tr = e.call(&caller{numbers: []string{cibatest.SEApprove}}, from("+46701111111"))
		checkRateLimited(t, e, tr, "caller id")
		// Someone else is not affected, nor is a caller with a withheld number
		// (all of them would share one bucket).
		for _, f := range []string{"+46702222222", "anonymous", "+266696687"} {
			tr := e.call(&caller{numbers: []string{cibatest.SEApprove}}, from(f))
			if !strings.Contains(sayLines(tr), "Tack, Astrid") {
				t.Errorf("caller %q was limited:\n%s", f, tr)
			}
		}
	})
}

func TestRateLimitHoldsUnderAFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		// Twenty calls at once from different caller ids, all for one number.
		const calls = 20
		var wg sync.WaitGroup
		trs := make([]*ivrtest.Transcript, calls)
		for i := range calls {
			wg.Go(func() {
				c := &caller{numbers: []string{cibatest.SENoAnswer}}
				tr, err := e.tw.Call(t.Context(), ivrtest.Caller{Keys: c.keys, From: "+4671000" + strconv.Itoa(1000+i), HangUpAfter: 20 * time.Second})
				if err != nil {
					t.Errorf("call %d: %v", i, err)
				}
				trs[i] = tr
			})
		}
		wg.Wait()
		if n := len(e.broker.Requests()); n != 3 {
			t.Errorf("%d BankID requests reached the person, want 3", n)
		}
		limited := 0
		for _, tr := range trs {
			if tr != nil && strings.Contains(sayLines(tr), rateLimitedSV) {
				limited++
			}
		}
		if limited != calls-3 {
			t.Errorf("%d callers told of the limit, want %d", limited, calls-3)
		}
	})
}

func TestRateLimitOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *ivr.Config) {
			c.RateLimitNumber = ivr.RateLimit{Max: -1}
			c.RateLimitCaller = ivr.RateLimit{Max: -1}
		})
		for i := range 6 {
			tr := e.call(&caller{numbers: []string{cibatest.SEApprove}})
			if !strings.Contains(sayLines(tr), "Tack, Astrid") {
				t.Fatalf("call %d limited with the limits off:\n%s", i, tr)
			}
		}
	})
}

func TestRateLimitAgentVerification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *ivr.Config) { c.RateLimitNumber = ivr.RateLimit{Max: 2, Window: time.Hour} })
		ctx := t.Context()
		sid := "CAagentlimit0000000000000000000001"
		e.post("/twilio/voice", params(sid))
		for s := 1; s <= 3; s++ { // silent three times: handed to an agent
			e.post("/twilio/gather?s="+string(rune('0'+s)), params(sid, "Digits", ""))
		}
		for i := range 2 {
			if _, err := e.svc.StartAgentVerification(ctx, sid, cibatest.SENoAnswer, "alice"); err != nil {
				t.Fatalf("agent verification %d: %v", i, err)
			}
		}
		_, err := e.svc.StartAgentVerification(ctx, sid, cibatest.SENoAnswer, "alice")
		if !errors.Is(err, ivr.ErrRateLimited) {
			t.Fatalf("third agent verification: %v, want ErrRateLimited", err)
		}
		rl, ok := errors.AsType[*ivr.RateLimitError](err)
		if !ok || rl.Scope != "number" || rl.Limit.Max != 2 || rl.Limit.Window != time.Hour {
			t.Errorf("error %#v, want the per-number limit of 2 per hour", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "at most 2 within 1h0m0s") || strings.Contains(msg, cibatest.SENoAnswer) {
			t.Errorf("error text %q: want the limit and no number", msg)
		}
		if n := len(e.broker.Requests()); n != 2 {
			t.Errorf("%d BankID requests, want 2", n)
		}
		var ev *store.Event
		for _, x := range e.pub.all() {
			if x.Kind == store.EventRateLimited {
				ev = &x
			}
		}
		if ev == nil || ev.Actor != "agent:alice" || ev.Call == nil || ev.Call.CallSID != sid {
			t.Errorf("published rate_limited event %+v, want one by agent:alice with the call", ev)
		}
		if countKind(e.eventKinds(sid), store.EventRateLimited) != 1 {
			t.Errorf("stored events %v, want one rate_limited", e.eventKinds(sid))
		}
		// Another number for the same caller is fine.
		if _, err := e.svc.StartAgentVerification(ctx, sid, cibatest.SEApprove, "alice"); err != nil {
			t.Errorf("another number: %v", err)
		}
		e.post("/twilio/status", params(sid, "CallStatus", "completed"))
		synctest.Wait()
	})
}

func TestStepRateLimited(t *testing.T) {
	lim := ivr.Limits{MaxNumberAttempts: 3, MaxVerifyAttempts: 2}
	for _, scope := range []ivr.LimitScope{ivr.LimitNumber, ivr.LimitCaller} {
		t.Run(string(scope), func(t *testing.T) {
			got, d := ivr.Step(call(store.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberOK: true, RateLimited: scope}, lim, time.Now())
			if got.State != store.CallHandedOff || got.Outcome != store.OutcomeUnverified || d.Screen != ivr.ScreenHandOff || d.Effect != ivr.EffectNone {
				t.Errorf("Step = %s/%s screen %d effect %d, want handed off unverified, no start", got.State, got.Outcome, d.Screen, d.Effect)
			}
			if d.Event != store.EventRateLimited || d.Reason != store.ReasonRateLimited || d.Limit != scope || got.Reason != store.ReasonRateLimited || got.VerifyAttempts != 0 {
				t.Errorf("event %q reason %q limit %q call reason %q attempts %d", d.Event, d.Reason, d.Limit, got.Reason, got.VerifyAttempts)
			}
		})
	}
	// A rejected number is a rejected number, limited or not.
	got, d := ivr.Step(call(store.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonChecksum, RateLimited: ivr.LimitNumber}, lim, time.Now())
	if got.State != store.CallGathering || d.Screen != ivr.ScreenAskNumber {
		t.Errorf("bad number with a limit: %s screen %d", got.State, d.Screen)
	}
}
