package escrow

import "time"

// EscrowsTx is the part of a Tx that keeps escrows and the index of their
// timers, which ProcessDue reads. Escrows is for Check, escrowctl and
// snapshots.
type EscrowsTx interface {
	// Escrow returns the escrow with this ID, or ErrNotFound.
	Escrow(id string) (Escrow, error)
	// PutEscrow creates or replaces the escrow e.ID, and files it in the due
	// index under e.NextDue(): the earlier of e.DueAt and e.RatingDueAt that
	// is not zero; it removes it from that index when both are zero.
	PutEscrow(e Escrow) error
	// DueEscrows returns the IDs of at most limit escrows whose NextDue is
	// not after t, earliest first (ties by ID). None due: an empty slice. It must
	// use an index, not read every escrow. An adapter may order times
	// only within the range of time.Time.UnixNano (the years 1678 to
	// 2262), as memstore and filestore do; the ledger keeps deadlines in
	// it (see MaxTimer).
	DueEscrows(t time.Time, limit int) ([]string, error)
	// PartyEscrows returns at most q.Limit escrows in which q.Party is
	// the buyer, the seller or the arbiter, as q.Role says, newest first:
	// by CreatedAt descending, ties by ID descending. See PartyQuery. None:
	// an empty slice. It must use an index of escrows by party, not read
	// every escrow. An adapter may order times only within the range of
	// time.Time.UnixNano (the years 1678 to 2262), as memstore and
	// filestore do: it may take every time before that range, a CreatedAt
	// or q.After's, for one time before all of it, and every time after
	// it for one time after all of it, escrows at such a time then coming
	// by ID. The ledger stamps CreatedAt with its clock, so a clock that
	// reads within those years never meets the limit.
	PartyEscrows(q PartyQuery) ([]Escrow, error)
	// Escrows calls fn for every escrow in ascending ID order, stopping at the
	// first error fn returns, which it returns.
	Escrows(fn func(Escrow) error) error
}

// PartyQuery selects the escrows PartyEscrows returns.
type PartyQuery struct {
	Party string // the empty party takes no part in any escrow
	// Role holds the parts Party may take: one or more of Buyer, Seller
	// and Arbiter joined with |. An escrow in which Party takes several of
	// them comes once.
	Role Role
	// States, if any, are the only states to return.
	States []State
	// After, if not zero, is where the previous page ended: only escrows
	// after it in the order above come.
	After EscrowPos
	Limit int
}

// EscrowPos is an escrow's place in the order of PartyEscrows.
type EscrowPos struct {
	CreatedAt time.Time
	ID        string
}

// EscrowClaimer is an optional capability of a Tx: claiming an escrow for
// the transaction, so that transactions in several processes that run
// ProcessDue at once split the due escrows between them instead of each
// working on all of them. ProcessDue calls ClaimEscrow first in the
// transaction that fires an escrow's timer (or closes its rating window)
// when the Tx has it, and leaves the escrow alone for that run when the
// claim fails. A store whose writers cannot run side by side (memstore,
// filestore) has no use for it.
//
// A claim decides only who works on an escrow, never whether its timer
// fires: the claiming transaction reads the escrow again after the claim
// and fires only what is still due, and the store's isolation keeps that
// exactly-once with or without claims. So a claim that fails wrongly
// delays an escrow to a later ProcessDue, and one that succeeds wrongly
// costs a transaction that the store aborts or that finds nothing due.
type EscrowClaimer interface {
	// ClaimEscrow locks escrow id for this transaction, until it commits
	// or rolls back, unless another running transaction holds it, and
	// reports whether it did. It does not wait: false means another
	// transaction is working on the escrow, and this one should leave it
	// (a ProcessDue after that one rolled back finds it still due). A
	// transaction that holds the claim already gets true again. An escrow
	// that does not exist is ErrNotFound; in a View, ClaimEscrow fails
	// with ErrReadOnly. It writes nothing.
	ClaimEscrow(id string) (bool, error)
}
