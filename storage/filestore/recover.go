package filestore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// File names in a store's directory.
const (
	lockName   = "LOCK"
	segPrefix  = "log-"
	segSuffix  = ".wal"
	snapPrefix = "snap-"
	snapSuffix = ".snap"
	tmpSuffix  = ".tmp"
)

func segName(start uint64) string { return segPrefix + fmt.Sprintf("%016x", start) + segSuffix }

// nextSegName is the name under which a rotation prepares the next
// segment, before it knows where the segment starts.
const nextSegName = segPrefix + "next" + segSuffix + tmpSuffix

func snapName(seq uint64) string { return snapPrefix + fmt.Sprintf("%016x", seq) + snapSuffix }

// parseName returns the number in a name made by segName or snapName.
func parseName(name, prefix, suffix string) (uint64, bool) {
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
		return 0, false
	}
	hex := name[len(prefix) : len(name)-len(suffix)]
	if len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	return n, err == nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

// corrupt returns a CorruptError for the named file of the store.
func (s *Store) corrupt(name string, off int, format string, args ...any) error {
	return &CorruptError{File: s.path(name), Offset: int64(off), Reason: fmt.Sprintf(format, args...)}
}

// dirContents is what recovery finds in a store's directory.
type dirContents struct {
	segs, snaps []uint64 // ascending
	tables      []string
	tmps        []string
	manifest    bool
}

// isLeftover reports whether name is one the store gives a file while it
// writes it (a snapshot, a table, the next segment, the manifest), which
// a crash can leave behind. Only such a name is removed: a file that
// merely looks like one is not the store's.
func isLeftover(name string) bool {
	base, ok := strings.CutSuffix(name, tmpSuffix)
	if !ok {
		return false
	}
	_, isSnap := parseName(base, snapPrefix, snapSuffix)
	_, _, isTable := parseTableName(base)
	return isSnap || isTable || name == nextSegName || name == manifestName+tmpSuffix
}

// checkOwnDir refuses, with an error wrapping ErrNotStore, a directory
// that holds no store but files the store did not write: making one there
// would write LOCK and MANIFEST over files of those names, and mix the
// store's files with another program's. An empty directory, or one that
// holds only what a first Open that failed leaves (LOCK, empty or naming
// a process), is made a store; one that holds a store opens whatever else
// it holds, and the store touches no file whose name it does not give.
func (s *Store) checkOwnDir() error {
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	for _, name := range names {
		if isStoreFile(name) {
			return nil
		}
	}
	for _, name := range names {
		if name == lockName {
			// One that cannot be read may be held by a store making
			// itself here (Windows does not let a locked file be read):
			// the lock says so.
			data, err := s.fs.ReadFile(s.path(name))
			if err != nil || isLockData(data) {
				continue
			}
		} else if isLeftover(name) {
			continue
		}
		return fmt.Errorf("%w: %s holds %s, which the store did not write, and no store: a store is made only in an empty directory",
			ErrNotStore, s.dir, name)
	}
	return nil
}

// isStoreFile reports whether name is one of the files a store holds once
// made: a log segment, a snapshot, a cold table or the manifest.
func isStoreFile(name string) bool {
	_, isSeg := parseName(name, segPrefix, segSuffix)
	_, isSnap := parseName(name, snapPrefix, snapSuffix)
	_, _, isTable := parseTableName(name)
	return isSeg || isSnap || isTable || name == manifestName
}

// isLockData reports whether data is what a store leaves in LOCK: nothing,
// or a writer's process ID on a line.
func isLockData(data []byte) bool {
	id, ok := strings.CutSuffix(string(data), "\n")
	if !ok {
		return len(data) == 0
	}
	n, err := strconv.Atoi(id)
	return err == nil && n > 0
}

func (s *Store) list() (dirContents, error) {
	var c dirContents
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return c, fmt.Errorf("filestore: %w", err)
	}
	for _, name := range names {
		if n, ok := parseName(name, segPrefix, segSuffix); ok {
			c.segs = append(c.segs, n)
		} else if n, ok := parseName(name, snapPrefix, snapSuffix); ok {
			c.snaps = append(c.snaps, n)
		} else if _, _, ok := parseTableName(name); ok {
			c.tables = append(c.tables, name)
		} else if name == manifestName {
			c.manifest = true
		} else if isLeftover(name) {
			c.tmps = append(c.tmps, name)
		}
	}
	slices.Sort(c.segs)
	slices.Sort(c.snaps)
	if s.opts.ReadOnly && len(c.segs)+len(c.snaps) == 0 {
		return c, fmt.Errorf("%w: %s", ErrNotStore, s.dir) // and not to be made one
	}
	return c, nil
}

// recover loads the newest valid snapshot into a new in-memory store,
// replays the log after it, truncates a torn tail and opens the last
// segment for appending.
func (s *Store) recover() error {
	c, err := s.list()
	if err != nil {
		return err
	}
	named, err := s.checkManifest(c)
	if err != nil {
		return err
	}
	s.mem = memstore.New()
	var dec decoder
	v2Records := false // which a manifest would have named a segment for

	// The newest snapshot that checks out. An older one serves only if the
	// log after it is still complete, which the chain check below decides.
	var base uint64
	var snapErr error
	var wantTables []tableRange // the tables the snapshot goes with
	timersInTables := false     // the snapshot's cold timers are in them
	for i := len(c.snaps) - 1; i >= 0; i-- {
		name := snapName(c.snaps[i])
		data, err := s.fs.ReadFile(s.path(name))
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		chunks, version, end, err := s.verifySnapshot(name, data, c.snaps[i])
		if errors.Is(err, ErrNewerVersion) {
			return err
		}
		if err != nil {
			snapErr = err
			continue
		}
		dec.version = version
		if err := s.loadSnapshot(name, chunks, end, &dec); err != nil {
			return err
		}
		v2Records = version > 1
		timersInTables = version >= 5
		s.timersInSnapshot = !timersInTables
		wantTables = end.snapTables
		base, s.snapSeq, s.snapBytes = c.snaps[i], c.snaps[i], int64(len(data))
		break
	}
	if snapErr != nil && base == 0 && (len(c.segs) == 0 || c.segs[0] != 1) {
		return snapErr // no older snapshot, and the log does not reach back to the start
	}
	staleTables, err := s.loadTables(c.tables, wantTables)
	if err != nil {
		return err
	}
	if timersInTables {
		if err := s.loadTimers(); err != nil {
			return err
		}
	}

	// Replay the log. want is the number the next record must have.
	var (
		want     uint64
		started  bool
		obsolete []uint64
		tail     *lastSegment // opened for appending once nothing is refused
	)
	for i, start := range c.segs {
		name := segName(start)
		if !started && i+1 < len(c.segs) && c.segs[i+1] <= base+1 {
			obsolete = append(obsolete, start) // wholly covered by the snapshot
			continue
		}
		switch {
		case !started && start > base+1:
			if snapErr != nil {
				return snapErr
			}
			if base == 0 {
				return s.corrupt(name, 0, "snapshot missing: the log starts at record %d, and no snapshot covers the records before it", start)
			}
			return s.corrupt(name, 0, "snapshot missing: the log starts at record %d, but the newest snapshot covers only up to %d", start, base)
		case started && start != want:
			return s.corrupt(name, 0, "segment starts at record %d, expected %d", start, want)
		}
		started, want = true, start
		data, err := s.fs.ReadFile(s.path(name))
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		h, err := s.checkHeader(name, data, segMagic, "")
		if err != nil {
			return err
		}
		dec.version = h.version
		last := i == len(c.segs)-1
		end, err := s.replay(name, data, h.size, base, &want, last, &dec)
		if err != nil {
			return err
		}
		s.logBytes += int64(end)
		v2Records = v2Records || h.version > 1 && end > h.size
		if last && end < len(data) {
			s.torn = tornTail(s.path(name), data, end, want)
		}
		if last && !s.opts.ReadOnly {
			tail = &lastSegment{name, start, h.version, end, len(data)}
		}
	}
	next := max(want, base+1)
	if !c.manifest && v2Records {
		return s.corrupt(manifestName, 0, "manifest missing, so a deleted log segment would go unnoticed")
	}
	// A checkpoint writes a table only of records already in the log, which
	// stays until the checkpoint's snapshot covers it: a table past the
	// last record recovered is not a crash's leftover but the history of
	// files that are gone.
	for _, name := range c.tables {
		if _, hi, _ := parseTableName(name); hi >= next {
			return s.corrupt(name, 0, "cold table of the checkpoint at record %d, past the last record in the snapshot and the log (%d): a snapshot or log segment is missing",
				hi, next-1)
		}
	}
	// Nothing is refused past this point, so the torn tail can go: an Open
	// that fails leaves the log as it found it, for a look at what it held.
	if tail != nil {
		if err := s.openLast(*tail); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
	}
	if s.log != nil && want < base+1 {
		// The last segment ends before the snapshot does; appending to it
		// would leave a gap in its numbers.
		s.log.Close()
		s.log = nil
	}
	if s.log == nil && !s.opts.ReadOnly {
		if s.log, err = s.startSegment(next); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		s.logStart, s.activeBytes, named = next, fileHeaderSize, next
	}
	if named != s.logStart && !s.opts.ReadOnly {
		// A rotation that crashed before its manifest, or a store from
		// before manifests.
		if err := s.writeManifest(s.logStart); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
	}
	s.applied.Store(next - 1)
	s.durable.Store(next - 1)
	s.compactAt = s.compactThreshold()
	if s.opts.ReadOnly {
		return nil
	}

	// Left over by a compaction that crashed before it cleaned up.
	removed := false
	for _, start := range obsolete {
		removed = s.fs.Remove(s.path(segName(start))) == nil || removed
	}
	for _, n := range c.snaps {
		if n < base {
			removed = s.fs.Remove(s.path(snapName(n))) == nil || removed
		}
	}
	for _, name := range c.tmps {
		removed = s.fs.Remove(s.path(name)) == nil || removed
	}
	for _, name := range staleTables {
		removed = s.fs.Remove(s.path(name)) == nil || removed
	}
	if removed {
		return s.syncDir()
	}
	return nil
}

// checkHeader reads the header of the named file (see parseFileHeader),
// refusing damage and a version newer than this release reads.
func (s *Store) checkHeader(name string, data []byte, magic, magicV1 string) (fileHeader, error) {
	h := parseFileHeader(data, magic, magicV1)
	switch {
	case h.reason != "":
		return h, s.corrupt(name, 0, "%s", h.reason)
	case h.version > formatVersion:
		return h, &VersionError{File: s.path(name), Version: h.version}
	}
	return h, nil
}

// lastSegment is the log's last segment as recovery read it: its valid
// records end at offset end of its size bytes.
type lastSegment struct {
	name      string
	start     uint64
	version   uint32
	end, size int
}

// openLast opens the last segment to append to it. A torn tail is
// dropped, durably, before anything is appended after it. A segment of an
// older version, or one whose header a crash tore, is left for a new
// segment (s.log stays nil), so that each file holds one version.
func (s *Store) openLast(seg lastSegment) error {
	if seg.version == 0 { // no record, and no whole header
		return s.fs.Remove(s.path(seg.name))
	}
	f, err := s.fs.OpenAppend(s.path(seg.name))
	if err != nil {
		return err
	}
	if seg.end < seg.size {
		err = f.Truncate(int64(seg.end))
		if err == nil && !s.opts.NoSync {
			err = f.Sync()
		}
	}
	if err != nil || seg.version != formatVersion {
		f.Close()
		return err
	}
	s.log, s.logStart, s.activeBytes = f, seg.start, int64(seg.end)
	return nil
}

// startSegment creates the segment starting at record start, holding only
// its header, durably. On failure it removes what it created, durably; if
// it cannot, the error wraps errLeftover.
func (s *Store) startSegment(start uint64) (file, error) {
	name := s.path(segName(start))
	f, err := s.fs.Create(name)
	if err != nil {
		return nil, err // nothing was created
	}
	if err = s.write(f, appendFileHeader(nil, segMagic)); err == nil {
		err = s.syncDir()
	}
	if err == nil {
		err = s.writeManifest(start)
	}
	if err == nil {
		return f, nil
	}
	f.Close()
	if errors.Is(err, errLeftover) {
		return nil, err // the manifest may name the segment: keep it
	}
	rerr := s.fs.Remove(name)
	if rerr == nil {
		rerr = s.syncDir()
	}
	if rerr != nil {
		return nil, fmt.Errorf("%w (%w: %v)", err, errLeftover, rerr)
	}
	return nil, err
}

// errLeftover reports a segment that a failed rotation could not remove.
// Records appended to the segment before it would leave the log with a
// segment that starts too early, which recovery refuses.
var errLeftover = errors.New("cannot remove the new segment")

func (s *Store) syncDir() error {
	if s.opts.NoSync {
		return nil
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("filestore: sync %s: %w", s.dir, err)
	}
	return nil
}

// replayBatch is how many log records recovery applies in one in-memory
// transaction.
const replayBatch = 512

// replay applies the records of one log segment, from offset off, that
// come after base, checking that they are numbered want, want+1, …, and returns the length
// of the valid prefix. Damage is an error unless it is a torn tail of the
// last segment, in which case the returned length excludes it.
func (s *Store) replay(name string, data []byte, off int, base uint64, want *uint64, last bool, dec *decoder) (int, error) {
	type rec struct {
		payload []byte
		off     int
	}
	batch := make([]rec, 0, replayBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.mem.Update(context.Background(), func(mtx escrow.Tx) error {
			tx := s.withCold(mtx)
			for _, r := range batch {
				n, err := applyPayload(tx, dec, r.payload)
				switch {
				case err != nil:
					return s.corrupt(name, r.off, "record does not replay: %v", err)
				case dec.err != nil || n == 0:
					return s.corrupt(name, r.off, "record does not decode")
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}

	for off < len(data) {
		seq, _, payload, size, ok := parseFrame(data[off:])
		if !ok {
			break
		}
		if seq != *want {
			return 0, s.corrupt(name, off, "record %d where %d was expected", seq, *want)
		}
		if seq > base {
			batch = append(batch, rec{payload, off})
			if len(batch) == replayBatch {
				if err := flush(); err != nil {
					return 0, err
				}
			}
		}
		*want++
		off += size
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if off == len(data) {
		return off, nil
	}
	switch {
	case !last:
		return 0, s.corrupt(name, off, "damaged record %d in a segment followed by others", *want)
	case *want <= base:
		return 0, s.corrupt(name, off, "damaged record %d, which the snapshot covers", *want)
	}
	if at, found := laterBatch(data[off:], *want); found {
		return 0, s.corrupt(name, off, "damaged record %d followed by a valid record of a later write at offset %d", *want, off+at)
	}
	return off, nil
}
