-- The marks of the repeat-item rule: for one ratee, rater and item, the
-- latest counted rating (its escrow and when it was given). The ratings'
-- doc column also holds, from this release on, a rating's withdrawal and
-- voiding, and the escrows' doc column an escrow's SKU; they need no change
-- for them.
CREATE TABLE item_marks (
	ratee  text COLLATE "C" NOT NULL,
	rater  text COLLATE "C" NOT NULL,
	item   text COLLATE "C" NOT NULL,
	escrow text COLLATE "C" NOT NULL,
	at     timestamptz NOT NULL,
	at_ns  smallint NOT NULL,
	PRIMARY KEY (ratee, rater, item)
);
