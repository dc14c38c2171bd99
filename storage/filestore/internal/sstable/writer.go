package sstable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Defaults for WriterOptions.
const (
	defaultBlockSize  = 16 << 10
	defaultBloomBits  = 10
	footerSize        = 56
	magic             = "escrowST"
	formatVersion     = 2
	footerChecksummed = 44 // the footer bytes its CRC covers
)

// WriterOptions tunes the tables a Writer writes. A nil *WriterOptions
// means the defaults.
type WriterOptions struct {
	// BlockSize is the size at which a data block, or a second-level
	// index block, is closed. 0 means 16 KiB. Larger blocks make the
	// index smaller and each read longer.
	BlockSize int

	// BloomBitsPerKey is the size of the bloom filter per key, in bits,
	// which an open table keeps in memory. 0 means 10 (a false positive
	// rate of about 1%); a negative value means no filter.
	BloomBitsPerKey int

	// FilterFirstBytes, if not nil, narrows the filter to the keys that
	// begin with one of its bytes: those a reader looks up one at a time.
	// A table whose other keys are only ever scanned keeps a smaller
	// filter in memory; a Get of another key finds, or misses, it by the
	// index alone. nil means every key.
	FilterFirstBytes []byte
}

// A Writer writes a table. Its keys must be added in strictly increasing
// order (bytes.Compare); values may be empty. Until Close it holds the
// blocks it is building and, for the filter, 8 bytes per key added. A
// Writer is not safe for concurrent use.
type Writer struct {
	w         io.Writer
	blockSize int
	bloomBits int
	filtered  firstBytes // the first bytes of the keys the filter holds

	data  blockWriter // the data block being built
	index blockWriter // the second-level index block being built
	top   blockWriter // the top-level index

	// pending is the handle of the data block last written, whose index
	// entry waits for the next key so that its separator can be short.
	pending    handle
	hasPending bool

	lastKey []byte
	hashes  []uint64 // of the keys the filter holds
	off     int64    // bytes written
	count   int64
	closed  bool
	err     error // sticky: the first error, after which the Writer is unusable
	scratch []byte
}

// NewWriter returns a Writer that writes a table to w.
func NewWriter(w io.Writer, opts *WriterOptions) *Writer {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.BlockSize <= 0 {
		o.BlockSize = defaultBlockSize
	}
	if o.BloomBitsPerKey == 0 {
		o.BloomBitsPerKey = defaultBloomBits
	}
	return &Writer{w: w, blockSize: o.BlockSize, bloomBits: o.BloomBitsPerKey, filtered: firstBytesOf(o.FilterFirstBytes)}
}

// Add adds a record. key must sort strictly after the key added before
// it; if it does not, or if writing fails, Add returns an error and the
// Writer is unusable from then on. Add copies what it keeps of key and
// value.
func (w *Writer) Add(key, value []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("sstable: Add after Close")
	}
	if w.count > 0 && bytes.Compare(key, w.lastKey) <= 0 {
		w.err = fmt.Errorf("sstable: key %.64q added after %.64q: keys must be strictly increasing", key, w.lastKey)
		return w.err
	}
	if w.hasPending {
		w.addIndexEntry(separator(w.lastKey, key))
	}
	w.data.add(key, value)
	w.lastKey = append(w.lastKey[:0], key...)
	if w.bloomBits > 0 && w.filtered.holds(key) {
		w.hashes = append(w.hashes, hash64(key))
	}
	w.count++
	if w.data.size() >= w.blockSize {
		w.flushData()
	}
	return w.err
}

// Close finishes the table: it writes the last data block, the index,
// the filter and the footer. It neither syncs nor closes the underlying
// writer. Close on a closed Writer returns the result of the first.
func (w *Writer) Close() error {
	if w.err != nil || w.closed {
		return w.err
	}
	w.closed = true
	if w.data.entries > 0 {
		w.flushData()
	}
	if w.hasPending {
		w.addIndexEntry(w.lastKey)
	}
	if w.index.entries > 0 {
		w.flushIndex()
	}
	var filter handle
	if w.bloomBits > 0 {
		b := appendBloom(w.scratch[:0], w.hashes, w.bloomBits, w.filtered)
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
		filter = w.write(b)
		w.hashes = nil
	}
	top := w.write(w.top.finish())
	w.write(appendFooter(nil, top, filter, w.count))
	return w.err
}

// Size returns the number of bytes written so far; after Close, the size
// of the table.
func (w *Writer) Size() int64 { return w.off }

// Count returns the number of records added.
func (w *Writer) Count() int64 { return w.count }

// flushData writes the data block being built.
func (w *Writer) flushData() {
	w.pending = w.write(w.data.finish())
	w.hasPending = true
	w.data.reset()
}

// addIndexEntry adds the index entry of the pending data block, with
// key sep.
func (w *Writer) addIndexEntry(sep []byte) {
	w.scratch = appendHandle(w.scratch[:0], w.pending)
	w.index.add(sep, w.scratch)
	w.hasPending = false
	if w.index.size() >= w.blockSize {
		w.flushIndex()
	}
}

// flushIndex writes the second-level index block being built and adds
// its entry to the top-level index.
func (w *Writer) flushIndex() {
	h := w.write(w.index.finish())
	w.scratch = appendHandle(w.scratch[:0], h)
	w.top.add(w.index.lastKey, w.scratch)
	w.index.reset()
}

// write writes b, a block and its trailer or the footer, and returns its
// handle.
func (w *Writer) write(b []byte) handle {
	h := handle{off: uint64(w.off), len: uint64(len(b) - blockTrailer)}
	if w.err != nil {
		return h
	}
	n, err := w.w.Write(b)
	w.off += int64(n)
	if err != nil {
		w.err = fmt.Errorf("sstable: writing at offset %d: %w", h.off, err)
	}
	return h
}

// appendFooter appends the footer to dst.
func appendFooter(dst []byte, top, filter handle, count int64) []byte {
	start := len(dst)
	for _, v := range []uint64{top.off, top.len, filter.off, filter.len, uint64(count)} {
		dst = binary.LittleEndian.AppendUint64(dst, v)
	}
	dst = binary.LittleEndian.AppendUint32(dst, formatVersion)
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	return append(dst, magic...)
}

// separator returns a short key S with a <= S < b, given a < b: the
// index key of a block whose last key is a, followed by a block whose
// first key is b.
func separator(a, b []byte) []byte {
	n := commonPrefix(a, b)
	if n == len(a) {
		return a // a is a prefix of b: nothing shorter will do
	}
	// a[n] < b[n]. a[:n] plus any byte in (a[n], b[n]) will do; failing
	// that, a[:i] plus a[i]+1 for the first i > n where a[i] < 0xff,
	// which is above a and still below b.
	if a[n]+1 < b[n] {
		return append(a[:n:n], a[n]+1)
	}
	for i := n + 1; i < len(a); i++ {
		if a[i] < 0xff {
			return append(a[:i:i], a[i]+1)
		}
	}
	return a
}
