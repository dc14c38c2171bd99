package brushing

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// The market: two ledgers on one manual clock. The market ledger holds
// every honest trade and the attacks. The baseline ledger holds the honest
// trades of the rival alone, which is all its figures depend on: they are
// the rival's figures had attack (d) not happened. Every step is an event
// at a moment; the events run in time order, and every day ends with
// ProcessDue, which closes rating windows, gives default ratings,
// auto-confirms what buyers left and keeps the ranking keys current. The
// run ends with the last day's ProcessDue.

const (
	day   = 24 * time.Hour
	hour  = time.Hour
	dueAt = 23*hour + 30*time.Minute // when ProcessDue runs each day
)

// epoch is the market's first day: a Monday, so that weeks line up.
var epoch = time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC)

// An event is one step of the market at a moment; seq keeps events at
// the same moment in the order they were scheduled.
type event struct {
	at  time.Time
	seq int
	do  func() error
}

type agenda []event

func (a agenda) Len() int { return len(a) }
func (a agenda) Less(i, j int) bool {
	if !a[i].at.Equal(a[j].at) {
		return a[i].at.Before(a[j].at)
	}
	return a[i].seq < a[j].seq
}
func (a agenda) Swap(i, j int) { a[i], a[j] = a[j], a[i] }
func (a *agenda) Push(x any)   { *a = append(*a, x.(event)) }
func (a *agenda) Pop() any {
	old := *a
	e := old[len(old)-1]
	*a = old[:len(old)-1]
	return e
}

// An item is one listing: its SKU (Terms.SKU) and price in fen.
type item struct {
	sku   string
	price int64
}

// A shop is an honest seller: its listings, how often buyers pick it, and
// how often its buyers are unhappy.
type shop struct {
	id       string
	items    []item
	weight   float64 // cumulative popularity, for drawing
	neg, neu float64 // the chance that a buyer's rating is Negative, Neutral
}

// A trade is one escrow the market opened, for the tally.
type trade struct {
	id, seller string
	attack     bool
}

// A tally is what one seller's orders came to, in fen.
type tally struct {
	orders  int
	counted int   // ratings that counted (the attackers' only)
	volume  int64 // the prices of its completed trades
	fees    int64 // the fees on them
	spend   int64 // what an attacker lost: fees, and prices paid to others
}

type sim struct {
	ctx          context.Context
	cfg          Config
	clock        *escrow.ManualClock
	stores       []*memstore.Store
	base, market *escrow.Ledger
	events       agenda
	seq          int
	rng          *rand.Rand // the honest market's draws, the same under every policy
	shops        []shop
	buyers       []string
	honest       map[string]bool
	trades       []trade
	tallies      map[string]*tally
	watch        []string              // the shops whose standing is recorded daily
	daily        map[string][]Standing // their standing at the end of each day
	honestTrades int
	done         bool // the last day's ProcessDue has run
}

// A Standing is an attacking shop's standing at the end of one day of its
// attack: its ranks among the honest shops, and what it had spent and sold
// by then.
type Standing struct {
	Day                         int // of the attack: 1 is its first day
	RankWilson, RankExpectation int
	Spend, Volume               int64 // fen
}

func newSim(ctx context.Context, cfg Config, ps PolicySet) (*sim, error) {
	if cfg.Shops <= rivalIndex || cfg.Buyers < 1 || cfg.OrdersPerDay < 1 || cfg.Sybils < 1 || cfg.RivalSybils < 1 ||
		cfg.AttackFrom < 0 || cfg.AttackFrom >= cfg.Days {
		return nil, fmt.Errorf("brushing: config %+v: it needs at least %d shops, a buyer, an order a day, a sybil in each ring, and the attacks within the days",
			cfg, rivalIndex+1)
	}
	rate, err := decimal.NewFromString(cfg.FeeRate)
	if err != nil {
		return nil, fmt.Errorf("fee rate %q: %w", cfg.FeeRate, err)
	}
	s := &sim{ctx: ctx, cfg: cfg, clock: escrow.NewManualClock(epoch),
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x6272757368)), honest: map[string]bool{},
		tallies: map[string]*tally{}, daily: map[string][]Standing{}}
	opts := &escrow.Options{Clock: s.clock, Fee: escrow.FeePolicy{Rate: rate}, Reputation: ps.Policy}
	s.stores = []*memstore.Store{memstore.New(), memstore.New()}
	if s.base, err = escrow.New(ctx, s.stores[0], opts); err != nil {
		s.close()
		return nil, err
	}
	if s.market, err = escrow.New(ctx, s.stores[1], opts); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close closes the stores.
func (s *sim) close() {
	for _, st := range s.stores {
		st.Close()
	}
}

// onLedgers runs fn on the market, and on the baseline too if seller is
// the rival of attack (d) or the empty string (every ledger).
func (s *sim) onLedgers(seller string, fn func(*escrow.Ledger) error) error {
	if seller == "" || seller == s.shops[rivalIndex].id {
		if err := fn(s.base); err != nil {
			return err
		}
	}
	return fn(s.market)
}

// at schedules fn at t.
func (s *sim) at(t time.Time, fn func() error) {
	s.seq++
	heap.Push(&s.events, event{at: t, seq: s.seq, do: fn})
}

func (s *sim) tally(seller string) *tally {
	t := s.tallies[seller]
	if t == nil {
		t = &tally{}
		s.tallies[seller] = t
	}
	return t
}

// cny is fen as Money. Every amount here is the program's own, so one out
// of range is a bug.
func cny(fen int64) escrow.Money {
	m, err := escrow.MoneyFromUnits(fen, escrow.CNY)
	if err != nil {
		panic(err)
	}
	return m
}

// open makes an account for each id on ledgers, with deposit fen (0: none).
func (s *sim) open(ledgers []*escrow.Ledger, ids []string, deposit int64) error {
	for _, l := range ledgers {
		for _, id := range ids {
			if _, err := l.OpenAccount(s.ctx, id); err != nil {
				return err
			}
			if deposit > 0 {
				if _, err := l.Deposit(s.ctx, id, cny(deposit)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// setUp draws the honest shops and opens the honest accounts on both
// ledgers. Shops differ in what they sell (a median price from 15 to 600
// CNY, log-uniform, and listings spread around it, from 5 to 2,000 CNY),
// in popularity (Zipf-like: the n-th shop is drawn in proportion to
// n^−0.7) and in how often a buyer is unhappy (1–5% negatives, 1–4%
// neutrals).
func (s *sim) setUp() error {
	r := s.rng
	total := 0.0
	for i := range s.cfg.Shops {
		sh := shop{id: fmt.Sprintf("shop-%02d", i+1), neg: 0.01 + 0.04*r.Float64(), neu: 0.01 + 0.03*r.Float64()}
		median := math.Exp(math.Log(15) + (math.Log(600)-math.Log(15))*r.Float64())
		for k := range 30 {
			p := median * math.Exp(0.7*r.NormFloat64())
			p = math.Min(2000, math.Max(5, p))
			// Prices end in .90, as shops price them, or are whole.
			fen := int64(math.Round(p))*100 - 10
			if fen < 500 {
				fen = 500
			}
			sh.items = append(sh.items, item{sku: fmt.Sprintf("%s/%02d", sh.id, k+1), price: fen})
		}
		total += math.Pow(float64(i+1), -0.7)
		sh.weight = total
		s.shops = append(s.shops, sh)
		s.honest[sh.id] = true
	}
	for i := range s.shops {
		s.shops[i].weight /= total
	}
	for i := range s.cfg.Buyers {
		s.buyers = append(s.buyers, fmt.Sprintf("buyer-%04d", i+1))
	}
	ledgers := []*escrow.Ledger{s.base, s.market}
	if err := s.open(ledgers, s.buyers, 100_000_000); err != nil { // 1,000,000 CNY each: never short
		return err
	}
	var ids []string
	for _, sh := range s.shops {
		ids = append(ids, sh.id)
	}
	return s.open(ledgers, ids, 0)
}

// dayStart is the start of day d (0 is the first).
func dayStart(d int) time.Time { return epoch.Add(time.Duration(d) * day) }

// schedule puts every day's honest orders and its ProcessDue on the
// agenda.
func (s *sim) schedule() {
	n := 0
	for d := range s.cfg.Days {
		// Between half and one and a half times the average, so that
		// days differ.
		orders := s.cfg.OrdersPerDay/2 + s.rng.IntN(s.cfg.OrdersPerDay+1)
		for range orders {
			n++
			s.honestOrder(n, dayStart(d).Add(time.Duration(8*60+s.rng.IntN(14*60))*time.Minute))
		}
		s.at(dayStart(d).Add(dueAt), func() error { return s.endOfDay(d) })
	}
}

// honestOrder draws one honest trade and schedules its steps: open and
// pay, ship within two days, confirm one to six days later (or, one time
// in ten, leave it to auto-confirm), and then the ratings: the buyer rates
// four times in five, the shop rates the buyer three times in five, each
// within six days of the end; a party who stays silent while the other
// rated gets the default rating when the window closes.
func (s *sim) honestOrder(n int, at time.Time) {
	r := s.rng
	x := r.Float64()
	i, _ := slices.BinarySearchFunc(s.shops, x, func(sh shop, x float64) int {
		if sh.weight < x {
			return -1
		}
		return 1
	})
	sh := &s.shops[min(i, len(s.shops)-1)]
	it := sh.items[r.IntN(len(sh.items))]
	buyer := s.buyers[r.IntN(len(s.buyers))]
	id := fmt.Sprintf("order-%06d", n)
	s.trades = append(s.trades, trade{id: id, seller: sh.id})

	ship := at.Add(time.Duration(1+r.IntN(47)) * hour)
	var end time.Time
	if r.IntN(10) == 0 {
		// Auto-confirm: the first ProcessDue after the deadline.
		deadline := ship.Add(escrow.DefaultTimers().ConfirmWithin)
		end = deadline.Truncate(day).Add(dueAt)
		if end.Before(deadline) {
			end = end.Add(day)
		}
	} else {
		end = ship.Add(time.Duration(24+r.IntN(5*24)) * hour)
		s.at(end, func() error {
			return s.onLedgers(sh.id, func(l *escrow.Ledger) error { _, err := l.Confirm(s.ctx, id, buyer); return err })
		})
	}
	s.at(at, func() error {
		return s.onLedgers(sh.id, func(l *escrow.Ledger) error {
			terms := escrow.Terms{ID: id, Buyer: buyer, Seller: sh.id, SKU: it.sku, Price: cny(it.price)}
			if _, err := l.Open(s.ctx, terms); err != nil {
				return err
			}
			_, err := l.Pay(s.ctx, id, buyer)
			return err
		})
	})
	s.at(ship, func() error {
		return s.onLedgers(sh.id, func(l *escrow.Ledger) error { _, err := l.Ship(s.ctx, id, sh.id, ""); return err })
	})
	if r.IntN(5) < 4 {
		score := escrow.Positive
		switch x := r.Float64(); {
		case x < sh.neg:
			score = escrow.Negative
		case x < sh.neg+sh.neu:
			score = escrow.Neutral
		}
		s.rate(end.Add(time.Duration(1+r.IntN(6*24))*hour), id, sh.id, buyer, score)
	}
	if r.IntN(5) < 3 {
		s.rate(end.Add(time.Duration(1+r.IntN(6*24))*hour), id, sh.id, sh.id, escrow.Positive)
	}
}

// rate schedules an honest rating.
func (s *sim) rate(t time.Time, id, seller, rater string, score escrow.Score) {
	s.at(t, func() error {
		return s.onLedgers(seller, func(l *escrow.Ledger) error {
			_, err := l.Rate(s.ctx, id, rater, escrow.RatingInput{Score: score})
			return err
		})
	})
}

// endOfDay runs ProcessDue on both ledgers and records the standing of
// the watched shops.
func (s *sim) endOfDay(d int) error {
	if err := s.onLedgers("", func(l *escrow.Ledger) error { _, err := l.ProcessDue(s.ctx); return err }); err != nil {
		return err
	}
	s.done = d == s.cfg.Days-1
	if d < s.cfg.AttackFrom {
		return nil
	}
	w, e, err := s.rankings(s.market)
	if err != nil {
		return err
	}
	for _, id := range s.watch {
		t := s.tally(id)
		s.daily[id] = append(s.daily[id], Standing{Day: d - s.cfg.AttackFrom + 1,
			RankWilson: s.rankOf(w, id), RankExpectation: s.rankOf(e, id), Spend: t.spend, Volume: t.volume})
	}
	return nil
}

// run plays the agenda to the last day's ProcessDue.
func (s *sim) run() error {
	for !s.done && s.events.Len() > 0 {
		ev := heap.Pop(&s.events).(event)
		s.clock.Set(ev.at)
		if err := ev.do(); err != nil {
			return fmt.Errorf("%s: %w", ev.at.Format(time.DateTime), err)
		}
	}
	return nil
}

// settle adds up the honest trades that completed, as the market ledger
// reports them.
func (s *sim) settle() error {
	for _, t := range s.trades {
		if t.attack {
			continue
		}
		e, err := s.market.Escrow(s.ctx, t.id)
		if err != nil {
			return err
		}
		if e.State != escrow.Completed {
			continue
		}
		s.honestTrades++
		tl := s.tally(t.seller)
		tl.orders++
		tl.volume += e.Price.Units()
		tl.fees += e.Fees.Units()
		tl.spend += e.Fees.Units()
	}
	return nil
}
