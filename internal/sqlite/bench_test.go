package sqlite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

// openStore is open as a storetest benchmark's store factory.
func openStore(b *testing.B) store.Store { return open(b) }

// BenchmarkStartVerification is a caller's start; the write connection
// serialises it with every other write.
func BenchmarkStartVerification(b *testing.B) {
	storetest.BenchmarkStartVerification(b, openStore)
}

func BenchmarkUpdateVerification(b *testing.B) {
	storetest.BenchmarkUpdateVerification(b, openStore)
}

func BenchmarkUpdateCall(b *testing.B) {
	storetest.BenchmarkUpdateCall(b, openStore)
}

func BenchmarkCallRead(b *testing.B) {
	storetest.BenchmarkCallRead(b, open(b))
}

// BenchmarkClaimDue seeds its rows one start at a time.
func BenchmarkClaimDue(b *testing.B) {
	db := open(b)
	for i := range storetest.DueRows {
		next := storetest.At(time.Duration(i) * time.Millisecond)
		storetest.MustCreateVerification(b, db, storetest.NewVerification(fmt.Sprintf("p%d", i), fmt.Sprintf("CAp%d", i), store.VerPending, next))
		storetest.MustCreateVerification(b, db, storetest.NewVerification(fmt.Sprintf("d%d", i), fmt.Sprintf("CAd%d", i), store.VerApproved, next))
	}
	storetest.BenchmarkClaimDue(b, db)
}
