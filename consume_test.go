package escrow_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/google/go-cmp/cmp"
)

// quiet is a world whose readers never poll: anything that wakes them
// comes from a commit.
func quiet(t *testing.T) *world {
	return newFixtureWith(t, &escrow.Options{EventPoll: time.Hour})
}

// lastSeq returns the Seq of the newest event.
func lastSeq(w *world) uint64 {
	w.t.Helper()
	all := pagedEvents(w, 100)
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Seq
}

// within runs fn and fails the test if it has not returned in 10 seconds.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// TestWaitEventsWakesOnCommit: a reader waiting for events after the
// newest is woken by the next commit, and gets its event.
func TestWaitEventsWakesOnCommit(t *testing.T) {
	w := quiet(t)
	w.funded("alice")
	after := lastSeq(w)
	got := make(chan []escrow.Event, 1)
	errc := make(chan error, 1)
	go func() {
		evs, err := w.l.WaitEvents(w.ctx, after, 10)
		got <- evs
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it wait; the test holds either way
	_, err := w.l.Deposit(w.ctx, "alice", cny("5.00"))
	w.must("Deposit", err)
	within(t, "WaitEvents", func() {
		evs := <-got
		if err := <-errc; err != nil {
			t.Errorf("WaitEvents: %v", err)
		}
		if len(evs) != 1 || evs[0].Type != escrow.Deposited || evs[0].Seq != after+1 {
			t.Errorf("WaitEvents = %+v, want the deposit, event %d", evs, after+1)
		}
	})
}

// TestWaitEventsAtOnce: with events after the cursor, WaitEvents returns
// them without waiting, as Events would.
func TestWaitEventsAtOnce(t *testing.T) {
	w := quiet(t)
	w.funded("alice", "bob")
	want, err := w.l.Events(w.ctx, 1, 2)
	w.must("Events", err)
	within(t, "WaitEvents", func() {
		got, err := w.l.WaitEvents(w.ctx, 1, 2)
		w.must("WaitEvents", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("WaitEvents (-Events +WaitEvents):\n%s", diff)
		}
	})
}

// TestWaitEventsEnds: WaitEvents returns the context's error when it ends,
// and refuses a limit that is not positive.
func TestWaitEventsEnds(t *testing.T) {
	w := quiet(t)
	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Millisecond)
	defer cancel()
	within(t, "WaitEvents", func() {
		evs, err := w.l.WaitEvents(ctx, lastSeq(w), 10)
		if !errors.Is(err, context.DeadlineExceeded) || evs != nil {
			t.Errorf("WaitEvents past its deadline = %v, %v; want nil, DeadlineExceeded", evs, err)
		}
	})
	if _, err := w.l.WaitEvents(w.ctx, 0, 0); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("WaitEvents with limit 0: %v, want ErrInvalidArgument", err)
	}
}

// notifierless hides a store's EventNotifier: only its Storage methods
// are left.
type notifierless struct{ escrow.Storage }

// TestWaitEventsPollsForOtherLedgers: an event committed through another
// Ledger on the same store reaches a waiting reader within EventPoll, if
// the store cannot tell of it, and at once if it can.
func TestWaitEventsPollsForOtherLedgers(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	for _, tc := range []struct {
		name   string
		reader escrow.Storage
		poll   time.Duration
	}{
		{"polled", notifierless{store}, 10 * time.Millisecond},
		{"told", store, time.Hour},
	} {
		reader := newWorld(t, tc.reader, escrow.Options{EventPoll: tc.poll})
		writer := newWorld(t, store, escrow.Options{EventPoll: time.Hour})
		after := lastSeq(reader)
		id := "zoe-" + tc.name
		go func() {
			time.Sleep(30 * time.Millisecond)
			_, err := writer.l.OpenAccount(writer.ctx, id)
			if err != nil {
				t.Errorf("OpenAccount: %v", err)
			}
		}()
		within(t, "WaitEvents", func() {
			evs, err := reader.l.WaitEvents(reader.ctx, after, 10)
			if err != nil || len(evs) != 1 || evs[0].Account != id {
				t.Errorf("%s: WaitEvents = %+v, %v; want %s's account", tc.name, evs, err, id)
			}
		})
	}
	if _, err := escrow.New(context.Background(), store, &escrow.Options{EventPoll: -time.Second}); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("New with a negative EventPoll: %v, want ErrInvalidArgument", err)
	}
}

// consumeUntil runs Consume for name, collecting the Seq of every event
// handed to fn, until fn has seen event last; it returns what fn saw.
func consumeUntil(w *world, name string, last uint64) []uint64 {
	w.t.Helper()
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	var seen []uint64
	var err error
	within(w.t, "Consume", func() {
		err = w.l.Consume(ctx, name, func(ev escrow.Event) error {
			seen = append(seen, ev.Seq)
			if ev.Seq >= last {
				cancel()
			}
			return nil
		})
	})
	if !errors.Is(err, context.Canceled) {
		w.t.Fatalf("Consume ended with %v, want context.Canceled", err)
	}
	return seen
}

func seqs(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestConsumeResumes: a consumer is handed every event once, in order,
// across runs of Consume: its place is kept in the store.
func TestConsumeResumes(t *testing.T) {
	w := quiet(t)
	w.funded("alice", "bob")
	first := lastSeq(w)
	if diff := cmp.Diff(seqs(1, first), consumeUntil(w, "mailer", first)); diff != "" {
		t.Errorf("first run (-want +got):\n%s", diff)
	}
	c, err := w.l.Consumer(w.ctx, "mailer")
	w.must("Consumer", err)
	if c.Seq != first || !c.UpdatedAt.Equal(w.clock.Now()) {
		t.Errorf("Consumer(mailer) = %+v, want Seq %d at %v", c, first, w.clock.Now())
	}
	w.paid("alice", "bob")
	second := lastSeq(w)
	if diff := cmp.Diff(seqs(first+1, second), consumeUntil(w, "mailer", second)); diff != "" {
		t.Errorf("second run (-want +got):\n%s", diff)
	}
	// Another name has a place of its own, from the start.
	if diff := cmp.Diff(seqs(1, second), consumeUntil(w, "audit", second)); diff != "" {
		t.Errorf("another consumer (-want +got):\n%s", diff)
	}
	// More than a batch: the place moves batch by batch.
	for range 120 {
		_, err := w.l.Deposit(w.ctx, "alice", cny("0.01"))
		w.must("Deposit", err)
	}
	third := lastSeq(w)
	if diff := cmp.Diff(seqs(second+1, third), consumeUntil(w, "mailer", third)); diff != "" {
		t.Errorf("third run (-want +got):\n%s", diff)
	}
	w.check()
}

// TestConsumeWaits: a running consumer is handed events committed after
// it caught up, without polling.
func TestConsumeWaits(t *testing.T) {
	w := quiet(t)
	w.funded("alice")
	last := lastSeq(w)
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	seen := make(chan escrow.Event, 10)
	done := make(chan error, 1)
	go func() {
		done <- w.l.Consume(ctx, "mailer", func(ev escrow.Event) error { seen <- ev; return nil })
	}()
	for range last {
		<-seen
	}
	_, err := w.l.Withdraw(w.ctx, "alice", cny("1.00"))
	w.must("Withdraw", err)
	within(t, "the consumer", func() {
		if ev := <-seen; ev.Type != escrow.Withdrawn || ev.Seq != last+1 {
			t.Errorf("the consumer was handed %+v, want the withdrawal", ev)
		}
	})
	cancel()
	within(t, "Consume", func() {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Consume ended with %v, want context.Canceled", err)
		}
	})
}

// TestConsumeFailure: when fn fails, Consume keeps the place of the last
// event fn handled and returns fn's error; the next Consume hands the
// failed event again.
func TestConsumeFailure(t *testing.T) {
	w := quiet(t)
	w.funded("alice", "bob") // events 1 to 4
	boom := errors.New("mail server down")
	var seen []uint64
	err := w.l.Consume(w.ctx, "mailer", func(ev escrow.Event) error {
		if ev.Seq == 3 {
			return boom
		}
		seen = append(seen, ev.Seq)
		return nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `consumer "mailer": event 3`) {
		t.Errorf("Consume = %v, want the error of fn on event 3", err)
	}
	c, err := w.l.Consumer(w.ctx, "mailer")
	w.must("Consumer", err)
	if c.Seq != 2 || cmp.Diff([]uint64{1, 2}, seen) != "" {
		t.Errorf("after a failure: place %d, handled %v; want 2 and [1 2]", c.Seq, seen)
	}
	if diff := cmp.Diff([]uint64{3, 4}, consumeUntil(w, "mailer", 4)); diff != "" {
		t.Errorf("after the failure (-want +got):\n%s", diff)
	}
	// A failure on the first event stores nothing.
	err = w.l.Consume(w.ctx, "fresh", func(escrow.Event) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Consume = %v, want %v", err, boom)
	}
	if _, err := w.l.Consumer(w.ctx, "fresh"); !errors.Is(err, escrow.ErrNotFound) {
		t.Errorf("Consumer(fresh) after failing at once: %v, want ErrNotFound", err)
	}
}

// TestConsumeFailureUnstored: when fn fails and its place cannot be
// stored (the store closed as the host shuts down), Consume returns fn's
// error and the store's, not the store's alone.
func TestConsumeFailureUnstored(t *testing.T) {
	store := memstore.New()
	l, err := escrow.New(t.Context(), store, &escrow.Options{EventPoll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alice", "bob"} {
		if _, err := l.OpenAccount(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("mail server down")
	err = l.Consume(t.Context(), "mailer", func(ev escrow.Event) error {
		if ev.Seq == 2 {
			store.Close()
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || !errors.Is(err, escrow.ErrClosed) {
		t.Errorf("Consume = %v, want fn's error and ErrClosed", err)
	}
}

// TestSetConsumer: SetConsumer moves a consumer back to replay events or
// forward to skip them, and refuses a place past the newest event, a bad
// name, and Consume without a function, changing nothing.
func TestSetConsumer(t *testing.T) {
	w := quiet(t)
	w.funded("alice", "bob")
	last := lastSeq(w)
	c, err := w.l.SetConsumer(w.ctx, "mailer", last)
	w.must("SetConsumer", err)
	if c.Seq != last || c.Name != "mailer" {
		t.Errorf("SetConsumer = %+v, want mailer at %d", c, last)
	}
	_, err = w.l.Deposit(w.ctx, "bob", cny("1.00"))
	w.must("Deposit", err)
	if diff := cmp.Diff([]uint64{last + 1}, consumeUntil(w, "mailer", last+1)); diff != "" {
		t.Errorf("after skipping (-want +got):\n%s", diff)
	}
	_, err = w.l.SetConsumer(w.ctx, "mailer", 0)
	w.must("SetConsumer 0", err)
	if diff := cmp.Diff(seqs(1, last+1), consumeUntil(w, "mailer", last+1)); diff != "" {
		t.Errorf("after rewinding (-want +got):\n%s", diff)
	}

	before := w.dump()
	for _, bad := range []struct {
		name string
		seq  uint64
	}{{"mailer", last + 2}, {"mailer", 1 << 62}, {"", 0}, {"mail\x00er", 1}, {strings.Repeat("m", 129), 1}} {
		if c, err := w.l.SetConsumer(w.ctx, bad.name, bad.seq); !errors.Is(err, escrow.ErrInvalidArgument) || c != (escrow.Consumer{}) {
			t.Errorf("SetConsumer(%q, %d) = %+v, %v; want ErrInvalidArgument", bad.name, bad.seq, c, err)
		}
	}
	if err := w.l.Consume(w.ctx, "mailer", nil); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("Consume with no function: %v, want ErrInvalidArgument", err)
	}
	if err := w.l.Consume(w.ctx, "", func(escrow.Event) error { return nil }); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("Consume with no name: %v, want ErrInvalidArgument", err)
	}
	if _, err := w.l.Consumer(w.ctx, "nobody"); !errors.Is(err, escrow.ErrNotFound) {
		t.Errorf("Consumer(nobody): %v, want ErrNotFound", err)
	}
	w.unchanged(before, "refused consumer calls")
}

// TestEventsOfOneCall: what the event types' documentation says a call
// appends. A call that changes the ledger appends the event of its
// change; PayAll one for each escrow it pays; a call that finds a
// deadline passed appends the timer's event first, and its own after; a
// replay, an Open of the same terms again and a refused call append none.
func TestEventsOfOneCall(t *testing.T) {
	w := newWorld(t, nil, escrow.Options{})
	w.funded("alice", "bob")
	last := func() uint64 {
		t.Helper()
		evs := eventsAfter(w, 0)
		return evs[len(evs)-1].Seq
	}
	type line struct {
		Type    escrow.EventType
		Escrow  string
		ByTimer bool
	}
	appended := func(what string, after uint64, want ...line) {
		t.Helper()
		var got []line
		for _, ev := range eventsAfter(w, after) {
			got = append(got, line{ev.Type, ev.Escrow, ev.ByTimer})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s appended (-want +got):\n%s", what, diff)
		}
	}

	terms := func(id string) escrow.Terms {
		return escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Price: cny("10.00")}
	}
	for _, id := range []string{"c1", "c2"} {
		_, err := w.l.Open(w.ctx, terms(id))
		w.must("Open "+id, err)
	}
	seq := last()
	_, err := w.l.Open(w.ctx, terms("c1"))
	w.must("Open c1 again", err)
	appended("Open of the same terms again", seq)
	_, err = w.l.PayAll(w.ctx, "alice", []string{"c1", "c2"}, escrow.IdempotencyKey("cart"))
	w.must("PayAll", err)
	appended("PayAll", seq, line{escrow.EscrowPaid, "c1", false}, line{escrow.EscrowPaid, "c2", false})
	seq = last()
	_, err = w.l.PayAll(w.ctx, "alice", []string{"c1", "c2"}, escrow.IdempotencyKey("cart"))
	w.must("PayAll replayed", err)
	appended("a replayed PayAll", seq)
	if _, err := w.l.Confirm(w.ctx, "c1", "alice"); !errors.Is(err, escrow.ErrInvalidTransition) {
		t.Fatalf("Confirm before shipping: %v, want ErrInvalidTransition", err)
	}
	appended("a refused Confirm", seq)

	// A return the buyer never ships back lapses; the buyer's Confirm
	// after that lapses it first, then confirms.
	_, err = w.l.Ship(w.ctx, "c1", "bob", "SF1")
	w.must("Ship", err)
	_, err = w.l.RequestReturn(w.ctx, "c1", "alice", cny("10.00"), "too small")
	w.must("RequestReturn", err)
	_, err = w.l.AgreeReturn(w.ctx, "c1", "bob", "1 Quay Street")
	w.must("AgreeReturn", err)
	w.clock.Advance(escrow.DefaultTimers().ReturnShipWithin + time.Minute)
	seq = last()
	_, err = w.l.Confirm(w.ctx, "c1", "alice")
	w.must("Confirm after the return lapsed", err)
	appended("a Confirm after the return lapsed", seq,
		line{escrow.EscrowReturnCancelled, "c1", true}, line{escrow.EscrowReleased, "c1", false})
}

// TestWaitersEndOnClose: closing the store ends a WaitEvents and a Consume
// that wait for news with ErrClosed at once, not at their next poll.
func TestWaitersEndOnClose(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	w := newWorld(t, store, escrow.Options{EventPoll: time.Hour})
	w.funded("alice")
	after := lastSeq(w)
	errc := make(chan error, 2)
	go func() {
		_, err := w.l.WaitEvents(w.ctx, after, 10)
		errc <- err
	}()
	go func() {
		errc <- w.l.Consume(w.ctx, "mailer", func(ev escrow.Event) error { return nil })
	}()
	time.Sleep(50 * time.Millisecond) // let them wait; the test holds either way
	store.Close()
	for _, what := range []string{"a waiter", "the other waiter"} {
		select {
		case err := <-errc:
			if !errors.Is(err, escrow.ErrClosed) {
				t.Errorf("%s ended with %v, want ErrClosed", what, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still waits 5s after the store closed", what)
		}
	}
}

// TestConsumeStopsWhenCtxEnds: once ctx ends, Consume hands fn no more
// events, even in the middle of a batch; it keeps the place of the last
// one fn handled and returns ctx's error.
func TestConsumeStopsWhenCtxEnds(t *testing.T) {
	w := quiet(t)
	w.funded("alice", "bob") // events 1 to 4
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	var seen []uint64
	var err error
	within(t, "Consume", func() {
		err = w.l.Consume(ctx, "mailer", func(ev escrow.Event) error {
			seen = append(seen, ev.Seq)
			if ev.Seq == 2 {
				cancel() // the host shuts down
			}
			return nil
		})
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Consume ended with %v, want context.Canceled", err)
	}
	c, cerr := w.l.Consumer(w.ctx, "mailer")
	w.must("Consumer", cerr)
	if c.Seq != 2 || cmp.Diff([]uint64{1, 2}, seen) != "" {
		t.Errorf("after ctx ended: place %d, handled %v; want 2 and [1 2]", c.Seq, seen)
	}
	if diff := cmp.Diff([]uint64{3, 4}, consumeUntil(w, "mailer", 4)); diff != "" {
		t.Errorf("the next run (-want +got):\n%s", diff)
	}
}

// TestEventsPageCap: one read of the event stream returns at most 1,000
// events, however many it is asked for, as the HTTP API's does, so that a
// caller asking for all of a long stream at once does not hold it all in
// memory; the rest are read on from the last Seq.
func TestEventsPageCap(t *testing.T) {
	w := quiet(t)
	w.funded("alice")
	for range 1000 {
		_, err := w.l.Deposit(w.ctx, "alice", cny("0.01"))
		w.must("Deposit", err)
	}
	newest := lastSeq(w)
	evs, err := w.l.Events(w.ctx, 0, math.MaxInt)
	w.must("Events", err)
	if len(evs) != 1000 || evs[999].Seq != 1000 {
		t.Errorf("Events(0, MaxInt) returned %d events, want the first 1000", len(evs))
	}
	evs, err = w.l.WaitEvents(w.ctx, 0, 1<<40)
	w.must("WaitEvents", err)
	if len(evs) != 1000 {
		t.Errorf("WaitEvents(0, 1<<40) returned %d events, want 1000", len(evs))
	}
	evs, err = w.l.Events(w.ctx, 1000, math.MaxInt)
	w.must("Events", err)
	if len(evs) != int(newest-1000) {
		t.Errorf("Events(1000, MaxInt) returned %d events, want the %d left", len(evs), newest-1000)
	}
}
