package escrow_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
)

// inputStart is the manual clock's first reading in the input tests.
var inputStart = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// inputFixture is a ledger over a fresh memstore holding one escrow in each
// state a refused call may meet:
//
//	unpaid    AwaitingPayment
//	held      AwaitingShipment, 100.00 held
//	shipped   AwaitingConfirmation, 100.00 held
//	disputed  Disputed, 100.00 held
//	done      Completed, rated Neutral by alice
type inputFixture struct {
	t     *testing.T
	ctx   context.Context
	store *memstore.Store
	clock *escrow.ManualClock
	l     *escrow.Ledger
}

func newInputFixture(t *testing.T, opts *escrow.Options) *inputFixture {
	t.Helper()
	f := &inputFixture{t: t, ctx: context.Background(), store: memstore.New(), clock: escrow.NewManualClock(inputStart)}
	t.Cleanup(func() { f.store.Close() })
	o := escrow.Options{}
	if opts != nil {
		o = *opts
	}
	o.Clock = f.clock
	var err error
	if f.l, err = escrow.New(f.ctx, f.store, &o); err != nil {
		t.Fatal(err)
	}
	l, ctx := f.l, f.ctx
	steps := []func() error{
		func() error { _, err := l.OpenAccount(ctx, "alice"); return err },
		func() error { _, err := l.OpenAccount(ctx, "bob"); return err },
		func() error { _, err := l.Deposit(ctx, "alice", cny("1000.00")); return err },
	}
	for _, id := range []string{"unpaid", "held", "shipped", "disputed", "done"} {
		steps = append(steps, func() error {
			_, err := l.Open(ctx, escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Arbiter: "carol", Price: cny("100.00")})
			return err
		})
	}
	for _, id := range []string{"held", "shipped", "disputed", "done"} {
		steps = append(steps, func() error { _, err := l.Pay(ctx, id, "alice"); return err })
	}
	for _, id := range []string{"shipped", "disputed", "done"} {
		steps = append(steps, func() error { _, err := l.Ship(ctx, id, "bob", "SF1"); return err })
	}
	steps = append(steps,
		func() error { _, err := l.Dispute(ctx, "disputed", "alice", "broken"); return err },
		func() error { _, err := l.Confirm(ctx, "done", "alice"); return err },
		func() error {
			_, err := l.Rate(ctx, "done", "alice", escrow.RatingInput{Score: escrow.Neutral})
			return err
		},
	)
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("setup step %d: %v", i, err)
		}
	}
	return f
}

func cny(s string) escrow.Money { return escrow.MustParseMoney(s, escrow.CNY) }

// dump returns everything in the store.
func (f *inputFixture) dump() []byte {
	f.t.Helper()
	d, err := storagetest.Dump(f.ctx, f.store)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// refused runs call and fails the test unless it returns an error wrapping
// want and leaves the store exactly as it was.
func (f *inputFixture) refused(what string, want error, call func() error) {
	f.t.Helper()
	before := f.dump()
	err := call()
	if !errors.Is(err, want) {
		f.t.Errorf("%s: err = %v, want %v", what, err, want)
	}
	if after := f.dump(); !bytes.Equal(before, after) {
		f.t.Errorf("%s changed the store:\nbefore: %.1500s\nafter: %.1500s", what, before, after)
	}
}

// TestAmountsPastMaxUnitsRefusedEverywhere holds every call that takes an
// amount to the one rule Deposit already kept: an amount past MaxUnits is
// ErrAmountTooLarge, a negative one ErrInvalidAmount, and nothing changes.
func TestAmountsPastMaxUnitsRefusedEverywhere(t *testing.T) {
	f := newInputFixture(t, nil)
	l, ctx := f.l, f.ctx
	for _, tc := range []struct {
		name   string
		amount escrow.Money
		want   error
	}{
		{"MaxInt64", escrow.RestoreMoney(math.MaxInt64, escrow.CNY), escrow.ErrAmountTooLarge},
		{"MaxUnits+1", escrow.RestoreMoney(escrow.MaxUnits+1, escrow.CNY), escrow.ErrAmountTooLarge},
		{"negative", escrow.RestoreMoney(-1, escrow.CNY), escrow.ErrInvalidAmount},
	} {
		m := tc.amount
		calls := map[string]func() error{
			"Open": func() error {
				_, err := l.Open(ctx, escrow.Terms{ID: "big", Buyer: "alice", Seller: "bob", Price: m})
				return err
			},
			"Open milestone": func() error {
				_, err := l.Open(ctx, escrow.Terms{ID: "big", Buyer: "alice", Seller: "bob", Price: cny("1.00"),
					Milestones: []escrow.Milestone{{Name: "a", Amount: m}, {Name: "b", Amount: cny("1.00")}}})
				return err
			},
			"Deposit":       func() error { _, err := l.Deposit(ctx, "alice", m); return err },
			"Withdraw":      func() error { _, err := l.Withdraw(ctx, "alice", m); return err },
			"Refund":        func() error { _, err := l.Refund(ctx, "held", "bob", m); return err },
			"RequestRefund": func() error { _, err := l.RequestRefund(ctx, "held", "alice", m, ""); return err },
			"Resolve": func() error {
				_, err := l.Resolve(ctx, "disputed", "carol", escrow.Split{Buyer: m, Seller: cny("100.00")})
				return err
			},
		}
		for name, call := range calls {
			f.refused(tc.name+" "+name, tc.want, call)
		}
	}
}

// TestAllocateRefusesBadAmounts: a balance read from the public API can be
// negative (WorldAccount's); Allocate refuses it rather than splitting
// garbage.
func TestAllocateRefusesBadAmounts(t *testing.T) {
	f := newInputFixture(t, nil)
	world, err := f.l.Balance(f.ctx, escrow.WorldAccount, escrow.CNY)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m    escrow.Money
		want error
	}{
		{world.Available, escrow.ErrInvalidAmount},
		{escrow.RestoreMoney(-1, escrow.CNY), escrow.ErrInvalidAmount},
		{escrow.RestoreMoney(escrow.MaxUnits+1, escrow.CNY), escrow.ErrAmountTooLarge},
	} {
		parts, err := escrow.Allocate(tc.m, 1, 2)
		if !errors.Is(err, tc.want) || parts != nil {
			t.Errorf("Allocate(%v, 1, 2) = %v, %v; want nil, %v", tc.m, parts, err, tc.want)
		}
	}
}

// TestEmptyIdempotencyKeyRefused: an empty key is a caller's bug, not "no
// key"; ignoring it would make a retried deposit deposit twice.
func TestEmptyIdempotencyKeyRefused(t *testing.T) {
	f := newInputFixture(t, nil)
	l, ctx, empty := f.l, f.ctx, escrow.IdempotencyKey("")
	calls := map[string]func() error{
		"OpenAccount": func() error { _, err := l.OpenAccount(ctx, "dave", empty); return err },
		"Deposit":     func() error { _, err := l.Deposit(ctx, "alice", cny("5.00"), empty); return err },
		"Pay":         func() error { _, err := l.Pay(ctx, "unpaid", "alice", empty); return err },
		"Rate": func() error {
			_, err := l.Rate(ctx, "done", "bob", escrow.RatingInput{Score: escrow.Positive}, empty)
			return err
		},
		"Deposit, empty key last": func() error {
			_, err := l.Deposit(ctx, "alice", cny("5.00"), escrow.IdempotencyKey("k"), empty)
			return err
		},
	}
	for name, call := range calls {
		f.refused(name, escrow.ErrInvalidArgument, call)
	}
	// The zero CallOption is no option at all.
	if _, err := l.Deposit(ctx, "alice", cny("5.00"), escrow.CallOption{}); err != nil {
		t.Errorf("Deposit with a zero CallOption: %v", err)
	}
}

// TestIDsMustBePrintable: C1 controls, bidi overrides and other
// non-printable runes are refused in every caller-chosen ID, as the docs
// promise.
func TestIDsMustBePrintable(t *testing.T) {
	f := newInputFixture(t, nil)
	l, ctx := f.l, f.ctx
	bad := []string{"ab\u0085cd", "ab\u202ecd", "ab\u2067cd", "ab\u200fcd", "ab\u00adcd", "ab\u200bcd",
		"ab\u3000cd", "ab\x1bcd", "ab\x7fcd", "ab\ncd", "ab\xffcd"}
	for _, id := range bad {
		terms := func(set func(*escrow.Terms)) func() error {
			return func() error {
				tm := escrow.Terms{ID: "new", Buyer: "alice", Seller: "bob", Arbiter: "carol", Price: cny("1.00")}
				set(&tm)
				_, err := l.Open(ctx, tm)
				return err
			}
		}
		calls := map[string]func() error{
			"OpenAccount":  func() error { _, err := l.OpenAccount(ctx, id); return err },
			"Open ID":      terms(func(tm *escrow.Terms) { tm.ID = id }),
			"Open Buyer":   terms(func(tm *escrow.Terms) { tm.Buyer = id }),
			"Open Seller":  terms(func(tm *escrow.Terms) { tm.Seller = id }),
			"Open Arbiter": terms(func(tm *escrow.Terms) { tm.Arbiter = id }),
		}
		for name, call := range calls {
			f.refused(fmt.Sprintf("%s(%q)", name, id), escrow.ErrInvalidArgument, call)
		}
	}
	for _, id := range []string{"茶叶店", "café-1", "a b", "Ünïcödé_42"} {
		if _, err := l.OpenAccount(ctx, id); err != nil {
			t.Errorf("OpenAccount(%q): %v", id, err)
		}
	}
}

// TestTextRefusesControlAndBidi applies one rule to every free text a call
// takes: no control characters (newlines and tabs where text may span
// lines) and no bidirectional formatting characters.
func TestTextRefusesControlAndBidi(t *testing.T) {
	f := newInputFixture(t, nil)
	l, ctx := f.l, f.ctx
	for _, s := range []string{"ab\u0085cd", "ab\u009bcd", "ab\u202ecd", "ab\u202acd", "ab\u2066cd", "ab\u061ccd", "ab\x00cd"} {
		calls := map[string]func() error{
			"Ship tracking": func() error { _, err := l.Ship(ctx, "held", "bob", s); return err },
			"RequestRefund reason": func() error {
				_, err := l.RequestRefund(ctx, "held", "alice", cny("1.00"), s)
				return err
			},
			"RefuseRefund reason": func() error { _, err := l.RefuseRefund(ctx, "held", "bob", s); return err },
			"Dispute reason":      func() error { _, err := l.Dispute(ctx, "held", "alice", s); return err },
			"Rate comment": func() error {
				_, err := l.Rate(ctx, "done", "bob", escrow.RatingInput{Score: escrow.Positive, Comment: s})
				return err
			},
			"Revise comment": func() error { _, err := l.Revise(ctx, "done", "alice", escrow.Positive, s); return err },
			"Reply":          func() error { _, err := l.Reply(ctx, "done", "alice", "bob", s); return err },
			"Open item": func() error {
				_, err := l.Open(ctx, escrow.Terms{ID: "new", Buyer: "alice", Seller: "bob", Price: cny("1.00"), Item: s})
				return err
			},
			"Open milestone name": func() error {
				_, err := l.Open(ctx, escrow.Terms{ID: "new", Buyer: "alice", Seller: "bob", Price: cny("1.00"),
					Milestones: []escrow.Milestone{{Name: s, Amount: cny("1.00")}}})
				return err
			},
		}
		for name, call := range calls {
			f.refused(fmt.Sprintf("%s %q", name, s), escrow.ErrInvalidArgument, call)
		}
	}
	// Multi-line text keeps its newlines and tabs, and any script.
	reason := "箱子破了。\n\tThe box was crushed — see photo."
	if _, err := l.Dispute(ctx, "held", "alice", reason); err != nil {
		t.Errorf("Dispute with a multi-line reason: %v", err)
	}
}

// TestContextErrorsAreWordedAndMatch: a call its context ended fails with
// an "escrow: " error that still matches the context's error, and changes
// nothing.
func TestContextErrorsAreWordedAndMatch(t *testing.T) {
	f := newInputFixture(t, nil)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	f.clock.Advance(30 * 24 * time.Hour) // every timer is due
	l := f.l
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		calls := map[string]func() error{
			"Deposit": func() error { _, err := l.Deposit(c.ctx, "alice", cny("1.00")); return err },
			"Pay":     func() error { _, err := l.Pay(c.ctx, "unpaid", "alice"); return err },
			"Rate": func() error {
				_, err := l.Rate(c.ctx, "done", "bob", escrow.RatingInput{Score: escrow.Positive})
				return err
			},
			"Balance":    func() error { _, err := l.Balance(c.ctx, "alice", escrow.CNY); return err },
			"ProcessDue": func() error { _, err := l.ProcessDue(c.ctx); return err },
			"New":        func() error { _, err := escrow.New(c.ctx, f.store, nil); return err },
		}
		for name, call := range calls {
			f.refused(name, c.want, func() error {
				err := call()
				if err != nil && !strings.HasPrefix(err.Error(), "escrow: ") {
					t.Errorf("%s: error %q does not start with \"escrow: \"", name, err)
				}
				return err
			})
		}
	}
}

// cancellingStore cancels a context once an Update has committed an
// event, as a host shutting down in the middle of ProcessDue would.
type cancellingStore struct {
	escrow.Storage
	cancel context.CancelFunc
}

func (s cancellingStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	wrote := false
	err := s.Storage.Update(ctx, func(tx escrow.Tx) error {
		before, err := tx.Events(0, 1<<30)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		after, err := tx.Events(0, 1<<30)
		wrote = len(after) > len(before)
		return err
	})
	if wrote {
		s.cancel()
	}
	return err
}

// TestProcessDueCancelledMidway: ProcessDue stopped between two timers by
// its context reports the timer it fired and an error in the package's
// words.
func TestProcessDueCancelledMidway(t *testing.T) {
	f := newInputFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := escrow.New(context.Background(), cancellingStore{Storage: f.store, cancel: cancel}, &escrow.Options{Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * 24 * time.Hour)
	n, err := l.ProcessDue(ctx)
	if n != 1 || !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "escrow: ") {
		t.Errorf("ProcessDue = %d, %v; want 1 and an \"escrow: \" error matching context.Canceled", n, err)
	}
}
