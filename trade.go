package escrow

import (
	"context"
	"slices"
	"time"
)

// A Shipment is one part of an order the seller shipped, with its
// tracking number.
type Shipment struct {
	Tracking string    `json:"tracking,omitempty"`
	At       time.Time `json:"at"`
}

// Extensions are how much each party has added to an escrow's
// auto-confirm deadline.
type Extensions struct {
	Buyer  time.Duration `json:"buyer,omitzero"`
	Seller time.Duration `json:"seller,omitzero"`
}

// An Evidence is one note added to a dispute: by whom, what it says, an
// optional reference to a file the host keeps (a photo, a courier's
// record) and when.
type Evidence struct {
	By   Role      `json:"by"`
	Note string    `json:"note"`
	Ref  string    `json:"ref,omitempty"`
	At   time.Time `json:"at"`
}

// Limits on what an escrow keeps of its shipments and evidence.
const (
	MaxShipments = 50  // parts one escrow may be shipped in with ShipPart
	MaxEvidence  = 100 // notes one dispute may hold
)

// ShipPart records that the seller shipped part of the order, with an
// optional tracking number (up to 200 bytes), kept in order in
// e.Shipments; at most MaxShipments parts. Only the seller, in
// AwaitingShipment, which the escrow stays in: its shipping timer runs
// on, and Ship records the last shipment, from which the auto-confirm
// deadline runs.
func (l *Ledger) ShipPart(ctx context.Context, id, actor, tracking string, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := checkText("tracking", tracking, 200, false); err != nil {
		return Escrow{}, l.finish(start, ActionShipPart.word(), err)
	}
	return l.act(ctx, start, ActionShipPart, id, actor, args{text: tracking}, opts)
}

func (c *change) shipPart() error {
	e := c.e
	if len(e.Shipments) >= MaxShipments {
		return invalidArg("escrow %q has been shipped in %d parts, the most there may be", e.ID, MaxShipments)
	}
	// Clipped, so that appending never writes into an array another copy
	// of the escrow (a store's) may share.
	e.Shipments = append(slices.Clip(e.Shipments), Shipment{Tracking: c.text, At: c.now})
	c.ev.Type, c.ev.Note = EscrowShippedPart, c.text
	return nil
}

// Extend puts back the auto-confirm deadline by by, giving the buyer more
// time to receive and check the goods; a zero by is Timers.BuyerExtension.
// The buyer may extend once, by at most Timers.BuyerExtension; the seller
// any number of times, by at most Timers.SellerExtensionLimit in all. Both
// in AwaitingConfirmation, and e.Extended keeps the sums. A deadline that
// has run out cannot be extended: if ProcessDue has not fired it yet, the
// call fires it first and is refused with ErrInvalidTransition.
func (l *Ledger) Extend(ctx context.Context, id, actor string, by time.Duration, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if by < 0 {
		return Escrow{}, l.finish(start, ActionExtend.word(), invalidArg("extension %s is negative", by))
	}
	return l.act(ctx, start, ActionExtend, id, actor, args{by: by}, opts)
}

func (c *change) extend() error {
	e, by := c.e, c.by
	if by == 0 {
		by = e.Timers.BuyerExtension
	}
	if e.RoleOf(c.ev.Actor) == Buyer {
		if e.Extended.Buyer != 0 {
			return invalidArg("the buyer has already extended escrow %q", e.ID)
		}
		if by > e.Timers.BuyerExtension {
			return invalidArg("extension %s is more than the buyer's %s", by, e.Timers.BuyerExtension)
		}
		e.Extended.Buyer = by
	} else {
		if left := e.Timers.SellerExtensionLimit - e.Extended.Seller; by > left {
			return invalidArg("extension %s is more than the %s the seller has left of %s", by, left, e.Timers.SellerExtensionLimit)
		}
		e.Extended.Seller += by
	}
	e.DueAt = e.DueAt.Add(by)
	c.ev.Type, c.ev.Note = EscrowExtended, "by "+by.String()+", to "+e.DueAt.UTC().Format(time.RFC3339Nano)
	return nil
}

// AddEvidence adds a note (1 to 4,000 bytes) to a dispute, with an
// optional reference (up to 1,000 bytes) to a file the host keeps, such as
// a photo's key in its own storage. The buyer, the seller or the arbiter,
// in Disputed; the notes are kept in order in e.Evidence, at most
// MaxEvidence of them, and each has its event in the escrow's history.
func (l *Ledger) AddEvidence(ctx context.Context, id, actor, note, ref string, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := checkText("note", note, 4000, true); err != nil {
		return Escrow{}, l.finish(start, ActionAddEvidence.word(), err)
	}
	if note == "" {
		return Escrow{}, l.finish(start, ActionAddEvidence.word(), invalidArg("evidence needs a note"))
	}
	if err := checkText("reference", ref, 1000, false); err != nil {
		return Escrow{}, l.finish(start, ActionAddEvidence.word(), err)
	}
	return l.act(ctx, start, ActionAddEvidence, id, actor, args{text: note, ref: ref}, opts)
}

func (c *change) addEvidence() error {
	e := c.e
	if len(e.Evidence) >= MaxEvidence {
		return invalidArg("escrow %q holds %d notes of evidence, the most there may be", e.ID, MaxEvidence)
	}
	e.Evidence = append(slices.Clip(e.Evidence), Evidence{By: e.RoleOf(c.ev.Actor), Note: c.text, Ref: c.ref, At: c.now})
	c.ev.Type, c.ev.Note = EscrowEvidenceAdded, c.text
	return nil
}

// escalate is the clock's: the arbiter's deadline passed with the dispute
// open. It records when, and its event tells the host, which may
// escalate; the dispute stays as it is.
func (c *change) escalate() error {
	c.e.Dispute.EscalatedAt = c.now
	c.e.DueAt = time.Time{}
	c.ev.Type = EscrowEscalated
	return nil
}
