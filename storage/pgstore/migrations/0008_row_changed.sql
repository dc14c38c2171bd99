-- pgstore_row_changed fails the statement that calls it, with SQLSTATE
-- PGS02. A transaction that answers a read from the store's cache of rows
-- sends in its place a statement that checks that the row is still the
-- version the store cached, and calls this when it is not, so that
-- nothing after it runs, COMMIT included, and the store runs the
-- transaction again, reading the row. See "Rows kept" in the package
-- documentation.
CREATE OR REPLACE FUNCTION pgstore_row_changed() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'pgstore: a row the store kept has changed' USING ERRCODE = 'PGS02';
END
$$;
