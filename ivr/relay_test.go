package ivr_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/internal/store"
)

// heldFeed is the env's sqlite store with an event feed the test drives:
// Listen delivers what the test sends on notes; LoadEvents counts its
// calls and holds the first until release is closed.
type heldFeed struct {
	*sqlite.DB
	notes   chan []int64
	release chan struct{}
	loads   atomic.Int32
}

func (f *heldFeed) Listen(ctx context.Context, deliver func(seqs []int64, resync bool)) error {
	deliver(nil, true)
	for {
		select {
		case <-ctx.Done():
			return nil
		case seqs := <-f.notes:
			deliver(seqs, false)
		}
	}
}

func (f *heldFeed) LoadEvents(ctx context.Context, seqs []int64) (store.EventBatch, error) {
	if f.loads.Add(1) == 1 {
		select {
		case <-f.release:
		case <-ctx.Done():
			return store.EventBatch{}, ctx.Err()
		}
	}
	sid := testSID("relay")
	all, err := f.DB.Events(ctx, sid)
	if err != nil {
		return store.EventBatch{}, err
	}
	c, err := f.DB.Call(ctx, sid)
	if err != nil {
		return store.EventBatch{}, err
	}
	return store.EventBatch{
		Events: slices.DeleteFunc(all, func(e store.Event) bool { return !slices.Contains(seqs, e.Seq) }),
		Calls:  map[string]*store.Call{sid: c},
	}, nil
}

// TestRelayCatchesUpInOneBatch: while the relay waits for the store, the
// feed keeps delivering (notifications do not pile up behind it), and
// what arrived meanwhile is loaded and published in one batch, in order,
// each event with its call. Before, the relay loaded each notification's
// events and calls on the feed's goroutine: with a burst of calls on a
// busy machine the dashboards of a shared store fell seconds behind.
func TestRelayCatchesUpInOneBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.stop()
		f := &heldFeed{DB: e.db, notes: make(chan []int64), release: make(chan struct{})}
		e.store = f
		e.start()

		ctx := t.Context()
		sid := testSID("relay")
		now := time.Now()
		if _, err := e.db.CreateCall(ctx, &store.Call{SID: sid, State: store.CallGathering, Step: 1, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for range 50 {
			ev := &store.Event{At: now, CallSID: sid, Kind: store.EventCallStatus, Actor: "twilio"}
			if err := e.db.AppendEvent(ctx, ev); err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, ev.Seq)
		}
		for i, seq := range seqs {
			select {
			case f.notes <- []int64{seq}:
			case <-time.After(time.Second):
				t.Fatalf("notification %d waited for the relay's store loads", i+1)
			}
		}
		close(f.release)
		// The relay loads at most once per relayGap: let the bubble's
		// clock pass it.
		time.Sleep(time.Second)
		synctest.Wait()
		var got []int64
		for _, ev := range e.pub.all() {
			if ev.CallSID == sid {
				got = append(got, ev.Seq)
				if ev.Call == nil || ev.Call.CallSID != sid {
					t.Errorf("event %d published without its call: %+v", ev.Seq, ev.Call)
				}
			}
		}
		if !slices.Equal(got, seqs) {
			t.Errorf("published seqs %v, want %v", got, seqs)
		}
		if n := f.loads.Load(); n != 2 {
			t.Errorf("%d event loads for 50 notifications, the first held: want 2 (the first, then the rest in one batch)", n)
		}
	})
}
