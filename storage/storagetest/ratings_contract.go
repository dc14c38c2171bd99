package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// testRatingsContract holds the adapter to the part of the Tx contract
// that reputation needs: ratings with their per-ratee order, aggregates
// with their ranking index, the monthly pair records, the item marks, and
// the due index
// under an escrow's NextDue. Like testContract it talks to the store
// directly, so a broken rule is reported where it is broken.
func testRatingsContract(t *testing.T, h Harness) {
	t.Run("Empty", func(t *testing.T) { rcEmpty(t, h) })
	t.Run("Ratings", func(t *testing.T) { rcRatings(t, h) })
	t.Run("RatingsOfOrder", func(t *testing.T) { rcRatingsOfOrder(t, h) })
	t.Run("Aggregates", func(t *testing.T) { rcAggregates(t, h) })
	t.Run("TopAggregates", func(t *testing.T) { rcTopAggregates(t, h) })
	t.Run("PairMonths", func(t *testing.T) { rcPairMonths(t, h) })
	t.Run("ItemMarks", func(t *testing.T) { rcItemMarks(t, h) })
	t.Run("Rollback", func(t *testing.T) { rcRollback(t, h) })
	t.Run("NoAliasing", func(t *testing.T) { rcNoAliasing(t, h) })
	t.Run("View", func(t *testing.T) { rcViewReadOnly(t, h) })
	t.Run("DueIndexUnderNextDue", func(t *testing.T) { rcDueIndex(t, h) })
	t.Run("DayCounts", func(t *testing.T) { rcDayCounts(t, h) })
	t.Run("DueAggregates", func(t *testing.T) { rcDueAggregates(t, h) })
	t.Run("RaterDays", func(t *testing.T) { rcRaterDays(t, h) })
}

// rcRaterDays checks RaterDays, PutRaterDays and AllRaterDays: records
// read back whole and in order, a record with no day is removed, the
// store keeps its own copy of the days, a View cannot write one, and a
// rolled-back write leaves nothing behind.
func rcRaterDays(t *testing.T, h Harness) {
	s := open(t, h)
	rd := func(ratee string, role escrow.Role, rater string, pos, neg []int32) escrow.RaterDays {
		return escrow.RaterDays{Ratee: ratee, Role: role, Rater: rater, Positive: pos, Negative: neg}
	}
	get := func(tx escrow.Tx, ratee string, role escrow.Role, rater string) (escrow.RaterDays, error) {
		return tx.RaterDays(ratee, role, rater)
	}
	contractView(t, s, func(tx escrow.Tx) error {
		_, err := get(tx, "bob", escrow.Seller, "ann")
		contractNotFound(t, "RaterDays on an empty store", err)
		all, err := contractCollect(tx.AllRaterDays)
		contractDiff(t, "AllRaterDays on an empty store", []escrow.RaterDays{}, all)
		return err
	})
	// Written out of order, in two roles, for ratees and raters whose
	// names sort as prefixes of each other, with days repeated.
	puts := []escrow.RaterDays{
		rd("bob", escrow.Seller, "ann", []int32{20500, 20510, 20510}, []int32{20505}),
		rd("bob", escrow.Buyer, "ann", nil, []int32{20511}),
		rd("bo", escrow.Seller, "ann", []int32{20512}, nil),
		rd("bob", escrow.Seller, "an", []int32{-3, 0, 20513}, nil),
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, d := range puts {
			if err := tx.PutRaterDays(d); err != nil {
				return err
			}
		}
		return nil
	})
	contractView(t, s, func(tx escrow.Tx) error {
		for _, want := range puts {
			got, err := get(tx, want.Ratee, want.Role, want.Rater)
			if err != nil {
				return err
			}
			contractDiff(t, "RaterDays("+want.Ratee+", "+want.Role.String()+", "+want.Rater+")", want, got)
		}
		_, err := get(tx, "bob", escrow.Seller, "a")
		contractNotFound(t, "RaterDays of another rater", err)
		_, err = get(tx, "bo", escrow.Buyer, "ann")
		contractNotFound(t, "RaterDays in another role", err)
		all, err := contractCollect(tx.AllRaterDays)
		contractDiff(t, "AllRaterDays", []escrow.RaterDays{puts[2], puts[1], puts[3], puts[0]}, all)
		contractStops(t, "AllRaterDays", tx.AllRaterDays)
		return err
	})
	// Replace one, empty another; the days a caller passed or was given
	// are its own to change.
	passed := rd("bob", escrow.Seller, "ann", []int32{20510}, []int32{20505, 20506})
	contractUpdate(t, s, func(tx escrow.Tx) error {
		if err := tx.PutRaterDays(passed); err != nil {
			return err
		}
		passed.Positive[0], passed.Negative[1] = 1, 2
		got, err := get(tx, "bob", escrow.Seller, "ann")
		if err != nil {
			return err
		}
		got.Positive[0] = 3
		if err := tx.AllRaterDays(func(d escrow.RaterDays) error {
			if len(d.Positive) > 0 {
				d.Positive[0] = 4
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.PutRaterDays(rd("bob", escrow.Buyer, "ann", []int32{}, nil))
	})
	replaced := rd("bob", escrow.Seller, "ann", []int32{20510}, []int32{20505, 20506})
	contractView(t, s, func(tx escrow.Tx) error {
		got, err := get(tx, "bob", escrow.Seller, "ann")
		contractDiff(t, "RaterDays after a replace and changes to the caller's copies", replaced, got)
		_, gone := get(tx, "bob", escrow.Buyer, "ann")
		contractNotFound(t, "RaterDays after a put with no day", gone)
		return err
	})
	// A View cannot write one, and a failed Update changes nothing.
	before := contractDump(t, s)
	contractView(t, s, func(tx escrow.Tx) error {
		if err := tx.PutRaterDays(rd("zed", escrow.Seller, "ann", []int32{1}, nil)); !errors.Is(err, escrow.ErrReadOnly) {
			t.Errorf("PutRaterDays in View returned %v, want ErrReadOnly", err)
		}
		return nil
	})
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := tx.PutRaterDays(rd("zed", escrow.Seller, "ann", []int32{1}, nil)); err != nil {
			return err
		}
		if err := tx.PutRaterDays(rd("bob", escrow.Seller, "ann", nil, nil)); err != nil {
			return err
		}
		return errContractStop
	})
	if !errors.Is(err, errContractStop) {
		t.Fatalf("failed Update returned %v", err)
	}
	contractUnchanged(t, s, before, "a View's PutRaterDays and a rolled-back one")
}

// rcDayCounts checks DayRange, PutDayCount and DayCounts: ranges are
// inclusive and ordered by day, replacing keeps one count per day, an
// all-zero count reads as no count, and a rolled-back write leaves
// nothing behind.
func rcDayCounts(t *testing.T, h Harness) {
	s := open(t, h)
	// A count with ratings has detail scores, different for each, so that
	// an adapter that forgets or swaps one shows up in the diff.
	day := func(party string, role escrow.Role, d int32, p, n, neg int32) escrow.DayCount {
		c := escrow.DayCount{Party: party, Role: role, Day: d, Positive: p, Neutral: n, Negative: neg}
		if p+n+neg != 0 {
			k := d - 20500 + p*10 + n*100
			c.DetailSums, c.DetailCounts = [3]int32{5*p + k, 4*p + 2*k, 3*p + 3*k}, [3]int32{p + 1, p + 2, p + 3}
		}
		return c
	}
	rangeOf := func(tx escrow.Tx, party string, role escrow.Role, from, to int32) []escrow.DayCount {
		t.Helper()
		got, err := contractCollect(func(fn func(escrow.DayCount) error) error { return tx.DayRange(party, role, from, to, fn) })
		if err != nil {
			t.Fatalf("DayRange(%q, %v, %d, %d): %v", party, role, from, to, err)
		}
		return got
	}
	contractView(t, s, func(tx escrow.Tx) error {
		contractDiff(t, "DayRange on an empty store", []escrow.DayCount{}, rangeOf(tx, "bob", escrow.Seller, 0, 1<<30))
		all, err := contractCollect(tx.DayCounts)
		contractDiff(t, "DayCounts on an empty store", []escrow.DayCount{}, all)
		return err
	})
	// Written out of order, in two roles and for two parties whose names
	// sort as prefixes of each other.
	puts := []escrow.DayCount{
		day("bob", escrow.Seller, 20512, 0, 0, 2),
		day("bob", escrow.Seller, 20500, 3, 0, 0),
		day("bob", escrow.Buyer, 20505, 1, 0, 0),
		day("bob", escrow.Seller, 20510, 6, 1, 0),
		day("bo", escrow.Seller, 20510, 1, 0, 0),
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, d := range puts {
			if err := tx.PutDayCount(d); err != nil {
				return err
			}
		}
		return nil
	})
	contractView(t, s, func(tx escrow.Tx) error {
		contractDiff(t, "DayRange(bob, seller, all)", []escrow.DayCount{puts[1], puts[3], puts[0]}, rangeOf(tx, "bob", escrow.Seller, 0, 1<<30))
		contractDiff(t, "DayRange inclusive at both ends", []escrow.DayCount{puts[1], puts[3]}, rangeOf(tx, "bob", escrow.Seller, 20500, 20510))
		contractDiff(t, "DayRange between days", []escrow.DayCount{puts[3]}, rangeOf(tx, "bob", escrow.Seller, 20501, 20511))
		contractDiff(t, "DayRange of one day", []escrow.DayCount{puts[0]}, rangeOf(tx, "bob", escrow.Seller, 20512, 20512))
		contractDiff(t, "DayRange empty", []escrow.DayCount{}, rangeOf(tx, "bob", escrow.Seller, 20513, 20600))
		contractDiff(t, "DayRange reversed", []escrow.DayCount{}, rangeOf(tx, "bob", escrow.Seller, 20512, 20500))
		contractDiff(t, "DayRange(bob, buyer)", []escrow.DayCount{puts[2]}, rangeOf(tx, "bob", escrow.Buyer, 0, 1<<30))
		all, err := contractCollect(tx.DayCounts)
		contractDiff(t, "DayCounts", []escrow.DayCount{puts[4], puts[2], puts[1], puts[3], puts[0]}, all)
		contractStops(t, "DayCounts", tx.DayCounts)
		contractStops(t, "DayRange", func(fn func(escrow.DayCount) error) error { return tx.DayRange("bob", escrow.Seller, 0, 1<<30, fn) })
		return err
	})
	// Replace one day, zero another; then a failed transaction that
	// writes a new day and changes one changes nothing.
	contractUpdate(t, s, func(tx escrow.Tx) error {
		if err := tx.PutDayCount(day("bob", escrow.Seller, 20510, 7, 1, 0)); err != nil {
			return err
		}
		return tx.PutDayCount(day("bob", escrow.Seller, 20500, 0, 0, 0))
	})
	before := contractDump(t, s)
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := tx.PutDayCount(day("bob", escrow.Seller, 20511, 1, 0, 0)); err != nil {
			return err
		}
		if err := tx.PutDayCount(day("bob", escrow.Seller, 20512, 0, 0, 0)); err != nil {
			return err
		}
		return errContractStop
	})
	if !errors.Is(err, errContractStop) {
		t.Fatalf("failed Update returned %v", err)
	}
	contractUnchanged(t, s, before, "a rolled-back PutDayCount")
	contractView(t, s, func(tx escrow.Tx) error {
		contractDiff(t, "DayRange after replace and zero", []escrow.DayCount{day("bob", escrow.Seller, 20510, 7, 1, 0), puts[0]},
			rangeOf(tx, "bob", escrow.Seller, 0, 1<<30))
		return nil
	})
}

// rcRating returns a rating with every field set, so that a field an
// adapter forgets to store shows up in the diff.
func rcRating(esc, rater, ratee string, at time.Time) escrow.Rating {
	return escrow.Rating{
		Escrow: esc, Rater: rater, Ratee: ratee, RateeRole: escrow.Seller,
		Score:     escrow.Positive,
		Details:   escrow.Details{Described: 5, Communication: 4, Shipping: 3},
		Comment:   "fast shipping, well packed: 很好",
		At:        at,
		Value:     cny("120.50"),
		Weight:    math.Log10(10 + 120.5),
		Revised:   true,
		Original:  escrow.Negative,
		RevisedAt: at.Add(48 * time.Hour),
		Reply:     "thank you",
		RepliedAt: at.Add(72 * time.Hour),
		// A store keeps what it is given: a rating is not both revised
		// and withdrawn, but every field must round-trip.
		Withdrawn:   true,
		WithdrawnAt: at.Add(96 * time.Hour),
		Voided:      true,
		VoidedBy:    "ops-1",
		VoidReason:  "brushing ring #7: 同一买家",
		VoidedAt:    at.Add(120 * time.Hour),
		Counted:     true,
		Reason:      escrow.ReasonVoided,
		Points:      1,
	}
}

// rcAggregate returns an aggregate with every field set and the given
// ranking keys.
func rcAggregate(party string, role escrow.Role, wilson, expectation float64) escrow.Aggregate {
	return escrow.Aggregate{
		Party: party, Role: role,
		Points: 7, Positive: 9, Neutral: 1, Negative: 2,
		Windows: [5]escrow.Counts{
			{Positive: 3}, {Positive: 6, Neutral: 1}, {Positive: 9, Neutral: 1, Negative: 2},
			{Positive: 9, Neutral: 1, Negative: 2}, {Positive: 8, Negative: 2},
		},
		WindowsDay:   20512,
		BetaPositive: 9.25, BetaNegative: 1.5, BetaAt: start.Add(time.Hour),
		DetailSums: [3]int64{40, 35, 20}, DetailCounts: [3]int64{9, 8, 5},
		Wilson: wilson, Expectation: expectation,
		UpdatedAt:        start.Add(2 * time.Hour),
		RekeyDay:         20513,
		DetailWindowSums: [3]int64{30, 21, 11}, DetailWindowCounts: [3]int64{7, 6, 3},
		DetailDays: true, UniquePositive: 4, UniqueNegative: 2, RatersKept: true,
	}
}

func rcPutRatings(t *testing.T, s escrow.Storage, rs ...escrow.Rating) {
	t.Helper()
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, r := range rs {
			if err := tx.PutRating(r); err != nil {
				return err
			}
		}
		return nil
	})
}

func rcPutAggregates(t *testing.T, s escrow.Storage, as ...escrow.Aggregate) {
	t.Helper()
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, a := range as {
			if err := tx.PutAggregate(a); err != nil {
				return err
			}
		}
		return nil
	})
}

// rcRatingsOf returns what RatingsOf reports for party.
func rcRatingsOf(t *testing.T, tx escrow.Tx, party string) []escrow.Rating {
	t.Helper()
	got, err := contractCollect(func(fn func(escrow.Rating) error) error { return tx.RatingsOf(party, escrow.RatingPos{}, fn) })
	if err != nil {
		t.Fatalf("RatingsOf(%q): %v", party, err)
	}
	return got
}

// rcRatingsAfter returns what RatingsOf reports for party after pos.
func rcRatingsAfter(t *testing.T, tx escrow.Tx, party string, pos escrow.RatingPos) []escrow.Rating {
	t.Helper()
	got, err := contractCollect(func(fn func(escrow.Rating) error) error { return tx.RatingsOf(party, pos, fn) })
	if err != nil {
		t.Fatalf("RatingsOf(%q, %+v): %v", party, pos, err)
	}
	return got
}

// rcTopAfter returns the sellers TopAggregates reports by key after pos.
func rcTopAfter(t *testing.T, tx escrow.Tx, key escrow.RankKey, pos escrow.RankPos, limit int) []string {
	t.Helper()
	top, err := tx.TopAggregates(escrow.Seller, key, pos, limit)
	if err != nil {
		t.Fatalf("TopAggregates(Seller, %d, %+v, %d): %v", key, pos, limit, err)
	}
	out := []string{}
	for _, a := range top {
		out = append(out, a.Party)
	}
	return out
}

// rcTop returns the parties TopAggregates reports, in order.
func rcTop(t *testing.T, tx escrow.Tx, role escrow.Role, key escrow.RankKey, limit int) []string {
	t.Helper()
	top, err := tx.TopAggregates(role, key, escrow.RankPos{}, limit)
	if err != nil {
		t.Fatalf("TopAggregates(%v, %d, %d): %v", role, key, limit, err)
	}
	if top == nil {
		t.Errorf("TopAggregates(%v, %d, %d) = nil, want an empty slice", role, key, limit)
	}
	out := []string{}
	for _, a := range top {
		out = append(out, a.Party)
	}
	return out
}

func rcEmpty(t *testing.T, h Harness) {
	s := open(t, h)
	contractView(t, s, func(tx escrow.Tx) error {
		_, err := tx.Rating("e-1", "alice")
		contractNotFound(t, "Rating on an empty store", err)
		_, err = tx.Aggregate("bob", escrow.Seller)
		contractNotFound(t, "Aggregate on an empty store", err)
		_, err = tx.PairMonth("bob", "alice", "2026-03")
		contractNotFound(t, "PairMonth on an empty store", err)
		_, err = tx.ItemMark("bob", "alice", "SKU-1")
		contractNotFound(t, "ItemMark on an empty store", err)

		fail := errors.New("callback called on an empty store")
		if err := tx.RatingsOf("bob", escrow.RatingPos{}, func(escrow.Rating) error { return fail }); err != nil {
			t.Errorf("RatingsOf: %v", err)
		}
		if err := tx.Ratings(func(escrow.Rating) error { return fail }); err != nil {
			t.Errorf("Ratings: %v", err)
		}
		if err := tx.Aggregates(func(escrow.Aggregate) error { return fail }); err != nil {
			t.Errorf("Aggregates: %v", err)
		}
		if err := tx.PairMonths(func(escrow.PairMonth) error { return fail }); err != nil {
			t.Errorf("PairMonths: %v", err)
		}
		if err := tx.ItemMarks(func(escrow.ItemMark) error { return fail }); err != nil {
			t.Errorf("ItemMarks: %v", err)
		}
		for _, role := range []escrow.Role{escrow.Seller, escrow.Buyer} {
			for _, key := range []escrow.RankKey{escrow.RankWilson, escrow.RankExpectation} {
				contractDiff(t, fmt.Sprintf("TopAggregates(%v, %d) on an empty store", role, key),
					[]string{}, rcTop(t, tx, role, key, 10))
			}
		}
		contractDiff(t, "DueAggregates on an empty store", []string{}, rcDue(t, tx, math.MaxInt32, 10))
		return nil
	})
}

// rcDue returns the aggregates DueAggregates reports, as party/role.
func rcDue(t *testing.T, tx escrow.Tx, day int32, limit int) []string {
	t.Helper()
	due, err := tx.DueAggregates(day, limit)
	if err != nil {
		t.Fatalf("DueAggregates(%d, %d): %v", day, limit, err)
	}
	if due == nil {
		t.Errorf("DueAggregates(%d, %d) = nil, want an empty slice", day, limit)
	}
	out := []string{}
	for _, a := range due {
		out = append(out, rcName(a))
	}
	return out
}

// rcName names an aggregate's party and role, as "bob/seller".
func rcName(a escrow.Aggregate) string {
	return a.Party + "/" + map[escrow.Role]string{escrow.Buyer: "buyer", escrow.Seller: "seller"}[a.Role]
}

// rcDueAt returns an aggregate due for re-keying on day (0: never).
func rcDueAt(party string, role escrow.Role, day int32) escrow.Aggregate {
	a := rcAggregate(party, role, 0.5, 0.5)
	a.RekeyDay = day
	return a
}

func rcDueAggregates(t *testing.T, h Harness) {
	s := open(t, h)
	first := rcDueAt("s-a", escrow.Buyer, 10)
	rcPutAggregates(t, s,
		rcDueAt("s-c", escrow.Seller, 10),
		rcDueAt("s-a", escrow.Seller, 12),
		rcDueAt("b-x", escrow.Buyer, 0), // never due
		rcDueAt("s-b", escrow.Seller, 10),
		first,
		// One party's two roles on one day: by role.
		rcDueAt("s-d", escrow.Seller, 11),
		rcDueAt("s-d", escrow.Buyer, 11),
	)
	all := []string{"s-a/buyer", "s-b/seller", "s-c/seller", "s-d/buyer", "s-d/seller", "s-a/seller"}
	check := func(what string, tests map[[2]int32][]string) {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for args, want := range tests {
				contractDiff(t, fmt.Sprintf("DueAggregates(%d, %d) %s", args[0], args[1], what),
					want, rcDue(t, tx, args[0], int(args[1])))
			}
			return nil
		})
	}
	check("as written", map[[2]int32][]string{
		{math.MaxInt32, 100}: all,
		{12, 6}:              all,
		{11, 100}:            all[:5],
		{10, 100}:            all[:3],
		{10, 2}:              all[:2],
		{9, 100}:             {},
		{math.MaxInt32, 0}:   {},
	})
	contractView(t, s, func(tx escrow.Tx) error {
		got, err := tx.DueAggregates(10, 1)
		contractDiff(t, "DueAggregates record", []escrow.Aggregate{first}, got)
		return err
	})

	// Replacing moves an aggregate in the index, or takes it out at 0;
	// a rolled-back replacement does neither.
	before := contractDump(t, s)
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		for _, a := range []escrow.Aggregate{rcDueAt("s-a", escrow.Seller, 0), rcDueAt("s-e", escrow.Seller, 1)} {
			if err := tx.PutAggregate(a); err != nil {
				return err
			}
		}
		return errContractAbort
	})
	if !errors.Is(err, errContractAbort) {
		t.Fatalf("Update returned %v, want %v", err, errContractAbort)
	}
	contractUnchanged(t, s, before, "a failed Update of re-key days")
	rcPutAggregates(t, s, rcDueAt("s-a", escrow.Seller, 9), rcDueAt("s-b", escrow.Seller, 0), rcDueAt("s-c", escrow.Seller, 10))
	check("after replacing", map[[2]int32][]string{
		{math.MaxInt32, 100}: {"s-a/seller", "s-a/buyer", "s-c/seller", "s-d/buyer", "s-d/seller"},
		{9, 100}:             {"s-a/seller"},
	})
}

func rcRatings(t *testing.T, h Harness) {
	s := open(t, h)
	china := time.FixedZone("CST", 8*60*60)
	// By Escrow, then Rater. "e-1" < "e-1-a": an adapter that sorts on
	// escrow+"/"+rater puts "e-1-a/…" before "e-1/…" and fails.
	want := []escrow.Rating{
		rcRating("e-1", "alice", "bob", start),
		rcRating("e-1", "bob", "alice", start.Add(time.Hour).In(china)),
		rcRating("e-1-a", "alice", "bob", start.Add(2*time.Hour)),
		rcRating("e-2", "carol", "bob", start.Add(-time.Hour)),
	}
	want[1].RateeRole, want[1].Score, want[1].Details = escrow.Buyer, escrow.Negative, escrow.Details{}
	want[1].Revised, want[1].Original, want[1].RevisedAt = false, 0, time.Time{}
	want[1].Points = -1
	want[2].Default, want[2].Comment, want[2].Reply, want[2].RepliedAt = true, "", "", time.Time{}
	want[3].Counted, want[3].Reason, want[3].Points = false, escrow.ReasonPairCap, 0
	rcPutRatings(t, s, want[3], want[1], want[2], want[0])

	check := func() {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for _, r := range want {
				got, err := tx.Rating(r.Escrow, r.Rater)
				if err != nil {
					return fmt.Errorf("Rating(%q, %q): %w", r.Escrow, r.Rater, err)
				}
				contractDiff(t, "Rating("+r.Escrow+", "+r.Rater+")", r, got)
			}
			got, err := contractCollect(tx.Ratings)
			if err != nil {
				return fmt.Errorf("Ratings: %w", err)
			}
			contractDiff(t, "Ratings", want, got)
			for _, k := range [][2]string{{"e-1", "carol"}, {"e-2", "alice"}, {"e-3", "alice"}, {"E-1", "alice"}, {"e-1", "ALICE"}} {
				_, err := tx.Rating(k[0], k[1])
				contractNotFound(t, fmt.Sprintf("Rating(%q, %q)", k[0], k[1]), err)
			}
			contractStops(t, "Ratings", tx.Ratings)
			contractStops(t, "RatingsOf(bob)", func(fn func(escrow.Rating) error) error { return tx.RatingsOf("bob", escrow.RatingPos{}, fn) })
			return nil
		})
	}
	check()

	// Replacing keeps one record under escrow and rater, with the new content.
	want[0].Score, want[0].Original, want[0].Reply, want[0].Counted, want[0].Reason, want[0].Points =
		escrow.Neutral, escrow.Negative, "revised after a call", false, escrow.ReasonBelowMinimum, 0
	rcPutRatings(t, s, want[0])
	check()
}

func rcRatingsOfOrder(t *testing.T, h Harness) {
	s := open(t, h)
	china := time.FixedZone("CST", 8*60*60)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	// bob's ratings, in the order RatingsOf must report them: by At (as
	// instants: one is written in UTC+8), then Escrow, then Rater.
	bob := []escrow.Rating{
		rcRating("e-9", "carol", "bob", at(time.Hour)),
		rcRating("e-1", "alice", "bob", at(2*time.Hour).In(china)),
		rcRating("e-1", "dan", "bob", at(2*time.Hour)),
		rcRating("e-2", "alice", "bob", at(2*time.Hour)),
		rcRating("e-0", "carol", "bob", at(3*time.Hour)),
	}
	alice := []escrow.Rating{
		rcRating("e-2", "bob", "alice", at(-time.Hour)),
		rcRating("e-1", "bob", "alice", at(2*time.Hour)),
	}
	// Written out of order and interleaved with another ratee's.
	rcPutRatings(t, s, bob[4], alice[1], bob[2], bob[0])
	rcPutRatings(t, s, bob[3], alice[0], bob[1])

	check := func(what string) {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			contractDiff(t, "RatingsOf(bob) "+what, bob, rcRatingsOf(t, tx, "bob"))
			contractDiff(t, "RatingsOf(alice) "+what, alice, rcRatingsOf(t, tx, "alice"))
			contractDiff(t, "RatingsOf(carol) "+what, []escrow.Rating{}, rcRatingsOf(t, tx, "carol"))
			// From a place: the rating there, or where one would be.
			for i, r := range bob {
				pos := escrow.RatingPos{At: r.At, Escrow: r.Escrow, Rater: r.Rater}
				contractDiff(t, fmt.Sprintf("RatingsOf(bob) after %+v %s", pos, what), bob[i+1:], rcRatingsAfter(t, tx, "bob", pos))
			}
			between := escrow.RatingPos{At: at(2 * time.Hour), Escrow: "e-1", Rater: "b"} // after e-1 by alice
			after := []escrow.Rating{}
			for _, r := range bob {
				if c := r.At.Compare(between.At); c > 0 || c == 0 && (r.Escrow > between.Escrow ||
					r.Escrow == between.Escrow && r.Rater > between.Rater) {
					after = append(after, r)
				}
			}
			contractDiff(t, "RatingsOf(bob) after a place between two "+what, after, rcRatingsAfter(t, tx, "bob", between))
			// After a time alone: every rating at that time and later.
			from := []escrow.Rating{}
			for _, r := range bob {
				if !r.At.Before(at(2 * time.Hour)) {
					from = append(from, r)
				}
			}
			contractDiff(t, "RatingsOf(bob) after a time alone "+what, from,
				rcRatingsAfter(t, tx, "bob", escrow.RatingPos{At: at(2 * time.Hour)}))
			first := escrow.RatingPos{At: at(-time.Hour), Escrow: "e-2", Rater: "bob"} // alice's first
			contractDiff(t, "RatingsOf(bob) after a place of another ratee "+what, bob, rcRatingsAfter(t, tx, "bob", first))
			return nil
		})
	}
	check("as written")

	// A replacement at the same time keeps its place and is not listed twice.
	bob[2].Reply, bob[2].RepliedAt = "sorry about the box", at(5*time.Hour)
	rcPutRatings(t, s, bob[2])
	check("after replacing a rating in place")

	// A replacement at another time moves; one for another ratee moves to
	// that ratee's list.
	moved := bob[0]
	moved.At = at(4 * time.Hour)
	bob = append(bob[1:], moved)
	rcPutRatings(t, s, moved)
	check("after moving a rating later")

	toAlice := bob[1]
	toAlice.Ratee, toAlice.RateeRole = "alice", escrow.Buyer
	bob = append(bob[:1:1], bob[2:]...)
	alice = append(alice, toAlice)
	rcPutRatings(t, s, toAlice)
	check("after moving a rating to another ratee")
}

func rcAggregates(t *testing.T, h Harness) {
	s := open(t, h)
	// By Party, then Role (Buyer before Seller). "a" < "a-b" < "ab".
	want := []escrow.Aggregate{
		rcAggregate("a", escrow.Buyer, 0.25, 0.5),
		rcAggregate("a", escrow.Seller, 0.75, 0.8),
		rcAggregate("a-b", escrow.Seller, 0.5, 0.6),
		rcAggregate("ab", escrow.Buyer, 0, 0.5),
	}
	want[1].Windows = [5]escrow.Counts{}
	want[3].BetaAt = start.In(time.FixedZone("CST", 8*60*60))
	rcPutAggregates(t, s, want[3], want[1], want[0], want[2])

	check := func() {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for _, a := range want {
				got, err := tx.Aggregate(a.Party, a.Role)
				if err != nil {
					return fmt.Errorf("Aggregate(%q, %v): %w", a.Party, a.Role, err)
				}
				contractDiff(t, fmt.Sprintf("Aggregate(%s, %v)", a.Party, a.Role), a, got)
			}
			got, err := contractCollect(tx.Aggregates)
			if err != nil {
				return fmt.Errorf("Aggregates: %w", err)
			}
			contractDiff(t, "Aggregates", want, got)
			for _, k := range []struct {
				party string
				role  escrow.Role
			}{{"a-b", escrow.Buyer}, {"ab", escrow.Seller}, {"b", escrow.Seller}, {"A", escrow.Buyer}} {
				_, err := tx.Aggregate(k.party, k.role)
				contractNotFound(t, fmt.Sprintf("Aggregate(%q, %v)", k.party, k.role), err)
			}
			contractStops(t, "Aggregates", tx.Aggregates)
			return nil
		})
	}
	check()

	want[2].Points, want[2].Positive, want[2].WindowsDay = 8, 10, 20513
	want[2].Windows[0].Positive++
	rcPutAggregates(t, s, want[2])
	check()
}

func rcTopAggregates(t *testing.T, h Harness) {
	s := open(t, h)
	half := 0.5
	justAbove := math.Nextafter(half, 1) // differs from 0.5 in the last bit only
	top := rcAggregate("s-c", escrow.Seller, 0.95, 0.6)
	rcPutAggregates(t, s,
		rcAggregate("s-d", escrow.Seller, 0, 0.5),
		rcAggregate("s-b", escrow.Seller, 0.9, 0.7),
		rcAggregate("s-a", escrow.Seller, 0.9, 0.5),
		top,
		rcAggregate("s-e", escrow.Seller, half, justAbove),
		rcAggregate("s-f", escrow.Seller, justAbove, half),
		// Buyers, and a seller's buyer aggregate, rank on their own.
		rcAggregate("s-a", escrow.Buyer, 0.99, 0.99),
		rcAggregate("b-x", escrow.Buyer, 0.1, 0.2),
	)
	tests := []struct {
		role  escrow.Role
		key   escrow.RankKey
		limit int
		want  []string
	}{
		{escrow.Seller, escrow.RankWilson, 100, []string{"s-c", "s-a", "s-b", "s-f", "s-e", "s-d"}},
		{escrow.Seller, escrow.RankWilson, 6, []string{"s-c", "s-a", "s-b", "s-f", "s-e", "s-d"}},
		{escrow.Seller, escrow.RankWilson, 2, []string{"s-c", "s-a"}},
		{escrow.Seller, escrow.RankWilson, 0, []string{}},
		{escrow.Seller, escrow.RankExpectation, 100, []string{"s-b", "s-c", "s-e", "s-a", "s-d", "s-f"}},
		{escrow.Seller, escrow.RankExpectation, 3, []string{"s-b", "s-c", "s-e"}},
		{escrow.Buyer, escrow.RankWilson, 100, []string{"s-a", "b-x"}},
		{escrow.Buyer, escrow.RankExpectation, 1, []string{"s-a"}},
	}
	check := func(what string) {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for _, tc := range tests {
				contractDiff(t, fmt.Sprintf("TopAggregates(%v, %d, %d) %s", tc.role, tc.key, tc.limit, what),
					tc.want, rcTop(t, tx, tc.role, tc.key, tc.limit))
			}
			// From a place: the aggregate there, or where one would be.
			for _, key := range []escrow.RankKey{escrow.RankWilson, escrow.RankExpectation} {
				all := rcTop(t, tx, escrow.Seller, key, 100)
				for i, party := range all {
					a, err := tx.Aggregate(party, escrow.Seller)
					if err != nil {
						return err
					}
					pos := escrow.RankPos{Score: a.Wilson, Party: party}
					if key == escrow.RankExpectation {
						pos.Score = a.Expectation
					}
					contractDiff(t, fmt.Sprintf("TopAggregates(Seller, %d) after %+v %s", key, pos, what),
						all[i+1:], rcTopAfter(t, tx, key, pos, 100))
					if i+2 <= len(all) {
						contractDiff(t, fmt.Sprintf("TopAggregates(Seller, %d, limit 1) after %+v %s", key, pos, what),
							all[i+1:i+2], rcTopAfter(t, tx, key, pos, 1))
					}
				}
			}
			last := rcTop(t, tx, escrow.Seller, escrow.RankWilson, 100)
			below := escrow.RankPos{Score: -1, Party: last[len(last)-1]} // ranks as 0, where the last is
			contractDiff(t, "TopAggregates after a place below zero "+what, []string{}, rcTopAfter(t, tx, escrow.RankWilson, below, 100))
			// The records themselves come back whole.
			got, err := tx.TopAggregates(escrow.Seller, escrow.RankWilson, escrow.RankPos{}, 1)
			if err != nil {
				return err
			}
			contractDiff(t, "TopAggregates record "+what, []escrow.Aggregate{top}, got)
			return nil
		})
	}
	check("as written")

	// Replacing an aggregate moves it in both rankings, without leaving its
	// old place behind.
	top = rcAggregate("s-d", escrow.Seller, 0.97, 0.65)
	rcPutAggregates(t, s, top)
	tests[0].want = []string{"s-d", "s-c", "s-a", "s-b", "s-f", "s-e"}
	tests[1].want = []string{"s-d", "s-c", "s-a", "s-b", "s-f", "s-e"}
	tests[2].want = []string{"s-d", "s-c"}
	tests[4].want = []string{"s-b", "s-d", "s-c", "s-e", "s-a", "s-f"}
	tests[5].want = []string{"s-b", "s-d", "s-c"}
	check("after replacing s-d")
}

func rcPairMonths(t *testing.T, h Harness) {
	s := open(t, h)
	// By Ratee, then Rater, then Month.
	want := []escrow.PairMonth{
		{Ratee: "a", Rater: "b", Month: "2025-12", Positive: 6, Negative: 0},
		{Ratee: "a", Rater: "b", Month: "2026-01", Positive: 1, Negative: 2},
		{Ratee: "a", Rater: "b-c", Month: "2026-01", Positive: 3},
		{Ratee: "a-b", Rater: "a", Month: "2026-01", Negative: 6},
		{Ratee: "ab", Rater: "a", Month: "2026-03"},
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, i := range []int{4, 1, 3, 0, 2} {
			if err := tx.PutPairMonth(want[i]); err != nil {
				return err
			}
		}
		return nil
	})
	check := func() {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for _, p := range want {
				got, err := tx.PairMonth(p.Ratee, p.Rater, p.Month)
				if err != nil {
					return fmt.Errorf("PairMonth(%q, %q, %q): %w", p.Ratee, p.Rater, p.Month, err)
				}
				contractDiff(t, "PairMonth("+p.Ratee+", "+p.Rater+", "+p.Month+")", p, got)
			}
			got, err := contractCollect(tx.PairMonths)
			if err != nil {
				return fmt.Errorf("PairMonths: %w", err)
			}
			contractDiff(t, "PairMonths", want, got)
			for _, k := range [][3]string{{"b", "a", "2026-01"}, {"a", "b", "2026-02"}, {"a", "c", "2026-01"}} {
				_, err := tx.PairMonth(k[0], k[1], k[2])
				contractNotFound(t, fmt.Sprintf("PairMonth(%q, %q, %q)", k[0], k[1], k[2]), err)
			}
			contractStops(t, "PairMonths", tx.PairMonths)
			return nil
		})
	}
	check()
	want[1].Positive, want[1].Negative = 2, 1
	contractUpdate(t, s, func(tx escrow.Tx) error { return tx.PutPairMonth(want[1]) })
	check()
}

// rcItemMarks checks ItemMark, PutItemMark and ItemMarks: marks read back
// as written, in order of Ratee, Rater, then Item (names that are
// prefixes of each other included); a put replaces; a mark with an empty
// Escrow removes one, in the transaction that does it and after, and
// removing a mark that is not there is no error.
func rcItemMarks(t *testing.T, h Harness) {
	s := open(t, h)
	china := time.FixedZone("CST", 8*3600)
	want := []escrow.ItemMark{
		{Ratee: "a", Rater: "b", Item: "SKU-1", Escrow: "e-3", At: start},
		{Ratee: "a", Rater: "b", Item: "SKU-1/blue", Escrow: "e-1", At: start.Add(-time.Hour).In(china)},
		{Ratee: "a", Rater: "b-c", Item: "a teapot, 1.2 L", Escrow: "e-2", At: start.Add(time.Minute)},
		{Ratee: "a-b", Rater: "a", Item: "SKU-1", Escrow: "e-4", At: start.Add(time.Hour)},
		{Ratee: "ab", Rater: "a", Item: "茶壶", Escrow: "e-5", At: start.Add(2 * time.Hour)},
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, i := range []int{4, 1, 3, 0, 2} {
			if err := tx.PutItemMark(want[i]); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(when string) {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for _, m := range want {
				got, err := tx.ItemMark(m.Ratee, m.Rater, m.Item)
				if err != nil {
					return fmt.Errorf("ItemMark(%q, %q, %q) %s: %w", m.Ratee, m.Rater, m.Item, when, err)
				}
				contractDiff(t, "ItemMark("+m.Ratee+", "+m.Rater+", "+m.Item+") "+when, m, got)
			}
			got, err := contractCollect(tx.ItemMarks)
			if err != nil {
				return fmt.Errorf("ItemMarks: %w", err)
			}
			if len(want) == 0 {
				contractDiff(t, "ItemMarks "+when, []escrow.ItemMark{}, got)
			} else {
				contractDiff(t, "ItemMarks "+when, want, got)
			}
			for _, k := range [][3]string{{"b", "a", "SKU-1"}, {"a", "b", "SKU-2"}, {"a", "c", "SKU-1"}, {"a", "b", "SKU-"}} {
				_, err := tx.ItemMark(k[0], k[1], k[2])
				contractNotFound(t, fmt.Sprintf("ItemMark(%q, %q, %q) %s", k[0], k[1], k[2], when), err)
			}
			if len(want) >= 3 {
				contractStops(t, "ItemMarks", tx.ItemMarks)
			}
			return nil
		})
	}
	check("after the puts")

	// Replaced: the mark moves to another rating.
	want[1].Escrow, want[1].At = "e-6", start.Add(3*time.Hour)
	contractUpdate(t, s, func(tx escrow.Tx) error { return tx.PutItemMark(want[1]) })
	check("after a replacement")

	// Removed, and seen removed inside the transaction; removing one that
	// is not there changes nothing.
	gone := want[3]
	contractUpdate(t, s, func(tx escrow.Tx) error {
		if err := tx.PutItemMark(escrow.ItemMark{Ratee: gone.Ratee, Rater: gone.Rater, Item: gone.Item}); err != nil {
			return err
		}
		if _, err := tx.ItemMark(gone.Ratee, gone.Rater, gone.Item); !errors.Is(err, escrow.ErrNotFound) {
			t.Errorf("ItemMark of a mark removed in the same transaction = %v, want ErrNotFound", err)
		}
		n := 0
		if err := tx.ItemMarks(func(escrow.ItemMark) error { n++; return nil }); err != nil {
			return err
		}
		if n != len(want)-1 {
			t.Errorf("ItemMarks in the removing transaction: %d marks, want %d", n, len(want)-1)
		}
		return tx.PutItemMark(escrow.ItemMark{Ratee: "nobody", Rater: "b", Item: "SKU-1"})
	})
	want = append(want[:3], want[4:]...)
	check("after a removal")
	contractView(t, s, func(tx escrow.Tx) error {
		_, err := tx.ItemMark(gone.Ratee, gone.Rater, gone.Item)
		contractNotFound(t, "ItemMark of a removed mark", err)
		return nil
	})

	// Put back after its removal, and removed again with the rest.
	contractUpdate(t, s, func(tx escrow.Tx) error { return tx.PutItemMark(gone) })
	want = append(want[:3], append([]escrow.ItemMark{gone}, want[3:]...)...)
	check("after putting a removed mark back")
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, m := range want {
			m.Escrow = ""
			if err := tx.PutItemMark(m); err != nil {
				return err
			}
		}
		return nil
	})
	want = nil
	check("after removing every mark")
}

// rcSeed commits ratings of two ratees, aggregates of both roles and pair
// records, for the rollback tests.
func rcSeed(t *testing.T, s escrow.Storage) {
	t.Helper()
	contractSeed(t, s)
	rcPutRatings(t, s,
		rcRating("e-1", "alice", "bob", start),
		rcRating("e-2", "alice", "bob", start.Add(time.Hour)),
		rcRating("e-1", "bob", "alice", start.Add(30*time.Minute)),
	)
	rcPutAggregates(t, s,
		rcAggregate("bob", escrow.Seller, 0.6, 0.7),
		rcAggregate("carl", escrow.Seller, 0.5, 0.8),
		rcAggregate("alice", escrow.Buyer, 0.3, 0.4),
	)
	contractUpdate(t, s, func(tx escrow.Tx) error {
		if err := tx.PutItemMark(escrow.ItemMark{Ratee: "bob", Rater: "alice", Item: "SKU-9", Escrow: "e-2", At: start.Add(time.Hour)}); err != nil {
			return err
		}
		if err := tx.PutItemMark(escrow.ItemMark{Ratee: "bob", Rater: "alice", Item: "SKU-8", Escrow: "e-1", At: start}); err != nil {
			return err
		}
		return tx.PutPairMonth(escrow.PairMonth{Ratee: "bob", Rater: "alice", Month: "2026-03", Positive: 2})
	})
}

// rcWriteAll makes a write of every reputation kind, new and replacing,
// including a rating moved to another time and another ratee.
func rcWriteAll(tx escrow.Tx) error {
	moved := rcRating("e-1", "alice", "carl", start.Add(-time.Hour))
	later := rcRating("e-2", "alice", "bob", start.Add(5*time.Hour))
	later.Score = escrow.Negative
	fresh := rcRating("e-3", "dan", "bob", start.Add(-2*time.Hour))
	for _, r := range []escrow.Rating{moved, later, fresh} {
		if err := tx.PutRating(r); err != nil {
			return err
		}
	}
	for _, a := range []escrow.Aggregate{
		rcAggregate("bob", escrow.Seller, 0.1, 0.9), // replaced and moved in both rankings
		rcAggregate("dan", escrow.Seller, 0.99, 0.1),
		rcAggregate("bob", escrow.Buyer, 0.2, 0.2),
		rcAggregate("bob", escrow.Seller, 0.05, 0.95), // replaced twice in one transaction
	} {
		if err := tx.PutAggregate(a); err != nil {
			return err
		}
	}
	for _, p := range []escrow.PairMonth{
		{Ratee: "bob", Rater: "alice", Month: "2026-03", Positive: 3},
		{Ratee: "bob", Rater: "alice", Month: "2026-04", Negative: 1},
		{Ratee: "bob", Rater: "alice", Month: "2026-03", Positive: 4},
	} {
		if err := tx.PutPairMonth(p); err != nil {
			return err
		}
	}
	for _, m := range []escrow.ItemMark{
		{Ratee: "bob", Rater: "alice", Item: "SKU-9", Escrow: "e-3", At: start.Add(2 * time.Hour)}, // replaced
		{Ratee: "bob", Rater: "alice", Item: "SKU-8"},                                              // removed
		{Ratee: "bob", Rater: "dan", Item: "SKU-9", Escrow: "e-3", At: start},                      // new
	} {
		if err := tx.PutItemMark(m); err != nil {
			return err
		}
	}
	return nil
}

func rcRollback(t *testing.T, h Harness) {
	s := open(t, h)
	rcSeed(t, s)
	before := contractDump(t, s)
	contractView(t, s, func(tx escrow.Tx) error {
		bob, alice, carl := rcRatingsOf(t, tx, "bob"), rcRatingsOf(t, tx, "alice"), rcRatingsOf(t, tx, "carl")
		if len(bob) != 2 || len(alice) != 1 || len(carl) != 0 {
			t.Fatalf("seeded ratings: %d of bob, %d of alice, %d of carl; want 2, 1, 0", len(bob), len(alice), len(carl))
		}
		return nil
	})

	// Inside the transaction the writes are visible.
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := rcWriteAll(tx); err != nil {
			return err
		}
		bob := rcRatingsOf(t, tx, "bob")
		if len(bob) != 2 || bob[0].Escrow != "e-3" || bob[1].Escrow != "e-2" || bob[1].Score != escrow.Negative {
			t.Errorf("RatingsOf(bob) inside the transaction = %+v, want e-3 then the negative e-2", bob)
		}
		contractDiff(t, "TopAggregates(Seller, Wilson) inside the transaction", []string{"dan", "carl", "bob"},
			rcTop(t, tx, escrow.Seller, escrow.RankWilson, 100))
		return errContractAbort
	})
	if !errors.Is(err, errContractAbort) {
		t.Fatalf("Update returned %v, want %v", err, errContractAbort)
	}
	// The dump covers the ratee index and both rankings.
	contractUnchanged(t, s, before, "a failed Update of reputation records")

	pv := &contractPanic{"reputation"}
	got := contractRecover(func() {
		_ = s.Update(context.Background(), func(tx escrow.Tx) error {
			if err := rcWriteAll(tx); err != nil {
				return err
			}
			panic(pv)
		})
	})
	if got != pv {
		t.Fatalf("Update re-panicked with %v, want %v", got, pv)
	}
	contractUnchanged(t, s, before, "a panicking Update of reputation records")

	// The store still takes writes after the rollbacks, and they commit.
	contractUpdate(t, s, rcWriteAll)
	contractView(t, s, func(tx escrow.Tx) error {
		contractDiff(t, "TopAggregates(Seller, Wilson) after commit", []string{"dan", "carl", "bob"},
			rcTop(t, tx, escrow.Seller, escrow.RankWilson, 100))
		contractDiff(t, "TopAggregates(Seller, Expectation) after commit", []string{"bob", "carl", "dan"},
			rcTop(t, tx, escrow.Seller, escrow.RankExpectation, 100))
		carl := rcRatingsOf(t, tx, "carl")
		if len(carl) != 1 || carl[0].Escrow != "e-1" || carl[0].Rater != "alice" {
			t.Errorf("RatingsOf(carl) after commit = %+v, want the moved rating", carl)
		}
		p, err := tx.PairMonth("bob", "alice", "2026-03")
		if err != nil {
			return err
		}
		if p.Positive != 4 {
			t.Errorf("PairMonth after commit: Positive %d, want 4", p.Positive)
		}
		marks, err := contractCollect(tx.ItemMarks)
		if err != nil {
			return err
		}
		contractDiff(t, "ItemMarks after commit", []escrow.ItemMark{
			{Ratee: "bob", Rater: "alice", Item: "SKU-9", Escrow: "e-3", At: start.Add(2 * time.Hour)},
			{Ratee: "bob", Rater: "dan", Item: "SKU-9", Escrow: "e-3", At: start},
		}, marks)
		return nil
	})
}

func rcNoAliasing(t *testing.T, h Harness) {
	s := open(t, h)
	want := rcAggregate("bob", escrow.Seller, 0.6, 0.7)
	scribble := func(a *escrow.Aggregate) {
		a.Windows[0] = escrow.Counts{Negative: 99}
	}
	check := func(tx escrow.Tx, when string) error {
		t.Helper()
		a, err := tx.Aggregate("bob", escrow.Seller)
		if err != nil {
			return err
		}
		contractDiff(t, "Aggregate "+when, want, a)
		scribble(&a)
		top, err := tx.TopAggregates(escrow.Seller, escrow.RankWilson, escrow.RankPos{}, 10)
		if err != nil {
			return err
		}
		contractDiff(t, "TopAggregates "+when, []escrow.Aggregate{want}, top)
		for i := range top {
			scribble(&top[i])
		}
		return tx.Aggregates(func(a escrow.Aggregate) error { scribble(&a); return nil })
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		a := rcAggregate("bob", escrow.Seller, 0.6, 0.7)
		if err := tx.PutAggregate(a); err != nil {
			return err
		}
		scribble(&a)
		if err := check(tx, "in the writing transaction"); err != nil {
			return err
		}
		return check(tx, "read again in the writing transaction")
	})
	contractView(t, s, func(tx escrow.Tx) error {
		if err := check(tx, "after commit"); err != nil {
			return err
		}
		return check(tx, "read again after commit")
	})
}

func rcViewReadOnly(t *testing.T, h Harness) {
	s := open(t, h)
	rcSeed(t, s)
	before := contractDump(t, s)
	contractView(t, s, func(tx escrow.Tx) error {
		writes := map[string]error{
			"PutRating":            tx.PutRating(rcRating("e-9", "zed", "bob", start)),
			"PutAggregate":         tx.PutAggregate(rcAggregate("zed", escrow.Seller, 1, 1)),
			"PutPairMonth":         tx.PutPairMonth(escrow.PairMonth{Ratee: "bob", Rater: "zed", Month: "2026-03", Positive: 1}),
			"PutItemMark":          tx.PutItemMark(escrow.ItemMark{Ratee: "bob", Rater: "zed", Item: "SKU-9", Escrow: "e-9", At: start}),
			"PutItemMark removing": tx.PutItemMark(escrow.ItemMark{Ratee: "bob", Rater: "alice", Item: "SKU-9"}),
		}
		for name, err := range writes {
			if !errors.Is(err, escrow.ErrReadOnly) {
				t.Errorf("%s in View returned %v, want ErrReadOnly", name, err)
			}
		}
		_, err := tx.Rating("e-9", "zed")
		contractNotFound(t, "Rating after a refused PutRating", err)
		_, err = tx.Aggregate("zed", escrow.Seller)
		contractNotFound(t, "Aggregate after a refused PutAggregate", err)
		_, err = tx.PairMonth("bob", "zed", "2026-03")
		contractNotFound(t, "PairMonth after a refused PutPairMonth", err)
		_, err = tx.ItemMark("bob", "zed", "SKU-9")
		contractNotFound(t, "ItemMark after a refused PutItemMark", err)
		if _, err := tx.ItemMark("bob", "alice", "SKU-9"); err != nil {
			t.Errorf("ItemMark after a refused removal: %v", err)
		}
		contractDiff(t, "TopAggregates after a refused PutAggregate", []string{"bob", "carl"},
			rcTop(t, tx, escrow.Seller, escrow.RankWilson, 10))
		return nil
	})
	contractUnchanged(t, s, before, "reputation writes in a View")
}

func rcDueIndex(t *testing.T, h Harness) {
	s := open(t, h)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	mk := func(id string, due, ratingDue time.Time) escrow.Escrow {
		e := contractEscrow(id, due)
		e.RatingDueAt = ratingDue
		return e
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, e := range []escrow.Escrow{
			mk("e-timer", at(3*time.Hour), time.Time{}),
			mk("e-rating", time.Time{}, at(time.Hour)),                 // the rating window alone
			mk("e-both-timer-first", at(2*time.Hour), at(5*time.Hour)), // the timer is earlier
			mk("e-both-rating-first", at(6*time.Hour), at(4*time.Hour)),
			mk("e-none", time.Time{}, time.Time{}),
		} {
			if err := tx.PutEscrow(e); err != nil {
				return err
			}
		}
		return nil
	})
	contractDiff(t, "DueEscrows under NextDue",
		[]string{"e-rating", "e-both-timer-first", "e-timer", "e-both-rating-first"}, contractDue(t, s, maxTime, 100))
	contractDiff(t, "DueEscrows at 4h", []string{"e-rating", "e-both-timer-first", "e-timer", "e-both-rating-first"},
		contractDue(t, s, at(4*time.Hour), 100))
	contractDiff(t, "DueEscrows at 4h less a second", []string{"e-rating", "e-both-timer-first", "e-timer"},
		contractDue(t, s, at(4*time.Hour-time.Second), 100))
	contractDiff(t, "DueEscrows at 2h", []string{"e-rating", "e-both-timer-first"}, contractDue(t, s, at(2*time.Hour), 100))

	// Moving: the timer of e-both-timer-first stops, leaving its rating
	// window (5h); e-rating's window closes (both zero: out of the index);
	// e-none opens a rating window; e-timer gets one earlier than its timer.
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, c := range []struct {
			id             string
			due, ratingDue time.Time
		}{
			{"e-both-timer-first", time.Time{}, at(5 * time.Hour)},
			{"e-rating", time.Time{}, time.Time{}},
			{"e-none", time.Time{}, at(90 * time.Minute)},
			{"e-timer", at(3 * time.Hour), at(30 * time.Minute)},
		} {
			e, err := tx.Escrow(c.id)
			if err != nil {
				return err
			}
			e.DueAt, e.RatingDueAt = c.due, c.ratingDue
			if err := tx.PutEscrow(e); err != nil {
				return err
			}
		}
		return nil
	})
	contractDiff(t, "DueEscrows after moving",
		[]string{"e-timer", "e-none", "e-both-rating-first", "e-both-timer-first"}, contractDue(t, s, maxTime, 100))
	contractDiff(t, "DueEscrows at 1h after moving", []string{"e-timer"}, contractDue(t, s, at(time.Hour), 100))
	contractView(t, s, func(tx escrow.Tx) error {
		e, err := tx.Escrow("e-rating")
		if err != nil {
			return err
		}
		if !e.DueAt.IsZero() || !e.RatingDueAt.IsZero() {
			t.Errorf("e-rating DueAt %v, RatingDueAt %v after clearing both, want zero", e.DueAt, e.RatingDueAt)
		}
		return nil
	})

	// A rolled-back move leaves the index as it was.
	before := contractDump(t, s)
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		e, err := tx.Escrow("e-none")
		if err != nil {
			return err
		}
		e.RatingDueAt = time.Time{}
		if err := tx.PutEscrow(e); err != nil {
			return err
		}
		if err := tx.PutEscrow(mk("e-new", time.Time{}, at(-time.Hour))); err != nil {
			return err
		}
		return errContractAbort
	})
	if !errors.Is(err, errContractAbort) {
		t.Fatalf("Update returned %v, want %v", err, errContractAbort)
	}
	contractUnchanged(t, s, before, "a failed Update of rating deadlines")
	contractDiff(t, "DueEscrows after a failed Update",
		[]string{"e-timer", "e-none", "e-both-rating-first", "e-both-timer-first"}, contractDue(t, s, maxTime, 100))
}
