-- Standing up to abuse.
--
-- A national identity number never reaches the database in clear: the IVR
-- seals it before storing it. The column is renamed to say so, and numbers
-- stored in clear by earlier versions are wiped (secure_delete zeroes their
-- pages); a verification in flight across this upgrade fails and the caller
-- is offered a retry.
ALTER TABLE verifications RENAME COLUMN national_id TO sealed_id;
UPDATE verifications SET sealed_id = '' WHERE sealed_id <> '';

-- The caller column is now the rate-limit key the IVR sets (the caller id,
-- or 'withheld' for every caller id that cannot tell callers apart). Rows of
-- earlier versions that hold a word instead of a number join that bucket.
UPDATE verifications SET caller = 'withheld'
	WHERE caller <> '' AND caller NOT GLOB '*[0-9]*';

-- The per-agent and global limits read these.
CREATE INDEX verifications_initiator ON verifications (initiator, created_at);
CREATE INDEX verifications_created ON verifications (created_at);

-- Failed agent logins per throttling key (agent name, client address, both).
CREATE TABLE login_failures (
	key     TEXT    NOT NULL PRIMARY KEY,
	count   INTEGER NOT NULL DEFAULT 0,
	last_at INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX login_failures_last ON login_failures (last_at);
