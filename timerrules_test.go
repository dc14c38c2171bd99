package escrow_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// expectFired runs ProcessDue at the clock's current time and checks how
// many timers fired. If none should, it also checks that nothing changed
// but the reputation aggregates, whose ranking keys ProcessDue works out
// again as days pass.
func expectFired(f *world, want int) {
	f.t.Helper()
	rekeyed := []string{"Aggregates", "Top", "Rekey"}
	var before []byte
	if want == 0 {
		before = f.dumpWithout(rekeyed...)
	}
	n, err := f.l.ProcessDue(f.ctx)
	if err != nil {
		f.t.Fatalf("ProcessDue at %s: %v", f.clock.Now(), err)
	}
	if n != want {
		f.t.Fatalf("ProcessDue at %s fired %d, want %d", f.clock.Now().Sub(start), n, want)
	}
	if want != 0 {
		return
	}
	if after := f.dumpWithout(rekeyed...); !bytes.Equal(before, after) {
		f.t.Fatalf("ProcessDue with nothing due changed the store:\nbefore: %.2000s\nafter: %.2000s", before, after)
	}
}

// expectDeadline checks that the escrow's timer fires at exactly at: not
// one nanosecond before, and again not a second time.
func expectDeadline(f *world, id string, at time.Time) escrow.Escrow {
	f.t.Helper()
	e := escrowNow(f, id)
	if !e.DueAt.Equal(at) {
		f.t.Fatalf("escrow %s is due %s, want %s", id, e.DueAt.Sub(start), at.Sub(start))
	}
	f.clock.Set(at.Add(-time.Nanosecond))
	expectFired(f, 0)
	f.clock.Set(at)
	expectFired(f, 1)
	expectFired(f, 0)
	after := escrowNow(f, id)
	if after.Version != e.Version+1 || !after.UpdatedAt.Equal(at) {
		f.t.Errorf("escrow %s version %d updated %s after its timer, want version %d at %s",
			id, after.Version, after.UpdatedAt, e.Version+1, at)
	}
	return after
}

// newestEvent returns the newest event.
func newestEvent(f *world) escrow.Event {
	f.t.Helper()
	evs := eventsAfter(f, 0)
	if len(evs) == 0 {
		f.t.Fatal("no events")
	}
	return evs[len(evs)-1]
}

// expectLastEvent checks the newest event against want.
func expectLastEvent(f *world, want eventLine) {
	f.t.Helper()
	if diff := cmp.Diff(want, lineOf(newestEvent(f))); diff != "" {
		f.t.Errorf("last event (-want +got):\n%s", diff)
	}
}

func TestTimers(t *testing.T) {
	const day = 24 * time.Hour

	// Shorthands for the calls a timer test sets up with.
	open := func(f *world, terms escrow.Terms) func() (escrow.Escrow, error) {
		return func() (escrow.Escrow, error) { return f.l.Open(f.ctx, terms) }
	}
	pay := func(f *world, id string) func() (escrow.Escrow, error) {
		return func() (escrow.Escrow, error) { return f.l.Pay(f.ctx, id, partyBuyer) }
	}
	ship := func(f *world, id string) func() (escrow.Escrow, error) {
		return func() (escrow.Escrow, error) { return f.l.Ship(f.ctx, id, partySeller, "") }
	}
	request := func(f *world, id, amount string) func() (escrow.Escrow, error) {
		return func() (escrow.Escrow, error) {
			return f.l.RequestRefund(f.ctx, id, partyBuyer, cny(amount), "never came")
		}
	}
	begin := func(t *testing.T) *world {
		f := newFixture(t)
		f.funded(partyBuyer, partySeller)
		return f
	}

	t.Run("UnpaidCloses", func(t *testing.T) {
		f := begin(t)
		setup(t, open(f, dealTerms("deal", false)))
		e := expectDeadline(f, "deal", start.Add(3*day))
		if e.State != escrow.Closed || !e.DueAt.IsZero() || !e.EndedAt.Equal(start.Add(3*day)) {
			t.Errorf("after the payment deadline: %s, due %s, ended %s", e.State, e.DueAt, e.EndedAt)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowClosed, After: 3 * day, Escrow: "deal", ByTimer: true,
			State: escrow.Closed, Amount: "0", Fee: "0"})
		expectPurses(f, map[string]purse{partyBuyer: {100000, 0}, partySeller: {100000, 0}})
		f.check()
	})

	t.Run("UnshippedRefunded", func(t *testing.T) {
		f := begin(t)
		setup(t, open(f, dealTerms("deal", false)))
		f.clock.Advance(time.Hour)
		setup(t, pay(f, "deal"))
		// The shipping deadline runs from payment.
		e := expectDeadline(f, "deal", start.Add(time.Hour+7*day))
		if diff := cmp.Diff(figures{State: escrow.Refunded, Refunded: 10000, Version: 3}, figuresOf(e)); diff != "" {
			t.Errorf("escrow (-want +got):\n%s", diff)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowRefunded, After: time.Hour + 7*day, Escrow: "deal", ByTimer: true,
			State: escrow.Refunded, Amount: "100.00 CNY", Fee: "0"})
		expectPurses(f, map[string]purse{partyBuyer: {100000, 0}, partySeller: {100000, 0}, escrow.FeeAccount: {0, 0}})
		f.check()
	})

	t.Run("UnconfirmedReleased", func(t *testing.T) {
		f := begin(t)
		setup(t, open(f, dealTerms("deal", false)), pay(f, "deal"))
		f.clock.Advance(2 * time.Hour)
		setup(t, ship(f, "deal"))
		e := expectDeadline(f, "deal", start.Add(2*time.Hour+10*day))
		if diff := cmp.Diff(figures{State: escrow.Completed, Released: 10000, Fees: 60, Version: 4}, figuresOf(e)); diff != "" {
			t.Errorf("escrow (-want +got):\n%s", diff)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowReleased, After: 2*time.Hour + 10*day, Escrow: "deal", ByTimer: true,
			State: escrow.Completed, Amount: "100.00 CNY", Fee: "0.60 CNY"})
		expectPurses(f, map[string]purse{partyBuyer: {90000, 0}, partySeller: {109940, 0}, escrow.FeeAccount: {60, 0}})
		f.check()
	})

	t.Run("IgnoredRefundRequest", func(t *testing.T) {
		f := begin(t)
		setup(t, open(f, dealTerms("deal", false)), pay(f, "deal"), ship(f, "deal"))
		f.clock.Advance(day)
		setup(t, request(f, "deal", "40.00"))
		// The seller had five days to answer; the refund is made as asked
		// and the nine days of confirmation that were left run again.
		e := expectDeadline(f, "deal", start.Add(6*day))
		if diff := cmp.Diff(figures{State: escrow.AwaitingConfirmation, Held: 6000, Refunded: 4000, Version: 5}, figuresOf(e)); diff != "" {
			t.Errorf("escrow (-want +got):\n%s", diff)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowRefunded, After: 6 * day, Escrow: "deal", ByTimer: true,
			State: escrow.AwaitingConfirmation, Amount: "40.00 CNY", Fee: "0"})
		e = expectDeadline(f, "deal", start.Add(15*day))
		if diff := cmp.Diff(figures{State: escrow.Completed, Released: 6000, Refunded: 4000, Fees: 36, Version: 6}, figuresOf(e)); diff != "" {
			t.Errorf("escrow (-want +got):\n%s", diff)
		}
		expectPurses(f, map[string]purse{partyBuyer: {94000, 0}, partySeller: {105964, 0}, escrow.FeeAccount: {36, 0}})
		f.check()
	})

	t.Run("IgnoredFullRefundRequest", func(t *testing.T) {
		f := begin(t)
		setup(t, open(f, dealTerms("deal", false)), pay(f, "deal"))
		f.clock.Advance(2 * day)
		setup(t, request(f, "deal", "100.00"))
		e := expectDeadline(f, "deal", start.Add(7*day))
		if diff := cmp.Diff(figures{State: escrow.Refunded, Refunded: 10000, Version: 4}, figuresOf(e)); diff != "" {
			t.Errorf("escrow (-want +got):\n%s", diff)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowRefunded, After: 7 * day, Escrow: "deal", ByTimer: true,
			State: escrow.Refunded, Amount: "100.00 CNY", Fee: "0"})
		expectPurses(f, map[string]purse{partyBuyer: {100000, 0}})
		f.check()
	})

	t.Run("RefundRequestPausesAutoConfirm", func(t *testing.T) {
		f := begin(t)
		setup(t, open(f, dealTerms("deal", false)), pay(f, "deal"), ship(f, "deal"))
		f.clock.Set(start.Add(6 * day))
		setup(t, request(f, "deal", "40.00"))
		if e := escrowNow(f, "deal"); e.Paused != 4*day || !e.DueAt.Equal(start.Add(11*day)) {
			t.Errorf("paused with %s left, answer due %s; want 4 days, day 11", e.Paused, e.DueAt.Sub(start))
		}
		// Past the original confirmation deadline, with the request still
		// open: nothing is released.
		f.clock.Set(start.Add(10*day + time.Hour))
		expectFired(f, 0)
		if e := escrowNow(f, "deal"); e.State != escrow.RefundRequested || e.Held != cny("100.00") {
			t.Fatalf("escrow %s holding %s", e.State, e.Held)
		}
		setup(t, func() (escrow.Escrow, error) { return f.l.RefuseRefund(f.ctx, "deal", partySeller, "it did come") })
		// The four days left restart from the refusal.
		e := expectDeadline(f, "deal", start.Add(14*day+time.Hour))
		if diff := cmp.Diff(figures{State: escrow.Completed, Released: 10000, Fees: 60, Version: 6}, figuresOf(e)); diff != "" {
			t.Errorf("escrow (-want +got):\n%s", diff)
		}
		expectPurses(f, map[string]purse{partyBuyer: {90000, 0}, partySeller: {109940, 0}, escrow.FeeAccount: {60, 0}})
		f.check()
	})

	t.Run("DisputePausesEverything", func(t *testing.T) {
		f := begin(t)
		dispute := func(id string) func() (escrow.Escrow, error) {
			return func() (escrow.Escrow, error) { return f.l.Dispute(f.ctx, id, partyBuyer, "") }
		}
		setup(t,
			open(f, dealTerms("shipping", false)), pay(f, "shipping"), dispute("shipping"),
			open(f, dealTerms("confirming", false)), pay(f, "confirming"), ship(f, "confirming"), dispute("confirming"),
			open(f, dealTerms("requested", false)), pay(f, "requested"), ship(f, "requested"),
			request(f, "requested", "10.00"), dispute("requested"))
		for _, later := range []time.Duration{7 * day, 10 * day, 365 * day, 10 * 365 * day} {
			f.clock.Set(start.Add(later))
			expectFired(f, 0)
		}
		for _, id := range []string{"shipping", "confirming", "requested"} {
			if e := escrowNow(f, id); e.State != escrow.Disputed || !e.DueAt.IsZero() || e.Held != cny("100.00") {
				t.Errorf("%s: %s, due %s, holding %s", id, e.State, e.DueAt, e.Held)
			}
		}
		setup(t, func() (escrow.Escrow, error) {
			return f.l.Resolve(f.ctx, "requested", partyArbiter, escrow.Split{Buyer: cny("100.00")})
		})
		// A year on, no escrow timer fires; only the resolved escrow's
		// rating window closes, with no default rating, as nobody rated.
		f.clock.Advance(365 * day)
		if n, err := f.l.ProcessDue(f.ctx); err != nil || n != 0 {
			t.Fatalf("ProcessDue = %d, %v; want 0 timers", n, err)
		}
		if e := escrowNow(f, "requested"); !e.RatingDueAt.IsZero() || e.Rated != 0 {
			t.Errorf("rating window due %s, rated %v; want closed with no ratings", e.RatingDueAt, e.Rated)
		}
		expectFired(f, 0)
		expectPurses(f, map[string]purse{partyBuyer: {80000, 20000}, partySeller: {100000, 0}})
		f.check()
	})

	t.Run("PerEscrowTimers", func(t *testing.T) {
		f := begin(t)
		custom := dealTerms("custom", false)
		custom.Timers = escrow.Timers{PayWithin: time.Hour, ShipWithin: 2 * time.Hour, ConfirmWithin: 3 * time.Hour,
			RefundResponseWithin: 30 * time.Minute}
		partial := dealTerms("partial", false)
		partial.Timers = escrow.Timers{ConfirmWithin: time.Hour}
		setup(t, open(f, custom), open(f, partial), pay(f, "partial"), ship(f, "partial"), open(f, dealTerms("plain", false)))
		wantCustom := escrow.DefaultTimers()
		wantCustom.PayWithin, wantCustom.ShipWithin, wantCustom.ConfirmWithin = time.Hour, 2*time.Hour, 3*time.Hour
		wantCustom.RefundResponseWithin = 30 * time.Minute
		if e := escrowNow(f, "custom"); e.Timers != wantCustom {
			t.Errorf("custom timers %+v, want %+v", e.Timers, wantCustom)
		}
		want := escrow.DefaultTimers()
		want.ConfirmWithin = time.Hour
		if e := escrowNow(f, "partial"); e.Timers != want {
			t.Errorf("partial timers %+v, want %+v", e.Timers, want)
		}
		if e := escrowNow(f, "plain"); e.Timers != escrow.DefaultTimers() {
			t.Errorf("plain timers %+v, want the defaults", e.Timers)
		}
		f.clock.Set(start.Add(time.Hour - time.Nanosecond))
		expectFired(f, 0)
		f.clock.Set(start.Add(time.Hour))
		expectFired(f, 2)
		for id, want := range map[string]escrow.State{"custom": escrow.Closed, "partial": escrow.Completed, "plain": escrow.AwaitingPayment} {
			if e := escrowNow(f, id); e.State != want {
				t.Errorf("%s is %s, want %s", id, e.State, want)
			}
		}

		// The custom refund-response time: 30 minutes.
		short := dealTerms("short", false)
		short.Timers = custom.Timers
		setup(t, open(f, short), pay(f, "short"), request(f, "short", "100.00"))
		expectDeadline(f, "short", start.Add(90*time.Minute))
		if e := escrowNow(f, "short"); e.State != escrow.Refunded {
			t.Errorf("short is %s, want Refunded", e.State)
		}
		f.check()
	})

	t.Run("LedgerDefaults", func(t *testing.T) {
		f := newFixtureWith(t, &escrow.Options{Timers: escrow.Timers{PayWithin: 2 * time.Hour}})
		f.funded(partyBuyer, partySeller)
		setup(t, open(f, dealTerms("deal", false)))
		want := escrow.DefaultTimers()
		want.PayWithin = 2 * time.Hour
		if e := escrowNow(f, "deal"); e.Timers != want {
			t.Errorf("timers %+v, want %+v", e.Timers, want)
		}
		expectDeadline(f, "deal", start.Add(2*time.Hour))
		f.check()
	})

	t.Run("ManyDue", func(t *testing.T) {
		f := begin(t)
		// 300 escrows, more than one batch of ProcessDue, in the three
		// states with a deadline that has passed by day 10; and five more,
		// opened on day 8, whose payment is not due until day 11.
		var calls []func() (escrow.Escrow, error)
		for i := 0; i < 300; i++ {
			terms := dealTerms(fmt.Sprintf("deal-%03d", i), false)
			terms.Price = cny("1.00")
			calls = append(calls, open(f, terms))
			switch i % 3 {
			case 1:
				calls = append(calls, pay(f, terms.ID))
			case 2:
				calls = append(calls, pay(f, terms.ID), ship(f, terms.ID))
			}
		}
		setup(t, calls...)
		f.clock.Set(start.Add(8 * day))
		notDue := map[string]escrow.Escrow{}
		for i := 0; i < 5; i++ {
			terms := dealTerms(fmt.Sprintf("later-%d", i), false)
			setup(t, open(f, terms))
			notDue[terms.ID] = escrowNow(f, terms.ID)
		}
		seq := uint64(len(eventsAfter(f, 0)))
		f.clock.Set(start.Add(10 * day))
		expectFired(f, 300)
		expectFired(f, 0)

		events := eventsAfter(f, seq)
		if len(events) != 300 {
			t.Fatalf("%d events, want 300", len(events))
		}
		count := map[escrow.EventType]int{}
		for _, ev := range events {
			count[ev.Type]++
			if !ev.ByTimer || ev.Actor != "" || !ev.At.Equal(start.Add(10*day)) {
				t.Fatalf("timer event %+v", ev)
			}
		}
		if want := map[escrow.EventType]int{escrow.EscrowClosed: 100, escrow.EscrowRefunded: 100, escrow.EscrowReleased: 100}; !cmp.Equal(want, count) {
			t.Errorf("events by type %v, want %v", count, want)
		}
		for i := 0; i < 300; i++ {
			e := escrowNow(f, fmt.Sprintf("deal-%03d", i))
			want := []escrow.State{escrow.Closed, escrow.Refunded, escrow.Completed}[i%3]
			if e.State != want || !e.DueAt.IsZero() {
				t.Fatalf("%s is %s due %s, want %s", e.ID, e.State, e.DueAt, want)
			}
		}
		for id, before := range notDue {
			if diff := cmp.Diff(before, escrowNow(f, id)); diff != "" {
				t.Errorf("%s changed though not due:\n%s", id, diff)
			}
		}
		// 1.00 at 0.6% is 0.006, rounded to 1 fen a release.
		expectPurses(f, map[string]purse{partyBuyer: {90000, 0}, partySeller: {100000 + 100*99, 0}, escrow.FeeAccount: {100, 0}})
		f.check()
	})

	t.Run("RunTimers", func(t *testing.T) {
		f := begin(t)
		setup(t, open(f, dealTerms("deal", false)))
		ctx, cancel := context.WithCancel(f.ctx)
		defer cancel()
		var mu sync.Mutex
		var errs []error
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.l.RunTimers(ctx, 2*time.Millisecond, func(err error) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			})
		}()
		// Nothing is due at first; the loop must keep looking.
		time.Sleep(10 * time.Millisecond)
		if e := escrowNow(f, "deal"); e.State != escrow.AwaitingPayment {
			t.Fatalf("escrow %s before its deadline", e.State)
		}
		f.clock.Set(start.Add(3 * day))
		deadline := time.Now().Add(10 * time.Second)
		for escrowNow(f, "deal").State != escrow.Closed {
			if time.Now().After(deadline) {
				t.Fatal("RunTimers did not close the unpaid escrow")
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("RunTimers did not return after its context was cancelled")
		}
		mu.Lock()
		defer mu.Unlock()
		if len(errs) != 0 {
			t.Errorf("RunTimers reported %v", errs)
		}
		expectLastEvent(f, eventLine{Type: escrow.EscrowClosed, After: 3 * day, Escrow: "deal", ByTimer: true,
			State: escrow.Closed, Amount: "0", Fee: "0"})
		f.check()
	})
}
