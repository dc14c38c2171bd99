package sstable

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestCacheBounded(t *testing.T) {
	const blockSize = 1 << 10
	recs := bigRecords(20000, 100)
	data := build(t, recs, &WriterOptions{BlockSize: blockSize})
	// The largest block: a block is closed at blockSize, plus at most one
	// entry, plus its trailer.
	maxBlock := int64(blockSize+100+16+3*4+4) + cacheEntryOverhead

	for _, max := range []int64{0, 1, 3000, 16 << 10, 100 << 10} {
		c := NewCache(max)
		tb, err := Open(newMemFile(data), int64(len(data)), 9, c)
		if err != nil {
			t.Fatal(err)
		}
		check := func() {
			t.Helper()
			s := c.Stats()
			if s.MaxBytes != max || s.Bytes > s.MaxBytes || s.Bytes < 0 {
				t.Fatalf("cache of %d bytes: %+v", max, s)
			}
			if s.Blocks > 0 && s.Bytes < int64(s.Blocks)*cacheEntryOverhead {
				t.Fatalf("cache counts %d bytes for %d blocks", s.Bytes, s.Blocks)
			}
			if max >= maxBlock*4 && s.Bytes < max-maxBlock*2 {
				t.Fatalf("cache of %d bytes holds only %d after reading the table", max, s.Bytes)
			}
		}
		it := tb.NewIter()
		for ok := it.First(); ok; ok = it.Next() {
		}
		check()
		rng := rand.New(rand.NewPCG(8, 8))
		for range 5000 {
			r := recs[rng.IntN(len(recs))]
			if v, ok, err := tb.Get(r.key); err != nil || !ok || !bytes.Equal(v, r.value) {
				t.Fatalf("Get(%q): %v %v", r.key, ok, err)
			}
		}
		check()
	}
}

func TestCacheHits(t *testing.T) {
	recs := bigRecords(2000, 50)
	data := build(t, recs, &WriterOptions{BlockSize: 512})
	c := NewCache(1 << 30)
	tb, err := Open(newMemFile(data), int64(len(data)), 1, c)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s != (CacheStats{MaxBytes: 1 << 30}) {
		t.Fatalf("Open touched the cache: %+v", s)
	}
	for _, r := range recs {
		tb.Get(r.key)
	}
	first := c.Stats()
	if first.Misses == 0 || first.Blocks != int(first.Misses) {
		t.Fatalf("after one pass: %+v; every miss should have added a block", first)
	}
	for _, r := range recs {
		tb.Get(r.key)
	}
	second := c.Stats()
	if second.Misses != first.Misses || second.Hits != first.Hits+2*uint64(len(recs)) {
		t.Fatalf("second pass: %+v after %+v; want two hits per Get and no misses", second, first)
	}
	// A second table on the same cache has blocks of its own.
	tb2, err := Open(newMemFile(data), int64(len(data)), 2, c)
	if err != nil {
		t.Fatal(err)
	}
	tb2.Get(recs[0].key)
	if s := c.Stats(); s.Misses != second.Misses+2 {
		t.Fatalf("a table with another id found its blocks in the cache: %+v", s)
	}
}

// TestCacheLRU checks that the cache evicts the least recently used
// block.
func TestCacheLRU(t *testing.T) {
	blk := func() *block { return &block{data: make([]byte, 100)} }
	size := blockSize(blk())
	c := NewCache(3 * size)
	for off := range uint64(3) {
		c.put(1, off, blk())
	}
	c.get(1, 0) // 1 is now the least recently used
	c.put(1, 3, blk())
	for off, want := range []bool{true, false, true, true} {
		if got := c.get(1, uint64(off)) != nil; got != want {
			t.Errorf("block %d cached: %v, want %v", off, got, want)
		}
	}
	if s := c.Stats(); s.Bytes != 3*size || s.Blocks != 3 {
		t.Errorf("%+v, want 3 blocks of %d bytes", s, size)
	}
	// A block larger than the cache is not cached, and evicts nothing.
	big := &block{data: make([]byte, 4*size)}
	if c.put(1, 9, big) != big || c.get(1, 9) != nil || c.Stats().Blocks != 3 {
		t.Error("a block larger than the cache was cached")
	}
	// Putting a block twice keeps the first.
	first := c.get(1, 3)
	if c.put(1, 3, blk()) != first {
		t.Error("a second put replaced the cached block")
	}
}

// TestConcurrent reads one table from many goroutines through a small
// cache, so that blocks are evicted while others read them. Run it with
// -race.
func TestConcurrent(t *testing.T) {
	recs := genRecords(rand.New(rand.NewPCG(9, 9)), 3000, 128)
	data := build(t, recs, &WriterOptions{BlockSize: 128})
	c := NewCache(8 << 10)
	tb, err := Open(newMemFile(data), int64(len(data)), 1, c)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- reader(tb, recs, uint64(g))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Hits == 0 || s.Bytes > s.MaxBytes {
		t.Errorf("cache after concurrent reads: %+v", s)
	}
}

// reader checks a mix of Gets, seeks and scans of tb against recs.
func reader(tb *Table, recs []record, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 10))
	it := tb.NewIter()
	for range 300 {
		i := rng.IntN(len(recs))
		switch rng.IntN(3) {
		case 0:
			v, ok, err := tb.Get(recs[i].key)
			if err != nil || !ok || !bytes.Equal(v, recs[i].value) {
				return fmt.Errorf("Get(%q) = %q, %v, %v", recs[i].key, v, ok, err)
			}
		case 1:
			ok := it.Seek(recs[i].key)
			for j := i; j < min(i+20, len(recs)); j++ {
				if !ok || !bytes.Equal(it.Key(), recs[j].key) || !bytes.Equal(it.Value(), recs[j].value) {
					return fmt.Errorf("scan from %q: at %q, want %q", recs[i].key, it.Key(), recs[j].key)
				}
				ok = it.Next()
			}
		case 2:
			k := slices.Concat(recs[i].key, []byte{0})
			present := i+1 < len(recs) && bytes.Equal(recs[i+1].key, k)
			if _, ok, err := tb.Get(k); err != nil || ok != present {
				return fmt.Errorf("Get(%q) = %v, %v; want %v", k, ok, err, present)
			}
		}
	}
	return it.Err()
}
