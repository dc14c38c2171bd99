package escrow

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"
)

// Scores: the levels, counts and figures a View reports, worked out from
// an aggregate as of a moment, and Explain.

// A Level is a rank earned by points: None (tier 0) below 4 points, then
// Heart, Diamond, Crown and Gold crown, each in tiers 1 to 5.
type Level struct {
	Name string `json:"name"`
	Tier int    `json:"tier"`
}

func (lv Level) String() string {
	if lv.Tier == 0 {
		return lv.Name
	}
	return lv.Name + " " + strconv.Itoa(lv.Tier)
}

// levelFloors are the least points of each level, Heart 1 to Gold crown 5.
var levelFloors = [20]int64{4, 11, 41, 91, 151, 251, 501, 1001, 2001, 5001, 10001, 20001, 50001,
	100001, 200001, 500001, 1000001, 2000001, 5000001, 10000001}

var levelNames = [4]string{"Heart", "Diamond", "Crown", "Gold crown"}

// LevelFor returns the level that points earn.
func LevelFor(points int64) Level {
	n := 0
	for n < len(levelFloors) && points >= levelFloors[n] {
		n++
	}
	if n == 0 {
		return Level{Name: "None"}
	}
	return Level{Name: levelNames[(n-1)/5], Tier: (n-1)%5 + 1}
}

// Counts are counted ratings in a window.
type Counts struct {
	Positive int64 `json:"positive"`
	Neutral  int64 `json:"neutral"`
	Negative int64 `json:"negative"`
}

func (c Counts) plus(o Counts) Counts {
	return Counts{c.Positive + o.Positive, c.Neutral + o.Neutral, c.Negative + o.Negative}
}

// A View is a party's reputation in one role, as of a moment.
type View struct {
	Role Role `json:"role"`
	// Unrated is true when no rating of the party in this role counts;
	// every figure below is then zero.
	Unrated bool `json:"unrated"`
	// Points adds up the points of the counted ratings, all time; under a
	// policy with UniqueRaters it is instead the number of distinct
	// raters with a counted positive rating in the UniqueWindow (the last
	// 365 days, today included) minus those with a counted negative one.
	// (Until the ledger first writes the aggregate under that policy,
	// for a rating or when ProcessDue re-keys it, Points are counted as
	// without it, unless no counted rating is in the UniqueWindow: then
	// they are 0.) Level is the level Points earn.
	Points int64 `json:"points"`
	Level  Level `json:"level"`
	// Total counts every counted rating.
	Total Counts `json:"total"`
	// Last7, Last30, Last180 and Last365 count the counted ratings given in
	// the last 7, 30, 180 and 365 days, today included.
	Last7   Counts `json:"last_7"`
	Last30  Counts `json:"last_30"`
	Last180 Counts `json:"last_180"`
	Last365 Counts `json:"last_365"`
	// PositiveRate is positive/(positive+negative) over the policy's
	// RateWindow (180 days); RateBasis is that denominator, and the rate
	// is 0 when it is.
	PositiveRate float64 `json:"positive_rate"`
	RateBasis    int64   `json:"rate_basis"`
	// Wilson is the lower bound of the 95% Wilson score interval (z = 1.96)
	// of PositiveRate; exactly 0 when no rating in the window is positive.
	Wilson float64 `json:"wilson"`
	// Expectation is α/(α+β) and Uncertainty 2/(α+β) of the Beta
	// reputation, α = 1 + Σ w·positive and β = 1 + Σ w·negative, each rating
	// weighted by w = log10(10 + value) and decayed by age.
	Expectation float64 `json:"expectation"`
	Uncertainty float64 `json:"uncertainty"`
	// Described, Communication and Shipping average the detail scores
	// buyers gave in counted ratings (sellers only) over the policy's
	// DetailWindow (the last 180 days, today included); 0 when none were
	// given in it.
	Described     float64 `json:"described"`
	Communication float64 `json:"communication"`
	Shipping      float64 `json:"shipping"`
}

// Reputation is a party's standing as a seller and as a buyer.
type Reputation struct {
	Party    string `json:"party"`
	AsSeller View   `json:"as_seller"`
	AsBuyer  View   `json:"as_buyer"`
}

// Reputation returns party's reputation now. It reads two aggregates and no
// ratings. An unknown party, or one never rated, is reported unrated.
func (l *Ledger) Reputation(ctx context.Context, party string) (Reputation, error) {
	start := l.begin()
	if err := checkID("party", party); err != nil {
		return Reputation{}, l.finish(start, "reputation", err)
	}
	r := readPool.Get().(*reputationRead)
	r.l, r.now, r.rep = l, l.now(), Reputation{Party: party}
	err := l.store.View(ctx, r.fn)
	rep := r.rep
	*r = reputationRead{fn: r.fn}
	readPool.Put(r)
	return rep, l.finish(start, "reputation", err)
}

// A reputationRead is one Reputation call, pooled with its transaction
// function bound, because reads are the hot path of a marketplace page:
// made with a closure, the result escapes and a read took about 80% longer
// (benchmark Conformance/Reputation).
type reputationRead struct {
	l   *Ledger
	now time.Time
	rep Reputation
	fn  func(Tx) error
}

var readPool = sync.Pool{New: func() any {
	r := new(reputationRead)
	r.fn = r.run
	return r
}}

func (r *reputationRead) run(tx Tx) error {
	for _, role := range [2]Role{Seller, Buyer} {
		a, err := tx.Aggregate(r.rep.Party, role)
		if errors.Is(err, ErrNotFound) {
			a = Aggregate{Party: r.rep.Party, Role: role}
		} else if err != nil {
			return err
		}
		v := &r.rep.AsSeller
		if role == Buyer {
			v = &r.rep.AsBuyer
		}
		if err := r.l.view(tx, &a, r.now, v); err != nil {
			return err
		}
	}
	return nil
}

const wilsonZ = 1.96

// view sets *v to the View of aggregate a as of now. It brings a's
// windows and decayed sums up to now, in a, which the caller discards.
// Both go by pointer, not by value: a Reputation read copies neither, and
// with copies it took about a tenth longer (benchmark
// Conformance/Reputation).
func (l *Ledger) view(tx Tx, a *Aggregate, now time.Time, v *View) error {
	*v = View{Role: a.Role}
	v.Total = Counts{a.Positive, a.Neutral, a.Negative}
	if v.Total == (Counts{}) {
		v.Unrated = true
		v.Level = LevelFor(0)
		return nil
	}
	if err := l.advanceWindows(tx, a, l.dayOf(now)); err != nil {
		*v = View{}
		return err
	}
	v.Points = a.Points
	switch {
	case l.rep.unique && a.RatersKept:
		v.Points = a.UniquePositive - a.UniqueNegative
	case l.rep.unique:
		// Raters not counted yet: the points are as without the option,
		// unless no counted rating is in the UniqueWindow.
		in, err := l.ratedInUniqueWindow(tx, a)
		if err != nil {
			*v = View{}
			return err
		}
		if !in {
			v.Points = 0
		}
	}
	v.Level = LevelFor(v.Points)
	v.Last7, v.Last30, v.Last180, v.Last365 = a.Windows[0], a.Windows[1], a.Windows[2], a.Windows[3]
	v.RateBasis, v.PositiveRate, v.Wilson = positiveRate(a.Windows[4])
	l.decayTo(a, now)
	v.Expectation, v.Uncertainty = betaScore(a.BetaPositive, a.BetaNegative)
	sums, counts := &a.DetailWindowSums, &a.DetailWindowCounts
	if !a.DetailDays && a.Windows[3] != (Counts{}) {
		// Written before the windowed sums existed, and not yet brought
		// up to date: all time, as then. With no rating in the last 365
		// days there is none in the DetailWindow either.
		sums, counts = &a.DetailSums, &a.DetailCounts
	}
	avg := func(k int) float64 {
		if counts[k] == 0 {
			return 0
		}
		return float64(sums[k]) / float64(counts[k])
	}
	v.Described, v.Communication, v.Shipping = avg(0), avg(1), avg(2)
	return nil
}

// ratedInUniqueWindow reports whether a, whose windows end on
// a.WindowsDay, has a counted rating in the policy's UniqueWindow. The
// last 365 days tell without a read when they hold none, or when the
// window is that long; a shorter window reads its days' counts.
func (l *Ledger) ratedInUniqueWindow(tx Tx, a *Aggregate) (bool, error) {
	if a.Windows[3] == (Counts{}) {
		return false, nil
	}
	if l.rep.uniqueDays >= l.windowDays()[3] {
		return true, nil
	}
	found := false
	err := tx.DayRange(a.Party, a.Role, a.WindowsDay-l.rep.uniqueDays+1, a.WindowsDay, func(d DayCount) error {
		if d.Positive != 0 || d.Neutral != 0 || d.Negative != 0 {
			found = true
			return errPageFull
		}
		return nil
	})
	if errors.Is(err, errPageFull) {
		err = nil
	}
	return found, err
}

// positiveRate returns the positive rate of c, positive/(positive+negative),
// with its basis, the denominator, and the lower bound of its Wilson
// interval; the rate and the bound are 0 when the basis is. With no
// positives the bound is exactly 0: the formula works it out as a
// difference of equal terms, which leaves rounding noise of either sign,
// and a ranking would order all-negative parties by that noise.
func positiveRate(c Counts) (basis int64, rate, wilson float64) {
	basis = c.Positive + c.Negative
	if c.Positive == 0 {
		return basis, 0, 0
	}
	n := float64(basis)
	p := float64(c.Positive) / n
	z2 := wilsonZ * wilsonZ
	return basis, p, (p + z2/(2*n) - wilsonZ*math.Sqrt(p*(1-p)/n+z2/(4*n*n))) / (1 + z2/n)
}

// betaScore returns the expectation and uncertainty of the Beta
// reputation with α = 1 + positive and β = 1 + negative.
func betaScore(positive, negative float64) (expectation, uncertainty float64) {
	alpha, beta := 1+positive, 1+negative
	return alpha / (alpha + beta), 2 / (alpha + beta)
}

// A Contribution explains one rating's part in a reputation.
type Contribution struct {
	Rating
	// BetaWeight is the weight it carries in the Beta score now, after
	// decay; 0 if it does not count or is neutral.
	BetaWeight float64 `json:"beta_weight"`
	// InRateWindow reports whether it is within the positive rate's window.
	InRateWindow bool `json:"in_rate_window"`
}

// ContributionPage is one page of Explain.
type ContributionPage struct {
	Contributions []Contribution `json:"contributions"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// Explain returns the ratings party has received, oldest first (by At,
// then escrow, then rater), a page at a time, each with whether it
// counted and why not, and what it contributes now, so a host can show
// why a score is what it is. Pass the returned Next as p.Cursor for the
// next page. It reads the store's index of ratings by ratee, from where
// the cursor points. It fails with ErrInvalidArgument if p.Limit is out
// of range or p.Cursor is not one Explain returned.
func (l *Ledger) Explain(ctx context.Context, party string, p Page) (ContributionPage, error) {
	start, now := l.begin(), l.now()
	limit, err := pageLimit(p.Limit)
	if err == nil {
		err = checkID("party", party)
	}
	if err != nil {
		return ContributionPage{}, l.finish(start, "explain", err)
	}
	var after RatingPos
	if f, err := decodeCursor(p.Cursor, "explain", 3); err != nil {
		return ContributionPage{}, l.finish(start, "explain", err)
	} else if f != nil {
		if after.At, err = parseCursorTime(f[0], p.Cursor, "explain"); err != nil {
			return ContributionPage{}, l.finish(start, "explain", err)
		}
		after.Escrow, after.Rater = f[1], f[2]
	}
	out := ContributionPage{Contributions: []Contribution{}}
	err = l.store.View(ctx, func(tx Tx) error {
		err := tx.RatingsOf(party, after, func(r Rating) error {
			if len(out.Contributions) == limit { // one more: a next page
				last := out.Contributions[limit-1]
				out.Next = encodeCursor("explain", cursorTime(last.At), last.Escrow, last.Rater)
				return errPageFull
			}
			c := Contribution{Rating: r}
			if r.Counted {
				age := now.Sub(r.At)
				c.InRateWindow = l.dayOf(now)-l.dayOf(r.At) < l.windowDays()[4]
				if r.Score != Neutral {
					c.BetaWeight = r.Weight * l.decayFactor(age)
				}
			}
			out.Contributions = append(out.Contributions, c)
			return nil
		})
		if errors.Is(err, errPageFull) {
			return nil
		}
		return err
	})
	if err != nil {
		return ContributionPage{}, l.finish(start, "explain", err)
	}
	return out, l.finish(start, "explain", nil)
}
