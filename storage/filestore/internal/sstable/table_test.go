package sstable

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	gen := func(n, blockSize int) []record {
		return genRecords(rand.New(rand.NewPCG(1, uint64(n))), n, blockSize)
	}
	all := []int64{-1, 0, 8 << 10, 1 << 30}
	for _, tc := range []struct {
		name string
		recs []record
		opts *WriterOptions
		// minIndexBlocks is the fewest second-level index blocks the
		// table must have for the test to exercise both index levels.
		minIndexBlocks int
		// caches are the sizes of the caches to read the table
		// through; -1 means none.
		caches []int64
	}{
		{"tiny blocks", gen(3000, 64), &WriterOptions{BlockSize: 64}, 50, all},
		{"tiny blocks no filter", gen(1000, 64), &WriterOptions{BlockSize: 64, BloomBitsPerKey: -1}, 20, all},
		{"one-byte blocks", gen(300, 1), &WriterOptions{BlockSize: 1}, 50, all},
		{"default", gen(2000, defaultBlockSize), nil, 1, []int64{0, 64 << 10, 1 << 30}},
		// Records large enough for several index blocks of the default
		// size, which hold over a thousand entries.
		{"default many", bigRecords(5000, 8000), nil, 2, []int64{1 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := build(t, tc.recs, tc.opts)
			for _, size := range tc.caches {
				var cache *Cache
				if size >= 0 {
					cache = NewCache(size)
				}
				tb := open(t, data, cache)
				if n := indexBlocks(tb); n < tc.minIndexBlocks {
					t.Fatalf("table has %d index blocks, want at least %d", n, tc.minIndexBlocks)
				}
				if tb.Size() != int64(len(data)) {
					t.Errorf("Size() = %d, want %d", tb.Size(), len(data))
				}
				checkTable(t, tb, tc.recs)
				if err := tb.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestEmptyTable(t *testing.T) {
	for _, opts := range []*WriterOptions{nil, {BloomBitsPerKey: -1}} {
		data := build(t, nil, opts)
		tb := open(t, data, NewCache(1<<20))
		checkTable(t, tb, nil)
		it := tb.NewIter()
		if it.Next() || it.Seek([]byte("a")) || it.Key() != nil || it.Value() != nil || it.Err() != nil {
			t.Error("iterator over an empty table found something")
		}
	}
}

func TestEmptyKey(t *testing.T) {
	recs := []record{{[]byte{}, []byte{}}, {[]byte{0}, []byte("zero")}, {[]byte{0, 0}, nil}}
	recs[2].value = []byte{}
	for _, bs := range []int{1, 0} {
		tb := open(t, build(t, recs, &WriterOptions{BlockSize: bs}), nil)
		checkTable(t, tb, recs)
	}
}

func TestAddOutOfOrder(t *testing.T) {
	for _, keys := range [][]string{
		{"b", "a"},
		{"a", "a"},
		{"a", "b", "b"},
		{"ab", "a"},
		{"", ""},
		{"a\x00", "a"},
	} {
		var buf bytes.Buffer
		w := NewWriter(&buf, nil)
		var err error
		for _, k := range keys {
			if err = w.Add([]byte(k), nil); err != nil {
				break
			}
		}
		if err == nil {
			t.Errorf("Add %q: no error", keys)
			continue
		}
		if !strings.Contains(err.Error(), "increasing") {
			t.Errorf("Add %q: error %q does not say why", keys, err)
		}
		if w.Add([]byte("zzz"), nil) == nil {
			t.Errorf("Add %q: a later Add succeeded", keys)
		}
		if w.Close() == nil {
			t.Errorf("Add %q: Close succeeded", keys)
		}
	}
}

func TestAddAfterClose(t *testing.T) {
	w := NewWriter(new(bytes.Buffer), nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Add([]byte("a"), nil) == nil {
		t.Error("Add after Close succeeded")
	}
}

func TestWriteError(t *testing.T) {
	w := NewWriter(failWriter{}, &WriterOptions{BlockSize: 16})
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = w.Add([]byte{byte(i)}, bytes.Repeat([]byte("x"), 20))
	}
	if err == nil {
		err = w.Close()
	}
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("error %v, want one wrapping %v", err, errDiskFull)
	}
	if w.Close() == nil {
		t.Error("Close after a write error succeeded")
	}
}

var errDiskFull = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errDiskFull }

func TestSeparator(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"abc", "abd", "abc"},
		{"abc", "abz", "abd"},
		{"abc\x05xyz", "abd", "abc\x06"},
		{"ab\xff\xffc", "ac", "ab\xff\xffd"},
		{"ab\xff\xff", "ac", "ab\xff\xff"},
		{"ab", "abc", "ab"},
		{"", "a", ""},
		{"escrow/000123/x", "escrow/000200", "escrow/00013"},
		{"escrow/000123/x", "escrow/000300", "escrow/0002"},
	} {
		if got := separator([]byte(tc.a), []byte(tc.b)); string(got) != tc.want {
			t.Errorf("separator(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for range 100000 {
		a := randKey(rng)
		b := randKey(rng)
		switch c := bytes.Compare(a, b); {
		case c == 0:
			continue
		case c > 0:
			a, b = b, a
		}
		a0 := bytes.Clone(a)
		s := separator(a, b)
		if bytes.Compare(a, s) > 0 || bytes.Compare(s, b) >= 0 || len(s) > len(a) {
			t.Fatalf("separator(%q, %q) = %q", a, b, s)
		}
		if !bytes.Equal(a, a0) {
			t.Fatalf("separator modified its argument")
		}
	}
}

// randKey returns a short key over a small alphabet, so that keys often
// share prefixes.
func randKey(rng *rand.Rand) []byte {
	k := make([]byte, rng.IntN(6))
	for i := range k {
		k[i] = []byte{0x00, 0x01, 0x7f, 0xfe, 0xff}[rng.IntN(5)]
	}
	return k
}

func TestGetReturnsCopy(t *testing.T) {
	recs := []record{{[]byte("a"), []byte("value")}}
	tb := open(t, build(t, recs, nil), NewCache(1<<20))
	v, _, _ := tb.Get([]byte("a"))
	v[0] = 'X'
	if v, _, _ := tb.Get([]byte("a")); string(v) != "value" {
		t.Fatalf("changing a value Get returned changed the table: %q", v)
	}
}

func TestOpenReadsLittle(t *testing.T) {
	recs := bigRecords(20000, 100)
	data := build(t, recs, &WriterOptions{BlockSize: 4 << 10})
	f := newMemFile(data)
	tb, err := Open(f, int64(len(data)), 1, NewCache(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if n := f.reads.Load(); n != 3 {
		t.Errorf("Open made %d reads, want 3 (footer, top-level index, filter)", n)
	}
	want := int64(footerSize + cap(tb.top.data) + cap(tb.filter))
	if n := f.bytes.Load(); n != want {
		t.Errorf("Open read %d bytes, want %d", n, want)
	}
	if tb.MemBytes() != want-footerSize {
		t.Errorf("MemBytes() = %d, want %d", tb.MemBytes(), want-footerSize)
	}
	filter := int64(len(recs)) * 10 / 8
	if m := tb.MemBytes(); m < filter || m > filter+int64(len(data))/100 {
		t.Errorf("MemBytes() = %d for %d records in %d bytes", m, len(recs), len(data))
	}

	// A Get reads an index block and a data block, once.
	f.reads.Store(0)
	for range 2 {
		if _, ok, err := tb.Get(recs[len(recs)/2].key); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if n := f.reads.Load(); n != 2 {
		t.Errorf("two Gets of one key made %d reads, want 2", n)
	}
}

func TestBloom(t *testing.T) {
	const n = 100000
	var hashes []uint64
	for i := range n {
		hashes = append(hashes, hash64(keyOf(i)))
	}
	f := bloom(appendBloom(nil, hashes, 10, everyKey))
	for i := range n {
		if !f.mayContain(keyOf(i)) {
			t.Fatalf("filter lacks key %d", i)
		}
	}
	fp := 0
	for i := n; i < 2*n; i++ {
		if f.mayContain(keyOf(i)) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.015 {
		t.Errorf("false positive rate %.4f with 10 bits per key, want about 0.01", rate)
	}
	if len(f) != n*10/8+bloomTrailer {
		t.Errorf("filter of %d bytes for %d keys at 10 bits", len(f), n)
	}
}

// TestHashStable pins hash64, which is part of the file format.
func TestHashStable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"", 0x952f14f1e8ddc491},
		{"a", 0xe87cce2ed77249d2},
		{"escrow/0000000001", 0xdb4817dd8be06d42},
		{"\x00\x00\x00\x00\x00\x00\x00\x00", 0xc0fa6639b22e38bc},
	} {
		if got := hash64([]byte(tc.in)); got != tc.want {
			t.Errorf("hash64(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

// keyOf returns a 16-byte key for i.
func keyOf(i int) []byte {
	var k [16]byte
	h := hash64([]byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)})
	for j := range k {
		k[j] = byte(h >> (8 * (j % 8)))
	}
	copy(k[8:], []byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	return k[:]
}

// TestFilterFirstBytes builds a table whose filter holds only the keys
// that begin with some bytes: a Get finds every key, in the filter or not,
// misses keys it does not hold, and Verify passes; the filter is as small
// as the keys it holds make it.
func TestFilterFirstBytes(t *testing.T) {
	var recs []record
	for i := range 20000 {
		for _, kind := range []byte("AEX") {
			recs = append(recs, record{append([]byte{kind}, keyOf(i)...), []byte{kind}})
		}
	}
	slices.SortFunc(recs, func(a, b record) int { return bytes.Compare(a.key, b.key) })
	all := open(t, build(t, recs, nil), nil)
	some := open(t, build(t, recs, &WriterOptions{FilterFirstBytes: []byte("E")}), nil)
	if got, want := len(some.filter), len(all.filter)/3; got > want+100 || got < want-100 {
		t.Errorf("filter of %d bytes over a third of the keys, want about %d", got, want)
	}
	checkTable(t, some, recs)
	if err := some.Verify(); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []byte("AEXZ") {
		v, ok, err := some.Get(append([]byte{kind}, keyOf(20001)...))
		if err != nil || ok {
			t.Errorf("Get of a missing %q key: %q, %v, %v", kind, v, ok, err)
		}
	}
	if some.filter.mayContain([]byte("E"+string(keyOf(20001)))) && some.filter.mayContain([]byte("E"+string(keyOf(20002)))) &&
		some.filter.mayContain([]byte("E"+string(keyOf(20003)))) {
		t.Error("the filter holds three missing E keys: it does not filter them")
	}
	if !some.filter.mayContain([]byte("A" + string(keyOf(20001)))) {
		t.Error("the filter rules out a key it was not built over")
	}
}
