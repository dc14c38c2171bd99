package memstore

import (
	"cmp"
	"math"
	"slices"

	"github.com/escrowkit/escrow"
)

type ratingKey struct{ escrow, rater string }

type aggKey struct {
	party string
	role  escrow.Role
}

type pairKey struct{ ratee, rater, month string }

// ratingRef files a rating in its ratee's index, carrying what the index
// sorts by so that an insert compares without looking ratings up.
type ratingRef struct {
	at  int64 // nanos(At)
	key ratingKey
}

func compareRefs(a, b ratingRef) int {
	if c := cmp.Compare(a.at, b.at); c != 0 {
		return c
	}
	if c := cmp.Compare(a.key.escrow, b.key.escrow); c != 0 {
		return c
	}
	return cmp.Compare(a.key.rater, b.key.rater)
}

func refOf(r escrow.Rating) ratingRef { return ratingRef{nanos(r.At), ratingKey{r.Escrow, r.Rater}} }

// ratings holds the reputation records: ratings with an index by ratee,
// aggregates with a ranking index per role and key, and the monthly pair
// counters.
type ratings struct {
	ratingsByKey map[ratingKey]escrow.Rating
	byRatee      map[string][]ratingRef // in the order RatingsOf reports
	aggs         map[aggKey]escrow.Aggregate
	ranks        map[rankKey]*dueIndex
	pairs        map[pairKey]escrow.PairMonth
	days         map[aggKey][]escrow.DayCount // by Day
}

type rankKey struct {
	role escrow.Role
	key  escrow.RankKey
}

func newRatings() ratings {
	return ratings{
		ratingsByKey: map[ratingKey]escrow.Rating{},
		byRatee:      map[string][]ratingRef{},
		aggs:         map[aggKey]escrow.Aggregate{},
		ranks:        map[rankKey]*dueIndex{},
		pairs:        map[pairKey]escrow.PairMonth{},
		days:         map[aggKey][]escrow.DayCount{},
	}
}

// rankOrder turns a non-negative score into a dueIndex key that sorts
// highest first: the bits of a non-negative float64 order like the value.
func rankOrder(score float64) int64 {
	if score < 0 || math.IsNaN(score) {
		score = 0
	}
	// A non-negative float64's bits fit in 63 bits, so negating them
	// cannot overflow, and every bit is kept: two scores a bit apart
	// must not tie.
	return -int64(math.Float64bits(score))
}

func (r *ratings) rankIndex(role escrow.Role, key escrow.RankKey) *dueIndex {
	k := rankKey{role, key}
	idx := r.ranks[k]
	if idx == nil {
		idx = &dueIndex{}
		r.ranks[k] = idx
	}
	return idx
}

// file adds (or with remove, takes out) a's entries in the ranking indexes.
func (r *ratings) file(a *escrow.Aggregate, remove bool) {
	for _, k := range [2]struct {
		key   escrow.RankKey
		score float64
	}{{escrow.RankWilson, a.Wilson}, {escrow.RankExpectation, a.Expectation}} {
		idx := r.rankIndex(a.Role, k.key)
		dk := dueKey{rankOrder(k.score), a.Party}
		if remove {
			idx.delete(dk)
		} else {
			idx.insert(dk)
		}
	}
}

func (s *Store) undoRatings(u *undoRec) {
	r := &s.ratings
	switch u.kind {
	case undoRating:
		if u.existed {
			cur, old := r.ratingsByKey[u.rkey], pop(&s.prevRatings)
			r.ratingsByKey[u.rkey] = old
			if cur.Ratee != old.Ratee || !cur.At.Equal(old.At) {
				// The write moved the rating in the ratee index; move it
				// back.
				r.unindexRating(cur.Ratee, refOf(cur))
				r.indexRating(old)
			}
			return
		}
		cur := r.ratingsByKey[u.rkey]
		r.unindexRating(cur.Ratee, refOf(cur))
		delete(r.ratingsByKey, u.rkey)
	case undoAggregate:
		cur := r.aggs[u.akey]
		r.file(&cur, true)
		if u.existed {
			old := pop(&s.prevAggs)
			r.aggs[u.akey] = old
			r.file(&old, false)
		} else {
			delete(r.aggs, u.akey)
		}
	case undoPair:
		if u.existed {
			r.pairs[u.pkey] = pop(&s.prevPairs)
		} else {
			delete(r.pairs, u.pkey)
		}
	case undoDay:
		old := escrow.DayCount{Party: u.akey.party, Role: u.akey.role, Day: u.day}
		if u.existed {
			old = pop(&s.prevDays)
		}
		r.putDay(old)
	}
}

// indexRating files r in its ratee's index. Ratings mostly arrive in time
// order, so the place is usually the end.
func (r *ratings) indexRating(rating escrow.Rating) {
	ref := refOf(rating)
	refs := r.byRatee[rating.Ratee]
	if n := len(refs); n == 0 || compareRefs(refs[n-1], ref) < 0 {
		r.byRatee[rating.Ratee] = append(refs, ref)
		return
	}
	i, _ := slices.BinarySearchFunc(refs, ref, compareRefs)
	r.byRatee[rating.Ratee] = slices.Insert(refs, i, ref)
}

// unindexRating takes ref out of ratee's index.
func (r *ratings) unindexRating(ratee string, ref ratingRef) {
	keys := r.byRatee[ratee]
	if i, ok := slices.BinarySearchFunc(keys, ref, compareRefs); ok {
		keys = slices.Delete(keys, i, i+1)
	}
	if len(keys) == 0 {
		delete(r.byRatee, ratee)
	} else {
		r.byRatee[ratee] = keys
	}
}

func (t *tx) Rating(escrowID, rater string) (escrow.Rating, error) {
	if err := t.check(false); err != nil {
		return escrow.Rating{}, err
	}
	r, ok := t.s.ratingsByKey[ratingKey{escrowID, rater}]
	if !ok {
		return escrow.Rating{}, notFound()
	}
	return r, nil
}

func (t *tx) PutRating(r escrow.Rating) error {
	if err := t.check(true); err != nil {
		return err
	}
	rs := &t.s.ratings
	k := ratingKey{r.Escrow, r.Rater}
	old, ok := rs.ratingsByKey[k]
	t.s.undo = append(t.s.undo, undoRec{kind: undoRating, rkey: k, existed: ok})
	if ok {
		t.s.prevRatings = append(t.s.prevRatings, old)
		if old.Ratee != r.Ratee || !old.At.Equal(r.At) {
			// Keep the ratee index in order: take the rating out and file
			// it again below (rollback files it back in its old place).
			rs.unindexRating(old.Ratee, refOf(old))
			ok = false
		}
	}
	rs.ratingsByKey[k] = r
	if !ok {
		rs.indexRating(r)
	}
	return nil
}

func (t *tx) RatingsOf(party string, fn func(escrow.Rating) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	for _, ref := range slices.Clone(t.s.byRatee[party]) {
		if err := fn(t.s.ratingsByKey[ref.key]); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Ratings(fn func(escrow.Rating) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	keys := make([]ratingKey, 0, len(t.s.ratingsByKey))
	for k := range t.s.ratingsByKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b ratingKey) int {
		if c := cmp.Compare(a.escrow, b.escrow); c != 0 {
			return c
		}
		return cmp.Compare(a.rater, b.rater)
	})
	for _, k := range keys {
		if err := fn(t.s.ratingsByKey[k]); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Aggregate(party string, role escrow.Role) (escrow.Aggregate, error) {
	if err := t.check(false); err != nil {
		return escrow.Aggregate{}, err
	}
	a, ok := t.s.aggs[aggKey{party, role}]
	if !ok {
		return escrow.Aggregate{}, notFound()
	}
	return a, nil
}

func (t *tx) PutAggregate(a escrow.Aggregate) error {
	if err := t.check(true); err != nil {
		return err
	}
	rs := &t.s.ratings
	k := aggKey{a.Party, a.Role}
	old, ok := rs.aggs[k]
	t.s.undo = append(t.s.undo, undoRec{kind: undoAggregate, akey: k, existed: ok})
	if ok {
		t.s.prevAggs = append(t.s.prevAggs, old)
		rs.file(&old, true)
	}
	rs.aggs[k] = a
	rs.file(&a, false)
	return nil
}

func (t *tx) TopAggregates(role escrow.Role, key escrow.RankKey, limit int) ([]escrow.Aggregate, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	out := []escrow.Aggregate{}
	if limit <= 0 {
		return out, nil
	}
	idx := t.s.ranks[rankKey{role, key}]
	if idx == nil {
		return out, nil
	}
	for _, party := range idx.due(latest, limit, nil) {
		out = append(out, t.s.aggs[aggKey{party, role}])
	}
	return out, nil
}

func (t *tx) Aggregates(fn func(escrow.Aggregate) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	keys := make([]aggKey, 0, len(t.s.aggs))
	for k := range t.s.aggs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b aggKey) int {
		if c := cmp.Compare(a.party, b.party); c != 0 {
			return c
		}
		return cmp.Compare(a.role, b.role)
	})
	for _, k := range keys {
		if err := fn(t.s.aggs[k]); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) PairMonth(ratee, rater, month string) (escrow.PairMonth, error) {
	if err := t.check(false); err != nil {
		return escrow.PairMonth{}, err
	}
	p, ok := t.s.pairs[pairKey{ratee, rater, month}]
	if !ok {
		return escrow.PairMonth{}, notFound()
	}
	return p, nil
}

func (t *tx) PutPairMonth(p escrow.PairMonth) error {
	if err := t.check(true); err != nil {
		return err
	}
	k := pairKey{p.Ratee, p.Rater, p.Month}
	old, ok := t.s.pairs[k]
	t.s.undo = append(t.s.undo, undoRec{kind: undoPair, pkey: k, existed: ok})
	if ok {
		t.s.prevPairs = append(t.s.prevPairs, old)
	}
	t.s.pairs[k] = p
	return nil
}

func (t *tx) PairMonths(fn func(escrow.PairMonth) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	keys := make([]pairKey, 0, len(t.s.pairs))
	for k := range t.s.pairs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b pairKey) int {
		if c := cmp.Compare(a.ratee, b.ratee); c != 0 {
			return c
		}
		if c := cmp.Compare(a.rater, b.rater); c != 0 {
			return c
		}
		return cmp.Compare(a.month, b.month)
	})
	for _, k := range keys {
		if err := fn(t.s.pairs[k]); err != nil {
			return err
		}
	}
	return nil
}

// putDay stores d in its party's sorted day list, or removes the day if d
// counts nothing.
func (r *ratings) putDay(d escrow.DayCount) {
	k := aggKey{d.Party, d.Role}
	days := r.days[k]
	i, found := slices.BinarySearchFunc(days, d.Day, func(x escrow.DayCount, day int32) int { return cmp.Compare(x.Day, day) })
	empty := d.Positive == 0 && d.Neutral == 0 && d.Negative == 0
	switch {
	case found && empty:
		days = slices.Delete(days, i, i+1)
	case found:
		days[i] = d
	case !empty:
		days = slices.Insert(days, i, d)
	}
	if len(days) == 0 {
		delete(r.days, k)
	} else {
		r.days[k] = days
	}
}

func (t *tx) DayRange(party string, role escrow.Role, from, to int32, fn func(escrow.DayCount) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	days := t.s.days[aggKey{party, role}]
	i, _ := slices.BinarySearchFunc(days, from, func(x escrow.DayCount, day int32) int { return cmp.Compare(x.Day, day) })
	for ; i < len(days) && days[i].Day <= to; i++ {
		if err := fn(days[i]); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) PutDayCount(d escrow.DayCount) error {
	if err := t.check(true); err != nil {
		return err
	}
	rs := &t.s.ratings
	k := aggKey{d.Party, d.Role}
	days := rs.days[k]
	i, found := slices.BinarySearchFunc(days, d.Day, func(x escrow.DayCount, day int32) int { return cmp.Compare(x.Day, day) })
	t.s.undo = append(t.s.undo, undoRec{kind: undoDay, akey: k, day: d.Day, existed: found})
	if found {
		t.s.prevDays = append(t.s.prevDays, days[i])
	}
	rs.putDay(d)
	return nil
}

func (t *tx) DayCounts(fn func(escrow.DayCount) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	keys := make([]aggKey, 0, len(t.s.days))
	for k := range t.s.days {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b aggKey) int {
		if c := cmp.Compare(a.party, b.party); c != 0 {
			return c
		}
		return cmp.Compare(a.role, b.role)
	})
	for _, k := range keys {
		for _, d := range slices.Clone(t.s.days[k]) {
			if err := fn(d); err != nil {
				return err
			}
		}
	}
	return nil
}
