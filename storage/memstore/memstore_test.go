package memstore_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
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

// TestViewKeepsItsSnapshot checks that a View neither waits for a writer
// nor sees what the writer commits while it runs, including changes to
// records the writer would otherwise change in place.
func TestViewKeepsItsSnapshot(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	put := func(id string, system bool) {
		t.Helper()
		if err := s.Update(ctx, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: id, System: system}) }); err != nil {
			t.Fatal(err)
		}
	}
	put("a", false)
	err := s.View(ctx, func(tx escrow.Tx) error {
		done := make(chan struct{})
		go func() { // would deadlock if the View held up writers
			defer close(done)
			put("a", true)
			put("b", false)
		}()
		<-done
		a, err := tx.Account("a")
		if err != nil || a.System {
			t.Errorf("the view sees a = %+v, %v; want the account as it was when the view began", a, err)
		}
		if _, err := tx.Account("b"); !errors.Is(err, escrow.ErrNotFound) {
			t.Errorf("the view sees b, committed after it began: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx escrow.Tx) error {
		a, err := tx.Account("a")
		if err != nil || !a.System {
			t.Errorf("a later view sees a = %+v, %v; want the committed change", a, err)
		}
		_, err = tx.Account("b")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotTaken checks that Snapshot calls taken with writers held off,
// on the state its function then reads.
func TestSnapshotTaken(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	var commits atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := s.Update(ctx, func(tx escrow.Tx) error {
				commits.Add(1) // counted inside the transaction, as filestore counts
				return tx.PutAccount(escrow.Account{ID: strconv.Itoa(i)})
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 50 {
		var seen int64
		err := s.Snapshot(ctx, func() error { seen = commits.Load(); return nil }, func(tx escrow.Tx) error {
			n := int64(0)
			err := tx.Accounts(func(escrow.Account) error { n++; return nil })
			if err == nil && n != seen {
				t.Errorf("the snapshot holds %d accounts, taken saw %d commits", n, seen)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
