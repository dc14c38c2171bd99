package sstable

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

// The benchmarks share one table of benchRecords records with 16-byte
// random ids for keys and 200-byte values, written once to a temporary
// file (about 220 MB).
const (
	benchRecords  = 1_000_000
	benchValueLen = 200
)

var bench struct {
	once sync.Once
	dir  string
	path string
	keys [][]byte // in random order
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// benchTable returns the path of the benchmarks' table and its keys in a
// random order.
func benchTable(b *testing.B) (string, [][]byte) {
	bench.once.Do(func() {
		bench.dir, bench.err = os.MkdirTemp("", "sstable-bench-")
		if bench.err != nil {
			return
		}
		bench.path = filepath.Join(bench.dir, "table")
		bench.keys, bench.err = writeBenchTable(bench.path)
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.path, bench.keys
}

func writeBenchTable(path string) ([][]byte, error) {
	rng := rand.New(rand.NewPCG(11, 11))
	keys := make([][]byte, benchRecords)
	for i := range keys {
		keys[i] = randBytes(rng, 16)
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := NewWriter(bw, nil)
	value := randBytes(rng, benchValueLen)
	for i, k := range keys {
		if i > 0 && bytes.Equal(k, keys[i-1]) {
			continue // a 1 in 2^100 chance
		}
		value[0], value[1], value[2] = byte(i), byte(i>>8), byte(i>>16)
		if err := w.Add(k, value); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys, f.Close()
}

// openBench opens the benchmarks' table on cache.
func openBench(b *testing.B, cache *Cache) *Table {
	path, _ := benchTable(b)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	tb, err := Open(f, st.Size(), 1, cache)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tb.Close() })
	return tb
}

// BenchmarkGet reads random keys of the table: with a warm cache that
// holds the whole table, with a cache that holds nothing (each Get reads
// an index block and a data block, from the operating system's page
// cache), and keys the table does not hold, which the filter mostly
// rejects.
func BenchmarkGet(b *testing.B) {
	_, keys := benchTable(b)
	run := func(b *testing.B, tb *Table, keys [][]byte, present bool) {
		i := 0
		for b.Loop() {
			_, ok, err := tb.Get(keys[i%len(keys)])
			if err != nil || ok != present {
				b.Fatalf("Get: %v, %v", ok, err)
			}
			i++
		}
	}
	b.Run("warm", func(b *testing.B) {
		cache := NewCache(1 << 30)
		tb := openBench(b, cache)
		it := tb.NewIter()
		for ok := it.First(); ok; ok = it.Next() {
		}
		if it.Err() != nil {
			b.Fatal(it.Err())
		}
		run(b, tb, keys, true)
		b.ReportMetric(float64(cache.Stats().Bytes)/(1<<20), "cache-MB")
	})
	b.Run("cold", func(b *testing.B) {
		run(b, openBench(b, NewCache(0)), keys, true)
	})
	b.Run("absent", func(b *testing.B) {
		absent := make([][]byte, 10000)
		for i := range absent {
			absent[i] = append(bytes.Clone(keys[i]), 0) // 17 bytes: no key is that long
		}
		run(b, openBench(b, NewCache(1<<30)), absent, false)
	})
}

// BenchmarkOpen opens the table, as the store does for each of its
// tables when it starts, and reports what the open table holds in memory
// and the table's size on disk per record.
func BenchmarkOpen(b *testing.B) {
	path, _ := benchTable(b)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	var tb *Table
	for b.Loop() {
		if tb, err = Open(nopCloser{f}, st.Size(), 1, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tb.MemBytes()), "mem-bytes")
	b.ReportMetric(float64(tb.Size())/float64(tb.Count()), "disk-bytes/record")
	b.ReportMetric(float64(cap(tb.top.data)), "top-index-bytes")
	b.ReportMetric(float64(indexBlocks(tb)), "index-blocks")
}

type nopCloser struct{ io.ReaderAt }

func (nopCloser) Close() error { return nil }

// BenchmarkScan reads the whole table in order, through a small cache.
func BenchmarkScan(b *testing.B) {
	tb := openBench(b, NewCache(1<<20))
	b.SetBytes(tb.Size())
	for b.Loop() {
		it := tb.NewIter()
		n := int64(0)
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		if it.Err() != nil || n != tb.Count() {
			b.Fatalf("scanned %d of %d records: %v", n, tb.Count(), it.Err())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*tb.Count()), "ns/record")
}

// BenchmarkWrite writes 100,000 records like the benchmark table's to
// memory.
func BenchmarkWrite(b *testing.B) {
	_, keys := benchTable(b)
	sorted := slicesSorted(keys[:100000])
	value := make([]byte, benchValueLen)
	b.SetBytes(int64(len(sorted) * (16 + benchValueLen)))
	for b.Loop() {
		w := NewWriter(io.Discard, nil)
		for _, k := range sorted {
			if err := w.Add(k, value); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func slicesSorted(keys [][]byte) [][]byte {
	s := append([][]byte(nil), keys...)
	sort.Slice(s, func(i, j int) bool { return bytes.Compare(s[i], s[j]) < 0 })
	return s
}
