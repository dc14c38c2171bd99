package escrow_test

import (
	"errors"
	"strings"
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
	call  func(f *world, key ...escrow.CallOption) (any, error)
	// other is the same method with different arguments.
	other func(f *world, key ...escrow.CallOption) (any, error)
	// firstUse is what the mismatch error says the key was first used for.
	firstUse string
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
	completeDeal := func(f *world) {
		shipDeal(f)
		setup(f.t, func() (escrow.Escrow, error) { return f.l.Confirm(f.ctx, "deal", partyBuyer) })
	}
	rateDeal := func(f *world) {
		completeDeal(f)
		if _, err := f.l.Rate(f.ctx, "deal", partyBuyer, escrow.RatingInput{Score: escrow.Neutral}); err != nil {
			f.t.Fatal(err)
		}
	}
	disputeDeal := func(f *world) {
		payDeal(f)
		setup(f.t, func() (escrow.Escrow, error) { return f.l.Dispute(f.ctx, "deal", partyBuyer, "") })
	}

	calls := []idempotentCall{
		{"OpenAccount", func(f *world) {},
			func(f *world, k ...escrow.CallOption) (any, error) { return f.l.OpenAccount(f.ctx, "newcomer", k...) },
			func(f *world, k ...escrow.CallOption) (any, error) { return f.l.OpenAccount(f.ctx, "latecomer", k...) }, `to open account "newcomer"`},
		{"Deposit", func(f *world) {},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Deposit(f.ctx, partyBuyer, cny("10.00"), k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Deposit(f.ctx, partyBuyer, cny("10.01"), k...)
			}, `to deposit into account "buyer"`},
		{"Withdraw", func(f *world) {},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Withdraw(f.ctx, partyBuyer, cny("10.00"), k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Withdraw(f.ctx, partySeller, cny("10.00"), k...)
			}, `to withdraw from account "buyer"`},
		{"Open", func(f *world) {},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Open(f.ctx, dealTerms("deal", true), k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Open(f.ctx, dealTerms("deal", false), k...)
			}, `to open escrow "deal"`},
		{"Pay", openDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Pay(f.ctx, "deal", partyBuyer, k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Pay(f.ctx, "deal", partyStranger, k...)
			}, `to pay escrow "deal"`},
		{"Ship", payDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Ship(f.ctx, "deal", partySeller, "SF-1", k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Ship(f.ctx, "deal", partySeller, "SF-2", k...)
			}, `to ship escrow "deal"`},
		{"Confirm", shipDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Confirm(f.ctx, "deal", partyBuyer, k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Confirm(f.ctx, "deal", partySeller, k...)
			}, `to confirm escrow "deal"`},
		{"ConfirmMilestone", func(f *world) {
			setup(f.t, func() (escrow.Escrow, error) { return f.l.Open(f.ctx, dealTerms("deal", true)) },
				func() (escrow.Escrow, error) { return f.l.Pay(f.ctx, "deal", partyBuyer) },
				func() (escrow.Escrow, error) { return f.l.Ship(f.ctx, "deal", partySeller, "") })
		},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.ConfirmMilestone(f.ctx, "deal", partyBuyer, 0, k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.ConfirmMilestone(f.ctx, "deal", partyBuyer, 1, k...)
			}, `to confirm a milestone of escrow "deal"`},
		{"Cancel", openDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Cancel(f.ctx, "deal", partyBuyer, k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Cancel(f.ctx, "deal", partySeller, k...)
			}, `to cancel escrow "deal"`},
		{"Refund", payDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Refund(f.ctx, "deal", partySeller, cny("10.00"), k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Refund(f.ctx, "deal", partySeller, cny("10.01"), k...)
			}, `to refund escrow "deal"`},
		{"RequestRefund", payDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.RequestRefund(f.ctx, "deal", partyBuyer, cny("40.00"), "late", k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.RequestRefund(f.ctx, "deal", partyBuyer, cny("40.00"), "very late", k...)
			}, `to request a refund on escrow "deal"`},
		{"AgreeRefund", requestOnDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.AgreeRefund(f.ctx, "deal", partySeller, k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.AgreeRefund(f.ctx, "deal", partyBuyer, k...)
			}, `to agree to the refund on escrow "deal"`},
		{"RefuseRefund", requestOnDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.RefuseRefund(f.ctx, "deal", partySeller, "no", k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.RefuseRefund(f.ctx, "deal", partySeller, "no!", k...)
			}, `to refuse the refund on escrow "deal"`},
		{"Dispute", payDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Dispute(f.ctx, "deal", partyBuyer, "help", k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Dispute(f.ctx, "deal", partySeller, "help", k...)
			}, `to dispute escrow "deal"`},
		{"Resolve", disputeDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Resolve(f.ctx, "deal", partyArbiter, escrow.Split{Buyer: cny("40.00"), Seller: cny("60.00")}, k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Resolve(f.ctx, "deal", partyArbiter, escrow.Split{Buyer: cny("60.00"), Seller: cny("40.00")}, k...)
			}, `to resolve escrow "deal"`},
		{"Rate", completeDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Rate(f.ctx, "deal", partyBuyer, escrow.RatingInput{Score: escrow.Positive}, k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Rate(f.ctx, "deal", partyBuyer, escrow.RatingInput{Score: escrow.Positive, Comment: "fine"}, k...)
			}, `to rate the other party of escrow "deal"`},
		{"Revise", rateDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Revise(f.ctx, "deal", partyBuyer, escrow.Positive, "", k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Revise(f.ctx, "deal", partyBuyer, escrow.Positive, "better now", k...)
			}, `to revise the rating on escrow "deal"`},
		{"Reply", rateDeal,
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Reply(f.ctx, "deal", partyBuyer, partySeller, "thanks", k...)
			},
			func(f *world, k ...escrow.CallOption) (any, error) {
				return f.l.Reply(f.ctx, "deal", partyBuyer, partySeller, "thank you", k...)
			}, `to reply to the rating on escrow "deal"`},
	}

	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.funded(partyBuyer, partySeller, partyStranger)
			c.setup(f)
			key := escrow.IdempotencyKey("key-" + c.name)
			before := f.dump()
			seq := uint64(len(eventsAfter(f, 0)))
			replayed := true
			first, err := c.call(f, key, escrow.Replayed(&replayed))
			if err != nil {
				t.Fatalf("first call: %v", err)
			}
			if replayed {
				t.Error("the first call reports a replay")
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
				again, err := c.call(f, key, escrow.Replayed(&replayed))
				if err != nil {
					t.Fatalf("repeat %d: %v", i, err)
				}
				if !replayed {
					t.Errorf("repeat %d does not report a replay", i)
				}
				if diff := cmp.Diff(first, again); diff != "" {
					t.Errorf("repeat %d returned another result (-first +repeat):\n%s", i, diff)
				}
				f.unchanged(done, "a repeated call")
			}

			replayed = true
			opts := []escrow.CallOption{key, escrow.Replayed(&replayed)}
			replayed = true // as a reused option would leave it
			_, err = c.other(f, opts...)
			var mismatch *escrow.IdempotencyMismatchError
			if !errors.Is(err, escrow.ErrIdempotencyMismatch) || !errors.As(err, &mismatch) {
				t.Fatalf("same key, other arguments: err = %v, want an IdempotencyMismatchError", err)
			}
			if want := `escrow: idempotency key reused with different arguments: key "key-` + c.name +
				`" was first used ` + c.firstUse; err.Error() != want {
				t.Errorf("mismatch error:\n got %s\nwant %s", err, want)
			}
			assertNoRequest(t, err)
			if replayed {
				t.Error("a refused call reports a replay")
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
		_, err := f.l.OpenAccount(f.ctx, "someone", key)
		var mismatch *escrow.IdempotencyMismatchError
		if !errors.As(err, &mismatch) || *mismatch != (escrow.IdempotencyMismatchError{Key: "shared", Call: "deposit", Account: partyBuyer}) {
			t.Errorf("key reused by another method: err = %v, want an IdempotencyMismatchError naming the deposit", err)
		}
		assertNoRequest(t, err)
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

// assertNoRequest fails the test if err's message shows the canonical
// form of a call, which is the ledger's business, not the caller's.
func assertNoRequest(t *testing.T, err error) {
	t.Helper()
	for _, internal := range []string{"v1 ", "escrow=", "actor=", "amount=", "account=", "id="} {
		if strings.Contains(err.Error(), internal) {
			t.Errorf("error %q shows the canonical request (%q)", err, internal)
		}
	}
}

// TestReplayedOption checks the replay flag where it is not a first call
// or a plain retry: no key, a failing call, a retry after the retention,
// a nil pointer.
func TestReplayedOption(t *testing.T) {
	f := newFixture(t)
	f.funded(partyBuyer, partySeller)
	l, ctx := f.l, f.ctx

	replayed := true
	if _, err := l.Deposit(ctx, partyBuyer, cny("1.00"), escrow.Replayed(&replayed)); err != nil || replayed {
		t.Errorf("a call without a key: replayed %v, err %v; want false, nil", replayed, err)
	}

	// A call that fails reports no replay, with a key or without.
	key := escrow.IdempotencyKey("withdraw")
	for _, opts := range [][]escrow.CallOption{{escrow.Replayed(&replayed)}, {key, escrow.Replayed(&replayed)}} {
		replayed = true // as an option used before would leave it
		if _, err := l.Withdraw(ctx, partyBuyer, cny("5000.00"), opts...); !errors.Is(err, escrow.ErrInsufficientFunds) || replayed {
			t.Errorf("a failing call: replayed %v, err %v; want false, ErrInsufficientFunds", replayed, err)
		}
	}

	// A key past its retention is free: the call runs again, no replay.
	if _, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), key); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(escrow.DefaultIdempotencyRetention)
	b, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), key, escrow.Replayed(&replayed))
	if err != nil || replayed || b.Available != cny("999.00") {
		t.Errorf("a call after the retention: %s available, replayed %v, err %v; want 999.00 CNY, false, nil",
			b.Available, replayed, err)
	}
	if _, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), key, escrow.Replayed(&replayed)); err != nil || !replayed {
		t.Errorf("its retry: replayed %v, err %v; want true, nil", replayed, err)
	}

	// A nil pointer is a mistake in the caller, refused before anything
	// happens.
	before := f.dump()
	for name, call := range map[string]func() error{
		"Deposit": func() error { _, err := l.Deposit(ctx, partyBuyer, cny("1.00"), escrow.Replayed(nil)); return err },
		"Open": func() error {
			_, err := l.Open(ctx, dealTerms("deal", false), key, escrow.Replayed(nil))
			return err
		},
		"Rate": func() error {
			_, err := l.Rate(ctx, "deal", partyBuyer, escrow.RatingInput{Score: escrow.Positive}, escrow.Replayed(nil))
			return err
		},
	} {
		if err := call(); !errors.Is(err, escrow.ErrInvalidArgument) || !strings.Contains(err.Error(), "Replayed") {
			t.Errorf("%s with Replayed(nil): err = %v, want ErrInvalidArgument naming Replayed", name, err)
		}
	}
	f.unchanged(before, "calls with Replayed(nil)")
}

// TestMismatchNamesFirstCall checks what the mismatch error says of the
// first call, from records of every form: the call and what it was made
// on for a versioned request, the call alone for a request of the form
// before versions, and nothing for one of a form it does not know. The
// error never shows the request itself, and the call changes nothing.
func TestMismatchNamesFirstCall(t *testing.T) {
	tests := []struct {
		request string
		want    escrow.IdempotencyMismatchError
		says    string
	}{
		{`v1 pay escrow="deal \"one\"" actor="buyer"`, escrow.IdempotencyMismatchError{Call: "pay", Escrow: `deal "one"`},
			`to pay escrow "deal \"one\""`},
		{`v1 confirm-milestone escrow="e=1 x" actor="buyer" milestone=1`,
			escrow.IdempotencyMismatchError{Call: "confirm_milestone", Escrow: "e=1 x"}, `to confirm a milestone of escrow "e=1 x"`},
		{`v1 resolve escrow="e2" actor="arb" buyer-part="1.00 CNY" seller-part="2.00 CNY"`,
			escrow.IdempotencyMismatchError{Call: "resolve", Escrow: "e2"}, `to resolve escrow "e2"`},
		{`v1 withdraw account="alice" amount="1.00 CNY"`, escrow.IdempotencyMismatchError{Call: "withdraw", Account: "alice"},
			`to withdraw from account "alice"`},
		{`v1 open-account id="bob"`, escrow.IdempotencyMismatchError{Call: "open_account", Account: "bob"}, `to open account "bob"`},
		{`v1 open id="e3" buyer="alice" seller="bob" price="1.00 CNY"`, escrow.IdempotencyMismatchError{Call: "open", Escrow: "e3"},
			`to open escrow "e3"`},
		{`v1 rate escrow="e4" rater="alice" score=1`, escrow.IdempotencyMismatchError{Call: "rate", Escrow: "e4"},
			`to rate the other party of escrow "e4"`},
		{`v1 revise escrow="e5" rater="alice" score=3 comment=""`, escrow.IdempotencyMismatchError{Call: "revise", Escrow: "e5"},
			`to revise the rating on escrow "e5"`},
		{`v1 reply escrow="e6" rater="alice" actor="bob" text="sorry"`, escrow.IdempotencyMismatchError{Call: "reply", Escrow: "e6"},
			`to reply to the rating on escrow "e6"`},
		{`v1 withdraw-rating escrow="e7" rater="alice"`, escrow.IdempotencyMismatchError{Call: "withdraw_rating", Escrow: "e7"},
			`to withdraw the rating on escrow "e7"`},
		{`v1 void-rating escrow="e8" rater="alice" operator="ops" reason="brushing"`,
			escrow.IdempotencyMismatchError{Call: "void_rating", Escrow: "e8"}, `to void the rating on escrow "e8"`},
		{`v1 pay-all actor="alice" escrow="e9" escrow="e10"`, escrow.IdempotencyMismatchError{Call: "pay_all", Escrow: "e9"},
			`to pay the cart of escrow "e9"`},
		{`pay|"asking"|"dave"|""|0|0|0|0`, escrow.IdempotencyMismatchError{Call: "pay"}, "for pay"},
		{`open|escrow.Terms{ID:"done", Buyer:"alice"}`, escrow.IdempotencyMismatchError{Call: "open"}, "for open"},
		{`deposit|alice|10000.00 CNY`, escrow.IdempotencyMismatchError{Call: "deposit"}, "for deposit"},
		{`v2 pay escrow="x"`, escrow.IdempotencyMismatchError{}, "for another call"},
		{`v1 fly escrow="x"`, escrow.IdempotencyMismatchError{}, "for another call"},
		{``, escrow.IdempotencyMismatchError{}, "for another call"},
	}
	for _, tc := range tests {
		t.Run(tc.request, func(t *testing.T) {
			f := newFixture(t)
			f.funded(partyBuyer, partySeller)
			f.must("put record", f.store.Update(f.ctx, func(tx escrow.Tx) error {
				return tx.PutIdempotency(escrow.IdempotencyRecord{Key: "k", Request: tc.request, Result: []byte(`{}`),
					At: f.clock.Now()})
			}))
			before := f.dump()
			replayed := true
			_, err := f.l.Deposit(f.ctx, partyBuyer, cny("1.00"), escrow.IdempotencyKey("k"), escrow.Replayed(&replayed))
			var got *escrow.IdempotencyMismatchError
			if !errors.As(err, &got) {
				t.Fatalf("err = %v, want an IdempotencyMismatchError", err)
			}
			tc.want.Key = "k"
			if diff := cmp.Diff(tc.want, *got); diff != "" {
				t.Errorf("error fields (-want +got):\n%s", diff)
			}
			if want := `escrow: idempotency key reused with different arguments: key "k" was first used ` + tc.says; err.Error() != want {
				t.Errorf("message:\n got %s\nwant %s", err, want)
			}
			if tc.request != "" && strings.Contains(err.Error(), tc.request) {
				t.Errorf("message %q shows the request", err)
			}
			if replayed {
				t.Error("a refused call reports a replay")
			}
			f.unchanged(before, "a refused call")
		})
	}
}

// TestKeysThatDoNotPrint pins the key rule where it parts from the ID
// rule: a character that does not print but is no control or
// bidirectional formatting character (U+200B, U+00AD) is the key's, byte
// for byte, while the ones the rule names are refused and change nothing.
func TestKeysThatDoNotPrint(t *testing.T) {
	f := newFixture(t)
	f.funded(partyBuyer)
	l, ctx := f.l, f.ctx

	var replayed bool
	for _, key := range []string{"k\u200b", "k\u00ad"} {
		if _, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), escrow.IdempotencyKey(key)); err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		if _, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), escrow.IdempotencyKey(key), escrow.Replayed(&replayed)); err != nil || !replayed {
			t.Errorf("retry under %q: replayed %v, err %v; want true, nil", key, replayed, err)
		}
	}
	// "k" is a third key, not a retry of either.
	b, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), escrow.IdempotencyKey("k"), escrow.Replayed(&replayed))
	if err != nil || replayed || b.Available != cny("997.00") {
		t.Errorf(`key "k": %s available, replayed %v, err %v; want 997.00 CNY, false, nil`, b.Available, replayed, err)
	}

	before := f.dump()
	for _, key := range []string{"k\u0085", "k\u009b", "k\u2066", "k\u200e"} {
		if _, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), escrow.IdempotencyKey(key)); !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("key %q: %v, want ErrInvalidArgument", key, err)
		}
	}
	f.unchanged(before, "calls under refused keys")
}

// TestTwoKeys: an empty key is refused even when another key follows it,
// changing nothing; of two keys, the last is the call's.
func TestTwoKeys(t *testing.T) {
	f := newFixture(t)
	f.funded(partyBuyer)
	l, ctx := f.l, f.ctx

	before := f.dump()
	if _, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), escrow.IdempotencyKey(""), escrow.IdempotencyKey("k")); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("an empty key and then k: %v, want ErrInvalidArgument", err)
	}
	f.unchanged(before, "a call with an empty key and another")

	if _, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), escrow.IdempotencyKey("a"), escrow.IdempotencyKey("b")); err != nil {
		t.Fatal(err)
	}
	var replayed bool
	if _, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), escrow.IdempotencyKey("b"), escrow.Replayed(&replayed)); err != nil || !replayed {
		t.Errorf("retry under b: replayed %v, err %v; want true, nil", replayed, err)
	}
	b, err := l.Withdraw(ctx, partyBuyer, cny("1.00"), escrow.IdempotencyKey("a"), escrow.Replayed(&replayed))
	if err != nil || replayed || b.Available != cny("998.00") {
		t.Errorf("a call under a: %s available, replayed %v, err %v; want 998.00 CNY, false, nil", b.Available, replayed, err)
	}
}
