-- ivr_versioned is the answer of a versioned update (qUpdateCall,
-- qUpdateVerification): true when it updated the row; otherwise it fails
-- the statement, and with it the transaction, with SQLSTATE IV409 when the
-- row is there at another version (store.ErrConflict) or IV404 when it is
-- not (store.ErrNotFound). A conflict that fails in the server lets a
-- write be one implicit transaction, sent in one round trip with no BEGIN
-- or COMMIT: nothing the client checks afterwards has to undo it.
CREATE FUNCTION ivr_versioned(updated boolean, present boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	IF updated THEN
		RETURN true;
	ELSIF present THEN
		RAISE EXCEPTION 'the row was changed meanwhile' USING ERRCODE = 'IV409';
	END IF;
	RAISE EXCEPTION 'no such row' USING ERRCODE = 'IV404';
END
$$;
