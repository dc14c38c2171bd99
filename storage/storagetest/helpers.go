package storagetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/shopspring/decimal"
)

// maxTime is later than any deadline a test sets.
var maxTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// start is the manual clock's first reading in every test.
var start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// fixture is a ledger over a fresh store with a manual clock, a 0.6% fee
// rounded half-even and an arbiter-friendly default.
type fixture struct {
	t     testing.TB
	ctx   context.Context
	store escrow.Storage
	l     *escrow.Ledger
	clock *escrow.ManualClock
}

func newFixture(t testing.TB, h Harness) *fixture {
	t.Helper()
	return newFixtureWith(t, h, &escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")}})
}

func newFixtureWith(t testing.TB, h Harness, opts *escrow.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), store: open(t, h), clock: escrow.NewManualClock(start)}
	o := *opts
	o.Clock = f.clock
	l, err := escrow.New(f.ctx, f.store, &o)
	if err != nil {
		t.Fatalf("escrow.New: %v", err)
	}
	f.l = l
	return f
}

// fen returns n fen (hundredths of a yuan) as CNY.
func fen(n int64) escrow.Money {
	m, err := escrow.MoneyFromUnits(n, escrow.CNY)
	if err != nil {
		panic(err)
	}
	return m
}

// cny parses a CNY amount or fails the test.
func cny(s string) escrow.Money { return escrow.MustParseMoney(s, escrow.CNY) }

// accounts opens accounts and deposits 1,000.00 CNY into each.
func (f *fixture) accounts(ids ...string) {
	f.t.Helper()
	for _, id := range ids {
		if _, err := f.l.OpenAccount(f.ctx, id); err != nil {
			f.t.Fatalf("OpenAccount(%q): %v", id, err)
		}
		if _, err := f.l.Deposit(f.ctx, id, cny("1000.00")); err != nil {
			f.t.Fatalf("Deposit(%q): %v", id, err)
		}
	}
}

// balance returns the available and held CNY of an account, in fen.
func (f *fixture) balance(id string) (available, held int64) {
	f.t.Helper()
	b, err := f.l.Balance(f.ctx, id, escrow.CNY)
	if err != nil {
		f.t.Fatalf("Balance(%q): %v", id, err)
	}
	return b.Available.Units(), b.Held.Units()
}

// dump returns Dump of the fixture's store or fails the test.
func (f *fixture) dump() []byte {
	f.t.Helper()
	d, err := Dump(f.ctx, f.store)
	if err != nil {
		f.t.Fatalf("Dump: %v", err)
	}
	return d
}

// check runs the invariant checker or fails the test.
func (f *fixture) check() {
	f.t.Helper()
	if err := f.l.Check(f.ctx); err != nil {
		f.t.Fatalf("invariants: %v", err)
	}
}

// unchanged fails the test if the store's dump differs from before.
func (f *fixture) unchanged(before []byte, what string) {
	f.t.Helper()
	if after := f.dump(); !bytes.Equal(before, after) {
		f.t.Fatalf("%s changed the store:\nbefore: %.2000s\nafter: %.2000s", what, before, after)
	}
}

// escrowNow returns the stored escrow or fails the test.
func escrowNow(f *fixture, id string) escrow.Escrow {
	f.t.Helper()
	e, err := f.l.Escrow(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Escrow(%s): %v", id, err)
	}
	return e
}

// eventsAfter returns every event after seq, reading in pages.
func eventsAfter(f *fixture, seq uint64) []escrow.Event {
	f.t.Helper()
	var out []escrow.Event
	for {
		page, err := f.l.Events(f.ctx, seq, 50)
		if err != nil {
			f.t.Fatalf("Events(%d): %v", seq, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		seq = page[len(page)-1].Seq
	}
}
