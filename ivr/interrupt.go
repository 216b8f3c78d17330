package ivr

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// CallUpdater redirects a live call to new TwiML: Twilio's REST API
// (twilio-go's UpdateCall with a Url), or a virtual Twilio. Redirect
// returns ErrCallGone for a call that is no longer in progress.
type CallUpdater interface {
	Redirect(ctx context.Context, callSID, url string) error
}

// ErrCallGone is returned by a CallUpdater for a call that has ended.
var ErrCallGone = errors.New("ivr: the call is no longer in progress")

// Interrupts are bounded: a few attempts, each short, so that a caller hears
// the outcome within about half a second or, when Twilio cannot be reached,
// from the hold loop's next hop.
const (
	interruptAttempts = 3
	interruptTimeout  = 2 * time.Second
	interruptRetry    = 100 * time.Millisecond
)

// interruptParam marks a hold request made by an interrupt.
const interruptParam = "&i=1"

// interrupt tells Twilio to leave the hold loop of call c now and fetch
// the hop h answers at once. It runs in the background; the Service waits
// for it in Close.
func (s *Service) interrupt(c *store.Call, h HoldState, why string) {
	if s.cfg.Calls == nil {
		return
	}
	url := strings.TrimSuffix(s.cfg.PublicURL, "/") + holdURL(c.Step, h) + interruptParam
	sid := c.SID
	s.wg.Go(func() {
		delay := interruptRetry
		for i := 1; ; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), interruptTimeout)
			err := s.cfg.Calls.Redirect(ctx, sid, url)
			cancel()
			switch {
			case err == nil:
				s.log.Info("hold interrupted", "call_sid", sid, "why", why)
				s.observeInterrupt(true)
				return
			case errors.Is(err, ErrCallGone):
				return // hung up meanwhile: nothing to tell
			case i == interruptAttempts:
				s.log.Warn("could not interrupt the hold; the caller hears it at the next hop", "call_sid", sid, "why", why, "err", err)
				s.observeInterrupt(false)
				return
			}
			t := time.NewTimer(delay)
			<-t.C
			delay *= 3
		}
	})
}

func (s *Service) observeInterrupt(ok bool) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.Interrupted(ok)
	}
}

// settled is called once a verification's new state is stored: it
// publishes the events (unless the relay does) and, when the caller waits
// in the hold loop for exactly this, interrupts the hold: the verification
// ended, or it is pending and the caller has not heard what to do yet
// (announce: bc-authorize answered after the webhook stopped waiting).
func (s *Service) settled(ctx context.Context, v *store.Verification, announce bool, events ...*store.Event) {
	outcome := v.Status.Done() && len(events) > 0
	if !outcome && !announce && (s.pub == nil || s.feed != nil || len(events) == 0) {
		return
	}
	c, err := s.store.Call(ctx, v.CallSID)
	if err != nil {
		s.log.Warn("load call after a verification changed", "call_sid", v.CallSID, "verification_id", v.ID, "err", err)
		return
	}
	cur := v
	if c.VerificationID != "" && c.VerificationID != v.ID {
		// An older verification: show the call's current one.
		if got, err := s.store.Verification(ctx, c.VerificationID); err == nil {
			cur = got
		}
	}
	s.publish(ctx, c, cur, events...)
	if c.State != store.CallVerifying || c.VerificationID != v.ID {
		return // not in the hold loop waiting for this one
	}
	switch {
	case outcome:
		s.interrupt(c, HoldState{Announced: true}, "verification "+string(v.Status))
	case announce && v.Status == store.VerPending:
		s.interrupt(c, HoldState{}, "instructions")
	}
}

// startWait is the rendezvous of a webhook waiting for bc-authorize and the
// goroutine making the request: whichever comes second learns whether the
// webhook answered before the broker did.
type startWait struct {
	mu     sync.Mutex
	done   bool
	gaveUp bool
	result chan *store.Verification // buffered 1
}

// finish records that bc-authorize has been answered and stored; it
// reports whether the webhook had stopped waiting (the caller then holds
// without the instructions, and must be interrupted to hear them).
func (w *startWait) finish(v *store.Verification) (gaveUp bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	w.result <- v
	return w.gaveUp
}

// giveUp records that the webhook answers without the broker's answer;
// false when that answer came in the meantime (it is then in result).
func (w *startWait) giveUp() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return false
	}
	w.gaveUp = true
	return true
}
