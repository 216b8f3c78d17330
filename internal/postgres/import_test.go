package postgres_test

import (
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/postgres"
	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
)

func rows(rs ...[]any) iter.Seq2[[]any, error] {
	return func(yield func([]any, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// TestImportIsAllOrNothing: a column or table the schema does not have
// fails the whole import, and a store that holds data is refused.
func TestImportIsAllOrNothing(t *testing.T) {
	db := postgrestest.Open(t)
	calls := postgres.Table{Name: "calls", Columns: []string{"sid", "created_at"}, Rows: rows([]any{"CA1", int64(1767225600000)})}
	for _, bad := range []postgres.Table{
		{Name: "events", Columns: []string{"seq", "colour"}, Rows: rows([]any{int64(1), "blue"})},
		{Name: "telegrams", Columns: []string{"id"}, Rows: rows([]any{"t1"})},
	} {
		_, err := db.Import(t.Context(), []postgres.Table{calls, bad})
		if err == nil || !strings.Contains(err.Error(), "not in the PostgreSQL schema") {
			t.Errorf("import with %s %v: %v, want a refusal naming what the schema lacks", bad.Name, bad.Columns, err)
		}
		if _, err := db.Call(t.Context(), "CA1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after a failed import the call is there (%v); want nothing copied", err)
		}
	}
	n, err := db.Import(t.Context(), []postgres.Table{calls})
	if err != nil || n["calls"] != 1 {
		t.Fatalf("Import = %v, %v", n, err)
	}
	c, err := db.Call(t.Context(), "CA1")
	if err != nil || c.CreatedAt.UnixMilli() != 1767225600000 || !c.EndedAt.IsZero() {
		t.Errorf("imported call %+v (%v): want created_at from unix ms and no end", c, err)
	}
	if _, err := db.Import(t.Context(), []postgres.Table{calls}); !errors.Is(err, postgres.ErrNotEmpty) {
		t.Errorf("a second import = %v, want ErrNotEmpty", err)
	}
}

// TestImportQueuesTheVerificationsInFlight: an imported verification that
// is still pending is polled after the move, one that is done is not.
func TestImportQueuesTheVerificationsInFlight(t *testing.T) {
	db := postgrestest.Open(t)
	const due = int64(1767225600000)
	vs := postgres.Table{
		Name:    "verifications",
		Columns: []string{"id", "call_sid", "status", "interval_ms", "next_poll_at"},
		Rows: rows(
			[]any{"v-pending", "CA1", string(store.VerPending), int64(5000), due},
			[]any{"v-done", "CA2", string(store.VerApproved), int64(5000), due},
		),
	}
	if _, err := db.Import(t.Context(), []postgres.Table{vs}); err != nil {
		t.Fatalf("Import: %v", err)
	}
	if n, err := db.InFlight(t.Context()); err != nil || n != 1 {
		t.Errorf("InFlight = %d, %v; want 1", n, err)
	}
	now := time.UnixMilli(due)
	if next, ok, err := db.NextDue(t.Context(), now); err != nil || !ok || !next.Equal(now) {
		t.Errorf("NextDue = %v, %t, %v; want %v", next, ok, err, now)
	}
	claimed, err := db.ClaimDue(t.Context(), "poller-1", now, 8*time.Second, 10)
	if err != nil || len(claimed) != 1 || claimed[0].ID != "v-pending" {
		t.Errorf("ClaimDue = %v, %v; want v-pending only", claimed, err)
	}
}
