package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// TestPingFailsWhenTheFileCannotBeWritten holds SQLite's write lock from
// another connection, as another process (or a stuck "ivrd agents" run)
// would: reads still work in WAL mode, but Ping must fail, and within its
// context's deadline, so that /readyz reports the store.
func TestPingFailsWhenTheFileCannotBeWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivr.db")
	db := openAt(t, path)
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping on a healthy file: %v", err)
	}

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	lock, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Take the write lock: a write inside the transaction.
	if _, err := lock.Exec("INSERT INTO write_probe (id, at) VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET at = 0"); err != nil {
		t.Fatalf("lock the file: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = db.Ping(ctx)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Ping succeeded while another connection holds the write lock")
	}
	t.Logf("Ping while locked: %v after %v", err, took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("Ping took %v; it must give up near its context's deadline", took)
	}
	// Reads still work: the failure is the write, which is the point.
	if _, err := db.Call(t.Context(), "CAnone"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read while locked: %v", err)
	}

	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Errorf("Ping after the lock was released: %v", err)
	}
}
