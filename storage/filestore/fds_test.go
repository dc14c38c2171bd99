package filestore

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/escrowkit/escrow"
)

// TestMergedTablesClose checkpoints a store 300 times in a process whose
// garbage collector does not run of itself, as in one with a large heap or
// GOGC=off: the tables merges replaced, removed from the directory, must
// not stay open, each holding a file descriptor and its disk space, until
// a collection that may not come.
func TestMergedTablesClose(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts open files in /proc/self/fd")
	}
	ctx := context.Background()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	s := openT(t, t.TempDir(), &Options{NoSync: true, CompactRatio: -1})
	defer s.Close()
	open := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	base, most := open(), 0
	for i := range 300 {
		for range 5 {
			if err := s.Update(ctx, func(tx escrow.Tx) error { return benchTx(tx, i) }); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Compact(); err != nil {
			t.Fatal(err)
		}
		most = max(most, open()-base-s.Stats().Tables)
	}
	if limit := maxRetiredOpen + 16; most > limit {
		t.Errorf("up to %d files open beyond the store's tables over 300 checkpoints, want at most %d", most, limit)
	}
}
