package escrow_test

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
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

// aggregate reads the aggregate of party as a seller from the store.
func (w *world) aggregate(party string) escrow.Aggregate {
	w.t.Helper()
	var a escrow.Aggregate
	err := w.l.Storage().View(w.ctx, func(tx escrow.Tx) error {
		var err error
		a, err = tx.Aggregate(party, escrow.Seller)
		return err
	})
	w.must("Aggregate "+party, err)
	return a
}

// ranked returns, for each seller TopSellers ranks by key, its party, its
// View's figure for that key, and the key stored in its aggregate.
func (w *world) ranked(by escrow.RankKey) [][3]any {
	w.t.Helper()
	var out [][3]any
	for _, r := range w.ranking(by) {
		a := w.aggregate(r.Party)
		if by == escrow.RankWilson {
			out = append(out, [3]any{r.Party, r.View.Wilson, a.Wilson})
		} else {
			out = append(out, [3]any{r.Party, r.View.Expectation, a.Expectation})
		}
	}
	return out
}

// TestRankingFollowsTime: a shop whose ratings left the positive rate's
// window ranks by its Wilson bound of now, 0, below a shop rated lately,
// once ProcessDue has run; and every ranking key is the View's figure of
// today.
func TestRankingFollowsTime(t *testing.T) {
	day := 24 * time.Hour
	w := newWorld(t, nil, escrow.Options{})
	for range 10 {
		w.rated("old-shop", escrow.Positive) // Wilson 10/(10+1.96²) = 0.72
	}
	w.clock.Advance(200 * day) // past the 180 days of the positive rate
	for range 3 {
		w.rated("new-shop", escrow.Positive) // Wilson 3/(3+1.96²) = 0.44
	}
	w.rated("mid-shop", escrow.Positive)
	w.clock.Advance(40 * day)
	w.rated("mid-shop", escrow.Negative)
	w.clock.Advance(2 * day)
	w.processDue()

	wilson := w.ranked(escrow.RankWilson)
	for _, r := range wilson {
		if r[1] != r[2] {
			t.Errorf("%s: Wilson key %v, View %v", r[0], r[2], r[1])
		}
	}
	if diff := cmp.Diff([]string{"new-shop", "mid-shop", "old-shop"}, w.top(escrow.RankWilson, 10)); diff != "" {
		t.Errorf("TopSellers(RankWilson) (-want +got):\n%s", diff)
	}
	if rep, _ := w.l.Reputation(w.ctx, "old-shop"); rep.AsSeller.Wilson != 0 {
		t.Errorf("old-shop's Wilson now %v, want 0", rep.AsSeller.Wilson)
	}
	// The Expectation keys are today's, to the last bit.
	for _, r := range w.ranked(escrow.RankExpectation) {
		if r[1] != r[2] {
			t.Errorf("%s: Expectation key %v, View %v", r[0], r[2], r[1])
		}
	}
	// Each is due again tomorrow, while a rating is in its windows.
	today := w.aggregate("old-shop").WindowsDay
	for _, shop := range []string{"old-shop", "new-shop", "mid-shop"} {
		if a := w.aggregate(shop); a.RekeyDay != today+1 {
			t.Errorf("%s RekeyDay %d, want %d", shop, a.RekeyDay, today+1)
		}
	}
	// Once old-shop's last rating left the 365 days, it is never due
	// again, until it is rated.
	w.clock.Advance(170 * day)
	w.processDue()
	if a := w.aggregate("old-shop"); a.RekeyDay != 0 || a.Windows != ([5]escrow.Counts{}) || a.Wilson != 0 {
		t.Errorf("old-shop after a year: RekeyDay %d, windows %v, Wilson %v; want all zero", a.RekeyDay, a.Windows, a.Wilson)
	}
	if a := w.aggregate("new-shop"); a.RekeyDay != today+170+1 || a.Windows[3].Positive != 3 {
		t.Errorf("new-shop: RekeyDay %d, 365 days %v; want day %d and 3 positives", a.RekeyDay, a.Windows[3], today+170+1)
	}
}

// TestRekeySkipsFailingAggregate: an aggregate that cannot be re-keyed is
// skipped and reported, and the others in its batch are re-keyed.
func TestRekeySkipsFailingAggregate(t *testing.T) {
	store := &stuckStore{Store: memstore.New(), stuck: map[string]bool{}}
	t.Cleanup(func() { store.Close() })
	w := newWorld(t, store, escrow.Options{})
	shops := []string{"shop-a", "shop-b", "shop-c"}
	for _, shop := range shops {
		w.rated(shop, escrow.Positive)
	}
	store.stuck["shop-b"] = true
	w.clock.Advance(24 * time.Hour)
	_, err := w.l.ProcessDue(w.ctx)
	var due *escrow.DueError
	if !errors.As(err, &due) || !errors.Is(err, errStuck) {
		t.Fatalf("ProcessDue: %v, want a DueError wrapping errStuck", err)
	}
	got := map[escrow.PartyRole]string{}
	for k, err := range due.Aggregates {
		got[k] = err.Error()
	}
	want := map[escrow.PartyRole]string{{Party: "shop-b", Role: escrow.Seller}: fmt.Sprintf("%v: %q", errStuck, "shop-b")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DueError.Aggregates (-want +got):\n%s", diff)
	}
	rekeyed := map[string]bool{}
	for _, shop := range shops {
		rekeyed[shop] = w.aggregate(shop).RekeyDay == w.aggregate("shop-a").WindowsDay+1
	}
	if diff := cmp.Diff(map[string]bool{"shop-a": true, "shop-b": false, "shop-c": true}, rekeyed); diff != "" {
		t.Errorf("re-keyed (-want +got):\n%s", diff)
	}
}

// TestTopSellersCursorScore: a cursor holds the last seller's key, a
// Wilson bound or an expectation, both between 0 and 1. A cursor whose
// checksum holds but whose key is none TopSellers could have written (not
// a number, infinite, or outside 0 to 1) is refused with
// ErrInvalidArgument, as the doc says of a cursor TopSellers did not
// return, rather than handed to the store, whose ordering a NaN breaks.
func TestTopSellersCursorScore(t *testing.T) {
	w := newWorld(t, nil, escrow.Options{})
	for _, shop := range []string{"shop-a", "shop-b", "shop-c"} {
		w.rated(shop, escrow.Positive)
	}
	// cursor writes a cursor of the top_sellers listing of key by, as
	// TopSellers writes its own: fields with their lengths, then a CRC.
	cursor := func(by escrow.RankKey, fields ...string) string {
		b := binary.AppendUvarint(nil, uint64(len(fmt.Sprintf("top_sellers/%d", by))))
		b = append(b, fmt.Sprintf("top_sellers/%d", by)...)
		for _, f := range fields {
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		}
		return base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b)))
	}
	// The encoding is TopSellers' own: its cursor after the first seller
	// reads back as the second page.
	first, err := w.l.TopSellers(w.ctx, escrow.RankWilson, escrow.Page{Limit: 1})
	w.must("TopSellers", err)
	next, err := w.l.TopSellers(w.ctx, escrow.RankWilson, escrow.Page{Limit: 1,
		Cursor: cursor(escrow.RankWilson, fmt.Sprint(first.Sellers[0].View.Wilson), first.Sellers[0].Party)})
	w.must("TopSellers with a written cursor", err)
	if len(next.Sellers) != 1 || next.Sellers[0].Party == first.Sellers[0].Party {
		t.Fatalf("a written cursor after %s gave %+v", first.Sellers[0].Party, next.Sellers)
	}
	for _, by := range []escrow.RankKey{escrow.RankWilson, escrow.RankExpectation} {
		for _, score := range []string{"NaN", "+Inf", "-Inf", "1.5", "-0.25"} {
			before := w.dump()
			got, err := w.l.TopSellers(w.ctx, by, escrow.Page{Cursor: cursor(by, score, "shop-a")})
			if !errors.Is(err, escrow.ErrInvalidArgument) || got.Sellers != nil {
				t.Errorf("TopSellers(%d) after a key of %s: %+v, %v; want ErrInvalidArgument", by, score, got, err)
			}
			w.unchanged(before, "TopSellers with a bad cursor")
		}
	}
}
