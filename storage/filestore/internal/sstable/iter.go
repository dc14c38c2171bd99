package sstable

// An Iter walks a table's records in key order. It is not safe for
// concurrent use; goroutines that share a table each use their own. It
// holds in memory at most one data block and one second-level index
// block of the table.
//
// Typical use:
//
//	it := t.NewIter()
//	for ok := it.Seek(k); ok; ok = it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil {
//		...
//	}
//
// An Iter stops at the first error, which Err then returns; every later
// call returns false. An Iter must not be used after its table is closed.
type Iter struct {
	t     *Table
	top   blockIter // over the table's top-level index
	idx   blockIter // over the current second-level index block
	data  blockIter // over the current data block
	valid bool
	err   error
}

// NewIter returns an iterator over the table. It is positioned before the
// first record, so Next behaves as First.
func (t *Table) NewIter() *Iter {
	it := &Iter{t: t}
	it.top.init(t.top)
	return it
}

// First moves to the table's first record and reports whether there is
// one.
func (it *Iter) First() bool {
	return it.Seek(nil)
}

// Seek moves to the first record whose key is >= key (the first record
// if key is nil) and reports whether there is one. It returns false
// after an error.
func (it *Iter) Seek(key []byte) bool {
	if it.err != nil {
		return false
	}
	it.top.init(it.t.top)
	it.idx.init(nil)
	it.data.init(nil)
	if !it.top.seekGE(key) {
		return it.stop(it.top.err)
	}
	if !it.descend(&it.top, &it.idx) {
		return false
	}
	if it.idx.seekGE(key) {
		if !it.descend(&it.idx, &it.data) {
			return false
		}
		if it.data.seekGE(key) {
			it.valid = true
			return true
		}
	}
	// Any record >= key is further on: the iterators at the end of their
	// blocks move to the next ones.
	return it.Next()
}

// Next moves to the next record and reports whether there is one. It
// returns false after an error.
func (it *Iter) Next() bool {
	if it.err != nil {
		return false
	}
	for !it.data.next() {
		if it.data.err != nil {
			return it.stop(it.data.err)
		}
		if !it.nextIndexEntry() {
			return false
		}
		if !it.descend(&it.idx, &it.data) {
			return false
		}
	}
	it.valid = true
	return true
}

// nextIndexEntry moves the second-level index iterator to its next
// entry, going on to the next index block at the end of one.
func (it *Iter) nextIndexEntry() bool {
	for !it.idx.next() {
		if it.idx.err != nil {
			return it.stop(it.idx.err)
		}
		if !it.top.next() {
			return it.stop(it.top.err)
		}
		if !it.descend(&it.top, &it.idx) {
			return false
		}
	}
	return true
}

// descend points child before the first entry of the block named by
// the current entry of the index iterator parent.
func (it *Iter) descend(parent, child *blockIter) bool {
	b, err := it.t.child(parent)
	if err != nil {
		return it.stop(err)
	}
	child.init(b)
	return true
}

// stop leaves the iterator unpositioned, recording err if it is not nil,
// and returns false.
func (it *Iter) stop(err error) bool {
	if err != nil {
		it.err = err
	}
	it.valid = false
	return false
}

// Key returns the current record's key, or nil if the iterator is not at
// a record. It is valid until the next call to Seek, First or Next; a
// caller that keeps it must copy it.
func (it *Iter) Key() []byte {
	if !it.valid {
		return nil
	}
	return it.data.key
}

// Value returns the current record's value, or nil if the iterator is
// not at a record, and is valid as long as Key is.
func (it *Iter) Value() []byte {
	if !it.valid {
		return nil
	}
	return it.data.val
}

// Err returns the error that stopped the iterator, if any.
func (it *Iter) Err() error {
	return it.err
}
