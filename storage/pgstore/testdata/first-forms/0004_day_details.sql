-- A day's counted ratings also total their detail scores, so that a
-- party's detail averages cover a trailing window rather than all time.
-- Existing days hold zeros: the ledger works them out from the ratings
-- when it next writes the party's aggregate, whose doc says so (its
-- detail_days is missing until then). The aggregates' doc column takes
-- the windowed sums with no change.
ALTER TABLE day_counts
	ADD COLUMN described_sum       integer NOT NULL DEFAULT 0,
	ADD COLUMN described_count     integer NOT NULL DEFAULT 0,
	ADD COLUMN communication_sum   integer NOT NULL DEFAULT 0,
	ADD COLUMN communication_count integer NOT NULL DEFAULT 0,
	ADD COLUMN shipping_sum        integer NOT NULL DEFAULT 0,
	ADD COLUMN shipping_count      integer NOT NULL DEFAULT 0;
