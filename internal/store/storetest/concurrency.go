package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// TestConcurrentWriters hammers stores that share one database from many
// goroutines, worker w writing through stores[w%len(stores)]: no lost
// update, no torn audit trail, no error from the database being busy,
// and exactly one writer wins each version of a call they all update.
// Pass one store, or several opened on one database (instances of the
// service); the stores must be empty. TestStore does not run it, since
// only the caller can open several stores on one database.
func TestConcurrentWriters(t *testing.T, stores ...store.Store) {
	if len(stores) == 0 {
		t.Fatal("TestConcurrentWriters: no store")
	}
	db := stores[0]
	ctx := t.Context()
	const workers, rounds = 32, 20
	for w := range workers {
		sid := fmt.Sprintf("CA%d", w)
		MustCreateCall(t, db, NewCall(sid, Epoch))
		MustCreateVerification(t, db, NewVerification("v"+sid, sid, store.VerPending, Epoch))
	}
	MustCreateCall(t, db, NewCall("shared", Epoch))

	var (
		wg        sync.WaitGroup
		conflicts atomic.Int64
		wins      atomic.Int64
		errs      = make(chan error, workers*rounds*4)
	)
	for w := range workers {
		sid := fmt.Sprintf("CA%d", w)
		db := stores[w%len(stores)]
		wg.Go(func() {
			v, err := db.Verification(ctx, "v"+sid)
			if err != nil {
				errs <- err
				return
			}
			for i := range rounds {
				v.Polls++
				v.NextPollAt = v.NextPollAt.Add(time.Second)
				if err := db.UpdateVerification(ctx, v, NewEvent(sid, "polled", Epoch)); err != nil {
					errs <- fmt.Errorf("UpdateVerification: %w", err)
				}
				if err := db.AppendEvent(ctx, NewEvent(sid, "note", Epoch)); err != nil {
					errs <- fmt.Errorf("AppendEvent: %w", err)
				}
				if _, err := db.Call(ctx, sid); err != nil {
					errs <- fmt.Errorf("db.Call: %w", err)
				}
				if _, _, err := db.NextDue(ctx, At(time.Hour)); err != nil {
					errs <- fmt.Errorf("NextDue: %w", err)
				}
				if _, err := db.CreateCall(ctx, NewCall(fmt.Sprintf("%s-%d", sid, i), Epoch)); err != nil {
					errs <- fmt.Errorf("CreateCall: %w", err)
				}
				// Everyone races for the shared call: exactly one writer wins each version.
				c, err := db.Call(ctx, "shared")
				if err != nil {
					errs <- fmt.Errorf("Call(shared): %w", err)
					continue
				}
				c.Step++
				switch err := db.UpdateCall(ctx, c, NewEvent("shared", "step", Epoch)); {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					errs <- fmt.Errorf("UpdateCall(shared): %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	for w := range workers {
		sid := fmt.Sprintf("CA%d", w)
		v, err := db.Verification(ctx, "v"+sid)
		if err != nil {
			t.Fatalf("Verification: %v", err)
		}
		if v.Polls != rounds || v.Version != rounds {
			t.Errorf("%s: polls %d version %d, want %d each", sid, v.Polls, v.Version, rounds)
		}
		if n := len(MustEvents(t, db, sid)); n != 2*rounds {
			t.Errorf("%s: %d events, want %d", sid, n, 2*rounds)
		}
	}
	shared, err := db.Call(ctx, "shared")
	if err != nil {
		t.Fatalf("Call(shared): %v", err)
	}
	if shared.Version != wins.Load() || int64(shared.Step) != 1+wins.Load() {
		t.Errorf("shared call: version %d step %d, want %d and %d (one per win)", shared.Version, shared.Step, wins.Load(), 1+wins.Load())
	}
	if n := int64(len(MustEvents(t, db, "shared"))); n != wins.Load() {
		t.Errorf("shared call: %d events, want one per win (%d)", n, wins.Load())
	}
	t.Logf("shared call: %d wins, %d conflicts", wins.Load(), conflicts.Load())
}

// TestStartsAtOnce has sixteen callers, caller i starting through
// stores[i%len(stores)], start a verification of one number at once, each
// on a call of its own, under a limit of one per number: exactly one
// start goes through, the others get a *store.LimitError, and one
// verification is stored. Pass one store, or several opened on one
// database (instances of the service); the stores must be empty.
func TestStartsAtOnce(t *testing.T, stores ...store.Store) {
	if len(stores) == 0 {
		t.Fatal("TestStartsAtOnce: no store")
	}
	const n = 16
	limits := []store.Limit{{Scope: store.LimitNumber, Key: "h1", Max: 1, Window: 10 * time.Minute}}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		db := stores[i%len(stores)]
		v := NewVerification(fmt.Sprintf("v%d", i), fmt.Sprintf("CA%d", i), store.VerStarting, Epoch)
		v.IDHash = "h1"
		c := NewCall(v.CallSID, Epoch)
		MustCreateCall(t, db, c)
		c.VerificationID = v.ID
		wg.Go(func() {
			<-start
			_, errs[i] = db.StartVerification(t.Context(), c, v, limits, NewEvent(c.SID, "verification_started", Epoch))
		})
	}
	close(start)
	wg.Wait()
	won, stored := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.As(err, new(*store.LimitError)):
			t.Errorf("start %d: %v", i, err)
		}
		if _, err := stores[0].Verification(t.Context(), fmt.Sprintf("v%d", i)); err == nil {
			stored++
		}
	}
	if won != 1 || stored != 1 {
		t.Errorf("%d of %d starts at once went through a limit of 1, %d stored; want 1 and 1", won, n, stored)
	}
}

// TestClaimsAtOnce stores rows due verifications and has eight pollers,
// poller p claiming through stores[p%len(stores)], claim them all at
// once, a few at a time, until none is left: no row is claimed twice and
// each comes back leased to the poller that claimed it. Pass one store,
// or several opened on one database (instances of the service); the
// stores must be empty.
func TestClaimsAtOnce(t *testing.T, rows int, stores ...store.Store) {
	if len(stores) == 0 {
		t.Fatal("TestClaimsAtOnce: no store")
	}
	now := At(time.Hour)
	for i := range rows {
		MustCreateVerification(t, stores[0], NewVerification(fmt.Sprintf("v%03d", i), fmt.Sprintf("CA%03d", i), store.VerPending, At(time.Duration(i)*time.Millisecond)))
	}
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for p := range 8 {
		db := stores[p%len(stores)]
		owner := fmt.Sprintf("instance%d-poller%d", p%len(stores), p)
		wg.Go(func() {
			<-start
			for {
				vs, err := db.ClaimDue(t.Context(), owner, now, 30*time.Second, 7)
				if err != nil {
					t.Errorf("ClaimDue: %v", err)
					return
				}
				if len(vs) == 0 {
					return
				}
				mu.Lock()
				for _, v := range vs {
					if other, ok := claimed[v.ID]; ok {
						t.Errorf("%s claimed by %s and %s", v.ID, other, owner)
					}
					claimed[v.ID] = owner
					if v.LeaseOwner != owner {
						t.Errorf("%s returned leased to %q, want %s", v.ID, v.LeaseOwner, owner)
					}
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(claimed) != rows {
		t.Errorf("%d of %d claimed", len(claimed), rows)
	}
	owners := map[string]int{}
	for _, o := range claimed {
		owners[o]++
	}
	t.Logf("rows per poller: %v", owners)
}
