package escrow_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/shopspring/decimal"
)

// NANO is a currency of nine minor places, the most a currency may have.
var NANO = escrow.Currency{Code: "NANO", Minor: 9}

// expectedFee is the fee the README and FeePolicy's documentation state
// for a release of amount minor units: the rate times the amount, rounded
// to a minor unit by the mode, plus the fixed fee on the escrow's first
// release, and never more than the amount. It is worked out here in
// exact rationals, apart from the ledger's own arithmetic.
func expectedFee(amount, ppm, fixed int64, mode escrow.Rounding, first bool) int64 {
	num := new(big.Int).Mul(big.NewInt(amount), big.NewInt(ppm))
	den := big.NewInt(1_000_000)
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	twice := new(big.Int).Lsh(r, 1)
	cmp := twice.Cmp(den) // the remainder against half a minor unit
	up := false
	if r.Sign() != 0 {
		switch mode {
		case escrow.RoundDown: // toward zero
		case escrow.RoundUp: // away from zero
			up = true
		case escrow.RoundHalfUp: // to nearest, ties away from zero
			up = cmp >= 0
		case escrow.RoundHalfEven: // to nearest, ties to the even unit
			up = cmp > 0 || cmp == 0 && q.Bit(0) == 1
		}
	}
	if up {
		q.Add(q, big.NewInt(1))
	}
	f := q.Int64()
	if first {
		f += fixed
	}
	return min(f, amount)
}

// A moneyRun drives random but valid trades through every way the ledger
// splits money, and checks after each step that no minor unit was made or
// lost and that each fee is the documented one.
type moneyRun struct {
	*world
	rng      *rand.Rand
	cur      escrow.Currency
	ppm      int64
	fixed    int64
	mode     escrow.Rounding
	maxPrice int64
	budget   int64 // minor units that may still be deposited
	inside   int64 // deposits minus withdrawals
	ids      []string
	buyers   []string
	sellers  []string
	replays  []func() // the keyed calls, to repeat
	seq      uint64   // the last event seen
}

const propArbiter = "arb"

func newMoneyRun(t *testing.T, seed uint64) *moneyRun {
	rng := rand.New(rand.NewPCG(seed, seed*7919+1))
	curs := []escrow.Currency{escrow.CNY, escrow.JPY, NANO}
	cur := curs[rng.IntN(len(curs))]
	rates := []int64{0, 1, 5_000, 6_000, 123_457, 500_000, 999_999, rng.Int64N(1_000_000)}
	ppm := rates[rng.IntN(len(rates))]
	mode := escrow.Rounding(rng.IntN(4))
	var fixed int64
	switch rng.IntN(4) {
	case 1:
		fixed = 1
	case 2:
		fixed = rng.Int64N(1000)
	case 3:
		fixed = rng.Int64N(1_000_000_000)
	}
	var maxPrice int64
	switch rng.IntN(4) {
	case 0:
		maxPrice = 3 // prices of 1 to 3 minor units
	case 1:
		maxPrice = 100_000
	case 2:
		maxPrice = 1_000_000_000_000
	case 3:
		maxPrice = escrow.MaxUnits / 8
	}
	policy := escrow.FeePolicy{Rate: decimal.New(ppm, -6), Rounding: mode}
	if fixed > 0 {
		m, err := escrow.MoneyFromUnits(fixed, cur)
		if err != nil {
			t.Fatal(err)
		}
		policy.Fixed = []escrow.Money{m}
	}
	w := newWorld(t, nil, escrow.Options{Fee: policy, Currencies: []escrow.Currency{NANO}, Arbiter: propArbiter})
	r := &moneyRun{world: w, rng: rng, cur: cur, ppm: ppm, fixed: fixed, mode: mode, maxPrice: maxPrice,
		budget: escrow.MaxUnits, buyers: []string{"b1", "b2"}, sellers: []string{"s1", "s2"}}
	for _, id := range append(append([]string{}, r.buyers...), r.sellers...) {
		w.account(id)
	}
	return r
}

func (r *moneyRun) money(units int64) escrow.Money {
	m, err := escrow.MoneyFromUnits(units, r.cur)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *moneyRun) bal(id string) escrow.Balance {
	r.t.Helper()
	b, err := r.l.Balance(r.ctx, id, r.cur)
	r.must("Balance "+id, err)
	return b
}

func (r *moneyRun) esc(id string) escrow.Escrow {
	r.t.Helper()
	e, err := r.l.Escrow(r.ctx, id)
	r.must("Escrow "+id, err)
	return e
}

// between returns a random amount from lo to hi minor units, often one of
// the ends.
func (r *moneyRun) between(lo, hi int64) int64 {
	switch r.rng.IntN(4) {
	case 0:
		return lo
	case 1:
		return hi
	}
	return lo + r.rng.Int64N(hi-lo+1)
}

// deposit gives buyer at least need minor units available, within what
// may still be deposited; false if it cannot.
func (r *moneyRun) deposit(buyer string, need int64) bool {
	r.t.Helper()
	have := r.bal(buyer).Available.Units()
	if have >= need {
		return true
	}
	d := need - have
	if d > r.budget {
		return false
	}
	_, err := r.l.Deposit(r.ctx, buyer, r.money(d))
	r.must("Deposit", err)
	r.budget -= d
	r.inside += d
	return true
}

// open opens and pays an escrow, with milestones or not; "" if no money
// is left to pay for it.
func (r *moneyRun) open(pay bool) string {
	r.t.Helper()
	buyer, seller := r.buyers[r.rng.IntN(2)], r.sellers[r.rng.IntN(2)]
	price := r.between(1, r.maxPrice)
	id := fmt.Sprintf("e%d", len(r.ids)+1)
	terms := escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Price: r.money(price)}
	if n := r.rng.IntN(4); n > 0 && price >= int64(n) {
		left := price
		for i := range n {
			a := left
			if i < n-1 {
				a = 1 + r.rng.Int64N(left-int64(n-1-i))
			}
			left -= a
			terms.Milestones = append(terms.Milestones, escrow.Milestone{Name: fmt.Sprintf("m%d", i), Amount: r.money(a)})
		}
	}
	if pay && !r.deposit(buyer, price) {
		return ""
	}
	_, err := r.l.Open(r.ctx, terms)
	r.must("Open", err)
	r.ids = append(r.ids, id)
	if pay {
		r.expectMoves("Pay "+id, func(o ...escrow.CallOption) error { _, err := r.l.Pay(r.ctx, id, buyer, o...); return err },
			map[string][2]int64{buyer: {-price, price}}, 0)
	}
	return id
}

// expectMoves runs do and checks that it changed each named account's
// available and held balance by the deltas given, the fee account's by
// fee, and no other account's.
//
// Half the calls carry an idempotency key: the call is repeated at once,
// and again at the end of the run if that is within the retention, and
// neither repeat may change the store.
func (r *moneyRun) expectMoves(what string, do func(...escrow.CallOption) error, deltas map[string][2]int64, fee int64) {
	r.t.Helper()
	ids := []string{escrow.FeeAccount}
	ids = append(append(ids, r.buyers...), r.sellers...)
	before := map[string]escrow.Balance{}
	for _, id := range ids {
		before[id] = r.bal(id)
	}
	var opts []escrow.CallOption
	if r.rng.IntN(2) == 0 {
		opts = append(opts, escrow.IdempotencyKey(fmt.Sprintf("k%d", len(r.replays))))
	}
	r.must(what, do(opts...))
	if opts != nil {
		replay := func() {
			r.t.Helper()
			d := r.state()
			r.must(what+" repeated", do(opts...))
			if d != r.state() {
				r.t.Fatalf("%s repeated under its key changed the ledger", what)
			}
		}
		replay()
		at := r.clock.Now()
		r.replays = append(r.replays, func() {
			r.t.Helper()
			if r.clock.Now().Sub(at) < escrow.DefaultIdempotencyRetention {
				replay()
			}
		})
	}
	for _, id := range ids {
		d := deltas[id]
		if id == escrow.FeeAccount {
			d = [2]int64{fee, 0}
		}
		b, a := before[id], r.bal(id)
		if got := [2]int64{a.Available.Units() - b.Available.Units(), a.Held.Units() - b.Held.Units()}; got != d {
			r.t.Fatalf("%s: %s changed by %v (available, held), want %v", what, id, got, d)
		}
	}
}

// state sums up what a call could change: every balance, every escrow's
// version and the number of events.
func (r *moneyRun) state() string {
	r.t.Helper()
	var b strings.Builder
	for _, id := range append(append([]string{escrow.FeeAccount, escrow.WorldAccount}, r.buyers...), r.sellers...) {
		fmt.Fprintln(&b, r.bal(id))
	}
	for _, id := range r.ids {
		fmt.Fprintln(&b, id, r.esc(id).Version)
	}
	for {
		evs, err := r.l.Events(r.ctx, r.seq, 1000)
		r.must("Events", err)
		if len(evs) == 0 {
			break
		}
		r.seq = evs[len(evs)-1].Seq
	}
	fmt.Fprintln(&b, r.seq)
	return b.String()
}

// first reports whether nothing of e was released yet.
func first(e escrow.Escrow) bool { return e.Released.IsZero() }

// step takes one random action on a random escrow.
func (r *moneyRun) step() {
	r.t.Helper()
	if len(r.ids) == 0 || r.rng.IntN(6) == 0 {
		if r.rng.IntN(3) == 0 {
			r.cart()
		} else {
			r.open(true)
		}
		return
	}
	id := r.ids[r.rng.IntN(len(r.ids))]
	e := r.esc(id)
	b, s := e.Buyer, e.Seller
	held := e.Held.Units()
	feeOf := func(a int64) int64 { return expectedFee(a, r.ppm, r.fixed, r.mode, first(e)) }
	release := func(a int64) map[string][2]int64 {
		return map[string][2]int64{b: {0, -a}, s: {a - feeOf(a), 0}}
	}
	refund := func(a int64) map[string][2]int64 { return map[string][2]int64{b: {a, -a}} }
	switch e.State {
	case escrow.AwaitingPayment:
		if r.rng.IntN(2) == 0 {
			_, err := r.l.Cancel(r.ctx, id, s)
			r.must("Cancel", err)
		} else if r.deposit(b, e.Price.Units()) {
			r.expectMoves("Pay", func(o ...escrow.CallOption) error { _, err := r.l.Pay(r.ctx, id, b, o...); return err },
				map[string][2]int64{b: {-e.Price.Units(), e.Price.Units()}}, 0)
		}
	case escrow.AwaitingShipment, escrow.AwaitingConfirmation:
		switch k := r.rng.IntN(8); {
		case k == 0 && e.State == escrow.AwaitingShipment:
			_, err := r.l.Ship(r.ctx, id, s, "T")
			r.must("Ship", err)
		case k == 0 || k == 1:
			a := r.between(1, held)
			r.expectMoves("Refund", func(o ...escrow.CallOption) error { _, err := r.l.Refund(r.ctx, id, s, r.money(a), o...); return err }, refund(a), 0)
		case k == 2:
			a := r.between(1, held)
			_, err := r.l.RequestRefund(r.ctx, id, b, r.money(a), "why")
			r.must("RequestRefund", err)
		case k == 3:
			_, err := r.l.Dispute(r.ctx, id, []string{b, s}[r.rng.IntN(2)], "no")
			r.must("Dispute", err)
		case e.State == escrow.AwaitingShipment:
			_, err := r.l.Ship(r.ctx, id, s, "T")
			r.must("Ship", err)
		case k == 4:
			r.expectMoves("Confirm", func(o ...escrow.CallOption) error { _, err := r.l.Confirm(r.ctx, id, b, o...); return err },
				release(held), feeOf(held))
		case k == 5 && len(e.Milestones) > 0:
			n := e.NextMilestone
			a := min(e.Milestones[n].Amount.Units(), held)
			if n == len(e.Milestones)-1 {
				a = held
			}
			r.expectMoves("ConfirmMilestone", func(o ...escrow.CallOption) error { _, err := r.l.ConfirmMilestone(r.ctx, id, b, n, o...); return err },
				release(a), feeOf(a))
		case k == 6:
			a := r.between(1, held)
			_, err := r.l.RequestReturn(r.ctx, id, b, r.money(a), "broken")
			r.must("RequestReturn", err)
		default:
			r.clock.Advance(time.Duration(r.rng.IntN(20)) * 24 * time.Hour)
			r.processDue()
		}
	case escrow.RefundRequested:
		a := e.Refund.Amount.Units()
		switch r.rng.IntN(4) {
		case 0:
			r.expectMoves("AgreeRefund", func(o ...escrow.CallOption) error { _, err := r.l.AgreeRefund(r.ctx, id, s, o...); return err }, refund(a), 0)
		case 1:
			_, err := r.l.RefuseRefund(r.ctx, id, s, "no")
			r.must("RefuseRefund", err)
		case 2:
			_, err := r.l.Dispute(r.ctx, id, b, "no")
			r.must("Dispute", err)
		default:
			r.clock.Advance(8 * 24 * time.Hour)
			r.processDue()
		}
	case escrow.ReturnRequested:
		switch r.rng.IntN(3) {
		case 0:
			_, err := r.l.AgreeReturn(r.ctx, id, s, "addr")
			r.must("AgreeReturn", err)
		case 1:
			_, err := r.l.RefuseRefund(r.ctx, id, s, "no")
			r.must("RefuseRefund(return)", err)
		default:
			_, err := r.l.CancelReturn(r.ctx, id, b)
			r.must("CancelReturn", err)
		}
	case escrow.AwaitingReturn:
		_, err := r.l.ShipReturn(r.ctx, id, b, "back")
		r.must("ShipReturn", err)
	case escrow.ReturnShipped:
		a := e.Refund.Amount.Units()
		switch r.rng.IntN(3) {
		case 0:
			_, err := r.l.RefuseReturn(r.ctx, id, s, "not as sold")
			r.must("RefuseReturn", err)
		case 1:
			r.clock.Advance(11 * 24 * time.Hour)
			r.processDue()
		default:
			r.expectMoves("ConfirmReturn", func(o ...escrow.CallOption) error { _, err := r.l.ConfirmReturn(r.ctx, id, s, o...); return err }, refund(a), 0)
		}
	case escrow.ReturnRefused:
		if r.rng.IntN(2) == 0 {
			_, err := r.l.Dispute(r.ctx, id, b, "they came")
			r.must("Dispute(return)", err)
		} else {
			_, err := r.l.CancelReturn(r.ctx, id, b)
			r.must("CancelReturn(refused)", err)
		}
	case escrow.Disputed:
		var toBuyer int64
		switch r.rng.IntN(4) {
		case 0: // all to the seller
		case 1:
			toBuyer = held
		case 2:
			parts, err := escrow.Allocate(e.Held, 70, 30)
			r.must("Allocate", err)
			toBuyer = parts[1].Units()
		default:
			toBuyer = r.between(0, held)
		}
		toSeller := held - toBuyer
		split := escrow.Split{Buyer: r.money(toBuyer), Seller: r.money(toSeller)}
		if toBuyer == 0 && r.rng.IntN(2) == 0 {
			split.Buyer = escrow.Money{} // the zero Money counts as zero
		}
		f := feeOf(toSeller)
		r.expectMoves("Resolve", func(o ...escrow.CallOption) error {
			_, err := r.l.Resolve(r.ctx, id, propArbiter, split, o...)
			return err
		},
			map[string][2]int64{b: {toBuyer, -held}, s: {toSeller - f, 0}}, f)
	default: // ended: pay the fees out now and then
		if fb := r.bal(escrow.FeeAccount).Available.Units(); fb > 0 && r.rng.IntN(3) == 0 {
			a := r.between(1, fb)
			_, err := r.l.Withdraw(r.ctx, escrow.FeeAccount, r.money(a))
			r.must("Withdraw fees", err)
			r.inside -= a
		}
	}
}

// cart opens two or three escrows of one buyer and pays them with PayAll.
func (r *moneyRun) cart() {
	r.t.Helper()
	var ids []string
	var total int64
	buyer := ""
	for range 2 + r.rng.IntN(2) {
		id := r.open(false)
		e := r.esc(id)
		if buyer == "" {
			buyer = e.Buyer
		}
		if e.Buyer != buyer {
			continue
		}
		if total+e.Price.Units() > escrow.MaxUnits/2 {
			continue
		}
		ids = append(ids, id)
		total += e.Price.Units()
	}
	if !r.deposit(buyer, total) {
		return
	}
	r.expectMoves("PayAll", func(o ...escrow.CallOption) error { _, err := r.l.PayAll(r.ctx, buyer, ids, o...); return err },
		map[string][2]int64{buyer: {-total, total}}, 0)
}

// check verifies the money invariants over the whole ledger.
func (r *moneyRun) check(step int) {
	r.t.Helper()
	fail := func(format string, a ...any) {
		r.t.Helper()
		r.t.Fatalf("step %d: "+format, append([]any{step}, a...)...)
	}
	var sum int64
	for _, id := range append(append([]string{escrow.FeeAccount}, r.buyers...), r.sellers...) {
		b := r.bal(id)
		sum += b.Available.Units() + b.Held.Units()
	}
	if sum != r.inside {
		fail("balances and fees add up to %d, deposits minus withdrawals are %d", sum, r.inside)
	}
	if wb := r.bal(escrow.WorldAccount); wb.Available.Units() != -r.inside {
		fail("world holds %d, want %d", wb.Available.Units(), -r.inside)
	}
	// Every entry, once, from the journals of all accounts.
	entries := map[uint64]escrow.Entry{}
	for _, id := range append(append([]string{escrow.FeeAccount, escrow.WorldAccount}, r.buyers...), r.sellers...) {
		var after uint64
		for {
			page, err := r.l.Journal(r.ctx, id, after, 1000)
			r.must("Journal", err)
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				entries[e.Seq] = e
				after = e.Seq
			}
		}
	}
	byEscrow := map[string][]escrow.Entry{}
	for seq := uint64(1); seq <= uint64(len(entries)); seq++ {
		e, ok := entries[seq]
		if !ok {
			fail("journal entry %d missing", seq)
		}
		var n int64
		for _, p := range e.Postings {
			n += p.Change
		}
		if n != 0 || e.Currency != r.cur {
			fail("entry %d (%s) adds up to %d in %s", seq, e.Kind, n, e.Currency)
		}
		if e.Escrow != "" {
			byEscrow[e.Escrow] = append(byEscrow[e.Escrow], e)
		}
	}
	var heldSum int64
	for _, id := range r.ids {
		e := r.esc(id)
		zero := e.State == escrow.AwaitingPayment || e.State == escrow.Closed
		if !zero && e.Held.Units()+e.Released.Units()+e.Refunded.Units() != e.Price.Units() {
			fail("%s: held %s + released %s + refunded %s != price %s", id, e.Held, e.Released, e.Refunded, e.Price)
		}
		if e.Fees.Units() > e.Released.Units() {
			fail("%s: fees %s more than released %s", id, e.Fees, e.Released)
		}
		if e.State.Terminal() && !e.Held.IsZero() {
			fail("%s: %s holds %s", id, e.State, e.Held)
		}
		heldSum += e.Held.Units()
		r.checkHistory(fail, e, byEscrow[id])
	}
	var bh int64
	for _, b := range r.buyers {
		bh += r.bal(b).Held.Units()
	}
	if bh != heldSum {
		fail("buyers hold %d, escrows %d", bh, heldSum)
	}
}

// checkHistory matches the money events of e with its journal entries,
// one for one and in order, and checks each fee against the documented
// rule.
func (r *moneyRun) checkHistory(fail func(string, ...any), e escrow.Escrow, entries []escrow.Entry) {
	r.t.Helper()
	evs, err := r.l.History(r.ctx, e.ID)
	r.must("History", err)
	var released, fees int64
	i := 0
	for _, ev := range evs {
		var kind escrow.EntryKind
		switch ev.Type {
		case escrow.EscrowPaid:
			kind = escrow.EntryHold
		case escrow.EscrowReleased:
			kind = escrow.EntryRelease
		case escrow.EscrowRefunded:
			kind = escrow.EntryRefund
		case escrow.EscrowResolved:
			kind = escrow.EntrySplit
		default:
			if !ev.Fee.IsZero() {
				fail("%s: %s event has a fee %s", e.ID, ev.Type, ev.Fee)
			}
			continue
		}
		if i >= len(entries) {
			fail("%s: %s event has no journal entry", e.ID, ev.Type)
		}
		en := entries[i]
		i++
		if en.Kind != kind {
			fail("%s: %s event against a %s entry", e.ID, ev.Type, en.Kind)
		}
		var heldOut, fee, seller int64
		for _, p := range en.Postings {
			switch {
			case p.Account == e.Buyer && p.Bucket == escrow.Held:
				heldOut -= p.Change
			case p.Account == escrow.FeeAccount:
				fee += p.Change
			case p.Account == e.Seller:
				seller += p.Change
			}
		}
		if kind == escrow.EntryHold {
			heldOut = -heldOut
		}
		if ev.Amount.Units() != heldOut || ev.Fee.Units() != fee {
			fail("%s: %s event says %s, fee %s; journal moves %d, fee %d", e.ID, ev.Type, ev.Amount, ev.Fee, heldOut, fee)
		}
		if kind == escrow.EntryRelease || kind == escrow.EntrySplit {
			gross := seller + fee
			if want := expectedFee(gross, r.ppm, r.fixed, r.mode, released == 0); fee != want {
				fail("%s: fee on %d is %d, want %d (rate %d ppm, fixed %d, %s, first %v)",
					e.ID, gross, fee, want, r.ppm, r.fixed, r.mode, released == 0)
			}
			released += gross
			fees += fee
		}
	}
	if i != len(entries) {
		fail("%s: %d journal entries, %d money events", e.ID, len(entries), i)
	}
	if released != e.Released.Units() || fees != e.Fees.Units() {
		fail("%s: events release %d with fees %d, escrow says %s, %s", e.ID, released, fees, e.Released, e.Fees)
	}
}

func TestMoneyProperties(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := newMoneyRun(t, seed)
			for i := range 60 {
				r.step()
				r.check(i)
			}
			for _, replay := range r.replays {
				replay()
			}
			if err := r.l.Check(r.ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The fee rule worked out apart from the ledger agrees with the README's
// words at the ties each mode decides differently.
func TestExpectedFeeRounding(t *testing.T) {
	// 0.5% of 100 minor units is 0.5 units: a tie; of 300, 1.5; of 101, 0.505.
	cases := []struct {
		amount int64
		mode   escrow.Rounding
		want   int64
	}{
		{100, escrow.RoundHalfEven, 0}, {300, escrow.RoundHalfEven, 2}, {101, escrow.RoundHalfEven, 1},
		{100, escrow.RoundHalfUp, 1}, {300, escrow.RoundHalfUp, 2}, {99, escrow.RoundHalfUp, 0},
		{100, escrow.RoundDown, 0}, {399, escrow.RoundDown, 1},
		{100, escrow.RoundUp, 1}, {1, escrow.RoundUp, 1}, {200, escrow.RoundUp, 1},
	}
	for _, c := range cases {
		if got := expectedFee(c.amount, 5_000, 0, c.mode, false); got != c.want {
			t.Errorf("%s of %d: %d, want %d", c.mode, c.amount, got, c.want)
		}
	}
	if got := expectedFee(3, 5_000, 7, escrow.RoundUp, true); got != 3 {
		t.Errorf("capped fee %d, want 3", got)
	}
}

// Each event carries the Amount and Fee its documentation states: the
// money moved, all that was held for a split, the price when opened, the
// amount asked for by a refund or return request, and nothing on other
// events; a fee only on releases and splits, as a zero amount when it
// came to nothing.
func TestEventAmountsAsDocumented(t *testing.T) {
	w := newWorld(t, nil, escrow.Options{Arbiter: "arb", Fee: escrow.FeePolicy{
		Rate: decimal.RequireFromString("0.006"), Fixed: []escrow.Money{cny("0.50")}}})
	w.funded("b")
	w.account("s")
	_, err := w.l.Withdraw(w.ctx, "b", cny("1.00"))
	w.must("Withdraw", err)
	open := func(id, price string) {
		t.Helper()
		_, err := w.l.Open(w.ctx, escrow.Terms{ID: id, Buyer: "b", Seller: "s", Price: cny(price)})
		w.must("Open "+id, err)
	}
	do := func(_ escrow.Escrow, err error) {
		t.Helper()
		w.must("step", err)
	}
	// e1: a refund agreed, then the rest confirmed.
	open("e1", "100.00")
	do(w.l.Pay(w.ctx, "e1", "b"))
	do(w.l.Ship(w.ctx, "e1", "s", "T1"))
	do(w.l.RequestRefund(w.ctx, "e1", "b", cny("30.00"), "scratched"))
	do(w.l.AgreeRefund(w.ctx, "e1", "s"))
	do(w.l.Confirm(w.ctx, "e1", "b"))
	// e2: a partial return, then a split of the rest.
	open("e2", "50.00")
	do(w.l.Pay(w.ctx, "e2", "b"))
	do(w.l.Ship(w.ctx, "e2", "s", "T2"))
	do(w.l.RequestReturn(w.ctx, "e2", "b", cny("20.00"), "one broken"))
	do(w.l.AgreeReturn(w.ctx, "e2", "s", "addr"))
	do(w.l.ShipReturn(w.ctx, "e2", "b", "R2"))
	do(w.l.ConfirmReturn(w.ctx, "e2", "s"))
	do(w.l.Dispute(w.ctx, "e2", "b", "the rest too"))
	do(w.l.Resolve(w.ctx, "e2", "arb", escrow.Split{Buyer: cny("10.00"), Seller: cny("20.00")}))
	// e3: all to the buyer, so no fee; e4: cancelled; e5: auto-confirmed.
	open("e3", "10.00")
	do(w.l.Pay(w.ctx, "e3", "b"))
	do(w.l.Dispute(w.ctx, "e3", "s", "no"))
	do(w.l.Resolve(w.ctx, "e3", "arb", escrow.Split{Buyer: cny("10.00")}))
	open("e4", "5.00")
	do(w.l.Cancel(w.ctx, "e4", "s"))
	open("e5", "0.01")
	do(w.l.Pay(w.ctx, "e5", "b"))
	do(w.l.Ship(w.ctx, "e5", "s", "T5"))
	w.clock.Advance(30 * 24 * time.Hour)
	w.processDue()

	want := []string{
		"AccountOpened b 0 0", "Deposited b 1000.00 CNY 0", "AccountOpened s 0 0", "Withdrawn b 1.00 CNY 0",
		"EscrowOpened e1 100.00 CNY 0", "EscrowPaid e1 100.00 CNY 0", "EscrowShipped e1 0 0",
		"EscrowRefundRequested e1 30.00 CNY 0", "EscrowRefunded e1 30.00 CNY 0",
		"EscrowReleased e1 70.00 CNY 0.92 CNY", // 0.42 at 0.6%, and the fixed 0.50
		"EscrowOpened e2 50.00 CNY 0", "EscrowPaid e2 50.00 CNY 0", "EscrowShipped e2 0 0",
		"EscrowReturnRequested e2 20.00 CNY 0", "EscrowReturnAgreed e2 0 0", "EscrowReturnShipped e2 0 0",
		"EscrowRefunded e2 20.00 CNY 0", "EscrowDisputed e2 0 0",
		"EscrowResolved e2 30.00 CNY 0.62 CNY", // on the seller's 20.00: 0.12 and the fixed 0.50
		"EscrowOpened e3 10.00 CNY 0", "EscrowPaid e3 10.00 CNY 0", "EscrowDisputed e3 0 0",
		"EscrowResolved e3 10.00 CNY 0.00 CNY",
		"EscrowOpened e4 5.00 CNY 0", "EscrowClosed e4 0 0",
		"EscrowOpened e5 0.01 CNY 0", "EscrowPaid e5 0.01 CNY 0", "EscrowShipped e5 0 0",
		"EscrowReleased e5 0.01 CNY 0.01 CNY", // the fixed fee, capped at the amount
	}
	evs, err := w.l.Events(w.ctx, 0, 1000)
	w.must("Events", err)
	var got []string
	for _, ev := range evs {
		if ev.Type == escrow.RatingGiven {
			if !ev.Amount.Equal(escrow.Money{}) || !ev.Fee.Equal(escrow.Money{}) {
				t.Errorf("rating event %d carries %v, fee %v", ev.Seq, ev.Amount, ev.Fee)
			}
			continue
		}
		got = append(got, fmt.Sprintf("%s %s%s %s %s", ev.Type, ev.Account, ev.Escrow, ev.Amount, ev.Fee))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// shippedTranches opens escrow id from "b" to "s" at price (CNY), paid in
// tranches of the given milestones if any, pays it and ships it.
func shippedTranches(w *world, id, price string, milestones ...string) {
	w.t.Helper()
	terms := escrow.Terms{ID: id, Buyer: "b", Seller: "s", Price: cny(price)}
	for i, m := range milestones {
		terms.Milestones = append(terms.Milestones, escrow.Milestone{Name: fmt.Sprint(i), Amount: cny(m)})
	}
	_, err := w.l.Open(w.ctx, terms)
	w.must("Open", err)
	_, err = w.l.Pay(w.ctx, id, "b")
	w.must("Pay", err)
	_, err = w.l.Ship(w.ctx, id, "s", "")
	w.must("Ship", err)
}

// The README's fee rule and its examples, through the ledger: the rate
// part rounded by each mode, the fixed fee on the first release only (a
// split's part for the seller counting as one), and the cap.
func TestFeeRoundingAsDocumented(t *testing.T) {
	fee := func(t *testing.T, w *world, id, price string, milestones []string, act func(id string)) []escrow.Money {
		t.Helper()
		w.funded("b")
		w.account("s")
		shippedTranches(w, id, price, milestones...)
		before, err := w.l.History(w.ctx, id)
		w.must("History", err)
		act(id)
		after, err := w.l.History(w.ctx, id)
		w.must("History", err)
		var fees []escrow.Money
		for _, ev := range after[len(before):] {
			if ev.Type == escrow.EscrowReleased || ev.Type == escrow.EscrowResolved {
				fees = append(fees, ev.Fee)
			}
		}
		return fees
	}
	confirm := func(w *world) func(string) {
		return func(id string) {
			_, err := w.l.Confirm(w.ctx, id, "b")
			w.must("Confirm", err)
		}
	}
	// At 0.5%: 1.00 CNY owes 0.005 (a tie), 3.00 CNY 0.015 (a tie, to
	// the even 0.02), 1.01 CNY 0.00505.
	for _, c := range []struct {
		mode              escrow.Rounding
		one, three, oneOh string
	}{
		{escrow.RoundHalfEven, "0.00", "0.02", "0.01"},
		{escrow.RoundHalfUp, "0.01", "0.02", "0.01"},
		{escrow.RoundDown, "0.00", "0.01", "0.00"},
		{escrow.RoundUp, "0.01", "0.02", "0.01"},
	} {
		t.Run(c.mode.String(), func(t *testing.T) {
			w := newWorld(t, nil, escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.005"), Rounding: c.mode}})
			for i, want := range map[string]string{"1.00": c.one, "3.00": c.three, "1.01": c.oneOh} {
				if got := fee(t, w, "e"+i, i, nil, confirm(w)); len(got) != 1 || !got[0].Equal(cny(want)) {
					t.Errorf("%s on %s: fee %v, want %s", c.mode, i, got, want)
				}
			}
		})
	}
	w := newWorld(t, nil, escrow.Options{Arbiter: "arb", Fee: escrow.FeePolicy{
		Rate: decimal.RequireFromString("0.006"), Fixed: []escrow.Money{cny("0.50")}}})
	// Milestones: 0.36 and the fixed fee on the first, 0.24 on the second.
	got := fee(t, w, "m", "100.00", []string{"60.00", "40.00"}, func(id string) {
		for n := range 2 {
			_, err := w.l.ConfirmMilestone(w.ctx, id, "b", n)
			w.must("ConfirmMilestone", err)
		}
	})
	if fmt.Sprint(got) != "[0.86 CNY 0.24 CNY]" {
		t.Errorf("milestone fees %v, want [0.86 CNY 0.24 CNY]", got)
	}
	// 1.01 CNY in tranches of 0.51 and 0.50: each tranche's 0.306 and
	// 0.3 fen round to nothing, while all of it confirmed at once owes
	// 0.606 fen, 0.01 CNY (with the fixed fee, 0.51).
	got = fee(t, w, "tranches", "1.01", []string{"0.51", "0.50"}, func(id string) {
		for n := range 2 {
			_, err := w.l.ConfirmMilestone(w.ctx, id, "b", n)
			w.must("ConfirmMilestone", err)
		}
	})
	if fmt.Sprint(got) != "[0.50 CNY 0.00 CNY]" {
		t.Errorf("tranche fees %v, want [0.50 CNY 0.00 CNY]", got)
	}
	if got = fee(t, w, "at-once", "1.01", []string{"0.51", "0.50"}, confirm(w)); fmt.Sprint(got) != "[0.51 CNY]" {
		t.Errorf("fee on 1.01 confirmed at once %v, want [0.51 CNY]", got)
	}
	// A split that is the first release pays the fixed fee on the
	// seller's part: 0.06 and 0.50 on 10.00.
	got = fee(t, w, "split", "30.00", nil, func(id string) {
		_, err := w.l.Dispute(w.ctx, id, "b", "no")
		w.must("Dispute", err)
		_, err = w.l.Resolve(w.ctx, id, "arb", escrow.Split{Buyer: cny("20.00"), Seller: cny("10.00")})
		w.must("Resolve", err)
	})
	if fmt.Sprint(got) != "[0.56 CNY]" {
		t.Errorf("split fee %v, want [0.56 CNY]", got)
	}
	// Never more than the amount: 0.30 pays 0.30, not 0.50.
	if got = fee(t, w, "small", "0.30", nil, confirm(w)); fmt.Sprint(got) != "[0.30 CNY]" {
		t.Errorf("fee on 0.30 %v, want [0.30 CNY]", got)
	}
}

// ConfirmMilestone releases what refunds left of the tranche, completes
// the escrow when refunds took every later tranche, and refuses another
// milestone than the next, or an escrow without milestones, with
// ErrInvalidArgument, changing nothing.
func TestConfirmMilestoneAsDocumented(t *testing.T) {
	w := newWorld(t, nil, escrow.Options{})
	w.funded("b")
	w.account("s")
	open := func(id string, milestones ...string) {
		t.Helper()
		shippedTranches(w, id, "30.00", milestones...)
	}
	refused := func(id string, n int, want error) {
		t.Helper()
		before := w.dump()
		if _, err := w.l.ConfirmMilestone(w.ctx, id, "b", n); !errors.Is(err, want) {
			t.Errorf("ConfirmMilestone(%s, %d): %v, want %v", id, n, err, want)
		}
		if !bytes.Equal(before, w.dump()) {
			t.Errorf("a refused ConfirmMilestone(%s, %d) changed the store", id, n)
		}
	}
	open("m", "10.00", "10.00", "10.00")
	refused("m", 1, escrow.ErrInvalidArgument)
	refused("m", -1, escrow.ErrInvalidArgument)
	// 15.00 off the last tranches: all of the third, 5.00 of the second.
	_, err := w.l.Refund(w.ctx, "m", "s", cny("15.00"))
	w.must("Refund", err)
	e, err := w.l.ConfirmMilestone(w.ctx, "m", "b", 0)
	w.must("ConfirmMilestone 0", err)
	if !e.Released.Equal(cny("10.00")) || e.State != escrow.AwaitingConfirmation {
		t.Errorf("after the first: %s released, %s", e.Released, e.State)
	}
	e, err = w.l.ConfirmMilestone(w.ctx, "m", "b", 1)
	w.must("ConfirmMilestone 1", err)
	if !e.Released.Equal(cny("15.00")) || e.State != escrow.Completed || e.NextMilestone != 2 {
		t.Errorf("after the second: %s released, %s, next %d; want 15.00, completed, 2", e.Released, e.State, e.NextMilestone)
	}
	refused("m", 2, escrow.ErrInvalidTransition)
	open("plain")
	refused("plain", 0, escrow.ErrInvalidArgument)
}
