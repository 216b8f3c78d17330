package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// The benchmarks below measure what the service asks of a store most
// often, the same way for every store. newStore, as for TestStore, returns
// an empty store each call.

// BenchmarkStartVerification is a caller's start: the call updated, the
// in-flight check, three limits counted (the number, the caller id and the
// global cap, its window holding up to 1,000 starts) and the insert with
// its event; from one goroutine and from many at once.
func BenchmarkStartVerification(b *testing.B, newStore func(b *testing.B) store.Store) {
	limits := func(v *store.Verification) []store.Limit {
		return []store.Limit{
			{Scope: store.LimitNumber, Key: v.IDHash, Max: 3, Window: 10 * time.Minute},
			{Scope: store.LimitCaller, Key: v.Caller, Max: 5, Window: time.Hour},
			{Scope: store.LimitGlobal, Max: 100_000, Window: time.Second},
		}
	}
	run := func(b *testing.B, next *atomic.Int64, s store.Store) error {
		i := next.Add(1)
		sid := fmt.Sprintf("CA%d", i)
		c := NewCall(sid, Epoch)
		if _, err := s.CreateCall(b.Context(), c); err != nil {
			return err
		}
		v := NewVerification(fmt.Sprintf("v%d", i), sid, store.VerStarting, Epoch)
		v.IDHash, v.Caller = fmt.Sprintf("h%d", i), fmt.Sprintf("+4670%07d", i)
		v.CreatedAt = At(time.Duration(i) * time.Millisecond)
		c.VerificationID = v.ID
		_, err := s.StartVerification(b.Context(), c, v, limits(v), NewEvent(sid, "verification_started", v.CreatedAt))
		return err
	}
	b.Run("serial", func(b *testing.B) {
		s := newStore(b)
		var next atomic.Int64
		for b.Loop() {
			if err := run(b, &next, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := newStore(b)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := run(b, &next, s); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkUpdateVerification is the poller's write: one verification row
// and one event per transaction, from one goroutine and from many at once.
func BenchmarkUpdateVerification(b *testing.B, newStore func(b *testing.B) store.Store) {
	b.Run("serial", func(b *testing.B) {
		s := newStore(b)
		v := NewVerification("v1", "CA1", store.VerPending, Epoch)
		MustCreateVerification(b, s, v)
		for b.Loop() {
			v.Polls++
			if err := s.UpdateVerification(b.Context(), v, NewEvent("CA1", "polled", Epoch)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := newStore(b)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			id := fmt.Sprintf("v%d", next.Add(1))
			v := NewVerification(id, "CA-"+id, store.VerPending, Epoch)
			if _, err := s.StartVerification(b.Context(), nil, v, nil); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				v.Polls++
				if err := s.UpdateVerification(b.Context(), v, NewEvent(v.CallSID, "polled", Epoch)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkUpdateCall is a state-changing webhook's write: the call row
// and its timeline event in one transaction, from one goroutine and from
// many at once.
func BenchmarkUpdateCall(b *testing.B, newStore func(b *testing.B) store.Store) {
	b.Run("serial", func(b *testing.B) {
		s := newStore(b)
		c := NewCall("CA1", Epoch)
		MustCreateCall(b, s, c)
		for b.Loop() {
			c.NumberAttempts++
			if err := s.UpdateCall(b.Context(), c, NewEvent("CA1", "digits", Epoch)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := newStore(b)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			c := NewCall(fmt.Sprintf("CA%d", next.Add(1)), Epoch)
			if _, err := s.CreateCall(b.Context(), c); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				c.NumberAttempts++
				if err := s.UpdateCall(b.Context(), c, NewEvent(c.SID, "digits", Epoch)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkCallRead is the hold loop's read of a call, from many
// goroutines, while nothing writes.
func BenchmarkCallRead(b *testing.B, s store.Store) {
	const calls = 1000
	for i := range calls {
		MustCreateCall(b, s, NewCall(fmt.Sprintf("CA%d", i), Epoch))
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Call(b.Context(), fmt.Sprintf("CA%d", next.Add(1)%calls)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// DueRows is how many due verifications BenchmarkClaimDue claims from.
const DueRows = 10_000

// BenchmarkClaimDue is the poller's claim over DueRows pending rows (and as
// many finished ones): leasing the 100 most overdue. Each round claims at
// a time past the leases of the one before. s holds those rows as
// NewVerification makes them, due 1 ms apart from Epoch on: the caller
// seeds them, the fastest way its store has.
func BenchmarkClaimDue(b *testing.B, s store.Store) {
	const lease = 10 * time.Second
	now := At(time.Hour)
	b.Run("claim 100", func(b *testing.B) {
		for b.Loop() {
			now = now.Add(lease)
			vs, err := s.ClaimDue(b.Context(), "bench", now, lease, 100)
			if err != nil || len(vs) != 100 {
				b.Fatalf("ClaimDue = %d, %v; want 100", len(vs), err)
			}
		}
	})
	b.Run("claim none due", func(b *testing.B) {
		for b.Loop() {
			if vs, err := s.ClaimDue(b.Context(), "bench", At(-time.Second), lease, 100); err != nil || len(vs) != 0 {
				b.Fatalf("ClaimDue = %d, %v; want 0", len(vs), err)
			}
		}
	})
	b.Run("next due", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := s.NextDue(b.Context(), now); err != nil || !ok {
				b.Fatalf("NextDue = %v, %v", ok, err)
			}
		}
	})
}
