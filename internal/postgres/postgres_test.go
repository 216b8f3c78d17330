package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
		if err := db.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
		db.Close()
		if err := db.Ping(t.Context()); err == nil {
			t.Error("Ping after Close succeeded")
		}
	})

	// Another client holds a lock that stops every write of the probe row,
	// as a stuck migration or a hand-run maintenance would: reads still
	// work, but Ping must fail within its context's deadline.
	t.Run("fails within its deadline when the database takes no writes", func(t *testing.T) {
		url := postgrestest.Schema(t, postgrestest.URL(t))
		db := postgrestest.OpenURL(t, url)
		if err := db.Ping(t.Context()); err != nil {
			t.Fatalf("Ping on a healthy database: %v", err)
		}
		other := connect(t, url)
		lock, err := other.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lock.Exec(t.Context(), "LOCK TABLE write_probe IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatalf("lock: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = db.Ping(ctx)
		took := time.Since(start)
		if err == nil {
			t.Fatal("Ping succeeded while writes are blocked")
		}
		t.Logf("Ping while blocked: %v after %v", err, took.Round(time.Millisecond))
		if took > 2*time.Second {
			t.Errorf("Ping took %v; it must give up near its context's deadline", took)
		}
		if _, err := db.Call(t.Context(), "CAnone"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("read while writes are blocked: %v", err)
		}
		if err := lock.Rollback(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := db.Ping(t.Context()); err != nil {
			t.Errorf("Ping after the lock was released: %v", err)
		}
	})
}

func TestErrorsHoldNoRowContents(t *testing.T) {
	db := postgrestest.Open(t)
	const nid = "199001011239"
	v := storetest.NewVerification("v1", "CA1", store.VerPending, storetest.Epoch)
	v.IDHash, v.MaskedID = nid, nid // what a careless caller might store
	storetest.MustCreateVerification(t, db, v)
	stale := *v
	if err := db.UpdateVerification(t.Context(), v); err != nil {
		t.Fatalf("UpdateVerification: %v", err)
	}
	_, dupErr := db.StartVerification(t.Context(), nil, v, nil)
	if err := db.CreateAgent(t.Context(), store.Agent{Name: "alice", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	errs := []error{
		dupErr,
		db.UpdateVerification(t.Context(), &stale),
		db.CreateAgent(t.Context(), store.Agent{Name: "alice", PasswordHash: "h"}),
		db.CreateSession(t.Context(), store.Session{ID: nid, Agent: "mallory-" + nid}),
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	errs = append(errs, db.UpdateVerification(canceled, v))
	_, err := db.Verification(t.Context(), nid)
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, nid) || strings.Contains(msg, v.AuthReqID) || strings.Contains(msg, "v1") || strings.Contains(msg, "alice") {
			t.Errorf("case %d: error %q holds row contents", i, msg)
		}
	}
}

func TestCanceledContextLeavesNothingBehind(t *testing.T) {
	db := postgrestest.Open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ev := storetest.NewEvent("CA1", "call_started", storetest.Epoch)
	if _, err := db.CreateCall(ctx, storetest.NewCall("CA1", storetest.Epoch), ev); err == nil {
		t.Fatal("CreateCall with a canceled context succeeded")
	}
	if ev.Seq != 0 {
		t.Errorf("Seq = %d after a failed write, want 0", ev.Seq)
	}
	if _, err := db.Call(t.Context(), "CA1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Call after canceled create err = %v, want ErrNotFound", err)
	}
	if _, err := db.CreateCall(t.Context(), storetest.NewCall("CA1", storetest.Epoch)); err != nil {
		t.Errorf("CreateCall after a canceled one: %v", err)
	}
}

// TestConcurrentWriters hammers one schema from two instances and many
// goroutines: no lost update, no torn audit trail, and exactly one writer
// wins each version of a shared call.
func TestConcurrentWriters(t *testing.T) {
	url := postgrestest.Schema(t, postgrestest.URL(t))
	dbs := []*postgres.DB{postgrestest.OpenURL(t, url), postgrestest.OpenURL(t, url)}
	db := dbs[0]
	ctx := t.Context()
	const workers, rounds = 16, 20
	for w := range workers {
		sid := fmt.Sprintf("CA%d", w)
		storetest.MustCreateCall(t, db, storetest.NewCall(sid, storetest.Epoch))
		storetest.MustCreateVerification(t, db, storetest.NewVerification("v"+sid, sid, store.VerPending, storetest.Epoch))
	}
	storetest.MustCreateCall(t, db, storetest.NewCall("shared", storetest.Epoch))

	var (
		wg   sync.WaitGroup
		wins atomic.Int64
		errs = make(chan error, workers*rounds*4)
	)
	for w := range workers {
		sid := fmt.Sprintf("CA%d", w)
		db := dbs[w%2]
		wg.Go(func() {
			v, err := db.Verification(ctx, "v"+sid)
			if err != nil {
				errs <- err
				return
			}
			for i := range rounds {
				v.Polls++
				if err := db.UpdateVerification(ctx, v, storetest.NewEvent(sid, "polled", storetest.Epoch)); err != nil {
					errs <- fmt.Errorf("UpdateVerification: %w", err)
				}
				if err := db.AppendEvent(ctx, storetest.NewEvent(sid, "note", storetest.Epoch)); err != nil {
					errs <- fmt.Errorf("AppendEvent: %w", err)
				}
				if _, err := db.CreateCall(ctx, storetest.NewCall(fmt.Sprintf("%s-%d", sid, i), storetest.Epoch)); err != nil {
					errs <- fmt.Errorf("CreateCall: %w", err)
				}
				c, err := db.Call(ctx, "shared")
				if err != nil {
					errs <- fmt.Errorf("Call(shared): %w", err)
					continue
				}
				c.Step++
				switch err := db.UpdateCall(ctx, c, storetest.NewEvent("shared", "step", storetest.Epoch)); {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, store.ErrConflict):
					errs <- fmt.Errorf("UpdateCall(shared): %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		sid := fmt.Sprintf("CA%d", w)
		v, err := db.Verification(ctx, "v"+sid)
		if err != nil {
			t.Fatalf("Verification: %v", err)
		}
		if v.Polls != rounds || v.Version != rounds {
			t.Errorf("%s: polls %d version %d, want %d each", sid, v.Polls, v.Version, rounds)
		}
		if n := len(storetest.MustEvents(t, db, sid)); n != 2*rounds {
			t.Errorf("%s: %d events, want %d", sid, n, 2*rounds)
		}
	}
	shared, err := db.Call(ctx, "shared")
	if err != nil {
		t.Fatalf("Call(shared): %v", err)
	}
	if shared.Version != wins.Load() || int64(shared.Step) != 1+wins.Load() {
		t.Errorf("shared call: version %d step %d, want %d and %d (one per win)", shared.Version, shared.Step, wins.Load(), 1+wins.Load())
	}
	if n := int64(len(storetest.MustEvents(t, db, "shared"))); n != wins.Load() {
		t.Errorf("shared call: %d events, want one per win (%d)", n, wins.Load())
	}
	t.Logf("shared call: %d wins of %d tries", wins.Load(), workers*rounds)
}

func TestPurgeEndedInBatches(t *testing.T) {
	db := postgrestest.Open(t)
	const n = 1201 // more than two batches
	for i := range n {
		c := storetest.NewCall(fmt.Sprintf("CA%d", i), storetest.Epoch)
		c.EndedAt = storetest.At(time.Minute)
		storetest.MustCreateCall(t, db, c, storetest.NewEvent(c.SID, "call_started", storetest.Epoch))
	}
	storetest.MustCreateCall(t, db, storetest.NewCall("live", storetest.Epoch))
	got, err := db.PurgeEnded(t.Context(), storetest.At(time.Hour))
	if err != nil || got != n {
		t.Fatalf("PurgeEnded = %d, %v; want %d, nil", got, err, n)
	}
	left, err := db.Calls(t.Context(), store.CallFilter{Limit: 2000})
	if err != nil || len(left) != 0 {
		t.Errorf("ended calls left = %d, %v; want 0", len(left), err)
	}
	if evs := storetest.MustEvents(t, db, "CA1200"); len(evs) != 0 {
		t.Errorf("events of a purged call left: %d", len(evs))
	}
	if _, err := db.Call(t.Context(), "live"); err != nil {
		t.Errorf("live call after purge: %v", err)
	}
}

func TestInFlight(t *testing.T) {
	db := postgrestest.Open(t)
	for i, st := range []store.VerificationStatus{store.VerStarting, store.VerPending, store.VerApproved, store.VerCancelled, store.VerPending} {
		storetest.MustCreateVerification(t, db, storetest.NewVerification(fmt.Sprintf("v%d", i), fmt.Sprintf("CA%d", i), st, storetest.At(time.Second)))
	}
	if n, err := db.InFlight(t.Context()); err != nil || n != 3 {
		t.Fatalf("InFlight = %d, %v; want 3, nil", n, err)
	}
}

func TestEventsBySeq(t *testing.T) {
	db := postgrestest.Open(t)
	e1, e2 := storetest.NewEvent("CA1", "call_started", storetest.Epoch), storetest.NewEvent("CA1", "digits", storetest.At(time.Second))
	storetest.MustCreateCall(t, db, storetest.NewCall("CA1", storetest.Epoch), e1, e2)
	e3 := storetest.NewEvent("CA2", "other", storetest.At(2*time.Second))
	if err := db.AppendEvent(t.Context(), e3); err != nil {
		t.Fatal(err)
	}
	got, err := db.EventsBySeq(t.Context(), []int64{e3.Seq, 999_999, e1.Seq})
	if err != nil {
		t.Fatalf("EventsBySeq: %v", err)
	}
	want := []store.Event{*e1, *e3}
	for i := range want {
		want[i].At = storetest.UTC(want[i].At)
	}
	if !slices.Equal(got, want) {
		t.Errorf("EventsBySeq =\n%+v\nwant\n%+v (Seq order, missing ones left out)", got, want)
	}
	if got, err := db.EventsBySeq(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("EventsBySeq(none) = %v, %v; want nothing", got, err)
	}
}
