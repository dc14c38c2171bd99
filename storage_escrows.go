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
	// use an index, not read every escrow.
	DueEscrows(t time.Time, limit int) ([]string, error)
	// PartyEscrows returns at most q.Limit escrows in which q.Party is
	// the buyer, the seller or the arbiter, as q.Role says, newest first:
	// by CreatedAt descending, ties by ID descending. See PartyQuery. None:
	// an empty slice. It must use an index of escrows by party, not read
	// every escrow.
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
