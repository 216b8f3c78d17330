package postgres

import (
	"context"
	"time"
)

// AppliedMigrations lists schema_migrations, for tests.
func AppliedMigrations(ctx context.Context, db *DB) ([]string, error) {
	rows, err := db.pool.Query(ctx, "SELECT name FROM schema_migrations ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
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

// Payloads, MaxPayload and ParseSeqs are the notifications' encoding.
var (
	Payloads  = payloads
	ParseSeqs = parseSeqs
)

const MaxPayload = maxPayload
