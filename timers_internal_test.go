package escrow

import (
	"context"
	"testing"
)

// TestObservedClaimer: with an observer, the ledger wraps each
// transaction to count its writes; the wrapper is an EscrowClaimer
// exactly when the store's transaction is one, and passes claims on.
func TestObservedClaimer(t *testing.T) {
	for _, claims := range []bool{false, true} {
		var inner Tx = plainTx{}
		if claims {
			inner = &claimerTx{}
		}
		l := &Ledger{store: ctxStore{oneTxStore{inner}}, obs: quietObserver{}}
		err := l.update(context.Background(), "process_due", func(tx Tx) error {
			if tx == inner {
				t.Errorf("claims=%v: the transaction is not wrapped", claims)
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
		if c, ok := inner.(*claimerTx); ok && c.asked != 1 {
			t.Errorf("the store's transaction was asked for %d claims, want 1", c.asked)
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

type quietObserver struct{}

func (quietObserver) Call(CallInfo)     {}
func (quietObserver) Commit(CommitInfo) {}
func (quietObserver) Timer(TimerInfo)   {}
