-- Why a call is not verified (store.Reason) and when the caller reached the
-- agents' queue, for the dashboard's row reason and waiting timer.
ALTER TABLE calls ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN handed_off_at INTEGER NOT NULL DEFAULT 0;
