package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/ivr/callerverify/internal/store/storetest"
)

// TestPingFailsWhenTheFileCannotBeWritten holds SQLite's write lock from
// another connection, as another process (or a stuck "ivrd agents" run)
// would: reads still work in WAL mode, but Ping must fail, and within its
// context's deadline, so that /readyz reports the store.
func TestPingFailsWhenTheFileCannotBeWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivr.db")
	db := openAt(t, path)
	storetest.TestPingWithWritesBlocked(t, db, func() func() {
		other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		other.SetMaxOpenConns(1)
		lock, err := other.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		// Take the write lock: a write inside the transaction.
		if _, err := lock.Exec("INSERT INTO write_probe (id, at) VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET at = 0"); err != nil {
			t.Fatalf("lock the file: %v", err)
		}
		return func() {
			if err := lock.Rollback(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
