package filestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// TestMissingFile deletes one file of a closed store: Open refuses the
// store with a CorruptError that names the missing file and says what it
// was, rather than opening without the records it held.
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
	}{
		{"SegmentAfterSnapshot", true, func(seq uint64) string { return segName(seq + 1) },
			"log segment missing: the manifest names it as the newest"},
		{"OnlySegment", false, func(uint64) string { return segName(1) },
			"log segment missing: the manifest names it as the newest"},
		{"Snapshot", true, func(seq uint64) string { return snapName(seq) },
			"snapshot missing: the log starts at record 32, and no snapshot covers the records before it"},
		{"Manifest", true, func(uint64) string { return manifestName },
			"manifest missing, so a deleted log segment would go unnoticed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			snapSeq := build(t, dir, tc.compact)
			name := filepath.Join(dir, tc.remove(snapSeq))
			if err := os.Remove(name); err != nil {
				t.Fatal(err)
			}
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
		})
	}
}
