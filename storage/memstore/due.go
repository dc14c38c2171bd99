package memstore

import "sort"

// dueIndex files escrows by NextDue. Most keys live in a tree. The keys a
// store files in bulk as it loads (FileDue, in order) go to a sorted
// slice beside it instead: a store that loads millions of timers of the
// escrows it evicted, whose rating windows are still open, spends one
// allocation on them where a tree spends one per few keys, and an Open
// that took half a second for two million timers takes a few milliseconds.
//
// The slice is never written where a snapshot can read it: snapshots share
// it, a load appends past their end, and keys leave it by moving head past
// them, or, when they leave out of order, by going into gone until head
// passes them. A key is in at most one of the tree and the slice.
type dueIndex struct {
	tree[timeKey]
	bulk blocks        // sorted; the keys before bulk.at(head) have left the index
	head int           // see bulk
	gone tree[timeKey] // keys of bulk from head on that have left the index

	// head and bulk.n when the running transaction began
	headWas, nWas int
}

// blocks is a slice of keys kept in blocks of a fixed size, so that it
// grows without copying what it holds.
type blocks struct {
	b [][]timeKey
	n int // keys held
}

const blockLen = 4096

func (b *blocks) at(i int) timeKey { return b.b[i/blockLen][i%blockLen] }

// push puts k on the end. A block past n, left by a rollback, is reused:
// no snapshot reads past its own n, which is never more than the live n
// of a committed transaction.
func (b *blocks) push(k timeKey) {
	if b.n/blockLen == len(b.b) {
		b.b = append(b.b, make([]timeKey, blockLen))
	}
	b.b[b.n/blockLen][b.n%blockLen] = k
	b.n++
}

func newDueIndex() dueIndex {
	return dueIndex{tree: newTree(timeKey.less), gone: newTree(timeKey.less)}
}

// find reports whether k is in bulk from head on, gone or not.
func (d *dueIndex) find(k timeKey) bool {
	i := d.head + sort.Search(d.bulk.n-d.head, func(i int) bool { return !d.bulk.at(d.head + i).less(k) })
	return i < d.bulk.n && d.bulk.at(i) == k
}

func (d *dueIndex) isGone(k timeKey) bool {
	if d.gone.len() == 0 {
		return false
	}
	_, ok := d.gone.get(k)
	return ok
}

// set files k.
func (d *dueIndex) set(k timeKey) {
	if d.find(k) {
		d.gone.delete(k)
		return
	}
	d.tree.set(k)
}

// delete takes k out, if it is filed.
func (d *dueIndex) delete(k timeKey) {
	if _, ok := d.tree.get(k); ok || !d.find(k) {
		d.tree.delete(k)
		return
	}
	d.gone.set(k)
	for d.head < d.bulk.n && d.isGone(d.bulk.at(d.head)) {
		d.gone.delete(d.bulk.at(d.head))
		d.head++
	}
}

// file files k as a store loads its timers: on the end of the slice when
// it sorts after every key there, else as set does.
func (d *dueIndex) file(k timeKey) {
	if n := d.bulk.n; n > d.head && !d.bulk.at(n-1).less(k) {
		d.set(k)
		return
	}
	if _, ok := d.tree.get(k); ok {
		return
	}
	d.bulk.push(k)
}

// scan calls fn with the keys in order until fn returns false.
func (d *dueIndex) scan(fn func(timeKey) bool) {
	if d.head == d.bulk.n {
		d.bt.Scan(fn)
		return
	}
	it := d.bt.Iter()
	defer it.Release()
	ok := it.First()
	i := d.head
	for {
		for i < d.bulk.n && d.isGone(d.bulk.at(i)) {
			i++
		}
		var k timeKey
		switch {
		case ok && (i == d.bulk.n || it.Item().less(d.bulk.at(i))):
			k = it.Item()
			ok = it.Next()
		case i < d.bulk.n:
			k = d.bulk.at(i)
			i++
		default:
			return
		}
		if !fn(k) {
			return
		}
	}
}

func (d *dueIndex) commit() {
	d.tree.commit()
	d.gone.commit()
	if d.head == d.bulk.n {
		d.bulk, d.head = blocks{}, 0 // every key left: free the blocks
	}
	d.headWas, d.nWas = d.head, d.bulk.n
}

func (d *dueIndex) rollback() {
	d.tree.rollback()
	d.gone.rollback()
	d.head, d.bulk.n = d.headWas, d.nWas
}

func (d *dueIndex) snapshot(prev dueIndex) dueIndex {
	return dueIndex{
		tree: d.tree.snapshot(prev.tree),
		bulk: blocks{d.bulk.b[:len(d.bulk.b):len(d.bulk.b)], d.bulk.n},
		head: d.head,
		gone: d.gone.snapshot(prev.gone),
	}
}
