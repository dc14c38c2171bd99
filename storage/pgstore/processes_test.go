package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/jackc/pgx/v5"
)

// These tests stand two processes in for several: two stores, each with
// its own pool of connections, on one schema, each under a ledger of its
// own. What they share is only the database, as processes would.

var start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// openAccounts opens the accounts acct0 to acct<n-1> on l and gives each
// amount fen.
func openAccounts(ctx context.Context, t testing.TB, l *escrow.Ledger, n int, amount int64) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("acct%d", i)
		if _, err := l.OpenAccount(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Deposit(ctx, id, fen(amount)); err != nil {
			t.Fatal(err)
		}
	}
}

func fen(n int64) escrow.Money {
	m, err := escrow.MoneyFromUnits(n, escrow.CNY)
	if err != nil {
		panic(err)
	}
	return m
}

// ledgers opens n stores on one new schema and a ledger on each, all
// with clocks set to start.
func ledgers(t *testing.T, n int) ([]*escrow.Ledger, []*escrow.ManualClock) {
	t.Helper()
	schema := newSchema(t)
	var ls []*escrow.Ledger
	var clocks []*escrow.ManualClock
	for range n {
		s := open(t, schema)
		t.Cleanup(func() { s.Close() })
		c := escrow.NewManualClock(start)
		l, err := escrow.New(context.Background(), s, &escrow.Options{Clock: c})
		if err != nil {
			t.Fatal(err)
		}
		ls, clocks = append(ls, l), append(clocks, c)
	}
	return ls, clocks
}

// race runs fn(0) … fn(n-1) at once and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	begin := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			errs[i] = fn(i)
		}()
	}
	close(begin)
	wg.Wait()
	return errs
}

// TestOverdraftAcrossProcesses races two withdrawals, then two payments,
// from two stores for money that covers only one: exactly one passes
// each time, the other is refused for want of funds, and the ledger's
// invariants hold.
func TestOverdraftAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ls, _ := ledgers(t, 2)
	for _, id := range []string{"buyer", "seller"} {
		if _, err := ls[0].OpenAccount(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	const rounds = 20
	for round := range rounds {
		if _, err := ls[0].Deposit(ctx, "buyer", fen(100)); err != nil {
			t.Fatal(err)
		}
		errs := race(2, func(i int) error { _, err := ls[i].Withdraw(ctx, "buyer", fen(100)); return err })
		expectOneOf(t, fmt.Sprintf("round %d, withdrawals", round), errs)

		if _, err := ls[0].Deposit(ctx, "buyer", fen(100)); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			terms := escrow.Terms{ID: fmt.Sprintf("e-%d-%d", round, i), Buyer: "buyer", Seller: "seller", Price: fen(100)}
			if _, err := ls[i].Open(ctx, terms); err != nil {
				t.Fatal(err)
			}
		}
		errs = race(2, func(i int) error {
			_, err := ls[i].Pay(ctx, fmt.Sprintf("e-%d-%d", round, i), "buyer")
			return err
		})
		expectOneOf(t, fmt.Sprintf("round %d, payments", round), errs)
	}
	b, err := ls[1].Balance(ctx, "buyer", escrow.CNY)
	if err != nil {
		t.Fatal(err)
	}
	if b.Available.Units() != 0 || b.Held.Units() != rounds*100 {
		t.Errorf("buyer has %v available and %v held, want 0 and %d fen held", b.Available, b.Held, rounds*100)
	}
	if err := ls[1].Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// expectOneOf fails t unless exactly one of errs is nil and the other
// is ErrInsufficientFunds.
func expectOneOf(t *testing.T, what string, errs []error) {
	t.Helper()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, escrow.ErrInsufficientFunds):
			t.Fatalf("%s: %v", what, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%s: %d of 2 passed, want exactly 1 (%v)", what, ok, errs)
	}
}

// TestProcessDueAcrossProcesses runs ProcessDue from two stores at once
// over the same due escrows: each timer fires once, and the two runs'
// counts add up to the number of escrows.
func TestProcessDueAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ls, clocks := ledgers(t, 2)
	for _, id := range []string{"buyer", "seller"} {
		if _, err := ls[0].OpenAccount(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	const n = 60
	for i := range n {
		terms := escrow.Terms{ID: fmt.Sprintf("e-%02d", i), Buyer: "buyer", Seller: "seller", Price: fen(100),
			Timers: escrow.Timers{PayWithin: time.Hour}}
		if _, err := ls[i%2].Open(ctx, terms); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clocks {
		c.Advance(2 * time.Hour)
	}
	fired := make([]int, 2)
	errs := race(2, func(i int) error {
		var err error
		fired[i], err = ls[i].ProcessDue(ctx)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ProcessDue %d: %v", i, err)
		}
	}
	if fired[0]+fired[1] != n {
		t.Errorf("ProcessDue fired %d and %d timers, want %d in all", fired[0], fired[1], n)
	}
	closed := map[string]int{}
	evs, err := ls[0].Events(ctx, 0, 10*n)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Type == escrow.EscrowClosed {
			closed[ev.Escrow]++
		}
	}
	for i := range n {
		if id := fmt.Sprintf("e-%02d", i); closed[id] != 1 {
			t.Errorf("escrow %s closed %d times, want once", id, closed[id])
		}
	}
	if err := ls[1].Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOpenTogether opens several stores on one new schema at once: the
// migrations run once, under the advisory lock, and every Open succeeds.
func TestOpenTogether(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	errs := race(4, func(int) error {
		s, err := pgstore.Open(context.Background(), dsn, &pgstore.Options{Schema: schema})
		if err == nil {
			s.Close()
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
}

// TestOpenTogetherSerializableDefault is TestOpenTogether on connections
// whose transactions are SERIALIZABLE unless they say otherwise, as a
// database may be set up (default_transaction_isolation): the Opens that
// wait for the advisory lock must still see the migrations the first one
// applied, and apply none of them again.
func TestOpenTogetherSerializableDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := withParam(dsn, "default_transaction_isolation", "serializable")
	for round := range 3 {
		schema := newSchema(t)
		errs := race(4, func(int) error {
			s, err := pgstore.Open(ctx, d, &pgstore.Options{Schema: schema})
			if err == nil {
				s.Close()
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: Open %d: %v", round, i, err)
			}
		}
		var rows, versions int
		err := admin.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM `+
			pgx.Identifier{schema, "pgstore_migrations"}.Sanitize()).Scan(&rows, &versions)
		if err != nil || rows != versions || rows == 0 {
			t.Errorf("round %d: %d migrations recorded, %d versions: %v", round, rows, versions, err)
		}
	}
}

// TestPublishReadCommitted opens a store through a DSN that asks for
// serializable transactions by default: the store's own transactions name
// their isolation, but its publish, sent outside them, must still run at
// READ COMMITTED, where each publisher's snapshot is taken after the lock
// it waits for.
func TestPublishReadCommitted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := pgstore.Open(ctx, withParam(dsn, "default_transaction_isolation", "serializable"),
		&pgstore.Options{Schema: newSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var level string
	if err := pgstore.PoolOf(s).QueryRow(ctx, `SELECT current_setting('transaction_isolation')`).Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "read committed" {
		t.Errorf("a statement outside the store's transactions runs at %q, want read committed", level)
	}
}

// TestWaitEventsAcrossProcesses has a reader on one store wait for events
// with a poll of an hour while a writer on another store deposits: the
// store's notification must wake the reader at once.
func TestWaitEventsAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := newSchema(t)
	var ls []*escrow.Ledger
	for range 2 {
		s := open(t, schema)
		t.Cleanup(func() { s.Close() })
		l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(start), EventPoll: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	if _, err := ls[0].OpenAccount(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	evs, err := ls[1].Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	after := evs[len(evs)-1].Seq
	for round := range 3 {
		got := make(chan []escrow.Event, 1)
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		go func() {
			evs, err := ls[1].WaitEvents(wctx, after, 10)
			if err != nil {
				t.Errorf("round %d: WaitEvents: %v", round, err)
			}
			got <- evs
		}()
		time.Sleep(50 * time.Millisecond) // let the reader start waiting
		if _, err := ls[0].Deposit(ctx, "ann", fen(100)); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		evs := <-got
		cancel()
		if len(evs) != 1 || evs[0].Type != escrow.Deposited || evs[0].Seq != after+1 {
			t.Fatalf("round %d: the reader got %+v, want the deposit as event %d", round, evs, after+1)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("round %d: the reader woke %v after the deposit", round, d)
		}
		after = evs[0].Seq
	}
}
