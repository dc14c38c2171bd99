package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// These tests prove that the simulation, which runs its whole-store checks
// only every CheckEvery steps, still catches a store that goes wrong between
// two of them: each runs it over a deliberately broken memstore and expects
// it to fail for the right reason.

// failures is a testing.TB that records failures instead of failing the
// test; Fatalf ends the calling goroutine, as testing.T's does.
type failures struct {
	testing.TB
	mu  sync.Mutex
	got []string
}

func (f *failures) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, fmt.Sprintf(format, args...))
}

func (f *failures) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

// simulateBroken runs one seed of the simulation over the stores h makes
// and returns its failures.
func simulateBroken(t *testing.T, h Harness, b Budget) []string {
	rec := &failures{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runSimulation(rec, h, simSeeds[0], b)
	}()
	<-done
	return rec.got
}

// lossyStore drops the drop-th journal entry appended: the balances move,
// the journal does not record why. Nothing but the invariant checker, which
// replays the journal, can see that.
type lossyStore struct {
	escrow.Storage
	mu       sync.Mutex
	appended int
	drop     int
}

func (s *lossyStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	return s.Storage.Update(ctx, func(tx escrow.Tx) error { return fn(lossyTx{tx, s}) })
}

type lossyTx struct {
	escrow.Tx
	s *lossyStore
}

func (tx lossyTx) AppendEntry(e *escrow.Entry) error {
	tx.s.mu.Lock()
	tx.s.appended++
	drop := tx.s.appended == tx.s.drop
	tx.s.mu.Unlock()
	if drop {
		return nil
	}
	return tx.Tx.AppendEntry(e)
}

func TestSimulationCatchesLostJournalEntry(t *testing.T) {
	// The 6 accounts' deposits are the first entries; the 60th comes well
	// before the end, between two checks 100 steps apart.
	h := func(testing.TB) escrow.Storage { return &lossyStore{Storage: memstore.New(), drop: 60} }
	got := simulateBroken(t, h, Budget{Steps: 400, CheckEvery: 100})
	if len(got) == 0 {
		t.Fatal("the simulation passed over a store that lost a journal entry")
	}
	if !strings.Contains(got[0], "invariants:") || !strings.Contains(got[0], "its journal gives") {
		t.Errorf("the simulation failed, but not on the invariant checker's report of the lost entry:\n%s", got[0])
	}
	// Reported by a whole-store check, before the end of the run.
	m := regexp.MustCompile(`, step (\d+),`).FindStringSubmatch(got[0])
	if m == nil {
		t.Fatalf("no step in the report:\n%s", got[0])
	}
	if step, _ := strconv.Atoi(m[1]); step%100 != 0 || step >= 400 {
		t.Errorf("reported at step %d, want a multiple of 100 before the last:\n%s", step, got[0])
	}

	// The same run over a sound store passes, so it was the lost entry
	// that the run caught.
	if got := simulateBroken(t, func(testing.TB) escrow.Storage { return memstore.New() }, Budget{Steps: 400, CheckEvery: 100}); len(got) != 0 {
		t.Errorf("the run fails over a sound store too:\n%s", strings.Join(got, "\n"))
	}
}

// leakyStore commits the leak-th transaction that fails anyway, with a
// record the failed call never meant to write (write's, or an idempotency
// record if write is nil): an adapter whose rollback misses one table.
type leakyStore struct {
	escrow.Storage
	mu     sync.Mutex
	failed int
	leak   int
	write  func(escrow.Tx) error
}

func (s *leakyStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	var fnErr error
	err := s.Storage.Update(ctx, func(tx escrow.Tx) error {
		if fnErr = fn(tx); fnErr == nil {
			return nil
		}
		s.mu.Lock()
		s.failed++
		leak := s.failed == s.leak
		s.mu.Unlock()
		if !leak {
			return fnErr
		}
		if s.write != nil {
			return s.write(tx)
		}
		return tx.PutIdempotency(escrow.IdempotencyRecord{Key: "leaked", Request: "a refused call", At: start})
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

func TestSimulationCatchesLeakyRollback(t *testing.T) {
	// The checks 1,000 steps apart never run within this 400-step run
	// but at its end; the leak is caught on the step it happens.
	h := func(testing.TB) escrow.Storage { return &leakyStore{Storage: memstore.New(), leak: 20} }
	got := simulateBroken(t, h, Budget{Steps: 400, CheckEvery: 1000})
	if len(got) == 0 {
		t.Fatal("the simulation passed over a store whose failed transaction committed a write")
	}
	if !strings.Contains(got[0], "the store changed") || !strings.Contains(got[0], "leaked") {
		t.Errorf("the simulation failed, but not on the leaked write:\n%s", got[0])
	}
}

// TestDigest checks what a long simulation compares instead of dumps: equal
// content, equal digests; one record more, another digest.
func TestDigest(t *testing.T) {
	ctx := context.Background()
	a, b := memstore.New(), memstore.New()
	digestOf := func(s escrow.Storage) []byte {
		t.Helper()
		d, err := digest(ctx, s)
		if err != nil {
			t.Fatalf("digest: %v", err)
		}
		return d
	}
	put := func(s escrow.Storage, id string) {
		t.Helper()
		if err := s.Update(ctx, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: id, CreatedAt: start}) }); err != nil {
			t.Fatalf("PutAccount: %v", err)
		}
	}
	put(a, "ana")
	put(b, "ana")
	if da, db := digestOf(a), digestOf(b); !bytes.Equal(da, db) {
		t.Errorf("equal stores digest to %x and %x", da, db)
	}
	before := digestOf(a)
	put(a, "bo")
	if after := digestOf(a); bytes.Equal(before, after) {
		t.Errorf("a store with one account more has the same digest %x", after)
	}
}

// TestLongBudgetShowsEarlyBytes: a run whose budget passes 100,000 steps
// compares digests only past that step, so a failure before it still
// shows the bytes that changed.
func TestLongBudgetShowsEarlyBytes(t *testing.T) {
	// A consumer: a change only the whole-store comparison sees, since
	// the per-step footprint holds no consumers.
	leakConsumer := func(tx escrow.Tx) error {
		return tx.PutConsumer(escrow.Consumer{Name: "leaked-consumer", Seq: 1, UpdatedAt: start})
	}
	h := func(testing.TB) escrow.Storage {
		return &leakyStore{Storage: memstore.New(), leak: 1, write: leakConsumer}
	}
	got := simulateBroken(t, h, Budget{Steps: 100_001, CheckEvery: 1})
	if len(got) == 0 {
		t.Fatal("the simulation passed over a store that leaked a write")
	}
	if !strings.Contains(got[0], "leaked-consumer") {
		t.Errorf("the failure does not show what changed:\n%.500s", got[0])
	}
}
