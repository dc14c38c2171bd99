// Package notify is the wake-up behind the stores' EventsCommitted: a
// channel that a commit which appended an event closes, and a store's
// Close closes for good.
package notify

import "sync/atomic"

// A Notifier closes the channel its waiters hold when Wake is called, and
// for good once Close is. It takes no lock: a Wake with nobody waiting
// costs one atomic load. The zero Notifier is ready to use.
type Notifier struct {
	ch     atomic.Pointer[chan struct{}] // closed, and dropped, by the next Wake
	closed atomic.Bool
}

// closedChan is what a waiter of a closed Notifier gets: a channel that
// is closed already.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Wait returns a channel that is closed by the next Wake, or by Close.
func (n *Notifier) Wait() <-chan struct{} {
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
				n.Wake()
			}
			return c
		}
	}
}

// Wake closes the channel that waiters hold, if any.
func (n *Notifier) Wake() {
	if n.ch.Load() == nil {
		return
	}
	if p := n.ch.Swap(nil); p != nil {
		close(*p)
	}
}

// Close wakes the waiters, and every later Wait returns a closed channel.
func (n *Notifier) Close() {
	n.closed.Store(true)
	n.Wake()
}
