// Package memstore is an in-memory escrow.Storage: fast, safe for
// concurrent use, and gone when the process ends. It suits tests, examples
// and hosts that keep their own durable copy.
//
// Writers are serialised by one lock and change the maps in place, keeping
// an undo log that is replayed backwards if the transaction fails; readers
// share the lock, so View sees a consistent snapshot. Records are copied in
// and out, so no caller memory is ever aliased.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/escrowkit/escrow"
)

var _ escrow.Storage = (*Store)(nil)

// Store is an in-memory escrow.Storage. The zero value is not usable; call New.
type Store struct {
	mu     sync.RWMutex
	closed bool

	accounts  map[string]escrow.Account
	balances  map[balanceKey]escrow.Balance
	escrows   map[string]*slot // by pointer, so a change is one copy in place
	due       dueIndex
	journal   chunkedLog[escrow.Entry]
	byAccount map[string][]uint64 // account → Seq of the entries that post to it
	events    chunkedLog[escrow.Event]
	slab      []escrow.Posting // where stored entries' postings live, many to an allocation
	idem      map[string]escrow.IdempotencyRecord
	idemAge   dueIndex // idempotency keys by At
	ratings

	// What the running write transaction changed, newest last, with the
	// records it replaced kept on one stack per kind so that an undo entry
	// stays small.
	undo         []undoRec
	prevAccounts []escrow.Account
	prevBalances []escrow.Balance
	prevEscrows  []escrow.Escrow
	prevIdem     []escrow.IdempotencyRecord
	prevRatings  []escrow.Rating
	prevAggs     []escrow.Aggregate
	prevPairs    []escrow.PairMonth
	prevDays     []escrow.DayCount
}

type balanceKey struct{ account, currency string }

// New returns an empty store.
func New() *Store {
	s := &Store{
		accounts:  map[string]escrow.Account{},
		balances:  map[balanceKey]escrow.Balance{},
		escrows:   map[string]*slot{},
		byAccount: map[string][]uint64{},
		idem:      map[string]escrow.IdempotencyRecord{},
		ratings:   newRatings(),
	}
	return s
}

// Update runs fn in a read-write transaction; see escrow.Storage.
func (s *Store) Update(ctx context.Context, fn func(escrow.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return escrow.ErrClosed
	}
	s.undo = s.undo[:0]
	s.prevAccounts, s.prevBalances, s.prevEscrows, s.prevIdem = s.prevAccounts[:0], s.prevBalances[:0], s.prevEscrows[:0], s.prevIdem[:0]
	s.prevRatings, s.prevAggs, s.prevPairs, s.prevDays = s.prevRatings[:0], s.prevAggs[:0], s.prevPairs[:0], s.prevDays[:0]
	// A transaction of its own, not a reused one: a Tx kept past its
	// Update must find itself ended, not write into a later transaction.
	t := &tx{s: s}
	committed := false
	defer func() {
		t.done = true
		if !committed {
			s.rollback()
		}
		// Drop the references the undo log holds, so that replaced
		// records can be collected.
		clear(s.undo)
		clear(s.prevAccounts)
		clear(s.prevBalances)
		clear(s.prevEscrows)
		clear(s.prevIdem)
		clear(s.prevRatings)
		clear(s.prevAggs)
		clear(s.prevPairs)
		clear(s.prevDays)
	}()
	if err := fn(t); err != nil {
		return err
	}
	committed = true
	return nil
}

// View runs fn in a read-only transaction; see escrow.Storage.
func (s *Store) View(ctx context.Context, fn func(escrow.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return escrow.ErrClosed
	}
	t := &tx{s: s, readOnly: true}
	defer func() { t.done = true }()
	return fn(t)
}

// Snapshot is View for a caller that must know exactly which commits fn
// sees, as filestore must when it writes a snapshot to disk. If taken is
// not nil, Snapshot calls it while no write transaction runs and the
// committed data is what fn will see, so that a count of commits read
// there numbers the snapshot; if taken returns an error, Snapshot returns
// it without calling fn. Then fn runs as in View.
func (s *Store) Snapshot(ctx context.Context, taken func() error, fn func(escrow.Tx) error) error {
	return s.View(ctx, func(tx escrow.Tx) error {
		// The read lock View holds keeps commits out until fn returns.
		if taken != nil {
			if err := taken(); err != nil {
				return err
			}
		}
		return fn(tx)
	})
}

// Close discards the data. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.accounts, s.balances, s.escrows, s.idem, s.byAccount = nil, nil, nil, nil, nil
		s.idemAge = dueIndex{}
		s.ratings = ratings{}
		s.journal, s.events, s.due, s.slab = chunkedLog[escrow.Entry]{}, chunkedLog[escrow.Event]{}, dueIndex{}, nil
	}
	return nil
}

// undoRec records how to reverse one write. If the write replaced a
// record (existed), the old record is on the stack of its kind.
//
// The record's key is kept in parts, the fewest bytes that hold any kind's
// key: every write appends one undoRec, and Update clears them all.
type undoRec struct {
	kind    undoKind
	existed bool
	role    escrow.Role
	day     int32
	k       [3]string
}

func (u *undoRec) key() string      { return u.k[0] }
func (u *undoRec) bkey() balanceKey { return balanceKey{u.k[0], u.k[1]} }
func (u *undoRec) rkey() ratingKey  { return ratingKey{u.k[0], u.k[1]} }
func (u *undoRec) akey() aggKey     { return aggKey{u.k[0], u.role} }
func (u *undoRec) pkey() pairKey    { return pairKey{u.k[0], u.k[1], u.k[2]} }

type undoKind uint8

const (
	undoAccount undoKind = iota
	undoBalance
	undoEscrow
	undoEntry
	undoEvent
	undoIdem
	undoRating
	undoAggregate
	undoPair
	undoDay
)

func (s *Store) rollback() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		u := &s.undo[i]
		switch u.kind {
		case undoAccount:
			if u.existed {
				s.accounts[u.key()] = pop(&s.prevAccounts)
			} else {
				delete(s.accounts, u.key())
			}
		case undoBalance:
			if u.existed {
				s.balances[u.bkey()] = pop(&s.prevBalances)
			} else {
				delete(s.balances, u.bkey())
			}
		case undoEscrow:
			sl := s.escrows[u.key()] // present: the write being undone put it there
			due := sl.e.NextDue()
			if u.existed {
				sl.e = pop(&s.prevEscrows)
			} else {
				sl.e, sl.exists = escrow.Escrow{}, false
			}
			s.due.refile(u.key(), due, sl.e.NextDue())
			s.dropIfEmpty(u.key(), sl)
		case undoEntry:
			e := *s.journal.at(s.journal.len() - 1)
			forEachAccount(e, func(a string) {
				seqs := s.byAccount[a][:len(s.byAccount[a])-1]
				if len(seqs) == 0 {
					delete(s.byAccount, a)
				} else {
					s.byAccount[a] = seqs
				}
			})
			s.journal.pop()
		case undoEvent:
			s.events.pop()
		case undoRating, undoAggregate, undoPair, undoDay:
			s.undoRatings(u)
		case undoIdem:
			s.dropIdem(u.key())
			if u.existed {
				s.putIdem(pop(&s.prevIdem))
			}
		}
	}
}

// pop removes and returns the last element of *stack.
func pop[T any](stack *[]T) T {
	last := len(*stack) - 1
	v := (*stack)[last]
	var zero T
	(*stack)[last] = zero
	*stack = (*stack)[:last]
	return v
}

// forEachAccount calls fn once for each distinct account e posts to.
func forEachAccount(e escrow.Entry, fn func(string)) {
	for i, p := range e.Postings {
		seen := false
		for _, q := range e.Postings[:i] {
			if q.Account == p.Account {
				seen = true
				break
			}
		}
		if !seen {
			fn(p.Account)
		}
	}
}

// tx implements escrow.Tx over the store's maps.
type tx struct {
	s        *Store
	readOnly bool
	done     bool
}

func (t *tx) check(write bool) error {
	if t.done {
		return fmt.Errorf("memstore: transaction used after it ended: %w", escrow.ErrClosed)
	}
	if write && t.readOnly {
		return escrow.ErrReadOnly
	}
	return nil
}

// notFound is the error for a missing record: the sentinel itself, because
// a miss is routine on the hot path (a new escrow ID, a first balance) and
// the ledger adds the ID when it reports one.
func (t *tx) Account(id string) (escrow.Account, error) {
	if err := t.check(false); err != nil {
		return escrow.Account{}, err
	}
	a, ok := t.s.accounts[id]
	if !ok {
		return escrow.Account{}, escrow.ErrNotFound
	}
	return a, nil
}

func (t *tx) PutAccount(a escrow.Account) error {
	if err := t.check(true); err != nil {
		return err
	}
	old, ok := t.s.accounts[a.ID]
	t.s.undo = append(t.s.undo, undoRec{kind: undoAccount, k: [3]string{a.ID}, existed: ok})
	if ok {
		t.s.prevAccounts = append(t.s.prevAccounts, old)
	}
	t.s.accounts[a.ID] = a
	return nil
}

func (t *tx) Accounts(fn func(escrow.Account) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	for _, id := range sortedKeys(t.s.accounts, strings.Compare) {
		if err := fn(t.s.accounts[id]); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Balance(account, currency string) (escrow.Balance, error) {
	if err := t.check(false); err != nil {
		return escrow.Balance{}, err
	}
	b, ok := t.s.balances[balanceKey{account, currency}]
	if !ok {
		return escrow.Balance{}, escrow.ErrNotFound
	}
	return b, nil
}

func (t *tx) PutBalance(b escrow.Balance) error {
	if err := t.check(true); err != nil {
		return err
	}
	k := balanceKey{b.Account, b.Currency.Code}
	old, ok := t.s.balances[k]
	t.s.undo = append(t.s.undo, undoRec{kind: undoBalance, k: [3]string{k.account, k.currency}, existed: ok})
	if ok {
		t.s.prevBalances = append(t.s.prevBalances, old)
	}
	t.s.balances[k] = b
	return nil
}

func (t *tx) Balances(fn func(escrow.Balance) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	for _, k := range sortedKeys(t.s.balances, func(a, b balanceKey) int {
		return cmp.Or(strings.Compare(a.account, b.account), strings.Compare(a.currency, b.currency))
	}) {
		if err := fn(t.s.balances[k]); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Escrow(id string) (escrow.Escrow, error) {
	if err := t.check(false); err != nil {
		return escrow.Escrow{}, err
	}
	sl := t.s.escrows[id]
	if sl == nil || !sl.exists {
		return escrow.Escrow{}, escrow.ErrNotFound
	}
	return copyEscrow(sl.e), nil
}

func (t *tx) PutEscrow(e escrow.Escrow) error {
	if err := t.check(true); err != nil {
		return err
	}
	sl := t.s.escrows[e.ID]
	ok := sl != nil && sl.exists
	t.s.undo = append(t.s.undo, undoRec{kind: undoEscrow, k: [3]string{e.ID}, existed: ok})
	var due time.Time
	if ok {
		t.s.prevEscrows = append(t.s.prevEscrows, sl.e)
		due = sl.e.NextDue()
	}
	t.s.due.refile(e.ID, due, e.NextDue())
	if sl == nil {
		sl = new(slot)
		t.s.escrows[e.ID] = sl
	}
	sl.e, sl.exists = copyEscrow(e), true
	return nil
}

// copyEscrow returns e with slices and maps of its own, so that no caller
// memory is aliased.
func copyEscrow(e escrow.Escrow) escrow.Escrow {
	e.Milestones = slices.Clone(e.Milestones)
	e.Metadata = maps.Clone(e.Metadata)
	return e
}

func (t *tx) DueEscrows(at time.Time, limit int) ([]string, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []string{}, nil
	}
	return t.s.due.due(at, limit, []string{}), nil
}

func (t *tx) Escrows(fn func(escrow.Escrow) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	for _, id := range sortedKeys(t.s.escrows, strings.Compare) {
		sl := t.s.escrows[id]
		if !sl.exists {
			continue
		}
		if err := fn(copyEscrow(sl.e)); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) AppendEntry(e *escrow.Entry) error {
	if err := t.check(true); err != nil {
		return err
	}
	e.Seq = uint64(t.s.journal.len()) + 1
	stored := *e
	stored.Postings = t.s.copyPostings(e.Postings)
	t.s.journal.append(stored)
	forEachAccount(stored, func(a string) {
		t.s.byAccount[a] = append(t.s.byAccount[a], stored.Seq)
	})
	t.s.undo = append(t.s.undo, undoRec{kind: undoEntry})
	return nil
}

func (t *tx) Entries(account string, after uint64, limit int) ([]escrow.Entry, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	seqs := t.s.byAccount[account]
	i := sort.Search(len(seqs), func(i int) bool { return seqs[i] > after })
	out := make([]escrow.Entry, 0, max(0, min(limit, len(seqs)-i)))
	for ; i < len(seqs) && len(out) < limit; i++ {
		e := *t.s.journal.at(int(seqs[i] - 1))
		e.Postings = slices.Clone(e.Postings)
		out = append(out, e)
	}
	return out, nil
}

func (t *tx) Journal(after uint64, limit int) ([]escrow.Entry, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	n := uint64(t.s.journal.len())
	out := make([]escrow.Entry, 0, pageSize(after, n, limit))
	for i := after; i < n && len(out) < limit; i++ {
		e := *t.s.journal.at(int(i))
		e.Postings = slices.Clone(e.Postings)
		out = append(out, e)
	}
	return out, nil
}

func (t *tx) AppendEvent(ev *escrow.Event) error {
	if err := t.check(true); err != nil {
		return err
	}
	ev.Seq = uint64(t.s.events.len()) + 1
	kept := *ev
	kept.Metadata = maps.Clone(ev.Metadata)
	t.s.events.append(kept)
	t.s.undo = append(t.s.undo, undoRec{kind: undoEvent})
	return nil
}

func (t *tx) Events(after uint64, limit int) ([]escrow.Event, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	n := uint64(t.s.events.len())
	out := make([]escrow.Event, 0, pageSize(after, n, limit))
	for i := after; i < n && len(out) < limit; i++ {
		ev := *t.s.events.at(int(i))
		ev.Metadata = maps.Clone(ev.Metadata)
		out = append(out, ev)
	}
	return out, nil
}

// pageSize is how many records a page of at most limit after Seq after,
// out of n, holds: the capacity to allocate for it once.
func pageSize(after, n uint64, limit int) int {
	if after >= n || limit <= 0 {
		return 0
	}
	return int(min(n-after, uint64(limit)))
}

func (t *tx) Idempotency(key string) (escrow.IdempotencyRecord, error) {
	if err := t.check(false); err != nil {
		return escrow.IdempotencyRecord{}, err
	}
	r, ok := t.s.idem[key]
	if !ok {
		return escrow.IdempotencyRecord{}, escrow.ErrNotFound
	}
	r.Result = slices.Clone(r.Result)
	return r, nil
}

func (t *tx) PutIdempotency(r escrow.IdempotencyRecord) error {
	if err := t.check(true); err != nil {
		return err
	}
	t.s.saveIdem(r.Key)
	r.Result = slices.Clone(r.Result)
	t.s.putIdem(r)
	return nil
}

func (t *tx) DeleteIdempotency(key string) error {
	if err := t.check(true); err != nil {
		return err
	}
	if _, ok := t.s.idem[key]; ok {
		t.s.saveIdem(key)
		t.s.dropIdem(key)
	}
	return nil
}

func (t *tx) IdempotenciesUntil(at time.Time, limit int) ([]string, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []string{}, nil
	}
	return t.s.idemAge.due(at, limit, []string{}), nil
}

// saveIdem records how to undo a write to the record under key.
func (s *Store) saveIdem(key string) {
	old, ok := s.idem[key]
	s.undo = append(s.undo, undoRec{kind: undoIdem, k: [3]string{key}, existed: ok})
	if ok {
		s.prevIdem = append(s.prevIdem, old)
	}
}

// putIdem stores r and files it by age, replacing any record under r.Key.
func (s *Store) putIdem(r escrow.IdempotencyRecord) {
	s.dropIdem(r.Key)
	s.idem[r.Key] = r
	s.idemAge.insert(dueKey{nanos(r.At), r.Key})
}

// dropIdem removes the record under key, if any, and its index entry.
func (s *Store) dropIdem(key string) {
	if old, ok := s.idem[key]; ok {
		s.idemAge.delete(dueKey{nanos(old.At), key})
		delete(s.idem, key)
	}
}

func (t *tx) Idempotencies(fn func(escrow.IdempotencyRecord) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	for _, k := range sortedKeys(t.s.idem, strings.Compare) {
		r := t.s.idem[k]
		r.Result = slices.Clone(r.Result)
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// sortedKeys returns the keys of m in the order compare gives them: the
// order in which the listing methods report records.
func sortedKeys[K comparable, V any](m map[K]V, compare func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	return keys
}

// copyPostings copies p into the store's posting slab. The result's
// capacity equals its length, so an append by a later reader cannot reach
// into a neighbour's postings.
func (s *Store) copyPostings(p []escrow.Posting) []escrow.Posting {
	if cap(s.slab)-len(s.slab) < len(p) {
		s.slab = make([]escrow.Posting, 0, max(4096, len(p)))
	}
	start := len(s.slab)
	s.slab = append(s.slab, p...)
	return s.slab[start:len(s.slab):len(s.slab)]
}
