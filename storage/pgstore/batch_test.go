package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/escrowkit/escrow"
)

// TestQueuedWriteFails checks what happens when a write that the store
// held back, to send with the next statement, fails on the server (here:
// text with a NUL byte, which PostgreSQL refuses): the read or the commit
// that sent it fails with the write's error, every later call of the
// transaction returns the same error, Update reports it without running
// the function again, and nothing of the transaction is applied, not the
// writes before the failing one nor those after it.
func TestQueuedWriteFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newSchema(t))
	defer s.Close()
	err := s.Update(ctx, func(tx escrow.Tx) error {
		if err := tx.PutAccount(escrow.Account{ID: "keep"}); err != nil {
			return err
		}
		return tx.PutBalance(escrow.Balance{Account: "keep", Currency: escrow.CNY, Available: fen(100), Held: fen(0)})
	})
	if err != nil {
		t.Fatal(err)
	}
	bad := escrow.Account{ID: "nul\x00byte"}
	badNote := &escrow.Event{Type: escrow.Deposited, At: start, Account: "keep", Note: "nul\x00byte"}
	errOwn := errors.New("the function's own error")
	for _, c := range []struct {
		name string
		fn   func(tx escrow.Tx) error
		want error
	}{
		{"a read sends it", func(tx escrow.Tx) error {
			if err := tx.PutBalance(escrow.Balance{Account: "keep", Currency: escrow.CNY, Available: fen(1), Held: fen(0)}); err != nil {
				return err
			}
			if err := tx.PutAccount(bad); err != nil {
				return fmt.Errorf("PutAccount queued: %w", err)
			}
			_, err := tx.Balance("keep", "CNY")
			if !errors.Is(err, escrow.ErrInvalidArgument) {
				return fmt.Errorf("the read after the failing write: %v, want ErrInvalidArgument", err)
			}
			// The transaction is aborted: every later call says so.
			if _, again := tx.Account("keep"); !errors.Is(again, escrow.ErrInvalidArgument) {
				return fmt.Errorf("a read after the failure: %v, want ErrInvalidArgument", again)
			}
			if again := tx.PutAccount(escrow.Account{ID: "later"}); !errors.Is(again, escrow.ErrInvalidArgument) {
				return fmt.Errorf("a write after the failure: %v, want ErrInvalidArgument", again)
			}
			return nil // Update reports the failure even so
		}, escrow.ErrInvalidArgument},
		{"the commit sends it", func(tx escrow.Tx) error {
			if err := tx.PutBalance(escrow.Balance{Account: "keep", Currency: escrow.CNY, Available: fen(2), Held: fen(0)}); err != nil {
				return err
			}
			if err := tx.AppendEvent(&escrow.Event{Type: escrow.Deposited, At: start, Account: "keep", Note: "fine"}); err != nil {
				return err
			}
			if err := tx.PutAccount(bad); err != nil {
				return err
			}
			return tx.PutAccount(escrow.Account{ID: "after"})
		}, escrow.ErrInvalidArgument},
		{"an appended event", func(tx escrow.Tx) error {
			if err := tx.PutAccount(escrow.Account{ID: "before"}); err != nil {
				return err
			}
			return tx.AppendEvent(badNote)
		}, escrow.ErrInvalidArgument},
		{"never sent", func(tx escrow.Tx) error {
			if err := tx.PutAccount(escrow.Account{ID: "unsent"}); err != nil {
				return err
			}
			return errOwn
		}, errOwn},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := s.Update(ctx, func(tx escrow.Tx) error { calls++; return c.fn(tx) })
			if !errors.Is(err, c.want) {
				t.Fatalf("Update = %v, want %v", err, c.want)
			}
			if calls != 1 {
				t.Errorf("the function ran %d times, want once: the failure is not a conflict", calls)
			}
			err = s.View(ctx, func(tx escrow.Tx) error {
				var ids []string
				if err := tx.Accounts(func(a escrow.Account) error { ids = append(ids, a.ID); return nil }); err != nil {
					return err
				}
				if len(ids) != 1 || ids[0] != "keep" {
					return fmt.Errorf("accounts %q, want only keep", ids)
				}
				b, err := tx.Balance("keep", "CNY")
				if err != nil || b.Available.Units() != 100 {
					return fmt.Errorf("balance of keep: %v, %v; want 100 available", b, err)
				}
				if pending, err := tx.(escrow.PendingTx).PendingEntries(); err != nil || len(pending) != 0 {
					return fmt.Errorf("pending entries %v, %v; want none", pending, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Nothing numbered either, now or once published.
			if err := s.Publish(ctx); err != nil {
				t.Fatal(err)
			}
			if got := notes(t, s); len(got) != 0 {
				t.Fatalf("events %q after the failed Update, want none", got)
			}
		})
	}
	// The store goes on working, and a read sees the writes queued before
	// it in the same transaction.
	err = s.Update(ctx, func(tx escrow.Tx) error {
		if err := tx.PutBalance(escrow.Balance{Account: "keep", Currency: escrow.CNY, Available: fen(7), Held: fen(3)}); err != nil {
			return err
		}
		b, err := tx.Balance("keep", "CNY")
		if err != nil || b.Available.Units() != 7 || b.Held.Units() != 3 {
			return fmt.Errorf("a read after a queued write: %v, %v; want 7 and 3", b, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadAhead checks the balances a read-write transaction reads ahead
// with an escrow: Balance answers as a read would, a balance not there is
// ErrNotFound, and once the transaction writes a balance, Balance returns
// what it wrote.
func TestReadAhead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newSchema(t))
	defer s.Close()
	bal := func(account string, avail, held int64) escrow.Balance {
		return escrow.Balance{Account: account, Currency: escrow.CNY, Available: fen(avail), Held: fen(held)}
	}
	err := s.Update(ctx, func(tx escrow.Tx) error {
		if err := tx.PutBalance(bal("ann", 100, 5)); err != nil {
			return err
		}
		return tx.PutEscrow(escrow.Escrow{Terms: escrow.Terms{ID: "e", Buyer: "ann", Seller: "bob", Price: fen(10)},
			State: escrow.AwaitingPayment, CreatedAt: start, Version: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	same := func(got, want escrow.Balance) bool {
		return got.Account == want.Account && got.Currency == want.Currency &&
			got.Available.Units() == want.Available.Units() && got.Held.Units() == want.Held.Units()
	}
	err = s.Update(ctx, func(tx escrow.Tx) error {
		if _, err := tx.Escrow("e"); err != nil {
			return err
		}
		if b, err := tx.Balance("ann", "CNY"); err != nil || !same(b, bal("ann", 100, 5)) {
			return fmt.Errorf("ann after the escrow: %+v, %v; want 100 and 5", b, err)
		}
		if b, err := tx.Balance("bob", "CNY"); !errors.Is(err, escrow.ErrNotFound) || b != (escrow.Balance{}) {
			return fmt.Errorf("bob after the escrow: %+v, %v; want ErrNotFound", b, err)
		}
		if _, err := tx.Balance("ann", "USD"); !errors.Is(err, escrow.ErrNotFound) {
			return fmt.Errorf("ann in USD: %v, want ErrNotFound", err)
		}
		if err := tx.PutBalance(bal("ann", 90, 15)); err != nil {
			return err
		}
		if err := tx.PutBalance(bal("bob", 7, 0)); err != nil {
			return err
		}
		if b, err := tx.Balance("ann", "CNY"); err != nil || !same(b, bal("ann", 90, 15)) {
			return fmt.Errorf("ann after writing it: %+v, %v; want 90 and 15", b, err)
		}
		if b, err := tx.Balance("bob", "CNY"); err != nil || !same(b, bal("bob", 7, 0)) {
			return fmt.Errorf("bob after writing him: %+v, %v; want 7 and 0", b, err)
		}
		// Read again with the escrow: what the transaction wrote.
		if _, err := tx.Escrow("e"); err != nil {
			return err
		}
		if b, err := tx.Balance("bob", "CNY"); err != nil || !same(b, bal("bob", 7, 0)) {
			return fmt.Errorf("bob read ahead again: %+v, %v; want 7 and 0", b, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx escrow.Tx) error {
		if b, err := tx.Balance("ann", "CNY"); err != nil || !same(b, bal("ann", 90, 15)) {
			return fmt.Errorf("ann after the commit: %+v, %v", b, err)
		}
		if b, err := tx.Balance("bob", "CNY"); err != nil || !same(b, bal("bob", 7, 0)) {
			return fmt.Errorf("bob after the commit: %+v, %v", b, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestManyQueuedWrites writes more rows in one transaction than the store
// holds back at once, so that some go out before the commit: all of them
// are stored, in order (the last write of a row wins); and when one of
// them fails, the write that sent it says so and nothing is stored.
func TestManyQueuedWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newSchema(t))
	defer s.Close()
	const n = 300
	err := s.Update(ctx, func(tx escrow.Tx) error {
		for i := range n {
			if err := tx.PutBalance(escrow.Balance{Account: fmt.Sprintf("a%03d", i%100), Currency: escrow.CNY,
				Available: fen(int64(i)), Held: fen(0)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	count := func() (n int, sum int64) {
		t.Helper()
		err := s.View(ctx, func(tx escrow.Tx) error {
			return tx.Balances(func(b escrow.Balance) error { n++; sum += b.Available.Units(); return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, sum
	}
	// Balance i%100 was last written with i = 200 + i%100.
	if got, sum := count(); got != 100 || sum != 100*200+99*100/2 {
		t.Fatalf("%d balances summing to %d, want 100 summing to %d", got, sum, 100*200+99*100/2)
	}
	var failed error
	err = s.Update(ctx, func(tx escrow.Tx) error {
		for i := range n {
			account := fmt.Sprintf("b%03d", i)
			if i == 70 {
				account = "nul\x00"
			}
			err := tx.PutBalance(escrow.Balance{Account: account, Currency: escrow.CNY, Available: fen(1), Held: fen(0)})
			if err != nil {
				failed = err
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, escrow.ErrInvalidArgument) || !errors.Is(failed, escrow.ErrInvalidArgument) {
		t.Fatalf("Update with a failing write among many: %v (the write: %v), want ErrInvalidArgument", err, failed)
	}
	if got, sum := count(); got != 100 || sum != 100*200+99*100/2 {
		t.Fatalf("after the failed Update: %d balances summing to %d, want them unchanged", got, sum)
	}
}
