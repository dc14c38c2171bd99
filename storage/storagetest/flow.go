package storagetest

import (
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// testFlow drives a ledger over the adapter through three short trades, one
// per way an escrow ends (released on confirmation, split by an arbiter,
// closed by its payment timer), and checks what every read path of the
// contract returns afterwards: escrows, balances, the event log, each
// account's journal and the due index. The rules themselves are tested in
// the escrow package; this proves the adapter carries them.
func testFlow(t *testing.T, h Harness) {
	f := newFixture(t, h)
	f.accounts(partyBuyer, partySeller)
	l, ctx := f.l, f.ctx
	step := func(what string, want escrow.State, call func() (escrow.Escrow, error)) {
		t.Helper()
		f.clock.Advance(time.Hour)
		e, err := call()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if e.State != want {
			t.Errorf("%s: escrow in %s, want %s", what, e.State, want)
		}
		stored, err := l.Escrow(ctx, e.ID)
		if err != nil {
			t.Fatalf("%s: Escrow: %v", what, err)
		}
		if diff := cmp.Diff(e, stored); diff != "" {
			t.Errorf("%s: returned escrow differs from the stored one (-returned +stored):\n%s", what, diff)
		}
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

	lamp := dealTerms("lamp", false)
	step("open lamp", escrow.AwaitingPayment, func() (escrow.Escrow, error) { return l.Open(ctx, lamp) })
	f.clock.Advance(3*24*time.Hour + time.Minute) // past the default three days to pay
	if n, err := l.ProcessDue(ctx); err != nil || n != 1 {
		t.Fatalf("ProcessDue = %d, %v; want 1 timer fired", n, err)
	}
	if got := escrowNow(f, "lamp").State; got != escrow.Closed {
		t.Errorf("lamp is %s after its payment timer, want %s", got, escrow.Closed)
	}

	// Buyer: 1000.00 - 497.50 - 100.00 + 30.00; seller: 1000.00 + 497.50 -
	// 2.98 fee + 70.00 - 0.42 fee.
	type purse struct{ Available, Held int64 }
	got := map[string]purse{}
	for _, id := range []string{partyBuyer, partySeller, escrow.FeeAccount} {
		var p purse
		p.Available, p.Held = f.balance(id)
		got[id] = p
	}
	want := map[string]purse{partyBuyer: {43250, 0}, partySeller: {156410, 0}, escrow.FeeAccount: {340, 0}}
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
	dep, hold, rel, split := escrow.EntryDeposit, escrow.EntryHold, escrow.EntryRelease, escrow.EntrySplit
	for account, want := range map[string][]entryLine{
		partyBuyer:        {{1, dep}, {3, hold}, {4, rel}, {5, hold}, {6, split}},
		partySeller:       {{2, dep}, {4, rel}, {6, split}},
		escrow.FeeAccount: {{4, rel}, {6, split}},
	} {
		if diff := cmp.Diff(want, journal(account)); diff != "" {
			t.Errorf("journal of %q (-want +got):\n%s", account, diff)
		}
	}

	// Nothing is left due but the rating windows of the two ended trades
	// that can be rated; the closed one has none.
	var due []string
	err := f.store.View(ctx, func(tx escrow.Tx) (err error) {
		due, err = tx.DueEscrows(maxTime, 10)
		return err
	})
	if err != nil {
		t.Fatalf("DueEscrows: %v", err)
	}
	if diff := cmp.Diff([]string{"camera", "bike"}, due); diff != "" {
		t.Errorf("due index (-want +got):\n%s", diff)
	}
	f.check()
}
