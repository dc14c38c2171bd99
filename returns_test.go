package escrow_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

const day = 24 * time.Hour

// returnWorld is a fixture with a 100.00 CNY escrow "deal" shipped at
// start, so that its auto-confirm deadline is day 10.
func returnWorld(t *testing.T, timers escrow.Timers) *world {
	t.Helper()
	f := newFixture(t)
	f.funded(partyBuyer, partySeller)
	terms := dealTerms("deal", false)
	terms.Timers = timers
	setup(t, func() (escrow.Escrow, error) { return f.l.Open(f.ctx, terms) },
		func() (escrow.Escrow, error) { return f.l.Pay(f.ctx, "deal", partyBuyer) },
		func() (escrow.Escrow, error) { return f.l.Ship(f.ctx, "deal", partySeller, "SF1") })
	return f
}

// call makes one call that must succeed, at the clock's time.
func (w *world) call(what string, c func() (escrow.Escrow, error)) escrow.Escrow {
	w.t.Helper()
	e, err := c()
	w.must(what, err)
	return e
}

// refused makes a call that must fail with want and change nothing.
func (w *world) refused(what string, want error, c func() (escrow.Escrow, error)) {
	w.t.Helper()
	before := w.dump()
	e, err := c()
	if !errors.Is(err, want) {
		w.t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
	if diff := cmp.Diff(escrow.Escrow{}, e); diff != "" {
		w.t.Errorf("%s: a refused call returned an escrow:\n%s", what, diff)
	}
	w.unchanged(before, what)
}

func TestReturnAndRefund(t *testing.T) {
	t.Run("AllTheWay", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{})
		l, ctx := f.l, f.ctx
		f.clock.Set(start.Add(day))
		e := f.call("RequestReturn", func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, "deal", partyBuyer, cny("100.00"), "wrong size")
		})
		if e.State != escrow.ReturnRequested || e.Paused != 9*day || !e.DueAt.Equal(start.Add(6*day)) ||
			e.Resume != escrow.AwaitingConfirmation || e.Refund.Amount != cny("100.00") || e.Refund.Reason != "wrong size" {
			t.Fatalf("after the request: %s, paused %s, due %s, resume %s, refund %+v", e.State, e.Paused, e.DueAt.Sub(start), e.Resume, e.Refund)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowReturnRequested, After: day, Escrow: "deal", Actor: partyBuyer,
			State: escrow.ReturnRequested, Amount: "100.00 CNY", Fee: "0", Note: "wrong size"})
		f.clock.Set(start.Add(2 * day))
		e = f.call("AgreeReturn", func() (escrow.Escrow, error) { return l.AgreeReturn(ctx, "deal", partySeller, "1 Depot Road") })
		if e.State != escrow.AwaitingReturn || e.Return.Address != "1 Depot Road" || !e.Return.AgreedAt.Equal(start.Add(2*day)) ||
			!e.DueAt.Equal(start.Add(9*day)) {
			t.Fatalf("after agreeing: %s, return %+v, due %s", e.State, e.Return, e.DueAt.Sub(start))
		}
		f.clock.Set(start.Add(3 * day))
		e = f.call("ShipReturn", func() (escrow.Escrow, error) { return l.ShipReturn(ctx, "deal", partyBuyer, "RT1") })
		if e.State != escrow.ReturnShipped || e.Return.Tracking != "RT1" || !e.Return.ShippedAt.Equal(start.Add(3*day)) ||
			!e.DueAt.Equal(start.Add(13*day)) {
			t.Fatalf("after shipping back: %s, return %+v, due %s", e.State, e.Return, e.DueAt.Sub(start))
		}
		f.clock.Set(start.Add(4 * day))
		e = f.call("ConfirmReturn", func() (escrow.Escrow, error) { return l.ConfirmReturn(ctx, "deal", partySeller) })
		if diff := cmp.Diff(figures{State: escrow.Refunded, Refunded: 10000, Version: 7}, figuresOf(e)); diff != "" {
			t.Errorf("escrow (-want +got):\n%s", diff)
		}
		// An ended escrow has nothing to go back to.
		if !e.Return.ReceivedAt.Equal(start.Add(4*day)) || !e.DueAt.IsZero() || e.Paused != 0 || e.Resume != 0 {
			t.Errorf("received %s, due %s, paused %s, resume %s", e.Return.ReceivedAt, e.DueAt, e.Paused, e.Resume)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowRefunded, After: 4 * day, Escrow: "deal", Actor: partySeller,
			State: escrow.Refunded, Amount: "100.00 CNY", Fee: "0"})
		expectPurses(f, map[string]purse{partyBuyer: {100000, 0}, partySeller: {100000, 0}})
		f.check()
	})

	t.Run("PartReturnedResumes", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{})
		l, ctx := f.l, f.ctx
		f.clock.Set(start.Add(day))
		f.call("RequestReturn", func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, "deal", partyBuyer, cny("30.00"), "one of three is broken")
		})
		f.call("AgreeReturn", func() (escrow.Escrow, error) { return l.AgreeReturn(ctx, "deal", partySeller, "") })
		f.call("ShipReturn", func() (escrow.Escrow, error) { return l.ShipReturn(ctx, "deal", partyBuyer, "") })
		f.clock.Set(start.Add(5 * day))
		e := f.call("ConfirmReturn", func() (escrow.Escrow, error) { return l.ConfirmReturn(ctx, "deal", partySeller) })
		// The nine days of confirmation left at the request run again.
		if diff := cmp.Diff(figures{State: escrow.AwaitingConfirmation, Held: 7000, Refunded: 3000, Version: 7}, figuresOf(e)); diff != "" {
			t.Errorf("escrow (-want +got):\n%s", diff)
		}
		if !e.DueAt.Equal(start.Add(14*day)) || e.Resume != 0 || e.Paused != 0 {
			t.Errorf("due %s, resume %s, paused %s; want day 14 and nothing paused", e.DueAt.Sub(start), e.Resume, e.Paused)
		}
		e = expectDeadline(f, "deal", start.Add(14*day))
		if diff := cmp.Diff(figures{State: escrow.Completed, Held: 0, Released: 7000, Refunded: 3000, Fees: 42, Version: 8}, figuresOf(e)); diff != "" {
			t.Errorf("escrow (-want +got):\n%s", diff)
		}
		expectPurses(f, map[string]purse{partyBuyer: {93000, 0}, partySeller: {106958, 0}, escrow.FeeAccount: {42, 0}})
		f.check()
	})

	t.Run("RefusedGoodsDisputed", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{})
		l, ctx := f.l, f.ctx
		f.call("RequestReturn", func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, "deal", partyBuyer, cny("100.00"), "not as described")
		})
		f.call("AgreeReturn", func() (escrow.Escrow, error) { return l.AgreeReturn(ctx, "deal", partySeller, "") })
		f.call("ShipReturn", func() (escrow.Escrow, error) { return l.ShipReturn(ctx, "deal", partyBuyer, "RT2") })
		f.clock.Set(start.Add(day))
		e := f.call("RefuseReturn", func() (escrow.Escrow, error) {
			return l.RefuseReturn(ctx, "deal", partySeller, "a brick came back")
		})
		if e.State != escrow.ReturnRefused || e.Return.RefuseReason != "a brick came back" || !e.DueAt.Equal(start.Add(8*day)) {
			t.Fatalf("after refusing: %s, return %+v, due %s", e.State, e.Return, e.DueAt.Sub(start))
		}
		e = f.call("Dispute", func() (escrow.Escrow, error) { return l.Dispute(ctx, "deal", partyBuyer, "I sent the shoes") })
		// The auto-confirm timer paused at the request stays paused: no
		// timer runs in the dispute.
		if e.State != escrow.Disputed || !e.DueAt.IsZero() || e.Paused != 10*day {
			t.Fatalf("after the dispute: %s, due %s, paused %s", e.State, e.DueAt, e.Paused)
		}
		f.call("AddEvidence", func() (escrow.Escrow, error) {
			return l.AddEvidence(ctx, "deal", partyBuyer, "the courier weighed 1.2 kg", "uploads/receipt.png")
		})
		f.clock.Set(start.Add(2 * day))
		f.call("AddEvidence", func() (escrow.Escrow, error) {
			return l.AddEvidence(ctx, "deal", partySeller, "a brick weighs 1.2 kg too", "")
		})
		e = f.call("AddEvidence", func() (escrow.Escrow, error) {
			return l.AddEvidence(ctx, "deal", partyArbiter, "asked the courier for photos", "")
		})
		want := []escrow.Evidence{
			{By: escrow.Buyer, Note: "the courier weighed 1.2 kg", Ref: "uploads/receipt.png", At: start.Add(day)},
			{By: escrow.Seller, Note: "a brick weighs 1.2 kg too", At: start.Add(2 * day)},
			{By: escrow.Arbiter, Note: "asked the courier for photos", At: start.Add(2 * day)},
		}
		if diff := cmp.Diff(want, e.Evidence); diff != "" {
			t.Errorf("evidence (-want +got):\n%s", diff)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowEvidenceAdded, After: 2 * day, Escrow: "deal", Actor: partyArbiter,
			State: escrow.Disputed, Amount: "0", Fee: "0", Note: "asked the courier for photos"})
		e = f.call("Resolve", func() (escrow.Escrow, error) {
			return l.Resolve(ctx, "deal", partyArbiter, escrow.Split{Buyer: cny("100.00")})
		})
		if e.State != escrow.Resolved || len(e.Evidence) != 3 {
			t.Errorf("resolved: %s with %d notes", e.State, len(e.Evidence))
		}
		f.check()
	})

	t.Run("WithdrawnAndTurnedDown", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{})
		l, ctx := f.l, f.ctx
		f.clock.Set(start.Add(day))
		f.call("RequestReturn", func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, "deal", partyBuyer, cny("100.00"), "changed my mind")
		})
		f.clock.Set(start.Add(2 * day))
		e := f.call("CancelReturn", func() (escrow.Escrow, error) { return l.CancelReturn(ctx, "deal", partyBuyer) })
		if e.State != escrow.AwaitingConfirmation || !e.DueAt.Equal(start.Add(11*day)) || e.Held != cny("100.00") {
			t.Fatalf("after withdrawing: %s, due %s, held %s", e.State, e.DueAt.Sub(start), e.Held)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowReturnCancelled, After: 2 * day, Escrow: "deal", Actor: partyBuyer,
			State: escrow.AwaitingConfirmation, Amount: "0", Fee: "0"})
		f.call("RequestReturn", func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, "deal", partyBuyer, cny("100.00"), "changed it back")
		})
		f.clock.Set(start.Add(3 * day))
		e = f.call("RefuseRefund", func() (escrow.Escrow, error) {
			return l.RefuseRefund(ctx, "deal", partySeller, "made to measure")
		})
		if e.State != escrow.AwaitingConfirmation || !e.DueAt.Equal(start.Add(12*day)) ||
			e.Refund.RefuseReason != "made to measure" || !e.Refund.RefusedAt.Equal(start.Add(3*day)) {
			t.Fatalf("after the refusal: %s, due %s, refund %+v", e.State, e.DueAt.Sub(start), e.Refund)
		}
		f.check()
	})

	t.Run("BadCallsChangeNothing", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{})
		l, ctx := f.l, f.ctx
		f.refused("a return of more than is held", escrow.ErrInvalidAmount, func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, "deal", partyBuyer, cny("100.01"), "")
		})
		f.refused("a return in another currency", escrow.ErrCurrencyMismatch, func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, "deal", partyBuyer, escrow.MustParseMoney("10", escrow.JPY), "")
		})
		f.refused("a return asked by the seller", escrow.ErrNotParty, func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, "deal", partySeller, cny("1.00"), "")
		})
		f.refused("a reason too long", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, "deal", partyBuyer, cny("1.00"), strings.Repeat("x", 1001))
		})
		f.refused("agreeing to no return", escrow.ErrInvalidTransition, func() (escrow.Escrow, error) {
			return l.AgreeReturn(ctx, "deal", partySeller, "")
		})
		f.call("RequestReturn", func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, "deal", partyBuyer, cny("10.00"), "")
		})
		f.refused("an address with a control character", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
			return l.AgreeReturn(ctx, "deal", partySeller, "1 Depot\x00Road")
		})
		f.refused("the buyer agreeing", escrow.ErrNotParty, func() (escrow.Escrow, error) {
			return l.AgreeReturn(ctx, "deal", partyBuyer, "")
		})
		f.refused("shipping back before agreement", escrow.ErrInvalidTransition, func() (escrow.Escrow, error) {
			return l.ShipReturn(ctx, "deal", partyBuyer, "")
		})
		f.call("AgreeReturn", func() (escrow.Escrow, error) { return l.AgreeReturn(ctx, "deal", partySeller, "") })
		f.refused("a tracking number on two lines", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
			return l.ShipReturn(ctx, "deal", partyBuyer, "RT\n1")
		})
		f.refused("the seller confirming goods not sent", escrow.ErrInvalidTransition, func() (escrow.Escrow, error) {
			return l.ConfirmReturn(ctx, "deal", partySeller)
		})
		f.refused("a stranger cancelling", escrow.ErrNotParty, func() (escrow.Escrow, error) {
			return l.CancelReturn(ctx, "deal", partyArbiter)
		})
		f.refused("a confirmation during the return", escrow.ErrInvalidTransition, func() (escrow.Escrow, error) {
			return l.Confirm(ctx, "deal", partyBuyer)
		})
		f.refused("evidence outside a dispute", escrow.ErrInvalidTransition, func() (escrow.Escrow, error) {
			return l.AddEvidence(ctx, "deal", partyBuyer, "a note", "")
		})
		f.check()
	})
}

func TestReturnTimers(t *testing.T) {
	request := func(f *world, amount string) {
		f.t.Helper()
		f.call("RequestReturn", func() (escrow.Escrow, error) {
			return f.l.RequestReturn(f.ctx, "deal", partyBuyer, cny(amount), "too small")
		})
	}

	t.Run("UnansweredAgreedThenLapses", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{})
		f.clock.Set(start.Add(day))
		request(f, "40.00")
		// Five days for the seller to answer: then agreed, with no address.
		e := expectDeadline(f, "deal", start.Add(6*day))
		if e.State != escrow.AwaitingReturn || e.Return.Address != "" || !e.Return.AgreedAt.Equal(start.Add(6*day)) {
			t.Fatalf("after the answer deadline: %s, return %+v", e.State, e.Return)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowReturnAgreed, After: 6 * day, Escrow: "deal", ByTimer: true,
			State: escrow.AwaitingReturn, Amount: "0", Fee: "0"})
		// Seven days for the buyer to ship back: then the request lapses
		// and the nine days of confirmation left run again.
		e = expectDeadline(f, "deal", start.Add(13*day))
		if e.State != escrow.AwaitingConfirmation || e.Held != cny("100.00") || e.Resume != 0 || e.Paused != 0 {
			t.Fatalf("after the shipping deadline: %s holding %s, resume %s, paused %s", e.State, e.Held, e.Resume, e.Paused)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowReturnCancelled, After: 13 * day, Escrow: "deal", ByTimer: true,
			State: escrow.AwaitingConfirmation, Amount: "0", Fee: "0"})
		e = expectDeadline(f, "deal", start.Add(22*day))
		if e.State != escrow.Completed {
			t.Errorf("after the confirmation deadline: %s", e.State)
		}
		f.check()
	})

	t.Run("UnreceivedRefunded", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{})
		f.clock.Set(start.Add(day))
		request(f, "40.00")
		f.call("AgreeReturn", func() (escrow.Escrow, error) { return f.l.AgreeReturn(f.ctx, "deal", partySeller, "") })
		f.clock.Set(start.Add(2 * day))
		f.call("ShipReturn", func() (escrow.Escrow, error) { return f.l.ShipReturn(f.ctx, "deal", partyBuyer, "") })
		// Ten days for the seller to confirm the goods: then refunded as
		// asked, and the confirmation resumes.
		e := expectDeadline(f, "deal", start.Add(12*day))
		if diff := cmp.Diff(figures{State: escrow.AwaitingConfirmation, Held: 6000, Refunded: 4000, Version: 7}, figuresOf(e)); diff != "" {
			t.Errorf("escrow (-want +got):\n%s", diff)
		}
		if !e.DueAt.Equal(start.Add(21*day)) || !e.Return.ReceivedAt.Equal(start.Add(12*day)) {
			t.Errorf("due %s, received %s; want day 21, day 12", e.DueAt.Sub(start), e.Return.ReceivedAt.Sub(start))
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowRefunded, After: 12 * day, Escrow: "deal", ByTimer: true,
			State: escrow.AwaitingConfirmation, Amount: "40.00 CNY", Fee: "0"})
		expectPurses(f, map[string]purse{partyBuyer: {94000, 6000}})
		f.check()
	})

	t.Run("RefusalUndisputedLapses", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{ReturnDisputeWithin: 2 * day})
		f.clock.Set(start.Add(day))
		request(f, "100.00")
		f.call("AgreeReturn", func() (escrow.Escrow, error) { return f.l.AgreeReturn(f.ctx, "deal", partySeller, "") })
		f.call("ShipReturn", func() (escrow.Escrow, error) { return f.l.ShipReturn(f.ctx, "deal", partyBuyer, "") })
		f.call("RefuseReturn", func() (escrow.Escrow, error) {
			return f.l.RefuseReturn(f.ctx, "deal", partySeller, "worn")
		})
		e := expectDeadline(f, "deal", start.Add(3*day))
		if e.State != escrow.AwaitingConfirmation || !e.DueAt.Equal(start.Add(12*day)) {
			t.Fatalf("after the dispute deadline: %s, due %s", e.State, e.DueAt.Sub(start))
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowReturnCancelled, After: 3 * day, Escrow: "deal", ByTimer: true,
			State: escrow.AwaitingConfirmation, Amount: "0", Fee: "0"})
		f.check()
	})

	t.Run("RunOutAutoConfirmCannotBePaused", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{})
		f.clock.Set(start.Add(10 * day))
		f.refused("a return after the confirmation deadline", escrow.ErrInvalidTransition, func() (escrow.Escrow, error) {
			return f.l.RequestReturn(f.ctx, "deal", partyBuyer, cny("1.00"), "")
		})
		f.refused("an extension after the confirmation deadline", escrow.ErrInvalidTransition, func() (escrow.Escrow, error) {
			return f.l.Extend(f.ctx, "deal", partyBuyer, 0)
		})
		// One nanosecond before it, both are taken.
		f.clock.Set(start.Add(10*day - time.Nanosecond))
		e := f.call("Extend", func() (escrow.Escrow, error) { return f.l.Extend(f.ctx, "deal", partyBuyer, 0) })
		if !e.DueAt.Equal(start.Add(13 * day)) {
			t.Errorf("extended to %s, want day 13", e.DueAt.Sub(start))
		}
		request(f, "1.00")
		f.check()
	})

	t.Run("ArbiterDeadline", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{ArbiterWithin: 2 * day})
		f.clock.Set(start.Add(day))
		f.call("Dispute", func() (escrow.Escrow, error) { return f.l.Dispute(f.ctx, "deal", partySeller, "no answer") })
		e := expectDeadline(f, "deal", start.Add(3*day))
		if e.State != escrow.Disputed || !e.Dispute.EscalatedAt.Equal(start.Add(3*day)) || !e.DueAt.IsZero() || e.Paused != 9*day {
			t.Fatalf("after the arbiter's deadline: %s, escalated %s, due %s, paused %s", e.State, e.Dispute.EscalatedAt, e.DueAt, e.Paused)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowEscalated, After: 3 * day, Escrow: "deal", ByTimer: true,
			State: escrow.Disputed, Amount: "0", Fee: "0"})
		f.clock.Set(start.Add(100 * day))
		expectFired(f, 0)
		f.call("Resolve", func() (escrow.Escrow, error) {
			return f.l.Resolve(f.ctx, "deal", partyArbiter, escrow.Split{Seller: cny("100.00")})
		})
		f.check()
	})

	t.Run("NoArbiterDeadlineByDefault", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{})
		e := f.call("Dispute", func() (escrow.Escrow, error) { return f.l.Dispute(f.ctx, "deal", partyBuyer, "") })
		if !e.DueAt.IsZero() || e.Timers.ArbiterWithin != 0 {
			t.Fatalf("a dispute with no deadline is due %s (arbiter within %s)", e.DueAt, e.Timers.ArbiterWithin)
		}
		f.clock.Set(start.Add(365 * day))
		expectFired(f, 0)
	})
}
