package escrow_test

import (
	"errors"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/shopspring/decimal"
)

// Tests of the trailing windows that the policy sets: the detail scores'
// DetailWindow.

func TestDetailWindow(t *testing.T) {
	t.Run("Edges", func(t *testing.T) { detailWindowEdges(t) })
	t.Run("Policy", func(t *testing.T) { detailWindowPolicy(t) })
	t.Run("OlderAggregates", func(t *testing.T) { detailWindowOlder(t) })
}

// detailAverages returns a seller view's detail averages.
func detailAverages(v escrow.View) [3]float64 {
	return [3]float64{v.Described, v.Communication, v.Shipping}
}

// detailCheck compares bob's averages as a seller at the clock's time,
// and checks the invariants.
func detailCheck(f *world, want [3]float64) {
	f.t.Helper()
	if err := f.l.Check(f.ctx); err != nil {
		f.t.Fatalf("at %v: %v", f.clock.Now(), err)
	}
	if got := detailAverages(repReputation(f, "bob").AsSeller); got != want {
		f.t.Fatalf("at %v: detail averages %v, want %v", f.clock.Now(), got, want)
	}
}

// detailWindowEdges: with the default window of 180 days, today
// included, a rating's detail scores count until the end of its 179th day
// after, and not from the next midnight; a rating below the minimum
// never counts them; a revised rating keeps them.
func detailWindowEdges(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "b1", "b2", "b3", "bob")
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// Mar 1: b1, 5/4/3. Mar 2: b2, a negative with 1/2 and no shipping,
	// later revised. Mar 2: b3, on an escrow of 1.00, which does not count.
	f.clock.Set(day0.Add(9 * time.Hour))
	repTrade(f, "e-1", "b1", "bob", cny("10.00"))
	repRateWith(f, "e-1", "b1", escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Described: 5, Communication: 4, Shipping: 3}})
	detailCheck(f, [3]float64{5, 4, 3})
	f.clock.Set(day0.Add(repDay + 23*time.Hour))
	repTrade(f, "e-2", "b2", "bob", cny("10.00"))
	repRateWith(f, "e-2", "b2", escrow.RatingInput{Score: escrow.Negative, Details: escrow.Details{Described: 1, Communication: 2}})
	repTrade(f, "e-3", "b3", "bob", cny("1.00"))
	if r := repRateWith(f, "e-3", "b3", escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Described: 2, Communication: 2, Shipping: 2}}); r.Counted {
		t.Fatalf("rating of a 1.00 escrow counted: %+v", r)
	}
	both := [3]float64{3, 3, 3}
	detailCheck(f, both)
	f.clock.Set(day0.Add(20 * repDay))
	if _, err := f.l.Revise(f.ctx, "e-2", "b2", escrow.Neutral, ""); err != nil {
		t.Fatal(err)
	}
	detailCheck(f, both)

	// Mar 1 is the window's first day on Aug 27 (day 179), and has left
	// it at midnight; Mar 2 leaves a day later.
	last := day0.Add(179 * repDay)
	f.clock.Set(last.Add(repDay - time.Second))
	detailCheck(f, both)
	f.clock.Set(last.Add(repDay))
	detailCheck(f, [3]float64{1, 2, 0})
	// A rating then brings the aggregate to that day, and ProcessDue the
	// next; the views agree with what they read before.
	repTrade(f, "e-4", "b1", "bob", cny("10.00"))
	repRateWith(f, "e-4", "b1", escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Shipping: 5}})
	detailCheck(f, [3]float64{1, 2, 5})
	f.clock.Set(last.Add(2*repDay - time.Second))
	detailCheck(f, [3]float64{1, 2, 5})
	f.clock.Set(last.Add(2 * repDay))
	if _, err := f.l.ProcessDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	detailCheck(f, [3]float64{0, 0, 5})
	// All time, every counted rating is still there.
	v := repReputation(f, "bob").AsSeller
	if v.Total != (escrow.Counts{Positive: 2, Neutral: 1}) {
		t.Errorf("total %+v, want 2 positive and 1 neutral", v.Total)
	}
	f.clock.Set(last.Add(400 * repDay))
	detailCheck(f, [3]float64{})
}

// detailWindowPolicy: DetailWindow sets the window in whole days, and
// one that is negative, shorter than a day or longer than 365 days is
// refused.
func detailWindowPolicy(t *testing.T) {
	for _, w := range []time.Duration{-repDay, time.Hour, repDay - 1, 365*repDay + 1, 400 * repDay} {
		_, err := escrow.New(t.Context(), memstore.New(), &escrow.Options{Reputation: escrow.ReputationPolicy{DetailWindow: w}})
		if !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("DetailWindow %v: New returned %v, want ErrInvalidArgument", w, err)
		}
	}
	// Seven days and a half: seven days, today included.
	f := repFixture(t, escrow.ReputationPolicy{DetailWindow: 7*repDay + 12*time.Hour}, "b1", "bob")
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.clock.Set(day0.Add(23 * time.Hour))
	repTrade(f, "e-1", "b1", "bob", cny("10.00"))
	repRateWith(f, "e-1", "b1", escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Described: 4}})
	f.clock.Set(day0.Add(7*repDay - time.Second))
	detailCheck(f, [3]float64{4, 0, 0})
	f.clock.Set(day0.Add(7 * repDay))
	detailCheck(f, [3]float64{})
	// The rate's window is unchanged: the rating is still in it.
	if v := repReputation(f, "bob").AsSeller; v.RateBasis != 1 {
		t.Errorf("rate basis %d, want 1", v.RateBasis)
	}
	// 365 days is allowed.
	if _, err := escrow.New(t.Context(), memstore.New(), &escrow.Options{Reputation: escrow.ReputationPolicy{DetailWindow: 365 * repDay}}); err != nil {
		t.Errorf("DetailWindow of 365 days: %v", err)
	}
}

// asOlderRelease rewrites every aggregate and day count as a release
// before the windowed detail sums wrote them: no DetailDays, no windowed
// sums, and no detail sums in the day counts.
func asOlderRelease(f *world) {
	f.t.Helper()
	err := f.store.Update(f.ctx, func(tx escrow.Tx) error {
		var aggs []escrow.Aggregate
		var days []escrow.DayCount
		if err := tx.Aggregates(func(a escrow.Aggregate) error { aggs = append(aggs, a); return nil }); err != nil {
			return err
		}
		if err := tx.DayCounts(func(d escrow.DayCount) error { days = append(days, d); return nil }); err != nil {
			return err
		}
		for _, a := range aggs {
			a.DetailWindowSums, a.DetailWindowCounts, a.DetailDays = [3]int64{}, [3]int64{}, false
			if err := tx.PutAggregate(a); err != nil {
				return err
			}
		}
		for _, d := range days {
			d.DetailSums, d.DetailCounts = [3]int32{}, [3]int32{}
			if err := tx.PutDayCount(d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// detailDaysOf reports whether the aggregate of party as a seller has
// DetailDays.
func detailDaysOf(f *world, party string) bool {
	f.t.Helper()
	var a escrow.Aggregate
	err := f.store.View(f.ctx, func(tx escrow.Tx) error {
		var err error
		a, err = tx.Aggregate(party, escrow.Seller)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return a.DetailDays
}

// detailWindowOlder: an aggregate written before the windowed sums
// existed reports all-time averages, as it did then, until the ledger
// next writes it, for a rating or when ProcessDue re-keys it; it then
// works them out from the ratings. One whose ratings have all left the
// windows reports none. Check accepts each as it is.
func detailWindowOlder(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "b1", "b2", "bob", "carol")
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.clock.Set(day0.Add(9 * time.Hour))
	// carol's only rating is a year older than bob's.
	repTrade(f, "e-0", "b1", "carol", cny("10.00"))
	repRateWith(f, "e-0", "b1", escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Described: 2}})
	f.clock.Set(day0.Add(400 * repDay))
	repTrade(f, "e-1", "b1", "bob", cny("10.00"))
	repRateWith(f, "e-1", "b1", escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Described: 5, Communication: 5}})
	f.clock.Set(day0.Add(500 * repDay))
	repTrade(f, "e-2", "b2", "bob", cny("10.00"))
	repRateWith(f, "e-2", "b2", escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Described: 3}})
	if _, err := f.l.ProcessDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(day0.Add(600*repDay + time.Hour))
	asOlderRelease(f)
	if err := f.l.Check(f.ctx); err != nil {
		t.Fatalf("an older release's aggregates: %v", err)
	}
	// All time for bob, whose ratings are in the windows, and nothing for
	// carol, whose rating left them.
	detailCheck(f, [3]float64{4, 5, 0})
	if got := detailAverages(repReputation(f, "carol").AsSeller); got != ([3]float64{}) {
		t.Errorf("carol's averages %v, want none", got)
	}
	// ProcessDue re-keys bob, and works his sums out: e-1 has left the
	// window.
	if _, err := f.l.ProcessDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if !detailDaysOf(f, "bob") {
		t.Fatal("bob's aggregate has no DetailDays after ProcessDue")
	}
	detailCheck(f, [3]float64{3, 0, 0})
	// A rating does the same for carol.
	asOlderRelease(f)
	repTrade(f, "e-3", "b2", "carol", cny("10.00"))
	repRateWith(f, "e-3", "b2", escrow.RatingInput{Score: escrow.Negative, Details: escrow.Details{Shipping: 1}})
	if !detailDaysOf(f, "carol") {
		t.Fatal("carol's aggregate has no DetailDays after a rating")
	}
	if err := f.l.Check(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := detailAverages(repReputation(f, "carol").AsSeller); got != ([3]float64{0, 0, 1}) {
		t.Errorf("carol's averages %v, want 0/0/1", got)
	}
	// Check finds day counts with detail sums under an aggregate without
	// DetailDays, and windowed sums that are wrong.
	err := f.store.Update(f.ctx, func(tx escrow.Tx) error {
		a, err := tx.Aggregate("carol", escrow.Seller)
		if err != nil {
			return err
		}
		a.DetailWindowCounts[2]++
		return tx.PutAggregate(a)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.l.Check(f.ctx); !errors.Is(err, escrow.ErrInvariant) {
		t.Errorf("Check with a wrong windowed count: %v", err)
	}
}

func TestUniqueRaters(t *testing.T) {
	t.Run("Edges", func(t *testing.T) { uniqueRatersEdges(t) })
	t.Run("Policy", func(t *testing.T) { uniqueRatersPolicy(t) })
	t.Run("OutsideTheWindow", func(t *testing.T) { uniqueRatersOutside(t) })
	t.Run("TurnedOn", func(t *testing.T) { uniqueRatersTurnedOn(t) })
}

// uniqueCheck checks the invariants and bob's points and level as a
// seller at the clock's time.
func uniqueCheck(f *world, points int64) escrow.View {
	f.t.Helper()
	if err := f.l.Check(f.ctx); err != nil {
		f.t.Fatalf("at %v: %v", f.clock.Now(), err)
	}
	v := repReputation(f, "bob").AsSeller
	if v.Points != points || v.Level != escrow.LevelFor(points) {
		f.t.Fatalf("at %v: points %d, level %v; want %d, %v", f.clock.Now(), v.Points, v.Level, points, escrow.LevelFor(points))
	}
	return v
}

// uniqueRate trades e between buyer and bob at the clock's time, and
// rates it.
func uniqueRate(f *world, id, buyer string, score escrow.Score) escrow.Rating {
	f.t.Helper()
	repTrade(f, id, buyer, "bob", cny("10.00"))
	return repRate(f, id, buyer, score)
}

// uniqueRatersEdges: with UniqueRaters, points are the distinct raters
// with a counted positive in the last 365 days, today included, minus
// those with a counted negative: a rater's second positive adds nothing,
// a rater with a positive and a negative counts in both, revising the
// rater's only negative takes the rater out, and a rater leaves the
// window at the midnight after the 365th day of the rater's latest
// rating, not of the first.
func uniqueRatersEdges(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{UniqueRaters: true}, "b1", "b2", "b3", "b4", "bob")
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(days int, hours time.Duration) { f.clock.Set(day0.Add(time.Duration(days)*repDay + hours)) }
	at(0, 9*time.Hour)
	uniqueCheck(f, 0)
	uniqueRate(f, "e-1", "b1", escrow.Positive)
	uniqueCheck(f, 1)
	// b1's second, third and fourth positives: 4 points the usual way,
	// a Heart, but one rater.
	at(1, 9*time.Hour)
	for _, id := range []string{"e-2", "e-2b", "e-2c"} {
		if r := uniqueRate(f, id, "b1", escrow.Positive); !r.Counted || r.Points != 1 {
			t.Fatalf("b1's rating %s: %+v", id, r)
		}
	}
	uniqueCheck(f, 1)
	// b2: a negative, then a positive: in both.
	at(2, 9*time.Hour)
	uniqueRate(f, "e-3", "b2", escrow.Negative)
	uniqueCheck(f, 0)
	at(3, 9*time.Hour)
	uniqueRate(f, "e-4", "b2", escrow.Positive)
	uniqueCheck(f, 1)
	// b3's positive on an escrow of 1.00 does not count, nor make b3 a
	// rater.
	repTrade(f, "e-5", "b3", "bob", cny("1.00"))
	if r := repRate(f, "e-5", "b3", escrow.Positive); r.Counted {
		t.Fatalf("rating of a 1.00 escrow counted: %+v", r)
	}
	uniqueCheck(f, 1)
	// Revising b2's only negative takes b2 out of the negative raters.
	at(5, 9*time.Hour)
	if _, err := f.l.Revise(f.ctx, "e-3", "b2", escrow.Neutral, ""); err != nil {
		t.Fatal(err)
	}
	uniqueCheck(f, 2)
	// b3 and b4: a negative each on day 40.
	at(40, 9*time.Hour)
	uniqueRate(f, "e-6", "b3", escrow.Negative)
	uniqueRate(f, "e-7", "b4", escrow.Negative)
	uniqueCheck(f, 0)
	// b4 again on day 100: b4's latest moves, and b4 stays a rater past
	// day 40's window.
	at(100, 9*time.Hour)
	uniqueRate(f, "e-8", "b4", escrow.Negative)
	uniqueCheck(f, 0)
	if _, err := f.l.ProcessDue(f.ctx); err != nil {
		t.Fatal(err)
	}

	// Day 1 is the window's first day on day 365: b1 (latest day 1) is in
	// and b2 (day 3) too; at midnight b1 leaves.
	at(365, 23*time.Hour+59*time.Minute)
	v := uniqueCheck(f, 0) // b1, b2; b3, b4
	at(366, 0)
	uniqueCheck(f, -1)
	// The usual counts still hold every counted rating.
	if v.Total != (escrow.Counts{Positive: 5, Neutral: 1, Negative: 3}) {
		t.Errorf("total %+v, want 5 positive, 1 neutral and 3 negative", v.Total)
	}
	at(368, 0) // b2's day 3 has left
	uniqueCheck(f, -2)
	at(404, 12*time.Hour) // day 40 is the first day: b3 and b4 in
	if _, err := f.l.ProcessDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	uniqueCheck(f, -2)
	at(405, 0) // b3 out; b4's latest is day 100
	uniqueCheck(f, -1)
	// A new rating by b1 brings b1 back.
	uniqueRate(f, "e-9", "b1", escrow.Positive)
	uniqueCheck(f, 0)
	at(465, 0) // b4 out
	uniqueCheck(f, 1)
	if _, err := f.l.ProcessDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	uniqueCheck(f, 1)
	at(800, 0)
	v = uniqueCheck(f, 0)
	if v.Unrated {
		t.Error("a party whose ratings all left the window is reported unrated")
	}
}

// uniqueRatersPolicy: UniqueWindow sets the window in whole days, and
// one that is negative, shorter than a day or longer than 365 days is
// refused; without UniqueRaters the ledger keeps no record of raters.
func uniqueRatersPolicy(t *testing.T) {
	for _, w := range []time.Duration{-repDay, time.Hour, 365*repDay + 1} {
		_, err := escrow.New(t.Context(), memstore.New(), &escrow.Options{Reputation: escrow.ReputationPolicy{UniqueRaters: true, UniqueWindow: w}})
		if !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("UniqueWindow %v: New returned %v, want ErrInvalidArgument", w, err)
		}
	}
	f := repFixture(t, escrow.ReputationPolicy{UniqueRaters: true, UniqueWindow: 30*repDay + time.Hour}, "b1", "bob")
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.clock.Set(day0.Add(23 * time.Hour))
	uniqueRate(f, "e-1", "b1", escrow.Positive)
	f.clock.Set(day0.Add(30*repDay - time.Second))
	uniqueCheck(f, 1)
	f.clock.Set(day0.Add(30 * repDay))
	uniqueCheck(f, 0)

	// Without the option: points as usual, and no records.
	g := repFixture(t, escrow.ReputationPolicy{}, "b1", "bob")
	uniqueRate(g, "e-1", "b1", escrow.Positive)
	g.clock.Advance(repDay)
	uniqueRate(g, "e-2", "b1", escrow.Positive)
	uniqueCheck(g, 2)
	err := g.store.View(g.ctx, func(tx escrow.Tx) error {
		return tx.AllRaterDays(func(d escrow.RaterDays) error {
			t.Errorf("a record of days without UniqueRaters: %+v", d)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// uniqueRatersTurnedOn: turned on for a store that has ratings, the
// option counts a party's points as before until the ledger first writes
// its aggregate (here ProcessDue the next day), and then counts its
// raters from its ratings; turned off, the records follow the ratings
// taken out meanwhile, so that turned on again it counts them right.
func uniqueRatersTurnedOn(t *testing.T) {
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f := repFixture(t, escrow.ReputationPolicy{}, "b1", "b2", "bob")
	f.clock.Set(day0.Add(9 * time.Hour))
	uniqueRate(f, "e-1", "b1", escrow.Positive)
	f.clock.Set(day0.Add(repDay + 9*time.Hour))
	uniqueRate(f, "e-2", "b1", escrow.Positive)
	uniqueRate(f, "e-3", "b2", escrow.Negative)
	uniqueCheck(f, 1)
	// The same store under a ledger with the option.
	on := func(at time.Time, unique bool) *world {
		t.Helper()
		g := newWorldAt(t, f.store, escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")},
			Reputation: escrow.ReputationPolicy{UniqueRaters: unique}}, at)
		for _, id := range []string{"b1", "b2", "bob", "arb"} {
			g.opened[id] = true
		}
		return g
	}
	g := on(day0.Add(repDay+10*time.Hour), true)
	uniqueCheck(g, 1) // as before
	g.clock.Set(day0.Add(2*repDay + time.Hour))
	if _, err := g.l.ProcessDue(g.ctx); err != nil {
		t.Fatal(err)
	}
	uniqueCheck(g, 0) // b1 − b2
	// Off: b2 revises the negative away, b1 rates again.
	h := on(day0.Add(3*repDay), false)
	if _, err := h.l.Revise(h.ctx, "e-3", "b2", escrow.Neutral, ""); err != nil {
		t.Fatal(err)
	}
	uniqueRate(h, "e-4", "b1", escrow.Positive)
	uniqueCheck(h, 3)
	// On again: points as without it until ProcessDue, then b1 alone.
	k := on(day0.Add(3*repDay+time.Hour), true)
	uniqueCheck(k, 3)
	k.clock.Set(day0.Add(4*repDay + time.Hour))
	if _, err := k.l.ProcessDue(k.ctx); err != nil {
		t.Fatal(err)
	}
	uniqueCheck(k, 1)
	// And b2's next negative counts from there.
	uniqueRate(k, "e-5", "b2", escrow.Negative)
	uniqueCheck(k, 0)
}

// uniqueRatersOutside: a rating taken out or counted after its day left
// the window changes no rater: a negative revised upward 40 days later,
// with a window of 30 days, leaves the points as they were, and the
// day's count of raters at most its ratings.
func uniqueRatersOutside(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{UniqueRaters: true, UniqueWindow: 30 * repDay, RevisionWindow: 60 * repDay},
		"b1", "b2", "bob")
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.clock.Set(day0.Add(9 * time.Hour))
	uniqueRate(f, "e-1", "b1", escrow.Negative)
	uniqueRate(f, "e-2", "b2", escrow.Negative)
	uniqueCheck(f, -2)
	f.clock.Set(day0.Add(20*repDay + 9*time.Hour))
	uniqueRate(f, "e-3", "b2", escrow.Positive)
	uniqueCheck(f, -1)
	f.clock.Set(day0.Add(40*repDay + 9*time.Hour))
	uniqueCheck(f, 1)
	if _, err := f.l.Revise(f.ctx, "e-1", "b1", escrow.Positive, ""); err != nil {
		t.Fatal(err)
	}
	uniqueCheck(f, 1)
	// Check finds a day whose raters outnumber its ratings.
	err := f.store.Update(f.ctx, func(tx escrow.Tx) error {
		return tx.DayRange("bob", escrow.Seller, 0, 1<<30, func(d escrow.DayCount) error {
			if d.Negative == 1 { // day 0: b2's negative
				d.UniqueNegative = 2
				return tx.PutDayCount(d)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.l.Check(f.ctx); !errors.Is(err, escrow.ErrInvariant) {
		t.Errorf("Check with a day of 2 raters and 1 rating: %v", err)
	}
}

// TestRateWindow: RateWindow sets the positive rate's window in whole
// days, as DetailWindow does its own. One shorter than a day would hold
// no day at all, so that every positive rate and Wilson bound would be 0
// whatever the ratings: it is refused, as are a negative one and one
// longer than 365 days.
func TestRateWindow(t *testing.T) {
	for _, w := range []time.Duration{-repDay, time.Nanosecond, time.Hour, repDay - 1, 365*repDay + 1} {
		_, err := escrow.New(t.Context(), memstore.New(), &escrow.Options{Reputation: escrow.ReputationPolicy{RateWindow: w}})
		if !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("RateWindow %v: New returned %v, want ErrInvalidArgument", w, err)
		}
	}
	// A day and a half: one day, today.
	f := repFixture(t, escrow.ReputationPolicy{RateWindow: repDay + 12*time.Hour}, "b1", "bob")
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.clock.Set(day0.Add(9 * time.Hour))
	repTrade(f, "e-1", "b1", "bob", cny("10.00"))
	repRate(f, "e-1", "b1", escrow.Positive)
	for _, c := range []struct {
		at    time.Duration
		basis int64
	}{{repDay - time.Second, 1}, {repDay, 0}} {
		f.clock.Set(day0.Add(c.at))
		v := repReputation(f, "bob").AsSeller
		if v.RateBasis != c.basis || (v.Wilson > 0) != (c.basis > 0) {
			t.Errorf("%v after the first day began: rate basis %d, Wilson %v; want basis %d", c.at, v.RateBasis, v.Wilson, c.basis)
		}
	}
	if _, err := escrow.New(t.Context(), memstore.New(), &escrow.Options{Reputation: escrow.ReputationPolicy{RateWindow: 365 * repDay}}); err != nil {
		t.Errorf("RateWindow of 365 days: %v", err)
	}
}
