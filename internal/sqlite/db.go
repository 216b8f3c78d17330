// Package sqlite stores calls, verifications, the event log, agents and their
// sessions in a SQLite database file. It is the only package that knows SQL;
// *DB satisfies store.Store and store.AgentStore. It knows nothing of HTTP,
// Twilio or CIBA.
//
// A DB holds two connection pools on the same file: one connection for all
// writes, so writers in this process queue in Go instead of contending for
// SQLite's lock, and a pool of read-only connections, which WAL mode lets run
// beside the writer. busy_timeout covers other processes (such as
// "ivrd agents add") writing to the same file.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// pragmas are applied to every connection of both pools. secure_delete
// zeroes deleted content, so that what a finished verification dropped
// does not linger in free pages or copies of the file.
const pragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=secure_delete(ON)"

// checkpointPages is the write-ahead log's length, in pages, at which the
// commit that reaches it copies the log back into the database file (a
// checkpoint; SQLite's default is 1,000). The write making the checkpoint,
// and every write queued behind it on the one write connection, wait for
// it: with the default that was ~4.5 ms once a second at 30 calls a second,
// 0.7 % of the writes, enough to be the webhooks' p99. At 10,000 (a log of
// up to 40 MB) it is ~30 ms every ~10 s, 0.3 % of the writes, past the p99,
// and the copying costs less per write (a page written many times is
// copied once). BENCHMARKS.md, issue 13.
const checkpointPages = 10_000

// DB is the SQLite store. It is safe for concurrent use.
type DB struct {
	w pool // exactly one connection: every write transaction
	r pool // read-only connections: single-statement reads
}

// Open opens (creating if need be) the database file at path, brings its
// schema up to date and returns the store. Close it when done.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	if err := private(path); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
	w, err := sql.Open("sqlite", base+"&_txlock=immediate&_pragma=wal_autocheckpoint("+strconv.Itoa(checkpointPages)+")")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	db := &DB{w: pool{db: w}, r: pool{db: r}}

	// Migrate before preparing: the statements name the tables.
	err = startUp(ctx, w)
	if err == nil {
		err = db.w.prepare(ctx, writeQueries())
	}
	if err == nil {
		err = db.r.prepare(ctx, readQueries())
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	return db, nil
}

// private makes sure the database file and its -wal and -shm companions
// are readable by their owner only: it creates a missing database file
// with mode 0600 (SQLite then gives the companions the same mode) and takes
// group and other permissions away from existing files. A directory that
// does not exist is named in the error.
func private(path string) error {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("directory %s does not exist: create it first", dir)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

// Checkpoint copies the write-ahead log into the database file and empties
// the log, so that pages it holds do not linger in it. The retention purge
// calls it after deleting.
func (db *DB) Checkpoint(ctx context.Context) error {
	if _, err := db.w.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("sqlite: checkpoint: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the database to path (VACUUM INTO),
// while the service runs. path must not exist.
func (db *DB) Backup(ctx context.Context, path string) error {
	if _, err := db.w.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	return os.Chmod(path, 0o600)
}

// Close closes both connection pools.
func (db *DB) Close() error {
	return errors.Join(db.r.close(), db.w.close())
}

// Ping runs a real query on a read connection (the file is open and the
// schema is in place) and then writes one row on the write connection, so
// that a file that cannot be written (held locked by another process past
// busy_timeout or ctx, read-only, disk full) fails too: reads alone keep
// working in WAL mode while every write fails.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	if err := db.r.queryRow(ctx, qPing).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if n == 0 {
		return errors.New("sqlite: ping: no migrations applied")
	}
	err := db.write(ctx, func(tx wtx) error {
		_, err := tx.exec(ctx, qWriteProbe, time.Now().UnixMilli())
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("sqlite: ping: write: %w", err)
	}
	return nil
}

// startUp puts a new file in WAL mode and migrates it. Processes opening one
// new file at once can find it locked while another switches it to WAL mode
// (a switch that does not wait on busy_timeout), so a busy answer here is
// retried for a few seconds.
func startUp(ctx context.Context, w *sql.DB) error {
	delay := 5 * time.Millisecond
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, err := w.ExecContext(ctx, "PRAGMA journal_mode=WAL")
		if err == nil {
			err = migrate(ctx, w)
		}
		if !constraint(err, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// migrate applies the embedded migrations not yet recorded in the migrations
// table, in name order, each in its own transaction together with its record.
func migrate(ctx context.Context, w *sql.DB) error {
	if _, err := w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (
		name       TEXT    NOT NULL PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	ms, err := store.Migrations(migrationFS)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := migrateOne(ctx, w, m); err != nil {
			return err
		}
	}
	return nil
}

// migrateOne applies m unless the migrations table records it already.
func migrateOne(ctx context.Context, w *sql.DB, m store.Migration) error {
	tx, err := w.BeginTx(ctx, nil) // immediate: a second process opening now waits here
	if err != nil {
		return fmt.Errorf("migration %s: begin: %w", m.Name, err)
	}
	defer tx.Rollback()
	var done bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM migrations WHERE name = ?)", m.Name).Scan(&done); err != nil {
		return fmt.Errorf("migration %s: check: %w", m.Name, err)
	}
	if done {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("migration %s: apply: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO migrations (name, applied_at) VALUES (?, ?)", m.Name, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("migration %s: record: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", m.Name, err)
	}
	return nil
}

// write runs fn in a write transaction, stores events after it in the same
// transaction and commits. Seq is set on the events only once the commit
// succeeded, so a failed write leaves the caller's values untouched.
func (db *DB) write(ctx context.Context, fn func(tx wtx) error, events []*store.Event) error {
	sqlTx, err := db.w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer sqlTx.Rollback()
	tx := wtx{tx: sqlTx, stmts: db.w.stmts}
	if fn != nil {
		if err := fn(tx); err != nil {
			return err
		}
	}
	seqs := make([]int64, len(events))
	for i, e := range events {
		if e == nil {
			continue
		}
		res, err := tx.exec(ctx, qInsertEvent, ms(e.At), e.CallSID, e.VerificationID, string(e.Kind), e.Actor, e.Detail)
		if err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		if seqs[i], err = res.LastInsertId(); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for i, e := range events {
		if e != nil {
			e.Seq = seqs[i]
		}
	}
	return nil
}

// ms is t as unix milliseconds, 0 for the zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the inverse of ms, in UTC.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// constraint reports whether err is a SQLite error with one of the given
// (extended or primary) codes.
func constraint(err error, codes ...int) bool {
	e, ok := errors.AsType[*sqlite.Error](err)
	return ok && (slices.Contains(codes, e.Code()) || slices.Contains(codes, e.Code()&0xff))
}

func isUnique(err error) bool {
	return constraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE)
}

func isForeignKey(err error) bool {
	return constraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY)
}

// notFound maps sql.ErrNoRows to want, leaving other errors as they are.
func notFound(err, want error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return want
	}
	return err
}

// Compile-time checks that DB is what the consumers need.
var (
	_ store.Store      = (*DB)(nil)
	_ store.AgentStore = (*DB)(nil)
)
