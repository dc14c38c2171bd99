package escrow

import (
	"context"
	"testing"
)

// TestObservedClaimer: with an observer, the ledger wraps each
// transaction to count its writes; through the wrapper, the ledger finds
// an EscrowClaimer exactly when the store's transaction is one, and its
// claims reach the store, whether or not the transaction is also a
// BalanceAdder, which the ledger finds as well, with its adds counted.
func TestObservedClaimer(t *testing.T) {
	for _, c := range []struct{ claims, adds bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		var inner Tx = plainTx{}
		switch {
		case c.claims && c.adds:
			inner = &claimerAdderTx{}
		case c.claims:
			inner = &claimerTx{}
		case c.adds:
			inner = adderTx{}
		}
		obs := &commitsObserver{}
		l := &Ledger{store: ctxStore{oneTxStore{inner}}, obs: obs}
		err := l.update(context.Background(), "process_due", func(tx Tx) error {
			if tx == inner {
				t.Errorf("%+v: the transaction is not wrapped", c)
			}
			a := balanceAdder(tx)
			if (a != nil) != c.adds {
				t.Errorf("%+v: the ledger finds a BalanceAdder: %v", c, a != nil)
			}
			if a != nil {
				if err := a.AddBalance(FeeAccount, CNY, 1, 0); err != nil {
					t.Errorf("AddBalance: %v", err)
				}
			}
			cl := escrowClaimer(tx)
			if (cl != nil) != c.claims {
				t.Fatalf("%+v: the ledger finds an EscrowClaimer: %v", c, cl != nil)
			}
			if cl != nil {
				if got, err := cl.ClaimEscrow("e1"); !got || err != nil {
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
		want := 0
		if c.adds {
			want = 1 // the add; a claim writes nothing
		}
		if len(obs.commits) != 1 || obs.commits[0].Writes != want {
			t.Errorf("%+v: commits observed %+v, want one of %d writes", c, obs.commits, want)
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

// commitsObserver keeps the commits it is told of.
type commitsObserver struct{ commits []CommitInfo }

func (*commitsObserver) Call(CallInfo)         {}
func (o *commitsObserver) Commit(c CommitInfo) { o.commits = append(o.commits, c) }
func (*commitsObserver) Timer(TimerInfo)       {}
