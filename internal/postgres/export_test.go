package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ivr/callerverify/internal/store"
)

// AppliedMigrations lists schema_migrations, for tests.
func AppliedMigrations(ctx context.Context, db *DB) ([]string, error) {
	rows, _ := db.pool.Query(ctx, "SELECT name FROM schema_migrations ORDER BY name")
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Channel is the NOTIFY channel of db's events.
func Channel(db *DB) string { return db.channel }

// SetListenHeartbeat makes Listen check a quiet connection after every,
// giving it timeout to answer. Call it before Listen.
func SetListenHeartbeat(db *DB, every, timeout time.Duration) {
	db.heartbeat, db.pingTimeout = every, timeout
}

// PurgeLockKey is the advisory lock PurgeEnded takes.
func PurgeLockKey(db *DB) int64 { return db.lockKey(lockPurge) }

// ParseSeqs reads a notification's payload.
var ParseSeqs = parseSeqs

// StartLocks are the advisory locks StartVerification takes.
func StartLocks(db *DB, callSID string, limits []store.Limit) []int64 {
	return db.startLocks(callSID, limits)
}
