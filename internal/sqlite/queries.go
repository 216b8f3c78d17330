package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The statements the store runs, prepared once per connection at Open (SQLite
// then skips parsing on every call). Reads run on the read pool, writes inside
// transactions on the write connection.
const (
	callColumns = `sid, from_number, to_number, language, state, step, last_twiml,
	number_attempts, verify_attempts, verification_id, outcome, reason, handed_off_at, identify,
	created_at, updated_at, ended_at, version`

	verificationColumns = `id, call_sid, country, method, id_kind, sealed_id, masked_id, id_hash, caller,
	initiator, status, pending, auth_req_id, binding_message,
	interval_ms, expires_at, next_poll_at, polls, slow_downs, failures,
	subject, name, given_name, family_name, error,
	created_at, updated_at, completed_at, version, lease_owner, lease_until, notify_hash, notified_at`

	// inFlight is the condition of the partial index verifications_due; the
	// poller's queries repeat it word for word so that SQLite uses that index.
	inFlight = `status IN ('starting', 'pending')`

	// endedBatch selects a batch of calls for PurgeEnded: ?1 cutoff, ?2 batch size.
	endedBatch = `SELECT sid FROM calls WHERE ended_at > 0 AND ended_at < ?1 ORDER BY ended_at LIMIT ?2`

	qPing = `SELECT count(*) FROM migrations`

	qCall      = `SELECT ` + callColumns + ` FROM calls WHERE sid = ?`
	qLiveCalls = `SELECT ` + callColumns + ` FROM calls
		WHERE ended_at = 0 ORDER BY created_at DESC, rowid DESC LIMIT ?`
	qEndedCalls = `SELECT ` + callColumns + ` FROM calls
		WHERE ended_at > 0 AND ended_at >= ? ORDER BY ended_at DESC, created_at DESC, rowid DESC LIMIT ?`
	qEvents = `SELECT seq, at, call_sid, verification_id, kind, actor, detail
		FROM events WHERE call_sid = ? ORDER BY seq`
	qVerification = `SELECT ` + verificationColumns + ` FROM verifications WHERE id = ?`
	// qClaimDue leases the due rows: ?1 owner, ?2 now, ?3 lease, ?4 limit.
	qClaimDue = `UPDATE verifications SET lease_owner = ?1, lease_until = ?2 + max(?3, interval_ms), version = version + 1
		WHERE id IN (SELECT id FROM verifications
			WHERE ` + inFlight + ` AND next_poll_at <= ?2 AND lease_until <= ?2
			ORDER BY next_poll_at, rowid LIMIT ?4)
		RETURNING ` + verificationColumns
	// qNextUnleased walks verifications_due in order to the first row not
	// leased at ?1; qNextLease reads verifications_leased.
	qNextUnleased = `SELECT min(next_poll_at) FROM verifications WHERE ` + inFlight + ` AND lease_until <= ?`
	qNextLease    = `SELECT min(lease_until) FROM verifications WHERE lease_until > 0 AND ` + inFlight + ` AND lease_until > ?`
	qInFlight     = `SELECT count(*) FROM verifications WHERE ` + inFlight
	// The rate-limit counts, one per store.LimitScope: each reads one index
	// (verifications_id_hash, _caller, _initiator, _created) over the window
	// only. They run inside StartVerification's write transaction.
	qCountByIDHash    = `SELECT count(*) FROM verifications WHERE id_hash = ? AND created_at >= ?`
	qCountByCaller    = `SELECT count(*) FROM verifications WHERE caller = ? AND caller <> '' AND initiator = 'caller' AND created_at >= ?`
	qCountByInitiator = `SELECT count(*) FROM verifications WHERE initiator = ? AND created_at >= ?`
	qCountAll         = `SELECT count(*) FROM verifications WHERE created_at >= ?`
	qCallInFlight     = `SELECT EXISTS (SELECT 1 FROM verifications WHERE call_sid = ? AND ` + inFlight + `)`
	qStaleCalls       = `SELECT ` + callColumns + ` FROM calls WHERE ended_at = 0 AND (
		(state IN ('gathering', 'verifying', 'retry') AND updated_at < ?) OR (state = 'handed_off' AND created_at < ?))
		ORDER BY created_at LIMIT ?`
	qLoginFailures = `SELECT count, last_at FROM login_failures WHERE key = ? AND last_at >= ?`
	qAgent         = `SELECT name, password_hash, created_at FROM agents WHERE name = ?`
	qAgents        = `SELECT name, password_hash, created_at FROM agents ORDER BY name`
	qSession       = `SELECT id, agent, csrf_token, created_at, expires_at, last_used_at FROM agent_sessions WHERE id = ?`

	qInsertEvent = `INSERT INTO events (at, call_sid, verification_id, kind, actor, detail)
		VALUES (?, ?, ?, ?, ?, ?)`
	qInsertCall = `INSERT INTO calls (` + callColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (sid) DO NOTHING`
	qUpdateCall = `UPDATE calls SET
		from_number = ?, to_number = ?, language = ?, state = ?, step = ?, last_twiml = ?,
		number_attempts = ?, verify_attempts = ?, verification_id = ?, outcome = ?,
		reason = ?, handed_off_at = ?, identify = ?,
		created_at = ?, updated_at = ?, ended_at = ?, version = version + 1
		WHERE sid = ? AND version = ?`
	qCallExists         = `SELECT EXISTS (SELECT 1 FROM calls WHERE sid = ?)`
	qInsertVerification = `INSERT INTO verifications (` + verificationColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, ?, ?)`
	qUpdateVerification = `UPDATE verifications SET
		call_sid = ?, country = ?, method = ?, id_kind = ?, sealed_id = ?, masked_id = ?, id_hash = ?, caller = ?,
		initiator = ?, status = ?, pending = ?, auth_req_id = ?, binding_message = ?,
		interval_ms = ?, expires_at = ?, next_poll_at = ?, polls = ?, slow_downs = ?, failures = ?,
		subject = ?, name = ?, given_name = ?, family_name = ?, error = ?,
		created_at = ?, updated_at = ?, completed_at = ?, version = version + 1,
		lease_owner = '', lease_until = 0, notify_hash = ?, notified_at = ?
		WHERE id = ? AND version = ?`
	qVerificationExists  = `SELECT EXISTS (SELECT 1 FROM verifications WHERE id = ?)`
	qPurgeEvents         = `DELETE FROM events WHERE call_sid IN (` + endedBatch + `)`
	qPurgeVerifications  = `DELETE FROM verifications WHERE call_sid IN (` + endedBatch + `)`
	qPurgeCalls          = `DELETE FROM calls WHERE sid IN (` + endedBatch + `)`
	qInsertAgent         = `INSERT INTO agents (name, password_hash, created_at) VALUES (?, ?, ?)`
	qDeleteAgentSessions = `DELETE FROM agent_sessions WHERE agent = ?`
	qDeleteAgent         = `DELETE FROM agents WHERE name = ?`
	qInsertSession       = `INSERT INTO agent_sessions (id, agent, csrf_token, created_at, expires_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?)`
	qTouchSession          = `UPDATE agent_sessions SET last_used_at = max(last_used_at, ?) WHERE id = ?`
	qDeleteSession         = `DELETE FROM agent_sessions WHERE id = ?`
	qDeleteExpiredSessions = `DELETE FROM agent_sessions WHERE expires_at <= ?`
	qWriteProbe            = `INSERT INTO write_probe (id, at) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET at = excluded.at`
	qAddLoginFailure = `INSERT INTO login_failures (key, count, last_at) VALUES (?1, 1, ?3)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN last_at < ?2 THEN 1 ELSE count + 1 END, last_at = ?3`
	qClearLoginFailures = `DELETE FROM login_failures WHERE key = ?`
)

func readQueries() []string {
	return []string{qPing, qCall, qLiveCalls, qEndedCalls, qEvents, qVerification, qNextUnleased, qNextLease,
		qInFlight, qAgent, qAgents, qSession, qStaleCalls, qLoginFailures}
}

func writeQueries() []string {
	return []string{qInsertEvent, qInsertCall, qUpdateCall, qCallExists, qInsertVerification,
		qUpdateVerification, qVerificationExists, qPurgeEvents, qPurgeVerifications, qPurgeCalls,
		qInsertAgent, qDeleteAgentSessions, qDeleteAgent, qInsertSession, qDeleteSession,
		qDeleteExpiredSessions, qWriteProbe, qCountByIDHash, qCountByCaller, qCountByInitiator, qCountAll,
		qCallInFlight, qAddLoginFailure, qClearLoginFailures, qClaimDue, qTouchSession}
}

// pool is a connection pool and the statements prepared on it. A statement
// not in stmts still runs, unprepared.
type pool struct {
	db    *sql.DB
	stmts map[string]*sql.Stmt
}

// prepare prepares queries on p. For the write pool this must happen outside
// any transaction: preparing takes a connection, and there is only one.
func (p *pool) prepare(ctx context.Context, queries []string) error {
	p.stmts = make(map[string]*sql.Stmt, len(queries))
	for i, q := range queries {
		s, err := p.db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare statement %d: %w", i, err)
		}
		p.stmts[q] = s
	}
	return nil
}

func (p *pool) close() error {
	var errs []error
	for _, s := range p.stmts {
		errs = append(errs, s.Close())
	}
	return errors.Join(append(errs, p.db.Close())...)
}

func (p *pool) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if s, ok := p.stmts[q]; ok {
		return s.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, q, args...)
}

func (p *pool) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s, ok := p.stmts[q]; ok {
		return s.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, q, args...)
}

// wtx is a write transaction. Its statements reuse the ones prepared on the
// write connection.
type wtx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (t wtx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s, ok := t.stmts[q]; ok {
		return t.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

func (t wtx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s, ok := t.stmts[q]; ok {
		return t.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

func (t wtx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if s, ok := t.stmts[q]; ok {
		return t.tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}
