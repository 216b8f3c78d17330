package postgres_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/postgres"
	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
	"github.com/jackc/pgx/v5"
)

func TestConformance(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) store.Store { return postgrestest.Open(t) })
	storetest.TestAgentStore(t, func(t *testing.T) store.AgentStore { return postgrestest.Open(t) })
}

// connect opens a plain connection to url, closed at cleanup: another
// client of the database, for tests that hold locks or kill backends.
func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// silentServer accepts connections and never answers, like a database
// host that is lost behind a firewall dropping its packets; it returns its
// address.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestOpenFailsFastWhenTheDatabaseIsUnreachable(t *testing.T) {
	postgrestest.URL(t) // only where PostgreSQL tests run
	for _, tt := range []struct {
		name, url, want string
	}{
		// Port 1 on loopback: nothing listens, the connection is refused.
		{"nothing listens on the port", "postgres://postgres@127.0.0.1:1/test", "connection refused"},
		// The connection attempt hangs until the default 2 s connect timeout.
		{"the server does not answer", "postgres://postgres@" + silentServer(t) + "/test", "timeout"},
		{"the URL does not parse", "postgres://postgres@127.0.0.1:notaport/test", "parse"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			db, err := postgres.Open(context.Background(), tt.url)
			took := time.Since(start)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("Open: %v after %v", err, took.Round(time.Millisecond))
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "postgres: open: ") {
				t.Errorf("Open err = %q, want a postgres: open: error about %q", err, tt.want)
			}
			if took > 4*time.Second {
				t.Errorf("Open took %v; want about the 2 s connect timeout at most", took)
			}
		})
	}
}

func TestPing(t *testing.T) {
	t.Run("works until Close", func(t *testing.T) {
		db, err := postgres.Open(t.Context(), postgrestest.Schema(t, postgrestest.URL(t)))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		storetest.TestPingUntilClose(t, db)
	})

	// Another client holds a lock that stops every write of the probe row,
	// as a stuck migration or a hand-run maintenance would: reads still
	// work, but Ping must fail within its context's deadline.
	t.Run("fails within its deadline when the database takes no writes", func(t *testing.T) {
		url := postgrestest.Schema(t, postgrestest.URL(t))
		db := postgrestest.OpenURL(t, url)
		storetest.TestPingWithWritesBlocked(t, db, func() func() {
			lock, err := connect(t, url).Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lock.Exec(t.Context(), "LOCK TABLE write_probe IN ACCESS EXCLUSIVE MODE"); err != nil {
				t.Fatalf("lock: %v", err)
			}
			return func() {
				if err := lock.Rollback(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
}

// TestLoadEvents: the events asked for that exist, in seq order, with
// the calls they name and those calls' current verifications.
func TestLoadEvents(t *testing.T) {
	db := postgrestest.Open(t)
	c1 := storetest.NewCall("CA1", storetest.Epoch)
	c1.VerificationID = "v1"
	e1, e2 := storetest.NewEvent("CA1", "call_started", storetest.Epoch), storetest.NewEvent("CA1", "digits", storetest.At(time.Second))
	storetest.MustCreateCall(t, db, c1, e1, e2)
	storetest.MustCreateVerification(t, db, storetest.NewVerification("v0", "CA1", store.VerDeclined, storetest.At(time.Second)))
	storetest.MustCreateVerification(t, db, storetest.NewVerification("v1", "CA1", store.VerPending, storetest.At(time.Second)))
	storetest.MustCreateCall(t, db, storetest.NewCall("CA3", storetest.Epoch)) // named by no event asked for
	e3 := storetest.NewEvent("CA2", "other", storetest.At(2*time.Second))      // a call purged since
	if err := db.AppendEvent(t.Context(), e3); err != nil {
		t.Fatal(err)
	}
	got, err := db.LoadEvents(t.Context(), []int64{e3.Seq, 999_999, e1.Seq})
	if err != nil {
		t.Fatalf("LoadEvents: %v", err)
	}
	want := []store.Event{*e1, *e3}
	for i := range want {
		want[i].At = storetest.UTC(want[i].At)
	}
	if !slices.Equal(got.Events, want) {
		t.Errorf("LoadEvents events =\n%+v\nwant\n%+v (Seq order, missing ones left out)", got.Events, want)
	}
	if len(got.Calls) != 1 || got.Calls["CA1"] == nil || got.Calls["CA1"].VerificationID != "v1" {
		t.Errorf("LoadEvents calls = %v, want CA1 alone", got.Calls)
	}
	if len(got.Verifications) != 1 || got.Verifications["v1"] == nil || got.Verifications["v1"].Status != store.VerPending {
		t.Errorf("LoadEvents verifications = %v, want CA1's current one, v1", got.Verifications)
	}
	if got, err := db.LoadEvents(t.Context(), nil); err != nil || len(got.Events) != 0 {
		t.Errorf("LoadEvents(none) = %v, %v; want nothing", got, err)
	}
}
