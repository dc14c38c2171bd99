package sstable

import "bytes"

// Verify reads the whole table from its file, bypassing the cache, and
// checks it: every checksum; every block's structure; that keys are
// strictly increasing across the table and each lies in the range its
// index entries give it; that the filter holds every key it was built
// over; that the blocks
// tile the file in the order the format gives; and the record count. It
// reports the first damage it finds with an error wrapping ErrCorrupt.
func (t *Table) Verify() error {
	ft, err := t.readFooter()
	if err != nil {
		return err
	}
	v := verifier{t: t}
	top, err := v.block(ft.top)
	if err != nil {
		return err
	}
	var filter bloom
	if ft.filter.len > 0 {
		raw, err := t.readRaw(ft.filter, uint64(t.size))
		if err != nil {
			return err
		}
		if filter, err = parseBloom(raw, int64(ft.filter.off)); err != nil {
			return err
		}
	}
	var it blockIter
	it.init(top)
	for it.next() {
		if err := v.indexBlock(&it, filter); err != nil {
			return err
		}
	}
	if it.err != nil {
		return it.err
	}
	switch {
	case ft.filter.len > 0 && ft.filter.off != v.pos:
		return corruptf(int64(ft.filter.off), "filter found where offset %d was expected", v.pos)
	case ft.filter.len > 0:
		v.pos = ft.filter.end()
	}
	switch {
	case ft.top.off != v.pos:
		return corruptf(int64(ft.top.off), "top-level index found where offset %d was expected", v.pos)
	case ft.top.end() != uint64(t.size-footerSize):
		return corruptf(int64(ft.top.off), "top-level index does not end at the footer")
	case v.count != ft.count:
		return corruptf(t.size-footerSize, "footer claims %d records; the table holds %d", ft.count, v.count)
	}
	return nil
}

// A verifier carries Verify's walk through the table.
type verifier struct {
	t       *Table
	pos     uint64 // where the next data or index block should start
	count   int64
	lastKey []byte // the last key seen, if seenKey
	lastSep []byte // the index key of the last data block seen, if seenSep
	seenKey bool
	seenSep bool
}

// block reads and checks the block h.
func (v *verifier) block(h handle) (*block, error) {
	raw, err := v.t.readRaw(h, uint64(v.t.size))
	if err != nil {
		return nil, err
	}
	b, err := parseBlock(raw, int64(h.off))
	if err != nil {
		return nil, err
	}
	return b, b.check()
}

// indexBlock checks the second-level index block named by the current
// entry of top, and its data blocks.
func (v *verifier) indexBlock(top *blockIter, filter bloom) error {
	h, err := decodeHandle(top.val, top.b.off+int64(top.off))
	if err != nil {
		return err
	}
	b, err := v.block(h)
	if err != nil {
		return err
	}
	var it blockIter
	it.init(b)
	for it.next() {
		sep := it.key
		if v.seenSep && bytes.Compare(sep, v.lastSep) <= 0 {
			return corruptf(b.off+int64(it.off), "index key %.64q is not above the previous one %.64q", sep, v.lastSep)
		}
		if err := v.dataBlock(&it, filter); err != nil {
			return err
		}
		v.lastSep = append(v.lastSep[:0], sep...)
		v.seenSep = true
	}
	switch {
	case it.err != nil:
		return it.err
	case b.nrestarts == 0:
		return corruptf(b.off, "empty index block")
	case !bytes.Equal(top.key, v.lastSep):
		return corruptf(top.b.off+int64(top.off), "top-level index key %.64q is not its block's last key %.64q", top.key, v.lastSep)
	case h.off != v.pos:
		return corruptf(int64(h.off), "index block found where offset %d was expected", v.pos)
	}
	v.pos = h.end()
	return nil
}

// dataBlock checks the data block named by the current entry of the
// index iterator idx, whose keys must lie above v.lastSep and at or
// below the entry's key.
func (v *verifier) dataBlock(idx *blockIter, filter bloom) error {
	h, err := decodeHandle(idx.val, idx.b.off+int64(idx.off))
	if err != nil {
		return err
	}
	if h.off != v.pos {
		return corruptf(int64(h.off), "data block found where offset %d was expected", v.pos)
	}
	b, err := v.block(h)
	if err != nil {
		return err
	}
	var it blockIter
	it.init(b)
	for it.next() {
		at := b.off + int64(it.off)
		switch {
		case v.seenKey && bytes.Compare(it.key, v.lastKey) <= 0:
			return corruptf(at, "key %.64q is not above the previous key %.64q", it.key, v.lastKey)
		case v.seenSep && bytes.Compare(it.key, v.lastSep) <= 0:
			return corruptf(at, "key %.64q is not above the previous block's index key %.64q", it.key, v.lastSep)
		case bytes.Compare(it.key, idx.key) > 0:
			return corruptf(at, "key %.64q is above its block's index key %.64q", it.key, idx.key)
		case !filter.mayContain(it.key):
			return corruptf(at, "the filter does not hold key %.64q", it.key)
		}
		v.lastKey = append(v.lastKey[:0], it.key...)
		v.seenKey = true
		v.count++
	}
	switch {
	case it.err != nil:
		return it.err
	case b.nrestarts == 0:
		return corruptf(b.off, "empty data block")
	}
	v.pos = h.end()
	return nil
}
