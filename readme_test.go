package escrow_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// readmeBlock returns the fenced block of the given language that follows
// the line after in README.md.
func readmeBlock(t *testing.T, after, lang string) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), after)
	if !ok {
		t.Fatalf("README.md has no %q", after)
	}
	_, rest, ok = strings.Cut(rest, "```"+lang+"\n")
	if !ok {
		t.Fatalf("README.md has no %s block after %q", lang, after)
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// The JSON section's escrow is the quickstart's trade, once confirmed, at
// the times the block shows.
func TestReadmeQuickstartJSON(t *testing.T) {
	w := newWorldAt(t, nil, escrow.Options{}, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	l := w.l
	w.account("buyer")
	w.account("seller")
	_, err := l.Deposit(w.ctx, "buyer", escrow.MustParseMoney("100.00", escrow.CNY))
	w.must("Deposit", err)
	_, err = l.Open(w.ctx, escrow.Terms{ID: "order-1", Buyer: "buyer", Seller: "seller",
		Item: "Longjing tea", Price: escrow.MustParseMoney("59.90", escrow.CNY)})
	w.must("Open", err)
	w.clock.Advance(5 * time.Minute)
	_, err = l.Pay(w.ctx, "order-1", "buyer")
	w.must("Pay", err)
	w.clock.Advance(115 * time.Minute)
	_, err = l.Ship(w.ctx, "order-1", "seller", "SF1234")
	w.must("Ship", err)
	w.clock.Advance(21 * time.Hour)
	e, err := l.Confirm(w.ctx, "order-1", "buyer")
	w.must("Confirm", err)
	if got := e.State.String() + " " + e.Released.String(); got != "Completed 59.90 CNY" {
		t.Errorf("the quickstart prints %q, want %q", got, "Completed 59.90 CNY")
	}

	got, err := json.Marshal(e)
	w.must("Marshal", err)
	var want bytes.Buffer
	w.must("Compact", json.Compact(&want, []byte(readmeBlock(t, "The escrow of the quickstart, once confirmed:", "json"))))
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the escrow's JSON differs from the README's:\n got: %s\nwant: %s", got, want.Bytes())
	}
}
