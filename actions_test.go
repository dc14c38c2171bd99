package escrow_test

import (
	"errors"
	"fmt"
	"github.com/escrowkit/escrow/internal/spec"
	"strings"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
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

// actionSpec is the specification's state machine, written apart from
// the package's own rules; see internal/spec.
var actionSpec = spec.Actions

// specWho returns the roles actionSpec lets take action a, as one set.
var specWho = spec.Who

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
		escrow.ReturnRequested: {escrow.AwaitingConfirmation, escrow.EscrowRefundRefused, 0, 0, 0, 0},
	},
	escrow.ActionDispute: {
		escrow.AwaitingShipment:     {escrow.Disputed, escrow.EscrowDisputed, 0, 0, 0, 0},
		escrow.AwaitingConfirmation: {escrow.Disputed, escrow.EscrowDisputed, 0, 0, 0, 0},
		escrow.RefundRequested:      {escrow.Disputed, escrow.EscrowDisputed, 0, 0, 0, 0},
		escrow.ReturnRequested:      {escrow.Disputed, escrow.EscrowDisputed, 0, 0, 0, 0},
		escrow.AwaitingReturn:       {escrow.Disputed, escrow.EscrowDisputed, 0, 0, 0, 0},
		escrow.ReturnShipped:        {escrow.Disputed, escrow.EscrowDisputed, 0, 0, 0, 0},
		escrow.ReturnRefused:        {escrow.Disputed, escrow.EscrowDisputed, 0, 0, 0, 0},
	},
	escrow.ActionShipPart: {
		escrow.AwaitingShipment: {escrow.AwaitingShipment, escrow.EscrowShippedPart, 0, 0, 0, 0},
	},
	escrow.ActionExtend: {
		escrow.AwaitingConfirmation: {escrow.AwaitingConfirmation, escrow.EscrowExtended, 0, 0, 0, 0},
	},
	// reachState asks for 40.00 back with the goods, so a confirmed
	// return refunds 40.00 and the escrow returns to AwaitingConfirmation.
	escrow.ActionRequestReturn: {
		escrow.AwaitingConfirmation: {escrow.ReturnRequested, escrow.EscrowReturnRequested, 0, 0, 0, 0},
	},
	escrow.ActionAgreeReturn: {
		escrow.ReturnRequested: {escrow.AwaitingReturn, escrow.EscrowReturnAgreed, 0, 0, 0, 0},
	},
	escrow.ActionShipReturn: {
		escrow.AwaitingReturn: {escrow.ReturnShipped, escrow.EscrowReturnShipped, 0, 0, 0, 0},
	},
	escrow.ActionConfirmReturn: {
		escrow.ReturnShipped: {escrow.AwaitingConfirmation, escrow.EscrowRefunded, 4000, -4000, 0, 0},
	},
	escrow.ActionRefuseReturn: {
		escrow.ReturnShipped: {escrow.ReturnRefused, escrow.EscrowReturnRefused, 0, 0, 0, 0},
	},
	escrow.ActionCancelReturn: {
		escrow.ReturnRequested: {escrow.AwaitingConfirmation, escrow.EscrowReturnCancelled, 0, 0, 0, 0},
		escrow.AwaitingReturn:  {escrow.AwaitingConfirmation, escrow.EscrowReturnCancelled, 0, 0, 0, 0},
		escrow.ReturnRefused:   {escrow.AwaitingConfirmation, escrow.EscrowReturnCancelled, 0, 0, 0, 0},
	},
	escrow.ActionAddEvidence: {
		escrow.Disputed: {escrow.Disputed, escrow.EscrowEvidenceAdded, 0, 0, 0, 0},
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
	rule := actionSpec[action]
	for _, r := range rule.Who {
		roleOK = roleOK || r == role
	}
	for _, f := range rule.From {
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
func reachState(f *world, id string, s escrow.State, milestones bool) escrow.Escrow {
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
	case escrow.ReturnRequested, escrow.AwaitingReturn, escrow.ReturnShipped, escrow.ReturnRefused:
		steps = append(steps, pay, ship, func() (escrow.Escrow, error) {
			return l.RequestReturn(ctx, id, partyBuyer, cny("40.00"), "the saddle is torn")
		})
		if s != escrow.ReturnRequested {
			steps = append(steps, func() (escrow.Escrow, error) { return l.AgreeReturn(ctx, id, partySeller, "1 Depot Road") })
		}
		if s == escrow.ReturnShipped || s == escrow.ReturnRefused {
			steps = append(steps, func() (escrow.Escrow, error) { return l.ShipReturn(ctx, id, partyBuyer, "RT5544") })
		}
		if s == escrow.ReturnRefused {
			steps = append(steps, func() (escrow.Escrow, error) { return l.RefuseReturn(ctx, id, partySeller, "an empty box came") })
		}
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
func takeAction(f *world, action escrow.Action, e escrow.Escrow, actor string) (escrow.Escrow, error) {
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
	case escrow.ActionShipPart:
		return l.ShipPart(ctx, id, actor, "YT9988-1")
	case escrow.ActionExtend:
		return l.Extend(ctx, id, actor, 0)
	case escrow.ActionRequestReturn:
		return l.RequestReturn(ctx, id, actor, cny("40.00"), "the saddle is torn")
	case escrow.ActionAgreeReturn:
		return l.AgreeReturn(ctx, id, actor, "1 Depot Road")
	case escrow.ActionShipReturn:
		return l.ShipReturn(ctx, id, actor, "RT5544")
	case escrow.ActionConfirmReturn:
		return l.ConfirmReturn(ctx, id, actor)
	case escrow.ActionRefuseReturn:
		return l.RefuseReturn(ctx, id, actor, "an empty box came")
	case escrow.ActionCancelReturn:
		return l.CancelReturn(ctx, id, actor)
	case escrow.ActionAddEvidence:
		return l.AddEvidence(ctx, id, actor, "photo of the bent wheel", "uploads/77.jpg")
	}
	f.t.Fatalf("unknown action %d", action)
	return escrow.Escrow{}, nil
}

// actionPurse is what the actions test watches: the buyer's and seller's
// CNY buckets and the fees collected, in fen.
type actionPurse struct{ buyerAvailable, buyerHeld, sellerAvailable, sellerHeld, fees int64 }

func readActionPurse(f *world) actionPurse {
	f.t.Helper()
	var p actionPurse
	p.buyerAvailable, p.buyerHeld = f.balance(partyBuyer)
	p.sellerAvailable, p.sellerHeld = f.balance(partySeller)
	p.fees, _ = f.balance(escrow.FeeAccount)
	return p
}

// eventsAfter returns every event after seq, reading in pages.
func eventsAfter(f *world, seq uint64) []escrow.Event {
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

func TestActions(t *testing.T) {
	// The literal spec must cover every action the package has, and agree
	// with the rule the package exposes for every role in every state.
	if len(actionSpec) != len(escrow.Actions()) {
		t.Fatalf("spec lists %d actions, the package has %d", len(actionSpec), len(escrow.Actions()))
	}
	if len(escrow.States()) != 13 {
		t.Fatalf("the package has %d states, the spec knows 13", len(escrow.States()))
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
					t.Errorf("outcome table and spec disagree on %s from %s", actionSpec[a].Name, s)
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
				name := fmt.Sprintf("%s/%s/%s", s, actionSpec[a].Name, r.name)
				t.Run(name, func(t *testing.T) { runActionCase(t, s, a, r.id, r.role) })
			}
		}
	}
}

func runActionCase(t *testing.T, s escrow.State, a escrow.Action, actor string, role escrow.Role) {
	f := newFixture(t)
	f.funded(partyBuyer, partySeller, partyStranger)
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
		if diff := cmp.Diff(got, stored); diff != "" {
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
		if diff := cmp.Diff(escrow.Escrow{}, got); diff != "" {
			t.Errorf("a refused call returned an escrow:\n%s", diff)
		}
		f.unchanged(before, fmt.Sprintf("refused %s by %s in %s", actionSpec[a].Name, actor, s))
	}
	f.check()
}
