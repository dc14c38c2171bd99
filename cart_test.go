package escrow_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// cartWorld opens three escrows for one buyer from two sellers: "a" and
// "b" of 100.00 and 250.00 from the seller, "c" of 80.00 from the
// stranger.
func cartWorld(t *testing.T) *world {
	t.Helper()
	f := newFixture(t)
	f.funded(partyBuyer, partySeller, partyStranger)
	for _, x := range []struct{ id, seller, price string }{
		{"a", partySeller, "100.00"}, {"b", partySeller, "250.00"}, {"c", partyStranger, "80.00"},
	} {
		terms := dealTerms(x.id, false)
		terms.Seller, terms.Price = x.seller, cny(x.price)
		f.call("Open "+x.id, func() (escrow.Escrow, error) { return f.l.Open(f.ctx, terms) })
	}
	return f
}

func TestPayAll(t *testing.T) {
	f := cartWorld(t)
	seq := uint64(len(eventsAfter(f, 0)))
	paid, err := f.l.PayAll(f.ctx, partyBuyer, []string{"c", "a", "b"})
	f.must("PayAll", err)
	if len(paid) != 3 {
		t.Fatalf("PayAll returned %d escrows, want 3", len(paid))
	}
	for i, id := range []string{"c", "a", "b"} {
		e := paid[i]
		stored := escrowNow(f, id)
		if diff := cmp.Diff(stored, e); diff != "" {
			t.Errorf("escrow %s returned differs from the stored one (-stored +returned):\n%s", id, diff)
		}
		if e.ID != id || e.State != escrow.AwaitingShipment || e.Held != e.Price || e.Cart != "c" || e.CartSize != 3 ||
			!e.PaidAt.Equal(start) || !e.DueAt.Equal(start.Add(7*day)) {
			t.Errorf("escrow %s: %s holding %s, cart %q of %d, paid %s, due %s", id, e.State, e.Held, e.Cart, e.CartSize, e.PaidAt, e.DueAt)
		}
	}
	events := eventsAfter(f, seq)
	var got []string
	for _, ev := range events {
		got = append(got, fmt.Sprintf("%s %s %s by %s", ev.Type, ev.Escrow, ev.Amount, ev.Actor))
	}
	want := []string{
		"EscrowPaid c 80.00 CNY by buyer",
		"EscrowPaid a 100.00 CNY by buyer",
		"EscrowPaid b 250.00 CNY by buyer",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	expectPurses(f, map[string]purse{partyBuyer: {100000 - 43000, 43000}})
	f.check()
}

func TestPayAllRefusals(t *testing.T) {
	cartErr := func(t *testing.T, err error) *escrow.CartError {
		t.Helper()
		var ce *escrow.CartError
		if !errors.As(err, &ce) {
			t.Fatalf("err = %v (%T), want a *CartError", err, err)
		}
		return ce
	}

	t.Run("OneRefusedNonePaid", func(t *testing.T) {
		f := cartWorld(t)
		f.call("Cancel b", func() (escrow.Escrow, error) { return f.l.Cancel(f.ctx, "b", partySeller) })
		before := f.dump()
		paid, err := f.l.PayAll(f.ctx, partyBuyer, []string{"a", "b", "c"})
		ce := cartErr(t, err)
		if paid != nil || ce.Size != 3 || len(ce.Refused) != 1 || ce.Refused[0].Escrow != "b" {
			t.Fatalf("paid %v, error %+v; want b refused of a cart of 3", paid, ce)
		}
		if !errors.Is(err, escrow.ErrInvalidTransition) || errors.Is(err, escrow.ErrNotParty) {
			t.Errorf("err = %v, want ErrInvalidTransition only", err)
		}
		if msg := err.Error(); !strings.Contains(msg, `"b"`) || !strings.Contains(msg, "Closed") {
			t.Errorf("message %q does not name escrow b and its state", msg)
		}
		f.unchanged(before, "a cart with a closed escrow")
	})

	t.Run("EachRefusalNamed", func(t *testing.T) {
		f := cartWorld(t)
		f.call("Pay a", func() (escrow.Escrow, error) { return f.l.Pay(f.ctx, "a", partyBuyer) })
		terms := dealTerms("theirs", false)
		terms.Buyer = partyStranger
		f.call("Open theirs", func() (escrow.Escrow, error) { return f.l.Open(f.ctx, terms) })
		before := f.dump()
		_, err := f.l.PayAll(f.ctx, partyBuyer, []string{"a", "b", "nowhere", "theirs"})
		ce := cartErr(t, err)
		var got []string
		for _, r := range ce.Refused {
			got = append(got, r.Escrow)
		}
		if diff := cmp.Diff([]string{"a", "nowhere", "theirs"}, got); diff != "" {
			t.Errorf("refused (-want +got):\n%s", diff)
		}
		for _, want := range []error{escrow.ErrInvalidTransition, escrow.ErrNotFound, escrow.ErrNotParty} {
			if !errors.Is(err, want) {
				t.Errorf("errors.Is(%v, %v) = false", err, want)
			}
		}
		f.unchanged(before, "a cart with three bad escrows")
	})

	t.Run("ShortOfTheTotal", func(t *testing.T) {
		f := cartWorld(t)
		_, err := f.l.Withdraw(f.ctx, partyBuyer, cny("600.00"))
		f.must("Withdraw", err)
		// 400.00 left: enough for any one escrow, not for all three.
		before := f.dump()
		_, err = f.l.PayAll(f.ctx, partyBuyer, []string{"a", "b", "c"})
		var ie *escrow.InsufficientFundsError
		if !errors.As(err, &ie) || ie.Needed != cny("430.00") || ie.Available != cny("400.00") || ie.Account != partyBuyer {
			t.Fatalf("err = %v, want insufficient funds: need 430.00 of the buyer's 400.00", err)
		}
		f.unchanged(before, "a cart short of funds")
	})

	t.Run("BadInput", func(t *testing.T) {
		f := cartWorld(t)
		before := f.dump()
		many := make([]string, escrow.MaxCart+1)
		for i := range many {
			many[i] = fmt.Sprintf("e%d", i)
		}
		for name, c := range map[string]struct {
			actor string
			ids   []string
		}{
			"no escrows": {partyBuyer, nil},
			"one twice":  {partyBuyer, []string{"a", "b", "a"}},
			"too many":   {partyBuyer, many},
			"a bad ID":   {partyBuyer, []string{"a", "b\n"}},
		} {
			paid, err := f.l.PayAll(f.ctx, c.actor, c.ids)
			if paid != nil || !errors.Is(err, escrow.ErrInvalidArgument) {
				t.Errorf("%s: %v, %v; want an invalid argument", name, paid, err)
			}
		}
		// An actor whose ID breaks the rule is no escrow's buyer, as for
		// Pay: each escrow is refused for it.
		for _, actor := range []string{"", escrow.FeeAccount, "a\xffb", strings.Repeat("x", 129)} {
			paid, err := f.l.PayAll(f.ctx, actor, []string{"a", "b"})
			var ce *escrow.CartError
			if paid != nil || !errors.As(err, &ce) || !errors.Is(err, escrow.ErrNotParty) || len(ce.Refused) != 2 {
				t.Errorf("a cart paid by %q: %v, %v; want a CartError refusing both escrows with ErrNotParty", actor, paid, err)
			}
		}
		f.unchanged(before, "carts refused for their input")
	})
}

func TestPayAllIdempotent(t *testing.T) {
	f := cartWorld(t)
	key := escrow.IdempotencyKey("cart-1")
	first, err := f.l.PayAll(f.ctx, partyBuyer, []string{"a", "c"}, key)
	f.must("PayAll", err)
	before := f.dump()
	again, err := f.l.PayAll(f.ctx, partyBuyer, []string{"a", "c"}, key)
	f.must("PayAll again", err)
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("the retry's result differs (-first +retry):\n%s", diff)
	}
	f.unchanged(before, "a retried cart")
	_, err = f.l.PayAll(f.ctx, partyBuyer, []string{"a", "b"}, key)
	var me *escrow.IdempotencyMismatchError
	if !errors.As(err, &me) || me.Call != "pay_all" || me.Escrow != "a" ||
		!strings.Contains(err.Error(), `to pay the cart of escrow "a"`) {
		t.Fatalf("the key reused for another cart: %v, want a mismatch naming pay_all of the cart of a", err)
	}
	f.unchanged(before, "a key reused for another cart")
	f.check()
}

// TestPayAllTotalPastMaxUnits: a cart whose total passes the largest
// amount is refused with ErrAmountTooLarge, not taken for a shortfall, and
// a total that would pass the range of int64 does not wrap around into one
// the buyer can pay.
func TestPayAllTotalPastMaxUnits(t *testing.T) {
	w := newWorld(t, nil, escrow.Options{})
	w.account("alice")
	w.account("bob")
	most, err := escrow.MoneyFromUnits(escrow.MaxUnits, escrow.CNY)
	w.must("MoneyFromUnits", err)
	_, err = w.l.Deposit(w.ctx, "alice", most)
	w.must("Deposit", err)
	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("big-%d", i)
		_, err := w.l.Open(w.ctx, escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Price: most})
		w.must("Open", err)
		ids = append(ids, id)
	}
	for _, n := range []int{2, 10} {
		before := w.dump()
		_, err := w.l.PayAll(w.ctx, "alice", ids[:n])
		var ae *escrow.AmountError
		if !errors.Is(err, escrow.ErrAmountTooLarge) || !errors.As(err, &ae) {
			t.Errorf("a cart of %d at the largest amount: %v, want an *AmountError wrapping ErrAmountTooLarge", n, err)
		}
		w.unchanged(before, fmt.Sprintf("the refused cart of %d", n))
	}
	// One at the largest amount is within reach.
	_, err = w.l.PayAll(w.ctx, "alice", ids[:1])
	w.must("PayAll of one", err)
}
