package ivr

import (
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// InputKind says what happened on a call.
type InputKind int

const (
	// InIncoming: the call arrived (the Voice URL), or a request came for a
	// call we do not know; the caller is greeted.
	InIncoming InputKind = iota + 1
	// InNumber: the caller finished entering a national identity number.
	// NumberOK and NumberReason describe the result of parsing it.
	InNumber
	// InHold: one hop of the hold loop, or the moment right after a
	// verification was started. Verification is the current verification
	// as stored; Key is a key pressed during the hop, if any.
	InHold
	// InRetryChoice: the answer to "press 1 to try again".
	InRetryChoice
)

// Input is one thing that happened on a call, as Step sees it. It carries
// no national identity number: the handler parses the digits and passes the
// verdict.
type Input struct {
	Kind         InputKind
	NumberOK     bool
	NumberReason IDReason // why the number was rejected
	Key          string   // a key pressed (InHold, InRetryChoice)
	Verification *store.Verification
	Hold         HoldState // the hold loop's position, from the hold URL
	// RateLimited (InNumber) is ReasonRateLimitNumber or
	// ReasonRateLimitCaller when starting a verification for the number
	// would break a rate limit; "" otherwise.
	RateLimited string
}

// HoldState is the hold loop's position, carried in the hold URL: whether
// the caller has heard what to do in the BankID app yet, and how many silent
// hops have passed since anything was said.
type HoldState struct {
	Announced bool
	Hops      int
}

// Screen is what the caller is told next.
type Screen int

const (
	ScreenAskNumber  Screen = iota + 1 // greeting or "try again": gather the number
	ScreenStarting                     // "one moment": BankID is being contacted
	ScreenHold                         // keep holding, silently
	ScreenInstruct                     // what to do in the app (NO: the word pair)
	ScreenReminder                     // still waiting (NO: the word pair again)
	ScreenRepeat                       // the caller asked to hear it again
	ScreenOfferRetry                   // the verification failed: press 1 to try again
	ScreenHandOff                      // to the agents, verified or not
	ScreenGoodbye                      // the call is over
)

// Effect is work the handler does besides answering.
type Effect int

const (
	EffectNone  Effect = iota
	EffectStart        // start a verification for the number just entered
)

// Decision is Step's answer: what the caller hears and what to do.
type Decision struct {
	Screen Screen
	Effect Effect
	// Reason qualifies the screen: the IDReason of a rejected number
	// (ScreenAskNumber), or the verification status that failed
	// (ScreenOfferRetry, ScreenHandOff); "" when there is none.
	Reason string
	// First is true for the greeting at the start of the call.
	First bool
	// Verified is true for a hand-off of a verified caller.
	Verified bool
	// Country of the verification being waited for (hold screens).
	Country store.Country
	// Hold is the hold loop's next position (hold screens).
	Hold HoldState
	// Event names the state change, "" when nothing changed.
	Event store.EventKind
}

// Limits are the bounds Step enforces.
type Limits struct {
	MaxNumberAttempts int           // wrong numbers before a hand-off
	MaxVerifyAttempts int           // verifications the IVR starts per call
	StartTimeout      time.Duration // a verification still starting after this has failed
	ExpiryGrace       time.Duration // how long past ExpiresAt a pending one is still waited for
	ReminderHops      int           // silent hops between reminders
}

// Reasons used besides the IDReason strings.
const (
	ReasonTooManyNumbers = "too_many_numbers"
	ReasonRetryDeclined  = "no_retry"
)

// Step decides what happens next on a call. It is pure: it reads c, in and
// now and returns the call as it should be stored and the decision; the
// handler performs the I/O. Step never changes Call.Step or LastTwiML.
func Step(c store.Call, in Input, lim Limits, now time.Time) (store.Call, Decision) {
	if c.State == store.CallEnded {
		return c, Decision{Screen: ScreenGoodbye}
	}
	switch in.Kind {
	case InIncoming:
		c.State = store.CallGathering
		c.NumberAttempts = 0
		return c, Decision{Screen: ScreenAskNumber, First: true}

	case InNumber:
		if c.State != store.CallGathering {
			return resume(c, in, lim, now)
		}
		if !in.NumberOK {
			c.NumberAttempts++
			if c.NumberAttempts >= lim.MaxNumberAttempts {
				return handOff(c, false, ReasonTooManyNumbers, store.EventNumberInvalid)
			}
			return c, Decision{Screen: ScreenAskNumber, Reason: reasonKey(in.NumberReason), Event: store.EventNumberInvalid}
		}
		if in.RateLimited != "" {
			return handOff(c, false, in.RateLimited, store.EventRateLimited)
		}
		c.State = store.CallVerifying
		c.VerifyAttempts++
		return c, Decision{Screen: ScreenStarting, Effect: EffectStart, Event: store.EventNumberAccepted, Hold: HoldState{Hops: 1}}

	case InHold:
		if c.State != store.CallVerifying {
			return resume(c, in, lim, now)
		}
		return hold(c, in, lim, now)

	case InRetryChoice:
		if c.State != store.CallRetry {
			return resume(c, in, lim, now)
		}
		if in.Key == "1" {
			c.State = store.CallGathering
			c.NumberAttempts = 0
			return c, Decision{Screen: ScreenAskNumber, Reason: "retry", Event: store.EventRetryAccepted}
		}
		return handOff(c, false, ReasonRetryDeclined, store.EventRetryRefused)
	}
	return resume(c, in, lim, now)
}

// resume answers an input that does not fit the call's state (a stale or
// out-of-order request) with what the state calls for, changing nothing.
func resume(c store.Call, in Input, lim Limits, now time.Time) (store.Call, Decision) {
	switch c.State {
	case store.CallGathering:
		return c, Decision{Screen: ScreenAskNumber, Reason: "retry"}
	case store.CallVerifying:
		return hold(c, Input{Kind: InHold, Verification: in.Verification, Hold: in.Hold}, lim, now)
	case store.CallRetry:
		st := ""
		if in.Verification != nil {
			st = string(in.Verification.Status)
		}
		return c, Decision{Screen: ScreenOfferRetry, Reason: st}
	case store.CallHandedOff:
		return c, Decision{Screen: ScreenHandOff, Verified: c.Outcome == store.OutcomeVerified}
	}
	return c, Decision{Screen: ScreenGoodbye}
}

func hold(c store.Call, in Input, lim Limits, now time.Time) (store.Call, Decision) {
	v := in.Verification
	if v == nil {
		return failed(c, lim, string(store.VerFailed))
	}
	st := EffectiveStatus(v, lim, now)
	h := in.Hold
	d := Decision{Country: v.Country}
	switch st {
	case store.VerStarting:
		if !h.Announced && h.Hops == 0 {
			d.Screen = ScreenStarting
		} else {
			d.Screen = ScreenHold
		}
		d.Hold = HoldState{Hops: h.Hops + 1}
		return c, d
	case store.VerPending:
		switch {
		case !h.Announced:
			d.Screen = ScreenInstruct
			d.Hold = HoldState{Announced: true}
		case in.Key != "":
			d.Screen = ScreenRepeat
			d.Hold = HoldState{Announced: true}
		case h.Hops+1 >= lim.ReminderHops:
			d.Screen = ScreenReminder
			d.Hold = HoldState{Announced: true}
		default:
			d.Screen = ScreenHold
			d.Hold = HoldState{Announced: true, Hops: h.Hops + 1}
		}
		return c, d
	case store.VerApproved:
		return handOff(c, true, "", store.EventHandedOff)
	}
	return failed(c, lim, string(st))
}

func failed(c store.Call, lim Limits, reason string) (store.Call, Decision) {
	if c.VerifyAttempts < lim.MaxVerifyAttempts {
		c.State = store.CallRetry
		return c, Decision{Screen: ScreenOfferRetry, Reason: reason, Event: store.EventRetryOffered}
	}
	return handOff(c, false, reason, store.EventHandedOff)
}

func handOff(c store.Call, verified bool, reason string, ev store.EventKind) (store.Call, Decision) {
	c.State = store.CallHandedOff
	c.Outcome = store.OutcomeUnverified
	if verified {
		c.Outcome = store.OutcomeVerified
	}
	return c, Decision{Screen: ScreenHandOff, Verified: verified, Reason: reason, Event: ev}
}

// EffectiveStatus is the verification's status as the caller should learn
// it: a verification stuck starting past lim.StartTimeout has failed, and a
// pending one past its expiry (plus grace) has expired, whatever the poller
// has managed to store. So the hold loop never outlives the request.
func EffectiveStatus(v *store.Verification, lim Limits, now time.Time) store.VerificationStatus {
	switch v.Status {
	case store.VerStarting:
		if lim.StartTimeout > 0 && now.After(v.CreatedAt.Add(lim.StartTimeout)) {
			return store.VerFailed
		}
	case store.VerPending:
		if !v.ExpiresAt.IsZero() && now.After(v.ExpiresAt.Add(lim.ExpiryGrace)) {
			return store.VerExpired
		}
	}
	return v.Status
}

func reasonKey(r IDReason) string {
	switch r {
	case ReasonEmpty:
		return "empty"
	case ReasonLength:
		return "length"
	case ReasonDate:
		return "date"
	case ReasonChecksum:
		return "checksum"
	}
	return "length"
}
