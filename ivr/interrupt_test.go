package ivr_test

import (
	"context"
	"errors"
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

// interruptObserver records interrupts and safety-net deliveries.
type interruptObserver struct {
	mu                 sync.Mutex
	sent, failed, nets int
}

func (o *interruptObserver) RateLimited(store.LimitScope)          {}
func (o *interruptObserver) VerificationEnded(*store.Verification) {}
func (o *interruptObserver) Interrupted(ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ok {
		o.sent++
	} else {
		o.failed++
	}
}
func (o *interruptObserver) Notified(string) {}
func (o *interruptObserver) SafetyNet() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.nets++
}

func (o *interruptObserver) counts() (sent, failed, nets int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sent, o.failed, o.nets
}

// completedAt is when verification ended, as stored: when the poller
// learnt the outcome.
func completedAt(e *env, sid string) time.Time {
	vs := e.verifications(sid)
	return vs[len(vs)-1].CompletedAt
}

// TestOutcomeInterruptsTheHold: the caller hears the outcome the moment the
// poller learns it, not at the hold loop's next hop, and a verified call
// costs a handful of webhooks, however long the caller waited.
func TestOutcomeInterruptsTheHold(t *testing.T) {
	for _, tc := range []struct {
		name, number, said string
	}{
		{"Swedish approval", cibatest.SEApprove, "Tack, Astrid"},
		{"Norwegian approval", cibatest.NOApprove, "Tack, Kari"},
		{"a slow approval after a minute on hold", cibatest.SEApproveSlow, "Tack, Bengt"},
		{"a decline", cibatest.SEDecline, "Identifieringen avbröts i BankID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				obs := &interruptObserver{}
				e := newEnv(t, func(c *ivr.Config) { c.Observer = obs })
				start := time.Now()
				tr := e.call(&caller{numbers: []string{tc.number}})
				synctest.Wait() // the interrupt's goroutine has counted it
				learnt := completedAt(e, tr.CallSID).Sub(start)
				heard := saidAt(tr, tc.said)
				if heard < 0 || heard-learnt > 500*time.Millisecond {
					t.Errorf("outcome learnt at %v, heard at %v: want within 500 ms", learnt, heard)
				}
				sent, failed, nets := obs.counts()
				if sent == 0 || failed != 0 || nets != 0 {
					t.Errorf("interrupts sent %d, failed %d, safety-net deliveries %d; want the interrupt to bring it", sent, failed, nets)
				}
				if tc.number == cibatest.SEApprove {
					// voice, gather, the interrupt's hold, the queue's after,
					// the status callback: 4 plus one a second of waiting
					// before, 6 at most now.
					if tr.Requests > 6 {
						t.Errorf("%d webhooks for a verified call, want at most 6", tr.Requests)
					}
				}
			})
		})
	}
}

// failingCalls is a Twilio REST API that cannot be reached.
type failingCalls struct{}

func (failingCalls) Redirect(context.Context, string, string) error {
	return errors.New("dial tcp: connection refused")
}

// TestSafetyNetWhenTwilioCannotBeReached: the REST call fails, and the
// hold's own next hop still brings the outcome, within a hop and a second.
func TestSafetyNetWhenTwilioCannotBeReached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &interruptObserver{}
		e := newEnv(t, func(c *ivr.Config) { c.Observer, c.Calls = obs, failingCalls{} })
		start := time.Now()
		tr := e.call(&caller{numbers: []string{cibatest.SEApprove}})
		synctest.Wait()
		learnt := completedAt(e, tr.CallSID).Sub(start)
		if heard := saidAt(tr, "Tack, Astrid"); heard < 0 || heard-learnt > 9*time.Second {
			t.Errorf("outcome learnt at %v, heard at %v: want within a hop (8 s) and a second", learnt, heard)
		}
		if sent, failed, nets := obs.counts(); sent != 0 || failed != 1 || nets != 1 {
			t.Errorf("interrupts sent %d, failed %d, safety-net deliveries %d; want 0, 1, 1", sent, failed, nets)
		}
		e.checkEnded(tr.CallSID)
	})
}

// TestLateAndDuplicateInterruptsChangeNothing: a hop of the interrupted
// hold arriving late, or the interrupt's request twice, is answered from
// what was stored and changes nothing.
func TestLateAndDuplicateInterruptsChangeNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		tr := e.call(&caller{numbers: []string{cibatest.SEApprove}}, func(c *virtualtwilio.Caller) { c.HangUpAfter = time.Minute })
		sid := tr.CallSID
		var update string
		for _, l := range tr.Lines {
			if l.Kind == "update" {
				update = l.Text
			}
		}
		if update == "" {
			t.Fatalf("no interrupt in the call:\n%s", tr)
		}
		before := e.eventKinds(sid)
		path := update[strings.Index(update, "/twilio/"):]
		late := strings.TrimSuffix(path, "&i=1")
		for _, p := range []string{path, path, late} {
			code, body := e.post(p, params(sid))
			if code != 200 || !strings.Contains(body, "<Hangup/>") && !strings.Contains(body, "Enqueue") {
				t.Errorf("%s after the call moved on: %d %s", p, code, body)
			}
		}
		if after := e.eventKinds(sid); len(after) != len(before) {
			t.Errorf("events %v after the replays, want %v", after, before)
		}
	})
}
