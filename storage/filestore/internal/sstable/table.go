package sstable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ErrCorrupt is wrapped by every error that reports a damaged table: a
// bad magic number, a checksum mismatch, keys out of order, a truncated
// file. Such errors name the file offset of the damage.
var ErrCorrupt = errors.New("sstable: corrupt")

// FormatVersion is the format version of the tables this package writes,
// and the only one it reads.
const FormatVersion = formatVersion

// A VersionError reports a table whose footer, intact, names a format
// version other than FormatVersion. It does not wrap ErrCorrupt: the
// table may be whole, written by a release that reads it.
type VersionError struct {
	Version uint32
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("sstable: unsupported format version %d", e.Version)
}

// File is what a Table reads. An *os.File is one. ReadAt must be safe for
// concurrent use, as io.ReaderAt asks.
type File interface {
	io.ReaderAt
	io.Closer
}

// A Table is an open table. It is safe for concurrent use.
type Table struct {
	f      File
	size   int64
	id     uint64
	cache  *Cache
	count  int64
	top    *block // the top-level index
	filter bloom
	// blocksEnd is the offset at which the data and second-level index
	// blocks end.
	blocksEnd uint64
}

// A footer is the decoded footer of a table.
type footer struct {
	top, filter handle
	count       int64
}

// Open opens the table held by f, which is size bytes long. id names the
// table's blocks in cache, so every table open at once on one cache must
// have its own; cache may be nil, in which case every block is read from
// f when it is needed.
//
// Open reads the footer, the top-level index and the bloom filter, checks
// them, and keeps the index and the filter in memory: the filter takes
// BloomBitsPerKey/8 bytes per record (1.25 with the default), the index
// much less (see MemBytes and the package doc). It does not close f on
// error.
func Open(f File, size int64, id uint64, cache *Cache) (*Table, error) {
	t := &Table{f: f, size: size, id: id, cache: cache}
	ft, err := t.readFooter()
	if err != nil {
		return nil, err
	}
	t.count = ft.count
	if err := t.loadTop(ft.top); err != nil {
		return nil, err
	}
	t.blocksEnd = ft.top.off
	if ft.filter.len > 0 {
		if err := t.loadFilter(ft.filter, ft.top.off); err != nil {
			return nil, err
		}
		t.blocksEnd = ft.filter.off
	}
	return t, nil
}

// loadTop reads the top-level index h, which must end at the footer.
func (t *Table) loadTop(h handle) error {
	end := uint64(t.size - footerSize)
	raw, err := t.readRaw(h, end)
	if err != nil {
		return err
	}
	if h.end() != end {
		return corruptf(int64(h.off), "top-level index does not end at the footer")
	}
	t.top, err = parseBlock(raw, int64(h.off))
	return err
}

// loadFilter reads the filter block h, which must end at offset end.
func (t *Table) loadFilter(h handle, end uint64) error {
	raw, err := t.readRaw(h, end)
	if err != nil {
		return err
	}
	if h.end() != end {
		return corruptf(int64(h.off), "filter does not end at the top-level index")
	}
	t.filter, err = parseBloom(raw, int64(h.off))
	return err
}

// readFooter reads and checks the footer.
func (t *Table) readFooter() (footer, error) {
	if t.size < footerSize {
		return footer{}, corruptf(0, "file of %d bytes is too short to be a table", t.size)
	}
	off := t.size - footerSize
	b := make([]byte, footerSize)
	if err := t.readAt(b, off); err != nil {
		return footer{}, err
	}
	if string(b[footerChecksummed+4:]) != magic {
		return footer{}, corruptf(off, "bad magic number %q", b[footerChecksummed+4:])
	}
	if crc32.Checksum(b[:footerChecksummed], castagnoli) != binary.LittleEndian.Uint32(b[footerChecksummed:]) {
		return footer{}, corruptf(off, "footer checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(b[40:]); v != formatVersion {
		return footer{}, &VersionError{Version: v}
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
	ft := footer{top: handle{u(0), u(1)}, filter: handle{u(2), u(3)}, count: int64(u(4))}
	if ft.count < 0 {
		return footer{}, corruptf(off, "footer claims %d records", u(4))
	}
	return ft, nil
}

// readAt fills b from offset off of the file.
func (t *Table) readAt(b []byte, off int64) error {
	n, err := t.f.ReadAt(b, off)
	switch {
	case n == len(b):
		return nil
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return corruptf(off, "file ends within the %d bytes read there", len(b))
	case err == nil:
		err = io.ErrNoProgress
	}
	return fmt.Errorf("sstable: reading %d bytes at offset %d: %w", len(b), off, err)
}

// readRaw reads the block h, which must end at or before limit, and
// checks its checksum. It returns the block without its trailer, in a
// slice whose capacity includes the trailer.
func (t *Table) readRaw(h handle, limit uint64) ([]byte, error) {
	if h.off > limit || h.len > limit-h.off || blockTrailer > limit-h.off-h.len {
		return nil, corruptf(int64(min(h.off, uint64(t.size))), "block of %d bytes at offset %d runs past offset %d", h.len, h.off, limit)
	}
	b := make([]byte, h.len+blockTrailer)
	if err := t.readAt(b, int64(h.off)); err != nil {
		return nil, err
	}
	data := b[:h.len]
	if crc32.Checksum(data, castagnoli) != binary.LittleEndian.Uint32(b[h.len:]) {
		return nil, corruptf(int64(h.off), "block checksum mismatch")
	}
	return data, nil
}

// readBlock returns the data or second-level index block h, from the
// cache if it is there.
func (t *Table) readBlock(h handle) (*block, error) {
	if b := t.cache.get(t.id, h.off); b != nil {
		return b, nil
	}
	raw, err := t.readRaw(h, t.blocksEnd)
	if err != nil {
		return nil, err
	}
	b, err := parseBlock(raw, int64(h.off))
	if err != nil {
		return nil, err
	}
	return t.cache.put(t.id, h.off, b), nil
}

// child returns the block named by the handle that is the current value
// of the index iterator it.
func (t *Table) child(it *blockIter) (*block, error) {
	h, err := decodeHandle(it.val, it.b.off+int64(it.off))
	if err != nil {
		return nil, err
	}
	return t.readBlock(h)
}

// Get returns the value of key, and whether the table holds key. The
// value is a copy the caller may keep.
func (t *Table) Get(key []byte) (value []byte, ok bool, err error) {
	if !t.filter.mayContain(key) {
		return nil, false, nil
	}
	var it blockIter
	it.init(t.top)
	for range 2 { // the top-level index, then a second-level one
		if !it.seekGE(key) {
			return nil, false, it.err
		}
		b, err := t.child(&it)
		if err != nil {
			return nil, false, err
		}
		it.init(b)
	}
	if !it.seekGE(key) || !bytes.Equal(it.key, key) {
		return nil, false, it.err
	}
	return append(make([]byte, 0, len(it.val)), it.val...), true, nil
}

// Count returns the number of records in the table.
func (t *Table) Count() int64 { return t.count }

// Size returns the size of the table's file.
func (t *Table) Size() int64 { return t.size }

// MemBytes returns the number of bytes the table keeps in memory outside
// the cache: its top-level index and its bloom filter.
func (t *Table) MemBytes() int64 {
	return int64(cap(t.top.data) + cap(t.filter))
}

// Close closes the table's file. Using the table, or an Iter of it, after
// Close is a bug, as is closing it while other goroutines still use it.
func (t *Table) Close() error {
	return t.f.Close()
}
