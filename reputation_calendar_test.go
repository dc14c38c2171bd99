package escrow_test

import (
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// Tests of calendar days in a location whose clocks skip a midnight: the
// day then begins at the first instant its wall clock reads, not at a
// midnight the clocks never showed.

// santiago loads America/Santiago, where summer time begins at midnight:
// on 6 September 2026 the clocks go from 23:59:59 on the 5th (UTC−4) to
// 01:00 on the 6th (UTC−3).
func santiago(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	return loc
}

// TestConcentrationSinceSkippedMidnight: Concentration.Since is the first
// instant of the window's first day in the policy's location, also when
// that day's midnight was skipped: it is then the first instant of the
// day, 01:00 local, and not an instant of the day before.
func TestConcentrationSinceSkippedMidnight(t *testing.T) {
	loc := santiago(t)
	dayStart := time.Date(2026, 9, 6, 4, 0, 0, 0, time.UTC) // 01:00 on the 6th, UTC−3
	if got, y, m, d := dayStart.In(loc), 2026, time.September, 6; got.Year() != y || got.Month() != m || got.Day() != d ||
		dayStart.Add(-time.Nanosecond).In(loc).Day() != 5 {
		t.Fatalf("the zone data does not skip midnight on 6 September 2026: %v", got)
	}
	f := repFixture(t, escrow.ReputationPolicy{Location: loc}, "before", "first", "shop")
	// One rating in the last second of the 5th, one at the first instant
	// of the 6th.
	f.clock.Set(dayStart.Add(-time.Second))
	concRated(f, "before", "shop", 1, escrow.Positive)
	f.clock.Set(dayStart)
	concRated(f, "first", "shop", 1, escrow.Positive)

	// On 5 September 2027 the window's first day is 6 September 2026,
	// 364 days before.
	f.clock.Set(time.Date(2027, 9, 5, 12, 0, 0, 0, loc))
	c := concOf(f, "shop")
	if !c.Since.Equal(dayStart) {
		t.Errorf("Since %v (%v), want %v: the first instant of 6 September 2026 in %v",
			c.Since, c.Since.In(loc), dayStart, loc)
	}
	want := []escrow.RaterPoints{{Rater: "first", Points: 1, New: true}}
	repDiff(t, "the window's raters", want, c.TopRaters)
	if v := repReputation(f, "shop").AsSeller; v.Last365.Positive != c.Points {
		t.Errorf("Last365 has %d positives, the concentration %d points", v.Last365.Positive, c.Points)
	}
}
