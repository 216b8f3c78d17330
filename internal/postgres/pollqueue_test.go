package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

// TestPollsLeaveTheVerificationIndexesAlone is F12 of BENCHMARKS.md: a
// poll (a claim, then the answer stored) must not write new entries into
// the indexes of verifications, as it did when the due time and the lease
// were indexed columns there (two non-HOT updates of the wide row a poll,
// each an entry in all eight indexes). 100 verifications polled 20 times
// grew those indexes by 22 pages (from 15) then; updates that PostgreSQL
// can make in place (HOT) leave them as they are. The pollers also vacuum
// the queue.
func TestPollsLeaveTheVerificationIndexesAlone(t *testing.T) {
	url := postgrestest.Schema(t, postgrestest.URL(t))
	db := postgrestest.OpenURL(t, url)
	conn := connect(t, url)
	const n, rounds = 100, 20
	for i := range n {
		id := fmt.Sprintf("v%03d", i)
		storetest.MustCreateVerification(t, db, storetest.NewVerification(id, "CA"+id, store.VerPending, storetest.Epoch))
	}
	indexPages := func() int64 {
		t.Helper()
		var bytes int64
		if err := conn.QueryRow(t.Context(), `SELECT pg_indexes_size('verifications')`).Scan(&bytes); err != nil {
			t.Fatalf("index size: %v", err)
		}
		return bytes / 8192
	}
	before := indexPages()
	now := storetest.Epoch
	for round := range rounds {
		vs, err := db.ClaimDue(t.Context(), "poller-1", now, 8*time.Second, 2*n)
		if err != nil || len(vs) != n {
			t.Fatalf("round %d: ClaimDue = %d verifications, %v; want %d", round, len(vs), err, n)
		}
		for _, v := range vs {
			v.Polls++
			v.Pending, v.UpdatedAt, v.NextPollAt = "outstandingTransaction", now, now.Add(v.Interval)
			if err := db.UpdateVerification(t.Context(), v); err != nil {
				t.Fatalf("round %d: UpdateVerification(%s): %v", round, v.ID, err)
			}
		}
		now = now.Add(5 * time.Second)
	}
	// A few updates may find no room on their page (pruning waits for
	// transactions of other tests on the server): one page per index is
	// slack for those, far below what rewriting every index costs.
	const indexes = 7
	if grew := indexPages() - before; grew > indexes {
		t.Errorf("%d polls grew the indexes of verifications by %d pages (from %d); want at most %d", n*rounds, grew, before, indexes)
	}
	// The pollers vacuum the queue themselves (the first claim did).
	var vacuums int64
	err := conn.QueryRow(t.Context(), `SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'poll_queue'::regclass`).Scan(&vacuums)
	if err != nil || vacuums == 0 {
		t.Errorf("poll_queue vacuumed %d times (%v); want the claims to have vacuumed it", vacuums, err)
	}
	if got, err := db.InFlight(t.Context()); err != nil || got != n {
		t.Errorf("InFlight = %d, %v; want %d", got, err, n)
	}
}

// TestClaimPutsTheQueueRight: verifications written without the queue (an
// instance of the version before it, during a rolling upgrade) are not
// claimed early and do not stay at the head of the queue, where NextDue
// would keep saying "now" to claims that take nothing (a poller spinning).
func TestClaimPutsTheQueueRight(t *testing.T) {
	now := storetest.At(time.Minute)
	later := now.Add(4 * time.Second)
	for _, tc := range []struct {
		name    string
		behind  string // what the old instance did to the verification
		nextDue time.Time
		queued  bool
	}{
		{"finished it", `UPDATE verifications SET status = 'approved'`, time.Time{}, false},
		{"stored a later poll", `UPDATE verifications SET next_poll_at = $1`, later, true},
		{"leased it", `UPDATE verifications SET lease_owner = 'old-instance', lease_until = $1`, later, true},
		{"deleted it", `DELETE FROM verifications`, time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := postgrestest.Schema(t, postgrestest.URL(t))
			db := postgrestest.OpenURL(t, url)
			conn := connect(t, url)
			storetest.MustCreateVerification(t, db, storetest.NewVerification("v1", "CA1", store.VerPending, storetest.Epoch))
			args := []any{}
			if tc.nextDue != (time.Time{}) {
				args = append(args, tc.nextDue)
			}
			if _, err := conn.Exec(t.Context(), tc.behind, args...); err != nil {
				t.Fatal(err)
			}
			if vs, err := db.ClaimDue(t.Context(), "poller-1", now, 8*time.Second, 10); err != nil || len(vs) != 0 {
				t.Fatalf("ClaimDue = %d verifications, %v; want none", len(vs), err)
			}
			next, ok, err := db.NextDue(t.Context(), now)
			if err != nil || ok != tc.queued || (ok && !next.Equal(tc.nextDue)) {
				t.Errorf("NextDue after the claim = %v, %t, %v; want %v, %t", next, ok, err, tc.nextDue, tc.queued)
			}
		})
	}
}

// TestClaimQueuesVerificationsStartedWithoutTheQueue: a verification an
// instance of the version before the queue started (no queue row) is
// polled by the new instances all the same.
func TestClaimQueuesVerificationsStartedWithoutTheQueue(t *testing.T) {
	url := postgrestest.Schema(t, postgrestest.URL(t))
	db := postgrestest.OpenURL(t, url)
	conn := connect(t, url)
	_, err := conn.Exec(t.Context(), `INSERT INTO verifications (id, call_sid, status, interval_ms, next_poll_at)
		VALUES ('v-old', 'CA1', 'pending', 5000, $1)`, storetest.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := db.ClaimDue(t.Context(), "poller-1", storetest.At(time.Second), 8*time.Second, 10)
	if err != nil || len(vs) != 1 || vs[0].ID != "v-old" {
		t.Fatalf("ClaimDue = %v, %v; want v-old", vs, err)
	}
	if n, err := db.InFlight(t.Context()); err != nil || n != 1 {
		t.Errorf("InFlight = %d, %v; want 1", n, err)
	}
}
