package postgres

// The statements the store runs. pgx prepares each on first use on every
// connection and keeps it (its statement cache), so they are parsed and
// planned once per connection.
const (
	callColumns = `sid, from_number, to_number, language, state, step, last_twiml,
	number_attempts, verify_attempts, verification_id, outcome, reason, handed_off_at,
	created_at, updated_at, ended_at, version, identify`

	verificationColumns = `id, call_sid, country, sealed_id, masked_id, id_hash, caller,
	initiator, status, pending, auth_req_id, binding_message,
	interval_ms, expires_at, next_poll_at, polls, slow_downs, failures,
	subject, name, given_name, family_name, error,
	created_at, updated_at, completed_at, version, lease_owner, lease_until,
	method, id_kind, notify_hash, notified_at`

	eventColumns = `seq, at, call_sid, verification_id, kind, actor, detail`

	// inFlight is the statuses of a verification that has a poll_queue row.
	inFlight = `status IN ('starting', 'pending')`

	qPing       = `SELECT count(*) FROM schema_migrations`
	qWriteProbe = `INSERT INTO write_probe (id, at) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET at = excluded.at`

	qCall      = `SELECT ` + callColumns + ` FROM calls WHERE sid = $1`
	qLiveCalls = `SELECT ` + callColumns + ` FROM calls
		WHERE ended_at = '-infinity' ORDER BY created_at DESC, sid DESC LIMIT $1`
	qEndedCalls = `SELECT ` + callColumns + ` FROM calls
		WHERE ended_at > '-infinity' AND ended_at >= $1 ORDER BY ended_at DESC, created_at DESC, sid DESC LIMIT $2`
	qStaleCalls = `SELECT ` + callColumns + ` FROM calls WHERE ended_at = '-infinity' AND (
		(state IN ('gathering', 'verifying', 'retry') AND updated_at < $1) OR (state = 'handed_off' AND created_at < $2))
		ORDER BY created_at, sid LIMIT $3`
	qInsertCall = `INSERT INTO calls (` + callColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (sid) DO NOTHING`
	// qUpdateCall stores a call if its version is $17, or fails (a
	// conflict, or no such call: ivr_versioned), in one statement.
	qUpdateCall = `WITH updated AS (
		UPDATE calls SET
			from_number = $1, to_number = $2, language = $3, state = $4, step = $5, last_twiml = $6,
			number_attempts = $7, verify_attempts = $8, verification_id = $9, outcome = $10,
			reason = $11, handed_off_at = $12,
			created_at = $13, updated_at = $14, ended_at = $15, version = version + 1, identify = $18
		WHERE sid = $16 AND version = $17
		RETURNING 1)
		SELECT ivr_versioned(EXISTS (SELECT 1 FROM updated), EXISTS (SELECT 1 FROM calls WHERE sid = $16))`

	qEvents      = `SELECT ` + eventColumns + ` FROM events WHERE call_sid = $1 ORDER BY seq`
	qEventsBySeq = `SELECT ` + eventColumns + ` FROM events WHERE seq = ANY($1) ORDER BY seq`
	// qBatchCalls and qBatchVerifications load the calls that the events
	// $1 name and those calls' current verifications (LoadEvents).
	qBatchCalls         = `SELECT ` + callColumns + ` FROM calls WHERE sid IN (SELECT call_sid FROM events WHERE seq = ANY($1))`
	qBatchVerifications = `SELECT ` + verificationColumns + ` FROM verifications WHERE id IN (
		SELECT verification_id FROM calls WHERE sid IN (SELECT call_sid FROM events WHERE seq = ANY($1)))`
	// qInsertEvent stores an event and notifies its seq on channel $7.
	qInsertEvent = `WITH e AS (INSERT INTO events (at, call_sid, verification_id, kind, actor, detail) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq)
		SELECT seq, pg_notify($7, seq::text)::text FROM e`

	// qPurgeBatch deletes a batch of the calls that ended before $1 (at
	// most $2) with their verifications and events, in one statement (one
	// snapshot: the three deletes see the same batch), and counts the
	// calls. Calls being updated right now wait for the next purge. The
	// batch is an array so that each delete reads its table's index for
	// it, not the whole table.
	qPurgeBatch = `WITH batch AS (
			SELECT ARRAY(SELECT sid FROM calls WHERE ended_at > '-infinity' AND ended_at < $1
				ORDER BY ended_at LIMIT $2 FOR UPDATE SKIP LOCKED) AS sids),
		gone_events AS (DELETE FROM events WHERE call_sid = ANY((SELECT sids FROM batch)::text[])),
		gone_polls AS (DELETE FROM poll_queue WHERE id IN (
			SELECT id FROM verifications WHERE call_sid = ANY((SELECT sids FROM batch)::text[]))),
		gone_verifications AS (DELETE FROM verifications WHERE call_sid = ANY((SELECT sids FROM batch)::text[])),
		gone AS (DELETE FROM calls WHERE sid = ANY((SELECT sids FROM batch)::text[]) RETURNING 1)
		SELECT count(*) FROM gone`
	qTryLock = `SELECT pg_try_advisory_xact_lock($1)`
	// qLazyCommit, first in a write, lets its commit return before its WAL
	// is on disk (it is there within a few hundred milliseconds).
	qLazyCommit = `SET LOCAL synchronous_commit = off`
	qLock       = `SELECT pg_advisory_xact_lock($1)`

	qVerification       = `SELECT ` + verificationColumns + ` FROM verifications WHERE id = $1`
	qInsertVerification = `INSERT INTO verifications (` + verificationColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
			$21, $22, $23, $24, $25, $26, $27, '', '-infinity', $28, $29, $30, $31)`
	// qUpdateVerification stores a verification if its version is $27 and
	// ends its lease, or fails (a conflict, or no such verification:
	// ivr_versioned).
	qUpdateVerification = `WITH updated AS (
		UPDATE verifications SET
			call_sid = $2, country = $3, sealed_id = $4, masked_id = $5, id_hash = $6, caller = $7,
			initiator = $8, status = $9, pending = $10, auth_req_id = $11, binding_message = $12,
			interval_ms = $13, expires_at = $14, next_poll_at = $15, polls = $16, slow_downs = $17, failures = $18,
			subject = $19, name = $20, given_name = $21, family_name = $22, error = $23,
			created_at = $24, updated_at = $25, completed_at = $26, version = version + 1,
			lease_owner = '', lease_until = '-infinity',
			method = $28, id_kind = $29, notify_hash = $30, notified_at = $31
		WHERE id = $1 AND version = $27
		RETURNING 1)
		SELECT ivr_versioned(EXISTS (SELECT 1 FROM updated), EXISTS (SELECT 1 FROM verifications WHERE id = $1))`
	// qCheckInFlight fails a start (ivr_in_flight) when the call $1 has a
	// verification in flight.
	qCheckInFlight = `SELECT ivr_in_flight(EXISTS (SELECT 1 FROM verifications WHERE call_sid = $1 AND ` + inFlight + `))`
	// The rate-limit checks, one per store.LimitScope: each counts the
	// verifications created since $4 with one index (verifications_id_hash,
	// _caller, _initiator, _created) over the window only, and ivr_limit
	// weighs the count against $1 Max, $2 Override, for the limit at
	// position $3; $5 is the limit's key. They run in StartVerification's
	// transaction, after its locks.
	qLimitByIDHash = `SELECT ivr_limit((SELECT count(*) FROM verifications
		WHERE id_hash = $5 AND created_at >= $4), $1, $2, $3)`
	qLimitByCaller = `SELECT ivr_limit((SELECT count(*) FROM verifications
		WHERE caller = $5 AND caller <> '' AND initiator = 'caller' AND created_at >= $4), $1, $2, $3)`
	qLimitByInitiator = `SELECT ivr_limit((SELECT count(*) FROM verifications
		WHERE initiator = $5 AND created_at >= $4), $1, $2, $3)`
	qLimitAll = `SELECT ivr_limit((SELECT count(*) FROM verifications WHERE created_at >= $4), $1, $2, $3)`
	// qQueuePoll puts a verification that starts in the poller's queue,
	// due at its first poll; qRequeuePoll moves one in flight to its next
	// poll (a write ends the lease), and qUnqueuePoll takes one that is
	// done out. A write changes the queue before the verification, as
	// qClaimDue does, so that the two lock the rows they share in the same
	// order.
	qQueuePoll   = `INSERT INTO poll_queue (id, due_at) VALUES ($1, $2)`
	qRequeuePoll = `UPDATE poll_queue SET due_at = $2 WHERE id = $1`
	qUnqueuePoll = `DELETE FROM poll_queue WHERE id = $1`
	// qClaimDue leases the due rows: $1 owner, $2 now, $3 lease in ms, $4
	// limit. The due rows are read from poll_queue in due order; FOR
	// UPDATE SKIP LOCKED passes over rows another ClaimDue is leasing right
	// now (or a write is moving), and re-checks a row whose due time
	// another claim moved since this statement began, so that no two claims
	// share a row. The lease is stored in the verification (columns no index
	// covers: the update is HOT) and as the queue row's due time (a claim
	// that is not followed by a write lets another poller claim the row
	// when the lease ends). The due ids are collected first (an array, not
	// IN (SELECT …), which the planner may turn into a hash join over the
	// whole table) and the verifications then updated by primary key.
	//
	// A due row whose verification is not due after all is put right
	// rather than left at the head of the queue, where NextDue would keep
	// saying "now" to a claim that takes nothing: moved to its next poll or
	// another poller's lease, or dropped when the verification is done or
	// gone. Writers keep the queue in step, so this happens only when
	// something wrote verifications without it — an instance of the
	// version before the queue, during a rolling upgrade.
	// "moved" reads the verifications as they were before "leased" (one
	// snapshot), so it works out the lease "leased" stored from the same
	// condition and leaseEnd.
	qClaimDue = `WITH due AS (
			SELECT id FROM poll_queue WHERE due_at <= $2
			ORDER BY due_at, id LIMIT $4
			FOR UPDATE SKIP LOCKED),
		leased AS (
			UPDATE verifications SET lease_owner = $1,
				lease_until = ` + leaseEnd + `,
				version = version + 1
			WHERE id = ANY(ARRAY(SELECT id FROM due)) AND ` + inFlight + `
				AND next_poll_at <= $2 AND lease_until <= $2
			RETURNING ` + verificationColumns + `),
		moved AS (
			UPDATE poll_queue q SET due_at = CASE
					WHEN v.next_poll_at <= $2 AND v.lease_until <= $2 THEN ` + leaseEnd + `
					ELSE greatest(v.next_poll_at, v.lease_until) END
			FROM verifications v
			WHERE v.id = ANY(ARRAY(SELECT id FROM due)) AND v.` + inFlight + ` AND q.id = v.id),
		dropped AS (
			DELETE FROM poll_queue q WHERE q.id = ANY(ARRAY(SELECT id FROM due))
				AND NOT EXISTS (SELECT 1 FROM verifications v WHERE v.id = q.id AND v.` + inFlight + `))
		SELECT * FROM leased`
	// leaseEnd is the end of a lease taken at $2 for $3 ms, or the
	// verification's interval if longer.
	leaseEnd = `$2::timestamptz + greatest($3::bigint, interval_ms) * interval '1 millisecond'`
	// qNextDue is the earliest time a poller may claim a verification: the
	// next poll of one not leased or the end of a lease, whichever comes
	// first; NULL when nothing is in flight.
	qNextDue = `SELECT min(due_at) FROM poll_queue`
	// qVacuumQueue removes the dead rows and index entries the polls leave
	// in poll_queue (tendQueue).
	qVacuumQueue = `VACUUM (SKIP_LOCKED) poll_queue`
	// qQueueOrphans queues the verifications in flight that have no queue
	// row: those Import copied, and those an instance of the version before
	// the queue started during a rolling upgrade (tendQueue). It reads
	// verifications_in_flight.
	qQueueOrphans = `INSERT INTO poll_queue (id, due_at)
		SELECT v.id, greatest(v.next_poll_at, v.lease_until) FROM verifications v
		WHERE v.` + inFlight + ` AND NOT EXISTS (SELECT 1 FROM poll_queue q WHERE q.id = v.id)
		ON CONFLICT (id) DO NOTHING`
	qInFlight = `SELECT count(*) FROM poll_queue`

	qAgent               = `SELECT name, password_hash, created_at FROM agents WHERE name = $1`
	qAgents              = `SELECT name, password_hash, created_at FROM agents ORDER BY name COLLATE "C"`
	qInsertAgent         = `INSERT INTO agents (name, password_hash, created_at) VALUES ($1, $2, $3)`
	qDeleteAgent         = `DELETE FROM agents WHERE name = $1`
	qDeleteAgentSessions = `DELETE FROM agent_sessions WHERE agent = $1`
	qSession             = `SELECT id, agent, csrf_token, created_at, expires_at, last_used_at FROM agent_sessions WHERE id = $1`
	qInsertSession       = `INSERT INTO agent_sessions (id, agent, csrf_token, created_at, expires_at, last_used_at)
		VALUES ($1, $2, $3, $4, $5, $6)`
	qTouchSession          = `UPDATE agent_sessions SET last_used_at = greatest(last_used_at, $1) WHERE id = $2`
	qDeleteSession         = `DELETE FROM agent_sessions WHERE id = $1`
	qDeleteExpiredSessions = `DELETE FROM agent_sessions WHERE expires_at <= $1`
	qLoginFailures         = `SELECT key, count, last_at FROM login_failures WHERE key = ANY($1) AND last_at >= $2`
	// qAddLoginFailure counts one failure at $3 under $1, from one again
	// when the last one was before $2.
	qAddLoginFailure = `INSERT INTO login_failures AS f (key, count, last_at) VALUES ($1, 1, $3)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN f.last_at < $2 THEN 1 ELSE f.count + 1 END, last_at = $3`
	qClearLoginFailures = `DELETE FROM login_failures WHERE key = ANY($1)`
)
