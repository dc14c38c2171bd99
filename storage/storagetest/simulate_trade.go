package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/escrowkit/escrow"
)

// The simulation's operations of the rest of the trade: partial shipment,
// extensions of the auto-confirm deadline, a return and refund, evidence in
// a dispute and a cart paid at once.

// simLong is text one byte longer than every note, reason, address and
// tracking number may be.
var simLong = strings.Repeat("x", 4001)

// refuseText makes a call that must fail on its text alone, before it
// reads the escrow.
func (s *sim) refuseText(kind, what string, call func() error) {
	s.op = kind + " with " + what
	s.refuse(kind, escrow.ErrInvalidArgument, call)
}

func (s *sim) shipPart(bad bool) {
	m := s.pickOnTime(simInState(escrow.AwaitingShipment))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		if m != nil && s.rng.IntN(3) == 0 {
			s.refuseText(kindShipPart, "a tracking number of 201 bytes", func() error {
				_, err := s.f.l.ShipPart(s.f.ctx, m.terms.ID, m.terms.Seller, simLong[:201])
				return err
			})
			return
		}
		s.badAction(kindShipPart, escrow.ActionShipPart)
		return
	}
	tracking := ""
	if s.rng.IntN(3) > 0 {
		tracking = "SFP" + strconv.Itoa(s.rng.IntN(1e6))
	}
	s.op = fmt.Sprintf("ship part %d of %s", m.shipments+1, m.terms.ID)
	fired, done := s.late(kindShipPart, escrow.ActionShipPart, m, m.terms.Seller)
	if done {
		return
	}
	e, err := s.f.l.ShipPart(s.f.ctx, m.terms.ID, m.terms.Seller, tracking)
	s.succeed(kindShipPart, err)
	m.shipments++
	s.compare(e, m)
	if got := e.Shipments[len(e.Shipments)-1]; got != (escrow.Shipment{Tracking: tracking, At: s.now()}) {
		s.fatalf("last shipment %+v, want %q now", got, tracking)
	}
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowShippedPart, m, m.terms.Seller, 0, 0).noting(tracking))...)
}

// extend puts back the auto-confirm deadline: the buyer once, by up to
// the buyer's allowance; the seller any number of times, up to the
// seller's limit in all. Past them, it must be refused.
func (s *sim) extend(bad bool) {
	m := s.pick(simInState(escrow.AwaitingConfirmation))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	extend := func(actor string, by time.Duration) func() error {
		return func() error { _, err := s.f.l.Extend(s.f.ctx, m.terms.ID, actor, by); return err }
	}
	if bad {
		if m == nil {
			s.badAction(kindExtend, escrow.ActionExtend)
			return
		}
		// Past the allowance the call is refused; but a run-out deadline
		// fires first, and the escrow it completes may not be extended.
		want := escrow.ErrInvalidArgument
		if s.expired(m) {
			want = escrow.ErrInvalidTransition
		}
		switch s.rng.IntN(4) {
		case 0:
			if m.extended.Buyer != 0 {
				s.op = fmt.Sprintf("extend %s by the buyer again", m.terms.ID)
				s.refuse(kindExtend, want, extend(m.terms.Buyer, time.Minute))
				return
			}
			by := m.timers.BuyerExtension + time.Minute
			s.op = fmt.Sprintf("extend %s by the buyer by %s, more than %s", m.terms.ID, by, m.timers.BuyerExtension)
			s.refuse(kindExtend, want, extend(m.terms.Buyer, by))
		case 1:
			by := m.timers.SellerExtensionLimit - m.extended.Seller + time.Minute
			s.op = fmt.Sprintf("extend %s by the seller by %s, past the limit", m.terms.ID, by)
			s.refuse(kindExtend, want, extend(m.terms.Seller, by))
		case 2:
			s.op = "extend " + m.terms.ID + " by a negative time"
			s.refuse(kindExtend, escrow.ErrInvalidArgument, extend(m.terms.Seller, -time.Minute))
		default:
			s.badAction(kindExtend, escrow.ActionExtend)
		}
		return
	}
	// The buyer, if not yet extended; else the seller, if some of the
	// limit is left.
	var actors []string
	if m.extended.Buyer == 0 {
		actors = append(actors, m.terms.Buyer)
	}
	left := m.timers.SellerExtensionLimit - m.extended.Seller
	if left >= time.Minute {
		actors = append(actors, m.terms.Seller)
	}
	if len(actors) == 0 {
		s.skipped = true
		return
	}
	actor := actors[s.rng.IntN(len(actors))]
	most := m.timers.BuyerExtension
	if actor == m.terms.Seller {
		most = left
	}
	var by time.Duration // zero: the buyer's allowance
	if s.rng.IntN(3) > 0 || actor == m.terms.Seller && m.timers.BuyerExtension > left {
		by = time.Duration(1+s.rng.Int64N(int64(most/time.Minute))) * time.Minute
	}
	s.op = fmt.Sprintf("extend %s by %s by %s", m.terms.ID, by, actor)
	if s.expired(m) {
		s.op += ", whose deadline ran out"
		s.refuse(kindExtend, escrow.ErrInvalidTransition, extend(actor, by))
		return
	}
	e, err := s.f.l.Extend(s.f.ctx, m.terms.ID, actor, by)
	s.succeed(kindExtend, err)
	if by == 0 {
		by = m.timers.BuyerExtension
	}
	if actor == m.terms.Buyer {
		m.extended.Buyer = by
	} else {
		m.extended.Seller += by
	}
	m.dueAt = m.dueAt.Add(by)
	s.compare(e, m)
	s.expectEvents(simEscrowEvent(escrow.EscrowExtended, m, actor, 0, 0).
		noting("by " + by.String() + ", to " + m.dueAt.UTC().Format(time.RFC3339Nano)))
}

func (s *sim) requestReturn(bad bool) {
	s.request(bad, simRequest{kind: kindRequestReturn, action: escrow.ActionRequestReturn, noun: "return",
		from: []escrow.State{escrow.AwaitingConfirmation}, to: escrow.ReturnRequested, event: escrow.EscrowReturnRequested,
		longReason: true,
		call: func(m *simEscrow, amount int64, reason string) (escrow.Escrow, error) {
			return s.f.l.RequestReturn(s.f.ctx, m.terms.ID, m.terms.Buyer, fen(amount), reason)
		}})
}

func (s *sim) agreeReturn(bad bool) {
	m := s.pickOnTime(simInState(escrow.ReturnRequested))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		if m != nil && s.rng.IntN(3) == 0 {
			s.refuseText(kindAgreeReturn, "an address of 1,001 bytes", func() error {
				_, err := s.f.l.AgreeReturn(s.f.ctx, m.terms.ID, m.terms.Seller, simLong[:1001])
				return err
			})
			return
		}
		s.badAction(kindAgreeReturn, escrow.ActionAgreeReturn)
		return
	}
	address := ""
	if s.rng.IntN(3) > 0 {
		address = "Unit " + strconv.Itoa(1+s.rng.IntN(99)) + "\n1 Return Road"
	}
	s.op = "agree to the return of " + m.terms.ID
	fired, done := s.late(kindAgreeReturn, escrow.ActionAgreeReturn, m, m.terms.Seller)
	if done {
		return
	}
	e, err := s.f.l.AgreeReturn(s.f.ctx, m.terms.ID, m.terms.Seller, address)
	s.succeed(kindAgreeReturn, err)
	m.ret = escrow.Return{Address: address, AgreedAt: s.now()}
	m.enter(escrow.AwaitingReturn, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowReturnAgreed, m, m.terms.Seller, 0, 0).noting(address))...)
}

func (s *sim) shipReturn(bad bool) {
	m := s.pickOnTime(simInState(escrow.AwaitingReturn))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		if m != nil && s.rng.IntN(3) == 0 {
			s.refuseText(kindShipReturn, "a tracking number on two lines", func() error {
				_, err := s.f.l.ShipReturn(s.f.ctx, m.terms.ID, m.terms.Buyer, "RT\n1")
				return err
			})
			return
		}
		s.badAction(kindShipReturn, escrow.ActionShipReturn)
		return
	}
	tracking := ""
	if s.rng.IntN(3) > 0 {
		tracking = "RT" + strconv.Itoa(s.rng.IntN(1e6))
	}
	s.op = "ship back " + m.terms.ID
	fired, done := s.late(kindShipReturn, escrow.ActionShipReturn, m, m.terms.Buyer)
	if done {
		return
	}
	e, err := s.f.l.ShipReturn(s.f.ctx, m.terms.ID, m.terms.Buyer, tracking)
	s.succeed(kindShipReturn, err)
	m.ret.Tracking, m.ret.ShippedAt = tracking, s.now()
	m.enter(escrow.ReturnShipped, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowReturnShipped, m, m.terms.Buyer, 0, 0).noting(tracking))...)
}

// confirmReturn refunds what the return asked for: all that is held, which
// ends the escrow, or part, which resumes it.
func (s *sim) confirmReturn(bad bool) {
	m := s.pickOnTime(simInState(escrow.ReturnShipped))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		s.badAction(kindConfirmReturn, escrow.ActionConfirmReturn)
		return
	}
	s.op = fmt.Sprintf("confirm the return of %s, refunding %d of the %d held", m.terms.ID, m.asked, m.held)
	fired, done := s.late(kindConfirmReturn, escrow.ActionConfirmReturn, m, m.terms.Seller)
	if done {
		return
	}
	e, err := s.f.l.ConfirmReturn(s.f.ctx, m.terms.ID, m.terms.Seller)
	s.succeed(kindConfirmReturn, err)
	amount := m.asked
	m.ret.ReceivedAt = s.now()
	s.refundModel(m, amount, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowRefunded, m, m.terms.Seller, amount, 0))...)
}

func (s *sim) refuseReturn(bad bool) {
	m := s.pickOnTime(simInState(escrow.ReturnShipped))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		if m != nil && s.rng.IntN(3) == 0 {
			s.refuseText(kindRefuseReturn, "a reason of 1,001 bytes", func() error {
				_, err := s.f.l.RefuseReturn(s.f.ctx, m.terms.ID, m.terms.Seller, simLong[:1001])
				return err
			})
			return
		}
		s.badAction(kindRefuseReturn, escrow.ActionRefuseReturn)
		return
	}
	s.op = "refuse the goods sent back for " + m.terms.ID
	fired, done := s.late(kindRefuseReturn, escrow.ActionRefuseReturn, m, m.terms.Seller)
	if done {
		return
	}
	e, err := s.f.l.RefuseReturn(s.f.ctx, m.terms.ID, m.terms.Seller, "an empty box")
	s.succeed(kindRefuseReturn, err)
	m.ret.RefuseReason, m.ret.RefusedAt = "an empty box", s.now()
	m.enter(escrow.ReturnRefused, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowReturnRefused, m, m.terms.Seller, 0, 0).noting("an empty box"))...)
}

func (s *sim) cancelReturn(bad bool) {
	m := s.pickOnTime(simInState(escrow.ReturnRequested, escrow.AwaitingReturn, escrow.ReturnRefused))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		s.badAction(kindCancelReturn, escrow.ActionCancelReturn)
		return
	}
	s.op = "cancel the return of " + m.terms.ID + " in " + m.state.String()
	fired, done := s.late(kindCancelReturn, escrow.ActionCancelReturn, m, m.terms.Buyer)
	if done {
		return
	}
	e, err := s.f.l.CancelReturn(s.f.ctx, m.terms.ID, m.terms.Buyer)
	s.succeed(kindCancelReturn, err)
	m.resumeTimer(s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowReturnCancelled, m, m.terms.Buyer, 0, 0))...)
}

func (s *sim) addEvidence(bad bool) {
	m := s.pickOnTime(simInState(escrow.Disputed))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		if m != nil {
			add := func(note, ref string) func() error {
				return func() error {
					_, err := s.f.l.AddEvidence(s.f.ctx, m.terms.ID, m.terms.Buyer, note, ref)
					return err
				}
			}
			switch s.rng.IntN(5) {
			case 0:
				s.refuseText(kindAddEvidence, "no note", add("", "photo-1"))
				return
			case 1:
				s.refuseText(kindAddEvidence, "a note of 4,001 bytes", add(simLong, ""))
				return
			case 2:
				s.refuseText(kindAddEvidence, "a reference of 1,001 bytes", add("a photo", simLong[:1001]))
				return
			}
		}
		s.badAction(kindAddEvidence, escrow.ActionAddEvidence)
		return
	}
	actor := s.rightActor(m, escrow.ActionAddEvidence)
	note := fmt.Sprintf("note %d by %s\nas seen", m.evidence+1, actor)
	ref := ""
	if s.rng.IntN(2) == 0 {
		ref = "files/" + m.terms.ID + "/" + strconv.Itoa(m.evidence+1) + ".jpg"
	}
	s.op = fmt.Sprintf("add evidence %d to %s by %s", m.evidence+1, m.terms.ID, actor)
	fired, done := s.late(kindAddEvidence, escrow.ActionAddEvidence, m, actor)
	if done {
		return
	}
	e, err := s.f.l.AddEvidence(s.f.ctx, m.terms.ID, actor, note, ref)
	s.succeed(kindAddEvidence, err)
	m.evidence++
	s.compare(e, m)
	role := escrow.Arbiter
	switch actor {
	case m.terms.Buyer:
		role = escrow.Buyer
	case m.terms.Seller:
		role = escrow.Seller
	}
	want := escrow.Evidence{By: role, Note: note, Ref: ref, At: s.now()}
	if got := e.Evidence[len(e.Evidence)-1]; got != want {
		s.fatalf("last evidence %+v, want %+v", got, want)
	}
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowEvidenceAdded, m, actor, 0, 0).noting(note))...)
}

// payAll pays a cart of one buyer's unpaid escrows at once. A cart with
// one escrow that may not be paid, or whose total is more than the buyer
// has, must pay none.
func (s *sim) payAll(bad bool) {
	payable := func(o *simEscrow) bool { return o.state == escrow.AwaitingPayment && !s.expired(o) }
	m := s.pick(payable)
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if m == nil {
		s.refuseCart([]string{"missing"}, "missing", escrow.ErrNotFound, s.users[0])
		return
	}
	buyer := m.terms.Buyer
	var cart []*simEscrow
	for _, o := range s.active {
		if payable(o) && o.terms.Buyer == buyer {
			cart = append(cart, o)
		}
	}
	s.rng.Shuffle(len(cart), func(i, j int) { cart[i], cart[j] = cart[j], cart[i] })
	cart = cart[:1+s.rng.IntN(min(len(cart), 4))]
	ids := make([]string, len(cart))
	var total int64
	for i, c := range cart {
		ids[i] = c.terms.ID
		total += c.terms.Price.Units()
	}
	if bad {
		s.badCart(buyer, ids)
		return
	}
	s.op = fmt.Sprintf("pay the cart %v: %s with %d available pays %d", ids, buyer, s.avail[buyer], total)
	if s.avail[buyer] < total {
		s.refuse(kindPayAll, escrow.ErrInsufficientFunds, func() error {
			_, err := s.f.l.PayAll(s.f.ctx, buyer, ids)
			var ie *escrow.InsufficientFundsError
			if errors.As(err, &ie) && (ie.Account != buyer || ie.Needed.Units() != total || ie.Available.Units() != s.avail[buyer]) {
				s.fatalf("%+v, want %s needing %d with %d", *ie, buyer, total, s.avail[buyer])
			}
			return err
		})
		return
	}
	paid, err := s.f.l.PayAll(s.f.ctx, buyer, ids)
	s.succeed(kindPayAll, err)
	if len(paid) != len(cart) {
		s.fatalf("PayAll returned %d escrows for a cart of %d", len(paid), len(cart))
	}
	now := s.now()
	var want []simEvent
	for i, c := range cart {
		price := c.terms.Price.Units()
		s.avail[buyer] -= price
		s.held[buyer] += price
		c.held = price
		c.cart, c.cartSize = ids[0], len(ids)
		c.enter(escrow.AwaitingShipment, now)
		s.compare(paid[i], c)
		want = append(want, simEscrowEvent(escrow.EscrowPaid, c, buyer, price, 0))
	}
	s.expectEvents(want...)
}

// badCart makes a cart of ids, which buyer may pay, that must be refused:
// with one escrow more that may not be paid, the same escrow twice, or
// nothing in it.
func (s *sim) badCart(buyer string, ids []string) {
	at := s.rng.IntN(len(ids) + 1)
	with := func(id string) []string { return slices.Insert(slices.Clone(ids), at, id) }
	switch s.rng.IntN(5) {
	case 0:
		if o := s.pick(func(o *simEscrow) bool { return o.state == escrow.AwaitingPayment && o.terms.Buyer != buyer }); o != nil {
			s.refuseCart(with(o.terms.ID), o.terms.ID, escrow.ErrNotParty, buyer)
			return
		}
		fallthrough
	case 1:
		if o := s.pick(func(o *simEscrow) bool { return o.state != escrow.AwaitingPayment && o.terms.Buyer == buyer }); o != nil {
			s.refuseCart(with(o.terms.ID), o.terms.ID, escrow.ErrInvalidTransition, buyer)
			return
		}
		fallthrough
	case 2:
		s.refuseCart(with("missing"), "missing", escrow.ErrNotFound, buyer)
	case 3:
		s.op = fmt.Sprintf("pay the cart %v with %s twice", ids, ids[0])
		s.refuse(kindPayAll, escrow.ErrInvalidArgument, func() error {
			_, err := s.f.l.PayAll(s.f.ctx, buyer, with(ids[0]))
			return err
		})
	default:
		s.op = "pay an empty cart"
		s.refuse(kindPayAll, escrow.ErrInvalidArgument, func() error {
			_, err := s.f.l.PayAll(s.f.ctx, buyer, nil)
			return err
		})
	}
}

// refuseCart pays the cart ids as buyer, which must be refused for the one
// escrow refused alone, for want.
func (s *sim) refuseCart(ids []string, refused string, want error, buyer string) {
	s.op = fmt.Sprintf("pay the cart %v by %s, with %s refused", ids, buyer, refused)
	s.refuse(kindPayAll, want, func() error {
		_, err := s.f.l.PayAll(s.f.ctx, buyer, ids)
		var ce *escrow.CartError
		if !errors.As(err, &ce) {
			s.fatalf("got %v (%T), want a *CartError", err, err)
		}
		if ce.Size != len(ids) || len(ce.Refused) != 1 || ce.Refused[0].Escrow != refused || !errors.Is(ce.Refused[0].Err, want) {
			s.fatalf("cart error %+v, want a cart of %d with %s refused for %v", *ce, len(ids), refused, want)
		}
		return err
	})
}
