package filestore_test

import (
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
	"github.com/escrowkit/escrow/storage/storagetest"
)

// variants are the option sets the conformance suite runs under.
var variants = []struct {
	name string
	opts filestore.Options
}{
	{"Sync", filestore.Options{}},
	{"BatchDelay", filestore.Options{MaxBatchDelay: 100 * time.Microsecond}},
	// A snapshot after nearly every commit, so that compaction runs
	// alongside everything the suite does.
	{"Compacting", filestore.Options{CompactRatio: 0.001, CompactMinBytes: 1}},
}

func harness(opts filestore.Options) storagetest.Harness {
	return func(t testing.TB) escrow.Storage {
		s, err := filestore.Open(t.TempDir(), &opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			// Much of each variant's time is spent waiting for fsync, which
			// the variants can do side by side.
			t.Parallel()
			storagetest.RunConformanceTests(t, harness(v.opts))
		})
	}
}

// TestSimulation runs the random simulation under every variant; its
// whole-store checks make it the suite's longest part, so it is here rather
// than in RunConformanceTests (ESCROW_SIM=long runs it for a million steps).
func TestSimulation(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			storagetest.RunSimulation(t, harness(v.opts), storagetest.SimulationBudget(storagetest.MediumSimulation))
		})
	}
}

func BenchmarkConformance(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) { storagetest.RunBenchmarks(b, harness(v.opts)) })
	}
}
