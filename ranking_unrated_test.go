package escrow_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
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
		// Read whole, and a seller a page: the pages after the last
		// rated seller may be empty, and end with no cursor.
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

// placesRead counts the places of the ranking index a store's reads
// return.
type placesRead struct {
	escrow.Storage
	n *int
}

func (s placesRead) View(ctx context.Context, fn func(escrow.Tx) error) error {
	return s.Storage.View(ctx, func(tx escrow.Tx) error { return fn(placesReadTx{tx, s.n}) })
}

type placesReadTx struct {
	escrow.Tx
	n *int
}

func (tx placesReadTx) TopAggregates(role escrow.Role, by escrow.RankKey, after escrow.RankPos, limit int) ([]escrow.Aggregate, error) {
	top, err := tx.Tx.TopAggregates(role, by, after, limit)
	*tx.n += len(top)
	return top, err
}

// TestTopSellersPageReadsLimitPlusOne: unrated sellers keep their places
// in the index, among the zero keys, and a page reads at most p.Limit+1
// places however many of them are unrated, so a page there may be short
// or empty; read on, the pages list every rated seller once.
func TestTopSellersPageReadsLimitPlusOne(t *testing.T) {
	var read int
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	f := newWorldAt(t, placesRead{store, &read}, escrow.Options{Operators: []string{"ops"}}, start)
	f.funded("b")
	for i := range 30 {
		s := fmt.Sprintf("s-%02d", i)
		f.funded(s)
		id := "e-" + s
		repTrade(f, id, "b", s, cny("10.00"))
		repRate(f, id, "b", escrow.Positive)
		if _, err := f.l.VoidRating(f.ctx, id, "b", "ops", "brushing"); err != nil {
			t.Fatal(err)
		}
	}
	f.funded("z-neg")
	repTrade(f, "e-neg", "b", "z-neg", cny("10.00"))
	repRate(f, "e-neg", "b", escrow.Negative)

	var got []string
	p := escrow.Page{Limit: 2}
	for range 40 {
		read = 0
		page, err := f.l.TopSellers(f.ctx, escrow.RankWilson, p)
		if err != nil {
			t.Fatal(err)
		}
		if read > p.Limit+1 {
			t.Errorf("a page of %d read %d places of the index", p.Limit, read)
		}
		for _, r := range page.Sellers {
			got = append(got, r.Party)
		}
		if p.Cursor = page.Next; p.Cursor == "" {
			break
		}
	}
	if diff := cmp.Diff([]string{"z-neg"}, got); diff != "" {
		t.Errorf("TopSellers a page of 2 (-want +got):\n%s", diff)
	}
}
