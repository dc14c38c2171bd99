package sstable

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// restartInterval is the number of entries from one restart point to the
// next.
const restartInterval = 16

// blockTrailer is the size of the CRC-32C that follows every block.
const blockTrailer = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// corruptf returns an error wrapping ErrCorrupt that reports damage at
// file offset off.
func corruptf(off int64, format string, args ...any) error {
	return fmt.Errorf("%w: at offset %d: %s", ErrCorrupt, off, fmt.Sprintf(format, args...))
}

// A blockWriter builds a data or index block.
type blockWriter struct {
	buf      []byte
	restarts []uint32
	entries  int
	lastKey  []byte
}

// add appends an entry. key must sort after every key added since the
// last reset.
func (w *blockWriter) add(key, value []byte) {
	shared := 0
	if w.entries%restartInterval == 0 {
		w.restarts = append(w.restarts, uint32(len(w.buf)))
	} else {
		shared = commonPrefix(w.lastKey, key)
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(shared))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(key)-shared))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(value)))
	w.buf = append(w.buf, key[shared:]...)
	w.buf = append(w.buf, value...)
	w.lastKey = append(w.lastKey[:0], key...)
	w.entries++
}

// size returns the size the block would have if finished now, without
// its trailer.
func (w *blockWriter) size() int {
	return len(w.buf) + 4*len(w.restarts) + 4
}

// finish appends the restart array and trailer to the block and returns
// it. The result is valid until the next reset.
func (w *blockWriter) finish() []byte {
	for _, r := range w.restarts {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, r)
	}
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(w.restarts)))
	return binary.LittleEndian.AppendUint32(w.buf, crc32.Checksum(w.buf, castagnoli))
}

// reset empties the block for reuse.
func (w *blockWriter) reset() {
	w.buf = w.buf[:0]
	w.restarts = w.restarts[:0]
	w.entries = 0
	w.lastKey = w.lastKey[:0]
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// A block is a data or index block whose checksum has been checked and
// whose restart array has been located. It is immutable, so many
// iterators may share it.
type block struct {
	data      []byte // entries and restart array, without the count or trailer
	off       int64  // the block's offset in the file, for errors
	restarts  int    // offset of the restart array in data
	nrestarts int
}

// parseBlock locates the restart array of the block b, read from file
// offset off.
func parseBlock(b []byte, off int64) (*block, error) {
	if len(b) < 4 {
		return nil, corruptf(off, "block of %d bytes is too short", len(b))
	}
	n := binary.LittleEndian.Uint32(b[len(b)-4:])
	if uint64(n) > uint64(len(b)-4)/4 {
		return nil, corruptf(off, "block of %d bytes claims %d restart points", len(b), n)
	}
	blk := &block{data: b[:len(b)-4], off: off, nrestarts: int(n)}
	blk.restarts = len(blk.data) - 4*blk.nrestarts
	switch {
	case n == 0 && blk.restarts != 0:
		return nil, corruptf(off, "block has entries but no restart points")
	case n > 0 && blk.restartOffset(0) != 0:
		return nil, corruptf(off, "block's first restart point is not its first entry")
	}
	return blk, nil
}

// restartOffset returns the offset of restart point i, or -1 if it lies
// outside the entries.
func (b *block) restartOffset(i int) int {
	r := binary.LittleEndian.Uint32(b.data[b.restarts+4*i:])
	if uint64(r) >= uint64(b.restarts) {
		return -1
	}
	return int(r)
}

// check walks every entry of the block and reports whether the restart
// points fall on entries that store their whole key, in order, and keys
// strictly increase.
func (b *block) check() error {
	var it blockIter
	it.init(b)
	r, n := 0, 0
	var prev []byte
	for ; it.next(); n++ {
		if r < b.nrestarts && b.restartOffset(r) == it.off {
			if it.shared != 0 {
				return corruptf(b.off+int64(it.off), "restart point's entry shares %d key bytes", it.shared)
			}
			r++
		}
		if n > 0 && bytes.Compare(it.key, prev) <= 0 {
			return corruptf(b.off+int64(it.off), "key %.64q is not above the previous key %.64q", it.key, prev)
		}
		prev = append(prev[:0], it.key...)
	}
	if it.err != nil {
		return it.err
	}
	if r != b.nrestarts {
		return corruptf(b.off, "restart point %d does not fall on an entry in order", r)
	}
	return nil
}

// A blockIter walks the entries of one block. Its zero value, and one
// initialized with a nil block, holds no entries.
type blockIter struct {
	b       *block
	off     int    // offset of the current entry
	nextOff int    // offset of the entry after it
	shared  int    // the current entry's shared prefix length
	key     []byte // the current key, in a buffer the iterator owns
	val     []byte // the current value, within b.data
	err     error
}

// init positions the iterator before the first entry of b.
func (it *blockIter) init(b *block) {
	*it = blockIter{b: b, key: it.key[:0]}
}

// next moves to the next entry (the first after init) and reports
// whether there is one.
func (it *blockIter) next() bool {
	if it.b == nil || it.err != nil || it.nextOff >= it.b.restarts {
		it.val = nil
		return false
	}
	return it.decode(it.nextOff)
}

// decode reads the entry at offset p, whose key shares its prefix with
// it.key.
func (it *blockIter) decode(p int) bool {
	d := it.b.data[:it.b.restarts]
	q := p
	var f [3]uint64
	for i := range f {
		v, n := binary.Uvarint(d[q:])
		if n <= 0 {
			return it.corrupt(p, "bad varint in entry")
		}
		f[i] = v
		q += n
	}
	shared, unshared, vlen := f[0], f[1], f[2]
	switch {
	case shared > uint64(len(it.key)):
		return it.corrupt(p, "entry shares %d bytes of a %d-byte key", shared, len(it.key))
	case unshared > uint64(len(d)-q):
		return it.corrupt(p, "entry's key runs past the block's entries")
	case vlen > uint64(len(d)-q-int(unshared)):
		return it.corrupt(p, "entry's value runs past the block's entries")
	}
	k := q + int(unshared)
	end := k + int(vlen)
	if n := int(shared) + k - q; n > cap(it.key) {
		// Grow with room to spare, so that the short keys of an index
		// do not leave a buffer too small for the keys that follow.
		it.key = append(make([]byte, 0, max(2*n, 64)), it.key[:shared]...)
	}
	it.key = append(it.key[:shared], d[q:k]...)
	it.val = d[k:end:end]
	it.off, it.nextOff, it.shared = p, end, int(shared)
	return true
}

// corrupt records damage to the entry at offset p and returns false.
func (it *blockIter) corrupt(p int, format string, args ...any) bool {
	it.err = corruptf(it.b.off+int64(p), format, args...)
	it.val = nil
	return false
}

// restartKey returns the key stored whole at restart point i.
func (it *blockIter) restartKey(i int) ([]byte, bool) {
	p := it.b.restartOffset(i)
	if p < 0 {
		return nil, it.corrupt(it.b.restarts+4*i, "restart point %d lies outside the entries", i)
	}
	d := it.b.data[:it.b.restarts]
	shared, n1 := binary.Uvarint(d[p:])
	if n1 <= 0 || shared != 0 {
		return nil, it.corrupt(p, "restart point %d's entry does not store its whole key", i)
	}
	unshared, n2 := binary.Uvarint(d[p+n1:])
	if n2 <= 0 {
		return nil, it.corrupt(p, "bad varint in entry")
	}
	_, n3 := binary.Uvarint(d[p+n1+n2:])
	q := p + n1 + n2 + n3
	if n3 <= 0 || unshared > uint64(len(d)-q) {
		return nil, it.corrupt(p, "entry's key runs past the block's entries")
	}
	return d[q : q+int(unshared)], true
}

// seekGE moves to the first entry whose key is >= target and reports
// whether there is one. If there is none, the iterator is left at the
// end of the block.
func (it *blockIter) seekGE(target []byte) bool {
	b := it.b
	if b == nil || it.err != nil || b.nrestarts == 0 {
		return false
	}
	// Find the last restart point whose key is below target: every entry
	// before it is below target too.
	lo, hi := 0, b.nrestarts-1
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		k, ok := it.restartKey(mid)
		if !ok {
			return false
		}
		if bytes.Compare(k, target) < 0 {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	it.key = it.key[:0]
	for ok := it.decode(b.restartOffset(lo)); ok; ok = it.next() {
		if bytes.Compare(it.key, target) >= 0 {
			return true
		}
	}
	return false
}

// A handle locates a block: its offset in the file and its length, not
// counting the trailer.
type handle struct {
	off, len uint64
}

// end returns the offset just past the block's trailer.
func (h handle) end() uint64 {
	return h.off + h.len + blockTrailer
}

// appendHandle appends the encoding of h to dst.
func appendHandle(dst []byte, h handle) []byte {
	dst = binary.AppendUvarint(dst, h.off)
	return binary.AppendUvarint(dst, h.len)
}

// decodeHandle decodes the handle stored as the value of the index entry
// at file offset off.
func decodeHandle(v []byte, off int64) (handle, error) {
	o, n1 := binary.Uvarint(v)
	if n1 <= 0 {
		return handle{}, corruptf(off, "bad block handle in index entry")
	}
	l, n2 := binary.Uvarint(v[n1:])
	if n2 <= 0 || n1+n2 != len(v) {
		return handle{}, corruptf(off, "bad block handle in index entry")
	}
	return handle{o, l}, nil
}
