package escrow

import (
	"context"
	"time"
)

// An EventType names what happened.
type EventType string

// Event types. A mutating call that changes the ledger appends the event
// of its change, in the same transaction: one, except that PayAll appends
// one for each escrow it pays, and a call that finds a deadline passed
// appends the timer's event (ByTimer) before its own, since the timer
// fires first (see the package documentation). ProcessDue appends one per
// timer it fires and per default rating it gives. A replayed call, an
// Open of the same terms again and a call that fails append none.
const (
	AccountOpened         EventType = "AccountOpened"
	Deposited             EventType = "Deposited"
	Withdrawn             EventType = "Withdrawn"
	EscrowOpened          EventType = "EscrowOpened"
	EscrowPaid            EventType = "EscrowPaid"
	EscrowShipped         EventType = "EscrowShipped"
	EscrowReleased        EventType = "EscrowReleased"        // money to the seller: Confirm, ConfirmMilestone or auto-confirm
	EscrowRefunded        EventType = "EscrowRefunded"        // money back to the buyer: Refund, AgreeRefund or a timer
	EscrowRefundRequested EventType = "EscrowRefundRequested" // the buyer asked for money back
	EscrowRefundRefused   EventType = "EscrowRefundRefused"   // the seller said no
	EscrowDisputed        EventType = "EscrowDisputed"        // a party called the arbiter
	EscrowResolved        EventType = "EscrowResolved"        // the arbiter split the money
	EscrowClosed          EventType = "EscrowClosed"          // cancelled or expired before payment
	RatingGiven           EventType = "RatingGiven"           // a party rated the other; ByTimer for a default rating
	RatingRevised         EventType = "RatingRevised"         // a neutral or negative was raised
	RatingReplied         EventType = "RatingReplied"         // the rated party answered
	RatingWithdrawn       EventType = "RatingWithdrawn"       // the rater withdrew a neutral or negative
	RatingVoided          EventType = "RatingVoided"          // an operator voided a rating; Actor and Note say who and why

	EscrowShippedPart     EventType = "EscrowShippedPart"     // the seller shipped part of the order (ShipPart)
	EscrowExtended        EventType = "EscrowExtended"        // the auto-confirm deadline was put back (Extend)
	EscrowReturnRequested EventType = "EscrowReturnRequested" // the buyer asked to send the goods back for a refund
	EscrowReturnAgreed    EventType = "EscrowReturnAgreed"    // the seller agreed to the return, or its timer did
	EscrowReturnShipped   EventType = "EscrowReturnShipped"   // the buyer shipped the goods back
	EscrowReturnRefused   EventType = "EscrowReturnRefused"   // the seller refused the returned goods
	EscrowReturnCancelled EventType = "EscrowReturnCancelled" // the return ended without a refund: withdrawn or lapsed
	EscrowEvidenceAdded   EventType = "EscrowEvidenceAdded"   // a party or the arbiter added to a dispute
	EscrowEscalated       EventType = "EscrowEscalated"       // the arbiter's deadline passed with the dispute open
)

// An Event records one change, for the host to notify users from. Events
// form a transactional outbox: an event exists if and only if its change
// was committed, and Seq numbers them 1, 2, 3, … in commit order, so a
// reader that remembers the last Seq it handled never misses one.
type Event struct {
	Seq     uint64    `json:"seq"`
	Type    EventType `json:"type"`
	At      time.Time `json:"at,omitzero"`
	Account string    `json:"account,omitempty"` // the account, for account events
	Escrow  string    `json:"escrow,omitempty"`  // the escrow, for escrow events
	// Buyer and Seller are the escrow's parties, on every escrow event,
	// so that a notifier knows whom to tell without reading the escrow.
	Buyer   string `json:"buyer,omitempty"`
	Seller  string `json:"seller,omitempty"`
	Actor   string `json:"actor,omitempty"` // who acted; empty when a timer fired
	ByTimer bool   `json:"by_timer"`        // the change was made by ProcessDue
	State   State  `json:"state,omitzero"`  // the escrow's state after the change
	// Amount is the money the event is about. EscrowPaid, EscrowReleased,
	// EscrowRefunded, Deposited and Withdrawn carry the money they
	// moved, and EscrowResolved all that was held, which the split
	// divided. EscrowOpened carries the price, and EscrowRefundRequested
	// and EscrowReturnRequested the amount asked for: no money moves
	// with them, only with the EscrowRefunded that makes the refund.
	// Other events carry none (the zero Money, null in JSON).
	Amount Money `json:"amount"`
	// Fee is the fee taken: on EscrowReleased from Amount, on
	// EscrowResolved from the seller's part of it, a zero amount of the
	// currency when the fee came to nothing. Other events carry none.
	Fee  Money  `json:"fee"`
	Note string `json:"note,omitempty"` // tracking number, reason, milestone name
	// Metadata is the escrow's Terms.Metadata, on every event of an escrow
	// that has some, so that a notifier need not read the escrow for it.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Events returns at most limit events with Seq greater than after, oldest
// first. Pass the Seq of the last event handled as after; an empty result
// means there is nothing new. after must be 0 or the Seq of an event: one
// past the newest event (a cursor kept while the store was restored from
// an older backup, say) is refused with ErrInvalidArgument, as
// SetConsumer refuses such a place, since reading from it would skip the
// events numbered up to it when they come. A store that lags the one the
// cursor came from (a pgstore reading a standby, handed a cursor read on
// the primary) refuses it too until it has caught up: a reader that may
// be handed to such a store retries after a moment, or reads the stream
// where it writes.
//
// A limit over 1,000 reads 1,000 events at most, so that one read holds a
// bounded number of events however many it asks for: read on from the
// last Seq for more, until a read returns none.
func (l *Ledger) Events(ctx context.Context, after uint64, limit int) ([]Event, error) {
	start := l.begin()
	if limit <= 0 {
		return nil, l.finish(start, "events", invalidArg("limit %d must be positive", limit))
	}
	limit = min(limit, maxEventsRead)
	var out []Event
	err := l.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = readEvents(tx, after, limit, true)
		return err
	})
	if err != nil {
		out = nil
	}
	return out, l.finish(start, "events", err)
}

// maxEventsRead is the most events one Events or WaitEvents returns,
// whatever its limit: as many as the HTTP API's reads allow.
const maxEventsRead = 1000

// readEvents reads at most limit events after after in tx. When there are
// none and check is set, it makes sure after is a place to read from (see
// checkPlace).
func readEvents(tx Tx, after uint64, limit int, check bool) ([]Event, error) {
	events, err := tx.Events(after, limit)
	if err != nil || len(events) > 0 || !check {
		return events, err
	}
	return events, checkPlace(tx, after, func() error {
		return invalidArg("events after %d: no event %d has been committed, and a reader placed after it would skip the events numbered up to it", after, after)
	})
}

// checkPlace returns nil if a reader of the event stream may be placed
// after seq, 0 or the Seq of an event, and refused's error if not.
func checkPlace(tx Tx, seq uint64, refused func() error) error {
	if seq == 0 {
		return nil
	}
	ev, err := tx.Events(seq-1, 1)
	if err != nil {
		return err
	}
	if len(ev) == 0 || ev[0].Seq != seq {
		return refused()
	}
	return nil
}
