package storagetest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/shopspring/decimal"
)

// The parties of the escrows the behaviour tests open. The arbiter has no
// account, since the ledger does not need one; the stranger has one, so that
// a refusal of the stranger is about the escrow and not about the account.
const (
	partyBuyer    = "buyer"
	partySeller   = "seller"
	partyArbiter  = "arbiter"
	partyStranger = "stranger"
)

// dealTerms are the terms of a 100.00 CNY trade, in two milestones of 30.00
// and 70.00 if milestones is set.
func dealTerms(id string, milestones bool) escrow.Terms {
	t := escrow.Terms{ID: id, Buyer: partyBuyer, Seller: partySeller, Arbiter: partyArbiter,
		Price: cny("100.00"), Item: "a bicycle"}
	if milestones {
		t.Milestones = []escrow.Milestone{{Name: "frame", Amount: cny("30.00")}, {Name: "wheels", Amount: cny("70.00")}}
	}
	return t
}

// refusal is one call that must fail with want and change nothing.
type refusal struct {
	name string
	call func() error
	want error
	// detail, if set, checks the typed error behind the sentinel.
	detail func(t *testing.T, err error)
}

// amountErrorFor returns a detail check that err is an *AmountError about
// amount in currency code.
func amountErrorFor(amount, code string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *escrow.AmountError
		if !errors.As(err, &ae) {
			t.Fatalf("err %T is not an *AmountError", err)
		}
		if ae.Amount != amount || ae.Currency != code {
			t.Errorf("AmountError about %q %q, want %q %q", ae.Amount, ae.Currency, amount, code)
		}
	}
}

func testRejectedCallsChangeNothing(t *testing.T, h Harness) {
	f := newFixture(t, h)
	l, ctx := f.l, f.ctx
	f.accounts(partyBuyer, partySeller, partyStranger)
	open := func(terms escrow.Terms, steps ...func(id string) error) {
		t.Helper()
		if _, err := l.Open(ctx, terms); err != nil {
			t.Fatalf("Open(%s): %v", terms.ID, err)
		}
		for _, step := range steps {
			if err := step(terms.ID); err != nil {
				t.Fatalf("setting up %s: %v", terms.ID, err)
			}
		}
	}
	pay := func(id string) error { _, err := l.Pay(ctx, id, partyBuyer); return err }
	ship := func(id string) error { _, err := l.Ship(ctx, id, partySeller, ""); return err }
	dispute := func(id string) error { _, err := l.Dispute(ctx, id, partySeller, ""); return err }
	extend := func(id string) error { _, err := l.Extend(ctx, id, partyBuyer, 0); return err }
	requestReturn := func(id string) error {
		_, err := l.RequestReturn(ctx, id, partyBuyer, cny("40.00"), "cracked")
		return err
	}
	agreeReturn := func(id string) error { _, err := l.AgreeReturn(ctx, id, partySeller, "1 Return Road"); return err }
	shipReturn := func(id string) error { _, err := l.ShipReturn(ctx, id, partyBuyer, "RT1"); return err }
	// each repeats call n times.
	each := func(n int, call func(id string, i int) error) func(id string) error {
		return func(id string) error {
			for i := range n {
				if err := call(id, i); err != nil {
					return err
				}
			}
			return nil
		}
	}
	allParts := each(escrow.MaxShipments, func(id string, i int) error {
		_, err := l.ShipPart(ctx, id, partySeller, "SF"+strconv.Itoa(i))
		return err
	})
	allEvidence := each(escrow.MaxEvidence, func(id string, i int) error {
		_, err := l.AddEvidence(ctx, id, partyBuyer, "note "+strconv.Itoa(i), "")
		return err
	})

	open(dealTerms("unpaid", false))
	expensive := dealTerms("expensive", false)
	expensive.Price = cny("2000.00")
	open(expensive)
	open(dealTerms("paid", false), pay)
	noArbiter := dealTerms("no-arbiter", false)
	noArbiter.Arbiter = ""
	open(noArbiter, pay)
	open(dealTerms("milestones", true), pay, ship)
	open(dealTerms("shipped", false), pay, ship)
	open(dealTerms("disputed", false), pay, dispute)
	if _, err := l.Deposit(ctx, partyBuyer, cny("600.00")); err != nil {
		t.Fatal(err)
	}
	open(dealTerms("extended", false), pay, ship, extend)
	open(dealTerms("parts", false), pay, allParts)
	open(dealTerms("return-requested", false), pay, ship, requestReturn)
	open(dealTerms("return-agreed", false), pay, ship, requestReturn, agreeReturn)
	open(dealTerms("return-shipped", false), pay, ship, requestReturn, agreeReturn, shipReturn)
	open(dealTerms("evidenced", false), pay, dispute, allEvidence)
	if _, err := l.Deposit(ctx, partyStranger, cny("10.00"), escrow.IdempotencyKey("deposit-1")); err != nil {
		t.Fatal(err)
	}
	// The buyer paid for eleven escrows of 100.00 out of 1,600.00: 500.00
	// is left.
	if avail, held := f.balance(partyBuyer); avail != 50000 || held != 110000 {
		t.Fatalf("buyer has %d available, %d held; want 50000, 110000", avail, held)
	}
	f.check()

	xbt := escrow.Currency{Code: "XBT", Minor: 8}
	oneXBT, err := escrow.MoneyFromUnits(100_000_000, xbt)
	if err != nil {
		t.Fatal(err)
	}
	cny3, err := escrow.MoneyFromUnits(1000, escrow.Currency{Code: "CNY", Minor: 3})
	if err != nil {
		t.Fatal(err)
	}
	usd := escrow.MustParseMoney("10.00", escrow.USD)
	maxCNY, err := escrow.MoneyFromUnits(escrow.MaxUnits, escrow.CNY)
	if err != nil {
		t.Fatal(err)
	}
	withTerms := func(change func(*escrow.Terms)) func() error {
		return func() error {
			terms := dealTerms("fresh", false)
			change(&terms)
			_, err := l.Open(ctx, terms)
			return err
		}
	}
	long := strings.Repeat("x", 129)

	refusals := []refusal{
		// Amounts that are not money, refused before any ledger call.
		{"parse negative", func() error { _, err := escrow.ParseMoney("-1.00", escrow.CNY); return err },
			escrow.ErrInvalidAmount, amountErrorFor("-1.00", "CNY")},
		{"parse too precise CNY", func() error { _, err := escrow.ParseMoney("1.001", escrow.CNY); return err },
			escrow.ErrInvalidAmount, amountErrorFor("1.001", "CNY")},
		{"parse too precise JPY", func() error { _, err := escrow.ParseMoney("1.5", escrow.JPY); return err },
			escrow.ErrInvalidAmount, amountErrorFor("1.5", "JPY")},
		{"parse not a number", func() error { _, err := escrow.ParseMoney("1,00", escrow.CNY); return err },
			escrow.ErrInvalidAmount, nil},
		{"negative units", func() error { _, err := escrow.MoneyFromUnits(-1, escrow.CNY); return err },
			escrow.ErrInvalidAmount, nil},
		{"MaxUnits+1 via decimal", func() error {
			_, err := escrow.NewMoney(decimal.New(escrow.MaxUnits+1, -2), escrow.CNY)
			return err
		}, escrow.ErrAmountTooLarge, nil},
		{"MaxUnits+1 units", func() error { _, err := escrow.MoneyFromUnits(escrow.MaxUnits+1, escrow.CNY); return err },
			escrow.ErrAmountTooLarge, nil},

		// Zero where a payment is meant.
		{"deposit zero", func() error { _, err := l.Deposit(ctx, partyBuyer, cny("0")); return err },
			escrow.ErrInvalidAmount, amountErrorFor("0.00", "CNY")},
		{"withdraw zero", func() error { _, err := l.Withdraw(ctx, partyBuyer, cny("0.00")); return err },
			escrow.ErrInvalidAmount, nil},
		{"refund zero", func() error { _, err := l.Refund(ctx, "paid", partySeller, cny("0")); return err },
			escrow.ErrInvalidAmount, nil},
		{"request refund zero", func() error {
			_, err := l.RequestRefund(ctx, "paid", partyBuyer, cny("0"), "")
			return err
		}, escrow.ErrInvalidAmount, nil},
		{"open at price zero", withTerms(func(t *escrow.Terms) { t.Price = cny("0") }), escrow.ErrInvalidAmount, nil},
		{"deposit no money", func() error { _, err := l.Deposit(ctx, partyBuyer, escrow.Money{}); return err },
			escrow.ErrInvalidAmount, nil},

		// Currencies the ledger does not know.
		{"deposit XBT", func() error { _, err := l.Deposit(ctx, partyBuyer, oneXBT); return err },
			escrow.ErrUnknownCurrency, amountErrorFor("", "XBT")},
		{"open in XBT", withTerms(func(t *escrow.Terms) { t.Price = oneXBT }), escrow.ErrUnknownCurrency, nil},
		{"balance in XBT", func() error { _, err := l.Balance(ctx, partyBuyer, xbt); return err },
			escrow.ErrUnknownCurrency, nil},
		{"deposit CNY with 3 decimals", func() error { _, err := l.Deposit(ctx, partyBuyer, cny3); return err },
			escrow.ErrUnknownCurrency, nil},
		{"currency lookup", func() error { _, err := l.Currency("XBT"); return err }, escrow.ErrUnknownCurrency, nil},

		// Currencies that do not match the escrow.
		{"refund in USD", func() error { _, err := l.Refund(ctx, "paid", partySeller, usd); return err },
			escrow.ErrCurrencyMismatch, amountErrorFor("10.00", "USD")},
		{"request refund in USD", func() error {
			_, err := l.RequestRefund(ctx, "paid", partyBuyer, usd, "")
			return err
		}, escrow.ErrCurrencyMismatch, nil},
		{"resolve in USD", func() error {
			_, err := l.Resolve(ctx, "disputed", partyArbiter, escrow.Split{Buyer: escrow.MustParseMoney("100.00", escrow.USD)})
			return err
		}, escrow.ErrCurrencyMismatch, nil},
		{"milestone in USD", withTerms(func(t *escrow.Terms) {
			t.Milestones = []escrow.Milestone{{Name: "all", Amount: escrow.MustParseMoney("100.00", escrow.USD)}}
		}), escrow.ErrCurrencyMismatch, nil},

		// Amounts too large to hold.
		{"deposit past MaxUnits", func() error { _, err := l.Deposit(ctx, partyStranger, maxCNY); return err },
			escrow.ErrAmountTooLarge, nil},
		{"milestones past MaxUnits", withTerms(func(t *escrow.Terms) {
			t.Price = maxCNY
			t.Milestones = []escrow.Milestone{{Name: "a", Amount: maxCNY}, {Name: "b", Amount: cny("0.01")}}
		}), escrow.ErrAmountTooLarge, nil},

		// Money that is not there.
		{"pay short", func() error { _, err := l.Pay(ctx, "expensive", partyBuyer); return err },
			escrow.ErrInsufficientFunds, func(t *testing.T, err error) {
				var ie *escrow.InsufficientFundsError
				if !errors.As(err, &ie) {
					t.Fatalf("err %T is not an *InsufficientFundsError", err)
				}
				if ie.Account != partyBuyer || ie.Needed != cny("2000.00") || ie.Available != cny("500.00") {
					t.Errorf("InsufficientFundsError %+v, want buyer needing 2000.00 with 500.00", *ie)
				}
			}},
		{"withdraw short", func() error { _, err := l.Withdraw(ctx, partyStranger, cny("1010.01")); return err },
			escrow.ErrInsufficientFunds, func(t *testing.T, err error) {
				var ie *escrow.InsufficientFundsError
				if !errors.As(err, &ie) {
					t.Fatalf("err %T is not an *InsufficientFundsError", err)
				}
				if ie.Account != partyStranger || ie.Needed != cny("1010.01") || ie.Available != cny("1010.00") {
					t.Errorf("InsufficientFundsError %+v, want stranger needing 1010.01 with 1010.00", *ie)
				}
			}},
		{"withdraw held money", func() error { _, err := l.Withdraw(ctx, partyBuyer, cny("500.01")); return err },
			escrow.ErrInsufficientFunds, nil},
		{"refund more than held", func() error { _, err := l.Refund(ctx, "paid", partySeller, cny("100.01")); return err },
			escrow.ErrInvalidAmount, amountErrorFor("100.01", "CNY")},
		{"request refund more than held", func() error {
			_, err := l.RequestRefund(ctx, "paid", partyBuyer, cny("100.01"), "")
			return err
		}, escrow.ErrInvalidAmount, nil},
		{"split short", func() error {
			_, err := l.Resolve(ctx, "disputed", partyArbiter, escrow.Split{Buyer: cny("30.00"), Seller: cny("60.00")})
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"split over", func() error {
			_, err := l.Resolve(ctx, "disputed", partyArbiter, escrow.Split{Buyer: cny("100.00"), Seller: cny("0.01")})
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"split of nothing", func() error { _, err := l.Resolve(ctx, "disputed", partyArbiter, escrow.Split{}); return err },
			escrow.ErrInvalidArgument, nil},
		{"split with a negative part", func() error {
			// Only an adapter's RestoreMoney can make a negative Money; the
			// ledger must still refuse one that reaches it.
			_, err := l.Resolve(ctx, "disputed", partyArbiter,
				escrow.Split{Buyer: escrow.RestoreMoney(-5000, escrow.CNY), Seller: cny("150.00")})
			return err
		}, escrow.ErrInvalidAmount, nil},
		{"negative milestone", withTerms(func(t *escrow.Terms) {
			t.Milestones = []escrow.Milestone{{Name: "a", Amount: cny("150.00")}, {Name: "b", Amount: escrow.RestoreMoney(-5000, escrow.CNY)}}
		}), escrow.ErrInvalidAmount, nil},

		// Actions the escrow cannot take.
		{"dispute without arbiter by buyer", func() error { _, err := l.Dispute(ctx, "no-arbiter", partyBuyer, ""); return err },
			escrow.ErrNoArbiter, nil},
		{"dispute without arbiter by seller", func() error {
			_, err := l.Dispute(ctx, "no-arbiter", partySeller, "")
			return err
		}, escrow.ErrNoArbiter, nil},
		{"milestone out of order", func() error { _, err := l.ConfirmMilestone(ctx, "milestones", partyBuyer, 1); return err },
			escrow.ErrInvalidArgument, nil},
		{"milestone negative", func() error { _, err := l.ConfirmMilestone(ctx, "milestones", partyBuyer, -1); return err },
			escrow.ErrInvalidArgument, nil},
		{"milestone past the last", func() error { _, err := l.ConfirmMilestone(ctx, "milestones", partyBuyer, 2); return err },
			escrow.ErrInvalidArgument, nil},
		{"milestone of plain escrow", func() error { _, err := l.ConfirmMilestone(ctx, "shipped", partyBuyer, 0); return err },
			escrow.ErrInvalidArgument, nil},
		{"no actor", func() error { _, err := l.Pay(ctx, "unpaid", ""); return err }, escrow.ErrNotParty, nil},

		// Things that do not exist.
		{"pay unknown escrow", func() error { _, err := l.Pay(ctx, "nope", partyBuyer); return err }, escrow.ErrNotFound, nil},
		{"ship unknown escrow", func() error { _, err := l.Ship(ctx, "nope", partySeller, ""); return err }, escrow.ErrNotFound, nil},
		{"resolve unknown escrow", func() error { _, err := l.Resolve(ctx, "nope", partyArbiter, escrow.Split{}); return err },
			escrow.ErrNotFound, nil},
		{"read unknown escrow", func() error { _, err := l.Escrow(ctx, "nope"); return err }, escrow.ErrNotFound, nil},
		{"deposit to unknown account", func() error { _, err := l.Deposit(ctx, "ghost", cny("1.00")); return err },
			escrow.ErrNotFound, nil},
		{"withdraw from unknown account", func() error { _, err := l.Withdraw(ctx, "ghost", cny("1.00")); return err },
			escrow.ErrNotFound, nil},
		{"balance of unknown account", func() error { _, err := l.Balance(ctx, "ghost", escrow.CNY); return err },
			escrow.ErrNotFound, nil},
		{"journal of unknown account", func() error { _, err := l.Journal(ctx, "ghost", 0, 10); return err },
			escrow.ErrNotFound, nil},
		{"read unknown account", func() error { _, err := l.Account(ctx, "ghost"); return err }, escrow.ErrNotFound, nil},
		{"open for unknown buyer", withTerms(func(t *escrow.Terms) { t.Buyer = "ghost" }), escrow.ErrNotFound, nil},
		{"open for unknown seller", withTerms(func(t *escrow.Terms) { t.Seller = "ghost" }), escrow.ErrNotFound, nil},

		// IDs already taken.
		{"open existing ID at another price", func() error {
			terms := dealTerms("paid", false)
			terms.Price = cny("100.01")
			_, err := l.Open(ctx, terms)
			return err
		}, escrow.ErrExists, nil},
		{"open existing ID for another item", func() error {
			terms := dealTerms("paid", false)
			terms.Item = "a tandem"
			_, err := l.Open(ctx, terms)
			return err
		}, escrow.ErrExists, nil},
		{"open existing ID with milestones", func() error { _, err := l.Open(ctx, dealTerms("paid", true)); return err },
			escrow.ErrExists, nil},
		{"open account twice", func() error { _, err := l.OpenAccount(ctx, partyBuyer); return err }, escrow.ErrExists, nil},

		// Malformed IDs and text, and system accounts.
		{"open account @world", func() error { _, err := l.OpenAccount(ctx, escrow.WorldAccount); return err },
			escrow.ErrInvalidArgument, nil},
		{"open account @fees", func() error { _, err := l.OpenAccount(ctx, escrow.FeeAccount); return err },
			escrow.ErrInvalidArgument, nil},
		{"open account @new", func() error { _, err := l.OpenAccount(ctx, "@new"); return err }, escrow.ErrInvalidArgument, nil},
		{"open account empty", func() error { _, err := l.OpenAccount(ctx, ""); return err }, escrow.ErrInvalidArgument, nil},
		{"open account too long", func() error { _, err := l.OpenAccount(ctx, long); return err }, escrow.ErrInvalidArgument, nil},
		{"open account with newline", func() error { _, err := l.OpenAccount(ctx, "a\nb"); return err }, escrow.ErrInvalidArgument, nil},
		{"open account with DEL", func() error { _, err := l.OpenAccount(ctx, "a\x7fb"); return err }, escrow.ErrInvalidArgument, nil},
		{"open account bad UTF-8", func() error { _, err := l.OpenAccount(ctx, "a\xffb"); return err }, escrow.ErrInvalidArgument, nil},
		{"deposit to @fees", func() error { _, err := l.Deposit(ctx, escrow.FeeAccount, cny("1.00")); return err },
			escrow.ErrInvalidArgument, nil},
		{"withdraw from @fees, which holds no CNY", func() error { _, err := l.Withdraw(ctx, escrow.FeeAccount, cny("0.01")); return err },
			escrow.ErrInsufficientFunds, nil},
		{"withdraw from @world", func() error { _, err := l.Withdraw(ctx, escrow.WorldAccount, cny("0.01")); return err },
			escrow.ErrInvalidArgument, nil},
		{"open escrow ID @deal", withTerms(func(t *escrow.Terms) { t.ID = "@deal" }), escrow.ErrInvalidArgument, nil},
		{"open escrow empty ID", withTerms(func(t *escrow.Terms) { t.ID = "" }), escrow.ErrInvalidArgument, nil},
		{"open with buyer @world", withTerms(func(t *escrow.Terms) { t.Buyer = escrow.WorldAccount }), escrow.ErrInvalidArgument, nil},
		{"open with seller @fees", withTerms(func(t *escrow.Terms) { t.Seller = escrow.FeeAccount }), escrow.ErrInvalidArgument, nil},
		{"buyer is seller", withTerms(func(t *escrow.Terms) { t.Seller = partyBuyer }), escrow.ErrInvalidArgument, nil},
		{"arbiter is seller", withTerms(func(t *escrow.Terms) { t.Arbiter = partySeller }), escrow.ErrInvalidArgument, nil},
		{"item too long", withTerms(func(t *escrow.Terms) { t.Item = strings.Repeat("x", 1001) }), escrow.ErrInvalidArgument, nil},
		{"negative timer", withTerms(func(t *escrow.Terms) { t.Timers.ShipWithin = -1 }), escrow.ErrInvalidArgument, nil},
		{"timer past MaxTimer", withTerms(func(t *escrow.Terms) { t.Timers.PayWithin = escrow.MaxTimer + 1 }), escrow.ErrInvalidArgument, nil},
		{"milestones short of price", withTerms(func(t *escrow.Terms) {
			t.Milestones = []escrow.Milestone{{Name: "a", Amount: cny("30.00")}, {Name: "b", Amount: cny("69.99")}}
		}), escrow.ErrInvalidArgument, nil},
		{"milestones over price", withTerms(func(t *escrow.Terms) {
			t.Milestones = []escrow.Milestone{{Name: "a", Amount: cny("30.00")}, {Name: "b", Amount: cny("70.01")}}
		}), escrow.ErrInvalidArgument, nil},
		{"milestone of zero", withTerms(func(t *escrow.Terms) {
			t.Milestones = []escrow.Milestone{{Name: "a", Amount: cny("100.00")}, {Name: "b", Amount: cny("0")}}
		}), escrow.ErrInvalidAmount, nil},
		{"milestone name with newline", withTerms(func(t *escrow.Terms) {
			t.Milestones = []escrow.Milestone{{Name: "a\nb", Amount: cny("100.00")}}
		}), escrow.ErrInvalidArgument, nil},
		{"tracking with newline", func() error { _, err := l.Ship(ctx, "paid", partySeller, "SF\n1"); return err },
			escrow.ErrInvalidArgument, nil},
		{"reason too long", func() error {
			_, err := l.RequestRefund(ctx, "paid", partyBuyer, cny("1.00"), strings.Repeat("r", 1001))
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"events limit zero", func() error { _, err := l.Events(ctx, 0, 0); return err }, escrow.ErrInvalidArgument, nil},
		{"journal limit zero", func() error { _, err := l.Journal(ctx, partyBuyer, 0, 0); return err },
			escrow.ErrInvalidArgument, nil},
		{"idempotency key too long", func() error {
			_, err := l.Deposit(ctx, partyBuyer, cny("1.00"), escrow.IdempotencyKey(strings.Repeat("k", 257)))
			return err
		}, escrow.ErrInvalidArgument, nil},

		// The calls of a return and refund, an extension, partial
		// shipment, evidence and a cart, by the wrong party, in the wrong
		// state, with bad arguments or past their limits.
		{"ship part by the buyer", func() error { _, err := l.ShipPart(ctx, "paid", partyBuyer, ""); return err },
			escrow.ErrNotParty, nil},
		{"ship part after shipping", func() error { _, err := l.ShipPart(ctx, "shipped", partySeller, ""); return err },
			escrow.ErrInvalidTransition, nil},
		{"ship part with a long tracking number", func() error {
			_, err := l.ShipPart(ctx, "paid", partySeller, strings.Repeat("t", 201))
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"ship a part past the most", func() error { _, err := l.ShipPart(ctx, "parts", partySeller, ""); return err },
			escrow.ErrInvalidArgument, nil},
		{"extend before shipping", func() error { _, err := l.Extend(ctx, "paid", partyBuyer, 0); return err },
			escrow.ErrInvalidTransition, nil},
		{"extend by a stranger", func() error { _, err := l.Extend(ctx, "shipped", partyStranger, 0); return err },
			escrow.ErrNotParty, nil},
		{"extend by the arbiter", func() error { _, err := l.Extend(ctx, "shipped", partyArbiter, 0); return err },
			escrow.ErrNotParty, nil},
		{"extend by a negative time", func() error { _, err := l.Extend(ctx, "shipped", partySeller, -time.Second); return err },
			escrow.ErrInvalidArgument, nil},
		{"extend by the buyer past the allowance", func() error {
			_, err := l.Extend(ctx, "shipped", partyBuyer, 3*24*time.Hour+time.Nanosecond)
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"extend by the buyer twice", func() error { _, err := l.Extend(ctx, "extended", partyBuyer, time.Hour); return err },
			escrow.ErrInvalidArgument, nil},
		{"extend by the seller past the limit", func() error {
			_, err := l.Extend(ctx, "extended", partySeller, 30*24*time.Hour+time.Nanosecond)
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"request return before shipping", func() error {
			_, err := l.RequestReturn(ctx, "paid", partyBuyer, cny("1.00"), "")
			return err
		}, escrow.ErrInvalidTransition, nil},
		{"request return by the seller", func() error {
			_, err := l.RequestReturn(ctx, "shipped", partySeller, cny("1.00"), "")
			return err
		}, escrow.ErrNotParty, nil},
		{"request return twice", func() error {
			_, err := l.RequestReturn(ctx, "return-requested", partyBuyer, cny("1.00"), "")
			return err
		}, escrow.ErrInvalidTransition, nil},
		{"request return of more than held", func() error {
			_, err := l.RequestReturn(ctx, "shipped", partyBuyer, cny("100.01"), "")
			return err
		}, escrow.ErrInvalidAmount, amountErrorFor("100.01", "CNY")},
		{"request return of zero", func() error {
			_, err := l.RequestReturn(ctx, "shipped", partyBuyer, cny("0"), "")
			return err
		}, escrow.ErrInvalidAmount, nil},
		{"request return in USD", func() error { _, err := l.RequestReturn(ctx, "shipped", partyBuyer, usd, ""); return err },
			escrow.ErrCurrencyMismatch, nil},
		{"request return with a long reason", func() error {
			_, err := l.RequestReturn(ctx, "shipped", partyBuyer, cny("1.00"), strings.Repeat("r", 1001))
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"agree return by the buyer", func() error {
			_, err := l.AgreeReturn(ctx, "return-requested", partyBuyer, "")
			return err
		}, escrow.ErrNotParty, nil},
		{"agree return not requested", func() error { _, err := l.AgreeReturn(ctx, "shipped", partySeller, ""); return err },
			escrow.ErrInvalidTransition, nil},
		{"agree return twice", func() error { _, err := l.AgreeReturn(ctx, "return-agreed", partySeller, ""); return err },
			escrow.ErrInvalidTransition, nil},
		{"agree return with a long address", func() error {
			_, err := l.AgreeReturn(ctx, "return-requested", partySeller, strings.Repeat("a", 1001))
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"agree refund of a return", func() error { _, err := l.AgreeRefund(ctx, "return-requested", partySeller); return err },
			escrow.ErrInvalidTransition, nil},
		{"refuse return request by the buyer", func() error {
			_, err := l.RefuseRefund(ctx, "return-requested", partyBuyer, "")
			return err
		}, escrow.ErrNotParty, nil},
		{"ship return by the seller", func() error { _, err := l.ShipReturn(ctx, "return-agreed", partySeller, ""); return err },
			escrow.ErrNotParty, nil},
		{"ship return not agreed", func() error { _, err := l.ShipReturn(ctx, "return-requested", partyBuyer, ""); return err },
			escrow.ErrInvalidTransition, nil},
		{"ship return with a tracking number on two lines", func() error {
			_, err := l.ShipReturn(ctx, "return-agreed", partyBuyer, "RT\n1")
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"confirm return by the buyer", func() error { _, err := l.ConfirmReturn(ctx, "return-shipped", partyBuyer); return err },
			escrow.ErrNotParty, nil},
		{"confirm return not shipped", func() error { _, err := l.ConfirmReturn(ctx, "return-agreed", partySeller); return err },
			escrow.ErrInvalidTransition, nil},
		{"refuse return by the arbiter", func() error {
			_, err := l.RefuseReturn(ctx, "return-shipped", partyArbiter, "")
			return err
		}, escrow.ErrNotParty, nil},
		{"refuse return not shipped", func() error { _, err := l.RefuseReturn(ctx, "return-agreed", partySeller, ""); return err },
			escrow.ErrInvalidTransition, nil},
		{"refuse return with a long reason", func() error {
			_, err := l.RefuseReturn(ctx, "return-shipped", partySeller, strings.Repeat("r", 1001))
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"cancel return by the seller", func() error { _, err := l.CancelReturn(ctx, "return-requested", partySeller); return err },
			escrow.ErrNotParty, nil},
		{"cancel return once shipped back", func() error { _, err := l.CancelReturn(ctx, "return-shipped", partyBuyer); return err },
			escrow.ErrInvalidTransition, nil},
		{"cancel return never requested", func() error { _, err := l.CancelReturn(ctx, "shipped", partyBuyer); return err },
			escrow.ErrInvalidTransition, nil},
		{"evidence by a stranger", func() error {
			_, err := l.AddEvidence(ctx, "disputed", partyStranger, "a note", "")
			return err
		}, escrow.ErrNotParty, nil},
		{"evidence without a dispute", func() error { _, err := l.AddEvidence(ctx, "shipped", partyBuyer, "a note", ""); return err },
			escrow.ErrInvalidTransition, nil},
		{"evidence without a note", func() error { _, err := l.AddEvidence(ctx, "disputed", partyBuyer, "", "photo-1"); return err },
			escrow.ErrInvalidArgument, nil},
		{"evidence with a long note", func() error {
			_, err := l.AddEvidence(ctx, "disputed", partyBuyer, strings.Repeat("n", 4001), "")
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"evidence with a long reference", func() error {
			_, err := l.AddEvidence(ctx, "disputed", partyBuyer, "a note", strings.Repeat("f", 1001))
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"evidence past the most", func() error { _, err := l.AddEvidence(ctx, "evidenced", partySeller, "one more", ""); return err },
			escrow.ErrInvalidArgument, nil},
		{"cart with a paid escrow", func() error {
			_, err := l.PayAll(ctx, partyBuyer, []string{"unpaid", "paid"})
			return err
		}, escrow.ErrInvalidTransition, cartRefused(2, "paid")},
		{"cart with a missing escrow", func() error {
			_, err := l.PayAll(ctx, partyBuyer, []string{"nope", "unpaid"})
			return err
		}, escrow.ErrNotFound, cartRefused(2, "nope")},
		{"cart by the seller", func() error { _, err := l.PayAll(ctx, partySeller, []string{"unpaid"}); return err },
			escrow.ErrNotParty, cartRefused(1, "unpaid")},
		{"cart short of funds", func() error {
			_, err := l.PayAll(ctx, partyBuyer, []string{"unpaid", "expensive"})
			return err
		}, escrow.ErrInsufficientFunds, func(t *testing.T, err error) {
			var ie *escrow.InsufficientFundsError
			if !errors.As(err, &ie) {
				t.Fatalf("err %T is not an *InsufficientFundsError", err)
			}
			if ie.Account != partyBuyer || ie.Needed != cny("2100.00") || ie.Available != cny("500.00") {
				t.Errorf("InsufficientFundsError %+v, want buyer needing 2100.00 with 500.00", *ie)
			}
		}},
		{"cart with an escrow twice", func() error {
			_, err := l.PayAll(ctx, partyBuyer, []string{"unpaid", "expensive", "unpaid"})
			return err
		}, escrow.ErrInvalidArgument, nil},
		{"empty cart", func() error { _, err := l.PayAll(ctx, partyBuyer, nil); return err }, escrow.ErrInvalidArgument, nil},
		{"cart past the most", func() error {
			ids := make([]string, escrow.MaxCart+1)
			for i := range ids {
				ids[i] = "cart-" + strconv.Itoa(i)
			}
			_, err := l.PayAll(ctx, partyBuyer, ids)
			return err
		}, escrow.ErrInvalidArgument, nil},

		// An idempotency key used for another call.
		{"key reused with another amount", func() error {
			_, err := l.Deposit(ctx, partyStranger, cny("20.00"), escrow.IdempotencyKey("deposit-1"))
			return err
		}, escrow.ErrIdempotencyMismatch, nil},
		{"key reused for another account", func() error {
			_, err := l.Deposit(ctx, partyBuyer, cny("10.00"), escrow.IdempotencyKey("deposit-1"))
			return err
		}, escrow.ErrIdempotencyMismatch, nil},
		{"key reused by another method", func() error {
			_, err := l.Withdraw(ctx, partyStranger, cny("10.00"), escrow.IdempotencyKey("deposit-1"))
			return err
		}, escrow.ErrIdempotencyMismatch, nil},
	}

	for _, rc := range refusals {
		t.Run(strings.ReplaceAll(rc.name, " ", "_"), func(t *testing.T) {
			sub := *f
			sub.t = t
			before := sub.dump()
			err := rc.call()
			if !errors.Is(err, rc.want) {
				t.Fatalf("err = %v, want %v", err, rc.want)
			}
			if !strings.HasPrefix(err.Error(), "escrow: ") {
				t.Errorf("message %q does not start with the package name", err)
			}
			if rc.detail != nil {
				rc.detail(t, err)
			}
			sub.unchanged(before, rc.name)
		})
	}
	f.check()
}

// cartRefused returns a detail check that err is a *CartError for a cart
// of size in which only escrow was refused.
func cartRefused(size int, escrowID string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ce *escrow.CartError
		if !errors.As(err, &ce) {
			t.Fatalf("err %T is not a *CartError", err)
		}
		if ce.Size != size || len(ce.Refused) != 1 || ce.Refused[0].Escrow != escrowID {
			t.Errorf("CartError %+v, want a cart of %d with only %q refused", *ce, size, escrowID)
		}
	}
}
