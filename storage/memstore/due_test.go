package memstore

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestDueIndex runs random writes, commits, rollbacks and snapshots on a
// due index whose keys were mostly filed in bulk, and compares every scan,
// of the live index and of each snapshot, with a plain set of keys.
func TestDueIndex(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		key := func() timeKey {
			n := rng.IntN(300)
			return timeKey{int64(n / 3), "e" + strconv.Itoa(n)}
		}
		d := newDueIndex()
		model := map[timeKey]bool{}
		// The load: a few keys set first, as a store's live escrows are,
		// then keys in order, some of them twice or already set.
		for range 10 {
			k := key()
			d.set(k)
			model[k] = true
		}
		var loaded []timeKey
		for range 200 {
			loaded = append(loaded, key())
		}
		slices.SortFunc(loaded, func(a, b timeKey) int { return cmpKeys(a, b) })
		for i, k := range loaded {
			if i%17 == 5 {
				k = loaded[i/2]
			}
			d.file(k)
			model[k] = true
		}
		d.commit()
		if d.bulk.n < 100 {
			t.Fatalf("seed %d: %d keys in bulk, want most of them", seed, d.bulk.n)
		}
		committed := clone(model)
		type snap struct {
			d     dueIndex
			model map[timeKey]bool
		}
		var snaps []snap
		prev := d.snapshot(dueIndex{})
		for step := range 2000 {
			switch r := rng.IntN(20); {
			case r < 8:
				k := key()
				d.delete(k)
				delete(model, k)
			case r < 14:
				k := key()
				d.set(k)
				model[k] = true
			case r < 16:
				d.commit()
				committed = clone(model)
			case r < 17:
				d.rollback()
				model = clone(committed)
			case r < 18:
				d.commit()
				committed = clone(model)
				prev = d.snapshot(prev)
				snaps = append(snaps, snap{prev, clone(model)})
			default:
				// Take a run of the earliest keys out, as firing timers do.
				for range rng.IntN(20) {
					var first timeKey
					found := false
					d.scan(func(k timeKey) bool { first, found = k, true; return false })
					if !found {
						break
					}
					d.delete(first)
					delete(model, first)
				}
			}
			checkDue(t, seed, step, "live", &d, model)
		}
		for i, s := range snaps {
			checkDue(t, seed, i, "snapshot", &s.d, s.model)
		}
	}
}

func cmpKeys(a, b timeKey) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

func clone(m map[timeKey]bool) map[timeKey]bool {
	c := make(map[timeKey]bool, len(m))
	for k := range m {
		c[k] = true
	}
	return c
}

func checkDue(t *testing.T, seed uint64, step int, what string, d *dueIndex, model map[timeKey]bool) {
	t.Helper()
	var got []timeKey
	d.scan(func(k timeKey) bool { got = append(got, k); return true })
	var want []timeKey
	for k := range model {
		want = append(want, k)
	}
	slices.SortFunc(want, cmpKeys)
	if !slices.Equal(got, want) {
		t.Fatalf("seed %d, step %d, %s: scan gives %d keys %v\nwant %d keys %v", seed, step, what, len(got), got, len(want), want)
	}
	// A scan stopped early gives the first keys.
	if len(want) > 3 {
		var first []timeKey
		d.scan(func(k timeKey) bool { first = append(first, k); return len(first) < 3 })
		if !slices.Equal(first, want[:3]) {
			t.Fatalf("seed %d, step %d, %s: a scan of 3 gives %v, want %v", seed, step, what, first, want[:3])
		}
	}
}
