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
	"github.com/ivr/callerverify/ivr/virtualtwilio"
)

const rateLimitedSV = "Vi har redan skickat flera BankID-förfrågningar"

// from returns a caller option: the call comes from this caller id.
func from(number string) func(*virtualtwilio.Caller) {
	return func(c *virtualtwilio.Caller) { c.From = number }
}

// checkRateLimited checks a call that met a rate limit: told calmly,
// handed to agents unverified, the refusal in the audit trail without the
// number, and no BankID request sent.
func checkRateLimited(t *testing.T, e *env, tr *virtualtwilio.Transcript, wantDetail string) {
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
		checkRateLimited(t, e, tr, "from this caller id")
		// Someone else is not affected.
		tr = e.call(&caller{numbers: []string{cibatest.SEApprove}}, from("+46702222222"))
		if !strings.Contains(sayLines(tr), "Tack, Astrid") {
			t.Errorf("another caller was limited:\n%s", tr)
		}
	})
}

// TestWithheldCallersShareOneBucket is the push-bombing attack of a caller
// who hides their number: today's code exempted withheld caller ids from
// the per-caller limit, so one anonymous caller could send BankID requests
// to any number of people. Now every withheld, anonymous or unusable caller
// id shares one strict bucket.
func TestWithheldCallersShareOneBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t) // default: 3 per 10 minutes across all withheld callers
		people := []string{cibatest.SEApprove, cibatest.NOApprove, cibatest.SEDecline, cibatest.NODecline, cibatest.SEApproveSlow, cibatest.NOApproveSlow}
		withheld := []string{"anonymous", "unknown", "+266696687", "Restricted", "client:anonymous", "+46"}
		for i, person := range people {
			e.call(&caller{numbers: []string{person}}, from(withheld[i]), func(c *virtualtwilio.Caller) { c.HangUpAfter = time.Minute })
		}
		if n := len(e.broker.Requests()); n != 3 {
			t.Errorf("%d BankID requests reached people from withheld numbers, want 3", n)
		}
		// A caller who shows their number is not in that bucket.
		tr := e.call(&caller{numbers: []string{cibatest.SEApprove}}, from("+46703333333"))
		if !strings.Contains(sayLines(tr), "Tack, Astrid") {
			t.Errorf("a caller with a number was limited by the withheld bucket:\n%s", tr)
		}
	})
}

// TestPushBombingCannotLockThePersonOut is the attack of the security
// review: three anonymous calls with the victim's number fill the
// per-number limit; the victim's own call is then refused BankID in the
// IVR, but the agent talking to them can still start it (past the
// per-number limit, recorded with the agent's name).
func TestPushBombingCannotLockThePersonOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		victim := cibatest.SEDecline // the person declines the strangers' requests
		for range 3 {
			e.call(&caller{numbers: []string{victim}}, from("anonymous"))
		}
		ctx := t.Context()
		sid := testSID("victim")
		e.post("/twilio/voice", params(sid))
		_, body := e.post("/twilio/gather?s=1", params(sid, "Digits", victim))
		if !strings.Contains(body, rateLimitedSV) {
			t.Fatalf("the victim's own call was not refused by the per-number limit: %s", body)
		}
		// An agent is talking to them now.
		v, err := e.svc.StartAgentVerification(ctx, sid, store.IDNationalID, victim, "alice")
		if err != nil {
			t.Fatalf("the agent's start for the locked-out person: %v", err)
		}
		if v.Initiator != "agent:alice" || v.SealedID != "" {
			t.Errorf("agent verification %+v", v)
		}
		var audit *store.Event
		evs, _ := e.db.Events(ctx, sid)
		for _, ev := range evs {
			if ev.Kind == store.EventLimitOverridden {
				audit = &ev
			}
		}
		if audit == nil || audit.Actor != "agent:alice" || !strings.Contains(audit.Detail, "alice") || !strings.Contains(audit.Detail, "national identity number") {
			t.Errorf("no audit of the override in the timeline: %+v", audit)
		}
		if n := len(e.broker.Requests()); n != 4 {
			t.Errorf("%d BankID requests, want the strangers' 3 and the agent's", n)
		}
		e.post("/twilio/status", params(sid, "CallStatus", "completed"))
		synctest.Wait()
	})
}

// agentCall puts a call through to agents unverified (three silent number
// prompts) and returns its SID.
func agentCall(e *env, name string) string {
	sid := testSID(name)
	e.post("/twilio/voice", params(sid))
	for s := 1; s <= 3; s++ {
		e.post("/twilio/gather?s="+strconv.Itoa(s), params(sid, "Digits", ""))
	}
	return sid
}

// TestAgentVerifyRefusesASecondStartInFlight: today three quick clicks on
// Start BankID sent three prompts to the caller's phone.
func TestAgentVerifyRefusesASecondStartInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		sid := agentCall(e, "clicks")
		ctx := t.Context()
		if _, err := e.svc.StartAgentVerification(ctx, sid, store.IDNationalID, cibatest.SEDecline, "alice"); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := e.svc.StartAgentVerification(ctx, sid, store.IDNationalID, cibatest.SEDecline, "alice"); !errors.Is(err, ivr.ErrVerificationInFlight) {
				t.Errorf("a click while BankID runs: %v, want ErrVerificationInFlight", err)
			}
		}
		if n := len(e.broker.Requests()); n != 1 {
			t.Errorf("%d BankID requests from three clicks, want 1", n)
		}
		<-time.After(10 * time.Second) // the person declines; the agent may try again
		if _, err := e.svc.StartAgentVerification(ctx, sid, store.IDNationalID, cibatest.SEApprove, "alice"); err != nil {
			t.Errorf("a new start after the first ended: %v", err)
		}
		e.post("/twilio/status", params(sid, "CallStatus", "completed"))
		synctest.Wait()
	})
}

// TestAgentsHaveTheirOwnLimit: a stolen agent session cannot spray BankID
// requests, to one caller or many.
func TestAgentsHaveTheirOwnLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *ivr.Config) { c.RateLimitAgent = ivr.RateLimit{Max: 2, Window: time.Hour} })
		ctx := t.Context()
		numbers := []string{cibatest.SEDecline, cibatest.NODecline, cibatest.SEApprove}
		for i, n := range numbers {
			sid := agentCall(e, "spray"+strconv.Itoa(i))
			_, err := e.svc.StartAgentVerification(ctx, sid, store.IDNationalID, n, "mallory")
			if i < 2 {
				if err != nil {
					t.Fatalf("start %d: %v", i, err)
				}
				continue
			}
			rl, ok := errors.AsType[*ivr.RateLimitError](err)
			if !ok || rl.Scope != store.LimitAgent || rl.Limit.Max != 2 {
				t.Fatalf("third start: %v, want the agent's limit", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "at most 2 in 1 hour") || strings.Contains(msg, n) {
				t.Errorf("error text %q: want the limit in words and no number", msg)
			}
			if countKind(e.eventKinds(sid), store.EventRateLimited) != 1 {
				t.Errorf("stored events %v, want one rate_limited", e.eventKinds(sid))
			}
		}
		if n := len(e.broker.Requests()); n != 2 {
			t.Errorf("%d BankID requests, want 2", n)
		}
		// Another agent is not affected.
		if _, err := e.svc.StartAgentVerification(ctx, testSID("spray2"), store.IDNationalID, cibatest.SEApprove, "alice"); err != nil {
			t.Errorf("another agent: %v", err)
		}
	})
}

// countingObserver counts the limits that bit.
type countingObserver struct {
	mu sync.Mutex
	n  map[store.LimitScope]int
}

func (o *countingObserver) RateLimited(scope store.LimitScope) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[scope]++
}

func (o *countingObserver) VerificationEnded(*store.Verification) {}
func (o *countingObserver) Interrupted(bool)                      {}
func (o *countingObserver) SafetyNet()                            {}
func (o *countingObserver) Notified(string)                       {}

// TestGlobalCap: nothing capped the total before, and every request costs
// the bank a broker fee.
func TestGlobalCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &countingObserver{n: map[store.LimitScope]int{}}
		e := newEnv(t, func(c *ivr.Config) {
			c.RateLimitGlobal = ivr.RateLimit{Max: 2, Window: time.Minute}
			c.Observer = obs
		})
		people := []string{cibatest.SEApprove, cibatest.NOApprove, cibatest.SEApproveSlow}
		var trs []*virtualtwilio.Transcript
		for i, p := range people {
			trs = append(trs, e.call(&caller{numbers: []string{p}}, from("+4670444444"+strconv.Itoa(i)), func(c *virtualtwilio.Caller) { c.HangUpAfter = 40 * time.Second }))
		}
		checkRateLimited(t, e, trs[2], "in all")
		if n := len(e.broker.Requests()); n != 2 {
			t.Errorf("%d BankID requests, want the cap of 2", n)
		}
		if obs.n[store.LimitGlobal] != 1 {
			t.Errorf("observer saw %v, want one global refusal", obs.n)
		}
		// A minute later there is room again.
		<-time.After(time.Minute)
		tr := e.call(&caller{numbers: []string{cibatest.SEApprove}}, from("+46704444449"))
		if !strings.Contains(sayLines(tr), "Tack, Astrid") {
			t.Errorf("call after the window was refused:\n%s", tr)
		}
	})
}

func TestRateLimitHoldsUnderAFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		// Twenty calls at once from different caller ids, all for one number.
		const calls = 20
		var wg sync.WaitGroup
		trs := make([]*virtualtwilio.Transcript, calls)
		for i := range calls {
			wg.Go(func() {
				c := &caller{numbers: []string{cibatest.SENoAnswer}}
				tr, err := e.tw.Call(t.Context(), virtualtwilio.Caller{Keys: c.keys, From: "+4671000" + strconv.Itoa(1000+i), HangUpAfter: 20 * time.Second})
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
			c.RateLimitGlobal = ivr.RateLimit{Max: -1}
		})
		for i := range 6 {
			tr := e.call(&caller{numbers: []string{cibatest.SEApprove}})
			if !strings.Contains(sayLines(tr), "Tack, Astrid") {
				t.Fatalf("call %d limited with the limits off:\n%s", i, tr)
			}
		}
	})
}

func TestStepRateLimited(t *testing.T) {
	lim := ivr.Limits{MaxNumberAttempts: 3, MaxVerifyAttempts: 2}
	for _, scope := range []store.LimitScope{store.LimitNumber, store.LimitCaller} {
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
	got, d := ivr.Step(call(store.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonChecksum, RateLimited: store.LimitNumber}, lim, time.Now())
	if got.State != store.CallGathering || d.Screen != ivr.ScreenAskNumber {
		t.Errorf("bad number with a limit: %s screen %d", got.State, d.Screen)
	}
}
