package escrow_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

func TestStateString(t *testing.T) {
	want := []string{"AwaitingPayment", "AwaitingShipment", "AwaitingConfirmation", "RefundRequested",
		"ReturnRequested", "AwaitingReturn", "ReturnShipped", "ReturnRefused",
		"Disputed", "Completed", "Refunded", "Resolved", "Closed"}
	var got []string
	for _, s := range escrow.States() {
		got = append(got, s.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("States() names (-want +got):\n%s", diff)
	}
	for s, want := range map[escrow.State]string{0: "State(0)", 14: "State(14)", 255: "State(255)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", uint8(s), got, want)
		}
	}
}

func TestStateTerminal(t *testing.T) {
	terminal := map[escrow.State]bool{escrow.Completed: true, escrow.Refunded: true, escrow.Resolved: true, escrow.Closed: true}
	for _, s := range escrow.States() {
		if s.Terminal() != terminal[s] {
			t.Errorf("%s.Terminal() = %v, want %v", s, s.Terminal(), terminal[s])
		}
	}
}

func TestActionString(t *testing.T) {
	want := []string{"pay", "ship", "confirm", "confirm a milestone of", "cancel", "refund",
		"request a refund on", "agree to the refund on", "refuse the refund on", "dispute", "resolve",
		"ship part of", "extend the confirmation deadline of", "request a return on", "agree to the return on",
		"ship the return of", "confirm the return of", "refuse the return of", "cancel the return of", "add evidence to"}
	var got []string
	for _, a := range escrow.Actions() {
		got = append(got, a.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Actions() names (-want +got):\n%s", diff)
	}
	for a, want := range map[escrow.Action]string{0: "Action(0)", escrow.ActionRate: "rate the other party of",
		escrow.ActionEscalate: "escalate", 23: "Action(23)"} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", uint8(a), got, want)
		}
	}
}

func TestRoleString(t *testing.T) {
	for r, want := range map[escrow.Role]string{
		0: "nobody", escrow.Buyer: "the buyer", escrow.Seller: "the seller", escrow.Arbiter: "the arbiter",
		escrow.Buyer | escrow.Seller: "the buyer or the seller", escrow.Seller | escrow.Arbiter: "Role(6)",
		escrow.Buyer | escrow.Seller | escrow.Arbiter: "the buyer, the seller or the arbiter",
	} {
		if got := r.String(); got != want {
			t.Errorf("Role(%d).String() = %q, want %q", uint8(r), got, want)
		}
	}
}

// TestAllowed checks every action, single role and state against the
// lifecycle written out by hand: whatever is not listed is refused.
func TestAllowed(t *testing.T) {
	type rule struct {
		action escrow.Action
		role   escrow.Role
		state  escrow.State
	}
	var allowed []rule
	allow := func(a escrow.Action, r escrow.Role, states ...escrow.State) {
		for _, s := range states {
			allowed = append(allowed, rule{a, r, s})
		}
	}
	const (
		unpaid    = escrow.AwaitingPayment
		unshipped = escrow.AwaitingShipment
		shipped   = escrow.AwaitingConfirmation
		requested = escrow.RefundRequested
		inDispute = escrow.Disputed
		returning = escrow.ReturnRequested
		agreed    = escrow.AwaitingReturn
		sentBack  = escrow.ReturnShipped
		turnedOut = escrow.ReturnRefused
	)
	allow(escrow.ActionPay, escrow.Buyer, unpaid)
	allow(escrow.ActionShip, escrow.Seller, unshipped)
	allow(escrow.ActionConfirm, escrow.Buyer, shipped)
	allow(escrow.ActionConfirmMilestone, escrow.Buyer, shipped)
	allow(escrow.ActionCancel, escrow.Buyer, unpaid)
	allow(escrow.ActionCancel, escrow.Seller, unpaid)
	allow(escrow.ActionRefund, escrow.Seller, unshipped, shipped)
	allow(escrow.ActionRequestRefund, escrow.Buyer, unshipped, shipped)
	allow(escrow.ActionAgreeRefund, escrow.Seller, requested)
	allow(escrow.ActionRefuseRefund, escrow.Seller, requested, returning)
	allow(escrow.ActionDispute, escrow.Buyer, unshipped, shipped, requested, returning, agreed, sentBack, turnedOut)
	allow(escrow.ActionDispute, escrow.Seller, unshipped, shipped, requested, returning, agreed, sentBack, turnedOut)
	allow(escrow.ActionResolve, escrow.Arbiter, inDispute)
	allow(escrow.ActionShipPart, escrow.Seller, unshipped)
	allow(escrow.ActionExtend, escrow.Buyer, shipped)
	allow(escrow.ActionExtend, escrow.Seller, shipped)
	allow(escrow.ActionRequestReturn, escrow.Buyer, shipped)
	allow(escrow.ActionAgreeReturn, escrow.Seller, returning)
	allow(escrow.ActionShipReturn, escrow.Buyer, agreed)
	allow(escrow.ActionConfirmReturn, escrow.Seller, sentBack)
	allow(escrow.ActionRefuseReturn, escrow.Seller, sentBack)
	allow(escrow.ActionCancelReturn, escrow.Buyer, returning, agreed, turnedOut)
	allow(escrow.ActionAddEvidence, escrow.Buyer, inDispute)
	allow(escrow.ActionAddEvidence, escrow.Seller, inDispute)
	allow(escrow.ActionAddEvidence, escrow.Arbiter, inDispute)

	want := map[rule]bool{}
	for _, r := range allowed {
		want[r] = true
	}
	states := append(escrow.States(), 0, 42)
	actions := append(escrow.Actions(), 0, escrow.ActionRate, escrow.ActionEscalate, 255)
	roles := []escrow.Role{0, escrow.Buyer, escrow.Seller, escrow.Arbiter}
	for _, a := range actions {
		for _, r := range roles {
			for _, s := range states {
				if got := escrow.Allowed(a, r, s); got != want[rule{a, r, s}] {
					t.Errorf("Allowed(%s, %s, %s) = %v, want %v", a, r, s, got, !got)
				}
			}
		}
	}
}

func TestRoleOf(t *testing.T) {
	withArbiter := &escrow.Escrow{Terms: escrow.Terms{Buyer: "alice", Seller: "bob", Arbiter: "carol"}}
	noArbiter := &escrow.Escrow{Terms: escrow.Terms{Buyer: "alice", Seller: "bob"}}
	tests := []struct {
		e     *escrow.Escrow
		actor string
		want  escrow.Role
	}{
		{withArbiter, "alice", escrow.Buyer},
		{withArbiter, "bob", escrow.Seller},
		{withArbiter, "carol", escrow.Arbiter},
		{withArbiter, "mallory", 0},
		{withArbiter, "Alice", 0},
		{withArbiter, "", 0},
		{noArbiter, "carol", 0},
		{noArbiter, "", 0}, // the empty actor is not the missing arbiter
		{noArbiter, "bob", escrow.Seller},
	}
	for _, tc := range tests {
		if got := tc.e.RoleOf(tc.actor); got != tc.want {
			t.Errorf("RoleOf(%q) with arbiter %q = %s, want %s", tc.actor, tc.e.Arbiter, got, tc.want)
		}
	}
}

func TestBucketString(t *testing.T) {
	if escrow.Available.String() != "available" || escrow.Held.String() != "held" {
		t.Errorf("buckets are %q and %q", escrow.Available, escrow.Held)
	}
}

func TestBalanceTotal(t *testing.T) {
	b := escrow.Balance{
		Account:   "alice",
		Currency:  escrow.CNY,
		Available: escrow.MustParseMoney("12.34", escrow.CNY),
		Held:      escrow.MustParseMoney("0.66", escrow.CNY),
	}
	if got := b.Total(); got != escrow.MustParseMoney("13.00", escrow.CNY) {
		t.Errorf("Total() = %v, want 13.00 CNY", got)
	}
}

func TestEntryChange(t *testing.T) {
	e := escrow.Entry{Kind: escrow.EntryRelease, Currency: escrow.CNY, Postings: []escrow.Posting{
		{Account: "alice", Bucket: escrow.Held, Change: -10000},
		{Account: "bob", Bucket: escrow.Available, Change: 9940},
		{Account: escrow.FeeAccount, Bucket: escrow.Available, Change: 60},
	}}
	got := map[string]int64{}
	for _, id := range []string{"alice", "bob", escrow.FeeAccount, "carol"} {
		got[id] = e.Change(id)
	}
	want := map[string]int64{"alice": -10000, "bob": 9940, escrow.FeeAccount: 60, "carol": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Change (-want +got):\n%s", diff)
	}
	// A refund moves money between one account's buckets: no net change.
	refund := escrow.Entry{Postings: []escrow.Posting{
		{Account: "alice", Bucket: escrow.Held, Change: -500},
		{Account: "alice", Bucket: escrow.Available, Change: 500},
	}}
	if got := refund.Change("alice"); got != 0 {
		t.Errorf("refund Change(alice) = %d, want 0", got)
	}
}

func TestTypedErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		is   error
		want string
	}{
		{&escrow.RoleError{Escrow: "e1", Action: escrow.ActionShip, Actor: "alice", State: escrow.AwaitingShipment, Want: escrow.Seller.String()},
			escrow.ErrNotParty, `escrow: "alice" may not ship escrow "e1" (state AwaitingShipment): only the seller may`},
		{&escrow.TransitionError{Escrow: "e1", Action: escrow.ActionConfirm, State: escrow.AwaitingPayment},
			escrow.ErrInvalidTransition, `escrow: cannot confirm escrow "e1" in state AwaitingPayment`},
		{&escrow.InsufficientFundsError{Account: "alice", Needed: escrow.MustParseMoney("5", escrow.CNY), Available: escrow.MustParseMoney("4.99", escrow.CNY)},
			escrow.ErrInsufficientFunds, `escrow: insufficient funds in "alice": need 5.00 CNY, available 4.99 CNY`},
		{&escrow.AmountError{Amount: "-1", Currency: "CNY", Reason: "negative", Err: escrow.ErrInvalidAmount},
			escrow.ErrInvalidAmount, `escrow: invalid amount: -1 CNY: negative`},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(tc.err, tc.is) {
			t.Errorf("%v does not wrap %v", tc.err, tc.is)
		}
		if wrapped := fmt.Errorf("outer: %w", tc.err); !errors.Is(wrapped, tc.is) {
			t.Errorf("wrapped %v does not wrap %v", tc.err, tc.is)
		}
	}
}

// TestAllowedCombinedRoles: a role of several is allowed what any of them
// is; bits that name no role count for nothing.
func TestAllowedCombinedRoles(t *testing.T) {
	const none = escrow.Role(1 << 6)
	for _, c := range []struct {
		action escrow.Action
		role   escrow.Role
		state  escrow.State
		want   bool
	}{
		{escrow.ActionPay, escrow.Buyer | escrow.Seller, escrow.AwaitingPayment, true},
		{escrow.ActionShip, escrow.Buyer | escrow.Seller, escrow.AwaitingShipment, true},
		{escrow.ActionResolve, escrow.Buyer | escrow.Seller, escrow.Disputed, false},
		{escrow.ActionResolve, escrow.Buyer | escrow.Arbiter, escrow.Disputed, true},
		{escrow.ActionPay, escrow.Buyer | none, escrow.AwaitingPayment, true},
		{escrow.ActionPay, none, escrow.AwaitingPayment, false},
		{escrow.ActionPay, 0, escrow.AwaitingPayment, false},
		{escrow.ActionShip, ^(escrow.Buyer | escrow.Seller | escrow.Arbiter), escrow.AwaitingShipment, false},
	} {
		if got := escrow.Allowed(c.action, c.role, c.state); got != c.want {
			t.Errorf("Allowed(%v, %#x, %v) = %v, want %v", c.action, uint8(c.role), c.state, got, c.want)
		}
	}
}
