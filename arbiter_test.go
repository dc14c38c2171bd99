package escrow_test

import (
	"errors"
	"testing"

	"github.com/escrowkit/escrow"
)

// TestDefaultArbiter checks Options.Arbiter: Open fills it into terms that
// name no arbiter, who may then resolve a dispute; terms that name one
// keep theirs; reopening the same terms is a no-op.
func TestDefaultArbiter(t *testing.T) {
	w := newWorld(t, nil, escrow.Options{Arbiter: "platform"})
	w.account("bob")
	w.account("sam")
	w.funded("bob")
	terms := escrow.Terms{ID: "e1", Buyer: "bob", Seller: "sam", Price: cny("30.00")}
	e, err := w.l.Open(w.ctx, terms)
	w.must("Open", err)
	if e.Arbiter != "platform" {
		t.Fatalf("Open without an arbiter: Arbiter = %q, want the default %q", e.Arbiter, "platform")
	}
	again, err := w.l.Open(w.ctx, terms)
	if err != nil || again.Version != e.Version || again.Arbiter != "platform" {
		t.Fatalf("reopening the same terms = %+v, %v; want the same escrow", again, err)
	}
	_, err = w.l.Pay(w.ctx, "e1", "bob")
	w.must("Pay", err)
	_, err = w.l.Dispute(w.ctx, "e1", "bob", "never came")
	w.must("Dispute", err)
	r, err := w.l.Resolve(w.ctx, "e1", "platform", escrow.Split{Buyer: cny("30.00")})
	if err != nil || r.State != escrow.Resolved || !r.Refunded.Equal(cny("30.00")) {
		t.Fatalf("the default arbiter resolving = %v, %v", r.State, err)
	}

	own, err := w.l.Open(w.ctx, escrow.Terms{ID: "e2", Buyer: "bob", Seller: "sam", Arbiter: "carol", Price: cny("5.00")})
	if err != nil || own.Arbiter != "carol" {
		t.Fatalf("Open naming carol: Arbiter = %q, %v", own.Arbiter, err)
	}
	w.check()
}

// TestNoDefaultArbiter checks that without Options.Arbiter an escrow
// opened without one has none, and a dispute fails with ErrNoArbiter and
// changes nothing.
func TestNoDefaultArbiter(t *testing.T) {
	w := newWorld(t, nil, escrow.Options{})
	w.account("bob")
	w.account("sam")
	w.funded("bob")
	e, err := w.l.Open(w.ctx, escrow.Terms{ID: "e1", Buyer: "bob", Seller: "sam", Price: cny("30.00")})
	w.must("Open", err)
	if e.Arbiter != "" {
		t.Fatalf("Arbiter = %q, want none", e.Arbiter)
	}
	_, err = w.l.Pay(w.ctx, "e1", "bob")
	w.must("Pay", err)
	before := w.dump()
	if _, err := w.l.Dispute(w.ctx, "e1", "bob", "late"); !errors.Is(err, escrow.ErrNoArbiter) {
		t.Fatalf("Dispute = %v, want ErrNoArbiter", err)
	}
	w.unchanged(before, "a dispute with no arbiter")
}

// TestDefaultArbiterRefusals checks that New refuses a malformed default
// arbiter, and Open refuses terms whose buyer or seller is the default
// arbiter, storing nothing.
func TestDefaultArbiterRefusals(t *testing.T) {
	for _, id := range []string{"@fees", "has\nnewline", string(make([]byte, 129))} {
		if l, err := escrow.New(t.Context(), newWorld(t, nil, escrow.Options{}).store, &escrow.Options{Arbiter: id}); !errors.Is(err, escrow.ErrInvalidArgument) || l != nil {
			t.Errorf("New with Arbiter %q = %v, %v; want ErrInvalidArgument", id, l, err)
		}
	}
	w := newWorld(t, nil, escrow.Options{Arbiter: "sam"})
	w.account("bob")
	w.account("sam")
	before := w.dump()
	_, err := w.l.Open(w.ctx, escrow.Terms{ID: "e1", Buyer: "bob", Seller: "sam", Price: cny("30.00")})
	if !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Fatalf("Open whose seller is the default arbiter = %v, want ErrInvalidArgument", err)
	}
	w.unchanged(before, "an Open refused for its default arbiter")
	if _, err := w.l.Escrow(w.ctx, "e1"); !errors.Is(err, escrow.ErrNotFound) {
		t.Fatalf("the refused escrow: %v, want ErrNotFound", err)
	}
	// Naming another arbiter in the terms opens it.
	e, err := w.l.Open(w.ctx, escrow.Terms{ID: "e1", Buyer: "bob", Seller: "sam", Arbiter: "carol", Price: cny("30.00")})
	if err != nil || e.Arbiter != "carol" {
		t.Fatalf("Open naming carol = %q, %v", e.Arbiter, err)
	}
}
