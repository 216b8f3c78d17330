-- CIBA ping mode: the hash of a request's client_notification_token, and
-- when its one notification was accepted.
ALTER TABLE verifications ADD COLUMN notify_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE verifications ADD COLUMN notified_at INTEGER NOT NULL DEFAULT 0;
