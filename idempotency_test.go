package escrow_test

import (
	"errors"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// idempotentCall is one mutating method, set up so that it can succeed.
type idempotentCall struct {
	name string
	// setup brings the fixture to where call succeeds.
	setup func(f *world)
	call  func(f *world, key escrow.CallOption) (any, error)
	// other is the same method with different arguments.
	other func(f *world, key escrow.CallOption) (any, error)
}

func TestIdempotency(t *testing.T) {
	openDeal := func(f *world) {
		setup(f.t, func() (escrow.Escrow, error) { return f.l.Open(f.ctx, dealTerms("deal", false)) })
	}
	payDeal := func(f *world) {
		openDeal(f)
		setup(f.t, func() (escrow.Escrow, error) { return f.l.Pay(f.ctx, "deal", partyBuyer) })
	}
	shipDeal := func(f *world) {
		payDeal(f)
		setup(f.t, func() (escrow.Escrow, error) { return f.l.Ship(f.ctx, "deal", partySeller, "") })
	}
	requestOnDeal := func(f *world) {
		payDeal(f)
		setup(f.t, func() (escrow.Escrow, error) {
			return f.l.RequestRefund(f.ctx, "deal", partyBuyer, cny("40.00"), "")
		})
	}
	disputeDeal := func(f *world) {
		payDeal(f)
		setup(f.t, func() (escrow.Escrow, error) { return f.l.Dispute(f.ctx, "deal", partyBuyer, "") })
	}

	calls := []idempotentCall{
		{"OpenAccount", func(f *world) {},
			func(f *world, k escrow.CallOption) (any, error) { return f.l.OpenAccount(f.ctx, "newcomer", k) },
			func(f *world, k escrow.CallOption) (any, error) { return f.l.OpenAccount(f.ctx, "latecomer", k) }},
		{"Deposit", func(f *world) {},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Deposit(f.ctx, partyBuyer, cny("10.00"), k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Deposit(f.ctx, partyBuyer, cny("10.01"), k)
			}},
		{"Withdraw", func(f *world) {},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Withdraw(f.ctx, partyBuyer, cny("10.00"), k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Withdraw(f.ctx, partySeller, cny("10.00"), k)
			}},
		{"Open", func(f *world) {},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Open(f.ctx, dealTerms("deal", true), k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Open(f.ctx, dealTerms("deal", false), k)
			}},
		{"Pay", openDeal,
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Pay(f.ctx, "deal", partyBuyer, k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Pay(f.ctx, "deal", partyStranger, k)
			}},
		{"Ship", payDeal,
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Ship(f.ctx, "deal", partySeller, "SF-1", k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Ship(f.ctx, "deal", partySeller, "SF-2", k)
			}},
		{"Confirm", shipDeal,
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Confirm(f.ctx, "deal", partyBuyer, k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Confirm(f.ctx, "deal", partySeller, k)
			}},
		{"ConfirmMilestone", func(f *world) {
			setup(f.t, func() (escrow.Escrow, error) { return f.l.Open(f.ctx, dealTerms("deal", true)) },
				func() (escrow.Escrow, error) { return f.l.Pay(f.ctx, "deal", partyBuyer) },
				func() (escrow.Escrow, error) { return f.l.Ship(f.ctx, "deal", partySeller, "") })
		},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.ConfirmMilestone(f.ctx, "deal", partyBuyer, 0, k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.ConfirmMilestone(f.ctx, "deal", partyBuyer, 1, k)
			}},
		{"Cancel", openDeal,
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Cancel(f.ctx, "deal", partyBuyer, k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Cancel(f.ctx, "deal", partySeller, k)
			}},
		{"Refund", payDeal,
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Refund(f.ctx, "deal", partySeller, cny("10.00"), k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Refund(f.ctx, "deal", partySeller, cny("10.01"), k)
			}},
		{"RequestRefund", payDeal,
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.RequestRefund(f.ctx, "deal", partyBuyer, cny("40.00"), "late", k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.RequestRefund(f.ctx, "deal", partyBuyer, cny("40.00"), "very late", k)
			}},
		{"AgreeRefund", requestOnDeal,
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.AgreeRefund(f.ctx, "deal", partySeller, k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.AgreeRefund(f.ctx, "deal", partyBuyer, k)
			}},
		{"RefuseRefund", requestOnDeal,
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.RefuseRefund(f.ctx, "deal", partySeller, "no", k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.RefuseRefund(f.ctx, "deal", partySeller, "no!", k)
			}},
		{"Dispute", payDeal,
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Dispute(f.ctx, "deal", partyBuyer, "help", k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Dispute(f.ctx, "deal", partySeller, "help", k)
			}},
		{"Resolve", disputeDeal,
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Resolve(f.ctx, "deal", partyArbiter, escrow.Split{Buyer: cny("40.00"), Seller: cny("60.00")}, k)
			},
			func(f *world, k escrow.CallOption) (any, error) {
				return f.l.Resolve(f.ctx, "deal", partyArbiter, escrow.Split{Buyer: cny("60.00"), Seller: cny("40.00")}, k)
			}},
	}

	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.funded(partyBuyer, partySeller, partyStranger)
			c.setup(f)
			key := escrow.IdempotencyKey("key-" + c.name)
			before := f.dump()
			seq := uint64(len(eventsAfter(f, 0)))
			first, err := c.call(f, key)
			if err != nil {
				t.Fatalf("first call: %v", err)
			}
			if evs := eventsAfter(f, seq); len(evs) != 1 {
				t.Fatalf("first call wrote %d events, want 1", len(evs))
			}
			if after := f.dump(); string(after) == string(before) {
				t.Fatal("first call changed nothing")
			}
			f.check()

			done := f.dump()
			for i := 0; i < 2; i++ {
				again, err := c.call(f, key)
				if err != nil {
					t.Fatalf("repeat %d: %v", i, err)
				}
				if diff := cmp.Diff(first, again); diff != "" {
					t.Errorf("repeat %d returned another result (-first +repeat):\n%s", i, diff)
				}
				f.unchanged(done, "a repeated call")
			}

			if _, err := c.other(f, key); !errors.Is(err, escrow.ErrIdempotencyMismatch) {
				t.Fatalf("same key, other arguments: err = %v, want ErrIdempotencyMismatch", err)
			}
			f.unchanged(done, "a key reused with other arguments")
			f.check()
		})
	}

	t.Run("RepeatAfterStateMovedOn", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		openDeal(f)
		key := escrow.IdempotencyKey("pay-deal")
		paid, err := f.l.Pay(f.ctx, "deal", partyBuyer, key)
		if err != nil {
			t.Fatal(err)
		}
		setup(f.t, func() (escrow.Escrow, error) { return f.l.Ship(f.ctx, "deal", partySeller, "") })
		before := f.dump()
		// A retry that arrives late still gets the answer to the first
		// call, not an error about the escrow's new state.
		again, err := f.l.Pay(f.ctx, "deal", partyBuyer, key)
		if err != nil {
			t.Fatalf("late retry: %v", err)
		}
		if diff := cmp.Diff(paid, again); diff != "" {
			t.Errorf("late retry (-first +retry):\n%s", diff)
		}
		if again.State != escrow.AwaitingShipment || again.Version != 2 {
			t.Errorf("late retry returned %s version %d, want the paid escrow at version 2", again.State, again.Version)
		}
		f.unchanged(before, "a late retry")
		// Without the key the same call is a new one, and refused.
		if _, err := f.l.Pay(f.ctx, "deal", partyBuyer); !errors.Is(err, escrow.ErrInvalidTransition) {
			t.Errorf("paying twice without a key: err = %v, want ErrInvalidTransition", err)
		}
		f.unchanged(before, "a second payment")
	})

	t.Run("ArgumentsDoNotRunTogether", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		// Pay("x|buyer", "buyer") and Pay("x", "buyer|buyer") are different
		// calls even though their arguments joined by '|' read the same.
		terms := dealTerms("x|"+partyBuyer, false)
		setup(f.t, func() (escrow.Escrow, error) { return f.l.Open(f.ctx, terms) })
		key := escrow.IdempotencyKey("pay")
		if _, err := f.l.Pay(f.ctx, terms.ID, partyBuyer, key); err != nil {
			t.Fatal(err)
		}
		before := f.dump()
		if _, err := f.l.Pay(f.ctx, "x", partyBuyer+"|"+partyBuyer, key); !errors.Is(err, escrow.ErrIdempotencyMismatch) {
			t.Errorf("err = %v, want ErrIdempotencyMismatch", err)
		}
		f.unchanged(before, "a key reused with other arguments")
	})

	t.Run("KeysAreGlobal", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		key := escrow.IdempotencyKey("shared")
		if _, err := f.l.Deposit(f.ctx, partyBuyer, cny("5.00"), key); err != nil {
			t.Fatal(err)
		}
		before := f.dump()
		if _, err := f.l.OpenAccount(f.ctx, "someone", key); !errors.Is(err, escrow.ErrIdempotencyMismatch) {
			t.Errorf("key reused by another method: err = %v, want ErrIdempotencyMismatch", err)
		}
		if _, err := f.l.Open(f.ctx, dealTerms("deal", false), key); !errors.Is(err, escrow.ErrIdempotencyMismatch) {
			t.Errorf("key reused by Open: err = %v, want ErrIdempotencyMismatch", err)
		}
		f.unchanged(before, "reusing a key")
	})

	t.Run("FailedCallsAreNotRemembered", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		l, ctx := f.l, f.ctx

		// A withdrawal the balance cannot cover, retried after a deposit.
		withdraw := escrow.IdempotencyKey("withdraw")
		before := f.dump()
		if _, err := l.Withdraw(ctx, partySeller, cny("1500.00"), withdraw); !errors.Is(err, escrow.ErrInsufficientFunds) {
			t.Fatalf("err = %v, want ErrInsufficientFunds", err)
		}
		f.unchanged(before, "a failed withdrawal with a key")
		if _, err := l.Deposit(ctx, partySeller, cny("600.00")); err != nil {
			t.Fatal(err)
		}
		b, err := l.Withdraw(ctx, partySeller, cny("1500.00"), withdraw)
		if err != nil {
			t.Fatalf("retry after the deposit: %v", err)
		}
		if b.Available != cny("100.00") || b.Held.Units() != 0 {
			t.Errorf("balance after withdrawal %+v, want 100.00 available", b)
		}

		// A payment refused for want of money, retried after a deposit.
		expensive := dealTerms("expensive", false)
		expensive.Price = cny("1500.00")
		setup(f.t, func() (escrow.Escrow, error) { return l.Open(ctx, expensive) })
		pay := escrow.IdempotencyKey("pay")
		before = f.dump()
		if _, err := l.Pay(ctx, "expensive", partyBuyer, pay); !errors.Is(err, escrow.ErrInsufficientFunds) {
			t.Fatalf("err = %v, want ErrInsufficientFunds", err)
		}
		f.unchanged(before, "a failed payment with a key")
		if _, err := l.Deposit(ctx, partyBuyer, cny("600.00")); err != nil {
			t.Fatal(err)
		}
		e, err := l.Pay(ctx, "expensive", partyBuyer, pay)
		if err != nil || e.State != escrow.AwaitingShipment {
			t.Fatalf("retry after the deposit: %s, %v", e.State, err)
		}

		// A shipment too early, retried once the escrow is paid.
		setup(f.t, func() (escrow.Escrow, error) { return l.Open(ctx, dealTerms("deal", false)) })
		ship := escrow.IdempotencyKey("ship")
		before = f.dump()
		if _, err := l.Ship(ctx, "deal", partySeller, "", ship); !errors.Is(err, escrow.ErrInvalidTransition) {
			t.Fatalf("err = %v, want ErrInvalidTransition", err)
		}
		f.unchanged(before, "a failed shipment with a key")
		setup(f.t, func() (escrow.Escrow, error) { return l.Pay(ctx, "deal", partyBuyer) })
		if e, err := l.Ship(ctx, "deal", partySeller, "", ship); err != nil || e.State != escrow.AwaitingConfirmation {
			t.Fatalf("retry after payment: %s, %v", e.State, err)
		}
		expectPurses(f, map[string]purse{partyBuyer: {0, 160000}, partySeller: {10000, 0}})
		f.check()
	})

	t.Run("OpenTwiceWithoutKey", func(t *testing.T) {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		terms := dealTerms("deal", true)
		first, err := f.l.Open(f.ctx, terms)
		if err != nil {
			t.Fatal(err)
		}
		before := f.dump()
		f.clock.Advance(time.Hour)
		again, err := f.l.Open(f.ctx, dealTerms("deal", true))
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("second Open (-first +second):\n%s", diff)
		}
		f.unchanged(before, "opening the same escrow again")

		// Once paid, opening it again returns it as it now is.
		setup(f.t, func() (escrow.Escrow, error) { return f.l.Pay(f.ctx, "deal", partyBuyer) })
		before = f.dump()
		now, err := f.l.Open(f.ctx, terms)
		if err != nil {
			t.Fatalf("Open after payment: %v", err)
		}
		if now.State != escrow.AwaitingShipment || now.Version != 2 {
			t.Errorf("Open after payment returned %s version %d", now.State, now.Version)
		}
		f.unchanged(before, "opening a paid escrow again")
		f.check()
	})
}
