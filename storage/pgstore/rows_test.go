package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tripStore opens a store on schema, with opts, whose pool counts its
// round trips.
func tripStore(t *testing.T, schema string, opts *pgstore.Options) (*pgstore.Store, *atomic.Int64) {
	t.Helper()
	trips := new(atomic.Int64)
	pool := schemaPool(t, schema, func(cfg *pgxpool.Config) {
		cfg.ConnConfig.Tracer = callTrips{tripCounter{n: trips}}
	})
	s, err := pgstore.New(context.Background(), pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, trips
}

// callTrips counts the round trips of a pool but those of the store's
// own publishing, which runs on a timer.
type callTrips struct{ tripCounter }

func (c callTrips) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if data.SQL == "SELECT pgstore_publish()" {
		return ctx
	}
	return c.tripCounter.TraceQueryStart(ctx, conn, data)
}

// keptFixture writes, through s, an account, a user's balance and an
// escrow with metadata, which s then keeps.
func keptFixture(t *testing.T, s *pgstore.Store) {
	t.Helper()
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := tx.PutAccount(escrow.Account{ID: "ann", CreatedAt: start}); err != nil {
			return err
		}
		if err := tx.PutBalance(escrow.Balance{Account: "ann", Currency: escrow.CNY, Available: fen(100), Held: fen(0)}); err != nil {
			return err
		}
		return tx.PutEscrow(escrow.Escrow{Terms: escrow.Terms{ID: "e", Buyer: "ann", Seller: "bob", Price: fen(10),
			Metadata: map[string]string{"order": "1"}}, State: escrow.AwaitingPayment, CreatedAt: start, Version: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// turnStores opens two stores on one new schema, as two processes would,
// with keptFixture's rows written, and kept, by the first.
func turnStores(t *testing.T) (schema string, a, b *pgstore.Store) {
	t.Helper()
	schema = newSchema(t)
	a, _ = tripStore(t, schema, nil)
	b, _ = tripStore(t, schema, nil)
	keptFixture(t, a)
	return schema, a, b
}

// TestKeptRowsSaveRoundTrips checks that a transaction that reads only
// rows the store wrote before, and writes, takes one round trip: its
// reads come from the kept rows and their guards go with the commit. And
// that what a kept read returns is the caller's to change.
func TestKeptRowsSaveRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, trips := tripStore(t, newSchema(t), nil)
	keptFixture(t, s)
	readAll := func(tx escrow.Tx) error {
		a, err := tx.Account("ann")
		if err != nil || a.ID != "ann" || !a.CreatedAt.Equal(start) {
			return fmt.Errorf("Account: %+v, %v", a, err)
		}
		b, err := tx.Balance("ann", "CNY")
		if err != nil || b.Available.Units() != 100 {
			return fmt.Errorf("Balance: %+v, %v", b, err)
		}
		e, err := tx.Escrow("e")
		if err != nil || e.State != escrow.AwaitingPayment || e.Metadata["order"] != "1" || !e.CreatedAt.Equal(start) {
			return fmt.Errorf("Escrow: %+v, %v", e, err)
		}
		e.Metadata["order"] = "changed by the caller"
		e.State, e.Version = escrow.AwaitingShipment, 2
		return tx.PutEscrow(e)
	}
	trips.Store(0)
	if err := s.Update(ctx, readAll); err != nil {
		t.Fatal(err)
	}
	if n := trips.Load(); n != 1 {
		t.Errorf("%d round trips, want 1", n)
	}
	// Fewer rows kept, or none: the reads of the others go to the
	// database, one round trip each, and the commit takes one more.
	// With one row kept, if it is not the escrow, the escrow's read is
	// answered as absent (see "Rows kept" in the package documentation),
	// wrongly, and the transaction runs again, reading every row.
	for _, c := range []struct{ kept, trips int64 }{{-1, 4}, {1, 3}} {
		s, trips := tripStore(t, newSchema(t), &pgstore.Options{KeptRows: int(c.kept)})
		keptFixture(t, s)
		trips.Store(0)
		runs := 0
		if err := s.Update(ctx, func(tx escrow.Tx) error { runs++; return readAll(tx) }); err != nil {
			t.Fatal(err)
		}
		if n := trips.Load(); runs == 1 && n != c.trips || runs > 2 || runs == 2 && c.kept < 0 {
			t.Errorf("KeptRows %d: %d round trips in %d runs, want %d in 1", c.kept, n, runs, c.trips)
		}
	}
	// The caller changed the map it got before writing: what is kept is
	// what was written, and a read gives a map of its own.
	for range 2 {
		err := s.Update(ctx, func(tx escrow.Tx) error {
			e, err := tx.Escrow("e")
			if err != nil || e.State != escrow.AwaitingShipment || e.Metadata["order"] != "changed by the caller" {
				return fmt.Errorf("Escrow: %+v, %v", e, err)
			}
			e.Metadata["order"] = "not written"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeptRowChanged checks that a row the store keeps, changed since by
// another process, is never what a transaction decides on: the guard
// fails, and the transaction runs again reading the row. Once when the
// function commits, and once when it returns an error of its own that
// came from the stale row.
func TestKeptRowChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := newSchema(t)
	s, trips := tripStore(t, schema, nil)
	keptFixture(t, s)
	other := open(t, schema) // another process on the same database
	defer other.Close()
	change := func(avail int64, state escrow.State) {
		t.Helper()
		err := other.Update(ctx, func(tx escrow.Tx) error {
			if err := tx.PutBalance(escrow.Balance{Account: "ann", Currency: escrow.CNY, Available: fen(avail), Held: fen(0)}); err != nil {
				return err
			}
			e, err := tx.Escrow("e")
			if err != nil {
				return err
			}
			e.State = state
			return tx.PutEscrow(e)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	errShort := errors.New("too little money")
	spend := func(want int64) func(tx escrow.Tx) error {
		return func(tx escrow.Tx) error {
			b, err := tx.Balance("ann", "CNY")
			if err != nil {
				return err
			}
			if b.Available.Units() < want {
				return errShort
			}
			return tx.PutBalance(escrow.Balance{Account: "ann", Currency: escrow.CNY,
				Available: fen(b.Available.Units() - want), Held: fen(0)})
		}
	}
	balance := func() int64 {
		t.Helper()
		var got int64
		err := other.View(ctx, func(tx escrow.Tx) error {
			b, err := tx.Balance("ann", "CNY")
			got = b.Available.Units()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// Kept: 100. Another process makes it 500; spending 30 leaves 470.
	change(500, escrow.AwaitingShipment)
	runs := 0
	if err := s.Update(ctx, func(tx escrow.Tx) error { runs++; return spend(30)(tx) }); err != nil {
		t.Fatal(err)
	}
	if got := balance(); got != 470 || runs != 2 {
		t.Fatalf("after spending 30 of 500: %d, in %d runs; want 470 in 2 (the first on the kept row)", got, runs)
	}
	// The escrow read from the kept row changed too.
	if err := s.Update(ctx, func(tx escrow.Tx) error {
		e, err := tx.Escrow("e")
		if err != nil || e.State != escrow.AwaitingShipment {
			return fmt.Errorf("Escrow: %+v, %v; want it AwaitingShipment", e, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Kept now: 470. Another process makes it 1,000: spending 800 must
	// not fail for the 470 kept.
	change(1000, escrow.AwaitingConfirmation)
	runs = 0
	if err := s.Update(ctx, func(tx escrow.Tx) error { runs++; return spend(800)(tx) }); err != nil {
		t.Fatalf("spending 800 of 1,000 (470 kept): %v", err)
	}
	if got := balance(); got != 200 || runs != 2 {
		t.Fatalf("after spending 800 of 1,000: %d, in %d runs; want 200 in 2", got, runs)
	}
	// And the error of a function on a row that has not changed is its
	// own, in one run, with the guard sent before it returns.
	runs = 0
	trips.Store(0)
	err := s.Update(ctx, func(tx escrow.Tx) error { runs++; return spend(201)(tx) })
	if !errors.Is(err, errShort) || runs != 1 || trips.Load() != 1 {
		t.Fatalf("spending 201 of 200: %v in %d runs and %d round trips; want the function's error, 1 run, 1 round trip",
			err, runs, trips.Load())
	}
	if got := balance(); got != 200 {
		t.Fatalf("after the refused spend: %d, want 200", got)
	}
}

// TestKeptRowsTakingTurns checks that a store stops reading kept rows
// where they are always stale: two stores, as two processes, take turns
// at writing one escrow, so that each finds the row it kept changed by
// the other every time. After the first attempts fail on it, a store
// reads the database, and its transactions run once each.
func TestKeptRowsTakingTurns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, a, b := turnStores(t)
	bump := func(s *pgstore.Store) (runs int) {
		t.Helper()
		err := s.Update(ctx, func(tx escrow.Tx) error {
			runs++
			e, err := tx.Escrow("e")
			if err != nil {
				return err
			}
			e.Version++
			return tx.PutEscrow(e)
		})
		if err != nil {
			t.Fatal(err)
		}
		return runs
	}
	const turns = 300
	late := 0 // runs of a's transactions after the first 100 turns
	for i := range turns {
		if n := bump(a); i >= 100 {
			late += n
		}
		bump(b)
	}
	if late > (turns-100)*11/10 {
		t.Errorf("a's last %d transactions ran %d times, want at most %d: it kept reading stale rows",
			turns-100, late, (turns-100)*11/10)
	}
	var version uint64
	err := a.View(ctx, func(tx escrow.Tx) error {
		e, err := tx.Escrow("e")
		version = e.Version
		return err
	})
	if err != nil || version != 1+2*turns {
		t.Fatalf("the escrow's version %d (%v), want %d: a turn was lost", version, err, 1+2*turns)
	}
}
