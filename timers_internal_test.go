package escrow

import (
	"context"
	"testing"
)

// TestObservedClaimer: with an observer, the ledger wraps each
// transaction to count its writes; the wrapper is an EscrowClaimer
// exactly when the store's transaction is one, and passes claims on,
// whether or not the transaction is also a BalanceAdder, which the wrapper
// stays.
func TestObservedClaimer(t *testing.T) {
	for _, c := range []struct{ claims, adds bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		claims := c.claims
		var inner Tx = plainTx{}
		switch {
		case c.claims && c.adds:
			inner = &claimerAdderTx{}
		case c.claims:
			inner = &claimerTx{}
		case c.adds:
			inner = adderTx{}
		}
		l := &Ledger{store: ctxStore{oneTxStore{inner}}, obs: quietObserver{}}
		err := l.update(context.Background(), "process_due", func(tx Tx) error {
			if tx == inner {
				t.Errorf("claims=%v: the transaction is not wrapped", claims)
			}
			if _, adds := tx.(BalanceAdder); adds != c.adds {
				t.Errorf("%+v: the wrapper is a BalanceAdder: %v", c, adds)
			}
			c, ok := tx.(EscrowClaimer)
			if ok != claims {
				t.Fatalf("claims=%v: the wrapper is an EscrowClaimer: %v", claims, ok)
			}
			if ok {
				if got, err := c.ClaimEscrow("e1"); !got || err != nil {
					t.Errorf("ClaimEscrow = %v, %v; want true, nil", got, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := inner.(interface{ claims() int }); ok && a.claims() != 1 {
			t.Errorf("the store's transaction was asked for %d claims, want 1", a.claims())
		}
	}
}

// oneTxStore runs every transaction on tx.
type oneTxStore struct {
	tx Tx
}

func (s oneTxStore) Update(_ context.Context, fn func(Tx) error) error { return fn(s.tx) }
func (s oneTxStore) View(_ context.Context, fn func(Tx) error) error   { return fn(s.tx) }
func (oneTxStore) Close() error                                        { return nil }

// plainTx is a Tx that claims nothing; its methods are not called.
type plainTx struct{ Tx }

// claimerTx is a Tx that claims every escrow and counts the claims.
type claimerTx struct {
	plainTx
	asked int
}

func (c *claimerTx) ClaimEscrow(string) (bool, error) {
	c.asked++
	return true, nil
}

func (c *claimerTx) claims() int { return c.asked }

// adderTx is a Tx that adds to balances, doing nothing.
type adderTx struct{ plainTx }

func (adderTx) AddBalance(string, Currency, int64, int64) error { return nil }

// claimerAdderTx is both.
type claimerAdderTx struct{ claimerTx }

func (*claimerAdderTx) AddBalance(string, Currency, int64, int64) error { return nil }

type quietObserver struct{}

func (quietObserver) Call(CallInfo)     {}
func (quietObserver) Commit(CommitInfo) {}
func (quietObserver) Timer(TimerInfo)   {}
