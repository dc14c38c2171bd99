package storagetest

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// testOutbox checks, on the adapter, what readers of the event outbox are
// promised beyond the Tx methods: the places they may read from.
func testOutbox(t *testing.T, h Harness) {
	t.Run("CursorPastNewest", func(t *testing.T) { testCursorPastNewest(t, h) })
}

// testCursorPastNewest: a cursor past the newest event, such as one a
// host kept while its store was restored from an older backup, is refused
// by Events and WaitEvents with ErrInvalidArgument, at once and changing
// nothing, as SetConsumer refuses such a place: read from, it would skip
// the events numbered up to it when they come. The newest event's Seq is
// a place to read from (nothing new yet), and so is 0 on a store with no
// event.
func testCursorPastNewest(t *testing.T, h Harness) {
	f := newFixtureWith(t, h, &escrow.Options{EventPoll: time.Hour})
	if evs, err := f.l.Events(f.ctx, 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("Events(0) of a store with no event = %v, %v; want none", evs, err)
	}
	past := func(after uint64) {
		t.Helper()
		if evs, err := f.l.Events(f.ctx, after, 10); !errors.Is(err, escrow.ErrInvalidArgument) || evs != nil {
			t.Errorf("Events(%d) = %v, %v; want ErrInvalidArgument", after, evs, err)
		}
		ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
		defer cancel()
		if evs, err := f.l.WaitEvents(ctx, after, 10); !errors.Is(err, escrow.ErrInvalidArgument) || evs != nil {
			t.Errorf("WaitEvents(%d) = %v, %v; want ErrInvalidArgument at once", after, evs, err)
		}
	}
	past(1)

	f.accounts(partyBuyer)
	evs := eventsAfter(f, 0)
	newest := evs[len(evs)-1].Seq
	before := f.dump()
	for _, after := range []uint64{newest + 1, newest + 100, math.MaxInt64, math.MaxUint64} {
		past(after)
	}
	f.unchanged(before, "reads past the newest event")

	if evs, err := f.l.Events(f.ctx, newest, 10); err != nil || len(evs) != 0 {
		t.Errorf("Events(%d), the newest = %v, %v; want none", newest, evs, err)
	}
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Millisecond)
	defer cancel()
	if evs, err := f.l.WaitEvents(ctx, newest, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitEvents(%d), the newest = %v, %v; want a wait until ctx ends", newest, evs, err)
	}
	// The next event makes the next place one to read from.
	if _, err := f.l.Deposit(f.ctx, partyBuyer, cny("1.00")); err != nil {
		t.Fatalf("Deposit: %v", err)
	}
	if evs, err := f.l.Events(f.ctx, newest, 10); err != nil || len(evs) != 1 || evs[0].Seq != newest+1 {
		t.Errorf("Events(%d) after a deposit = %v, %v; want the deposit", newest, evs, err)
	}
	if evs, err := f.l.Events(f.ctx, newest+1, 10); err != nil || len(evs) != 0 {
		t.Errorf("Events(%d), the new newest = %v, %v; want none", newest+1, evs, err)
	}
}
