package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// purgeBatch is how many calls PurgeEnded deletes per transaction.
const purgeBatch = 500

// errExists ends a write transaction without committing when CreateCall finds
// the SID taken.
var errExists = errors.New("exists")

// CreateCall stores c and events in one transaction. When a call with c.SID
// exists already it returns false and stores nothing, not even the events.
// c.Version is stored as given.
func (db *DB) CreateCall(ctx context.Context, c *store.Call, events ...*store.Event) (bool, error) {
	err := db.write(ctx, func(b *pgx.Batch) error {
		b.Queue(qInsertCall,
			c.SID, c.From, c.To, c.Language, string(c.State), c.Step, c.LastTwiML,
			c.NumberAttempts, c.VerifyAttempts, c.VerificationID, c.Outcome, string(c.Reason), stamp(c.HandedOffAt),
			stamp(c.CreatedAt), stamp(c.UpdatedAt), stamp(c.EndedAt), c.Version, string(c.Identify),
		).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() == 0 {
				return errExists
			}
			return nil
		})
		return nil
	}, events)
	switch {
	case errors.Is(err, errExists):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("postgres: create call: %w", err)
	}
	return true, nil
}

// Call returns the call with the given SID, or store.ErrNotFound.
func (db *DB) Call(ctx context.Context, sid string) (*store.Call, error) {
	c, err := scanCall(db.pool.QueryRow(ctx, qCall, sid))
	if err != nil {
		return nil, fmt.Errorf("postgres: get call: %w", notFound(err, store.ErrNotFound))
	}
	return c, nil
}

// UpdateCall stores c if the stored version equals c.Version, together with
// events, and then increments c.Version. A different stored version gives
// store.ErrConflict, a missing call store.ErrNotFound; either way nothing
// changes.
func (db *DB) UpdateCall(ctx context.Context, c *store.Call, events ...*store.Event) error {
	err := db.writeAtOnce(ctx, func(b *pgx.Batch) {
		b.Queue(qUpdateCall, updateCallArgs(c)...)
	}, events)
	if err != nil {
		return fmt.Errorf("postgres: update call: %w", versionError(err))
	}
	c.Version++
	return nil
}

// updateCallArgs are the arguments of qUpdateCall for c.
func updateCallArgs(c *store.Call) []any {
	return []any{c.From, c.To, c.Language, string(c.State), c.Step, c.LastTwiML,
		c.NumberAttempts, c.VerifyAttempts, c.VerificationID, c.Outcome, string(c.Reason), stamp(c.HandedOffAt),
		stamp(c.CreatedAt), stamp(c.UpdatedAt), stamp(c.EndedAt),
		c.SID, c.Version, string(c.Identify)}
}

// versionError is err with the failures of ivr_versioned as the store's
// errors: store.ErrConflict, store.ErrNotFound.
func versionError(err error) error {
	switch pgCode(err) {
	case versionConflict:
		return store.ErrConflict
	case versionNotFound:
		return store.ErrNotFound
	}
	return err
}

// Calls lists calls. With f.Live, the calls that have not ended, newest first;
// otherwise the calls that ended at or after f.EndedSince, most recently ended
// first, up to store.CallsLimit(f.Limit).
func (db *DB) Calls(ctx context.Context, f store.CallFilter) ([]*store.Call, error) {
	limit := store.CallsLimit(f.Limit)
	var (
		rows pgx.Rows
		err  error
	)
	if f.Live {
		rows, err = db.pool.Query(ctx, qLiveCalls, limit)
	} else {
		rows, err = db.pool.Query(ctx, qEndedCalls, stamp(f.EndedSince), limit)
	}
	calls, err := scanCalls(rows, err)
	if err != nil {
		return nil, fmt.Errorf("postgres: list calls: %w", err)
	}
	return calls, nil
}

// StaleCalls returns up to limit live calls in the IVR not updated since
// idleSince, or handed off and created before startedBefore, oldest first.
func (db *DB) StaleCalls(ctx context.Context, idleSince, startedBefore time.Time, limit int) ([]*store.Call, error) {
	calls, err := scanCalls(db.pool.Query(ctx, qStaleCalls, stamp(idleSince), stamp(startedBefore), store.CallsLimit(limit)))
	if err != nil {
		return nil, fmt.Errorf("postgres: stale calls: %w", err)
	}
	return calls, nil
}

// scanCalls reads every row of a calls query (rows, err as the query
// returned them) and closes rows.
func scanCalls(rows pgx.Rows, err error) ([]*store.Call, error) {
	if err != nil {
		return nil, err
	}
	return pgx.AppendRows([]*store.Call(nil), rows, func(row pgx.CollectableRow) (*store.Call, error) {
		return scanCall(row)
	})
}

func scanCall(row pgx.Row) (*store.Call, error) {
	var (
		c                       store.Call
		state, reason, identify string
	)
	err := row.Scan(&c.SID, &c.From, &c.To, &c.Language, &state, &c.Step, &c.LastTwiML,
		&c.NumberAttempts, &c.VerifyAttempts, &c.VerificationID, &c.Outcome, &reason, at(&c.HandedOffAt),
		at(&c.CreatedAt), at(&c.UpdatedAt), at(&c.EndedAt), &c.Version, &identify)
	if err != nil {
		return nil, err
	}
	c.State, c.Reason, c.Identify = store.CallState(state), store.Reason(reason), store.IDKind(identify)
	return &c, nil
}

// Events returns the events stored for callSID, oldest (lowest Seq) first;
// none, without error, for an unknown call.
func (db *DB) Events(ctx context.Context, callSID string) ([]store.Event, error) {
	evs, err := scanEvents(db.pool.Query(ctx, qEvents, callSID))
	if err != nil {
		return nil, fmt.Errorf("postgres: list events: %w", err)
	}
	return evs, nil
}

// scanEvents reads every row of an events query and closes rows.
func scanEvents(rows pgx.Rows, err error) ([]store.Event, error) {
	if err != nil {
		return nil, err
	}
	return pgx.AppendRows([]store.Event(nil), rows, func(row pgx.CollectableRow) (store.Event, error) {
		var (
			e    store.Event
			kind string
		)
		err := row.Scan(&e.Seq, at(&e.At), &e.CallSID, &e.VerificationID, &kind, &e.Actor, &e.Detail)
		e.Kind = store.EventKind(kind)
		return e, err
	})
}

// AppendEvent stores e on its own and sets e.Seq. e.Call is not stored.
func (db *DB) AppendEvent(ctx context.Context, e *store.Event) error {
	if e == nil {
		return errors.New("postgres: append event: nil event")
	}
	if err := db.writeAtOnce(ctx, nil, []*store.Event{e}); err != nil {
		return fmt.Errorf("postgres: append event: %w", err)
	}
	return nil
}

// PurgeEnded deletes the calls that ended before before, with their
// verifications and events, and returns how many calls it deleted. It works in
// batches, each its own transaction, so that other writers are not held up.
// One instance purges at a time: each batch takes an advisory lock, and
// when another instance holds it PurgeEnded returns what it deleted so
// far (0 if nothing) and no error, leaving the rest to that instance.
func (db *DB) PurgeEnded(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n, locked := 0, false
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, qTryLock, db.lockKey(lockPurge)).Scan(&locked); err != nil || !locked {
				return err
			}
			return tx.QueryRow(ctx, qPurgeBatch, stamp(before), purgeBatch).Scan(&n)
		})
		if err != nil {
			return total, fmt.Errorf("postgres: purge ended calls: %w", err)
		}
		total += n
		if !locked || n < purgeBatch {
			return total, nil
		}
	}
}
