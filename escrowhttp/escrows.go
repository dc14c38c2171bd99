package escrowhttp

import (
	"fmt"
	"strings"
	"time"

	"github.com/escrowkit/escrow"
)

// This file serves the escrows: opening, listing and reading them, and
// every action on them.

// shipBody is the body of ship.
type shipBody struct {
	Tracking string `json:"tracking,omitempty"`
}

// milestoneBody is the body of confirm_milestone. The milestone is
// required, though 0 is a valid one: a retry that names the milestone it
// meant cannot release the next.
type milestoneBody struct {
	Milestone *int `json:"milestone"`
}

// refundRequestBody is the body of request_refund.
type refundRequestBody struct {
	Amount escrow.Money `json:"amount"`
	Reason string       `json:"reason,omitempty"`
}

// reasonBody is the body of refuse_refund, refuse_return and dispute.
type reasonBody struct {
	Reason string `json:"reason,omitempty"`
}

// extendBody is the body of extend: by how much, absent for the buyer's
// default extension (the escrow's Timers.BuyerExtension).
type extendBody struct {
	By duration `json:"by,omitzero"`
}

// addressBody is the body of agree_return: where to send the goods back.
type addressBody struct {
	Address string `json:"address,omitempty"`
}

// evidenceBody is the body of add_evidence.
type evidenceBody struct {
	Note string `json:"note"`
	Ref  string `json:"ref,omitempty"`
}

// cart is the body of pay_all: the buyer, who must be the actor (an
// absent one is taken to be the actor), and the escrows to pay at once.
type cart struct {
	Buyer   string   `json:"buyer,omitempty"`
	Escrows []string `json:"escrows"`
}

// paidCart answers pay_all: every escrow of the cart, paid, in the
// cart's order.
type paidCart struct {
	Escrows []escrow.Escrow `json:"escrows"`
}

// A duration is a time.Duration as the ledger's wire forms write one: a
// string such as "72h0m0s", read by time.ParseDuration. A number is
// refused rather than taken as nanoseconds: 72 meant as hours would be
// 72ns.
type duration time.Duration

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return refuse("invalid_argument", "duration %q is not one such as \"72h0m0s\"", string(b))
	}
	*d = duration(v)
	return nil
}

// history answers an escrow's events.
type history struct {
	Events []escrow.Event `json:"events"`
}

func (s *server) open(c *call, t *escrow.Terms) (escrow.Escrow, error) {
	if t.Buyer == "" {
		t.Buyer = c.actor
	}
	if t.Buyer != c.actor {
		return escrow.Escrow{}, refuse("forbidden", "%q may not open an escrow for buyer %q: the buyer opens it", c.actor, t.Buyer)
	}
	if err := s.checkTerms(c, t); err != nil {
		return escrow.Escrow{}, err
	}
	if t.Buyer != c.actor { // the host's mistake: a 500, logged
		return escrow.Escrow{}, fmt.Errorf("escrowhttp: Options.Terms changed the buyer of escrow %q from %q to %q", t.ID, c.actor, t.Buyer)
	}
	e, err := s.ledger.Open(c.ctx, *t, c.keyed()...)
	if err == nil {
		c.w.Header().Set("Location", "escrows/"+pathSegment(e.ID))
	}
	return e, err
}

// checkTerms hands the buyer's terms to Options.Terms, or, without it,
// refuses those that name an arbiter or set a timer (see Options.Terms).
func (s *server) checkTerms(c *call, t *escrow.Terms) error {
	if s.terms == nil {
		switch {
		case t.Arbiter != "":
			return refuse("forbidden", "the arbiter is the host's to name, not the buyer's: leave out arbiter")
		case t.Timers != (escrow.Timers{}):
			return refuse("forbidden", "the timers are the host's to set, not the buyer's: leave out timers")
		}
		return nil
	}
	err := s.terms(c.r, t)
	if err == nil {
		return nil
	}
	if _, ok := as[*apiError](err); ok {
		return err
	}
	if _, ok := ledgerClass(err); ok {
		// Answered as the ledger's error it wraps, but in the host's
		// words, which may repeat what the buyer sent whole (a SKU no
		// listing has): cut them as every refusal is cut.
		a := s.classify(c, err)
		a.message = clip(a.message)
		return a
	}
	return refuse("forbidden", "%s", err.Error()) // refuse cuts it
}

func (s *server) escrows(c *call) (escrow.EscrowPage, error) {
	q := escrow.EscrowQuery{Party: c.actor, Cursor: c.r.URL.Query().Get("cursor")}
	if p := c.r.URL.Query().Get("party"); p != "" && p != c.actor {
		if !c.operator {
			return escrow.EscrowPage{}, refuse("forbidden", "%q may not list the escrows of %q", c.actor, p)
		}
		q.Party = p
	}
	if err := c.queryWord("role", &q.Role); err != nil {
		return escrow.EscrowPage{}, err
	}
	for _, v := range c.r.URL.Query()["state"] {
		for _, word := range strings.Split(v, ",") {
			var st escrow.State
			if word == "" {
				return escrow.EscrowPage{}, refuse("invalid_argument", "state=%q holds an empty state", v)
			}
			if err := st.UnmarshalText([]byte(word)); err != nil {
				return escrow.EscrowPage{}, err
			}
			q.States = append(q.States, st)
		}
	}
	var err error
	if q.Limit, err = c.queryInt("limit", 0, 1, escrow.MaxPageLimit); err != nil {
		return escrow.EscrowPage{}, err
	}
	page, err := s.ledger.Escrows(c.ctx, q)
	page.Escrows = nonNil(page.Escrows)
	return page, err
}

// party returns the escrow of the request's path if the actor may read
// it: as its buyer, seller or arbiter, or as an operator. Anyone else gets
// not_party (403). An escrow's existence is no secret (POST /v1/escrows
// with a taken ID answers 409 already_exists), so an ID nobody opened is
// 404 for everyone.
func (s *server) party(c *call) (escrow.Escrow, error) {
	e, err := s.ledger.Escrow(c.ctx, c.r.PathValue("id"))
	if err != nil {
		return escrow.Escrow{}, err
	}
	if e.RoleOf(c.actor) == 0 && !c.operator {
		return escrow.Escrow{}, refuse("not_party", "%q is not a party to escrow %q", c.actor, e.ID)
	}
	return e, nil
}

func (s *server) escrow(c *call) (escrow.Escrow, error) { return s.party(c) }

func (s *server) history(c *call) (history, error) {
	e, err := s.party(c)
	if err != nil {
		return history{}, err
	}
	events, err := s.ledger.History(c.ctx, e.ID)
	return history{Events: nonNil(events)}, err
}

// The actions. The ledger checks that the actor may take each one, in the
// escrow's state.

func (s *server) pay(c *call, _ *empty) (escrow.Escrow, error) {
	return s.ledger.Pay(c.ctx, c.r.PathValue("id"), c.actor, c.keyed()...)
}

func (s *server) ship(c *call, b *shipBody) (escrow.Escrow, error) {
	return s.ledger.Ship(c.ctx, c.r.PathValue("id"), c.actor, b.Tracking, c.keyed()...)
}

func (s *server) confirm(c *call, _ *empty) (escrow.Escrow, error) {
	return s.ledger.Confirm(c.ctx, c.r.PathValue("id"), c.actor, c.keyed()...)
}

func (s *server) confirmMilestone(c *call, b *milestoneBody) (escrow.Escrow, error) {
	if b.Milestone == nil {
		return escrow.Escrow{}, refuse("invalid_argument", "the body must name the milestone to confirm, counting from 0")
	}
	return s.ledger.ConfirmMilestone(c.ctx, c.r.PathValue("id"), c.actor, *b.Milestone, c.keyed()...)
}

func (s *server) cancel(c *call, _ *empty) (escrow.Escrow, error) {
	return s.ledger.Cancel(c.ctx, c.r.PathValue("id"), c.actor, c.keyed()...)
}

func (s *server) refund(c *call, b *amountBody) (escrow.Escrow, error) {
	return s.ledger.Refund(c.ctx, c.r.PathValue("id"), c.actor, b.Amount, c.keyed()...)
}

func (s *server) requestRefund(c *call, b *refundRequestBody) (escrow.Escrow, error) {
	return s.ledger.RequestRefund(c.ctx, c.r.PathValue("id"), c.actor, b.Amount, b.Reason, c.keyed()...)
}

func (s *server) agreeRefund(c *call, _ *empty) (escrow.Escrow, error) {
	return s.ledger.AgreeRefund(c.ctx, c.r.PathValue("id"), c.actor, c.keyed()...)
}

func (s *server) refuseRefund(c *call, b *reasonBody) (escrow.Escrow, error) {
	return s.ledger.RefuseRefund(c.ctx, c.r.PathValue("id"), c.actor, b.Reason, c.keyed()...)
}

func (s *server) dispute(c *call, b *reasonBody) (escrow.Escrow, error) {
	return s.ledger.Dispute(c.ctx, c.r.PathValue("id"), c.actor, b.Reason, c.keyed()...)
}

func (s *server) shipPart(c *call, b *shipBody) (escrow.Escrow, error) {
	return s.ledger.ShipPart(c.ctx, c.r.PathValue("id"), c.actor, b.Tracking, c.keyed()...)
}

func (s *server) extend(c *call, b *extendBody) (escrow.Escrow, error) {
	return s.ledger.Extend(c.ctx, c.r.PathValue("id"), c.actor, time.Duration(b.By), c.keyed()...)
}

func (s *server) requestReturn(c *call, b *refundRequestBody) (escrow.Escrow, error) {
	return s.ledger.RequestReturn(c.ctx, c.r.PathValue("id"), c.actor, b.Amount, b.Reason, c.keyed()...)
}

func (s *server) agreeReturn(c *call, b *addressBody) (escrow.Escrow, error) {
	return s.ledger.AgreeReturn(c.ctx, c.r.PathValue("id"), c.actor, b.Address, c.keyed()...)
}

func (s *server) shipReturn(c *call, b *shipBody) (escrow.Escrow, error) {
	return s.ledger.ShipReturn(c.ctx, c.r.PathValue("id"), c.actor, b.Tracking, c.keyed()...)
}

func (s *server) confirmReturn(c *call, _ *empty) (escrow.Escrow, error) {
	return s.ledger.ConfirmReturn(c.ctx, c.r.PathValue("id"), c.actor, c.keyed()...)
}

func (s *server) refuseReturn(c *call, b *reasonBody) (escrow.Escrow, error) {
	return s.ledger.RefuseReturn(c.ctx, c.r.PathValue("id"), c.actor, b.Reason, c.keyed()...)
}

func (s *server) cancelReturn(c *call, _ *empty) (escrow.Escrow, error) {
	return s.ledger.CancelReturn(c.ctx, c.r.PathValue("id"), c.actor, c.keyed()...)
}

func (s *server) addEvidence(c *call, b *evidenceBody) (escrow.Escrow, error) {
	return s.ledger.AddEvidence(c.ctx, c.r.PathValue("id"), c.actor, b.Note, b.Ref, c.keyed()...)
}

func (s *server) resolve(c *call, split *escrow.Split) (escrow.Escrow, error) {
	return s.ledger.Resolve(c.ctx, c.r.PathValue("id"), c.actor, *split, c.keyed()...)
}

// payAll pays a cart of the actor's escrows at once, all or none. A
// refusal of some of them is cart_refused, naming each (see classify).
func (s *server) payAll(c *call, b *cart) (paidCart, error) {
	if b.Buyer == "" {
		b.Buyer = c.actor
	}
	if b.Buyer != c.actor {
		return paidCart{}, refuse("forbidden", "%q may not pay a cart for buyer %q: the buyer pays it", c.actor, b.Buyer)
	}
	paid, err := s.ledger.PayAll(c.ctx, c.actor, b.Escrows, c.keyed()...)
	return paidCart{Escrows: nonNil(paid)}, err
}
