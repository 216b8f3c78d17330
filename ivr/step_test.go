package ivr_test

import (
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/ivr"
)

var (
	t0  = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	lim = ivr.Limits{MaxNumberAttempts: 3, MaxVerifyAttempts: 2, StartTimeout: 30 * time.Second, ExpiryGrace: 5 * time.Second, ReminderHops: 10}
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

	tests := []struct {
		name      string
		from      store.Call
		in        ivr.Input
		state     store.CallState
		screen    ivr.Screen
		reason    string
		effect    ivr.Effect
		outcome   string
		event     store.EventKind
		announced bool
	}{
		{"an incoming call is greeted", store.Call{}, ivr.Input{Kind: ivr.InIncoming}, store.CallGathering, ivr.ScreenAskNumber, "", ivr.EffectNone, "", "", false},
		{"a valid number starts a verification", call(store.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberOK: true}, store.CallVerifying, ivr.ScreenStarting, "", ivr.EffectStart, "", store.EventNumberAccepted, false},
		{"silence is a wrong try with its reason", call(store.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonEmpty}, store.CallGathering, ivr.ScreenAskNumber, "empty", ivr.EffectNone, "", store.EventNumberInvalid, false},
		{"a bad check digit says so", call(store.CallGathering, numberTries(1)), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonChecksum}, store.CallGathering, ivr.ScreenAskNumber, "checksum", ivr.EffectNone, "", store.EventNumberInvalid, false},
		{"a wrong length says so", call(store.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonLength}, store.CallGathering, ivr.ScreenAskNumber, "length", ivr.EffectNone, "", store.EventNumberInvalid, false},
		{"the third wrong number hands off unverified", call(store.CallGathering, numberTries(2)), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonDate}, store.CallHandedOff, ivr.ScreenHandOff, ivr.ReasonTooManyNumbers, ivr.EffectNone, store.OutcomeUnverified, store.EventNumberInvalid, false},
		{"still starting keeps holding silently", call(store.CallVerifying), ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerStarting, store.Sweden), Hold: ivr.HoldState{Hops: 1}}, store.CallVerifying, ivr.ScreenHold, "", ivr.EffectNone, "", "", false},
		{"right after start, still starting says one moment", call(store.CallVerifying), ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerStarting, store.Sweden)}, store.CallVerifying, ivr.ScreenStarting, "", ivr.EffectNone, "", "", false},
		{"stuck starting past the timeout has failed", call(store.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold, Verification: stuck, Hold: ivr.HoldState{Hops: 5}}, store.CallRetry, ivr.ScreenOfferRetry, "failed", ivr.EffectNone, "", store.EventRetryOffered, false},
		{"pending and not yet told: instructions", call(store.CallVerifying), ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerPending, store.Norway)}, store.CallVerifying, ivr.ScreenInstruct, "", ivr.EffectNone, "", "", true},
		{"a key repeats the word pair", call(store.CallVerifying), ivr.Input{Kind: ivr.InHold, Key: "5", Verification: ver(store.VerPending, store.Norway), Hold: ivr.HoldState{Announced: true, Hops: 3}}, store.CallVerifying, ivr.ScreenRepeat, "", ivr.EffectNone, "", "", true},
		{"a silent hop keeps holding", call(store.CallVerifying), ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerPending, store.Sweden), Hold: ivr.HoldState{Announced: true, Hops: 3}}, store.CallVerifying, ivr.ScreenHold, "", ivr.EffectNone, "", "", true},
		{"every so often a reminder", call(store.CallVerifying), ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerPending, store.Norway), Hold: ivr.HoldState{Announced: true, Hops: 9}}, store.CallVerifying, ivr.ScreenReminder, "", ivr.EffectNone, "", "", true},
		{"approved hands off verified", call(store.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerApproved, store.Sweden), Hold: ivr.HoldState{Announced: true}}, store.CallHandedOff, ivr.ScreenHandOff, "", ivr.EffectNone, store.OutcomeVerified, store.EventHandedOff, false},
		{"declined offers one retry", call(store.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerDeclined, store.Sweden)}, store.CallRetry, ivr.ScreenOfferRetry, "declined", ivr.EffectNone, "", store.EventRetryOffered, false},
		{"declined again hands off unverified", call(store.CallVerifying, verifyTries(2)), ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerDeclined, store.Sweden)}, store.CallHandedOff, ivr.ScreenHandOff, "declined", ivr.EffectNone, store.OutcomeUnverified, store.EventHandedOff, false},
		{"unknown user offers a retry", call(store.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerUnknownUser, store.Sweden)}, store.CallRetry, ivr.ScreenOfferRetry, "unknown_user", ivr.EffectNone, "", store.EventRetryOffered, false},
		{"broker down offers a retry", call(store.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold, Verification: ver(store.VerFailed, store.Sweden)}, store.CallRetry, ivr.ScreenOfferRetry, "failed", ivr.EffectNone, "", store.EventRetryOffered, false},
		{"the hold loop never outlives the expiry", call(store.CallVerifying, verifyTries(2)), ivr.Input{Kind: ivr.InHold, Verification: expiredPending, Hold: ivr.HoldState{Announced: true, Hops: 4}}, store.CallHandedOff, ivr.ScreenHandOff, "expired", ivr.EffectNone, store.OutcomeUnverified, store.EventHandedOff, false},
		{"a lost verification counts as failed", call(store.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold}, store.CallRetry, ivr.ScreenOfferRetry, "failed", ivr.EffectNone, "", store.EventRetryOffered, false},
		{"pressing 1 retries from the number", call(store.CallRetry, numberTries(2), verifyTries(1)), ivr.Input{Kind: ivr.InRetryChoice, Key: "1"}, store.CallGathering, ivr.ScreenAskNumber, "retry", ivr.EffectNone, "", store.EventRetryAccepted, false},
		{"silence at the retry offer hands off unverified", call(store.CallRetry, verifyTries(1)), ivr.Input{Kind: ivr.InRetryChoice}, store.CallHandedOff, ivr.ScreenHandOff, ivr.ReasonRetryDeclined, ivr.EffectNone, store.OutcomeUnverified, store.EventRetryRefused, false},
		{"a stale number for a verifying call changes nothing", call(store.CallVerifying), ivr.Input{Kind: ivr.InNumber, NumberOK: true, Verification: ver(store.VerPending, store.Sweden), Hold: ivr.HoldState{Announced: true}}, store.CallVerifying, ivr.ScreenHold, "", ivr.EffectNone, "", "", true},
		{"a stale hold hop after hand-off repeats the hand-off", call(store.CallHandedOff, func(c *store.Call) { c.Outcome = store.OutcomeVerified }), ivr.Input{Kind: ivr.InHold}, store.CallHandedOff, ivr.ScreenHandOff, "", ivr.EffectNone, store.OutcomeVerified, "", false},
		{"an ended call says nothing more", call(store.CallEnded), ivr.Input{Kind: ivr.InHold}, store.CallEnded, ivr.ScreenGoodbye, "", ivr.EffectNone, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, d := ivr.Step(tt.from, tt.in, lim, t0)
			if got.State != tt.state || d.Screen != tt.screen || d.Reason != tt.reason || d.Effect != tt.effect {
				t.Errorf("Step = state %s screen %d reason %q effect %d, want %s %d %q %d", got.State, d.Screen, d.Reason, d.Effect, tt.state, tt.screen, tt.reason, tt.effect)
			}
			if got.Outcome != tt.outcome {
				t.Errorf("outcome = %q, want %q", got.Outcome, tt.outcome)
			}
			if d.Event != tt.event {
				t.Errorf("event = %q, want %q", d.Event, tt.event)
			}
			if d.Hold.Announced != tt.announced {
				t.Errorf("hold announced = %t, want %t", d.Hold.Announced, tt.announced)
			}
			if got.Step != tt.from.Step || got.LastTwiML != tt.from.LastTwiML {
				t.Errorf("Step changed Step/LastTwiML; the handler owns them")
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
