package escrow_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
	"github.com/shopspring/decimal"
)

// checkStart is the manual clock's reading when a checked ledger opens.
var checkStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// tradedLedger returns a ledger over a fresh memstore after a few trades,
// one in each kind of state:
//
//	done      Completed (paid, shipped, confirmed, with a fee)
//	held      AwaitingShipment, holding 200.00 of alice's
//	unpaid    AwaitingPayment
//	returned  Refunded by the seller
func tradedLedger(t *testing.T) (*escrow.Ledger, *memstore.Store) {
	t.Helper()
	ctx := context.Background()
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	l, err := escrow.New(ctx, store, &escrow.Options{
		Clock: escrow.NewManualClock(checkStart),
		Fee:   escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cny := func(s string) escrow.Money { return escrow.MustParseMoney(s, escrow.CNY) }
	steps := []func() error{
		func() error { _, err := l.OpenAccount(ctx, "alice"); return err },
		func() error { _, err := l.OpenAccount(ctx, "bob"); return err },
		func() error { _, err := l.Deposit(ctx, "alice", cny("1000.00")); return err },
		func() error {
			for _, id := range []string{"done", "held", "unpaid", "returned"} {
				terms := escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Arbiter: "carol", Price: cny("100.00")}
				if id == "held" {
					terms.Price = cny("200.00")
				}
				if _, err := l.Open(ctx, terms); err != nil {
					return err
				}
			}
			return nil
		},
		func() error { _, err := l.Pay(ctx, "done", "alice"); return err },
		func() error { _, err := l.Ship(ctx, "done", "bob", "SF123"); return err },
		func() error { _, err := l.Confirm(ctx, "done", "alice"); return err },
		func() error { _, err := l.Pay(ctx, "held", "alice"); return err },
		func() error { _, err := l.Pay(ctx, "returned", "alice"); return err },
		func() error { _, err := l.Refund(ctx, "returned", "bob", cny("100.00")); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	return l, store
}

func TestCheckCleanLedger(t *testing.T) {
	ctx := context.Background()
	l, store := tradedLedger(t)
	// Make sure the ledger is what the corruption cases expect.
	for id, want := range map[string]escrow.State{
		"done": escrow.Completed, "held": escrow.AwaitingShipment, "unpaid": escrow.AwaitingPayment, "returned": escrow.Refunded,
	} {
		e, err := l.Escrow(ctx, id)
		if err != nil || e.State != want {
			t.Fatalf("escrow %q: state %v, %v; want %s", id, e.State, err, want)
		}
	}
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Ledger.Check on a clean ledger: %v", err)
	}
	if err := escrow.CheckMoney(ctx, store); err != nil {
		t.Fatalf("Check on a clean ledger: %v", err)
	}
	if err := escrow.CheckMoney(ctx, memstore.New()); err != nil {
		t.Fatalf("Check on an empty store: %v", err)
	}
	if err := escrow.CheckMoney(ctx, nil); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Fatalf("Check of no store: %v, want ErrInvalidArgument", err)
	}
}

func TestCheckReturnsStoreErrors(t *testing.T) {
	_, store := tradedLedger(t)
	store.Close()
	err := escrow.CheckMoney(context.Background(), store)
	if !errors.Is(err, escrow.ErrClosed) || errors.Is(err, escrow.ErrInvariant) {
		t.Fatalf("Check on a closed store = %v, want ErrClosed and no invariant error", err)
	}
}

// TestCheckFindsCorruption breaks the store behind the ledger's back, one
// way per case, and expects Check to name what broke.
func TestCheckFindsCorruption(t *testing.T) {
	cny := func(units int64) escrow.Money {
		m, err := escrow.MoneyFromUnits(units, escrow.CNY)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// editEscrow loads an escrow, lets change edit it and stores it back.
	editEscrow := func(id string, change func(e *escrow.Escrow)) func(tx escrow.Tx) error {
		return func(tx escrow.Tx) error {
			e, err := tx.Escrow(id)
			if err != nil {
				return err
			}
			change(&e)
			return tx.PutEscrow(e)
		}
	}
	// editBalance does the same for alice's CNY balance.
	editBalance := func(change func(b *escrow.Balance, tx escrow.Tx) error) func(tx escrow.Tx) error {
		return func(tx escrow.Tx) error {
			b, err := tx.Balance("alice", "CNY")
			if err != nil {
				return err
			}
			if err := change(&b, tx); err != nil {
				return err
			}
			return tx.PutBalance(b)
		}
	}
	tests := []struct {
		name    string
		rate    bool // alice rates bob Positive on "done" before the damage
		corrupt func(tx escrow.Tx) error
		want    []string // each must appear in some violation
	}{
		{
			name: "an extra unit in a balance",
			corrupt: editBalance(func(b *escrow.Balance, _ escrow.Tx) error {
				b.Available = cny(b.Available.Units() + 1)
				return nil
			}),
			want: []string{
				"balances in CNY add up to 1, not zero",
				`balance of "alice" in CNY is 70001/20000 but its journal gives 70000/20000`,
			},
		},
		{
			name: "a negative user balance",
			corrupt: editBalance(func(b *escrow.Balance, tx escrow.Tx) error {
				// The world's balance is the only negative amount there is.
				world, err := tx.Balance(escrow.WorldAccount, "CNY")
				if err != nil {
					return err
				}
				b.Available = world.Available
				return nil
			}),
			want: []string{`account "alice" has a negative balance: available -100000, held 20000 CNY`},
		},
		{
			name: "money in a system account's held bucket",
			corrupt: func(tx escrow.Tx) error {
				b, err := tx.Balance(escrow.FeeAccount, "CNY")
				if err != nil {
					return err
				}
				b.Held, b.Available = b.Available, cny(0)
				return tx.PutBalance(b)
			},
			want: []string{`system account "@fees" holds 60 CNY in the held bucket`},
		},
		{
			name: "a balance with an amount in another currency",
			corrupt: editBalance(func(b *escrow.Balance, _ escrow.Tx) error {
				b.Held = escrow.MustParseMoney("20000", escrow.JPY)
				return nil
			}),
			want: []string{`balance of "alice" in CNY has amounts in another currency`},
		},
		{
			name: "a journal entry that does not balance",
			corrupt: func(tx escrow.Tx) error {
				return tx.AppendEntry(&escrow.Entry{At: checkStart, Kind: escrow.EntryDeposit, Currency: escrow.CNY,
					Postings: []escrow.Posting{{Account: "alice", Bucket: escrow.Available, Change: 5}}})
			},
			want: []string{
				"journal entry 7 does not balance: 5",
				`balance of "alice" in CNY is 70000/20000 but its journal gives 70005/20000`,
			},
		},
		{
			name: "a journal with no balance behind it",
			corrupt: func(tx escrow.Tx) error {
				return tx.AppendEntry(&escrow.Entry{At: checkStart, Kind: escrow.EntryDeposit, Currency: escrow.JPY,
					Postings: []escrow.Posting{
						{Account: escrow.WorldAccount, Bucket: escrow.Available, Change: -300},
						{Account: "bob", Bucket: escrow.Available, Change: 300},
					}})
			},
			want: []string{`journal of "bob" in JPY gives 300/0 but there is no balance`},
		},
		{
			name: "a terminal escrow that still holds money",
			corrupt: editEscrow("held", func(e *escrow.Escrow) {
				e.State, e.DueAt = escrow.Completed, time.Time{}
			}),
			want: []string{`escrow "held" is Completed but still holds 200.00 CNY`},
		},
		{
			name: "a terminal escrow with a timer",
			corrupt: editEscrow("done", func(e *escrow.Escrow) {
				e.DueAt = checkStart.Add(time.Hour)
			}),
			want: []string{`escrow "done" is Completed but has a timer due`},
		},
		{
			name: "an escrow whose Held disagrees with the buyer's held balance",
			corrupt: editEscrow("held", func(e *escrow.Escrow) {
				e.Held, e.Refunded = cny(19999), cny(1) // its own arithmetic still adds up
			}),
			want: []string{`account "alice" holds 20000 CNY but its escrows hold 19999`},
		},
		{
			name: "an escrow whose money does not add up to its price",
			corrupt: editEscrow("done", func(e *escrow.Escrow) {
				e.Refunded = cny(1)
			}),
			want: []string{`escrow "done": held 0 + released 10000 + refunded 1 is not its price 10000`},
		},
		{
			name: "an unpaid escrow that accounts for money",
			corrupt: editEscrow("unpaid", func(e *escrow.Escrow) {
				e.Refunded = cny(10000)
			}),
			want: []string{`escrow "unpaid" was never paid but accounts for 10000`},
		},
		{
			name: "fees above what was released",
			corrupt: editEscrow("done", func(e *escrow.Escrow) {
				e.Fees = cny(10001)
			}),
			want: []string{`escrow "done": fees 10001 exceed released 10000`},
		},
		{
			name: "an escrow mixing currencies",
			corrupt: editEscrow("returned", func(e *escrow.Escrow) {
				e.Fees = escrow.MustParseMoney("0", escrow.JPY)
			}),
			want: []string{`escrow "returned" mixes currencies: JPY and CNY`},
		},
		{
			name: "an escrow in an unknown state",
			corrupt: editEscrow("unpaid", func(e *escrow.Escrow) {
				e.State = 42
			}),
			want: []string{`escrow "unpaid" has unknown state 42`},
		},
		{
			name: "a return that asks for more than is held",
			corrupt: editEscrow("held", func(e *escrow.Escrow) {
				e.State, e.Resume = escrow.ReturnShipped, escrow.AwaitingConfirmation
				e.Refund = escrow.RefundRequest{Amount: cny(20001)}
			}),
			want: []string{`escrow "held" is ReturnShipped for a refund of 200.01 CNY but holds 200.00 CNY`},
		},
		{
			name: "a return with no state to go back to",
			corrupt: editEscrow("held", func(e *escrow.Escrow) {
				e.State = escrow.AwaitingReturn
				e.Refund = escrow.RefundRequest{Amount: cny(100)}
			}),
			want: []string{`escrow "held" is AwaitingReturn with no state to return to`},
		},
		{
			name: "a cart that paid one escrow of two",
			corrupt: editEscrow("held", func(e *escrow.Escrow) {
				e.Cart, e.CartSize = "held", 2
			}),
			want: []string{`cart "held" paid 2 escrows but 1 of them record it`},
		},
		{
			name: "a cart whose escrows were paid at different times",
			corrupt: func(tx escrow.Tx) error {
				for _, id := range []string{"held", "returned"} {
					e, err := tx.Escrow(id)
					if err != nil {
						return err
					}
					e.Cart, e.CartSize = "held", 2
					if id == "returned" {
						e.PaidAt = e.PaidAt.Add(time.Second)
					}
					if err := tx.PutEscrow(e); err != nil {
						return err
					}
				}
				return nil
			},
			want: []string{`escrow "returned" of cart "held": size 2, paid at`},
		},
		{
			name: "escrows held for a buyer with no balance",
			corrupt: editEscrow("held", func(e *escrow.Escrow) {
				e.Buyer = "zed"
			}),
			want: []string{
				`escrows of buyer "zed" hold 20000 CNY but the account has no balance`,
				`account "alice" holds 20000 CNY but its escrows hold 0`,
			},
		},
		{
			name: "a rating whose ratee is not the escrow's other party",
			rate: true,
			corrupt: func(tx escrow.Tx) error {
				r, err := tx.Rating("done", "alice")
				if err != nil {
					return err
				}
				r.Ratee = "carol"
				return tx.PutRating(r)
			},
			want: []string{`rating by "alice" of "carol" on escrow "done" does not match the escrow's parties`},
		},
		{
			name: "an aggregate whose windows miss a rating",
			rate: true,
			corrupt: func(tx escrow.Tx) error {
				a, err := tx.Aggregate("bob", escrow.Seller)
				if err != nil {
					return err
				}
				a.Windows[0].Positive++
				return tx.PutAggregate(a)
			},
			want: []string{`aggregate of "bob" as the seller: windows`},
		},
		{
			name: "an aggregate whose Beta sums drifted",
			rate: true,
			corrupt: func(tx escrow.Tx) error {
				a, err := tx.Aggregate("bob", escrow.Seller)
				if err != nil {
					return err
				}
				a.BetaPositive++
				return tx.PutAggregate(a)
			},
			want: []string{`aggregate of "bob" as the seller: Beta sums`},
		},
		{
			name: "a day that counts a rating twice",
			rate: true,
			corrupt: func(tx escrow.Tx) error {
				return tx.DayRange("bob", escrow.Seller, 0, 1<<30, func(d escrow.DayCount) error {
					d.Positive++
					return tx.PutDayCount(d)
				})
			},
			want: []string{`of "bob" as the seller counts 2/0/0, its ratings give 1/0/0`},
		},
		{
			name: "a pair month above its ratings",
			rate: true,
			corrupt: func(tx escrow.Tx) error {
				return tx.PairMonths(func(p escrow.PairMonth) error {
					p.Positive++
					return tx.PutPairMonth(p)
				})
			},
			want: []string{`pair "bob" by "alice" in`, `counts +2/−0, its ratings give +1/−0`},
		},
		{
			name: "an item mark no counted rating holds",
			rate: true,
			corrupt: func(tx escrow.Tx) error {
				return tx.PutItemMark(escrow.ItemMark{Ratee: "bob", Rater: "alice", Item: "ghost", Escrow: "done", At: time.Unix(0, 0)})
			},
			want: []string{`the mark of "bob" by "alice" on item "ghost"`, `not the latest counted one`},
		},
		{
			name: "a voided rating that still counts",
			rate: true,
			corrupt: func(tx escrow.Tx) error {
				r, err := tx.Rating("done", "alice")
				if err != nil {
					return err
				}
				r.Voided, r.VoidedBy, r.VoidReason = true, "ops", "brushing"
				return tx.PutRating(r)
			},
			want: []string{`rating by "alice" on escrow "done" is withdrawn or voided and counts`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l, store := tradedLedger(t)
			if tc.rate {
				if _, err := l.Rate(ctx, "done", "alice", escrow.RatingInput{Score: escrow.Positive}); err != nil {
					t.Fatal(err)
				}
				if err := l.Check(ctx); err != nil {
					t.Fatalf("Check after rating, before the damage: %v", err)
				}
			}
			if err := store.Update(ctx, tc.corrupt); err != nil {
				t.Fatalf("corrupting the store: %v", err)
			}
			before, err := storagetest.Dump(ctx, store)
			if err != nil {
				t.Fatal(err)
			}
			err = l.Check(ctx)
			if !errors.Is(err, escrow.ErrInvariant) {
				t.Fatalf("Check = %v, want ErrInvariant", err)
			}
			var ie *escrow.InvariantError
			if !errors.As(err, &ie) {
				t.Fatalf("Check = %v, want an *InvariantError", err)
			}
			for _, want := range tc.want {
				found := false
				for _, v := range ie.Violations {
					found = found || strings.Contains(v, want)
				}
				if !found {
					t.Errorf("no violation mentions %q; got:\n  %s", want, strings.Join(ie.Violations, "\n  "))
				}
			}
			if !strings.HasPrefix(err.Error(), "escrow: ") {
				t.Errorf("error text %q does not start with the package name", err)
			}
			// Check reads; it never repairs.
			after, err := storagetest.Dump(ctx, store)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Errorf("Check changed the store")
			}
		})
	}
}

func TestInvariantErrorMessage(t *testing.T) {
	tests := []struct {
		violations []string
		want       string
	}{
		{[]string{"a"}, "escrow: 1 invariant violation(s); a"},
		{[]string{"a", "b", "c", "d", "e"}, "escrow: 5 invariant violation(s); a; b; c; d; e"},
		{[]string{"a", "b", "c", "d", "e", "f", "g"}, "escrow: 7 invariant violation(s); a; b; c; d; e; and 2 more"},
	}
	for _, tc := range tests {
		err := &escrow.InvariantError{Violations: tc.violations}
		if got := err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(err, escrow.ErrInvariant) {
			t.Errorf("%v does not wrap ErrInvariant", err)
		}
	}
}
