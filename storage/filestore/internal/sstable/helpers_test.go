package sstable

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
)

// A record is one key/value pair of a test table.
type record struct {
	key, value []byte
}

// memFile is a File over a byte slice. It counts its reads.
type memFile struct {
	r      *bytes.Reader
	reads  atomic.Int64
	bytes  atomic.Int64
	closed atomic.Bool
}

func newMemFile(b []byte) *memFile {
	return &memFile{r: bytes.NewReader(b)}
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed.Load() {
		return 0, errors.New("read after close")
	}
	f.reads.Add(1)
	f.bytes.Add(int64(len(p)))
	return f.r.ReadAt(p, off)
}

func (f *memFile) Close() error {
	f.closed.Store(true)
	return nil
}

// build writes a table of recs, which must be sorted, and returns it.
func build(t testing.TB, recs []record, opts *WriterOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, opts)
	for _, r := range recs {
		if err := w.Add(r.key, r.value); err != nil {
			t.Fatalf("Add(%q): %v", r.key, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if w.Size() != int64(buf.Len()) {
		t.Fatalf("Size() = %d after Close, wrote %d bytes", w.Size(), buf.Len())
	}
	if w.Count() != int64(len(recs)) {
		t.Fatalf("Count() = %d, added %d", w.Count(), len(recs))
	}
	return buf.Bytes()
}

// open opens the table in data.
func open(t testing.TB, data []byte, cache *Cache) *Table {
	t.Helper()
	tb, err := Open(newMemFile(data), int64(len(data)), 1, cache)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return tb
}

// genRecords returns n records with sorted, distinct keys of many shapes:
// binary keys full of 0x00 and 0xff, keys longer than blockSize, keys
// sharing long prefixes, and empty, short and long values.
func genRecords(rng *rand.Rand, n, blockSize int) []record {
	seen := make(map[string]bool)
	var recs []record
	longPrefix := bytes.Repeat([]byte("history/escrow/"), 20)
	for len(recs) < n {
		var k []byte
		switch rng.IntN(10) {
		case 0, 1: // binary, mostly the extreme bytes
			k = make([]byte, 1+rng.IntN(12))
			for i := range k {
				k[i] = []byte{0x00, 0xff, 0x01, 0xfe, byte(rng.Uint32())}[rng.IntN(5)]
			}
		case 2: // longer than a block
			if rng.IntN(5) == 0 {
				k = append(slices.Clone(longPrefix), randBytes(rng, blockSize+rng.IntN(100))...)
			}
		case 3, 4: // a long shared prefix
			k = append(slices.Clone(longPrefix), randBytes(rng, rng.IntN(4))...)
		case 5: // text ids
			k = []byte("acct/" + string(rune('a'+rng.IntN(26))) + "/" + string(randBytes(rng, 3)))
		default: // 16-byte ids
			k = randBytes(rng, 16)
		}
		if k == nil || seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		var v []byte
		switch rng.IntN(8) {
		case 0: // empty
			v = []byte{}
		case 1: // longer than a block, now and then
			if rng.IntN(10) == 0 {
				v = randBytes(rng, blockSize+rng.IntN(50))
			}
		default:
			v = randBytes(rng, rng.IntN(60))
		}
		recs = append(recs, record{k, v})
	}
	sort.Slice(recs, func(i, j int) bool { return bytes.Compare(recs[i].key, recs[j].key) < 0 })
	return recs
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// probes returns keys near each record's key (just below, just above,
// prefixes, extensions) and beyond both ends of the table.
func probes(recs []record) [][]byte {
	ps := [][]byte{nil, {}, {0x00}, {0xff, 0xff, 0xff, 0xff}, bytes.Repeat([]byte{0xff}, 40)}
	for _, r := range recs {
		k := r.key
		ps = append(ps, append(slices.Clone(k), 0x00), append(slices.Clone(k), 0xff))
		if len(k) > 0 {
			ps = append(ps, k[:len(k)-1])
			up := slices.Clone(k)
			up[len(up)-1]++
			down := slices.Clone(k)
			down[len(down)-1]--
			ps = append(ps, up, down)
		}
	}
	return ps
}

// search returns the index of the first record whose key is >= key.
func search(recs []record, key []byte) int {
	return sort.Search(len(recs), func(i int) bool { return bytes.Compare(recs[i].key, key) >= 0 })
}

// checkTable checks every way of reading tb against recs.
func checkTable(t *testing.T, tb *Table, recs []record) {
	t.Helper()
	if tb.Count() != int64(len(recs)) {
		t.Errorf("Count() = %d, want %d", tb.Count(), len(recs))
	}
	if err := tb.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, r := range recs {
		v, ok, err := tb.Get(r.key)
		if err != nil || !ok || !bytes.Equal(v, r.value) {
			t.Fatalf("Get(%q) = %q, %v, %v; want %q, true, nil", r.key, v, ok, err, r.value)
		}
		if v == nil {
			t.Fatalf("Get(%q) returned a nil value", r.key)
		}
	}
	for _, p := range probes(recs) {
		i := search(recs, p)
		present := i < len(recs) && bytes.Equal(recs[i].key, p)
		v, ok, err := tb.Get(p)
		if err != nil || ok != present || (present && !bytes.Equal(v, recs[i].value)) {
			t.Fatalf("Get(%q) = %q, %v, %v; present=%v", p, v, ok, err, present)
		}
	}

	it := tb.NewIter()
	var got []record
	for ok := it.First(); ok; ok = it.Next() {
		got = append(got, record{slices.Clone(it.Key()), slices.Clone(it.Value())})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterating: %v", err)
	}
	if !equalRecords(got, recs) {
		t.Fatalf("iteration yields %d records, not the %d written (or not equal)", len(got), len(recs))
	}

	seek := func(key []byte) {
		t.Helper()
		i := search(recs, key)
		ok := it.Seek(key)
		for n := 0; n < 3; n++ {
			if want := i + n; want < len(recs) {
				if !ok || !bytes.Equal(it.Key(), recs[want].key) || !bytes.Equal(it.Value(), recs[want].value) {
					t.Fatalf("Seek(%q)+%d: at %q (%v), want %q", key, n, it.Key(), ok, recs[want].key)
				}
			} else if ok || it.Key() != nil {
				t.Fatalf("Seek(%q)+%d: at %q, want the end", key, n, it.Key())
			}
			ok = it.Next()
		}
		if err := it.Err(); err != nil {
			t.Fatalf("Seek(%q): %v", key, err)
		}
	}
	for _, r := range recs {
		seek(r.key)
	}
	for _, p := range probes(recs) {
		seek(p)
	}
}

func equalRecords(a, b []record) bool {
	return slices.EqualFunc(a, b, func(x, y record) bool {
		return bytes.Equal(x.key, y.key) && bytes.Equal(x.value, y.value)
	})
}

// indexBlocks returns the number of second-level index blocks of tb.
func indexBlocks(tb *Table) int {
	var it blockIter
	it.init(tb.top)
	n := 0
	for it.next() {
		n++
	}
	return n
}

// bigRecords returns n records with 16-byte keys and values of size vlen.
func bigRecords(n, vlen int) []record {
	recs := make([]record, n)
	for i := range recs {
		v := bytes.Repeat([]byte{byte(i)}, vlen)
		recs[i] = record{[]byte(fmt.Sprintf("id-%013d", i)), v}
	}
	return recs
}
