package pgstore

import (
	"context"
	"sync"
	"time"

	"github.com/escrowkit/escrow"
)

var _ escrow.EventNotifier = (*Store)(nil)

// notifyChannel is the channel on which publishing notifies, with the
// schema as the payload, when it has numbered events (pgstore_publish, in
// migration 0005, names it too). NOTIFY is transactional: PostgreSQL
// delivers it only on commit, and only once per transaction for the same
// channel and payload.
const notifyChannel = "pgstore_events"

// listener wakes the store's EventsCommitted waiters when a notification
// for its schema arrives. It runs on a connection of its own, from the
// first EventsCommitted call until Close, and reconnects after a failure;
// while it is down, waiters fall back to the ledger's polling.
type listener struct {
	mu      sync.Mutex
	ch      chan struct{} // closed, and replaced, by the next notification
	started bool
	stopped bool // by Close: no listener starts again
	cancel  context.CancelFunc
	done    chan struct{}
}

// EventsCommitted returns a channel that is closed once committed events
// of this store's schema have been numbered, by this store or any other
// process's, and so can be read, or once the store has closed; see
// escrow.EventNotifier.
func (s *Store) EventsCommitted() <-chan struct{} {
	l := &s.listen
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return closedChan // the store is closed: look, and find it so
	}
	if l.ch == nil {
		l.ch = make(chan struct{})
	}
	if !l.started {
		l.started = true
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel, l.done = cancel, make(chan struct{})
		go s.listenLoop(ctx)
	}
	return l.ch
}

// wake closes the channel the waiters hold.
func (l *listener) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch != nil {
		close(l.ch)
		l.ch = nil
	}
}

// closedChan is what a waiter of a closed store gets: a channel that is
// closed already.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// stop ends the listener, if it runs, and waits for it. It wakes the
// waiters, which look again and find the store closed, rather than at
// their next poll.
func (l *listener) stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.stopped = true
	if l.ch != nil {
		close(l.ch)
		l.ch = nil
	}
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (s *Store) listenLoop(ctx context.Context) {
	defer close(s.listen.done)
	for wait := 10 * time.Millisecond; ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
		if s.listenOnce(ctx) {
			wait = 10 * time.Millisecond // it ran a while: reconnect soon
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// listenOnce listens on a connection of its own until it fails or ctx
// ends, and reports whether it got as far as listening.
func (s *Store) listenOnce(ctx context.Context) bool {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false
	}
	// The connection leaves the pool for good: it stays in LISTEN mode.
	pc := conn.Hijack()
	defer pc.Close(context.WithoutCancel(ctx))
	var schema string
	if err := pc.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return false
	}
	if _, err := pc.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		return false
	}
	// A commit between the waiters' look and this LISTEN would be missed:
	// wake them once now, so that they look again.
	s.listen.wake()
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		if n.Payload == schema {
			s.listen.wake()
		}
	}
}
