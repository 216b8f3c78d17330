package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// errExists ends a write transaction without committing when CreateCall finds
// the SID taken.
var errExists = errors.New("exists")

// CreateCall stores c and events in one transaction. When a call with c.SID
// exists already it returns false and stores nothing, not even the events.
// c.Version is stored as given.
func (db *DB) CreateCall(ctx context.Context, c *store.Call, events ...*store.Event) (bool, error) {
	err := db.write(ctx, func(tx wtx) error {
		res, err := tx.exec(ctx, qInsertCall,
			c.SID, c.From, c.To, c.Language, string(c.State), c.Step, c.LastTwiML,
			c.NumberAttempts, c.VerifyAttempts, c.VerificationID, c.Outcome, string(c.Reason), ms(c.HandedOffAt), string(c.Identify),
			ms(c.CreatedAt), ms(c.UpdatedAt), ms(c.EndedAt), c.Version)
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("insert: %w", err)
		} else if n == 0 {
			return errExists
		}
		return nil
	}, events)
	switch {
	case errors.Is(err, errExists):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("sqlite: create call: %w", err)
	}
	return true, nil
}

// Call returns the call with the given SID, or store.ErrNotFound.
func (db *DB) Call(ctx context.Context, sid string) (*store.Call, error) {
	row := db.r.queryRow(ctx, qCall, sid)
	c, err := scanCall(row)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get call: %w", notFound(err, store.ErrNotFound))
	}
	return c, nil
}

// UpdateCall stores c if the stored version equals c.Version, together with
// events, and then increments c.Version. A different stored version gives
// store.ErrConflict, a missing call store.ErrNotFound; either way nothing changes.
func (db *DB) UpdateCall(ctx context.Context, c *store.Call, events ...*store.Event) error {
	err := db.write(ctx, func(tx wtx) error { return updateCall(ctx, tx, c) }, events)
	if err != nil {
		return fmt.Errorf("sqlite: update call: %w", err)
	}
	c.Version++
	return nil
}

// updateCall stores c in tx if its stored version is c.Version; it leaves
// c.Version to the caller, to bump once the transaction commits.
func updateCall(ctx context.Context, tx wtx, c *store.Call) error {
	res, err := tx.exec(ctx, qUpdateCall,
		c.From, c.To, c.Language, string(c.State), c.Step, c.LastTwiML,
		c.NumberAttempts, c.VerifyAttempts, c.VerificationID, c.Outcome, string(c.Reason), ms(c.HandedOffAt), string(c.Identify),
		ms(c.CreatedAt), ms(c.UpdatedAt), ms(c.EndedAt),
		c.SID, c.Version)
	if err != nil {
		return fmt.Errorf("update call: %w", err)
	}
	return versionCheck(ctx, tx, res, qCallExists, c.SID)
}

// versionCheck turns an update that changed no row into store.ErrConflict when
// the row exists (exists is a query for that) and store.ErrNotFound when not.
func versionCheck(ctx context.Context, tx wtx, res sql.Result, exists, key string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if n == 1 {
		return nil
	}
	var found bool
	if err := tx.queryRow(ctx, exists, key).Scan(&found); err != nil {
		return fmt.Errorf("check version: %w", err)
	}
	if found {
		return store.ErrConflict
	}
	return store.ErrNotFound
}

// Calls lists calls. With f.Live, the calls that have not ended, newest first;
// otherwise the calls that ended at or after f.EndedSince, most recently ended
// first, up to store.CallsLimit(f.Limit).
func (db *DB) Calls(ctx context.Context, f store.CallFilter) ([]*store.Call, error) {
	limit := store.CallsLimit(f.Limit)
	var (
		rows *sql.Rows
		err  error
	)
	if f.Live {
		rows, err = db.r.query(ctx, qLiveCalls, limit)
	} else {
		rows, err = db.r.query(ctx, qEndedCalls, ms(f.EndedSince), limit)
	}
	calls, err := scanCalls(rows, err)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list calls: %w", err)
	}
	return calls, nil
}

// scanCalls reads every row of a calls query (rows, err as the query
// returned them) and closes rows.
func scanCalls(rows *sql.Rows, err error) ([]*store.Call, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var calls []*store.Call
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, err
		}
		calls = append(calls, c)
	}
	return calls, rows.Err()
}

// StaleCalls returns up to limit live calls in the IVR not updated since
// idleSince, or handed off and created before startedBefore, oldest first.
func (db *DB) StaleCalls(ctx context.Context, idleSince, startedBefore time.Time, limit int) ([]*store.Call, error) {
	calls, err := scanCalls(db.r.query(ctx, qStaleCalls, ms(idleSince), ms(startedBefore), store.CallsLimit(limit)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: stale calls: %w", err)
	}
	return calls, nil
}

// Events returns the events stored for callSID, oldest (lowest Seq) first;
// none, without error, for an unknown call.
func (db *DB) Events(ctx context.Context, callSID string) ([]store.Event, error) {
	rows, err := db.r.query(ctx, qEvents, callSID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list events: %w", err)
	}
	defer rows.Close()
	var events []store.Event
	for rows.Next() {
		var (
			e    store.Event
			at   int64
			kind string
		)
		if err := rows.Scan(&e.Seq, &at, &e.CallSID, &e.VerificationID, &kind, &e.Actor, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlite: list events: %w", err)
		}
		e.At, e.Kind = fromMS(at), store.EventKind(kind)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list events: %w", err)
	}
	return events, nil
}

// AppendEvent stores e on its own and sets e.Seq. e.Call is not stored.
func (db *DB) AppendEvent(ctx context.Context, e *store.Event) error {
	if e == nil {
		return errors.New("sqlite: append event: nil event")
	}
	if err := db.write(ctx, nil, []*store.Event{e}); err != nil {
		return fmt.Errorf("sqlite: append event: %w", err)
	}
	return nil
}

// PurgeEnded deletes the calls that ended before before, with their
// verifications and events, and returns how many calls it deleted. It works in
// batches, each its own transaction, so that other writers are not held up.
func (db *DB) PurgeEnded(ctx context.Context, before time.Time) (int, error) {
	const batch = 500
	cutoff := ms(before)
	total := 0
	for {
		var n int
		err := db.write(ctx, func(tx wtx) error {
			// Events and verifications first: the batch is chosen from calls.
			for _, q := range []string{qPurgeEvents, qPurgeVerifications} {
				if _, err := tx.exec(ctx, q, cutoff, batch); err != nil {
					return err
				}
			}
			res, err := tx.exec(ctx, qPurgeCalls, cutoff, batch)
			if err != nil {
				return err
			}
			m, err := res.RowsAffected()
			n = int(m)
			return err
		}, nil)
		if err != nil {
			return total, fmt.Errorf("sqlite: purge ended calls: %w", err)
		}
		total += n
		if n < batch {
			return total, nil
		}
	}
}

type scanner interface {
	Scan(dest ...any) error
}

func scanCall(s scanner) (*store.Call, error) {
	var (
		c                         store.Call
		state, reason, identify   string
		created, updated, endedAt int64
		handedOff                 int64
	)
	err := s.Scan(&c.SID, &c.From, &c.To, &c.Language, &state, &c.Step, &c.LastTwiML,
		&c.NumberAttempts, &c.VerifyAttempts, &c.VerificationID, &c.Outcome, &reason, &handedOff, &identify,
		&created, &updated, &endedAt, &c.Version)
	if err != nil {
		return nil, err
	}
	c.State, c.Reason, c.Identify = store.CallState(state), store.Reason(reason), store.IDKind(identify)
	c.CreatedAt, c.UpdatedAt, c.EndedAt, c.HandedOffAt = fromMS(created), fromMS(updated), fromMS(endedAt), fromMS(handedOff)
	return &c, nil
}
