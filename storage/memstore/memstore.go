// Package memstore is an in-memory escrow.Storage: fast, safe for
// concurrent use, and gone when the process ends. It suits tests, examples
// and hosts that keep their own durable copy, such as storage/filestore.
//
// # Design
//
// Each kind of record is a table: an ordered B-tree
// (github.com/tidwall/btree) of rows that point to the records, which
// listing methods walk in key order. Each index is a B-tree of its own:
// escrows by deadline and by party, events by escrow, idempotency keys by
// age, aggregates by rank and by re-key day. Some things are kept
// otherwise, because they mostly grow at one end: the journal and the
// events are pages of records numbered from 1 (seqLog), and the entries
// of an account and the ratings of a ratee are lists in a table.
//
// One writer at a time holds the write lock and changes the live data in
// place. Every tree remembers what the running transaction changed (the
// item each write replaced, or that there was none), and a rollback puts
// it back, newest first; a commit forgets it. A table also finds rows by
// key in a map, for the writer: a hash lookup costs far less than a tree
// search, and most writes change a record that is already there.
//
// A reader works on a snapshot: a copy of every tree, which a B-tree makes
// in O(1) by sharing its nodes until the writer next changes one; the
// pages and lists are shared as they are, since the writer only writes past
// the end a snapshot sees. So a View's fn never waits for a writer, nor
// holds one up. Snapshots are made lazily: the first View after a commit
// takes the write lock for the moment it takes to copy the trees (only
// those changed since the last snapshot) and publishes the copy; later
// Views share it until the next commit. That View, before its fn runs,
// waits for a write transaction that holds the lock when it comes: the
// data it must see is then only in the live trees, which the writer is
// changing. A store nobody reads pays
// nothing for snapshots, and a View sees every commit made before it
// began. A record a snapshot may share is never changed: the writer stores
// a new one (see table).
//
// Records are copied in and out, so no caller memory is ever aliased.
// Escrows are kept in a smaller form than escrow.Escrow (see stored):
// every trade the store has seen keeps one, and most of an escrow's 960
// bytes are parts that most trades never set.
package memstore

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/internal/notify"
)

var _ escrow.Storage = (*Store)(nil)

// Store is an in-memory escrow.Storage. The zero value is not usable; call New.
type Store struct {
	mu     sync.Mutex // held by the running write transaction and while a snapshot is made
	live   state      // what writers change, under mu
	trees  []undoer   // every tree of live
	closed bool       // under mu

	commits  atomic.Uint64         // commits that wrote, written under mu
	snapshot atomic.Pointer[state] // the newest snapshot; nil once closed
	notify   notify.Notifier       // see EventsCommitted
}

// state is a store's data.
type state struct {
	accounts table[string, escrow.Account]
	balances table[balanceKey, escrow.Balance]
	escrows  table[string, stored]
	// lastShared is the shared part of the escrow stored last, for the
	// next to share; live state only.
	lastShared *shared
	due        dueIndex       // escrows by NextDue
	parties    tree[partyKey] // escrows by party
	journal    seqLog[escrow.Entry]
	postings   []escrow.Posting        // where the journal's postings are, see copyPostings
	byAccount  table[string, []uint64] // the Seq of the entries that post to each account
	events     seqLog[escrow.Event]
	byEscrow   tree[escrowSeq] // the events of each escrow
	consumers  table[string, escrow.Consumer]
	idem       table[string, escrow.IdempotencyRecord]
	idemAge    tree[timeKey] // idempotency keys by At
	reputation

	commits uint64 // in a snapshot, the commits it holds
	extra   any    // see Attach
}

// undoer is a tree as Update sees it.
type undoer interface {
	commit()
	rollback()
}

func (st *state) undoers() []undoer {
	return []undoer{&st.accounts, &st.balances, &st.escrows, &st.due, &st.parties, &st.journal,
		&st.byAccount, &st.events, &st.byEscrow, &st.consumers, &st.idem, &st.idemAge, &st.ratings, &st.byRatee,
		&st.aggs, &st.ranks, &st.rekeys, &st.days, &st.pairs, &st.marks, &st.raters}
}

// snapshotOf returns a snapshot of st, sharing with prev every tree that
// has not changed since prev was made.
func snapshotOf(st, prev *state) *state {
	return &state{
		accounts:  st.accounts.snapshot(prev.accounts),
		balances:  st.balances.snapshot(prev.balances),
		escrows:   st.escrows.snapshot(prev.escrows),
		due:       st.due.snapshot(prev.due),
		parties:   st.parties.snapshot(prev.parties),
		journal:   st.journal.snapshot(prev.journal),
		postings:  st.postings,
		byAccount: st.byAccount.snapshot(prev.byAccount),
		events:    st.events.snapshot(prev.events),
		byEscrow:  st.byEscrow.snapshot(prev.byEscrow),
		consumers: st.consumers.snapshot(prev.consumers),
		idem:      st.idem.snapshot(prev.idem),
		idemAge:   st.idemAge.snapshot(prev.idemAge),
		extra:     st.extra,
		reputation: reputation{
			ratings: st.ratings.snapshot(prev.ratings),
			byRatee: st.byRatee.snapshot(prev.byRatee),
			aggs:    st.aggs.snapshot(prev.aggs),
			ranks:   st.ranks.snapshot(prev.ranks),
			rekeys:  st.rekeys.snapshot(prev.rekeys),
			days:    st.days.snapshot(prev.days),
			pairs:   st.pairs.snapshot(prev.pairs),
			marks:   st.marks.snapshot(prev.marks),
			raters:  st.raters.snapshot(prev.raters),
		},
	}
}

// New returns an empty store.
func New() *Store {
	s := &Store{live: state{
		accounts:   newTable[string, escrow.Account](strings.Compare),
		balances:   newTable[balanceKey, escrow.Balance](balanceKey.compare),
		escrows:    newTable[string, stored](strings.Compare),
		due:        newDueIndex(),
		parties:    newTree(partyKey.less),
		byAccount:  newTable[string, []uint64](strings.Compare),
		byEscrow:   newTree(escrowSeq.less),
		consumers:  newTable[string, escrow.Consumer](strings.Compare),
		idem:       newTable[string, escrow.IdempotencyRecord](strings.Compare),
		idemAge:    newTree(timeKey.less),
		reputation: newReputation(),
	}}
	s.trees = s.live.undoers()
	s.snapshot.Store(snapshotOf(&s.live, &state{}))
	return s
}

// Update runs fn in a read-write transaction; see escrow.Storage.
func (s *Store) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return s.closedOr(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return escrow.ErrClosed
	}
	// A transaction of its own, not a reused one: a Tx kept past its
	// Update must find itself ended, not write into a later transaction.
	t := &tx{st: &s.live, write: true}
	committed := false
	defer func() { // also when fn panics
		t.done = true
		for _, tr := range s.trees {
			if committed {
				tr.commit()
			} else {
				tr.rollback()
			}
		}
		if committed && t.appended {
			// A waiter's View takes mu, so it sees this commit.
			s.notify.Wake()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	committed = true
	if t.wrote {
		s.commits.Add(1)
	}
	return nil
}

// View runs fn in a read-only transaction on a snapshot of the committed
// data; see escrow.Storage. It neither waits for a writer while fn runs
// nor holds one up.
func (s *Store) View(ctx context.Context, fn func(escrow.Tx) error) error {
	return s.Snapshot(ctx, nil, fn)
}

// Snapshot is View for a caller that must know exactly which commits fn
// sees, as filestore must when it writes a snapshot to disk. If taken is
// not nil, Snapshot calls it while no write transaction runs and the
// committed data is what fn will see, so that a count of commits read
// there numbers the snapshot; if taken returns an error, Snapshot returns
// it without calling fn. Then fn runs as in View, holding up no writer.
func (s *Store) Snapshot(ctx context.Context, taken func() error, fn func(escrow.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return s.closedOr(err)
	}
	st := s.snapshot.Load()
	if st != nil && (taken != nil || st.commits != s.commits.Load()) {
		var err error
		if st, err = s.takeSnapshot(taken); err != nil {
			return err
		}
	}
	if st == nil {
		return escrow.ErrClosed
	}
	t := &tx{st: st}
	defer func() { t.done = true }()
	return fn(t)
}

// closedOr returns escrow.ErrClosed if the store is closed, and err if
// not: a call after Close fails with ErrClosed whatever its context, as
// escrow.Storage says. It costs nothing on the path of a live context.
func (s *Store) closedOr(err error) error {
	if s.snapshot.Load() == nil { // Close sets it so, under mu
		return escrow.ErrClosed
	}
	return err
}

// takeSnapshot returns a snapshot of the committed data, made now if the
// newest is out of date, and calls taken, if not nil, before any other
// commit. It returns nil if the store is closed.
func (s *Store) takeSnapshot(taken func() error) (*state, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.snapshot.Load()
	if st == nil {
		return nil, nil
	}
	if n := s.commits.Load(); st.commits != n {
		st = snapshotOf(&s.live, st)
		st.commits = n
		s.snapshot.Store(st)
	}
	if taken != nil {
		if err := taken(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// Close discards the data, once the running write transaction has ended.
// Read transactions already running keep their snapshot. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.snapshot.Store(nil)
	s.live, s.trees = state{}, nil
	s.notify.Close()
	return nil
}

// tx implements escrow.Tx over a state: the live one in a write
// transaction, a snapshot in a read transaction.
type tx struct {
	st       *state
	write    bool
	wrote    bool
	appended bool // an event: see EventsCommitted
	done     bool
}

func (t *tx) check(write bool) error {
	if t.done {
		return fmt.Errorf("memstore: transaction used after it ended: %w", escrow.ErrClosed)
	}
	if write {
		if !t.write {
			return escrow.ErrReadOnly
		}
		t.wrote = true
	}
	return nil
}

// get returns a copy, made by out, of the record under k, or ErrNotFound:
// the sentinel itself, because a miss is routine on the hot path (a new
// escrow ID, a first balance) and the ledger adds the ID when it reports one.
func get[K comparable, V, R any](t *tx, tbl *table[K, V], k K, out func(*V) R) (R, error) {
	var zero R
	if err := t.check(false); err != nil {
		return zero, err
	}
	v, ok := tbl.get(k)
	if !ok {
		return zero, escrow.ErrNotFound
	}
	return out(v), nil
}

// val copies a record that holds no memory a caller could change.
func val[V any](v *V) V { return *v }

// walk calls fn with the items of tr in order, from the first not below
// from (nil: the first), while in (nil: always) holds of them, until fn
// returns an error, which it returns. It is for the methods that call
// back; those that return a slice read the tree directly.
func walk[T any](t *tx, tr *tree[T], from *T, in func(T) bool, fn func(T) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	ascend := func(visit func(T) bool) {
		if from == nil {
			tr.bt.Scan(visit)
		} else {
			tr.bt.Ascend(*from, visit)
		}
	}
	if !t.write {
		var err error
		ascend(func(item T) bool {
			if in != nil && !in(item) {
				return false
			}
			err = fn(item)
			return err == nil
		})
		return err
	}
	// In a write transaction fn may write to the tree, which must not
	// change under a walk: gather the items first.
	var buf [4]T
	items := buf[:0]
	ascend(func(item T) bool {
		if in != nil && !in(item) {
			return false
		}
		items = append(items, item)
		return true
	})
	for _, item := range items {
		if err := fn(item); err != nil {
			return err
		}
	}
	return nil
}

// each calls fn with a copy, made by out, of every record of tbl in key
// order, until fn returns an error, which it returns.
func each[K comparable, V, R any](t *tx, tbl *table[K, V], out func(*V) R, fn func(R) error) error {
	return walk(t, &tbl.tree, nil, nil, func(r row[K, V]) error { return fn(out(r.val)) })
}

// upTo returns the IDs of at most limit of the keys scan yields, in its
// order, whose time is not after at.
func upTo(t *tx, scan func(func(timeKey) bool), at time.Time, limit int) ([]string, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	ids := []string{}
	until := nanos(at)
	scan(func(k timeKey) bool {
		if k.at > until || len(ids) >= limit {
			return false
		}
		ids = append(ids, k.id)
		return true
	})
	return ids, nil
}

type balanceKey struct{ account, currency string }

// compare, as every key's comparison, compares a field only when those
// before it tie: cmp.Or would compare them all, a call to compare strings
// each, and a tree search compares keys many times.

func (a balanceKey) compare(b balanceKey) int {
	if c := strings.Compare(a.account, b.account); c != 0 {
		return c
	}
	return strings.Compare(a.currency, b.currency)
}

// timeKey files an ID under a time, ties by ID.
type timeKey struct {
	at int64 // nanos(the time): 8 bytes where a time.Time takes 24
	id string
}

func (a timeKey) less(b timeKey) bool {
	return a.at < b.at || a.at == b.at && a.id < b.id
}

// The times UnixNano can represent (years 1678 to 2262).
var earliest, latest = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// nanos returns t as UnixNano, clamped to the range UnixNano can represent,
// so that a far-future time (the year 9999) sorts after every nearer one
// instead of wrapping around.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(earliest):
		return math.MinInt64
	case t.After(latest):
		return math.MaxInt64
	}
	return t.UnixNano()
}
