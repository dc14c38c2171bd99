package escrow

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
)

// State is where an escrow is in its lifecycle.
//
//	AwaitingPayment --Pay--> AwaitingShipment --Ship--> AwaitingConfirmation --Confirm--> Completed
//	      |                    |       ^                    |       ^
//	 Cancel or timer      RequestRefund|               RequestRefund|      (timer: auto-confirm → Completed)
//	      v                    v       |Refuse              v       |Refuse
//	    Closed              RefundRequested --AgreeRefund or timer--> Refunded (or back, if partial)
//
// A return and refund takes the goods back before the money (see
// RequestReturn):
//
//	AwaitingConfirmation --RequestReturn--> ReturnRequested --AgreeReturn or timer--> AwaitingReturn
//	                                               |                                        |
//	                                      RefuseRefund: back                           ShipReturn
//	                                                                                        v
//	                       Refunded (or back, if partial) <--ConfirmReturn or timer-- ReturnShipped
//	                                                                                        |
//	                                                                                  RefuseReturn
//	                                                                                        v
//	                                                            Disputed <--Dispute-- ReturnRefused
//
//	ReturnRequested, AwaitingReturn, ReturnRefused --CancelReturn--> back
//	AwaitingReturn (not shipped back), ReturnRefused (not disputed) --timer: the return lapses--> back
//
// Back is AwaitingConfirmation, its auto-confirm timer resumed with the
// time that was left: the timer is paused for the whole return.
//
//	AwaitingShipment, AwaitingConfirmation, RefundRequested and the four return states --Dispute--> Disputed --Resolve--> Resolved
//	AwaitingShipment --timer--> Refunded;  Refund by the seller of all that is held --> Refunded
//
// Some actions leave the state as it is: ShipPart records a part of the
// order shipped (AwaitingShipment), Extend puts the auto-confirm deadline
// back (AwaitingConfirmation), and AddEvidence adds a note to a dispute
// (Disputed), where the arbiter's deadline, if Timers.ArbiterWithin sets
// one, raises EscrowEscalated when it passes.
//
// Completed, Refunded, Resolved and Closed are terminal, and a terminal
// escrow holds nothing.
type State uint8

// States.
const (
	AwaitingPayment      State = iota + 1 // opened; the buyer has not paid
	AwaitingShipment                      // paid and held; the seller has not shipped
	AwaitingConfirmation                  // shipped; the buyer has not confirmed receipt
	RefundRequested                       // the buyer asked for money back; the seller has not answered
	Disputed                              // a party called the arbiter
	Completed                             // all money released to the seller (some may have been refunded)
	Refunded                              // all money returned to the buyer
	Resolved                              // the arbiter split the money
	Closed                                // ended before payment

	// The states of a return and refund (see RequestReturn), numbered
	// after those above so that the numbers stores keep stay as they were.
	ReturnRequested // the buyer asked to send the goods back for a refund; the seller has not answered
	AwaitingReturn  // the seller agreed to the return; the buyer has not shipped the goods back
	ReturnShipped   // the buyer shipped the goods back; the seller has not confirmed receipt
	ReturnRefused   // the seller refused the returned goods; either party may dispute

	lastState = ReturnRefused
)

var stateNames = [...]string{"", "AwaitingPayment", "AwaitingShipment", "AwaitingConfirmation",
	"RefundRequested", "Disputed", "Completed", "Refunded", "Resolved", "Closed",
	"ReturnRequested", "AwaitingReturn", "ReturnShipped", "ReturnRefused"}

// States lists every state in lifecycle order.
func States() []State {
	return []State{AwaitingPayment, AwaitingShipment, AwaitingConfirmation, RefundRequested,
		ReturnRequested, AwaitingReturn, ReturnShipped, ReturnRefused,
		Disputed, Completed, Refunded, Resolved, Closed}
}

func (s State) String() string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Terminal reports whether no action can change an escrow in state s.
func (s State) Terminal() bool { return s >= Completed && s <= Closed }

// Action names something a party can do to an escrow.
type Action uint8

// Actions.
const (
	ActionPay Action = iota + 1
	ActionShip
	ActionConfirm
	ActionConfirmMilestone
	ActionCancel
	ActionRefund
	ActionRequestRefund
	ActionAgreeRefund
	ActionRefuseRefund
	ActionDispute
	ActionResolve
	// ActionRate is rating the other party after the escrow ended; see
	// Ledger.Rate. It is not in Actions: it changes no state.
	ActionRate
	ActionShipPart
	ActionExtend
	ActionRequestReturn
	ActionAgreeReturn
	ActionShipReturn
	ActionConfirmReturn
	ActionRefuseReturn
	ActionCancelReturn
	ActionAddEvidence
	// ActionEscalate is the clock's alone: the arbiter's deadline
	// (Timers.ArbiterWithin) passed in Disputed. No party may take it, and
	// it is not in Actions.
	ActionEscalate
)

// Actions lists every action a party may take.
func Actions() []Action {
	var all []Action
	for a, r := range rules {
		if r.do != nil && r.who != 0 {
			all = append(all, Action(a))
		}
	}
	return all
}

// word is a's word (see MarshalText), for a valid action.
func (a Action) word() string { return actionWords.words[a] }

func (a Action) String() string {
	if a != 0 && int(a) < len(rules) {
		return rules[a].name
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// A Role is a party's part in one escrow.
type Role uint8

// Roles. A Role value may combine several with |.
const (
	Buyer Role = 1 << iota
	Seller
	Arbiter
)

func (r Role) String() string {
	switch r {
	case Buyer:
		return "the buyer"
	case Seller:
		return "the seller"
	case Arbiter:
		return "the arbiter"
	case Buyer | Seller:
		return "the buyer or the seller"
	case Buyer | Seller | Arbiter:
		return "the buyer, the seller or the arbiter"
	case 0:
		return "nobody"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// A rule is one action's row in the state machine.
type rule struct {
	name    string // worded for messages: "may not <name> escrow …"
	request string // its name in idempotency records, fixed once released; its word (see Action.MarshalText) with _ for -
	who     Role
	from    []State
	do      func(c *change) error // the change, once who and from allow it
}

// The states an action may be taken from, where several actions share
// them.
var (
	// paid are the states in which money is held and the goods are on the
	// way or have come: a party may dispute from any of them.
	paid = []State{AwaitingShipment, AwaitingConfirmation, RefundRequested,
		ReturnRequested, AwaitingReturn, ReturnShipped, ReturnRefused}
	// sellerRefunds are the states the seller may refund from on their own.
	sellerRefunds = []State{AwaitingShipment, AwaitingConfirmation}
)

// rules is the whole state machine: who may take each action, from which
// states, and what it does. Anything not listed is refused. The clock
// takes its actions from here too (see clock).
var rules = [...]rule{
	ActionPay:              {"pay", "pay", Buyer, []State{AwaitingPayment}, (*change).pay},
	ActionShip:             {"ship", "ship", Seller, []State{AwaitingShipment}, (*change).ship},
	ActionShipPart:         {"ship part of", "ship-part", Seller, []State{AwaitingShipment}, (*change).shipPart},
	ActionConfirm:          {"confirm", "confirm", Buyer, []State{AwaitingConfirmation}, (*change).confirm},
	ActionConfirmMilestone: {"confirm a milestone of", "confirm-milestone", Buyer, []State{AwaitingConfirmation}, (*change).confirmMilestone},
	ActionExtend:           {"extend the confirmation deadline of", "extend", Buyer | Seller, []State{AwaitingConfirmation}, (*change).extend},
	ActionCancel:           {"cancel", "cancel", Buyer | Seller, []State{AwaitingPayment}, (*change).cancel},
	ActionRefund:           {"refund", "refund", Seller, sellerRefunds, (*change).refundPart},
	ActionRequestRefund:    {"request a refund on", "request-refund", Buyer, sellerRefunds, (*change).requestRefund},
	ActionAgreeRefund:      {"agree to the refund on", "agree-refund", Seller, []State{RefundRequested}, (*change).agreeRefund},
	ActionRefuseRefund:     {"refuse the refund on", "refuse-refund", Seller, []State{RefundRequested, ReturnRequested}, (*change).refuseRefund},
	ActionRequestReturn:    {"request a return on", "request-return", Buyer, []State{AwaitingConfirmation}, (*change).requestReturn},
	ActionAgreeReturn:      {"agree to the return on", "agree-return", Seller, []State{ReturnRequested}, (*change).agreeReturn},
	ActionShipReturn:       {"ship the return of", "ship-return", Buyer, []State{AwaitingReturn}, (*change).shipReturn},
	ActionConfirmReturn:    {"confirm the return of", "confirm-return", Seller, []State{ReturnShipped}, (*change).confirmReturn},
	ActionRefuseReturn:     {"refuse the return of", "refuse-return", Seller, []State{ReturnShipped}, (*change).refuseReturn},
	ActionCancelReturn:     {"cancel the return of", "cancel-return", Buyer, []State{ReturnRequested, AwaitingReturn, ReturnRefused}, (*change).cancelReturn},
	ActionDispute:          {"dispute", "dispute", Buyer | Seller, paid, (*change).dispute},
	ActionAddEvidence:      {"add evidence to", "add-evidence", Buyer | Seller | Arbiter, []State{Disputed}, (*change).addEvidence},
	ActionResolve:          {"resolve", "resolve", Arbiter, []State{Disputed}, (*change).resolve},
	ActionEscalate:         {"escalate", "escalate", 0, []State{Disputed}, (*change).escalate},
	// Rating changes no state: Ledger.Rate checks its own rules.
	ActionRate: {name: "rate the other party of", request: "rate"},
}

// clock is what happens when a state's timer runs out: the clock takes
// the state's action from rules, with all that is held as its amount
// (only Refund reads it). A state without a row runs no timer, nor does
// one whose within gives zero.
var clock = [lastState + 1]struct {
	action Action
	within func(Timers) time.Duration
}{
	AwaitingPayment:      {ActionCancel, func(t Timers) time.Duration { return t.PayWithin }},
	AwaitingShipment:     {ActionRefund, func(t Timers) time.Duration { return t.ShipWithin }},
	AwaitingConfirmation: {ActionConfirm, func(t Timers) time.Duration { return t.ConfirmWithin }},
	RefundRequested:      {ActionAgreeRefund, func(t Timers) time.Duration { return t.RefundResponseWithin }},
	ReturnRequested:      {ActionAgreeReturn, func(t Timers) time.Duration { return t.ReturnResponseWithin }},
	AwaitingReturn:       {ActionCancelReturn, func(t Timers) time.Duration { return t.ReturnShipWithin }},
	ReturnShipped:        {ActionConfirmReturn, func(t Timers) time.Duration { return t.ReturnReceiveWithin }},
	ReturnRefused:        {ActionCancelReturn, func(t Timers) time.Duration { return t.ReturnDisputeWithin }},
	Disputed:             {ActionEscalate, func(t Timers) time.Duration { return t.ArbiterWithin }},
}

// Allowed reports whether role may take action on an escrow in state s.
// For a role that combines several (Buyer|Seller), it reports whether
// any of them may; bits that name no role count for nothing, so 0, or
// bits alone that name none, may take no action.
// It is the rule of roles and states the ledger enforces, exposed so a
// user interface can show only the buttons that may work. A call may still
// be refused for what the escrow holds beyond its state: a Dispute on an
// escrow with no arbiter (ErrNoArbiter), an amount past what is held, a
// deadline that has passed.
func Allowed(action Action, role Role, s State) bool {
	if action == 0 || int(action) >= len(rules) || role&rules[action].who == 0 {
		return false
	}
	for _, f := range rules[action].from {
		if f == s {
			return true
		}
	}
	return false
}

// RoleOf returns actor's role in e, or 0 for a stranger.
func (e *Escrow) RoleOf(actor string) Role {
	switch {
	case actor == "":
		return 0
	case actor == e.Buyer:
		return Buyer
	case actor == e.Seller:
		return Seller
	case actor == e.Arbiter:
		return Arbiter
	}
	return 0
}

// authorize refuses a stranger or wrong party (ErrNotParty) first, then an
// action the state does not allow (ErrInvalidTransition).
func authorize(e *Escrow, action Action, actor string) error {
	role := e.RoleOf(actor)
	if role&rules[action].who == 0 {
		return &RoleError{Escrow: e.ID, Action: action, Actor: actor, State: e.State, Want: rules[action].who.String()}
	}
	if !Allowed(action, role, e.State) {
		return &TransitionError{Escrow: e.ID, Action: action, State: e.State}
	}
	return nil
}

// MaxTimer is the longest a Timers field may be: 50 years. A deadline and
// the extensions of it then fall well within the times storage adapters
// order to the nanosecond (the range of time.Time.UnixNano, up to the
// year 2262), and a timer a host means never to fire can still be set
// far enough away.
const MaxTimer = 50 * 365 * 24 * time.Hour

// Timers are an escrow's deadlines, and the extensions its parties may
// make to one of them. Each deadline runs in one state and has its own
// action when it expires, fired by ProcessDue. A zero field takes the
// ledger's default; a negative one, or one longer than MaxTimer, is
// refused with ErrInvalidArgument. In JSON the durations are strings,
// "72h0m0s", and the zero ones are left out.
//
// An escrow stored before a field existed reads that field as the
// built-in default (DefaultTimers).
type Timers struct {
	PayWithin            time.Duration `json:"pay_within,omitzero"`             // AwaitingPayment: then Closed
	ShipWithin           time.Duration `json:"ship_within,omitzero"`            // AwaitingShipment: then all held is refunded
	ConfirmWithin        time.Duration `json:"confirm_within,omitzero"`         // AwaitingConfirmation: then all held is released (auto-confirm)
	RefundResponseWithin time.Duration `json:"refund_response_within,omitzero"` // RefundRequested: then the refund is made as asked

	ReturnResponseWithin time.Duration `json:"return_response_within,omitzero"` // ReturnRequested: then the return is agreed to
	ReturnShipWithin     time.Duration `json:"return_ship_within,omitzero"`     // AwaitingReturn: then the request lapses and the trade resumes
	ReturnReceiveWithin  time.Duration `json:"return_receive_within,omitzero"`  // ReturnShipped: then the refund is made as asked
	ReturnDisputeWithin  time.Duration `json:"return_dispute_within,omitzero"`  // ReturnRefused: then the request ends and the trade resumes
	// ArbiterWithin is how long the arbiter has to resolve a dispute
	// before an EscrowEscalated event tells the host; zero for no
	// deadline, the default.
	ArbiterWithin time.Duration `json:"arbiter_within,omitzero"`

	BuyerExtension       time.Duration `json:"buyer_extension,omitzero"`        // the most the buyer's one extension adds to ConfirmWithin
	SellerExtensionLimit time.Duration `json:"seller_extension_limit,omitzero"` // the most the seller's extensions add in all
}

// DefaultTimers returns the defaults: 3 days to pay, 7 to ship, 10 to
// confirm and 5 for the seller to answer a refund request; in a return,
// 5 days for the seller to answer, 7 for the buyer to ship the goods back,
// 10 for the seller to confirm their receipt and 7 to dispute a refusal
// of them; no deadline for the arbiter; 3 days for the buyer's extension
// and 30 for all of the seller's.
func DefaultTimers() Timers {
	const day = 24 * time.Hour
	return Timers{PayWithin: 3 * day, ShipWithin: 7 * day, ConfirmWithin: 10 * day, RefundResponseWithin: 5 * day,
		ReturnResponseWithin: 5 * day, ReturnShipWithin: 7 * day, ReturnReceiveWithin: 10 * day,
		ReturnDisputeWithin: 7 * day, BuyerExtension: 3 * day, SellerExtensionLimit: 30 * day}
}

// fields returns pointers to t's fields, in their order.
func (t *Timers) fields() []*time.Duration {
	return []*time.Duration{&t.PayWithin, &t.ShipWithin, &t.ConfirmWithin, &t.RefundResponseWithin,
		&t.ReturnResponseWithin, &t.ReturnShipWithin, &t.ReturnReceiveWithin, &t.ReturnDisputeWithin,
		&t.ArbiterWithin, &t.BuyerExtension, &t.SellerExtensionLimit}
}

func (t Timers) withDefaults(d Timers) (Timers, error) {
	for _, f := range t.fields() {
		if *f < 0 {
			return Timers{}, invalidArg("timers may not be negative: %+v", t)
		}
		if *f > MaxTimer {
			return Timers{}, invalidArg("timer %v is longer than MaxTimer (%v)", *f, MaxTimer)
		}
	}
	def := d.fields()
	for i, f := range t.fields() {
		if *f == 0 {
			*f = *def[i]
		}
	}
	return t, nil
}

// stored fills in the fields that an escrow stored before they existed
// reads as zero, with the built-in defaults. ArbiterWithin's zero is its
// default.
func (t Timers) stored() Timers {
	if t.ReturnResponseWithin != 0 || t.PayWithin == 0 {
		return t // stored with them, or not an escrow's
	}
	d := DefaultTimers()
	t.ReturnResponseWithin, t.ReturnShipWithin, t.ReturnReceiveWithin = d.ReturnResponseWithin, d.ReturnShipWithin, d.ReturnReceiveWithin
	t.ReturnDisputeWithin, t.BuyerExtension, t.SellerExtensionLimit = d.ReturnDisputeWithin, d.BuyerExtension, d.SellerExtensionLimit
	return t
}

// Terms are what buyer and seller agree on when an escrow is opened.
type Terms struct {
	ID      string `json:"id"`                // chosen by the caller; opening the same ID with the same terms again is a no-op
	Buyer   string `json:"buyer"`             // account ID of the payer
	Seller  string `json:"seller"`            // account ID of the payee
	Arbiter string `json:"arbiter,omitempty"` // who resolves disputes; optional (Options.Arbiter if empty), need not have an account
	Price   Money  `json:"price"`
	Item    string `json:"item,omitempty"` // what is sold, up to 1,000 bytes
	// SKU identifies the item in the host's catalogue, up to 100 bytes on
	// one line. Reputation counts one rating a rater gives a ratee on the
	// same SKU (or, without one, the same Item) per
	// ReputationPolicy.RepeatItemWindow, so the host should set it from
	// its own listing, not from what a seller types.
	SKU string `json:"sku,omitempty"`
	// Milestones, if any, release the price in tranches, in order, each
	// confirmed on its own with ConfirmMilestone: at most 100. Their
	// amounts add up to Price. Refunds come off the last tranches first.
	Milestones []Milestone `json:"milestones,omitzero"`
	Timers     Timers      `json:"timers"`
	// Metadata is the host's own data about the trade (an order number, a
	// customer's reference), kept as given and returned on the escrow and
	// on every event of it; the ledger never reads it. At most
	// MetadataMaxKeys keys of 1 to MetadataMaxKeyBytes bytes, each with a
	// value of 1 to MetadataMaxValueBytes bytes (the limits of Stripe's
	// metadata); both are text as the ledger takes it elsewhere (valid
	// UTF-8, no control or bidirectional formatting characters), and
	// values, like an item, may hold newlines and tabs. An empty map is
	// no metadata. The ledger copies the map in and out: changing it after
	// Open, or changing the one an Escrow or Event carries, changes
	// nothing stored.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// A Milestone is one tranche of an escrow released in parts.
type Milestone struct {
	Name   string `json:"name"`
	Amount Money  `json:"amount"`
}

// An Escrow is one guaranteed trade: the buyer's money held by the ledger
// until the buyer confirms receipt, then released to the seller minus the
// fee, or refunded, or split by an arbiter. Money fields always satisfy
// Held + Released + Refunded = Price once paid; Fees is the part of
// Released that went to FeeAccount.
type Escrow struct {
	Terms
	Fee      FeeTerms `json:"fee"`
	State    State    `json:"state"`
	Held     Money    `json:"held"`     // still held in the buyer's account
	Released Money    `json:"released"` // released to the seller, fees included
	Fees     Money    `json:"fees"`
	Refunded Money    `json:"refunded"`

	NextMilestone int    `json:"next_milestone"`     // milestones released so far
	Tracking      string `json:"tracking,omitempty"` // from Ship
	// Shipments are the parts of the order shipped with ShipPart, in
	// order, before the last shipment (Ship: Tracking and ShippedAt).
	Shipments []Shipment `json:"shipments,omitzero"`
	// Extended is how much the buyer and the seller have added to the
	// auto-confirm deadline (see Extend).
	Extended Extensions `json:"extended,omitzero"`
	// Refund is the open refund request, in RefundRequested or one of the
	// return states (see RequestReturn), else the last one, with the
	// seller's answer if it was refused.
	Refund RefundRequest `json:"refund,omitzero"`
	// Return is the goods' way back in a return and refund (see
	// RequestReturn; the request itself is in Refund): the seller's
	// address, the buyer's tracking number, and the seller's refusal of
	// the goods if any. Zero if no return was agreed.
	Return Return `json:"return,omitzero"`
	// Dispute is who called the arbiter, when and why; zero if nobody did.
	Dispute DisputeClaim `json:"dispute,omitzero"`
	// Evidence is what the parties and the arbiter added to the dispute,
	// in order (see AddEvidence).
	Evidence []Evidence `json:"evidence,omitzero"`
	// Cart is the first escrow of the cart this one was paid with, and
	// CartSize how many escrows that cart paid (see PayAll); zero if it was
	// paid on its own.
	Cart     string `json:"cart,omitempty"`
	CartSize int    `json:"cart_size,omitzero"`
	// Resume is the state a refund request or a return goes back to when
	// it is refused, withdrawn or lapses, or only partly refunds the
	// escrow; zero once the escrow has ended.
	Resume State `json:"resume,omitzero"`
	// Paused is what was left of the running timer when a refund request, a
	// return or a dispute stopped it; it restarts with that much when the
	// request or return ends without ending the escrow.
	Paused time.Duration `json:"paused,omitzero"`
	// DueAt is when the running timer fires; zero if none runs.
	DueAt time.Time `json:"due_at,omitzero"`

	// DisputeLoser is the party who got less than half of the money held
	// when the arbiter resolved a dispute; zero if none did.
	DisputeLoser Role `json:"dispute_loser,omitzero"`
	// Rated holds the parties who have rated the other (Buyer, Seller or
	// both), by their own rating or by the default one.
	Rated Role `json:"rated,omitzero"`
	// RatingDueAt is when the rating window of an ended escrow closes;
	// zero before the escrow ends, for states that cannot be rated, and
	// once the window has closed.
	RatingDueAt time.Time `json:"rating_due_at,omitzero"`

	CreatedAt time.Time `json:"created_at,omitzero"`
	PaidAt    time.Time `json:"paid_at,omitzero"`
	ShippedAt time.Time `json:"shipped_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Version   uint64    `json:"version"` // 1 when opened, +1 per change
}

// NextDue returns when ProcessDue next has something to do for e: the
// earlier of DueAt and RatingDueAt that is not zero, or zero.
func (e *Escrow) NextDue() time.Time {
	switch {
	case e.DueAt.IsZero():
		return e.RatingDueAt
	case e.RatingDueAt.IsZero() || e.DueAt.Before(e.RatingDueAt):
		return e.DueAt
	}
	return e.RatingDueAt
}

// A RefundRequest is the buyer asking for money back, for Reason, and
// the seller's answer if it was a refusal: RefusedAt is when the seller
// refused, for RefuseReason; zero while the request is open and when it
// was agreed to (an agreed request shows in Escrow.Refunded).
type RefundRequest struct {
	Amount       Money     `json:"amount"`
	Reason       string    `json:"reason,omitempty"`
	At           time.Time `json:"at,omitzero"`
	RefuseReason string    `json:"refuse_reason,omitempty"`
	RefusedAt    time.Time `json:"refused_at,omitzero"`
}

// A DisputeClaim is a party calling the arbiter: By is the buyer or the
// seller, Reason what they gave to Dispute and At when. An escrow is
// disputed at most once. EscalatedAt is when the ledger found the
// arbiter's deadline (Timers.ArbiterWithin) passed with the dispute still
// open, the time of its EscrowEscalated event: when ProcessDue, or a call
// on the escrow, fired the deadline, which may be later than the deadline
// itself (At plus ArbiterWithin).
type DisputeClaim struct {
	By          Role      `json:"by,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	At          time.Time `json:"at,omitzero"`
	EscalatedAt time.Time `json:"escalated_at,omitzero"`
}

// A Split divides an escrow's held money between buyer and seller. The parts
// must add up to exactly what is held; the fee is taken from the seller's.
type Split struct {
	Buyer  Money `json:"buyer"`
	Seller Money `json:"seller"`
}

// Open opens an escrow in AwaitingPayment. The buyer and seller must have
// accounts; the price must be positive in a registered currency. Opening an
// existing ID with identical terms returns that escrow and changes nothing;
// with different terms it fails with ErrExists. Terms that name no arbiter
// get the ledger's default (Options.Arbiter), and zero timers the
// ledger's (Options.Timers), before they are compared: a ledger opened
// with other defaults since the escrow was opened finds other terms.
func (l *Ledger) Open(ctx context.Context, t Terms, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	t, err := l.checkTerms(t)
	if err != nil {
		return Escrow{}, l.finish(start, "open", err)
	}
	return l.run(ctx, start, opts, func(c *call) { c.opening, c.terms, c.id, c.actor = true, t, t.ID, t.Buyer })
}

// open opens the escrow of c.terms, or finds it opened before with the same
// terms.
func (c *call) open(tx Tx) error {
	t := &c.terms
	if old, err := tx.Escrow(t.ID); err == nil {
		old.Timers = old.Timers.stored()
		if !termsEqual(old.Terms, *t) {
			return fmt.Errorf("%w: escrow %q with other terms", ErrExists, t.ID)
		}
		c.e = old
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := checkUserAccount(tx, t.Buyer); err != nil {
		return err
	}
	if err := checkUserAccount(tx, t.Seller); err != nil {
		return err
	}
	zero := zeroOf(t.Price.cur)
	c.e = Escrow{Terms: *t, Fee: c.l.feeTermsFor(t.Price.cur), Held: zero, Released: zero, Fees: zero,
		Refunded: zero, CreatedAt: c.now}
	c.e.enter(AwaitingPayment, c.now)
	c.ev = Event{Type: EscrowOpened, At: c.now, Escrow: t.ID, Actor: t.Buyer, Amount: t.Price, Note: t.Item}
	return save(tx, &c.e, &c.ev, c.now)
}

func (l *Ledger) checkTerms(t Terms) (Terms, error) {
	if err := checkID("escrow", t.ID); err != nil {
		return t, err
	}
	if err := checkID("buyer", t.Buyer); err != nil {
		return t, err
	}
	if err := checkID("seller", t.Seller); err != nil {
		return t, err
	}
	if t.Buyer == t.Seller {
		return t, invalidArg("buyer and seller are both %q", t.Buyer)
	}
	if t.Arbiter != "" {
		if err := checkID("arbiter", t.Arbiter); err != nil {
			return t, err
		}
	} else if t.Arbiter = l.arbiter; t.Arbiter != "" && (t.Arbiter == t.Buyer || t.Arbiter == t.Seller) {
		return t, invalidArg("the ledger's default arbiter %q is also a party; name another in Terms.Arbiter", t.Arbiter)
	}
	if t.Arbiter != "" && (t.Arbiter == t.Buyer || t.Arbiter == t.Seller) {
		return t, invalidArg("arbiter %q is also a party", t.Arbiter)
	}
	if err := l.checkPayment(t.Price); err != nil {
		return t, err
	}
	if err := checkText("item", t.Item, 1000, true); err != nil {
		return t, err
	}
	if err := checkText("sku", t.SKU, 100, false); err != nil {
		return t, err
	}
	if len(t.Milestones) > 100 {
		return t, invalidArg("%d milestones, more than 100", len(t.Milestones))
	}
	if len(t.Milestones) > 0 {
		sum := zeroOf(t.Price.cur)
		for i, m := range t.Milestones {
			if err := checkText("milestone name", m.Name, 200, false); err != nil {
				return t, err
			}
			if !sameCurrency(m.Amount, t.Price) {
				return t, mismatch(t.Price, m.Amount)
			}
			if err := m.Amount.check(); err != nil {
				return t, err
			}
			if m.Amount.units == 0 {
				return t, &AmountError{Amount: m.Amount.amountString(), Currency: m.Amount.currency().Code,
					Reason: fmt.Sprintf("milestone %d: a payment must be more than zero", i), Err: ErrInvalidAmount}
			}
			var err error
			if sum, err = sum.plus(m.Amount); err != nil {
				return t, err
			}
		}
		if sum != t.Price {
			return t, invalidArg("milestones add up to %s, price is %s", sum, t.Price)
		}
		t.Milestones = append([]Milestone(nil), t.Milestones...)
	} else {
		t.Milestones = nil // an empty list and none are the same terms
	}
	var err error
	if t.Metadata, err = checkMetadata(t.Metadata); err != nil {
		return t, err
	}
	t.Timers, err = t.Timers.withDefaults(l.timers)
	return t, err
}

func termsEqual(a, b Terms) bool {
	return a.ID == b.ID && a.Buyer == b.Buyer && a.Seller == b.Seller && a.Arbiter == b.Arbiter &&
		a.Price == b.Price && a.Item == b.Item && a.SKU == b.SKU && a.Timers == b.Timers && slices.Equal(a.Milestones, b.Milestones) &&
		maps.Equal(a.Metadata, b.Metadata)
}

// Escrow returns the escrow with this ID, or ErrNotFound.
func (l *Ledger) Escrow(ctx context.Context, id string) (Escrow, error) {
	start := l.begin()
	if err := checkID("escrow", id); err != nil {
		return Escrow{}, l.finish(start, "escrow", err)
	}
	var e Escrow
	err := l.store.View(ctx, func(tx Tx) error {
		var err error
		e, err = getEscrow(tx, id)
		return err
	})
	return e, l.finish(start, "escrow", err)
}

// Pay moves the price from the buyer's available balance to held. Only the
// buyer may pay, in AwaitingPayment; it fails with ErrInsufficientFunds if
// the buyer's available balance is short. The escrow moves to
// AwaitingShipment and its shipping timer starts.
func (l *Ledger) Pay(ctx context.Context, id, actor string, opts ...CallOption) (Escrow, error) {
	return l.act(ctx, l.begin(), ActionPay, id, actor, args{}, opts)
}

func (c *change) pay() error {
	e := c.e
	err := c.post(EntryHold,
		Posting{Account: e.Buyer, Bucket: Available, Change: -e.Price.units},
		Posting{Account: e.Buyer, Bucket: Held, Change: e.Price.units})
	if err != nil {
		return err
	}
	e.Held, e.PaidAt = e.Price, c.now
	e.enter(AwaitingShipment, c.now)
	c.ev.Type, c.ev.Amount = EscrowPaid, e.Price
	return nil
}

// Ship records that the seller shipped, with an optional tracking number
// (up to 200 bytes). Only the seller, in AwaitingShipment. The escrow moves
// to AwaitingConfirmation and the auto-confirm timer starts.
func (l *Ledger) Ship(ctx context.Context, id, actor, tracking string, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := checkText("tracking", tracking, 200, false); err != nil {
		return Escrow{}, l.finish(start, ActionShip.word(), err)
	}
	return l.act(ctx, start, ActionShip, id, actor, args{text: tracking}, opts)
}

func (c *change) ship() error {
	c.e.Tracking, c.e.ShippedAt = c.text, c.now
	c.e.enter(AwaitingConfirmation, c.now)
	c.ev.Type, c.ev.Note = EscrowShipped, c.text
	return nil
}

// Confirm records that the buyer received the goods and releases all that
// is held to the seller, minus the fee. Only the buyer, in
// AwaitingConfirmation. The escrow is Completed; on an escrow with
// Milestones, NextMilestone then counts every tranche released, as
// auto-confirm's does.
func (l *Ledger) Confirm(ctx context.Context, id, actor string, opts ...CallOption) (Escrow, error) {
	return l.act(ctx, l.begin(), ActionConfirm, id, actor, args{}, opts)
}

func (c *change) confirm() error {
	c.e.NextMilestone = releasedTranches(c.e)
	return c.release(c.e.Held)
}

// releasedTranches is e.NextMilestone once all that e holds is released
// at once (Confirm, or auto-confirm): every tranche from the next one on
// that something is left of. Refunds came off the last tranches, so those
// are the first ones whose amounts cover what is held.
func releasedTranches(e *Escrow) int {
	n, left := e.NextMilestone, e.Held.units
	for n < len(e.Milestones) && left > 0 {
		left -= e.Milestones[n].Amount.units
		n++
	}
	return n
}

// ConfirmMilestone releases milestone n (counting from 0) to the seller,
// minus the fee: what is left of its tranche, its amount less what
// refunds took from it, since refunds come off the last tranches first.
// Milestones are confirmed in order, so n must be e.NextMilestone; another
// n, or an escrow without milestones, is refused with ErrInvalidArgument.
// Only the buyer, in AwaitingConfirmation. When nothing is left held the
// escrow is Completed: at the last milestone, or at an earlier one when
// refunds took all of the tranches after it, which then leaves
// NextMilestone short of len(Milestones) and the rest unconfirmable.
func (l *Ledger) ConfirmMilestone(ctx context.Context, id, actor string, n int, opts ...CallOption) (Escrow, error) {
	return l.act(ctx, l.begin(), ActionConfirmMilestone, id, actor, args{n: n}, opts)
}

func (c *change) confirmMilestone() error {
	e, n := c.e, c.n
	if len(e.Milestones) == 0 {
		return invalidArg("escrow %q has no milestones", e.ID)
	}
	if n != e.NextMilestone || n >= len(e.Milestones) {
		return invalidArg("milestone %d of escrow %q: the next to confirm is %d of %d", n, e.ID, e.NextMilestone, len(e.Milestones))
	}
	// Refunds came off the last tranches, so this one keeps its amount
	// unless less than that is left.
	amount := e.Milestones[n].Amount
	if amount.units > e.Held.units || n == len(e.Milestones)-1 {
		amount = e.Held
	}
	e.NextMilestone++
	c.ev.Note = e.Milestones[n].Name
	return c.release(amount)
}

// Cancel closes an escrow before it is paid. The buyer or the seller, in
// AwaitingPayment. No money has moved, so none moves.
func (l *Ledger) Cancel(ctx context.Context, id, actor string, opts ...CallOption) (Escrow, error) {
	return l.act(ctx, l.begin(), ActionCancel, id, actor, args{}, opts)
}

func (c *change) cancel() error {
	c.e.enter(Closed, c.now)
	c.ev.Type = EscrowClosed
	return nil
}

// Refund returns amount of the held money to the buyer: the seller's own
// refund, full (amount equal to e.Held) or partial, any number of times.
// Only the seller, in AwaitingShipment or AwaitingConfirmation. When
// nothing is left held the escrow is Refunded (Completed if some money was
// already released).
func (l *Ledger) Refund(ctx context.Context, id, actor string, amount Money, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := l.checkPayment(amount); err != nil {
		return Escrow{}, l.finish(start, ActionRefund.word(), err)
	}
	return l.act(ctx, start, ActionRefund, id, actor, args{amount: amount}, opts)
}

func (c *change) refundPart() error {
	if err := checkHeld(c.e, c.amount); err != nil {
		return err
	}
	return c.refund(c.amount)
}

// RequestRefund asks the seller to return amount (all that is held, or
// less) for a reason (up to 1,000 bytes), kept in e.Refund. Only the buyer, in
// AwaitingShipment or AwaitingConfirmation. The running timer pauses; the
// seller has Timers.RefundResponseWithin to agree or refuse, after which the
// refund is made as asked. A timer that has already run out cannot be
// paused: if ProcessDue has not fired it yet, the request fires it first,
// as ProcessDue would have, and is then refused with ErrInvalidTransition
// (and so changes nothing) because the escrow has ended.
func (l *Ledger) RequestRefund(ctx context.Context, id, actor string, amount Money, reason string, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := l.checkPayment(amount); err != nil {
		return Escrow{}, l.finish(start, ActionRequestRefund.word(), err)
	}
	if err := checkText("reason", reason, 1000, true); err != nil {
		return Escrow{}, l.finish(start, ActionRequestRefund.word(), err)
	}
	return l.act(ctx, start, ActionRequestRefund, id, actor, args{amount: amount, text: reason}, opts)
}

func (c *change) requestRefund() error {
	e := c.e
	if err := checkHeld(e, c.amount); err != nil {
		return err
	}
	e.Refund = RefundRequest{Amount: c.amount, Reason: c.text, At: c.now}
	e.Resume = e.State
	e.pause(c.now)
	e.enter(RefundRequested, c.now)
	c.ev.Type, c.ev.Amount, c.ev.Note = EscrowRefundRequested, c.amount, c.text
	return nil
}

// AgreeRefund makes the refund the buyer asked for. Only the seller, in
// RefundRequested. If money is still held afterwards, the escrow returns to
// the state it was in and its timer resumes.
func (l *Ledger) AgreeRefund(ctx context.Context, id, actor string, opts ...CallOption) (Escrow, error) {
	return l.act(ctx, l.begin(), ActionAgreeRefund, id, actor, args{}, opts)
}

func (c *change) agreeRefund() error { return c.refund(c.e.Refund.Amount) }

// RefuseRefund turns the buyer's request down, for a reason (up to 1,000
// bytes), kept with the request in e.Refund (RefuseReason, RefusedAt).
// Only the seller, in RefundRequested, or in ReturnRequested to turn a
// return down. The escrow returns to the state it was in and its timer
// resumes; the buyer may then Dispute.
func (l *Ledger) RefuseRefund(ctx context.Context, id, actor, reason string, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := checkText("reason", reason, 1000, true); err != nil {
		return Escrow{}, l.finish(start, ActionRefuseRefund.word(), err)
	}
	return l.act(ctx, start, ActionRefuseRefund, id, actor, args{text: reason}, opts)
}

func (c *change) refuseRefund() error {
	c.e.Refund.RefuseReason, c.e.Refund.RefusedAt = c.text, c.now
	c.e.resume(c.now)
	c.ev.Type, c.ev.Note = EscrowRefundRefused, c.text
	return nil
}

// Dispute calls the arbiter, for a reason (up to 1,000 bytes), kept with
// who disputed and when in e.Dispute. The buyer or the seller, after payment and
// before the escrow ends (AwaitingShipment, AwaitingConfirmation,
// RefundRequested or one of the return states); the escrow must name an
// arbiter (else ErrNoArbiter). Every timer stops until the arbiter
// resolves it, and only the arbiter's own deadline runs
// (Timers.ArbiterWithin, if set). A timer that has already
// run out is not stopped: if ProcessDue has not fired it yet, the dispute
// fires it first, as ProcessDue would have, and is judged on the state it
// left. So a dispute after the shipping or confirmation deadline is refused
// with ErrInvalidTransition (and changes nothing), and one after an
// ignored partial refund request finds the refund made and the escrow
// resumed, and disputes that.
func (l *Ledger) Dispute(ctx context.Context, id, actor, reason string, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := checkText("reason", reason, 1000, true); err != nil {
		return Escrow{}, l.finish(start, ActionDispute.word(), err)
	}
	return l.act(ctx, start, ActionDispute, id, actor, args{text: reason}, opts)
}

func (c *change) dispute() error {
	e := c.e
	if e.Arbiter == "" {
		return fmt.Errorf("%w: escrow %q", ErrNoArbiter, e.ID)
	}
	if e.Resume == 0 { // else a refund request or a return already paused the timer
		e.pause(c.now)
	}
	e.Dispute = DisputeClaim{By: e.RoleOf(c.ev.Actor), Reason: c.text, At: c.now}
	e.enter(Disputed, c.now)
	c.ev.Type, c.ev.Note = EscrowDisputed, c.text
	return nil
}

// Resolve ends a dispute by splitting what is held between buyer and seller;
// the parts must add up to exactly e.Held (a zero Money counts as zero). The
// fee is taken from the seller's part. Only the arbiter, in Disputed. The
// escrow is Resolved.
func (l *Ledger) Resolve(ctx context.Context, id, actor string, split Split, opts ...CallOption) (Escrow, error) {
	return l.act(ctx, l.begin(), ActionResolve, id, actor, args{split: split}, opts)
}

func (c *change) resolve() error {
	e := c.e
	toBuyer, toSeller := c.split.Buyer, c.split.Seller
	for _, part := range []*Money{&toBuyer, &toSeller} {
		if part.cur == nil && part.units == 0 {
			*part = zeroOf(e.Price.cur)
		}
		if !sameCurrency(*part, e.Price) {
			return mismatch(e.Price, *part)
		}
		if err := part.check(); err != nil {
			return err
		}
	}
	if sum, err := toBuyer.plus(toSeller); err != nil || sum != e.Held {
		return invalidArg("split %s + %s does not add up to the %s held", toBuyer, toSeller, e.Held)
	}
	fee := e.Fee.fee(toSeller, e.Released.IsZero())
	err := c.post(EntrySplit,
		Posting{Account: e.Buyer, Bucket: Held, Change: -e.Held.units},
		Posting{Account: e.Buyer, Bucket: Available, Change: toBuyer.units},
		Posting{Account: e.Seller, Bucket: Available, Change: toSeller.units - fee.units},
		Posting{Account: FeeAccount, Bucket: Available, Change: fee.units})
	if err != nil {
		return err
	}
	c.ev.Type, c.ev.Amount, c.ev.Fee = EscrowResolved, e.Held, fee
	c.ev.Note = "buyer " + toBuyer.String() + ", seller " + toSeller.String()
	switch {
	case 2*toBuyer.units < e.Held.units:
		e.DisputeLoser = Buyer
	case 2*toSeller.units < e.Held.units:
		e.DisputeLoser = Seller
	}
	e.Held = zeroOf(e.Price.cur)
	e.Refunded = e.Refunded.plusUnchecked(toBuyer)
	e.Released = e.Released.plusUnchecked(toSeller)
	e.Fees = e.Fees.plusUnchecked(fee)
	e.enter(Resolved, c.now)
	return nil
}

// args are the arguments of an action. All actions share one set so that
// the clock can take the same actions as the parties (rules[a].do), and so
// that every action's request has one canonical form.
type args struct {
	text   string // tracking number, reason, address or note
	ref    string // evidence's reference to a file the host keeps
	amount Money
	by     time.Duration // an extension
	n      int           // milestone
	split  Split
}

// request renders action on escrow id by actor with a, canonically (see
// request).
func (a args) request(action Action, id, actor string) string {
	return newRequest(rules[action].request).str("escrow", id).str("actor", actor).str("text", a.text).
		money("amount", a.amount).int("milestone", int64(a.n)).
		money("buyer-part", a.split.Buyer).money("seller-part", a.split.Seller).
		str("ref", a.ref).dur("by", a.by).String()
}

// act is every party's action on an existing escrow: it runs a call (see
// call.apply) in one transaction, under the idempotency key among opts.
func (l *Ledger) act(ctx context.Context, start time.Time, action Action, id, actor string, a args, opts []CallOption) (Escrow, error) {
	if err := checkID("escrow", id); err != nil { // an actor with no valid ID is no party: authorize says so
		return Escrow{}, l.finish(start, action.word(), err)
	}
	return l.run(ctx, start, opts, func(c *call) { c.action, c.id, c.actor, c.args = action, id, actor, a })
}

// run takes a call from the pool, lets set fill in what it does, and runs
// it in one transaction under the idempotency key among opts. The call
// began at start (see Ledger.begin).
func (l *Ledger) run(ctx context.Context, start time.Time, opts []CallOption, set func(*call)) (out Escrow, err error) {
	c := callPool.Get().(*call)
	set(c)
	name := "open"
	if !c.opening {
		name = c.action.word()
	}
	var o callOptions
	if o, err = optionsOf(opts); err == nil {
		c.l, c.key, c.now = l, o.key, l.now()
		err = l.update(ctx, name, c.txFn)
		o.done(c.replayed, err)
	}
	replayed := c.replayed
	if err == nil {
		out = c.e // straight into the result: a copy of the escrow fewer
		if len(c.timers) > 0 {
			// Committed: the timers the call fired on its way are told as
			// ProcessDue's are.
			l.fired(ctx, name, c.id, firing{timers: c.timers}, nil)
		}
	}
	c.reset()
	callPool.Put(c)
	if err = l.finishKeyed(start, name, replayed, err); err != nil {
		return Escrow{}, err
	}
	return out, nil
}

// A call is one party's action on an escrow, from arguments to result.
// Calls are pooled, each with its transaction function bound, so that the
// hot path (pay, ship, confirm) allocates only what storage keeps: made
// with closures, as the other calls are (see mutate), the lifecycle
// benchmark took 60% longer serially and 150% in parallel, allocating six
// times as much, most of it copies of the escrow.
type call struct {
	l         *Ledger
	action    Action
	id, actor string
	args
	key      string
	now      time.Time
	replayed bool        // the result was the one remembered under key
	timers   []timerStep // the timers fired before the action, in the transaction's last run

	// Open's call creates the escrow of terms instead of taking an action.
	opening bool
	terms   Terms

	e    Escrow // the escrow being changed, then the result
	ev   Event  // the event that tells of the change
	ch   change
	txFn func(Tx) error // c.run, bound once
}

// reset readies c for its next call. It leaves the escrow, the event and
// the change, about 1.4 KB, as they are: every call writes them whole
// before it reads them (apply and open load or build the escrow, a replay
// decodes into a zeroed one), and clearing them with the rest took 4% of
// a lifecycle in the profile of the ledger over maps. Only the change's
// transaction is let go here, since it holds the store's snapshot of the
// finished call; the strings the rest point to are let go when the call
// is next used.
func (c *call) reset() {
	c.l, c.action, c.id, c.actor, c.args, c.key, c.now, c.replayed = nil, 0, "", "", args{}, "", time.Time{}, false
	c.opening, c.terms, c.timers = false, Terms{}, nil
	c.ch.tx = nil // the finished transaction: kept, it would keep the store's snapshot
}

var callPool = sync.Pool{New: func() any {
	c := new(call)
	c.txFn = c.run
	return c
}}

func (c *call) run(tx Tx) (err error) {
	c.timers = nil // a store may run the transaction again
	c.replayed, err = c.l.runKeyed(tx, c.key, c.now, c)
	return err
}

func (c *call) request() string {
	if c.opening {
		return newRequest("open").terms(&c.terms).String()
	}
	return c.args.request(c.action, c.id, c.actor)
}

func (c *call) result() any { return &c.e }

// apply loads the escrow, fires its timer first if it has run out,
// checks the actor and the state, and takes the action.
//
// A deadline binds when it passes, not when ProcessDue gets to it: an
// action taken after it is judged on the state the clock's action left,
// exactly as if ProcessDue had run first. So a late Ship finds the escrow
// refunded, and a late refusal finds the refund made. A deadline the
// clock's action starts has run from when the one before it passed, and
// fires as well if it has passed too.
func (c *call) apply(tx Tx) error {
	if c.opening {
		return c.open(tx)
	}
	err := loadEscrow(tx, c.id, &c.e)
	if err != nil {
		return err
	}
	if c.timers, err = c.l.fireDue(tx, &c.e, c.now); err != nil {
		return err
	}
	if err := authorize(&c.e, c.action, c.actor); err != nil {
		return err
	}
	c.ev = Event{Actor: c.actor}
	c.ch = change{tx: tx, now: c.now, e: &c.e, ev: &c.ev, args: c.args}
	return c.l.take(&c.ch, c.action)
}

// fireDue fires e's timer if it has run out by now: the clock takes the
// action clock names for e's state, with no actor, and its event is
// marked ByTimer. A deadline that action starts (a refund request's or a
// return's end resumes the auto-confirm; a return agreed to by the timer
// gives the buyer time to send the goods back) runs from when the
// deadline before it passed, as it would had ProcessDue fired that one
// then; if it has run out by now too, it fires in turn. fireDue returns
// the timers that fired, in order. In a state where no timer runs it only
// clears DueAt, in e.
func (l *Ledger) fireDue(tx Tx, e *Escrow, now time.Time) ([]timerStep, error) {
	var steps []timerStep
	// Every chain of timers ends within a few steps, in a state that runs
	// none or one that is terminal; the bound is only a guard.
	for range lastState {
		if e.DueAt.IsZero() || e.DueAt.After(now) {
			break
		}
		action := clock[e.State].action
		if action == 0 {
			e.DueAt = time.Time{}
			break
		}
		steps = append(steps, timerStep{action: action})
		c := &change{tx: tx, now: now, due: e.DueAt, e: e, ev: &Event{ByTimer: true}, args: args{amount: e.Held}}
		if err := l.take(c, action); err != nil {
			return steps, err
		}
		steps[len(steps)-1].state = e.State
	}
	return steps, nil
}

// A timerStep is one timer fired: the clock's action and the state it
// left the escrow in (zero if the action failed).
type timerStep struct {
	action Action
	state  State
}

// A change is one action being taken on an escrow in a transaction: what
// each rule's do works with.
type change struct {
	tx  Tx
	now time.Time
	// due is, for the clock's action, when its deadline passed; zero for
	// a party's.
	due time.Time
	e   *Escrow
	ev  *Event // the event that tells of the change
	args

	// The journal entry the change posts, with room for its postings. It
	// lives here, in the pooled call, so that posting allocates nothing:
	// built on the heap, the lifecycle made two more allocations per paid
	// and released escrow.
	entry    Entry
	postings [4]Posting
}

// take makes action's change to c.e, which is allowed, and saves the
// escrow with the event that tells of it, opening the rating window if the
// escrow ended.
func (l *Ledger) take(c *change, action Action) error {
	c.ev.At, c.ev.Escrow = c.now, c.e.ID
	if err := rules[action].do(c); err != nil {
		return err
	}
	if !c.due.IsZero() && !c.e.DueAt.IsZero() {
		// The deadline the clock's action started counts from when the
		// one it fired passed: every deadline an action sets runs from
		// c.now.
		c.e.DueAt = c.e.DueAt.Add(c.due.Sub(c.now))
	}
	l.openRatings(c.e)
	return save(c.tx, c.e, c.ev, c.now)
}

// save stores a changed escrow and the event that tells of the change.
func save(tx Tx, e *Escrow, ev *Event, now time.Time) error {
	touch(e, now)
	about(ev, e)
	if err := tx.PutEscrow(*e); err != nil {
		return err
	}
	return tx.AppendEvent(ev)
}

// about fills in what every event of an escrow carries: the escrow, its
// parties, its state after the change and its metadata.
func about(ev *Event, e *Escrow) {
	ev.Escrow, ev.Buyer, ev.Seller = e.ID, e.Buyer, e.Seller
	ev.State, ev.Metadata = e.State, e.Metadata
}

// touch records that e changed at now.
func touch(e *Escrow, now time.Time) {
	e.Version++
	e.UpdatedAt = now
}

func getEscrow(tx Tx, id string) (Escrow, error) {
	var e Escrow
	err := loadEscrow(tx, id, &e)
	return e, err
}

// loadEscrow is getEscrow into e, for the calls every trade makes: read
// into its place, the escrow is copied once instead of three times.
func loadEscrow(tx Tx, id string, e *Escrow) error {
	var err error
	*e, err = tx.Escrow(id)
	if errors.Is(err, ErrNotFound) {
		*e = Escrow{}
		return &NotFoundError{Kind: "escrow", ID: id}
	}
	e.Timers = e.Timers.stored()
	return err
}

func checkHeld(e *Escrow, amount Money) error {
	if !sameCurrency(amount, e.Price) {
		return mismatch(e.Price, amount)
	}
	if amount.units > e.Held.units {
		return &AmountError{Amount: amount.amountString(), Currency: amount.currency().Code,
			Reason: "more than the " + e.Held.amountString() + " held", Err: ErrInvalidAmount}
	}
	return nil
}

// post posts the journal entry of the change: the postings that move money
// (those whose Change is not zero), in the escrow's currency.
func (c *change) post(kind EntryKind, ps ...Posting) error {
	moving := c.postings[:0]
	for _, p := range ps {
		if p.Change != 0 {
			moving = append(moving, p)
		}
	}
	c.entry = Entry{At: c.now, Kind: kind, Escrow: c.e.ID, Currency: c.e.Price.currency(), Postings: moving}
	return post(c.tx, &c.entry)
}

// release pays amount of the held money to the seller, the fee to
// FeeAccount; the escrow completes when nothing is left held.
func (c *change) release(amount Money) error {
	e := c.e
	fee := e.Fee.fee(amount, e.Released.IsZero())
	err := c.post(EntryRelease,
		Posting{Account: e.Buyer, Bucket: Held, Change: -amount.units},
		Posting{Account: e.Seller, Bucket: Available, Change: amount.units - fee.units},
		Posting{Account: FeeAccount, Bucket: Available, Change: fee.units})
	if err != nil {
		return err
	}
	e.Held = e.Held.minus(amount)
	e.Released = e.Released.plusUnchecked(amount)
	e.Fees = e.Fees.plusUnchecked(fee)
	c.ev.Type, c.ev.Amount, c.ev.Fee = EscrowReleased, amount, fee
	if e.Held.IsZero() {
		e.enter(Completed, c.now)
	}
	return nil
}

// refund returns amount of the held money to the buyer. With nothing left
// held the escrow ends; otherwise a refund request ends and the escrow
// resumes.
func (c *change) refund(amount Money) error {
	e := c.e
	err := c.post(EntryRefund,
		Posting{Account: e.Buyer, Bucket: Held, Change: -amount.units},
		Posting{Account: e.Buyer, Bucket: Available, Change: amount.units})
	if err != nil {
		return err
	}
	e.Held = e.Held.minus(amount)
	e.Refunded = e.Refunded.plusUnchecked(amount)
	c.ev.Type, c.ev.Amount = EscrowRefunded, amount
	switch {
	case e.Held.IsZero() && e.Released.IsZero():
		e.enter(Refunded, c.now)
	case e.Held.IsZero():
		e.enter(Completed, c.now)
	case e.Resume != 0: // a refund request or a return ends
		e.resume(c.now)
	}
	return nil
}

// plusUnchecked adds amounts already known to fit: parts of one escrow's
// price.
func (m Money) plusUnchecked(o Money) Money { return Money{units: m.units + o.units, cur: m.cur} }

// enter moves e to state s and starts that state's timer, if it has one.
func (e *Escrow) enter(s State, now time.Time) {
	e.State = s
	e.DueAt = time.Time{}
	if t := clock[s]; t.within != nil && t.within(e.Timers) > 0 {
		e.DueAt = now.Add(t.within(e.Timers))
	}
	if s.Terminal() {
		e.EndedAt = now
		e.Paused, e.Resume = 0, 0
	}
}

// pause stops the running timer, remembering what was left of it.
func (e *Escrow) pause(now time.Time) {
	e.Paused = 0
	if !e.DueAt.IsZero() && e.DueAt.After(now) {
		e.Paused = e.DueAt.Sub(now)
	}
}

// resume returns from a refund request or a return to the state before
// it, restarting its timer with the time that was left.
func (e *Escrow) resume(now time.Time) {
	e.State = e.Resume
	e.DueAt = now.Add(e.Paused)
	e.Paused = 0
	e.Resume = 0
}
