package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// poolNamed returns a pool on a new schema whose connections carry
// application name app, so that a test can find its own backends in
// pg_stat_activity among those of the tests running beside it.
func poolNamed(t *testing.T, app string) *pgxpool.Pool {
	t.Helper()
	return schemaPool(t, newSchema(t), func(cfg *pgxpool.Config) {
		cfg.ConnConfig.RuntimeParams["application_name"] = app
	})
}

// TestBackendKilledMidTransaction kills the server process of an Update
// while its transaction has written and not committed: Update reports
// the failure, nothing it wrote is there, and the store goes on working.
func TestBackendKilledMidTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := fmt.Sprintf("pgstore-kill-%d", time.Now().UnixNano())
	s, err := pgstore.New(ctx, poolNamed(t, app), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	calls := 0
	err = s.Update(ctx, func(tx escrow.Tx) error {
		calls++
		if err := tx.PutBalance(escrow.Balance{Account: "a", Currency: escrow.CNY, Available: fen(100), Held: fen(0)}); err != nil {
			return err
		}
		// The read sends the write, which the store held back, and sees it.
		if b, err := tx.Balance("a", "CNY"); err != nil || b.Available.Units() != 100 {
			return fmt.Errorf("the balance just written: %v, %v; want 100 available", b, err)
		}
		var killed int
		err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND state = 'idle in transaction'`, app).Scan(&killed)
		if err != nil || killed != 1 {
			return fmt.Errorf("terminated %d backends (%v), want 1", killed, err)
		}
		return tx.PutAccount(escrow.Account{ID: "a"})
	})
	if err == nil {
		t.Fatal("Update committed on a killed connection")
	}
	if calls != 1 {
		t.Errorf("fn ran %d times; a connection lost mid-transaction is reported, not retried", calls)
	}
	t.Logf("Update on a killed backend: %v", err)
	err = s.View(ctx, func(tx escrow.Tx) error {
		if _, err := tx.Balance("a", "CNY"); !errors.Is(err, escrow.ErrNotFound) {
			return fmt.Errorf("the balance written before the kill: %v, want ErrNotFound", err)
		}
		if _, err := tx.Account("a"); !errors.Is(err, escrow.ErrNotFound) {
			return fmt.Errorf("the account: %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: "b"}) }); err != nil {
		t.Fatalf("Update after the kill: %v", err)
	}
}

// TestCancelMidTransaction cancels an Update's context after it has
// written: Update fails with the context's error, nothing it wrote is
// there, and the store goes on working.
func TestCancelMidTransaction(t *testing.T) {
	t.Parallel()
	s := open(t, newSchema(t))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	err := s.Update(ctx, func(tx escrow.Tx) error {
		if err := tx.PutAccount(escrow.Account{ID: "a"}); err != nil {
			return err
		}
		cancel()
		return tx.PutAccount(escrow.Account{ID: "b"})
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with its context cancelled midway: %v, want context.Canceled", err)
	}
	bg := context.Background()
	err = s.View(bg, func(tx escrow.Tx) error {
		return tx.Accounts(func(a escrow.Account) error { return fmt.Errorf("account %q is there", a.ID) })
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(bg, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: "c"}) }); err != nil {
		t.Fatalf("Update after the cancel: %v", err)
	}
}
