package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/postgres"
	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

// delivery is one call of Listen's deliver.
type delivery struct {
	seqs   []int64
	resync bool
	at     time.Time
}

// listen runs db.Listen until the test ends and returns its deliveries.
func listen(t *testing.T, db *postgres.DB) <-chan delivery {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, done := listenCtx(ctx, db)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen: %v", err)
		}
	})
	return ch
}

// listenCtx runs db.Listen until ctx ends; done has what it returned.
func listenCtx(ctx context.Context, db *postgres.DB) (<-chan delivery, <-chan error) {
	ch := make(chan delivery, 10_000)
	done := make(chan error, 1)
	go func() {
		done <- db.Listen(ctx, func(seqs []int64, resync bool) {
			ch <- delivery{seqs: seqs, resync: resync, at: time.Now()}
		})
	}()
	return ch, done
}

// waitListening waits for the listener's first delivery, the resync that
// says it listens: from then on every commit is delivered.
func waitListening(t *testing.T, _ *postgres.DB, ch <-chan delivery) {
	t.Helper()
	if d := next(t, ch); !d.resync || len(d.seqs) != 0 {
		t.Fatalf("first delivery = %+v, want the resync that says Listen listens", d)
	}
}

// next is the next delivery, or fails the test after 10 s.
func next(t *testing.T, ch <-chan delivery) delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
		return delivery{}
	}
}

// collect reads deliveries until it has seen want seqs (in order) and
// returns them; a resync on the way fails the test.
func collect(t *testing.T, ch <-chan delivery, want int) []int64 {
	t.Helper()
	var got []int64
	for len(got) < want {
		d := next(t, ch)
		if d.resync {
			t.Fatalf("resync while collecting; got %v", got)
		}
		got = append(got, d.seqs...)
	}
	return got
}

func TestListen(t *testing.T) {
	t.Run("delivers what another instance commits, in order, within milliseconds", func(t *testing.T) {
		url := postgrestest.Schema(t, postgrestest.URL(t))
		a, b := postgrestest.OpenURL(t, url), postgrestest.OpenURL(t, url)
		ch := listen(t, a)
		waitListening(t, b, ch)

		const n = 50
		var (
			fromCall, fromReturn []time.Duration
			want                 []int64
		)
		for i := range n {
			sid := fmt.Sprintf("CA%d", i)
			e1, e2 := storetest.NewEvent(sid, "call_started", storetest.Epoch), storetest.NewEvent(sid, "digits", storetest.Epoch)
			called := time.Now()
			if _, err := b.CreateCall(t.Context(), storetest.NewCall(sid, storetest.Epoch), e1, e2); err != nil {
				t.Fatal(err)
			}
			returned := time.Now()
			// Each event is announced by its own notification, in order,
			// both delivered at the commit.
			var d delivery
			var seqs []int64
			for len(seqs) < 2 {
				d = next(t, ch)
				if d.resync {
					t.Fatalf("delivery %+v, want seqs %d,%d", d, e1.Seq, e2.Seq)
				}
				seqs = append(seqs, d.seqs...)
			}
			if !slices.Equal(seqs, []int64{e1.Seq, e2.Seq}) {
				t.Fatalf("delivered seqs %v, want %d,%d", seqs, e1.Seq, e2.Seq)
			}
			fromCall = append(fromCall, d.at.Sub(called))
			fromReturn = append(fromReturn, d.at.Sub(returned))
			want = append(want, e1.Seq, e2.Seq)
		}
		// The notification leaves at commit, as the commit's answer does,
		// so it may reach the listener before the writer's call returns: a
		// negative delay from the return.
		for _, ds := range []struct {
			name string
			d    []time.Duration
		}{{"start of the writer's call", fromCall}, {"return of the writer's call", fromReturn}} {
			slices.Sort(ds.d)
			t.Logf("delivery after the %s, %d writes: median %v, p90 %v, max %v",
				ds.name, n, ds.d[n/2], ds.d[n*9/10], ds.d[n-1])
		}
		if fromReturn[n/2] > 50*time.Millisecond {
			t.Errorf("median delay %v after commit; want a few ms on loopback", fromReturn[n/2])
		}

		// Burst: many commits at once arrive in commit order.
		var burst []int64
		for i := range 200 {
			e := storetest.NewEvent("CAburst", fmt.Sprintf("e%d", i), storetest.Epoch)
			if err := b.AppendEvent(t.Context(), e); err != nil {
				t.Fatal(err)
			}
			burst = append(burst, e.Seq)
		}
		if got := collect(t, ch, len(burst)); !slices.Equal(got, burst) {
			t.Errorf("burst delivered %v, want %v", got, burst)
		}
		loaded, err := a.LoadEvents(t.Context(), want[:2])
		if evs := loaded.Events; err != nil || len(evs) != 2 || evs[0].Kind != "call_started" || evs[1].CallSID != "CA0" || loaded.Calls["CA0"] == nil {
			t.Errorf("LoadEvents of the delivered seqs = %+v, %v", loaded, err)
		}
	})

	t.Run("a transaction of a thousand events with the longest seqs is delivered whole, in order", func(t *testing.T) {
		url := postgrestest.Schema(t, postgrestest.URL(t))
		a, b := postgrestest.OpenURL(t, url), postgrestest.OpenURL(t, url)
		// The longest seqs there are: 19 digits.
		if _, err := connect(t, url).Exec(t.Context(), "ALTER SEQUENCE events_seq_seq RESTART WITH 9000000000000000000"); err != nil {
			t.Fatal(err)
		}
		ch := listen(t, a)
		waitListening(t, b, ch)
		events := make([]*store.Event, 1000) // 20,000 bytes of seqs
		for i := range events {
			events[i] = storetest.NewEvent("CAbig", "e", storetest.Epoch)
		}
		storetest.MustCreateCall(t, b, storetest.NewCall("CAbig", storetest.Epoch), events...)
		var want []int64
		for _, e := range events {
			want = append(want, e.Seq)
		}
		var got []int64
		for len(got) < len(want) {
			got = append(got, next(t, ch).seqs...)
		}
		if !slices.Equal(got, want) {
			t.Errorf("got %d seqs, want the %d in order", len(got), len(want))
		}
		var logged []int64
		for _, e := range storetest.MustEvents(t, a, "CAbig") {
			logged = append(logged, e.Seq)
		}
		if !slices.Equal(logged, want) || !slices.IsSorted(want) {
			t.Errorf("Events(CAbig) has %d events; want the %d given, in the order given", len(logged), len(want))
		}
	})

	t.Run("a lost connection resyncs, then events keep coming", func(t *testing.T) {
		url := postgrestest.Schema(t, postgrestest.URL(t))
		a, b := postgrestest.OpenURL(t, url), postgrestest.OpenURL(t, url)
		ch := listen(t, a)
		waitListening(t, b, ch)

		admin := connect(t, url)
		var killed int
		err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE query LIKE 'LISTEN %' AND position($1 in query) > 0`, postgres.Channel(a)).Scan(&killed)
		if err != nil || killed != 1 {
			t.Fatalf("terminated %d listening backends, %v; want 1", killed, err)
		}
		start := time.Now()
		if d := next(t, ch); !d.resync || d.seqs != nil {
			t.Fatalf("after the connection was killed: %+v, want a resync", d)
		}
		t.Logf("resync %v after the listening backend was terminated", time.Since(start).Round(time.Millisecond))
		e := storetest.NewEvent("CA1", "after", storetest.Epoch)
		if err := b.AppendEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		if got := collect(t, ch, 1); !slices.Equal(got, []int64{e.Seq}) {
			t.Errorf("after the resync: %v, want %d", got, e.Seq)
		}
	})

	t.Run("a store in another schema does not hear these events", func(t *testing.T) {
		base := postgrestest.URL(t)
		a := postgrestest.OpenURL(t, postgrestest.Schema(t, base))
		other := postgrestest.OpenURL(t, postgrestest.Schema(t, base))
		chA, chOther := listen(t, a), listen(t, other)
		waitListening(t, a, chA)
		waitListening(t, other, chOther)
		e := storetest.NewEvent("CA1", "only_a", storetest.Epoch)
		if err := a.AppendEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		if got := collect(t, chA, 1); !slices.Equal(got, []int64{e.Seq}) {
			t.Fatalf("a got %v, want %d", got, e.Seq)
		}
		// Then a marker in the other schema: whatever arrives there first
		// must be it.
		m := storetest.NewEvent("CA1", "marker", storetest.Epoch)
		if err := other.AppendEvent(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		if got := collect(t, chOther, 1); !slices.Equal(got, []int64{m.Seq}) {
			t.Errorf("the other schema's listener got %v, want only its own %d", got, m.Seq)
		}
	})

	t.Run("returns nil when its context ends or the store closes", func(t *testing.T) {
		db, err := postgres.Open(t.Context(), postgrestest.Schema(t, postgrestest.URL(t)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		ch, done := listenCtx(ctx, db)
		waitListening(t, db, ch)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen after its context ended = %v, want nil", err)
		}
		ch, done = listenCtx(t.Context(), db)
		waitListening(t, db, ch)
		db.Close()
		if err := <-done; err != nil {
			t.Errorf("Listen after Close = %v, want nil", err)
		}
	})
}

func TestParseSeqs(t *testing.T) {
	if got := postgres.ParseSeqs("1,2,9223372036854775807"); !slices.Equal(got, []int64{1, 2, 9223372036854775807}) {
		t.Errorf("ParseSeqs = %v", got)
	}
	if got := postgres.ParseSeqs("4, x,,-1,5"); !slices.Equal(got, []int64{4, 5}) {
		t.Errorf("ParseSeqs skips what is not a seq: %v", got)
	}
}
