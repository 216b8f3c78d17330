-- The whole store in one schema: calls, verifications and the append-only
-- event log (store.Store), agents, their sessions and failed logins
-- (store.AgentStore). It is the final schema of the sqlite store, written
-- for PostgreSQL.
--
-- Times are timestamptz at millisecond precision, written in UTC; a time
-- that is not set is '-infinity', never NULL, so that it sorts and compares
-- below every real time as the sqlite store's 0 does ("lease_until <= now"
-- holds for a row never leased, min() and the indexes need no NULL cases).
-- Durations are bigint milliseconds. There are no foreign keys between
-- calls, verifications and events: an event or a verification may name a
-- call the store has not seen, and PurgeEnded deletes all three.

CREATE TABLE calls (
	sid             text        NOT NULL PRIMARY KEY,
	from_number     text        NOT NULL DEFAULT '',
	to_number       text        NOT NULL DEFAULT '',
	language        text        NOT NULL DEFAULT '',
	state           text        NOT NULL DEFAULT '',
	step            integer     NOT NULL DEFAULT 0,
	last_twiml      text        NOT NULL DEFAULT '',
	number_attempts integer     NOT NULL DEFAULT 0,
	verify_attempts integer     NOT NULL DEFAULT 0,
	verification_id text        NOT NULL DEFAULT '',
	outcome         text        NOT NULL DEFAULT '',
	reason          text        NOT NULL DEFAULT '',
	handed_off_at   timestamptz NOT NULL DEFAULT '-infinity',
	created_at      timestamptz NOT NULL DEFAULT '-infinity',
	updated_at      timestamptz NOT NULL DEFAULT '-infinity',
	ended_at        timestamptz NOT NULL DEFAULT '-infinity',
	version         bigint      NOT NULL DEFAULT 0
);

-- Live calls (ended_at = '-infinity') newest first, ended calls by
-- ended_at (listings, the retention purge), stale live calls by created_at.
CREATE INDEX calls_ended_created ON calls (ended_at, created_at, sid);

CREATE TABLE verifications (
	id              text        NOT NULL PRIMARY KEY,
	call_sid        text        NOT NULL DEFAULT '',
	country         text        NOT NULL DEFAULT '',
	-- The national identity number sealed by the IVR (the store never sees
	-- it in clear), only while the verification is in flight.
	sealed_id       text        NOT NULL DEFAULT '',
	masked_id       text        NOT NULL DEFAULT '',
	id_hash         text        NOT NULL DEFAULT '',
	-- The rate-limit key of the caller id ('withheld' for every caller id
	-- that cannot tell callers apart).
	caller          text        NOT NULL DEFAULT '',
	initiator       text        NOT NULL DEFAULT '',
	status          text        NOT NULL DEFAULT '',
	pending         text        NOT NULL DEFAULT '',
	auth_req_id     text        NOT NULL DEFAULT '',
	binding_message text        NOT NULL DEFAULT '',
	interval_ms     bigint      NOT NULL DEFAULT 0,
	expires_at      timestamptz NOT NULL DEFAULT '-infinity',
	next_poll_at    timestamptz NOT NULL DEFAULT '-infinity',
	polls           integer     NOT NULL DEFAULT 0,
	slow_downs      integer     NOT NULL DEFAULT 0,
	failures        integer     NOT NULL DEFAULT 0,
	subject         text        NOT NULL DEFAULT '',
	name            text        NOT NULL DEFAULT '',
	given_name      text        NOT NULL DEFAULT '',
	family_name     text        NOT NULL DEFAULT '',
	error           text        NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL DEFAULT '-infinity',
	updated_at      timestamptz NOT NULL DEFAULT '-infinity',
	completed_at    timestamptz NOT NULL DEFAULT '-infinity',
	version         bigint      NOT NULL DEFAULT 0,
	-- Which poller holds the verification (store.ClaimDue) and until when.
	lease_owner     text        NOT NULL DEFAULT '',
	lease_until     timestamptz NOT NULL DEFAULT '-infinity'
);

-- A call's verifications: the in-flight check, the retention purge.
CREATE INDEX verifications_call ON verifications (call_sid);
-- The poller's indexes, over the in-flight rows only. The queries repeat
-- the WHERE clauses word for word, so that the planner can use them:
-- ClaimDue and NextDue walk verifications_due in next_poll_at order, NextDue
-- reads the earliest lease from verifications_leased.
CREATE INDEX verifications_due ON verifications (next_poll_at)
	WHERE status IN ('starting', 'pending');
CREATE INDEX verifications_leased ON verifications (lease_until)
	WHERE lease_until > '-infinity' AND status IN ('starting', 'pending');
-- The rate-limit counts, one index per store.LimitScope, each read over
-- the window only.
CREATE INDEX verifications_id_hash ON verifications (id_hash, created_at);
CREATE INDEX verifications_caller ON verifications (caller, created_at)
	WHERE caller <> '' AND initiator = 'caller';
CREATE INDEX verifications_initiator ON verifications (initiator, created_at);
CREATE INDEX verifications_created ON verifications (created_at);

CREATE TABLE events (
	seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at              timestamptz NOT NULL DEFAULT '-infinity',
	call_sid        text        NOT NULL DEFAULT '',
	verification_id text        NOT NULL DEFAULT '',
	kind            text        NOT NULL DEFAULT '',
	actor           text        NOT NULL DEFAULT '',
	detail          text        NOT NULL DEFAULT ''
);

CREATE INDEX events_call ON events (call_sid, seq);

CREATE TABLE agents (
	name          text        NOT NULL PRIMARY KEY,
	password_hash text        NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT '-infinity'
);

CREATE TABLE agent_sessions (
	id           text        NOT NULL PRIMARY KEY, -- a hash of the cookie's token
	agent        text        NOT NULL REFERENCES agents (name) ON DELETE CASCADE,
	csrf_token   text        NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL DEFAULT '-infinity',
	expires_at   timestamptz NOT NULL DEFAULT '-infinity',
	-- The session's last use, for the idle timeout every instance applies.
	last_used_at timestamptz NOT NULL DEFAULT '-infinity'
);

CREATE INDEX agent_sessions_agent ON agent_sessions (agent);
CREATE INDEX agent_sessions_expires ON agent_sessions (expires_at);

-- Failed agent logins per throttling key (agent name, client address, both).
CREATE TABLE login_failures (
	key     text        NOT NULL PRIMARY KEY,
	count   integer     NOT NULL DEFAULT 0,
	last_at timestamptz NOT NULL DEFAULT '-infinity'
);

-- Ping writes this one row, so that a database that takes no writes
-- (read-only, a standby, disk full) fails readiness, not only the next call.
CREATE TABLE write_probe (
	id integer     NOT NULL PRIMARY KEY CHECK (id = 1),
	at timestamptz NOT NULL DEFAULT '-infinity'
);
