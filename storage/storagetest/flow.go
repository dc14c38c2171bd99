package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// testFlow drives a ledger over the adapter through short trades, one per
// way an escrow ends (released on confirmation, split by an arbiter,
// closed by its payment timer), and two paid at once as a cart: one
// shipped in parts, its deadline extended, part of it returned and
// refunded and the rest released; the other disputed with evidence past
// the arbiter's deadline. It checks what every read path of the contract
// returns afterwards: escrows, balances, the event log, each account's
// journal and the due index. The rules themselves are tested in the
// escrow package; this proves the adapter carries them.
func testFlow(t *testing.T, h Harness) {
	f := newFixture(t, h)
	f.accounts(partyBuyer, partySeller)
	l, ctx := f.l, f.ctx
	stored := func(what string, e escrow.Escrow) {
		t.Helper()
		got, err := l.Escrow(ctx, e.ID)
		if err != nil {
			t.Fatalf("%s: Escrow: %v", what, err)
		}
		if diff := cmp.Diff(e, got); diff != "" {
			t.Errorf("%s: returned escrow differs from the stored one (-returned +stored):\n%s", what, diff)
		}
	}
	step := func(what string, want escrow.State, call func() (escrow.Escrow, error)) escrow.Escrow {
		t.Helper()
		f.clock.Advance(time.Hour)
		e, err := call()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if e.State != want {
			t.Errorf("%s: escrow in %s, want %s", what, e.State, want)
		}
		stored(what, e)
		return e
	}

	camera := escrow.Terms{ID: "camera", Buyer: partyBuyer, Seller: partySeller, Price: cny("497.50"), Item: "a used camera"}
	step("open camera", escrow.AwaitingPayment, func() (escrow.Escrow, error) { return l.Open(ctx, camera) })
	step("pay camera", escrow.AwaitingShipment, func() (escrow.Escrow, error) { return l.Pay(ctx, "camera", partyBuyer) })
	step("ship camera", escrow.AwaitingConfirmation, func() (escrow.Escrow, error) { return l.Ship(ctx, "camera", partySeller, "SF1001") })
	step("confirm camera", escrow.Completed, func() (escrow.Escrow, error) { return l.Confirm(ctx, "camera", partyBuyer) })

	step("open bike", escrow.AwaitingPayment, func() (escrow.Escrow, error) { return l.Open(ctx, dealTerms("bike", false)) })
	step("pay bike", escrow.AwaitingShipment, func() (escrow.Escrow, error) { return l.Pay(ctx, "bike", partyBuyer) })
	step("dispute bike", escrow.Disputed, func() (escrow.Escrow, error) { return l.Dispute(ctx, "bike", partyBuyer, "never sent") })
	step("resolve bike", escrow.Resolved, func() (escrow.Escrow, error) {
		return l.Resolve(ctx, "bike", partyArbiter, escrow.Split{Buyer: cny("30.00"), Seller: cny("70.00")})
	})

	tradeFlow(t, f, step, stored)

	lamp := dealTerms("lamp", false)
	step("open lamp", escrow.AwaitingPayment, func() (escrow.Escrow, error) { return l.Open(ctx, lamp) })
	f.clock.Advance(3*24*time.Hour + time.Minute) // past the default three days to pay
	if n, err := l.ProcessDue(ctx); err != nil || n != 1 {
		t.Fatalf("ProcessDue = %d, %v; want 1 timer fired", n, err)
	}
	if got := escrowNow(f, "lamp").State; got != escrow.Closed {
		t.Errorf("lamp is %s after its payment timer, want %s", got, escrow.Closed)
	}

	// Buyer: 1000.00 - 497.50 - 100.00 + 30.00 - 100.00 - 60.00 + 40.00 +
	// 20.00; seller: 1000.00 + 497.50 - 2.98 fee + 70.00 - 0.42 fee + 60.00
	// - 0.36 fee + 40.00 - 0.24 fee.
	type purse struct{ Available, Held int64 }
	got := map[string]purse{}
	for _, id := range []string{partyBuyer, partySeller, escrow.FeeAccount} {
		var p purse
		p.Available, p.Held = f.balance(id)
		got[id] = p
	}
	want := map[string]purse{partyBuyer: {33250, 0}, partySeller: {166350, 0}, escrow.FeeAccount: {400, 0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("balances in fen (-want +got):\n%s", diff)
	}

	type eventLine struct {
		Type    escrow.EventType
		Escrow  string
		ByTimer bool
	}
	var events []eventLine
	for i, ev := range eventsAfter(f, 0) {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d", i+1, ev.Seq)
		}
		events = append(events, eventLine{ev.Type, ev.Escrow, ev.ByTimer})
	}
	wantEvents := []eventLine{
		{escrow.AccountOpened, "", false}, {escrow.Deposited, "", false},
		{escrow.AccountOpened, "", false}, {escrow.Deposited, "", false},
		{escrow.EscrowOpened, "camera", false}, {escrow.EscrowPaid, "camera", false},
		{escrow.EscrowShipped, "camera", false}, {escrow.EscrowReleased, "camera", false},
		{escrow.EscrowOpened, "bike", false}, {escrow.EscrowPaid, "bike", false},
		{escrow.EscrowDisputed, "bike", false}, {escrow.EscrowResolved, "bike", false},
		{escrow.EscrowOpened, "kettle", false}, {escrow.EscrowOpened, "mug", false},
		{escrow.EscrowPaid, "kettle", false}, {escrow.EscrowPaid, "mug", false},
		{escrow.EscrowShippedPart, "kettle", false}, {escrow.EscrowShipped, "kettle", false},
		{escrow.EscrowExtended, "kettle", false}, {escrow.EscrowExtended, "kettle", false},
		{escrow.EscrowReturnRequested, "kettle", false}, {escrow.EscrowReturnAgreed, "kettle", false},
		{escrow.EscrowReturnShipped, "kettle", false}, {escrow.EscrowRefunded, "kettle", false},
		{escrow.EscrowReleased, "kettle", false},
		{escrow.EscrowShipped, "mug", false}, {escrow.EscrowDisputed, "mug", false},
		{escrow.EscrowEvidenceAdded, "mug", false}, {escrow.EscrowEvidenceAdded, "mug", false},
		{escrow.EscrowEvidenceAdded, "mug", false}, {escrow.EscrowEscalated, "mug", true},
		{escrow.EscrowResolved, "mug", false},
		{escrow.EscrowOpened, "lamp", false}, {escrow.EscrowClosed, "lamp", true},
	}
	if diff := cmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Each account's journal, read two entries at a time through the
	// adapter's per-account index.
	type entryLine struct {
		Seq  uint64
		Kind escrow.EntryKind
	}
	journal := func(account string) []entryLine {
		t.Helper()
		var out []entryLine
		var after uint64
		for {
			page, err := l.Journal(ctx, account, after, 2)
			if err != nil {
				t.Fatalf("Journal(%q): %v", account, err)
			}
			if len(page) == 0 {
				return out
			}
			for _, e := range page {
				out = append(out, entryLine{e.Seq, e.Kind})
				after = e.Seq
			}
		}
	}
	dep, hold, rel, split, ref := escrow.EntryDeposit, escrow.EntryHold, escrow.EntryRelease, escrow.EntrySplit, escrow.EntryRefund
	for account, want := range map[string][]entryLine{
		partyBuyer:        {{1, dep}, {3, hold}, {4, rel}, {5, hold}, {6, split}, {7, hold}, {8, hold}, {9, ref}, {10, rel}, {11, split}},
		partySeller:       {{2, dep}, {4, rel}, {6, split}, {10, rel}, {11, split}},
		escrow.FeeAccount: {{4, rel}, {6, split}, {10, rel}, {11, split}},
	} {
		if diff := cmp.Diff(want, journal(account)); diff != "" {
			t.Errorf("journal of %q (-want +got):\n%s", account, diff)
		}
	}

	// Nothing is left due but the rating windows of the four ended trades
	// that can be rated; the closed one has none.
	var due []string
	err := f.store.View(ctx, func(tx escrow.Tx) (err error) {
		due, err = tx.DueEscrows(maxTime, 10)
		return err
	})
	if err != nil {
		t.Fatalf("DueEscrows: %v", err)
	}
	if diff := cmp.Diff([]string{"camera", "bike", "kettle", "mug"}, due); diff != "" {
		t.Errorf("due index (-want +got):\n%s", diff)
	}

	// The platform pays out its fees, 4.00 of them: @fees is read for the
	// withdrawal, though the ledger adds to it without reading (see
	// escrow.BalanceAdder) where the store can.
	b, err := l.Withdraw(ctx, escrow.FeeAccount, cny("3.00"))
	if err != nil || b.Available != cny("1.00") {
		t.Errorf("paying 3.00 of fees out: %+v, %v; want 1.00 left", b, err)
	}
	var short *escrow.InsufficientFundsError
	if _, err := l.Withdraw(ctx, escrow.FeeAccount, cny("1.01")); !errors.As(err, &short) ||
		short.Account != escrow.FeeAccount || short.Available != cny("1.00") {
		t.Errorf("paying out more fees than collected: %v, want ErrInsufficientFunds of @fees with 1.00", err)
	}
	if _, err := l.Withdraw(ctx, escrow.FeeAccount, cny("1.00")); err != nil {
		t.Errorf("paying out the last fees: %v", err)
	}
	if avail, held := f.balance(escrow.FeeAccount); avail != 0 || held != 0 {
		t.Errorf("@fees after its payout: %d available, %d held; want none", avail, held)
	}
	if diff := cmp.Diff([]entryLine{{12, escrow.EntryWithdrawal}, {13, escrow.EntryWithdrawal}}, journal(escrow.FeeAccount)[4:]); diff != "" {
		t.Errorf("journal of @fees after its payout (-want +got):\n%s", diff)
	}
	f.check()
}

// tradeFlow is testFlow's cart of a kettle and a mug, paid at once. The
// kettle is shipped in two parts, its auto-confirm deadline extended by
// both parties, then 40.00 of its 100.00 returned and refunded, which
// pauses the deadline and resumes it, and the rest confirmed. The mug is
// disputed, given evidence by all three parties, escalated when the
// arbiter's deadline passes, and split 20.00 to the buyer, 40.00 to the
// seller. step and stored are testFlow's.
func tradeFlow(t *testing.T, f *fixture, step func(string, escrow.State, func() (escrow.Escrow, error)) escrow.Escrow,
	stored func(string, escrow.Escrow)) {
	t.Helper()
	l, ctx := f.l, f.ctx
	const day = 24 * time.Hour
	mug := dealTerms("mug", false)
	mug.Price = cny("60.00")
	mug.Timers.ArbiterWithin = 2 * day
	step("open kettle", escrow.AwaitingPayment, func() (escrow.Escrow, error) { return l.Open(ctx, dealTerms("kettle", false)) })
	step("open mug", escrow.AwaitingPayment, func() (escrow.Escrow, error) { return l.Open(ctx, mug) })

	f.clock.Advance(time.Hour)
	cart, err := l.PayAll(ctx, partyBuyer, []string{"kettle", "mug"})
	if err != nil {
		t.Fatalf("PayAll: %v", err)
	}
	if len(cart) != 2 {
		t.Fatalf("PayAll returned %d escrows, want 2", len(cart))
	}
	for i, id := range []string{"kettle", "mug"} {
		e := cart[i]
		if e.ID != id || e.State != escrow.AwaitingShipment || e.Cart != "kettle" || e.CartSize != 2 || e.Held != e.Price {
			t.Errorf("cart[%d] is %s in %s, cart %q of %d, holding %s; want %s paid in the cart kettle of 2",
				i, e.ID, e.State, e.Cart, e.CartSize, e.Held, id)
		}
		stored("pay the cart", e)
	}

	e := step("ship part of kettle", escrow.AwaitingShipment, func() (escrow.Escrow, error) { return l.ShipPart(ctx, "kettle", partySeller, "SF2001") })
	if want := []escrow.Shipment{{Tracking: "SF2001", At: f.clock.Now()}}; !cmp.Equal(want, e.Shipments) {
		t.Errorf("shipments %v, want %v", e.Shipments, want)
	}
	e = step("ship kettle", escrow.AwaitingConfirmation, func() (escrow.Escrow, error) { return l.Ship(ctx, "kettle", partySeller, "SF2002") })
	due := e.DueAt // ten days from now, the default
	e = step("extend kettle by the buyer", escrow.AwaitingConfirmation, func() (escrow.Escrow, error) { return l.Extend(ctx, "kettle", partyBuyer, 0) })
	e = step("extend kettle by the seller", escrow.AwaitingConfirmation, func() (escrow.Escrow, error) { return l.Extend(ctx, "kettle", partySeller, day) })
	if want := (escrow.Extensions{Buyer: 3 * day, Seller: day}); e.Extended != want || !e.DueAt.Equal(due.Add(4*day)) {
		t.Errorf("extended %+v to %s; want %+v to %s", e.Extended, e.DueAt, want, due.Add(4*day))
	}
	due = e.DueAt
	e = step("request a return of kettle", escrow.ReturnRequested, func() (escrow.Escrow, error) {
		return l.RequestReturn(ctx, "kettle", partyBuyer, cny("40.00"), "one cup was cracked")
	})
	left := due.Sub(f.clock.Now()) // what the auto-confirm deadline had left
	if e.Paused != left || e.Resume != escrow.AwaitingConfirmation || !e.DueAt.Equal(f.clock.Now().Add(5*day)) {
		t.Errorf("return requested with %s paused to resume %s, due %s; want %s, %s, %s",
			e.Paused, e.Resume, e.DueAt, left, escrow.AwaitingConfirmation, f.clock.Now().Add(5*day))
	}
	step("agree to the return of kettle", escrow.AwaitingReturn, func() (escrow.Escrow, error) { return l.AgreeReturn(ctx, "kettle", partySeller, "1 Return Road") })
	step("ship back kettle", escrow.ReturnShipped, func() (escrow.Escrow, error) { return l.ShipReturn(ctx, "kettle", partyBuyer, "RT3001") })
	e = step("confirm the return of kettle", escrow.AwaitingConfirmation, func() (escrow.Escrow, error) { return l.ConfirmReturn(ctx, "kettle", partySeller) })
	now := f.clock.Now()
	wantReturn := escrow.Return{Address: "1 Return Road", AgreedAt: now.Add(-2 * time.Hour), Tracking: "RT3001",
		ShippedAt: now.Add(-time.Hour), ReceivedAt: now}
	if e.Return != wantReturn || e.Refunded != cny("40.00") || e.Held != cny("60.00") || !e.DueAt.Equal(now.Add(left)) {
		t.Errorf("after the return: %+v, refunded %s, held %s, due %s; want %+v, 40.00, 60.00, %s",
			e.Return, e.Refunded, e.Held, e.DueAt, wantReturn, now.Add(left))
	}
	step("confirm kettle", escrow.Completed, func() (escrow.Escrow, error) { return l.Confirm(ctx, "kettle", partyBuyer) })

	step("ship mug", escrow.AwaitingConfirmation, func() (escrow.Escrow, error) { return l.Ship(ctx, "mug", partySeller, "") })
	step("dispute mug", escrow.Disputed, func() (escrow.Escrow, error) { return l.Dispute(ctx, "mug", partyBuyer, "the wrong colour") })
	for _, by := range []string{partyBuyer, partySeller, partyArbiter} {
		e = step("evidence on mug by "+by, escrow.Disputed, func() (escrow.Escrow, error) {
			return l.AddEvidence(ctx, "mug", by, "seen by "+by, "files/"+by+".jpg")
		})
	}
	var roles []escrow.Role
	for _, ev := range e.Evidence {
		roles = append(roles, ev.By)
	}
	if want := []escrow.Role{escrow.Buyer, escrow.Seller, escrow.Arbiter}; !cmp.Equal(want, roles) {
		t.Errorf("evidence by %v, want %v", roles, want)
	}
	f.clock.Advance(2 * day) // past the arbiter's deadline, set at the dispute
	if n, err := l.ProcessDue(ctx); err != nil || n != 1 {
		t.Fatalf("ProcessDue = %d, %v; want the arbiter's deadline fired", n, err)
	}
	if e := escrowNow(f, "mug"); e.State != escrow.Disputed || !e.Dispute.EscalatedAt.Equal(f.clock.Now()) || !e.DueAt.IsZero() {
		t.Errorf("mug is %s, escalated at %s, due %s; want %s, escalated now, nothing due", e.State, e.Dispute.EscalatedAt, e.DueAt, escrow.Disputed)
	}
	step("resolve mug", escrow.Resolved, func() (escrow.Escrow, error) {
		return l.Resolve(ctx, "mug", partyArbiter, escrow.Split{Buyer: cny("20.00"), Seller: cny("40.00")})
	})
}
