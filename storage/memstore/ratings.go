package memstore

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/escrowkit/escrow"
)

type ratingKey struct{ escrow, rater string }

type aggKey struct {
	party string
	role  escrow.Role
}

func compareAggKeys(a, b aggKey) int {
	return cmp.Or(strings.Compare(a.party, b.party), cmp.Compare(a.role, b.role))
}

type pairKey struct{ ratee, rater, month string }

// ratingRef files a rating in its ratee's index: its time, which the index
// sorts by first, and where it is stored, where the escrow and rater that
// break a tie are found. Sixteen bytes, since a busy seller's index is
// long and grows by copying.
type ratingRef struct {
	at  int64 // nanos(At)
	idx int   // in ratings.stored
}

// compareRef orders the indexed ref against rating r.
func (rs *ratings) compareRef(ref ratingRef, r *escrow.Rating) int {
	if c := cmp.Compare(ref.at, nanos(r.At)); c != 0 {
		return c
	}
	o := rs.stored.at(ref.idx)
	if c := cmp.Compare(o.Escrow, r.Escrow); c != 0 {
		return c
	}
	return cmp.Compare(o.Rater, r.Rater)
}

// ratings holds the reputation records: ratings with an index by ratee,
// aggregates with a ranking index per role and key, and the monthly pair
// counters.
//
// Ratings themselves are kept in a chunked log, found through the slot of
// their escrow (see slot). Ratings are never deleted, only replaced, so
// the log only shrinks when a rollback takes back the newest.
type ratings struct {
	stored  chunkedLog[escrow.Rating]
	byRatee map[string]*[]ratingRef      // in the order RatingsOf reports
	aggs    map[aggKey]*escrow.Aggregate // by pointer, as escrows are
	ranks   []*rankTree
	pairs   map[pairKey]*escrow.PairMonth
	days    map[aggKey][]escrow.DayCount // by Day
	rekeys  dueIndex                     // aggregates by RekeyDay, see rekeyKey
}

// A rankTree orders the aggregates of one role by one rank key. There are
// four in use (two roles, two keys), found by a scan, which costs less than
// hashing a map key on every write of an aggregate.
type rankTree struct {
	role escrow.Role
	key  escrow.RankKey
	dueIndex
}

func newRatings() ratings {
	return ratings{
		byRatee: map[string]*[]ratingRef{},
		aggs:    map[aggKey]*escrow.Aggregate{},
		pairs:   map[pairKey]*escrow.PairMonth{},
		days:    map[aggKey][]escrow.DayCount{},
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

// rankIndex returns the ranking of role by key; with add, an empty one is
// made if there is none, else the result may be nil.
func (r *ratings) rankIndex(role escrow.Role, key escrow.RankKey, add bool) *dueIndex {
	for _, t := range r.ranks {
		if t.role == role && t.key == key {
			return &t.dueIndex
		}
	}
	if !add {
		return nil
	}
	t := &rankTree{role: role, key: key}
	r.ranks = append(r.ranks, t)
	return &t.dueIndex
}

// rankedBy are the keys of the ranking indexes, in the order rankKeys
// returns an aggregate's entries.
var rankedBy = [2]escrow.RankKey{escrow.RankWilson, escrow.RankExpectation}

// rankKeys returns a's entries in the ranking indexes.
func rankKeys(a *escrow.Aggregate) [2]dueKey {
	return [2]dueKey{{rankOrder(a.Wilson), a.Party}, {rankOrder(a.Expectation), a.Party}}
}

// refile moves the entries of an aggregate of role in the ranking indexes
// from keys from (nil: it was not filed) to keys to (nil: take it out).
func (r *ratings) refile(role escrow.Role, from, to *[2]dueKey) {
	for i, key := range rankedBy {
		idx := r.rankIndex(role, key, true)
		switch {
		case from == nil:
			idx.insert(to[i])
		case to == nil:
			idx.delete(from[i])
		case from[i] != to[i]:
			idx.move(from[i], to[i])
		}
	}
}

// rekeyKey returns a's entry in the re-key index, if it has one: its
// RekeyDay, then its party and role. The party is followed by a zero byte,
// which sorts below every byte a party ID may hold, so the entries of one
// day sort by party, then role.
func rekeyKey(a *escrow.Aggregate) (dueKey, bool) {
	return dueKey{int64(a.RekeyDay), a.Party + "\x00" + string([]byte{byte(a.Role)})}, a.RekeyDay != 0
}

// parseRekeyID splits the ID of a rekeyKey into party and role.
func parseRekeyID(id string) aggKey {
	i := strings.LastIndexByte(id, 0)
	return aggKey{id[:i], escrow.Role(id[i+1])}
}

// refileRekey moves an aggregate's entry in the re-key index from where
// from has it to where to has it; nil is no aggregate.
func (r *ratings) refileRekey(from, to *escrow.Aggregate) {
	var old, cur dueKey
	var had, has bool
	if from != nil {
		old, had = rekeyKey(from)
	}
	if to != nil {
		cur, has = rekeyKey(to)
	}
	switch {
	case had && has && old != cur:
		r.rekeys.move(old, cur)
	case had && !has:
		r.rekeys.delete(old)
	case has && !had:
		r.rekeys.insert(cur)
	}
}

func (s *Store) undoRatings(u *undoRec) {
	r := &s.ratings
	switch u.kind {
	case undoRating:
		sl := s.escrows[u.rkey().escrow]
		idx, _ := sl.rating(&r.stored, u.rkey().rater)
		cur := r.stored.at(idx)
		if u.existed {
			old := pop(&s.prevRatings)
			moved := cur.Ratee != old.Ratee || !cur.At.Equal(old.At)
			if moved {
				// The write moved the rating in the ratee index; move it
				// back.
				r.unindexRating(cur)
			}
			*cur = old
			if moved {
				r.indexRating(cur, idx)
			}
			return
		}
		// A rating this transaction created is the newest stored: undo
		// runs backwards.
		r.unindexRating(cur)
		sl.dropRating()
		s.dropIfEmpty(u.rkey().escrow, sl)
		r.stored.pop()
	case undoAggregate:
		cur := r.aggs[u.akey()]
		from := rankKeys(cur)
		if u.existed {
			was := *cur
			*cur = pop(&s.prevAggs)
			to := rankKeys(cur)
			r.refile(u.akey().role, &from, &to)
			r.refileRekey(&was, cur)
		} else {
			delete(r.aggs, u.akey())
			r.refile(u.akey().role, &from, nil)
			r.refileRekey(cur, nil)
		}
	case undoPair:
		if u.existed {
			*r.pairs[u.pkey()] = pop(&s.prevPairs)
		} else {
			delete(r.pairs, u.pkey())
		}
	case undoDay:
		old := escrow.DayCount{Party: u.akey().party, Role: u.akey().role, Day: u.day}
		if u.existed {
			old = pop(&s.prevDays)
		}
		r.putDay(old)
	}
}

// indexRating files the rating stored at idx in its ratee's index. Ratings
// mostly arrive in time order, so the place is usually the end.
func (r *ratings) indexRating(rating *escrow.Rating, idx int) {
	ref := ratingRef{nanos(rating.At), idx}
	p := r.byRatee[rating.Ratee]
	if p == nil {
		p = new([]ratingRef)
		r.byRatee[rating.Ratee] = p
	}
	if n := len(*p); n == 0 || r.compareRef((*p)[n-1], rating) < 0 {
		*p = append(*p, ref)
		return
	}
	i, _ := slices.BinarySearchFunc(*p, rating, r.compareRef)
	*p = slices.Insert(*p, i, ref)
}

// unindexRating takes rating out of its ratee's index. The index is found
// by the rating's values, so they must be those it was filed with.
func (r *ratings) unindexRating(rating *escrow.Rating) {
	p := r.byRatee[rating.Ratee]
	if p == nil {
		return
	}
	if i, ok := slices.BinarySearchFunc(*p, rating, r.compareRef); ok {
		*p = slices.Delete(*p, i, i+1)
	}
	if len(*p) == 0 {
		delete(r.byRatee, rating.Ratee)
	}
}

func (t *tx) Rating(escrowID, rater string) (escrow.Rating, error) {
	if err := t.check(false); err != nil {
		return escrow.Rating{}, err
	}
	idx, ok := t.s.escrows[escrowID].rating(&t.s.stored, rater)
	if !ok {
		return escrow.Rating{}, escrow.ErrNotFound
	}
	return *t.s.stored.at(idx), nil
}

func (t *tx) PutRating(r escrow.Rating) error {
	if err := t.check(true); err != nil {
		return err
	}
	rs := &t.s.ratings
	k := ratingKey{r.Escrow, r.Rater}
	sl := t.s.escrows[r.Escrow]
	idx, ok := sl.rating(&rs.stored, r.Rater)
	t.s.undo = append(t.s.undo, undoRec{kind: undoRating, k: [3]string{k.escrow, k.rater}, existed: ok})
	if !ok {
		if sl == nil {
			sl = new(slot)
			t.s.escrows[r.Escrow] = sl
		}
		idx = rs.stored.len()
		sl.addRating(idx)
		rs.stored.append(r)
		rs.indexRating(rs.stored.at(idx), idx)
		return nil
	}
	old := rs.stored.at(idx)
	t.s.prevRatings = append(t.s.prevRatings, *old)
	moved := old.Ratee != r.Ratee || !old.At.Equal(r.At)
	if moved {
		// Keep the ratee index in order: take the rating out and file it
		// again (rollback files it back in its old place).
		rs.unindexRating(old)
	}
	*old = r
	if moved {
		rs.indexRating(old, idx)
	}
	return nil
}

func (t *tx) RatingsOf(party string, fn func(escrow.Rating) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	var refs []ratingRef
	if p := t.s.byRatee[party]; p != nil {
		refs = slices.Clone(*p)
	}
	for _, ref := range refs {
		if err := fn(*t.s.stored.at(ref.idx)); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Ratings(fn func(escrow.Rating) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	var on []escrow.Rating
	for _, id := range sortedKeys(t.s.escrows, strings.Compare) {
		sl := t.s.escrows[id]
		on = on[:0]
		for i := range sl.n {
			on = append(on, *t.s.stored.at(sl.ratingAt(i)))
		}
		slices.SortFunc(on, func(a, b escrow.Rating) int { return cmp.Compare(a.Rater, b.Rater) })
		for _, r := range on {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *tx) Aggregate(party string, role escrow.Role) (escrow.Aggregate, error) {
	if err := t.check(false); err != nil {
		return escrow.Aggregate{}, err
	}
	a := t.s.aggs[aggKey{party, role}]
	if a == nil {
		return escrow.Aggregate{}, escrow.ErrNotFound
	}
	return *a, nil
}

func (t *tx) PutAggregate(a escrow.Aggregate) error {
	if err := t.check(true); err != nil {
		return err
	}
	rs := &t.s.ratings
	k := aggKey{a.Party, a.Role}
	cur := rs.aggs[k]
	t.s.undo = append(t.s.undo, undoRec{kind: undoAggregate, k: [3]string{k.party}, role: k.role, existed: cur != nil})
	to := rankKeys(&a)
	if cur == nil {
		cur = new(escrow.Aggregate)
		*cur = a
		rs.aggs[k] = cur
		rs.refile(a.Role, nil, &to)
		rs.refileRekey(nil, cur)
		return nil
	}
	t.s.prevAggs = append(t.s.prevAggs, *cur)
	from := rankKeys(cur)
	rs.refileRekey(cur, &a)
	*cur = a
	rs.refile(a.Role, &from, &to)
	return nil
}

func (t *tx) DueAggregates(day int32, limit int) ([]escrow.Aggregate, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	out := []escrow.Aggregate{}
	if limit <= 0 {
		return out, nil
	}
	for _, id := range t.s.rekeys.upTo(int64(day), limit, nil) {
		out = append(out, *t.s.aggs[parseRekeyID(id)])
	}
	return out, nil
}

func (t *tx) TopAggregates(role escrow.Role, key escrow.RankKey, limit int) ([]escrow.Aggregate, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	out := []escrow.Aggregate{}
	if limit <= 0 {
		return out, nil
	}
	idx := t.s.rankIndex(role, key, false)
	if idx == nil {
		return out, nil
	}
	for _, party := range idx.due(latest, limit, nil) {
		out = append(out, *t.s.aggs[aggKey{party, role}])
	}
	return out, nil
}

func (t *tx) Aggregates(fn func(escrow.Aggregate) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	for _, k := range sortedKeys(t.s.aggs, compareAggKeys) {
		if err := fn(*t.s.aggs[k]); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) PairMonth(ratee, rater, month string) (escrow.PairMonth, error) {
	if err := t.check(false); err != nil {
		return escrow.PairMonth{}, err
	}
	p := t.s.pairs[pairKey{ratee, rater, month}]
	if p == nil {
		return escrow.PairMonth{}, escrow.ErrNotFound
	}
	return *p, nil
}

func (t *tx) PutPairMonth(p escrow.PairMonth) error {
	if err := t.check(true); err != nil {
		return err
	}
	k := pairKey{p.Ratee, p.Rater, p.Month}
	cur := t.s.pairs[k]
	t.s.undo = append(t.s.undo, undoRec{kind: undoPair, k: [3]string{k.ratee, k.rater, k.month}, existed: cur != nil})
	if cur == nil {
		cur = new(escrow.PairMonth)
		t.s.pairs[k] = cur
	} else {
		t.s.prevPairs = append(t.s.prevPairs, *cur)
	}
	*cur = p
	return nil
}

func (t *tx) PairMonths(fn func(escrow.PairMonth) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	for _, k := range sortedKeys(t.s.pairs, func(a, b pairKey) int {
		return cmp.Or(strings.Compare(a.ratee, b.ratee), strings.Compare(a.rater, b.rater), strings.Compare(a.month, b.month))
	}) {
		if err := fn(*t.s.pairs[k]); err != nil {
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
	i, found := findDay(days, d.Day)
	r.setDay(k, days, i, found, d)
}

// findDay returns where day is, or would be, in the sorted list days.
func findDay(days []escrow.DayCount, day int32) (int, bool) {
	return slices.BinarySearchFunc(days, day, func(x escrow.DayCount, day int32) int { return cmp.Compare(x.Day, day) })
}

// setDay stores d in days, the list of k, at i where findDay put it.
func (r *ratings) setDay(k aggKey, days []escrow.DayCount, i int, found bool, d escrow.DayCount) {
	empty := d.Positive == 0 && d.Neutral == 0 && d.Negative == 0
	switch {
	case found && empty:
		days = slices.Delete(days, i, i+1)
	case found:
		days[i] = d // in place: the map's slice is this one
		return
	case !empty:
		days = slices.Insert(days, i, d)
	default:
		return // no count, none to store
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
	i, _ := findDay(days, from)
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
	i, found := findDay(days, d.Day)
	t.s.undo = append(t.s.undo, undoRec{kind: undoDay, k: [3]string{k.party}, role: k.role, day: d.Day, existed: found})
	if found {
		t.s.prevDays = append(t.s.prevDays, days[i])
	}
	rs.setDay(k, days, i, found, d)
	return nil
}

func (t *tx) DayCounts(fn func(escrow.DayCount) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	for _, k := range sortedKeys(t.s.days, compareAggKeys) {
		for _, d := range slices.Clone(t.s.days[k]) {
			if err := fn(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// A slot is what the store keeps under an escrow ID: the escrow, if one
// was put, and where the ratings given on it are. Keeping the ratings
// there spares a Rate a lookup in a second map as large as the escrows',
// and the growth of that map, on the escrow it has just read. A slot may
// hold ratings and no escrow, since the contract does not tie the two.
type slot struct {
	e      escrow.Escrow
	exists bool // e is a stored escrow

	// The indexes in ratings.stored of the ratings given on the escrow,
	// in the order they were first put: two fit in the slot (a buyer's
	// and a seller's), more go to extra.
	first [2]int
	n     int
	extra []int
}

func (sl *slot) ratingAt(i int) int {
	if i < len(sl.first) {
		return sl.first[i]
	}
	return sl.extra[i-len(sl.first)]
}

func (sl *slot) addRating(idx int) {
	if sl.n < len(sl.first) {
		sl.first[sl.n] = idx
	} else {
		sl.extra = append(sl.extra, idx)
	}
	sl.n++
}

// dropRating forgets the rating added last.
func (sl *slot) dropRating() {
	sl.n--
	if sl.n >= len(sl.first) {
		sl.extra = sl.extra[:len(sl.extra)-1]
	}
}

// rating returns where rater's rating on the escrow is stored. sl may be
// nil: an ID with neither escrow nor ratings.
func (sl *slot) rating(stored *chunkedLog[escrow.Rating], rater string) (int, bool) {
	if sl == nil {
		return 0, false
	}
	for i := range sl.n {
		if idx := sl.ratingAt(i); stored.at(idx).Rater == rater {
			return idx, true
		}
	}
	return 0, false
}

// dropIfEmpty removes the slot of id once it holds neither an escrow nor
// a rating, as a rollback may leave it.
func (s *Store) dropIfEmpty(id string, sl *slot) {
	if !sl.exists && sl.n == 0 {
		delete(s.escrows, id)
	}
}
