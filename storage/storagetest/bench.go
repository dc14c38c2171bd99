package storagetest

import (
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// benchPrice is the price of every benchmarked trade, in fen.
const benchPrice = 10000

// RunBenchmarks runs the suite's benchmarks against the stores h makes.
//
// One op of the Lifecycle benchmarks is one whole trade on one ledger:
// Open, Pay, Ship and Confirm of a fresh escrow, four transactions. The
// Baseline benchmarks do the same four steps on a bare mutex and maps of
// int64 in the same run, so the cost of the ledger and the adapter can be
// read as the ratio Lifecycle/Baseline on one machine at one moment, and
// Baseline/LedgerOnMaps runs Lifecycle/Serial's trades on the ledger over
// maps that are not a store (see mapStore), so that the ratio splits into
// the ledger's own cost and the adapter's. The
// ns/step metric is ns/op divided by the four steps. Deposit and
// ReadEscrow time one deposit and one escrow read. Rate times one rating
// of a completed escrow by its buyer, Reputation one read of a busy
// seller's reputation.
func RunBenchmarks(b *testing.B, h Harness) {
	b.Run("Lifecycle", func(b *testing.B) {
		b.Run("Serial", func(b *testing.B) { benchLifecycleSerial(b, h) })
		b.Run("Parallel", func(b *testing.B) { benchLifecycleParallel(b, h) })
	})
	b.Run("Baseline", func(b *testing.B) {
		b.Run("Serial", benchBaselineSerial)
		b.Run("Parallel", benchBaselineParallel)
		b.Run("LedgerOnMaps", func(b *testing.B) { benchLifecycleSerial(b, newMapStore) })
	})
	b.Run("Deposit", func(b *testing.B) { benchDeposit(b, h) })
	b.Run("ReadEscrow", func(b *testing.B) { benchReadEscrow(b, h) })
	b.Run("Rate", func(b *testing.B) { benchRate(b, h) })
	b.Run("Reputation", func(b *testing.B) { benchReputation(b, h) })
}

// benchParties opens n buyer and seller accounts, each buyer funded for
// trades of benchPrice.
func benchParties(f *fixture, n, trades int) (buyers, sellers []string) {
	f.t.Helper()
	for i := range n {
		buyer, seller := "buyer-"+strconv.Itoa(i), "seller-"+strconv.Itoa(i)
		raceFunded(f, buyer, int64(trades)*benchPrice)
		raceFunded(f, seller, 0)
		buyers, sellers = append(buyers, buyer), append(sellers, seller)
	}
	return buyers, sellers
}

// benchTrade runs one escrow from Open to Confirm.
func benchTrade(f *fixture, id, buyer, seller string) error {
	_, err := f.l.Open(f.ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Price: benchMoney})
	if err == nil {
		_, err = f.l.Pay(f.ctx, id, buyer)
	}
	if err == nil {
		_, err = f.l.Ship(f.ctx, id, seller, "")
	}
	if err == nil {
		_, err = f.l.Confirm(f.ctx, id, buyer)
	}
	return err
}

var benchMoney = fen(benchPrice)

// benchID returns "e" and n, built in buf to keep the harness to one
// allocation per ID.
func benchID(buf []byte, n int64) ([]byte, string) {
	buf = strconv.AppendInt(append(buf[:0], 'e'), n, 10)
	return buf, string(buf)
}

func reportSteps(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(4*b.N), "ns/step")
}

func benchLifecycleSerial(b *testing.B, h Harness) {
	const pairs = 4
	f := newFixture(b, h)
	buyers, sellers := benchParties(f, pairs, b.N/pairs+1)
	var buf []byte
	var id string
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, id = benchID(buf, int64(i))
		if err := benchTrade(f, id, buyers[i%pairs], sellers[i%pairs]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportSteps(b)
	// A benchmark that moved no money would be fast for the wrong reason.
	trades := int64((b.N + pairs - 1) / pairs)
	if a, _ := f.balance(sellers[0]); a != trades*(benchPrice-simFee(benchPrice)) {
		b.Fatalf("%s has %d after %d trades, want %d", sellers[0], a, trades, trades*(benchPrice-simFee(benchPrice)))
	}
}

// benchLifecycleParallel runs trades from GOMAXPROCS goroutines. Each
// goroutine trades between its own buyer and seller, as independent
// customers would, so that the figure shows what the store does with
// concurrent transactions rather than how calls queue on one account's
// balance (which would serialise on any store).
func benchLifecycleParallel(b *testing.B, h Harness) {
	pairs := runtime.GOMAXPROCS(0)
	f := newFixture(b, h)
	// One goroutine may end up running every trade.
	buyers, sellers := benchParties(f, pairs, b.N)
	var next, worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := int(worker.Add(1)-1) % pairs
		var buf []byte
		var id string
		for pb.Next() {
			buf, id = benchID(buf, next.Add(1))
			if err := benchTrade(f, id, buyers[p], sellers[p]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportSteps(b)
	var released int64
	for _, s := range sellers {
		a, _ := f.balance(s)
		released += a
	}
	if want := int64(b.N) * (benchPrice - simFee(benchPrice)); released != want {
		b.Fatalf("sellers have %d after %d trades, want %d", released, b.N, want)
	}
}

// baseline is the least any escrow ledger must do: a mutex and maps of
// int64, holding and releasing money with no journal, events, fees,
// timers, validation or copying.
type baseline struct {
	mu        sync.Mutex
	available map[string]int64
	held      map[string]int64
	trades    map[string]baselineTrade
}

type baselineTrade struct {
	buyer, seller string
	price         int64
	state         escrow.State
}

var (
	errBaselineExists = errors.New("baseline: trade exists")
	errBaselineState  = errors.New("baseline: wrong state")
	errBaselineFunds  = errors.New("baseline: insufficient funds")
)

func newBaseline() *baseline {
	return &baseline{available: map[string]int64{}, held: map[string]int64{}, trades: map[string]baselineTrade{}}
}

func (l *baseline) open(id, buyer, seller string, price int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.trades[id]; ok {
		return errBaselineExists
	}
	l.trades[id] = baselineTrade{buyer: buyer, seller: seller, price: price, state: escrow.AwaitingPayment}
	return nil
}

// step moves trade id from state from to state to, applying move to it.
func (l *baseline) step(id string, from, to escrow.State, move func(t baselineTrade) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.trades[id]
	if !ok || t.state != from {
		return errBaselineState
	}
	if move != nil {
		if err := move(t); err != nil {
			return err
		}
	}
	t.state = to
	l.trades[id] = t
	return nil
}

func (l *baseline) hold(t baselineTrade) error {
	if l.available[t.buyer] < t.price {
		return errBaselineFunds
	}
	l.available[t.buyer] -= t.price
	l.held[t.buyer] += t.price
	return nil
}

func (l *baseline) release(t baselineTrade) error {
	l.held[t.buyer] -= t.price
	l.available[t.seller] += t.price
	return nil
}

func (l *baseline) trade(id, buyer, seller string) error {
	err := l.open(id, buyer, seller, benchPrice)
	if err == nil {
		err = l.step(id, escrow.AwaitingPayment, escrow.AwaitingShipment, l.hold)
	}
	if err == nil {
		err = l.step(id, escrow.AwaitingShipment, escrow.AwaitingConfirmation, nil)
	}
	if err == nil {
		err = l.step(id, escrow.AwaitingConfirmation, escrow.Completed, l.release)
	}
	return err
}

func baselineParties(l *baseline, n, trades int) (buyers, sellers []string) {
	for i := range n {
		buyer, seller := "buyer-"+strconv.Itoa(i), "seller-"+strconv.Itoa(i)
		l.available[buyer] = int64(trades) * benchPrice
		buyers, sellers = append(buyers, buyer), append(sellers, seller)
	}
	return buyers, sellers
}

func benchBaselineSerial(b *testing.B) {
	const pairs = 4
	l := newBaseline()
	buyers, sellers := baselineParties(l, pairs, b.N/pairs+1)
	var buf []byte
	var id string
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, id = benchID(buf, int64(i))
		if err := l.trade(id, buyers[i%pairs], sellers[i%pairs]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportSteps(b)
}

func benchBaselineParallel(b *testing.B) {
	pairs := runtime.GOMAXPROCS(0)
	l := newBaseline()
	buyers, sellers := baselineParties(l, pairs, b.N)
	var next, worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := int(worker.Add(1)-1) % pairs
		var buf []byte
		var id string
		for pb.Next() {
			buf, id = benchID(buf, next.Add(1))
			if err := l.trade(id, buyers[p], sellers[p]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportSteps(b)
}

func benchDeposit(b *testing.B, h Harness) {
	f := newFixture(b, h)
	raceFunded(f, "depositor", 0)
	amount := fen(100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.l.Deposit(f.ctx, "depositor", amount); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if a, _ := f.balance("depositor"); a != int64(b.N)*100 {
		b.Fatalf("depositor has %d after %d deposits of 100", a, b.N)
	}
}

func benchReadEscrow(b *testing.B, h Harness) {
	const escrows = 1000
	f := newFixture(b, h)
	buyers, sellers := benchParties(f, 1, escrows)
	ids := make([]string, escrows)
	for i := range ids {
		_, ids[i] = benchID(nil, int64(i))
		raceOpen(f, escrow.Terms{ID: ids[i], Buyer: buyers[0], Seller: sellers[0], Price: benchMoney})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e, err := f.l.Escrow(f.ctx, ids[i%escrows])
		if err != nil || e.ID != ids[i%escrows] {
			b.Fatalf("Escrow(%q) = %q, %v", ids[i%escrows], e.ID, err)
		}
	}
}

// rateSellers is how many shops the Rate benchmark's buyers buy from.
const rateSellers = 8

// rateMarket is the most finished trades the Rate benchmark's store holds.
// Every rating needs a trade of its own, so a benchmark that rated b.N
// trades in one store would time ratings in ever larger stores, and its
// figure would grow with b.N. The benchmark rates in rounds instead, each
// on a fresh store of min(b.N, rateMarket) trades built with the timer
// stopped: past that size the figure is the cost of a rating in a market
// of 100,000 finished trades, however long the benchmark runs.
const rateMarket = 100_000

// rateSeller returns the seller of the Rate benchmark's i-th escrow. Each
// buyer makes ten purchases in the month: eight from a regular shop, so
// that the last two of them meet the monthly pair cap and do not count,
// and one each from two other shops.
func rateSeller(i int) int {
	buyer, j := i/10, i%10
	return (buyer + max(0, j-7)) % rateSellers
}

func benchRate(b *testing.B, h Harness) {
	size := min(b.N, rateMarket)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += size {
		b.StopTimer()
		rateRound(b, h, size, min(size, b.N-done))
	}
}

// rateRound builds a store of trades finished trades, then rates the
// first n of them with the timer running, and checks the result.
func rateRound(b *testing.B, h Harness, trades, n int) {
	f := newFixture(b, h)
	buyers := make([]string, trades/10+1)
	for k := range buyers {
		buyers[k] = "buyer-" + strconv.Itoa(k)
		raceFunded(f, buyers[k], 10*benchPrice)
	}
	sellers := make([]string, rateSellers)
	for k := range sellers {
		sellers[k] = "seller-" + strconv.Itoa(k)
		raceFunded(f, sellers[k], 0)
	}
	ids := make([]string, trades)
	for i := range ids {
		_, ids[i] = benchID(nil, int64(i))
		if err := benchTrade(f, ids[i], buyers[i/10], sellers[rateSeller(i)]); err != nil {
			b.Fatal(err)
		}
	}
	in := escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Described: 5, Communication: 4, Shipping: 5}}
	// Collect the building's garbage now, not while the ratings are timed.
	runtime.GC()
	b.StartTimer()
	for i := range n {
		// Ratings arrive one after another, not all in the same instant;
		// a tenth of a second apart keeps a round inside the rating
		// window and the month.
		f.clock.Advance(100 * time.Millisecond)
		if _, err := f.l.Rate(f.ctx, ids[i], buyers[i/10], in); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()

	// Every rating was stored, and those over a pair's cap did not count:
	// a buyer's seventh and eighth purchase from the regular shop.
	var want, got int64
	for k := range buyers {
		m := min(max(n-10*k, 0), 10)
		want += int64(min(m, 6))
		if m > 8 {
			want += int64(m - 8)
		}
	}
	for _, s := range sellers {
		rep, err := f.l.Reputation(f.ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		if rep.AsSeller.Points != rep.AsSeller.Total.Positive {
			b.Fatalf("%s has %d points from %d positive ratings", s, rep.AsSeller.Points, rep.AsSeller.Total.Positive)
		}
		got += rep.AsSeller.Points
	}
	if got != want {
		b.Fatalf("the sellers have %d points from %d ratings, want %d", got, n, want)
	}
}

// benchReputation reads the reputation of a seller rated by 2,000 buyers
// over the past year, so that its aggregate holds a full year of days.
func benchReputation(b *testing.B, h Harness) {
	const ratings = 2000
	f := newFixture(b, h)
	raceFunded(f, "shop", 0)
	step := 365 * 24 * time.Hour / ratings
	for i := range ratings {
		buyer := "buyer-" + strconv.Itoa(i)
		raceFunded(f, buyer, benchPrice)
		_, id := benchID(nil, int64(i))
		if err := benchTrade(f, id, buyer, "shop"); err != nil {
			b.Fatal(err)
		}
		score := escrow.Positive
		if i%10 == 9 {
			score = escrow.Negative
		}
		if _, err := f.l.Rate(f.ctx, id, buyer, escrow.RatingInput{Score: score}); err != nil {
			b.Fatal(err)
		}
		f.clock.Advance(step)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var rep escrow.Reputation
	for i := 0; i < b.N; i++ {
		var err error
		if rep, err = f.l.Reputation(f.ctx, "shop"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// Nine in ten positive: 1,800 up, 200 down.
	if v := rep.AsSeller; v.Points != 1600 || v.Total != (escrow.Counts{Positive: 1800, Negative: 200}) || v.Unrated {
		b.Fatalf("the shop's reputation is %+v, want 1600 points from 1800 positive and 200 negative", v)
	}
}
