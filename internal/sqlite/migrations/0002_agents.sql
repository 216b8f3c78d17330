-- Dashboard agents and their sessions (agentui.AgentStore).
-- Times are UTC unix milliseconds.

CREATE TABLE agents (
	name          TEXT    NOT NULL PRIMARY KEY,
	password_hash TEXT    NOT NULL,
	created_at    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE agent_sessions (
	id         TEXT    NOT NULL PRIMARY KEY, -- a hash of the cookie's token
	agent      TEXT    NOT NULL REFERENCES agents (name) ON DELETE CASCADE,
	csrf_token TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL DEFAULT 0,
	expires_at INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX agent_sessions_agent ON agent_sessions (agent);
CREATE INDEX agent_sessions_expires ON agent_sessions (expires_at);
