package filestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// TestMissingFile deletes one file of a closed store: Open refuses the
// store with a CorruptError that names the missing file and says what it
// was, rather than opening without the records it held, and changes no
// file of the store, not even a torn tail it would otherwise drop.
func TestMissingFile(t *testing.T) {
	// build makes a store of 40 workload calls, with a snapshot after the
	// first 30 if compact is set, and returns the last record's number.
	build := func(t *testing.T, dir string, compact bool) uint64 {
		s := openT(t, dir, &Options{CompactRatio: -1})
		defer s.Close()
		clock := escrow.NewManualClock(workloadStart)
		l, err := escrow.New(context.Background(), s, workloadOptions(clock))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 40 {
			clock.Advance(time.Minute)
			if err := workloadCall(context.Background(), l, i); err != nil {
				t.Fatal(err)
			}
			if i == 29 && compact {
				if err := s.Compact(); err != nil {
					t.Fatal(err)
				}
			}
		}
		return s.Stats().SnapshotSeq
	}
	for _, tc := range []struct {
		name    string
		compact bool
		remove  func(snapSeq uint64) string // the file to delete
		reason  string
		torn    bool // the last segment ends in a torn record as well
	}{
		{"SegmentAfterSnapshot", true, func(seq uint64) string { return segName(seq + 1) },
			"log segment missing: the manifest names it as the newest", false},
		{"OnlySegment", false, func(uint64) string { return segName(1) },
			"log segment missing: the manifest names it as the newest", false},
		{"Snapshot", true, func(seq uint64) string { return snapName(seq) },
			"snapshot missing: the log starts at record 32, and no snapshot covers the records before it", false},
		{"Manifest", true, func(uint64) string { return manifestName },
			"manifest missing, so a deleted log segment would go unnoticed", false},
		{"ManifestAndTornTail", true, func(uint64) string { return manifestName },
			"manifest missing, so a deleted log segment would go unnoticed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			snapSeq := build(t, dir, tc.compact)
			name := filepath.Join(dir, tc.remove(snapSeq))
			if err := os.Remove(name); err != nil {
				t.Fatal(err)
			}
			if tc.torn {
				tearLastSegment(t, dir)
			}
			before := dirImage(t, dir)
			s, err := Open(dir, nil)
			if err == nil {
				s.Close()
			}
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("Open without %s = %v, want a CorruptError", tc.remove(snapSeq), err)
			}
			file := name
			if tc.name == "Snapshot" {
				file = filepath.Join(dir, segName(snapSeq+1)) // the segment the snapshot should precede
			}
			if diff := cmp.Diff(CorruptError{File: file, Reason: tc.reason}, *ce); diff != "" {
				t.Errorf("CorruptError (-want +got):\n%s", diff)
			}
			if !strings.Contains(err.Error(), "missing") {
				t.Errorf("error %q does not say missing", err)
			}
			delete(before, lockName) // Open takes the lock before it reads
			after := dirImage(t, dir)
			delete(after, lockName)
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("the refused Open changed the store's files (-before +after):\n%.2000s", diff)
			}
		})
	}
}

// tearLastSegment appends half a record's worth of bytes to the newest
// log segment in dir, as a crash in the middle of a write leaves it.
func tearLastSegment(t *testing.T, dir string) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "log-*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no log segment in %s: %v", dir, err)
	}
	slices.Sort(segs)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("torn-record")); err != nil {
		t.Fatal(err)
	}
}

// TestOnlyTablesLeft opens a directory from which the snapshot, every log
// segment and the manifest are gone, and only the cold tables are left.
// No crash leaves a store so (a checkpoint writes its table after records
// that stay in the log until its snapshot is in place), so the tables are
// history whose log and snapshot are lost: Open fails with a CorruptError
// naming a table and changes nothing, where it would otherwise start an
// empty store and remove the tables as a crashed checkpoint's leftovers.
func TestOnlyTablesLeft(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, &Options{CompactRatio: -1})
	runWorkload(t, s, 30)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	for _, e := range entries {
		switch name := e.Name(); {
		case strings.HasPrefix(name, tablePrefix):
			tables++
		case name != lockName:
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if tables == 0 {
		t.Fatal("the checkpoint wrote no table")
	}
	before := dirImage(t, dir)
	s, err = Open(dir, nil)
	if err == nil {
		s.Close()
	}
	var ce *CorruptError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || !strings.HasPrefix(filepath.Base(ce.File), tablePrefix) {
		t.Fatalf("Open of a directory holding only tables = %v, want a CorruptError naming a table", err)
	}
	if diff := cmp.Diff(before, dirImage(t, dir)); diff != "" {
		t.Errorf("the refused Open changed the directory (-before +after):\n%.2000s", diff)
	}
}
