package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ivr/callerverify/internal/store/storetest"
)

// TestCheckpointsAreRare: a checkpoint (the write-ahead log copied back
// into the database file) holds up the write that makes it and every write
// queued behind it; with SQLite's default of one per 1,000 pages of log it
// was the webhooks' p99 at 30 calls a second. 600 writes of a call and its
// event (~1,800 pages of log) make none now.
func TestCheckpointsAreRare(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivr.db")
	db := openAt(t, path)
	c := storetest.NewCall("CA1", storetest.Epoch)
	storetest.MustCreateCall(t, db, c)
	for i := range 600 {
		c.NumberAttempts = i
		if err := db.UpdateCall(t.Context(), c, storetest.NewEvent("CA1", fmt.Sprint("update ", i), storetest.Epoch)); err != nil {
			t.Fatal(err)
		}
	}
	// A passive checkpoint from another connection reports how many
	// frames the log holds: all of them, if no write checkpointed.
	conn, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var busy, frames, copied int
	if err := conn.QueryRowContext(t.Context(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		t.Fatalf("wal_checkpoint: %v", err)
	}
	if frames < 1200 {
		t.Errorf("the log holds %d frames after 600 writes, want them all (≥ 1,200): a write made a checkpoint", frames)
	}
}
