package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// StartVerification stores v, the call c (when not nil) and events in one
// transaction, after checking that the call has no verification in flight
// and that every limit has room. The write connection serialises it with
// every other write, so concurrent starts see each other's rows.
func (db *DB) StartVerification(ctx context.Context, c *store.Call, v *store.Verification, limits []store.Limit, events ...*store.Event) ([]store.Limit, error) {
	var over []store.Limit
	err := db.write(ctx, func(tx wtx) error {
		over = over[:0]
		if c != nil { // first: a call that moved is a conflict, whatever else
			if err := updateCall(ctx, tx, c); err != nil {
				return err
			}
		}
		var busy bool
		if err := tx.queryRow(ctx, qCallInFlight, v.CallSID).Scan(&busy); err != nil {
			return fmt.Errorf("check in flight: %w", err)
		}
		if busy {
			return store.ErrInFlight
		}
		for _, l := range limits {
			if l.Max <= 0 {
				continue // off: nothing to count
			}
			n, err := limitCount(ctx, tx, l, v.CreatedAt)
			if err != nil {
				return err
			}
			overridden, err := l.Check(n)
			if err != nil {
				return err
			}
			if overridden {
				over = append(over, l)
			}
		}
		_, err := tx.exec(ctx, qInsertVerification, verificationArgs(v)...)
		if isUnique(err) {
			return store.ErrConflict
		}
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return nil
	}, events)
	if err != nil {
		return nil, fmt.Errorf("sqlite: start verification: %w", err)
	}
	if c != nil {
		c.Version++
	}
	return over, nil
}

// limitCount counts the verifications that l counts among those created
// in its window before now.
func limitCount(ctx context.Context, tx wtx, l store.Limit, now time.Time) (int, error) {
	since := ms(now.Add(-l.Window))
	var row *sql.Row
	switch l.Scope {
	case store.LimitNumber:
		row = tx.queryRow(ctx, qCountByIDHash, l.Key, since)
	case store.LimitCaller, store.LimitWithheld:
		row = tx.queryRow(ctx, qCountByCaller, l.Key, since)
	case store.LimitAgent:
		row = tx.queryRow(ctx, qCountByInitiator, l.Key, since)
	case store.LimitGlobal:
		row = tx.queryRow(ctx, qCountAll, since)
	default:
		return 0, fmt.Errorf("unknown limit scope %q", l.Scope)
	}
	var n int
	if err := row.Scan(&n); err != nil {
		return 0, fmt.Errorf("count for the %s limit: %w", l.Scope, err)
	}
	return n, nil
}

// verificationArgs are v's values in verificationColumns order.
func verificationArgs(v *store.Verification) []any {
	return []any{v.ID, v.CallSID, string(v.Country), v.Method, string(v.IDKind), v.SealedID, v.MaskedID, v.IDHash, v.Caller,
		v.Initiator, string(v.Status), v.Pending, v.AuthReqID, v.BindingMessage,
		v.Interval.Milliseconds(), ms(v.ExpiresAt), ms(v.NextPollAt), v.Polls, v.SlowDowns, v.Failures,
		v.Subject, v.Name, v.GivenName, v.FamilyName, v.Error,
		ms(v.CreatedAt), ms(v.UpdatedAt), ms(v.CompletedAt), v.Version,
		v.NotifyHash, ms(v.NotifiedAt)}
}

// updateVerificationArgs are the arguments of qUpdateVerification for v:
// every column but the ID and the version, then the ID and the version.
func updateVerificationArgs(v *store.Verification) []any {
	a := verificationArgs(v)
	n := len(a)
	return slices.Concat(a[1:n-3], a[n-2:], []any{v.ID, v.Version})
}

// Verification returns the verification with the given ID, or
// store.ErrNotFound.
func (db *DB) Verification(ctx context.Context, id string) (*store.Verification, error) {
	row := db.r.queryRow(ctx, qVerification, id)
	v, err := scanVerification(row)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get verification: %w", notFound(err, store.ErrNotFound))
	}
	return v, nil
}

// UpdateVerification stores v if the stored version equals v.Version,
// together with events, and then increments v.Version. A different stored
// version gives store.ErrConflict, a missing verification store.ErrNotFound;
// either way nothing changes.
func (db *DB) UpdateVerification(ctx context.Context, v *store.Verification, events ...*store.Event) error {
	err := db.write(ctx, func(tx wtx) error {
		res, err := tx.exec(ctx, qUpdateVerification, updateVerificationArgs(v)...)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		return versionCheck(ctx, tx, res, qVerificationExists, v.ID)
	}, events)
	if err != nil {
		return fmt.Errorf("sqlite: update verification: %w", err)
	}
	v.Version++
	return nil
}

// ClaimDue leases the due verifications to owner and returns them, earliest
// due first.
func (db *DB) ClaimDue(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*store.Verification, error) {
	var vs []*store.Verification
	err := db.write(ctx, func(tx wtx) error {
		vs = vs[:0]
		rows, err := tx.query(ctx, qClaimDue, owner, ms(now), lease.Milliseconds(), store.DueLimit(limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scanVerification(rows)
			if err != nil {
				return err
			}
			vs = append(vs, v)
		}
		return rows.Err()
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim due verifications: %w", err)
	}
	slices.SortFunc(vs, store.CompareDue)
	return vs, nil
}

// NextDue is the earliest NextPollAt of the in-flight verifications not
// leased at now, or the earliest lease end if sooner.
func (db *DB) NextDue(ctx context.Context, now time.Time) (time.Time, bool, error) {
	var due, lease sql.NullInt64
	if err := db.r.queryRow(ctx, qNextUnleased, ms(now)).Scan(&due); err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: next due: %w", err)
	}
	if err := db.r.queryRow(ctx, qNextLease, ms(now)).Scan(&lease); err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: next due: %w", err)
	}
	switch {
	case due.Valid && lease.Valid:
		return fromMS(min(due.Int64, lease.Int64)), true, nil
	case due.Valid:
		return fromMS(due.Int64), true, nil
	case lease.Valid:
		return fromMS(lease.Int64), true, nil
	}
	return time.Time{}, false, nil
}

// InFlight counts the verifications still starting or pending (a gauge
// for /metrics).
func (db *DB) InFlight(ctx context.Context) (int, error) {
	var n int
	if err := db.r.queryRow(ctx, qInFlight).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count in-flight verifications: %w", err)
	}
	return n, nil
}

func scanVerification(s scanner) (*store.Verification, error) {
	var (
		v                           store.Verification
		country, status, idKind     string
		interval, expires, nextPoll int64
		created, updated, completed int64
		leaseUntil, notified        int64
	)
	err := s.Scan(&v.ID, &v.CallSID, &country, &v.Method, &idKind, &v.SealedID, &v.MaskedID, &v.IDHash, &v.Caller,
		&v.Initiator, &status, &v.Pending, &v.AuthReqID, &v.BindingMessage,
		&interval, &expires, &nextPoll, &v.Polls, &v.SlowDowns, &v.Failures,
		&v.Subject, &v.Name, &v.GivenName, &v.FamilyName, &v.Error,
		&created, &updated, &completed, &v.Version, &v.LeaseOwner, &leaseUntil, &v.NotifyHash, &notified)
	if err != nil {
		return nil, err
	}
	v.Country, v.Status, v.IDKind = store.Country(country), store.VerificationStatus(status), store.IDKind(idKind)
	v.Interval = time.Duration(interval) * time.Millisecond
	v.ExpiresAt, v.NextPollAt = fromMS(expires), fromMS(nextPoll)
	v.CreatedAt, v.UpdatedAt, v.CompletedAt = fromMS(created), fromMS(updated), fromMS(completed)
	v.LeaseUntil, v.NotifiedAt = fromMS(leaseUntil), fromMS(notified)
	return &v, nil
}
