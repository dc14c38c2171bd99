package escrow_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// The tests of the rules against cheap reputation: the repeat-item window,
// the pair cap by the order's month and as a net cap, withdrawal by the
// rater and voiding by an operator. Times are offsets from the fixture's
// start, the numbers worked out here.

// memstoreNew returns a fresh memstore closed when the test ends.
func memstoreNew(t *testing.T) *memstore.Store {
	s := memstore.New()
	t.Cleanup(func() { s.Close() })
	return s
}

// repCounted rates id as rater and returns whether it counted, and why not.
func repCounted(f *world, id, rater string, score escrow.Score) (bool, string) {
	f.t.Helper()
	r := repRate(f, id, rater, score)
	return r.Counted, r.Reason
}

// repItemTrade completes an escrow of the given SKU and item.
func repItemTrade(f *world, id, buyer, seller, sku, item string) {
	f.t.Helper()
	repOpenPaidItem(f, id, buyer, seller, cny("50.00"), sku, item)
	_, err := f.l.Ship(f.ctx, id, seller, "SF")
	f.must("ship "+id, err)
	_, err = f.l.Confirm(f.ctx, id, buyer)
	f.must("confirm "+id, err)
}

func TestRepeatItem(t *testing.T) {
	t.Run("window edges", func(t *testing.T) {
		f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob", "carol")
		// Day 0: counts. 14 days less 1 ns later: the same SKU does not;
		// the same item under another SKU, another buyer, and the same SKU
		// from another seller do. 14 days after the first: counts again.
		repItemTrade(f, "e1", "alice", "bob", "TEA-1", "green tea")
		if ok, why := repCounted(f, "e1", "alice", escrow.Positive); !ok {
			t.Fatalf("the first rating of TEA-1 did not count: %s", why)
		}
		f.clock.Advance(14*repDay - time.Nanosecond)
		repItemTrade(f, "e2", "alice", "bob", "TEA-1", "green tea, a new description")
		if ok, why := repCounted(f, "e2", "alice", escrow.Positive); ok || why != escrow.ReasonRepeatItem {
			t.Errorf("the same SKU 1 ns inside the window: counted %v, %q", ok, why)
		}
		repItemTrade(f, "e3", "alice", "bob", "TEA-2", "green tea")
		if ok, why := repCounted(f, "e3", "alice", escrow.Positive); !ok {
			t.Errorf("another SKU of the same description: %q", why)
		}
		repItemTrade(f, "e4", "carol", "bob", "TEA-1", "green tea")
		if ok, why := repCounted(f, "e4", "carol", escrow.Positive); !ok {
			t.Errorf("another buyer of TEA-1: %q", why)
		}
		// The seller's rating of the buyer is held to the rule too.
		if ok, why := repCounted(f, "e2", "bob", escrow.Positive); !ok {
			t.Errorf("bob's first rating of alice on TEA-1: %q", why)
		}
		f.clock.Advance(time.Nanosecond)
		repItemTrade(f, "e5", "alice", "bob", "TEA-1", "green tea")
		if ok, why := repCounted(f, "e5", "alice", escrow.Positive); !ok {
			t.Errorf("TEA-1 exactly 14 days after the counted one: %q", why)
		}
		if ok, why := repCounted(f, "e1", "bob", escrow.Positive); ok || why != escrow.ReasonRepeatItem {
			t.Errorf("bob's second rating of alice on TEA-1 within 14 days: counted %v, %q", ok, why)
		}
		if v := repReputation(f, "bob").AsSeller; v.Points != 4 {
			t.Errorf("bob has %d points, want 4 (e1, e3, e4, e5)", v.Points)
		}
		f.check()
	})

	t.Run("the item stands in for a missing SKU", func(t *testing.T) {
		f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
		for i, c := range []struct {
			id, sku, item string
			counts        bool
		}{
			{"e1", "", "a kettle", true},
			{"e2", "", "a kettle", false},
			{"e3", "", "", true}, // names nothing: not held to the rule
			{"e4", "", "", true},
			{"e5", "KETTLE", "a kettle", true}, // a SKU is another key than the item
		} {
			repItemTrade(f, c.id, "alice", "bob", c.sku, c.item)
			if ok, why := repCounted(f, c.id, "alice", escrow.Positive); ok != c.counts {
				t.Errorf("%d: %s (sku %q, item %q): counted %v (%q), want %v", i, c.id, c.sku, c.item, ok, why, c.counts)
			}
		}
		f.check()
	})

	t.Run("policy", func(t *testing.T) {
		off := repFixture(t, escrow.ReputationPolicy{CountRepeatItems: true}, "alice", "bob")
		short := repFixture(t, escrow.ReputationPolicy{RepeatItemWindow: 2 * repDay}, "alice", "bob")
		for _, f := range []*world{off, short} {
			repItemTrade(f, "e1", "alice", "bob", "X", "")
			repRate(f, "e1", "alice", escrow.Positive)
			f.clock.Advance(2 * repDay)
			repItemTrade(f, "e2", "alice", "bob", "X", "")
			if ok, why := repCounted(f, "e2", "alice", escrow.Positive); !ok {
				t.Errorf("two days later, with the rule off or a 2-day window: %q", why)
			}
		}
		for _, p := range []escrow.ReputationPolicy{{RepeatItemWindow: -time.Hour}, {RepeatItemWindow: 366 * repDay}} {
			if _, err := escrow.New(t.Context(), memstoreNew(t), &escrow.Options{Reputation: p}); !errors.Is(err, escrow.ErrInvalidArgument) {
				t.Errorf("RepeatItemWindow %v: %v, want an invalid argument", p.RepeatItemWindow, err)
			}
		}
	})

	t.Run("a voided rating gives its place back", func(t *testing.T) {
		f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
		repItemTrade(f, "e1", "alice", "bob", "X", "")
		repRate(f, "e1", "alice", escrow.Positive) // day 0: counts
		f.clock.Advance(10 * repDay)
		repItemTrade(f, "e2", "alice", "bob", "X", "")
		repRate(f, "e2", "alice", escrow.Positive) // day 10: a repeat
		f.clock.Advance(6 * repDay)
		repItemTrade(f, "e3", "alice", "bob", "X", "")
		repRate(f, "e3", "alice", escrow.Positive) // day 16: counts
		f.clock.Advance(repDay)
		if _, err := f.l.VoidRating(f.ctx, "e3", "alice", "ops", "brushing"); err != nil {
			t.Fatal(err)
		}
		f.check()
		// The ratings within 14 days before e3 that count: none (e2 did
		// not, e1 is 16 days before it), so the mark goes and day 17 counts.
		repItemTrade(f, "e4", "alice", "bob", "X", "")
		if ok, why := repCounted(f, "e4", "alice", escrow.Positive); !ok {
			t.Errorf("after the void of the latest counted: %q", why)
		}
		// Voiding e4 brings back nothing either; voiding e1, whose mark
		// is gone, changes no mark.
		if _, err := f.l.VoidRating(f.ctx, "e1", "alice", "ops", "brushing"); err != nil {
			t.Fatal(err)
		}
		f.check()
		f.clock.Advance(repDay)
		repItemTrade(f, "e5", "alice", "bob", "X", "")
		if ok, why := repCounted(f, "e5", "alice", escrow.Positive); ok || why != escrow.ReasonRepeatItem {
			t.Errorf("a day after e4, which still counts: counted %v, %q", ok, why)
		}
		if v := repReputation(f, "bob").AsSeller; v.Points != 1 {
			t.Errorf("bob has %d points, want 1 (e4)", v.Points)
		}
	})

	t.Run("the mark goes back to an earlier counted rating", func(t *testing.T) {
		f := repFixture(t, escrow.ReputationPolicy{RepeatItemWindow: 5 * repDay}, "alice", "bob")
		repItemTrade(f, "e1", "alice", "bob", "X", "")
		repRate(f, "e1", "alice", escrow.Positive) // day 0
		f.clock.Advance(6 * repDay)
		repItemTrade(f, "e2", "alice", "bob", "X", "")
		repRate(f, "e2", "alice", escrow.Negative) // day 6, counts
		f.clock.Advance(repDay)
		// Withdrawn on day 7: the mark goes back to e1? No: e1 is 6 days
		// before e2, outside the 5-day window, so it goes.
		if _, err := f.l.WithdrawRating(f.ctx, "e2", "alice"); err != nil {
			t.Fatal(err)
		}
		f.check()
		repItemTrade(f, "e3", "alice", "bob", "X", "")
		if ok, why := repCounted(f, "e3", "alice", escrow.Positive); !ok {
			t.Errorf("day 7 after the withdrawal: %q", why)
		}
		// e4 on day 10 is a repeat of e3 (day 7); voiding e3 gives the
		// mark back to no one in the 5 days before it, and e5 counts.
		f.clock.Advance(3 * repDay)
		repItemTrade(f, "e4", "alice", "bob", "X", "")
		if ok, _ := repCounted(f, "e4", "alice", escrow.Positive); ok {
			t.Errorf("e4 counted 3 days after e3")
		}
		if _, err := f.l.VoidRating(f.ctx, "e3", "alice", "ops", "found"); err != nil {
			t.Fatal(err)
		}
		f.check()
		repItemTrade(f, "e5", "alice", "bob", "X", "")
		if ok, why := repCounted(f, "e5", "alice", escrow.Positive); !ok {
			t.Errorf("e5 after e3 was voided: %q", why)
		}
	})
}

func TestSKU(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
	open := func(id, sku string) error {
		_, err := f.l.Open(f.ctx, escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Price: cny("10.00"), SKU: sku})
		return err
	}
	for _, sku := range []string{strings.Repeat("x", 101), "two\nlines", "tab\there"} {
		repRefused(f, fmt.Sprintf("a SKU of %d bytes: %q", len(sku), sku), escrow.ErrInvalidArgument, func() error { return open("e1", sku) })
	}
	if err := open("e1", strings.Repeat("x", 100)); err != nil {
		t.Fatalf("a SKU of 100 bytes: %v", err)
	}
	e := escrowNow(f, "e1")
	if e.SKU != strings.Repeat("x", 100) {
		t.Errorf("the escrow's SKU: %q", e.SKU)
	}
	if err := open("e1", strings.Repeat("x", 100)); err != nil {
		t.Errorf("the same terms again: %v", err)
	}
	repRefused(f, "the same ID with another SKU", escrow.ErrExists, func() error { return open("e1", "y") })
}

func TestPairCapByOrderMonth(t *testing.T) {
	// An escrow opened on 28 February at 23:59 and rated on 1 March
	// counts in February under OrderMonth and in March by default.
	feb := time.Date(2026, 2, 28, 23, 59, 0, 0, time.UTC)
	for _, c := range []struct {
		by        escrow.PairCapMonth
		month     string
		secondCap bool // the March order, rated in March, is capped
	}{
		{escrow.RatingMonth, "2026-03", true},
		{escrow.OrderMonth, "2026-02", false},
	} {
		f := newWorldAt(t, nil, escrow.Options{Reputation: escrow.ReputationPolicy{PairCap: 1, PairCapBy: c.by}}, feb)
		f.funded("alice", "bob")
		repOpenPaid(f, "e1", "alice", "bob", cny("100.00"))
		f.clock.Advance(2 * time.Minute) // 1 March, 00:01
		repOpenPaid(f, "e2", "alice", "bob", cny("100.00"))
		for _, id := range []string{"e1", "e2"} {
			_, err := f.l.Ship(f.ctx, id, "bob", "SF")
			f.must("ship", err)
			_, err = f.l.Confirm(f.ctx, id, "alice")
			f.must("confirm", err)
		}
		if ok, why := repCounted(f, "e1", "alice", escrow.Positive); !ok {
			t.Errorf("%v: the February order: %q", c.by, why)
		}
		if p := repPair(f, "bob", "alice", c.month); p.Positive != 1 {
			t.Errorf("%v: the pair's %s: %+v, want 1 positive", c.by, c.month, p)
		}
		ok, why := repCounted(f, "e2", "alice", escrow.Positive)
		if capped := !ok && why == escrow.ReasonPairCap; capped != c.secondCap {
			t.Errorf("%v: the March order: counted %v, %q; want capped %v", c.by, ok, why, c.secondCap)
		}
		// The seller's rating of the February order goes into the same
		// month, and a revision takes it out of that month again.
		repRate(f, "e1", "bob", escrow.Negative)
		if p := repPair(f, "alice", "bob", c.month); p.Negative != 1 {
			t.Errorf("%v: the seller's negative in %s: %+v", c.by, c.month, p)
		}
		if _, err := f.l.Revise(f.ctx, "e1", "bob", escrow.Positive, ""); err != nil {
			t.Fatal(err)
		}
		if p := repPair(f, "alice", "bob", c.month); p.Negative != 0 || p.Positive != 1 {
			t.Errorf("%v: after the revision, %s: %+v", c.by, c.month, p)
		}
		f.check()
	}
	if _, err := escrow.New(t.Context(), memstoreNew(t), &escrow.Options{Reputation: escrow.ReputationPolicy{PairCapBy: 2}}); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("PairCapBy 2: %v, want an invalid argument", err)
	}
}

func TestNetPairCap(t *testing.T) {
	// The scores one rater gives one ratee in a month, and whether each
	// counts, under a cap of 2 each way (apart) and as a whole (net).
	scores := []escrow.Score{escrow.Positive, escrow.Positive, escrow.Positive, escrow.Negative, escrow.Positive,
		escrow.Negative, escrow.Negative, escrow.Negative, escrow.Negative, escrow.Negative}
	for _, c := range []struct {
		net    bool
		counts string // one letter a rating: y counted, n capped
		points int64
	}{
		{false, "yynynynnnn", 2 - 2},        // +2 apart, −2 apart
		{true, "yynyyyyyyn", 2 - 1 + 1 - 4}, // the month's net within [−2, +2]
	} {
		f := repFixture(t, escrow.ReputationPolicy{PairCap: 2, NetPairCap: c.net, CountRepeatItems: true}, "alice", "bob")
		got := ""
		for i, sc := range scores {
			id := "e" + string(rune('a'+i))
			repTrade(f, id, "alice", "bob", cny("20.00"))
			ok, why := repCounted(f, id, "alice", sc)
			switch {
			case ok:
				got += "y"
			case why == escrow.ReasonPairCap:
				got += "n"
			default:
				t.Fatalf("net %v: %s not counted for %q", c.net, id, why)
			}
		}
		if got != c.counts {
			t.Errorf("net %v: counted %s, want %s", c.net, got, c.counts)
		}
		if v := repReputation(f, "bob").AsSeller; v.Points != c.points {
			t.Errorf("net %v: %d points, want %d", c.net, v.Points, c.points)
		}
		f.check()
	}
}

// TestNetPairCapAfterTakingOut: under NetPairCap the pair's month stays
// within the cap when a counted rating is taken out. A rater who gives
// six positives, then six negatives each followed by a positive, and then
// withdraws (or revises away) the negatives, leaves six points, not
// twelve: the latest positives are held back as the cap would have held
// them had the negatives never counted. A rating that brings the net back
// towards zero still counts.
func TestNetPairCapAfterTakingOut(t *testing.T) {
	for _, how := range []string{"withdraw", "revise", "void"} {
		t.Run(how, func(t *testing.T) {
			f := repFixture(t, escrow.ReputationPolicy{NetPairCap: true}, "alice", "bob")
			n := 0
			rate := func(s escrow.Score) escrow.Rating {
				n++
				id := fmt.Sprintf("e%02d", n)
				repTrade(f, id, "alice", "bob", cny("10.00"))
				return repRate(f, id, "alice", s)
			}
			for range 6 {
				rate(escrow.Positive)
			}
			var negatives, last []string
			for range 6 {
				negatives = append(negatives, rate(escrow.Negative).Escrow)
				p := rate(escrow.Positive)
				if !p.Counted {
					t.Fatalf("a positive after a negative was not counted: %s", p.Reason)
				}
				last = append(last, p.Escrow)
			}
			for _, id := range negatives {
				var err error
				switch how {
				case "withdraw":
					_, err = f.l.WithdrawRating(f.ctx, id, "alice")
				case "revise":
					_, err = f.l.Revise(f.ctx, id, "alice", escrow.Neutral, "")
				case "void":
					_, err = f.l.VoidRating(f.ctx, id, "alice", "ops", "test")
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			month := start.Format("2006-01")
			if v := repReputation(f, "bob").AsSeller; v.Points != 6 {
				t.Errorf("one pair added %d points in a month, want 6: %+v", v.Points, repPair(f, "bob", "alice", month))
			}
			if pm := repPair(f, "bob", "alice", month); pm.Positive != 6 || pm.Negative != 0 {
				t.Errorf("pair month %+v, want 6 positive points and no negative", pm)
			}
			// The positives held back are the latest six.
			for _, id := range last {
				r := repStored(f, id, "alice")
				if r.Counted || r.Points != 0 || r.Reason != escrow.ReasonPairCap {
					t.Errorf("%s: counted %v, %d points, %q; want held back by the cap", id, r.Counted, r.Points, r.Reason)
				}
			}
			if r := rate(escrow.Negative); !r.Counted {
				t.Errorf("a negative that brings the net towards zero was held back: %q", r.Reason)
			}
			f.check()
		})
	}
}

// TestNetPairCapLowered: a month left past the net cap, as a cap lowered
// since leaves it, still takes a rating that brings the net back towards
// zero, and refuses one that takes it further.
func TestNetPairCapLowered(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{NetPairCap: true}, "alice", "bob")
	for i := range 5 {
		id := fmt.Sprintf("e%d", i)
		repTrade(f, id, "alice", "bob", cny("10.00"))
		repRate(f, id, "alice", escrow.Positive)
	}
	g := newWorldAt(t, f.store, escrow.Options{Reputation: escrow.ReputationPolicy{NetPairCap: true, PairCap: 2}}, f.clock.Now())
	for i, c := range []struct {
		score escrow.Score
		count bool
	}{{escrow.Positive, false}, {escrow.Negative, true}, {escrow.Positive, false}} {
		id := fmt.Sprintf("g%d", i)
		repTrade(g, id, "alice", "bob", cny("10.00"))
		if r := repRate(g, id, "alice", c.score); r.Counted != c.count {
			t.Errorf("%s with the net at 5 and the cap at 2: counted %v (%q), want %v", c.score, r.Counted, r.Reason, c.count)
		}
	}
}

func TestWithdrawRating(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob", "carol")
	repTrade(f, "e1", "alice", "bob", cny("100.00"))
	repTrade(f, "e2", "carol", "bob", cny("100.00"))
	repTrade(f, "e3", "alice", "bob", cny("100.00"))
	repTrade(f, "e4", "alice", "bob", cny("100.00"))
	repRate(f, "e1", "alice", escrow.Negative)
	repRate(f, "e2", "carol", escrow.Positive)
	repRate(f, "e3", "alice", escrow.Neutral)
	repRate(f, "e4", "alice", escrow.Negative)
	if v := repReputation(f, "bob").AsSeller; v.Points != -1 || v.Total != (escrow.Counts{Positive: 1, Neutral: 1, Negative: 2}) {
		t.Fatalf("before: %+v", v)
	}
	if _, err := f.l.Revise(f.ctx, "e4", "alice", escrow.Neutral, ""); err != nil {
		t.Fatal(err)
	}
	// Exactly 30 days after: still open.
	f.clock.Advance(30 * repDay)
	r, err := f.l.WithdrawRating(f.ctx, "e1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Withdrawn || !r.WithdrawnAt.Equal(f.clock.Now()) || r.Counted || r.Reason != escrow.ReasonWithdrawn || r.Points != 0 || r.Score != escrow.Negative {
		t.Errorf("the withdrawn rating: %+v", r)
	}
	if v := repReputation(f, "bob").AsSeller; v.Points != 1 || v.Total != (escrow.Counts{Positive: 1, Neutral: 2}) || v.RateBasis != 1 {
		t.Errorf("after: %+v", v)
	}
	evs, err := f.l.Events(f.ctx, 0, 1000)
	f.must("Events", err)
	last := evs[len(evs)-1]
	if last.Type != escrow.RatingWithdrawn || last.Actor != "alice" || last.Account != "bob" || last.Escrow != "e1" {
		t.Errorf("the last event: %+v", last)
	}
	page, err := f.l.Explain(f.ctx, "bob", escrow.Page{})
	f.must("Explain", err)
	if c := page.Contributions[0]; c.Escrow != "e1" || !c.Withdrawn || c.Counted || c.BetaWeight != 0 {
		t.Errorf("Explain's first: %+v", c)
	}
	f.check()

	refusals := []struct {
		what       string
		id, rater  string
		want       error
		afterClock time.Duration
	}{
		{"twice", "e1", "alice", escrow.ErrInvalidTransition, 0},
		{"a positive", "e2", "carol", escrow.ErrInvalidTransition, 0},
		{"a revised rating", "e4", "alice", escrow.ErrInvalidTransition, 0},
		{"no such rating", "e2", "alice", escrow.ErrNotFound, 0},
		{"30 days and 1 ns after", "e3", "alice", escrow.ErrRatingClosed, time.Nanosecond},
	}
	for _, c := range refusals {
		f.clock.Advance(c.afterClock)
		repRefused(f, "withdraw "+c.what, c.want, func() error {
			_, err := f.l.WithdrawRating(f.ctx, c.id, c.rater)
			return err
		})
	}
	repRefused(f, "revise a withdrawn rating", escrow.ErrInvalidTransition, func() error {
		_, err := f.l.Revise(f.ctx, "e1", "alice", escrow.Positive, "")
		return err
	})

	off := repFixture(t, escrow.ReputationPolicy{NoWithdraw: true}, "alice", "bob")
	repTrade(off, "e1", "alice", "bob", cny("100.00"))
	repRate(off, "e1", "alice", escrow.Negative)
	repRefused(off, "withdraw with withdrawal off", escrow.ErrInvalidTransition, func() error {
		_, err := off.l.WithdrawRating(off.ctx, "e1", "alice")
		return err
	})
	short := repFixture(t, escrow.ReputationPolicy{WithdrawWindow: repDay}, "alice", "bob")
	repTrade(short, "e1", "alice", "bob", cny("100.00"))
	repRate(short, "e1", "alice", escrow.Negative)
	short.clock.Advance(repDay + time.Nanosecond)
	repRefused(short, "withdraw after a 1-day window", escrow.ErrRatingClosed, func() error {
		_, err := short.l.WithdrawRating(short.ctx, "e1", "alice")
		return err
	})
	// The window's last instant is still in it.
	edge := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
	repTrade(edge, "e1", "alice", "bob", cny("100.00"))
	r = repRate(edge, "e1", "alice", escrow.Negative)
	edge.clock.Set(r.At.Add(30 * repDay))
	if w, err := edge.l.WithdrawRating(edge.ctx, "e1", "alice"); err != nil || !w.Withdrawn {
		t.Errorf("withdraw at exactly 30 days: %+v, %v", w, err)
	}
}

func TestVoidRating(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob", "carol", "dave")
	repTrade(f, "e1", "alice", "bob", cny("100.00"))
	repTrade(f, "e2", "carol", "bob", cny("100.00"))
	repTrade(f, "e3", "alice", "dave", cny("100.00"))
	repRate(f, "e1", "alice", escrow.Positive)
	repRate(f, "e2", "carol", escrow.Positive)
	repRate(f, "e3", "alice", escrow.Positive)
	if top := f.top(escrow.RankExpectation, 2); top[0] != "bob" {
		t.Fatalf("before: %v", top)
	}
	for _, c := range []struct {
		what, operator, reason string
		want                   error
	}{
		{"by a party", "bob", "brushing", escrow.ErrNotParty},
		{"by a stranger", "mallory", "brushing", escrow.ErrNotParty},
		{"without a reason", "ops", "", escrow.ErrInvalidArgument},
		{"with a control character", "ops", "a\x00b", escrow.ErrInvalidArgument},
	} {
		repRefused(f, "void "+c.what, c.want, func() error {
			_, err := f.l.VoidRating(f.ctx, "e1", "alice", c.operator, c.reason)
			return err
		})
	}
	repRefused(f, "void a rating there is not", escrow.ErrNotFound, func() error {
		_, err := f.l.VoidRating(f.ctx, "e1", "carol", "ops", "brushing")
		return err
	})
	f.clock.Advance(repDay)
	for _, id := range []string{"e1", "e2"} {
		r, err := f.l.VoidRating(f.ctx, id, map[string]string{"e1": "alice", "e2": "carol"}[id], "ops", "a brushing ring")
		if err != nil {
			t.Fatal(err)
		}
		if !r.Voided || r.VoidedBy != "ops" || r.VoidReason != "a brushing ring" || !r.VoidedAt.Equal(f.clock.Now()) ||
			r.Counted || r.Reason != escrow.ReasonVoided || r.Points != 0 {
			t.Errorf("the voided rating: %+v", r)
		}
	}
	if v := repReputation(f, "bob").AsSeller; !v.Unrated || v.Points != 0 {
		t.Errorf("bob after both were voided: %+v", v)
	}
	if top := f.top(escrow.RankExpectation, 2); top[0] != "dave" {
		t.Errorf("the ranking after: %v", top)
	}
	evs, err := f.l.Events(f.ctx, 0, 1000)
	f.must("Events", err)
	last := evs[len(evs)-1]
	if last.Type != escrow.RatingVoided || last.Actor != "ops" || last.Note != "a brushing ring" || last.Account != "bob" || last.Escrow != "e2" {
		t.Errorf("the last event: %+v", last)
	}
	repRefused(f, "void twice", escrow.ErrInvalidTransition, func() error {
		_, err := f.l.VoidRating(f.ctx, "e1", "alice", "ops", "again")
		return err
	})
	repRefused(f, "revise a voided rating", escrow.ErrInvalidTransition, func() error {
		_, err := f.l.Revise(f.ctx, "e1", "alice", escrow.Positive, "")
		return err
	})
	f.check()

	if _, err := escrow.New(t.Context(), memstoreNew(t), &escrow.Options{Operators: []string{"ok", "@fees"}}); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("a system account as operator: %v, want an invalid argument", err)
	}
	// A ledger without operators lets no one void.
	g := newFixture(t)
	g.funded("alice", "bob")
	repTrade(g, "e1", "alice", "bob", cny("100.00"))
	repRate(g, "e1", "alice", escrow.Positive)
	repRefused(g, "void with no operators", escrow.ErrNotParty, func() error {
		_, err := g.l.VoidRating(g.ctx, "e1", "alice", "ops", "brushing")
		return err
	})
}
