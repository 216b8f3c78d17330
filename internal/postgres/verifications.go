package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// StartVerification stores v, the call c (when not nil) and events in one
// transaction, after checking that the call has no verification in flight
// and that every limit has room. Starts take transaction-scoped advisory
// locks before they count (startLocks), so that concurrent starts that
// share a call or a limit, from this instance or another, count each
// other's rows, while starts that share nothing go on side by side.
//
// The server makes every check (ivr_versioned, ivr_in_flight, ivr_limit),
// so the start is one implicit transaction sent in one round trip: its
// locks end with the server's commit and are never held while this
// process reads the answers, however long it takes to.
func (db *DB) StartVerification(ctx context.Context, c *store.Call, v *store.Verification, limits []store.Limit, events ...*store.Event) ([]store.Limit, error) {
	checks := make([]limitCheck, 0, len(limits))
	for i, l := range limits {
		if l.Max <= 0 {
			continue // off: nothing to count
		}
		lc, err := checkLimit(l, i, v.CreatedAt)
		if err != nil {
			return nil, fmt.Errorf("postgres: start verification: %w", err)
		}
		checks = append(checks, lc)
	}
	overridden := make([]bool, len(checks))
	err := db.writeAtOnce(ctx, func(b *pgx.Batch) {
		if c != nil { // first: a call that moved is a conflict, whatever else
			b.Queue(qUpdateCall, updateCallArgs(c)...)
		}
		for _, k := range db.startLocks(v.CallSID, limits) {
			b.Queue(qLock, k)
		}
		b.Queue(qCheckInFlight, v.CallSID)
		for i, lc := range checks {
			b.Queue(lc.query, lc.args...).QueryRow(func(row pgx.Row) error {
				return row.Scan(&overridden[i])
			})
		}
		b.Queue(qInsertVerification, verificationArgs(v)...)
		if !v.Status.Done() {
			b.Queue(qQueuePoll, v.ID, stamp(v.NextPollAt))
		}
	}, events)
	if err != nil {
		return nil, fmt.Errorf("postgres: start verification: %w", startError(err, limits))
	}
	if c != nil {
		c.Version++
	}
	var over []store.Limit
	for i, lc := range checks {
		if overridden[i] {
			over = append(over, limits[lc.at])
		}
	}
	return over, nil
}

// startError is the store's error for a start that failed in the server.
func startError(err error, limits []store.Limit) error {
	switch pgCode(err) {
	case uniqueViolation:
		return store.ErrConflict
	case callBusy:
		return store.ErrInFlight
	case limitFull:
		if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
			if at, perr := strconv.Atoi(pe.Detail); perr == nil && at >= 0 && at < len(limits) {
				return &store.LimitError{Limit: limits[at]}
			}
		}
	}
	return versionError(err)
}

// startLocks are the advisory lock keys a start takes: one for its call
// (a caller's own start and an agent's for the same call exclude each
// other), one per limit it checks (its number, its caller id, its agent),
// and the global start lock when the global limit is on, as every start
// counts toward it. They are sorted, so two starts take the locks they
// share in the same order and cannot deadlock.
func (db *DB) startLocks(callSID string, limits []store.Limit) []int64 {
	keys := []int64{db.hashKey("call", callSID)}
	for _, l := range limits {
		switch {
		case l.Max <= 0:
		case l.Scope == store.LimitGlobal:
			keys = append(keys, db.lockKey(lockStart))
		default:
			keys = append(keys, db.hashKey(string(l.Scope), l.Key))
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// hashKey is an advisory lock key for one thing of a kind in this store's
// schema.
func (db *DB) hashKey(kind, key string) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s\x00%s", db.nsp, kind, key)
	return int64(h.Sum64())
}

// limitCheck is the statement that checks one limit of a start, the
// limit at position at of the start's limits.
type limitCheck struct {
	query string
	args  []any
	at    int
}

// checkLimit is the check of l, at position at of a start's limits, that
// counts the verifications l counts among those created in its window
// before now.
func checkLimit(l store.Limit, at int, now time.Time) (limitCheck, error) {
	args := []any{l.Max, l.Override, at, stamp(now.Add(-l.Window)), l.Key}
	switch l.Scope {
	case store.LimitNumber:
		return limitCheck{qLimitByIDHash, args, at}, nil
	case store.LimitCaller, store.LimitWithheld:
		return limitCheck{qLimitByCaller, args, at}, nil
	case store.LimitAgent:
		return limitCheck{qLimitByInitiator, args, at}, nil
	case store.LimitGlobal:
		return limitCheck{qLimitAll, args[:4], at}, nil
	}
	return limitCheck{}, fmt.Errorf("unknown limit scope %q", l.Scope)
}

// verificationArgs are v's values in verificationColumns order, without the
// lease.
func verificationArgs(v *store.Verification) []any {
	return []any{v.ID, v.CallSID, string(v.Country), v.SealedID, v.MaskedID, v.IDHash, v.Caller,
		v.Initiator, string(v.Status), v.Pending, v.AuthReqID, v.BindingMessage,
		v.Interval.Milliseconds(), stamp(v.ExpiresAt), stamp(v.NextPollAt), v.Polls, v.SlowDowns, v.Failures,
		v.Subject, v.Name, v.GivenName, v.FamilyName, v.Error,
		stamp(v.CreatedAt), stamp(v.UpdatedAt), stamp(v.CompletedAt), v.Version,
		v.Method, string(v.IDKind), v.NotifyHash, stamp(v.NotifiedAt)}
}

// Verification returns the verification with the given ID, or
// store.ErrNotFound.
func (db *DB) Verification(ctx context.Context, id string) (*store.Verification, error) {
	v, err := scanVerification(db.pool.QueryRow(ctx, qVerification, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: get verification: %w", notFound(err, store.ErrNotFound))
	}
	return v, nil
}

// UpdateVerification stores v if the stored version equals v.Version,
// together with events, ends its lease, and then increments v.Version. A
// different stored version gives store.ErrConflict, a missing verification
// store.ErrNotFound; either way nothing changes.
func (db *DB) UpdateVerification(ctx context.Context, v *store.Verification, events ...*store.Event) error {
	err := db.writeAtOnce(ctx, func(b *pgx.Batch) {
		if !slices.ContainsFunc(events, func(e *store.Event) bool { return e != nil }) {
			// Bookkeeping (store.Store): the commit does not wait for
			// the WAL to reach the disk. Nothing is inconsistent after
			// a crash that loses it; a poll may come early once.
			b.Queue(qLazyCommit)
		}
		if v.Status.Done() {
			b.Queue(qUnqueuePoll, v.ID)
		} else {
			b.Queue(qRequeuePoll, v.ID, stamp(v.NextPollAt))
		}
		b.Queue(qUpdateVerification, verificationArgs(v)...)
	}, events)
	if err != nil {
		return fmt.Errorf("postgres: update verification: %w", versionError(err))
	}
	v.Version++
	return nil
}

// ClaimDue leases the due verifications to owner and returns them, earliest
// due first. It is one statement, atomic on its own; every
// queueTendEvery it first tends the queue (tendQueue).
func (db *DB) ClaimDue(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*store.Verification, error) {
	db.tendQueue(ctx)
	rows, _ := db.pool.Query(ctx, qClaimDue, owner, stamp(now), lease.Milliseconds(), store.DueLimit(limit))
	vs, err := pgx.AppendRows([]*store.Verification(nil), rows, func(row pgx.CollectableRow) (*store.Verification, error) {
		return scanVerification(row)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim due verifications: %w", err)
	}
	slices.SortFunc(vs, store.CompareDue)
	return vs, nil
}

// queueTendEvery is how often the pollers tend poll_queue.
const queueTendEvery = 2 * time.Second

// tendQueue, when queueTendEvery has passed since the last time, queues
// the verifications in flight that have no queue row (started by an
// instance of the version before the queue, during a rolling upgrade;
// an index scan of the verifications in flight) and vacuums poll_queue.
// The queue is small (a row per verification in flight) but each poll
// moves its row twice, and each move leaves a dead entry in
// poll_queue_due below the live ones, where every claim and NextDue begin
// their walk: 10,000 verifications in flight leave ~4,000 a second.
// Autovacuum visits a table at most once a minute (autovacuum_naptime),
// or never when it is off; a vacuum of the queue takes a few milliseconds.
// SKIP_LOCKED: when another instance is vacuuming it, this one does not
// wait. A failure is left for the next time.
func (db *DB) tendQueue(ctx context.Context) {
	now := time.Now().UnixNano()
	last := db.tendedAt.Load()
	if now-last < int64(queueTendEvery) || !db.tendedAt.CompareAndSwap(last, now) {
		return
	}
	_, _ = db.pool.Exec(ctx, qQueueOrphans) // a failure waits for the next time
	_, _ = db.pool.Exec(ctx, qVacuumQueue)
}

// NextDue is the earliest NextPollAt of the in-flight verifications not
// leased, or the earliest lease end if sooner: the earliest due time in
// poll_queue, which holds one or the other for each. A time before now
// means due now, as it does for every store.
func (db *DB) NextDue(ctx context.Context, _ time.Time) (time.Time, bool, error) {
	var next pgtype.Timestamptz
	if err := db.pool.QueryRow(ctx, qNextDue).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("postgres: next due: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	var t time.Time
	if err := at(&t).ScanTimestamptz(next); err != nil {
		return time.Time{}, false, fmt.Errorf("postgres: next due: %w", err)
	}
	return t, true, nil
}

// InFlight counts the verifications still starting or pending (a gauge
// for /metrics).
func (db *DB) InFlight(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, qInFlight).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count in-flight verifications: %w", err)
	}
	return n, nil
}

func scanVerification(row pgx.Row) (*store.Verification, error) {
	var (
		v                       store.Verification
		country, status, idKind string
		interval                int64
	)
	err := row.Scan(&v.ID, &v.CallSID, &country, &v.SealedID, &v.MaskedID, &v.IDHash, &v.Caller,
		&v.Initiator, &status, &v.Pending, &v.AuthReqID, &v.BindingMessage,
		&interval, at(&v.ExpiresAt), at(&v.NextPollAt), &v.Polls, &v.SlowDowns, &v.Failures,
		&v.Subject, &v.Name, &v.GivenName, &v.FamilyName, &v.Error,
		at(&v.CreatedAt), at(&v.UpdatedAt), at(&v.CompletedAt), &v.Version, &v.LeaseOwner, at(&v.LeaseUntil),
		&v.Method, &idKind, &v.NotifyHash, at(&v.NotifiedAt))
	if err != nil {
		return nil, err
	}
	v.Country, v.Status, v.IDKind = store.Country(country), store.VerificationStatus(status), store.IDKind(idKind)
	v.Interval = time.Duration(interval) * time.Millisecond
	return &v, nil
}
