package brushing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/escrowkit/escrow"
)

// Figures are a shop's standing as a seller: what Reputation reports, and
// its ranks in TopSellers among the honest shops (1 is the top).
type Figures struct {
	Points          int64
	Level           escrow.Level
	Wilson          float64
	Expectation     float64 // the Beta reputation's
	RankWilson      int
	RankExpectation int
	// TopShare and NewShare are what Concentration reports: the share of
	// its points from its top 5 raters, and from raters with fewer than 3
	// trades.
	TopShare, NewShare float64
}

// A Row is what one party gained, and what it cost.
type Row struct {
	Attack string // "(a)" to "(d)"; "" for the median honest shop
	Name   string // what it is, for the table
	Party  string // whose figures From and To are: the attacker's shop, or for (d) the rival
	Orders int    // orders placed
	// Counted is how many of the attacker's ratings counted.
	Counted int
	// Volume is the price of the orders, Fees the platform's fees on them,
	// and Spend what the attacker lost: the fees when the money came back
	// to its own shop, the prices when it went to a rival. For the honest
	// shop, Spend is its fees. All in fen.
	Volume, Fees, Spend int64
	// From is where the party stood without the attack (a new shop:
	// unrated, below every honest shop, with the Beta prior's ½); To is
	// where it stands at the end.
	From, To Figures
	// TopDecile is when the shop first stood in the top tenth of the
	// honest shops, by Wilson and by expectation; MatchMedian, when it
	// first ranked as high as the median honest shop ends. Zero Day: never.
	TopDecile, MatchMedian [2]Standing
}

// Gain is To minus From; for ranks, the places climbed.
func (r Row) Gain() Figures {
	return Figures{Points: r.To.Points - r.From.Points, Wilson: r.To.Wilson - r.From.Wilson,
		Expectation: r.To.Expectation - r.From.Expectation,
		RankWilson:  r.From.RankWilson - r.To.RankWilson, RankExpectation: r.From.RankExpectation - r.To.RankExpectation}
}

// PerThousand is Gain per 1,000 CNY of Spend.
func (r Row) PerThousand() (points, wilson, expectation, rankWilson, rankExpectation float64) {
	if r.Spend == 0 {
		return
	}
	g, k := r.Gain(), 100_000/float64(r.Spend) // 1,000 CNY in fen
	return float64(g.Points) * k, g.Wilson * k, g.Expectation * k, float64(g.RankWilson) * k, float64(g.RankExpectation) * k
}

// A Result is one policy set's run.
type Result struct {
	Config       Config
	Policy       string
	HonestShops  int
	HonestTrades int // completed
	// Median is the honest shop with the median volume, and Average the
	// mean of the honest shops' figures, orders and fees (the rival's
	// left out of both); Rows are the attacks, in the order of Attacks.
	Median, Average Row
	Rows            []Row
	// Rankings are the final TopSellers of the market ledger, by Wilson
	// and by expectation: every rated seller, attackers included.
	Rankings [2][]string
}

// Run runs the market and the attacks under ps.
func Run(ctx context.Context, cfg Config, ps PolicySet) (Result, error) {
	s, err := newSim(ctx, cfg, ps)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	if err := s.setUp(); err != nil {
		return Result{}, err
	}
	if err := s.setUpAttacks(); err != nil {
		return Result{}, err
	}
	s.schedule()
	if err := s.run(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", ps.Name, err)
	}
	if err := s.settle(); err != nil {
		return Result{}, err
	}
	return s.result(ps.Name)
}

// RunAll runs every policy set of PolicySets side by side, and returns
// their results in the order of PolicySets.
func RunAll(ctx context.Context, cfg Config) ([]Result, error) {
	sets := PolicySets()
	out := make([]Result, len(sets))
	errs := make([]error, len(sets))
	var wg sync.WaitGroup
	for i, ps := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = Run(ctx, cfg, ps)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// rankings reads TopSellers by Wilson and by expectation, every page.
func (s *sim) rankings(l *escrow.Ledger) (wilson, expectation []escrow.Ranked, err error) {
	var out [2][]escrow.Ranked
	for k, key := range []escrow.RankKey{escrow.RankWilson, escrow.RankExpectation} {
		for p := (escrow.Page{Limit: escrow.MaxPageLimit}); ; {
			page, err := l.TopSellers(s.ctx, key, p)
			if err != nil {
				return nil, nil, err
			}
			out[k] = append(out[k], page.Sellers...)
			if p.Cursor = page.Next; p.Cursor == "" {
				break
			}
		}
	}
	return out[0], out[1], nil
}

// rankOf is party's place in ranking among the honest shops: one more
// than the honest shops ranked above it. A party not in the ranking (never
// rated) ranks below every honest shop.
func (s *sim) rankOf(ranking []escrow.Ranked, party string) int {
	above := 0
	for _, r := range ranking {
		if r.Party == party {
			return above + 1
		}
		if s.honest[r.Party] {
			above++
		}
	}
	return len(s.shops) + 1
}

// placeAmong is where a seller with key, not in ranking, would rank among
// the honest shops of ranking, by the keys of their Views: one more than
// those with a higher key, or the same key and a lower ID (as TopSellers
// orders ties).
func (s *sim) placeAmong(ranking []escrow.Ranked, party string, key func(escrow.View) float64, v escrow.View) int {
	above := 0
	for _, r := range ranking {
		if r.Party != party && s.honest[r.Party] &&
			(key(r.View) > key(v) || key(r.View) == key(v) && r.Party < party) {
			above++
		}
	}
	return above + 1
}

// figures reads party's standing on the market: its View, and its places
// in w and e, the market's rankings by Wilson and by expectation.
func (s *sim) figures(party string, w, e []escrow.Ranked) (Figures, error) {
	rep, err := s.market.Reputation(s.ctx, party)
	if err != nil {
		return Figures{}, err
	}
	f := fromView(rep.AsSeller)
	f.RankWilson, f.RankExpectation = s.rankOf(w, party), s.rankOf(e, party)
	c, err := s.market.Concentration(s.ctx, party)
	if err != nil {
		return Figures{}, err
	}
	f.TopShare, f.NewShare = c.TopRatersShare, c.NewRatersShare
	return f, nil
}

// unattacked reads the rival's standing had attack (d) not happened: its
// View on the baseline ledger, placed among the honest shops of the
// market's rankings w and e by their Views' keys, since the rival is in
// those rankings with its attacked keys.
func (s *sim) unattacked(rival string, w, e []escrow.Ranked) (Figures, error) {
	rep, err := s.base.Reputation(s.ctx, rival)
	if err != nil {
		return Figures{}, err
	}
	v := rep.AsSeller
	f := fromView(v)
	f.RankWilson = s.placeAmong(w, rival, func(v escrow.View) float64 { return v.Wilson }, v)
	f.RankExpectation = s.placeAmong(e, rival, func(v escrow.View) float64 { return v.Expectation }, v)
	return f, nil
}

func fromView(v escrow.View) Figures {
	f := Figures{Points: v.Points, Level: v.Level, Wilson: v.Wilson, Expectation: v.Expectation}
	if v.Unrated {
		f.Expectation = 0.5 // the Beta prior, α = β = 1
	}
	return f
}

// newShop is where a shop with no rating stands.
func (s *sim) newShop() Figures {
	n := len(s.shops) + 1
	return Figures{Level: escrow.LevelFor(0), Expectation: 0.5, RankWilson: n, RankExpectation: n}
}

func (s *sim) result(policy string) (Result, error) {
	res := Result{Config: s.cfg, Policy: policy, HonestShops: len(s.shops), HonestTrades: s.honestTrades}
	w, e, err := s.rankings(s.market)
	if err != nil {
		return Result{}, err
	}
	for k, ranking := range [2][]escrow.Ranked{w, e} {
		for _, r := range ranking {
			res.Rankings[k] = append(res.Rankings[k], r.Party)
		}
	}
	// The median honest shop by volume, leaving out the rival, whose
	// figures attack (d) changes.
	var shops []string
	for i, sh := range s.shops {
		if i != rivalIndex {
			shops = append(shops, sh.id)
		}
	}
	slices.SortStableFunc(shops, func(a, b string) int {
		return cmp.Or(cmp.Compare(s.tally(a).volume, s.tally(b).volume), cmp.Compare(a, b))
	})
	med := shops[(len(shops)-1)/2]
	row := func(attack, name, party, payer string) (Row, error) {
		t := s.tally(payer)
		r := Row{Attack: attack, Name: name, Party: party, Orders: t.orders, Counted: t.counted,
			Volume: t.volume, Fees: t.fees, Spend: t.spend, From: s.newShop()}
		var err error
		r.To, err = s.figures(party, w, e)
		return r, err
	}
	if res.Median, err = row("", "honest: median shop, "+med, med, med); err != nil {
		return Result{}, err
	}
	res.Median.Counted = 0
	if res.Average, err = s.average(shops, w, e); err != nil {
		return Result{}, err
	}
	rival := s.shops[rivalIndex].id
	for _, a := range []struct{ attack, name, party, payer string }{
		{"(a)", fmt.Sprintf("%d sybils buy cheap items", s.cfg.Sybils), ringA, ringA},
		{"(b)", fmt.Sprintf("%d sybils buy one item", s.cfg.Sybils), ringB, ringB},
		{"(c)", "two shops buy from each other", pair1, pair1},
		{"(d)", fmt.Sprintf("%d sybils buy negatives for %s", s.cfg.RivalSybils, rival), rival, spoiler},
	} {
		r, err := row(a.attack, a.name, a.party, a.payer)
		if err != nil {
			return Result{}, err
		}
		if a.attack == "(d)" {
			if r.From, err = s.unattacked(rival, w, e); err != nil {
				return Result{}, err
			}
		}
		medRanks := [2]int{res.Median.To.RankWilson, res.Median.To.RankExpectation}
		for _, day := range s.daily[a.party] {
			for key, rank := range [2]int{day.RankWilson, day.RankExpectation} {
				if rank <= max(1, len(s.shops)/10) && r.TopDecile[key].Day == 0 {
					r.TopDecile[key] = day
				}
				if rank <= medRanks[key] && r.MatchMedian[key].Day == 0 {
					r.MatchMedian[key] = day
				}
			}
		}
		res.Rows = append(res.Rows, r)
	}
	return res, nil
}

// average is the mean of the figures, orders, volume and fees of shops.
func (s *sim) average(shops []string, w, e []escrow.Ranked) (Row, error) {
	var sum Row
	var wilson, expectation, top, fresh float64
	var points int64
	for _, id := range shops {
		f, err := s.figures(id, w, e)
		if err != nil {
			return Row{}, err
		}
		t := s.tally(id)
		sum.Orders += t.orders
		sum.Volume += t.volume
		sum.Fees += t.fees
		points += f.Points
		wilson += f.Wilson
		expectation += f.Expectation
		top += f.TopShare
		fresh += f.NewShare
		sum.To.RankWilson += f.RankWilson
		sum.To.RankExpectation += f.RankExpectation
	}
	n := len(shops)
	avg := func(x int64) int64 { return (x + int64(n)/2) / int64(n) }
	r := Row{Name: fmt.Sprintf("honest: average of %d shops", n), Orders: int(avg(int64(sum.Orders))),
		Volume: avg(sum.Volume), Fees: avg(sum.Fees), From: s.newShop()}
	r.Spend = r.Fees
	r.To = Figures{Points: avg(points), Level: escrow.LevelFor(avg(points)),
		Wilson: wilson / float64(n), Expectation: expectation / float64(n),
		RankWilson: int(avg(int64(sum.To.RankWilson))), RankExpectation: int(avg(int64(sum.To.RankExpectation))),
		TopShare: top / float64(n), NewShare: fresh / float64(n)}
	return r, nil
}
