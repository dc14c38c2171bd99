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
	// Escrows calls fn for every escrow in ascending ID order, stopping at the
	// first error fn returns, which it returns.
	Escrows(fn func(Escrow) error) error
}
