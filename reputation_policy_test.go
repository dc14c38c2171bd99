package escrow_test

import (
	"errors"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// TestReputationPolicyYearLimits pins the limits the README and the
// policy's godoc state: RevisionWindow, RepeatItemWindow, WithdrawWindow,
// RateWindow, DetailWindow and UniqueWindow may be 365 days and no more;
// a longer one is refused by New with ErrInvalidArgument. A revision and
// a withdrawal under a window of a year are in time at its last instant.
func TestReputationPolicyYearLimits(t *testing.T) {
	const year = 365 * repDay
	set := map[string]func(*escrow.ReputationPolicy, time.Duration){
		"RevisionWindow":   func(p *escrow.ReputationPolicy, d time.Duration) { p.RevisionWindow = d },
		"RepeatItemWindow": func(p *escrow.ReputationPolicy, d time.Duration) { p.RepeatItemWindow = d },
		"WithdrawWindow":   func(p *escrow.ReputationPolicy, d time.Duration) { p.WithdrawWindow = d },
		"RateWindow":       func(p *escrow.ReputationPolicy, d time.Duration) { p.RateWindow = d },
		"DetailWindow":     func(p *escrow.ReputationPolicy, d time.Duration) { p.DetailWindow = d },
		"UniqueWindow":     func(p *escrow.ReputationPolicy, d time.Duration) { p.UniqueWindow = d },
	}
	for name, setter := range set {
		for _, d := range []time.Duration{year, year + time.Nanosecond, 2 * year} {
			var p escrow.ReputationPolicy
			setter(&p, d)
			_, err := escrow.New(t.Context(), memstore.New(), &escrow.Options{Reputation: p})
			if d <= year && err != nil {
				t.Errorf("%s of %v: %v, want it accepted", name, d, err)
			}
			if d > year && !errors.Is(err, escrow.ErrInvalidArgument) {
				t.Errorf("%s of %v: %v, want ErrInvalidArgument", name, d, err)
			}
		}
	}

	f := repFixture(t, escrow.ReputationPolicy{RevisionWindow: year, WithdrawWindow: year}, "alice", "bob")
	repTrade(f, "e-1", "alice", "bob", cny("10.00"))
	given := repRate(f, "e-1", "alice", escrow.Negative).At
	repRate(f, "e-1", "bob", escrow.Neutral)
	f.clock.Set(given.Add(year + time.Nanosecond))
	repRefused(f, "a revision a year and a nanosecond after", escrow.ErrRatingClosed, func() error {
		_, err := f.l.Revise(f.ctx, "e-1", "alice", escrow.Positive, "")
		return err
	})
	f.clock.Set(given.Add(year))
	if r, err := f.l.Revise(f.ctx, "e-1", "alice", escrow.Positive, ""); err != nil || r.Score != escrow.Positive {
		t.Errorf("a revision a year after: %+v, %v", r, err)
	}
	if r, err := f.l.WithdrawRating(f.ctx, "e-1", "bob"); err != nil || !r.Withdrawn {
		t.Errorf("a withdrawal a year after: %+v, %v", r, err)
	}
	f.check()
}
