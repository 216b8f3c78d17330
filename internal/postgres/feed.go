package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/jackc/pgx/v5"
)

// Listen's heartbeat: after this long without a notification it checks
// that its connection still answers, within the timeout, so that a
// connection lost without a word (a dropped network path) is noticed.
const (
	listenHeartbeat   = 30 * time.Second
	listenPingTimeout = 5 * time.Second
)

// The wait before Listen tries to connect again after losing its
// connection: the first attempt is at once, then a backoff with jitter
// between these.
const (
	minReconnectDelay = 50 * time.Millisecond
	maxReconnectDelay = 5 * time.Second
)

// Listen delivers the Seqs of the events committed in the store's schema,
// by this instance or any other, from the moment it listens until ctx ends
// or the store is closed: each notification's Seqs, in the order the
// notifications arrive (commit order). It holds one connection of its own,
// outside the pool. When that connection is lost it connects again, with
// backoff, and once listening again calls deliver(nil, true): events
// committed meanwhile were not delivered. deliver runs on Listen's
// goroutine; while it runs, notifications wait in the connection.
//
// Listen returns nil when ctx ends, and an error only when it cannot start
// listening at all (the database cannot be reached when it is called).
func (db *DB) Listen(ctx context.Context, deliver func(seqs []int64, resync bool)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(db.done, cancel)()
	conn, err := db.listenConn(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: listen: %w", err)
	}
	defer func() { closeConn(conn) }()
	deliver(nil, true) // listening: what was committed before is in the store
	for {
		seqs, err := db.wait(ctx, conn)
		if err == nil {
			if len(seqs) > 0 {
				deliver(seqs, false)
			}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		closeConn(conn)
		if conn, err = db.relisten(ctx); err != nil {
			return nil // ctx ended
		}
		deliver(nil, true)
	}
}

// listenConn connects to the database as the pool does and listens on the
// store's channel.
func (db *DB) listenConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{db.channel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("listen: %w", err)
	}
	return conn, nil
}

// relisten calls listenConn until it succeeds or ctx ends.
func (db *DB) relisten(ctx context.Context) (*pgx.Conn, error) {
	delay := minReconnectDelay
	for {
		conn, err := db.listenConn(ctx)
		if err == nil {
			return conn, nil
		}
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, maxReconnectDelay)
	}
}

// wait returns the Seqs of the next notification on conn, or none when
// the heartbeat passed without one and the connection still answers.
// An error means the connection is lost, or ctx ended.
func (db *DB) wait(ctx context.Context, conn *pgx.Conn) ([]int64, error) {
	wctx, cancel := context.WithTimeout(ctx, db.heartbeat)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	if err == nil {
		return parseSeqs(n.Payload), nil
	}
	if ctx.Err() != nil || !errors.Is(wctx.Err(), context.DeadlineExceeded) {
		return nil, err // ctx ended, or the connection failed
	}
	// Quiet for a while: is anybody there? (Notifications that arrive
	// meanwhile are kept for the next wait.)
	pctx, cancel := context.WithTimeout(ctx, db.pingTimeout)
	defer cancel()
	return nil, conn.Ping(pctx)
}

// closeConn closes conn (nil is fine), taking a moment at most to say
// goodbye to the server.
func closeConn(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}

// parseSeqs reads a payload: one Seq, as each stored event announces
// itself, or several comma-separated (as instances before that sent them,
// so that a rolling upgrade loses nothing), skipping anything that is not
// one (a NOTIFY on the channel by hand).
func parseSeqs(payload string) []int64 {
	var seqs []int64
	for f := range strings.SplitSeq(payload, ",") {
		if s, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64); err == nil && s > 0 {
			seqs = append(seqs, s)
		}
	}
	return seqs
}

// LoadEvents returns the events with those Seqs that exist, in Seq order,
// with the calls they name and those calls' current verifications: three
// statements in one round trip, on the feed's own pool (feedPool), so
// that the relay does not wait behind writers for a connection of the
// store's pool (BENCHMARKS.md, F8). Each statement reads its own snapshot;
// an event committed meanwhile is delivered again with its own seq.
func (db *DB) LoadEvents(ctx context.Context, seqs []int64) (store.EventBatch, error) {
	out := store.EventBatch{Calls: map[string]*store.Call{}, Verifications: map[string]*store.Verification{}}
	if len(seqs) == 0 {
		return out, nil
	}
	var b pgx.Batch
	b.Queue(qEventsBySeq, seqs).Query(func(rows pgx.Rows) (err error) {
		out.Events, err = scanEvents(rows, nil)
		return err
	})
	b.Queue(qBatchCalls, seqs).Query(func(rows pgx.Rows) error {
		calls, err := scanCalls(rows, nil)
		for _, c := range calls {
			out.Calls[c.SID] = c
		}
		return err
	})
	b.Queue(qBatchVerifications, seqs).Query(func(rows pgx.Rows) error {
		vs, err := pgx.AppendRows([]*store.Verification(nil), rows, func(row pgx.CollectableRow) (*store.Verification, error) {
			return scanVerification(row)
		})
		for _, v := range vs {
			out.Verifications[v.ID] = v
		}
		return err
	})
	if err := db.feedPool.SendBatch(ctx, &b).Close(); err != nil {
		return store.EventBatch{}, fmt.Errorf("postgres: load events: %w", err)
	}
	return out, nil
}
