package pgstore_test

import (
	"context"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/escrowkit/escrow/storage/storagetest"
)

// open opens a store in a new schema of its own.
func open(t testing.TB, schema string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), dsn, &pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func harness(t testing.TB) escrow.Storage { return open(t, newSchema(t)) }

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.RunConformanceTests(t, harness)
}

func TestSimulation(t *testing.T) {
	t.Parallel()
	storagetest.RunSimulation(t, harness, storagetest.SimulationBudget(storagetest.MediumSimulation))
}

func BenchmarkConformance(b *testing.B) { storagetest.RunBenchmarks(b, harness) }
