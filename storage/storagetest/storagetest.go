// Package storagetest is the conformance suite for escrow.Storage adapters.
// Every adapter runs the same tests and benchmarks through a small harness:
//
//	func TestConformance(t *testing.T) {
//		storagetest.RunConformanceTests(t, func(t testing.TB) escrow.Storage { return memstore.New() })
//	}
//	func TestSimulation(t *testing.T) {
//		storagetest.RunSimulation(t, harness, storagetest.SimulationBudget(storagetest.MediumSimulation))
//	}
//	func BenchmarkConformance(b *testing.B) {
//		storagetest.RunBenchmarks(b, func(t testing.TB) escrow.Storage { return memstore.New() })
//	}
//
// RunConformanceTests checks the Storage contract method by method (empty
// cases, ordering, rollback on error and panic, read-only View, values
// copied in and out), and the optional capabilities (BalanceAdder,
// EscrowClaimer, EventNotifier) of an adapter that has them, then drives a Ledger over the adapter through one
// short end-to-end flow, a table of calls that must be refused without
// changing a byte, and concurrent calls that must never spend the same money
// twice. It runs in seconds. The ledger's own rules (every action in every
// state by every role, fees, timers, idempotency, reputation) do not depend
// on the adapter and are tested once, in package escrow over memstore.
//
// RunSimulation is a long seeded random run with a model of the ledger
// beside it; an adapter runs it from its own test with a budget.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/escrowkit/escrow"
)

// A Harness returns a new, empty store for one test. It should register any
// cleanup with t.Cleanup; the suite closes the store itself when done.
type Harness func(t testing.TB) escrow.Storage

// RunConformanceTests runs the whole suite against the stores h makes.
func RunConformanceTests(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Contract", testContract},
		{"RatingsContract", testRatingsContract},
		{"Capabilities", testCapabilities},
		{"Flow", testFlow},
		{"RejectedCallsChangeNothing", testRejectedCallsChangeNothing},
		{"Concurrency", testConcurrency},
		{"Outbox", testOutbox},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// open returns a store from h that is closed when the test ends.
func open(t testing.TB, h Harness) escrow.Storage {
	t.Helper()
	s := h(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// Dump renders every record in store, read through the Storage contract,
// as deterministic JSON: two stores with the same content dump to the same
// bytes. Indexes a record is filed under by its own fields (an escrow's
// parties, an event's escrow) are not rendered apart: the conformance
// suite checks them through the queries that use them. Tests compare dumps taken before and after a call that must change
// nothing. The records are rendered in a form of the dump's own (see
// appendPlain), not in their JSON forms, so that dumps taken by different
// releases compare.
func Dump(ctx context.Context, store escrow.Storage) ([]byte, error) {
	b, err := compactDump(ctx, store)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", " "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// digest returns a SHA-256 of store's content, encoded as Dump encodes it
// without the indentation: what a long simulation compares, since it need
// not hold a large store's dump in memory.
func digest(ctx context.Context, store escrow.Storage) ([]byte, error) {
	b, err := compactDump(ctx, store)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// compactDump is Dump without the indentation.
func compactDump(ctx context.Context, store escrow.Storage) ([]byte, error) {
	d, err := collect(ctx, store)
	if err != nil {
		return nil, err
	}
	return appendPlain(nil, reflect.ValueOf(d))
}

// collect reads everything in store for Dump.
func collect(ctx context.Context, store escrow.Storage) (any, error) {
	var d struct {
		Accounts      []escrow.Account
		Balances      []escrow.Balance
		Escrows       []escrow.Escrow
		Due           []string
		Journal       []escrow.Entry
		EntriesOf     map[string][]escrow.Entry // by account, in Entries order
		Events        []escrow.Event
		Idempotencies []escrow.IdempotencyRecord
		IdemByAge     []string // the index of IdempotenciesUntil
		Ratings       []escrow.Rating
		Aggregates    []escrow.Aggregate
		PairMonths    []escrow.PairMonth
		ItemMarks     []escrow.ItemMark
		DayCounts     []escrow.DayCount
		RaterDays     []escrow.RaterDays
		Consumers     []escrow.Consumer
		RatingsOf     map[string][]escrow.Rating // by ratee, in RatingsOf order
		Top           map[string][]string        // the ranking indexes, by role and key
		Rekey         []string                   // the re-key index, as party/role
	}
	err := store.View(ctx, func(tx escrow.Tx) error {
		err := tx.Accounts(func(a escrow.Account) error { d.Accounts = append(d.Accounts, a); return nil })
		if err != nil {
			return err
		}
		// The whole journal, then the per-account index of every account
		// it posts to or that exists, whether or not the two agree.
		if d.Journal, err = tx.Journal(0, 1<<30); err != nil {
			return err
		}
		d.EntriesOf = map[string][]escrow.Entry{}
		indexed := func(account string) error {
			if _, done := d.EntriesOf[account]; done {
				return nil
			}
			entries, err := tx.Entries(account, 0, 1<<30)
			d.EntriesOf[account] = entries
			return err
		}
		for _, a := range d.Accounts {
			if err := indexed(a.ID); err != nil {
				return err
			}
		}
		for _, e := range d.Journal {
			for _, p := range e.Postings {
				if err := indexed(p.Account); err != nil {
					return err
				}
			}
		}
		if err := tx.Balances(func(b escrow.Balance) error { d.Balances = append(d.Balances, b); return nil }); err != nil {
			return err
		}
		if err := tx.Escrows(func(e escrow.Escrow) error { d.Escrows = append(d.Escrows, e); return nil }); err != nil {
			return err
		}
		if d.Events, err = tx.Events(0, 1<<30); err != nil {
			return err
		}
		if d.Due, err = tx.DueEscrows(maxTime, 1<<30); err != nil {
			return err
		}
		if err := tx.Ratings(func(r escrow.Rating) error { d.Ratings = append(d.Ratings, r); return nil }); err != nil {
			return err
		}
		if err := tx.Aggregates(func(a escrow.Aggregate) error { d.Aggregates = append(d.Aggregates, a); return nil }); err != nil {
			return err
		}
		if err := tx.PairMonths(func(p escrow.PairMonth) error { d.PairMonths = append(d.PairMonths, p); return nil }); err != nil {
			return err
		}
		if err := tx.ItemMarks(func(m escrow.ItemMark) error { d.ItemMarks = append(d.ItemMarks, m); return nil }); err != nil {
			return err
		}
		if err := tx.DayCounts(func(c escrow.DayCount) error { d.DayCounts = append(d.DayCounts, c); return nil }); err != nil {
			return err
		}
		if err := tx.AllRaterDays(func(r escrow.RaterDays) error { d.RaterDays = append(d.RaterDays, r); return nil }); err != nil {
			return err
		}
		if err := tx.Consumers(func(c escrow.Consumer) error { d.Consumers = append(d.Consumers, c); return nil }); err != nil {
			return err
		}
		// The secondary indexes too, so that a write that damages one
		// shows up in a comparison of dumps.
		ratees := map[string]bool{}
		for _, r := range d.Ratings {
			ratees[r.Ratee] = true
		}
		d.RatingsOf = map[string][]escrow.Rating{}
		for ratee := range ratees {
			err := tx.RatingsOf(ratee, escrow.RatingPos{}, func(r escrow.Rating) error { d.RatingsOf[ratee] = append(d.RatingsOf[ratee], r); return nil })
			if err != nil {
				return err
			}
		}
		d.Top = map[string][]string{}
		for _, role := range []escrow.Role{escrow.Seller, escrow.Buyer} {
			for _, key := range []escrow.RankKey{escrow.RankWilson, escrow.RankExpectation} {
				top, err := tx.TopAggregates(role, key, escrow.RankPos{}, 1<<30)
				if err != nil {
					return err
				}
				name := fmt.Sprintf("role %d by key %d", role, key)
				for _, a := range top {
					d.Top[name] = append(d.Top[name], a.Party)
				}
			}
		}
		if d.IdemByAge, err = tx.IdempotenciesUntil(maxTime, 1<<30); err != nil {
			return err
		}
		due, err := tx.DueAggregates(math.MaxInt32, 1<<30)
		if err != nil {
			return err
		}
		for _, a := range due {
			d.Rekey = append(d.Rekey, rcName(a))
		}
		return tx.Idempotencies(func(r escrow.IdempotencyRecord) error { d.Idempotencies = append(d.Idempotencies, r); return nil })
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}
