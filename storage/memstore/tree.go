package memstore

import "github.com/tidwall/btree"

// degree sets the size of the B-tree nodes: up to 2×degree-1 items each.
// Small nodes keep cheap the copy of a node that a writer makes when it
// first changes one a snapshot shares.
const degree = 16

// A tree is an ordered set of items that remembers how to undo the writes
// of the running transaction. Its B-tree copies in O(1): the copy and the
// original share every node until one of them changes it.
type tree[T any] struct {
	bt      *btree.BTreeG[T]
	undo    []change[T] // the running transaction's writes, oldest first
	changed bool        // written since the last copy
}

// A change undoes one write: it puts item back, or, if the write added
// item where there was none, takes it out.
type change[T any] struct {
	item    T
	restore bool
}

func newTree[T any](less func(a, b T) bool) tree[T] {
	opts := btree.Options{Degree: degree, NoLocks: true} // the Store locks
	return tree[T]{bt: btree.NewBTreeGOptions(less, opts), changed: true}
}

// set adds item, or replaces the item equal to it.
func (t *tree[T]) set(item T) {
	prev, had := t.bt.Set(item)
	if !had {
		prev = item
	}
	t.undo = append(t.undo, change[T]{prev, had})
	t.changed = true
}

// load is set for items that mostly come in order, such as those loaded
// from a sorted copy: one past the greatest goes on the end without a
// search.
func (t *tree[T]) load(item T) {
	prev, had := t.bt.Load(item)
	if !had {
		prev = item
	}
	t.undo = append(t.undo, change[T]{prev, had})
	t.changed = true
}

// delete removes the item equal to key, if there is one.
func (t *tree[T]) delete(key T) {
	if prev, had := t.bt.Delete(key); had {
		t.undo = append(t.undo, change[T]{prev, true})
		t.changed = true
	}
}

func (t *tree[T]) get(key T) (T, bool) { return t.bt.Get(key) }

func (t *tree[T]) len() int { return t.bt.Len() }

// rollback undoes the running transaction's writes, newest first.
func (t *tree[T]) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		if c := t.undo[i]; c.restore {
			t.bt.Set(c.item)
		} else {
			t.bt.Delete(c.item)
		}
	}
	t.commit()
}

// commit forgets the running transaction's writes, keeping the room
// their records took for the next transaction.
func (t *tree[T]) commit() {
	clear(t.undo)
	t.undo = t.undo[:0]
}

// snapshot returns the tree as it is now, for readers, who will never
// change it. If nothing changed since the copy in prev, it is that copy.
func (t *tree[T]) snapshot(prev tree[T]) tree[T] {
	if !t.changed {
		return prev
	}
	t.changed = false
	return tree[T]{bt: t.bt.Copy()}
}

// A table maps keys to records. Its tree holds rows that point to the
// records, so that nodes stay small to copy and to search. The writer
// finds a row by its key in a map as well, since a hash lookup costs a
// tenth of a search of the tree; readers search the tree of their snapshot.
//
// A record a snapshot may share is never changed: a write stores a new
// one. A record made since the table was last copied is the live table's
// alone, so a write changes it in place, sparing an allocation, and keeps
// the old value to undo it.
type table[K comparable, V any] struct {
	tree[row[K, V]]
	rows  map[K]row[K, V] // the live table's rows; nil in a snapshot
	epoch uint64          // copies made so far
	edits []edit[V]       // the running transaction's changes in place
}

// A row files a record under its key. An index holds rows too, pointing to
// the records of a table, ignoring epoch.
type row[K, V any] struct {
	key   K
	val   *V
	epoch uint64 // the table's epoch when the record was made
}

type edit[V any] struct {
	val *V
	old V
}

func newTable[K comparable, V any](compare func(a, b K) int) table[K, V] {
	return table[K, V]{tree: newTree(byKey[K, V](compare)), rows: map[K]row[K, V]{}}
}

// byKey orders rows by key.
func byKey[K, V any](compare func(a, b K) int) func(a, b row[K, V]) bool {
	return func(a, b row[K, V]) bool { return compare(a.key, b.key) < 0 }
}

func (t *table[K, V]) row(k K) (row[K, V], bool) {
	if t.rows != nil {
		r, ok := t.rows[k]
		return r, ok
	}
	return t.bt.Get(row[K, V]{key: k})
}

// get returns the record under k; the caller must not change it.
func (t *table[K, V]) get(k K) (*V, bool) {
	r, ok := t.row(k)
	return r.val, ok
}

// put stores v under k and returns where it is stored.
func (t *table[K, V]) put(k K, v V) *V {
	if r, ok := t.rows[k]; ok && r.epoch == t.epoch {
		t.edits = append(t.edits, edit[V]{r.val, *r.val})
		*r.val = v
		t.changed = true
		return r.val
	}
	r := row[K, V]{k, new(V), t.epoch}
	*r.val = v
	t.set(r)
	t.rows[k] = r
	return r.val
}

func (t *table[K, V]) delete(k K) {
	t.tree.delete(row[K, V]{key: k})
	delete(t.rows, k)
}

func (t *table[K, V]) rollback() {
	for i := len(t.edits) - 1; i >= 0; i-- {
		*t.edits[i].val = t.edits[i].old
	}
	for i := len(t.undo) - 1; i >= 0; i-- {
		if c := t.undo[i]; c.restore {
			t.rows[c.item.key] = c.item
		} else {
			delete(t.rows, c.item.key)
		}
	}
	t.tree.rollback()
	t.commit()
}

func (t *table[K, V]) commit() {
	clear(t.edits)
	t.edits = t.edits[:0]
	t.tree.commit()
}

func (t *table[K, V]) snapshot(prev table[K, V]) table[K, V] {
	if !t.changed {
		return prev
	}
	t.epoch++ // every record now may be shared
	return table[K, V]{tree: t.tree.snapshot(prev.tree)}
}

// pageLen is how many records a page of a seqLog holds.
const pageLen = 1024

// A seqLog holds records numbered 1, 2, … that are only ever appended:
// the journal and the events. A B-tree would do, but one fed in order
// leaves its nodes half full; a seqLog fills fixed pages, so that growing
// it never moves a record, and a copy shares every page: the writer only
// writes past the end that a copy sees.
type seqLog[T any] struct {
	pages    []*[pageLen]T
	n        int
	floor    int // records up to floor were evicted: see Evict
	appended int // by the running transaction
}

// at returns record seq, counting from 1.
func (l *seqLog[T]) at(seq uint64) *T {
	i := int(seq - 1)
	return &l.pages[i/pageLen][i%pageLen]
}

func (l *seqLog[T]) append(v T) {
	if l.n == len(l.pages)*pageLen {
		l.pages = append(l.pages, new([pageLen]T))
	}
	*l.at(uint64(l.n) + 1) = v
	l.n++
	l.appended++
}

func (l *seqLog[T]) rollback() {
	for ; l.appended > 0; l.appended-- {
		*l.at(uint64(l.n)) = *new(T) // drop what it holds
		l.n--
	}
}

func (l *seqLog[T]) commit() { l.appended = 0 }

func (l *seqLog[T]) snapshot(seqLog[T]) seqLog[T] {
	return seqLog[T]{pages: l.pages[:len(l.pages):len(l.pages)], n: l.n, floor: l.floor}
}
