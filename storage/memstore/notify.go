package memstore

import (
	"sync/atomic"

	"github.com/escrowkit/escrow"
)

var _ escrow.EventNotifier = (*Store)(nil)

// notifier closes the channel its waiters hold when a commit appends an
// event, and for good when the store closes. It takes no lock: a commit
// with nobody waiting costs one atomic load.
type notifier struct {
	ch     atomic.Pointer[chan struct{}] // closed, and dropped, by the next wake
	closed atomic.Bool
}

// closedChan is what a waiter of a closed store gets: a channel that is
// closed already.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (n *notifier) wait() <-chan struct{} {
	for {
		if n.closed.Load() {
			return closedChan
		}
		if p := n.ch.Load(); p != nil {
			return *p
		}
		c := make(chan struct{})
		if n.ch.CompareAndSwap(nil, &c) {
			if n.closed.Load() {
				// Close may have woken the waiters before c was there.
				n.wake()
			}
			return c
		}
	}
}

func (n *notifier) wake() {
	if n.ch.Load() == nil {
		return
	}
	if p := n.ch.Swap(nil); p != nil {
		close(*p)
	}
}

func (n *notifier) close() {
	n.closed.Store(true)
	n.wake()
}

// EventsCommitted returns a channel that is closed once a transaction
// that appended an event has committed, or the store has closed; see
// escrow.EventNotifier. Ledgers in one process that share the store wake
// each other's WaitEvents and Consume with it, and Close ends them at
// once with escrow.ErrClosed.
func (s *Store) EventsCommitted() <-chan struct{} { return s.notify.wait() }
