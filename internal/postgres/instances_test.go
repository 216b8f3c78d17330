package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/postgres"
	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

// instances opens two stores on one new schema: two instances of the
// service sharing a database.
func instances(t *testing.T) (a, b *postgres.DB, url string) {
	t.Helper()
	url = postgrestest.Schema(t, postgrestest.URL(t))
	return postgrestest.OpenURL(t, url), postgrestest.OpenURL(t, url), url
}

func TestInstancesStartingAtOnceCannotBothSlipUnderALimit(t *testing.T) {
	a, b, _ := instances(t)
	storetest.TestStartsAtOnce(t, a, b)
}

func TestInstancesClaimingAtOnceNeverShareARow(t *testing.T) {
	a, b, _ := instances(t)
	storetest.TestClaimsAtOnce(t, 300, a, b)
}

func TestInstancesPurgingAtOnceDeleteEachCallOnce(t *testing.T) {
	a, b, _ := instances(t)
	const n = 300 // one batch
	for i := range n {
		c := storetest.NewCall(fmt.Sprintf("CA%d", i), storetest.Epoch)
		c.EndedAt = storetest.At(time.Minute)
		storetest.MustCreateCall(t, a, c, storetest.NewEvent(c.SID, "call_started", storetest.Epoch))
		storetest.MustCreateVerification(t, a, storetest.NewVerification("v"+c.SID, c.SID, store.VerApproved, storetest.Epoch))
	}
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		counts [2]int
		errs   [2]error
	)
	for i, db := range []*postgres.DB{a, b} {
		wg.Go(func() {
			<-start
			counts[i], errs[i] = db.PurgeEnded(t.Context(), storetest.At(time.Hour))
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatalf("PurgeEnded: %v", err)
	}
	if counts[0]+counts[1] != n || min(counts[0], counts[1]) != 0 {
		t.Errorf("PurgeEnded = %d and %d; want %d from one instance and 0 from the other", counts[0], counts[1], n)
	}
	if left, err := b.Calls(t.Context(), store.CallFilter{Limit: 1000}); err != nil || len(left) != 0 {
		t.Errorf("ended calls left = %d, %v", len(left), err)
	}
	if _, err := b.Verification(t.Context(), "vCA7"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a purged call's verification: %v, want ErrNotFound", err)
	}
}

// TestPurgeEndedLeavesTheWorkToTheInstanceHoldingTheLock holds the purge
// lock from another session, as an instance in the middle of a purge
// does: PurgeEnded returns 0 at once and deletes nothing.
func TestPurgeEndedLeavesTheWorkToTheInstanceHoldingTheLock(t *testing.T) {
	a, _, url := instances(t)
	c := storetest.NewCall("CA1", storetest.Epoch)
	c.EndedAt = storetest.At(time.Minute)
	storetest.MustCreateCall(t, a, c)

	other := connect(t, url)
	tx, err := other.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "SELECT pg_advisory_xact_lock($1)", postgres.PurgeLockKey(a)); err != nil {
		t.Fatal(err)
	}
	if n, err := a.PurgeEnded(t.Context(), storetest.At(time.Hour)); err != nil || n != 0 {
		t.Errorf("PurgeEnded while another holds the lock = %d, %v; want 0, nil", n, err)
	}
	if _, err := a.Call(t.Context(), "CA1"); err != nil {
		t.Errorf("the call was purged anyway: %v", err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, err := a.PurgeEnded(t.Context(), storetest.At(time.Hour)); err != nil || n != 1 {
		t.Errorf("PurgeEnded once the lock is free = %d, %v; want 1, nil", n, err)
	}
}

// TestStartsWaitOnlyForWhatTheyShare holds, from another session, the locks
// a start for one number takes, as an instance in the middle of that start
// does: a start for another number on another call goes through at once,
// one for the same number waits for it (every start of every instance
// once waited on one lock).
func TestStartsWaitOnlyForWhatTheyShare(t *testing.T) {
	a, _, url := instances(t)
	limit := func(number string) []store.Limit {
		return []store.Limit{{Scope: store.LimitNumber, Key: number, Max: 3, Window: 10 * time.Minute}}
	}
	for _, sid := range []string{"CA1", "CA2", "CA3"} {
		storetest.MustCreateCall(t, a, storetest.NewCall(sid, storetest.Epoch))
	}
	other := connect(t, url)
	tx, err := other.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	for _, k := range postgres.StartLocks(a, "CA0", limit("hash-of-A")) {
		if _, err := tx.Exec(t.Context(), "SELECT pg_advisory_xact_lock($1)", k); err != nil {
			t.Fatal(err)
		}
	}

	v := storetest.NewVerification("v1", "CA1", store.VerPending, storetest.At(time.Second))
	if _, err := a.StartVerification(t.Context(), nil, v, limit("hash-of-B")); err != nil {
		t.Errorf("a start for another number while one for A is under way: %v, want it through", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	v2 := storetest.NewVerification("v2", "CA2", store.VerPending, storetest.At(time.Second))
	if _, err := a.StartVerification(ctx, nil, v2, limit("hash-of-A")); err == nil {
		t.Errorf("a start for number A went through while another start for A held its lock")
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The start that gave up may still land: its statements reached the
	// server, which runs them once it has the locks unless the cancel
	// pgx sends comes first. A start on another call goes through either
	// way.
	v3 := storetest.NewVerification("v3", "CA3", store.VerPending, storetest.At(time.Second))
	if _, err := a.StartVerification(t.Context(), nil, v3, limit("hash-of-A")); err != nil {
		t.Errorf("the start for A once the other finished: %v", err)
	}
}
