-- The poller's queue in a narrow table of its own (F12 in BENCHMARKS.md).
-- Every poll claims a verification (its lease) and then stores the answer
-- (its next poll): two updates a poll. When the due time and the lease
-- were indexed columns of verifications, neither update could be HOT, so
-- each poll wrote a new version of the wide row into all eight of its
-- indexes. Now a verification in flight has one poll_queue row whose
-- due_at is when a poller may next claim it, the later of its next poll
-- and the end of its lease; the two updates a poll change due_at here (a
-- narrow row, two indexes) and, in verifications, only columns that no
-- index covers, which PostgreSQL updates in place on the page (HOT), so
-- verifications keeps room on each page for them.
--
-- The store keeps the queue in step with verifications in each write's
-- transaction: a verification that is starting or pending has a row, one
-- that is done has none.
CREATE TABLE poll_queue (
	id     text        NOT NULL PRIMARY KEY,
	due_at timestamptz NOT NULL
);
CREATE INDEX poll_queue_due ON poll_queue (due_at, id);
-- The verifications in flight, for the pollers' check that each has its
-- queue row (an instance of the version before this one starts them
-- without). Its column and condition change only when a verification
-- starts or ends, never in a poll.
CREATE INDEX verifications_in_flight ON verifications (id)
	WHERE status IN ('starting', 'pending');

INSERT INTO poll_queue (id, due_at)
	SELECT id, greatest(next_poll_at, lease_until) FROM verifications
	WHERE status IN ('starting', 'pending');

DROP INDEX verifications_due;
DROP INDEX verifications_leased;
ALTER TABLE verifications SET (fillfactor = 75);
