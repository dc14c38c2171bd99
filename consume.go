package escrow

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds the readers that follow the event stream as it grows:
// WaitEvents, which blocks until there is something new, and named
// consumers, whose place the ledger keeps in its own store.

// A Consumer is a named reader of the event stream whose place the store
// keeps: Seq is the last event it handled (0: none yet).
type Consumer struct {
	Name      string    `json:"name"`
	Seq       uint64    `json:"seq"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// commitSignal wakes the readers waiting for events when a transaction
// of this Ledger commits. A commit with no reader waiting costs one atomic
// load.
type commitSignal struct {
	waiting atomic.Int32
	mu      sync.Mutex
	ch      chan struct{} // closed, and dropped, by the next commit
}

// wait returns a channel that the next commit closes. The caller must
// call done when it stops waiting.
func (s *commitSignal) wait() <-chan struct{} {
	s.waiting.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *commitSignal) done() { s.waiting.Add(-1) }

// wake is called after every commit.
func (s *commitSignal) wake() {
	if s.waiting.Load() == 0 {
		return
	}
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
}

// WaitEvents is Events that waits for news: it returns at most limit
// events with Seq greater than after as soon as there is at least one,
// blocking until then or until ctx ends (then it returns ctx's error). As
// Events does, it refuses at once an after past the newest event, with
// ErrInvalidArgument, rather than wait for the events up to it and skip
// them, and it returns 1,000 events at most, whatever limit says. A
// commit through this Ledger wakes it at once; events committed through
// another Ledger on the same store are seen within Options.EventPoll, or
// at once if the store is an EventNotifier. If the store is closed it
// returns ErrClosed, at once if the store is an EventNotifier (memstore,
// filestore and pgstore are), else within Options.EventPoll.
func (l *Ledger) WaitEvents(ctx context.Context, after uint64, limit int) ([]Event, error) {
	start := l.begin()
	if limit <= 0 {
		return nil, l.finish(start, "wait_events", invalidArg("limit %d must be positive", limit))
	}
	limit = min(limit, maxEventsRead)
	events, err := l.waitEvents(ctx, after, limit)
	return events, l.finish(start, "wait_events", err)
}

func (l *Ledger) waitEvents(ctx context.Context, after uint64, limit int) ([]Event, error) {
	var poll *time.Timer
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	// Once after is found to be a place, it stays one: events are never
	// taken out of the stream.
	checked := false
	for {
		// Listen before looking, so that a commit between the look and
		// the wait still wakes this reader.
		woken := l.commits.wait()
		var elsewhere <-chan struct{} // nil, which never fires, if the store cannot tell
		if n, ok := l.host.(EventNotifier); ok {
			elsewhere = n.EventsCommitted()
		}
		var events []Event
		err := l.store.View(ctx, func(tx Tx) error {
			var err error
			events, err = readEvents(tx, after, limit, !checked)
			return err
		})
		if err != nil {
			l.commits.done()
			return nil, err
		}
		if len(events) > 0 {
			l.commits.done()
			return events, nil
		}
		checked = true
		if poll == nil {
			poll = time.NewTimer(l.poll)
		} else {
			poll.Reset(l.poll)
		}
		select {
		case <-woken:
		case <-elsewhere:
		case <-poll.C:
		case <-ctx.Done():
			l.commits.done()
			return nil, ctxErr(ctx.Err())
		}
		l.commits.done()
	}
}

// consumeBatch is how many events Consume reads, and hands to fn, between
// two stores of the consumer's place.
const consumeBatch = 100

// Consume hands fn every event after the place of the consumer named
// name, in order, and keeps that place in the store, so that a notifier
// resumes where it stopped without a file of its own. It runs until ctx
// ends, waiting for new events as WaitEvents does, and returns ctx's error
// then, handing fn no event after that, even in the middle of a batch; if
// fn returns an error, Consume stores the place of the last event
// fn handled and returns an error wrapping fn's, and the store's too if
// storing the place failed. A consumer seen for the first time starts from
// the first event (SetConsumer places it elsewhere). Consume is the one
// call besides ProcessDue that may change the store and still return an
// error: the places it stored before it returned are kept.
//
// Delivery is at least once: the place is stored after each batch of up
// to 100 events, so if the process stops, or the store refuses the write,
// the events of the batch after the stored place are handed to fn again
// by the next Consume. Let fn be idempotent (the event's Seq identifies
// it). Run one Consume per name at a time: two would each be handed every
// event. A stored place past the newest event (the store restored from a
// backup older than the place) fails at once with ErrInvalidArgument, as
// WaitEvents does; SetConsumer moves the consumer to a place that exists.
func (l *Ledger) Consume(ctx context.Context, name string, fn func(Event) error) error {
	start := l.begin()
	if err := checkConsumerName(name); err != nil {
		return l.finish(start, "consume", err)
	}
	if fn == nil {
		return l.finish(start, "consume", invalidArg("consume %q with no function", name))
	}
	c, err := l.consumer(ctx, name)
	if err != nil {
		return l.finish(start, "consume", err)
	}
	for {
		events, err := l.waitEvents(ctx, c.Seq, consumeBatch)
		if err != nil {
			return l.finish(start, "consume", err)
		}
		handled := c.Seq
		var fnErr error
		for _, ev := range events {
			if ctx.Err() != nil {
				break // the host is done: hand fn nothing more
			}
			if fnErr = fn(ev); fnErr != nil {
				break
			}
			handled = ev.Seq
		}
		if handled != c.Seq {
			// Kept even if ctx ended while fn ran (a host shutting down):
			// what fn handled is done, and handing it again costs more than
			// one short write.
			if c, err = l.storeConsumer(context.WithoutCancel(ctx), "consume", name, handled, nil); err != nil {
				if fnErr != nil {
					// fn's error is the news; the place not kept means
					// the events it handled come again.
					err = fmt.Errorf("escrow: consumer %q: event %d: %w (and its place was not stored: %w)", name, handled+1, fnErr, err)
				}
				return l.finish(start, "consume", err)
			}
		}
		if fnErr != nil {
			return l.finish(start, "consume", fmt.Errorf("escrow: consumer %q: event %d: %w", name, handled+1, fnErr))
		}
		if err := ctx.Err(); err != nil {
			return l.finish(start, "consume", ctxErr(err))
		}
	}
}

// consumer reads the consumer named name, a new one if there is none.
func (l *Ledger) consumer(ctx context.Context, name string) (Consumer, error) {
	c := Consumer{Name: name}
	err := l.store.View(ctx, func(tx Tx) error {
		stored, err := tx.Consumer(name)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		c = stored
		return err
	})
	return c, err
}

// Consumer returns the consumer named name: where it is in the event
// stream. It fails with ErrNotFound if no Consume or SetConsumer has
// stored it yet.
func (l *Ledger) Consumer(ctx context.Context, name string) (Consumer, error) {
	start := l.begin()
	if err := checkConsumerName(name); err != nil {
		return Consumer{}, l.finish(start, "consumer", err)
	}
	var c Consumer
	err := l.store.View(ctx, func(tx Tx) error {
		var err error
		c, err = tx.Consumer(name)
		if errors.Is(err, ErrNotFound) {
			return &NotFoundError{Kind: "consumer", ID: name}
		}
		return err
	})
	return c, l.finish(start, "consumer", err)
}

// SetConsumer places the consumer named name after event seq, creating it
// if needed: 0 replays every event, the newest event's Seq skips them all.
// It fails with ErrInvalidArgument if seq is past the newest event.
func (l *Ledger) SetConsumer(ctx context.Context, name string, seq uint64) (Consumer, error) {
	start := l.begin()
	if err := checkConsumerName(name); err != nil {
		return Consumer{}, l.finish(start, "set_consumer", err)
	}
	c, err := l.storeConsumer(ctx, "set_consumer", name, seq, func(tx Tx) error {
		return checkPlace(tx, seq, func() error {
			return invalidArg("consumer %q may not be placed after event %d, which does not exist", name, seq)
		})
	})
	return c, l.finish(start, "set_consumer", err)
}

// storeConsumer stores name's place after seq, once check, if not nil,
// allows it, in a transaction the Observer is told of as call's.
func (l *Ledger) storeConsumer(ctx context.Context, call, name string, seq uint64, check func(Tx) error) (Consumer, error) {
	c := Consumer{Name: name, Seq: seq, UpdatedAt: l.now()}
	err := l.update(ctx, call, func(tx Tx) error {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		return tx.PutConsumer(c)
	})
	if err != nil {
		return Consumer{}, err
	}
	return c, nil
}

// checkConsumerName allows the names an account ID may have, and the
// reserved '@' too, for a host's own system consumers.
func checkConsumerName(name string) error {
	if name == "" || len(name) > 128 {
		return invalidArg("consumer name %s must be 1 to 128 bytes", quoted(name))
	}
	return checkText("consumer name", name, 128, false)
}
