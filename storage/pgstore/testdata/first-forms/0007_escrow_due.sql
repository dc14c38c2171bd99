-- An escrow's next due time is indexed in a table of its own, escrow_due,
-- and no longer on escrows. Most calls change it, and while it was indexed
-- on escrows every such change wrote a new entry into each of the escrows'
-- indexes, its primary key among them. Under serializable isolation a
-- transaction that reads an escrow by its ID locks the page of the
-- primary key it read, so two calls on different escrows whose keys
-- shared a page aborted one another. With the due time out of the
-- indexes, an update of an escrow's row changes no indexed column and,
-- with room left on its page (the fillfactor), stays on the page (a HOT
-- update) and writes no index entry at all. escrows.next_due stays, kept
-- up to date, for an operator's queries; escrow_due is what the ledger's
-- due scan reads. escrow_due has a row for every escrow, next_due NULL
-- when none is due, so that a write never needs to find and delete one.

CREATE TABLE escrow_due (
	id          text COLLATE "C" PRIMARY KEY,
	next_due    timestamptz,
	next_due_ns smallint
);
INSERT INTO escrow_due (id, next_due, next_due_ns) SELECT id, next_due, next_due_ns FROM escrows;
CREATE INDEX escrow_due_at ON escrow_due (next_due, next_due_ns, id) WHERE next_due IS NOT NULL;
DROP INDEX escrows_due;
COMMENT ON TABLE escrow_due IS 'Each escrow''s next due time, indexed; the same as escrows.next_due';

-- Room on each page for an update to stay there. Rows already stored keep
-- their pages until they are updated.
ALTER TABLE escrows SET (fillfactor = 70);
ALTER TABLE balances SET (fillfactor = 50);
