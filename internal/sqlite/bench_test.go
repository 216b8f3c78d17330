package sqlite_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivr/callerverify/ivr"
)

// BenchmarkUpdateVerification is the poller's write: one verification row and
// one event per transaction, from one goroutine and from many at once.
func BenchmarkUpdateVerification(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		db := open(b)
		v := newVerification("v1", "CA1", ivr.VerPending, t0)
		mustCreateVerification(b, db, v)
		for b.Loop() {
			v.Polls++
			if err := db.UpdateVerification(b.Context(), v, event("CA1", "polled", t0)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		db := open(b)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			id := fmt.Sprintf("v%d", next.Add(1))
			v := newVerification(id, "CA-"+id, ivr.VerPending, t0)
			if err := db.CreateVerification(b.Context(), v); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				v.Polls++
				if err := db.UpdateVerification(b.Context(), v, event(v.CallSID, "polled", t0)); err != nil {
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
		mustCreateCall(b, db, newCall(fmt.Sprintf("CA%d", i), t0))
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
		mustCreateVerification(b, db, newVerification(fmt.Sprintf("p%d", i), "CA", ivr.VerPending, at(time.Duration(i)*time.Millisecond)))
		mustCreateVerification(b, db, newVerification(fmt.Sprintf("d%d", i), "CA", ivr.VerApproved, at(time.Duration(i)*time.Millisecond)))
	}
	for _, bb := range []struct {
		name string
		now  time.Time
		want int
	}{
		{"all due", at(time.Hour), 100},
		{"ten due", at(9 * time.Millisecond), 10},
		{"none due", at(-time.Second), 0},
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
