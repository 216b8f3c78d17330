// Package postgres stores calls, verifications, the event log, agents and
// their sessions in PostgreSQL, for several instances of the service
// sharing one database. *DB satisfies store.Store, store.AgentStore and
// store.EventFeed: every write that stores events notifies the other
// instances (LISTEN/NOTIFY), and Listen delivers what they commit. It knows
// nothing of HTTP, Twilio or CIBA.
//
// A store lives in one schema, the first of the connection's search_path
// that exists (search_path can be set in the URL); its advisory locks and
// its notification channel are that schema's, so that stores in other
// schemas of the same database do not see or block each other.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// defaultConnectTimeout bounds each connection attempt when the URL sets no
// connect_timeout, so that a database that cannot be reached fails Open,
// Ping and every query quickly instead of hanging on the network.
const defaultConnectTimeout = 2 * time.Second

// Advisory lock purposes. A lock key is the purpose in the high 32 bits
// and the schema's OID in the low 32, so that each schema has its own
// locks and they are unlikely to collide with another application's.
const (
	lockMigrate int64 = 0x49565201 // "IVR" 1: Open, while it migrates
	lockStart   int64 = 0x49565202 // StartVerification under the global limit: those starts one at a time
	lockPurge   int64 = 0x49565203 // PurgeEnded: one instance at a time
)

// channelPrefix names the NOTIFY channel of a schema's events:
// "ivr_events.<schema>".
const channelPrefix = "ivr_events."

// DB is the PostgreSQL store. It is safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
	// feedPool serves LoadEvents alone: the relay's loads do not queue
	// behind the writers of pool.
	feedPool *pgxpool.Pool
	nsp      int64  // the OID of the store's schema, the low half of the lock keys
	channel  string // the NOTIFY channel of the schema's events

	// done ends Listen calls when the store is closed.
	done  context.Context
	close context.CancelFunc

	// Listen's heartbeat (listenHeartbeat, listenPingTimeout; shorter in
	// tests).
	heartbeat, pingTimeout time.Duration

	// tendedAt is when ClaimDue last tended the poller's queue (unix
	// nanoseconds).
	tendedAt atomic.Int64
}

// feedConns is the size of the pool LoadEvents uses.
const feedConns = 2

// Open connects to the database at url (a postgres:// URL or key=value
// connection string, as pgx reads them: pool_max_conns sets the pool size,
// connect_timeout the time allowed to connect, 2 s when not set), brings
// the schema up to date and returns the store. Close it when done.
//
// Migrations run under a session advisory lock, so that instances starting
// together apply each one once; each is applied in its own transaction
// together with its row in schema_migrations.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	fcfg := cfg.Copy()
	fcfg.MaxConns, fcfg.MinConns = feedConns, 0
	feedPool, err := pgxpool.NewWithConfig(ctx, fcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db := &DB{pool: pool, feedPool: feedPool, heartbeat: listenHeartbeat, pingTimeout: listenPingTimeout}
	db.done, db.close = context.WithCancel(context.Background())
	if err := db.startUp(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return db, nil
}

// startUp finds the store's schema and migrates it, on one connection that
// holds the migration lock meanwhile.
func (db *DB) startUp(ctx context.Context) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	var (
		schema pgtype.Text
		oid    pgtype.Uint32
	)
	err = conn.QueryRow(ctx, `SELECT current_schema(), (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`).
		Scan(&schema, &oid)
	if err != nil {
		return fmt.Errorf("find schema: %w", err)
	}
	if !schema.Valid || !oid.Valid {
		return errors.New("no schema of the search_path exists: create it or set search_path")
	}
	db.nsp = int64(oid.Uint32)
	db.channel = channelPrefix + schema.String
	if len(db.channel) >= 64 { // NAMEDATALEN: a longer channel name is refused
		db.channel = channelPrefix + strconv.FormatInt(db.nsp, 10)
	}

	// A session lock: it outlives the migrations' transactions. Should
	// unlocking fail, the connection is closed, which releases it too.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, db.lockKey(lockMigrate)); err != nil {
		return fmt.Errorf("lock for migrations: %w", err)
	}
	err = migrate(ctx, conn.Conn())
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, db.lockKey(lockMigrate)); uerr != nil {
		conn.Conn().Close(uctx)
		err = cmp.Or(err, fmt.Errorf("unlock after migrations: %w", uerr))
	}
	return err
}

// lockKey is the advisory lock key of purpose in the store's schema.
func (db *DB) lockKey(purpose int64) int64 {
	return purpose<<32 | db.nsp
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, in name order, each in its own transaction together
// with its record. The caller holds the migration lock.
func migrate(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name       text        NOT NULL PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	ms, err := store.Migrations(migrationFS)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := migrateOne(ctx, conn, m); err != nil {
			return err
		}
	}
	return nil
}

// migrateOne applies m unless schema_migrations records it already.
func migrateOne(ctx context.Context, conn *pgx.Conn, m store.Migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, m.Name).Scan(&done); err != nil {
			return fmt.Errorf("migration %s: check: %w", m.Name, err)
		}
		if done {
			return nil
		}
		// No arguments: the simple protocol, which runs every statement
		// of the file.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: apply: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, m.Name); err != nil {
			return fmt.Errorf("migration %s: record: %w", m.Name, err)
		}
		return nil
	})
}

// Close ends every Listen on the store and closes the connection pool.
func (db *DB) Close() error {
	db.close()
	db.pool.Close()
	db.feedPool.Close()
	return nil
}

// Ping runs a real query (the database answers and the schema is in place)
// and writes one row, so that a database that takes no writes (a
// read-only standby after a failover, a full disk, a lock held too long)
// fails too, within ctx.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	if err := db.pool.QueryRow(ctx, qPing).Scan(&n); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	if n == 0 {
		return errors.New("postgres: ping: no migrations applied")
	}
	err := db.writeAtOnce(ctx, func(b *pgx.Batch) {
		b.Queue(qWriteProbe, stamp(time.Now()))
	}, nil)
	if err != nil {
		return fmt.Errorf("postgres: ping: write: %w", err)
	}
	return nil
}

// write sends, in one round trip, the begin of a transaction, the
// statements queue puts in b (their callbacks check what they did) and
// the inserts of events, which notify their Seqs on the store's channel
// (delivered at commit); then, when no statement or callback failed, it
// commits. Seq is set on the events only once the commit succeeded, so a
// failed write leaves the caller's values untouched. A batch that no
// callback checks goes through writeAtOnce, one round trip.
func (db *DB) write(ctx context.Context, queue func(b *pgx.Batch) error, events []*store.Event) error {
	var b pgx.Batch
	b.BeginTx(pgx.TxOptions{})
	if queue != nil {
		if err := queue(&b); err != nil {
			return err
		}
	}
	seqs := db.queueEvents(&b, events)
	br := db.pool.SendBatch(ctx, &b)
	tx := br.Tx()
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op once committed
	if err := br.Close(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	setSeqs(events, seqs)
	return nil
}

// writeAtOnce is write for a batch that no callback checks: every failure
// is the server's (a constraint, ivr_versioned). The batch is sent without
// BEGIN or COMMIT, so the server runs it as one implicit transaction that
// an error anywhere undoes: the write is one round trip where write's is
// two. Seq is set on the events once it succeeded.
func (db *DB) writeAtOnce(ctx context.Context, queue func(b *pgx.Batch), events []*store.Event) error {
	var b pgx.Batch
	if queue != nil {
		queue(&b)
	}
	seqs := db.queueEvents(&b, events)
	if err := db.pool.SendBatch(ctx, &b).Close(); err != nil {
		return err
	}
	setSeqs(events, seqs)
	return nil
}

// queueEvents queues the inserts of events, each announcing itself in the
// statement that stores it, so that PostgreSQL delivers the notifications
// at commit, in order. The Seqs land in the slice it returns.
func (db *DB) queueEvents(b *pgx.Batch, events []*store.Event) []int64 {
	seqs := make([]int64, len(events))
	for i, e := range events {
		if e == nil {
			continue
		}
		b.Queue(qInsertEvent, stamp(e.At), e.CallSID, e.VerificationID, string(e.Kind), e.Actor, e.Detail, db.channel).
			QueryRow(func(row pgx.Row) error { return row.Scan(&seqs[i], nil) })
	}
	return seqs
}

// setSeqs gives the events the Seqs their inserts returned.
func setSeqs(events []*store.Event, seqs []int64) {
	for i, e := range events {
		if e != nil {
			e.Seq = seqs[i]
		}
	}
}

// stamp is a time as the store keeps it: UTC at millisecond precision,
// '-infinity' for the zero time. As a query argument it is a timestamptz;
// (*stamp)(&t) as a scan target reads one back into t, in UTC, the zero
// time for '-infinity'.
type stamp time.Time

// TimestamptzValue implements pgtype.TimestamptzValuer.
func (s stamp) TimestamptzValue() (pgtype.Timestamptz, error) {
	t := time.Time(s)
	if t.IsZero() {
		return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
	}
	return pgtype.Timestamptz{Time: t.Truncate(time.Millisecond).UTC(), Valid: true}, nil
}

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (s *stamp) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid || v.InfinityModifier == pgtype.NegativeInfinity:
		*s = stamp{}
	case v.InfinityModifier != pgtype.Finite:
		return errors.New("a time is infinite")
	default:
		*s = stamp(v.Time.UTC())
	}
	return nil
}

// at is t as a scan target.
func at(t *time.Time) *stamp { return (*stamp)(t) }

// pgCode is the SQLSTATE of err, "" when it is not a PostgreSQL error.
func pgCode(err error) string {
	if e, ok := errors.AsType[*pgconn.PgError](err); ok {
		return e.Code
	}
	return ""
}

// SQLSTATEs the store translates.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
	versionConflict     = "IV409" // ivr_versioned
	versionNotFound     = "IV404"
	callBusy            = "IV423" // ivr_in_flight
	limitFull           = "IV429" // ivr_limit
)

func isUnique(err error) bool     { return pgCode(err) == uniqueViolation }
func isForeignKey(err error) bool { return pgCode(err) == foreignKeyViolation }

// notFound maps pgx.ErrNoRows to want, leaving other errors as they are.
func notFound(err, want error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return want
	}
	return err
}

// Compile-time checks that DB is what the consumers need.
var (
	_ store.Store      = (*DB)(nil)
	_ store.AgentStore = (*DB)(nil)
	_ store.EventFeed  = (*DB)(nil)
)
