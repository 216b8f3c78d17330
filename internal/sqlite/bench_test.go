package sqlite_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

// BenchmarkUpdateVerification is the poller's write: one verification row and
// one event per transaction, from one goroutine and from many at once.
func BenchmarkUpdateVerification(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		db := open(b)
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
		db := open(b)
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

// BenchmarkCallRead is the hold loop's read of a call, from many goroutines,
// while nothing writes.
func BenchmarkCallRead(b *testing.B) {
	db := open(b)
	const calls = 1000
	for i := range calls {
		storetest.MustCreateCall(b, db, storetest.NewCall(fmt.Sprintf("CA%d", i), storetest.Epoch))
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sid := fmt.Sprintf("CA%d", next.Add(1)%calls)
			if _, err := db.Call(b.Context(), sid); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkClaimDue is the poller's claim over 10,000 pending rows (and
// 10,000 finished ones): leasing the 100 most overdue. Each round claims at
// a time past the leases of the one before.
func BenchmarkClaimDue(b *testing.B) {
	db := open(b)
	const rows = 10_000
	for i := range rows {
		storetest.MustCreateVerification(b, db, storetest.NewVerification(fmt.Sprintf("p%d", i), fmt.Sprintf("CAp%d", i), store.VerPending, storetest.At(time.Duration(i)*time.Millisecond)))
		storetest.MustCreateVerification(b, db, storetest.NewVerification(fmt.Sprintf("d%d", i), fmt.Sprintf("CAd%d", i), store.VerApproved, storetest.At(time.Duration(i)*time.Millisecond)))
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
