package escrow_test

import (
	"errors"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// TestReasonsKeptOnTheEscrow: the reasons given with RequestRefund,
// RefuseRefund and Dispute stay on the escrow, with who gave them and
// when, and read back the same from the store.
func TestReasonsKeptOnTheEscrow(t *testing.T) {
	w := newFixture(t)
	id := w.shipped("alice", "bob")
	asked := w.clock.Now().Add(time.Hour)
	w.clock.Set(asked)
	e, err := w.l.RequestRefund(w.ctx, id, "alice", cny("30.00"), "lid\ncracked")
	w.must("RequestRefund", err)
	want := escrow.RefundRequest{Amount: cny("30.00"), Reason: "lid\ncracked", At: asked}
	if diff := cmp.Diff(want, e.Refund); diff != "" {
		t.Errorf("open request (-want +got):\n%s", diff)
	}

	refused := asked.Add(2 * time.Hour)
	w.clock.Set(refused)
	e, err = w.l.RefuseRefund(w.ctx, id, "bob", "it left here whole")
	w.must("RefuseRefund", err)
	want.RefuseReason, want.RefusedAt = "it left here whole", refused
	if diff := cmp.Diff(want, e.Refund); diff != "" {
		t.Errorf("refused request (-want +got):\n%s", diff)
	}
	if e.Dispute != (escrow.DisputeClaim{}) {
		t.Errorf("dispute before any: %+v", e.Dispute)
	}

	disputed := refused.Add(time.Hour)
	w.clock.Set(disputed)
	e, err = w.l.Dispute(w.ctx, id, "alice", "photos attached")
	w.must("Dispute", err)
	wantClaim := escrow.DisputeClaim{By: escrow.Buyer, Reason: "photos attached", At: disputed}
	if diff := cmp.Diff(wantClaim, e.Dispute); diff != "" {
		t.Errorf("dispute (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, e.Refund); diff != "" {
		t.Errorf("refund request after the dispute (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(e, escrowNow(w, id)); diff != "" {
		t.Errorf("stored escrow differs from the one returned (-returned +stored):\n%s", diff)
	}

	// Resolving keeps the record of the dispute.
	e, err = w.l.Resolve(w.ctx, id, "carol", escrow.Split{Buyer: cny("100.00")})
	w.must("Resolve", err)
	if diff := cmp.Diff(wantClaim, e.Dispute); diff != "" {
		t.Errorf("resolved (-want +got):\n%s", diff)
	}
}

// TestDisputeBySeller: the seller may dispute too, with no reason, and
// the claim says so.
func TestDisputeBySeller(t *testing.T) {
	w := newFixture(t)
	id := w.paid("alice", "bob")
	e, err := w.l.Dispute(w.ctx, id, "bob", "")
	w.must("Dispute", err)
	want := escrow.DisputeClaim{By: escrow.Seller, At: w.clock.Now()}
	if diff := cmp.Diff(want, e.Dispute); diff != "" {
		t.Errorf("dispute (-want +got):\n%s", diff)
	}
}

// TestNewRequestForgetsTheLastRefusal: a request after a refused one
// replaces it whole, so the refusal shown is always this request's.
func TestNewRequestForgetsTheLastRefusal(t *testing.T) {
	w := newFixture(t)
	id := w.shipped("alice", "bob")
	_, err := w.l.RequestRefund(w.ctx, id, "alice", cny("10.00"), "first")
	w.must("RequestRefund", err)
	_, err = w.l.RefuseRefund(w.ctx, id, "bob", "no")
	w.must("RefuseRefund", err)
	w.clock.Advance(time.Minute)
	e, err := w.l.RequestRefund(w.ctx, id, "alice", cny("20.00"), "second")
	w.must("RequestRefund", err)
	want := escrow.RefundRequest{Amount: cny("20.00"), Reason: "second", At: w.clock.Now()}
	if diff := cmp.Diff(want, e.Refund); diff != "" {
		t.Errorf("second request (-want +got):\n%s", diff)
	}

	// Agreed to by the timer: nobody refused it.
	w.clock.Advance(escrow.DefaultTimers().RefundResponseWithin)
	w.processDue()
	e = escrowNow(w, id)
	if e.Refund.RefuseReason != "" || !e.Refund.RefusedAt.IsZero() || e.Refunded != cny("20.00") {
		t.Errorf("after the timer agreed: refund %+v, refunded %s", e.Refund, e.Refunded)
	}
}

// TestRefusedReasonsChangeNothing: a refusal or a dispute whose reason is
// refused, or by the wrong party, leaves the store as it was.
func TestRefusedReasonsChangeNothing(t *testing.T) {
	w := newFixture(t)
	id := w.shipped("alice", "bob")
	_, err := w.l.RequestRefund(w.ctx, id, "alice", cny("10.00"), "short")
	w.must("RequestRefund", err)
	before := w.dump()
	for _, c := range []struct {
		name string
		want error
		call func() error
	}{
		{"RefuseRefund with a control character", escrow.ErrInvalidArgument, func() error {
			_, err := w.l.RefuseRefund(w.ctx, id, "bob", "no\x00")
			return err
		}},
		{"RefuseRefund by the buyer", escrow.ErrNotParty, func() error {
			_, err := w.l.RefuseRefund(w.ctx, id, "alice", "no")
			return err
		}},
		{"Dispute with 1,001 bytes", escrow.ErrInvalidArgument, func() error {
			_, err := w.l.Dispute(w.ctx, id, "alice", string(make([]byte, 1001)))
			return err
		}},
		{"Dispute by the arbiter", escrow.ErrNotParty, func() error {
			_, err := w.l.Dispute(w.ctx, id, "carol", "me")
			return err
		}},
	} {
		if err := c.call(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		w.unchanged(before, c.name)
	}
}
