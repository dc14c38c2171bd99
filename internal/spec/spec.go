// Package spec states the guaranteed trade's state machine as the
// specification gives it: who may take each action, and from which states.
// The root package's tests and the storagetest simulation both check the
// escrow package's own rules against this one table, written apart from
// them.
package spec

import "github.com/escrowkit/escrow"

// A Rule is who may take one action, and from which states.
type Rule struct {
	Name string
	Who  []escrow.Role
	From []escrow.State
}

// Actions is the specification's rule for every action.
var Actions = map[escrow.Action]Rule{
	escrow.ActionPay:              {"pay", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.AwaitingPayment}},
	escrow.ActionShip:             {"ship", []escrow.Role{escrow.Seller}, []escrow.State{escrow.AwaitingShipment}},
	escrow.ActionConfirm:          {"confirm", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.AwaitingConfirmation}},
	escrow.ActionConfirmMilestone: {"confirm-milestone", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.AwaitingConfirmation}},
	escrow.ActionCancel:           {"cancel", []escrow.Role{escrow.Buyer, escrow.Seller}, []escrow.State{escrow.AwaitingPayment}},
	escrow.ActionRefund:           {"refund", []escrow.Role{escrow.Seller}, []escrow.State{escrow.AwaitingShipment, escrow.AwaitingConfirmation}},
	escrow.ActionRequestRefund:    {"request-refund", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.AwaitingShipment, escrow.AwaitingConfirmation}},
	escrow.ActionAgreeRefund:      {"agree-refund", []escrow.Role{escrow.Seller}, []escrow.State{escrow.RefundRequested}},
	escrow.ActionRefuseRefund:     {"refuse-refund", []escrow.Role{escrow.Seller}, []escrow.State{escrow.RefundRequested, escrow.ReturnRequested}},
	escrow.ActionDispute: {"dispute", []escrow.Role{escrow.Buyer, escrow.Seller}, []escrow.State{escrow.AwaitingShipment, escrow.AwaitingConfirmation,
		escrow.RefundRequested, escrow.ReturnRequested, escrow.AwaitingReturn, escrow.ReturnShipped, escrow.ReturnRefused}},
	escrow.ActionResolve: {"resolve", []escrow.Role{escrow.Arbiter}, []escrow.State{escrow.Disputed}},

	// Partial shipment, more time to confirm, return and refund, evidence.
	escrow.ActionShipPart:      {"ship-part", []escrow.Role{escrow.Seller}, []escrow.State{escrow.AwaitingShipment}},
	escrow.ActionExtend:        {"extend", []escrow.Role{escrow.Buyer, escrow.Seller}, []escrow.State{escrow.AwaitingConfirmation}},
	escrow.ActionRequestReturn: {"request-return", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.AwaitingConfirmation}},
	escrow.ActionAgreeReturn:   {"agree-return", []escrow.Role{escrow.Seller}, []escrow.State{escrow.ReturnRequested}},
	escrow.ActionShipReturn:    {"ship-return", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.AwaitingReturn}},
	escrow.ActionConfirmReturn: {"confirm-return", []escrow.Role{escrow.Seller}, []escrow.State{escrow.ReturnShipped}},
	escrow.ActionRefuseReturn:  {"refuse-return", []escrow.Role{escrow.Seller}, []escrow.State{escrow.ReturnShipped}},
	escrow.ActionCancelReturn:  {"cancel-return", []escrow.Role{escrow.Buyer}, []escrow.State{escrow.ReturnRequested, escrow.AwaitingReturn, escrow.ReturnRefused}},
	escrow.ActionAddEvidence:   {"add-evidence", []escrow.Role{escrow.Buyer, escrow.Seller, escrow.Arbiter}, []escrow.State{escrow.Disputed}},
}

// Who returns the roles Actions lets take action a, as one set.
func Who(a escrow.Action) escrow.Role {
	var who escrow.Role
	for _, r := range Actions[a].Who {
		who |= r
	}
	return who
}
