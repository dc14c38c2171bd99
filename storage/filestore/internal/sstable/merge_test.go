package sstable

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	// Three tables over overlapping key ranges; each value names its
	// table, so the test sees which one a merged record came from.
	const tables = 3
	want := make(map[string]string)
	var its []*Iter
	for ti := range tables {
		var recs []record
		seen := make(map[string]bool)
		for range 400 {
			k := fmt.Sprintf("key%04d", rng.IntN(600))
			if seen[k] {
				continue
			}
			seen[k] = true
			v := fmt.Sprintf("t%d-%s", ti, k)
			recs = append(recs, record{[]byte(k), []byte(v)})
			if _, ok := want[k]; !ok {
				want[k] = v // the first table listed wins
			}
		}
		sort.Slice(recs, func(i, j int) bool { return bytes.Compare(recs[i].key, recs[j].key) < 0 })
		its = append(its, open(t, build(t, recs, &WriterOptions{BlockSize: 64}), NewCache(4<<10)).NewIter())
	}
	// An empty table among them changes nothing.
	its = append(its, open(t, build(t, nil, nil), nil).NewIter())
	var wantRecs []record
	for _, k := range slices.Sorted(maps.Keys(want)) {
		wantRecs = append(wantRecs, record{[]byte(k), []byte(want[k])})
	}

	m := NewMerge(its...)
	if got := collectMerge(m, m.Next()); !equalRecords(got, wantRecs) {
		t.Fatalf("Next on a new merge: %d records, want %d", len(got), len(wantRecs))
	}
	if got := collectMerge(m, m.First()); !equalRecords(got, wantRecs) {
		t.Fatalf("merge yields %d records, want %d (or not equal)", len(got), len(wantRecs))
	}
	for i := 0; i <= 650; i += 7 {
		key := []byte(fmt.Sprintf("key%04d", i))
		j := search(wantRecs, key)
		got := collectMerge(m, m.Seek(key))
		if !equalRecords(got, wantRecs[j:]) {
			t.Fatalf("Seek(%q): %d records, want %d", key, len(got), len(wantRecs)-j)
		}
	}
	if m.Seek([]byte("zzz")) || m.Key() != nil || m.Value() != nil || m.Next() {
		t.Error("merge found a record past the end")
	}
}

func TestMergeEmpty(t *testing.T) {
	m := NewMerge()
	if m.First() || m.Next() || m.Seek([]byte("a")) || m.Err() != nil {
		t.Error("merge of nothing found something")
	}
}

// TestMergeError checks that a damaged table stops the merge with its
// error.
func TestMergeError(t *testing.T) {
	var recs []record
	for i := range 200 {
		recs = append(recs, record{[]byte(fmt.Sprintf("k%04d", i)), []byte("value")})
	}
	good := build(t, recs, &WriterOptions{BlockSize: 64})
	bad := bytes.Clone(good)
	bad[len(bad)/3] ^= 1
	a := open(t, good, nil).NewIter()
	b := open(t, bad, nil).NewIter()
	m := NewMerge(a, b)
	for ok := m.First(); ok; ok = m.Next() {
	}
	mustCorrupt(t, "merge", m.Err())
	if m.Next() || m.First() || m.Key() != nil {
		t.Error("merge goes on after an error")
	}
}

func collectMerge(m *MergeIter, ok bool) []record {
	var got []record
	for ; ok; ok = m.Next() {
		got = append(got, record{slices.Clone(m.Key()), slices.Clone(m.Value())})
	}
	return got
}
