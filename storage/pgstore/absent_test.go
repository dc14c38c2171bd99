package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
)

// openEscrow is what Open does in a transaction: the escrow's ID read
// and found absent, the parties' accounts read, the escrow written.
func openEscrow(tx escrow.Tx, id string) error {
	if _, err := tx.Escrow(id); !errors.Is(err, escrow.ErrNotFound) {
		return fmt.Errorf("Escrow(%q): %v, want ErrNotFound", id, err)
	}
	for _, a := range []string{"ann", "bob"} {
		if _, err := tx.Account(a); err != nil {
			return err
		}
	}
	return tx.PutEscrow(escrow.Escrow{Terms: escrow.Terms{ID: id, Buyer: "ann", Seller: "bob", Price: fen(10)},
		State: escrow.AwaitingPayment, CreatedAt: start, Version: 1})
}

// addBob adds the account "bob", the seller openEscrow needs besides
// keptFixture's "ann".
func addBob(t *testing.T, s *pgstore.Store) {
	t.Helper()
	if err := s.Update(context.Background(), func(tx escrow.Tx) error {
		return tx.PutAccount(escrow.Account{ID: "bob", CreatedAt: start})
	}); err != nil {
		t.Fatal(err)
	}
}

// TestOpensDoNotConflict checks that two transactions that open escrows
// with neighbouring IDs at the same time, each having read its ID absent
// before the other wrote, both commit at their first attempt. Read from
// the database, each absent ID would lock the page of the primary key
// where it belongs, the same page for both, and each insert would write
// to the page the other read: one of them would be aborted.
func TestOpensDoNotConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := tripStore(t, newSchema(t), nil)
	keptFixture(t, s) // ann, kept
	addBob(t, s)
	// Both transactions begin, and read the escrow, before either writes.
	var read, begun sync.WaitGroup
	read.Add(2)
	begun.Add(2)
	var mu sync.Mutex
	runs := map[string]int{}
	errs := make(chan error, 2)
	for _, id := range []string{"o1", "o2"} {
		go func() {
			errs <- s.Update(ctx, func(tx escrow.Tx) error {
				mu.Lock()
				runs[id]++
				first := runs[id] == 1
				mu.Unlock()
				// A read that goes to the database, so that the
				// transaction has begun, with its snapshot.
				if _, err := tx.Balance("nobody", "CNY"); !errors.Is(err, escrow.ErrNotFound) {
					return err
				}
				if first {
					begun.Done()
					begun.Wait()
				}
				if _, err := tx.Escrow(id); !errors.Is(err, escrow.ErrNotFound) {
					return fmt.Errorf("Escrow(%q): %v, want ErrNotFound", id, err)
				}
				if first {
					read.Done()
					read.Wait()
				}
				return openEscrow(tx, id)
			})
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if runs["o1"] != 1 || runs["o2"] != 1 {
		t.Errorf("runs %v, want each transaction to run once", runs)
	}
}

// TestAbsentEscrowThatExists checks a read of an escrow the store does
// not keep, answered as absent, when the escrow exists: made by another
// store (another process). The transaction runs again and finds it, and
// a write of the escrow decided on the wrong answer does not replace the
// one there.
func TestAbsentEscrowThatExists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema, a, b := turnStores(t) // escrow "e", priced 10, kept by a only
	// A read alone: the guard fails, and the next run reads "e".
	var got []string
	err := b.Update(ctx, func(tx escrow.Tx) error {
		e, err := tx.Escrow("e")
		got = append(got, fmt.Sprintf("%s %v", e.ID, err))
		return err
	})
	if err != nil || got[len(got)-1] != "e <nil>" {
		t.Fatalf("reading e from the other store: %v, runs %q", err, got)
	}
	// A write decided on the escrow's absence: in the run that thought
	// it absent, the insert finds the row and fails; the next run finds it
	// and writes nothing.
	c, _ := tripStore(t, schema, nil)
	runs := 0
	err = c.Update(ctx, func(tx escrow.Tx) error {
		runs++
		_, err := tx.Escrow("e")
		if errors.Is(err, escrow.ErrNotFound) {
			return tx.PutEscrow(escrow.Escrow{Terms: escrow.Terms{ID: "e", Buyer: "ann", Seller: "bob", Price: fen(99)},
				State: escrow.AwaitingPayment, CreatedAt: start, Version: 1})
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = a.View(ctx, func(tx escrow.Tx) error {
		e, err := tx.Escrow("e")
		if err == nil && e.Price.Units() != 10 {
			err = fmt.Errorf("escrow e priced %d, want 10: replaced by a write that thought it absent", e.Price.Units())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 2 {
		t.Errorf("%d runs, want 2: the first on the guess, the second reading e", runs)
	}

	// A write decided on the escrow's absence, then an error of the
	// function's own: the insert is not sent, and the absence is checked
	// in its place, so that the error returned is decided on e as it is.
	d, _ := tripStore(t, schema, nil)
	errMine, errFound := errors.New("an error decided on e's absence"), errors.New("e found")
	runs = 0
	err = d.Update(ctx, func(tx escrow.Tx) error {
		runs++
		_, err := tx.Escrow("e")
		if err == nil {
			return errFound
		}
		if !errors.Is(err, escrow.ErrNotFound) {
			return err
		}
		if err := tx.PutEscrow(escrow.Escrow{Terms: escrow.Terms{ID: "e", Buyer: "ann", Seller: "bob", Price: fen(99)},
			State: escrow.AwaitingPayment, CreatedAt: start, Version: 1}); err != nil {
			return err
		}
		return errMine
	})
	if !errors.Is(err, errFound) || runs != 2 {
		t.Errorf("Update: %v after %d runs, want %v after 2", err, runs, errFound)
	}
}

// TestAbsentGuessesPause checks that a store stops taking escrows it does
// not keep for absent where a third of such answers are wrong: here two
// stores, as two processes, each open escrows, and one also reads each
// escrow the other opened just after, so that half of its answers are
// wrong. After the first rounds its reads run once each.
func TestAbsentGuessesPause(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, a, b := turnStores(t)
	addBob(t, a)
	open := func(s *pgstore.Store, id string) {
		t.Helper()
		if err := s.Update(ctx, func(tx escrow.Tx) error { return openEscrow(tx, id) }); err != nil {
			t.Fatal(err)
		}
	}
	const rounds = 300
	late := 0 // runs of b's reads after the first 100 rounds
	for i := range rounds {
		open(a, fmt.Sprintf("a%d", i))
		open(b, fmt.Sprintf("b%d", i)) // answered absent, rightly
		runs := 0
		err := b.Update(ctx, func(tx escrow.Tx) error {
			runs++
			e, err := tx.Escrow(fmt.Sprintf("a%d", i)) // answered absent, wrongly, until answers pause
			if err != nil {
				return err
			}
			e.Version++
			return tx.PutEscrow(e)
		})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if i >= 100 {
			late += runs
		}
	}
	if limit := (rounds - 100) * 11 / 10; late > limit {
		t.Errorf("b's last %d reads ran %d times, want at most %d: it kept taking escrows for absent",
			rounds-100, late, limit)
	}
}
