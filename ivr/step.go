package ivr

import (
	"time"

	"github.com/ivr/callerverify/internal/store"
)

//go:generate stringer -type=InputKind,Screen,Effect -output=step_string.go

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
	// InMenu: the answer to the identification menu ("press 1 to get the
	// request on this phone, 2 to type your customer number").
	InMenu
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
	// RateLimited (InNumber) names the limit that starting a verification
	// for the number would break; "" when none does.
	RateLimited store.LimitScope
	// CallerIDUsable is true when the caller id identifies the caller (not
	// withheld): only then is identifying them by it offered.
	CallerIDUsable bool
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
	ScreenMenu                         // how to identify: by this phone (1) or by a typed number (2)
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
	// Problem is why the number just entered was refused (ScreenAskNumber
	// after a wrong number); zero otherwise.
	Problem IDReason
	// Reason is why the caller is not verified (ScreenOfferRetry,
	// ScreenHandOff unverified); "" otherwise.
	Reason store.Reason
	// Told is true when the caller has already heard Reason (a hand-off
	// after the retry offer was refused).
	Told bool
	// Limit names the rate limit that refused a verification
	// (Reason == store.ReasonRateLimited).
	Limit store.LimitScope
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
	// Identify is what the verification to start (EffectStart) identifies
	// the caller by: the typed way, or the number they call from.
	Identify store.IDKind
}

// Limits are the bounds Step enforces.
type Limits struct {
	MaxNumberAttempts int           // wrong numbers before a hand-off
	MaxVerifyAttempts int           // verifications the IVR starts per call
	StartTimeout      time.Duration // a verification still starting after this has failed
	ExpiryGrace       time.Duration // how long past ExpiresAt a pending one is still waited for
	ReminderHops      int           // silent hops between reminders
	// Typed is the way callers type who they are (a national identity
	// number or a customer number); "" when none is offered.
	Typed store.IDKind
	// CallerID is true when callers may be identified by the number they
	// call from.
	CallerID bool
}

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
		return first(c, in, lim, now, Decision{First: true})

	case InMenu:
		if c.State != store.CallGathering || c.Identify != "" || !menu(in, lim) {
			return resume(c, in, lim, now)
		}
		switch {
		case in.Key == "1":
			return start(c, store.IDCallerID)
		case in.Key == "2" && lim.Typed != "":
			c.Identify = lim.Typed
			return c, Decision{Screen: ScreenAskNumber, Event: store.EventIdentifyChosen}
		}
		c.NumberAttempts++
		if c.NumberAttempts >= lim.MaxNumberAttempts {
			return handOff(c, now, Decision{Reason: store.ReasonInvalidNumber, Event: store.EventNumberInvalid})
		}
		return c, Decision{Screen: ScreenMenu, Problem: ReasonEmpty, Event: store.EventNumberInvalid}

	case InNumber:
		if c.State != store.CallGathering {
			return resume(c, in, lim, now)
		}
		if !in.NumberOK {
			c.NumberAttempts++
			if c.NumberAttempts >= lim.MaxNumberAttempts {
				return handOff(c, now, Decision{Reason: store.ReasonInvalidNumber, Event: store.EventNumberInvalid})
			}
			return c, Decision{Screen: ScreenAskNumber, Problem: in.NumberReason, Event: store.EventNumberInvalid}
		}
		if in.RateLimited != "" {
			return handOff(c, now, Decision{Reason: store.ReasonRateLimited, Limit: in.RateLimited, Event: store.EventRateLimited})
		}
		return start(c, lim.Typed)

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
			c.Identify = ""
			return first(c, in, lim, now, Decision{Event: store.EventRetryAccepted})
		}
		return handOff(c, now, Decision{Reason: failure(in.Verification, lim, now), Told: true, Event: store.EventRetryRefused})
	}
	return resume(c, in, lim, now)
}

// resume answers an input that does not fit the call's state (a stale or
// out-of-order request) with what the state calls for, changing nothing.
func resume(c store.Call, in Input, lim Limits, now time.Time) (store.Call, Decision) {
	switch c.State {
	case store.CallGathering:
		if c.Identify == "" && menu(in, lim) {
			return c, Decision{Screen: ScreenMenu}
		}
		return c, Decision{Screen: ScreenAskNumber}
	case store.CallVerifying:
		return hold(c, Input{Kind: InHold, Verification: in.Verification, Hold: in.Hold}, lim, now)
	case store.CallRetry:
		return c, Decision{Screen: ScreenOfferRetry, Reason: failure(in.Verification, lim, now)}
	case store.CallHandedOff:
		return c, Decision{Screen: ScreenHandOff, Verified: c.Outcome == store.OutcomeVerified}
	}
	return c, Decision{Screen: ScreenGoodbye}
}

// first is what a caller hears first (d says why: the greeting, a retry):
// the identification menu when they may be identified by the number they
// call from, else the prompt for the typed way. When the caller id is the
// only way and it is withheld, there is nothing to verify them by.
func first(c store.Call, in Input, lim Limits, now time.Time, d Decision) (store.Call, Decision) {
	switch {
	case menu(in, lim):
		d.Screen = ScreenMenu
		return c, d
	case lim.Typed != "":
		d.Screen = ScreenAskNumber
		return c, d
	}
	return handOff(c, now, Decision{Reason: store.ReasonWithheld, Event: store.EventHandedOff})
}

// menu reports whether the caller gets the identification menu: they can
// be identified by the number they call from.
func menu(in Input, lim Limits) bool { return lim.CallerID && in.CallerIDUsable }

// start starts a verification identifying the caller by way.
func start(c store.Call, way store.IDKind) (store.Call, Decision) {
	c.State = store.CallVerifying
	c.Identify = way
	c.VerifyAttempts++
	return c, Decision{Screen: ScreenStarting, Effect: EffectStart, Event: store.EventNumberAccepted, Hold: HoldState{Hops: 1}, Identify: way}
}

func hold(c store.Call, in Input, lim Limits, now time.Time) (store.Call, Decision) {
	v := in.Verification
	if v == nil {
		return failed(c, lim, now, store.ReasonFailed)
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
		return handOff(c, now, Decision{Verified: true, Event: store.EventHandedOff})
	}
	return failed(c, lim, now, failure(v, lim, now))
}

func failed(c store.Call, lim Limits, now time.Time, reason store.Reason) (store.Call, Decision) {
	if c.VerifyAttempts < lim.MaxVerifyAttempts {
		c.State = store.CallRetry
		return c, Decision{Screen: ScreenOfferRetry, Reason: reason, Event: store.EventRetryOffered}
	}
	return handOff(c, now, Decision{Reason: reason, Event: store.EventHandedOff})
}

// handOff puts the caller through to agents with d's outcome and reason.
func handOff(c store.Call, now time.Time, d Decision) (store.Call, Decision) {
	d.Screen = ScreenHandOff
	c.State = store.CallHandedOff
	c.HandedOffAt = now
	c.Outcome, c.Reason = store.OutcomeUnverified, d.Reason
	if d.Verified {
		c.Outcome, c.Reason = store.OutcomeVerified, ""
	}
	return c, d
}

// failure is why verification v did not verify the caller, as it stands at
// now; a missing verification has failed.
func failure(v *store.Verification, lim Limits, now time.Time) store.Reason {
	if v == nil {
		return store.ReasonFailed
	}
	return FailureReason(v, EffectiveStatus(v, lim, now))
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
