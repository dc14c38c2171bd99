package sstable

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// FuzzTable builds a table from the input and checks every way of
// reading it against the records it was built from; and it gives the
// input as it is to Open, Verify and the block and filter decoders, which
// must return errors, not panic.
func FuzzTable(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x07\x0a\x21a1\x32bb22\x10c\x43dddeee"))
	f.Add([]byte("\x01\x00\x10\x00\x10\x01\x11\x01\x01\x11\xff\xff\x30\xff\xff\xff"))
	long := []byte{0x05, 0x03}
	for i := range 200 {
		long = append(long, byte(i*37), byte(i), byte(i>>3), byte(i*7))
	}
	f.Add(long)
	f.Add(build(f, []record{{[]byte("a"), []byte("1")}, {[]byte("b"), nil}}, &WriterOptions{BlockSize: 8}))
	f.Add(build(f, nil, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzBuild(t, data)
		fuzzOpen(t, data)
		fuzzBlock(data)
	})
}

// fuzzBuild builds a table from data: its first two bytes choose the
// options, and the rest is records, each a byte giving the key's length
// (low four bits) and the value's (high four), then the key and the
// value.
func fuzzBuild(t *testing.T, data []byte) {
	if len(data) < 2 {
		return
	}
	opts := &WriterOptions{BlockSize: 1 + int(data[0]%128), BloomBitsPerKey: int(data[1]%16) - 2}
	m := make(map[string]string)
	for rest := data[2:]; len(rest) > 0; {
		kl, vl := int(rest[0]&15), int(rest[0]>>4)
		rest = rest[1:]
		kl = min(kl, len(rest))
		k := string(rest[:kl])
		rest = rest[kl:]
		vl = min(vl, len(rest))
		m[k] = string(rest[:vl])
		rest = rest[vl:]
	}
	var recs []record
	for _, k := range slices.Sorted(maps.Keys(m)) {
		recs = append(recs, record{[]byte(k), []byte(m[k])})
	}
	table := build(t, recs, opts)
	tb, err := Open(newMemFile(table), int64(len(table)), 1, NewCache(int64(len(data))))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	checkTable(t, tb, recs)

	// Damage one byte the input chooses: the damage must be found.
	pos := int(hash64(data) % uint64(len(table)))
	table[pos] ^= 1 << (data[0] % 8)
	tb, err = Open(newMemFile(table), int64(len(table)), 1, nil)
	if err == nil {
		err = tb.Verify()
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damage at offset %d of %d: error %v, want one wrapping ErrCorrupt", pos, len(table), err)
	}
}

// fuzzOpen opens data as a table and reads all of it.
func fuzzOpen(t *testing.T, data []byte) {
	tb, err := Open(newMemFile(data), int64(len(data)), 1, NewCache(4096))
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !strings.Contains(err.Error(), "version") {
			t.Fatalf("Open: %v, which neither wraps ErrCorrupt nor is about the version", err)
		}
		return
	}
	verr := tb.Verify()
	it := tb.NewIter()
	n := int64(0)
	for ok := it.First(); ok; ok = it.Next() {
		tb.Get(it.Key())
		n++
	}
	if verr == nil && (it.Err() != nil || n != tb.Count()) {
		t.Fatalf("Verify passed, but iterating found %d of %d records: %v", n, tb.Count(), it.Err())
	}
	for i := 0; i+4 <= len(data); i += 97 {
		tb.Get(data[i : i+4])
		it.Seek(data[i : i+4])
	}
}

// fuzzBlock decodes data as a block, a block handle and a filter.
func fuzzBlock(data []byte) {
	if b, err := parseBlock(data, 0); err == nil {
		b.check()
		var it blockIter
		it.init(b)
		for it.next() {
		}
		for i := 0; i+3 <= len(data); i += 13 {
			it.init(b)
			it.seekGE(data[i : i+3])
			it.next()
		}
	}
	decodeHandle(data, 0)
	if f, err := parseBloom(data, 0); err == nil {
		f.mayContain(data)
		f.mayContain(nil)
	}
}
