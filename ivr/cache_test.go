package ivr_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/ivr/callerverify/ciba/cibatest"
	"github.com/ivr/callerverify/internal/store"
)

// readCounter is a store that counts the reads of calls and
// verifications, and can be made to refuse call updates.
type readCounter struct {
	store.Store
	reads      atomic.Int64
	failUpdate atomic.Bool
}

func (r *readCounter) Call(ctx context.Context, sid string) (*store.Call, error) {
	r.reads.Add(1)
	return r.Store.Call(ctx, sid)
}

func (r *readCounter) Verification(ctx context.Context, id string) (*store.Verification, error) {
	r.reads.Add(1)
	return r.Store.Verification(ctx, id)
}

func (r *readCounter) UpdateCall(ctx context.Context, c *store.Call, events ...*store.Event) error {
	if r.failUpdate.Load() {
		return errors.New("disk I/O error")
	}
	return r.Store.UpdateCall(ctx, c, events...)
}

// TestHoldHopsReadNothing: on a store it alone writes (sqlite, one
// instance), the service answers a waiting caller's hold hops from memory;
// a write that fails is not remembered as if it had succeeded.
func TestHoldHopsReadNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.stop()
		rc := &readCounter{Store: e.db}
		e.store = rc
		e.start()

		sid := testSID("hops read nothing")
		e.post("/twilio/voice", params(sid))
		_, body := e.post("/twilio/gather?s=1", params(sid, "Digits", cibatest.SEApproveSlow))
		if !strings.Contains(body, "/twilio/hold") {
			t.Fatalf("no hold loop: %s", body)
		}
		before := rc.reads.Load()
		for n := 1; n <= 5; n++ {
			if code, body := e.post("/twilio/hold?s=2&a=1&n="+string(rune('0'+n)), params(sid, "Digits", "")); code != 200 || !strings.Contains(body, "<Response>") {
				t.Fatalf("hop %d: %d %s", n, code, body)
			}
		}
		if got := rc.reads.Load() - before; got != 0 {
			t.Errorf("five hops read the store %d times, want none", got)
		}

		// A write the store refused: the next webhook reads the store
		// again, and answers from what is really stored.
		rc.failUpdate.Store(true)
		e.post("/twilio/status", params(sid, "CallStatus", "completed"))
		rc.failUpdate.Store(false)
		before = rc.reads.Load()
		e.post("/twilio/hold?s=2&a=1&n=6", params(sid, "Digits", ""))
		if rc.reads.Load() == before {
			t.Error("after a failed write the service answered from memory")
		}
		if c := e.storedCall(sid); c.State == store.CallEnded {
			t.Fatalf("the refused write was stored")
		}
	})
}
