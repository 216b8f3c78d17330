package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

// BenchmarkStartVerification is a caller's start: the call updated, the
// in-flight check, three limits counted (the number, the caller id and the
// global cap, its window holding up to 1,000 starts) and the insert with
// its event, under the lock that serialises starts; from one goroutine
// and from many at once.
func BenchmarkStartVerification(b *testing.B) {
	limits := func(v *store.Verification) []store.Limit {
		return []store.Limit{
			{Scope: store.LimitNumber, Key: v.IDHash, Max: 3, Window: 10 * time.Minute},
			{Scope: store.LimitCaller, Key: v.Caller, Max: 5, Window: time.Hour},
			{Scope: store.LimitGlobal, Max: 100_000, Window: time.Second},
		}
	}
	run := func(b *testing.B, next *atomic.Int64, db store.Store) error {
		i := next.Add(1)
		sid := fmt.Sprintf("CA%d", i)
		c := storetest.NewCall(sid, storetest.Epoch)
		if _, err := db.CreateCall(b.Context(), c); err != nil {
			return err
		}
		v := storetest.NewVerification(fmt.Sprintf("v%d", i), sid, store.VerStarting, storetest.Epoch)
		v.IDHash, v.Caller = fmt.Sprintf("h%d", i), fmt.Sprintf("+4670%07d", i)
		v.CreatedAt = storetest.At(time.Duration(i) * time.Millisecond)
		c.VerificationID = v.ID
		_, err := db.StartVerification(b.Context(), c, v, limits(v), storetest.NewEvent(sid, "verification_started", v.CreatedAt))
		return err
	}
	b.Run("serial", func(b *testing.B) {
		db := postgrestest.Open(b)
		var next atomic.Int64
		for b.Loop() {
			if err := run(b, &next, db); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		db := postgrestest.Open(b)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := run(b, &next, db); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkUpdateVerification is the poller's write: one verification row
// and one event per transaction, from one goroutine and from many at once.
func BenchmarkUpdateVerification(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		db := postgrestest.Open(b)
		v := storetest.NewVerification("v1", "CA1", store.VerPending, storetest.Epoch)
		storetest.MustCreateVerification(b, db, v)
		for b.Loop() {
			v.Polls++
			if err := db.UpdateVerification(b.Context(), v, storetest.NewEvent("CA1", "polled", storetest.Epoch)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		db := postgrestest.Open(b)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			id := fmt.Sprintf("v%d", next.Add(1))
			v := storetest.NewVerification(id, "CA-"+id, store.VerPending, storetest.Epoch)
			if _, err := db.StartVerification(b.Context(), nil, v, nil); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				v.Polls++
				if err := db.UpdateVerification(b.Context(), v, storetest.NewEvent(v.CallSID, "polled", storetest.Epoch)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkClaimDue is the poller's claim over 10,000 pending rows (and
// 10,000 finished ones): leasing the 100 most overdue. Each round claims at
// a time past the leases of the one before.
func BenchmarkClaimDue(b *testing.B) {
	url := postgrestest.Schema(b, postgrestest.URL(b))
	db := postgrestest.OpenURL(b, url)
	const rows = 10_000
	// Seeded in SQL: 20,000 starts one by one would take longer than the
	// benchmark. Rows as storetest.NewVerification makes them, due 1 ms
	// apart from Epoch.
	seed := connect(b, url)
	for _, status := range []store.VerificationStatus{store.VerPending, store.VerApproved} {
		_, err := seed.Exec(b.Context(), `INSERT INTO verifications
			(id, call_sid, country, sealed_id, masked_id, id_hash, caller, initiator, status,
			 auth_req_id, binding_message, interval_ms, expires_at, next_poll_at, created_at, updated_at)
			SELECT $1 || i, 'CA' || $1 || i, 'SE', 'c2VhbGVk', '********-**39', 'hmac-abc', '+46701234567', 'caller', $1,
			 'auth-req-' || i, 'Support call', 5000, $2::timestamptz + interval '3 minutes',
			 $2::timestamptz + i * interval '1 millisecond', $2, $2
			FROM generate_series(0, $3 - 1) AS i`, string(status), storetest.Epoch, rows)
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := seed.Exec(b.Context(), "ANALYZE verifications"); err != nil {
		b.Fatal(err)
	}
	if n, err := db.InFlight(b.Context()); err != nil || n != rows {
		b.Fatalf("InFlight = %d, %v; want %d", n, err, rows)
	}
	const lease = 10 * time.Second
	now := storetest.At(time.Hour)
	b.Run("claim 100", func(b *testing.B) {
		for b.Loop() {
			now = now.Add(lease)
			vs, err := db.ClaimDue(b.Context(), "bench", now, lease, 100)
			if err != nil || len(vs) != 100 {
				b.Fatalf("ClaimDue = %d, %v; want 100", len(vs), err)
			}
		}
	})
	b.Run("claim none due", func(b *testing.B) {
		for b.Loop() {
			if vs, err := db.ClaimDue(b.Context(), "bench", storetest.At(-time.Second), lease, 100); err != nil || len(vs) != 0 {
				b.Fatalf("ClaimDue = %d, %v; want 0", len(vs), err)
			}
		}
	})
	b.Run("next due", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := db.NextDue(b.Context(), now); err != nil || !ok {
				b.Fatalf("NextDue = %v, %v", ok, err)
			}
		}
	})
}

// BenchmarkCallRead is the hold loop's read of a call, from many
// goroutines, while nothing writes.
func BenchmarkCallRead(b *testing.B) {
	db := postgrestest.Open(b)
	const calls = 1000
	for i := range calls {
		storetest.MustCreateCall(b, db, storetest.NewCall(fmt.Sprintf("CA%d", i), storetest.Epoch))
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.Call(b.Context(), fmt.Sprintf("CA%d", next.Add(1)%calls)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
