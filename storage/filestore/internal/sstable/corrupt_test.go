package sstable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// readAll reads every record of tb through an iterator and every record
// of recs through Get, and returns the first error. It fails the test if
// either returns a wrong answer without an error.
func readAll(t *testing.T, tb *Table, recs []record) (iterErr, getErr error) {
	t.Helper()
	it := tb.NewIter()
	i := 0
	for ok := it.First(); ok; ok = it.Next() {
		if i >= len(recs) || !bytes.Equal(it.Key(), recs[i].key) || !bytes.Equal(it.Value(), recs[i].value) {
			t.Fatalf("iteration yields %q=%q at record %d without an error", it.Key(), it.Value(), i)
		}
		i++
	}
	iterErr = it.Err()
	if iterErr == nil && i != len(recs) {
		t.Fatalf("iteration yields %d records of %d without an error", i, len(recs))
	}
	for _, r := range recs {
		v, ok, err := tb.Get(r.key)
		if err != nil {
			getErr = cmpOr(getErr, err)
			continue
		}
		if !ok || !bytes.Equal(v, r.value) {
			t.Fatalf("Get(%q) = %q, %v without an error, want %q", r.key, v, ok, r.value)
		}
	}
	for _, p := range probes(recs) {
		if i := search(recs, p); i < len(recs) && bytes.Equal(recs[i].key, p) {
			continue
		}
		_, ok, err := tb.Get(p)
		if err == nil && ok {
			t.Fatalf("Get(%q) found a key the table does not hold", p)
		}
		getErr = cmpOr(getErr, err)
	}
	return iterErr, getErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func mustCorrupt(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: error %v, want one wrapping ErrCorrupt", what, err)
	}
	if !strings.Contains(err.Error(), "offset") {
		t.Fatalf("%s: error %q does not give the offset", what, err)
	}
}

// TestCorruptEveryByte damages each byte of a small table in turn: Open
// must fail, or else Verify and iteration must, and no read may return a
// wrong answer.
func TestCorruptEveryByte(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	var recs []record
	for len(recs) < 40 {
		k := randBytes(rng, 1+rng.IntN(6))
		if i := search(recs, k); i == len(recs) || !bytes.Equal(recs[i].key, k) {
			recs = slices.Insert(recs, i, record{k, randBytes(rng, rng.IntN(8))})
		}
	}
	for _, opts := range []*WriterOptions{{BlockSize: 48}, {BlockSize: 48, BloomBitsPerKey: -1}} {
		data := build(t, recs, opts)
		openFailed, laterFailed := 0, 0
		for i := range data {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				bad := bytes.Clone(data)
				bad[i] ^= mask
				tb, err := Open(newMemFile(bad), int64(len(bad)), 1, NewCache(1<<20))
				if err != nil {
					mustCorrupt(t, "Open", err)
					openFailed++
					continue
				}
				laterFailed++
				mustCorrupt(t, "Verify", tb.Verify())
				iterErr, getErr := readAll(t, tb, recs)
				mustCorrupt(t, "iterating", iterErr)
				if getErr != nil {
					mustCorrupt(t, "Get", getErr)
				}
			}
		}
		if openFailed == 0 || laterFailed == 0 {
			t.Errorf("damage caught by Open %d times, later %d times", openFailed, laterFailed)
		}
	}
}

// TestCorruptRegions damages one byte in each region of a table and
// checks who notices.
func TestCorruptRegions(t *testing.T) {
	recs := bigRecords(3000, 300)
	data := build(t, recs, &WriterOptions{BlockSize: 1024})
	tb := open(t, data, nil)
	if indexBlocks(tb) < 2 {
		t.Fatal("the table needs two index blocks")
	}
	var top blockIter
	top.init(tb.top)
	top.next()
	firstIndex, err := decodeHandle(top.val, 0)
	if err != nil {
		t.Fatal(err)
	}
	size := uint64(len(data))
	for _, tc := range []struct {
		region     string
		off        uint64
		openFails  bool
		someGetErr bool
	}{
		{"first data block", 100, false, true},
		{"a data block's trailer", mustFindDataEnd(t, tb) - 2, false, true},
		{"index block", firstIndex.off + firstIndex.len/2, false, true},
		{"top-level index", uint64(tb.top.off) + 3, true, false},
		{"filter", uint64(tb.blocksEnd) + 20, true, false},
		{"footer count", size - footerSize + 33, true, false},
		{"footer version", size - footerSize + 40, true, false},
		{"footer checksum", size - footerSize + 45, true, false},
		{"magic", size - 1, true, false},
	} {
		t.Run(tc.region, func(t *testing.T) {
			bad := bytes.Clone(data)
			bad[tc.off] ^= 0x10
			tb, err := Open(newMemFile(bad), int64(len(bad)), 7, NewCache(1<<30))
			if tc.openFails {
				mustCorrupt(t, "Open", err)
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			mustCorrupt(t, "Verify", tb.Verify())
			iterErr, getErr := readAll(t, tb, recs)
			mustCorrupt(t, "iterating", iterErr)
			mustCorrupt(t, "Get", getErr)
			if !strings.Contains(getErr.Error(), "checksum") {
				t.Errorf("Get: %v, want a checksum mismatch", getErr)
			}
		})
	}
}

// mustFindDataEnd returns the offset just past the trailer of the table's
// first data block.
func mustFindDataEnd(t *testing.T, tb *Table) uint64 {
	t.Helper()
	it := tb.NewIter()
	if !it.First() {
		t.Fatal("empty table")
	}
	h, err := decodeHandle(it.idx.val, 0)
	if err != nil {
		t.Fatal(err)
	}
	return h.end()
}

func TestTruncated(t *testing.T) {
	recs := genRecords(rand.New(rand.NewPCG(6, 6)), 500, 256)
	data := build(t, recs, &WriterOptions{BlockSize: 256})
	for _, n := range []int{0, 1, 10, footerSize - 1, footerSize, len(data) / 2, len(data) - footerSize, len(data) - 1} {
		_, err := Open(newMemFile(data[:n]), int64(n), 1, nil)
		mustCorrupt(t, "Open of a truncated table", err)
	}
	// A size beyond the end of the file: the reads come up short.
	_, err := Open(newMemFile(data[:len(data)-1]), int64(len(data)), 1, nil)
	mustCorrupt(t, "Open with a size past the file's end", err)
	// Cut after Open.
	tb, err := Open(newMemFile(data[:len(data)/2]), int64(len(data)), 1, nil)
	if err == nil {
		_, err = readAll(t, tb, recs)
		mustCorrupt(t, "reading past the file's end", err)
	}
}

// TestVerifyOrder writes a table whose keys are out of order but whose
// checksums are right: Verify must say so.
func TestVerifyOrder(t *testing.T) {
	for _, keys := range [][]string{
		{"a", "c", "b", "d"}, // within a block
		{"a", "a"},
		{"m", "n", "o", "p", "q", "r", "s", "t", "a", "b"}, // across blocks
	} {
		var buf bytes.Buffer
		w := NewWriter(&buf, &WriterOptions{BlockSize: 20})
		for i, k := range keys {
			w.count = 0 // defeat the order check
			if err := w.Add([]byte(k), []byte("v")); err != nil {
				t.Fatal(err)
			}
			w.count = int64(i + 1)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		tb := open(t, buf.Bytes(), nil)
		err := tb.Verify()
		mustCorrupt(t, "Verify", err)
		if !strings.Contains(err.Error(), "not above") {
			t.Errorf("Verify of %q: %v, want a complaint about order", keys, err)
		}
	}
}

// TestVerifyCount writes a footer with the wrong count.
func TestVerifyCount(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, nil)
	for _, k := range []string{"a", "b", "c"} {
		if err := w.Add([]byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	w.count = 4
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tb := open(t, buf.Bytes(), nil)
	err := tb.Verify()
	mustCorrupt(t, "Verify", err)
	if !strings.Contains(err.Error(), "claims 4 records") {
		t.Errorf("Verify: %v, want a complaint about the count", err)
	}
}

// TestUnsupportedVersion opens tables of the format before this one
// (whose filter had no set of first bytes) and after it: both are refused.
func TestUnsupportedVersion(t *testing.T) {
	for _, v := range []uint32{formatVersion - 1, formatVersion + 1} {
		data := build(t, []record{{[]byte("a"), nil}}, nil)
		f := data[len(data)-footerSize:]
		binary.LittleEndian.PutUint32(f[40:], v)
		binary.LittleEndian.PutUint32(f[44:], crc32.Checksum(f[:footerChecksummed], castagnoli))
		_, err := Open(newMemFile(data), int64(len(data)), 1, nil)
		if err == nil || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", v)) {
			t.Fatalf("Open of a version %d table: %v", v, err)
		}
	}
}
