package postgres

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/ivr/callerverify/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CreateAgent stores a; store.ErrExists when the name is taken.
func (db *DB) CreateAgent(ctx context.Context, a store.Agent) error {
	_, err := db.pool.Exec(ctx, qInsertAgent, a.Name, a.PasswordHash, stamp(a.CreatedAt))
	if isUnique(err) {
		err = store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("postgres: create agent: %w", err)
	}
	return nil
}

// Agent returns the named agent, or store.ErrNotFound.
func (db *DB) Agent(ctx context.Context, name string) (store.Agent, error) {
	var a store.Agent
	err := db.pool.QueryRow(ctx, qAgent, name).Scan(&a.Name, &a.PasswordHash, at(&a.CreatedAt))
	if err != nil {
		return store.Agent{}, fmt.Errorf("postgres: get agent: %w", notFound(err, store.ErrNotFound))
	}
	return a, nil
}

// Agents returns all agents ordered by name (byte order).
func (db *DB) Agents(ctx context.Context) ([]store.Agent, error) {
	rows, _ := db.pool.Query(ctx, qAgents)
	agents, err := pgx.AppendRows([]store.Agent(nil), rows, func(row pgx.CollectableRow) (store.Agent, error) {
		var a store.Agent
		err := row.Scan(&a.Name, &a.PasswordHash, at(&a.CreatedAt))
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list agents: %w", err)
	}
	return agents, nil
}

// DeleteAgent deletes the named agent and its sessions; store.ErrNotFound
// when there is no such agent.
func (db *DB) DeleteAgent(ctx context.Context, name string) error {
	err := db.write(ctx, func(b *pgx.Batch) error {
		// The foreign key cascades too; this keeps the promise whatever
		// the constraint becomes.
		b.Queue(qDeleteAgentSessions, name)
		b.Queue(qDeleteAgent, name).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() == 0 {
				return store.ErrNotFound
			}
			return nil
		})
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("postgres: delete agent: %w", err)
	}
	return nil
}

// CreateSession stores s. store.ErrNotFound when s.Agent names no agent,
// store.ErrExists when the ID is taken.
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	_, err := db.pool.Exec(ctx, qInsertSession,
		s.ID, s.Agent, s.CSRFToken, stamp(s.CreatedAt), stamp(s.ExpiresAt), stamp(cmp.Or(s.LastUsedAt, s.CreatedAt)))
	switch {
	case isForeignKey(err):
		err = store.ErrNotFound
	case isUnique(err):
		err = store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	return nil
}

// Session returns the session with the given ID, or store.ErrNotFound. It
// returns expired sessions too: the caller compares ExpiresAt with its clock.
func (db *DB) Session(ctx context.Context, id string) (store.Session, error) {
	var s store.Session
	err := db.pool.QueryRow(ctx, qSession, id).
		Scan(&s.ID, &s.Agent, &s.CSRFToken, at(&s.CreatedAt), at(&s.ExpiresAt), at(&s.LastUsedAt))
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: get session: %w", notFound(err, store.ErrNotFound))
	}
	return s, nil
}

// TouchSession moves the session's last use to when (never back).
func (db *DB) TouchSession(ctx context.Context, id string, when time.Time) error {
	tag, err := db.pool.Exec(ctx, qTouchSession, stamp(when), id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: touch session: %w", err)
	}
	return nil
}

// DeleteSession deletes the session with the given ID. Deleting a session that
// does not exist (a second logout) is not an error.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, qDeleteSession, id); err != nil {
		return fmt.Errorf("postgres: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions deletes the sessions whose ExpiresAt is at or before
// now and returns how many it deleted.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, qDeleteExpiredSessions, stamp(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// LoginFailures returns the failures under each key whose last failure is
// at or after since.
func (db *DB) LoginFailures(ctx context.Context, keys []string, since time.Time) (map[string]store.LoginFailures, error) {
	out := make(map[string]store.LoginFailures, len(keys))
	rows, err := db.pool.Query(ctx, qLoginFailures, keys, stamp(since))
	if err != nil {
		return nil, fmt.Errorf("postgres: login failures: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k string
			f store.LoginFailures
		)
		if err := rows.Scan(&k, &f.Count, at(&f.Last)); err != nil {
			return nil, fmt.Errorf("postgres: login failures: %w", err)
		}
		out[k] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: login failures: %w", err)
	}
	return out, nil
}

// AddLoginFailure counts a failure at now under each key, from one again
// for a key whose last failure is before since. The keys are counted in
// one transaction, one statement each (so that a key given twice counts
// twice), sent in one round trip.
func (db *DB) AddLoginFailure(ctx context.Context, keys []string, since, now time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	err := db.writeAtOnce(ctx, func(b *pgx.Batch) {
		for _, k := range keys {
			b.Queue(qAddLoginFailure, k, stamp(since), stamp(now))
		}
	}, nil)
	if err != nil {
		return fmt.Errorf("postgres: add login failure: %w", err)
	}
	return nil
}

// ClearLoginFailures forgets the failures under keys.
func (db *DB) ClearLoginFailures(ctx context.Context, keys ...string) error {
	if _, err := db.pool.Exec(ctx, qClearLoginFailures, keys); err != nil {
		return fmt.Errorf("postgres: clear login failures: %w", err)
	}
	return nil
}
