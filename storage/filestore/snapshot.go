package filestore

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// A snapshot file is a file header (snapMagic; in version 1, snapMagicV1
// alone) followed by frames: chunks of operations numbered 1, 2, … whose
// replay into an empty store rebuilds every record, then a frame holding
// one opSnapshotEnd with the log sequence number the snapshot covers and
// the number of chunks. A snapshot is complete when it is renamed into
// place, so any damage to one is corruption.

// snapChunk is the size at which the snapshot writer starts a new chunk,
// which also bounds the in-memory transaction that loads one.
const snapChunk = 1 << 20

// verifySnapshot checks every frame of a snapshot and returns the chunks'
// payloads and the snapshot's format version.
func (s *Store) verifySnapshot(name string, data []byte, seq uint64) ([][]byte, uint32, op, error) {
	h, err := s.checkHeader(name, data, snapMagic, snapMagicV1)
	if err == nil && h.version == 0 {
		err = s.corrupt(name, 0, "not a snapshot")
	}
	if err != nil {
		return nil, 0, op{}, err
	}
	var chunks [][]byte
	off := h.size
	for {
		n, _, payload, size, ok := parseFrame(data[off:])
		if !ok {
			return nil, 0, op{}, s.corrupt(name, off, "damaged or missing chunk %d", len(chunks)+1)
		}
		if n != uint64(len(chunks))+1 {
			return nil, 0, op{}, s.corrupt(name, off, "chunk %d where %d was expected", n, len(chunks)+1)
		}
		if len(payload) > 0 && payload[0] == opSnapshotEnd {
			var o op
			d := decoder{b: payload, version: h.version}
			if !d.next(&o) || len(d.b) != 0 || o.snapSeq != seq || o.snapChunks != uint64(len(chunks)) {
				return nil, 0, op{}, s.corrupt(name, off, "end of snapshot does not match its name or its chunks")
			}
			if off+size != len(data) {
				return nil, 0, op{}, s.corrupt(name, off+size, "data after the end of the snapshot")
			}
			return chunks, h.version, o, nil
		}
		chunks = append(chunks, payload)
		off += size
	}
}

// applyPayload decodes the operations in payload with dec and applies them
// to tx, returning how many it applied and the first error applying one;
// a payload that does not decode leaves dec.err set.
func applyPayload(tx escrow.Tx, dec *decoder, payload []byte) (int, error) {
	var o op
	dec.b, dec.err, dec.short = payload, nil, false
	n := 0
	for dec.next(&o) {
		if err := apply(tx, &o); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// loadSnapshot applies a verified snapshot's chunks to the empty store.
func (s *Store) loadSnapshot(name string, chunks [][]byte, end op, dec *decoder) error {
	s.lastCheckpoint.Store(end.snapWritten.UnixNano())
	if end.snapJournal > 0 || end.snapEvents > 0 {
		if err := s.mem.StartAfter(end.snapJournal, end.snapEvents); err != nil {
			return err
		}
	}
	for i, chunk := range chunks {
		err := s.mem.Update(context.Background(), func(tx escrow.Tx) error {
			if _, err := applyPayload(tx, dec, chunk); err != nil {
				return s.corrupt(name, 0, "chunk %d does not replay: %v", i+1, err)
			}
			if dec.err != nil {
				return s.corrupt(name, 0, "chunk %d does not decode", i+1)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// timerBatch is how many timers loadTimers files in one transaction.
const timerBatch = 1 << 16

// loadTimers files in the due index the timers of the escrows in the
// tables (see kindTimer), in the order of their times, as a snapshot of
// version 4 or before filed them from its own opColdDue. No escrow the
// snapshot holds is in a table, so none of them is filed twice.
func (s *Store) loadTimers() error {
	ts := s.tables.Load()
	if ts == nil || len(ts.tables) == 0 {
		return nil
	}
	ids := make([]string, 0, timerBatch)
	dues := make([]int64, 0, timerBatch)
	flush := func() error {
		err := s.mem.Update(context.Background(), func(tx escrow.Tx) error {
			return memstore.FileDue(tx, ids, dues)
		})
		ids, dues = ids[:0], dues[:0]
		return err
	}
	err := ts.scan([]byte{kindTimer}, nil, func(k, v []byte) (bool, error) {
		due, id, ok := readTimerKey(k)
		if !ok || len(v) > 0 && !bytes.Equal(v, timerGone) {
			return false, fmt.Errorf("filestore: cold timer: %w: bad key or value", ErrCorrupt)
		}
		if len(v) > 0 {
			return true, nil // gone
		}
		ids, dues = append(ids, id), append(dues, due)
		if len(ids) == timerBatch {
			return true, flush()
		}
		return true, nil
	})
	if err == nil && len(ids) > 0 {
		err = flush()
	}
	return err
}

// snapshotWriter cuts a stream of operations into framed chunks.
type snapshotWriter struct {
	out    []byte
	enc    encoder
	chunks uint64
	p      *pacer
	last   int // the length of enc.b before the record last added
}

// maybeCut is called after each record added to the chunk. It cuts the
// chunk once it reaches snapChunk, and before the record if the record
// would take the chunk past maxPayload, which recovery would refuse; a
// record that alone passes maxPayload fails the snapshot.
func (w *snapshotWriter) maybeCut() error {
	w.p.step()
	if len(w.enc.b) > int(maxPayload) {
		if n := len(w.enc.b) - w.last; n > int(maxPayload) {
			return fmt.Errorf("filestore: snapshot: a record of %d bytes is more than the %d a chunk may hold", n, maxPayload)
		}
		w.cutAt(w.last)
	}
	if len(w.enc.b) >= snapChunk {
		w.cut()
	}
	w.last = len(w.enc.b)
	return nil
}

func (w *snapshotWriter) cut() { w.cutAt(len(w.enc.b)) }

// cutAt frames the first n bytes of the chunk as a chunk of their own,
// keeping the rest for the next.
func (w *snapshotWriter) cutAt(n int) {
	if n == 0 {
		return
	}
	w.chunks++
	w.out = appendFrame(w.out, w.chunks, 0, w.enc.b[:n])
	w.enc.b = append(w.enc.b[:0], w.enc.b[n:]...)
}

// encodeSnapshot renders what tx can read and the cold tables do not hold
// as a snapshot covering the log up to seq: the tables hold the ended
// escrows and their timers, the ratings, the monthly pair counters, the
// item marks, and the journal and the events up to journal and events.
// Replaying it calls the same write methods the log does.
func encodeSnapshot(tx escrow.Tx, seq, journal, events uint64, tables []tableRange, p *pacer) ([]byte, error) {
	w := &snapshotWriter{out: appendFileHeader(nil, snapMagic), p: p}
	err := tx.Accounts(func(a escrow.Account) error { w.enc.account(&a); return w.maybeCut() })
	if err == nil {
		err = tx.Balances(func(b escrow.Balance) error { w.enc.balance(&b); return w.maybeCut() })
	}
	if err == nil {
		err = tx.Escrows(func(e escrow.Escrow) error {
			if memstore.Cold(&e) {
				return nil
			}
			w.enc.escrow(&e)
			return w.maybeCut()
		})
	}
	if err == nil {
		err = tx.Idempotencies(func(r escrow.IdempotencyRecord) error { w.enc.idempotency(&r); return w.maybeCut() })
	}
	if err == nil {
		err = tx.Aggregates(func(a escrow.Aggregate) error { w.enc.aggregate(&a); return w.maybeCut() })
	}
	if err == nil {
		err = tx.DayCounts(func(d escrow.DayCount) error { w.enc.dayCount(&d); return w.maybeCut() })
	}
	if err == nil {
		err = tx.AllRaterDays(func(d escrow.RaterDays) error { w.enc.raterDays(&d); return w.maybeCut() })
	}
	if err == nil {
		err = tx.Consumers(func(c escrow.Consumer) error { w.enc.consumer(&c); return w.maybeCut() })
	}
	if err != nil {
		return nil, err
	}
	w.cut()
	var end encoder
	end.snapshotEnd(seq, w.chunks, journal, events, time.Now().UTC(), tables)
	if len(end.b) > int(maxPayload) {
		return nil, fmt.Errorf("filestore: snapshot: its end of %d bytes is more than the %d a chunk may hold", len(end.b), maxPayload)
	}
	return appendFrame(w.out, w.chunks+1, 0, end.b), nil
}

// Compact checkpoints the store: it moves the records that will not
// change again into a cold table and out of memory, writes a snapshot of
// the rest, removes the log the snapshot covers, and merges tables as the
// store would in the background, so that the directory holds about one
// copy of the data and Open replays little. Commits go on meanwhile; they
// wait only while the new log segment is renamed into place and for one
// batch of evictions at a time. The work is paced, as an automatic
// checkpoint's is (see the package documentation), so that the commits
// beside it keep most of the machine. The store checkpoints on its own as
// the log grows (see Options.CompactRatio); Compact is for doing it now.
// On a read-only store it returns escrow.ErrReadOnly.
func (s *Store) Compact() error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if s.closed.Load() {
		return escrow.ErrClosed
	}
	if s.opts.ReadOnly {
		return escrow.ErrReadOnly
	}
	if err := s.compact(true); err != nil {
		return err
	}
	return s.mergeTables()
}

// compact does Compact's work and keeps its error for Stats, paced (see
// pace.go) if paced is set; the caller holds compactMu.
func (s *Store) compact(paced bool) error {
	var p *pacer
	if paced {
		p = s.newPacer()
	}
	err := s.snapshot(p)
	s.mu.Lock()
	s.compactErr = err
	s.mu.Unlock()
	return err
}

// snapshot writes a snapshot and removes the log it covers.
//
// The snapshot must hold exactly the records up to seq, and the records
// after seq must start a new segment, so that the ones it covers can be
// removed with their files. Both are settled in taken, which memstore
// runs with commits held off; the snapshot is encoded after that, from
// the state taken saw, whether or not commits go on meanwhile.
func (s *Store) snapshot(p *pacer) error {
	var seq uint64
	var snap []byte
	covered := false
	// taken runs with commits held off: it only reads where they are.
	taken := func() error {
		seq = s.applied.Load()
		s.mu.Lock()
		covered = seq == s.snapSeq
		s.mu.Unlock()
		return nil
	}
	err := s.mem.Snapshot(context.Background(), taken, func(tx escrow.Tx) error {
		if covered {
			return nil
		}
		// The table and the snapshot must hold only durable commits: a
		// commit whose write then failed would otherwise outlive it.
		if err := s.waitDurable(seq); err != nil {
			return err
		}
		// New records go to a new segment, so that the old ones can go
		// once a snapshot covers them: this one, or the next.
		if err := s.rotate(); err != nil {
			return err
		}
		journal, events, err := s.archive(tx, seq, p)
		if err != nil {
			return err
		}
		var tables []tableRange
		for _, t := range s.tables.Load().tables {
			tables = append(tables, tableRange{t.lo, t.hi})
		}
		snap, err = encodeSnapshot(tx, seq, journal, events, tables, p)
		return err
	})
	if err != nil || snap == nil {
		return err
	}
	if err := s.install(seq, snap, p); err != nil {
		return err
	}
	s.timersInSnapshot = false // archive filed them in its table
	s.lastCheckpoint.Store(time.Now().UnixNano())
	return nil
}

// rotate makes a new, empty segment the one that records are appended
// to, starting at the first record not yet written. Commits go on: the
// segment is prepared (created under a temporary name, its header
// written and synced) while they do, and writes stop only while it is
// renamed into place. Its name is synced after that, beside the first
// writes to it, and no record in it is acknowledged before that sync is
// done, so none is before the segment would survive a crash. The manifest is
// written after: recovery accepts a segment newer than the one the
// manifest names, and the old segment is removed only after a snapshot,
// later. If the segment cannot be started (a read-only directory, too
// many open files) nothing is lost: records go on to the segment they
// went to, and the next compaction tries again.
func (s *Store) rotate() error {
	s.mu.Lock()
	empty := s.logStart == s.durable.Load()+1
	s.mu.Unlock()
	if empty {
		return nil // the active segment holds nothing yet
	}
	tmp := s.path(nextSegName)
	_ = s.fs.Remove(tmp) // left by a rotation that failed
	f, err := s.fs.Create(tmp)
	if err == nil {
		err = s.write(f, appendFileHeader(nil, segMagic))
		if err != nil {
			f.Close()
		}
	}
	s.mu.Lock()
	if err != nil {
		start := s.durable.Load() + 1
		s.mu.Unlock()
		_ = s.fs.Remove(tmp)
		return fmt.Errorf("filestore: compact: cannot start log segment %s, so records go on to %s: %w",
			segName(start), segName(s.logStart), err)
	}
	if err := s.takeLog(); err != nil {
		s.mu.Unlock()
		f.Close()
		_ = s.fs.Remove(tmp)
		return err
	}
	// Every record up to durable is written, and none after it.
	start := s.durable.Load() + 1
	if err := s.fs.Rename(tmp, s.path(segName(start))); err != nil {
		f.Close()
		s.releaseLog(nil)
		old := s.logStart
		s.mu.Unlock()
		_ = s.fs.Remove(tmp)
		return fmt.Errorf("filestore: compact: cannot start log segment %s, so records go on to %s: %w",
			segName(start), segName(old), err)
	}
	s.log.Close() // synced: every record in it is durable
	s.log, s.logStart, s.activeBytes = f, start, fileHeaderSize
	// Records go on to the new segment while its name is synced, so that
	// commits do not stop for a directory sync; flush holds back their
	// acknowledgement until it is done, since a crash before then may
	// lose the name.
	synced := make(chan struct{})
	s.dirSyncing = synced
	s.releaseLog(nil)
	s.mu.Unlock()
	err = s.syncDir()
	s.mu.Lock()
	if err != nil && s.failed == nil {
		// The name may or may not last; no record in the segment may be
		// acknowledged, nor a segment be left that starts where the old
		// one goes on.
		s.failed = fmt.Errorf("rotate log: %w", err)
		s.broken.Store(true)
	}
	s.dirSyncing = nil
	close(synced)
	err = s.failedErr()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.writeManifest(start); err != nil {
		// The manifest names the old segment, which stays until a
		// snapshot that the next compaction writes after a manifest
		// that names the new one.
		return fmt.Errorf("filestore: %w", err)
	}
	return nil
}

// install writes a snapshot covering the log up to seq, then removes the
// segments and snapshots it makes obsolete. A failure leaves the store as
// it was, with the log intact.
func (s *Store) install(seq uint64, data []byte, p *pacer) error {
	name := snapName(seq)
	tmp := s.path(name + tmpSuffix)
	_ = s.fs.Remove(tmp) // left by a compaction that failed
	err := s.writeFile(tmp, data, p)
	if err == nil {
		err = s.fs.Rename(tmp, s.path(name))
	}
	if err == nil {
		err = s.syncDir()
	}
	if err != nil {
		_ = s.fs.Remove(tmp)
		return fmt.Errorf("filestore: snapshot: %w", err)
	}

	s.mu.Lock()
	s.snapSeq, s.snapBytes, s.logBytes = seq, int64(len(data)), s.activeBytes
	s.compactAt = s.compactThreshold()
	s.mu.Unlock()

	// What the snapshot covers. Failing to remove it costs only space:
	// recovery skips it, and the next compaction tries again.
	c, err := s.list()
	if err != nil {
		return nil
	}
	for i, start := range c.segs {
		// A segment goes once the snapshot covers its last record: once
		// the next one starts at most one past the snapshot.
		if i+1 < len(c.segs) && c.segs[i+1] <= seq+1 {
			_ = s.fs.Remove(s.path(segName(start)))
		}
	}
	for _, n := range c.snaps {
		if n < seq {
			_ = s.fs.Remove(s.path(snapName(n)))
		}
	}
	_ = s.syncDir()
	return nil
}

// writeFile creates name holding data, synced, paced by p.
func (s *Store) writeFile(name string, data []byte, p *pacer) error {
	f, err := s.fs.Create(name)
	if err != nil {
		return err
	}
	w := &syncingWriter{f: f, sync: !s.opts.NoSync}
	for len(data) > 0 && err == nil {
		k := min(len(data), syncEvery)
		_, err = w.Write(data[:k])
		data = data[k:]
		p.pause()
	}
	if err == nil && !s.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// compactThreshold is the log size that starts an automatic compaction.
// It is called with mu held.
func (s *Store) compactThreshold() int64 {
	if s.snapBytes == 0 {
		return s.opts.CompactMinBytes
	}
	t := s.opts.CompactRatio * float64(s.snapBytes)
	if !(t < math.MaxInt64) {
		// Past what int64 holds (a conversion would not say what): no
		// log is that large.
		return math.MaxInt64
	}
	return max(s.opts.CompactMinBytes, int64(t))
}

// maybeCompact starts a compaction in the background if the log has grown
// enough. It is called with mu held.
func (s *Store) maybeCompact() {
	if s.opts.CompactRatio < 0 || s.kickClosed || s.logBytes < s.compactAt {
		return
	}
	select {
	case s.compactKick <- struct{}{}:
	default: // one is already due
	}
}

// compactor runs the compactions maybeCompact asks for, until Close.
func (s *Store) compactor() {
	defer close(s.compactDone)
	for range s.compactKick {
		s.compactMu.Lock()
		if !s.closed.Load() {
			if err := s.compact(true); err != nil {
				s.mu.Lock()
				// Try again when the log has doubled, not after every commit.
				s.compactAt = 2 * s.logBytes
				s.mu.Unlock()
			}
		}
		s.compactMu.Unlock()
	}
}

// Stats describes a store's files.
type Stats struct {
	// Seq is the sequence number of the last committed record.
	Seq uint64
	// SnapshotSeq is the last record the newest snapshot covers (0: no
	// snapshot), and SnapshotBytes its size.
	SnapshotSeq   uint64
	SnapshotBytes int64
	// LogRecords and LogBytes count the log after the snapshot.
	LogRecords uint64
	LogBytes   int64
	// Flushes counts the log writes since Open, each one fsync.
	Flushes uint64
	// CompactError is why the last compaction, automatic or by Compact,
	// failed, if it did: it names what failed, such as starting a new log
	// segment or writing the snapshot. The store goes on without the
	// compaction, and an automatic one tries again when the log has
	// doubled.
	CompactError error
	// TornTail is the damaged end of the log that Open dropped, or with
	// Options.ReadOnly skipped; its Bytes is 0 if there was none.
	TornTail TornTail
	// LastCheckpoint is when the newest snapshot was written: the last
	// time records left memory for the cold tables. It is zero for a
	// snapshot written before the store recorded it, or none.
	LastCheckpoint time.Time
	// Tables and TableBytes count the cold tables and their bytes on
	// disk; TableRecords counts their keys (records and index entries).
	Tables       int
	TableBytes   int64
	TableRecords int64
	// TableMemBytes is what the tables hold in memory outside the cache:
	// their top-level indexes and filters.
	TableMemBytes int64
	// Evicted counts the records moved out of memory since Open.
	Evicted uint64
	// CacheBytes is what the cache of blocks read from the tables holds,
	// at most CacheMaxBytes (Options.CacheBytes); CacheHits and
	// CacheMisses count the reads it answered and those it did not.
	CacheBytes, CacheMaxBytes int64
	CacheHits, CacheMisses    uint64
}

// Stats returns the store's current Stats.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := s.durable.Load()
	st := Stats{Seq: seq, SnapshotSeq: s.snapSeq, SnapshotBytes: s.snapBytes,
		LogRecords: seq - min(seq, s.snapSeq), LogBytes: s.logBytes, Flushes: s.flushes.Load(),
		CompactError: s.compactErr, TornTail: s.torn, Evicted: s.evicted.Load()}
	cs := s.cache.Stats()
	st.CacheBytes, st.CacheMaxBytes, st.CacheHits, st.CacheMisses = cs.Bytes, cs.MaxBytes, cs.Hits, cs.Misses
	if at := s.lastCheckpoint.Load(); at != 0 {
		st.LastCheckpoint = time.Unix(0, at).UTC()
	}
	if ts := s.tables.Load(); ts != nil {
		for _, t := range ts.tables {
			st.Tables++
			st.TableBytes += t.t.Size()
			st.TableRecords += t.t.Count()
			st.TableMemBytes += t.t.MemBytes()
		}
	}
	return st
}
