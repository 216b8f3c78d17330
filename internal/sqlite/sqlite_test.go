package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

// open opens a fresh database in a temporary directory, closed at cleanup.
func open(t testing.TB) *sqlite.DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "ivr.db"))
}

func openAt(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) store.Store { return open(t) })
	storetest.TestAgentStore(t, func(t *testing.T) store.AgentStore { return open(t) })
}

func TestOpen(t *testing.T) {
	t.Run("re-opening keeps the data and applies no migration twice", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ivr.db")
		db, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("first Open: %v", err)
		}
		if _, err := db.CreateCall(t.Context(), storetest.NewCall("CA1", storetest.Epoch)); err != nil {
			t.Fatalf("CreateCall: %v", err)
		}
		if err := db.CreateAgent(t.Context(), store.Agent{Name: "alice", PasswordHash: "h"}); err != nil {
			t.Fatalf("CreateAgent: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for i := range 3 {
			db, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("re-Open %d: %v", i, err)
			}
			if _, err := db.Call(t.Context(), "CA1"); err != nil {
				t.Errorf("re-Open %d: Call: %v", i, err)
			}
			if _, err := db.Agent(t.Context(), "alice"); err != nil {
				t.Errorf("re-Open %d: Agent: %v", i, err)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		if got := migrationRows(t, path); got != allMigrations(t) {
			t.Errorf("migrations table = %q, want each file once", got)
		}
	})

	t.Run("two stores opening one new file at once both succeed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ivr.db")
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				db, err := sqlite.Open(t.Context(), path)
				if err == nil {
					err = db.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
		if got := migrationRows(t, path); got != allMigrations(t) {
			t.Errorf("migrations table = %q, want each file once", got)
		}
	})

	t.Run("a path with URI characters is a plain file name", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "odd name?mode=ro#x%20.db")
		db := openAt(t, path)
		if _, err := db.CreateCall(t.Context(), storetest.NewCall("CA1", storetest.Epoch)); err != nil {
			t.Fatalf("CreateCall: %v", err)
		}
		if got, _ := filepath.Glob(filepath.Join(dir, "odd name?mode=ro#x%20.db")); len(got) != 1 {
			t.Errorf("database file not at the given path; dir has %v", got)
		}
	})

	t.Run("a missing directory is an error", func(t *testing.T) {
		_, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "no", "such", "ivr.db"))
		if err == nil {
			t.Fatal("Open in a missing directory succeeded")
		}
	})

	t.Run("Ping works until Close", func(t *testing.T) {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ivr.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		storetest.TestPingUntilClose(t, db)
	})
}

// allMigrations is every shipped migration file, in order, comma-separated.
func allMigrations(t *testing.T) string { return storetest.MigrationNames(t, os.DirFS(".")) }

// migrationRows lists the migrations table through a store opened on path.
func migrationRows(t *testing.T, path string) string {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	names, err := sqlite.AppliedMigrations(t.Context(), db)
	if err != nil {
		t.Fatalf("applied migrations: %v", err)
	}
	return strings.Join(names, ",")
}

// TestConcurrentWriters hammers one store from many goroutines: no
// "database is locked" either.
func TestConcurrentWriters(t *testing.T) {
	storetest.TestConcurrentWriters(t, open(t))
}

// TestTwoStoresOnOneFile is two processes (serve and "ivrd agents add")
// writing the same file: busy_timeout and BEGIN IMMEDIATE keep both going.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivr.db")
	a, b := openAt(t, path), openAt(t, path)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i, db := range []*sqlite.DB{a, b} {
		for g := range 4 {
			wg.Go(func() {
				for j := range 50 {
					sid := fmt.Sprintf("CA-%d-%d-%d", i, g, j)
					if _, err := db.CreateCall(t.Context(), storetest.NewCall(sid, storetest.Epoch), storetest.NewEvent(sid, "call_started", storetest.Epoch)); err != nil {
						errs <- err
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	calls, err := a.Calls(t.Context(), store.CallFilter{Live: true, Limit: 1000})
	if err != nil || len(calls) != 400 {
		t.Errorf("Calls = %d, %v; want 400", len(calls), err)
	}
}

func TestDatabaseFilesArePrivate(t *testing.T) {
	t.Run("a new database and its write-ahead log are 0600", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ivr.db")
		db := openAt(t, path)
		storetest.MustCreateCall(t, db, storetest.NewCall("CA1", storetest.Epoch))
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatalf("stat %s: %v", p, err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", filepath.Base(p), st.Mode().Perm())
			}
		}
	})
	t.Run("an existing 0644 file loses group and other access", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ivr.db")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		openAt(t, path)
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", st.Mode().Perm())
		}
	})
	t.Run("a missing directory is named", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "no-such-dir")
		_, err := sqlite.Open(t.Context(), filepath.Join(dir, "ivr.db"))
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("Open in a missing directory: %v, want an error naming %s", err, dir)
		}
	})
}
