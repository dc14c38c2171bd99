package escrow

import (
	"context"
	"errors"
	"fmt"
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
//	AwaitingShipment, AwaitingConfirmation, RefundRequested --Dispute--> Disputed --Resolve--> Resolved
//	AwaitingShipment --timer--> Refunded;  Refund by the seller of all that is held --> Refunded
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
)

var stateNames = [...]string{"", "AwaitingPayment", "AwaitingShipment", "AwaitingConfirmation",
	"RefundRequested", "Disputed", "Completed", "Refunded", "Resolved", "Closed"}

// States lists every state in lifecycle order.
func States() []State {
	return []State{AwaitingPayment, AwaitingShipment, AwaitingConfirmation, RefundRequested,
		Disputed, Completed, Refunded, Resolved, Closed}
}

func (s State) String() string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Terminal reports whether no action can change an escrow in state s.
func (s State) Terminal() bool { return s >= Completed }

// MarshalText encodes s by name; the zero State (no state) as "".
func (s State) MarshalText() ([]byte, error) {
	if s == 0 {
		return []byte{}, nil
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a state name.
func (s *State) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = 0
		return nil
	}
	for i, n := range stateNames {
		if i > 0 && n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return invalidArg("unknown state %q", b)
}

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
)

var actionNames = [...]string{"", "pay", "ship", "confirm", "confirm a milestone of", "cancel",
	"refund", "request a refund on", "agree to the refund on", "refuse the refund on", "dispute", "resolve",
	"rate the other party of"}

// Actions lists every action.
func Actions() []Action {
	return []Action{ActionPay, ActionShip, ActionConfirm, ActionConfirmMilestone, ActionCancel,
		ActionRefund, ActionRequestRefund, ActionAgreeRefund, ActionRefuseRefund, ActionDispute, ActionResolve}
}

func (a Action) String() string {
	if int(a) < len(actionNames) && a != 0 {
		return actionNames[a]
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
	case 0:
		return "nobody"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// rules is the whole state machine: who may take each action, and from
// which states. Anything not listed is refused.
var rules = [...]struct {
	who  Role
	from []State
}{
	ActionPay:              {Buyer, []State{AwaitingPayment}},
	ActionShip:             {Seller, []State{AwaitingShipment}},
	ActionConfirm:          {Buyer, []State{AwaitingConfirmation}},
	ActionConfirmMilestone: {Buyer, []State{AwaitingConfirmation}},
	ActionCancel:           {Buyer | Seller, []State{AwaitingPayment}},
	ActionRefund:           {Seller, []State{AwaitingShipment, AwaitingConfirmation}},
	ActionRequestRefund:    {Buyer, []State{AwaitingShipment, AwaitingConfirmation}},
	ActionAgreeRefund:      {Seller, []State{RefundRequested}},
	ActionRefuseRefund:     {Seller, []State{RefundRequested}},
	ActionDispute:          {Buyer | Seller, []State{AwaitingShipment, AwaitingConfirmation, RefundRequested}},
	ActionResolve:          {Arbiter, []State{Disputed}},
}

// Allowed reports whether role may take action on an escrow in state s.
// It is the rule the ledger enforces, exposed so a user interface can show
// only the buttons that will work.
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

// Timers are an escrow's deadlines. Each runs in one state and has its own
// action when it expires, fired by ProcessDue. A zero field takes the
// ledger's default.
type Timers struct {
	PayWithin            time.Duration // AwaitingPayment: then Closed
	ShipWithin           time.Duration // AwaitingShipment: then all held is refunded
	ConfirmWithin        time.Duration // AwaitingConfirmation: then all held is released (auto-confirm)
	RefundResponseWithin time.Duration // RefundRequested: then the refund is made as asked
}

// DefaultTimers returns the defaults: 3 days to pay, 7 to ship, 10 to
// confirm and 5 for the seller to answer a refund request.
func DefaultTimers() Timers {
	const day = 24 * time.Hour
	return Timers{PayWithin: 3 * day, ShipWithin: 7 * day, ConfirmWithin: 10 * day, RefundResponseWithin: 5 * day}
}

func (t Timers) withDefaults(d Timers) (Timers, error) {
	if t.PayWithin < 0 || t.ShipWithin < 0 || t.ConfirmWithin < 0 || t.RefundResponseWithin < 0 {
		return Timers{}, invalidArg("timers may not be negative: %+v", t)
	}
	orDefault := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	return Timers{
		PayWithin:            orDefault(t.PayWithin, d.PayWithin),
		ShipWithin:           orDefault(t.ShipWithin, d.ShipWithin),
		ConfirmWithin:        orDefault(t.ConfirmWithin, d.ConfirmWithin),
		RefundResponseWithin: orDefault(t.RefundResponseWithin, d.RefundResponseWithin),
	}, nil
}

// Terms are what buyer and seller agree on when an escrow is opened.
type Terms struct {
	ID      string // chosen by the caller; opening the same ID with the same terms again is a no-op
	Buyer   string // account ID of the payer
	Seller  string // account ID of the payee
	Arbiter string // who resolves disputes; optional, need not have an account
	Price   Money
	Item    string // what is sold, up to 1,000 bytes
	// Milestones, if any, release the price in tranches, in order, each
	// confirmed on its own with ConfirmMilestone. Their amounts add up to
	// Price. Refunds come off the last tranches first.
	Milestones []Milestone
	Timers     Timers
}

// A Milestone is one tranche of an escrow released in parts.
type Milestone struct {
	Name   string
	Amount Money
}

// An Escrow is one guaranteed trade: the buyer's money held by the ledger
// until the buyer confirms receipt, then released to the seller minus the
// fee, or refunded, or split by an arbiter. Money fields always satisfy
// Held + Released + Refunded = Price once paid; Fees is the part of
// Released that went to FeeAccount.
type Escrow struct {
	Terms
	Fee      FeeTerms
	State    State
	Held     Money // still held in the buyer's account
	Released Money // released to the seller, fees included
	Fees     Money
	Refunded Money

	NextMilestone int    // milestones released so far
	Tracking      string // from Ship
	// Refund is the open refund request in RefundRequested, else the last one.
	Refund RefundRequest
	// Resume is the state a refund request returns to when it is refused or
	// only partly refunds the escrow.
	Resume State
	// Paused is what was left of the running timer when a refund request or
	// a dispute stopped it; it restarts with that much when the request ends.
	Paused time.Duration
	// DueAt is when the running timer fires; zero if none runs.
	DueAt time.Time

	// DisputeLoser is the party who got less than half of the money held
	// when the arbiter resolved a dispute; zero if none did.
	DisputeLoser Role
	// Rated holds the parties who have rated the other (Buyer, Seller or
	// both), by their own rating or by the default one.
	Rated Role
	// RatingDueAt is when the rating window of an ended escrow closes;
	// zero before the escrow ends, for states that cannot be rated, and
	// once the window has closed.
	RatingDueAt time.Time

	CreatedAt, PaidAt, ShippedAt, EndedAt, UpdatedAt time.Time
	Version                                          uint64 // 1 when opened, +1 per change
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

// A RefundRequest is the buyer asking for money back.
type RefundRequest struct {
	Amount Money
	Reason string
	At     time.Time
}

// A Split divides an escrow's held money between buyer and seller. The parts
// must add up to exactly what is held; the fee is taken from the seller's.
type Split struct {
	Buyer  Money
	Seller Money
}

// Open opens an escrow in AwaitingPayment. The buyer and seller must have
// accounts; the price must be positive in a registered currency. Opening an
// existing ID with identical terms returns that escrow and changes nothing;
// with different terms it fails with ErrExists.
func (l *Ledger) Open(ctx context.Context, t Terms, opts ...CallOption) (Escrow, error) {
	t, err := l.checkTerms(t)
	if err != nil {
		return Escrow{}, err
	}
	c := l.newCall(actionOpen, t.ID, t.Buyer)
	c.terms = t
	return c.do(ctx, opts)
}

func (c *call) open(tx Tx) error {
	t := &c.terms
	if old, err := tx.Escrow(t.ID); err == nil {
		if termsEqual(old.Terms, *t) {
			c.e = old
			return nil
		}
		return fmt.Errorf("%w: escrow %q with other terms", ErrExists, t.ID)
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
		if t.Arbiter == t.Buyer || t.Arbiter == t.Seller {
			return t, invalidArg("arbiter %q is also a party", t.Arbiter)
		}
	}
	if err := l.checkPayment(t.Price); err != nil {
		return t, err
	}
	if err := checkText("item", t.Item, 1000, true); err != nil {
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
				return t, invalidArg("milestone %d has no amount", i)
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
	t.Timers, err = t.Timers.withDefaults(l.timers)
	return t, err
}

func termsEqual(a, b Terms) bool {
	return a.ID == b.ID && a.Buyer == b.Buyer && a.Seller == b.Seller && a.Arbiter == b.Arbiter &&
		a.Price == b.Price && a.Item == b.Item && a.Timers == b.Timers && slices.Equal(a.Milestones, b.Milestones)
}

// Escrow returns the escrow with this ID, or ErrNotFound.
func (l *Ledger) Escrow(ctx context.Context, id string) (Escrow, error) {
	var e Escrow
	err := l.store.View(ctx, func(tx Tx) error {
		var err error
		e, err = getEscrow(tx, id)
		return err
	})
	return e, err
}

// Pay moves the price from the buyer's available balance to held. Only the
// buyer may pay, in AwaitingPayment; it fails with ErrInsufficientFunds if
// the buyer's available balance is short. The escrow moves to
// AwaitingShipment and its shipping timer starts.
func (l *Ledger) Pay(ctx context.Context, id, actor string, opts ...CallOption) (Escrow, error) {
	return l.newCall(ActionPay, id, actor).do(ctx, opts)
}

func (c *call) pay(tx Tx) error {
	e := &c.e
	err := post(tx, c.buf.entry(c.now, EntryHold, e.ID, e.Price.cur,
		Posting{Account: e.Buyer, Bucket: Available, Change: -e.Price.units},
		Posting{Account: e.Buyer, Bucket: Held, Change: e.Price.units}))
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
	if err := checkText("tracking", tracking, 200, false); err != nil {
		return Escrow{}, err
	}
	c := l.newCall(ActionShip, id, actor)
	c.text = tracking
	return c.do(ctx, opts)
}

func (c *call) ship() error {
	c.e.Tracking, c.e.ShippedAt = c.text, c.now
	c.e.enter(AwaitingConfirmation, c.now)
	c.ev.Type, c.ev.Note = EscrowShipped, c.text
	return nil
}

// Confirm records that the buyer received the goods and releases all that
// is held to the seller, minus the fee. Only the buyer, in
// AwaitingConfirmation. The escrow is Completed.
func (l *Ledger) Confirm(ctx context.Context, id, actor string, opts ...CallOption) (Escrow, error) {
	return l.newCall(ActionConfirm, id, actor).do(ctx, opts)
}

// ConfirmMilestone releases milestone n (counting from 0) to the seller,
// minus the fee. Milestones are confirmed in order, so n must be
// e.NextMilestone. Only the buyer, in AwaitingConfirmation. When the last
// one is released the escrow is Completed.
func (l *Ledger) ConfirmMilestone(ctx context.Context, id, actor string, n int, opts ...CallOption) (Escrow, error) {
	c := l.newCall(ActionConfirmMilestone, id, actor)
	c.n = n
	return c.do(ctx, opts)
}

func (c *call) confirmMilestone(tx Tx) error {
	e, n := &c.e, c.n
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
	return release(tx, e, &c.ev, amount, c.now, &c.buf)
}

// Cancel closes an escrow before it is paid. The buyer or the seller, in
// AwaitingPayment. No money has moved, so none moves.
func (l *Ledger) Cancel(ctx context.Context, id, actor string, opts ...CallOption) (Escrow, error) {
	return l.newCall(ActionCancel, id, actor).do(ctx, opts)
}

// Refund returns amount of the held money to the buyer: the seller's own
// refund, full (amount equal to e.Held) or partial, any number of times.
// Only the seller, in AwaitingShipment or AwaitingConfirmation. When
// nothing is left held the escrow is Refunded (Completed if some money was
// already released).
func (l *Ledger) Refund(ctx context.Context, id, actor string, amount Money, opts ...CallOption) (Escrow, error) {
	if err := l.checkPayment(amount); err != nil {
		return Escrow{}, err
	}
	c := l.newCall(ActionRefund, id, actor)
	c.amount = amount
	return c.do(ctx, opts)
}

// RequestRefund asks the seller to return amount (all that is held, or
// less) for a reason (up to 1,000 bytes). Only the buyer, in
// AwaitingShipment or AwaitingConfirmation. The running timer pauses; the
// seller has Timers.RefundResponseWithin to agree or refuse, after which the
// refund is made as asked. A timer that has already run out cannot be
// paused: if ProcessDue has not fired it yet, the request fires it first,
// as ProcessDue would have, and is then refused with ErrInvalidTransition
// (and so changes nothing) because the escrow has ended.
func (l *Ledger) RequestRefund(ctx context.Context, id, actor string, amount Money, reason string, opts ...CallOption) (Escrow, error) {
	if err := l.checkPayment(amount); err != nil {
		return Escrow{}, err
	}
	if err := checkText("reason", reason, 1000, true); err != nil {
		return Escrow{}, err
	}
	c := l.newCall(ActionRequestRefund, id, actor)
	c.amount, c.text = amount, reason
	return c.do(ctx, opts)
}

func (c *call) requestRefund() error {
	e := &c.e
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
	return l.newCall(ActionAgreeRefund, id, actor).do(ctx, opts)
}

// RefuseRefund turns the buyer's request down, for a reason. Only the
// seller, in RefundRequested. The escrow returns to the state it was in and
// its timer resumes; the buyer may then Dispute.
func (l *Ledger) RefuseRefund(ctx context.Context, id, actor, reason string, opts ...CallOption) (Escrow, error) {
	if err := checkText("reason", reason, 1000, true); err != nil {
		return Escrow{}, err
	}
	c := l.newCall(ActionRefuseRefund, id, actor)
	c.text = reason
	return c.do(ctx, opts)
}

// Dispute calls the arbiter. The buyer or the seller, after payment and
// before the escrow ends (AwaitingShipment, AwaitingConfirmation or
// RefundRequested); the escrow must name an arbiter (else ErrNoArbiter).
// Every timer stops until the arbiter resolves it. A timer that has already
// run out is not stopped: if ProcessDue has not fired it yet, the dispute
// fires it first, as ProcessDue would have, and is judged on the state it
// left. So a dispute after the shipping or confirmation deadline is refused
// with ErrInvalidTransition (and changes nothing), and one after an
// ignored partial refund request finds the refund made and the escrow
// resumed, and disputes that.
func (l *Ledger) Dispute(ctx context.Context, id, actor, reason string, opts ...CallOption) (Escrow, error) {
	if err := checkText("reason", reason, 1000, true); err != nil {
		return Escrow{}, err
	}
	c := l.newCall(ActionDispute, id, actor)
	c.text = reason
	return c.do(ctx, opts)
}

func (c *call) dispute() error {
	e := &c.e
	if e.Arbiter == "" {
		return fmt.Errorf("%w: escrow %q", ErrNoArbiter, e.ID)
	}
	if e.State != RefundRequested { // a refund request already paused the timer
		e.pause(c.now)
	}
	e.enter(Disputed, c.now)
	c.ev.Type, c.ev.Note = EscrowDisputed, c.text
	return nil
}

// Resolve ends a dispute by splitting what is held between buyer and seller;
// the parts must add up to exactly e.Held (a zero Money counts as zero). The
// fee is taken from the seller's part. Only the arbiter, in Disputed. The
// escrow is Resolved.
func (l *Ledger) Resolve(ctx context.Context, id, actor string, split Split, opts ...CallOption) (Escrow, error) {
	c := l.newCall(ActionResolve, id, actor)
	c.split = split
	return c.do(ctx, opts)
}

func (c *call) resolve(tx Tx) error {
	e := &c.e
	toBuyer, toSeller := c.split.Buyer, c.split.Seller
	for _, part := range []*Money{&toBuyer, &toSeller} {
		if part.cur.Code == "" && part.units == 0 {
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
	err := post(tx, c.buf.entry(c.now, EntrySplit, e.ID, e.Price.cur,
		Posting{Account: e.Buyer, Bucket: Held, Change: -e.Held.units},
		Posting{Account: e.Buyer, Bucket: Available, Change: toBuyer.units},
		Posting{Account: e.Seller, Bucket: Available, Change: toSeller.units - fee.units},
		Posting{Account: FeeAccount, Bucket: Available, Change: fee.units}))
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

// actionOpen marks the call that opens an escrow; it is not an Action
// because no party takes it on an existing escrow.
const actionOpen Action = 0

// A call is one mutating call on an escrow, from arguments to result. Calls
// are pooled and each keeps its transaction function bound, so the hot path
// (open, pay, ship, confirm) allocates only what storage keeps.
type call struct {
	l      *Ledger
	action Action
	id     string
	actor  string
	text   string // tracking number or reason
	amount Money
	n      int // milestone
	split  Split
	terms  Terms // for Open

	key string
	now time.Time
	e   Escrow   // the escrow being changed, then the result
	ev  Event    // the event that tells of the change
	buf entryBuf // the journal entry it posts

	txFn func(Tx) error // c.run, bound once
}

var callPool = sync.Pool{New: func() any {
	c := new(call)
	c.txFn = c.run
	return c
}}

func (l *Ledger) newCall(action Action, id, actor string) *call {
	c := callPool.Get().(*call)
	c.l, c.action, c.id, c.actor = l, action, id, actor
	return c
}

// do runs the call in one storage transaction and returns the call to the
// pool.
func (c *call) do(ctx context.Context, opts []CallOption) (Escrow, error) {
	key, err := keyOf(opts)
	if err == nil {
		c.key, c.now = key, c.l.now()
		err = c.l.store.Update(ctx, c.txFn)
	}
	out := c.e
	*c = call{txFn: c.txFn}
	callPool.Put(c)
	if err != nil {
		return Escrow{}, err
	}
	return out, nil
}

// run is the call's transaction.
func (c *call) run(tx Tx) error { return c.l.runKeyed(tx, c.key, c.now, c) }

func (c *call) result() any { return &c.e }

// request renders the call and its arguments canonically (see request).
func (c *call) request() string {
	r := newRequest(requestNames[c.action])
	if c.action == actionOpen {
		return r.terms(&c.terms).String()
	}
	return r.str("escrow", c.id).str("actor", c.actor).str("text", c.text).money("amount", c.amount).
		int("milestone", int64(c.n)).money("buyer-part", c.split.Buyer).money("seller-part", c.split.Seller).String()
}

// apply loads the escrow, checks the actor and the state, and makes the
// change with its event.
func (c *call) apply(tx Tx) error {
	if c.action == actionOpen {
		return c.open(tx)
	}
	var err error
	if err = loadEscrow(tx, c.id, &c.e); err != nil {
		return err
	}
	if c.action == ActionRequestRefund || c.action == ActionDispute {
		if err := c.expireFirst(tx); err != nil {
			return err
		}
	}
	if err := authorize(&c.e, c.action, c.actor); err != nil {
		return err
	}
	c.ev = Event{At: c.now, Escrow: c.id, Actor: c.actor}
	switch c.action {
	case ActionPay:
		err = c.pay(tx)
	case ActionShip:
		err = c.ship()
	case ActionConfirm:
		err = release(tx, &c.e, &c.ev, c.e.Held, c.now, &c.buf)
	case ActionConfirmMilestone:
		err = c.confirmMilestone(tx)
	case ActionCancel:
		c.e.enter(Closed, c.now)
		c.ev.Type = EscrowClosed
	case ActionRefund:
		if err = checkHeld(&c.e, c.amount); err == nil {
			err = refund(tx, &c.e, &c.ev, c.amount, c.now, &c.buf)
		}
	case ActionRequestRefund:
		err = c.requestRefund()
	case ActionAgreeRefund:
		err = refund(tx, &c.e, &c.ev, c.e.Refund.Amount, c.now, &c.buf)
	case ActionRefuseRefund:
		c.e.resume(c.now)
		c.ev.Type, c.ev.Note = EscrowRefundRefused, c.text
	case ActionDispute:
		err = c.dispute()
	case ActionResolve:
		err = c.resolve(tx)
	default:
		err = fmt.Errorf("escrow: internal error: unknown action %d", c.action)
	}
	if err != nil {
		return err
	}
	c.l.openRatings(&c.e)
	return save(tx, &c.e, &c.ev, c.now)
}

// save stores a changed escrow and the event that tells of the change.
func save(tx Tx, e *Escrow, ev *Event, now time.Time) error {
	touch(e, now)
	ev.State = e.State
	if err := tx.PutEscrow(*e); err != nil {
		return err
	}
	return tx.AppendEvent(ev)
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

// loadEscrow reads escrow id into *e, which the hot paths keep in their
// pooled call, sparing a copy of the record on the way.
func loadEscrow(tx Tx, id string, e *Escrow) (err error) {
	if *e, err = tx.Escrow(id); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: escrow %q", ErrNotFound, id)
	}
	return err
}

func checkHeld(e *Escrow, amount Money) error {
	if !sameCurrency(amount, e.Price) {
		return mismatch(e.Price, amount)
	}
	if amount.units > e.Held.units {
		return &AmountError{Amount: amount.amountString(), Currency: amount.cur.Code,
			Reason: "more than the " + e.Held.amountString() + " held", Err: ErrInvalidAmount}
	}
	return nil
}

// release pays amount of the held money to the seller, the fee to
// FeeAccount; the escrow completes when nothing is left held.
func release(tx Tx, e *Escrow, ev *Event, amount Money, now time.Time, buf *entryBuf) error {
	fee := e.Fee.fee(amount, e.Released.IsZero())
	entry := buf.entry(now, EntryRelease, e.ID, e.Price.cur,
		Posting{Account: e.Buyer, Bucket: Held, Change: -amount.units},
		Posting{Account: e.Seller, Bucket: Available, Change: amount.units - fee.units},
		Posting{Account: FeeAccount, Bucket: Available, Change: fee.units})
	if err := post(tx, entry); err != nil {
		return err
	}
	e.Held = e.Held.minus(amount)
	e.Released = e.Released.plusUnchecked(amount)
	e.Fees = e.Fees.plusUnchecked(fee)
	ev.Type, ev.Amount, ev.Fee = EscrowReleased, amount, fee
	if e.Held.IsZero() {
		e.enter(Completed, now)
	}
	return nil
}

// refund returns amount of the held money to the buyer. With nothing left
// held the escrow ends; otherwise a refund request ends and the escrow
// resumes.
func refund(tx Tx, e *Escrow, ev *Event, amount Money, now time.Time, buf *entryBuf) error {
	err := post(tx, buf.entry(now, EntryRefund, e.ID, e.Price.cur,
		Posting{Account: e.Buyer, Bucket: Held, Change: -amount.units},
		Posting{Account: e.Buyer, Bucket: Available, Change: amount.units}))
	if err != nil {
		return err
	}
	e.Held = e.Held.minus(amount)
	e.Refunded = e.Refunded.plusUnchecked(amount)
	ev.Type, ev.Amount = EscrowRefunded, amount
	switch {
	case e.Held.IsZero() && e.Released.IsZero():
		e.enter(Refunded, now)
	case e.Held.IsZero():
		e.enter(Completed, now)
	case e.State == RefundRequested:
		e.resume(now)
	}
	return nil
}

// plusUnchecked adds amounts already known to fit: parts of one escrow's
// price.
func (m Money) plusUnchecked(o Money) Money { return Money{units: m.units + o.units, cur: m.cur} }

// enter moves e to state s and starts that state's timer.
func (e *Escrow) enter(s State, now time.Time) {
	e.State = s
	e.DueAt = time.Time{}
	switch s {
	case AwaitingPayment:
		e.DueAt = now.Add(e.Timers.PayWithin)
	case AwaitingShipment:
		e.DueAt = now.Add(e.Timers.ShipWithin)
	case AwaitingConfirmation:
		e.DueAt = now.Add(e.Timers.ConfirmWithin)
	case RefundRequested:
		e.DueAt = now.Add(e.Timers.RefundResponseWithin)
	}
	if s.Terminal() {
		e.EndedAt = now
		e.Paused = 0
	}
}

// pause stops the running timer, remembering what was left of it.
func (e *Escrow) pause(now time.Time) {
	e.Paused = 0
	if !e.DueAt.IsZero() && e.DueAt.After(now) {
		e.Paused = e.DueAt.Sub(now)
	}
}

// resume returns from RefundRequested to the state before it, restarting
// its timer with the time that was left.
func (e *Escrow) resume(now time.Time) {
	e.State = e.Resume
	e.DueAt = now.Add(e.Paused)
	e.Paused = 0
	e.Resume = 0
}
