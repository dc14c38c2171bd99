package escrow_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// errStuck is what stuckStore fails writes of its stuck escrows with.
var errStuck = errors.New("escrow: test: this escrow cannot be written")

// stuckStore is a memstore whose transactions refuse to write the escrows
// named in stuck, as a store might refuse a record it cannot encode: the
// write fails with what fail returns (errStuck by default). They refuse
// to delete the idempotency records of keys named in stuck too, and to
// put the aggregates of parties named there.
type stuckStore struct {
	*memstore.Store
	stuck map[string]bool
	fail  func(id string) error
}

func (s *stuckStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	return s.Store.Update(ctx, func(tx escrow.Tx) error { return fn(stuckTx{tx, s}) })
}

type stuckTx struct {
	escrow.Tx
	s *stuckStore
}

// PutAggregate refuses the aggregates of parties named in stuck.
func (t stuckTx) PutAggregate(a escrow.Aggregate) error {
	if t.s.stuck[a.Party] {
		return fmt.Errorf("%w: %q", errStuck, a.Party)
	}
	return t.Tx.PutAggregate(a)
}

// DeleteIdempotency refuses to delete the records of keys named in stuck.
func (t stuckTx) DeleteIdempotency(key string) error {
	if t.s.stuck[key] {
		return fmt.Errorf("%w: %q", errStuck, key)
	}
	return t.Tx.DeleteIdempotency(key)
}

func (t stuckTx) PutEscrow(e escrow.Escrow) error {
	switch {
	case !t.s.stuck[e.ID]:
		return t.Tx.PutEscrow(e)
	case t.s.fail != nil:
		return t.s.fail(e.ID)
	}
	return fmt.Errorf("%w: %q", errStuck, e.ID)
}

// stuckWorld returns a world over a stuckStore with stuck unpaid escrows
// due first, more of them than ProcessDue reads at a time, then good ones;
// all are due.
func stuckWorld(t *testing.T, stuck, good int) (*world, *stuckStore, []string, []string) {
	store := &stuckStore{Store: memstore.New(), stuck: map[string]bool{}}
	t.Cleanup(func() { store.Close() })
	w := newWorld(t, store, escrow.Options{})
	w.account("alice")
	w.account("bob")
	open := func(prefix string, n int) []string {
		var ids []string
		for i := range n {
			id := fmt.Sprintf("%s-%03d", prefix, i)
			_, err := w.l.Open(w.ctx, escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Price: cny("10.00")})
			w.must("Open", err)
			ids = append(ids, id)
		}
		w.clock.Advance(time.Minute)
		return ids
	}
	// The good ones sort first by ID and last by deadline.
	stuckIDs, goodIDs := open("z-stuck", stuck), open("a-good", good)
	for _, id := range stuckIDs {
		store.stuck[id] = true
	}
	w.clock.Advance(escrow.DefaultTimers().PayWithin)
	return w, store, stuckIDs, goodIDs
}

// TestProcessDueSkipsFailingEscrows: escrows whose action fails are
// skipped and reported, and every other due escrow fires, however many
// failing ones come first in the due index.
func TestProcessDueSkipsFailingEscrows(t *testing.T) {
	w, store, stuckIDs, goodIDs := stuckWorld(t, 300, 3)
	for run := 1; run <= 2; run++ {
		fired, err := w.l.ProcessDue(w.ctx)
		wantFired := len(goodIDs)
		if run == 2 {
			wantFired = 0 // the good ones fired in the first run
		}
		if fired != wantFired {
			t.Errorf("run %d: ProcessDue fired %d, want %d", run, fired, wantFired)
		}
		var due *escrow.DueError
		if !errors.As(err, &due) {
			t.Fatalf("run %d: ProcessDue error %v, want a *DueError", run, err)
		}
		if !errors.Is(err, errStuck) {
			t.Errorf("run %d: errors.Is(%v, errStuck) = false", run, err)
		}
		want := map[string]string{}
		for _, id := range stuckIDs {
			want[id] = fmt.Sprintf("%v: %q", errStuck, id)
		}
		got := map[string]string{}
		for id, err := range due.Escrows {
			got[id] = err.Error()
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("run %d: DueError.Escrows (-want +got):\n%s", run, diff)
		}
		if due.Stopped != nil {
			t.Errorf("run %d: DueError.Stopped = %v, want nil", run, due.Stopped)
		}
	}
	// The stuck ones stay due, to be tried again; the good ones closed.
	states := map[string]escrow.State{}
	wantStates := map[string]escrow.State{}
	for _, ids := range [][]string{stuckIDs, goodIDs} {
		for _, id := range ids {
			e, err := w.l.Escrow(w.ctx, id)
			w.must("Escrow", err)
			states[id] = e.State
			wantStates[id] = escrow.Closed
			if store.stuck[id] {
				wantStates[id] = escrow.AwaitingPayment
			}
		}
	}
	if diff := cmp.Diff(wantStates, states); diff != "" {
		t.Errorf("states after ProcessDue (-want +got):\n%s", diff)
	}
}

// TestProcessDueStopsWhenStoreCloses: a closed store ends the run with
// ErrClosed, not with every escrow reported as skipped.
func TestProcessDueStopsWhenStoreCloses(t *testing.T) {
	w, store, _, _ := stuckWorld(t, 0, 3)
	store.Close()
	fired, err := w.l.ProcessDue(w.ctx)
	var due *escrow.DueError
	if fired != 0 || !errors.Is(err, escrow.ErrClosed) || errors.As(err, &due) {
		t.Errorf("ProcessDue on a closed store = %d, %v; want 0, ErrClosed and no DueError", fired, err)
	}
}

// TestProcessDueStoppedAfterSkipping: a context that ends after an escrow
// was skipped returns a DueError whose Stopped is the context's error.
func TestProcessDueStoppedAfterSkipping(t *testing.T) {
	w, store, stuckIDs, goodIDs := stuckWorld(t, 1, 2)
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	// The first good escrow's write ends the context instead.
	store.stuck[goodIDs[0]] = true
	store.fail = func(id string) error {
		if id == goodIDs[0] {
			cancel()
			return ctx.Err()
		}
		return fmt.Errorf("%w: %q", errStuck, id)
	}
	fired, err := w.l.ProcessDue(ctx)
	var due *escrow.DueError
	if !errors.As(err, &due) {
		t.Fatalf("ProcessDue = %d, %v; want a *DueError", fired, err)
	}
	if fired != 0 || !errors.Is(err, context.Canceled) || !errors.Is(due.Stopped, context.Canceled) {
		t.Errorf("ProcessDue = %d, %v; want 0 and Stopped context.Canceled", fired, err)
	}
	skipped := slices.Sorted(maps.Keys(due.Escrows))
	if diff := cmp.Diff(stuckIDs, skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	e, err := w.l.Escrow(w.ctx, goodIDs[1])
	if err != nil || e.State != escrow.AwaitingPayment {
		t.Errorf("escrow after the stop: %v, %v; want it untouched, in AwaitingPayment", e.State, err)
	}
}

// TestExpiredTimerFiresFirst: an action taken after the running timer ran
// out, but before ProcessDue fired it, finds the timer fired first, and
// the store ends the same whichever of the two ran first: a deadline
// binds when it passes.
func TestExpiredTimerFiresFirst(t *testing.T) {
	day := 24 * time.Hour
	// unpaid leaves e-001 open and unpaid, alice having the money for it.
	unpaid := func(w *world) string {
		w.account("alice")
		w.account("bob")
		_, err := w.l.Deposit(w.ctx, "alice", cny("100.00"))
		w.must("Deposit", err)
		_, err = w.l.Open(w.ctx, escrow.Terms{ID: "e-001", Buyer: "alice", Seller: "bob", Price: cny("100.00")})
		w.must("Open", err)
		return "e-001"
	}
	tests := []struct {
		name string
		opts escrow.Options
		// setup leaves escrow e-001 with its timer run out, and returns
		// the call to make.
		setup   func(w *world) func() error
		wantErr error
		want    escrow.State
		// wantRefunded, wantReleased and wantPaused are in the end state.
		wantRefunded, wantReleased string
		wantPaused                 time.Duration
	}{{
		name: "refund request after auto-confirm",
		setup: func(w *world) func() error {
			id := w.shipped("alice", "bob")
			w.clock.Advance(escrow.DefaultTimers().ConfirmWithin)
			return func() error { _, err := w.l.RequestRefund(w.ctx, id, "alice", cny("40.00"), "late"); return err }
		},
		wantErr: escrow.ErrInvalidTransition, want: escrow.Completed,
		wantRefunded: "0.00 CNY", wantReleased: "100.00 CNY",
	}, {
		name: "dispute after the shipping deadline",
		setup: func(w *world) func() error {
			id := w.paid("alice", "bob")
			w.clock.Advance(escrow.DefaultTimers().ShipWithin + time.Hour)
			return func() error { _, err := w.l.Dispute(w.ctx, id, "bob", "shipped, honest"); return err }
		},
		wantErr: escrow.ErrInvalidTransition, want: escrow.Refunded,
		wantRefunded: "100.00 CNY", wantReleased: "0.00 CNY",
	}, {
		name: "dispute after an ignored partial refund request",
		setup: func(w *world) func() error {
			id := w.shipped("alice", "bob")
			w.clock.Advance(2 * day)
			_, err := w.l.RequestRefund(w.ctx, id, "alice", cny("40.00"), "one cup broken")
			w.must("RequestRefund", err)
			w.clock.Advance(escrow.DefaultTimers().RefundResponseWithin)
			return func() error { _, err := w.l.Dispute(w.ctx, id, "alice", "the rest is broken too"); return err }
		},
		// The refund is made as asked, then the dispute pauses the
		// auto-confirm timer again with the 8 days it had left.
		want: escrow.Disputed, wantRefunded: "40.00 CNY", wantReleased: "0.00 CNY", wantPaused: 8 * day,
	}, {
		name: "payment after the payment deadline",
		setup: func(w *world) func() error {
			id := unpaid(w)
			w.clock.Advance(escrow.DefaultTimers().PayWithin)
			return func() error { _, err := w.l.Pay(w.ctx, id, "alice"); return err }
		},
		wantErr: escrow.ErrInvalidTransition, want: escrow.Closed,
		wantRefunded: "0.00 CNY", wantReleased: "0.00 CNY",
	}, {
		name: "cart paid after the payment deadline",
		setup: func(w *world) func() error {
			id := unpaid(w)
			w.clock.Advance(escrow.DefaultTimers().PayWithin + time.Minute)
			return func() error { _, err := w.l.PayAll(w.ctx, "alice", []string{id}); return err }
		},
		wantErr: escrow.ErrInvalidTransition, want: escrow.Closed,
		wantRefunded: "0.00 CNY", wantReleased: "0.00 CNY",
	}, {
		name: "shipment after the shipping deadline",
		setup: func(w *world) func() error {
			id := w.paid("alice", "bob")
			w.clock.Advance(escrow.DefaultTimers().ShipWithin + time.Hour)
			return func() error { _, err := w.l.Ship(w.ctx, id, "bob", "SF-late"); return err }
		},
		wantErr: escrow.ErrInvalidTransition, want: escrow.Refunded,
		wantRefunded: "100.00 CNY", wantReleased: "0.00 CNY",
	}, {
		name: "confirmation after auto-confirm",
		setup: func(w *world) func() error {
			id := w.shipped("alice", "bob")
			w.clock.Advance(escrow.DefaultTimers().ConfirmWithin)
			return func() error { _, err := w.l.Confirm(w.ctx, id, "alice"); return err }
		},
		wantErr: escrow.ErrInvalidTransition, want: escrow.Completed,
		wantRefunded: "0.00 CNY", wantReleased: "100.00 CNY",
	}, {
		name: "refusal of an ignored refund request",
		setup: func(w *world) func() error {
			id := w.paid("alice", "bob")
			_, err := w.l.RequestRefund(w.ctx, id, "alice", cny("100.00"), "changed my mind")
			w.must("RequestRefund", err)
			w.clock.Advance(escrow.DefaultTimers().RefundResponseWithin + time.Hour)
			return func() error { _, err := w.l.RefuseRefund(w.ctx, id, "bob", "too late to ask"); return err }
		},
		wantErr: escrow.ErrInvalidTransition, want: escrow.Refunded,
		wantRefunded: "100.00 CNY", wantReleased: "0.00 CNY",
	}, {
		name: "refusal of returned goods after the receiving deadline",
		setup: func(w *world) func() error {
			id := w.shipped("alice", "bob")
			_, err := w.l.RequestReturn(w.ctx, id, "alice", cny("100.00"), "wrong size")
			w.must("RequestReturn", err)
			_, err = w.l.AgreeReturn(w.ctx, id, "bob", "1 Return Road")
			w.must("AgreeReturn", err)
			_, err = w.l.ShipReturn(w.ctx, id, "alice", "RT1")
			w.must("ShipReturn", err)
			w.clock.Advance(escrow.DefaultTimers().ReturnReceiveWithin)
			return func() error { _, err := w.l.RefuseReturn(w.ctx, id, "bob", "an empty box"); return err }
		},
		wantErr: escrow.ErrInvalidTransition, want: escrow.Refunded,
		wantRefunded: "100.00 CNY", wantReleased: "0.00 CNY",
	}, {
		name: "resolution after the arbiter's deadline",
		opts: escrow.Options{Timers: escrow.Timers{ArbiterWithin: day}},
		setup: func(w *world) func() error {
			id := w.paid("alice", "bob")
			_, err := w.l.Dispute(w.ctx, id, "alice", "never shipped")
			w.must("Dispute", err)
			w.clock.Advance(2 * day)
			return func() error {
				_, err := w.l.Resolve(w.ctx, id, "carol", escrow.Split{Buyer: cny("60.00"), Seller: cny("40.00")})
				return err
			}
		},
		// The escalation is told first, then the resolution stands: the
		// dispute stays open when its deadline passes.
		want: escrow.Resolved, wantRefunded: "60.00 CNY", wantReleased: "40.00 CNY",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var dumps [2][]byte
			for order := range 2 {
				w := newWorld(t, nil, tc.opts)
				call := tc.setup(w)
				var err error
				if order == 0 {
					w.processDue()
					err = call()
				} else {
					err = call()
					w.processDue()
				}
				if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
					t.Errorf("order %d: call returned %v, want %v", order, err, tc.wantErr)
				}
				e, err := w.l.Escrow(w.ctx, "e-001")
				w.must("Escrow", err)
				got := []any{e.State, e.Refunded.String(), e.Released.String(), e.Paused}
				want := []any{tc.want, tc.wantRefunded, tc.wantReleased, tc.wantPaused}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("order %d: state, refunded, released, paused (-want +got):\n%s", order, diff)
				}
				dumps[order], err = storagetest.Dump(w.ctx, w.l.Storage())
				w.must("Dump", err)
			}
			if diff := cmp.Diff(string(dumps[0]), string(dumps[1])); diff != "" {
				t.Errorf("ProcessDue first, then the call (-) vs the call first (+):\n%s", diff)
			}
		})
	}
}

// TestDueErrorMessage: the message names what was skipped in order, and
// Unwrap gives Stopped first, then each error in the same order.
func TestDueErrorMessage(t *testing.T) {
	errA, errB, errC := errors.New("a failed"), errors.New("b failed"), errors.New("c failed")
	err := &escrow.DueError{
		Escrows:    map[string]error{"e-2": errB, "e-1": errA},
		Aggregates: map[escrow.PartyRole]error{{Party: "bob", Role: escrow.Seller}: errC},
		Stopped:    context.Canceled,
	}
	want := `escrow: 2 due escrow(s) and 1 aggregate(s) skipped, then stopped: context canceled; ` +
		`escrow "e-1": a failed; escrow "e-2": b failed; "bob" as the seller: c failed`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if diff := cmp.Diff([]error{context.Canceled, errA, errB, errC}, err.Unwrap(), cmpopts.EquateErrors()); diff != "" {
		t.Errorf("Unwrap() (-want +got):\n%s", diff)
	}
}

// TestRunTimersRefusesInterval: an interval that is not positive is told
// to onError as ErrInvalidArgument, and RunTimers returns at once, while
// ctx is still live, having fired nothing.
func TestRunTimersRefusesInterval(t *testing.T) {
	for _, interval := range []time.Duration{0, -time.Second} {
		w := newWorld(t, nil, escrow.Options{})
		id := w.paid("alice", "bob")
		w.clock.Advance(escrow.DefaultTimers().ShipWithin)
		var got []error
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.l.RunTimers(w.ctx, interval, func(err error) { got = append(got, err) })
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("RunTimers(%v) did not return", interval)
		}
		if len(got) != 1 || !errors.Is(got[0], escrow.ErrInvalidArgument) {
			t.Errorf("RunTimers(%v) told onError %v, want one ErrInvalidArgument", interval, got)
		}
		if e := escrowNow(w, id); e.State != escrow.AwaitingShipment {
			t.Errorf("RunTimers(%v) left the escrow %s, want it unfired in AwaitingShipment", interval, e.State)
		}
		w.l.RunTimers(w.ctx, interval, nil) // and with no onError, returns all the same
	}
}

// TestDeadlinesRunFromWhenTheOneBeforePassed: a deadline that a timer
// starts (the auto-confirm resumed after an ignored refund request, the
// buyer's time to send goods back once the seller's time to answer ran
// out) runs from when that timer's own deadline passed, not from when
// ProcessDue got to it. So one ProcessDue long after both leaves the
// escrow as ProcessDue at each deadline would have, and a party's action
// after both finds both fired.
func TestDeadlinesRunFromWhenTheOneBeforePassed(t *testing.T) {
	tests := []struct {
		name string
		// setup leaves the escrow "deal" with a deadline that will start
		// another when it passes.
		setup func(f *world)
		// at is when ProcessDue or the call comes, after both deadlines.
		at    time.Duration
		fires int // the timers one ProcessDue at at fires
		want  escrow.State
		// late is a call at at, which finds the escrow as the timers left
		// it and is refused.
		late func(f *world) (escrow.Escrow, error)
	}{{
		// The auto-confirm deadline is day 10; a partial request on day
		// 2 pauses it with 8 days left; the refund is made on day 7 and
		// the auto-confirm resumes to day 15.
		name: "an ignored partial refund request, then auto-confirm",
		setup: func(f *world) {
			f.clock.Set(start.Add(2 * day))
			f.call("RequestRefund", func() (escrow.Escrow, error) {
				return f.l.RequestRefund(f.ctx, "deal", partyBuyer, cny("40.00"), "one cup broken")
			})
		},
		at: 15*day + time.Hour, fires: 2, want: escrow.Completed,
		late: func(f *world) (escrow.Escrow, error) {
			return f.l.Dispute(f.ctx, "deal", partyBuyer, "the rest is broken too")
		},
	}, {
		// A return asked for on day 1 (9 days of auto-confirm left) is
		// agreed to by the timer on day 6; the buyer has until day 13 to
		// send the goods back, and then the auto-confirm runs to day 22.
		name: "an ignored return request, then goods never sent back",
		setup: func(f *world) {
			f.clock.Set(start.Add(day))
			f.call("RequestReturn", func() (escrow.Escrow, error) {
				return f.l.RequestReturn(f.ctx, "deal", partyBuyer, cny("100.00"), "wrong size")
			})
		},
		at: 13*day + time.Hour, fires: 2, want: escrow.AwaitingConfirmation,
		late: func(f *world) (escrow.Escrow, error) {
			return f.l.ShipReturn(f.ctx, "deal", partyBuyer, "RT-late")
		},
	}, {
		name: "an ignored return request, goods never sent back, then auto-confirm",
		setup: func(f *world) {
			f.clock.Set(start.Add(day))
			f.call("RequestReturn", func() (escrow.Escrow, error) {
				return f.l.RequestReturn(f.ctx, "deal", partyBuyer, cny("100.00"), "wrong size")
			})
		},
		at: 22*day + time.Hour, fires: 3, want: escrow.Completed,
		late: func(f *world) (escrow.Escrow, error) {
			return f.l.RequestRefund(f.ctx, "deal", partyBuyer, cny("10.00"), "scratched")
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// ProcessDue at each deadline as it passes.
			prompt := returnWorld(t, escrow.Timers{})
			tc.setup(prompt)
			fired := 0
			for e := escrowNow(prompt, "deal"); !e.DueAt.IsZero() && !e.DueAt.After(start.Add(tc.at)); e = escrowNow(prompt, "deal") {
				prompt.clock.Set(e.DueAt)
				fired += prompt.processDue()
			}
			prompt.clock.Set(start.Add(tc.at))
			fired += prompt.processDue()
			if fired != tc.fires {
				t.Errorf("ProcessDue at each deadline fired %d timers, want %d", fired, tc.fires)
			}

			// One ProcessDue after them all.
			late := returnWorld(t, escrow.Timers{})
			tc.setup(late)
			late.clock.Set(start.Add(tc.at))
			if n := late.processDue(); n != tc.fires {
				t.Errorf("one late ProcessDue fired %d timers, want %d", n, tc.fires)
			}
			summary := func(e escrow.Escrow) []any {
				return []any{e.State, e.Held.String(), e.Released.String(), e.Refunded.String(), e.DueAt, e.Paused}
			}
			p, l := escrowNow(prompt, "deal"), escrowNow(late, "deal")
			if p.State != tc.want {
				t.Errorf("ProcessDue at each deadline left %s, want %s", p.State, tc.want)
			}
			if diff := cmp.Diff(summary(p), summary(l)); diff != "" {
				t.Errorf("state, held, released, refunded, due, paused: at each deadline (-) vs once, late (+):\n%s", diff)
			}
			prompt.check()
			late.check()

			// A party's call after them all.
			call := returnWorld(t, escrow.Timers{})
			tc.setup(call)
			call.clock.Set(start.Add(tc.at))
			call.refused("the late call", escrow.ErrInvalidTransition, func() (escrow.Escrow, error) { return tc.late(call) })
		})
	}
}

// TestProcessDueFiresWhenPruningFails: an expired idempotency record that
// cannot be deleted holds up neither the timers nor the deletion of the
// other expired records. The run fires what is due and reports the
// failure in its DueError; the record stays, and a later run deletes it.
func TestProcessDueFiresWhenPruningFails(t *testing.T) {
	w, store, _, goodIDs := stuckWorld(t, 0, 2)
	_, err := w.l.Deposit(w.ctx, "alice", cny("1.00"), escrow.IdempotencyKey("old-key"))
	w.must("Deposit", err)
	store.stuck["old-key"] = true
	// More expired records than one batch deletes, younger than the stuck
	// one, one of them stuck too, in the middle of the last batch, and one
	// that has not expired.
	store.stuck["expired-270"] = true
	w.clock.Advance(time.Second)
	w.must("put records", store.Update(w.ctx, func(tx escrow.Tx) error {
		for i := range 300 {
			r := escrow.IdempotencyRecord{Key: fmt.Sprintf("expired-%03d", i), Request: "r", At: w.clock.Now()}
			if err := tx.PutIdempotency(r); err != nil {
				return err
			}
		}
		return nil
	}))
	w.clock.Advance(escrow.DefaultIdempotencyRetention)
	_, err = w.l.Deposit(w.ctx, "alice", cny("1.00"), escrow.IdempotencyKey("young-key"))
	w.must("Deposit", err)

	fired, err := w.l.ProcessDue(w.ctx)
	if fired != len(goodIDs) {
		t.Errorf("ProcessDue fired %d, want %d", fired, len(goodIDs))
	}
	var due *escrow.DueError
	if !errors.As(err, &due) || !errors.Is(err, errStuck) || !errors.Is(due.Idempotency, errStuck) {
		t.Fatalf("ProcessDue error %v, want a *DueError whose Idempotency wraps errStuck", err)
	}
	if len(due.Escrows) != 0 || len(due.Aggregates) != 0 || due.Stopped != nil {
		t.Errorf("DueError %+v skipped or stopped on more than the pruning", due)
	}
	if want := `expired idempotency records: ` + errStuck.Error() + `: "old-key"`; !strings.Contains(err.Error(), want) {
		t.Errorf("DueError says %q, want it to contain %q", err, want)
	}
	for _, id := range goodIDs {
		if e, err := w.l.Escrow(w.ctx, id); err != nil || e.State != escrow.Closed {
			t.Errorf("escrow %s is %s (%v), want closed by its timer", id, e.State, err)
		}
	}
	keys := func() (keys []string) {
		w.must("Idempotencies", w.store.View(w.ctx, func(tx escrow.Tx) error {
			return tx.Idempotencies(func(r escrow.IdempotencyRecord) error { keys = append(keys, r.Key); return nil })
		}))
		return keys
	}
	if got := keys(); !slices.Equal(got, []string{"expired-270", "old-key", "young-key"}) {
		t.Errorf("records after a failed pruning: %q, want old-key and expired-270 kept, and young-key", got)
	}

	delete(store.stuck, "old-key")
	delete(store.stuck, "expired-270")
	if fired, err := w.l.ProcessDue(w.ctx); fired != 0 || err != nil {
		t.Errorf("the next ProcessDue = %d, %v; want 0, nil", fired, err)
	}
	if got := keys(); !slices.Equal(got, []string{"young-key"}) {
		t.Errorf("records after the next ProcessDue: %q, want young-key", got)
	}
}

// TestProcessDueReportsAStoreThatTakesNoWrite: a store that refuses every
// write fails the pruning of expired records as a whole, and ProcessDue
// says so, with no due escrow and however many records, trying no more
// than a batch of them one by one.
func TestProcessDueReportsAStoreThatTakesNoWrite(t *testing.T) {
	w, store, _, _ := stuckWorld(t, 0, 0)
	w.must("put records", store.Update(w.ctx, func(tx escrow.Tx) error {
		for i := range 2000 {
			r := escrow.IdempotencyRecord{Key: fmt.Sprintf("expired-%04d", i), Request: "r", At: w.clock.Now()}
			if err := tx.PutIdempotency(r); err != nil {
				return err
			}
		}
		return nil
	}))
	w.clock.Advance(escrow.DefaultIdempotencyRetention + time.Hour)
	failing := &refusingStore{Storage: store}
	l, err := escrow.New(w.ctx, failing, &escrow.Options{Clock: w.clock})
	w.must("New", err)
	failing.refuse = true
	fired, err := l.ProcessDue(w.ctx)
	var due *escrow.DueError
	if fired != 0 || !errors.As(err, &due) || !errors.Is(due.Idempotency, errDiskFailed) {
		t.Fatalf("ProcessDue = %d, %v; want 0 and a *DueError whose Idempotency is the store's failure", fired, err)
	}
	if failing.writes > 300 {
		t.Errorf("ProcessDue tried %d writes on a store that takes none, want at most a batch and its records", failing.writes)
	}
}

// refusingStore fails every Update, once refuse is set, before it runs
// the transaction, as a store whose disk has failed does.
type refusingStore struct {
	escrow.Storage
	refuse bool
	writes int
}

func (s *refusingStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	if s.refuse {
		s.writes++
		return errDiskFailed
	}
	return s.Storage.Update(ctx, fn)
}
