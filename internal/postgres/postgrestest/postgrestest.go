// Package postgrestest gives each test a PostgreSQL store of its own: a
// new schema in the database that IVR_TEST_POSTGRES names, dropped when
// the test ends. Tests of any package that want the PostgreSQL store use
// it; without IVR_TEST_POSTGRES they are skipped.
//
//	func TestSomething(t *testing.T) {
//		db := postgrestest.Open(t) // skipped without IVR_TEST_POSTGRES
//		...
//	}
//
// Two stores on one schema (two instances of the service):
//
//	url := postgrestest.Schema(t, postgrestest.URL(t))
//	a, b := postgrestest.OpenURL(t, url), postgrestest.OpenURL(t, url)
package postgrestest

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/postgres"
	"github.com/jackc/pgx/v5"
)

// Env is the environment variable that names the test database, as a URL
// or a key=value connection string: postgres://postgres@127.0.0.1:5432/test.
const Env = "IVR_TEST_POSTGRES"

// URL returns the test database's URL from IVR_TEST_POSTGRES, and skips t
// when it is not set.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(Env)
	if u == "" {
		t.Skip(Env + " is not set: no PostgreSQL to test against")
	}
	return u
}

// Schema creates a schema with a new random name in the database at dbURL,
// drops it with everything in it when t ends, and returns dbURL with
// search_path set to it: every store opened on the returned URL lives in
// that schema alone.
func Schema(t testing.TB, dbURL string) string {
	t.Helper()
	name := "ivrtest_" + strings.ToLower(rand.Text()[:16])
	exec(t, dbURL, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		exec(t, dbURL, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	})
	return withSearchPath(t, dbURL, name)
}

// Open opens a store on a new schema of the test database, closed when t
// ends; t is skipped when IVR_TEST_POSTGRES is not set.
func Open(t testing.TB) *postgres.DB {
	t.Helper()
	return OpenURL(t, Schema(t, URL(t)))
}

// OpenURL opens a store at url (from Schema), closed when t ends.
func OpenURL(t testing.TB, url string) *postgres.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// exec runs one statement on a connection of its own. It does not use
// t.Context, which has ended by the time cleanups run.
func exec(t testing.TB, dbURL, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// withSearchPath is dbURL with its search_path set to schema, as a
// run-time parameter that every connection sends when it starts.
func withSearchPath(t testing.TB, dbURL, schema string) string {
	t.Helper()
	if !strings.HasPrefix(dbURL, "postgres://") && !strings.HasPrefix(dbURL, "postgresql://") {
		return dbURL + " search_path=" + schema // key=value form
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("%s does not parse as a URL", Env) // the error would show a password
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
