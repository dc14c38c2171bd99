package filestore

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/storagetest"
)

// Fuzz input modes for FuzzOpen.
const (
	fuzzRawLog      = iota // the input is the log segment
	fuzzFramedLog          // the input, cut at '|', is framed as records 1, 2, … after a header
	fuzzRawSnapshot        // the input is a snapshot covering record 1
	fuzzModes
)

// fuzzDir builds a store directory on a memFS from a fuzz input.
func fuzzDir(mode byte, data []byte) *memFS {
	fs := newMemFS(1)
	put := func(name string, b []byte) {
		f := &memFile{data: b, synced: bytes.Clone(b)}
		fs.names[crashDir+"/"+name], fs.durable[crashDir+"/"+name] = f, f
	}
	switch mode % fuzzModes {
	case fuzzRawLog:
		put(segName(1), data)
	case fuzzFramedLog:
		log := appendFileHeader(nil, segMagic)
		for i, piece := range bytes.Split(data, []byte("|")) {
			log = appendFrame(log, uint64(i+1), uint32(i), piece)
		}
		put(segName(1), log)
	case fuzzRawSnapshot:
		put(snapName(1), data)
		put(segName(2), nil)
	}
	return fs
}

// FuzzOpen opens a store over arbitrary files: it fails with ErrCorrupt or
// opens a store that reads, takes a commit, and reopens to the same
// contents. It never panics.
func FuzzOpen(f *testing.F) {
	// Seeds: the log and snapshot of a real store.
	fs := newMemFS(1)
	s, err := Open(crashDir, &Options{fs: fs, CompactRatio: -1})
	if err != nil {
		f.Fatal(err)
	}
	runWorkload(f, s, 24)
	log, _ := fs.ReadFile(crashDir + "/" + segName(1))
	f.Add(byte(fuzzRawLog), log)
	f.Add(byte(fuzzRawLog), log[:len(log)-5])
	var pieces [][]byte
	for off := fileHeaderSize; off < len(log); {
		_, _, payload, size, ok := parseFrame(log[off:])
		if !ok {
			break
		}
		pieces = append(pieces, payload)
		off += size
	}
	f.Add(byte(fuzzFramedLog), bytes.Join(pieces[:4], []byte("|")))
	if err := s.Compact(); err != nil {
		f.Fatal(err)
	}
	s.Close()
	for _, op := range filledOps() {
		var e encoder
		encodeOp(&e, &op)
		f.Add(byte(fuzzFramedLog), e.b)
	}
	snap := appendFrame(appendFileHeader(nil, snapMagic), 1, 0, pieces[0])
	var end encoder
	end.snapshotEnd(1, 1, 0, 0, time.Time{}, nil)
	f.Add(byte(fuzzRawSnapshot), appendFrame(snap, 2, 0, end.b))

	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		fs := fuzzDir(mode, data)
		s, err := Open(crashDir, &Options{fs: fs})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open failed with %v, not ErrCorrupt", err)
			}
			return
		}
		ctx := context.Background()
		if _, err := storagetest.Dump(ctx, s); err != nil {
			t.Fatalf("Dump of an opened store: %v", err)
		}
		err = s.Update(ctx, func(tx escrow.Tx) error {
			return tx.AppendEvent(&escrow.Event{Type: escrow.Deposited, Note: "after"})
		})
		if err != nil {
			t.Fatalf("Update of an opened store: %v", err)
		}
		before := dumpT(t, s)
		s.Close()
		s, err = Open(crashDir, &Options{fs: fs})
		if err != nil {
			t.Fatalf("reopening a store that opened: %v", err)
		}
		defer s.Close()
		if after := dumpT(t, s); !bytes.Equal(before, after) {
			t.Fatalf("contents changed across a reopen:\nbefore %.1000s\nafter  %.1000s", before, after)
		}
	})
}
