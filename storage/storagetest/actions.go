package storagetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
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

// equalMoney lets cmp compare Money, whose fields are unexported.
var equalMoney = cmp.Comparer(func(a, b escrow.Money) bool { return a == b })

// actionSpec is the state machine as the specification states it: who may
// take each action, and from which states. Every expected outcome in
// testActions comes from this table, not from the package's own rules.
var actionSpec = map[escrow.Action]struct {
	name string
	who  []escrow.Role
	from []escrow.State
}{
	escrow.ActionPay:              {"pay", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.AwaitingPayment}},
	escrow.ActionShip:             {"ship", []escrow.Role{escrow.Seller}, []escrow.State{escrow.AwaitingShipment}},
	escrow.ActionConfirm:          {"confirm", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.AwaitingConfirmation}},
	escrow.ActionConfirmMilestone: {"confirm-milestone", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.AwaitingConfirmation}},
	escrow.ActionCancel:           {"cancel", []escrow.Role{escrow.Buyer, escrow.Seller}, []escrow.State{escrow.AwaitingPayment}},
	escrow.ActionRefund:           {"refund", []escrow.Role{escrow.Seller}, []escrow.State{escrow.AwaitingShipment, escrow.AwaitingConfirmation}},
	escrow.ActionRequestRefund:    {"request-refund", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.AwaitingShipment, escrow.AwaitingConfirmation}},
	escrow.ActionAgreeRefund:      {"agree-refund", []escrow.Role{escrow.Seller}, []escrow.State{escrow.RefundRequested}},
	escrow.ActionRefuseRefund:     {"refuse-refund", []escrow.Role{escrow.Seller}, []escrow.State{escrow.RefundRequested}},
	escrow.ActionDispute:          {"dispute", []escrow.Role{escrow.Buyer, escrow.Seller}, []escrow.State{escrow.AwaitingShipment, escrow.AwaitingConfirmation, escrow.RefundRequested}},
	escrow.ActionResolve:          {"resolve", []escrow.Role{escrow.Arbiter}, []escrow.State{escrow.Disputed}},
}

// specWho returns the roles actionSpec lets take action a, as one set.
func specWho(a escrow.Action) escrow.Role {
	var who escrow.Role
	for _, r := range actionSpec[a].who {
		who |= r
	}
	return who
}

// actionOutcome is what an allowed action does to the 100.00 CNY escrow that
// reachState builds: the new state, the event, and the changes to the
// balances in fen. The fee is 0.6%.
type actionOutcome struct {
	state                                       escrow.State
	event                                       escrow.EventType
	buyerAvailable, buyerHeld, sellerAvail, fee int64
}

// actionOutcomes lists, for every action and every state it is allowed
// from, what it must do given the arguments takeAction passes: a 40.00
// refund or refund request, a 30.00/70.00 split, the 30.00 first milestone
// of a 30.00 + 70.00 escrow.
var actionOutcomes = map[escrow.Action]map[escrow.State]actionOutcome{
	escrow.ActionPay: {
		escrow.AwaitingPayment: {escrow.AwaitingShipment, escrow.EscrowPaid, -10000, 10000, 0, 0},
	},
	escrow.ActionShip: {
		escrow.AwaitingShipment: {escrow.AwaitingConfirmation, escrow.EscrowShipped, 0, 0, 0, 0},
	},
	escrow.ActionConfirm: {
		escrow.AwaitingConfirmation: {escrow.Completed, escrow.EscrowReleased, 0, -10000, 9940, 60},
	},
	escrow.ActionConfirmMilestone: {
		escrow.AwaitingConfirmation: {escrow.AwaitingConfirmation, escrow.EscrowReleased, 0, -3000, 2982, 18},
	},
	escrow.ActionCancel: {
		escrow.AwaitingPayment: {escrow.Closed, escrow.EscrowClosed, 0, 0, 0, 0},
	},
	escrow.ActionRefund: {
		escrow.AwaitingShipment:     {escrow.AwaitingShipment, escrow.EscrowRefunded, 4000, -4000, 0, 0},
		escrow.AwaitingConfirmation: {escrow.AwaitingConfirmation, escrow.EscrowRefunded, 4000, -4000, 0, 0},
	},
	escrow.ActionRequestRefund: {
		escrow.AwaitingShipment:     {escrow.RefundRequested, escrow.EscrowRefundRequested, 0, 0, 0, 0},
		escrow.AwaitingConfirmation: {escrow.RefundRequested, escrow.EscrowRefundRequested, 0, 0, 0, 0},
	},
	// reachState asks for 40.00 back after shipping, so the escrow returns
	// to AwaitingConfirmation.
	escrow.ActionAgreeRefund: {
		escrow.RefundRequested: {escrow.AwaitingConfirmation, escrow.EscrowRefunded, 4000, -4000, 0, 0},
	},
	escrow.ActionRefuseRefund: {
		escrow.RefundRequested: {escrow.AwaitingConfirmation, escrow.EscrowRefundRefused, 0, 0, 0, 0},
	},
	escrow.ActionDispute: {
		escrow.AwaitingShipment:     {escrow.Disputed, escrow.EscrowDisputed, 0, 0, 0, 0},
		escrow.AwaitingConfirmation: {escrow.Disputed, escrow.EscrowDisputed, 0, 0, 0, 0},
		escrow.RefundRequested:      {escrow.Disputed, escrow.EscrowDisputed, 0, 0, 0, 0},
	},
	// Buyer 30.00, seller 70.00 less 0.42 fee.
	escrow.ActionResolve: {
		escrow.Disputed: {escrow.Resolved, escrow.EscrowResolved, 3000, -10000, 6958, 42},
	},
}

// actionRoles are the four kinds of actor every action is tried by.
var actionRoles = []struct {
	name string
	id   string
	role escrow.Role // 0 for the stranger
}{
	{"buyer", partyBuyer, escrow.Buyer},
	{"seller", partySeller, escrow.Seller},
	{"arbiter", partyArbiter, escrow.Arbiter},
	{"stranger", partyStranger, 0},
}

// specAllows reports whether actionSpec lets role take action from state s.
func specAllows(action escrow.Action, role escrow.Role, s escrow.State) (roleOK, stateOK bool) {
	spec := actionSpec[action]
	for _, r := range spec.who {
		roleOK = roleOK || r == role
	}
	for _, f := range spec.from {
		stateOK = stateOK || f == s
	}
	return roleOK, stateOK
}

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

// reachState opens escrow id on dealTerms and takes it to state s by real
// calls, failing the test on any error.
func reachState(f *fixture, id string, s escrow.State, milestones bool) escrow.Escrow {
	f.t.Helper()
	l, ctx := f.l, f.ctx
	steps := []func() (escrow.Escrow, error){
		func() (escrow.Escrow, error) { return l.Open(ctx, dealTerms(id, milestones)) },
	}
	pay := func() (escrow.Escrow, error) { return l.Pay(ctx, id, partyBuyer) }
	ship := func() (escrow.Escrow, error) { return l.Ship(ctx, id, partySeller, "SF100200300") }
	dispute := func() (escrow.Escrow, error) { return l.Dispute(ctx, id, partyBuyer, "it never worked") }
	switch s {
	case escrow.AwaitingPayment:
	case escrow.AwaitingShipment:
		steps = append(steps, pay)
	case escrow.AwaitingConfirmation:
		steps = append(steps, pay, ship)
	case escrow.RefundRequested:
		steps = append(steps, pay, ship, func() (escrow.Escrow, error) {
			return l.RequestRefund(ctx, id, partyBuyer, cny("40.00"), "a scratched frame")
		})
	case escrow.Disputed:
		steps = append(steps, pay, ship, dispute)
	case escrow.Completed:
		steps = append(steps, pay, ship)
		if milestones {
			steps = append(steps,
				func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, id, partyBuyer, 0) },
				func() (escrow.Escrow, error) { return l.ConfirmMilestone(ctx, id, partyBuyer, 1) })
		} else {
			steps = append(steps, func() (escrow.Escrow, error) { return l.Confirm(ctx, id, partyBuyer) })
		}
	case escrow.Refunded:
		steps = append(steps, pay, func() (escrow.Escrow, error) { return l.Refund(ctx, id, partySeller, cny("100.00")) })
	case escrow.Resolved:
		steps = append(steps, pay, ship, dispute, func() (escrow.Escrow, error) {
			return l.Resolve(ctx, id, partyArbiter, escrow.Split{Buyer: cny("50.00"), Seller: cny("50.00")})
		})
	case escrow.Closed:
		steps = append(steps, func() (escrow.Escrow, error) { return l.Cancel(ctx, id, partyBuyer) })
	default:
		f.t.Fatalf("no path to state %s", s)
	}
	var e escrow.Escrow
	for i, step := range steps {
		var err error
		if e, err = step(); err != nil {
			f.t.Fatalf("path to %s, step %d: %v", s, i, err)
		}
	}
	if e.State != s {
		f.t.Fatalf("path to %s ended in %s", s, e.State)
	}
	return e
}

// takeAction takes action on e as actor, with the arguments actionOutcomes
// expects.
func takeAction(f *fixture, action escrow.Action, e escrow.Escrow, actor string) (escrow.Escrow, error) {
	l, ctx, id := f.l, f.ctx, e.ID
	switch action {
	case escrow.ActionPay:
		return l.Pay(ctx, id, actor)
	case escrow.ActionShip:
		return l.Ship(ctx, id, actor, "YT9988")
	case escrow.ActionConfirm:
		return l.Confirm(ctx, id, actor)
	case escrow.ActionConfirmMilestone:
		return l.ConfirmMilestone(ctx, id, actor, e.NextMilestone)
	case escrow.ActionCancel:
		return l.Cancel(ctx, id, actor)
	case escrow.ActionRefund:
		return l.Refund(ctx, id, actor, cny("40.00"))
	case escrow.ActionRequestRefund:
		return l.RequestRefund(ctx, id, actor, cny("40.00"), "one wheel is bent")
	case escrow.ActionAgreeRefund:
		return l.AgreeRefund(ctx, id, actor)
	case escrow.ActionRefuseRefund:
		return l.RefuseRefund(ctx, id, actor, "it left here straight")
	case escrow.ActionDispute:
		return l.Dispute(ctx, id, actor, "we cannot agree")
	case escrow.ActionResolve:
		return l.Resolve(ctx, id, actor, escrow.Split{Buyer: cny("30.00"), Seller: cny("70.00")})
	}
	f.t.Fatalf("unknown action %d", action)
	return escrow.Escrow{}, nil
}

// actionPurse is what the actions test watches: the buyer's and seller's
// CNY buckets and the fees collected, in fen.
type actionPurse struct{ buyerAvailable, buyerHeld, sellerAvailable, sellerHeld, fees int64 }

func readActionPurse(f *fixture) actionPurse {
	f.t.Helper()
	var p actionPurse
	p.buyerAvailable, p.buyerHeld = f.balance(partyBuyer)
	p.sellerAvailable, p.sellerHeld = f.balance(partySeller)
	p.fees, _ = f.balance(escrow.FeeAccount)
	return p
}

// eventsAfter returns every event after seq, reading in pages.
func eventsAfter(f *fixture, seq uint64) []escrow.Event {
	f.t.Helper()
	var out []escrow.Event
	for {
		page, err := f.l.Events(f.ctx, seq, 50)
		if err != nil {
			f.t.Fatalf("Events(%d): %v", seq, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		seq = page[len(page)-1].Seq
	}
}

func testActions(t *testing.T, h Harness) {
	// The literal spec must cover every action the package has, and agree
	// with the rule the package exposes for every role in every state.
	if len(actionSpec) != len(escrow.Actions()) {
		t.Fatalf("spec lists %d actions, the package has %d", len(actionSpec), len(escrow.Actions()))
	}
	if len(escrow.States()) != 9 {
		t.Fatalf("the package has %d states, the spec knows 9", len(escrow.States()))
	}
	for _, a := range escrow.Actions() {
		if _, ok := actionSpec[a]; !ok {
			t.Fatalf("no spec for action %s", a)
		}
		for _, s := range escrow.States() {
			for _, r := range actionRoles {
				roleOK, stateOK := specAllows(a, r.role, s)
				if got := escrow.Allowed(a, r.role, s); got != (roleOK && stateOK) {
					t.Errorf("Allowed(%s, %s, %s) = %t, spec says %t", a, r.name, s, got, roleOK && stateOK)
				}
				if _, ok := actionOutcomes[a][s]; ok != stateOK {
					t.Errorf("outcome table and spec disagree on %s from %s", actionSpec[a].name, s)
				}
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, s := range escrow.States() {
		for _, a := range escrow.Actions() {
			for _, r := range actionRoles {
				name := fmt.Sprintf("%s/%s/%s", s, actionSpec[a].name, r.name)
				t.Run(name, func(t *testing.T) { runActionCase(t, h, s, a, r.id, r.role) })
			}
		}
	}
}

func runActionCase(t *testing.T, h Harness, s escrow.State, a escrow.Action, actor string, role escrow.Role) {
	f := newFixture(t, h)
	f.accounts(partyBuyer, partySeller, partyStranger)
	e := reachState(f, "deal-1", s, a == escrow.ActionConfirmMilestone)
	purse := readActionPurse(f)
	seq := uint64(len(eventsAfter(f, 0)))
	before := f.dump()

	got, err := takeAction(f, a, e, actor)
	roleOK, stateOK := specAllows(a, role, s)
	switch {
	case roleOK && stateOK:
		if err != nil {
			t.Fatalf("allowed action failed: %v", err)
		}
		want := actionOutcomes[a][s]
		if got.State != want.state || got.Version != e.Version+1 {
			t.Errorf("escrow is %s version %d, want %s version %d", got.State, got.Version, want.state, e.Version+1)
		}
		stored, err := f.l.Escrow(f.ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, stored, equalMoney); diff != "" {
			t.Errorf("returned escrow differs from the stored one (-returned +stored):\n%s", diff)
		}
		wantPurse := purse
		wantPurse.buyerAvailable += want.buyerAvailable
		wantPurse.buyerHeld += want.buyerHeld
		wantPurse.sellerAvailable += want.sellerAvail
		wantPurse.fees += want.fee
		if got := readActionPurse(f); got != wantPurse {
			t.Errorf("balances %+v, want %+v", got, wantPurse)
		}
		events := eventsAfter(f, seq)
		if len(events) != 1 {
			t.Fatalf("%d events written, want 1: %+v", len(events), events)
		}
		ev := events[0]
		if ev.Seq != seq+1 || ev.Type != want.event || ev.State != want.state || ev.Actor != actor ||
			ev.Escrow != e.ID || ev.ByTimer {
			t.Errorf("event %+v, want #%d %s to %s by %s on %s", ev, seq+1, want.event, want.state, actor, e.ID)
		}
	case !roleOK:
		if !errors.Is(err, escrow.ErrNotParty) || errors.Is(err, escrow.ErrInvalidTransition) {
			t.Fatalf("err = %v, want ErrNotParty only", err)
		}
		var re *escrow.RoleError
		if !errors.As(err, &re) {
			t.Fatalf("err %T is not a *RoleError", err)
		}
		want := escrow.RoleError{Escrow: e.ID, Action: a, Actor: actor, State: s, Want: re.Want}
		if *re != want {
			t.Errorf("RoleError %+v, want %+v", *re, want)
		}
		who := specWho(a)
		if re.Want != who.String() {
			t.Errorf("RoleError.Want = %q, want %q", re.Want, who.String())
		}
	default:
		if !errors.Is(err, escrow.ErrInvalidTransition) || errors.Is(err, escrow.ErrNotParty) {
			t.Fatalf("err = %v, want ErrInvalidTransition only", err)
		}
		var te *escrow.TransitionError
		if !errors.As(err, &te) {
			t.Fatalf("err %T is not a *TransitionError", err)
		}
		if want := (escrow.TransitionError{Escrow: e.ID, Action: a, State: s}); *te != want {
			t.Errorf("TransitionError %+v, want %+v", *te, want)
		}
		if msg := err.Error(); !strings.Contains(msg, s.String()) || !strings.Contains(msg, a.String()) {
			t.Errorf("message %q does not name state %s and action %q", msg, s, a)
		}
	}
	if err != nil {
		if diff := cmp.Diff(escrow.Escrow{}, got, equalMoney); diff != "" {
			t.Errorf("a refused call returned an escrow:\n%s", diff)
		}
		f.unchanged(before, fmt.Sprintf("refused %s by %s in %s", actionSpec[a].name, actor, s))
	}
	f.check()
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
	if _, err := l.Deposit(ctx, partyStranger, cny("10.00"), escrow.IdempotencyKey("deposit-1")); err != nil {
		t.Fatal(err)
	}
	// The buyer paid for five escrows of 100.00: 500.00 is left.
	if avail, held := f.balance(partyBuyer); avail != 50000 || held != 50000 {
		t.Fatalf("buyer has %d available, %d held; want 50000, 50000", avail, held)
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
			escrow.ErrUnknownCurrency, nil},

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
		{"withdraw from @fees", func() error { _, err := l.Withdraw(ctx, escrow.FeeAccount, cny("0.01")); return err },
			escrow.ErrInvalidArgument, nil},
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
		{"milestones short of price", withTerms(func(t *escrow.Terms) {
			t.Milestones = []escrow.Milestone{{Name: "a", Amount: cny("30.00")}, {Name: "b", Amount: cny("69.99")}}
		}), escrow.ErrInvalidArgument, nil},
		{"milestones over price", withTerms(func(t *escrow.Terms) {
			t.Milestones = []escrow.Milestone{{Name: "a", Amount: cny("30.00")}, {Name: "b", Amount: cny("70.01")}}
		}), escrow.ErrInvalidArgument, nil},
		{"milestone of zero", withTerms(func(t *escrow.Terms) {
			t.Milestones = []escrow.Milestone{{Name: "a", Amount: cny("100.00")}, {Name: "b", Amount: cny("0")}}
		}), escrow.ErrInvalidArgument, nil},
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
