package memstore

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/escrowkit/escrow"
)

// This file holds the methods of escrow.Tx for ratings, aggregates, day
// counts, monthly pair counters, item marks and raters' days.

// reputation holds the reputation records and their indexes, whose rows
// point to the records of their table.
type reputation struct {
	ratings table[ratingKey, escrow.Rating]
	byRatee table[string, []rateeRef] // the ratings of each ratee
	aggs    table[aggKey, escrow.Aggregate]
	ranks   tree[row[rankKey, escrow.Aggregate]]
	rekeys  tree[row[rekeyKey, escrow.Aggregate]]
	days    table[dayKey, escrow.DayCount]
	pairs   table[pairKey, escrow.PairMonth]
	marks   table[markKey, escrow.ItemMark]
	raters  table[raterKey, escrow.RaterDays]
}

func newReputation() reputation {
	return reputation{
		ratings: newTable[ratingKey, escrow.Rating](ratingKey.compare),
		byRatee: newTable[string, []rateeRef](strings.Compare),
		aggs:    newTable[aggKey, escrow.Aggregate](aggKey.compare),
		ranks:   newTree(byKey[rankKey, escrow.Aggregate](rankKey.compare)),
		rekeys:  newTree(byKey[rekeyKey, escrow.Aggregate](rekeyKey.compare)),
		days:    newTable[dayKey, escrow.DayCount](dayKey.compare),
		pairs:   newTable[pairKey, escrow.PairMonth](pairKey.compare),
		marks:   newTable[markKey, escrow.ItemMark](markKey.compare),
		raters:  newTable[raterKey, escrow.RaterDays](raterKey.compare),
	}
}

type ratingKey struct{ escrow, rater string }

func (a ratingKey) compare(b ratingKey) int {
	if c := strings.Compare(a.escrow, b.escrow); c != 0 {
		return c
	}
	return strings.Compare(a.rater, b.rater)
}

// rateeRef files a rating in its ratee's list, in the order RatingsOf
// reports them.
type rateeRef struct {
	at int64 // nanos(At)
	ratingKey
}

func (a rateeRef) compare(b rateeRef) int {
	if a.at != b.at {
		return cmp.Compare(a.at, b.at)
	}
	return a.ratingKey.compare(b.ratingKey)
}

type aggKey struct {
	party string
	role  escrow.Role
}

func (a aggKey) compare(b aggKey) int {
	if c := strings.Compare(a.party, b.party); c != 0 {
		return c
	}
	return cmp.Compare(a.role, b.role)
}

// rankKey files an aggregate in the ranking of its role by one key:
// highest score first, ties by party.
type rankKey struct {
	role  escrow.Role
	by    escrow.RankKey
	score float64
	party string
}

func (a rankKey) compare(b rankKey) int {
	if c := cmp.Or(cmp.Compare(a.role, b.role), cmp.Compare(a.by, b.by), cmp.Compare(b.score, a.score)); c != 0 {
		return c
	}
	return strings.Compare(a.party, b.party)
}

// rankKeys returns a's places in the rankings. A score below zero, or
// NaN, ranks as zero.
func rankKeys(a *escrow.Aggregate) [2]rankKey {
	return [2]rankKey{
		{a.Role, escrow.RankWilson, rankScore(a.Wilson), a.Party},
		{a.Role, escrow.RankExpectation, rankScore(a.Expectation), a.Party},
	}
}

// rankScore is the place of a key's value in a ranking.
func rankScore(f float64) float64 {
	if f < 0 || math.IsNaN(f) {
		return 0
	}
	return f
}

// rekeyKey files an aggregate under its RekeyDay, ties by party, then role.
type rekeyKey struct {
	day int32
	aggKey
}

func (a rekeyKey) compare(b rekeyKey) int {
	if a.day != b.day {
		return cmp.Compare(a.day, b.day)
	}
	return a.aggKey.compare(b.aggKey)
}

type dayKey struct {
	aggKey
	day int32
}

func (a dayKey) compare(b dayKey) int {
	if c := a.aggKey.compare(b.aggKey); c != 0 {
		return c
	}
	return cmp.Compare(a.day, b.day)
}

type raterKey struct {
	aggKey
	rater string
}

func (a raterKey) compare(b raterKey) int {
	if c := a.aggKey.compare(b.aggKey); c != 0 {
		return c
	}
	return strings.Compare(a.rater, b.rater)
}

type pairKey struct{ ratee, rater, month string }

func (a pairKey) compare(b pairKey) int {
	return compare3(a.ratee, b.ratee, a.rater, b.rater, a.month, b.month)
}

type markKey struct{ ratee, rater, item string }

func (a markKey) compare(b markKey) int {
	return compare3(a.ratee, b.ratee, a.rater, b.rater, a.item, b.item)
}

// compare3 orders by three strings, each compared only when those before
// it tie (see balanceKey.compare).
func compare3(a1, b1, a2, b2, a3, b3 string) int {
	if c := strings.Compare(a1, b1); c != 0 {
		return c
	}
	if c := strings.Compare(a2, b2); c != 0 {
		return c
	}
	return strings.Compare(a3, b3)
}

func (t *tx) Rating(escrowID, rater string) (escrow.Rating, error) {
	return get(t, &t.st.ratings, ratingKey{escrowID, rater}, val)
}

func (t *tx) PutRating(r escrow.Rating) error {
	if err := t.check(true); err != nil {
		return err
	}
	k := ratingKey{r.Escrow, r.Rater}
	ref := rateeRef{nanos(r.At), k}
	old, had := t.st.ratings.get(k)
	filed := had && old.Ratee == r.Ratee && nanos(old.At) == ref.at
	if had && !filed {
		t.st.unfileRating(old.Ratee, rateeRef{nanos(old.At), k})
	}
	t.st.ratings.put(k, r)
	if !filed {
		t.st.fileRating(r.Ratee, ref)
	}
	return nil
}

// fileRating adds ref to the ratings of ratee. Ratings mostly arrive in
// order, so the list is appended to in place, as fileEntry does; one that
// belongs before the end is filed in a new list, since a snapshot may
// share the old one.
func (st *state) fileRating(ratee string, ref rateeRef) {
	refs := st.ratingsOf(ratee)
	if n := len(refs); n == 0 || refs[n-1].compare(ref) < 0 {
		st.byRatee.put(ratee, append(refs, ref))
		return
	}
	i, _ := slices.BinarySearchFunc(refs, ref, rateeRef.compare)
	st.byRatee.put(ratee, slices.Insert(slices.Clip(refs), i, ref))
}

// unfileRating takes ref out of the ratings of ratee, in a new list.
func (st *state) unfileRating(ratee string, ref rateeRef) {
	refs := st.ratingsOf(ratee)
	if i, ok := slices.BinarySearchFunc(refs, ref, rateeRef.compare); ok {
		st.byRatee.put(ratee, append(slices.Clip(refs[:i]), refs[i+1:]...))
	}
}

// unfileRatings takes the ratings of rows out of their ratees' lists:
// each list once, in a new list, whatever the number of its ratings among
// rows. A ratee left with none loses its list.
func (st *state) unfileRatings(rows []row[ratingKey, escrow.Rating]) {
	gone := map[string][]rateeRef{}
	for _, r := range rows {
		gone[r.val.Ratee] = append(gone[r.val.Ratee], rateeRef{nanos(r.val.At), r.key})
	}
	for ratee, out := range gone {
		slices.SortFunc(out, rateeRef.compare)
		refs := st.ratingsOf(ratee)
		kept := make([]rateeRef, 0, max(0, len(refs)-len(out)))
		for _, ref := range refs {
			for len(out) > 0 && out[0].compare(ref) < 0 {
				out = out[1:] // not filed: nothing to take out
			}
			if len(out) > 0 && out[0].compare(ref) == 0 {
				out = out[1:]
				continue
			}
			kept = append(kept, ref)
		}
		if len(kept) == 0 {
			st.byRatee.delete(ratee)
		} else {
			st.byRatee.put(ratee, kept)
		}
	}
}

func (st *state) ratingsOf(ratee string) []rateeRef {
	if p, ok := st.byRatee.get(ratee); ok {
		return *p
	}
	return nil
}

func (t *tx) RatingsOf(party string, after escrow.RatingPos, fn func(escrow.Rating) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	refs := t.st.ratingsOf(party)
	if after != (escrow.RatingPos{}) {
		pos := rateeRef{nanos(after.At), ratingKey{after.Escrow, after.Rater}}
		i, found := slices.BinarySearchFunc(refs, pos, rateeRef.compare)
		if found {
			i++
		}
		refs = refs[i:]
	}
	// fn may rate in a write transaction, which changes the list only past
	// the end of refs or in a new list.
	for _, ref := range refs {
		r, _ := t.st.ratings.get(ref.ratingKey)
		if err := fn(*r); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Ratings(fn func(escrow.Rating) error) error {
	return each(t, &t.st.ratings, val, fn)
}

// Aggregate is get written out, copying the 400-byte aggregate once
// rather than through get's result as well: a Reputation read, which reads
// two, took about 10% less (benchmark Conformance/Reputation).
func (t *tx) Aggregate(party string, role escrow.Role) (escrow.Aggregate, error) {
	if err := t.check(false); err != nil {
		return escrow.Aggregate{}, err
	}
	if p, ok := t.st.aggs.get(aggKey{party, role}); ok {
		return *p, nil
	}
	return escrow.Aggregate{}, escrow.ErrNotFound
}

func (t *tx) PutAggregate(a escrow.Aggregate) error {
	if err := t.check(true); err != nil {
		return err
	}
	k := aggKey{a.Party, a.Role}
	if old, ok := t.st.aggs.get(k); ok {
		for _, rk := range rankKeys(old) {
			t.st.ranks.delete(row[rankKey, escrow.Aggregate]{key: rk})
		}
		t.st.rekeys.delete(row[rekeyKey, escrow.Aggregate]{key: rekeyKey{old.RekeyDay, k}})
	}
	p := t.st.aggs.put(k, a)
	for _, rk := range rankKeys(p) {
		t.st.ranks.set(row[rankKey, escrow.Aggregate]{key: rk, val: p})
	}
	if a.RekeyDay != 0 {
		t.st.rekeys.set(row[rekeyKey, escrow.Aggregate]{key: rekeyKey{a.RekeyDay, k}, val: p})
	}
	return nil
}

func (t *tx) TopAggregates(role escrow.Role, key escrow.RankKey, after escrow.RankPos, limit int) ([]escrow.Aggregate, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	top := []escrow.Aggregate{}
	from := rankKey{role, key, math.Inf(1), ""}
	if after != (escrow.RankPos{}) {
		from = rankKey{role, key, rankScore(after.Score), after.Party}
	}
	t.st.ranks.bt.Ascend(row[rankKey, escrow.Aggregate]{key: from}, func(r row[rankKey, escrow.Aggregate]) bool {
		if r.key.role != role || r.key.by != key || len(top) >= limit {
			return false
		}
		if after != (escrow.RankPos{}) && r.key == from {
			return true // the last of the page before
		}
		top = append(top, *r.val)
		return true
	})
	return top, nil
}

func (t *tx) DueAggregates(day int32, limit int) ([]escrow.Aggregate, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	due := []escrow.Aggregate{}
	t.st.rekeys.bt.Scan(func(r row[rekeyKey, escrow.Aggregate]) bool {
		if r.key.day > day || len(due) >= limit {
			return false
		}
		due = append(due, *r.val)
		return true
	})
	return due, nil
}

func (t *tx) Aggregates(fn func(escrow.Aggregate) error) error {
	return each(t, &t.st.aggs, val, fn)
}

func (t *tx) DayRange(party string, role escrow.Role, from, to int32, fn func(escrow.DayCount) error) error {
	k := aggKey{party, role}
	start := row[dayKey, escrow.DayCount]{key: dayKey{k, from}}
	return walk(t, &t.st.days.tree, &start,
		func(r row[dayKey, escrow.DayCount]) bool { return r.key.aggKey == k && r.key.day <= to },
		func(r row[dayKey, escrow.DayCount]) error { return fn(*r.val) })
}

func (t *tx) PutDayCount(d escrow.DayCount) error {
	if err := t.check(true); err != nil {
		return err
	}
	k := dayKey{aggKey{d.Party, d.Role}, d.Day}
	if d.Positive == 0 && d.Neutral == 0 && d.Negative == 0 {
		t.st.days.delete(k) // the contract allows it, and it keeps DayRange short
		return nil
	}
	t.st.days.put(k, d)
	return nil
}

func (t *tx) DayCounts(fn func(escrow.DayCount) error) error {
	return each(t, &t.st.days, val, fn)
}

func (t *tx) PairMonth(ratee, rater, month string) (escrow.PairMonth, error) {
	return get(t, &t.st.pairs, pairKey{ratee, rater, month}, val)
}

func (t *tx) PutPairMonth(p escrow.PairMonth) error {
	if err := t.check(true); err != nil {
		return err
	}
	t.st.pairs.put(pairKey{p.Ratee, p.Rater, p.Month}, p)
	return nil
}

func (t *tx) PairMonths(fn func(escrow.PairMonth) error) error {
	return each(t, &t.st.pairs, val, fn)
}

func (t *tx) ItemMark(ratee, rater, item string) (escrow.ItemMark, error) {
	return get(t, &t.st.marks, markKey{ratee, rater, item}, val)
}

func (t *tx) PutItemMark(m escrow.ItemMark) error {
	if err := t.check(true); err != nil {
		return err
	}
	k := markKey{m.Ratee, m.Rater, m.Item}
	if m.Escrow == "" {
		t.st.marks.delete(k)
		return nil
	}
	t.st.marks.put(k, m)
	return nil
}

func (t *tx) ItemMarks(fn func(escrow.ItemMark) error) error {
	return each(t, &t.st.marks, val, fn)
}

func (t *tx) RaterDays(ratee string, role escrow.Role, rater string) (escrow.RaterDays, error) {
	return get(t, &t.st.raters, raterKey{aggKey{ratee, role}, rater}, copyRaterDays)
}

func (t *tx) PutRaterDays(d escrow.RaterDays) error {
	if err := t.check(true); err != nil {
		return err
	}
	k := raterKey{aggKey{d.Ratee, d.Role}, d.Rater}
	if len(d.Positive) == 0 && len(d.Negative) == 0 {
		t.st.raters.delete(k)
		return nil
	}
	t.st.raters.put(k, copyRaterDays(&d))
	return nil
}

func (t *tx) AllRaterDays(fn func(escrow.RaterDays) error) error {
	return each(t, &t.st.raters, copyRaterDays, fn)
}

// copyRaterDays copies d with slices of its own, empty ones as nil.
func copyRaterDays(d *escrow.RaterDays) escrow.RaterDays {
	c := *d
	c.Positive, c.Negative = slices.Clip(slices.Clone(d.Positive)), slices.Clip(slices.Clone(d.Negative))
	if len(c.Positive) == 0 {
		c.Positive = nil
	}
	if len(c.Negative) == 0 {
		c.Negative = nil
	}
	return c
}
