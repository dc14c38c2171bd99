package escrow

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// MaxCart is the most escrows one PayAll may pay.
const MaxCart = 100

// PayAll pays every escrow in ids at once, as a buyer pays a cart of
// orders from several sellers: in one transaction, all or nothing. Each
// escrow is paid as Pay would pay it, with its own EscrowPaid event, and
// records the cart in Cart (the first of ids) and CartSize.
//
// ids holds 1 to MaxCart escrow IDs, none twice. If any escrow may not be
// paid (it does not exist, actor is not its buyer, it is not awaiting
// payment), none is, and PayAll fails with a *CartError naming each one
// refused and why. If all may be paid but the buyer's available balance
// in a currency is short of the cart's total in it, none is paid and
// PayAll fails with an *InsufficientFundsError for that total; a total
// past MaxUnits fails with an *AmountError wrapping ErrAmountTooLarge.
// As for Pay, an escrow whose payment deadline has passed is closed, and
// refused, even if ProcessDue has not fired the deadline yet. Under an
// idempotency key, the whole cart is one call.
func (l *Ledger) PayAll(ctx context.Context, actor string, ids []string, opts ...CallOption) ([]Escrow, error) {
	start := l.begin()
	if err := checkCart(ids); err != nil {
		return nil, l.finish(start, "pay_all", err)
	}
	ids = append([]string(nil), ids...)
	describe := func() string {
		r := newRequest("pay-all").str("actor", actor)
		for _, id := range ids {
			r.str("escrow", id)
		}
		return r.String()
	}
	return mutate(ctx, l, start, "pay_all", opts, describe, func(tx Tx, now time.Time) ([]Escrow, error) {
		return l.payAll(tx, actor, ids, now)
	})
}

// checkCart checks the escrow IDs of a cart. The actor is not checked:
// no escrow has a buyer whose ID breaks the rule, so such an actor is
// refused as Pay refuses it, with ErrNotParty for each escrow.
func checkCart(ids []string) error {
	if len(ids) == 0 || len(ids) > MaxCart {
		return invalidArg("a cart of %d escrows: it takes 1 to %d", len(ids), MaxCart)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if err := checkID("escrow", id); err != nil {
			return err
		}
		if seen[id] {
			return invalidArg("escrow %q is in the cart twice", id)
		}
		seen[id] = true
	}
	return nil
}

// payAll pays the escrows of ids in tx, or none: every escrow is judged
// before any money moves.
func (l *Ledger) payAll(tx Tx, actor string, ids []string, now time.Time) ([]Escrow, error) {
	out := make([]Escrow, len(ids))
	cart := &CartError{}
	for i, id := range ids {
		e, err := getEscrow(tx, id)
		if err == nil {
			// A payment deadline that has passed closed the escrow, as
			// for Pay (see call.apply).
			_, err = l.fireDue(tx, &e, now)
		}
		if err == nil {
			err = authorize(&e, ActionPay, actor)
		}
		if err != nil {
			if !refusal(err) {
				return nil, err
			}
			cart.Refused = append(cart.Refused, CartRefusal{Escrow: id, Err: err})
			continue
		}
		out[i] = e
	}
	if len(cart.Refused) > 0 {
		cart.Size = len(ids)
		return nil, cart
	}
	totals := map[Currency]Money{}
	for i := range out {
		price := out[i].Price
		total, ok := totals[price.currency()]
		if ok {
			var err error
			if price, err = total.plus(price); err != nil {
				return nil, err // past MaxUnits
			}
		}
		totals[price.currency()] = price
	}
	for _, c := range slices.SortedFunc(maps.Keys(totals), func(a, b Currency) int { return strings.Compare(a.Code, b.Code) }) {
		total := totals[c]
		b, err := getBalance(tx, actor, c)
		if err != nil {
			return nil, err
		}
		if b.Available.units < total.units {
			return nil, &InsufficientFundsError{Account: actor, Needed: total, Available: b.Available}
		}
	}
	for i := range out {
		e := &out[i]
		e.Cart, e.CartSize = ids[0], len(ids)
		ev := Event{Actor: actor}
		c := &change{tx: tx, now: now, e: e, ev: &ev}
		if err := l.take(c, ActionPay); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// refusal reports whether err refuses one escrow of a cart, rather than
// failing the call: the escrow is missing, or the actor or its state may
// not pay it.
func refusal(err error) bool {
	switch err.(type) {
	case *NotFoundError, *RoleError, *TransitionError:
		return true
	}
	return false
}

// A CartError reports the escrows of a cart that PayAll may not pay, each
// with its reason; none of the cart was paid. Its Unwrap gives each
// reason, so that errors.Is finds ErrNotFound, ErrNotParty or
// ErrInvalidTransition among them.
type CartError struct {
	Size    int // escrows in the cart
	Refused []CartRefusal
}

// A CartRefusal is one escrow of a cart that may not be paid, and why.
type CartRefusal struct {
	Escrow string
	Err    error
}

func (e *CartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "escrow: cart of %d not paid: %d refused", e.Size, len(e.Refused))
	for _, r := range e.Refused {
		fmt.Fprintf(&b, "; %q: %v", r.Escrow, r.Err)
	}
	return b.String()
}

// Unwrap returns the reason of each escrow refused.
func (e *CartError) Unwrap() []error {
	errs := make([]error, len(e.Refused))
	for i, r := range e.Refused {
		errs[i] = r.Err
	}
	return errs
}
