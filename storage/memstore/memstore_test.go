package memstore_test

import (
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
)

func harness(t testing.TB) escrow.Storage { return memstore.New() }

func TestConformance(t *testing.T) { storagetest.RunConformanceTests(t, harness) }

func TestSimulation(t *testing.T) {
	storagetest.RunSimulation(t, harness, storagetest.SimulationBudget(storagetest.MediumSimulation))
}

func BenchmarkConformance(b *testing.B) { storagetest.RunBenchmarks(b, harness) }
