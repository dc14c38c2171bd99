package escrow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
	"github.com/shopspring/decimal"
)

// worldStart is the manual clock's reading when a test world opens.
var worldStart = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// start is the manual clock's first reading in a fixture: the rule tables
// (actions, flows, timers, idempotency, reputation) state their times as
// offsets from it.
var start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// A world is a ledger over a fresh memstore, with a manual clock, for
// tests of the ledger's rules.
type world struct {
	t      *testing.T
	ctx    context.Context
	store  escrow.Storage
	l      *escrow.Ledger
	clock  *escrow.ManualClock
	opened map[string]bool // accounts opened so far
	trades int             // escrows opened so far, for their IDs
}

// newWorld opens a world over store (a fresh memstore if nil) with opts
// (Clock is set by newWorld).
func newWorld(t *testing.T, store escrow.Storage, opts escrow.Options) *world {
	t.Helper()
	return newWorldAt(t, store, opts, worldStart)
}

// newFixture is a world whose clock starts at start, with a 0.6% fee
// rounded half to even: the setting of the rule tables.
func newFixture(t *testing.T) *world {
	t.Helper()
	return newFixtureWith(t, &escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")}})
}

// newFixtureWith is a world over a fresh memstore whose clock starts at
// start, with opts.
func newFixtureWith(t *testing.T, opts *escrow.Options) *world {
	t.Helper()
	return newWorldAt(t, nil, *opts, start)
}

func newWorldAt(t *testing.T, store escrow.Storage, opts escrow.Options, at time.Time) *world {
	t.Helper()
	if store == nil {
		s := memstore.New()
		t.Cleanup(func() { s.Close() })
		store = s
	}
	w := &world{t: t, ctx: context.Background(), store: store, clock: escrow.NewManualClock(at), opened: map[string]bool{}}
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

// top returns the first n sellers TopSellers ranks by key, in order.
func (w *world) top(by escrow.RankKey, n int) []string {
	w.t.Helper()
	out := []string{}
	for _, r := range w.ranking(by) {
		if len(out) < n {
			out = append(out, r.Party)
		}
	}
	return out
}

// ranking returns every seller TopSellers ranks by key, in order, read
// a few at a time.
func (w *world) ranking(by escrow.RankKey) []escrow.Ranked {
	w.t.Helper()
	var out []escrow.Ranked
	p := escrow.Page{Limit: 3}
	for {
		page, err := w.l.TopSellers(w.ctx, by, p)
		w.must("TopSellers", err)
		out = append(out, page.Sellers...)
		if page.Next == "" {
			return out
		}
		p.Cursor = page.Next
	}
}

// processDue runs ProcessDue and fails the test on an error.
func (w *world) processDue() int {
	w.t.Helper()
	n, err := w.l.ProcessDue(w.ctx)
	w.must("ProcessDue", err)
	return n
}

// fen returns n fen (hundredths of a yuan) as CNY.
func fen(n int64) escrow.Money {
	m, err := escrow.MoneyFromUnits(n, escrow.CNY)
	if err != nil {
		panic(err)
	}
	return m
}

// funded opens accounts and deposits 1,000.00 CNY into each.
func (w *world) funded(ids ...string) {
	w.t.Helper()
	for _, id := range ids {
		w.account(id)
		_, err := w.l.Deposit(w.ctx, id, cny("1000.00"))
		w.must("Deposit "+id, err)
	}
}

// balance returns the available and held CNY of an account, in fen.
func (w *world) balance(id string) (available, held int64) {
	w.t.Helper()
	b, err := w.l.Balance(w.ctx, id, escrow.CNY)
	w.must("Balance "+id, err)
	return b.Available.Units(), b.Held.Units()
}

// dump returns storagetest.Dump of the world's store or fails the test.
func (w *world) dump() []byte {
	w.t.Helper()
	d, err := storagetest.Dump(w.ctx, w.store)
	w.must("Dump", err)
	return d
}

// dumpWithout returns the store's dump without the named top-level fields.
func (w *world) dumpWithout(fields ...string) []byte {
	w.t.Helper()
	var d map[string]json.RawMessage
	w.must("Dump", json.Unmarshal(w.dump(), &d))
	for _, name := range fields {
		delete(d, name)
	}
	b, err := json.Marshal(d) // map keys sorted: deterministic
	w.must("Dump", err)
	return b
}

// check runs the invariant checker or fails the test.
func (w *world) check() {
	w.t.Helper()
	w.must("invariants", w.l.Check(w.ctx))
}

// unchanged fails the test if the store's dump differs from before.
func (w *world) unchanged(before []byte, what string) {
	w.t.Helper()
	if after := w.dump(); !bytes.Equal(before, after) {
		w.t.Fatalf("%s changed the store:\nbefore: %.2000s\nafter: %.2000s", what, before, after)
	}
}

// escrowNow returns the stored escrow or fails the test.
func escrowNow(w *world, id string) escrow.Escrow {
	w.t.Helper()
	e, err := w.l.Escrow(w.ctx, id)
	w.must("Escrow "+id, err)
	return e
}

// setup runs setup calls, failing the test on the first error.
func setup(t testing.TB, calls ...func() (escrow.Escrow, error)) {
	t.Helper()
	for i, call := range calls {
		if _, err := call(); err != nil {
			t.Fatalf("setup call %d: %v", i, err)
		}
	}
}
