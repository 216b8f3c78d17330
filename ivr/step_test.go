package ivr_test

import (
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

var (
	t0  = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	lim = ivr.Limits{MaxNumberAttempts: 3, MaxVerifyAttempts: 2, StartTimeout: 30 * time.Second, ExpiryGrace: 5 * time.Second, ReminderHops: 10, Typed: store.IDNationalID}
)

func call(st store.CallState, mod ...func(*store.Call)) store.Call {
	c := store.Call{SID: "CA1", State: st, Language: "sv-SE", Step: 3}
	for _, m := range mod {
		m(&c)
	}
	return c
}

func numberTries(n int) func(*store.Call) { return func(c *store.Call) { c.NumberAttempts = n } }
func verifyTries(n int) func(*store.Call) { return func(c *store.Call) { c.VerifyAttempts = n } }

func ver(st store.VerificationStatus, country store.Country) *store.Verification {
	return &store.Verification{ID: "v1", Country: country, Status: st, CreatedAt: t0.Add(-10 * time.Second), ExpiresAt: t0.Add(100 * time.Second), BindingMessage: "Frekk Julekos"}
}

func TestStep(t *testing.T) {
	expiredPending := ver(store.VerPending, store.Sweden)
	expiredPending.ExpiresAt = t0.Add(-6 * time.Second)
	stuck := ver(store.VerStarting, store.Sweden)
	stuck.CreatedAt = t0.Add(-31 * time.Second)
	unreachable := ver(store.VerFailed, store.Sweden)
	unreachable.Error = "broker unreachable"

	tests := []struct {
		name    string
		from    store.Call
		in      ivr.Input
		state   store.CallState // of the call Step returns
		outcome string
		reason  store.Reason
		want    ivr.Decision
	}{
		{name: "an incoming call is greeted", from: store.Call{}, in: ivr.Input{Kind: ivr.InIncoming},
			state: store.CallGathering, want: ivr.Decision{Screen: ivr.ScreenAskNumber, First: true}},
		{name: "a valid number starts a verification", from: call(store.CallGathering), in: ivr.Input{Kind: ivr.InNumber, NumberOK: true},
			state: store.CallVerifying, want: ivr.Decision{Screen: ivr.ScreenStarting, Effect: ivr.EffectStart, Event: store.EventNumberAccepted, Hold: ivr.HoldState{Hops: 1}, Identify: store.IDNationalID}},
		{name: "silence is a wrong try with its reason", from: call(store.CallGathering), in: ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonEmpty},
			state: store.CallGathering, want: ivr.Decision{Screen: ivr.ScreenAskNumber, Problem: ivr.ReasonEmpty, Event: store.EventNumberInvalid}},
		{name: "a bad check digit says so", from: call(store.CallGathering, numberTries(1)), in: ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonChecksum},
			state: store.CallGathering, want: ivr.Decision{Screen: ivr.ScreenAskNumber, Problem: ivr.ReasonChecksum, Event: store.EventNumberInvalid}},
		{name: "a wrong length says so", from: call(store.CallGathering), in: ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonLength},
			state: store.CallGathering, want: ivr.Decision{Screen: ivr.ScreenAskNumber, Problem: ivr.ReasonLength, Event: store.EventNumberInvalid}},
		{name: "the third wrong number hands off unverified", from: call(store.CallGathering, numberTries(2)), in: ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonDate},
			state: store.CallHandedOff, outcome: store.OutcomeUnverified, reason: store.ReasonInvalidNumber,
			want: ivr.Decision{Screen: ivr.ScreenHandOff, Reason: store.ReasonInvalidNumber, Event: store.EventNumberInvalid}},
		{name: "still starting keeps holding silently", from: call(store.CallVerifying), in: ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerStarting, store.Sweden), Hold: ivr.HoldState{Hops: 1}},
			state: store.CallVerifying, want: ivr.Decision{Screen: ivr.ScreenHold, Country: store.Sweden, Hold: ivr.HoldState{Hops: 2}}},
		{name: "right after start, still starting says one moment", from: call(store.CallVerifying), in: ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerStarting, store.Sweden)},
			state: store.CallVerifying, want: ivr.Decision{Screen: ivr.ScreenStarting, Country: store.Sweden, Hold: ivr.HoldState{Hops: 1}}},
		{name: "stuck starting past the timeout has failed: the broker did not answer", from: call(store.CallVerifying, verifyTries(1)), in: ivr.Input{Kind: ivr.InHold, Verification: stuck, Hold: ivr.HoldState{Hops: 5}},
			state: store.CallRetry, want: ivr.Decision{Screen: ivr.ScreenOfferRetry, Reason: store.ReasonBrokerUnreachable, Event: store.EventRetryOffered}},
		{name: "pending and not yet told: instructions", from: call(store.CallVerifying), in: ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerPending, store.Norway)},
			state: store.CallVerifying, want: ivr.Decision{Screen: ivr.ScreenInstruct, Country: store.Norway, Hold: ivr.HoldState{Announced: true}}},
		{name: "a key repeats the word pair", from: call(store.CallVerifying), in: ivr.Input{Kind: ivr.InHold, Key: "5", Verification: ver(store.VerPending, store.Norway), Hold: ivr.HoldState{Announced: true, Hops: 3}},
			state: store.CallVerifying, want: ivr.Decision{Screen: ivr.ScreenRepeat, Country: store.Norway, Hold: ivr.HoldState{Announced: true}}},
		{name: "a silent hop keeps holding", from: call(store.CallVerifying), in: ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerPending, store.Sweden), Hold: ivr.HoldState{Announced: true, Hops: 3}},
			state: store.CallVerifying, want: ivr.Decision{Screen: ivr.ScreenHold, Country: store.Sweden, Hold: ivr.HoldState{Announced: true, Hops: 4}}},
		{name: "every so often a reminder", from: call(store.CallVerifying), in: ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerPending, store.Norway), Hold: ivr.HoldState{Announced: true, Hops: 9}},
			state: store.CallVerifying, want: ivr.Decision{Screen: ivr.ScreenReminder, Country: store.Norway, Hold: ivr.HoldState{Announced: true}}},
		{name: "approved hands off verified", from: call(store.CallVerifying, verifyTries(1)), in: ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerApproved, store.Sweden), Hold: ivr.HoldState{Announced: true}},
			state: store.CallHandedOff, outcome: store.OutcomeVerified, want: ivr.Decision{Screen: ivr.ScreenHandOff, Verified: true, Event: store.EventHandedOff}},
		{name: "declined offers one retry", from: call(store.CallVerifying, verifyTries(1)), in: ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerDeclined, store.Sweden)},
			state: store.CallRetry, want: ivr.Decision{Screen: ivr.ScreenOfferRetry, Reason: store.ReasonDeclined, Event: store.EventRetryOffered}},
		{name: "declined again hands off unverified", from: call(store.CallVerifying, verifyTries(2)), in: ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerDeclined, store.Sweden)},
			state: store.CallHandedOff, outcome: store.OutcomeUnverified, reason: store.ReasonDeclined,
			want: ivr.Decision{Screen: ivr.ScreenHandOff, Reason: store.ReasonDeclined, Event: store.EventHandedOff}},
		{name: "unknown user offers a retry", from: call(store.CallVerifying, verifyTries(1)), in: ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerUnknownUser, store.Sweden)},
			state: store.CallRetry, want: ivr.Decision{Screen: ivr.ScreenOfferRetry, Reason: store.ReasonUnknownUser, Event: store.EventRetryOffered}},
		{name: "an invalid token offers a retry", from: call(store.CallVerifying, verifyTries(1)), in: ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerFailed, store.Sweden)},
			state: store.CallRetry, want: ivr.Decision{Screen: ivr.ScreenOfferRetry, Reason: store.ReasonFailed, Event: store.EventRetryOffered}},
		{name: "broker down offers a retry", from: call(store.CallVerifying, verifyTries(1)), in: ivr.Input{Kind: ivr.InHold, Verification: unreachable},
			state: store.CallRetry, want: ivr.Decision{Screen: ivr.ScreenOfferRetry, Reason: store.ReasonBrokerUnreachable, Event: store.EventRetryOffered}},
		{name: "the hold loop never outlives the expiry", from: call(store.CallVerifying, verifyTries(2)), in: ivr.Input{Kind: ivr.InHold, Verification: expiredPending, Hold: ivr.HoldState{Announced: true, Hops: 4}},
			state: store.CallHandedOff, outcome: store.OutcomeUnverified, reason: store.ReasonExpired,
			want: ivr.Decision{Screen: ivr.ScreenHandOff, Reason: store.ReasonExpired, Event: store.EventHandedOff}},
		{name: "a lost verification counts as failed", from: call(store.CallVerifying, verifyTries(1)), in: ivr.Input{Kind: ivr.InHold},
			state: store.CallRetry, want: ivr.Decision{Screen: ivr.ScreenOfferRetry, Reason: store.ReasonFailed, Event: store.EventRetryOffered}},
		{name: "pressing 1 retries from the number", from: call(store.CallRetry, numberTries(2), verifyTries(1)), in: ivr.Input{Kind: ivr.InRetryChoice, Key: "1"},
			state: store.CallGathering, want: ivr.Decision{Screen: ivr.ScreenAskNumber, Event: store.EventRetryAccepted}},
		{name: "silence at the retry offer hands off unverified, still declined", from: call(store.CallRetry, verifyTries(1)), in: ivr.Input{Kind: ivr.InRetryChoice, Verification: ver(store.VerDeclined, store.Sweden)},
			state: store.CallHandedOff, outcome: store.OutcomeUnverified, reason: store.ReasonDeclined,
			want: ivr.Decision{Screen: ivr.ScreenHandOff, Reason: store.ReasonDeclined, Told: true, Event: store.EventRetryRefused}},
		{name: "a rate limit hands off unverified without starting", from: call(store.CallGathering), in: ivr.Input{Kind: ivr.InNumber, NumberOK: true, RateLimited: store.LimitNumber},
			state: store.CallHandedOff, outcome: store.OutcomeUnverified, reason: store.ReasonRateLimited,
			want: ivr.Decision{Screen: ivr.ScreenHandOff, Reason: store.ReasonRateLimited, Limit: store.LimitNumber, Event: store.EventRateLimited}},
		{name: "a stale number for a verifying call changes nothing", from: call(store.CallVerifying), in: ivr.Input{Kind: ivr.InNumber, NumberOK: true, Verification: ver(store.VerPending, store.Sweden), Hold: ivr.HoldState{Announced: true}},
			state: store.CallVerifying, want: ivr.Decision{Screen: ivr.ScreenHold, Country: store.Sweden, Hold: ivr.HoldState{Announced: true, Hops: 1}}},
		{name: "a stale hold hop after hand-off repeats the hand-off", from: call(store.CallHandedOff, func(c *store.Call) { c.Outcome = store.OutcomeVerified }), in: ivr.Input{Kind: ivr.InHold},
			state: store.CallHandedOff, outcome: store.OutcomeVerified, want: ivr.Decision{Screen: ivr.ScreenHandOff, Verified: true}},
		{name: "an ended call says nothing more", from: call(store.CallEnded), in: ivr.Input{Kind: ivr.InHold},
			state: store.CallEnded, want: ivr.Decision{Screen: ivr.ScreenGoodbye}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, d := ivr.Step(tt.from, tt.in, lim, t0)
			if d != tt.want {
				t.Errorf("Step decision =\n%+v\nwant\n%+v", d, tt.want)
			}
			if got.State != tt.state || got.Outcome != tt.outcome || got.Reason != tt.reason {
				t.Errorf("Step call = %s/%q/%q, want %s/%q/%q", got.State, got.Outcome, got.Reason, tt.state, tt.outcome, tt.reason)
			}
			if handedOff := got.State == store.CallHandedOff && tt.from.State != store.CallHandedOff; handedOff != got.HandedOffAt.Equal(t0) {
				t.Errorf("HandedOffAt = %v, want %v exactly when the call is handed off now", got.HandedOffAt, t0)
			}
			if got.Step != tt.from.Step || got.LastTwiML != tt.from.LastTwiML {
				t.Errorf("Step changed Step/LastTwiML; the handler owns them")
			}
		})
	}
}

// TestStepIdentificationMenu: at a broker that can reach the caller by the
// number they call from, they are offered that (press 1) beside typing a
// customer number (press 2); never when the caller id is withheld.
func TestStepIdentificationMenu(t *testing.T) {
	both := lim
	both.Typed, both.CallerID = store.IDCustomer, true
	onlyCallerID := lim
	onlyCallerID.Typed, onlyCallerID.CallerID = "", true
	chose := func(k store.IDKind) func(*store.Call) { return func(c *store.Call) { c.Identify = k } }
	tests := []struct {
		name     string
		lim      ivr.Limits
		from     store.Call
		in       ivr.Input
		state    store.CallState
		identify store.IDKind
		reason   store.Reason
		want     ivr.Decision
	}{
		{name: "a caller with a usable caller id gets the menu", lim: both, from: store.Call{}, in: ivr.Input{Kind: ivr.InIncoming, CallerIDUsable: true},
			state: store.CallGathering, want: ivr.Decision{Screen: ivr.ScreenMenu, First: true}},
		{name: "a withheld caller is asked for the customer number at once", lim: both, from: store.Call{}, in: ivr.Input{Kind: ivr.InIncoming},
			state: store.CallGathering, want: ivr.Decision{Screen: ivr.ScreenAskNumber, First: true}},
		{name: "a withheld caller when the caller id is the only way goes to an agent", lim: onlyCallerID, from: store.Call{}, in: ivr.Input{Kind: ivr.InIncoming},
			state: store.CallHandedOff, reason: store.ReasonWithheld, want: ivr.Decision{Screen: ivr.ScreenHandOff, Reason: store.ReasonWithheld, Event: store.EventHandedOff}},
		{name: "1 starts a request to the phone they call from", lim: both, from: call(store.CallGathering), in: ivr.Input{Kind: ivr.InMenu, Key: "1", CallerIDUsable: true},
			state: store.CallVerifying, identify: store.IDCallerID, want: ivr.Decision{Screen: ivr.ScreenStarting, Effect: ivr.EffectStart, Event: store.EventNumberAccepted, Hold: ivr.HoldState{Hops: 1}, Identify: store.IDCallerID}},
		{name: "2 asks for the customer number", lim: both, from: call(store.CallGathering), in: ivr.Input{Kind: ivr.InMenu, Key: "2", CallerIDUsable: true},
			state: store.CallGathering, identify: store.IDCustomer, want: ivr.Decision{Screen: ivr.ScreenAskNumber, Event: store.EventIdentifyChosen}},
		{name: "2 with the caller id the only way is no choice", lim: onlyCallerID, from: call(store.CallGathering), in: ivr.Input{Kind: ivr.InMenu, Key: "2", CallerIDUsable: true},
			state: store.CallGathering, want: ivr.Decision{Screen: ivr.ScreenMenu, Problem: ivr.ReasonEmpty, Event: store.EventNumberInvalid}},
		{name: "silence at the menu asks again", lim: both, from: call(store.CallGathering), in: ivr.Input{Kind: ivr.InMenu, CallerIDUsable: true},
			state: store.CallGathering, want: ivr.Decision{Screen: ivr.ScreenMenu, Problem: ivr.ReasonEmpty, Event: store.EventNumberInvalid}},
		{name: "the third silence goes to an agent", lim: both, from: call(store.CallGathering, numberTries(2)), in: ivr.Input{Kind: ivr.InMenu, CallerIDUsable: true},
			state: store.CallHandedOff, reason: store.ReasonInvalidNumber, want: ivr.Decision{Screen: ivr.ScreenHandOff, Reason: store.ReasonInvalidNumber, Event: store.EventNumberInvalid}},
		{name: "a customer number after the menu starts with it", lim: both, from: call(store.CallGathering, chose(store.IDCustomer)), in: ivr.Input{Kind: ivr.InNumber, NumberOK: true, CallerIDUsable: true},
			state: store.CallVerifying, identify: store.IDCustomer, want: ivr.Decision{Screen: ivr.ScreenStarting, Effect: ivr.EffectStart, Event: store.EventNumberAccepted, Hold: ivr.HoldState{Hops: 1}, Identify: store.IDCustomer}},
		{name: "a retry offers the menu again", lim: both, from: call(store.CallRetry, chose(store.IDCallerID), verifyTries(1)), in: ivr.Input{Kind: ivr.InRetryChoice, Key: "1", CallerIDUsable: true},
			state: store.CallGathering, want: ivr.Decision{Screen: ivr.ScreenMenu, Event: store.EventRetryAccepted}},
		{name: "a stale menu answer after the choice changes nothing", lim: both, from: call(store.CallGathering, chose(store.IDCustomer)), in: ivr.Input{Kind: ivr.InMenu, Key: "1", CallerIDUsable: true},
			state: store.CallGathering, identify: store.IDCustomer, want: ivr.Decision{Screen: ivr.ScreenAskNumber}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, d := ivr.Step(tt.from, tt.in, tt.lim, t0)
			if d != tt.want {
				t.Errorf("Step decision =\n%+v\nwant\n%+v", d, tt.want)
			}
			if got.State != tt.state || got.Identify != tt.identify || got.Reason != tt.reason {
				t.Errorf("Step call = %s/%q/%q, want %s/%q/%q", got.State, got.Identify, got.Reason, tt.state, tt.identify, tt.reason)
			}
		})
	}
}

func TestStepCounters(t *testing.T) {
	c, _ := ivr.Step(call(store.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberOK: true}, lim, t0)
	if c.VerifyAttempts != 1 {
		t.Errorf("VerifyAttempts = %d after a valid number, want 1", c.VerifyAttempts)
	}
	c, _ = ivr.Step(call(store.CallGathering, numberTries(1)), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonChecksum}, lim, t0)
	if c.NumberAttempts != 2 {
		t.Errorf("NumberAttempts = %d, want 2", c.NumberAttempts)
	}
	c, _ = ivr.Step(call(store.CallRetry, numberTries(2)), ivr.Input{Kind: ivr.InRetryChoice, Key: "1"}, lim, t0)
	if c.NumberAttempts != 0 {
		t.Errorf("NumberAttempts = %d after a retry, want 0", c.NumberAttempts)
	}
}

func TestEffectiveStatus(t *testing.T) {
	pending := ver(store.VerPending, store.Sweden)
	tests := []struct {
		name string
		now  time.Time
		v    *store.Verification
		want store.VerificationStatus
	}{
		{"pending before expiry", t0, pending, store.VerPending},
		{"pending within grace", pending.ExpiresAt.Add(4 * time.Second), pending, store.VerPending},
		{"pending past grace is expired", pending.ExpiresAt.Add(6 * time.Second), pending, store.VerExpired},
		{"starting within the timeout", t0, ver(store.VerStarting, store.Sweden), store.VerStarting},
		{"starting past the timeout failed", t0.Add(21 * time.Second), ver(store.VerStarting, store.Sweden), store.VerFailed},
		{"final stays final", t0.Add(time.Hour), ver(store.VerApproved, store.Sweden), store.VerApproved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ivr.EffectiveStatus(tt.v, lim, tt.now); got != tt.want {
				t.Errorf("EffectiveStatus = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestView(t *testing.T) {
	se := ver(store.VerPending, store.Sweden)
	se.Pending = "awaiting user identification"
	approved := ver(store.VerApproved, store.Norway)
	approved.Name = "Kari Nordmann"
	agent := ver(store.VerStarting, store.Sweden)
	agent.Initiator = "agent:alice"
	tests := []struct {
		name string
		c    store.Call
		v    *store.Verification
		want string
	}{
		{"gathering", call(store.CallGathering), nil, store.ViewGathering},
		{"starting", call(store.CallVerifying), ver(store.VerStarting, store.Sweden), store.ViewStarting},
		{"swedish pending", call(store.CallVerifying), se, store.ViewAwaitingBankID},
		{"norwegian pending", call(store.CallVerifying), ver(store.VerPending, store.Norway), store.ViewWordPair},
		{"declined, retry offered", call(store.CallRetry), ver(store.VerDeclined, store.Sweden), store.ViewDeclined},
		{"expired", call(store.CallRetry), ver(store.VerExpired, store.Sweden), store.ViewExpired},
		{"unknown user", call(store.CallRetry), ver(store.VerUnknownUser, store.Sweden), store.ViewUnknownUser},
		{"failed", call(store.CallRetry), ver(store.VerFailed, store.Sweden), store.ViewFailed},
		{"handed off verified", call(store.CallHandedOff), approved, store.ViewVerified},
		{"handed off unverified", call(store.CallHandedOff), ver(store.VerDeclined, store.Sweden), store.ViewUnverified},
		{"agent verifying after hand-off", call(store.CallHandedOff), agent, store.ViewStarting},
		{"ended", call(store.CallEnded, func(c *store.Call) { c.EndedAt = t0 }), ver(store.VerCancelled, store.Sweden), store.ViewEnded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ivr.View(&tt.c, tt.v)
			if got.State != tt.want {
				t.Errorf("View state = %q, want %q", got.State, tt.want)
			}
		})
	}

	agentDeclined := ver(store.VerDeclined, store.Sweden)
	agentDeclined.Initiator = "agent:alice"
	agentApproved := ver(store.VerApproved, store.Sweden)
	agentApproved.Initiator = "agent:alice"
	reason := func(r store.Reason) func(*store.Call) { return func(c *store.Call) { c.Reason = r } }
	for _, tt := range []struct {
		name string
		c    store.Call
		v    *store.Verification
		want store.Reason
	}{
		{"nothing wrong yet", call(store.CallVerifying), ver(store.VerPending, store.Sweden), ""},
		{"declined, retry offered", call(store.CallRetry), ver(store.VerDeclined, store.Sweden), store.ReasonDeclined},
		{"handed off after refusing the retry", call(store.CallHandedOff, reason(store.ReasonDeclined)), ver(store.VerDeclined, store.Sweden), store.ReasonDeclined},
		{"rate limited, no verification", call(store.CallHandedOff, reason(store.ReasonRateLimited)), nil, store.ReasonRateLimited},
		{"an agent's verification declined since", call(store.CallHandedOff, reason(store.ReasonRateLimited)), agentDeclined, store.ReasonDeclined},
		{"an agent verified the caller", call(store.CallHandedOff, reason(store.ReasonRateLimited)), agentApproved, ""},
		{"hung up", call(store.CallEnded, reason(store.ReasonHungUp)), nil, store.ReasonHungUp},
	} {
		t.Run("reason: "+tt.name, func(t *testing.T) {
			if got := ivr.View(&tt.c, tt.v).Reason; got != string(tt.want) {
				t.Errorf("View reason = %q, want %q", got, tt.want)
			}
		})
	}

	c := call(store.CallVerifying, func(c *store.Call) { c.From = "+46701234567" })
	v := ver(store.VerPending, store.Norway)
	v.MaskedID = "******-***15"
	got := ivr.View(&c, v)
	if got.Caller != "+46 70 *** ** 67" {
		t.Errorf("Caller = %q, want it masked", got.Caller)
	}
	if got.Verification.WordPair != "Frekk Julekos" || got.Verification.MaskedID != "******-***15" || got.Verification.Method != "Norwegian BankID" {
		t.Errorf("Verification view = %+v", got.Verification)
	}
	vs := ivr.View(&c, se)
	if vs.Verification.Pending != "awaiting user identification" || vs.Verification.WordPair != "" {
		t.Errorf("Swedish view = %+v, want the pending sub-state and no word pair", vs.Verification)
	}
}
