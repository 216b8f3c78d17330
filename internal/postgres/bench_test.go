package postgres_test

import (
	"testing"

	"github.com/ivr/callerverify/internal/postgres/postgrestest"
	"github.com/ivr/callerverify/internal/store"
	"github.com/ivr/callerverify/internal/store/storetest"
)

// openStore is postgrestest.Open as a storetest benchmark's store factory.
func openStore(b *testing.B) store.Store { return postgrestest.Open(b) }

// BenchmarkStartVerification is a caller's start, under the advisory lock
// that serialises starts.
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
	storetest.BenchmarkCallRead(b, postgrestest.Open(b))
}

// BenchmarkClaimDue seeds its rows in SQL: 20,000 starts one by one would
// take longer than the benchmark.
func BenchmarkClaimDue(b *testing.B) {
	url := postgrestest.Schema(b, postgrestest.URL(b))
	db := postgrestest.OpenURL(b, url)
	const rows = storetest.DueRows
	// Rows as storetest.NewVerification makes them, due 1 ms apart from
	// Epoch.
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
	_, err := seed.Exec(b.Context(), `INSERT INTO poll_queue (id, due_at)
		SELECT id, next_poll_at FROM verifications WHERE status = $1`, string(store.VerPending))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := seed.Exec(b.Context(), "ANALYZE verifications, poll_queue"); err != nil {
		b.Fatal(err)
	}
	if n, err := db.InFlight(b.Context()); err != nil || n != rows {
		b.Fatalf("InFlight = %d, %v; want %d", n, err, rows)
	}
	storetest.BenchmarkClaimDue(b, db)
}
