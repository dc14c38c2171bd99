package memstore

import (
	"maps"
	"slices"
	"time"

	"github.com/escrowkit/escrow"
)

// stored is how the escrows table keeps an escrow. An escrow.Escrow takes
// 960 bytes, and every trade the store has seen keeps one; most of them
// are parts that most trades never set (a refund request, a return, a
// dispute, milestones, a cart) or that every escrow of a ledger shares
// (its timers and fee terms). So the table keeps the fields every trade
// sets, the shared ones behind a pointer that escrows with the same
// values share, and the rare ones behind a pointer that is nil until one
// is set: 408 bytes a trade. A stored escrow and everything it
// points to is never changed once stored; a write stores a new one.
//
// A field added to escrow.Escrow goes in stored or in rare, and in pack
// and unpack; TestStoredRoundTrip fails until it does.
type stored struct {
	id, buyer, seller, arbiter, item, sku, tracking string

	price, held, released, fees, refunded escrow.Money

	metadata map[string]string
	shared   *shared
	rare     *rare

	state   escrow.State
	rated   escrow.Role
	filed   bool  // the escrow has a NextDue, and is in the due index
	due     int64 // if filed, nanos(NextDue), its key there
	version uint64

	createdAt, paidAt, shippedAt, endedAt, updatedAt time.Time
	dueAt, ratingDueAt                               time.Time
}

// shared holds the parts of an escrow that a ledger gives every escrow
// alike.
type shared struct {
	timers escrow.Timers
	fee    escrow.FeeTerms
}

// rare holds the parts of an escrow that most trades never set.
type rare struct {
	milestones    []escrow.Milestone
	nextMilestone int
	shipments     []escrow.Shipment
	extended      escrow.Extensions
	refund        escrow.RefundRequest
	ret           escrow.Return
	dispute       escrow.DisputeClaim
	evidence      []escrow.Evidence
	cart          string
	cartSize      int
	resume        escrow.State
	paused        time.Duration
	disputeLoser  escrow.Role
}

// pack returns e as the table keeps it, sharing last's shared part if it
// has the same values. It copies what e points to, so that the caller may
// go on changing e.
func pack(e *escrow.Escrow, last *shared) stored {
	s := stored{
		id: e.ID, buyer: e.Buyer, seller: e.Seller, arbiter: e.Arbiter, item: e.Item, sku: e.SKU,
		tracking: e.Tracking,
		price:    e.Price, held: e.Held, released: e.Released, fees: e.Fees, refunded: e.Refunded,
		metadata: maps.Clone(e.Metadata),
		state:    e.State, rated: e.Rated, version: e.Version,
		createdAt: e.CreatedAt, paidAt: e.PaidAt, shippedAt: e.ShippedAt, endedAt: e.EndedAt,
		updatedAt: e.UpdatedAt, dueAt: e.DueAt, ratingDueAt: e.RatingDueAt,
	}
	if next := e.NextDue(); !next.IsZero() {
		s.filed, s.due = true, nanos(next)
	}
	if last != nil && last.timers == e.Timers && last.fee == e.Fee {
		s.shared = last
	} else {
		s.shared = &shared{e.Timers, e.Fee}
	}
	r := rare{
		milestones: slices.Clone(e.Milestones), nextMilestone: e.NextMilestone,
		shipments: slices.Clone(e.Shipments), extended: e.Extended, refund: e.Refund, ret: e.Return,
		dispute: e.Dispute, evidence: slices.Clone(e.Evidence), cart: e.Cart, cartSize: e.CartSize,
		resume: e.Resume, paused: e.Paused, disputeLoser: e.DisputeLoser,
	}
	if !r.zero() {
		s.rare = new(rare)
		*s.rare = r
	}
	return s
}

func (r *rare) zero() bool {
	return r.milestones == nil && r.nextMilestone == 0 && r.shipments == nil &&
		r.extended == (escrow.Extensions{}) && r.refund == (escrow.RefundRequest{}) &&
		r.ret == (escrow.Return{}) && r.dispute == (escrow.DisputeClaim{}) && r.evidence == nil &&
		r.cart == "" && r.cartSize == 0 && r.resume == 0 && r.paused == 0 && r.disputeLoser == 0
}

// unpack returns the escrow s keeps, with copies of what it points to,
// for a caller who may change them.
func unpack(s *stored) escrow.Escrow {
	e := escrow.Escrow{
		Terms: escrow.Terms{ID: s.id, Buyer: s.buyer, Seller: s.seller, Arbiter: s.arbiter,
			Price: s.price, Item: s.item, SKU: s.sku, Timers: s.shared.timers,
			Metadata: maps.Clone(s.metadata)},
		Fee: s.shared.fee, State: s.state,
		Held: s.held, Released: s.released, Fees: s.fees, Refunded: s.refunded,
		Tracking: s.tracking, Rated: s.rated, Version: s.version,
		CreatedAt: s.createdAt, PaidAt: s.paidAt, ShippedAt: s.shippedAt, EndedAt: s.endedAt,
		UpdatedAt: s.updatedAt, DueAt: s.dueAt, RatingDueAt: s.ratingDueAt,
	}
	if r := s.rare; r != nil {
		e.Milestones, e.NextMilestone = slices.Clone(r.milestones), r.nextMilestone
		e.Shipments, e.Extended = slices.Clone(r.shipments), r.extended
		e.Refund, e.Return, e.Dispute, e.Evidence = r.refund, r.ret, r.dispute, slices.Clone(r.evidence)
		e.Cart, e.CartSize = r.cart, r.cartSize
		e.Resume, e.Paused, e.DisputeLoser = r.resume, r.paused, r.disputeLoser
	}
	return e
}

// partyKeys returns the keys of s in the party index; an escrow with no
// arbiter has no key under the empty party.
func (s *stored) partyKeys() [3]partyKey {
	at := nanos(s.createdAt)
	return [3]partyKey{{s.buyer, at, s.id, escrow.Buyer}, {s.seller, at, s.id, escrow.Seller},
		{s.arbiter, at, s.id, escrow.Arbiter}}
}

// cold reports whether the escrow s keeps is Cold.
func (s *stored) cold() bool {
	e := escrow.Escrow{State: s.state}
	return Cold(&e)
}
