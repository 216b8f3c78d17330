-- Rate limits against push-bombing (ivr counts the verifications started
-- recently per national-ID hash and per caller id), and a row for the
-- readiness probe to write.

-- The caller id (the call's From) a verification was started for, copied
-- from calls when the verification is stored, so that the per-caller count
-- reads one index. PurgeEnded deletes it with the call.
ALTER TABLE verifications ADD COLUMN caller TEXT NOT NULL DEFAULT '';
UPDATE verifications SET caller = coalesce((SELECT from_number FROM calls WHERE calls.sid = verifications.call_sid), '');

CREATE INDEX verifications_id_hash ON verifications (id_hash, created_at);
CREATE INDEX verifications_caller ON verifications (caller, created_at) WHERE caller <> '';

-- Ping writes this one row, so that a file that cannot be written (locked by
-- another process, read-only, disk full) fails readiness, not only the next
-- call.
CREATE TABLE write_probe (
	id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	at INTEGER NOT NULL DEFAULT 0
) STRICT;
