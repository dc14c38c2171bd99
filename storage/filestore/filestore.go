// Package filestore is a durable escrow.Storage in one directory: the
// embedded default for a host that runs on one machine.
//
// # Design
//
// The live state is an in-memory store (storage/memstore), so reads of it
// cost what they cost there. Every transaction that writes is also
// recorded as the list of write calls it made, and when it commits that
// record is appended to a log file, framed with its length, a sequence
// number and a CRC-32C. Update returns only after the record is on disk
// (fdatasync). Opening the store loads the newest snapshot and replays the
// log after it.
//
// History does not stay in memory. A checkpoint (see below) writes the
// records that will not change again (ended escrows, ratings, monthly pair
// counters, item marks, the journal and the events) to a cold table: an
// immutable file of sorted keys (internal/sstable) in blocks with a CRC-32C
// each, a two-level index and a Bloom filter, with the indexes the queries
// need (an account's entries, an escrow's events, a party's escrows, a
// ratee's ratings) as keys of their own, and the timers of the ended
// escrows whose rating windows are still open, by due time. Then it takes
// those records out of memory. A read looks in memory first and then in
// the tables, newest first; a write to a record that left memory puts it
// back first, so that the in-memory indexes stay right. Blocks read from
// the tables are kept in a cache of Options.CacheBytes, so memory holds
// the live records (open escrows, balances, aggregates, day counts,
// raters' days, idempotency records, the timers of escrows whose rating
// window is open), the log written since the last checkpoint, the cache,
// and each table's top-level index and filter (the filter only over the
// keys read one at a time); not the history, except for two kinds of
// record the reputation reads keep whole: a day count for each party,
// role and day on which the party was rated, and a raters' days record
// for each rater and ratee. They grow with the days and the pairs, not
// the trades, but they do grow: a thousand sellers rated every day of a
// year keep about 110 MB of day counts in memory, about 300 bytes each,
// and every checkpoint rewrites them into the snapshot. Opening reads the snapshot
// of the live records, each table's footer and the tables' timers, and
// replays the log since the checkpoint; Close checkpoints when that log
// passes a MiB, so that an Open after a clean close replays next to
// nothing. Tables are merged in the background, the newest while the
// next older one is no more than twice their size, so that their number
// grows with the logarithm of the history. A table a merge replaced is
// removed at once and closed once no transaction can read it, which the
// garbage collector tells; so that a process whose collector seldom runs
// does not keep such tables open, each holding a file descriptor and its
// disk space, a merge forces a collection when 32 wait.
//
// Why this shape: the log is the commit path that group commit makes fast
// and the crash tests cover, so it stays; what changed is where history
// lives after a checkpoint. An embedded B+tree (bbolt) would give the
// same bounded memory, but it is a storage engine the core module should
// not depend on, and it rewrites pages in place where a table is written
// once, sequentially, beside commits that do not wait for it. Measured by
// the peer benchmark (bench/peers) in a fresh process, a store of
// 1,000,000 finished trades took 46 s to open and 4.3 GiB of RSS before
// this design; a store of 2,000,000 now opens in about half a second with
// 125 MiB of RSS, and takes about 860 bytes of disk per trade. Most of
// that open and memory goes to the timers of rating windows still open,
// which the due index keeps in a sorted slice, loaded in bulk from the
// tables. After a SIGKILL, Open also replays the log since the last
// checkpoint: at most about 16 MiB with the defaults, about a second.
//
// Concurrent commits share a write and an fsync (group commit): a
// committing transaction that finds no write in progress writes every
// record waiting at that moment, its own and those of the transactions
// that committed after it, and the others wait for it. Options.MaxBatchDelay
// lets a writer wait a little for more records to join.
//
// A reader never sees a commit that is not yet durable: View waits until
// every commit it could see has been synced, so an event read from the
// outbox cannot be taken back by a crash or a failed write, and a sequence
// number once shown never names anything else.
//
// When the log grows past Options.CompactRatio times the newest snapshot
// (and Options.CompactMinBytes), the store checkpoints in the background:
// from a snapshot of memory it writes the cold table (to a temporary file,
// fsynced, renamed into place, the directory fsynced), takes the table's
// records out of memory, writes a snapshot of the rest the same way, and
// removes the log the snapshot covers. Compact does the same on demand.
// Commits go on throughout; they wait only while a new log segment is
// renamed into place (their acknowledgement also waits for its name to be
// synced) and for one batch of evictions (a thousand records) at a time.
//
// What commits still lose to a checkpoint is the machine: on a small one
// the committers alone keep every core busy, and whatever the checkpoint
// takes at full speed, they lose. So a checkpoint is paced: it works a
// millisecond at a time and then sleeps for 7/3 of that, taking about 0.3
// of a core (its writes and syncs count as work, so its use of the disk
// is spread out the same way), and takes about three times as long.
// Measured with BenchmarkCheckpoint (64 committers, 2 shared cores, 25
// interleaved runs of each, 200,000 trades), the p99.9 latency of the
// commits that overlapped a checkpoint was a median 4.5 times that of the
// commits between checkpoints in the same run, and 2.2 times paced (33 ms
// and 19 ms, against 7 ms between); their longest wait, 34 ms and 19 ms.
// A run with a checkpoint every tenth of a second against one without
// gave 3.9 and 2.0 times, though paced fewer checkpoints fit in a run.
//
// With 1,000,000 trades the snapshot was 11 MB, nearly all of it the
// timers of ended escrows already in the tables, and every checkpoint
// encoded, wrote and synced it again: in a paced checkpoint of 0.5 to
// 1.4 s, 170 to 580 ms of encoding and 60 to 310 ms of writing. Those
// timers now go once to the table of the checkpoint that moves their
// escrows (see coldkeys.go), and the snapshot is a few KB, encoded in
// under 20 ms and written in about as long; what a checkpoint still costs
// is the table of the records since the last one, and the merges. Measured
// with Alternating (1,000,000 trades, 100,000 commits a run, 16
// interleaved runs of each, 2 shared cores), the median p99.9 beside a
// checkpoint went from 44 ms to 30 ms, 4.6 and 2.5 times that between
// checkpoints, and the median longest wait beside one from 51 ms to 33 ms
// (the longest of all, 95 ms and 67 ms); the spread between runs is wide
// (the ratio ranged from 1.4 to 14 before, 0.6 to 8.5 after). No commit
// beside a checkpoint waited 100 ms in those runs; the p99.9 of runs with
// no checkpoint at all (Quiet) reached 102 ms before and 116 ms after, on
// a machine whose disk and neighbours stall it at times.
//
// Held to that pace always, checkpoints fell behind a flood of writes and
// the log and the tables piled up (the growth check of bench/peers,
// 200,000 trades written as fast as 64 workers can, found twice the disk
// per trade and thirteen times the open time), so pacing gives way: once
// the log written since the checkpoint began reaches a quarter of what
// starts the next, the work goes on at full speed, and the same check
// finds what it found unpaced (847 bytes a trade, an open of 70-110 ms,
// 22 MiB). The checkpoint at Close is not paced, nor are merges
// of tables (see pace.go). Pacing was chosen over taking parts of the
// work out because no one part stood out: in a handful of runs, leaving
// out a checkpoint's syncs, or its merges, did not change the stalls by
// more than the noise between runs.
//
// # Files
//
// The directory (created 0700) holds LOCK, log segments named
// log-<first sequence number>.wal, snapshots named
// snap-<last sequence number covered>.snap, cold tables named
// tbl-<first>-<last checkpoint>.sst, and MANIFEST, which names the
// newest segment, all 0600. A snapshot names the tables it goes with; Open
// fails with ErrCorrupt if one is missing (and not merged into another),
// and removes a table no snapshot names: one a crash left before its
// snapshot was in place, or one a merge replaced. A file is written under
// its name and .tmp, then renamed; Open removes such a file a crash left,
// and no file whose name the store does not give. A new store is made
// only in an empty directory (or one holding only the LOCK of an Open
// that failed): Open refuses, with ErrNotStore, a directory of other
// files that holds no store, even a mount point's lost+found, rather than
// write LOCK and MANIFEST among them. One store at a time
// may open a directory: a second Open, in this process or another, fails
// with a LockedError, which names the holder's process where the platform
// allows. The lock is held on the directory itself where the system can
// lock a directory (Linux, macOS, the BSDs), and on LOCK as well (alone
// on Windows, which does not let an open file be removed), so removing
// LOCK does not let a second store in.
//
// # Format versions
//
// Every segment and snapshot starts with a header naming its format
// version, and each operation in a record carries its length. This release
// writes version 5 and reads versions 1 (the headerless files of earlier
// releases) to 5: a store written by an earlier release opens, and new
// records go to a new segment. Version 5 keeps the timers of the escrows
// in the cold tables in those tables, where a snapshot of version 4 or
// before held them; the first checkpoint after such a store opens writes
// them all to its table. A cold table names a format version of its own
// in its footer (this release writes and reads version 2). A file of a
// newer version, a table among them, fails Open with a VersionError
// wrapping ErrNewerVersion, and changes no file but LOCK (see Recovery).
//
// # Recovery
//
// A record torn by a crash at the end of the log is dropped and the file
// truncated; such a record was never acknowledged. Damage to the last
// record looks the same and is dropped the same way, and so does damage
// to any record of the last write when several commits shared it: until
// a write's fsync returns its records reach the disk in any order, so a
// damaged record followed only by records of its own write is what a
// crash leaves, and it is dropped with them. Stats().TornTail says what
// was dropped: the file, the offset, the bytes and the records they held
// (FirstSeq to LastSeq). Damage anywhere else, a record that does not decode, a gap in
// the sequence numbers, or a missing file (a segment the manifest names or
// that the sequence needs, the snapshot the log starts after, the manifest
// itself, the log of the records a cold table holds) fails Open with an
// error wrapping ErrCorrupt that names the file and offset: the store
// never skips a record it cannot read. An Open that refuses what it
// finds changes none of the store's files, so a torn tail is dropped only
// once the rest of the store has checked out; an Open that fails on an
// I/O error after that point (making the next log segment, say) has
// dropped it. Only LOCK may be new: Open
// takes the lock, and a writer writes its process ID there, before it
// reads anything.
//
// # Limits
//
// A frame holds at most 1 GiB: recovery takes a longer one for damage. So
// a transaction's record in the log (the writes it made, as encoded there)
// may not pass 1 GiB: Update refuses a transaction whose record would,
// with an error wrapping escrow.ErrInvalidArgument, before anything of it
// is written to the log or applied in memory, and the store goes on. A
// snapshot starts a new chunk before a record that would take its chunk
// past the limit. A single record longer than that, which no Update can
// have committed, fails the compaction, with nothing lost (see Failures).
// The cold tables have no such limit.
//
// # Read-only
//
// With Options.ReadOnly, Open reads a store without changing its
// directory: it creates no file, truncates no torn tail (it skips it and
// reports it in Stats) and removes nothing a crashed compaction left.
// Writes in an Update, and Compact, fail with escrow.ErrReadOnly. A
// read-only store holds a shared lock until Close, so that no writer can
// append, truncate or compact under it: read-only stores may share a
// directory, but not with a writer. A directory that holds no store fails
// Open with ErrNotStore.
//
// # Failures
//
// A failed write or fsync cannot be retried safely (the kernel may already
// have dropped the unsynced data), so after one the store refuses every
// further Update with an error wrapping ErrFailed. Reads fail the same way
// once the failure has left a commit in memory whose fate on disk is
// unknown (the commit whose Update returned the failure, or one behind
// it), since showing it could show a record that a reopen does not have.
// Close the store and open it again to continue from what is on disk.
//
// A compaction that cannot start a new log segment (a read-only directory,
// too many open files) loses nothing and does not fail the store: records
// go on to the current segment, Compact returns the error and Stats keeps
// it, and the next compaction tries again.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/internal/notify"
	"github.com/escrowkit/escrow/storage/filestore/internal/sstable"
	"github.com/escrowkit/escrow/storage/memstore"
)

var (
	_ escrow.Storage       = (*Store)(nil)
	_ escrow.EventNotifier = (*Store)(nil)
)

// Errors. Errors that Open, Update and Compact return wrap these where they
// apply; a CorruptError carries the file and offset, a LockedError the
// directory and the holder.
var (
	// ErrCorrupt reports a directory whose contents cannot be recovered
	// without losing data: damage before the end of the log, a snapshot or
	// record that does not decode, a gap in the sequence, a missing file.
	ErrCorrupt = errors.New("filestore: corrupt")
	// ErrFailed reports a store that refuses updates because a write or an
	// fsync failed earlier.
	ErrFailed = errors.New("filestore: store failed after a write error")
	// ErrLocked reports a directory another open store holds; the error
	// is a LockedError.
	ErrLocked = errors.New("filestore: directory is locked by another store")
	// ErrNotStore reports a read-only Open of a directory that holds no
	// store (no log segment and no snapshot), or an Open for writing of
	// one that holds no store but files of other names.
	ErrNotStore = errors.New("filestore: not an escrow store")
	// ErrNewerVersion reports a file written in a format newer than this
	// release reads; a VersionError says which. A newer release opens it.
	ErrNewerVersion = errors.New("filestore: written by a newer release")
)

// A VersionError reports a file in a format version this release does not
// read. It wraps ErrNewerVersion.
type VersionError struct {
	File    string // path of the file
	Version uint32 // its format version
}

func (e *VersionError) Error() string {
	newest := uint32(formatVersion)
	if _, _, ok := parseTableName(filepath.Base(e.File)); ok {
		newest = sstable.FormatVersion // a cold table has a format of its own
	}
	return fmt.Sprintf("filestore: %s is in format version %d, newer than this release reads (up to %d): open the store with a newer release",
		e.File, e.Version, newest)
}

// Unwrap returns ErrNewerVersion.
func (e *VersionError) Unwrap() error { return ErrNewerVersion }

// A CorruptError says where a store's files are damaged. It wraps ErrCorrupt.
type CorruptError struct {
	File   string // path of the damaged file
	Offset int64  // byte offset of the damage
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("filestore: corrupt: %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Options configure a Store. The zero value, or a nil *Options, means the
// defaults.
type Options struct {
	// MaxBatchDelay is how long a commit waits, before writing, for other
	// commits to join its write and fsync. Zero does not wait: commits that
	// arrive while a write is in progress still share the next one, which
	// is enough under load. A delay trades latency for fewer fsyncs.
	MaxBatchDelay time.Duration
	// NoSync skips every fsync. It is UNSAFE: a crash of the machine (not
	// only of the process) can lose acknowledged commits or leave the log
	// corrupt. It is meant for tests.
	NoSync bool
	// CompactRatio starts a compaction (a checkpoint) when the log after
	// the newest snapshot is larger than CompactRatio times that snapshot
	// (and than CompactMinBytes). Zero means 0.25; a negative ratio turns
	// automatic compaction off, leaving Compact. The snapshot holds only
	// the live records, so the log after it is most of what Open replays
	// and what memory holds beside the live records: the defaults keep it
	// to about 16 MiB, which replays in about half a second, until the
	// snapshot passes 64 MiB.
	CompactRatio float64
	// CompactMinBytes is the smallest log that is compacted automatically.
	// Zero means 16 MiB.
	CompactMinBytes int64
	// ReadOnly opens the store for reading only, changing nothing in its
	// directory; see the package documentation.
	ReadOnly bool
	// CacheBytes bounds the cache of blocks read from the cold tables.
	// Zero means 64 MiB; the least is 1 MiB.
	CacheBytes int64

	fs    fileSystem // nil means osFS; tests substitute their own
	clock paceClock  // nil means the time package's; tests substitute their own
}

// Store is a durable escrow.Storage over one directory. Create it with
// Open and close it with Close. It is safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	fs   fileSystem
	lock io.Closer
	mem  *memstore.Store

	closed    atomic.Bool
	closeDone chan struct{}   // closed when the first Close returns
	notify    notify.Notifier // see EventsCommitted
	broken    atomic.Bool     // failed is set; read without mu on the hot path
	// applied is the sequence number of the last record applied to mem
	// (and queued for the log); durable that of the last one synced.
	applied, durable atomic.Uint64

	// ops holds the running write transaction's operations; it belongs to
	// whoever holds mem's write lock.
	ops encoder

	mu   sync.Mutex // guards the fields below
	cond sync.Cond  // broadcast when flushing ends, for takeLog
	// waiters wait for their records to be durable, each on its own
	// channel, so that a flush wakes only the commits it made durable
	// and, if more are queued, one waiter to write them.
	waiters []*waiter
	// pending holds the framed records not yet written, the first of them
	// numbered batchFirst.
	pending, spare []byte
	batchFirst     uint64
	flushing       bool          // someone has the log file: a write or a rotation
	dirSyncing     chan struct{} // closed when the new segment's name is synced; nil if it is
	failed         error         // why the store refuses updates
	log            file          // the segment records are appended to
	logStart       uint64
	logBytes       int64 // log bytes after the newest snapshot
	activeBytes    int64 // bytes in the segment records are appended to
	snapSeq        uint64
	snapBytes      int64
	compactAt      int64 // logBytes that starts a compaction
	torn           TornTail

	compactMu   sync.Mutex // one compaction at a time
	compactKick chan struct{}
	kickClosed  bool // compactKick is closed, under mu
	compactDone chan struct{}
	compactErr  error // the last automatic compaction's error, under mu

	flushes atomic.Uint64 // writes of the log, each one fsync

	// The cold tables: see archive.go.
	tables         atomic.Pointer[tableSet]
	tablesMu       sync.Mutex // held to change tables
	mergeMu        sync.Mutex // one merge at a time
	mergeKick      chan struct{}
	mergeDone      chan struct{}
	cache          *sstable.Cache
	tableIDs       atomic.Uint64 // the last table ID given
	retiredOpen    atomic.Int64  // tables merges replaced that are still open
	evicted        atomic.Uint64 // records moved out of memory since Open
	lastRecords    int           // in the last table a checkpoint wrote, and then some; under compactMu
	lastCheckpoint atomic.Int64  // Unix nanoseconds when the newest snapshot was written, 0 if unknown
	// timersInSnapshot is set while the timers of the escrows in the
	// tables are in the newest snapshot, which a version before 5 wrote,
	// and not yet in the tables; under compactMu.
	timersInSnapshot bool
}

// Open opens the store in dir, creating the directory and an empty store
// if there is none, and recovers its contents. It fails with an error
// wrapping ErrLocked if another store has dir open, and ErrCorrupt if the
// contents are damaged. A store is made only in an empty directory: one
// that holds no store but files of other names fails with an error
// wrapping ErrNotStore, and no file in it changes. With Options.ReadOnly it creates nothing and fails
// with an error wrapping ErrNotStore if dir holds no store (or names a
// file), and fs.ErrNotExist as well if there is no dir.
func Open(dir string, opts *Options) (*Store, error) {
	s := &Store{dir: dir, closeDone: make(chan struct{})}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.ReadOnly {
		s.opts.CompactRatio = -1
	}
	if s.opts.CompactRatio == 0 {
		s.opts.CompactRatio = 0.25
	}
	if s.opts.CompactMinBytes <= 0 {
		s.opts.CompactMinBytes = 16 << 20
	}
	if s.opts.CacheBytes == 0 {
		s.opts.CacheBytes = 64 << 20
	}
	s.cache = sstable.NewCache(max(s.opts.CacheBytes, 1<<20))
	s.fs = s.opts.fs
	if s.fs == nil {
		s.fs = osFS{}
	}
	s.cond.L = &s.mu
	if !s.opts.ReadOnly {
		if err := s.fs.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("filestore: %w", err)
		}
		// Before the lock, which writes LOCK: a directory of someone
		// else's files is refused without a byte changed.
		if err := s.checkOwnDir(); err != nil {
			return nil, err
		}
	}
	lock, err := s.fs.Lock(dir, s.opts.ReadOnly)
	if (errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir)) && s.opts.ReadOnly {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotStore, dir, err)
	}
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.recover(); err != nil {
		if s.log != nil {
			s.log.Close()
		}
		s.closeTables()
		lock.Close()
		return nil, err
	}
	s.compactKick = make(chan struct{}, 1)
	s.compactDone = make(chan struct{})
	s.mergeKick = make(chan struct{}, 1)
	s.mergeDone = make(chan struct{})
	go s.compactor()
	go s.merger()
	s.mu.Lock()
	s.maybeCompact()
	s.mu.Unlock()
	return s, nil
}

// Update runs fn in a read-write transaction; see escrow.Storage. It
// returns after the transaction's record is durable. A transaction whose
// record would pass 1 GiB (see Limits in the package documentation) fails
// with an error wrapping escrow.ErrInvalidArgument, and nothing of it is
// written or applied. Once a write or fsync has failed it returns an error
// wrapping ErrFailed without calling fn. On a read-only store it runs fn
// as View does: every write fails with escrow.ErrReadOnly, and a
// transaction that only reads (such as escrow.New's on a store that has
// its system accounts) succeeds.
func (s *Store) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	if s.closed.Load() {
		return escrow.ErrClosed
	}
	if s.opts.ReadOnly {
		return s.View(ctx, fn)
	}
	if s.broken.Load() {
		return s.failure()
	}
	var wait uint64 // the last commit fn may have seen, or its own
	appended := false
	err := s.mem.Update(ctx, func(mtx escrow.Tx) error {
		tx := s.withCold(mtx)
		s.ops.b = s.ops.b[:0]
		defer func() {
			if cap(s.ops.b) > keptBuffer {
				s.ops.b = nil // one large transaction is no reason to keep its size
			}
		}()
		rt := &recordingTx{s: s, tx: tx}
		if err := fn(rt); err != nil {
			wait = s.applied.Load()
			return err
		}
		if len(s.ops.b) == 0 {
			wait = s.applied.Load()
			return nil
		}
		if n := len(s.ops.b); n > int(maxPayload) {
			// Recovery would take the record for a torn tail and drop
			// it: refuse it now, and mem rolls the transaction back.
			wait = s.applied.Load()
			return fmt.Errorf("%w: filestore: the transaction's log record would be %d bytes, more than the %d a record may hold",
				escrow.ErrInvalidArgument, n, maxPayload)
		}
		var err error
		wait, err = s.enqueue()
		appended = err == nil && rt.appended
		return err
	})
	if err == nil && appended {
		// A waiter's View waits for the commit to be durable.
		s.notify.Wake()
	}
	// Even an error or a transaction without writes may rest on commits
	// that are not yet durable; answer only once they are.
	if wait > 0 {
		if werr := s.waitDurable(wait); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// View runs fn in a read-only transaction; see escrow.Storage. It sees
// only durable commits: if the newest are still being written it waits,
// and if writing them failed it returns an error wrapping ErrFailed
// without calling fn.
func (s *Store) View(ctx context.Context, fn func(escrow.Tx) error) error {
	if s.closed.Load() {
		return escrow.ErrClosed
	}
	return s.mem.View(ctx, func(mtx escrow.Tx) error {
		tx := s.withCold(mtx)
		// A commit is queued, and applied advanced, before mem makes it
		// visible, and tx's snapshot was taken before this read: once
		// applied is durable, everything fn can see is.
		if err := s.waitDurable(s.applied.Load()); err != nil {
			return err // fn could see a commit that may be lost
		}
		return fn(tx)
	})
}

// EventsCommitted returns a channel that is closed once a transaction
// that appended an event has committed, or the store has closed; see
// escrow.EventNotifier. Ledgers in one process that share the store wake
// each other's WaitEvents and Consume with it, and Close ends them with
// escrow.ErrClosed without waiting for their next poll, as soon as it is
// called, before it waits for commits or checkpoints.
func (s *Store) EventsCommitted() <-chan struct{} { return s.notify.Wait() }

// Close waits for commits in progress to be written, then closes the
// store's files and releases the directory. If more than a MiB of log has
// been written since the last checkpoint, and automatic compaction is on,
// it checkpoints first, so that the next Open has next to nothing to
// replay; its error, if any, is Close's, and the store closes all the
// same, with its log intact. It is idempotent: a call after the first
// returns nil once the first has closed the store, so that when any call
// returns the directory is free to open again. A View still running
// reads its snapshot of memory, but its reads of the cold tables may then
// fail with escrow.ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		<-s.closeDone
		return nil
	}
	defer close(s.closeDone) // after every other deferred call
	s.notify.Close()         // a waiter's next View finds the store closed
	ckErr := s.closingCheckpoint()
	// Closing mem waits for the transactions that hold it; after that no
	// record can be queued.
	s.mem.Close()
	// An error here means a queued commit may not be on disk.
	err := s.waitDurable(s.applied.Load())
	if err == nil && ckErr != nil {
		err = fmt.Errorf("filestore: checkpoint at close: %w", ckErr)
	}
	s.mu.Lock()
	s.kickClosed = true
	close(s.compactKick)
	s.mu.Unlock()
	<-s.compactDone
	s.compactMu.Lock() // wait out a Compact called directly
	defer s.compactMu.Unlock()
	close(s.mergeKick)
	<-s.mergeDone
	s.mergeMu.Lock() // and a merge it started
	defer s.mergeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log != nil {
		if cerr := s.log.Close(); err == nil {
			err = cerr
		}
		s.log = nil
	}
	s.closeTables()
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// keptBuffer is the largest buffer for a transaction's record, or for a
// batch of them, that the store keeps for the next: a larger one, made
// for a large transaction, goes once it has served.
const keptBuffer = 1 << 20

// closeCheckpointBytes is the log since the last checkpoint past which
// Close checkpoints: replaying a MiB takes tens of milliseconds.
const closeCheckpointBytes = 1 << 20

// closingCheckpoint checkpoints a store that is closing, if it has enough
// log to make it worth the wait. No new transaction starts by now; those
// still running go on beside it, as they do beside any checkpoint.
func (s *Store) closingCheckpoint() error {
	if s.opts.ReadOnly || s.opts.CompactRatio < 0 {
		return nil
	}
	s.compactMu.Lock() // after a compaction already running
	defer s.compactMu.Unlock()
	s.mu.Lock()
	skip := s.logBytes < closeCheckpointBytes || s.failed != nil
	s.mu.Unlock()
	if skip {
		return nil
	}
	return s.compact(false) // nothing commits now: no need to pace
}

// closeTables lets go of the store's tables: they close once no
// transaction reads them.
func (s *Store) closeTables() {
	s.tablesMu.Lock()
	defer s.tablesMu.Unlock()
	if ts := s.tables.Swap(nil); ts != nil {
		for _, t := range ts.tables {
			t.closeFile()
		}
	}
}

// failure returns the error that Updates get after a failure, or nil.
func (s *Store) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failedErr()
}

func (s *Store) failedErr() error {
	if s.failed == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrFailed, s.failed)
}

// enqueue frames the running transaction's operations as the next record
// and queues it for the log. It runs under mem's write lock, so records are
// queued in the order their transactions were applied.
func (s *Store) enqueue() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failedErr(); err != nil {
		return 0, err // mem rolls the transaction back
	}
	seq := s.applied.Load() + 1
	if len(s.pending) == 0 {
		s.batchFirst = seq
	}
	s.pending = appendFrame(s.pending, seq, uint32(seq-s.batchFirst), s.ops.b)
	s.applied.Store(seq)
	return seq, nil
}

// waitDurable returns once record seq is durable, or the store has failed.
// If no write is in progress the caller becomes the writer for everything
// queued, its own record and those of the transactions after it.
func (s *Store) waitDurable(seq uint64) error {
	if s.durable.Load() >= seq {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.durable.Load() >= seq:
			return nil
		case s.failed != nil:
			return s.failedErr()
		case !s.flushing:
			s.flush()
		default:
			w := waiterPool.Get().(*waiter)
			w.seq = seq
			s.waiters = append(s.waiters, w)
			s.mu.Unlock()
			<-w.wake
			waiterPool.Put(w)
			s.mu.Lock()
		}
	}
}

// A waiter is a goroutine in waitDurable waiting for record seq.
type waiter struct {
	seq  uint64
	wake chan struct{}
}

var waiterPool = sync.Pool{New: func() any { return &waiter{wake: make(chan struct{}, 1)} }}

// wakeWaiters wakes the waiters whose records are durable, or all of them
// if the store has failed, and if the log is free and records are queued,
// the first of the others, to write them. It is called with mu held.
func (s *Store) wakeWaiters() {
	durable := s.durable.Load()
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if w.seq <= durable || s.failed != nil {
			w.wake <- struct{}{}
		} else {
			kept = append(kept, w)
		}
	}
	clear(s.waiters[len(kept):])
	s.waiters = kept
	if !s.flushing && len(s.waiters) > 0 {
		s.waiters[0].wake <- struct{}{}
		s.waiters = append(s.waiters[:0], s.waiters[1:]...)
	}
}

// flush writes and syncs every queued record. It is called with mu held and
// no flush in progress, and releases mu while it writes.
func (s *Store) flush() {
	s.flushing = true
	if d := s.opts.MaxBatchDelay; d > 0 {
		s.mu.Unlock()
		time.Sleep(d)
		s.mu.Lock()
	}
	buf, last := s.pending, s.applied.Load()
	s.pending = s.spare[:0]
	log, dirSyncing := s.log, s.dirSyncing
	s.mu.Unlock()

	err := s.write(log, buf)
	if dirSyncing != nil {
		<-dirSyncing // see rotate
	}

	s.mu.Lock()
	s.spare = buf[:0]
	if cap(buf) > keptBuffer {
		s.spare = nil
	}
	s.flushing = false
	if err == nil && s.failed != nil {
		err = s.failed // the directory sync failed meanwhile
	}
	if err != nil {
		s.failed = err
		s.broken.Store(true)
	} else {
		s.durable.Store(last)
		s.flushes.Add(1)
		s.logBytes += int64(len(buf))
		s.activeBytes += int64(len(buf))
		s.maybeCompact()
	}
	s.cond.Broadcast()
	s.wakeWaiters()
}

// write appends buf to f and syncs it.
func (s *Store) write(f file, buf []byte) error {
	n, err := f.Write(buf)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	if s.opts.NoSync {
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync log: %w", err)
	}
	return nil
}

// takeLog waits for the log file to be free and takes it, as a flush does.
// It is called with mu held.
func (s *Store) takeLog() error {
	for s.flushing {
		s.cond.Wait()
	}
	if err := s.failedErr(); err != nil {
		return err
	}
	s.flushing = true
	return nil
}

// releaseLog gives the log file back after takeLog, failing the store if
// err is not nil. It is called with mu held.
func (s *Store) releaseLog(err error) {
	s.flushing = false
	if err != nil && s.failed == nil {
		s.failed = err
		s.broken.Store(true)
	}
	s.cond.Broadcast()
	s.wakeWaiters()
}
