-- Calls, verifications and the append-only event log (ivr.Store).
-- Times are UTC unix milliseconds, 0 for "not set"; durations are milliseconds.
-- There are no foreign keys between these tables: an event or a verification
-- may name a call the store has not seen, and PurgeEnded deletes all three.

CREATE TABLE calls (
	sid             TEXT    NOT NULL PRIMARY KEY,
	from_number     TEXT    NOT NULL DEFAULT '',
	to_number       TEXT    NOT NULL DEFAULT '',
	language        TEXT    NOT NULL DEFAULT '',
	state           TEXT    NOT NULL DEFAULT '',
	step            INTEGER NOT NULL DEFAULT 0,
	last_twiml      TEXT    NOT NULL DEFAULT '',
	number_attempts INTEGER NOT NULL DEFAULT 0,
	verify_attempts INTEGER NOT NULL DEFAULT 0,
	verification_id TEXT    NOT NULL DEFAULT '',
	outcome         TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL DEFAULT 0,
	updated_at      INTEGER NOT NULL DEFAULT 0,
	ended_at        INTEGER NOT NULL DEFAULT 0,
	version         INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Live calls (ended_at = 0) newest first, and ended calls by ended_at.
CREATE INDEX calls_ended_created ON calls (ended_at, created_at);

CREATE TABLE verifications (
	id              TEXT    NOT NULL PRIMARY KEY,
	call_sid        TEXT    NOT NULL DEFAULT '',
	country         TEXT    NOT NULL DEFAULT '',
	national_id     TEXT    NOT NULL DEFAULT '', -- full number only while in flight
	masked_id       TEXT    NOT NULL DEFAULT '',
	id_hash         TEXT    NOT NULL DEFAULT '',
	initiator       TEXT    NOT NULL DEFAULT '',
	status          TEXT    NOT NULL DEFAULT '',
	pending         TEXT    NOT NULL DEFAULT '',
	auth_req_id     TEXT    NOT NULL DEFAULT '',
	binding_message TEXT    NOT NULL DEFAULT '',
	interval_ms     INTEGER NOT NULL DEFAULT 0,
	expires_at      INTEGER NOT NULL DEFAULT 0,
	next_poll_at    INTEGER NOT NULL DEFAULT 0,
	polls           INTEGER NOT NULL DEFAULT 0,
	slow_downs      INTEGER NOT NULL DEFAULT 0,
	failures        INTEGER NOT NULL DEFAULT 0,
	subject         TEXT    NOT NULL DEFAULT '',
	name            TEXT    NOT NULL DEFAULT '',
	given_name      TEXT    NOT NULL DEFAULT '',
	family_name     TEXT    NOT NULL DEFAULT '',
	error           TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL DEFAULT 0,
	updated_at      INTEGER NOT NULL DEFAULT 0,
	completed_at    INTEGER NOT NULL DEFAULT 0,
	version         INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX verifications_call ON verifications (call_sid);
-- The poller's index: (status, next_poll_at) for the in-flight statuses only,
-- as a partial index. DueVerifications and NextPollAt repeat its WHERE word
-- for word; they walk it in next_poll_at order and stop at their limit,
-- without sorting and whatever the number of finished verifications.
CREATE INDEX verifications_due ON verifications (next_poll_at)
	WHERE status IN ('starting', 'pending');

CREATE TABLE events (
	seq             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	at              INTEGER NOT NULL DEFAULT 0,
	call_sid        TEXT    NOT NULL DEFAULT '',
	verification_id TEXT    NOT NULL DEFAULT '',
	kind            TEXT    NOT NULL DEFAULT '',
	actor           TEXT    NOT NULL DEFAULT '',
	detail          TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX events_call ON events (call_sid, seq);
