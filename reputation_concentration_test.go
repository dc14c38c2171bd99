package escrow_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// The concentration tests give a seller ratings from raters whose trades
// and points are chosen here, and check each figure of Concentration with
// the numbers written out.

func TestConcentration(t *testing.T) {
	t.Run("Shares", func(t *testing.T) { concShares(t) })
	t.Run("Ties", func(t *testing.T) { concTies(t) })
	t.Run("NewRaters", func(t *testing.T) { concNewRaters(t) })
	t.Run("Uncounted", func(t *testing.T) { concUncounted(t) })
	t.Run("Window", func(t *testing.T) { concWindow(t) })
	t.Run("Arguments", func(t *testing.T) { concArguments(t) })
	t.Run("Reads", func(t *testing.T) { concReads(t) })
	t.Run("Voided", func(t *testing.T) { concVoided(t) })
}

// concRated has buyer buy from seller n times, at the clock's time, and
// rate each trade with score; it returns the ratings.
func concRated(f *world, buyer, seller string, n int, score escrow.Score) []escrow.Rating {
	f.t.Helper()
	var out []escrow.Rating
	for range n {
		f.trades++
		id := fmt.Sprintf("c-%03d", f.trades)
		repTrade(f, id, buyer, seller, cny("10.00"))
		out = append(out, repRate(f, id, buyer, score))
	}
	return out
}

// concTraded has buyer buy from seller once, unrated.
func concTraded(f *world, buyer, seller string) {
	f.t.Helper()
	f.trades++
	repTrade(f, fmt.Sprintf("c-%03d", f.trades), buyer, seller, cny("10.00"))
}

// concOf returns party's concentration or fails the test.
func concOf(f *world, party string) escrow.Concentration {
	f.t.Helper()
	c, err := f.l.Concentration(f.ctx, party)
	if err != nil {
		f.t.Fatalf("Concentration(%s): %v", party, err)
	}
	return c
}

// concSince is the start of the window that ends on now's day in loc.
func concSince(now time.Time, loc *time.Location) time.Time {
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d-364, 0, 0, 0, 0, loc).UTC()
}

func concShares(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "big", "b", "c", "d", "e", "f", "g", "shop")
	concRated(f, "big", "shop", 3, escrow.Positive)
	concRated(f, "b", "shop", 2, escrow.Positive)
	for _, r := range []string{"g", "f", "e", "d", "c"} { // rated out of order: ties go by name
		concRated(f, r, "shop", 1, escrow.Positive)
	}
	// 10 points from 7 raters. The top 5 are big (3), b (2), then c, d
	// and e of the five with 1: 8 points. big has 3 trades; the rest are
	// new: b with 2, the others with 1, 7 points.
	want := escrow.Concentration{Party: "shop", Since: concSince(start, time.UTC), Points: 10, Raters: 7,
		TopRaters: []escrow.RaterPoints{{Rater: "big", Points: 3}, {Rater: "b", Points: 2, New: true},
			{Rater: "c", Points: 1, New: true}, {Rater: "d", Points: 1, New: true}, {Rater: "e", Points: 1, New: true}},
		TopRatersPoints: 8, TopRatersShare: 0.8, NewRaters: 6, NewRatersPoints: 7, NewRatersShare: 0.7}
	repDiff(t, "concentration", want, concOf(f, "shop"))
	if got := want.Since; !got.Equal(time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("the window of a read on 1 March 2026 starts %v, want 2 March 2025", got)
	}
	// The other side of every trade: the raters were rated by no one, and
	// the shop has no positive points as a buyer.
	repDiff(t, "a buyer's concentration", escrow.Concentration{Party: "big", Since: want.Since, TopRaters: []escrow.RaterPoints{}},
		concOf(f, "big"))
}

func concTies(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "zed", "r5", "r4", "r3", "r2", "r1", "shop", "small")
	// Five raters tie with 1 point for four places behind zed's 2: the
	// lowest IDs take them.
	for _, r := range []string{"r5", "r3", "r1", "r4", "r2"} {
		concRated(f, r, "shop", 1, escrow.Positive)
	}
	concRated(f, "zed", "shop", 2, escrow.Positive)
	c := concOf(f, "shop")
	top := []escrow.RaterPoints{{Rater: "zed", Points: 2, New: true}, {Rater: "r1", Points: 1, New: true},
		{Rater: "r2", Points: 1, New: true}, {Rater: "r3", Points: 1, New: true}, {Rater: "r4", Points: 1, New: true}}
	repDiff(t, "top raters", top, c.TopRaters)
	if c.Points != 7 || c.Raters != 6 || c.TopRatersPoints != 6 || c.TopRatersShare != 6.0/7 {
		t.Errorf("points %d from %d raters, top %d (%v); want 7 from 6, top 6 (6/7)", c.Points, c.Raters, c.TopRatersPoints, c.TopRatersShare)
	}
	// Fewer than 5 raters: they are all the top raters, and all the points.
	concRated(f, "r1", "small", 1, escrow.Positive)
	concRated(f, "r2", "small", 2, escrow.Positive)
	c = concOf(f, "small")
	repDiff(t, "top raters of two", []escrow.RaterPoints{{Rater: "r2", Points: 2}, {Rater: "r1", Points: 1, New: true}}, c.TopRaters)
	if c.Points != 3 || c.Raters != 2 || c.TopRatersPoints != 3 || c.TopRatersShare != 1 {
		t.Errorf("two raters: points %d from %d, top %d (%v); want 3 from 2, top 3 (1)", c.Points, c.Raters, c.TopRatersPoints, c.TopRatersShare)
	}
	// r2 now has 3 trades (1 with shop, 2 with small); r1 has 2.
	if c.NewRaters != 1 || c.NewRatersPoints != 1 || c.NewRatersShare != 1.0/3 {
		t.Errorf("two raters: %d new with %d points (%v); want 1 with 1 (1/3)", c.NewRaters, c.NewRatersPoints, c.NewRatersShare)
	}
}

// concNewRaters: a trade is an escrow the rater was the buyer or the
// seller of that ended in a rateable state; 2 trades are new, 3 are not.
func concNewRaters(t *testing.T) {
	scenario := func(p escrow.ReputationPolicy) *world {
		f := repFixture(t, p, "two", "three", "res3", "noisy", "other", "x", "shop")
		for _, r := range []string{"two", "three", "res3", "noisy"} {
			concRated(f, r, "shop", 1, escrow.Positive)
			concTraded(f, r, "other")
		}
		// three's third: as the seller.
		concTraded(f, "other", "three")
		// res3's third: resolved.
		f.trades++
		repResolve(f, fmt.Sprintf("c-%03d", f.trades), "res3", "other", cny("10.00"), 500)
		// None of these is a trade of noisy's by default: cancelled before
		// payment, refunded, paid and not ended, and one it arbitrates.
		f.trades++
		id := fmt.Sprintf("c-%03d", f.trades)
		_, err := f.l.Open(f.ctx, escrow.Terms{ID: id, Buyer: "noisy", Seller: "other", Price: cny("10.00")})
		f.must("open "+id, err)
		_, err = f.l.Cancel(f.ctx, id, "noisy")
		f.must("cancel "+id, err)
		f.trades++
		id = fmt.Sprintf("c-%03d", f.trades)
		repOpenPaid(f, id, "noisy", "other", cny("10.00"))
		_, err = f.l.Refund(f.ctx, id, "other", cny("10.00"))
		f.must("refund "+id, err)
		f.trades++
		repOpenPaid(f, fmt.Sprintf("c-%03d", f.trades), "noisy", "other", cny("10.00"))
		f.trades++
		id = fmt.Sprintf("c-%03d", f.trades)
		_, err = f.l.Open(f.ctx, escrow.Terms{ID: id, Buyer: "x", Seller: "other", Arbiter: "noisy", Price: cny("10.00")})
		f.must("open "+id, err)
		_, err = f.l.Pay(f.ctx, id, "x")
		f.must("pay "+id, err)
		_, err = f.l.Ship(f.ctx, id, "other", "")
		f.must("ship "+id, err)
		_, err = f.l.Confirm(f.ctx, id, "x")
		f.must("confirm "+id, err)
		return f
	}
	since := concSince(start, time.UTC)
	f := scenario(escrow.ReputationPolicy{})
	want := escrow.Concentration{Party: "shop", Since: since, Points: 4, Raters: 4,
		TopRaters: []escrow.RaterPoints{{Rater: "noisy", Points: 1, New: true}, {Rater: "res3", Points: 1},
			{Rater: "three", Points: 1}, {Rater: "two", Points: 1, New: true}},
		TopRatersPoints: 4, TopRatersShare: 1, NewRaters: 2, NewRatersPoints: 2, NewRatersShare: 0.5}
	repDiff(t, "concentration", want, concOf(f, "shop"))

	// Where refunded escrows may be rated, they are trades: noisy has 3.
	f = scenario(escrow.ReputationPolicy{RateableStates: []escrow.State{escrow.Completed, escrow.Refunded, escrow.Resolved}})
	want.TopRaters[0].New = false
	want.NewRaters, want.NewRatersPoints, want.NewRatersShare = 1, 1, 0.25
	repDiff(t, "concentration, refunds rateable", want, concOf(f, "shop"))
}

// concUncounted: only ratings that counted and added points are in it.
func concUncounted(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "fan", "cheap", "loser", "loyal", "grumpy", "meh", "x", "shop")
	concRated(f, "fan", "shop", 1, escrow.Positive)
	// Below the minimum value.
	repTrade(f, "cheap-1", "cheap", "shop", cny("1.00"))
	if r := repRate(f, "cheap-1", "cheap", escrow.Positive); r.Counted || r.Reason != escrow.ReasonBelowMinimum {
		t.Fatalf("a rating of 1.00: %+v", r)
	}
	// By the loser of a dispute.
	repResolve(f, "lost-1", "loser", "shop", cny("10.00"), 0)
	if r := repRate(f, "lost-1", "loser", escrow.Positive); r.Counted || r.Reason != escrow.ReasonDisputeLost {
		t.Fatalf("the loser's rating: %+v", r)
	}
	// Over the pair cap: the seventh positive in a month does not count.
	rs := concRated(f, "loyal", "shop", 7, escrow.Positive)
	if r := rs[6]; r.Counted || r.Reason != escrow.ReasonPairCap {
		t.Fatalf("the seventh rating in a month: %+v", r)
	}
	// Counted, with no points or points taken away.
	concRated(f, "meh", "shop", 1, escrow.Neutral)
	concRated(f, "grumpy", "shop", 1, escrow.Negative)
	// The shop rated as a buyer.
	repTrade(f, "as-buyer", "shop", "x", cny("10.00"))
	if r := repRate(f, "as-buyer", "x", escrow.Positive); !r.Counted || r.RateeRole != escrow.Buyer {
		t.Fatalf("the shop's rating as a buyer: %+v", r)
	}
	want := escrow.Concentration{Party: "shop", Since: concSince(start, time.UTC), Points: 7, Raters: 2,
		TopRaters:       []escrow.RaterPoints{{Rater: "loyal", Points: 6}, {Rater: "fan", Points: 1, New: true}},
		TopRatersPoints: 7, TopRatersShare: 1, NewRaters: 1, NewRatersPoints: 1, NewRatersShare: 1.0 / 7}
	repDiff(t, "concentration", want, concOf(f, "shop"))
	// With the default points, the positives counted in the window.
	if v := repReputation(f, "shop").AsSeller; v.Last365.Positive != 7 || v.Points != 6 {
		t.Errorf("view: %d positives in 365 days, %d points; want 7 and 6", v.Last365.Positive, v.Points)
	}

	// Under points where a neutral adds: it is in, with its points.
	g := repFixture(t, escrow.ReputationPolicy{Points: &[3]int64{3, 1, -2}}, "fan", "meh", "grumpy", "shop")
	concRated(g, "fan", "shop", 1, escrow.Positive)
	concRated(g, "meh", "shop", 1, escrow.Neutral)
	concRated(g, "grumpy", "shop", 1, escrow.Negative)
	c := concOf(g, "shop")
	repDiff(t, "top raters, custom points", []escrow.RaterPoints{{Rater: "fan", Points: 3, New: true},
		{Rater: "meh", Points: 1, New: true}}, c.TopRaters)
	if c.Points != 4 || c.Raters != 2 || c.NewRatersShare != 1 {
		t.Errorf("custom points: %d from %d raters, new share %v; want 4 from 2, 1", c.Points, c.Raters, c.NewRatersShare)
	}
}

// concWindow: the window is the 365 calendar days that end today, in the
// policy's location, as View.Last365 counts them.
func concWindow(t *testing.T) {
	for _, loc := range []*time.Location{time.UTC, time.FixedZone("CST", 8*3600)} {
		t.Run(loc.String(), func(t *testing.T) {
			f := repFixture(t, escrow.ReputationPolicy{Location: loc}, "early", "late", "edge", "recent", "shop")
			// A read at now starts the window at midnight (in loc) on 11
			// March 2026, and a read a day later on the 12th.
			now := time.Date(2027, 3, 10, 23, 30, 0, 0, loc)
			since := time.Date(2026, 3, 11, 0, 0, 0, 0, loc)
			if got := concSince(now, loc); !got.Equal(since) {
				t.Fatalf("the test's window starts %v, want %v", got, since)
			}
			plan := []struct {
				rater string
				at    time.Time
			}{
				{"early", since.Add(-repDay)},     // a day before the window
				{"late", since.Add(-time.Second)}, // the last second before it
				{"edge", since},                   // its first instant
				{"recent", now.Add(-time.Hour)},
			}
			for _, p := range plan {
				f.clock.Set(p.at)
				concRated(f, p.rater, "shop", 1, escrow.Positive)
			}
			check := func(at time.Time, raters ...string) {
				t.Helper()
				f.clock.Set(at)
				want := escrow.Concentration{Party: "shop", Since: concSince(at, loc).UTC(), TopRaters: []escrow.RaterPoints{}}
				for _, r := range raters {
					want.TopRaters = append(want.TopRaters, escrow.RaterPoints{Rater: r, Points: 1, New: true})
				}
				n := int64(len(raters))
				want.Points, want.Raters, want.TopRatersPoints, want.NewRaters, want.NewRatersPoints = n, n, n, n, n
				if n > 0 {
					want.TopRatersShare, want.NewRatersShare = 1, 1
				}
				repDiff(t, fmt.Sprintf("concentration at %v", at), want, concOf(f, "shop"))
				if v := repReputation(f, "shop").AsSeller; v.Last365.Positive != n {
					t.Errorf("at %v: Last365 has %d positives, the concentration %d", at, v.Last365.Positive, n)
				}
			}
			check(now, "edge", "recent")
			check(time.Date(2027, 3, 10, 23, 59, 59, 999_999_999, loc), "edge", "recent")
			check(time.Date(2027, 3, 11, 0, 0, 0, 0, loc), "recent")
			// recent's day, 10 March 2027, is in the window until 364
			// days later: 8 March 2028, a leap year.
			check(time.Date(2028, 3, 8, 23, 59, 59, 0, loc), "recent")
			check(time.Date(2028, 3, 9, 0, 0, 0, 0, loc))
		})
	}
}

func concArguments(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "shop")
	concRated(f, "alice", "shop", 1, escrow.Positive)
	for _, party := range []string{"", "@fees", strings.Repeat("x", 129), "a\x00b", "bad \xff", "rtl\u202e"} {
		repRefused(f, fmt.Sprintf("Concentration(%q)", party), escrow.ErrInvalidArgument, func() error {
			_, err := f.l.Concentration(f.ctx, party)
			return err
		})
	}
	// A party never rated, or unknown: zeros, and no error.
	for _, party := range []string{"alice", "nobody", strings.Repeat("x", 128)} {
		repDiff(t, "concentration of "+party, escrow.Concentration{Party: party, Since: concSince(start, time.UTC),
			TopRaters: []escrow.RaterPoints{}}, concOf(f, party))
	}
}

// concVoided: a rating an operator voided, or its rater withdrew, leaves
// the concentration as it leaves the seller's points.
func concVoided(t *testing.T) {
	// Points under which a neutral adds, so that a withdrawal takes some.
	f := newFixtureWith(t, &escrow.Options{Reputation: escrow.ReputationPolicy{Points: &[3]int64{3, 1, -2}},
		Operators: []string{"ops"}})
	f.funded("a", "b", "shop")
	voided := concRated(f, "a", "shop", 2, escrow.Positive)[0]
	withdrawn := concRated(f, "b", "shop", 1, escrow.Neutral)[0]
	if c := concOf(f, "shop"); c.Points != 7 || c.Raters != 2 {
		t.Fatalf("before: %d points from %d raters, want 7 from 2", c.Points, c.Raters)
	}
	_, err := f.l.VoidRating(f.ctx, voided.Escrow, "a", "ops", "brushing found")
	f.must("VoidRating", err)
	_, err = f.l.WithdrawRating(f.ctx, withdrawn.Escrow, "b")
	f.must("WithdrawRating", err)
	want := escrow.Concentration{Party: "shop", Since: concSince(start, time.UTC), Points: 3, Raters: 1,
		TopRaters: []escrow.RaterPoints{{Rater: "a", Points: 3, New: true}}, TopRatersPoints: 3, TopRatersShare: 1,
		NewRaters: 1, NewRatersPoints: 3, NewRatersShare: 1}
	repDiff(t, "concentration", want, concOf(f, "shop"))
}

// concReads: Concentration reads the window's ratings through the ratee
// index from the window's start, and at most 3 escrows of each rater
// through the party index; it reads no store whole.
func concReads(t *testing.T) {
	mem := memstore.New()
	t.Cleanup(func() { mem.Close() })
	store := &concStore{Storage: mem}
	f := newWorldAt(t, store, escrow.Options{}, start)
	f.funded("old", "a", "b", "c", "other", "shop")
	concRated(f, "old", "shop", 1, escrow.Positive)
	f.clock.Advance(400 * repDay)
	concRated(f, "a", "shop", 2, escrow.Positive)
	concRated(f, "b", "shop", 1, escrow.Positive)
	concRated(f, "c", "shop", 1, escrow.Positive)
	for range 3 {
		concTraded(f, "c", "other")
	}
	store.reads = nil
	c := concOf(f, "shop")
	if c.Points != 4 || c.NewRaters != 2 {
		t.Fatalf("concentration: %+v", c)
	}
	slices.Sort(store.reads)
	states := []escrow.State{escrow.Completed, escrow.Resolved}
	party := escrow.Buyer | escrow.Seller
	want := []string{
		fmt.Sprintf("PartyEscrows(a, %v, %v, 3): 2", party, states),
		fmt.Sprintf("PartyEscrows(b, %v, %v, 3): 1", party, states),
		fmt.Sprintf("PartyEscrows(c, %v, %v, 3): 3", party, states),
		fmt.Sprintf("RatingsOf(shop, %v): 4", concSince(f.clock.Now(), time.UTC)),
	}
	repDiff(t, "reads", want, store.reads)
}

// A concStore records what the reads made in its View transactions ask
// of the store, and the whole-store reads they make.
type concStore struct {
	escrow.Storage
	reads []string
}

func (s *concStore) View(ctx context.Context, fn func(escrow.Tx) error) error {
	return s.Storage.View(ctx, func(tx escrow.Tx) error { return fn(&concTx{Tx: tx, s: s}) })
}

type concTx struct {
	escrow.Tx
	s *concStore
}

func (t *concTx) RatingsOf(party string, after escrow.RatingPos, fn func(escrow.Rating) error) error {
	n := 0
	err := t.Tx.RatingsOf(party, after, func(r escrow.Rating) error { n++; return fn(r) })
	t.s.reads = append(t.s.reads, fmt.Sprintf("RatingsOf(%s, %v): %d", party, after.At, n))
	return err
}

func (t *concTx) PartyEscrows(q escrow.PartyQuery) ([]escrow.Escrow, error) {
	es, err := t.Tx.PartyEscrows(q)
	t.s.reads = append(t.s.reads, fmt.Sprintf("PartyEscrows(%s, %v, %v, %d): %d", q.Party, q.Role, q.States, q.Limit, len(es)))
	return es, err
}

func (t *concTx) Ratings(fn func(escrow.Rating) error) error {
	t.s.reads = append(t.s.reads, "Ratings")
	return t.Tx.Ratings(fn)
}

func (t *concTx) Escrows(fn func(escrow.Escrow) error) error {
	t.s.reads = append(t.s.reads, "Escrows")
	return t.Tx.Escrows(fn)
}

// repConcentration works out party's concentration as a seller now from
// every rating and escrow, independently of the ledger: a trade is an
// escrow whose buyer or seller the rater is, in a rateable state.
func repConcentration(party string, ratings []escrow.Rating, escrows map[string]escrow.Escrow,
	rateable map[escrow.State]bool, now time.Time, loc *time.Location) escrow.Concentration {
	c := escrow.Concentration{Party: party, Since: concSince(now, loc), TopRaters: []escrow.RaterPoints{}}
	today := repDayNum(now, loc)
	points := map[string]int64{}
	for _, r := range ratings {
		if r.Ratee == party && r.RateeRole == escrow.Seller && r.Counted && r.Points > 0 &&
			!r.At.Before(c.Since) && repDayNum(r.At, loc) <= today {
			points[r.Rater] += r.Points
		}
	}
	trades := map[string]int{}
	for _, e := range escrows {
		if rateable[e.State] {
			trades[e.Buyer]++
			trades[e.Seller]++
		}
	}
	var all []escrow.RaterPoints
	for rater, p := range points {
		all = append(all, escrow.RaterPoints{Rater: rater, Points: p, New: trades[rater] < 3})
		c.Points += p
		if trades[rater] < 3 {
			c.NewRaters++
			c.NewRatersPoints += p
		}
	}
	c.Raters = int64(len(all))
	slices.SortFunc(all, func(a, b escrow.RaterPoints) int {
		if a.Points != b.Points {
			return cmp.Compare(b.Points, a.Points)
		}
		return strings.Compare(a.Rater, b.Rater)
	})
	c.TopRaters = append(c.TopRaters, all[:min(5, len(all))]...)
	for _, r := range c.TopRaters {
		c.TopRatersPoints += r.Points
	}
	if c.Points > 0 {
		c.TopRatersShare = float64(c.TopRatersPoints) / float64(c.Points)
		c.NewRatersShare = float64(c.NewRatersPoints) / float64(c.Points)
	}
	return c
}
