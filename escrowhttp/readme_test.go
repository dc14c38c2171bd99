package escrowhttp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// TestREADMEEscrow: the README's JSON of the quickstart's escrow, once
// confirmed, is the escrow's, the quickstart run at the times the README
// shows, and the API answers that.
func TestREADMEEscrow(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(readme, []byte("The escrow of the quickstart, once confirmed:\n\n```json\n"))
	block, _, ok2 := bytes.Cut(after, []byte("```"))
	if !ok || !ok2 {
		t.Fatal("the README has no JSON of the quickstart's escrow")
	}

	h := newHarness(t, nil, &escrow.Options{})
	ctx := h.ctx
	must(h.l.OpenAccount(ctx, "buyer"))
	must(h.l.OpenAccount(ctx, "seller"))
	must(h.l.Deposit(ctx, "buyer", escrow.MustParseMoney("100.00", escrow.CNY)))
	must(h.l.Open(ctx, escrow.Terms{ID: "order-1", Buyer: "buyer", Seller: "seller",
		Item: "Longjing tea", Price: escrow.MustParseMoney("59.90", escrow.CNY)}))
	h.clock.Advance(5 * time.Minute)
	must(h.l.Pay(ctx, "order-1", "buyer"))
	h.clock.Advance(115 * time.Minute)
	must(h.l.Ship(ctx, "order-1", "seller", "SF1234"))
	h.clock.Advance(21 * time.Hour)
	e := must(h.l.Confirm(ctx, "order-1", "buyer"))

	b := must(json.Marshal(e))
	var want, got any
	if err := json.Unmarshal(block, &want); err != nil {
		t.Fatalf("the README's JSON: %v", err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("the README's JSON of the quickstart's escrow is not the escrow's (-README +escrow):\n%s\nIts JSON is:\n%s", d, b)
	}
	// The API answers it so.
	h.do(req{method: "GET", path: "/v1/escrows/order-1", actor: "buyer"}).ok(http.StatusOK).same(e)
}
