package memstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// treapModel is the due index as a sorted slice of distinct keys: too slow
// for the store, obviously right for a test.
type treapModel []dueKey

func compareDueKeys(a, b dueKey) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

func (m *treapModel) insert(k dueKey) {
	if i, found := slices.BinarySearchFunc(*m, k, compareDueKeys); !found {
		*m = slices.Insert(*m, i, k)
	}
}

func (m *treapModel) delete(k dueKey) {
	if i, found := slices.BinarySearchFunc(*m, k, compareDueKeys); found {
		*m = slices.Delete(*m, i, i+1)
	}
}

func (m treapModel) due(bound int64, limit int) []string {
	out := []string{}
	for _, k := range m {
		if k.at > bound || len(out) >= limit {
			break
		}
		out = append(out, k.id)
	}
	return out
}

// checkTreap fails the test unless the index holds exactly the model's keys
// in order, and every node's priority is at least its children's.
func checkTreap(t *testing.T, idx *dueIndex, model treapModel, step int) {
	t.Helper()
	var keys []dueKey
	var walk func(n *node)
	walk = func(n *node) {
		if n == nil {
			return
		}
		for _, c := range []*node{n.left, n.right} {
			if c != nil && c.prio > n.prio {
				t.Fatalf("step %d: child %v has priority %d above its parent %v's %d", step, c.key, c.prio, n.key, n.prio)
			}
		}
		walk(n.left)
		keys = append(keys, n.key)
		walk(n.right)
	}
	walk(idx.root)
	if !slices.Equal(keys, []dueKey(model)) {
		t.Fatalf("step %d: in-order keys\n%v\nwant\n%v", step, keys, model)
	}
}

func treapHeight(n *node) int {
	if n == nil {
		return 0
	}
	return 1 + max(treapHeight(n.left), treapHeight(n.right))
}

// TestDueIndexMatchesSortedModel applies a seeded random run of inserts and
// deletes (of present and absent keys, duplicates included) to the index
// and to a sorted slice, and after every step asks both for the due IDs
// under bounds and limits chosen to hit the edges: before everything, at a
// key's exact deadline, between deadlines, after everything, limits of zero,
// one, and more than there are keys.
func TestDueIndexMatchesSortedModel(t *testing.T) {
	steps := 3000
	if testing.Short() {
		steps = 1000
	}
	r := rand.New(rand.NewPCG(20260301, 1))
	const deadlines, ids = 64, 400 // few deadlines, so many keys tie on one
	second := int64(time.Second)
	randomKey := func() dueKey {
		return dueKey{at: int64(r.IntN(deadlines)) * second, id: fmt.Sprintf("e-%03d", r.IntN(ids))}
	}

	var idx dueIndex
	var model treapModel
	inserts, deletes, moves := 0, 0, 0
	for step := 0; step < steps; step++ {
		// Grow for the first half, then shrink, so the tree is exercised
		// both full and nearly empty.
		insertP := 70
		if step >= steps/2 {
			insertP = 30
		}
		switch p := r.IntN(100); {
		case p%5 == 1 && len(model) > 0:
			// Move a key, as a ranking does when a score changes: most
			// often a little, keeping its place; sometimes across others.
			from := model[r.IntN(len(model))]
			to := dueKey{at: from.at + int64(r.IntN(3)-1), id: from.id}
			if p%3 == 0 {
				to = randomKey()
			}
			if _, found := slices.BinarySearchFunc(model, to, compareDueKeys); found && to != from {
				continue // the index holds distinct keys: a move never lands on another
			}
			idx.move(from, to)
			model.delete(from)
			model.insert(to)
			moves++
		case p < insertP:
			k := randomKey()
			if p%10 == 0 && len(model) > 0 {
				k = model[r.IntN(len(model))] // a key already there: no duplicate
			}
			idx.insert(k)
			model.insert(k)
			inserts++
		default:
			k := randomKey() // usually absent: deleting it changes nothing
			if p%4 != 0 && len(model) > 0 {
				k = model[r.IntN(len(model))]
			}
			idx.delete(k)
			model.delete(k)
			deletes++
		}
		checkTreap(t, &idx, model, step)

		bounds := []int64{-1, 0, int64(r.IntN(deadlines)) * second, int64(r.IntN(deadlines))*second + second/2, deadlines * second}
		if len(model) > 0 {
			k := model[r.IntN(len(model))]
			bounds = append(bounds, k.at, k.at-1)
		}
		for _, bound := range bounds {
			for _, limit := range []int{0, 1, 1 + r.IntN(len(model)+1), len(model), len(model) + 5} {
				got := idx.due(time.Unix(0, bound), limit, []string{})
				want := model.due(bound, limit)
				if !slices.Equal(got, want) {
					t.Fatalf("step %d: due(%d, %d) = %v, want %v", step, bound, limit, got, want)
				}
			}
		}
	}
	if inserts < steps/4 || deletes < steps/4 || moves < steps/10 {
		t.Fatalf("the run made %d inserts, %d deletes and %d moves; the mix is not exercising them all", inserts, deletes, moves)
	}
}

// TestDueIndexStaysBalanced inserts deadlines in ascending order, which
// turns a plain binary search tree into a list, and checks that the treap's
// height stays logarithmic; then deletes every other key and checks again.
func TestDueIndexStaysBalanced(t *testing.T) {
	const n = 10000
	var idx dueIndex
	var model treapModel
	for i := range n {
		k := dueKey{at: int64(i) * int64(time.Minute), id: fmt.Sprintf("e-%05d", i)}
		idx.insert(k)
		model = append(model, k)
	}
	checkTreap(t, &idx, model, n)
	// The expected height of a treap is about 3 ln n (28 here); 60 leaves
	// room for an unlucky seed and still catches a degenerate tree.
	if h := treapHeight(idx.root); h > 60 {
		t.Fatalf("height %d after %d ascending inserts, want at most 60", h, n)
	}
	for i := 0; i < n; i += 2 {
		idx.delete(model[i])
	}
	var rest treapModel
	for i := 1; i < n; i += 2 {
		rest = append(rest, model[i])
	}
	checkTreap(t, &idx, rest, n+1)
	if h := treapHeight(idx.root); h > 60 {
		t.Fatalf("height %d after deleting half the keys, want at most 60", h)
	}
	got := idx.due(time.Unix(0, 10*int64(time.Minute)), 100, nil)
	if want := []string{"e-00001", "e-00003", "e-00005", "e-00007", "e-00009"}; !slices.Equal(got, want) {
		t.Fatalf("due at minute 10 = %v, want the odd minutes 1 to 9: %v", got, want)
	}
}
