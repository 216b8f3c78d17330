package ivr_test

import (
	"testing"
	"time"

	"github.com/ivr/callerverify/ivr"
)

var (
	t0  = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	lim = ivr.Limits{MaxNumberAttempts: 3, MaxVerifyAttempts: 2, StartTimeout: 30 * time.Second, ExpiryGrace: 5 * time.Second, ReminderHops: 10}
)

func call(st ivr.CallState, mod ...func(*ivr.Call)) ivr.Call {
	c := ivr.Call{SID: "CA1", State: st, Language: "sv-SE", Step: 3}
	for _, m := range mod {
		m(&c)
	}
	return c
}

func numberTries(n int) func(*ivr.Call) { return func(c *ivr.Call) { c.NumberAttempts = n } }
func verifyTries(n int) func(*ivr.Call) { return func(c *ivr.Call) { c.VerifyAttempts = n } }

func ver(st ivr.VerificationStatus, country ivr.Country) *ivr.Verification {
	return &ivr.Verification{ID: "v1", Country: country, Status: st, CreatedAt: t0.Add(-10 * time.Second), ExpiresAt: t0.Add(100 * time.Second), BindingMessage: "Frekk Julekos"}
}

func TestStep(t *testing.T) {
	expiredPending := ver(ivr.VerPending, ivr.Sweden)
	expiredPending.ExpiresAt = t0.Add(-6 * time.Second)
	stuck := ver(ivr.VerStarting, ivr.Sweden)
	stuck.CreatedAt = t0.Add(-31 * time.Second)

	tests := []struct {
		name      string
		from      ivr.Call
		in        ivr.Input
		state     ivr.CallState
		screen    ivr.Screen
		reason    string
		effect    ivr.Effect
		outcome   string
		event     ivr.EventKind
		announced bool
	}{
		{"an incoming call is greeted", ivr.Call{}, ivr.Input{Kind: ivr.InIncoming}, ivr.CallGathering, ivr.ScreenAskNumber, "", ivr.EffectNone, "", "", false},
		{"a valid number starts a verification", call(ivr.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberOK: true}, ivr.CallVerifying, ivr.ScreenStarting, "", ivr.EffectStart, "", ivr.EventNumberAccepted, false},
		{"silence is a wrong try with its reason", call(ivr.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonEmpty}, ivr.CallGathering, ivr.ScreenAskNumber, "empty", ivr.EffectNone, "", ivr.EventNumberInvalid, false},
		{"a bad check digit says so", call(ivr.CallGathering, numberTries(1)), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonChecksum}, ivr.CallGathering, ivr.ScreenAskNumber, "checksum", ivr.EffectNone, "", ivr.EventNumberInvalid, false},
		{"a wrong length says so", call(ivr.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonLength}, ivr.CallGathering, ivr.ScreenAskNumber, "length", ivr.EffectNone, "", ivr.EventNumberInvalid, false},
		{"the third wrong number hands off unverified", call(ivr.CallGathering, numberTries(2)), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonDate}, ivr.CallHandedOff, ivr.ScreenHandOff, ivr.ReasonTooManyNumbers, ivr.EffectNone, ivr.OutcomeUnverified, ivr.EventNumberInvalid, false},
		{"still starting keeps holding silently", call(ivr.CallVerifying), ivr.Input{Kind: ivr.InHold, Verification: ver(ivr.VerStarting, ivr.Sweden), Hold: ivr.HoldState{Hops: 1}}, ivr.CallVerifying, ivr.ScreenHold, "", ivr.EffectNone, "", "", false},
		{"right after start, still starting says one moment", call(ivr.CallVerifying), ivr.Input{Kind: ivr.InHold, Verification: ver(ivr.VerStarting, ivr.Sweden)}, ivr.CallVerifying, ivr.ScreenStarting, "", ivr.EffectNone, "", "", false},
		{"stuck starting past the timeout has failed", call(ivr.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold, Verification: stuck, Hold: ivr.HoldState{Hops: 5}}, ivr.CallRetry, ivr.ScreenOfferRetry, "failed", ivr.EffectNone, "", ivr.EventRetryOffered, false},
		{"pending and not yet told: instructions", call(ivr.CallVerifying), ivr.Input{Kind: ivr.InHold, Verification: ver(ivr.VerPending, ivr.Norway)}, ivr.CallVerifying, ivr.ScreenInstruct, "", ivr.EffectNone, "", "", true},
		{"a key repeats the word pair", call(ivr.CallVerifying), ivr.Input{Kind: ivr.InHold, Key: "5", Verification: ver(ivr.VerPending, ivr.Norway), Hold: ivr.HoldState{Announced: true, Hops: 3}}, ivr.CallVerifying, ivr.ScreenRepeat, "", ivr.EffectNone, "", "", true},
		{"a silent hop keeps holding", call(ivr.CallVerifying), ivr.Input{Kind: ivr.InHold, Verification: ver(ivr.VerPending, ivr.Sweden), Hold: ivr.HoldState{Announced: true, Hops: 3}}, ivr.CallVerifying, ivr.ScreenHold, "", ivr.EffectNone, "", "", true},
		{"every so often a reminder", call(ivr.CallVerifying), ivr.Input{Kind: ivr.InHold, Verification: ver(ivr.VerPending, ivr.Norway), Hold: ivr.HoldState{Announced: true, Hops: 9}}, ivr.CallVerifying, ivr.ScreenReminder, "", ivr.EffectNone, "", "", true},
		{"approved hands off verified", call(ivr.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold, Verification: ver(ivr.VerApproved, ivr.Sweden), Hold: ivr.HoldState{Announced: true}}, ivr.CallHandedOff, ivr.ScreenHandOff, "", ivr.EffectNone, ivr.OutcomeVerified, ivr.EventHandedOff, false},
		{"declined offers one retry", call(ivr.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold, Verification: ver(ivr.VerDeclined, ivr.Sweden)}, ivr.CallRetry, ivr.ScreenOfferRetry, "declined", ivr.EffectNone, "", ivr.EventRetryOffered, false},
		{"declined again hands off unverified", call(ivr.CallVerifying, verifyTries(2)), ivr.Input{Kind: ivr.InHold, Verification: ver(ivr.VerDeclined, ivr.Sweden)}, ivr.CallHandedOff, ivr.ScreenHandOff, "declined", ivr.EffectNone, ivr.OutcomeUnverified, ivr.EventHandedOff, false},
		{"unknown user offers a retry", call(ivr.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold, Verification: ver(ivr.VerUnknownUser, ivr.Sweden)}, ivr.CallRetry, ivr.ScreenOfferRetry, "unknown_user", ivr.EffectNone, "", ivr.EventRetryOffered, false},
		{"broker down offers a retry", call(ivr.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold, Verification: ver(ivr.VerFailed, ivr.Sweden)}, ivr.CallRetry, ivr.ScreenOfferRetry, "failed", ivr.EffectNone, "", ivr.EventRetryOffered, false},
		{"the hold loop never outlives the expiry", call(ivr.CallVerifying, verifyTries(2)), ivr.Input{Kind: ivr.InHold, Verification: expiredPending, Hold: ivr.HoldState{Announced: true, Hops: 4}}, ivr.CallHandedOff, ivr.ScreenHandOff, "expired", ivr.EffectNone, ivr.OutcomeUnverified, ivr.EventHandedOff, false},
		{"a lost verification counts as failed", call(ivr.CallVerifying, verifyTries(1)), ivr.Input{Kind: ivr.InHold}, ivr.CallRetry, ivr.ScreenOfferRetry, "failed", ivr.EffectNone, "", ivr.EventRetryOffered, false},
		{"pressing 1 retries from the number", call(ivr.CallRetry, numberTries(2), verifyTries(1)), ivr.Input{Kind: ivr.InRetryChoice, Key: "1"}, ivr.CallGathering, ivr.ScreenAskNumber, "retry", ivr.EffectNone, "", ivr.EventRetryAccepted, false},
		{"silence at the retry offer hands off unverified", call(ivr.CallRetry, verifyTries(1)), ivr.Input{Kind: ivr.InRetryChoice}, ivr.CallHandedOff, ivr.ScreenHandOff, ivr.ReasonRetryDeclined, ivr.EffectNone, ivr.OutcomeUnverified, ivr.EventRetryRefused, false},
		{"a stale number for a verifying call changes nothing", call(ivr.CallVerifying), ivr.Input{Kind: ivr.InNumber, NumberOK: true, Verification: ver(ivr.VerPending, ivr.Sweden), Hold: ivr.HoldState{Announced: true}}, ivr.CallVerifying, ivr.ScreenHold, "", ivr.EffectNone, "", "", true},
		{"a stale hold hop after hand-off repeats the hand-off", call(ivr.CallHandedOff, func(c *ivr.Call) { c.Outcome = ivr.OutcomeVerified }), ivr.Input{Kind: ivr.InHold}, ivr.CallHandedOff, ivr.ScreenHandOff, "", ivr.EffectNone, ivr.OutcomeVerified, "", false},
		{"an ended call says nothing more", call(ivr.CallEnded), ivr.Input{Kind: ivr.InHold}, ivr.CallEnded, ivr.ScreenGoodbye, "", ivr.EffectNone, "", "", false},
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
	c, _ := ivr.Step(call(ivr.CallGathering), ivr.Input{Kind: ivr.InNumber, NumberOK: true}, lim, t0)
	if c.VerifyAttempts != 1 {
		t.Errorf("VerifyAttempts = %d after a valid number, want 1", c.VerifyAttempts)
	}
	c, _ = ivr.Step(call(ivr.CallGathering, numberTries(1)), ivr.Input{Kind: ivr.InNumber, NumberReason: ivr.ReasonChecksum}, lim, t0)
	if c.NumberAttempts != 2 {
		t.Errorf("NumberAttempts = %d, want 2", c.NumberAttempts)
	}
	c, _ = ivr.Step(call(ivr.CallRetry, numberTries(2)), ivr.Input{Kind: ivr.InRetryChoice, Key: "1"}, lim, t0)
	if c.NumberAttempts != 0 {
		t.Errorf("NumberAttempts = %d after a retry, want 0", c.NumberAttempts)
	}
}

func TestEffectiveStatus(t *testing.T) {
	pending := ver(ivr.VerPending, ivr.Sweden)
	tests := []struct {
		name string
		now  time.Time
		v    *ivr.Verification
		want ivr.VerificationStatus
	}{
		{"pending before expiry", t0, pending, ivr.VerPending},
		{"pending within grace", pending.ExpiresAt.Add(4 * time.Second), pending, ivr.VerPending},
		{"pending past grace is expired", pending.ExpiresAt.Add(6 * time.Second), pending, ivr.VerExpired},
		{"starting within the timeout", t0, ver(ivr.VerStarting, ivr.Sweden), ivr.VerStarting},
		{"starting past the timeout failed", t0.Add(21 * time.Second), ver(ivr.VerStarting, ivr.Sweden), ivr.VerFailed},
		{"final stays final", t0.Add(time.Hour), ver(ivr.VerApproved, ivr.Sweden), ivr.VerApproved},
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
	se := ver(ivr.VerPending, ivr.Sweden)
	se.Pending = "awaiting user identification"
	approved := ver(ivr.VerApproved, ivr.Norway)
	approved.Name = "Kari Nordmann"
	agent := ver(ivr.VerStarting, ivr.Sweden)
	agent.Initiator = "agent:alice"
	tests := []struct {
		name string
		c    ivr.Call
		v    *ivr.Verification
		want string
	}{
		{"gathering", call(ivr.CallGathering), nil, ivr.ViewGathering},
		{"starting", call(ivr.CallVerifying), ver(ivr.VerStarting, ivr.Sweden), ivr.ViewStarting},
		{"swedish pending", call(ivr.CallVerifying), se, ivr.ViewAwaitingBankID},
		{"norwegian pending", call(ivr.CallVerifying), ver(ivr.VerPending, ivr.Norway), ivr.ViewWordPair},
		{"declined, retry offered", call(ivr.CallRetry), ver(ivr.VerDeclined, ivr.Sweden), ivr.ViewDeclined},
		{"expired", call(ivr.CallRetry), ver(ivr.VerExpired, ivr.Sweden), ivr.ViewExpired},
		{"unknown user", call(ivr.CallRetry), ver(ivr.VerUnknownUser, ivr.Sweden), ivr.ViewUnknownUser},
		{"failed", call(ivr.CallRetry), ver(ivr.VerFailed, ivr.Sweden), ivr.ViewFailed},
		{"handed off verified", call(ivr.CallHandedOff), approved, ivr.ViewVerified},
		{"handed off unverified", call(ivr.CallHandedOff), ver(ivr.VerDeclined, ivr.Sweden), ivr.ViewUnverified},
		{"agent verifying after hand-off", call(ivr.CallHandedOff), agent, ivr.ViewStarting},
		{"ended", call(ivr.CallEnded, func(c *ivr.Call) { c.EndedAt = t0 }), ver(ivr.VerCancelled, ivr.Sweden), ivr.ViewEnded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ivr.View(&tt.c, tt.v)
			if got.State != tt.want {
				t.Errorf("View state = %q, want %q", got.State, tt.want)
			}
		})
	}

	c := call(ivr.CallVerifying, func(c *ivr.Call) { c.From = "+46701234567" })
	v := ver(ivr.VerPending, ivr.Norway)
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
