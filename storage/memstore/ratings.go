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

// ratings holds the reputation records: ratings with an index by ratee,
// aggregates with a ranking index per role and key, and the monthly pair
// counters.
type ratings struct {
	ratingsByKey map[ratingKey]escrow.Rating
	byRatee      map[string][]ratingKey // in the order RatingsOf reports
	aggs         map[aggKey]escrow.Aggregate
	ranks        map[rankKey]*dueIndex
	pairs        map[pairKey]escrow.PairMonth
}

type rankKey struct {
	role escrow.Role
	key  escrow.RankKey
}

func newRatings() ratings {
	return ratings{
		ratingsByKey: map[ratingKey]escrow.Rating{},
		byRatee:      map[string][]ratingKey{},
		aggs:         map[aggKey]escrow.Aggregate{},
		ranks:        map[rankKey]*dueIndex{},
		pairs:        map[pairKey]escrow.PairMonth{},
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

// ratingOrder orders a ratee's ratings by time, then escrow, then rater.
func (r *ratings) ratingOrder(a, b ratingKey) int {
	ra, rb := r.ratingsByKey[a], r.ratingsByKey[b]
	if c := ra.At.Compare(rb.At); c != 0 {
		return c
	}
	if c := cmp.Compare(a.escrow, b.escrow); c != 0 {
		return c
	}
	return cmp.Compare(a.rater, b.rater)
}

func cloneAggregate(a escrow.Aggregate) escrow.Aggregate {
	a.Days = slices.Clone(a.Days)
	return a
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
				// back, now that the old record is in place to sort by.
				r.unindexRating(cur.Ratee, u.rkey)
				keys := r.byRatee[old.Ratee]
				i, _ := slices.BinarySearchFunc(keys, u.rkey, r.ratingOrder)
				r.byRatee[old.Ratee] = slices.Insert(keys, i, u.rkey)
			}
			return
		}
		r.unindexRating(r.ratingsByKey[u.rkey].Ratee, u.rkey)
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
	}
}

// unindexRating takes k out of ratee's index.
func (r *ratings) unindexRating(ratee string, k ratingKey) {
	keys := r.byRatee[ratee]
	if i := slices.Index(keys, k); i >= 0 {
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
			// Keep the ratee index in order: take the key out and file it
			// again below (rollback files it back in its old place).
			keys := rs.byRatee[old.Ratee]
			if i := slices.Index(keys, k); i >= 0 {
				rs.byRatee[old.Ratee] = slices.Delete(keys, i, i+1)
			}
			ok = false
		}
	}
	rs.ratingsByKey[k] = r
	if !ok {
		keys := rs.byRatee[r.Ratee]
		i, _ := slices.BinarySearchFunc(keys, k, rs.ratingOrder)
		rs.byRatee[r.Ratee] = slices.Insert(keys, i, k)
	}
	return nil
}

func (t *tx) RatingsOf(party string, fn func(escrow.Rating) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	for _, k := range slices.Clone(t.s.byRatee[party]) {
		if err := fn(t.s.ratingsByKey[k]); err != nil {
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
	return cloneAggregate(a), nil
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
	a = cloneAggregate(a)
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
		out = append(out, cloneAggregate(t.s.aggs[aggKey{party, role}]))
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
		if err := fn(cloneAggregate(t.s.aggs[k])); err != nil {
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
