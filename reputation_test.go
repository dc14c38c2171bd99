package escrow_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/shopspring/decimal"
)

// The reputation tests drive a Ledger through ratings with the manual
// clock and check every rule of the reputation design with numbers worked
// out here, independently of the ledger's arithmetic: who may rate and
// when, the default rating, revisions and replies, the counting rules
// (points, the monthly pair cap, the minimum value, lost disputes), the
// windows, the positive rate, the Wilson bound, the Beta reputation, the
// explanation and the ranking.

const repDay = 24 * time.Hour

// repOpts compares ratings and views: times as instants (and Money, by
// its Equal method, as cmp does by default), a nil slice the same as an
// empty one, floats to 1e-12.
var repOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmpopts.EquateApprox(0, 1e-12),
}

// repFixture returns a fixture whose ledger has the reputation policy p,
// with accounts for ids.
func repFixture(t *testing.T, p escrow.ReputationPolicy, ids ...string) *world {
	t.Helper()
	f := newFixtureWith(t, &escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")}, Reputation: p,
		Operators: []string{"ops"}})
	f.funded(ids...)
	return f
}

// repMust fails the test if a setup call fails.
func repMust(f *world, what string, _ escrow.Escrow, err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
}

// repOpenPaid opens an escrow and pays it: AwaitingShipment. Each escrow
// sells an item of its own, so that the repeat-item rule leaves the other
// rules' tests alone; its own tests name the items.
func repOpenPaid(f *world, id, buyer, seller string, price escrow.Money) {
	f.t.Helper()
	repOpenPaidItem(f, id, buyer, seller, price, "", "teapot "+id)
}

func repOpenPaidItem(f *world, id, buyer, seller string, price escrow.Money, sku, item string) {
	f.t.Helper()
	e, err := f.l.Open(f.ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Arbiter: "arb", Price: price, SKU: sku, Item: item})
	repMust(f, "open "+id, e, err)
	e, err = f.l.Pay(f.ctx, id, buyer)
	repMust(f, "pay "+id, e, err)
}

// repTrade runs an escrow to Completed at the clock's time.
func repTrade(f *world, id, buyer, seller string, price escrow.Money) {
	f.t.Helper()
	repOpenPaid(f, id, buyer, seller, price)
	e, err := f.l.Ship(f.ctx, id, seller, "SF"+id)
	repMust(f, "ship "+id, e, err)
	e, err = f.l.Confirm(f.ctx, id, buyer)
	repMust(f, "confirm "+id, e, err)
	if e.State != escrow.Completed {
		f.t.Fatalf("%s is %v after confirm, want Completed", id, e.State)
	}
}

// repResolve runs an escrow through a dispute to Resolved, the buyer
// getting toBuyer fen of the price.
func repResolve(f *world, id, buyer, seller string, price escrow.Money, toBuyer int64) escrow.Escrow {
	f.t.Helper()
	repOpenPaid(f, id, buyer, seller, price)
	e, err := f.l.Dispute(f.ctx, id, buyer, "never arrived")
	repMust(f, "dispute "+id, e, err)
	b, _ := escrow.MoneyFromUnits(toBuyer, price.Currency())
	s, _ := escrow.MoneyFromUnits(price.Units()-toBuyer, price.Currency())
	e, err = f.l.Resolve(f.ctx, id, "arb", escrow.Split{Buyer: b, Seller: s})
	repMust(f, "resolve "+id, e, err)
	return e
}

// repRate rates or fails the test.
func repRate(f *world, id, rater string, score escrow.Score) escrow.Rating {
	f.t.Helper()
	return repRateWith(f, id, rater, escrow.RatingInput{Score: score})
}

func repRateWith(f *world, id, rater string, in escrow.RatingInput) escrow.Rating {
	f.t.Helper()
	r, err := f.l.Rate(f.ctx, id, rater, in)
	if err != nil {
		f.t.Fatalf("Rate(%s, %s, %v): %v", id, rater, in.Score, err)
	}
	return r
}

// repRefused checks that call fails with want and changes nothing.
func repRefused(f *world, what string, want error, call func() error) {
	f.t.Helper()
	before := f.dump()
	err := call()
	if !errors.Is(err, want) {
		f.t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
	f.unchanged(before, what)
}

func repReputation(f *world, party string) escrow.Reputation {
	f.t.Helper()
	r, err := f.l.Reputation(f.ctx, party)
	if err != nil {
		f.t.Fatalf("Reputation(%s): %v", party, err)
	}
	return r
}

func repStored(f *world, id, rater string) escrow.Rating {
	f.t.Helper()
	var r escrow.Rating
	err := f.store.View(f.ctx, func(tx escrow.Tx) error {
		var err error
		r, err = tx.Rating(id, rater)
		return err
	})
	if err != nil {
		f.t.Fatalf("Rating(%s, %s): %v", id, rater, err)
	}
	return r
}

// repPair returns the pair record, zero if there is none.
func repPair(f *world, ratee, rater, month string) escrow.PairMonth {
	f.t.Helper()
	var p escrow.PairMonth
	err := f.store.View(f.ctx, func(tx escrow.Tx) error {
		var err error
		p, err = tx.PairMonth(ratee, rater, month)
		if errors.Is(err, escrow.ErrNotFound) {
			p, err = escrow.PairMonth{Ratee: ratee, Rater: rater, Month: month}, nil
		}
		return err
	})
	if err != nil {
		f.t.Fatalf("PairMonth: %v", err)
	}
	return p
}

func repDiff(t testing.TB, what string, want, got any) {
	t.Helper()
	if diff := cmp.Diff(want, got, repOpts); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// repWeight is a rating's weight: log10(10 + price in major units).
func repWeight(fen int64) float64 { return math.Log10(10 + float64(fen)/100) }

// repWorth is what an ended escrow's ratings are worth, in fen: what it
// released to the seller, or its price if it released nothing.
func repWorth(e escrow.Escrow) int64 {
	if e.Released.IsZero() {
		return e.Price.Units()
	}
	return e.Released.Units()
}

// repWilson is the lower bound of the Wilson score interval, z = 1.96,
// written in the textbook form; exactly 0 when nothing is positive.
func repWilson(pos, n int64) float64 {
	if pos == 0 {
		return 0
	}
	const z = 1.96
	nf := float64(n)
	p := float64(pos) / nf
	return (p + z*z/(2*nf) - z*math.Sqrt((p*(1-p)+z*z/(4*nf))/nf)) / (1 + z*z/nf)
}

// repDecay is λ^(age/30 days) with λ = 0.98.
func repDecay(age time.Duration) float64 {
	return math.Pow(0.98, age.Hours()/(30*24))
}

// repDayNum numbers t's calendar day in loc.
func repDayNum(t time.Time, loc *time.Location) int64 {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func TestReputation(t *testing.T) {
	t.Run("WhoMayRate", func(t *testing.T) { repWhoMayRate(t) })
	t.Run("EndStates", func(t *testing.T) { repEndStates(t) })
	t.Run("Window", func(t *testing.T) { repWindow(t) })
	t.Run("Arguments", func(t *testing.T) { repArguments(t) })
	t.Run("DefaultRating", func(t *testing.T) { repDefaultRating(t) })
	t.Run("Revision", func(t *testing.T) { repRevision(t) })
	t.Run("Reply", func(t *testing.T) { repReply(t) })
	t.Run("Points", func(t *testing.T) { repPoints(t) })
	t.Run("PairCap", func(t *testing.T) { repPairCap(t) })
	t.Run("MinimumValue", func(t *testing.T) { repMinimum(t) })
	t.Run("DisputeLoser", func(t *testing.T) { repDisputeLoser(t) })
	t.Run("Levels", func(t *testing.T) { repLevels(t) })
	t.Run("CountWindows", func(t *testing.T) { repCountWindows(t) })
	t.Run("Scores", func(t *testing.T) { repScores(t) })
	t.Run("TopSellers", func(t *testing.T) { repTopSellers(t) })
	t.Run("StaleClock", func(t *testing.T) { repStaleClock(t) })
}

func repWhoMayRate(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob", "mallory")
	repTrade(f, "e-1", "alice", "bob", cny("100.00"))
	e := escrowNow(f, "e-1")
	if want := start.Add(15 * repDay); !e.RatingDueAt.Equal(want) || e.Rated != 0 {
		t.Fatalf("after completion RatingDueAt %v, Rated %v; want %v and nobody", e.RatingDueAt, e.Rated, want)
	}

	for _, who := range []string{"mallory", "arb", ""} {
		repRefused(f, "Rate by "+strconv.Quote(who), escrow.ErrNotParty, func() error {
			_, err := f.l.Rate(f.ctx, "e-1", who, escrow.RatingInput{Score: escrow.Positive})
			return err
		})
	}
	var re *escrow.RoleError
	if _, err := f.l.Rate(f.ctx, "e-1", "mallory", escrow.RatingInput{Score: escrow.Positive}); !errors.As(err, &re) || re.Actor != "mallory" {
		t.Errorf("Rate by a stranger: %v, want a *RoleError naming mallory", err)
	}
	repRefused(f, "Rate on a missing escrow", escrow.ErrNotFound, func() error {
		_, err := f.l.Rate(f.ctx, "e-404", "alice", escrow.RatingInput{Score: escrow.Positive})
		return err
	})

	f.clock.Advance(time.Hour)
	in := escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Described: 5, Communication: 4, Shipping: 3}, Comment: "as described, 谢谢"}
	got := repRateWith(f, "e-1", "alice", in)
	want := escrow.Rating{Escrow: "e-1", Rater: "alice", Ratee: "bob", RateeRole: escrow.Seller, Score: escrow.Positive,
		Details: in.Details, Comment: in.Comment, At: start.Add(time.Hour), Value: cny("100.00"), Weight: math.Log10(110),
		Counted: true, Points: 1}
	repDiff(t, "the buyer's rating", want, got)
	repDiff(t, "the buyer's rating as stored", want, repStored(f, "e-1", "alice"))
	expectLastEvent(f, eventLine{Type: escrow.RatingGiven, After: time.Hour, Account: "bob", Escrow: "e-1", Actor: "alice",
		State: escrow.Completed, Amount: "0", Fee: "0", Note: "positive"})
	e = escrowNow(f, "e-1")
	if e.Rated != escrow.Buyer || !e.RatingDueAt.Equal(start.Add(15*repDay)) {
		t.Errorf("after the buyer rated: Rated %v, RatingDueAt %v", e.Rated, e.RatingDueAt)
	}
	repRefused(f, "a second rating by the buyer", escrow.ErrAlreadyRated, func() error {
		_, err := f.l.Rate(f.ctx, "e-1", "alice", escrow.RatingInput{Score: escrow.Negative})
		return err
	})

	got = repRate(f, "e-1", "bob", escrow.Negative)
	want = escrow.Rating{Escrow: "e-1", Rater: "bob", Ratee: "alice", RateeRole: escrow.Buyer, Score: escrow.Negative,
		At: start.Add(time.Hour), Value: cny("100.00"), Weight: math.Log10(110), Counted: true, Points: -1}
	repDiff(t, "the seller's rating", want, got)
	e = escrowNow(f, "e-1")
	if e.Rated != escrow.Buyer|escrow.Seller || !e.RatingDueAt.IsZero() {
		t.Errorf("after both rated: Rated %v, RatingDueAt %v; want both and zero", e.Rated, e.RatingDueAt)
	}
	repRefused(f, "a second rating by the seller", escrow.ErrAlreadyRated, func() error {
		_, err := f.l.Rate(f.ctx, "e-1", "bob", escrow.RatingInput{Score: escrow.Positive})
		return err
	})
	f.check()
}

func repEndStates(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
	rate := func(id string) func() error {
		return func() error {
			_, err := f.l.Rate(f.ctx, id, "alice", escrow.RatingInput{Score: escrow.Positive})
			return err
		}
	}
	// Every state before the end.
	e, err := f.l.Open(f.ctx, escrow.Terms{ID: "e-open", Buyer: "alice", Seller: "bob", Arbiter: "arb", Price: cny("10.00"), Item: "x"})
	repMust(f, "open", e, err)
	repRefused(f, "Rate in AwaitingPayment", escrow.ErrInvalidTransition, rate("e-open"))
	repOpenPaid(f, "e-paid", "alice", "bob", cny("10.00"))
	repRefused(f, "Rate in AwaitingShipment", escrow.ErrInvalidTransition, rate("e-paid"))
	repOpenPaid(f, "e-shipped", "alice", "bob", cny("10.00"))
	e, err = f.l.Ship(f.ctx, "e-shipped", "bob", "SF1")
	repMust(f, "ship", e, err)
	repRefused(f, "Rate in AwaitingConfirmation", escrow.ErrInvalidTransition, rate("e-shipped"))
	repOpenPaid(f, "e-asked", "alice", "bob", cny("10.00"))
	e, err = f.l.RequestRefund(f.ctx, "e-asked", "alice", cny("10.00"), "changed my mind")
	repMust(f, "request refund", e, err)
	repRefused(f, "Rate in RefundRequested", escrow.ErrInvalidTransition, rate("e-asked"))
	repOpenPaid(f, "e-disputed", "alice", "bob", cny("10.00"))
	e, err = f.l.Dispute(f.ctx, "e-disputed", "alice", "broken")
	repMust(f, "dispute", e, err)
	repRefused(f, "Rate in Disputed", escrow.ErrInvalidTransition, rate("e-disputed"))
	var te *escrow.TransitionError
	if err := rate("e-disputed")(); !errors.As(err, &te) || te.State != escrow.Disputed || te.Action != escrow.ActionRate {
		t.Errorf("Rate in Disputed: %v, want a *TransitionError in Disputed", err)
	}

	// Refunded and Closed are not rateable by default, and have no window.
	repOpenPaid(f, "e-refunded", "alice", "bob", cny("10.00"))
	e, err = f.l.Refund(f.ctx, "e-refunded", "bob", cny("10.00"))
	repMust(f, "refund", e, err)
	if e.State != escrow.Refunded || !e.RatingDueAt.IsZero() {
		t.Errorf("refunded escrow: %v, RatingDueAt %v; want Refunded with no rating window", e.State, e.RatingDueAt)
	}
	repRefused(f, "Rate in Refunded", escrow.ErrInvalidTransition, rate("e-refunded"))
	e, err = f.l.Cancel(f.ctx, "e-open", "bob")
	repMust(f, "cancel", e, err)
	if !e.RatingDueAt.IsZero() {
		t.Errorf("closed escrow has a rating window until %v", e.RatingDueAt)
	}
	repRefused(f, "Rate in Closed", escrow.ErrInvalidTransition, rate("e-open"))
	// Resolved is, by default.
	repResolve(f, "e-resolved", "alice", "bob", cny("10.00"), 500)
	if r := repRate(f, "e-resolved", "alice", escrow.Positive); !r.Counted || r.Points != 1 {
		t.Errorf("rating of a resolved escrow: counted %v, points %d", r.Counted, r.Points)
	}

	// A policy that adds Refunded makes it rateable, with its window.
	g := repFixture(t, escrow.ReputationPolicy{RateableStates: []escrow.State{escrow.Completed, escrow.Refunded}}, "alice", "bob")
	repOpenPaid(g, "e-refunded", "alice", "bob", cny("10.00"))
	g.clock.Advance(time.Hour)
	e, err = g.l.Refund(g.ctx, "e-refunded", "bob", cny("10.00"))
	repMust(g, "refund", e, err)
	if !e.RatingDueAt.Equal(start.Add(time.Hour + 15*repDay)) {
		t.Errorf("refunded escrow under the policy: RatingDueAt %v, want %v", e.RatingDueAt, start.Add(time.Hour+15*repDay))
	}
	if r := repRate(g, "e-refunded", "alice", escrow.Negative); !r.Counted || r.Points != -1 || r.Ratee != "bob" {
		t.Errorf("rating of a refunded escrow: %+v", r)
	}
	// Resolved was left out of that policy.
	repResolve(g, "e-resolved", "alice", "bob", cny("10.00"), 500)
	repRefused(g, "Rate in Resolved when the policy leaves it out", escrow.ErrInvalidTransition, func() error {
		_, err := g.l.Rate(g.ctx, "e-resolved", "alice", escrow.RatingInput{Score: escrow.Positive})
		return err
	})
	g.check()

	// Closed is never rateable: nothing was paid.
	for _, states := range [][]escrow.State{{escrow.Completed, escrow.Closed}, {escrow.AwaitingConfirmation}} {
		_, err := escrow.New(f.ctx, memstore.New(), &escrow.Options{Reputation: escrow.ReputationPolicy{RateableStates: states}})
		if !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("New with RateableStates %v: %v, want ErrInvalidArgument", states, err)
		}
	}
	f.check()
}

func repWindow(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
	repTrade(f, "e-1", "alice", "bob", cny("10.00"))
	end := start.Add(15 * repDay)
	f.clock.Set(end.Add(-time.Second))
	if r := repRate(f, "e-1", "alice", escrow.Positive); !r.At.Equal(end.Add(-time.Second)) {
		t.Errorf("rating a second before the end: At %v", r.At)
	}
	for _, at := range []time.Time{end, end.Add(time.Second), end.Add(40 * repDay)} {
		f.clock.Set(at)
		repRefused(f, fmt.Sprintf("Rate %v after the end", at.Sub(end)), escrow.ErrRatingClosed, func() error {
			_, err := f.l.Rate(f.ctx, "e-1", "bob", escrow.RatingInput{Score: escrow.Positive})
			return err
		})
	}
	// A custom window.
	g := repFixture(t, escrow.ReputationPolicy{Window: 2 * time.Hour}, "alice", "bob")
	repTrade(g, "e-1", "alice", "bob", cny("10.00"))
	g.clock.Set(start.Add(2*time.Hour - time.Second))
	repRate(g, "e-1", "alice", escrow.Positive)
	g.clock.Set(start.Add(2 * time.Hour))
	repRefused(g, "Rate at the end of a 2-hour window", escrow.ErrRatingClosed, func() error {
		_, err := g.l.Rate(g.ctx, "e-1", "bob", escrow.RatingInput{Score: escrow.Positive})
		return err
	})
}

func repArguments(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
	repTrade(f, "e-1", "alice", "bob", cny("10.00"))
	bad := []struct {
		what  string
		rater string
		in    escrow.RatingInput
	}{
		{"details from the seller", "bob", escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Shipping: 5}}},
		{"a comment of 501 bytes", "alice", escrow.RatingInput{Score: escrow.Positive, Comment: strings.Repeat("x", 501)}},
		{"a comment of invalid UTF-8", "alice", escrow.RatingInput{Score: escrow.Positive, Comment: "fine \xff"}},
		{"a comment with a control character", "alice", escrow.RatingInput{Score: escrow.Positive, Comment: "a\x00b"}},
		{"score 0", "alice", escrow.RatingInput{}},
		{"score 4", "alice", escrow.RatingInput{Score: 4}},
		{"a detail of 6", "alice", escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Described: 6}}},
		{"a negative detail", "alice", escrow.RatingInput{Score: escrow.Positive, Details: escrow.Details{Communication: -1}}},
	}
	for _, b := range bad {
		repRefused(f, "Rate with "+b.what, escrow.ErrInvalidArgument, func() error {
			_, err := f.l.Rate(f.ctx, "e-1", b.rater, b.in)
			return err
		})
	}
	// The limits themselves are accepted: 500 bytes, multi-line, 1 to 5.
	long := strings.Repeat("好", 166) + "ab" // 500 bytes
	r := repRateWith(f, "e-1", "alice", escrow.RatingInput{Score: escrow.Neutral, Comment: long, Details: escrow.Details{Described: 1, Shipping: 5}})
	if r.Comment != long || r.Details != (escrow.Details{Described: 1, Shipping: 5}) {
		t.Errorf("rating at the limits: comment %d bytes, details %+v", len(r.Comment), r.Details)
	}
	r = repRateWith(f, "e-1", "bob", escrow.RatingInput{Score: escrow.Positive, Comment: "line one\nline two\tend"})
	if !r.Counted || r.Points != 1 {
		t.Errorf("seller's rating: %+v", r)
	}
}

func repDefaultRating(t *testing.T) {
	t.Run("OneSideRated", func(t *testing.T) {
		f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
		repTrade(f, "e-1", "alice", "bob", cny("50.00"))
		f.clock.Advance(repDay)
		repRate(f, "e-1", "alice", escrow.Negative)
		end := start.Add(15 * repDay)
		f.clock.Set(end.Add(-time.Second))
		expectFired(f, 0) // and nothing changes

		f.clock.Set(end.Add(3 * time.Hour)) // ProcessDue runs late; the rating is dated at the end
		if n, err := f.l.ProcessDue(f.ctx); err != nil || n != 0 {
			t.Fatalf("ProcessDue closing the window: %d, %v; want 0 (closing is not counted)", n, err)
		}
		want := escrow.Rating{Escrow: "e-1", Rater: "bob", Ratee: "alice", RateeRole: escrow.Buyer, Score: escrow.Positive,
			At: end, Default: true, Value: cny("50.00"), Weight: math.Log10(60), Counted: true, Points: 1}
		repDiff(t, "the default rating", want, repStored(f, "e-1", "bob"))
		expectLastEvent(f, eventLine{Type: escrow.RatingGiven, After: 15*repDay + 3*time.Hour, Account: "alice", Escrow: "e-1",
			ByTimer: true, State: escrow.Completed, Amount: "0", Fee: "0", Note: "positive (default)"})
		e := escrowNow(f, "e-1")
		if e.Rated != escrow.Buyer|escrow.Seller || !e.RatingDueAt.IsZero() {
			t.Errorf("after the default: Rated %v, RatingDueAt %v", e.Rated, e.RatingDueAt)
		}
		rep := repReputation(f, "alice")
		if rep.AsBuyer.Points != 1 || rep.AsBuyer.Total != (escrow.Counts{Positive: 1}) {
			t.Errorf("alice as buyer after the default: points %d, total %+v", rep.AsBuyer.Points, rep.AsBuyer.Total)
		}
		// It is done once; a default rating cannot be revised, and the
		// silent party's own rating now is late, not a second one.
		expectFired(f, 0)
		repRefused(f, "rating after the default", escrow.ErrRatingClosed, func() error {
			_, err := f.l.Rate(f.ctx, "e-1", "bob", escrow.RatingInput{Score: escrow.Negative})
			return err
		})
		repRefused(f, "revising a default rating", escrow.ErrInvalidTransition, func() error {
			_, err := f.l.Revise(f.ctx, "e-1", "bob", escrow.Positive, "")
			return err
		})
		f.check()
	})
	t.Run("NeitherRated", func(t *testing.T) {
		f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
		repTrade(f, "e-1", "alice", "bob", cny("50.00"))
		events := len(eventsAfter(f, 0))
		f.clock.Set(start.Add(15 * repDay))
		if n, err := f.l.ProcessDue(f.ctx); err != nil || n != 0 {
			t.Fatalf("ProcessDue: %d, %v", n, err)
		}
		if got := len(eventsAfter(f, 0)); got != events {
			t.Errorf("closing a window nobody rated in wrote %d events", got-events)
		}
		repNoRatings(f)
		e := escrowNow(f, "e-1")
		if e.Rated != 0 || !e.RatingDueAt.IsZero() {
			t.Errorf("after closing: Rated %v, RatingDueAt %v", e.Rated, e.RatingDueAt)
		}
		repRefused(f, "Rate after the window closed", escrow.ErrRatingClosed, func() error {
			_, err := f.l.Rate(f.ctx, "e-1", "alice", escrow.RatingInput{Score: escrow.Positive})
			return err
		})
		f.check()
	})
	t.Run("NoDefaultRating", func(t *testing.T) {
		f := repFixture(t, escrow.ReputationPolicy{NoDefaultRating: true}, "alice", "bob")
		repTrade(f, "e-1", "alice", "bob", cny("50.00"))
		repRate(f, "e-1", "alice", escrow.Positive)
		f.clock.Set(start.Add(15 * repDay))
		events := len(eventsAfter(f, 0))
		if n, err := f.l.ProcessDue(f.ctx); err != nil || n != 0 {
			t.Fatalf("ProcessDue: %d, %v", n, err)
		}
		if got := len(eventsAfter(f, 0)); got != events {
			t.Errorf("closing the window without a default wrote %d events", got-events)
		}
		if err := f.store.View(f.ctx, func(tx escrow.Tx) error {
			_, err := tx.Rating("e-1", "bob")
			return err
		}); !errors.Is(err, escrow.ErrNotFound) {
			t.Errorf("seller's rating under NoDefaultRating: %v, want none", err)
		}
		if rep := repReputation(f, "alice"); !rep.AsBuyer.Unrated {
			t.Errorf("alice as buyer: %+v, want unrated", rep.AsBuyer)
		}
		e := escrowNow(f, "e-1")
		if e.Rated != escrow.Buyer || !e.RatingDueAt.IsZero() {
			t.Errorf("after closing: Rated %v, RatingDueAt %v", e.Rated, e.RatingDueAt)
		}
		f.check()
	})
}

// repNoRatings fails the test if the store holds any rating.
func repNoRatings(f *world) {
	f.t.Helper()
	err := f.store.View(f.ctx, func(tx escrow.Tx) error {
		return tx.Ratings(func(r escrow.Rating) error { return fmt.Errorf("unexpected rating %+v", r) })
	})
	if err != nil {
		f.t.Error(err)
	}
}

func repRevision(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob", "carol", "mallory")
	repTrade(f, "e-1", "alice", "bob", cny("100.00"))
	repTrade(f, "e-2", "carol", "bob", cny("100.00"))
	repTrade(f, "e-3", "alice", "bob", cny("100.00"))
	neg := repRate(f, "e-1", "alice", escrow.Negative)
	neu := repRate(f, "e-2", "carol", escrow.Neutral)
	pos := repRate(f, "e-3", "alice", escrow.Positive)
	if neg.Points != -1 || neu.Points != 0 || pos.Points != 1 {
		t.Fatalf("points %d, %d, %d; want -1, 0, 1", neg.Points, neu.Points, pos.Points)
	}
	if p := repPair(f, "bob", "alice", "2026-03"); p.Positive != 1 || p.Negative != 1 {
		t.Fatalf("pair before revisions: %+v", p)
	}
	revise := func(id, rater string, s escrow.Score) func() error {
		return func() error { _, err := f.l.Revise(f.ctx, id, rater, s, ""); return err }
	}
	repRefused(f, "revising a neutral downward", escrow.ErrInvalidTransition, revise("e-2", "carol", escrow.Negative))
	repRefused(f, "revising a neutral to neutral", escrow.ErrInvalidTransition, revise("e-2", "carol", escrow.Neutral))
	repRefused(f, "revising a positive", escrow.ErrInvalidTransition, revise("e-3", "alice", escrow.Positive))
	repRefused(f, "revising by a stranger", escrow.ErrNotFound, revise("e-1", "mallory", escrow.Positive))
	repRefused(f, "revising by the ratee", escrow.ErrNotFound, revise("e-1", "bob", escrow.Positive))
	repRefused(f, "revising to score 9", escrow.ErrInvalidArgument, revise("e-1", "alice", 9))

	// At exactly 30 days the negative may still be raised, to neutral.
	f.clock.Set(start.Add(30 * repDay))
	got, err := f.l.Revise(f.ctx, "e-1", "alice", escrow.Neutral, "they made it right")
	if err != nil {
		t.Fatalf("Revise at 30 days: %v", err)
	}
	want := neg
	want.Score, want.Original, want.Revised, want.RevisedAt, want.Comment, want.Points = escrow.Neutral, escrow.Negative, true, start.Add(30*repDay), "they made it right", 0
	repDiff(t, "the revised rating", want, got)
	repDiff(t, "the revised rating as stored", want, repStored(f, "e-1", "alice"))
	expectLastEvent(f, eventLine{Type: escrow.RatingRevised, After: 30 * repDay, Account: "bob", Escrow: "e-1", Actor: "alice",
		State: escrow.Completed, Amount: "0", Fee: "0", Note: "negative to neutral"})
	if p := repPair(f, "bob", "alice", "2026-03"); p.Positive != 1 || p.Negative != 0 {
		t.Errorf("pair after the revision: %+v, want +1/-0", p)
	}
	rep := repReputation(f, "bob").AsSeller
	if rep.Points != 1 || rep.Total != (escrow.Counts{Positive: 1, Neutral: 2}) {
		t.Errorf("bob after the revision: points %d, total %+v; want 1 and 1/2/0", rep.Points, rep.Total)
	}
	// Beta: the negative's weight is gone.
	w := math.Log10(110) * repDecay(30*repDay)
	if want := (1 + w) / (2 + w); math.Abs(rep.Expectation-want) > 1e-12 {
		t.Errorf("bob's expectation after the revision: %v, want %v", rep.Expectation, want)
	}
	repRefused(f, "a second revision", escrow.ErrInvalidTransition, revise("e-1", "alice", escrow.Positive))

	// A second after 30 days is too late.
	f.clock.Set(start.Add(30*repDay + time.Second))
	repRefused(f, "revising after 30 days", escrow.ErrRatingClosed, revise("e-2", "carol", escrow.Positive))

	// Negative straight to positive, within the window: points -1 to +1.
	repTrade(f, "e-4", "carol", "bob", cny("100.00"))
	repRate(f, "e-4", "carol", escrow.Negative)
	before := repReputation(f, "bob").AsSeller
	f.clock.Advance(10 * repDay)
	got, err = f.l.Revise(f.ctx, "e-4", "carol", escrow.Positive, "")
	if err != nil {
		t.Fatalf("Revise negative to positive: %v", err)
	}
	if got.Points != 1 || !got.Counted || got.Comment != "" || got.Original != escrow.Negative {
		t.Errorf("revised to positive: %+v", got)
	}
	after := repReputation(f, "bob").AsSeller
	if after.Points-before.Points != 2 || after.Total.Positive-before.Total.Positive != 1 || after.Total.Negative-before.Total.Negative != -1 {
		t.Errorf("revising negative to positive moved points %d→%d, total %+v→%+v", before.Points, after.Points, before.Total, after.Total)
	}
	if p := repPair(f, "bob", "carol", "2026-03"); p.Positive != 1 || p.Negative != 0 {
		t.Errorf("carol's pair (rating given in March) after the revision: %+v", p)
	}
	if p := repPair(f, "bob", "carol", "2026-04"); p.Positive != 0 || p.Negative != 0 {
		t.Errorf("carol's April pair: %+v, want nothing: the month is the rating's", p)
	}
	f.check()
}

func repReply(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob", "mallory")
	repTrade(f, "e-1", "alice", "bob", cny("10.00"))
	r := repRate(f, "e-1", "alice", escrow.Negative)
	reply := func(actor, text string) func() error {
		return func() error { _, err := f.l.Reply(f.ctx, "e-1", "alice", actor, text); return err }
	}
	repRefused(f, "a reply by the rater", escrow.ErrNotParty, reply("alice", "me too"))
	repRefused(f, "a reply by a stranger", escrow.ErrNotParty, reply("mallory", "spam"))
	repRefused(f, "an empty reply", escrow.ErrInvalidArgument, reply("bob", ""))
	repRefused(f, "a reply of 501 bytes", escrow.ErrInvalidArgument, reply("bob", strings.Repeat("y", 501)))
	repRefused(f, "a reply to no rating", escrow.ErrNotFound, func() error {
		_, err := f.l.Reply(f.ctx, "e-1", "bob", "alice", "there is none")
		return err
	})
	f.clock.Advance(2 * time.Hour)
	got, err := f.l.Reply(f.ctx, "e-1", "alice", "bob", "the courier lost it; refunded")
	if err != nil {
		t.Fatalf("Reply: %v", err)
	}
	want := r
	want.Reply, want.RepliedAt = "the courier lost it; refunded", start.Add(2*time.Hour)
	repDiff(t, "the rating with its reply", want, got)
	repDiff(t, "the rating with its reply as stored", want, repStored(f, "e-1", "alice"))
	expectLastEvent(f, eventLine{Type: escrow.RatingReplied, After: 2 * time.Hour, Account: "alice", Escrow: "e-1", Actor: "bob",
		State: escrow.Completed, Amount: "0", Fee: "0", Note: "the courier lost it; refunded"})
	repRefused(f, "a second reply", escrow.ErrAlreadyRated, reply("bob", "and another thing"))
	// A reply changes no score.
	if rep := repReputation(f, "bob").AsSeller; rep.Points != -1 || rep.Total != (escrow.Counts{Negative: 1}) {
		t.Errorf("bob after the reply: %+v", rep)
	}
	f.check()

	// The reply window: 30 days from the rating by default, here 10; the
	// last nanosecond is inside it.
	for _, tc := range []struct {
		window, wait time.Duration
		want         error
	}{
		{0, 30 * repDay, nil},
		{0, 30*repDay + time.Nanosecond, escrow.ErrRatingClosed},
		{10 * repDay, 10 * repDay, nil},
		{10 * repDay, 10*repDay + time.Nanosecond, escrow.ErrRatingClosed},
	} {
		g := repFixture(t, escrow.ReputationPolicy{ReplyWindow: tc.window}, "alice", "bob")
		repTrade(g, "e-1", "alice", "bob", cny("10.00"))
		r := repRate(g, "e-1", "alice", escrow.Neutral)
		g.clock.Set(r.At.Add(tc.wait))
		late := func() error { _, err := g.l.Reply(g.ctx, "e-1", "alice", "bob", "sorry"); return err }
		if tc.want != nil {
			repRefused(g, fmt.Sprintf("a reply %s after the rating, window %s", tc.wait, tc.window), tc.want, late)
			continue
		}
		if err := late(); err != nil {
			t.Errorf("a reply %s after the rating, window %s: %v", tc.wait, tc.window, err)
		}
	}
	if _, err := escrow.New(context.Background(), memstore.New(), &escrow.Options{
		Reputation: escrow.ReputationPolicy{ReplyWindow: -time.Hour}}); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("a negative ReplyWindow: %v, want an invalid argument", err)
	}
}

func repPoints(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "b1", "b2", "b3", "bob")
	for i, s := range []escrow.Score{escrow.Positive, escrow.Neutral, escrow.Negative} {
		id := fmt.Sprintf("e-%d", i+1)
		buyer := fmt.Sprintf("b%d", i+1)
		repTrade(f, id, buyer, "bob", cny("10.00"))
		r := repRate(f, id, buyer, s)
		if want := []int64{1, 0, -1}[i]; r.Points != want || !r.Counted || r.Reason != "" {
			t.Errorf("%v rating: counted %v, points %d, reason %q; want %d", s, r.Counted, r.Points, r.Reason, want)
		}
	}
	rep := repReputation(f, "bob").AsSeller
	if rep.Points != 0 || rep.Total != (escrow.Counts{Positive: 1, Neutral: 1, Negative: 1}) || rep.Unrated {
		t.Errorf("bob: points %d, total %+v, unrated %v; want 0, 1/1/1, rated", rep.Points, rep.Total, rep.Unrated)
	}
	// Custom points.
	g := repFixture(t, escrow.ReputationPolicy{Points: &[3]int64{2, 0, -3}, PairCap: 4}, "alice", "bob")
	for i, s := range []escrow.Score{escrow.Positive, escrow.Positive, escrow.Positive, escrow.Negative, escrow.Negative} {
		id := fmt.Sprintf("e-%d", i+1)
		repTrade(g, id, "alice", "bob", cny("10.00"))
		r := repRate(g, id, "alice", s)
		// +2, +2, then +2 would pass the cap of 4; -3, then -3 would.
		wantCounted := i != 2 && i != 4
		if r.Counted != wantCounted || (!wantCounted && r.Reason != escrow.ReasonPairCap) {
			t.Errorf("custom points, rating %d (%v): counted %v, reason %q", i+1, s, r.Counted, r.Reason)
		}
	}
	if rep := repReputation(g, "bob").AsSeller; rep.Points != 1 {
		t.Errorf("custom points: bob has %d, want 2+2-3 = 1", rep.Points)
	}
	g.check()
}

func repPairCap(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	for _, tc := range []struct {
		name string
		loc  *time.Location
		// Counted and month of the ratings at Mar 31 15:59, 16:00, 23:59
		// and Apr 1 00:00 UTC, after six positives earlier in March.
		counted []bool
		april   int64
	}{
		{"UTC", nil, []bool{false, false, false, true}, 1},
		{"CST", cst, []bool{false, true, true, true}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := repFixture(t, escrow.ReputationPolicy{Location: tc.loc}, "alice", "bob", "carol", "dan")
			f.clock.Set(time.Date(2026, 3, 20, 9, 0, 0, 0, time.UTC))
			for i := 1; i <= 10; i++ {
				repTrade(f, fmt.Sprintf("a-%02d", i), "alice", "bob", cny("10.00"))
			}
			for i := 1; i <= 6; i++ {
				if r := repRate(f, fmt.Sprintf("a-%02d", i), "alice", escrow.Positive); !r.Counted || r.Points != 1 {
					t.Fatalf("positive %d of the month: counted %v, points %d", i, r.Counted, r.Points)
				}
			}
			if p := repPair(f, "bob", "alice", "2026-03"); p.Positive != 6 || p.Negative != 0 {
				t.Errorf("pair after six positives: %+v", p)
			}
			// Another buyer's positives have their own cap.
			repTrade(f, "d-1", "dan", "bob", cny("10.00"))
			if r := repRate(f, "d-1", "dan", escrow.Positive); !r.Counted {
				t.Errorf("dan's positive: %+v", r)
			}
			// Negatives are capped apart from positives: six count, the
			// seventh does not; neutrals always count.
			for i := 1; i <= 8; i++ {
				repTrade(f, fmt.Sprintf("c-%d", i), "carol", "bob", cny("10.00"))
			}
			for i := 1; i <= 7; i++ {
				r := repRate(f, fmt.Sprintf("c-%d", i), "carol", escrow.Negative)
				if want := i <= 6; r.Counted != want || (i == 7 && (r.Reason != escrow.ReasonPairCap || r.Points != 0)) {
					t.Errorf("negative %d of the month: counted %v, reason %q, points %d", i, r.Counted, r.Reason, r.Points)
				}
			}
			if r := repRate(f, "c-8", "carol", escrow.Neutral); !r.Counted || r.Points != 0 {
				t.Errorf("a neutral past the negative cap: %+v", r)
			}
			if p := repPair(f, "bob", "carol", "2026-03"); p.Positive != 0 || p.Negative != 6 {
				t.Errorf("carol's pair: %+v, want -6", p)
			}

			// The month boundary, where the location puts it.
			times := []time.Time{
				time.Date(2026, 3, 31, 15, 59, 0, 0, time.UTC),
				time.Date(2026, 3, 31, 16, 0, 0, 0, time.UTC),
				time.Date(2026, 3, 31, 23, 59, 0, 0, time.UTC),
				time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
			}
			counted := int64(0)
			for i, at := range times {
				f.clock.Set(at)
				r := repRate(f, fmt.Sprintf("a-%02d", 7+i), "alice", escrow.Positive)
				if r.Counted != tc.counted[i] {
					t.Errorf("positive at %v: counted %v, want %v", at, r.Counted, tc.counted[i])
				}
				if r.Counted {
					counted++
				} else if r.Reason != escrow.ReasonPairCap || r.Points != 0 {
					t.Errorf("capped positive at %v: reason %q, points %d", at, r.Reason, r.Points)
				}
			}
			if p := repPair(f, "bob", "alice", "2026-03"); p.Positive != 6 {
				t.Errorf("alice's March: %+v, want +6", p)
			}
			if p := repPair(f, "bob", "alice", "2026-04"); p.Positive != tc.april {
				t.Errorf("alice's April: %+v, want +%d", p, tc.april)
			}
			rep := repReputation(f, "bob").AsSeller
			// alice 6 + counted, dan 1, carol -6 (and a neutral).
			wantPoints := 6 + counted + 1 - 6
			if rep.Points != wantPoints || rep.Total != (escrow.Counts{Positive: 7 + counted, Neutral: 1, Negative: 6}) {
				t.Errorf("bob: points %d, total %+v; want %d", rep.Points, rep.Total, wantPoints)
			}
			f.check()
		})
	}
}

// TestCountedRatingInTranchesPaysNoFee: the fee of each tranche of a
// milestone escrow is rounded on its own, so a price just over the
// minimum, released in two tranches whose fees round to nothing, buys a
// counted rating for no fee at all: less than the fee on the cheapest
// price that counts, which one release pays.
func TestCountedRatingInTranchesPaysNoFee(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "ring-buyer", "ring-shop")
	repTrade(f, "whole", "ring-buyer", "ring-shop", cny("1.01"))
	_, err := f.l.Open(f.ctx, escrow.Terms{ID: "tranches", Buyer: "ring-buyer", Seller: "ring-shop", Price: cny("1.01"),
		Item: "teapot tranches", Milestones: []escrow.Milestone{{Name: "half", Amount: cny("0.51")}, {Name: "rest", Amount: cny("0.50")}}})
	f.must("Open", err)
	_, err = f.l.Pay(f.ctx, "tranches", "ring-buyer")
	f.must("Pay", err)
	_, err = f.l.Ship(f.ctx, "tranches", "ring-shop", "")
	f.must("Ship", err)
	var e escrow.Escrow
	for n := range 2 {
		e, err = f.l.ConfirmMilestone(f.ctx, "tranches", "ring-buyer", n)
		f.must("ConfirmMilestone", err)
	}
	whole, err := f.l.Escrow(f.ctx, "whole")
	f.must("Escrow", err)
	if whole.Fees != cny("0.01") || e.State != escrow.Completed || e.Released != cny("1.01") || !e.Fees.IsZero() {
		t.Fatalf("fees %s in one release, %s in two (%s, released %s); want 0.01 CNY and none", whole.Fees, e.Fees, e.State, e.Released)
	}
	for _, id := range []string{"whole", "tranches"} {
		if r := repRate(f, id, "ring-buyer", escrow.Positive); !r.Counted || r.Points != 1 || r.Value != cny("1.01") {
			t.Errorf("the rating of %q: %+v, want it counted at 1.01 CNY", id, r)
		}
	}
	f.check()
}

func repMinimum(t *testing.T) {
	// By default a price must pass the minimum: 1.00 CNY scores nothing,
	// 1.01 does; 1 JPY scores nothing, 2 JPY does.
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob", "sam")
	if _, err := f.l.Deposit(f.ctx, "alice", escrow.MustParseMoney("100", escrow.JPY)); err != nil {
		t.Fatal(err)
	}
	repTrade(f, "e-100", "alice", "sam", cny("1.00"))
	repTrade(f, "e-101", "alice", "bob", cny("1.01"))
	repTrade(f, "e-jpy1", "alice", "sam", escrow.MustParseMoney("1", escrow.JPY))
	repTrade(f, "e-jpy2", "alice", "bob", escrow.MustParseMoney("2", escrow.JPY))
	r := repRate(f, "e-100", "alice", escrow.Positive)
	want := escrow.Rating{Escrow: "e-100", Rater: "alice", Ratee: "sam", RateeRole: escrow.Seller, Score: escrow.Positive,
		At: start, Value: cny("1.00"), Weight: math.Log10(11), Reason: escrow.ReasonBelowMinimum}
	repDiff(t, "a rating of a 1.00 CNY escrow", want, r)
	if r := repRate(f, "e-101", "alice", escrow.Positive); !r.Counted || r.Points != 1 {
		t.Errorf("1.01 CNY: %+v", r)
	}
	if r := repRate(f, "e-jpy1", "alice", escrow.Positive); r.Counted || r.Reason != escrow.ReasonBelowMinimum {
		t.Errorf("1 JPY: %+v", r)
	}
	if r := repRate(f, "e-jpy2", "alice", escrow.Positive); !r.Counted || r.Points != 1 || r.Weight != math.Log10(12) {
		t.Errorf("2 JPY: %+v", r)
	}
	// A party whose only ratings do not count is unrated.
	repDiff(t, "sam", escrow.Reputation{Party: "sam",
		AsSeller: escrow.View{Role: escrow.Seller, Unrated: true, Level: escrow.Level{Name: "None"}},
		AsBuyer:  escrow.View{Role: escrow.Buyer, Unrated: true, Level: escrow.Level{Name: "None"}}}, repReputation(f, "sam"))
	if rep := repReputation(f, "bob").AsSeller; rep.Points != 2 || rep.Total.Positive != 2 {
		t.Errorf("bob: %+v", rep)
	}
	f.check()

	// At least the minimum: 1.00 counts, 0.99 does not.
	h := repFixture(t, escrow.ReputationPolicy{MinValueRule: escrow.AtLeastMinValue}, "alice", "bob")
	repTrade(h, "e-099", "alice", "bob", cny("0.99"))
	repTrade(h, "e-100", "alice", "bob", cny("1.00"))
	if r := repRate(h, "e-099", "alice", escrow.Positive); r.Counted || r.Reason != escrow.ReasonBelowMinimum {
		t.Errorf("0.99 at least 1: %+v", r)
	}
	if r := repRate(h, "e-100", "alice", escrow.Positive); !r.Counted || r.Points != 1 {
		t.Errorf("1.00 at least 1: %+v", r)
	}
	h.check()

	// A higher minimum, and one between two minor units, under each rule.
	for _, tc := range []struct {
		rule                escrow.MinValueRule
		min, below, counted string
	}{
		{escrow.AboveMinValue, "10", "10.00", "10.01"},
		{escrow.AtLeastMinValue, "10", "9.99", "10.00"},
		{escrow.AboveMinValue, "10.005", "10.00", "10.01"},
		{escrow.AtLeastMinValue, "10.005", "10.00", "10.01"},
	} {
		g := repFixture(t, escrow.ReputationPolicy{MinValue: decimal.RequireFromString(tc.min), MinValueRule: tc.rule}, "alice", "bob")
		repTrade(g, "e-below", "alice", "bob", cny(tc.below))
		repTrade(g, "e-counted", "alice", "bob", cny(tc.counted))
		if r := repRate(g, "e-below", "alice", escrow.Negative); r.Counted || r.Reason != escrow.ReasonBelowMinimum || r.Points != 0 {
			t.Errorf("%s under a minimum of %s (rule %d): %+v", tc.below, tc.min, tc.rule, r)
		}
		if r := repRate(g, "e-counted", "alice", escrow.Negative); !r.Counted || r.Points != -1 {
			t.Errorf("%s under a minimum of %s (rule %d): %+v", tc.counted, tc.min, tc.rule, r)
		}
		// A below-minimum rating does not use up the pair's cap either.
		if p := repPair(g, "bob", "alice", "2026-03"); p.Negative != 1 {
			t.Errorf("pair: %+v, want -1", p)
		}
		g.check()
	}

	// What counts is what the trade released to the seller, not its
	// price: a seller who refunds all but a cent before the buyer confirms
	// pays the fee on a cent, and its rating weighs as a cent.
	g := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
	for _, tc := range []struct {
		id              string
		price, refunded string
		counted         bool
		value           int64 // fen
	}{
		{"e-cent-left", "900.00", "899.99", false, 1},
		{"e-minimum-left", "900.00", "899.00", false, 100},
		{"e-part-refunded", "100.00", "40.00", true, 6000},
	} {
		repOpenPaid(g, tc.id, "alice", "bob", cny(tc.price))
		e, err := g.l.Refund(g.ctx, tc.id, "bob", cny(tc.refunded))
		repMust(g, "refund "+tc.id, e, err)
		e, err = g.l.Ship(g.ctx, tc.id, "bob", "SF"+tc.id)
		repMust(g, "ship "+tc.id, e, err)
		e, err = g.l.Confirm(g.ctx, tc.id, "alice")
		repMust(g, "confirm "+tc.id, e, err)
		for _, rater := range []string{"alice", "bob"} {
			r := repRate(g, tc.id, rater, escrow.Positive)
			if r.Counted != tc.counted || r.Value != fen(tc.value) || r.Weight != repWeight(tc.value) {
				t.Errorf("%s rated by %s: counted %v, value %v, weight %v; want %v, %d fen, %v",
					tc.id, rater, r.Counted, r.Value, r.Weight, tc.counted, tc.value, repWeight(tc.value))
			}
			if !tc.counted && r.Reason != escrow.ReasonBelowMinimum {
				t.Errorf("%s rated by %s: reason %q", tc.id, rater, r.Reason)
			}
		}
	}
	if rep := repReputation(g, "bob").AsSeller; rep.Points != 1 {
		t.Errorf("bob after one counted rating: %+v", rep)
	}
	// An escrow that released nothing is worth its price, but no positive
	// rating of it counts, since none cost a fee: an arbiter the parties
	// named could otherwise resolve a ring's orders wholly for the buyer
	// and the ratings would count for nothing. A negative still counts.
	repResolve(g, "e-all-back", "alice", "bob", cny("900.00"), 90000)
	r = repRate(g, "e-all-back", "alice", escrow.Positive)
	if r.Counted || r.Reason != escrow.ReasonBelowMinimum || r.Value != cny("900.00") {
		t.Errorf("a positive of an escrow that released nothing: %+v", r)
	}
	repResolve(g, "e-all-back-2", "alice", "bob", cny("900.00"), 90000)
	if r := repRate(g, "e-all-back-2", "alice", escrow.Negative); !r.Counted || r.Weight != repWeight(90000) {
		t.Errorf("a negative of an escrow that released nothing: %+v", r)
	}
	// Revised upward, it no longer counts.
	r, err := g.l.Revise(g.ctx, "e-all-back-2", "alice", escrow.Positive, "sorted out")
	if err != nil || r.Counted || r.Reason != escrow.ReasonBelowMinimum {
		t.Errorf("the negative revised to a positive: %+v, %v", r, err)
	}
	g.check()

	// A rule that is not one is refused.
	if _, err := escrow.New(context.Background(), memstore.New(), &escrow.Options{
		Reputation: escrow.ReputationPolicy{MinValueRule: 2}}); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("MinValueRule 2: %v, want an invalid argument", err)
	}
}

func repDisputeLoser(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
	e := repResolve(f, "e-buyer-lost", "alice", "bob", cny("100.00"), 2000) // buyer gets 20.00
	if e.DisputeLoser != escrow.Buyer || !e.RatingDueAt.Equal(start.Add(15*repDay)) {
		t.Fatalf("resolved: loser %v, RatingDueAt %v", e.DisputeLoser, e.RatingDueAt)
	}
	r := repRate(f, "e-buyer-lost", "alice", escrow.Negative)
	if r.Counted || r.Reason != escrow.ReasonDisputeLost || r.Points != 0 {
		t.Errorf("the loser's rating: %+v", r)
	}
	if r := repRate(f, "e-buyer-lost", "bob", escrow.Negative); !r.Counted || r.Points != -1 {
		t.Errorf("the winner's rating: %+v", r)
	}
	e = repResolve(f, "e-even", "alice", "bob", cny("100.00"), 5000)
	if e.DisputeLoser != 0 {
		t.Errorf("an even split has loser %v", e.DisputeLoser)
	}
	if r := repRate(f, "e-even", "alice", escrow.Negative); !r.Counted {
		t.Errorf("rating after an even split: %+v", r)
	}
	e = repResolve(f, "e-seller-lost", "alice", "bob", cny("100.00"), 10000)
	if e.DisputeLoser != escrow.Seller {
		t.Errorf("all to the buyer: loser %v", e.DisputeLoser)
	}
	if r := repRate(f, "e-seller-lost", "bob", escrow.Negative); r.Counted || r.Reason != escrow.ReasonDisputeLost {
		t.Errorf("the losing seller's rating: %+v", r)
	}
	// The winner's positive does not count either: the escrow released
	// nothing, so it cost no fee (see MinimumValue).
	if r := repRate(f, "e-seller-lost", "alice", escrow.Positive); r.Counted || r.Reason != escrow.ReasonBelowMinimum {
		t.Errorf("the winning buyer's rating: %+v", r)
	}
	rep := repReputation(f, "bob").AsSeller
	if rep.Points != -1 || rep.Total != (escrow.Counts{Negative: 1}) {
		t.Errorf("bob as seller: points %d, total %+v", rep.Points, rep.Total)
	}
	if rep := repReputation(f, "alice").AsBuyer; rep.Points != -1 || rep.Total != (escrow.Counts{Negative: 1}) {
		t.Errorf("alice as buyer: points %d, total %+v", rep.Points, rep.Total)
	}
	f.check()

	g := repFixture(t, escrow.ReputationPolicy{CountDisputeLosers: true}, "alice", "bob")
	repResolve(g, "e-1", "alice", "bob", cny("100.00"), 0)
	if r := repRate(g, "e-1", "alice", escrow.Negative); !r.Counted || r.Points != -1 || r.Reason != "" {
		t.Errorf("the loser's rating under CountDisputeLosers: %+v", r)
	}
	g.check()
}

func repLevels(t *testing.T) {
	// The table of the issue, range by range.
	table := []struct {
		lo, hi int64
		name   string
		tier   int
	}{
		{4, 10, "Heart", 1}, {11, 40, "Heart", 2}, {41, 90, "Heart", 3}, {91, 150, "Heart", 4}, {151, 250, "Heart", 5},
		{251, 500, "Diamond", 1}, {501, 1000, "Diamond", 2}, {1001, 2000, "Diamond", 3}, {2001, 5000, "Diamond", 4}, {5001, 10000, "Diamond", 5},
		{10001, 20000, "Crown", 1}, {20001, 50000, "Crown", 2}, {50001, 100000, "Crown", 3}, {100001, 200000, "Crown", 4}, {200001, 500000, "Crown", 5},
		{500001, 1000000, "Gold crown", 1}, {1000001, 2000000, "Gold crown", 2}, {2000001, 5000000, "Gold crown", 3},
		{5000001, 10000000, "Gold crown", 4}, {10000001, math.MaxInt64, "Gold crown", 5},
	}
	none := escrow.Level{Name: "None"}
	for _, p := range []int64{math.MinInt64, -6, 0, 1, 3} {
		if got := escrow.LevelFor(p); got != none || got.String() != "None" {
			t.Errorf("LevelFor(%d) = %+v, want None", p, got)
		}
	}
	for i, row := range table {
		want := escrow.Level{Name: row.name, Tier: row.tier}
		for _, p := range []int64{row.lo, row.lo + 1, row.lo + (row.hi-row.lo)/2, row.hi} {
			if got := escrow.LevelFor(p); got != want {
				t.Errorf("LevelFor(%d) = %+v, want %+v", p, got, want)
			}
		}
		below := none
		if i > 0 {
			below = escrow.Level{Name: table[i-1].name, Tier: table[i-1].tier}
		}
		if got := escrow.LevelFor(row.lo - 1); got != below {
			t.Errorf("LevelFor(%d) = %+v, want %+v", row.lo-1, got, below)
		}
	}
	if s := escrow.LevelFor(500001).String(); s != "Gold crown 1" {
		t.Errorf("LevelFor(500001).String() = %q", s)
	}

	// Through the ledger: 3 points is no level, the 4th makes Heart 1.
	f := repFixture(t, escrow.ReputationPolicy{}, "alice", "bob")
	for i := 1; i <= 4; i++ {
		id := fmt.Sprintf("e-%d", i)
		repTrade(f, id, "alice", "bob", cny("10.00"))
		repRate(f, id, "alice", escrow.Positive)
		want := none
		if i == 4 {
			want = escrow.Level{Name: "Heart", Tier: 1}
		}
		if got := repReputation(f, "bob").AsSeller.Level; got != want {
			t.Errorf("level at %d points: %+v, want %+v", i, got, want)
		}
	}
}

// repRated is a rating the count-window test gave, to work out what
// each window must hold.
type repRated struct {
	at    time.Time
	score escrow.Score
}

// repCounts counts, independently of the ledger, the ratings whose
// calendar day is within days of today's, today included.
func repCounts(rs []repRated, now time.Time, days int64, loc *time.Location) escrow.Counts {
	var c escrow.Counts
	today := repDayNum(now, loc)
	for _, r := range rs {
		age := today - repDayNum(r.at, loc)
		if age < 0 || age >= days {
			continue
		}
		switch r.score {
		case escrow.Positive:
			c.Positive++
		case escrow.Neutral:
			c.Neutral++
		case escrow.Negative:
			c.Negative++
		}
	}
	return c
}

func repCountWindows(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "b1", "b2", "b3", "b4", "bob")
	// Ratings at these times, each right after its trade.
	plan := []struct {
		at    time.Time
		buyer string
		score escrow.Score
	}{
		{start, "b1", escrow.Positive},                                           // Mar 1 09:00
		{time.Date(2026, 3, 4, 22, 0, 0, 0, time.UTC), "b2", escrow.Negative},    // Mar 4
		{time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC), "b3", escrow.Neutral},     // Apr 10, midnight
		{time.Date(2026, 4, 10, 23, 59, 59, 0, time.UTC), "b4", escrow.Positive}, // Apr 10, a second before the next day
	}
	var given []repRated
	next := 0
	check := func(now time.Time) {
		t.Helper()
		v := repReputation(f, "bob").AsSeller
		want := [4]escrow.Counts{}
		for i, d := range []int64{7, 30, 180, 365} {
			want[i] = repCounts(given, now, d, time.UTC)
		}
		got := [4]escrow.Counts{v.Last7, v.Last30, v.Last180, v.Last365}
		if got != want {
			t.Fatalf("at %v: Last7/30/180/365 = %+v, want %+v", now, got, want)
		}
		rate := want[2]
		basis := rate.Positive + rate.Negative
		wantRate := 0.0
		if basis > 0 {
			wantRate = float64(rate.Positive) / float64(basis)
		}
		if v.RateBasis != basis || v.PositiveRate != wantRate || math.Abs(v.Wilson-repWilson(rate.Positive, basis)) > 1e-12 {
			t.Fatalf("at %v: rate %v over %d, Wilson %v; want %v over %d, %v", now, v.PositiveRate, v.RateBasis, v.Wilson,
				wantRate, basis, repWilson(rate.Positive, basis))
		}
		total := repCounts(given, now, 1<<40, time.UTC)
		if v.Total != total || v.Unrated != (len(given) == 0) {
			t.Fatalf("at %v: total %+v, unrated %v; want %+v", now, v.Total, v.Unrated, total)
		}
	}
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for d := 0; d <= 400; d++ {
		for _, at := range []time.Time{day0.Add(time.Duration(d) * repDay), day0.Add(time.Duration(d)*repDay + repDay - time.Second)} {
			for next < len(plan) && !plan[next].at.After(at) {
				p := plan[next]
				f.clock.Set(p.at)
				id := fmt.Sprintf("e-%d", next)
				repTrade(f, id, p.buyer, "bob", cny("10.00"))
				repRate(f, id, p.buyer, p.score)
				given = append(given, repRated{p.at, p.score})
				next++
				check(p.at)
			}
			f.clock.Set(at)
			check(at)
		}
	}
	// Spot checks of the boundaries, with the numbers written out.
	spot := func(at time.Time, last7, last30 escrow.Counts) {
		t.Helper()
		// The ledger reads the clock; views are as of now, so set it.
		f2 := repFixture(t, escrow.ReputationPolicy{}, "b1", "b2", "bob")
		f2.clock.Set(start)
		repTrade(f2, "e-1", "b1", "bob", cny("10.00"))
		repRate(f2, "e-1", "b1", escrow.Positive)
		f2.clock.Set(time.Date(2026, 3, 4, 22, 0, 0, 0, time.UTC))
		repTrade(f2, "e-2", "b2", "bob", cny("10.00"))
		repRate(f2, "e-2", "b2", escrow.Negative)
		f2.clock.Set(at)
		v := repReputation(f2, "bob").AsSeller
		if v.Last7 != last7 || v.Last30 != last30 {
			t.Errorf("at %v: Last7 %+v, Last30 %+v; want %+v, %+v", at, v.Last7, v.Last30, last7, last30)
		}
	}
	both := escrow.Counts{Positive: 1, Negative: 1}
	spot(time.Date(2026, 3, 7, 23, 59, 59, 0, time.UTC), both, both)
	spot(time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC), escrow.Counts{Negative: 1}, both)
	spot(time.Date(2026, 3, 10, 23, 59, 59, 0, time.UTC), escrow.Counts{Negative: 1}, both)
	spot(time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC), escrow.Counts{}, both)
	spot(time.Date(2026, 3, 30, 23, 0, 0, 0, time.UTC), escrow.Counts{}, both)
	spot(time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), escrow.Counts{}, escrow.Counts{Negative: 1})
}

// repScored is one rating of the scores test, as the test expects it.
type repScored struct {
	buyer   string
	after   time.Duration
	fen     int64
	score   escrow.Score
	details escrow.Details
	counted bool
}

func repScores(t *testing.T) {
	plan := []repScored{
		{"b1", 0, 10000, escrow.Positive, escrow.Details{Described: 5, Communication: 4}, true},
		{"b2", 10 * repDay, 3550, escrow.Negative, escrow.Details{Described: 2, Shipping: 1}, true},
		{"b3", 40 * repDay, 99000, escrow.Neutral, escrow.Details{Described: 4, Communication: 5, Shipping: 4}, true},
		{"b4", 41 * repDay, 99, escrow.Positive, escrow.Details{Described: 1, Communication: 1, Shipping: 1}, false},
		{"b5", 200*repDay + 7*time.Hour, 1234, escrow.Positive, escrow.Details{}, true},
	}
	f := repFixture(t, escrow.ReputationPolicy{}, "b1", "b2", "b3", "b4", "b5", "bob", "s9")
	// bob also buys, and is rated as a buyer.
	repTrade(f, "e-bob-buys", "bob", "s9", cny("20.00"))
	f.clock.Advance(time.Hour)
	repRate(f, "e-bob-buys", "s9", escrow.Negative)
	var ratings []escrow.Rating
	for i, p := range plan {
		f.clock.Set(start.Add(p.after))
		id := fmt.Sprintf("e-%d", i+1)
		m, _ := escrow.MoneyFromUnits(p.fen, escrow.CNY)
		repTrade(f, id, p.buyer, "bob", m)
		r := repRateWith(f, id, p.buyer, escrow.RatingInput{Score: p.score, Details: p.details})
		if r.Counted != p.counted {
			t.Fatalf("rating %d: counted %v, want %v", i+1, r.Counted, p.counted)
		}
		ratings = append(ratings, r)
	}

	// expect works the seller view out from the plan.
	expect := func(now time.Time) escrow.View {
		v := escrow.View{Role: escrow.Seller}
		alpha, beta := 1.0, 1.0
		var rated []repRated
		for _, p := range plan {
			if !p.counted {
				continue
			}
			at := start.Add(p.after)
			rated = append(rated, repRated{at, p.score})
			w := repWeight(p.fen) * repDecay(now.Sub(at))
			switch p.score {
			case escrow.Positive:
				v.Points++
				alpha += w
			case escrow.Negative:
				v.Points--
				beta += w
			}
		}
		v.Level = escrow.LevelFor(v.Points)
		v.Total = repCounts(rated, now, 1<<40, time.UTC)
		v.Last7, v.Last30 = repCounts(rated, now, 7, time.UTC), repCounts(rated, now, 30, time.UTC)
		v.Last180, v.Last365 = repCounts(rated, now, 180, time.UTC), repCounts(rated, now, 365, time.UTC)
		v.RateBasis = v.Last180.Positive + v.Last180.Negative
		if v.RateBasis > 0 {
			v.PositiveRate = float64(v.Last180.Positive) / float64(v.RateBasis)
		}
		v.Wilson = repWilson(v.Last180.Positive, v.RateBasis)
		v.Expectation, v.Uncertainty = alpha/(alpha+beta), 2/(alpha+beta)
		// Details of counted ratings in the last 180 days only: all
		// three would give (5+2+4)/3, (4+5)/2, (1+4)/2.
		var sums, counts [3]float64
		for _, p := range plan {
			if age := repDayNum(now, time.UTC) - repDayNum(start.Add(p.after), time.UTC); p.counted && age < 180 {
				for i, d := range []int8{p.details.Described, p.details.Communication, p.details.Shipping} {
					if d != 0 {
						sums[i] += float64(d)
						counts[i]++
					}
				}
			}
		}
		avg := func(i int) float64 {
			if counts[i] == 0 {
				return 0
			}
			return sums[i] / counts[i]
		}
		v.Described, v.Communication, v.Shipping = avg(0), avg(1), avg(2)
		return v
	}
	buyerView := func(now time.Time) escrow.View {
		w := repWeight(2000) * repDecay(now.Sub(start.Add(time.Hour)))
		return escrow.View{Role: escrow.Buyer, Points: -1, Level: escrow.Level{Name: "None"},
			Total: escrow.Counts{Negative: 1}, Last7: repCounts([]repRated{{start.Add(time.Hour), escrow.Negative}}, now, 7, time.UTC),
			Last30:      repCounts([]repRated{{start.Add(time.Hour), escrow.Negative}}, now, 30, time.UTC),
			Last180:     repCounts([]repRated{{start.Add(time.Hour), escrow.Negative}}, now, 180, time.UTC),
			Last365:     repCounts([]repRated{{start.Add(time.Hour), escrow.Negative}}, now, 365, time.UTC),
			Expectation: 1 / (2 + w), Uncertainty: 2 / (2 + w)}
	}
	for _, now := range []time.Time{
		start.Add(200*repDay + 7*time.Hour),
		start.Add(200*repDay + 23*time.Hour),
		start.Add(379 * repDay),
		start.Add(700 * repDay),
	} {
		f.clock.Set(now)
		rep := repReputation(f, "bob")
		want := expect(now)
		bv := buyerView(now)
		if now.Sub(start) < 180*repDay {
			bv.RateBasis, bv.Wilson = 1, 0
		}
		repDiff(t, fmt.Sprintf("bob as seller at %v", now), want, rep.AsSeller)
		repDiff(t, fmt.Sprintf("bob as buyer at %v", now), bv, rep.AsBuyer)
	}
	// Written-out figures at day 45, with the weights worked by hand:
	// w1 = log10(110) · 0.98^(45/30), w2 = log10(45.5) · 0.98^(35/30).
	g := repFixture(t, escrow.ReputationPolicy{}, "b1", "b2", "bob")
	for i, p := range plan[:2] {
		g.clock.Set(start.Add(p.after))
		id := fmt.Sprintf("e-%d", i+1)
		m, _ := escrow.MoneyFromUnits(p.fen, escrow.CNY)
		repTrade(g, id, p.buyer, "bob", m)
		repRateWith(g, id, p.buyer, escrow.RatingInput{Score: p.score, Details: p.details})
	}
	g.clock.Set(start.Add(45 * repDay))
	v := repReputation(g, "bob").AsSeller
	w1 := math.Log10(110) * math.Pow(0.98, 1.5)
	w2 := math.Log10(45.5) * math.Pow(0.98, 35.0/30)
	if v.PositiveRate != 0.5 || v.RateBasis != 2 || v.Points != 0 {
		t.Errorf("day 45: rate %v over %d, points %d; want 0.5 over 2, 0", v.PositiveRate, v.RateBasis, v.Points)
	}
	// Wilson for 1 of 2: (0.5 + 0.9604 − 1.96·√(0.125 + 0.2401)) / 2.9208.
	if want := (0.5 + 0.9604 - 1.96*math.Sqrt(0.125+0.2401)) / 2.9208; math.Abs(v.Wilson-want) > 1e-12 {
		t.Errorf("day 45: Wilson %v, want %v", v.Wilson, want)
	}
	if want := (1 + w1) / (2 + w1 + w2); math.Abs(v.Expectation-want) > 1e-12 || math.Abs(v.Uncertainty-2/(2+w1+w2)) > 1e-12 {
		t.Errorf("day 45: expectation %v, uncertainty %v; want %v, %v", v.Expectation, v.Uncertainty, want, 2/(2+w1+w2))
	}
	if v.Described != 3.5 || v.Communication != 4 || v.Shipping != 1 {
		t.Errorf("day 45: detail averages %v/%v/%v, want 3.5/4/1", v.Described, v.Communication, v.Shipping)
	}

	// A party nobody knows, and one never rated.
	for _, party := range []string{"nobody", "b1"} {
		repDiff(t, "Reputation("+party+")", escrow.Reputation{Party: party,
			AsSeller: escrow.View{Role: escrow.Seller, Unrated: true, Level: escrow.Level{Name: "None"}},
			AsBuyer:  escrow.View{Role: escrow.Buyer, Unrated: true, Level: escrow.Level{Name: "None"}}}, repReputation(f, party))
	}

	// Explain: every rating bob received as seller or buyer, oldest first.
	now := start.Add(379 * repDay)
	f.clock.Set(now)
	got := explainAll(f, "bob", 2)
	var want []escrow.Contribution
	for i, r := range ratings {
		c := escrow.Contribution{Rating: r}
		if plan[i].counted {
			c.InRateWindow = repDayNum(now, time.UTC)-repDayNum(r.At, time.UTC) < 180
			if r.Score != escrow.Neutral {
				c.BetaWeight = repWeight(plan[i].fen) * repDecay(now.Sub(r.At))
			}
		}
		want = append(want, c)
	}
	asBuyer := escrow.Contribution{Rating: escrow.Rating{Escrow: "e-bob-buys", Rater: "s9", Ratee: "bob", RateeRole: escrow.Buyer,
		Score: escrow.Negative, At: start.Add(time.Hour), Value: cny("20.00"), Weight: math.Log10(30), Counted: true, Points: -1},
		BetaWeight: repWeight(2000) * repDecay(now.Sub(start.Add(time.Hour)))}
	want = slices.Insert(want, 1, asBuyer)
	repDiff(t, "Explain(bob)", want, got)
	if !want[len(want)-1].InRateWindow || want[0].InRateWindow {
		t.Errorf("the test's own expectation is off: the last rating must be in the window, the first not")
	}
	if want[4].Reason != escrow.ReasonBelowMinimum || want[4].Points != 0 || want[4].BetaWeight != 0 {
		t.Errorf("the uncounted rating's explanation: %+v", want[4])
	}
	for _, limit := range []int{1, 3, 100} {
		repDiff(t, fmt.Sprintf("Explain(bob) in pages of %d", limit), want, explainAll(f, "bob", limit))
	}
	empty, err := f.l.Explain(f.ctx, "nobody", escrow.Page{})
	if err != nil || empty.Contributions == nil || len(empty.Contributions) != 0 || empty.Next != "" {
		t.Errorf("Explain(nobody) = %#v, %v; want an empty page", empty, err)
	}
	first, err := f.l.Explain(f.ctx, "bob", escrow.Page{Limit: 1})
	f.must("Explain", err)
	for _, p := range []escrow.Page{{Limit: -1}, {Limit: escrow.MaxPageLimit + 1}, {Cursor: "x"},
		{Cursor: first.Next[:len(first.Next)-2]}, {Cursor: first.Next + "A"}} {
		if got, err := f.l.Explain(f.ctx, "bob", p); !errors.Is(err, escrow.ErrInvalidArgument) || got.Contributions != nil {
			t.Errorf("Explain(bob, %+v) = %+v, %v; want ErrInvalidArgument", p, got, err)
		}
	}
	f.check()
}

// explainAll reads every page of Explain(party), limit at a time.
func explainAll(f *world, party string, limit int) []escrow.Contribution {
	f.t.Helper()
	var out []escrow.Contribution
	p := escrow.Page{Limit: limit}
	for {
		page, err := f.l.Explain(f.ctx, party, p)
		f.must("Explain", err)
		if len(page.Contributions) > limit || page.Next != "" && len(page.Contributions) != limit {
			f.t.Fatalf("Explain(%s, %+v) returned a page of %d", party, p, len(page.Contributions))
		}
		out = append(out, page.Contributions...)
		if page.Next == "" {
			return out
		}
		p.Cursor = page.Next
	}
}

func repTopSellers(t *testing.T) {
	// Trades of 1.00, which count when the minimum is "at least", keep the
	// weights below simple.
	f := repFixture(t, escrow.ReputationPolicy{MinValueRule: escrow.AtLeastMinValue},
		"b1", "b2", "s-ten", "s-three", "s-three-b", "s-mixed", "s-big", "s-neg")
	n := 0
	rate := func(buyer, seller string, price escrow.Money, s escrow.Score) {
		n++
		id := fmt.Sprintf("e-%02d", n)
		repTrade(f, id, buyer, seller, price)
		repRate(f, id, buyer, s)
		// The seller rates the buyer too: buyers must not enter the seller ranking.
		repRate(f, id, seller, escrow.Positive)
	}
	one := cny("1.00")
	for i := 0; i < 5; i++ {
		rate("b1", "s-ten", one, escrow.Positive)
		rate("b2", "s-ten", one, escrow.Positive)
	}
	for i := 0; i < 3; i++ {
		rate("b1", "s-three", one, escrow.Positive)
		rate("b2", "s-three-b", one, escrow.Positive)
	}
	for i := 0; i < 5; i++ {
		rate("b2", "s-mixed", one, escrow.Positive)
	}
	rate("b1", "s-mixed", one, escrow.Negative)
	rate("b1", "s-big", cny("990.00"), escrow.Positive)
	rate("b2", "s-neg", one, escrow.Negative)

	// Worked out here: Wilson of n/n is n/(n+z²); expectations from the
	// weights log10(11) and log10(1000) = 3.
	z2 := 1.96 * 1.96
	w := math.Log10(11)
	wilson := map[string]float64{"s-ten": 10 / (10 + z2), "s-three": 3 / (3 + z2), "s-three-b": 3 / (3 + z2),
		"s-mixed": repWilson(5, 6), "s-big": 1 / (1 + z2), "s-neg": 0}
	expectation := map[string]float64{"s-ten": (1 + 10*w) / (2 + 10*w), "s-three": (1 + 3*w) / (2 + 3*w), "s-three-b": (1 + 3*w) / (2 + 3*w),
		"s-mixed": (1 + 5*w) / (2 + 6*w), "s-big": 4.0 / 5, "s-neg": 1 / (2 + w)}
	order := func(score map[string]float64) []string {
		var out []string
		for p := range score {
			out = append(out, p)
		}
		slices.SortFunc(out, func(a, b string) int {
			if score[a] != score[b] {
				if score[a] > score[b] {
					return -1
				}
				return 1
			}
			return strings.Compare(a, b)
		})
		return out
	}
	byWilson := []string{"s-ten", "s-three", "s-three-b", "s-mixed", "s-big", "s-neg"}
	byExpectation := []string{"s-ten", "s-three", "s-three-b", "s-big", "s-mixed", "s-neg"}
	if diff := cmp.Diff(byWilson, order(wilson)); diff != "" {
		t.Fatalf("the test's Wilson order is off:\n%s", diff)
	}
	if diff := cmp.Diff(byExpectation, order(expectation)); diff != "" {
		t.Fatalf("the test's expectation order is off:\n%s", diff)
	}
	for _, tc := range []struct {
		by    escrow.RankKey
		n     int
		want  []string
		score map[string]float64
	}{
		{escrow.RankWilson, 100, byWilson, wilson},
		{escrow.RankWilson, 3, byWilson[:3], wilson},
		{escrow.RankWilson, 1, byWilson[:1], wilson},
		{escrow.RankExpectation, 100, byExpectation, expectation},
		{escrow.RankExpectation, 4, byExpectation[:4], expectation},
	} {
		got, err := f.l.TopSellers(f.ctx, tc.by, escrow.Page{Limit: tc.n})
		if err != nil {
			t.Fatalf("TopSellers(%d, %d): %v", tc.n, tc.by, err)
		}
		if more := tc.n < len(byWilson); more != (got.Next != "") {
			t.Errorf("TopSellers(%d, %d): Next %q, want one only if more sellers follow", tc.n, tc.by, got.Next)
		}
		var parties []string
		for _, r := range got.Sellers {
			parties = append(parties, r.Party)
			repDiff(t, "TopSellers view of "+r.Party, repReputation(f, r.Party).AsSeller, r.View)
			key := r.View.Wilson
			if tc.by == escrow.RankExpectation {
				key = r.View.Expectation
			}
			if math.Abs(key-tc.score[r.Party]) > 1e-12 {
				t.Errorf("TopSellers(%d, %d): %s scores %v, want %v", tc.n, tc.by, r.Party, key, tc.score[r.Party])
			}
		}
		if diff := cmp.Diff(tc.want, parties); diff != "" {
			t.Errorf("TopSellers(%d, %d) (-want +got):\n%s", tc.n, tc.by, diff)
		}
	}
	for _, bad := range []struct {
		n  int
		by escrow.RankKey
	}{{-1, escrow.RankExpectation}, {escrow.MaxPageLimit + 1, escrow.RankWilson}, {5, 0}, {5, 9}} {
		if _, err := f.l.TopSellers(f.ctx, bad.by, escrow.Page{Limit: bad.n}); !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("TopSellers(%d, %d): %v, want ErrInvalidArgument", bad.n, bad.by, err)
		}
	}
	// Pages follow on from each other, by either key; a cursor of one key
	// is refused by the other.
	for by, want := range map[escrow.RankKey][]string{escrow.RankWilson: byWilson, escrow.RankExpectation: byExpectation} {
		var got []string
		for _, r := range f.ranking(by) {
			got = append(got, r.Party)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("TopSellers(%d) page by page (-want +got):\n%s", by, diff)
		}
	}
	page, err := f.l.TopSellers(f.ctx, escrow.RankWilson, escrow.Page{Limit: 2})
	f.must("TopSellers", err)
	for _, c := range []struct {
		by     escrow.RankKey
		cursor string
	}{{escrow.RankExpectation, page.Next}, {escrow.RankWilson, page.Next[1:]}, {escrow.RankWilson, "!"}} {
		if got, err := f.l.TopSellers(f.ctx, c.by, escrow.Page{Cursor: c.cursor}); !errors.Is(err, escrow.ErrInvalidArgument) || got.Sellers != nil {
			t.Errorf("TopSellers(%d, cursor %q) = %+v, %v; want ErrInvalidArgument", c.by, c.cursor, got, err)
		}
	}
	f.check()
}

// TestReputationProperty runs seeded random sequences of trades, ratings,
// revisions, replies, clock jumps and timer runs, and after every step
// checks the ledger's invariants (which recompute the aggregates) and
// compares every party's reputation with one this test works out from all
// the ratings, from scratch.
func TestReputationProperty(t *testing.T) {
	// Every step reads the whole store (the invariant checker and the
	// recomputation), so the run grows faster than its length; the race
	// detector slows it about tenfold.
	steps := 400
	switch {
	case testing.Short():
		steps = 200
	case raceDetector:
		steps = 150
	}
	policies := []escrow.ReputationPolicy{
		{},
		{Location: time.FixedZone("CST", 8*3600), RateableStates: []escrow.State{escrow.Completed, escrow.Refunded, escrow.Resolved}},
		{NoDefaultRating: true, CountDisputeLosers: true, PairCap: 3, MinValueRule: escrow.AtLeastMinValue,
			DetailWindow: 45 * 24 * time.Hour},
		{NetPairCap: true, PairCapBy: escrow.OrderMonth, PairCap: 4, RepeatItemWindow: 3 * repDay, WithdrawWindow: 10 * repDay},
		{CountRepeatItems: true, NoWithdraw: true, PairCapBy: escrow.OrderMonth, Location: time.FixedZone("EST", -5*3600)},
		// A unique window shorter than the revision window, so that
		// revisions come after a rating's day has left it.
		{UniqueRaters: true, UniqueWindow: 20 * 24 * time.Hour, Location: time.FixedZone("CST", 8*3600)},
	}
	for i, seed := range []uint64{7, 20260301, 0xfeedbeef, 41, 2718, 14} {
		p := policies[i]
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			t.Parallel()
			s := newRepSim(t, seed, p)
			s.steps = steps
			for s.step = 1; s.step <= steps; s.step++ {
				s.randomOp()
				s.verify()
			}
			s.finish()
		})
	}
}

// repSim is one random run.
type repSim struct {
	t      *testing.T
	f      *world
	rng    *rand.Rand
	seed   uint64
	step   int
	steps  int
	op     string
	clean  []byte // Dump of the store as it is now; nil if not known
	policy escrow.ReputationPolicy
	loc    *time.Location
	cap    int64
	// detailDays is the policy's DetailWindow in days, uniqueDays its
	// UniqueWindow.
	detailDays, uniqueDays int64

	users    []string
	ids      []string          // escrows opened
	items    map[string]string // the item of each escrow for the repeat rule ("" for none)
	repeat   time.Duration     // the repeat-item window; 0 when the rule is off
	withdraw time.Duration     // the withdrawal window; 0 when withdrawal is off
	n        int
	events   uint64
	counts   map[string]int
	rateable map[escrow.State]bool
}

func newRepSim(t *testing.T, seed uint64, p escrow.ReputationPolicy) *repSim {
	s := &repSim{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d)), policy: p,
		users: []string{"ana", "bo", "chen", "dara"}, counts: map[string]int{}, loc: p.Location, cap: p.PairCap,
		rateable: map[escrow.State]bool{escrow.Completed: true, escrow.Resolved: true}, items: map[string]string{},
		repeat: orDuration(p.RepeatItemWindow, 14*repDay), withdraw: orDuration(p.WithdrawWindow, 30*repDay)}
	if p.CountRepeatItems {
		s.repeat = 0
	}
	if p.NoWithdraw {
		s.withdraw = 0
	}
	if s.loc == nil {
		s.loc = time.UTC
	}
	if s.cap == 0 {
		s.cap = 6
	}
	s.detailDays = 180
	if p.DetailWindow != 0 {
		s.detailDays = int64(p.DetailWindow / (24 * time.Hour))
	}
	s.uniqueDays = 365
	if p.UniqueWindow != 0 {
		s.uniqueDays = int64(p.UniqueWindow / (24 * time.Hour))
	}
	if p.RateableStates != nil {
		s.rateable = map[escrow.State]bool{}
		for _, st := range p.RateableStates {
			s.rateable[st] = true
		}
	}
	s.f = repFixture(t, p, s.users...)
	for _, u := range s.users {
		if _, err := s.f.l.Deposit(s.f.ctx, u, cny("100000.00")); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *repSim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d, step %d (%s): %s", s.seed, s.step, s.op, fmt.Sprintf(format, args...))
}

func (s *repSim) pick(xs []string) string { return xs[s.rng.IntN(len(xs))] }

func (s *repSim) must(what string, _ escrow.Escrow, err error) {
	s.t.Helper()
	if err != nil {
		s.fatalf("%s: %v", what, err)
	}
}

func (s *repSim) randomOp() {
	// Two long jumps make sure the run spans more than a year.
	if s.step%(s.steps/3) == 0 {
		s.advanceBy(200 * repDay)
		return
	}
	// The users soon have 3 trades each; a newcomer's one trade, midway,
	// gives the concentration a new rater.
	if s.step == s.steps/2 {
		s.newcomer()
		return
	}
	switch r := s.rng.IntN(100); {
	case r < 20:
		s.trade(1, false)
	case r < 22:
		s.trade(2, true) // the same item twice, rated at once
	case r < 27:
		s.trade(int(s.cap)+1, false) // a burst between one pair, rated at once, to pass the monthly cap
	case r < 54:
		s.rate()
	case r < 62:
		s.revise()
	case r < 67:
		s.reply()
	case r < 70:
		s.withdrawOne()
	case r < 72:
		s.void()
	case r < 90:
		s.advance()
	default:
		s.op = "process-due"
		s.processDue()
	}
}

var repPrices = []int64{50, 99, 100, 320, 2500, 8888, 45000}

// trade runs n escrows between one buyer and one seller to a random end,
// or leaves them for a timer to end. More than one are completed and
// rated at once: each of its own item, or all of one if same.
func (s *repSim) trade(n int, same bool) {
	buyer := s.pick(s.users)
	seller := s.pick(s.users)
	for seller == buyer {
		seller = s.pick(s.users)
	}
	s.op = fmt.Sprintf("trade x%d %s→%s", n, buyer, seller)
	s.clean = nil
	f := s.f
	for i := 0; i < n; i++ {
		s.n++
		id := fmt.Sprintf("r-%04d", s.n)
		s.ids = append(s.ids, id)
		fen := repPrices[s.rng.IntN(len(repPrices))]
		// Items repeat often enough for the repeat rule to bite: two
		// items without a SKU, one SKU under changing descriptions, and
		// one-off items.
		terms := escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Arbiter: "arb"}
		switch s.rng.IntN(4) {
		case 0:
			terms.Item = "thing"
		case 1:
			terms.Item = "gadget"
		case 2:
			terms.SKU, terms.Item = "SKU-7", "a lamp, "+id
		default:
			terms.Item = "one-off " + id
		}
		if n > 1 {
			fen = 320                               // a burst counts, until the cap
			terms.SKU, terms.Item = "", "burst "+id // each its own item
			if same {
				terms.Item = "thing"
			}
		}
		s.items[id] = terms.SKU
		if s.items[id] == "" {
			s.items[id] = terms.Item
		}
		price, _ := escrow.MoneyFromUnits(fen, escrow.CNY)
		terms.Price = price
		e, err := f.l.Open(f.ctx, terms)
		s.must("open", e, err)
		end := s.rng.IntN(10)
		if n > 1 {
			end = 0 // a burst completes, and the buyer rates at once
		}
		if end == 6 {
			e, err = f.l.Cancel(f.ctx, id, buyer)
			s.must("cancel", e, err)
			s.counts["end:closed"]++
			continue
		}
		e, err = f.l.Pay(f.ctx, id, buyer)
		s.must("pay", e, err)
		switch end {
		case 0, 1, 2, 3:
			e, err = f.l.Ship(f.ctx, id, seller, "SF")
			s.must("ship", e, err)
			e, err = f.l.Confirm(f.ctx, id, buyer)
			s.must("confirm", e, err)
			s.counts["end:completed"]++
			switch {
			case n > 1:
				s.rateOne(id, buyer, escrow.RatingInput{Score: escrow.Positive})
			case s.rng.IntN(3) == 0: // a buyer who rates on receipt
				s.rateOne(id, buyer, escrow.RatingInput{Score: s.randomScore(), Details: escrow.Details{Described: int8(1 + s.rng.IntN(5))}})
			}
		case 4:
			e, err = f.l.Refund(f.ctx, id, seller, price)
			s.must("refund", e, err)
			s.counts["end:refunded"]++
		case 5:
			e, err = f.l.Dispute(f.ctx, id, s.pick([]string{buyer, seller}), "no")
			s.must("dispute", e, err)
			b := s.rng.Int64N(price.Units() + 1)
			bm, _ := escrow.MoneyFromUnits(b, escrow.CNY)
			sm, _ := escrow.MoneyFromUnits(price.Units()-b, escrow.CNY)
			e, err = f.l.Resolve(f.ctx, id, "arb", escrow.Split{Buyer: bm, Seller: sm})
			s.must("resolve", e, err)
			s.counts["end:resolved"]++
			// Mostly the loser rates at once, angry.
			if loser := map[escrow.Role]string{escrow.Buyer: buyer, escrow.Seller: seller}[e.DisputeLoser]; loser != "" && s.rng.IntN(4) != 0 {
				s.rateOne(id, loser, escrow.RatingInput{Score: escrow.Negative})
			}
		case 7:
			e, err = f.l.Ship(f.ctx, id, seller, "SF") // auto-confirm later
			s.must("ship", e, err)
			s.counts["end:left-shipped"]++
		default:
			s.counts["end:left-paid"]++ // refunded by the ship timer later
		}
	}
}

// newcomer has an account that has not traded buy from the first user,
// and rate the trade at once. It draws nothing from the random source.
func (s *repSim) newcomer() {
	s.op = "newcomer"
	s.clean = nil
	f, seller := s.f, s.users[0]
	f.funded("neo")
	e, err := f.l.Open(f.ctx, escrow.Terms{ID: "neo-1", Buyer: "neo", Seller: seller, Arbiter: "arb", Price: cny("3.20"), Item: "thing"})
	s.must("open", e, err)
	e, err = f.l.Pay(f.ctx, e.ID, "neo")
	s.must("pay", e, err)
	e, err = f.l.Ship(f.ctx, e.ID, seller, "SF")
	s.must("ship", e, err)
	e, err = f.l.Confirm(f.ctx, e.ID, "neo")
	s.must("confirm", e, err)
	s.counts["end:completed"]++
	s.rateOne(e.ID, "neo", escrow.RatingInput{Score: escrow.Positive})
}

// expectRate is the outcome the rules give for rater rating e now.
func (s *repSim) expectRate(e escrow.Escrow, rater string, in escrow.RatingInput, now time.Time) error {
	role := e.RoleOf(rater)
	switch {
	case role != escrow.Buyer && role != escrow.Seller:
		return escrow.ErrNotParty
	case !e.State.Terminal() || !s.rateable[e.State]:
		return escrow.ErrInvalidTransition
	case e.Rated&role != 0 && repStored(s.f, e.ID, rater).Default:
		return escrow.ErrRatingClosed // the window closed on the party's silence
	case e.Rated&role != 0:
		return escrow.ErrAlreadyRated
	case e.RatingDueAt.IsZero() || !now.Before(e.RatingDueAt):
		return escrow.ErrRatingClosed
	case role == escrow.Seller && in.Details != (escrow.Details{}):
		return escrow.ErrInvalidArgument
	}
	return nil
}

func (s *repSim) randomScore() escrow.Score {
	return []escrow.Score{escrow.Positive, escrow.Positive, escrow.Positive, escrow.Neutral, escrow.Negative, escrow.Negative}[s.rng.IntN(6)]
}

func (s *repSim) rate() {
	if len(s.ids) == 0 {
		s.op = "rate (nothing)"
		return
	}
	// Mostly recent escrows, so that windows are often still open.
	i := len(s.ids) - 1 - s.rng.IntN(min(len(s.ids), 12))
	if s.rng.IntN(5) == 0 {
		i = s.rng.IntN(len(s.ids))
	}
	id := s.ids[i]
	e := escrowNow(s.f, id)
	rater := []string{e.Buyer, e.Buyer, e.Seller, e.Seller, "arb", "zoe"}[s.rng.IntN(6)]
	in := escrow.RatingInput{Score: s.randomScore(), Comment: []string{"", "ok", "很好", "slow\nbut fine"}[s.rng.IntN(4)]}
	if s.rng.IntN(2) == 0 {
		in.Details = escrow.Details{Described: int8(s.rng.IntN(6)), Communication: int8(s.rng.IntN(6)), Shipping: int8(s.rng.IntN(6))}
	}
	s.rateOne(id, rater, in)
}

// rateOne has rater rate escrow id, checking the outcome against the rules.
func (s *repSim) rateOne(id, rater string, in escrow.RatingInput) {
	e := escrowNow(s.f, id)
	s.op = fmt.Sprintf("rate %s by %s: %v %+v", id, rater, in.Score, in.Details)
	now := s.f.clock.Now()
	want := s.expectRate(e, rater, in, now)
	var before []byte
	if want != nil {
		before = s.cleanDump()
	}
	r, err := s.f.l.Rate(s.f.ctx, id, rater, in)
	if want != nil {
		if !errors.Is(err, want) {
			s.fatalf("got %v, want %v", err, want)
		}
		s.f.unchanged(before, s.op)
		s.counts["rate:refused"]++
		return
	}
	s.clean = nil
	if err != nil {
		s.fatalf("Rate: %v", err)
	}
	if r.Score != in.Score || !r.At.Equal(now) || r.Rater != rater || r.Details != in.Details {
		s.fatalf("rating %+v", r)
	}
	s.counts["rate:ok"]++
	if !r.Counted {
		s.counts["uncounted:"+r.Reason]++
	}
}

// cleanDump returns the store's dump, taking it only if a change since the
// last one may have made it stale.
func (s *repSim) cleanDump() []byte {
	if s.clean == nil {
		s.clean = s.f.dump()
	}
	return s.clean
}

// ratings returns every rating in the store.
func (s *repSim) ratings() []escrow.Rating {
	var out []escrow.Rating
	err := s.f.store.View(s.f.ctx, func(tx escrow.Tx) error {
		return tx.Ratings(func(r escrow.Rating) error { out = append(out, r); return nil })
	})
	if err != nil {
		s.fatalf("Ratings: %v", err)
	}
	return out
}

func (s *repSim) revise() {
	rs := s.ratings()
	if len(rs) == 0 {
		s.op = "revise (nothing)"
		return
	}
	now := s.f.clock.Now()
	r := rs[s.rng.IntN(len(rs))]
	to := []escrow.Score{escrow.Positive, escrow.Neutral, escrow.Negative}[s.rng.IntN(3)]
	// Mostly pick one that can still be revised, so that revisions happen.
	var open []escrow.Rating
	for _, c := range rs {
		if c.Score != escrow.Positive && !c.Revised && !c.Default && !c.Withdrawn && !c.Voided && !now.After(c.At.Add(30*repDay)) {
			open = append(open, c)
		}
	}
	if len(open) > 0 && s.rng.IntN(4) != 0 {
		r = open[s.rng.IntN(len(open))]
		to = escrow.Positive
		if r.Score == escrow.Negative && s.rng.IntN(2) == 0 {
			to = escrow.Neutral
		}
	}
	rater := r.Rater
	if s.rng.IntN(8) == 0 {
		rater = r.Ratee
	}
	s.op = fmt.Sprintf("revise %s by %s: %v to %v", r.Escrow, rater, r.Score, to)
	var want error
	// The rules as the test reads them.
	rank := map[escrow.Score]int{escrow.Negative: 0, escrow.Neutral: 1, escrow.Positive: 2}
	switch {
	case rater != r.Rater:
		if _, err := s.ratingOf(r.Escrow, rater); err != nil {
			want = escrow.ErrNotFound
		} else {
			s.op += " (the ratee's own rating)"
			return
		}
	case r.Revised || r.Default || r.Withdrawn || r.Voided || r.Score == escrow.Positive || rank[to] <= rank[r.Score]:
		want = escrow.ErrInvalidTransition
	case now.After(r.At.Add(30 * repDay)):
		want = escrow.ErrRatingClosed
	}
	var before []byte
	if want != nil {
		before = s.cleanDump()
	}
	got, err := s.f.l.Revise(s.f.ctx, r.Escrow, rater, to, "")
	if want != nil {
		if !errors.Is(err, want) {
			s.fatalf("got %v, want %v", err, want)
		}
		s.f.unchanged(before, s.op)
		s.counts["revise:refused"]++
		return
	}
	s.clean = nil
	if err != nil {
		s.fatalf("Revise: %v", err)
	}
	if got.Score != to || got.Original != r.Score || !got.Revised || !got.At.Equal(r.At) {
		s.fatalf("revised rating %+v", got)
	}
	s.counts["revise:ok"]++
}

func (s *repSim) ratingOf(id, rater string) (escrow.Rating, error) {
	var r escrow.Rating
	err := s.f.store.View(s.f.ctx, func(tx escrow.Tx) error {
		var err error
		r, err = tx.Rating(id, rater)
		return err
	})
	return r, err
}

func (s *repSim) reply() {
	rs := s.ratings()
	if len(rs) == 0 {
		s.op = "reply (nothing)"
		return
	}
	r := rs[s.rng.IntN(len(rs))]
	// Mostly pick one that can still be answered, so that replies happen.
	var open []escrow.Rating
	for _, c := range rs {
		if c.Reply == "" && !s.f.clock.Now().After(c.At.Add(30*repDay)) {
			open = append(open, c)
		}
	}
	if len(open) > 0 && s.rng.IntN(4) != 0 {
		r = open[s.rng.IntN(len(open))]
	}
	actor := []string{r.Ratee, r.Ratee, r.Rater, "zoe"}[s.rng.IntN(4)]
	s.op = fmt.Sprintf("reply to %s/%s by %s", r.Escrow, r.Rater, actor)
	var want error
	switch {
	case actor != r.Ratee:
		want = escrow.ErrNotParty
	case r.Reply != "":
		want = escrow.ErrAlreadyRated
	case s.f.clock.Now().After(r.At.Add(30 * repDay)):
		want = escrow.ErrRatingClosed
	}
	var before []byte
	if want != nil {
		before = s.cleanDump()
	}
	got, err := s.f.l.Reply(s.f.ctx, r.Escrow, r.Rater, actor, "thanks for the rating")
	if want != nil {
		if !errors.Is(err, want) {
			s.fatalf("got %v, want %v", err, want)
		}
		s.f.unchanged(before, s.op)
		s.counts["reply:refused"]++
		return
	}
	s.clean = nil
	if err != nil || got.Reply != "thanks for the rating" || got.Score != r.Score || got.Counted != r.Counted {
		s.fatalf("Reply: %+v, %v", got, err)
	}
	s.counts["reply:ok"]++
}

// orDuration is d, or def when d is zero.
func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// repeated reports whether another rating of r's rater, ratee and item
// lies within the repeat window of r and counted, or counted once: it
// was withdrawn or voided since, or a revision put it under the cap.
func (s *repSim) repeated(r escrow.Rating, all []escrow.Rating) bool {
	item := s.items[r.Escrow]
	if s.repeat == 0 || item == "" {
		return false
	}
	for _, o := range all {
		if o.Escrow == r.Escrow || o.Rater != r.Rater || o.Ratee != r.Ratee || s.items[o.Escrow] != item {
			continue
		}
		if d := o.At.Sub(r.At); d > -s.repeat && d < s.repeat &&
			(o.Counted || o.Withdrawn || o.Voided || o.Reason == escrow.ReasonPairCap) {
			return true
		}
	}
	return false
}

// withdrawOne has a rater withdraw a rating, mostly one that may be.
func (s *repSim) withdrawOne() {
	rs := s.ratings()
	if len(rs) == 0 {
		s.op = "withdraw (nothing)"
		return
	}
	now := s.f.clock.Now()
	r := rs[s.rng.IntN(len(rs))]
	var open []escrow.Rating
	for _, c := range rs {
		if c.Score != escrow.Positive && !c.Revised && !c.Default && !c.Withdrawn && !c.Voided && !now.After(c.At.Add(s.withdraw)) {
			open = append(open, c)
		}
	}
	if len(open) > 0 && s.rng.IntN(4) != 0 {
		r = open[s.rng.IntN(len(open))]
	}
	rater := r.Rater
	if s.rng.IntN(10) == 0 {
		rater = "zoe"
	}
	s.op = fmt.Sprintf("withdraw %s by %s (%v)", r.Escrow, rater, r.Score)
	var want error
	switch {
	case rater != r.Rater:
		want = escrow.ErrNotFound
	case s.withdraw == 0, r.Withdrawn, r.Voided, r.Revised, r.Default, r.Score == escrow.Positive:
		want = escrow.ErrInvalidTransition
	case now.After(r.At.Add(s.withdraw)):
		want = escrow.ErrRatingClosed
	}
	var before []byte
	if want != nil {
		before = s.cleanDump()
	}
	got, err := s.f.l.WithdrawRating(s.f.ctx, r.Escrow, rater)
	if want != nil {
		if !errors.Is(err, want) {
			s.fatalf("got %v, want %v", err, want)
		}
		s.f.unchanged(before, s.op)
		s.counts["withdraw:refused"]++
		return
	}
	s.clean = nil
	if err != nil || !got.Withdrawn || !got.WithdrawnAt.Equal(now) || got.Counted || got.Reason != escrow.ReasonWithdrawn || got.Score != r.Score {
		s.fatalf("WithdrawRating: %+v, %v", got, err)
	}
	s.counts["withdraw:ok"]++
}

// void has an operator, or someone who is not one, void a rating.
func (s *repSim) void() {
	rs := s.ratings()
	if len(rs) == 0 {
		s.op = "void (nothing)"
		return
	}
	r := rs[s.rng.IntN(len(rs))]
	operator := []string{"ops", "ops", "ops", r.Ratee, "arb"}[s.rng.IntN(5)]
	s.op = fmt.Sprintf("void %s/%s by %s", r.Escrow, r.Rater, operator)
	var want error
	switch {
	case operator != "ops":
		want = escrow.ErrNotParty
	case r.Voided:
		want = escrow.ErrInvalidTransition
	}
	var before []byte
	if want != nil {
		before = s.cleanDump()
	}
	got, err := s.f.l.VoidRating(s.f.ctx, r.Escrow, r.Rater, operator, "brushing")
	if want != nil {
		if !errors.Is(err, want) {
			s.fatalf("got %v, want %v", err, want)
		}
		s.f.unchanged(before, s.op)
		s.counts["void:refused"]++
		return
	}
	s.clean = nil
	if err != nil || !got.Voided || got.VoidedBy != "ops" || got.VoidReason != "brushing" || got.Counted || got.Reason != escrow.ReasonVoided {
		s.fatalf("VoidRating: %+v, %v", got, err)
	}
	s.counts["void:ok"]++
}

func (s *repSim) advance() {
	d := []time.Duration{time.Minute, 3 * time.Hour, 11 * time.Hour, repDay, 5 * repDay, 16 * repDay, 31 * repDay, 200 * repDay}[s.rng.IntN(8)]
	if d == 200*repDay && s.rng.IntN(3) != 0 {
		d = 7 * repDay
	}
	s.advanceBy(d)
}

func (s *repSim) advanceBy(d time.Duration) {
	before := s.f.clock.Now()
	after := s.f.clock.Advance(d)
	s.clean = nil // the time changes no record, but timers may fire below
	s.op = fmt.Sprintf("advance %v to %v", d, after)
	s.counts["advance"]++
	if before.In(s.loc).Month() != after.In(s.loc).Month() {
		s.counts["advance:new-month"]++
	}
	if after.Sub(start) > 365*repDay {
		s.counts["advance:past-a-year"]++
	}
	// Often run the timers right after, as a host would.
	if s.rng.IntN(2) == 0 {
		s.processDue()
	}
}

func (s *repSim) processDue() {
	s.clean = nil
	if _, err := s.f.l.ProcessDue(s.f.ctx); err != nil {
		s.fatalf("ProcessDue: %v", err)
	}
	s.counts["process-due"]++
}

// repAcc is the test's own tally of one party in one role.
type repAcc struct {
	points                     int64
	total                      escrow.Counts
	windows                    [4]escrow.Counts
	alpha, beta                float64
	detailSums, detailCounts   [3]int64
	ratePositive, rateNegative int64
}

// verify checks the invariants and compares every reputation with the
// test's own recomputation over all ratings.
func (s *repSim) verify() {
	s.t.Helper()
	f := s.f
	if err := f.l.Check(f.ctx); err != nil {
		s.fatalf("invariants: %v", err)
	}
	evs, err := f.l.Events(f.ctx, s.events, 1<<20)
	if err != nil {
		s.fatalf("Events: %v", err)
	}
	for _, ev := range evs {
		s.events = ev.Seq
		if ev.Type == escrow.RatingGiven && ev.ByTimer {
			s.counts["default-rating"]++
		}
	}
	now := f.clock.Now()
	today := repDayNum(now, s.loc)
	type key struct {
		party string
		role  escrow.Role
	}
	accs := map[key]*repAcc{}
	// The raters with a counted positive and negative in the unique
	// window, and how many positives each gave there.
	uniquePos, uniqueNeg := map[key]map[string]int{}, map[key]map[string]int{}
	capped := map[[3]string]bool{}
	pairPositive := map[[3]string]int64{}
	pairNet := map[[3]string]int64{} // counted points, positive and negative
	removed := map[[3]string]int64{} // positives voided since
	var ratings []escrow.Rating
	escrows := map[string]escrow.Escrow{}
	err = f.store.View(f.ctx, func(tx escrow.Tx) error {
		if err := tx.Escrows(func(e escrow.Escrow) error { escrows[e.ID] = e; return nil }); err != nil {
			return err
		}
		return tx.Ratings(func(r escrow.Rating) error { ratings = append(ratings, r); return nil })
	})
	if err != nil {
		s.fatalf("reading ratings: %v", err)
	}
	for _, r := range ratings {
		e := escrows[r.Escrow]
		raterRole := e.RoleOf(r.Rater)
		month := r.At.In(s.loc).Format("2006-01")
		if s.policy.PairCapBy == escrow.OrderMonth {
			month = e.CreatedAt.In(s.loc).Format("2006-01")
		}
		pk := [3]string{r.Ratee, r.Rater, month}
		if r.Voided || r.Withdrawn {
			if r.Score == escrow.Positive {
				removed[pk]++ // it may have held a place under the cap
			}
			want := escrow.ReasonWithdrawn
			if r.Voided {
				want = escrow.ReasonVoided
			}
			if r.Counted || r.Points != 0 || r.Reason != want {
				s.fatalf("rating %s/%s withdrawn %v, voided %v: counted %v, %d points, reason %q",
					r.Escrow, r.Rater, r.Withdrawn, r.Voided, r.Counted, r.Points, r.Reason)
			}
			continue
		}
		// Why a rating does or does not count, from the escrow.
		// The default minimum is 1 CNY, and what the escrow released to
		// the seller (its price, if nothing) must pass it.
		worth := repWorth(e)
		below := worth <= 100
		if s.policy.MinValueRule == escrow.AtLeastMinValue {
			below = worth < 100
		}
		// No positive counts on an escrow that released nothing.
		below = below || r.Score == escrow.Positive && e.Released.IsZero()
		lost := !s.policy.CountDisputeLosers && e.DisputeLoser == raterRole
		switch {
		case below && (r.Counted || r.Reason != escrow.ReasonBelowMinimum):
			s.fatalf("rating %s/%s of a %s escrow: counted %v, reason %q", r.Escrow, r.Rater, e.Price, r.Counted, r.Reason)
		case !below && lost && (r.Counted || r.Reason != escrow.ReasonDisputeLost):
			s.fatalf("rating %s/%s by the dispute's loser: counted %v, reason %q", r.Escrow, r.Rater, r.Counted, r.Reason)
		case !below && !lost && !r.Counted && r.Reason == escrow.ReasonRepeatItem:
			if !s.repeated(r, ratings) {
				s.fatalf("rating %s/%s not counted as a repeat of item %q with no rating of it near", r.Escrow, r.Rater, s.items[r.Escrow])
			}
		case !below && !lost && !r.Counted && r.Reason != escrow.ReasonPairCap:
			s.fatalf("rating %s/%s not counted for %q", r.Escrow, r.Rater, r.Reason)
		}
		if !r.Counted {
			if r.Points != 0 {
				s.fatalf("uncounted rating %s/%s has %d points", r.Escrow, r.Rater, r.Points)
			}
			if r.Reason == escrow.ReasonPairCap && r.Score == escrow.Positive {
				capped[pk] = true
			}
			continue
		}
		if want := map[escrow.Score]int64{escrow.Positive: 1, escrow.Neutral: 0, escrow.Negative: -1}[r.Score]; r.Points != want {
			s.fatalf("counted %v rating %s/%s has %d points", r.Score, r.Escrow, r.Rater, r.Points)
		}
		if r.Points > 0 {
			pairPositive[pk] += r.Points
		}
		pairNet[pk] += r.Points
		k := key{r.Ratee, r.RateeRole}
		a := accs[k]
		if a == nil {
			a = &repAcc{alpha: 1, beta: 1}
			accs[k] = a
		}
		a.points += r.Points
		age := today - repDayNum(r.At, s.loc)
		add := func(c *escrow.Counts) {
			switch r.Score {
			case escrow.Positive:
				c.Positive++
			case escrow.Neutral:
				c.Neutral++
			case escrow.Negative:
				c.Negative++
			}
		}
		add(&a.total)
		for i, d := range []int64{7, 30, 180, 365} {
			if age >= 0 && age < d {
				add(&a.windows[i])
			}
		}
		w := repWeight(repWorth(e)) * repDecay(now.Sub(r.At))
		switch r.Score {
		case escrow.Positive:
			a.alpha += w
		case escrow.Negative:
			a.beta += w
		}
		if age >= 0 && age < s.uniqueDays && r.Score != escrow.Neutral {
			m := uniquePos
			if r.Score == escrow.Negative {
				m = uniqueNeg
			}
			if m[k] == nil {
				m[k] = map[string]int{}
			}
			m[k][r.Rater]++
		}
		if r.Details != (escrow.Details{}) {
			if age < s.detailDays {
				s.counts["details:in-window"]++
			} else {
				s.counts["details:left-window"]++
			}
		}
		for i, d := range []int8{r.Details.Described, r.Details.Communication, r.Details.Shipping} {
			if d != 0 && age >= 0 && age < s.detailDays {
				a.detailSums[i] += int64(d)
				a.detailCounts[i]++
			}
		}
	}
	// A positive was capped only if its month's positive points are full
	// (under the separate caps; under the net cap, later negatives may
	// have brought the month back within it).
	for pk := range capped {
		if s.policy.NetPairCap {
			break
		}
		if pairPositive[pk] > s.cap || pairPositive[pk]+removed[pk] < s.cap {
			s.fatalf("a positive of %q by %q in %s was capped with only %d counted", pk[0], pk[1], pk[2], pairPositive[pk])
		}
	}
	// Under the net cap, no pair's month is past it, whatever was taken
	// out since.
	for pk, net := range pairNet {
		if s.policy.NetPairCap && (net > s.cap || net < -s.cap) {
			s.fatalf("%q's ratings of %q in %s count %d points, past the net cap of %d", pk[1], pk[0], pk[2], net, s.cap)
		}
	}
	for _, party := range append(slices.Clone(s.users), "zoe") {
		rep := repReputation(f, party)
		for _, v := range []escrow.View{rep.AsSeller, rep.AsBuyer} {
			want := escrow.View{Role: v.Role, Unrated: true, Level: escrow.Level{Name: "None"}}
			if a := accs[key{party, v.Role}]; a != nil {
				want = escrow.View{Role: v.Role, Points: a.points, Level: escrow.LevelFor(a.points), Total: a.total,
					Last7: a.windows[0], Last30: a.windows[1], Last180: a.windows[2], Last365: a.windows[3]}
				want.RateBasis = a.windows[2].Positive + a.windows[2].Negative
				if want.RateBasis > 0 {
					want.PositiveRate = float64(a.windows[2].Positive) / float64(want.RateBasis)
				}
				want.Wilson = repWilson(a.windows[2].Positive, want.RateBasis)
				want.Expectation, want.Uncertainty = a.alpha/(a.alpha+a.beta), 2/(a.alpha+a.beta)
				avg := func(i int) float64 {
					if a.detailCounts[i] == 0 {
						return 0
					}
					return float64(a.detailSums[i]) / float64(a.detailCounts[i])
				}
				want.Described, want.Communication, want.Shipping = avg(0), avg(1), avg(2)
				if s.policy.UniqueRaters {
					k := key{party, v.Role}
					want.Points = int64(len(uniquePos[k]) - len(uniqueNeg[k]))
					want.Level = escrow.LevelFor(want.Points)
					for rater, n := range uniquePos[k] {
						if n > 1 {
							s.counts["unique:repeat-rater"]++
						}
						if uniqueNeg[k][rater] > 0 {
							s.counts["unique:both"]++
						}
					}
				}
			}
			if diff := cmp.Diff(want, v, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
				s.fatalf("reputation of %s as %v (-recomputed +ledger):\n%s", party, v.Role, diff)
			}
		}
		c, err := f.l.Concentration(f.ctx, party)
		if err != nil {
			s.fatalf("Concentration(%s): %v", party, err)
		}
		want := repConcentration(party, ratings, escrows, s.rateable, now, s.loc)
		if diff := cmp.Diff(want, c, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
			s.fatalf("concentration of %s (-recomputed +ledger):\n%s", party, diff)
		}
		// With the default points, a positive is a point.
		if c.Points != rep.AsSeller.Last365.Positive {
			s.fatalf("concentration of %s has %d points, its view %d positives in 365 days", party, c.Points, rep.AsSeller.Last365.Positive)
		}
		if c.NewRaters > 0 {
			s.counts["concentration:new-rater"]++
		}
		if c.NewRaters < c.Raters {
			s.counts["concentration:established-rater"]++
		}
	}
}

// finish checks that the run did every kind of operation at least once.
func (s *repSim) finish() {
	// The short and race runs (200 and 150 steps) are too short for every
	// seed to meet every kind; they look for races and broken rules, and
	// the full run checks that the rules were exercised.
	if s.steps < 400 {
		s.t.Logf("seed %d: %v", s.seed, s.counts)
		return
	}
	kinds := []string{"end:completed", "end:refunded", "end:resolved", "end:closed", "end:left-shipped", "end:left-paid",
		"rate:ok", "rate:refused", "revise:ok", "revise:refused", "reply:ok", "reply:refused",
		"advance", "advance:new-month", "advance:past-a-year", "process-due",
		"uncounted:" + escrow.ReasonBelowMinimum, "uncounted:" + escrow.ReasonPairCap,
		"concentration:new-rater", "concentration:established-rater",
		"details:in-window", "details:left-window"}
	if s.policy.UniqueRaters {
		kinds = append(kinds, "unique:repeat-rater", "unique:both")
	}
	if !s.policy.NoDefaultRating {
		kinds = append(kinds, "default-rating")
	}
	if !s.policy.CountDisputeLosers {
		kinds = append(kinds, "uncounted:"+escrow.ReasonDisputeLost)
	}
	if s.repeat != 0 {
		kinds = append(kinds, "uncounted:"+escrow.ReasonRepeatItem)
	}
	kinds = append(kinds, "void:ok", "void:refused", "withdraw:refused")
	if s.withdraw != 0 {
		kinds = append(kinds, "withdraw:ok")
	}
	for _, k := range kinds {
		if s.counts[k] == 0 {
			s.t.Errorf("seed %d: no %q in %d steps; counts %v", s.seed, k, s.step-1, s.counts)
		}
	}
	s.t.Logf("seed %d: %v", s.seed, s.counts)
}

// repStaleClock has two ledgers share one store, one of them a week behind,
// as two processes whose calls read the clock before taking the store's
// lock may be (ProcessDue reads it once for its whole run). A rating
// counted with the older time must not decay the seller's Beta sums
// backwards or put a rating into a window it has already left: the
// aggregate only moves forward, and Check, which rebuilds it from the
// ratings, agrees.
func repStaleClock(t *testing.T) {
	f := repFixture(t, escrow.ReputationPolicy{}, "buyer1", "buyer2", "shop")
	repTrade(f, "e1", "buyer1", "shop", cny("100.00"))
	repTrade(f, "e2", "buyer2", "shop", cny("100.00"))
	behind := escrow.NewManualClock(f.clock.Now())
	late, err := escrow.New(f.ctx, f.store, &escrow.Options{Clock: behind})
	if err != nil {
		t.Fatalf("a second ledger on the same store: %v", err)
	}
	f.clock.Advance(8 * 24 * time.Hour)
	behind.Advance(12 * time.Hour)
	repRate(f, "e1", "buyer1", escrow.Positive) // the up-to-date ledger goes first
	if _, err := late.Rate(f.ctx, "e2", "buyer2", escrow.RatingInput{Score: escrow.Positive}); err != nil {
		t.Fatalf("rating through the ledger that is behind: %v", err)
	}
	f.check()
	rep := repReputation(f, "shop").AsSeller
	// Both ratings count as of the later clock: e2's rating carries its own
	// time, a week and a half old, so it has left the 7-day window.
	repDiff(t, "Last7", escrow.Counts{Positive: 1}, rep.Last7)
	repDiff(t, "Last30", escrow.Counts{Positive: 2}, rep.Last30)
	// And the aggregate itself stayed at the later time.
	err = f.store.View(f.ctx, func(tx escrow.Tx) error {
		a, err := tx.Aggregate("shop", escrow.Seller)
		if err != nil {
			return err
		}
		now := f.clock.Now().UTC()
		if !a.BetaAt.Equal(now) || !a.UpdatedAt.Equal(now) || int64(a.WindowsDay) != repDayNum(now, time.UTC) {
			t.Errorf("aggregate as of %s (updated %s, windows to day %d); want all as of %s, day %d",
				a.BetaAt, a.UpdatedAt, a.WindowsDay, now, repDayNum(now, time.UTC))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMinValueExtremeExponents: a MinValue built in code may have any
// exponent an int32 holds. New answers at once, and the minimum means what
// it says: a tiny one lets a cent count, a huge one lets nothing count.
func TestMinValueExtremeExponents(t *testing.T) {
	for _, tc := range []struct {
		min     decimal.Decimal
		counted bool
	}{
		{decimal.New(1, -1_000_000_000), true},
		{decimal.New(5, math.MinInt32), true},
		{decimal.New(1, 1_000_000_000), false},
		{decimal.New(7, math.MaxInt32), false},
	} {
		name := fmt.Sprintf("%se%d", tc.min.Coefficient(), tc.min.Exponent())
		done := make(chan *world, 1)
		go func() { done <- repFixture(t, escrow.ReputationPolicy{MinValue: tc.min}, "alice", "bob") }()
		var f *world
		select {
		case f = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("MinValue %s: New did not return in 5s", name)
		}
		repTrade(f, "e-cent", "alice", "bob", cny("0.01"))
		if r := repRate(f, "e-cent", "alice", escrow.Positive); r.Counted != tc.counted {
			t.Errorf("MinValue %s: a rating of 0.01 CNY counted %v, want %v (%s)", name, r.Counted, tc.counted, r.Reason)
		}
	}
}
