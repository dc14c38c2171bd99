package escrow_test

import (
	"errors"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
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
