package sstable

import "bytes"

// A MergeIter walks several iterators as one, in key order. Where more
// than one holds a key, it yields the record of the one that comes first
// in the list given to NewMerge and skips the others: callers list the
// newest table first, so that its records shadow older ones. A MergeIter
// is used as an Iter is; it moves the iterators it merges, which the
// caller must not use meanwhile.
type MergeIter struct {
	its     []*Iter
	heap    []int // indexes into its of the iterators at a record, a min-heap
	started bool
	key     []byte // the current key, while the iterators move past it
	err     error
}

// NewMerge returns an iterator over the union of its, positioned before
// the first record, so Next behaves as First.
func NewMerge(its ...*Iter) *MergeIter {
	return &MergeIter{its: its, heap: make([]int, 0, len(its))}
}

// First moves to the first record and reports whether there is one.
func (m *MergeIter) First() bool {
	return m.Seek(nil)
}

// Seek moves to the first record whose key is >= key (the first record if
// key is nil) and reports whether there is one. It returns false after an
// error.
func (m *MergeIter) Seek(key []byte) bool {
	if m.err != nil {
		return false
	}
	m.started = true
	m.heap = m.heap[:0]
	for i, it := range m.its {
		if it.Seek(key) {
			m.heap = append(m.heap, i)
		} else if err := it.Err(); err != nil {
			return m.stop(err)
		}
	}
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return len(m.heap) > 0
}

// Next moves to the next record and reports whether there is one. It
// returns false after an error.
func (m *MergeIter) Next() bool {
	if m.err != nil {
		return false
	}
	if !m.started {
		return m.First()
	}
	if len(m.heap) == 0 {
		return false
	}
	// Move every iterator at the current key past it: the one yielding
	// it, and those it shadows.
	m.key = append(m.key[:0], m.Key()...)
	for len(m.heap) > 0 && bytes.Equal(m.its[m.heap[0]].Key(), m.key) {
		it := m.its[m.heap[0]]
		if !it.Next() {
			if err := it.Err(); err != nil {
				return m.stop(err)
			}
			m.pop()
			continue
		}
		m.down(0)
	}
	return len(m.heap) > 0
}

// Key returns the current record's key, or nil if the iterator is not at
// a record. It is valid until the next call to Seek, First or Next.
func (m *MergeIter) Key() []byte {
	if m.err != nil || len(m.heap) == 0 {
		return nil
	}
	return m.its[m.heap[0]].Key()
}

// Value returns the current record's value, or nil if the iterator is
// not at a record, and is valid as long as Key is.
func (m *MergeIter) Value() []byte {
	if m.err != nil || len(m.heap) == 0 {
		return nil
	}
	return m.its[m.heap[0]].Value()
}

// Err returns the error that stopped the iterator, if any.
func (m *MergeIter) Err() error {
	return m.err
}

// stop records err and returns false.
func (m *MergeIter) stop(err error) bool {
	m.err = err
	m.heap = m.heap[:0]
	return false
}

// less reports whether heap entry i comes before entry j: by key, and
// for equal keys by place in the argument list.
func (m *MergeIter) less(i, j int) bool {
	a, b := m.heap[i], m.heap[j]
	if c := bytes.Compare(m.its[a].Key(), m.its[b].Key()); c != 0 {
		return c < 0
	}
	return a < b
}

// down restores the heap order below entry i.
func (m *MergeIter) down(i int) {
	for {
		least := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(m.heap) && m.less(c, least) {
				least = c
			}
		}
		if least == i {
			return
		}
		m.heap[i], m.heap[least] = m.heap[least], m.heap[i]
		i = least
	}
}

// pop removes the heap's first entry.
func (m *MergeIter) pop() {
	last := len(m.heap) - 1
	m.heap[0] = m.heap[last]
	m.heap = m.heap[:last]
	m.down(0)
}
