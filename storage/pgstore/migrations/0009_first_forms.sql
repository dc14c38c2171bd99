-- Migrations 0004, 0005 and 0007 changed after their first release, and a
-- schema that applied one in its first form never ran what came later:
-- this brings such a schema to what the migrations make now, and changes
-- nothing in one that has it all.
--
-- 0004 came without the UniqueRaters policy's columns and table.
ALTER TABLE day_counts
	ADD COLUMN IF NOT EXISTS unique_positive integer NOT NULL DEFAULT 0,
	ADD COLUMN IF NOT EXISTS unique_negative integer NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS rater_days (
	ratee    text COLLATE "C" NOT NULL,
	role     smallint NOT NULL,
	rater    text COLLATE "C" NOT NULL,
	positive integer[],
	negative integer[],
	PRIMARY KEY (ratee, role, rater)
);

-- 0005 came with a foreign key from postings to entries, whose check made
-- every two writers conflict (see 0005).
ALTER TABLE postings DROP CONSTRAINT IF EXISTS postings_entry_fkey;

-- 0007 came without pgstore_stripe_full, which AddBalance calls (see 0007).
CREATE OR REPLACE FUNCTION pgstore_stripe_full() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'pgstore: a balance stripe cannot take the addition' USING ERRCODE = 'PGS01';
END
$$;
