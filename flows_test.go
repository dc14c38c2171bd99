package escrow_test

import (
	"errors"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// figures are an escrow's state, money in minor units and version: what a
// flow asserts after each step.
type figures struct {
	State                          escrow.State
	Held, Released, Refunded, Fees int64
	NextMilestone                  int
	Version                        uint64
}

func figuresOf(e escrow.Escrow) figures {
	return figures{State: e.State, Held: e.Held.Units(), Released: e.Released.Units(), Refunded: e.Refunded.Units(),
		Fees: e.Fees.Units(), NextMilestone: e.NextMilestone, Version: e.Version}
}

// flowRun drives escrows through a fixture, moving the clock an hour before
// every step so that each event has its own time.
type flowRun struct {
	*world
	t *testing.T
}

// step runs one call, fails the test on error, and checks the returned
// escrow against want and against the stored copy.
func (fl flowRun) step(what string, want figures, call func() (escrow.Escrow, error)) escrow.Escrow {
	fl.t.Helper()
	fl.clock.Advance(time.Hour)
	e, err := call()
	if err != nil {
		fl.t.Fatalf("%s: %v", what, err)
	}
	if diff := cmp.Diff(want, figuresOf(e)); diff != "" {
		fl.t.Fatalf("%s: escrow figures (-want +got):\n%s", what, diff)
	}
	stored, err := fl.l.Escrow(fl.ctx, e.ID)
	if err != nil {
		fl.t.Fatal(err)
	}
	if diff := cmp.Diff(e, stored); diff != "" {
		fl.t.Fatalf("%s: returned escrow differs from the stored one (-returned +stored):\n%s", what, diff)
	}
	return e
}

// purse is one account's CNY balance in fen.
type purse struct{ Available, Held int64 }

// expectPurses checks the CNY balances of the accounts in want.
func expectPurses(f *world, want map[string]purse) {
	f.t.Helper()
	got := map[string]purse{}
	for id := range want {
		var p purse
		p.Available, p.Held = f.balance(id)
		got[id] = p
	}
	if diff := cmp.Diff(want, got); diff != "" {
		f.t.Errorf("balances in fen (-want +got):\n%s", diff)
	}
}

// eventLine is an event as a flow asserts it: time as an offset from the
// fixture's start, amounts as text.
type eventLine struct {
	Type    escrow.EventType
	After   time.Duration
	Account string
	Escrow  string
	Actor   string
	ByTimer bool
	State   escrow.State
	Amount  string
	Fee     string
	Note    string
}

func lineOf(ev escrow.Event) eventLine {
	return eventLine{Type: ev.Type, After: ev.At.Sub(start), Account: ev.Account, Escrow: ev.Escrow, Actor: ev.Actor,
		ByTimer: ev.ByTimer, State: ev.State, Amount: ev.Amount.String(), Fee: ev.Fee.String(), Note: ev.Note}
}

// accountLines are the events world.funded writes for ids at the start.
func accountLines(ids ...string) []eventLine {
	var out []eventLine
	for _, id := range ids {
		out = append(out,
			eventLine{Type: escrow.AccountOpened, Account: id, Actor: id, Amount: "0", Fee: "0"},
			eventLine{Type: escrow.Deposited, Account: id, Actor: id, Amount: "1000.00 CNY", Fee: "0"})
	}
	return out
}

// pagedEvents reads the whole event log through Ledger.Events in pages of
// size, checking that Seq runs 1, 2, 3, … and that no page is too long.
func pagedEvents(f *world, size int) []escrow.Event {
	f.t.Helper()
	var out []escrow.Event
	var after uint64
	for {
		page, err := f.l.Events(f.ctx, after, size)
		if err != nil {
			f.t.Fatalf("Events(%d, %d): %v", after, size, err)
		}
		if len(page) > size {
			f.t.Fatalf("Events(%d, %d) returned %d events", after, size, len(page))
		}
		if len(page) == 0 {
			return out
		}
		for _, ev := range page {
			if ev.Seq != uint64(len(out))+1 {
				f.t.Fatalf("event Seq %d where %d was due", ev.Seq, len(out)+1)
			}
			out = append(out, ev)
		}
		after = page[len(page)-1].Seq
	}
}

// expectEvents checks the whole event log, read in pages of several sizes.
func expectEvents(f *world, want []eventLine) {
	f.t.Helper()
	for _, size := range []int{1, 3, 1000} {
		var got []eventLine
		for _, ev := range pagedEvents(f, size) {
			got = append(got, lineOf(ev))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			f.t.Fatalf("events read %d at a time (-want +got):\n%s", size, diff)
		}
	}
}

// entryLine is a journal entry as a flow asserts it.
type entryLine struct {
	Seq      uint64
	Kind     escrow.EntryKind
	Escrow   string
	Postings []escrow.Posting
}

// expectJournal checks the journal of account, read through Ledger.Journal
// in pages of several sizes.
func expectJournal(f *world, account string, want []entryLine) {
	f.t.Helper()
	for _, size := range []int{1, 2, 1000} {
		var got []entryLine
		var after uint64
		for {
			page, err := f.l.Journal(f.ctx, account, after, size)
			if err != nil {
				f.t.Fatalf("Journal(%q, %d, %d): %v", account, after, size, err)
			}
			if len(page) > size {
				f.t.Fatalf("Journal(%q, %d, %d) returned %d entries", account, after, size, len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				if e.Currency != escrow.CNY {
					f.t.Errorf("entry %d is in %s", e.Seq, e.Currency)
				}
				if e.Seq <= after {
					f.t.Fatalf("entry %d read after %d", e.Seq, after)
				}
				after = e.Seq
				got = append(got, entryLine{Seq: e.Seq, Kind: e.Kind, Escrow: e.Escrow, Postings: e.Postings})
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			f.t.Fatalf("journal of %q read %d at a time (-want +got):\n%s", account, size, diff)
		}
	}
}

// Journal lines that world.funded(partyBuyer, partySeller) writes.
var (
	buyerDeposit = entryLine{Seq: 1, Kind: escrow.EntryDeposit, Postings: []escrow.Posting{
		{Account: escrow.WorldAccount, Change: -100000}, {Account: partyBuyer, Change: 100000}}}
	sellerDeposit = entryLine{Seq: 2, Kind: escrow.EntryDeposit, Postings: []escrow.Posting{
		{Account: escrow.WorldAccount, Change: -100000}, {Account: partySeller, Change: 100000}}}
)

// holdLine is the entry of the buyer paying units into escrow id.
func holdLine(seq uint64, id string, units int64) entryLine {
	return entryLine{Seq: seq, Kind: escrow.EntryHold, Escrow: id, Postings: []escrow.Posting{
		{Account: partyBuyer, Bucket: escrow.Available, Change: -units},
		{Account: partyBuyer, Bucket: escrow.Held, Change: units}}}
}

// releaseLine is the entry of units released from escrow id, fee taken.
func releaseLine(seq uint64, id string, units, fee int64) entryLine {
	p := []escrow.Posting{
		{Account: partyBuyer, Bucket: escrow.Held, Change: -units},
		{Account: partySeller, Bucket: escrow.Available, Change: units - fee}}
	if fee != 0 {
		p = append(p, escrow.Posting{Account: escrow.FeeAccount, Change: fee})
	}
	return entryLine{Seq: seq, Kind: escrow.EntryRelease, Escrow: id, Postings: p}
}

// refundLine is the entry of units of escrow id refunded to the buyer.
func refundLine(seq uint64, id string, units int64) entryLine {
	return entryLine{Seq: seq, Kind: escrow.EntryRefund, Escrow: id, Postings: []escrow.Posting{
		{Account: partyBuyer, Bucket: escrow.Held, Change: -units},
		{Account: partyBuyer, Bucket: escrow.Available, Change: units}}}
}

func TestFlows(t *testing.T) {
	hour := func(n int) time.Duration { return time.Duration(n) * time.Hour }
	const day = 24 * time.Hour

	t.Run("Lifecycle", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		fl := flowRun{f, t}
		l, ctx := f.l, f.ctx
		// 0.6% of 497.50 is 2.985: a tie between 2.98 and 2.99 that half-even
		// rounds to the even 2.98 (half-up would take 2.99).
		terms := escrow.Terms{ID: "camera", Buyer: partyBuyer, Seller: partySeller, Price: cny("497.50"), Item: "a used camera"}
		e := fl.step("open", figures{State: escrow.AwaitingPayment, Version: 1},
			func() (escrow.Escrow, error) { return l.Open(ctx, terms) })
		if want := start.Add(hour(1) + 3*day); !e.DueAt.Equal(want) {
			t.Errorf("payment due %s, want %s", e.DueAt, want)
		}
		if want := (escrow.FeeTerms{RatePPM: 6000, Fixed: cny("0"), Rounding: escrow.RoundHalfEven}); e.Fee != want {
			t.Errorf("fee terms %+v, want %+v", e.Fee, want)
		}
		e = fl.step("pay", figures{State: escrow.AwaitingShipment, Held: 49750, Version: 2},
			func() (escrow.Escrow, error) { return l.Pay(ctx, "camera", partyBuyer) })
		if !e.PaidAt.Equal(start.Add(hour(2))) || !e.DueAt.Equal(start.Add(hour(2)+7*day)) {
			t.Errorf("paid at %s, shipping due %s", e.PaidAt, e.DueAt)
		}
		expectPurses(f, map[string]purse{partyBuyer: {50250, 49750}, partySeller: {100000, 0}})
		e = fl.step("ship", figures{State: escrow.AwaitingConfirmation, Held: 49750, Version: 3},
			func() (escrow.Escrow, error) { return l.Ship(ctx, "camera", partySeller, "SF1001") })
		if e.Tracking != "SF1001" || !e.ShippedAt.Equal(start.Add(hour(3))) || !e.DueAt.Equal(start.Add(hour(3)+10*day)) {
			t.Errorf("tracking %q, shipped at %s, confirmation due %s", e.Tracking, e.ShippedAt, e.DueAt)
		}
		e = fl.step("confirm", figures{State: escrow.Completed, Released: 49750, Fees: 298, Version: 4},
			func() (escrow.Escrow, error) { return l.Confirm(ctx, "camera", partyBuyer) })
		if !e.DueAt.IsZero() || !e.EndedAt.Equal(start.Add(hour(4))) || !e.UpdatedAt.Equal(e.EndedAt) ||
			!e.CreatedAt.Equal(start.Add(hour(1))) {
			t.Errorf("due %s, ended %s, updated %s, created %s", e.DueAt, e.EndedAt, e.UpdatedAt, e.CreatedAt)
		}
		expectPurses(f, map[string]purse{partyBuyer: {50250, 0}, partySeller: {149452, 0}, escrow.FeeAccount: {298, 0}})
		w, err := l.Balance(ctx, escrow.WorldAccount, escrow.CNY)
		if err != nil || w.Available.Units() != -200000 {
			t.Errorf("world balance %v, %v; want -200000 fen", w, err)
		}
		expectEvents(f, append(accountLines(partyBuyer, partySeller),
			eventLine{Type: escrow.EscrowOpened, After: hour(1), Escrow: "camera", Actor: partyBuyer, State: escrow.AwaitingPayment,
				Amount: "497.50 CNY", Fee: "0", Note: "a used camera"},
			eventLine{Type: escrow.EscrowPaid, After: hour(2), Escrow: "camera", Actor: partyBuyer, State: escrow.AwaitingShipment,
				Amount: "497.50 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowShipped, After: hour(3), Escrow: "camera", Actor: partySeller, State: escrow.AwaitingConfirmation,
				Amount: "0", Fee: "0", Note: "SF1001"},
			eventLine{Type: escrow.EscrowReleased, After: hour(4), Escrow: "camera", Actor: partyBuyer, State: escrow.Completed,
				Amount: "497.50 CNY", Fee: "2.98 CNY"},
		))
		expectJournal(f, partyBuyer, []entryLine{buyerDeposit, holdLine(3, "camera", 49750), releaseLine(4, "camera", 49750, 298)})
		expectJournal(f, partySeller, []entryLine{sellerDeposit, releaseLine(4, "camera", 49750, 298)})
		expectJournal(f, escrow.FeeAccount, []entryLine{releaseLine(4, "camera", 49750, 298)})
		f.check()
	})

	t.Run("FeeRoundsHalfEven", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		if _, err := f.l.Deposit(f.ctx, partyBuyer, cny("1000.00")); err != nil {
			t.Fatal(err)
		}
		// price → fee in fen at 0.6%: ties go to the even neighbour.
		cases := []struct {
			price string
			fee   int64
		}{
			{"2.50", 2},     // 1.5 → 2
			{"7.50", 4},     // 4.5 → 4
			{"497.50", 298}, // 298.5 → 298
			{"502.50", 302}, // 301.5 → 302
			{"100.00", 60},  // exact
			{"1.00", 1},     // 0.6 → 1
			{"0.83", 0},     // 0.498 → 0: a release may carry no fee
			{"0.01", 0},
		}
		var fees, released int64
		for i, c := range cases {
			id := "deal-" + c.price
			price := cny(c.price)
			terms := escrow.Terms{ID: id, Buyer: partyBuyer, Seller: partySeller, Price: price}
			for _, call := range []func() (escrow.Escrow, error){
				func() (escrow.Escrow, error) { return f.l.Open(f.ctx, terms) },
				func() (escrow.Escrow, error) { return f.l.Pay(f.ctx, id, partyBuyer) },
				func() (escrow.Escrow, error) { return f.l.Ship(f.ctx, id, partySeller, "") },
			} {
				if _, err := call(); err != nil {
					t.Fatalf("%s: %v", id, err)
				}
			}
			e, err := f.l.Confirm(f.ctx, id, partyBuyer)
			if err != nil {
				t.Fatalf("confirm %s: %v", id, err)
			}
			if e.Fees.Units() != c.fee || e.Released != price {
				t.Errorf("case %d: %s released %s with fee %d fen, want fee %d", i, c.price, e.Released, e.Fees.Units(), c.fee)
			}
			evs := eventsAfter(f, 0)
			if last := evs[len(evs)-1]; last.Fee.Units() != c.fee || last.Amount != price {
				t.Errorf("case %d: release event %+v", i, last)
			}
			fees += c.fee
			released += price.Units()
		}
		expectPurses(f, map[string]purse{escrow.FeeAccount: {fees, 0}, partySeller: {100000 + released - fees, 0},
			partyBuyer: {200000 - released, 0}})
		f.check()
	})

	t.Run("PartialRefundsThenConfirm", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		fl := flowRun{f, t}
		l, ctx := f.l, f.ctx
		terms := escrow.Terms{ID: "sofa", Buyer: partyBuyer, Seller: partySeller, Price: cny("300.00")}
		fl.step("open", figures{State: escrow.AwaitingPayment, Version: 1}, func() (escrow.Escrow, error) { return l.Open(ctx, terms) })
		fl.step("pay", figures{State: escrow.AwaitingShipment, Held: 30000, Version: 2},
			func() (escrow.Escrow, error) { return l.Pay(ctx, "sofa", partyBuyer) })
		fl.step("ship", figures{State: escrow.AwaitingConfirmation, Held: 30000, Version: 3},
			func() (escrow.Escrow, error) { return l.Ship(ctx, "sofa", partySeller, "") })
		fl.step("refund 50.00", figures{State: escrow.AwaitingConfirmation, Held: 25000, Refunded: 5000, Version: 4},
			func() (escrow.Escrow, error) { return l.Refund(ctx, "sofa", partySeller, cny("50.00")) })
		fl.step("refund 25.50", figures{State: escrow.AwaitingConfirmation, Held: 22450, Refunded: 7550, Version: 5},
			func() (escrow.Escrow, error) { return l.Refund(ctx, "sofa", partySeller, cny("25.50")) })
		expectPurses(f, map[string]purse{partyBuyer: {77550, 22450}})
		// 0.6% of 224.50 is 1.347.
		fl.step("confirm", figures{State: escrow.Completed, Released: 22450, Refunded: 7550, Fees: 135, Version: 6},
			func() (escrow.Escrow, error) { return l.Confirm(ctx, "sofa", partyBuyer) })
		expectPurses(f, map[string]purse{partyBuyer: {77550, 0}, partySeller: {122315, 0}, escrow.FeeAccount: {135, 0}})
		expectEvents(f, append(accountLines(partyBuyer, partySeller),
			eventLine{Type: escrow.EscrowOpened, After: hour(1), Escrow: "sofa", Actor: partyBuyer, State: escrow.AwaitingPayment, Amount: "300.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowPaid, After: hour(2), Escrow: "sofa", Actor: partyBuyer, State: escrow.AwaitingShipment, Amount: "300.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowShipped, After: hour(3), Escrow: "sofa", Actor: partySeller, State: escrow.AwaitingConfirmation, Amount: "0", Fee: "0"},
			eventLine{Type: escrow.EscrowRefunded, After: hour(4), Escrow: "sofa", Actor: partySeller, State: escrow.AwaitingConfirmation, Amount: "50.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowRefunded, After: hour(5), Escrow: "sofa", Actor: partySeller, State: escrow.AwaitingConfirmation, Amount: "25.50 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowReleased, After: hour(6), Escrow: "sofa", Actor: partyBuyer, State: escrow.Completed, Amount: "224.50 CNY", Fee: "1.35 CNY"},
		))
		expectJournal(f, partyBuyer, []entryLine{buyerDeposit, holdLine(3, "sofa", 30000), refundLine(4, "sofa", 5000),
			refundLine(5, "sofa", 2550), releaseLine(6, "sofa", 22450, 135)})
		expectJournal(f, partySeller, []entryLine{sellerDeposit, releaseLine(6, "sofa", 22450, 135)})
		f.check()
	})

	t.Run("RefundRequestsAgreed", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		fl := flowRun{f, t}
		l, ctx := f.l, f.ctx
		terms := escrow.Terms{ID: "lamp", Buyer: partyBuyer, Seller: partySeller, Price: cny("200.00")}
		fl.step("open", figures{State: escrow.AwaitingPayment, Version: 1}, func() (escrow.Escrow, error) { return l.Open(ctx, terms) })
		fl.step("pay", figures{State: escrow.AwaitingShipment, Held: 20000, Version: 2},
			func() (escrow.Escrow, error) { return l.Pay(ctx, "lamp", partyBuyer) })
		e := fl.step("request 80.00", figures{State: escrow.RefundRequested, Held: 20000, Version: 3},
			func() (escrow.Escrow, error) {
				return l.RequestRefund(ctx, "lamp", partyBuyer, cny("80.00"), "only one of two")
			})
		wantRequest := escrow.RefundRequest{Amount: cny("80.00"), Reason: "only one of two", At: start.Add(hour(3))}
		if diff := cmp.Diff(wantRequest, e.Refund); diff != "" {
			t.Errorf("refund request (-want +got):\n%s", diff)
		}
		if e.Resume != escrow.AwaitingShipment || e.Paused != 7*day-time.Hour {
			t.Errorf("resume %s with %s left, want AwaitingShipment with 7 days less an hour", e.Resume, e.Paused)
		}
		// A partial refund returns the escrow to where it was, with the
		// shipping time that was left when the request paused it.
		e = fl.step("agree 80.00", figures{State: escrow.AwaitingShipment, Held: 12000, Refunded: 8000, Version: 4},
			func() (escrow.Escrow, error) { return l.AgreeRefund(ctx, "lamp", partySeller) })
		if want := start.Add(hour(4) + 7*day - time.Hour); !e.DueAt.Equal(want) {
			t.Errorf("shipping due %s, want %s", e.DueAt, want)
		}
		expectPurses(f, map[string]purse{partyBuyer: {88000, 12000}, partySeller: {100000, 0}})
		fl.step("ship", figures{State: escrow.AwaitingConfirmation, Held: 12000, Refunded: 8000, Version: 5},
			func() (escrow.Escrow, error) { return l.Ship(ctx, "lamp", partySeller, "EMS-7") })
		fl.step("request the rest", figures{State: escrow.RefundRequested, Held: 12000, Refunded: 8000, Version: 6},
			func() (escrow.Escrow, error) {
				return l.RequestRefund(ctx, "lamp", partyBuyer, cny("120.00"), "broken\nin two")
			})
		e = fl.step("agree the rest", figures{State: escrow.Refunded, Refunded: 20000, Version: 7},
			func() (escrow.Escrow, error) { return l.AgreeRefund(ctx, "lamp", partySeller) })
		if !e.DueAt.IsZero() || !e.EndedAt.Equal(start.Add(hour(7))) {
			t.Errorf("due %s, ended %s", e.DueAt, e.EndedAt)
		}
		expectPurses(f, map[string]purse{partyBuyer: {100000, 0}, partySeller: {100000, 0}, escrow.FeeAccount: {0, 0}})
		expectEvents(f, append(accountLines(partyBuyer, partySeller),
			eventLine{Type: escrow.EscrowOpened, After: hour(1), Escrow: "lamp", Actor: partyBuyer, State: escrow.AwaitingPayment, Amount: "200.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowPaid, After: hour(2), Escrow: "lamp", Actor: partyBuyer, State: escrow.AwaitingShipment, Amount: "200.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowRefundRequested, After: hour(3), Escrow: "lamp", Actor: partyBuyer, State: escrow.RefundRequested,
				Amount: "80.00 CNY", Fee: "0", Note: "only one of two"},
			eventLine{Type: escrow.EscrowRefunded, After: hour(4), Escrow: "lamp", Actor: partySeller, State: escrow.AwaitingShipment, Amount: "80.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowShipped, After: hour(5), Escrow: "lamp", Actor: partySeller, State: escrow.AwaitingConfirmation,
				Amount: "0", Fee: "0", Note: "EMS-7"},
			eventLine{Type: escrow.EscrowRefundRequested, After: hour(6), Escrow: "lamp", Actor: partyBuyer, State: escrow.RefundRequested,
				Amount: "120.00 CNY", Fee: "0", Note: "broken\nin two"},
			eventLine{Type: escrow.EscrowRefunded, After: hour(7), Escrow: "lamp", Actor: partySeller, State: escrow.Refunded, Amount: "120.00 CNY", Fee: "0"},
		))
		expectJournal(f, partyBuyer, []entryLine{buyerDeposit, holdLine(3, "lamp", 20000), refundLine(4, "lamp", 8000), refundLine(5, "lamp", 12000)})
		expectJournal(f, partySeller, []entryLine{sellerDeposit})
		expectJournal(f, escrow.FeeAccount, nil)
		f.check()
	})

	t.Run("RefusedDisputedResolved", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		fl := flowRun{f, t}
		l, ctx := f.l, f.ctx
		terms := escrow.Terms{ID: "rug", Buyer: partyBuyer, Seller: partySeller, Arbiter: partyArbiter, Price: cny("400.00")}
		fl.step("open", figures{State: escrow.AwaitingPayment, Version: 1}, func() (escrow.Escrow, error) { return l.Open(ctx, terms) })
		fl.step("pay", figures{State: escrow.AwaitingShipment, Held: 40000, Version: 2},
			func() (escrow.Escrow, error) { return l.Pay(ctx, "rug", partyBuyer) })
		fl.step("ship", figures{State: escrow.AwaitingConfirmation, Held: 40000, Version: 3},
			func() (escrow.Escrow, error) { return l.Ship(ctx, "rug", partySeller, "") })
		fl.step("request all", figures{State: escrow.RefundRequested, Held: 40000, Version: 4},
			func() (escrow.Escrow, error) {
				return l.RequestRefund(ctx, "rug", partyBuyer, cny("400.00"), "not as described")
			})
		fl.step("refuse", figures{State: escrow.AwaitingConfirmation, Held: 40000, Version: 5},
			func() (escrow.Escrow, error) { return l.RefuseRefund(ctx, "rug", partySeller, "as described") })
		e := fl.step("dispute", figures{State: escrow.Disputed, Held: 40000, Version: 6},
			func() (escrow.Escrow, error) { return l.Dispute(ctx, "rug", partyBuyer, "please look at the photos") })
		if !e.DueAt.IsZero() {
			t.Errorf("a disputed escrow has a timer due %s", e.DueAt)
		}
		// The fee is 0.6% of the seller's 250.00 only.
		fl.step("resolve", figures{State: escrow.Resolved, Released: 25000, Refunded: 15000, Fees: 150, Version: 7},
			func() (escrow.Escrow, error) {
				return l.Resolve(ctx, "rug", partyArbiter, escrow.Split{Buyer: cny("150.00"), Seller: cny("250.00")})
			})
		expectPurses(f, map[string]purse{partyBuyer: {75000, 0}, partySeller: {124850, 0}, escrow.FeeAccount: {150, 0}})
		expectEvents(f, append(accountLines(partyBuyer, partySeller),
			eventLine{Type: escrow.EscrowOpened, After: hour(1), Escrow: "rug", Actor: partyBuyer, State: escrow.AwaitingPayment, Amount: "400.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowPaid, After: hour(2), Escrow: "rug", Actor: partyBuyer, State: escrow.AwaitingShipment, Amount: "400.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowShipped, After: hour(3), Escrow: "rug", Actor: partySeller, State: escrow.AwaitingConfirmation, Amount: "0", Fee: "0"},
			eventLine{Type: escrow.EscrowRefundRequested, After: hour(4), Escrow: "rug", Actor: partyBuyer, State: escrow.RefundRequested,
				Amount: "400.00 CNY", Fee: "0", Note: "not as described"},
			eventLine{Type: escrow.EscrowRefundRefused, After: hour(5), Escrow: "rug", Actor: partySeller, State: escrow.AwaitingConfirmation,
				Amount: "0", Fee: "0", Note: "as described"},
			eventLine{Type: escrow.EscrowDisputed, After: hour(6), Escrow: "rug", Actor: partyBuyer, State: escrow.Disputed,
				Amount: "0", Fee: "0", Note: "please look at the photos"},
			eventLine{Type: escrow.EscrowResolved, After: hour(7), Escrow: "rug", Actor: partyArbiter, State: escrow.Resolved,
				Amount: "400.00 CNY", Fee: "1.50 CNY", Note: "buyer 150.00 CNY, seller 250.00 CNY"},
		))
		split := entryLine{Seq: 4, Kind: escrow.EntrySplit, Escrow: "rug", Postings: []escrow.Posting{
			{Account: partyBuyer, Bucket: escrow.Held, Change: -40000},
			{Account: partyBuyer, Bucket: escrow.Available, Change: 15000},
			{Account: partySeller, Bucket: escrow.Available, Change: 24850},
			{Account: escrow.FeeAccount, Bucket: escrow.Available, Change: 150}}}
		expectJournal(f, partyBuyer, []entryLine{buyerDeposit, holdLine(3, "rug", 40000), split})
		expectJournal(f, partySeller, []entryLine{sellerDeposit, split})
		expectJournal(f, escrow.FeeAccount, []entryLine{split})
		f.check()
	})

	t.Run("Milestones", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		fl := flowRun{f, t}
		l, ctx := f.l, f.ctx
		terms := escrow.Terms{ID: "site", Buyer: partyBuyer, Seller: partySeller, Price: cny("600.00"), Milestones: []escrow.Milestone{
			{Name: "design", Amount: cny("100.25")}, {Name: "build", Amount: cny("200.75")}, {Name: "launch", Amount: cny("299.00")}}}
		fl.step("open", figures{State: escrow.AwaitingPayment, Version: 1}, func() (escrow.Escrow, error) { return l.Open(ctx, terms) })
		fl.step("pay", figures{State: escrow.AwaitingShipment, Held: 60000, Version: 2},
			func() (escrow.Escrow, error) { return l.Pay(ctx, "site", partyBuyer) })
		fl.step("ship", figures{State: escrow.AwaitingConfirmation, Held: 60000, Version: 3},
			func() (escrow.Escrow, error) { return l.Ship(ctx, "site", partySeller, "") })
		// The fee is charged per tranche: 60.15 → 60, 120.45 → 120,
		// 179.4 → 179 fen; 359 in all where the whole price would owe 360.
		fl.step("design", figures{State: escrow.AwaitingConfirmation, Held: 49975, Released: 10025, Fees: 60, NextMilestone: 1, Version: 4},
			func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "site", partyBuyer, 0) })
		expectPurses(f, map[string]purse{partyBuyer: {40000, 49975}, partySeller: {109965, 0}, escrow.FeeAccount: {60, 0}})
		fl.step("build", figures{State: escrow.AwaitingConfirmation, Held: 29900, Released: 30100, Fees: 180, NextMilestone: 2, Version: 5},
			func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "site", partyBuyer, 1) })
		fl.step("launch", figures{State: escrow.Completed, Released: 60000, Fees: 359, NextMilestone: 3, Version: 6},
			func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "site", partyBuyer, 2) })
		expectPurses(f, map[string]purse{partyBuyer: {40000, 0}, partySeller: {159641, 0}, escrow.FeeAccount: {359, 0}})
		expectEvents(f, append(accountLines(partyBuyer, partySeller),
			eventLine{Type: escrow.EscrowOpened, After: hour(1), Escrow: "site", Actor: partyBuyer, State: escrow.AwaitingPayment, Amount: "600.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowPaid, After: hour(2), Escrow: "site", Actor: partyBuyer, State: escrow.AwaitingShipment, Amount: "600.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowShipped, After: hour(3), Escrow: "site", Actor: partySeller, State: escrow.AwaitingConfirmation, Amount: "0", Fee: "0"},
			eventLine{Type: escrow.EscrowReleased, After: hour(4), Escrow: "site", Actor: partyBuyer, State: escrow.AwaitingConfirmation,
				Amount: "100.25 CNY", Fee: "0.60 CNY", Note: "design"},
			eventLine{Type: escrow.EscrowReleased, After: hour(5), Escrow: "site", Actor: partyBuyer, State: escrow.AwaitingConfirmation,
				Amount: "200.75 CNY", Fee: "1.20 CNY", Note: "build"},
			eventLine{Type: escrow.EscrowReleased, After: hour(6), Escrow: "site", Actor: partyBuyer, State: escrow.Completed,
				Amount: "299.00 CNY", Fee: "1.79 CNY", Note: "launch"},
		))
		expectJournal(f, partySeller, []entryLine{sellerDeposit, releaseLine(4, "site", 10025, 60),
			releaseLine(5, "site", 20075, 120), releaseLine(6, "site", 29900, 179)})
		expectJournal(f, escrow.FeeAccount, []entryLine{releaseLine(4, "site", 10025, 60),
			releaseLine(5, "site", 20075, 120), releaseLine(6, "site", 29900, 179)})
		f.check()
	})

	t.Run("MilestonesFixedFee", func(t *testing.T) {
		f := newFixtureWith(t, &escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006"),
			Fixed: []escrow.Money{cny("1.00")}}})
		f.funded(partyBuyer, partySeller)
		fl := flowRun{f, t}
		l, ctx := f.l, f.ctx
		terms := escrow.Terms{ID: "roof", Buyer: partyBuyer, Seller: partySeller, Price: cny("300.00"), Milestones: []escrow.Milestone{
			{Name: "tiles", Amount: cny("100.00")}, {Name: "labour", Amount: cny("200.00")}}}
		e := fl.step("open", figures{State: escrow.AwaitingPayment, Version: 1}, func() (escrow.Escrow, error) { return l.Open(ctx, terms) })
		if want := (escrow.FeeTerms{RatePPM: 6000, Fixed: cny("1.00"), Rounding: escrow.RoundHalfEven}); e.Fee != want {
			t.Errorf("fee terms %+v, want %+v", e.Fee, want)
		}
		fl.step("pay", figures{State: escrow.AwaitingShipment, Held: 30000, Version: 2},
			func() (escrow.Escrow, error) { return l.Pay(ctx, "roof", partyBuyer) })
		fl.step("ship", figures{State: escrow.AwaitingConfirmation, Held: 30000, Version: 3},
			func() (escrow.Escrow, error) { return l.Ship(ctx, "roof", partySeller, "") })
		// First release: 0.60 + the fixed 1.00. Second: 1.20 only.
		fl.step("tiles", figures{State: escrow.AwaitingConfirmation, Held: 20000, Released: 10000, Fees: 160, NextMilestone: 1, Version: 4},
			func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "roof", partyBuyer, 0) })
		fl.step("labour", figures{State: escrow.Completed, Released: 30000, Fees: 280, NextMilestone: 2, Version: 5},
			func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "roof", partyBuyer, 1) })
		expectPurses(f, map[string]purse{partyBuyer: {70000, 0}, partySeller: {129720, 0}, escrow.FeeAccount: {280, 0}})

		// A fee is never more than the release it is taken from: the
		// fixed 1.00 on a first tranche of 0.50 takes all of it.
		terms = escrow.Terms{ID: "sample", Buyer: partyBuyer, Seller: partySeller, Price: cny("10.50"), Milestones: []escrow.Milestone{
			{Name: "sample", Amount: cny("0.50")}, {Name: "rest", Amount: cny("10.00")}}}
		fl.step("open", figures{State: escrow.AwaitingPayment, Version: 1}, func() (escrow.Escrow, error) { return l.Open(ctx, terms) })
		fl.step("pay", figures{State: escrow.AwaitingShipment, Held: 1050, Version: 2},
			func() (escrow.Escrow, error) { return l.Pay(ctx, "sample", partyBuyer) })
		fl.step("ship", figures{State: escrow.AwaitingConfirmation, Held: 1050, Version: 3},
			func() (escrow.Escrow, error) { return l.Ship(ctx, "sample", partySeller, "") })
		fl.step("sample", figures{State: escrow.AwaitingConfirmation, Held: 1000, Released: 50, Fees: 50, NextMilestone: 1, Version: 4},
			func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "sample", partyBuyer, 0) })
		fl.step("rest", figures{State: escrow.Completed, Released: 1050, Fees: 56, NextMilestone: 2, Version: 5},
			func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "sample", partyBuyer, 1) })
		expectPurses(f, map[string]purse{partyBuyer: {68950, 0}, partySeller: {129720 + 994, 0}, escrow.FeeAccount: {336, 0}})
		f.check()
	})

	t.Run("MilestoneRefundsComeOffLastTranches", func(t *testing.T) {
		terms := escrow.Terms{ID: "app", Buyer: partyBuyer, Seller: partySeller, Price: cny("600.00"), Milestones: []escrow.Milestone{
			{Name: "one", Amount: cny("100.00")}, {Name: "two", Amount: cny("200.00")}, {Name: "three", Amount: cny("300.00")}}}
		begin := func(t *testing.T) (flowRun, *escrow.Ledger) {
			f := newFixture(t)
			f.funded(partyBuyer, partySeller)
			fl := flowRun{f, t}
			l, ctx := f.l, f.ctx
			fl.step("open", figures{State: escrow.AwaitingPayment, Version: 1}, func() (escrow.Escrow, error) { return l.Open(ctx, terms) })
			fl.step("pay", figures{State: escrow.AwaitingShipment, Held: 60000, Version: 2},
				func() (escrow.Escrow, error) { return l.Pay(ctx, "app", partyBuyer) })
			fl.step("ship", figures{State: escrow.AwaitingConfirmation, Held: 60000, Version: 3},
				func() (escrow.Escrow, error) { return l.Ship(ctx, "app", partySeller, "") })
			fl.step("one", figures{State: escrow.AwaitingConfirmation, Held: 50000, Released: 10000, Fees: 60, NextMilestone: 1, Version: 4},
				func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "app", partyBuyer, 0) })
			return fl, l
		}

		t.Run("LastTrancheShrinks", func(t *testing.T) {
			fl, l := begin(t)
			ctx := fl.ctx
			// 250.00 off the last tranche of 300.00 leaves it 50.00; the
			// second keeps its 200.00.
			fl.step("refund 250.00", figures{State: escrow.AwaitingConfirmation, Held: 25000, Released: 10000, Refunded: 25000,
				Fees: 60, NextMilestone: 1, Version: 5},
				func() (escrow.Escrow, error) { return l.Refund(ctx, "app", partySeller, cny("250.00")) })
			fl.step("two", figures{State: escrow.AwaitingConfirmation, Held: 5000, Released: 30000, Refunded: 25000,
				Fees: 180, NextMilestone: 2, Version: 6},
				func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "app", partyBuyer, 1) })
			fl.step("three", figures{State: escrow.Completed, Released: 35000, Refunded: 25000, Fees: 210, NextMilestone: 3, Version: 7},
				func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "app", partyBuyer, 2) })
			expectPurses(fl.world, map[string]purse{partyBuyer: {65000, 0}, partySeller: {134790, 0}, escrow.FeeAccount: {210, 0}})
			evs := eventsAfter(fl.world, 0)
			if last := evs[len(evs)-1]; last.Amount != cny("50.00") || last.Note != "three" || last.Fee != cny("0.30") {
				t.Errorf("last release %+v, want 50.00 of three with 0.30 fee", last)
			}
			fl.check()
		})

		t.Run("RefundReachesSecondTranche", func(t *testing.T) {
			fl, l := begin(t)
			ctx := fl.ctx
			// 350.00 takes all of the third tranche and 50.00 of the second,
			// so releasing the second completes the escrow.
			fl.step("refund 350.00", figures{State: escrow.AwaitingConfirmation, Held: 15000, Released: 10000, Refunded: 35000,
				Fees: 60, NextMilestone: 1, Version: 5},
				func() (escrow.Escrow, error) { return l.Refund(ctx, "app", partySeller, cny("350.00")) })
			fl.step("two", figures{State: escrow.Completed, Released: 25000, Refunded: 35000, Fees: 150, NextMilestone: 2, Version: 6},
				func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "app", partyBuyer, 1) })
			expectPurses(fl.world, map[string]purse{partyBuyer: {75000, 0}, partySeller: {124850, 0}, escrow.FeeAccount: {150, 0}})
			before := fl.dump()
			if _, err := l.ConfirmMilestone(ctx, "app", partyBuyer, 2); !errors.Is(err, escrow.ErrInvalidTransition) {
				t.Errorf("confirming the refunded tranche: err = %v, want ErrInvalidTransition", err)
			}
			fl.unchanged(before, "confirming the refunded tranche")
			expectJournal(fl.world, partyBuyer, []entryLine{buyerDeposit, holdLine(3, "app", 60000), releaseLine(4, "app", 10000, 60),
				refundLine(5, "app", 35000), releaseLine(6, "app", 15000, 90)})
			fl.check()
		})
	})

	t.Run("Cancel", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		fl := flowRun{f, t}
		l, ctx := f.l, f.ctx
		for _, c := range []struct{ id, actor string }{{"by-seller", partySeller}, {"by-buyer", partyBuyer}} {
			terms := escrow.Terms{ID: c.id, Buyer: partyBuyer, Seller: partySeller, Price: cny("50.00")}
			fl.step("open", figures{State: escrow.AwaitingPayment, Version: 1}, func() (escrow.Escrow, error) { return l.Open(ctx, terms) })
			e := fl.step("cancel", figures{State: escrow.Closed, Version: 2},
				func() (escrow.Escrow, error) { return l.Cancel(ctx, c.id, c.actor) })
			if !e.DueAt.IsZero() || e.EndedAt.IsZero() || !e.PaidAt.IsZero() {
				t.Errorf("closed escrow due %s, ended %s, paid %s", e.DueAt, e.EndedAt, e.PaidAt)
			}
		}
		expectPurses(f, map[string]purse{partyBuyer: {100000, 0}, partySeller: {100000, 0}})
		expectEvents(f, append(accountLines(partyBuyer, partySeller),
			eventLine{Type: escrow.EscrowOpened, After: hour(1), Escrow: "by-seller", Actor: partyBuyer, State: escrow.AwaitingPayment, Amount: "50.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowClosed, After: hour(2), Escrow: "by-seller", Actor: partySeller, State: escrow.Closed, Amount: "0", Fee: "0"},
			eventLine{Type: escrow.EscrowOpened, After: hour(3), Escrow: "by-buyer", Actor: partyBuyer, State: escrow.AwaitingPayment, Amount: "50.00 CNY", Fee: "0"},
			eventLine{Type: escrow.EscrowClosed, After: hour(4), Escrow: "by-buyer", Actor: partyBuyer, State: escrow.Closed, Amount: "0", Fee: "0"},
		))
		expectJournal(f, partyBuyer, []entryLine{buyerDeposit})
		f.check()
	})
}

// TestMilestonesReleasedAtOnce: Confirm and auto-confirm release every
// tranche something is left of, and NextMilestone counts them all.
func TestMilestonesReleasedAtOnce(t *testing.T) {
	terms := escrow.Terms{ID: "app", Buyer: partyBuyer, Seller: partySeller, Price: cny("600.00"), Milestones: []escrow.Milestone{
		{Name: "one", Amount: cny("100.00")}, {Name: "two", Amount: cny("200.00")}, {Name: "three", Amount: cny("300.00")}}}
	for _, c := range []struct {
		name    string
		first   bool   // confirm the first milestone on its own
		refund  string // then refund this much, if any
		byClock bool   // release the rest by auto-confirm, not Confirm
		want    int
	}{
		{"AllAtOnce", false, "", false, 3},
		{"AllByTheClock", false, "", true, 3},
		{"RestAfterTheFirst", true, "", false, 3},
		{"LastTrancheRefunded", true, "300.00", false, 2},
		{"PartOfSecondRefunded", true, "350.00", true, 2},
		{"PartOfLastRefunded", false, "10.00", false, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.funded(partyBuyer, partySeller)
			l, ctx := f.l, f.ctx
			setup(t, func() (escrow.Escrow, error) { return l.Open(ctx, terms) },
				func() (escrow.Escrow, error) { return l.Pay(ctx, "app", partyBuyer) },
				func() (escrow.Escrow, error) { return l.Ship(ctx, "app", partySeller, "") })
			if c.first {
				f.call("first", func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, "app", partyBuyer, 0) })
			}
			if c.refund != "" {
				f.call("refund", func() (escrow.Escrow, error) { return l.Refund(ctx, "app", partySeller, cny(c.refund)) })
			}
			if c.byClock {
				f.clock.Advance(escrow.DefaultTimers().ConfirmWithin)
				f.processDue()
			} else {
				f.call("confirm", func() (escrow.Escrow, error) { return l.Confirm(ctx, "app", partyBuyer) })
			}
			e := escrowNow(f, "app")
			if e.State != escrow.Completed || e.NextMilestone != c.want {
				t.Errorf("%s with next milestone %d, want completed with %d", e.State, e.NextMilestone, c.want)
			}
			f.check()
		})
	}
}
