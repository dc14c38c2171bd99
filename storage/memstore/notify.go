package memstore

import "github.com/escrowkit/escrow"

var _ escrow.EventNotifier = (*Store)(nil)

// EventsCommitted returns a channel that is closed once a transaction
// that appended an event has committed, or the store has closed; see
// escrow.EventNotifier. Ledgers in one process that share the store wake
// each other's WaitEvents and Consume with it, and Close ends them at
// once with escrow.ErrClosed.
func (s *Store) EventsCommitted() <-chan struct{} { return s.notify.Wait() }
