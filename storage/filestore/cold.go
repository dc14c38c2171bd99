package filestore

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore/internal/sstable"
	"github.com/escrowkit/escrow/storage/memstore"
)

// A coldTable is one table file of records that left memory.
type coldTable struct {
	t      *sstable.Table
	name   string
	lo, hi uint64 // the checkpoints it holds: those at sequence numbers lo to hi
	// journal and events are the last entry and event it holds: it holds
	// every one up to them that is not in a newer table.
	journal, events uint64
	// refs counts the table sets that hold the table; it closes when the
	// last of them is garbage, or when the store closes.
	refs  atomic.Int64
	close sync.Once
	// retired is the store's count of the tables a merge replaced that
	// are still open, once a merge has replaced this one; nil before.
	retired atomic.Pointer[atomic.Int64]
}

func (t *coldTable) closeFile() {
	t.close.Do(func() {
		t.t.Close()
		if n := t.retired.Load(); n != nil {
			n.Add(-1)
		}
	})
}

// A tableSet is the cold tables the store reads at one moment, newest
// first. The store attaches it to its memstore (memstore.Attach), so that
// each transaction reads the tables that go with the records it sees in
// memory, for as long as it runs: a set lives while a snapshot of
// memstore or a transaction holds it, and its tables stay open until no
// set holds them.
type tableSet struct {
	tables          []*coldTable
	journal, events uint64 // the most of the tables' journal and events
}

func newTableSet(tables []*coldTable) *tableSet {
	ts := &tableSet{tables: tables}
	for _, t := range tables {
		ts.journal = max(ts.journal, t.journal)
		ts.events = max(ts.events, t.events)
		t.refs.Add(1)
	}
	runtime.AddCleanup(ts, func(tables []*coldTable) {
		for _, t := range tables {
			if t.refs.Add(-1) == 0 {
				t.closeFile()
			}
		}
	}, slices.Clone(tables))
	return ts
}

// get returns the value of key in the newest table that holds it.
func (ts *tableSet) get(key []byte) ([]byte, bool, error) {
	for _, t := range ts.tables {
		v, ok, err := t.t.Get(key)
		if err != nil {
			return nil, false, tableErr(t, err)
		}
		if ok {
			return v, true, nil
		}
	}
	return nil, false, nil
}

// record decodes the record under key into o; false if there is none.
func (ts *tableSet) record(key []byte, o *op) (bool, error) {
	v, ok, err := ts.get(key)
	if err != nil || !ok {
		return false, err
	}
	return true, decodeValue(v, o)
}

// scan calls fn with the keys and values under prefix from start (nil:
// the first), in order, the newest table's where several hold a key,
// until fn returns false.
func (ts *tableSet) scan(prefix, start []byte, fn func(k, v []byte) (bool, error)) error {
	its := make([]*sstable.Iter, len(ts.tables))
	for i, t := range ts.tables {
		its[i] = t.t.NewIter()
	}
	m := sstable.NewMerge(its...)
	if start == nil || bytes.Compare(start, prefix) < 0 {
		start = prefix
	}
	for ok := m.Seek(start); ok && bytes.HasPrefix(m.Key(), prefix); ok = m.Next() {
		more, err := fn(m.Key(), m.Value())
		if err != nil || !more {
			return err
		}
	}
	if err := m.Err(); errors.Is(err, fs.ErrClosed) {
		return closedErr("cold tables", err)
	} else if err != nil {
		return fmt.Errorf("filestore: cold tables: %w: %w", ErrCorrupt, err)
	}
	return nil
}

func tableErr(t *coldTable, err error) error {
	switch {
	case errors.Is(err, fs.ErrClosed):
		return closedErr(t.name, err)
	case errors.Is(err, sstable.ErrCorrupt):
		return fmt.Errorf("filestore: %s: %w: %w", t.name, ErrCorrupt, err)
	}
	return fmt.Errorf("filestore: %s: %w", t.name, err)
}

// closedErr words a read of a table file that Close has closed, under a
// View that was still running: the store is closed, not damaged.
func closedErr(where string, err error) error {
	return fmt.Errorf("filestore: %s: %w: %w", where, escrow.ErrClosed, err)
}

// decodeValue decodes a table's value: one operation of the log's format.
func decodeValue(v []byte, o *op) error {
	d := decoder{b: v, version: formatVersion}
	if !d.next(o) || len(d.b) != 0 {
		return fmt.Errorf("filestore: cold record: %w: %w", ErrCorrupt, errDecode)
	}
	return nil
}

// coldTx is a transaction of a store with cold tables: it reads the
// records memstore holds and, for those it no longer does, the tables.
// memstore's version of a record, where it has one, is the newer. Before
// it writes a record that memstore no longer holds, it puts the cold one
// back (unrecorded), so that memstore's indexes drop the old keys.
type coldTx struct {
	escrow.Tx
	ts *tableSet
}

// withCold returns tx, reading the cold tables attached to what it sees,
// and keeping the removals of item marks (see markTx).
func (s *Store) withCold(tx escrow.Tx) escrow.Tx {
	ts, _ := memstore.Extra(tx).(*tableSet)
	if ts == nil || len(ts.tables) == 0 {
		return markTx{tx}
	}
	return markTx{&coldTx{Tx: tx, ts: ts}}
}

// markGone is the Escrow of an item mark that records the mark's removal.
// No escrow ID holds a NUL.
const markGone = "\x00"

// markTx keeps the removal of an item mark, which may have copies in the
// cold tables, as a mark whose Escrow is markGone: memstore holds it, a
// checkpoint moves it to a table, and a read finds it in place of the
// older copies and answers as if there were none. Dropping the mark from
// memstore instead would let a copy in a table show again, and so would
// a mark removed after the snapshot a checkpoint evicts from was taken,
// even with no tables yet. It wraps every transaction of the store.
type markTx struct{ escrow.Tx }

func (t markTx) ItemMark(ratee, rater, item string) (escrow.ItemMark, error) {
	m, err := t.Tx.ItemMark(ratee, rater, item)
	if err == nil && m.Escrow == markGone {
		return escrow.ItemMark{}, escrow.ErrNotFound
	}
	return m, err
}

func (t markTx) PutItemMark(m escrow.ItemMark) error {
	switch m.Escrow {
	case markGone:
		return fmt.Errorf("%w: filestore: item mark with escrow %q", escrow.ErrInvalidArgument, m.Escrow)
	case "":
		m.At = time.Time{}
		m.Escrow = markGone
	}
	return t.Tx.PutItemMark(m)
}

func (t markTx) ItemMarks(fn func(escrow.ItemMark) error) error {
	return t.Tx.ItemMarks(func(m escrow.ItemMark) error {
		if m.Escrow == markGone {
			return nil
		}
		return fn(m)
	})
}

func notFound[T any](v T, err error) bool { return errors.Is(err, escrow.ErrNotFound) }

func (t *coldTx) Escrow(id string) (escrow.Escrow, error) {
	e, err := t.Tx.Escrow(id)
	if !errors.Is(err, escrow.ErrNotFound) {
		return e, err
	}
	var o op
	if ok, err := t.ts.record(escrowKey(id), &o); err != nil || !ok {
		return escrow.Escrow{}, cmp.Or(err, escrow.ErrNotFound)
	}
	return o.escrow, nil
}

func (t *coldTx) PutEscrow(e escrow.Escrow) error {
	if notFound(t.Tx.Escrow(e.ID)) {
		var o op
		if ok, err := t.ts.record(escrowKey(e.ID), &o); err != nil {
			return err
		} else if ok {
			if err := t.Tx.PutEscrow(o.escrow); err != nil {
				return err
			}
		}
	}
	return t.Tx.PutEscrow(e)
}

func (t *coldTx) Escrows(fn func(escrow.Escrow) error) error {
	var hot []escrow.Escrow
	if err := t.Tx.Escrows(func(e escrow.Escrow) error { hot = append(hot, e); return nil }); err != nil {
		return err
	}
	return mergeScan(t.ts, []byte{kindEscrow}, nil, hot,
		func(e *escrow.Escrow) []byte { return escrowKey(e.ID) },
		func(k, v []byte) (escrow.Escrow, bool, error) {
			var o op
			err := decodeValue(v, &o)
			return o.escrow, true, err
		}, fn)
}

// errStop ends a scan early; it never leaves this file.
var errStop = errors.New("stop")

func (t *coldTx) PartyEscrows(q escrow.PartyQuery) ([]escrow.Escrow, error) {
	hot, err := t.Tx.PartyEscrows(q)
	if err != nil || q.Party == "" || q.Limit <= 0 {
		return hot, err
	}
	prefix := partyPrefix(q.Party)
	var start []byte
	if q.After != (escrow.EscrowPos{}) {
		start = partyKey(q.Party, nanos(q.After.CreatedAt), q.After.ID, 0)
		start[len(start)-1] = 0xff // past every role of the escrow After names
	}
	page := make([]escrow.Escrow, 0, len(hot))
	last := ""
	err = mergeScan(t.ts, prefix, start, hot,
		func(e *escrow.Escrow) []byte { return partyKey(q.Party, nanos(e.CreatedAt), e.ID, 0) },
		func(k, _ []byte) (escrow.Escrow, bool, error) {
			at, id, role, ok := readPartyKey(k, len(prefix))
			if !ok {
				return escrow.Escrow{}, false, fmt.Errorf("filestore: cold party index: %w: bad key", ErrCorrupt)
			}
			if role&q.Role == 0 || id == last || !notFound(t.Tx.Escrow(id)) {
				return escrow.Escrow{}, false, nil
			}
			var o op
			if ok, err := t.ts.record(escrowKey(id), &o); err != nil || !ok {
				return escrow.Escrow{}, false, cmp.Or(err, fmt.Errorf("filestore: cold escrow %q: %w: missing", id, ErrCorrupt))
			}
			if nanos(o.escrow.CreatedAt) != at || o.escrow.RoleOf(q.Party)&role == 0 {
				return escrow.Escrow{}, false, nil // filed so by an older version
			}
			last = id
			if len(q.States) > 0 && !slices.Contains(q.States, o.escrow.State) {
				return escrow.Escrow{}, false, nil
			}
			return o.escrow, true, nil
		},
		func(e escrow.Escrow) error {
			if len(page) >= q.Limit {
				return errStop
			}
			page = append(page, e)
			return nil
		})
	if err != nil && err != errStop {
		return nil, err
	}
	return page, nil
}

// seqPage reads at most limit records of kind after seq after from the
// tables, with decode.
func seqPage[T any](ts *tableSet, kind byte, after uint64, limit int, decode func(*op) T) ([]T, error) {
	var page []T
	if after >= ts.floor(kind) || limit <= 0 {
		return page, nil
	}
	err := ts.scan([]byte{kind}, seqKey(kind, after+1), func(_, v []byte) (bool, error) {
		var o op
		if err := decodeValue(v, &o); err != nil {
			return false, err
		}
		page = append(page, decode(&o))
		return len(page) < limit, nil
	})
	return page, err
}

func (ts *tableSet) floor(kind byte) uint64 {
	if kind == kindEntry {
		return ts.journal
	}
	return ts.events
}

// underPage reads at most limit records of kind filed under name in index
// (whose values are empty) after seq after.
func underPage[T any](ts *tableSet, index, kind byte, name string, after uint64, limit int, decode func(*op) T) ([]T, error) {
	var page []T
	if after >= ts.floor(kind) || limit <= 0 {
		return page, nil
	}
	prefix := appendStr([]byte{index}, name)
	err := ts.scan(prefix, underKey(index, name, after+1), func(k, _ []byte) (bool, error) {
		seq, _, ok := readU64(k[len(prefix):])
		if !ok {
			return false, fmt.Errorf("filestore: cold index: %w: bad key", ErrCorrupt)
		}
		var o op
		if ok, err := ts.record(seqKey(kind, seq), &o); err != nil || !ok {
			return false, cmp.Or(err, fmt.Errorf("filestore: cold record %d: %w: missing", seq, ErrCorrupt))
		}
		page = append(page, decode(&o))
		return len(page) < limit, nil
	})
	return page, err
}

func entryOf(o *op) escrow.Entry { return o.entry }
func eventOf(o *op) escrow.Event { return o.event }

// thenHot appends to cold what hot reads after the tables' last record.
// It calls hot even when cold fills the page, for nothing, since hot's
// transaction decides whether the call may be made at all: a Tx kept
// past the end of its View or Update must fail, not read the tables.
func thenHot[T any](cold []T, limit int, floor, after uint64, hot func(after uint64, limit int) ([]T, error)) ([]T, error) {
	if len(cold) >= limit && limit > 0 {
		if _, err := hot(max(after, floor), 0); err != nil {
			return nil, err
		}
		return cold, nil
	}
	rest, err := hot(max(after, floor), limit-len(cold))
	if err != nil {
		return nil, err
	}
	if len(cold) == 0 {
		return rest, nil
	}
	return append(cold, rest...), nil
}

func (t *coldTx) Journal(after uint64, limit int) ([]escrow.Entry, error) {
	cold, err := seqPage(t.ts, kindEntry, after, limit, entryOf)
	if err != nil {
		return nil, err
	}
	return thenHot(cold, limit, t.ts.journal, after, t.Tx.Journal)
}

func (t *coldTx) Entries(account string, after uint64, limit int) ([]escrow.Entry, error) {
	cold, err := underPage(t.ts, kindAccount, kindEntry, account, after, limit, entryOf)
	if err != nil {
		return nil, err
	}
	return thenHot(cold, limit, t.ts.journal, after, func(after uint64, limit int) ([]escrow.Entry, error) {
		return t.Tx.Entries(account, after, limit)
	})
}

func (t *coldTx) Events(after uint64, limit int) ([]escrow.Event, error) {
	cold, err := seqPage(t.ts, kindEvent, after, limit, eventOf)
	if err != nil {
		return nil, err
	}
	return thenHot(cold, limit, t.ts.events, after, t.Tx.Events)
}

func (t *coldTx) EscrowEvents(id string, after uint64, limit int) ([]escrow.Event, error) {
	cold, err := underPage(t.ts, kindEscEvent, kindEvent, id, after, limit, eventOf)
	if err != nil {
		return nil, err
	}
	return thenHot(cold, limit, t.ts.events, after, func(after uint64, limit int) ([]escrow.Event, error) {
		return t.Tx.EscrowEvents(id, after, limit)
	})
}

func (t *coldTx) Rating(escrowID, rater string) (escrow.Rating, error) {
	r, err := t.Tx.Rating(escrowID, rater)
	if !errors.Is(err, escrow.ErrNotFound) {
		return r, err
	}
	var o op
	if ok, err := t.ts.record(ratingKey(escrowID, rater), &o); err != nil || !ok {
		return escrow.Rating{}, cmp.Or(err, escrow.ErrNotFound)
	}
	return o.rating, nil
}

func (t *coldTx) PutRating(r escrow.Rating) error {
	if notFound(t.Tx.Rating(r.Escrow, r.Rater)) {
		var o op
		if ok, err := t.ts.record(ratingKey(r.Escrow, r.Rater), &o); err != nil {
			return err
		} else if ok {
			if err := t.Tx.PutRating(o.rating); err != nil {
				return err
			}
		}
	}
	return t.Tx.PutRating(r)
}

func (t *coldTx) RatingsOf(party string, after escrow.RatingPos, fn func(escrow.Rating) error) error {
	var hot []escrow.Rating
	if err := t.Tx.RatingsOf(party, after, func(r escrow.Rating) error { hot = append(hot, r); return nil }); err != nil {
		return err
	}
	prefix := rateePrefix(party)
	var start []byte
	if after != (escrow.RatingPos{}) {
		start = append(rateeKey(party, nanos(after.At), after.Escrow, after.Rater), 0)
	}
	return mergeScan(t.ts, prefix, start, hot,
		func(r *escrow.Rating) []byte { return rateeKey(party, nanos(r.At), r.Escrow, r.Rater) },
		func(k, _ []byte) (escrow.Rating, bool, error) {
			if len(k) < len(prefix)+8 {
				return escrow.Rating{}, false, fmt.Errorf("filestore: cold ratee index: %w: bad key", ErrCorrupt)
			}
			id, rest, ok1 := readStr(k[len(prefix)+8:])
			rater, _, ok2 := readStr(rest)
			if !ok1 || !ok2 {
				return escrow.Rating{}, false, fmt.Errorf("filestore: cold ratee index: %w: bad key", ErrCorrupt)
			}
			if !notFound(t.Tx.Rating(id, rater)) {
				return escrow.Rating{}, false, nil // memstore's is newer
			}
			var o op
			if ok, err := t.ts.record(ratingKey(id, rater), &o); err != nil || !ok {
				return escrow.Rating{}, false, cmp.Or(err, fmt.Errorf("filestore: cold rating %q: %w: missing", id, ErrCorrupt))
			}
			// An older table files an older version of the rating, which
			// a newer one may have moved to another time or ratee.
			at, _, _ := readU64(k[len(prefix):])
			current := o.rating.Ratee == party && uint64(nanos(o.rating.At))^(1<<63) == at
			return o.rating, current, nil
		}, fn)
}

func (t *coldTx) Ratings(fn func(escrow.Rating) error) error {
	var hot []escrow.Rating
	if err := t.Tx.Ratings(func(r escrow.Rating) error { hot = append(hot, r); return nil }); err != nil {
		return err
	}
	return mergeScan(t.ts, []byte{kindRating}, nil, hot,
		func(r *escrow.Rating) []byte { return ratingKey(r.Escrow, r.Rater) },
		func(_, v []byte) (escrow.Rating, bool, error) {
			var o op
			err := decodeValue(v, &o)
			return o.rating, true, err
		}, fn)
}

func (t *coldTx) PairMonth(ratee, rater, month string) (escrow.PairMonth, error) {
	p, err := t.Tx.PairMonth(ratee, rater, month)
	if !errors.Is(err, escrow.ErrNotFound) {
		return p, err
	}
	var o op
	if ok, err := t.ts.record(pairKey(ratee, rater, month), &o); err != nil || !ok {
		return escrow.PairMonth{}, cmp.Or(err, escrow.ErrNotFound)
	}
	return o.pair, nil
}

func (t *coldTx) PairMonths(fn func(escrow.PairMonth) error) error {
	var hot []escrow.PairMonth
	if err := t.Tx.PairMonths(func(p escrow.PairMonth) error { hot = append(hot, p); return nil }); err != nil {
		return err
	}
	return mergeScan(t.ts, []byte{kindPair}, nil, hot,
		func(p *escrow.PairMonth) []byte { return pairKey(p.Ratee, p.Rater, p.Month) },
		func(_, v []byte) (escrow.PairMonth, bool, error) {
			var o op
			err := decodeValue(v, &o)
			return o.pair, true, err
		}, fn)
}

func (t *coldTx) ItemMark(ratee, rater, item string) (escrow.ItemMark, error) {
	m, err := t.Tx.ItemMark(ratee, rater, item)
	if !errors.Is(err, escrow.ErrNotFound) {
		return m, err
	}
	var o op
	if ok, err := t.ts.record(markKey(ratee, rater, item), &o); err != nil || !ok {
		return escrow.ItemMark{}, cmp.Or(err, escrow.ErrNotFound)
	}
	return o.mark, nil
}

func (t *coldTx) ItemMarks(fn func(escrow.ItemMark) error) error {
	var hot []escrow.ItemMark
	if err := t.Tx.ItemMarks(func(m escrow.ItemMark) error { hot = append(hot, m); return nil }); err != nil {
		return err
	}
	return mergeScan(t.ts, []byte{kindMark}, nil, hot,
		func(m *escrow.ItemMark) []byte { return markKey(m.Ratee, m.Rater, m.Item) },
		func(_, v []byte) (escrow.ItemMark, bool, error) {
			var o op
			err := decodeValue(v, &o)
			return o.mark, true, err
		}, fn)
}

// mergeScan calls fn, in key order, with the records of hot (sorted by
// keyOf, which gives each its key in the tables' form) and those the
// tables hold under prefix from start, which decode reads from a key and
// its value; decode may pass one over. Where a table and hot hold the
// same key, hot's record is the newer and the table's is passed over.
func mergeScan[T any](ts *tableSet, prefix, start []byte, hot []T, keyOf func(*T) []byte,
	decode func(k, v []byte) (T, bool, error), fn func(T) error) error {
	var hotKey []byte
	if len(hot) > 0 {
		hotKey = keyOf(&hot[0])
	}
	err := ts.scan(prefix, start, func(k, v []byte) (bool, error) {
		for len(hot) > 0 {
			c := bytes.Compare(hotKey, k)
			if c > 0 {
				break
			}
			if err := fn(hot[0]); err != nil {
				return false, err
			}
			hot = hot[1:]
			if len(hot) > 0 {
				hotKey = keyOf(&hot[0])
			}
			if c == 0 {
				return true, nil
			}
		}
		rec, ok, err := decode(k, v)
		if err != nil || !ok {
			return err == nil, err
		}
		return true, fn(rec)
	})
	if err != nil {
		return err
	}
	for i := range hot {
		if err := fn(hot[i]); err != nil {
			return err
		}
	}
	return nil
}
