-- Several pollers on one store: a verification being polled is leased to
-- one of them (store.ClaimDue) until the poll's result is stored or the
-- lease runs out.
ALTER TABLE verifications ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE verifications ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
CREATE INDEX verifications_leased ON verifications (lease_until)
	WHERE lease_until > 0 AND status IN ('starting', 'pending');

-- A session's last use is kept with it, so that every instance applies
-- the same idle timeout.
ALTER TABLE agent_sessions ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
UPDATE agent_sessions SET last_used_at = created_at;
