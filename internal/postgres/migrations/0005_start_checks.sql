-- The checks of a verification's start, made by the server so that a start
-- is one implicit transaction sent in one round trip (as ivr_versioned made
-- the versioned updates): its advisory locks are then released by the
-- server's commit, never held while the client reads the answers and
-- sends COMMIT. A start that stalls in its instance (a GC pause, a
-- starved CPU, a slow network) so no longer holds up the starts of every
-- instance that share a lock with it, the global limit's above all.
--
-- ivr_in_flight(busy) fails the statement with SQLSTATE IV423 when the
-- call has a verification in flight (store.ErrInFlight).
CREATE FUNCTION ivr_in_flight(busy boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	IF busy THEN
		RAISE EXCEPTION 'the call has a verification in flight' USING ERRCODE = 'IV423';
	END IF;
	RETURN false;
END
$$;

-- ivr_limit(n, max, override, at) is store.Limit.Check for the limit at
-- position "at" of the start's limits, which counted n verifications in
-- its window: false when the limit has room or is off, true when it is
-- full and overridden; a full limit that is not overridden fails the
-- statement with SQLSTATE IV429 and the position as the error's DETAIL
-- (a *store.LimitError).
CREATE FUNCTION ivr_limit(n bigint, max integer, override boolean, at integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	IF max <= 0 OR n < max THEN
		RETURN false;
	ELSIF override THEN
		RETURN true;
	END IF;
	RAISE EXCEPTION 'the limit is full' USING ERRCODE = 'IV429', DETAIL = at::text;
END
$$;
