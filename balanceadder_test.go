package escrow_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/shopspring/decimal"
)

// adderStore is a memstore whose read-write transactions are
// BalanceAdders, adding by reading and putting, as a store that keeps a
// system balance in one row would; it records the calls.
type adderStore struct {
	escrow.Storage
	mu    sync.Mutex
	calls []string // "account currency available held"
}

func (s *adderStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	return s.Storage.Update(ctx, func(tx escrow.Tx) error { return fn(&adderTx{Tx: tx, s: s}) })
}

type adderTx struct {
	escrow.Tx
	s *adderStore
}

func (t *adderTx) AddBalance(account string, c escrow.Currency, available, held int64) error {
	if !strings.HasPrefix(account, "@") {
		return fmt.Errorf("%w: %q is not a system account", escrow.ErrInvalidArgument, account)
	}
	t.s.mu.Lock()
	t.s.calls = append(t.s.calls, fmt.Sprintf("%s %s %d %d", account, c.Code, available, held))
	t.s.mu.Unlock()
	b, err := t.Balance(account, c.Code)
	if errors.Is(err, escrow.ErrNotFound) {
		b, err = escrow.Balance{Account: account, Currency: c,
			Available: escrow.RestoreMoney(0, c), Held: escrow.RestoreMoney(0, c)}, nil
	}
	if err != nil {
		return err
	}
	b.Available = escrow.RestoreMoney(b.Available.Units()+available, c)
	b.Held = escrow.RestoreMoney(b.Held.Units()+held, c)
	return t.PutBalance(b)
}

// TestBalanceAdderSameResult runs one market's day (deposits, payments, a
// release with a fee, a refund, a withdrawal, a refused overdraft, and a
// payout of fees with a refused one) on
// a store with BalanceAdder and on one without, each with and without an
// observer (whose countingTx must pass the capability on only when the
// store has it): the stores end identical, the writes counted are the
// same, Check passes, and AddBalance was called for the system accounts
// only, with their summed changes.
func TestBalanceAdderSameResult(t *testing.T) {
	type run struct {
		dump    []byte
		writes  []int
		calls   []string
		results []string
	}
	day := func(t *testing.T, adder, observed bool) run {
		var store escrow.Storage = memstore.New()
		t.Cleanup(func() { store.Close() })
		var as *adderStore
		if adder {
			as = &adderStore{Storage: store}
			store = as
		}
		opts := escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")}}
		rec := &recorder{}
		if observed {
			opts.Observer = rec
		}
		w := newWorldAt(t, store, opts, start)
		var r run
		note := func(what string, v any, err error) {
			r.results = append(r.results, fmt.Sprintf("%s: %v %v", what, v, err))
		}
		w.funded("alice", "bob")
		id := w.shipped("alice", "bob")
		e, err := w.l.Confirm(w.ctx, id, "alice")
		note("confirm", e.State, err)
		id2 := w.paid("alice", "dave")
		e, err = w.l.Refund(w.ctx, id2, "dave", cny("100.00"))
		note("refund", e.State, err)
		b, err := w.l.Withdraw(w.ctx, "bob", cny("50.00"))
		note("withdraw", b, err)
		b, err = w.l.Withdraw(w.ctx, "bob", cny("100000.00"))
		note("overdraft", b, err)
		// The platform pays some of its fees out, and cannot pay more
		// than it has: @fees is read, though it is added to blindly.
		b, err = w.l.Withdraw(w.ctx, escrow.FeeAccount, cny("0.10"))
		note("fees out", b, err)
		b, err = w.l.Withdraw(w.ctx, escrow.FeeAccount, cny("100.00"))
		note("fees overdraft", b, err)
		w.check()
		for _, acct := range []string{escrow.WorldAccount, escrow.FeeAccount, "alice", "bob", "dave"} {
			b, err := w.l.Balance(w.ctx, acct, escrow.CNY)
			note("balance "+acct, b, err)
		}
		j, err := w.l.Journal(w.ctx, escrow.FeeAccount, 0, 100)
		note("fee journal", j, err)
		r.dump = w.dump()
		if observed {
			rec.mu.Lock()
			for _, c := range rec.commits {
				r.writes = append(r.writes, c.Writes)
			}
			rec.mu.Unlock()
		}
		if as != nil {
			r.calls = as.calls
		}
		return r
	}
	for _, observed := range []bool{false, true} {
		t.Run(fmt.Sprintf("observed=%v", observed), func(t *testing.T) {
			plain, added := day(t, false, observed), day(t, true, observed)
			if !bytes.Equal(plain.dump, added.dump) {
				t.Errorf("stores differ:\nwithout AddBalance: %s\nwith it:            %s", plain.dump, added.dump)
			}
			if !slices.Equal(plain.results, added.results) {
				t.Errorf("replies differ:\nwithout AddBalance: %q\nwith it:            %q", plain.results, added.results)
			}
			if !slices.Equal(plain.writes, added.writes) {
				t.Errorf("writes counted differ: without AddBalance %v, with it %v", plain.writes, added.writes)
			}
			if observed && len(added.writes) == 0 {
				t.Error("the observer was told of no commit")
			}
			if len(plain.calls) != 0 {
				t.Errorf("AddBalance called on a store without it: %q", plain.calls)
			}
			// Deposits to alice and bob, one to alice per paid trade,
			// the fee of the release, bob's withdrawal and the fees paid
			// out; the refused overdrafts add to nothing.
			want := []string{"@world CNY -100000 0", "@world CNY -100000 0", "@world CNY -10000 0",
				"@fees CNY 60 0", "@world CNY -10000 0", "@world CNY 5000 0", "@fees CNY -10 0", "@world CNY 10 0"}
			if !slices.Equal(added.calls, want) {
				t.Errorf("AddBalance calls: %q, want %q", added.calls, want)
			}
		})
	}
}
