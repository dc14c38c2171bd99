package escrow_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/escrowkit/escrow"
)

// TestCode: every sentinel has its own stable word, found through any
// wrapping; nil has none, and an error of no sentinel is "internal".
func TestCode(t *testing.T) {
	words := map[error]string{
		escrow.ErrInvalidAmount: "invalid_amount", escrow.ErrAmountTooLarge: "amount_too_large",
		escrow.ErrUnknownCurrency: "unknown_currency", escrow.ErrCurrencyMismatch: "currency_mismatch",
		escrow.ErrInvalidArgument: "invalid_argument", escrow.ErrNotFound: "not_found",
		escrow.ErrExists: "already_exists", escrow.ErrInsufficientFunds: "insufficient_funds",
		escrow.ErrNotParty: "not_party", escrow.ErrInvalidTransition: "invalid_transition",
		escrow.ErrNoArbiter: "no_arbiter", escrow.ErrAlreadyRated: "already_rated",
		escrow.ErrRatingClosed: "rating_closed", escrow.ErrIdempotencyMismatch: "idempotency_mismatch",
		escrow.ErrConflict: "conflict", escrow.ErrClosed: "closed", escrow.ErrReadOnly: "read_only",
		escrow.ErrInvariant: "invariant_violated", context.Canceled: "canceled", context.DeadlineExceeded: "timeout",
	}
	seen := map[string]bool{}
	for err, want := range words {
		if got := escrow.Code(fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", err))); got != want {
			t.Errorf("Code(%v) = %q, want %q", err, got, want)
		}
		if seen[want] {
			t.Errorf("two sentinels share %q", want)
		}
		seen[want] = true
	}
	if got := escrow.Code(nil); got != "" {
		t.Errorf("Code(nil) = %q", got)
	}
	if got := escrow.Code(errors.New("disk on fire")); got != "internal" {
		t.Errorf("Code of a store's own error = %q, want internal", got)
	}
	// An idempotency mismatch is that, whatever else it wraps.
	var mismatch *escrow.IdempotencyMismatchError
	w := newFixture(t)
	w.funded("alice")
	_, err := w.l.Deposit(w.ctx, "alice", cny("1.00"), escrow.IdempotencyKey("k"))
	w.must("Deposit", err)
	_, err = w.l.Deposit(w.ctx, "alice", cny("2.00"), escrow.IdempotencyKey("k"))
	if !errors.As(err, &mismatch) || escrow.Code(err) != "idempotency_mismatch" {
		t.Errorf("a reused key: %v, code %q", err, escrow.Code(err))
	}
}

// TestNotFoundSaysWhat: a missing account, escrow, rating or consumer is
// a *NotFoundError that names the kind and the ID, so that an unknown
// buyer and an unknown escrow can be told apart.
func TestNotFoundSaysWhat(t *testing.T) {
	w := newFixture(t)
	w.funded("alice", "bob")
	id := w.shipped("alice", "bob")
	cases := []struct {
		name string
		err  error
		want escrow.NotFoundError
	}{
		{"Open with an unknown buyer", errOf(w.l.Open(w.ctx, escrow.Terms{ID: "x", Buyer: "zed", Seller: "bob", Price: cny("1.00")})),
			escrow.NotFoundError{Kind: "account", ID: "zed"}},
		{"Pay an unknown escrow", errOf(w.l.Pay(w.ctx, "nope", "alice")), escrow.NotFoundError{Kind: "escrow", ID: "nope"}},
		{"Reply to no rating", errOf(w.l.Reply(w.ctx, id, "alice", "bob", "hi")),
			escrow.NotFoundError{Kind: "rating", ID: id, Rater: "alice"}},
		{"an unknown consumer", errOf(w.l.Consumer(w.ctx, "mailer")), escrow.NotFoundError{Kind: "consumer", ID: "mailer"}},
	}
	for _, c := range cases {
		var nf *escrow.NotFoundError
		if !errors.As(c.err, &nf) || *nf != c.want || !errors.Is(c.err, escrow.ErrNotFound) || escrow.Code(c.err) != "not_found" {
			t.Errorf("%s: %v (%#v), want %+v wrapping ErrNotFound", c.name, c.err, nf, c.want)
		}
	}
}
