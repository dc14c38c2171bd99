package memstore

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/escrowkit/escrow"
)

// This file lets a store that keeps its history elsewhere, such as
// storage/filestore, hold in memory only what is live: it copies the
// records of a snapshot that will not change again to its own files, then
// has Evict take them out of the live store. Reads of what was evicted are
// then the holder's to answer; memstore answers as if the records had never
// been there, except that the journal and the events keep their numbers.

// evictBatch is how many records Evict takes out while it holds the write
// lock once, so that a writer waits for at most one batch.
const evictBatch = 1024

// Cold reports whether an escrow in a snapshot is one that Evict takes
// out: it has ended, so that only its ratings can still change it.
func Cold(e *escrow.Escrow) bool { return e.State.Terminal() }

// Floors returns the sequence numbers of the last journal entry and the
// last event that the store behind tx has evicted, 0 if none: tx reads
// neither those nor any before them. tx must be one of this package's.
func Floors(t escrow.Tx) (journal, events uint64) {
	st := t.(*tx).st
	return uint64(st.journal.floor), uint64(st.events.floor)
}

// Extra returns the value Attach last gave the store, as tx sees it: a
// transaction that began before the Attach sees the value before it. tx
// must be one of this package's.
func Extra(t escrow.Tx) any { return t.(*tx).st.extra }

// Attach gives the store a value that every transaction that begins from
// now on sees through Extra, and none that began before. The holder of
// evicted records keeps there what tells it where they are.
func (s *Store) Attach(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live.extra = v
	s.commits.Add(1) // so that the next View takes a new snapshot
}

// StartAfter numbers the next journal entry journal+1 and the next event
// events+1, as if that many had been appended and evicted. It is for a
// store that holds no journal entry or event yet, as one just made, and
// fails on one that does; other records do not stop it.
func (s *Store) StartAfter(journal, events uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live.journal.n != 0 || s.live.events.n != 0 {
		return errNotEmpty
	}
	s.live.journal.startAfter(int(journal))
	s.live.events.startAfter(int(events))
	s.commits.Add(1)
	return nil
}

var errNotEmpty = errors.New("memstore: StartAfter on a store that holds records")

// Evict takes out of the live store what the snapshot that snap reads
// holds and Cold says will not change: the escrows Cold reports, every
// rating, monthly pair counter and item mark, and every journal entry and
// event. A record written again since the snapshot was taken stays. snap
// must be a transaction of Snapshot that is still running, and the caller
// must already answer reads of the records from elsewhere (see Attach).
// Evict takes the write lock for a batch of records at a time. It returns
// how many records it took out.
func (s *Store) Evict(snap escrow.Tx) int {
	st := snap.(*tx).st
	n := 0
	// Escrows, and their keys in the party index. The due index keeps an
	// escrow whose rating window is still open: ProcessDue finds it there.
	n += evictRows(s, &st.escrows, func(l *state) *table[string, stored] { return &l.escrows }, (*stored).cold,
		func(live *state, rows []row[string, stored]) {
			for _, r := range rows {
				for _, k := range r.val.partyKeys() {
					live.parties.delete(k)
				}
			}
		})
	// Ratings, and their places in their ratees' lists.
	n += evictRows(s, &st.ratings, func(l *state) *table[ratingKey, escrow.Rating] { return &l.ratings }, nil,
		(*state).unfileRatings)
	n += evictRows(s, &st.pairs, func(l *state) *table[pairKey, escrow.PairMonth] { return &l.pairs }, nil, nil)
	n += evictRows(s, &st.marks, func(l *state) *table[markKey, escrow.ItemMark] { return &l.marks }, nil, nil)

	// The journal and the events up to the snapshot's ends, with their
	// places in the account and escrow indexes.
	journal, events := uint64(st.journal.n), uint64(st.events.n)
	var accounts []string
	st.byAccount.bt.Scan(func(r row[string, []uint64]) bool {
		accounts = append(accounts, r.key)
		return true
	})
	batches(s, accounts, func(live *state, accounts []string) int {
		for _, account := range accounts {
			seqs := seqsOf(&live.byAccount, account)
			i, _ := slices.BinarySearch(seqs, journal+1)
			switch {
			case i == 0:
			case i == len(seqs):
				live.byAccount.delete(account)
			default:
				live.byAccount.put(account, slices.Clone(seqs[i:]))
			}
		}
		return len(accounts)
	})
	var byEscrow []escrowSeq
	st.byEscrow.bt.Scan(func(k escrowSeq) bool {
		byEscrow = append(byEscrow, k)
		return true
	})
	batches(s, byEscrow, func(live *state, keys []escrowSeq) int {
		for _, k := range keys {
			live.byEscrow.delete(k)
		}
		return len(keys)
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return n
	}
	n += s.live.journal.evict(int(journal)) + s.live.events.evict(int(events))
	s.endBatch()
	return n
}

// evictRows takes out of the live table that of picks the rows of snap,
// the same table in a snapshot, that cold selects (nil: all) and that were
// not written since the snapshot; unfile, if not nil, first takes the rows
// of each batch out of the indexes that point to them, all at once, so
// that an index entry shared by many rows (a ratee's list of ratings) is
// rewritten once a batch rather than once a row. It returns how many it
// took out.
func evictRows[K comparable, V any](s *Store, snap *table[K, V], of func(*state) *table[K, V],
	cold func(*V) bool, unfile func(*state, []row[K, V])) int {
	var rows []row[K, V]
	snap.bt.Scan(func(r row[K, V]) bool {
		if cold == nil || cold(r.val) {
			rows = append(rows, r)
		}
		return true
	})
	var taken []row[K, V]
	return batches(s, rows, func(live *state, batch []row[K, V]) int {
		tbl := of(live)
		taken = taken[:0]
		for _, r := range batch {
			if cur, ok := tbl.rows[r.key]; ok && cur.val == r.val { // else written since
				taken = append(taken, r)
			}
		}
		if unfile != nil && len(taken) > 0 {
			unfile(live, taken)
		}
		for _, r := range taken {
			tbl.delete(r.key)
		}
		return len(taken)
	})
}

// batches calls take with the live state and evictBatch items at a time
// (fewer for the last), holding the write lock for each call, and returns
// the sum of what take returns: how many it took.
func batches[T any](s *Store, items []T, take func(*state, []T) int) int {
	n := 0
	for len(items) > 0 {
		k := min(len(items), evictBatch)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return n
		}
		n += take(&s.live, items[:k])
		s.endBatch()
		s.mu.Unlock()
		items = items[k:]
	}
	return n
}

// endBatch commits what a batch of Evict changed, as a transaction would.
// It is called with mu held.
func (s *Store) endBatch() {
	for _, tr := range s.trees {
		tr.commit()
	}
	s.commits.Add(1)
}

// startAfter makes an empty log number its next record n+1.
func (l *seqLog[T]) startAfter(n int) {
	l.pages = make([]*[pageLen]T, (n+pageLen-1)/pageLen)
	if n%pageLen != 0 {
		l.pages[len(l.pages)-1] = new([pageLen]T)
	}
	l.n, l.floor = n, n
}

// evict drops the records up to n, freeing every page that holds none
// after them, and returns how many it dropped. Snapshots share the list of
// pages, so it makes a new one.
func (l *seqLog[T]) evict(n int) int {
	if n <= l.floor {
		return 0
	}
	dropped := n - l.floor
	pages := slices.Clone(l.pages)
	for i := l.floor / pageLen; i < n/pageLen; i++ {
		pages[i] = nil
	}
	l.pages, l.floor = pages, n
	return dropped
}

// ColdDue calls fn, in the order of their times, with the due times (as
// UnixNano) of the escrows in the due index that Evict took out, or would
// take out of tx's snapshot, while a timer of theirs is still set, until
// fn returns an error.
func ColdDue(t escrow.Tx, fn func(id string, due int64) error) error {
	st := t.(*tx).st
	var err error
	st.due.scan(func(k timeKey) bool {
		if e, ok := st.escrows.get(k.id); !ok || e.cold() {
			err = fn(k.id, k.at)
		}
		return err == nil
	})
	return err
}

// FileDue puts evicted escrows back in the due index, ids[i] due at
// dues[i] as ColdDue reported it, in a write transaction: a store that
// loads its live records from a copy restores so the timers of the
// escrows it evicted. Called in the order ColdDue reports them, it files
// millions of timers in a few allocations.
func FileDue(t escrow.Tx, ids []string, dues []int64) error {
	tx := t.(*tx)
	if err := tx.check(true); err != nil {
		return err
	}
	if len(ids) != len(dues) {
		return fmt.Errorf("memstore: FileDue: %d ids and %d times", len(ids), len(dues))
	}
	for i, id := range ids {
		tx.st.due.file(timeKey{dues[i], id})
	}
	return nil
}

// UnixNano returns t as memstore orders times: UnixNano, clamped to the
// years it can represent, so that a far-future time sorts after every
// nearer one. A store that keeps records elsewhere in memstore's order
// orders their times so.
func UnixNano(t time.Time) int64 { return nanos(t) }

// A ColdVisitor receives the records that Evict takes out of a snapshot,
// as VisitCold finds them. Each function may be nil. The records are the
// store's own, not copies: a function must neither change one nor keep
// it, nor anything it points to, after it returns.
type ColdVisitor struct {
	Escrow func(*escrow.Escrow) error    // ended escrows, by ID
	Entry  func(*escrow.Entry) error     // journal entries past the floor, by Seq
	Event  func(*escrow.Event) error     // events past the floor, by Seq
	Rating func(*escrow.Rating) error    // ratings, by escrow and rater
	Pair   func(*escrow.PairMonth) error // monthly pair counters, by key
	Mark   func(*escrow.ItemMark) error  // item marks, by key
}

// VisitCold calls v's functions with what Evict would take out of the
// snapshot that t, a transaction of Snapshot or View, reads, without the
// copies that Tx's methods make for their callers; a store that writes
// those records elsewhere before it evicts them reads them so. It stops
// at the first error, which it returns.
func VisitCold(t escrow.Tx, v ColdVisitor) error {
	tx := t.(*tx)
	if err := tx.check(false); err != nil {
		return err
	}
	if tx.write {
		return errors.New("memstore: VisitCold in a write transaction")
	}
	st := tx.st
	var err error
	if v.Escrow != nil {
		st.escrows.bt.Scan(func(r row[string, stored]) bool {
			if r.val.cold() {
				e := unpack(r.val)
				err = v.Escrow(&e)
			}
			return err == nil
		})
	}
	if v.Entry != nil && err == nil {
		for seq := st.journal.floor + 1; seq <= st.journal.n && err == nil; seq++ {
			err = v.Entry(st.journal.at(uint64(seq)))
		}
	}
	if v.Event != nil && err == nil {
		for seq := st.events.floor + 1; seq <= st.events.n && err == nil; seq++ {
			err = v.Event(st.events.at(uint64(seq)))
		}
	}
	if v.Rating != nil && err == nil {
		st.ratings.bt.Scan(func(r row[ratingKey, escrow.Rating]) bool {
			err = v.Rating(r.val)
			return err == nil
		})
	}
	if v.Pair != nil && err == nil {
		st.pairs.bt.Scan(func(r row[pairKey, escrow.PairMonth]) bool {
			err = v.Pair(r.val)
			return err == nil
		})
	}
	if v.Mark != nil && err == nil {
		st.marks.bt.Scan(func(r row[markKey, escrow.ItemMark]) bool {
			err = v.Mark(r.val)
			return err == nil
		})
	}
	return err
}
