-- A day's counted ratings also total their detail scores, so that a
-- party's detail averages cover a trailing window rather than all time.
-- Existing days hold zeros: the ledger works them out from the ratings
-- when it next writes the party's aggregate, whose doc says so (its
-- detail_days is missing until then). The aggregates' doc column takes
-- the windowed sums with no change.
ALTER TABLE day_counts
	ADD COLUMN IF NOT EXISTS described_sum       integer NOT NULL DEFAULT 0,
	ADD COLUMN IF NOT EXISTS described_count     integer NOT NULL DEFAULT 0,
	ADD COLUMN IF NOT EXISTS communication_sum   integer NOT NULL DEFAULT 0,
	ADD COLUMN IF NOT EXISTS communication_count integer NOT NULL DEFAULT 0,
	ADD COLUMN IF NOT EXISTS shipping_sum        integer NOT NULL DEFAULT 0,
	ADD COLUMN IF NOT EXISTS shipping_count      integer NOT NULL DEFAULT 0;

-- A day also counts, under the UniqueRaters policy, the raters whose latest
-- counted positive (negative) rating in the window fell on it; rater_days
-- keeps the days of each rater's counted ratings of a ratee in the window.
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
