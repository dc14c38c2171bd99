-- Journal entries and events are numbered when they are published, after
-- their transaction commits, instead of by the transaction itself: see
-- "Numbering" in the package documentation. A row keeps an id of its own,
-- from a sequence, and the id of the transaction that wrote it (xid); seq
-- stays NULL until pgstore_publish numbers it. Rows already numbered keep
-- their numbers, and their ids are their numbers.

ALTER TABLE postings DROP CONSTRAINT postings_seq_fkey;

ALTER TABLE entries ADD COLUMN id bigint, ADD COLUMN xid xid8;
UPDATE entries SET id = seq;
CREATE SEQUENCE entry_ids OWNED BY entries.id;
SELECT setval('entry_ids', coalesce((SELECT max(id) FROM entries), 0) + 1, false);
ALTER TABLE entries
	ALTER COLUMN id SET DEFAULT nextval('entry_ids'),
	ALTER COLUMN id SET NOT NULL,
	DROP CONSTRAINT entries_pkey,
	ADD PRIMARY KEY (id),
	ALTER COLUMN seq DROP NOT NULL;
CREATE UNIQUE INDEX entries_seq ON entries (seq) WHERE seq IS NOT NULL;
CREATE INDEX entries_unpublished ON entries (xid, id) WHERE seq IS NULL;

-- A posting names its entry by id, and carries the entry's seq once it
-- has one, so that an account's journal reads in seq order from one index.
ALTER TABLE postings ADD COLUMN entry bigint;
UPDATE postings SET entry = seq;
ALTER TABLE postings
	ALTER COLUMN entry SET NOT NULL,
	DROP CONSTRAINT postings_pkey,
	ADD PRIMARY KEY (entry, idx),
	ADD FOREIGN KEY (entry) REFERENCES entries (id),
	ALTER COLUMN seq DROP NOT NULL;

ALTER TABLE events ADD COLUMN id bigint, ADD COLUMN xid xid8;
UPDATE events SET id = seq;
CREATE SEQUENCE event_ids OWNED BY events.id;
SELECT setval('event_ids', coalesce((SELECT max(id) FROM events), 0) + 1, false);
ALTER TABLE events
	ALTER COLUMN id SET DEFAULT nextval('event_ids'),
	ALTER COLUMN id SET NOT NULL,
	DROP CONSTRAINT events_pkey,
	ADD PRIMARY KEY (id),
	ALTER COLUMN seq DROP NOT NULL;
CREATE UNIQUE INDEX events_seq ON events (seq) WHERE seq IS NOT NULL;
CREATE INDEX events_unpublished ON events (xid, id) WHERE seq IS NULL;

-- pgstore_publish numbers what can be numbered for good: the rows of
-- transactions older than the oldest one still running. No transaction
-- below that horizon can commit a row any more, so the numbers given here
-- are never passed over by a row that commits later; they follow the order
-- of the transactions' ids, then the rows' ids. Publishers take turns
-- under an advisory lock, and each takes its snapshot after the lock, so
-- each numbers on from where the one before stopped. It runs at READ
-- COMMITTED, outside the writers' serializable transactions, whose
-- conflict checks it therefore never trips. It returns the horizon: a
-- transaction whose id is below it has had its rows numbered.
CREATE FUNCTION pgstore_publish() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	horizon xid8;
	base    bigint;
	n       bigint;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('pgstore-publish:' || current_schema()));
	SELECT pg_snapshot_xmin(pg_current_snapshot()) INTO horizon;

	SELECT coalesce(max(seq), 0) INTO base FROM events WHERE seq IS NOT NULL;
	UPDATE events e SET seq = base + o.n
	FROM (SELECT id, row_number() OVER (ORDER BY xid, id) AS n
		FROM events WHERE seq IS NULL AND xid < horizon) o
	WHERE e.id = o.id;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		PERFORM pg_notify('pgstore_events', current_schema()::text);
	END IF;

	SELECT coalesce(max(seq), 0) INTO base FROM entries WHERE seq IS NOT NULL;
	WITH o AS (
		SELECT id, base + row_number() OVER (ORDER BY xid, id) AS seq
		FROM entries WHERE seq IS NULL AND xid < horizon),
	numbered AS (
		UPDATE entries e SET seq = o.seq FROM o WHERE e.id = o.id)
	UPDATE postings p SET seq = o.seq FROM o WHERE p.entry = o.id;

	RETURN horizon::text::bigint;
END
$$;
