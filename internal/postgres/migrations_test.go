package postgres_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/postgres"
	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

// TestShippedMigrationsAreUnchanged pins every shipped migration file.
// Change the schema with a new numbered file and add its hash here.
func TestShippedMigrationsAreUnchanged(t *testing.T) {
	storetest.TestMigrationsPinned(t, os.DirFS("."), map[string]string{
		"0001_init.sql":          "9f83586abf5e62264150305fb594aa48712713791fcf3222ea4b14e81b3767ec",
		"0002_brokers.sql":       "bcc3a06662253c7179c216b6a19c3f691d2dd39b76c3c0aa820bc1eb8605ba3f",
		"0003_poll_queue.sql":    "86d2686a968596d604b1cc3e715cb286ba4d4370663c430e9dc55e90c88c0f33",
		"0004_version_check.sql": "825878e0df8ede27aa52fe7fc5bd3e7579cf0b6a41aeb9e65b81d569c33f6d2d",
		"0005_start_checks.sql":  "24b2a112840ef05f3b9d2e5bd3937ba8d5a286d5a0de12fd10be5798cfb6aab8",
	})
}

// allMigrations is every shipped migration file, in order, comma-separated.
func allMigrations(t *testing.T) string { return storetest.MigrationNames(t, os.DirFS(".")) }

// applied lists schema_migrations through db.
func applied(t *testing.T, db *postgres.DB) string {
	t.Helper()
	names, err := postgres.AppliedMigrations(t.Context(), db)
	if err != nil {
		t.Fatalf("applied migrations: %v", err)
	}
	return strings.Join(names, ",")
}

func TestMigrations(t *testing.T) {
	t.Run("re-opening keeps the data and applies no migration twice", func(t *testing.T) {
		url := postgrestest.Schema(t, postgrestest.URL(t))
		db, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("first Open: %v", err)
		}
		storetest.MustCreateCall(t, db, storetest.NewCall("CA1", storetest.Epoch))
		if err := db.CreateAgent(t.Context(), store.Agent{Name: "alice", PasswordHash: "h"}); err != nil {
			t.Fatalf("CreateAgent: %v", err)
		}
		db.Close()
		for i := range 3 {
			db := postgrestest.OpenURL(t, url)
			if _, err := db.Call(t.Context(), "CA1"); err != nil {
				t.Errorf("re-Open %d: Call: %v", i, err)
			}
			if _, err := db.Agent(t.Context(), "alice"); err != nil {
				t.Errorf("re-Open %d: Agent: %v", i, err)
			}
			if got := applied(t, db); got != allMigrations(t) {
				t.Errorf("re-Open %d: schema_migrations = %q, want each file once", i, got)
			}
		}
	})

	t.Run("instances opening one new schema at once all succeed and migrate it once", func(t *testing.T) {
		url := postgrestest.Schema(t, postgrestest.URL(t))
		const n = 8
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			dbs   = make([]*postgres.DB, n)
			errs  = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-start
				dbs[i], errs[i] = postgres.Open(t.Context(), url)
			})
		}
		close(start)
		wg.Wait()
		for _, db := range dbs {
			if db != nil {
				t.Cleanup(func() { db.Close() })
			}
		}
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
		if got := applied(t, dbs[0]); got != allMigrations(t) {
			t.Errorf("schema_migrations = %q, want each file once", got)
		}
		// Every instance works on the one schema.
		for i, db := range dbs {
			if _, err := db.CreateCall(t.Context(), storetest.NewCall(fmt.Sprintf("CA%d", i), storetest.Epoch)); err != nil {
				t.Errorf("instance %d: CreateCall: %v", i, err)
			}
		}
		if calls, err := dbs[0].Calls(t.Context(), store.CallFilter{Live: true}); err != nil || len(calls) != n {
			t.Errorf("Calls = %d, %v; want %d", len(calls), err, n)
		}
	})

	t.Run("a search_path naming no schema that exists is an error saying so", func(t *testing.T) {
		_, err := postgres.Open(t.Context(), withParam(postgrestest.URL(t), "search_path", "ivrtest_no_such_schema"))
		if err == nil || !strings.Contains(err.Error(), "search_path") {
			t.Errorf("Open = %v, want an error naming search_path", err)
		}
	})
}

// withParam adds a parameter to a connection URL or key=value string.
func withParam(url, key, value string) string {
	switch {
	case !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://"):
		return url + " " + key + "=" + value
	case strings.Contains(url, "?"):
		return url + "&" + key + "=" + value
	}
	return url + "?" + key + "=" + value
}

// TestUpgradeQueuesTheVerificationsInFlight: a database written before the
// poller's queue (migrations 0001 and 0002) keeps polling what was in
// flight, each verification due when its next poll or its lease says.
func TestUpgradeQueuesTheVerificationsInFlight(t *testing.T) {
	url := postgrestest.Schema(t, postgrestest.URL(t))
	conn := connect(t, url)
	if _, err := conn.Exec(t.Context(), `CREATE TABLE schema_migrations (
		name text NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"0001_init.sql", "0002_brokers.sql"} {
		sql, err := os.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(t.Context(), string(sql)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (name) VALUES ($1)`, name); err != nil {
			t.Fatal(err)
		}
	}
	due, leased := storetest.At(time.Minute), storetest.At(time.Minute+8*time.Second)
	_, err := conn.Exec(t.Context(), `INSERT INTO verifications (id, call_sid, status, interval_ms, next_poll_at, lease_owner, lease_until)
		VALUES ('v-leased', 'CA1', 'pending', 5000, $1, 'dead-instance', $2),
		       ('v-due', 'CA2', 'starting', 5000, $1, '', '-infinity'),
		       ('v-done', 'CA3', 'approved', 5000, $1, '', '-infinity')`, due, leased)
	if err != nil {
		t.Fatal(err)
	}
	db := postgrestest.OpenURL(t, url)
	if n, err := db.InFlight(t.Context()); err != nil || n != 2 {
		t.Errorf("InFlight = %d, %v; want 2", n, err)
	}
	for _, want := range []struct {
		at  time.Time
		ids []string
	}{
		{due, []string{"v-due"}}, // v-leased is still the dead instance's
		{leased, []string{"v-due", "v-leased"}},
	} {
		got, err := db.ClaimDue(t.Context(), "poller-1", want.at, 8*time.Second, 10)
		var ids []string
		for _, v := range got {
			ids = append(ids, v.ID)
		}
		if err != nil || !slices.Equal(ids, want.ids) {
			t.Errorf("ClaimDue at %v = %v, %v; want %v", want.at, ids, err, want.ids)
		}
	}
}
