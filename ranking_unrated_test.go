package escrow_test

import (
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// TestTopSellersLeavesOutUnrated: a seller whose every rating stopped
// counting (voided or withdrawn) is unrated, as one never rated is, and
// TopSellers lists neither: an unrated seller is not ranked as a score of
// zero, tied with (and by name above) sellers whose counted ratings are
// all negative. The rated ones are listed as before, highest first, ties
// by party ID ascending, page by page.
func TestTopSellersLeavesOutUnrated(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "b1", "b2", "b3", "b4", "b5",
		"aaron", "abby", "neg-1", "neg-2", "never", "pos", "zoe")
	repTrade(f, "e-1", "b1", "aaron", cny("10.00"))
	repRate(f, "e-1", "b1", escrow.Positive)
	repTrade(f, "e-2", "b2", "abby", cny("10.00"))
	repRate(f, "e-2", "b2", escrow.Negative)
	repTrade(f, "e-3", "b3", "neg-1", cny("10.00"))
	repRate(f, "e-3", "b3", escrow.Negative)
	repTrade(f, "e-4", "b4", "neg-2", cny("10.00"))
	repRate(f, "e-4", "b4", escrow.Negative)
	repTrade(f, "e-5", "b5", "pos", cny("10.00"))
	repRate(f, "e-5", "b5", escrow.Positive)
	repTrade(f, "e-6", "b1", "zoe", cny("10.00"))
	repRate(f, "e-6", "b1", escrow.Negative)
	repTrade(f, "e-7", "b2", "never", cny("10.00")) // never rated
	// aaron's only rating is voided, abby's and zoe's only ratings
	// withdrawn: all three are unrated now.
	if _, err := f.l.VoidRating(f.ctx, "e-1", "b1", "ops", "brushing"); err != nil {
		t.Fatal(err)
	}
	for _, w := range [][2]string{{"e-2", "b2"}, {"e-6", "b1"}} {
		if _, err := f.l.WithdrawRating(f.ctx, w[0], w[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"aaron", "abby", "zoe", "never"} {
		if v := repReputation(f, p).AsSeller; !v.Unrated {
			t.Fatalf("%s as a seller: %+v, want unrated", p, v)
		}
	}
	want := []string{"pos", "neg-1", "neg-2"}
	for _, by := range []escrow.RankKey{escrow.RankWilson, escrow.RankExpectation} {
		// Read whole, and a seller a page, which must end on the last
		// rated seller with no cursor after it.
		var got []string
		for _, r := range f.ranking(by) {
			got = append(got, r.Party)
			if r.View.Unrated {
				t.Errorf("by %d: %s listed unrated", by, r.Party)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("TopSellers(%d) (-want +got):\n%s", by, diff)
		}
		got = nil
		p := escrow.Page{Limit: 1}
		for range 10 {
			page, err := f.l.TopSellers(f.ctx, by, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Sellers {
				got = append(got, r.Party)
			}
			if p.Cursor = page.Next; p.Cursor == "" {
				break
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("TopSellers(%d) a seller a page (-want +got):\n%s", by, diff)
		}
	}
	// A counted rating ranks an unrated seller again.
	repTrade(f, "e-8", "b3", "abby", cny("10.00"))
	repRate(f, "e-8", "b3", escrow.Negative)
	if diff := cmp.Diff([]string{"pos", "abby", "neg-1", "neg-2"}, f.top(escrow.RankWilson, 10)); diff != "" {
		t.Errorf("after abby's new rating (-want +got):\n%s", diff)
	}
	f.check()
}
