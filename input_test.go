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
	"github.com/google/go-cmp/cmp"
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

// TestNoAmountRefusedAsInvalid: where a payment is meant, no amount (the
// zero Money) and an amount of zero are both ErrInvalidAmount, the one a
// caller who left the field out reads as such, not as a currency with no
// code; and nothing changes.
func TestNoAmountRefusedAsInvalid(t *testing.T) {
	f := newInputFixture(t, nil)
	l, ctx := f.l, f.ctx
	for name, m := range map[string]escrow.Money{"Money{}": {}, "0.00 CNY": cny("0.00")} {
		calls := map[string]func() error{
			"Open": func() error {
				_, err := l.Open(ctx, escrow.Terms{ID: "free", Buyer: "alice", Seller: "bob", Price: m})
				return err
			},
			"Deposit":       func() error { _, err := l.Deposit(ctx, "alice", m); return err },
			"Withdraw":      func() error { _, err := l.Withdraw(ctx, "alice", m); return err },
			"Refund":        func() error { _, err := l.Refund(ctx, "held", "bob", m); return err },
			"RequestRefund": func() error { _, err := l.RequestRefund(ctx, "held", "alice", m, ""); return err },
		}
		if m.Currency() == escrow.CNY { // a milestone of no currency is a currency mismatch
			calls["Open milestone"] = func() error {
				_, err := l.Open(ctx, escrow.Terms{ID: "free", Buyer: "alice", Seller: "bob", Price: cny("1.00"),
					Milestones: []escrow.Milestone{{Name: "a", Amount: m}, {Name: "b", Amount: cny("1.00")}}})
				return err
			}
		}
		for call, fn := range calls {
			var err error
			f.refused(call+" of "+name, escrow.ErrInvalidAmount, func() error { err = fn(); return err })
			if err != nil && strings.Contains(err.Error(), ": :") {
				t.Errorf("%s of %s: message %q has an empty part", call, name, err)
			}
		}
	}
}

// TestBalanceLimitNamesTheAmount: a deposit refused because a balance,
// here WorldAccount's, would pass the largest amount reports the amount as
// given and the account whose balance it is, and changes nothing.
func TestBalanceLimitNamesTheAmount(t *testing.T) {
	f := newInputFixture(t, nil)
	l, ctx := f.l, f.ctx
	world, err := l.Balance(ctx, escrow.WorldAccount, escrow.CNY)
	if err != nil {
		t.Fatal(err)
	}
	// Bring @world to -MaxUnits: what alice deposited, and the rest to bob.
	rest, err := escrow.MoneyFromUnits(escrow.MaxUnits+world.Available.Units(), escrow.CNY)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Deposit(ctx, "bob", rest); err != nil {
		t.Fatal(err)
	}
	f.refused("one fen more", escrow.ErrAmountTooLarge, func() error {
		_, err := l.Deposit(ctx, "bob", cny("0.01"))
		var ae *escrow.AmountError
		if !errors.As(err, &ae) || ae.Amount != "0.01" || ae.Currency != "CNY" || !strings.Contains(err.Error(), escrow.WorldAccount) {
			t.Errorf("Deposit past the limit: %v, want an AmountError for 0.01 CNY naming %s", err, escrow.WorldAccount)
		}
		return err
	})
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

// TestIdempotencyKeyText: a key is 1 to 256 bytes of UTF-8 with no
// control character, so that every store keeps it as given (PostgreSQL
// holds no NUL byte and no invalid UTF-8 in text); any other is refused
// and the call changes nothing.
func TestIdempotencyKeyText(t *testing.T) {
	f := newInputFixture(t, nil)
	l, ctx := f.l, f.ctx
	for _, key := range []string{"k\x00", "k\xff", "k\ncd", "k\u202e", strings.Repeat("k", 257)} {
		f.refused(fmt.Sprintf("Deposit under key %.12q", key), escrow.ErrInvalidArgument, func() error {
			_, err := l.Deposit(ctx, "alice", cny("5.00"), escrow.IdempotencyKey(key))
			return err
		})
	}
	for _, key := range []string{strings.Repeat("k", 256), "user-42:订单-7 retry"} {
		if _, err := l.Deposit(ctx, "alice", cny("5.00"), escrow.IdempotencyKey(key)); err != nil {
			t.Errorf("Deposit under key %.12q: %v", key, err)
		}
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

// TestIDsNamedMustBeValid: a call that names an escrow or an account to act
// on or read refuses an ID that could never have been opened with
// ErrInvalidArgument, not as missing, and changes nothing; the system
// accounts may still be read. An actor whose ID breaks the rule is no
// party to anything, and is refused as such.
func TestIDsNamedMustBeValid(t *testing.T) {
	f := newInputFixture(t, nil)
	l, ctx := f.l, f.ctx
	for _, id := range []string{"", strings.Repeat("x", 129), "ab\x00cd", "ab\xffcd", "ab\u202ecd", "@fees"} {
		calls := map[string]func() error{
			"Pay":     func() error { _, err := l.Pay(ctx, id, "alice"); return err },
			"Confirm": func() error { _, err := l.Confirm(ctx, id, "alice"); return err },
			"Escrow":  func() error { _, err := l.Escrow(ctx, id); return err },
			"History": func() error { _, err := l.History(ctx, id); return err },
			"Rate": func() error {
				_, err := l.Rate(ctx, id, "alice", escrow.RatingInput{Score: escrow.Positive})
				return err
			},
			"Reply":          func() error { _, err := l.Reply(ctx, id, "alice", "bob", "thanks"); return err },
			"WithdrawRating": func() error { _, err := l.WithdrawRating(ctx, id, "alice"); return err },
			"VoidRating":     func() error { _, err := l.VoidRating(ctx, id, "alice", "ops", "brushing"); return err },
			// The rater names whose rating to act on; in Reply and
			// VoidRating the actor is another, in Revise and
			// WithdrawRating the rater itself.
			"Reply rater":      func() error { _, err := l.Reply(ctx, "held", id, "bob", "thanks"); return err },
			"VoidRating rater": func() error { _, err := l.VoidRating(ctx, "held", id, "ops", "brushing"); return err },
			"Revise rater": func() error {
				_, err := l.Revise(ctx, "held", id, escrow.Positive, "")
				return err
			},
			"WithdrawRating rater": func() error { _, err := l.WithdrawRating(ctx, "held", id); return err },
			"Reputation":           func() error { _, err := l.Reputation(ctx, id); return err },
			"Explain":              func() error { _, err := l.Explain(ctx, id, escrow.Page{}); return err },
		}
		if id != "@fees" { // a system account may be read, but not paid into
			calls["Account"] = func() error { _, err := l.Account(ctx, id); return err }
			calls["Balance"] = func() error { _, err := l.Balance(ctx, id, escrow.CNY); return err }
			calls["Balances"] = func() error { _, err := l.Balances(ctx, id); return err }
			calls["Journal"] = func() error { _, err := l.Journal(ctx, id, 0, 10); return err }
		}
		calls["Deposit"] = func() error { _, err := l.Deposit(ctx, id, cny("1.00")); return err }
		if id != escrow.FeeAccount { // the platform pays its fees out of it
			calls["Withdraw"] = func() error { _, err := l.Withdraw(ctx, id, cny("1.00")); return err }
		}
		for name, call := range calls {
			f.refused(fmt.Sprintf("%s(%q)", name, id), escrow.ErrInvalidArgument, call)
		}
	}
	for _, id := range []string{escrow.WorldAccount, escrow.FeeAccount} {
		if _, err := l.Balances(ctx, id); err != nil {
			t.Errorf("Balances(%q): %v", id, err)
		}
		if _, err := l.Journal(ctx, id, 0, 10); err != nil {
			t.Errorf("Journal(%q): %v", id, err)
		}
	}
	for _, actor := range []string{"", "ali\x00ce"} {
		f.refused(fmt.Sprintf("Ship by %q", actor), escrow.ErrNotParty, func() error {
			_, err := l.Ship(ctx, "held", actor, "SF2")
			return err
		})
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
			"Open SKU": func() error {
				_, err := l.Open(ctx, escrow.Terms{ID: "new", Buyer: "alice", Seller: "bob", Price: cny("1.00"), SKU: s})
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

// goldenRequests pins the canonical request of every call kind, as an
// idempotency record keeps it. A change here breaks every retry made
// across an upgrade: it needs a new request version, not an edit.
var goldenRequests = []struct {
	key, request string
	call         func(f *inputFixture, key escrow.CallOption) (marker string, err error)
}{
	{"open-account", `v1 open-account id="dave"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		a, err := f.l.OpenAccount(f.ctx, "dave", k)
		return a.ID, err
	}},
	{"deposit", `v1 deposit account="alice" amount="12.30 CNY"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		b, err := f.l.Deposit(f.ctx, "alice", cny("12.30"), k)
		return b.Account, err
	}},
	{"withdraw", `v1 withdraw account="alice" amount="12.30 CNY"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		b, err := f.l.Withdraw(f.ctx, "alice", cny("12.30"), k)
		return b.Account, err
	}},
	{"open", `v1 open id="e-9" buyer="alice" seller="bob" arbiter="carol" price="300.00 CNY" item="teapot" ` +
		`milestone="a" milestone-amount="100.00 CNY" milestone="b" milestone-amount="200.00 CNY" pay-within=3600000000000 ` +
		`ship-within=604800000000000 confirm-within=864000000000000 refund-response-within=432000000000000`,
		func(f *inputFixture, k escrow.CallOption) (string, error) {
			e, err := f.l.Open(f.ctx, escrow.Terms{ID: "e-9", Buyer: "alice", Seller: "bob", Arbiter: "carol",
				Price: cny("300.00"), Item: "teapot", Timers: escrow.Timers{PayWithin: time.Hour},
				Milestones: []escrow.Milestone{{Name: "a", Amount: cny("100.00")}, {Name: "b", Amount: cny("200.00")}}}, k)
			return e.ID, err
		}},
	{"pay", `v1 pay escrow="unpaid" actor="alice"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		e, err := f.l.Pay(f.ctx, "unpaid", "alice", k)
		return e.ID, err
	}},
	{"ship", `v1 ship escrow="held" actor="bob" text="SF 1"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		e, err := f.l.Ship(f.ctx, "held", "bob", "SF 1", k)
		return e.ID, err
	}},
	{"confirm", `v1 confirm escrow="shipped" actor="alice"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		e, err := f.l.Confirm(f.ctx, "shipped", "alice", k)
		return e.ID, err
	}},
	{"confirm-milestone", `v1 confirm-milestone escrow="shipped" actor="alice" milestone=1`,
		func(f *inputFixture, k escrow.CallOption) (string, error) {
			e, err := f.l.ConfirmMilestone(f.ctx, "shipped", "alice", 1, k)
			return e.ID, err
		}},
	{"cancel", `v1 cancel escrow="unpaid" actor="bob"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		e, err := f.l.Cancel(f.ctx, "unpaid", "bob", k)
		return e.ID, err
	}},
	{"refund", `v1 refund escrow="held" actor="bob" amount="1.00 CNY"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		e, err := f.l.Refund(f.ctx, "held", "bob", cny("1.00"), k)
		return e.ID, err
	}},
	{"request-refund", `v1 request-refund escrow="held" actor="alice" text="late\n" amount="2.00 CNY"`,
		func(f *inputFixture, k escrow.CallOption) (string, error) {
			e, err := f.l.RequestRefund(f.ctx, "held", "alice", cny("2.00"), "late\n", k)
			return e.ID, err
		}},
	{"agree-refund", `v1 agree-refund escrow="held" actor="bob"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		e, err := f.l.AgreeRefund(f.ctx, "held", "bob", k)
		return e.ID, err
	}},
	{"refuse-refund", `v1 refuse-refund escrow="held" actor="bob" text="no"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		e, err := f.l.RefuseRefund(f.ctx, "held", "bob", "no", k)
		return e.ID, err
	}},
	{"dispute", `v1 dispute escrow="held" actor="alice"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		e, err := f.l.Dispute(f.ctx, "held", "alice", "", k)
		return e.ID, err
	}},
	{"resolve", `v1 resolve escrow="disputed" actor="carol" buyer-part="40.00 CNY" seller-part="60.00 CNY"`,
		func(f *inputFixture, k escrow.CallOption) (string, error) {
			e, err := f.l.Resolve(f.ctx, "disputed", "carol", escrow.Split{Buyer: cny("40.00"), Seller: cny("60.00")}, k)
			return e.ID, err
		}},
	{"rate", `v1 rate escrow="done" rater="alice" score=1 described=5 communication=4 shipping=3 comment="好"`,
		func(f *inputFixture, k escrow.CallOption) (string, error) {
			r, err := f.l.Rate(f.ctx, "done", "alice", escrow.RatingInput{Score: escrow.Positive,
				Details: escrow.Details{Described: 5, Communication: 4, Shipping: 3}, Comment: "好"}, k)
			return r.Escrow, err
		}},
	{"revise", `v1 revise escrow="done" rater="alice" score=1 comment="ok"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		r, err := f.l.Revise(f.ctx, "done", "alice", escrow.Positive, "ok", k)
		return r.Escrow, err
	}},
	{"reply", `v1 reply escrow="done" rater="alice" actor="bob" text="thanks"`, func(f *inputFixture, k escrow.CallOption) (string, error) {
		r, err := f.l.Reply(f.ctx, "done", "alice", "bob", "thanks", k)
		return r.Escrow, err
	}},
}

// TestGoldenRequestsReplay seeds, for every call kind, a record whose
// Request is the pinned canonical form and whose result is a marker: the
// call made with that key must replay the marker and change nothing. It
// fails if the encoding of any call drifts from its golden form.
func TestGoldenRequestsReplay(t *testing.T) {
	f := newInputFixture(t, nil)
	marker := `{"ID":"from-record","Account":"from-record","Escrow":"from-record"}`
	err := f.store.Update(f.ctx, func(tx escrow.Tx) error {
		for _, g := range goldenRequests {
			r := escrow.IdempotencyRecord{Key: g.key, Request: g.request, Result: []byte(marker), At: inputStart}
			if err := tx.PutIdempotency(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range goldenRequests {
		var got string
		f.refused(g.key, nil, func() error {
			var err error
			got, err = g.call(f, escrow.IdempotencyKey(g.key))
			return err
		})
		if got != "from-record" {
			t.Errorf("%s: result %q, want the recorded marker", g.key, got)
		}
	}
}

// TestGoldenRequestsWritten makes each call for real under a fresh key and
// reads back the Request its record keeps: the current encoding writes the
// golden form. The fixture has no escrow with milestones and alice has
// rated "done" already; the replay test covers those two.
func TestGoldenRequestsWritten(t *testing.T) {
	for _, g := range goldenRequests {
		if g.key == "confirm-milestone" || g.key == "rate" {
			continue
		}
		f := newInputFixture(t, nil)
		if g.key == "agree-refund" || g.key == "refuse-refund" {
			if _, err := f.l.RequestRefund(f.ctx, "held", "alice", cny("2.00"), ""); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := g.call(f, escrow.IdempotencyKey("k")); err != nil {
			t.Errorf("%s: %v", g.key, err)
			continue
		}
		err := f.store.View(f.ctx, func(tx escrow.Tx) error {
			r, err := tx.Idempotency("k")
			if err == nil && r.Request != g.request {
				t.Errorf("%s: recorded request\n%s\nwant\n%s", g.key, r.Request, g.request)
			}
			return err
		})
		if err != nil {
			t.Errorf("%s: %v", g.key, err)
		}
	}
}

// TestRequestZeroFormsAreOne: a retry that spells a zero argument another
// way (Money{} or 0.00 CNY in a split, no milestones or an empty list,
// zero timers or the defaults they stand for) is the same request and
// replays; a real difference is still a mismatch.
func TestRequestZeroFormsAreOne(t *testing.T) {
	f := newInputFixture(t, nil)
	l, ctx := f.l, f.ctx
	key := escrow.IdempotencyKey("resolve-1")
	first, err := l.Resolve(ctx, "disputed", "carol", escrow.Split{Seller: cny("100.00")}, key)
	if err != nil {
		t.Fatal(err)
	}
	var again escrow.Escrow
	f.refused("Resolve retried with 0.00 CNY for Money{}", nil, func() error {
		again, err = l.Resolve(ctx, "disputed", "carol", escrow.Split{Buyer: cny("0.00"), Seller: cny("100.00")}, key)
		return err
	})
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("replayed escrow differs (-first +again):\n%s", diff)
	}

	terms := escrow.Terms{ID: "e-7", Buyer: "alice", Seller: "bob", Price: cny("5.00")}
	key = escrow.IdempotencyKey("open-1")
	if _, err := l.Open(ctx, terms, key); err != nil {
		t.Fatal(err)
	}
	spelled := terms
	spelled.Milestones = []escrow.Milestone{}
	spelled.Timers = escrow.DefaultTimers()
	f.refused("Open retried with an empty milestone list and explicit default timers", nil, func() error {
		_, err := l.Open(ctx, spelled, key)
		return err
	})
	spelled.Item = "something else"
	f.refused("Open retried with another item", escrow.ErrIdempotencyMismatch, func() error {
		_, err := l.Open(ctx, spelled, key)
		return err
	})
}

// idempotencyKeys returns the keys of the records in the store.
func (f *inputFixture) idempotencyKeys() []string {
	f.t.Helper()
	keys := []string{}
	err := f.store.View(f.ctx, func(tx escrow.Tx) error {
		return tx.Idempotencies(func(r escrow.IdempotencyRecord) error { keys = append(keys, r.Key); return nil })
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return keys
}

// available returns alice's available CNY in fen.
func (f *inputFixture) available() int64 {
	f.t.Helper()
	b, err := f.l.Balance(f.ctx, "alice", escrow.CNY)
	if err != nil {
		f.t.Fatal(err)
	}
	return b.Available.Units()
}

// TestIdempotencyRetention: a result is replayed until exactly the
// retention has passed since the first call; from then on the key is a new
// call, even with other arguments, and its record starts again.
func TestIdempotencyRetention(t *testing.T) {
	f := newInputFixture(t, &escrow.Options{IdempotencyRetention: 48 * time.Hour})
	l, ctx, key := f.l, f.ctx, escrow.IdempotencyKey("d")
	if _, err := l.Deposit(ctx, "alice", cny("5.00"), key); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(48*time.Hour - time.Nanosecond)
	f.refused("a retry just inside the retention", nil, func() error {
		_, err := l.Deposit(ctx, "alice", cny("5.00"), key)
		return err
	})
	f.refused("other arguments inside the retention", escrow.ErrIdempotencyMismatch, func() error {
		_, err := l.Deposit(ctx, "alice", cny("7.00"), key)
		return err
	})
	f.clock.Advance(time.Nanosecond)
	before := f.available()
	if _, err := l.Deposit(ctx, "alice", cny("7.00"), key); err != nil {
		t.Fatalf("a call with an expired key: %v", err)
	}
	if got := f.available() - before; got != 700 {
		t.Errorf("a call with an expired key deposited %d fen, want 700", got)
	}
	f.clock.Advance(47 * time.Hour)
	f.refused("a retry of the new call", nil, func() error {
		_, err := l.Deposit(ctx, "alice", cny("7.00"), key)
		return err
	})
}

// TestProcessDuePrunesIdempotency: ProcessDue deletes every record past the
// retention, however many, and keeps the younger ones.
func TestProcessDuePrunesIdempotency(t *testing.T) {
	f := newInputFixture(t, &escrow.Options{IdempotencyRetention: time.Hour})
	var old []string
	err := f.store.Update(f.ctx, func(tx escrow.Tx) error {
		for i := range 600 {
			k := fmt.Sprintf("old-%03d", i)
			old = append(old, k)
			if err := tx.PutIdempotency(escrow.IdempotencyRecord{Key: k, Request: "r", At: inputStart.Add(-time.Duration(i) * time.Second)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Minute)
	if _, err := f.l.Deposit(f.ctx, "alice", cny("1.00"), escrow.IdempotencyKey("young")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.ProcessDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(old, "young"), f.idempotencyKeys()); diff != "" {
		t.Errorf("before any record expired, ProcessDue deleted (-want +got):\n%s", diff)
	}
	f.clock.Advance(30 * time.Minute) // old-000 is exactly an hour old, "young" half an hour
	if _, err := f.l.ProcessDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"young"}, f.idempotencyKeys()); diff != "" {
		t.Errorf("records after ProcessDue (-want +got):\n%s", diff)
	}
	f.clock.Advance(30 * time.Minute)
	if _, err := f.l.ProcessDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{}, f.idempotencyKeys()); diff != "" {
		t.Errorf("records after the last expired (-want +got):\n%s", diff)
	}
}

func TestNewRefusesNegativeRetention(t *testing.T) {
	_, err := escrow.New(context.Background(), memstore.New(), &escrow.Options{IdempotencyRetention: -time.Second})
	if !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("New with a negative retention: %v, want ErrInvalidArgument", err)
	}
}
