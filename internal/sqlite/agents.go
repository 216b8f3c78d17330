package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ivr/callerverify/internal/store"
)

// CreateAgent stores a; store.ErrExists when the name is taken.
func (db *DB) CreateAgent(ctx context.Context, a store.Agent) error {
	err := db.write(ctx, func(tx wtx) error {
		_, err := tx.exec(ctx, qInsertAgent, a.Name, a.PasswordHash, ms(a.CreatedAt))
		if isUnique(err) {
			return store.ErrExists
		}
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("sqlite: create agent: %w", err)
	}
	return nil
}

// Agent returns the named agent, or store.ErrNotFound.
func (db *DB) Agent(ctx context.Context, name string) (store.Agent, error) {
	var (
		a       store.Agent
		created int64
	)
	err := db.r.queryRow(ctx, qAgent, name).
		Scan(&a.Name, &a.PasswordHash, &created)
	if err != nil {
		return store.Agent{}, fmt.Errorf("sqlite: get agent: %w", notFound(err, store.ErrNotFound))
	}
	a.CreatedAt = fromMS(created)
	return a, nil
}

// Agents returns all agents ordered by name.
func (db *DB) Agents(ctx context.Context) ([]store.Agent, error) {
	rows, err := db.r.query(ctx, qAgents)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list agents: %w", err)
	}
	defer rows.Close()
	var agents []store.Agent
	for rows.Next() {
		var (
			a       store.Agent
			created int64
		)
		if err := rows.Scan(&a.Name, &a.PasswordHash, &created); err != nil {
			return nil, fmt.Errorf("sqlite: list agents: %w", err)
		}
		a.CreatedAt = fromMS(created)
		agents = append(agents, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list agents: %w", err)
	}
	return agents, nil
}

// DeleteAgent deletes the named agent and its sessions; store.ErrNotFound
// when there is no such agent.
func (db *DB) DeleteAgent(ctx context.Context, name string) error {
	err := db.write(ctx, func(tx wtx) error {
		// The foreign key cascades too; this keeps the promise should a
		// connection ever run without foreign_keys.
		if _, err := tx.exec(ctx, qDeleteAgentSessions, name); err != nil {
			return err
		}
		res, err := tx.exec(ctx, qDeleteAgent, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("sqlite: delete agent: %w", err)
	}
	return nil
}

// CreateSession stores s. store.ErrNotFound when s.Agent names no agent,
// store.ErrExists when the ID is taken.
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	err := db.write(ctx, func(tx wtx) error {
		_, err := tx.exec(ctx, qInsertSession,
			s.ID, s.Agent, s.CSRFToken, ms(s.CreatedAt), ms(s.ExpiresAt), ms(cmp.Or(s.LastUsedAt, s.CreatedAt)))
		switch {
		case isForeignKey(err):
			return store.ErrNotFound
		case isUnique(err):
			return store.ErrExists
		}
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	return nil
}

// Session returns the session with the given ID, or store.ErrNotFound. It
// returns expired sessions too: the caller compares ExpiresAt with its clock.
func (db *DB) Session(ctx context.Context, id string) (store.Session, error) {
	var (
		s                      store.Session
		created, expires, used int64
	)
	err := db.r.queryRow(ctx, qSession, id).
		Scan(&s.ID, &s.Agent, &s.CSRFToken, &created, &expires, &used)
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: get session: %w", notFound(err, store.ErrNotFound))
	}
	s.CreatedAt, s.ExpiresAt, s.LastUsedAt = fromMS(created), fromMS(expires), fromMS(used)
	return s, nil
}

// TouchSession moves the session's last use to at (never back).
func (db *DB) TouchSession(ctx context.Context, id string, at time.Time) error {
	err := db.write(ctx, func(tx wtx) error {
		res, err := tx.exec(ctx, qTouchSession, ms(at), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("sqlite: touch session: %w", err)
	}
	return nil
}

// DeleteSession deletes the session with the given ID. Deleting a session that
// does not exist (a second logout) is not an error.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	err := db.write(ctx, func(tx wtx) error {
		_, err := tx.exec(ctx, qDeleteSession, id)
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("sqlite: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions deletes the sessions whose ExpiresAt is at or before
// now and returns how many it deleted.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := db.write(ctx, func(tx wtx) error {
		res, err := tx.exec(ctx, qDeleteExpiredSessions, ms(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	}, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired sessions: %w", err)
	}
	return int(n), nil
}

// LoginFailures returns the failures under each key whose last failure is
// at or after since.
func (db *DB) LoginFailures(ctx context.Context, keys []string, since time.Time) (map[string]store.LoginFailures, error) {
	out := make(map[string]store.LoginFailures, len(keys))
	for _, k := range keys {
		var (
			f    store.LoginFailures
			last int64
		)
		err := db.r.queryRow(ctx, qLoginFailures, k, ms(since)).Scan(&f.Count, &last)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: login failures: %w", err)
		}
		f.Last = fromMS(last)
		out[k] = f
	}
	return out, nil
}

// AddLoginFailure counts a failure at now under each key, from one again
// for a key whose last failure is before since.
func (db *DB) AddLoginFailure(ctx context.Context, keys []string, since, now time.Time) error {
	err := db.write(ctx, func(tx wtx) error {
		for _, k := range keys {
			if _, err := tx.exec(ctx, qAddLoginFailure, k, ms(since), ms(now)); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("sqlite: add login failure: %w", err)
	}
	return nil
}

// ClearLoginFailures forgets the failures under keys.
func (db *DB) ClearLoginFailures(ctx context.Context, keys ...string) error {
	err := db.write(ctx, func(tx wtx) error {
		for _, k := range keys {
			if _, err := tx.exec(ctx, qClearLoginFailures, k); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("sqlite: clear login failures: %w", err)
	}
	return nil
}
