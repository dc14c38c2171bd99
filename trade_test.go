package escrow_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

func TestShipPart(t *testing.T) {
	f := newFixture(t)
	f.funded(partyBuyer, partySeller)
	l, ctx := f.l, f.ctx
	setup(t, func() (escrow.Escrow, error) { return l.Open(ctx, dealTerms("deal", false)) },
		func() (escrow.Escrow, error) { return l.Pay(ctx, "deal", partyBuyer) })
	f.clock.Set(start.Add(day))
	e := f.call("ShipPart", func() (escrow.Escrow, error) { return l.ShipPart(ctx, "deal", partySeller, "SF-1") })
	// The order is not all shipped: the shipping deadline runs on.
	if e.State != escrow.AwaitingShipment || !e.DueAt.Equal(start.Add(7*day)) || !e.ShippedAt.IsZero() {
		t.Fatalf("after a part: %s, due %s, shipped %s", e.State, e.DueAt.Sub(start), e.ShippedAt)
	}
	expectLastEvent(f, eventLine{Type: escrow.EscrowShippedPart, After: day, Escrow: "deal", Actor: partySeller,
		State: escrow.AwaitingShipment, Amount: "0", Fee: "0", Note: "SF-1"})
	f.clock.Set(start.Add(3 * day))
	f.call("ShipPart", func() (escrow.Escrow, error) { return l.ShipPart(ctx, "deal", partySeller, "") })
	f.clock.Set(start.Add(5 * day))
	e = f.call("Ship", func() (escrow.Escrow, error) { return l.Ship(ctx, "deal", partySeller, "SF-3") })
	want := []escrow.Shipment{{Tracking: "SF-1", At: start.Add(day)}, {At: start.Add(3 * day)}}
	if diff := cmp.Diff(want, e.Shipments); diff != "" {
		t.Errorf("shipments (-want +got):\n%s", diff)
	}
	// The auto-confirm deadline runs from the last shipment.
	if e.State != escrow.AwaitingConfirmation || e.Tracking != "SF-3" || !e.DueAt.Equal(start.Add(15*day)) {
		t.Errorf("after the last part: %s, tracking %q, due %s", e.State, e.Tracking, e.DueAt.Sub(start))
	}
	f.refused("a part after the last", escrow.ErrInvalidTransition, func() (escrow.Escrow, error) {
		return l.ShipPart(ctx, "deal", partySeller, "")
	})
	f.check()

	t.Run("AtMostMaxShipments", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		setup(t, func() (escrow.Escrow, error) { return f.l.Open(f.ctx, dealTerms("deal", false)) },
			func() (escrow.Escrow, error) { return f.l.Pay(f.ctx, "deal", partyBuyer) })
		for i := range escrow.MaxShipments {
			f.call("ShipPart", func() (escrow.Escrow, error) {
				return f.l.ShipPart(f.ctx, "deal", partySeller, fmt.Sprint("P", i))
			})
		}
		f.refused("one part too many", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
			return f.l.ShipPart(f.ctx, "deal", partySeller, "")
		})
		f.refused("a part by the buyer", escrow.ErrNotParty, func() (escrow.Escrow, error) {
			return f.l.ShipPart(f.ctx, "deal", partyBuyer, "")
		})
		f.refused("a tracking number too long", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
			return f.l.ShipPart(f.ctx, "deal", partySeller, strings.Repeat("9", 201))
		})
		e := f.call("Ship", func() (escrow.Escrow, error) { return f.l.Ship(f.ctx, "deal", partySeller, "") })
		if len(e.Shipments) != escrow.MaxShipments {
			t.Errorf("%d shipments kept, want %d", len(e.Shipments), escrow.MaxShipments)
		}
	})
}

func TestExtend(t *testing.T) {
	t.Run("BuyerOnce", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{})
		f.clock.Set(start.Add(2 * day))
		e := f.call("Extend", func() (escrow.Escrow, error) { return f.l.Extend(f.ctx, "deal", partyBuyer, 0) })
		if !e.DueAt.Equal(start.Add(13*day)) || e.Extended != (escrow.Extensions{Buyer: 3 * day}) || e.State != escrow.AwaitingConfirmation {
			t.Fatalf("after the buyer's extension: %s due %s, extended %+v", e.State, e.DueAt.Sub(start), e.Extended)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowExtended, After: 2 * day, Escrow: "deal", Actor: partyBuyer,
			State: escrow.AwaitingConfirmation, Amount: "0", Fee: "0", Note: "by 72h0m0s, to 2026-03-14T09:00:00Z"})
		f.refused("a second extension by the buyer", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
			return f.l.Extend(f.ctx, "deal", partyBuyer, time.Hour)
		})
		// The timer fires at the new deadline, not the old one.
		expectDeadline(f, "deal", start.Add(13*day))
		f.check()
	})

	t.Run("BuyerAtMostThePolicy", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{BuyerExtension: 5 * day})
		f.refused("an extension past the buyer's", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
			return f.l.Extend(f.ctx, "deal", partyBuyer, 5*day+time.Nanosecond)
		})
		f.refused("a negative extension", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
			return f.l.Extend(f.ctx, "deal", partyBuyer, -time.Hour)
		})
		e := f.call("Extend", func() (escrow.Escrow, error) { return f.l.Extend(f.ctx, "deal", partyBuyer, 5*day) })
		if !e.DueAt.Equal(start.Add(15 * day)) {
			t.Errorf("due %s, want day 15", e.DueAt.Sub(start))
		}
	})

	t.Run("SellerUpToTheLimit", func(t *testing.T) {
		f := returnWorld(t, escrow.Timers{SellerExtensionLimit: 10 * day})
		for range 3 {
			f.call("Extend", func() (escrow.Escrow, error) { return f.l.Extend(f.ctx, "deal", partySeller, 3*day) })
		}
		f.refused("an extension past the seller's limit", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
			return f.l.Extend(f.ctx, "deal", partySeller, day+time.Nanosecond)
		})
		e := f.call("Extend", func() (escrow.Escrow, error) { return f.l.Extend(f.ctx, "deal", partySeller, day) })
		if e.Extended != (escrow.Extensions{Seller: 10 * day}) || !e.DueAt.Equal(start.Add(20*day)) {
			t.Errorf("extended %+v, due %s; want the seller's 10 days, day 20", e.Extended, e.DueAt.Sub(start))
		}
		// The buyer's own extension is apart from the seller's.
		e = f.call("Extend", func() (escrow.Escrow, error) { return f.l.Extend(f.ctx, "deal", partyBuyer, 0) })
		if !e.DueAt.Equal(start.Add(23 * day)) {
			t.Errorf("due %s, want day 23", e.DueAt.Sub(start))
		}
		f.refused("an extension by the arbiter", escrow.ErrNotParty, func() (escrow.Escrow, error) {
			return f.l.Extend(f.ctx, "deal", partyArbiter, day)
		})
		f.check()
	})

	t.Run("PausedWithTheRest", func(t *testing.T) {
		// An extension is part of the time left when a request pauses it.
		f := returnWorld(t, escrow.Timers{})
		f.call("Extend", func() (escrow.Escrow, error) { return f.l.Extend(f.ctx, "deal", partyBuyer, 0) })
		f.clock.Set(start.Add(day))
		e := f.call("RequestRefund", func() (escrow.Escrow, error) {
			return f.l.RequestRefund(f.ctx, "deal", partyBuyer, cny("1.00"), "")
		})
		if e.Paused != 12*day {
			t.Errorf("paused with %s left, want 12 days", e.Paused)
		}
	})
}

func TestEvidenceLimits(t *testing.T) {
	f := returnWorld(t, escrow.Timers{})
	f.call("Dispute", func() (escrow.Escrow, error) { return f.l.Dispute(f.ctx, "deal", partyBuyer, "") })
	f.refused("an empty note", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
		return f.l.AddEvidence(f.ctx, "deal", partyBuyer, "", "x")
	})
	f.refused("a note too long", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
		return f.l.AddEvidence(f.ctx, "deal", partyBuyer, strings.Repeat("n", 4001), "")
	})
	f.refused("a reference on two lines", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
		return f.l.AddEvidence(f.ctx, "deal", partyBuyer, "a note", "a\nb")
	})
	f.refused("a note by a stranger", escrow.ErrNotParty, func() (escrow.Escrow, error) {
		return f.l.AddEvidence(f.ctx, "deal", partyStranger, "a note", "")
	})
	// A note may run on several lines, up to the limit.
	f.call("AddEvidence", func() (escrow.Escrow, error) {
		return f.l.AddEvidence(f.ctx, "deal", partySeller, "line one\nline two\t"+strings.Repeat("n", 3982), "")
	})
	for range escrow.MaxEvidence - 1 {
		f.call("AddEvidence", func() (escrow.Escrow, error) { return f.l.AddEvidence(f.ctx, "deal", partyArbiter, "noted", "") })
	}
	f.refused("one note too many", escrow.ErrInvalidArgument, func() (escrow.Escrow, error) {
		return f.l.AddEvidence(f.ctx, "deal", partyBuyer, "more", "")
	})
	f.check()
}

// TestNewActionsIdempotent retries each new action under its key: the
// retry replays the result and changes nothing, and the key used for
// another call is refused, naming the first.
func TestNewActionsIdempotent(t *testing.T) {
	steps := []struct {
		word string
		call func(f *world, key escrow.CallOption) (escrow.Escrow, error)
	}{
		{"extend", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.Extend(f.ctx, "deal", partySeller, day, k)
		}},
		{"request_return", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.RequestReturn(f.ctx, "deal", partyBuyer, cny("20.00"), "scuffed", k)
		}},
		{"agree_return", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.AgreeReturn(f.ctx, "deal", partySeller, "1 Depot Road", k)
		}},
		{"ship_return", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.ShipReturn(f.ctx, "deal", partyBuyer, "RT9", k)
		}},
		{"refuse_return", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.RefuseReturn(f.ctx, "deal", partySeller, "not ours", k)
		}},
		{"cancel_return", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.CancelReturn(f.ctx, "deal", partyBuyer, k)
		}},
		{"request_return", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.RequestReturn(f.ctx, "deal", partyBuyer, cny("10.00"), "", k)
		}},
		{"agree_return", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.AgreeReturn(f.ctx, "deal", partySeller, "", k)
		}},
		{"ship_return", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.ShipReturn(f.ctx, "deal", partyBuyer, "", k)
		}},
		{"confirm_return", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.ConfirmReturn(f.ctx, "deal", partySeller, k)
		}},
		{"dispute", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.Dispute(f.ctx, "deal", partyBuyer, "", k)
		}},
		{"add_evidence", func(f *world, k escrow.CallOption) (escrow.Escrow, error) {
			return f.l.AddEvidence(f.ctx, "deal", partyBuyer, "photo", "p/1.jpg", k)
		}},
	}
	f := returnWorld(t, escrow.Timers{})
	for i, s := range steps {
		key := escrow.IdempotencyKey(fmt.Sprint("k", i))
		f.clock.Advance(time.Hour)
		first, err := s.call(f, key)
		f.must(s.word, err)
		before := f.dump()
		f.clock.Advance(time.Minute)
		again, err := s.call(f, key)
		f.must(s.word+" again", err)
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("%s: the retry's result differs (-first +retry):\n%s", s.word, diff)
		}
		f.unchanged(before, "a retried "+s.word)
		// The key of this step used for a confirmation is refused.
		_, err = f.l.Confirm(f.ctx, "deal", partyBuyer, key)
		var me *escrow.IdempotencyMismatchError
		if !errors.As(err, &me) || me.Call != s.word || me.Escrow != "deal" {
			t.Errorf("%s's key reused: %v, want a mismatch naming %s on deal", s.word, err, s.word)
		}
		f.unchanged(before, "a reused key of "+s.word)
	}
	f.check()

	// The part shipment's key, on an escrow of its own.
	g := newFixture(t)
	g.funded(partyBuyer, partySeller)
	setup(t, func() (escrow.Escrow, error) { return g.l.Open(g.ctx, dealTerms("deal", false)) },
		func() (escrow.Escrow, error) { return g.l.Pay(g.ctx, "deal", partyBuyer) })
	key := escrow.IdempotencyKey("part")
	first := g.call("ShipPart", func() (escrow.Escrow, error) { return g.l.ShipPart(g.ctx, "deal", partySeller, "P1", key) })
	before := g.dump()
	again := g.call("ShipPart again", func() (escrow.Escrow, error) { return g.l.ShipPart(g.ctx, "deal", partySeller, "P1", key) })
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("ship_part: the retry's result differs (-first +retry):\n%s", diff)
	}
	g.unchanged(before, "a retried ship_part")
	g.refused("another part under the same key", escrow.ErrIdempotencyMismatch, func() (escrow.Escrow, error) {
		return g.l.ShipPart(g.ctx, "deal", partySeller, "P2", key)
	})
}

// TestTimersStoredBefore reads an escrow stored before the return and
// extension timers existed, as an older release left it: they read as
// the built-in defaults, Open with its terms again is the same call, and
// a return runs on the default deadlines.
func TestTimersStoredBefore(t *testing.T) {
	f := returnWorld(t, escrow.Timers{})
	err := f.store.Update(f.ctx, func(tx escrow.Tx) error {
		e, err := tx.Escrow("deal")
		if err != nil {
			return err
		}
		old := escrow.Timers{PayWithin: e.Timers.PayWithin, ShipWithin: e.Timers.ShipWithin,
			ConfirmWithin: e.Timers.ConfirmWithin, RefundResponseWithin: e.Timers.RefundResponseWithin}
		e.Timers = old
		return tx.PutEscrow(e)
	})
	f.must("storing the escrow as an older release did", err)
	e := escrowNow(f, "deal")
	if e.Timers != escrow.DefaultTimers() {
		t.Fatalf("timers read %+v, want the defaults", e.Timers)
	}
	page, err := f.l.Escrows(f.ctx, escrow.EscrowQuery{Party: partyBuyer})
	f.must("Escrows", err)
	if len(page.Escrows) != 1 || page.Escrows[0].Timers != escrow.DefaultTimers() {
		t.Fatalf("Escrows lists %+v, want the escrow with the default timers", page.Escrows)
	}
	f.call("Open again", func() (escrow.Escrow, error) { return f.l.Open(f.ctx, dealTerms("deal", false)) })
	f.call("RequestReturn", func() (escrow.Escrow, error) {
		return f.l.RequestReturn(f.ctx, "deal", partyBuyer, cny("5.00"), "")
	})
	expectDeadline(f, "deal", start.Add(5*day))
	f.check()
}
