package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// defaultDueLimit is how many due verifications DueVerifications returns when
// asked for a limit of zero or less.
const defaultDueLimit = 100

// CreateVerification stores v and events in one transaction. An existing ID
// gives store.ErrConflict. v.Version is stored as given. The From of v's call,
// as stored now, is kept with v for CountVerificationsByCaller.
func (db *DB) CreateVerification(ctx context.Context, v *store.Verification, events ...*store.Event) error {
	err := db.write(ctx, func(tx wtx) error {
		_, err := tx.exec(ctx, qInsertVerification,
			v.ID, v.CallSID, string(v.Country), v.NationalID, v.MaskedID, v.IDHash,
			v.Initiator, string(v.Status), v.Pending, v.AuthReqID, v.BindingMessage,
			v.Interval.Milliseconds(), ms(v.ExpiresAt), ms(v.NextPollAt), v.Polls, v.SlowDowns, v.Failures,
			v.Subject, v.Name, v.GivenName, v.FamilyName, v.Error,
			ms(v.CreatedAt), ms(v.UpdatedAt), ms(v.CompletedAt), v.Version, v.CallSID)
		if isUnique(err) {
			return store.ErrConflict
		}
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return nil
	}, events)
	if err != nil {
		return fmt.Errorf("sqlite: create verification: %w", err)
	}
	return nil
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
		res, err := tx.exec(ctx, qUpdateVerification,
			v.CallSID, string(v.Country), v.NationalID, v.MaskedID, v.IDHash,
			v.Initiator, string(v.Status), v.Pending, v.AuthReqID, v.BindingMessage,
			v.Interval.Milliseconds(), ms(v.ExpiresAt), ms(v.NextPollAt), v.Polls, v.SlowDowns, v.Failures,
			v.Subject, v.Name, v.GivenName, v.FamilyName, v.Error,
			ms(v.CreatedAt), ms(v.UpdatedAt), ms(v.CompletedAt),
			v.ID, v.Version)
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

// DueVerifications returns up to limit verifications in VerStarting or
// VerPending whose NextPollAt is at or before now, earliest first (a zero
// NextPollAt counts as due). A limit of zero or less means 100.
func (db *DB) DueVerifications(ctx context.Context, now time.Time, limit int) ([]*store.Verification, error) {
	rows, err := db.r.query(ctx, qDue, ms(now), limitOr(limit, defaultDueLimit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: due verifications: %w", err)
	}
	defer rows.Close()
	var vs []*store.Verification
	for rows.Next() {
		v, err := scanVerification(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: due verifications: %w", err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: due verifications: %w", err)
	}
	return vs, nil
}

// NextPollAt returns the earliest NextPollAt of the verifications in
// VerStarting or VerPending (the set DueVerifications draws from), and false
// when there is none.
func (db *DB) NextPollAt(ctx context.Context, after time.Time) (time.Time, bool, error) {
	var next sql.NullInt64
	afterMS := int64(math.MinInt64) // the zero time: every row counts
	if !after.IsZero() {
		afterMS = after.UnixMilli()
	}
	err := db.r.queryRow(ctx, qNextPollAt, afterMS).Scan(&next)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: next poll time: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromMS(next.Int64), true, nil
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
		country, status             string
		interval, expires, nextPoll int64
		created, updated, completed int64
	)
	err := s.Scan(&v.ID, &v.CallSID, &country, &v.NationalID, &v.MaskedID, &v.IDHash,
		&v.Initiator, &status, &v.Pending, &v.AuthReqID, &v.BindingMessage,
		&interval, &expires, &nextPoll, &v.Polls, &v.SlowDowns, &v.Failures,
		&v.Subject, &v.Name, &v.GivenName, &v.FamilyName, &v.Error,
		&created, &updated, &completed, &v.Version)
	if err != nil {
		return nil, err
	}
	v.Country, v.Status = store.Country(country), store.VerificationStatus(status)
	v.Interval = time.Duration(interval) * time.Millisecond
	v.ExpiresAt, v.NextPollAt = fromMS(expires), fromMS(nextPoll)
	v.CreatedAt, v.UpdatedAt, v.CompletedAt = fromMS(created), fromMS(updated), fromMS(completed)
	return &v, nil
}

// CountVerificationsByID counts the verifications created at or after since
// for the national-ID hash idHash (0 for an empty hash).
func (db *DB) CountVerificationsByID(ctx context.Context, idHash string, since time.Time) (int, error) {
	if idHash == "" {
		return 0, nil
	}
	var n int
	if err := db.r.queryRow(ctx, qCountByIDHash, idHash, ms(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count verifications by number: %w", err)
	}
	return n, nil
}

// CountVerificationsByCaller counts the verifications created at or after
// since for calls from the caller id from, as the call's From was when the
// verification was stored (0 for an empty from).
func (db *DB) CountVerificationsByCaller(ctx context.Context, from string, since time.Time) (int, error) {
	if from == "" {
		return 0, nil
	}
	var n int
	if err := db.r.queryRow(ctx, qCountByCaller, from, ms(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count verifications by caller: %w", err)
	}
	return n, nil
}
