package escrow

import (
	"context"
	"time"
)

// A Return is the goods' way back to the seller in a return and refund:
// where to send them and when the seller agreed (AgreeReturn, or its
// timer, which gives no address), the buyer's tracking number and when
// they shipped (ShipReturn), and when the seller confirmed receipt
// (ConfirmReturn, or its timer, which takes the goods as received when
// the seller lets Timers.ReturnReceiveWithin pass) or refused the goods,
// for RefuseReason (RefuseReturn).
type Return struct {
	Address      string    `json:"address,omitempty"`
	AgreedAt     time.Time `json:"agreed_at,omitzero"`
	Tracking     string    `json:"tracking,omitempty"`
	ShippedAt    time.Time `json:"shipped_at,omitzero"`
	ReceivedAt   time.Time `json:"received_at,omitzero"`
	RefuseReason string    `json:"refuse_reason,omitempty"`
	RefusedAt    time.Time `json:"refused_at,omitzero"`
}

// RequestReturn asks the seller to take the goods back and refund amount
// (all that is held, or less) for a reason (up to 1,000 bytes), kept in
// e.Refund as a refund request is. Only the buyer, in
// AwaitingConfirmation: the goods have been shipped. The auto-confirm
// timer pauses for the whole return, and resumes with the time that was
// left if the return ends without a refund of all that is held:
//
//	ReturnRequested --AgreeReturn, or 5 days--> AwaitingReturn
//	ReturnRequested --RefuseRefund--> back to AwaitingConfirmation
//	AwaitingReturn  --ShipReturn--> ReturnShipped
//	AwaitingReturn  --CancelReturn, or 7 days--> back to AwaitingConfirmation
//	ReturnShipped   --ConfirmReturn, or 10 days--> refunded as asked (Refunded, Completed, or back if partial)
//	ReturnShipped   --RefuseReturn--> ReturnRefused
//	ReturnRefused   --CancelReturn, or 7 days--> back to AwaitingConfirmation
//
// and either party may Dispute from any of these states. The deadlines
// are Timers.ReturnResponseWithin, ReturnShipWithin, ReturnReceiveWithin
// and ReturnDisputeWithin. A run-out auto-confirm timer cannot be paused:
// if ProcessDue has not fired it yet, the request fires it first and is
// refused with ErrInvalidTransition.
func (l *Ledger) RequestReturn(ctx context.Context, id, actor string, amount Money, reason string, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := l.checkPayment(amount); err != nil {
		return Escrow{}, l.finish(start, ActionRequestReturn.word(), err)
	}
	if err := checkText("reason", reason, 1000, true); err != nil {
		return Escrow{}, l.finish(start, ActionRequestReturn.word(), err)
	}
	return l.act(ctx, start, ActionRequestReturn, id, actor, args{amount: amount, text: reason}, opts)
}

func (c *change) requestReturn() error {
	e := c.e
	if err := checkHeld(e, c.amount); err != nil {
		return err
	}
	e.Refund = RefundRequest{Amount: c.amount, Reason: c.text, At: c.now}
	e.Return = Return{}
	e.Resume = e.State
	e.pause(c.now)
	e.enter(ReturnRequested, c.now)
	c.ev.Type, c.ev.Amount, c.ev.Note = EscrowReturnRequested, c.amount, c.text
	return nil
}

// AgreeReturn agrees to take the goods back, giving the address to send
// them to (up to 1,000 bytes; it may be empty if the host tells the buyer
// another way). Only the seller, in ReturnRequested. The buyer then has
// Timers.ReturnShipWithin to ship them. If the seller does not answer
// within Timers.ReturnResponseWithin, the timer agrees, with no address.
// To turn the request down, the seller calls RefuseRefund.
func (l *Ledger) AgreeReturn(ctx context.Context, id, actor, address string, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := checkText("address", address, 1000, true); err != nil {
		return Escrow{}, l.finish(start, ActionAgreeReturn.word(), err)
	}
	return l.act(ctx, start, ActionAgreeReturn, id, actor, args{text: address}, opts)
}

func (c *change) agreeReturn() error {
	c.e.Return = Return{Address: c.text, AgreedAt: c.now}
	c.e.enter(AwaitingReturn, c.now)
	c.ev.Type, c.ev.Note = EscrowReturnAgreed, c.text
	return nil
}

// ShipReturn records that the buyer shipped the goods back, with an
// optional tracking number (up to 200 bytes). Only the buyer, in
// AwaitingReturn. The seller then has Timers.ReturnReceiveWithin to
// confirm their receipt or refuse them; if the seller does neither, the
// refund is made as asked.
func (l *Ledger) ShipReturn(ctx context.Context, id, actor, tracking string, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := checkText("tracking", tracking, 200, false); err != nil {
		return Escrow{}, l.finish(start, ActionShipReturn.word(), err)
	}
	return l.act(ctx, start, ActionShipReturn, id, actor, args{text: tracking}, opts)
}

func (c *change) shipReturn() error {
	c.e.Return.Tracking, c.e.Return.ShippedAt = c.text, c.now
	c.e.enter(ReturnShipped, c.now)
	c.ev.Type, c.ev.Note = EscrowReturnShipped, c.text
	return nil
}

// ConfirmReturn records that the seller received the goods back, and
// refunds the amount the buyer asked for. Only the seller, in
// ReturnShipped. With nothing left held the escrow is Refunded (Completed
// if some money was released before); otherwise it returns to
// AwaitingConfirmation and the auto-confirm timer resumes.
func (l *Ledger) ConfirmReturn(ctx context.Context, id, actor string, opts ...CallOption) (Escrow, error) {
	return l.act(ctx, l.begin(), ActionConfirmReturn, id, actor, args{}, opts)
}

func (c *change) confirmReturn() error {
	c.e.Return.ReceivedAt = c.now
	return c.refund(c.e.Refund.Amount)
}

// RefuseReturn refuses the goods the buyer sent back, for a reason (up to
// 1,000 bytes): they did not come, or not as sold. Only the seller, in
// ReturnShipped. The escrow is ReturnRefused: either party may Dispute
// within Timers.ReturnDisputeWithin, or the buyer may accept the refusal
// with CancelReturn; when the time passes with neither, the return ends
// and the trade resumes as CancelReturn leaves it.
func (l *Ledger) RefuseReturn(ctx context.Context, id, actor, reason string, opts ...CallOption) (Escrow, error) {
	start := l.begin()
	if err := checkText("reason", reason, 1000, true); err != nil {
		return Escrow{}, l.finish(start, ActionRefuseReturn.word(), err)
	}
	return l.act(ctx, start, ActionRefuseReturn, id, actor, args{text: reason}, opts)
}

func (c *change) refuseReturn() error {
	c.e.Return.RefuseReason, c.e.Return.RefusedAt = c.text, c.now
	c.e.enter(ReturnRefused, c.now)
	c.ev.Type, c.ev.Note = EscrowReturnRefused, c.text
	return nil
}

// CancelReturn ends a return without a refund: the buyer withdraws it (in
// ReturnRequested or AwaitingReturn) or accepts the seller's refusal of
// the goods (in ReturnRefused). The escrow returns to AwaitingConfirmation
// and the auto-confirm timer resumes with the time that was left. The
// timers of AwaitingReturn and ReturnRefused do the same when they run
// out.
func (l *Ledger) CancelReturn(ctx context.Context, id, actor string, opts ...CallOption) (Escrow, error) {
	return l.act(ctx, l.begin(), ActionCancelReturn, id, actor, args{}, opts)
}

func (c *change) cancelReturn() error {
	c.e.resume(c.now)
	c.ev.Type = EscrowReturnCancelled
	return nil
}
