package storagetest

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// testConcurrency races calls against each other on one ledger: whatever
// the interleaving, each action happens at most once, money is never spent
// twice nor lost, and the invariants hold afterwards.
func testConcurrency(t *testing.T, h Harness) {
	t.Run("PaySameEscrow", func(t *testing.T) { testRacePay(t, h) })
	t.Run("ConfirmRefundOrDispute", func(t *testing.T) { testRaceEndings(t, h) })
	t.Run("PayBeyondBalance", func(t *testing.T) { testRaceOverspend(t, h) })
	t.Run("DepositsAndWithdrawals", func(t *testing.T) { testRaceDeposits(t, h) })
	t.Run("SameIdempotencyKey", func(t *testing.T) { testRaceIdempotency(t, h) })
	t.Run("ProcessDue", func(t *testing.T) { testRaceProcessDue(t, h) })
}

// raceAll runs fn(0) … fn(n-1) in n goroutines released at once and returns
// their errors by index.
func raceAll(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// raceFunded opens an account holding units fen.
func raceFunded(f *fixture, id string, units int64) {
	f.t.Helper()
	if _, err := f.l.OpenAccount(f.ctx, id); err != nil {
		f.t.Fatalf("OpenAccount(%q): %v", id, err)
	}
	if units > 0 {
		if _, err := f.l.Deposit(f.ctx, id, fen(units)); err != nil {
			f.t.Fatalf("Deposit(%q): %v", id, err)
		}
	}
}

// raceOpen opens an escrow or fails the test.
func raceOpen(f *fixture, t escrow.Terms) escrow.Escrow {
	f.t.Helper()
	e, err := f.l.Open(f.ctx, t)
	if err != nil {
		f.t.Fatalf("Open(%s): %v", t.ID, err)
	}
	return e
}

// raceEventTypes returns the types of the events of one escrow, in order.
func raceEventTypes(f *fixture, id string) []escrow.EventType {
	f.t.Helper()
	var types []escrow.EventType
	for _, ev := range eventsAfter(f, 0) {
		if ev.Escrow == id {
			types = append(types, ev.Type)
		}
	}
	return types
}

// raceCountOK returns how many errs are nil and fails the test if any other is
// not want.
func raceCountOK(t *testing.T, errs []error, want error) int {
	t.Helper()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, want):
			t.Errorf("call %d: got %v, want nil or %v", i, err, want)
		}
	}
	return ok
}

func testRacePay(t *testing.T, h Harness) {
	const goroutines, rounds, price = 16, 10, 19900
	f := newFixture(t, h)
	raceFunded(f, "buyer", rounds*price)
	raceFunded(f, "seller", 0)
	for r := range rounds {
		id := "pay-" + strconv.Itoa(r)
		raceOpen(f, escrow.Terms{ID: id, Buyer: "buyer", Seller: "seller", Price: fen(price)})
		errs := raceAll(goroutines, func(int) error { _, err := f.l.Pay(f.ctx, id, "buyer"); return err })
		if ok := raceCountOK(t, errs, escrow.ErrInvalidTransition); ok != 1 {
			t.Fatalf("round %d: %d of %d payments succeeded, want exactly 1", r, ok, goroutines)
		}
		if a, held := f.balance("buyer"); a != int64(rounds-r-1)*price || held != int64(r+1)*price {
			t.Fatalf("round %d: buyer has %d available and %d held, want %d and %d",
				r, a, held, int64(rounds-r-1)*price, int64(r+1)*price)
		}
		if e := escrowNow(f, id); e.State != escrow.AwaitingShipment || e.Held.Units() != price || e.Version != 2 {
			t.Fatalf("round %d: escrow is %s holding %s at version %d, want AwaitingShipment holding %d at version 2",
				r, e.State, e.Held, e.Version, price)
		}
		want := []escrow.EventType{escrow.EscrowOpened, escrow.EscrowPaid}
		if diff := cmp.Diff(want, raceEventTypes(f, id)); diff != "" {
			t.Fatalf("round %d: events (-want +got):\n%s", r, diff)
		}
		f.check()
	}
	// A late payment is refused like the racing ones, and changes nothing.
	before := f.dump()
	if _, err := f.l.Pay(f.ctx, "pay-0", "buyer"); !errors.Is(err, escrow.ErrInvalidTransition) {
		t.Fatalf("paying again: got %v, want ErrInvalidTransition", err)
	}
	f.unchanged(before, "paying a paid escrow")
}

// testRaceEndings races the four ways a shipped escrow can go on: the
// buyer confirms, the seller refunds everything, the buyer asks for a
// refund, the buyer calls the arbiter. Confirm, refund or dispute wins
// alone, or the request wins and the dispute, still allowed on a refund
// request, follows it. Whatever wins, the money is in exactly one place.
func testRaceEndings(t *testing.T, h Harness) {
	const rounds, price = 40, 25000
	f := newFixture(t, h)
	f.accounts("buyer", "seller")
	if _, err := f.l.Deposit(f.ctx, "buyer", fen(rounds*price)); err != nil {
		t.Fatal(err)
	}
	const (
		confirm = 1 << iota
		refund
		request
		dispute
	)
	outcomes := map[int]int{}
	for r := range rounds {
		id := "end-" + strconv.Itoa(r)
		raceOpen(f, escrow.Terms{ID: id, Buyer: "buyer", Seller: "seller", Arbiter: "arbiter", Price: fen(price)})
		if _, err := f.l.Pay(f.ctx, id, "buyer"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.l.Ship(f.ctx, id, "seller", "SF1"); err != nil {
			t.Fatal(err)
		}
		buyerAvail, buyerHeld := f.balance("buyer")
		sellerAvail, _ := f.balance("seller")
		fees, _ := f.balance(escrow.FeeAccount)

		errs := raceAll(4, func(i int) error {
			var err error
			switch 1 << i {
			case confirm:
				_, err = f.l.Confirm(f.ctx, id, "buyer")
			case refund:
				_, err = f.l.Refund(f.ctx, id, "seller", fen(price))
			case request:
				_, err = f.l.RequestRefund(f.ctx, id, "buyer", fen(price), "late")
			case dispute:
				_, err = f.l.Dispute(f.ctx, id, "buyer", "no answer")
			}
			return err
		})
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won |= 1 << i
			case !errors.Is(err, escrow.ErrInvalidTransition):
				t.Fatalf("round %d: call %d: %v, want nil or ErrInvalidTransition", r, i, err)
			}
		}
		outcomes[won]++

		e := escrowNow(f, id)
		var wantState escrow.State
		var wantEvents []escrow.EventType
		var held, released, refunded, fee int64
		switch won {
		case confirm:
			wantState, released, fee = escrow.Completed, price, simFee(price)
			wantEvents = []escrow.EventType{escrow.EscrowReleased}
		case refund:
			wantState, refunded = escrow.Refunded, price
			wantEvents = []escrow.EventType{escrow.EscrowRefunded}
		case dispute:
			wantState, held = escrow.Disputed, price
			wantEvents = []escrow.EventType{escrow.EscrowDisputed}
		case request | dispute:
			wantState, held = escrow.Disputed, price
			wantEvents = []escrow.EventType{escrow.EscrowRefundRequested, escrow.EscrowDisputed}
		default:
			t.Fatalf("round %d: impossible set of winners %04b: %v", r, won, errs)
		}
		got := [4]int64{e.Held.Units(), e.Released.Units(), e.Refunded.Units(), e.Fees.Units()}
		if e.State != wantState || got != [4]int64{held, released, refunded, fee} {
			t.Fatalf("round %d, winners %04b: escrow %s with held/released/refunded/fees %v, want %s with %v",
				r, won, e.State, got, wantState, [4]int64{held, released, refunded, fee})
		}
		wantEvents = append([]escrow.EventType{escrow.EscrowOpened, escrow.EscrowPaid, escrow.EscrowShipped}, wantEvents...)
		if diff := cmp.Diff(wantEvents, raceEventTypes(f, id)); diff != "" {
			t.Fatalf("round %d, winners %04b: events (-want +got):\n%s", r, won, diff)
		}
		// The balances moved exactly as the winner says, and nowhere else.
		ba, bh := f.balance("buyer")
		sa, _ := f.balance("seller")
		fa, _ := f.balance(escrow.FeeAccount)
		gotMoves := [4]int64{ba - buyerAvail, bh - buyerHeld, sa - sellerAvail, fa - fees}
		wantMoves := [4]int64{refunded, -released - refunded, released - fee, fee}
		if gotMoves != wantMoves {
			t.Fatalf("round %d, winners %04b: buyer available/held, seller, fees moved by %v, want %v", r, won, gotMoves, wantMoves)
		}
		f.check()
	}
	t.Logf("winners over %d rounds (bits: confirm, refund, request, dispute): %v", rounds, outcomes)
}

// testRaceOverspend pays n escrows at once from a buyer who can afford k of
// them: exactly k are paid, the rest fail for want of funds, and no reader
// ever sees a negative balance.
func testRaceOverspend(t *testing.T, h Harness) {
	const n, k, price = 16, 5, 3000
	f := newFixture(t, h)
	raceFunded(f, "buyer", k*price+price-1)
	raceFunded(f, "seller", 0)
	for i := range n {
		raceOpen(f, escrow.Terms{ID: "o-" + strconv.Itoa(i), Buyer: "buyer", Seller: "seller", Price: fen(price)})
	}

	var negative, reads, readErrs atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	look := func() {
		reads.Add(1)
		b, err := f.l.Balance(f.ctx, "buyer", escrow.CNY)
		switch {
		case err != nil:
			readErrs.Add(1)
		case b.Available.Units() < 0 || b.Held.Units() < 0 || b.Total().Units() != k*price+price-1:
			negative.Add(1)
		}
	}
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				look() // at least one read, whatever the scheduling
				return
			default:
				look()
			}
		}
	}()
	errs := raceAll(n, func(i int) error { _, err := f.l.Pay(f.ctx, "o-"+strconv.Itoa(i), "buyer"); return err })
	close(stop)
	<-watched

	if ok := raceCountOK(t, errs, escrow.ErrInsufficientFunds); ok != k {
		t.Fatalf("%d payments succeeded, want %d", ok, k)
	}
	if negative.Load() != 0 || readErrs.Load() != 0 || reads.Load() == 0 {
		t.Fatalf("a reader made %d reads: %d failed, %d saw inconsistent balances", reads.Load(), readErrs.Load(), negative.Load())
	}
	if a, held := f.balance("buyer"); a != price-1 || held != k*price {
		t.Fatalf("buyer has %d available and %d held, want %d and %d", a, held, price-1, k*price)
	}
	paid := 0
	for i := range n {
		e := escrowNow(f, "o-"+strconv.Itoa(i))
		switch {
		case errs[i] == nil && e.State == escrow.AwaitingShipment && e.Held.Units() == price:
			paid++
		case errs[i] != nil && e.State == escrow.AwaitingPayment && e.Held.IsZero():
		default:
			t.Fatalf("escrow %d is %s holding %s after Pay returned %v", i, e.State, e.Held, errs[i])
		}
	}
	if paid != k {
		t.Fatalf("%d escrows paid, want %d", paid, k)
	}
	f.check()
}

// testRaceDeposits runs deposits and withdrawals on one account from many
// goroutines, and withdrawals that together ask for more than another
// account holds.
func testRaceDeposits(t *testing.T, h Harness) {
	const goroutines, pairs = 8, 50
	f := newFixture(t, h)
	f.accounts("shared")
	raceFunded(f, "thin", 100)

	var want atomic.Int64
	errs := raceAll(goroutines, func(g int) error {
		for i := range pairs {
			d := int64(1 + (g*131+i*17)%5000)
			w := 1 + d/2
			if _, err := f.l.Deposit(f.ctx, "shared", fen(d)); err != nil {
				return err
			}
			// Each goroutine withdraws less than it has just deposited, so
			// the balance never drops below its start and no withdrawal
			// may fail.
			if _, err := f.l.Withdraw(f.ctx, "shared", fen(w)); err != nil {
				return err
			}
			want.Add(d - w)
		}
		return nil
	})
	for g, err := range errs {
		if err != nil {
			t.Fatalf("goroutine %d: %v", g, err)
		}
	}
	if a, held := f.balance("shared"); a != 100000+want.Load() || held != 0 {
		t.Fatalf("shared has %d available and %d held, want %d and 0", a, held, 100000+want.Load())
	}
	entries, err := f.l.Journal(f.ctx, "shared", 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1+2*goroutines*pairs {
		t.Fatalf("%d journal entries for shared, want %d", len(entries), 1+2*goroutines*pairs)
	}
	var sum int64
	for i, e := range entries {
		sum += e.Change("shared")
		if i > 0 && e.Seq <= entries[i-1].Seq {
			t.Fatalf("journal out of order: %d after %d", e.Seq, entries[i-1].Seq)
		}
	}
	if sum != 100000+want.Load() {
		t.Fatalf("shared's journal adds up to %d, want %d", sum, 100000+want.Load())
	}

	// Sixteen withdrawals of 10 fen from 100: exactly ten succeed.
	errs = raceAll(16, func(int) error { _, err := f.l.Withdraw(f.ctx, "thin", fen(10)); return err })
	if ok := raceCountOK(t, errs, escrow.ErrInsufficientFunds); ok != 10 {
		t.Fatalf("%d withdrawals of 10 from 100 succeeded, want 10", ok)
	}
	if a, _ := f.balance("thin"); a != 0 {
		t.Fatalf("thin has %d left, want 0", a)
	}
	f.check()
}

// testRaceIdempotency sends one call with one idempotency key from many
// goroutines: it takes effect once and every caller gets the same result.
func testRaceIdempotency(t *testing.T, h Harness) {
	const goroutines = 16
	f := newFixture(t, h)
	f.accounts("buyer", "seller")
	raceOpen(f, escrow.Terms{ID: "idem", Buyer: "buyer", Seller: "seller", Arbiter: "arbiter", Price: fen(4200),
		Milestones: []escrow.Milestone{{Name: "half", Amount: fen(2100)}, {Name: "rest", Amount: fen(2100)}}})

	balances := make([]escrow.Balance, goroutines)
	errs := raceAll(goroutines, func(i int) error {
		var err error
		balances[i], err = f.l.Deposit(f.ctx, "buyer", fen(1234), escrow.IdempotencyKey("deposit-1"))
		return err
	})
	if ok := raceCountOK(t, errs, nil); ok != goroutines {
		t.Fatalf("%d of %d deposits succeeded", ok, goroutines)
	}
	for i := range balances {
		if diff := cmp.Diff(balances[0], balances[i]); diff != "" {
			t.Fatalf("deposit %d returned another balance (-first +this):\n%s", i, diff)
		}
	}
	if balances[0].Available.Units() != 101234 {
		t.Fatalf("Deposit returned %s, want 1012.34 CNY", balances[0].Available)
	}
	if a, _ := f.balance("buyer"); a != 101234 {
		t.Fatalf("buyer has %d after one keyed deposit sent %d times, want 101234", a, goroutines)
	}

	escrows := make([]escrow.Escrow, goroutines)
	errs = raceAll(goroutines, func(i int) error {
		var err error
		escrows[i], err = f.l.Pay(f.ctx, "idem", "buyer", escrow.IdempotencyKey("pay-1"))
		return err
	})
	if ok := raceCountOK(t, errs, nil); ok != goroutines {
		t.Fatalf("%d of %d payments succeeded", ok, goroutines)
	}
	for i := range escrows {
		if diff := cmp.Diff(escrows[0], escrows[i]); diff != "" {
			t.Fatalf("payment %d returned another escrow (-first +this):\n%s", i, diff)
		}
	}
	if e := escrows[0]; e.State != escrow.AwaitingShipment || e.Held.Units() != 4200 || e.Version != 2 {
		t.Fatalf("Pay returned %s holding %s at version %d, want AwaitingShipment holding 4200 at version 2", e.State, e.Held, e.Version)
	}
	if a, held := f.balance("buyer"); a != 101234-4200 || held != 4200 {
		t.Fatalf("buyer has %d available and %d held, want %d and 4200", a, held, 101234-4200)
	}
	var deposits int
	for _, ev := range eventsAfter(f, 0) {
		if ev.Type == escrow.Deposited && ev.Account == "buyer" && ev.Amount.Units() == 1234 {
			deposits++
		}
	}
	if deposits != 1 {
		t.Fatalf("%d Deposited events for the keyed deposit, want 1", deposits)
	}
	want := []escrow.EventType{escrow.EscrowOpened, escrow.EscrowPaid}
	if diff := cmp.Diff(want, raceEventTypes(f, "idem")); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	f.check()
}

// testRaceProcessDue runs ProcessDue from several goroutines while escrows
// in every timed state are due: each timer fires exactly once.
func testRaceProcessDue(t *testing.T, h Harness) {
	const perState, goroutines, price = 12, 8, 10000
	f := newFixture(t, h)
	raceFunded(f, "buyer", 4*perState*price)
	raceFunded(f, "seller", 0)
	hour := escrow.Timers{PayWithin: time.Hour, ShipWithin: time.Hour, ConfirmWithin: time.Hour, RefundResponseWithin: time.Hour}
	type want struct {
		state              escrow.State
		refunded, released int64
		event              escrow.EventType
	}
	wants := map[string]want{}
	var partial []string
	for i := range 5 * perState {
		id := "due-" + strconv.Itoa(i)
		raceOpen(f, escrow.Terms{ID: id, Buyer: "buyer", Seller: "seller", Price: fen(price), Timers: hour})
		step := i / perState
		if step == 0 {
			wants[id] = want{escrow.Closed, 0, 0, escrow.EscrowClosed}
			continue
		}
		if _, err := f.l.Pay(f.ctx, id, "buyer"); err != nil {
			t.Fatal(err)
		}
		switch step {
		case 1:
			wants[id] = want{escrow.Refunded, price, 0, escrow.EscrowRefunded}
		case 2:
			if _, err := f.l.Ship(f.ctx, id, "seller", ""); err != nil {
				t.Fatal(err)
			}
			wants[id] = want{escrow.Completed, 0, price, escrow.EscrowReleased}
		case 3:
			// A full refund request: the timer refunds it all.
			if _, err := f.l.RequestRefund(f.ctx, id, "buyer", fen(price), "lost"); err != nil {
				t.Fatal(err)
			}
			wants[id] = want{escrow.Refunded, price, 0, escrow.EscrowRefunded}
		case 4:
			partial = append(partial, id)
			wants[id] = want{escrow.AwaitingShipment, price / 4, 0, escrow.EscrowRefunded}
		}
	}
	// Partial refund requests half an hour into the shipping window: the
	// timer refunds the part when the hour to answer has passed, and the
	// shipping timer resumes from then with the half hour it had left, so
	// it is not due yet a quarter of an hour later.
	f.clock.Advance(30 * time.Minute)
	for _, id := range partial {
		if _, err := f.l.RequestRefund(f.ctx, id, "buyer", fen(price/4), "damaged"); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(75 * time.Minute)

	var fired atomic.Int64
	errs := raceAll(goroutines, func(int) error {
		n, err := f.l.ProcessDue(f.ctx)
		fired.Add(int64(n))
		return err
	})
	if ok := raceCountOK(t, errs, nil); ok != goroutines {
		t.Fatalf("%d of %d ProcessDue calls succeeded", ok, goroutines)
	}
	if fired.Load() != int64(len(wants)) {
		t.Fatalf("the ProcessDue calls fired %d timers together, want %d", fired.Load(), len(wants))
	}
	byTimer := map[string][]escrow.EventType{}
	for _, ev := range eventsAfter(f, 0) {
		if ev.ByTimer {
			byTimer[ev.Escrow] = append(byTimer[ev.Escrow], ev.Type)
		}
	}
	for id, w := range wants {
		if diff := cmp.Diff([]escrow.EventType{w.event}, byTimer[id]); diff != "" {
			t.Errorf("%s: timer events (-want +got):\n%s", id, diff)
		}
		e := escrowNow(f, id)
		if e.State != w.state || e.Refunded.Units() != w.refunded || e.Released.Units() != w.released {
			t.Errorf("%s is %s with %s refunded and %s released, want %s with %d and %d",
				id, e.State, e.Refunded, e.Released, w.state, w.refunded, w.released)
		}
	}
	if n, err := f.l.ProcessDue(f.ctx); err != nil || n != 0 {
		t.Fatalf("ProcessDue afterwards fired %d (error %v), want 0", n, err)
	}
	f.check()
}
