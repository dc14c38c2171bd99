package escrow_test

import (
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/shopspring/decimal"
)

// TestUniqueRatersTurnedOnOutsideWindow: UniqueRaters turned on for a
// store whose party has counted ratings, none of them in the
// UniqueWindow: the policy's godoc says its points are then 0 at once, as
// there is no rater to count, before the ledger first writes its
// aggregate; with a UniqueWindow shorter than a year, a rating older than
// the window and younger than a year must not keep the old points. Once a
// rating is in the window, the points are as without the option until
// the aggregate is written.
func TestUniqueRatersTurnedOnOutsideWindow(t *testing.T) {
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f := repFixture(t, escrow.ReputationPolicy{}, "b1", "b2", "bob")
	f.clock.Set(day0.Add(9 * time.Hour))
	uniqueRate(f, "e-1", "b1", escrow.Positive)
	uniqueRate(f, "e-2", "b2", escrow.Positive)
	uniqueCheck(f, 2)
	on := func(at time.Time) *world {
		t.Helper()
		g := newWorldAt(t, f.store, escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")},
			Reputation: escrow.ReputationPolicy{UniqueRaters: true, UniqueWindow: 30 * repDay}}, at)
		for _, id := range []string{"b1", "b2", "bob", "arb"} {
			g.opened[id] = true
		}
		return g
	}
	// Day 29 is the window's last day for day 0's ratings: as without the
	// option. From day 30 no rating is in the window: 0.
	g := on(day0.Add(29*repDay + 23*time.Hour))
	before := g.dump()
	if v := repReputation(g, "bob").AsSeller; v.Points != 2 || v.Level != escrow.LevelFor(2) {
		t.Errorf("on day 29: points %d, level %v; want 2 as without the option", v.Points, v.Level)
	}
	g.clock.Set(day0.Add(30 * repDay))
	if v := repReputation(g, "bob").AsSeller; v.Points != 0 || v.Level != escrow.LevelFor(0) || v.Last365.Positive != 2 {
		t.Errorf("on day 30: points %d, level %v, last 365 %+v; want 0 points with 2 positives in the year",
			v.Points, v.Level, v.Last365)
	}
	g.clock.Set(day0.Add(200 * repDay))
	if v := repReputation(g, "bob").AsSeller; v.Points != 0 {
		t.Errorf("on day 200: points %d, want 0", v.Points)
	}
	g.unchanged(before, "reading the reputation")
	// A rating now writes the aggregate: its raters are counted from then.
	uniqueRate(g, "e-3", "b1", escrow.Positive)
	if v := repReputation(g, "bob").AsSeller; v.Points != 1 {
		t.Errorf("after a rating on day 200: points %d, want 1", v.Points)
	}
	g.check()
}
