package brushing

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/escrowkit/escrow"
)

// The attacks. Each attacker is a party of its own, so that the four run
// in the same market without touching each other's figures; ranks are
// taken among the honest shops (see rankOf), so one attacker never pushes
// another down. They trade on the market ledger only.

// Attacks names the attacks in the order a Result lists them.
var Attacks = []string{"(a)", "(b)", "(c)", "(d)"}

// The attackers' parties.
const (
	ringA   = "ring-a"  // (a): the shop its sybils buy cheap items from
	ringB   = "ring-b"  // (b): the shop its sybils buy one item from
	pair1   = "pair-1"  // (c): two shops that buy from each other
	pair2   = "pair-2"  //
	spoiler = "spoiler" // (d): the shop whose sybils buy negatives for a rival
)

// rivalIndex is the honest shop attack (d) aims at: the tenth by
// popularity, a shop with a solid record to lose.
const rivalIndex = 9

// cheap are the prices, in fen, of a brushing shop's twenty listings:
// cheap real items from 1.01 to 9.90 CNY, the least just above the
// minimum that counts under every policy measured.
var cheap = []int64{101, 120, 150, 180, 199, 250, 290, 299, 350, 390, 450, 499, 550, 590, 650, 699, 790, 850, 899, 990}

func cheapItem(shop string, k int) item {
	k %= len(cheap)
	return item{sku: fmt.Sprintf("%s/%02d", shop, k+1), price: cheap[k]}
}

func sybils(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-sybil-%02d", prefix, i+1)
	}
	return ids
}

// setUpAttacks opens the attackers' accounts on the market ledger and puts
// their orders on the agenda. Every sybil orders twice a week, on days
// spread across the ring; the two colluding shops order from each other
// once a day each.
func (s *sim) setUpAttacks() error {
	l := []*escrow.Ledger{s.market}
	ringASybils, ringBSybils := sybils(ringA, s.cfg.Sybils), sybils(ringB, s.cfg.Sybils)
	spoilers := sybils(spoiler, s.cfg.RivalSybils)
	if err := s.open(l, []string{ringA, ringB, spoiler}, 0); err != nil {
		return err
	}
	// The money a sybil pays its ring's shop comes back to the ring; a
	// deposit covers the float.
	for _, ids := range [][]string{ringASybils, ringBSybils, spoilers, {pair1, pair2}} {
		if err := s.open(l, ids, 10_000_000); err != nil {
			return err
		}
	}
	s.watch = []string{ringA, ringB, pair1}
	rival := &s.shops[rivalIndex]
	// The rival's five cheapest listings, which the spoiler's sybils buy
	// in turn.
	targets := slices.Clone(rival.items)
	slices.SortStableFunc(targets, func(a, b item) int { return cmp.Compare(a.price, b.price) })
	targets = targets[:5]

	placed := map[string]int{} // orders each sybil has placed so far
	for d := s.cfg.AttackFrom; d < s.cfg.Days; d++ {
		for j, b := range ringASybils {
			if d%7 == j%7 || d%7 == (j+3)%7 {
				// A different listing each time, and each sybil's own turn
				// through them.
				s.brush(s.sybilAt(d, j), ringA, b, cheapItem(ringA, j+7*placed[b]), escrow.Positive, ringA)
				placed[b]++
			}
		}
		for j, b := range ringBSybils {
			if d%7 == j%7 || d%7 == (j+3)%7 {
				s.brush(s.sybilAt(d, j), ringB, b, cheapItem(ringB, 0), escrow.Positive, ringB)
			}
		}
		s.brush(dayStart(d).Add(11*hour), pair2, pair1, cheapItem(pair2, d), escrow.Positive, pair2)
		s.brush(dayStart(d).Add(15*hour), pair1, pair2, cheapItem(pair1, d), escrow.Positive, pair1)
		for j, b := range spoilers {
			if d%7 == j%7 || d%7 == (j+3)%7 {
				s.brush(s.sybilAt(d, j), rival.id, b, targets[(j+placed[b])%len(targets)], escrow.Negative, spoiler)
				placed[b]++
			}
		}
	}
	return nil
}

// sybilAt is when the j-th sybil of a ring orders on day d.
func (s *sim) sybilAt(d, j int) time.Time {
	return dayStart(d).Add(time.Duration(9+j%12)*hour + time.Duration(j)*time.Minute)
}

// brush schedules one bought rating: buyer orders it from seller, pays,
// the seller ships, the buyer confirms and rates at once. The attacker's
// tally takes what it lost: the fee, when the money comes back to the
// attacker's own shop, or the whole price, when it goes to a rival.
func (s *sim) brush(t time.Time, seller, buyer string, it item, score escrow.Score, attacker string) {
	id := fmt.Sprintf("%s-%06d", attacker, len(s.trades)+1)
	s.trades = append(s.trades, trade{id: id, seller: seller, attack: true})
	s.at(t, func() error {
		l := s.market
		terms := escrow.Terms{ID: id, Buyer: buyer, Seller: seller, SKU: it.sku, Price: cny(it.price)}
		if _, err := l.Open(s.ctx, terms); err != nil {
			return err
		}
		if _, err := l.Pay(s.ctx, id, buyer); err != nil {
			return err
		}
		if _, err := l.Ship(s.ctx, id, seller, ""); err != nil {
			return err
		}
		e, err := l.Confirm(s.ctx, id, buyer)
		if err != nil {
			return err
		}
		r, err := l.Rate(s.ctx, id, buyer, escrow.RatingInput{Score: score})
		if err != nil {
			return err
		}
		tl := s.tally(attacker)
		tl.orders++
		tl.volume += e.Price.Units()
		tl.fees += e.Fees.Units()
		if s.honest[seller] {
			tl.spend += e.Price.Units()
		} else {
			tl.spend += e.Fees.Units()
		}
		if r.Counted {
			tl.counted++
		}
		return nil
	})
}
