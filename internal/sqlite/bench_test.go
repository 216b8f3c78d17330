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

// BenchmarkDueVerifications is the poller's scan over 10,000 pending rows
// (and 10,000 finished ones), taking the 100 most overdue.
func BenchmarkDueVerifications(b *testing.B) {
	db := open(b)
	const rows = 10_000
	for i := range rows {
		storetest.MustCreateVerification(b, db, storetest.NewVerification(fmt.Sprintf("p%d", i), fmt.Sprintf("CAp%d", i), store.VerPending, storetest.At(time.Duration(i)*time.Millisecond)))
		storetest.MustCreateVerification(b, db, storetest.NewVerification(fmt.Sprintf("d%d", i), fmt.Sprintf("CAd%d", i), store.VerApproved, storetest.At(time.Duration(i)*time.Millisecond)))
	}
	for _, bb := range []struct {
		name string
		now  time.Time
		want int
	}{
		{"all due", storetest.At(time.Hour), 100},
		{"ten due", storetest.At(9 * time.Millisecond), 10},
		{"none due", storetest.At(-time.Second), 0},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				vs, err := db.DueVerifications(b.Context(), bb.now, 100)
				if err != nil || len(vs) != bb.want {
					b.Fatalf("DueVerifications = %d, %v; want %d", len(vs), err, bb.want)
				}
			}
		})
	}
	b.Run("next poll time", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := db.NextPollAt(b.Context(), time.Time{}); err != nil || !ok {
				b.Fatalf("NextPollAt = %v, %v", ok, err)
			}
		}
	})
}
