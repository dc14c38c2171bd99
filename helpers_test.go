package escrow_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// worldStart is the manual clock's reading when a test world opens.
var worldStart = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// A world is a ledger over a fresh memstore, with a manual clock, for
// tests of the ledger's rules.
type world struct {
	t      *testing.T
	ctx    context.Context
	l      *escrow.Ledger
	clock  *escrow.ManualClock
	opened map[string]bool // accounts opened so far
	trades int             // escrows opened so far, for their IDs
}

// newWorld opens a world over store (a fresh memstore if nil) with opts
// (Clock is set by newWorld).
func newWorld(t *testing.T, store escrow.Storage, opts escrow.Options) *world {
	t.Helper()
	if store == nil {
		s := memstore.New()
		t.Cleanup(func() { s.Close() })
		store = s
	}
	w := &world{t: t, ctx: context.Background(), clock: escrow.NewManualClock(worldStart), opened: map[string]bool{}}
	opts.Clock = w.clock
	l, err := escrow.New(w.ctx, store, &opts)
	if err != nil {
		t.Fatal(err)
	}
	w.l = l
	return w
}

// must fails the test on err.
func (w *world) must(what string, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

// account opens id unless it is open already.
func (w *world) account(id string) {
	w.t.Helper()
	if !w.opened[id] {
		_, err := w.l.OpenAccount(w.ctx, id)
		w.must("OpenAccount "+id, err)
		w.opened[id] = true
	}
}

// paid opens an escrow of 100.00 from buyer to seller, with carol as
// arbiter, and pays it; it returns the escrow's ID.
func (w *world) paid(buyer, seller string) string {
	w.t.Helper()
	w.account(buyer)
	w.account(seller)
	w.trades++
	id := fmt.Sprintf("e-%03d", w.trades)
	_, err := w.l.Deposit(w.ctx, buyer, cny("100.00"))
	w.must("Deposit", err)
	_, err = w.l.Open(w.ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Arbiter: "carol", Price: cny("100.00")})
	w.must("Open "+id, err)
	_, err = w.l.Pay(w.ctx, id, buyer)
	w.must("Pay "+id, err)
	return id
}

// shipped is paid, then shipped.
func (w *world) shipped(buyer, seller string) string {
	w.t.Helper()
	id := w.paid(buyer, seller)
	_, err := w.l.Ship(w.ctx, id, seller, "SF"+id)
	w.must("Ship "+id, err)
	return id
}

// rated completes a trade between a fresh buyer and seller, whom the
// buyer rates with score now.
func (w *world) rated(seller string, score escrow.Score) {
	w.t.Helper()
	buyer := fmt.Sprintf("buyer-%03d", w.trades+1)
	id := w.shipped(buyer, seller)
	_, err := w.l.Confirm(w.ctx, id, buyer)
	w.must("Confirm "+id, err)
	_, err = w.l.Rate(w.ctx, id, buyer, escrow.RatingInput{Score: score})
	w.must("Rate "+id, err)
}

// top returns the sellers TopSellers ranks first by key, in order.
func (w *world) top(by escrow.RankKey, n int) []string {
	w.t.Helper()
	ranked, err := w.l.TopSellers(w.ctx, n, by)
	w.must("TopSellers", err)
	out := []string{}
	for _, r := range ranked {
		out = append(out, r.Party)
	}
	return out
}

// processDue runs ProcessDue and fails the test on an error.
func (w *world) processDue() int {
	w.t.Helper()
	n, err := w.l.ProcessDue(w.ctx)
	w.must("ProcessDue", err)
	return n
}
