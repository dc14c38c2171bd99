package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// testCapabilities checks the rules of the optional capabilities an
// adapter may have (BalanceAdder, EscrowClaimer, EventNotifier), each only
// if the adapter has it: a store without one skips its test.
func testCapabilities(t *testing.T, h Harness) {
	t.Run("BalanceAdder", func(t *testing.T) { capBalanceAdder(t, h) })
	t.Run("EscrowClaimer", func(t *testing.T) { capEscrowClaimer(t, h) })
	t.Run("EventNotifier", func(t *testing.T) { capEventNotifier(t, h) })
}

// capSeed stores the system accounts, a user account and one escrow, as
// a ledger over the store would have them.
func capSeed(t *testing.T, s escrow.Storage) {
	t.Helper()
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, a := range []escrow.Account{{ID: escrow.WorldAccount, System: true, CreatedAt: start},
			{ID: escrow.FeeAccount, System: true, CreatedAt: start}, {ID: "alice", CreatedAt: start}} {
			if err := tx.PutAccount(a); err != nil {
				return err
			}
		}
		return tx.PutEscrow(contractEscrow("e-claimed", time.Time{}))
	})
}

// capBalances returns what Balance, AccountBalances and Balances say of
// account's balance in CNY, each as its units, available then held;
// absent if the call found none.
func capBalances(t *testing.T, tx escrow.Tx, account string) (balance, listed, scanned []int64) {
	t.Helper()
	units := func(b escrow.Balance) []int64 { return []int64{b.Available.Units(), b.Held.Units()} }
	b, err := tx.Balance(account, escrow.CNY.Code)
	switch {
	case err == nil:
		balance = units(b)
	case !errors.Is(err, escrow.ErrNotFound):
		t.Fatalf("Balance(%s): %v", account, err)
	}
	all, err := tx.AccountBalances(account)
	if err != nil {
		t.Fatalf("AccountBalances(%s): %v", account, err)
	}
	for _, b := range all {
		if b.Currency == escrow.CNY {
			listed = units(b)
		}
	}
	err = tx.Balances(func(b escrow.Balance) error {
		if b.Account == account && b.Currency == escrow.CNY {
			scanned = units(b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Balances: %v", err)
	}
	return balance, listed, scanned
}

// capSums checks that every read of account's CNY balance gives want.
func capSums(t *testing.T, tx escrow.Tx, account string, want []int64, when string) {
	t.Helper()
	balance, listed, scanned := capBalances(t, tx, account)
	contractDiff(t, "Balance("+account+") "+when, want, balance)
	contractDiff(t, "AccountBalances("+account+") "+when, want, listed)
	contractDiff(t, "Balances, "+account+"'s, "+when, want, scanned)
}

func capBalanceAdder(t *testing.T, h Harness) {
	s := open(t, h)
	capSeed(t, s)
	has := false
	contractView(t, s, func(tx escrow.Tx) error {
		_, has = tx.(escrow.BalanceAdder)
		return nil
	})
	if !has {
		t.Skip("the store's Tx is no BalanceAdder")
	}

	// A user account is refused, and nothing is added, in the
	// transaction or after it commits.
	before := contractDump(t, s)
	contractUpdate(t, s, func(tx escrow.Tx) error {
		err := tx.(escrow.BalanceAdder).AddBalance("alice", escrow.CNY, 500, 0)
		if !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("AddBalance to a user account: got %v, want an error wrapping ErrInvalidArgument", err)
		}
		capSums(t, tx, "alice", nil, "after a refused AddBalance")
		return nil
	})
	contractUnchanged(t, s, before, "a refused AddBalance")

	// A system account's balance is made if it has none, and added to;
	// every read sees the sums, in the transaction and once it commits.
	contractUpdate(t, s, func(tx escrow.Tx) error {
		a := tx.(escrow.BalanceAdder)
		if err := a.AddBalance(escrow.WorldAccount, escrow.CNY, -50000, 0); err != nil {
			return err
		}
		capSums(t, tx, escrow.WorldAccount, []int64{-50000, 0}, "after one AddBalance")
		if err := a.AddBalance(escrow.WorldAccount, escrow.CNY, 1234, 0); err != nil {
			return err
		}
		capSums(t, tx, escrow.WorldAccount, []int64{-48766, 0}, "after two AddBalance")
		return a.AddBalance(escrow.FeeAccount, escrow.CNY, 59, 0)
	})
	contractView(t, s, func(tx escrow.Tx) error {
		capSums(t, tx, escrow.WorldAccount, []int64{-48766, 0}, "after the commit")
		capSums(t, tx, escrow.FeeAccount, []int64{59, 0}, "after the commit")
		return nil
	})
	contractUpdate(t, s, func(tx escrow.Tx) error {
		return tx.(escrow.BalanceAdder).AddBalance(escrow.FeeAccount, escrow.CNY, -9, 0)
	})
	contractView(t, s, func(tx escrow.Tx) error {
		capSums(t, tx, escrow.FeeAccount, []int64{50, 0}, "after a second transaction")
		return nil
	})

	// A View writes nothing.
	before = contractDump(t, s)
	contractView(t, s, func(tx escrow.Tx) error {
		a, ok := tx.(escrow.BalanceAdder)
		if !ok {
			return nil
		}
		if err := a.AddBalance(escrow.FeeAccount, escrow.CNY, 1, 0); !errors.Is(err, escrow.ErrReadOnly) {
			t.Errorf("AddBalance in a View: got %v, want an error wrapping ErrReadOnly", err)
		}
		return nil
	})
	contractUnchanged(t, s, before, "AddBalance in a View")
}

func capEscrowClaimer(t *testing.T, h Harness) {
	s := open(t, h)
	capSeed(t, s)
	has := false
	contractView(t, s, func(tx escrow.Tx) error {
		_, has = tx.(escrow.EscrowClaimer)
		return nil
	})
	if !has {
		t.Skip("the store's Tx is no EscrowClaimer")
	}
	before := contractDump(t, s)
	contractUpdate(t, s, func(tx escrow.Tx) error {
		c := tx.(escrow.EscrowClaimer)
		for i := range 2 { // a claim the transaction holds is true again
			if ok, err := c.ClaimEscrow("e-claimed"); !ok || err != nil {
				t.Errorf("ClaimEscrow of an escrow no other transaction holds, time %d: %v, %v; want true, nil", i+1, ok, err)
			}
		}
		ok, err := c.ClaimEscrow("e-missing")
		if ok {
			t.Errorf("ClaimEscrow of an escrow that does not exist: true")
		}
		contractNotFound(t, "ClaimEscrow of an escrow that does not exist", err)
		return nil
	})
	contractUnchanged(t, s, before, "ClaimEscrow")
	contractView(t, s, func(tx escrow.Tx) error {
		c, ok := tx.(escrow.EscrowClaimer)
		if !ok {
			return nil
		}
		if ok, err := c.ClaimEscrow("e-claimed"); ok || !errors.Is(err, escrow.ErrReadOnly) {
			t.Errorf("ClaimEscrow in a View: %v, %v; want false and an error wrapping ErrReadOnly", ok, err)
		}
		return nil
	})
	contractUnchanged(t, s, before, "ClaimEscrow in a View")
}

// capNotifyWait is how long an EventNotifier has to tell of a commit: it
// may tell of one made elsewhere, through the database, only once the
// news comes back.
const capNotifyWait = 5 * time.Second

func capEventNotifier(t *testing.T, h Harness) {
	s := open(t, h)
	n, ok := s.(escrow.EventNotifier)
	if !ok {
		t.Skip("the store is no EventNotifier")
	}
	capSeed(t, s)
	// Whatever an earlier commit left to tell, a commit of an event after
	// the call closes the channel the call returned.
	ch := n.EventsCommitted()
	contractUpdate(t, s, func(tx escrow.Tx) error {
		return tx.AppendEvent(&escrow.Event{Type: escrow.AccountOpened, At: start, Account: "alice", Actor: "alice"})
	})
	if p, ok := s.(escrow.Publisher); ok {
		if err := p.Publish(context.Background()); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	select {
	case <-ch:
	case <-time.After(capNotifyWait):
		t.Errorf("EventsCommitted: the channel was not closed %v after an event was committed", capNotifyWait)
	}
	// Close wakes the waiters, which then find the store closed, and a
	// waiter that comes after finds its channel closed already.
	ch = n.EventsCommitted()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// One wait for both: a channel that stays closed once it has passed.
	waited, cancel := context.WithTimeout(context.Background(), capNotifyWait)
	defer cancel()
	for _, c := range []struct {
		what string
		ch   <-chan struct{}
	}{{"taken before Close", ch}, {"taken after Close", n.EventsCommitted()}} {
		select {
		case <-c.ch:
		case <-waited.Done():
			t.Errorf("EventsCommitted: the channel %s was not closed %v after Close", c.what, capNotifyWait)
		}
	}
}
