package memstore_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

// TestEscrowSlicesNotShared changes, in place, the slices and the map of
// an escrow after putting it and of each escrow read back: the stored
// escrow, and a view's older version of it, stay as they were.
func TestEscrowSlicesNotShared(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	at := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	want := func() escrow.Escrow {
		return escrow.Escrow{
			Terms: escrow.Terms{ID: "e", Buyer: "b", Seller: "s", Milestones: []escrow.Milestone{{Name: "m"}},
				Metadata: map[string]string{"k": "v"}},
			Shipments: []escrow.Shipment{{Tracking: "P1", At: at}},
			Evidence:  []escrow.Evidence{{By: escrow.Buyer, Note: "n", At: at}},
			CreatedAt: at, Version: 1,
		}
	}
	scribble := func(e *escrow.Escrow) {
		e.Milestones[0].Name = "changed"
		e.Shipments[0].Tracking = "changed"
		e.Evidence[0].Note = "changed"
		e.Metadata["k"] = "changed"
	}
	check := func(when string, tx escrow.Tx) {
		t.Helper()
		got, err := tx.Escrow("e")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want(), got, cmp.Comparer(func(a, b escrow.Money) bool { return a == b })); diff != "" {
			t.Fatalf("%s: stored escrow changed (-want +got):\n%s", when, diff)
		}
	}
	update := func(fn func(tx escrow.Tx) error) {
		t.Helper()
		if err := s.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx escrow.Tx) error {
		e := want()
		if err := tx.PutEscrow(e); err != nil {
			return err
		}
		scribble(&e)
		check("after changing what was put", tx)
		return nil
	})
	update(func(tx escrow.Tx) error {
		e, err := tx.Escrow("e")
		if err != nil {
			return err
		}
		scribble(&e)
		check("after changing what Escrow returned", tx)
		if err := tx.Escrows(func(e escrow.Escrow) error { scribble(&e); return nil }); err != nil {
			return err
		}
		check("after changing what Escrows gave", tx)
		page, err := tx.PartyEscrows(escrow.PartyQuery{Party: "b", Role: escrow.Buyer, Limit: 10})
		if err != nil || len(page) != 1 {
			t.Fatalf("PartyEscrows = %d escrows, %v", len(page), err)
		}
		scribble(&page[0])
		check("after changing what PartyEscrows returned", tx)
		return nil
	})
	// A view keeps the version it began with while a writer appends to
	// the slices of the next one and changes them in place.
	err := s.View(ctx, func(view escrow.Tx) error {
		update(func(tx escrow.Tx) error {
			e, err := tx.Escrow("e")
			if err != nil {
				return err
			}
			e.Shipments = append(e.Shipments, escrow.Shipment{Tracking: "P2"})
			e.Evidence = append(e.Evidence, escrow.Evidence{Note: "more"})
			scribble(&e)
			e.Version++
			return tx.PutEscrow(e)
		})
		check("in a view begun before a new version", view)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
