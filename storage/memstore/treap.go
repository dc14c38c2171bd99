package memstore

import "time"

// dueKey orders escrows in the due index: by deadline, then by ID.
type dueKey struct {
	at int64 // the deadline, as nanos returns it
	id string
}

// Bounds of the time range UnixNano can represent (years 1678 to 2262).
var earliest, latest = time.Unix(0, -1<<63), time.Unix(0, 1<<63-1)

// nanos returns t as UnixNano, clamped to the range UnixNano can represent,
// so that a far-future deadline or bound (the year 9999) sorts after every
// nearer one instead of wrapping around.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(earliest):
		return earliest.UnixNano()
	case t.After(latest):
		return latest.UnixNano()
	}
	return t.UnixNano()
}

func (a dueKey) less(b dueKey) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.id < b.id
}

// dueIndex is an ordered set of dueKeys: a treap, so inserts, deletes and
// the walk to the first due escrow cost O(log n) expected.
type dueIndex struct {
	root *node
	seed uint64
	free *node // deleted nodes kept for reuse, linked through right
}

type node struct {
	key         dueKey
	prio        uint64
	left, right *node
}

func (t *dueIndex) rand() uint64 {
	// xorshift64*: priorities need only be well spread, not secret.
	if t.seed == 0 {
		t.seed = 0x9E3779B97F4A7C15
	}
	t.seed ^= t.seed >> 12
	t.seed ^= t.seed << 25
	t.seed ^= t.seed >> 27
	return t.seed * 2685821657736338717
}

func (t *dueIndex) insert(k dueKey) { t.root = t.insertAt(t.root, k) }

func (t *dueIndex) insertAt(n *node, k dueKey) *node {
	if n == nil {
		return t.newNode(k)
	}
	switch {
	case k.less(n.key):
		n.left = t.insertAt(n.left, k)
		if n.left.prio > n.prio {
			n = rotateRight(n)
		}
	case n.key.less(k):
		n.right = t.insertAt(n.right, k)
		if n.right.prio > n.prio {
			n = rotateLeft(n)
		}
	}
	return n
}

// newNode returns a node for k, reusing a deleted one if there is one:
// escrows move through the index several times in their life, so reuse
// saves an allocation per move.
func (t *dueIndex) newNode(k dueKey) *node {
	n := t.free
	if n == nil {
		return &node{key: k, prio: t.rand()}
	}
	t.free = n.right
	*n = node{key: k, prio: t.rand()}
	return n
}

func (t *dueIndex) delete(k dueKey) { t.root = t.deleteAt(t.root, k) }

func (t *dueIndex) deleteAt(n *node, k dueKey) *node {
	if n == nil {
		return nil
	}
	switch {
	case k.less(n.key):
		n.left = t.deleteAt(n.left, k)
	case n.key.less(k):
		n.right = t.deleteAt(n.right, k)
	default:
		m := merge(n.left, n.right)
		*n = node{right: t.free}
		t.free = n
		return m
	}
	return n
}

// move changes key from, which must be in the index, to to. When to still
// sorts between from's neighbours the node keeps its place and only its
// key changes: the common case in a ranking, where a score moves a little
// with each rating.
func (t *dueIndex) move(from, to dueKey) {
	var lo, hi *node // the nearest keys below and above from
	n := t.root
	for n != nil && n.key != from {
		if from.less(n.key) {
			hi, n = n, n.left
		} else {
			lo, n = n, n.right
		}
	}
	if n == nil {
		t.insert(to)
		return
	}
	if m := n.left; m != nil {
		for m.right != nil {
			m = m.right
		}
		lo = m
	}
	if m := n.right; m != nil {
		for m.left != nil {
			m = m.left
		}
		hi = m
	}
	if (lo == nil || lo.key.less(to)) && (hi == nil || to.less(hi.key)) {
		n.key = to
		return
	}
	t.delete(from)
	t.insert(to)
}

// refile moves escrow id's entry from deadline from to deadline to; a zero
// deadline is no entry.
func (t *dueIndex) refile(id string, from, to time.Time) {
	switch {
	case from.Equal(to):
	case from.IsZero():
		t.insert(dueKey{nanos(to), id})
	case to.IsZero():
		t.delete(dueKey{nanos(from), id})
	default:
		t.move(dueKey{nanos(from), id}, dueKey{nanos(to), id})
	}
}

func merge(a, b *node) *node {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio > b.prio:
		a.right = merge(a.right, b)
		return a
	default:
		b.left = merge(a, b.left)
		return b
	}
}

func rotateRight(n *node) *node {
	l := n.left
	n.left, l.right = l.right, n
	return l
}

func rotateLeft(n *node) *node {
	r := n.right
	n.right, r.left = r.left, n
	return r
}

// due appends to out the IDs of at most limit keys not after t, in order.
func (t *dueIndex) due(at time.Time, limit int, out []string) []string {
	return t.upTo(nanos(at), limit, out)
}

// upTo appends to out the IDs of at most limit keys whose at is not after
// bound, in order.
func (t *dueIndex) upTo(bound int64, limit int, out []string) []string {
	var walk func(n *node) bool
	walk = func(n *node) bool {
		if n == nil {
			return true
		}
		if !walk(n.left) {
			return false
		}
		if n.key.at > bound || len(out) >= limit {
			return false
		}
		out = append(out, n.key.id)
		return walk(n.right)
	}
	walk(t.root)
	return out
}
