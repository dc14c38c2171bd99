package filestore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore/internal/sstable"
	"github.com/escrowkit/escrow/storage/memstore"
)

// Cold tables. A checkpoint first moves what will not change again out of
// memory: from a snapshot of memstore it writes a table holding every
// ended escrow, rating, monthly pair counter, item mark (or its removal:
// see markTx), journal entry and event it holds, with the indexes that
// find them, then attaches the table to
// memstore and evicts those records from it. Only then does it write the
// snapshot, which now holds the live records alone.
//
// A table is named tbl-<lo>-<hi>.sst: it holds what the checkpoints at
// sequence numbers lo to hi moved (lo = hi for one checkpoint's table,
// lo < hi for the merge of several). The snapshot written by a checkpoint
// names the tables it goes with, by their ranges; a merge afterwards
// replaces some of them with one whose range holds theirs. Recovery opens
// those, and removes the rest: a table written by a checkpoint that did
// not get as far as its snapshot, whose records the older snapshot and
// the log still hold, and tables a merge has replaced.
const (
	tablePrefix = "tbl-"
	tableSuffix = ".sst"
)

func tableName(lo, hi uint64) string {
	return fmt.Sprintf("%s%016x-%016x%s", tablePrefix, lo, hi, tableSuffix)
}

// parseTableName returns the range in a name tableName made.
func parseTableName(name string) (lo, hi uint64, ok bool) {
	if !strings.HasPrefix(name, tablePrefix) || !strings.HasSuffix(name, tableSuffix) {
		return 0, 0, false
	}
	a, b, found := strings.Cut(name[len(tablePrefix):len(name)-len(tableSuffix)], "-")
	if !found || len(a) != 16 || len(b) != 16 {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(a, 16, 64)
	hi, err2 := strconv.ParseUint(b, 16, 64)
	return lo, hi, err1 == nil && err2 == nil && lo <= hi
}

// A kv is one record of a table being built.
type kv struct{ k, v []byte }

// An arena keeps the keys and values of a table being built in a few
// large buffers, so that a checkpoint of hundreds of thousands of records
// makes a few allocations where it would make one or more per record; the
// garbage collector those would keep busy slows every commit meanwhile.
type arena struct{ buf []byte }

const arenaChunk = 1 << 20

// copy returns a copy of b in the arena, nil if b is empty.
func (a *arena) copy(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, max(arenaChunk, len(b)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// coldRecords returns, sorted, the keys and values of the table that
// holds what tx, a snapshot of memstore, holds and memstore.Evict takes
// out, with the timers of the escrows among them (see kindTimer), and
// the last journal entry and event they include. With allTimers it also
// files every timer of an escrow that tx does not hold: those of a store
// whose snapshot held its cold timers, before version 5. sizeHint is
// about how many records to expect; p paces the work.
func coldRecords(tx escrow.Tx, allTimers bool, sizeHint int, p *pacer) (kvs []kv, journal, events uint64, err error) {
	var (
		enc  encoder
		key  []byte // the key being built
		look []byte // a key being read
		a    arena
		add  func(value []byte)
	)
	tables, _ := memstore.Extra(tx).(*tableSet)
	// timers files e's timer, and hides the one a table under it files
	// at another time: e came back to memory to be written, and its
	// timer moved or ended.
	timers := func(e *escrow.Escrow) error {
		due := e.NextDue()
		if !due.IsZero() {
			key = appendTimerKey(key[:0], nanos(due), e.ID)
			add(timerSet)
		}
		if tables == nil || len(tables.tables) == 0 {
			return nil
		}
		look = appendEscrowKey(look[:0], e.ID)
		v, ok, err := tables.get(look)
		if err != nil || !ok {
			return err
		}
		var o op
		if err := decodeValue(v, &o); err != nil {
			return err
		}
		if was := o.escrow.NextDue(); !was.IsZero() && (due.IsZero() || nanos(was) != nanos(due)) {
			key = appendTimerKey(key[:0], nanos(was), e.ID)
			add(timerGone)
		}
		return nil
	}
	kvs = make([]kv, 0, sizeHint)
	// add adds the record under key with the value enc holds, if any, or
	// with value.
	add = func(value []byte) {
		if len(enc.b) > 0 {
			value = enc.b
		}
		kvs = append(kvs, kv{a.copy(key), a.copy(value)})
		enc.b = enc.b[:0]
		p.step()
	}
	journal, events = memstore.Floors(tx)
	err = memstore.VisitCold(tx, memstore.ColdVisitor{
		Escrow: func(e *escrow.Escrow) error {
			enc.escrow(e)
			key = appendEscrowKey(key[:0], e.ID)
			add(nil)
			at := nanos(e.CreatedAt)
			for _, p := range [...]struct {
				id   string
				role escrow.Role
			}{{e.Buyer, escrow.Buyer}, {e.Seller, escrow.Seller}, {e.Arbiter, escrow.Arbiter}} {
				if p.id != "" {
					key = appendPartyKey(key[:0], p.id, at, e.ID, p.role)
					add(nil)
				}
			}
			return timers(e)
		},
		Entry: func(x *escrow.Entry) error {
			enc.entry(x)
			key = appendSeqKey(key[:0], kindEntry, x.Seq)
			add(nil)
			for j, p := range x.Postings {
				if !slices.ContainsFunc(x.Postings[:j], func(q escrow.Posting) bool { return q.Account == p.Account }) {
					key = appendUnderKey(key[:0], kindAccount, p.Account, x.Seq)
					add(nil)
				}
			}
			journal = x.Seq
			return nil
		},
		Event: func(x *escrow.Event) error {
			enc.event(x)
			key = appendSeqKey(key[:0], kindEvent, x.Seq)
			add(nil)
			if x.Escrow != "" {
				key = appendUnderKey(key[:0], kindEscEvent, x.Escrow, x.Seq)
				add(nil)
			}
			events = x.Seq
			return nil
		},
		Rating: func(r *escrow.Rating) error {
			enc.rating(r)
			key = appendRatingKey(key[:0], r.Escrow, r.Rater)
			add(nil)
			key = appendRateeKey(key[:0], r.Ratee, nanos(r.At), r.Escrow, r.Rater)
			add(nil)
			return nil
		},
		Pair: func(p *escrow.PairMonth) error {
			enc.pairMonth(p)
			key = appendPairKey(key[:0], p.Ratee, p.Rater, p.Month)
			add(nil)
			return nil
		},
		Mark: func(m *escrow.ItemMark) error {
			enc.itemMark(m)
			key = appendMarkKey(key[:0], m.Ratee, m.Rater, m.Item)
			add(nil)
			return nil
		},
	})
	if err == nil && allTimers {
		err = memstore.ColdDue(tx, func(id string, due int64) error {
			_, err := tx.Escrow(id)
			switch {
			case err == nil:
				return nil // filed with the escrow above
			case !errors.Is(err, escrow.ErrNotFound):
				return err
			}
			key = appendTimerKey(key[:0], due, id)
			add(timerSet)
			return nil
		})
	}
	if err != nil || len(kvs) == 0 {
		return nil, 0, 0, err
	}
	kvs = append(kvs, kv{metaKey, appendU64(appendU64(nil, journal), events)})
	slices.SortFunc(kvs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	return kvs, journal, events, nil
}

// readMeta returns the last journal entry and event a table holds.
func readMeta(t *sstable.Table) (journal, events uint64, err error) {
	v, ok, err := t.Get(metaKey)
	if err != nil {
		return 0, 0, err
	}
	if !ok || len(v) != 16 {
		return 0, 0, fmt.Errorf("%w: no floors", sstable.ErrCorrupt)
	}
	journal, v, _ = readU64(v)
	events, _, _ = readU64(v)
	return journal, events, nil
}

// tableOptions builds the filter of a table over the keys a read looks up
// one at a time: records by their keys. The index keys, which reads only
// scan, make up more than half of a table's keys and stay out of it, and
// with them more than half of the memory the filters would take.
var tableOptions = &sstable.WriterOptions{
	FilterFirstBytes: []byte{kindMeta, kindEscrow, kindEntry, kindEvent, kindRating, kindPair, kindMark},
}

// writeTable writes the table name from the records next yields, synced
// and renamed into place, and opens it.
func (s *Store) writeTable(name string, lo, hi uint64, add func(w *sstable.Writer) error) (*coldTable, error) {
	tmp := s.path(name + tmpSuffix)
	_ = s.fs.Remove(tmp)
	f, err := s.fs.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("filestore: table: %w", err)
	}
	w := sstable.NewWriter(&syncingWriter{f: f, sync: !s.opts.NoSync}, tableOptions)
	err = add(w)
	if err == nil {
		err = w.Close()
	}
	if err == nil && !s.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fs.Rename(tmp, s.path(name))
	}
	if err == nil {
		err = s.syncDir()
	}
	if err != nil {
		_ = s.fs.Remove(tmp)
		return nil, fmt.Errorf("filestore: table %s: %w", name, err)
	}
	return s.openTable(name, lo, hi)
}

// syncEvery is how much a checkpoint writes to a table or snapshot between
// syncs. Left to one sync at the end, the tens of megabytes a checkpoint
// writes would reach the disk at once and hold up the log's fdatasync,
// and with it every commit, for as long; synced as they go they queue
// behind the log's syncs a megabyte at a time.
const syncEvery = 1 << 20

// syncingWriter writes to a file, syncing it every syncEvery bytes.
type syncingWriter struct {
	f        file
	sync     bool
	unsynced int
}

func (w *syncingWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if w.unsynced += n; err == nil && w.sync && w.unsynced >= syncEvery {
		err = w.f.Sync()
		w.unsynced = 0
	}
	return n, err
}

// openTable opens the named table.
func (s *Store) openTable(name string, lo, hi uint64) (*coldTable, error) {
	f, size, err := s.fs.OpenRead(s.path(name))
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	t, err := sstable.Open(f, size, s.tableIDs.Add(1), s.cache)
	if err != nil {
		f.Close()
		if ve := (*sstable.VersionError)(nil); errors.As(err, &ve) && ve.Version > sstable.FormatVersion {
			return nil, &VersionError{File: s.path(name), Version: ve.Version}
		}
		return nil, s.corrupt(name, 0, "%v", err)
	}
	ct := &coldTable{t: t, name: name, lo: lo, hi: hi}
	if ct.journal, ct.events, err = readMeta(t); err != nil {
		t.Close()
		return nil, s.corrupt(name, 0, "%v", err)
	}
	return ct, nil
}

// archive moves out of memory what will not change again, from tx, a
// snapshot of memstore covering the log up to seq: it writes the table of
// the snapshot's cold records, attaches it, and evicts the records from
// memstore. It returns the last journal entry and event the tables hold.
// Commits go on throughout; each waits at most for one batch of
// evictions. p paces the table's build.
func (s *Store) archive(tx escrow.Tx, seq uint64, p *pacer) (journal, events uint64, err error) {
	kvs, journal, events, err := coldRecords(tx, s.timersInSnapshot, s.lastRecords, p)
	if err != nil || len(kvs) == 0 {
		journal, events = memstore.Floors(tx)
		return journal, events, err
	}
	t, err := s.writeTable(tableName(seq, seq), seq, seq, func(w *sstable.Writer) error {
		for _, r := range kvs {
			if err := w.Add(r.k, r.v); err != nil {
				return err
			}
			p.step()
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	kvs = nil
	s.tablesMu.Lock()
	s.publish(newTableSet(append([]*coldTable{t}, s.tables.Load().tables...)))
	s.tablesMu.Unlock()
	s.evicted.Add(uint64(s.mem.Evict(tx)))
	select {
	case s.mergeKick <- struct{}{}:
	default: // one is already due
	}
	return journal, events, nil
}

// publish makes ts the store's tables.
// It is called with tablesMu held, or before the store is shared.
func (s *Store) publish(ts *tableSet) {
	s.tables.Store(ts)
	s.mem.Attach(ts)
}

// merger runs the merges that checkpoints ask for, beside them, until
// Close: a merge of large tables takes long, and the log must not grow
// while it runs.
func (s *Store) merger() {
	defer close(s.mergeDone)
	for range s.mergeKick {
		if err := s.mergeTables(); err != nil && !s.closed.Load() {
			s.mu.Lock()
			s.compactErr = err
			s.mu.Unlock()
		}
	}
}

// errClosing abandons a merge when the store closes.
var errClosing = errors.New("filestore: closing")

// mergeTables merges the newest tables into one while the next older one
// is no larger than twice their size, so that the store keeps a number of
// tables that grows with the logarithm of its history. The merged table
// replaces them; the files of the old ones are removed. Checkpoints go on
// meanwhile, adding newer tables. A merge that takes in the oldest table
// leaves out the removals of item marks and the timers gone: no table
// under it holds a mark or a timer for them to hide. It is not paced (see
// pace.go).
func (s *Store) mergeTables() error {
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	cur := s.tables.Load()
	if cur == nil || len(cur.tables) < 2 {
		return nil
	}
	n, size := 1, cur.tables[0].t.Size()
	for n < len(cur.tables) && cur.tables[n].t.Size() <= 2*size {
		size += cur.tables[n].t.Size()
		n++
	}
	if n < 2 {
		return nil
	}
	parts := cur.tables[:n]
	oldest := n == len(cur.tables)
	lo, hi := parts[n-1].lo, parts[0].hi
	its := make([]*sstable.Iter, n)
	for i, t := range parts {
		its[i] = t.t.NewIter()
	}
	merged, err := s.writeTable(tableName(lo, hi), lo, hi, func(w *sstable.Writer) error {
		m := sstable.NewMerge(its...)
		for ok, i := m.First(), 0; ok; ok, i = m.Next(), i+1 {
			if i%4096 == 0 && s.closed.Load() {
				return errClosing
			}
			if oldest && m.Key()[0] == kindTimer && len(m.Value()) > 0 {
				continue // a timer gone, which no table under it files
			}
			if oldest && m.Key()[0] == kindMark {
				var o op
				if err := decodeValue(m.Value(), &o); err != nil {
					return err
				}
				if o.mark.Escrow == markGone {
					continue
				}
			}
			if err := w.Add(m.Key(), m.Value()); err != nil {
				return err
			}
		}
		return m.Err()
	})
	if errors.Is(err, errClosing) {
		return nil
	}
	if err != nil {
		return err
	}
	// Checkpoints may have added tables in front of the parts since.
	s.tablesMu.Lock()
	now := s.tables.Load()
	i := -1
	if now != nil {
		i = slices.Index(now.tables, parts[0])
	}
	if i < 0 || i+n > len(now.tables) || !slices.Equal(now.tables[i:i+n], parts) {
		s.tablesMu.Unlock() // closed meanwhile
		merged.closeFile()
		_ = s.fs.Remove(s.path(merged.name))
		return nil
	}
	for _, t := range parts {
		// Counted before the set that holds them goes, so that closing
		// one cannot come first.
		s.retiredOpen.Add(1)
		t.retired.Store(&s.retiredOpen)
	}
	s.publish(newTableSet(slices.Concat(now.tables[:i], []*coldTable{merged}, now.tables[i+n:])))
	s.tablesMu.Unlock()
	for _, t := range parts {
		_ = s.fs.Remove(s.path(t.name))
	}
	if s.retiredOpen.Load() > maxRetiredOpen {
		// The sets that hold them are garbage once no transaction reads
		// them, and only a collection closes them; in a process whose
		// collector seldom runs, their descriptors and disk space would
		// pile up with every merge.
		runtime.GC()
	}
	return s.syncDir()
}

// maxRetiredOpen is how many tables that merges replaced may wait, open,
// for a garbage collection before a merge forces one.
const maxRetiredOpen = 32

// loadTables opens the tables the snapshot names in want, and returns the
// names of the others in the directory: tables of a checkpoint that ended
// before its snapshot, and tables a merge has replaced. A table the
// snapshot names may have been merged since into one whose range holds
// its own; a table that is neither there nor merged is missing, and the
// store is corrupt.
func (s *Store) loadTables(names []string, want []tableRange) (stale []string, err error) {
	type present struct {
		name string
		tableRange
	}
	var have []present
	for _, name := range names {
		lo, hi, _ := parseTableName(name)
		have = append(have, present{name, tableRange{lo, hi}})
	}
	// The widest table that holds each range the snapshot names.
	use := map[string]tableRange{}
	for _, w := range want {
		best := -1
		for i, h := range have {
			if h.lo <= w.lo && w.hi <= h.hi && (best < 0 || h.hi-h.lo > have[best].hi-have[best].lo) {
				best = i
			}
		}
		if best < 0 {
			return nil, s.corrupt(tableName(w.lo, w.hi), 0, "cold table missing: the snapshot holds only the records it does not")
		}
		use[have[best].name] = have[best].tableRange
	}
	for _, h := range have {
		if _, ok := use[h.name]; !ok {
			stale = append(stale, h.name)
		}
	}
	var tables []*coldTable
	for name, r := range use {
		t, err := s.openTable(name, r.lo, r.hi)
		if err != nil {
			for _, t := range tables {
				t.closeFile()
			}
			return nil, err
		}
		tables = append(tables, t)
	}
	slices.SortFunc(tables, func(a, b *coldTable) int { return compareU64(b.hi, a.hi) }) // newest first
	s.publish(newTableSet(tables))
	return stale, nil
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// VerifyTables reads every block of every cold table, bypassing the cache,
// and checks its checksum, the order of its keys and its count of records;
// Open reads only each table's footer, index and filter. It returns an
// error wrapping ErrCorrupt that names the damaged table.
func (s *Store) VerifyTables() error {
	if s.closed.Load() {
		return escrow.ErrClosed
	}
	ts := s.tables.Load()
	if ts == nil {
		return escrow.ErrClosed
	}
	for _, t := range ts.tables {
		if err := t.t.Verify(); err != nil {
			return tableErr(t, err)
		}
	}
	return nil
}
