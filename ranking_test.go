package escrow_test

import (
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// TestWilsonOfNoPositivesIsZero ranks shops that have only negatives: each
// has a Wilson bound of exactly 0, so they tie and rank by name, not by
// rounding noise (which put 4 negatives above 3).
func TestWilsonOfNoPositivesIsZero(t *testing.T) {
	w := newWorld(t, nil, escrow.Options{})
	negatives := map[string]int{"shop-1neg": 1, "shop-2neg": 2, "shop-3neg": 3, "shop-4neg": 4}
	for shop, n := range negatives {
		for range n {
			w.rated(shop, escrow.Negative)
		}
	}
	for shop := range negatives {
		rep, err := w.l.Reputation(w.ctx, shop)
		w.must("Reputation", err)
		if rep.AsSeller.Wilson != 0 {
			t.Errorf("Wilson of %s = %g, want exactly 0", shop, rep.AsSeller.Wilson)
		}
	}
	want := []string{"shop-1neg", "shop-2neg", "shop-3neg", "shop-4neg"}
	if diff := cmp.Diff(want, w.top(escrow.RankWilson, 10)); diff != "" {
		t.Errorf("TopSellers(RankWilson) (-want +got):\n%s", diff)
	}
}
