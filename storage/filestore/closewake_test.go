package filestore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// TestCloseWakesWaitersFirst closes a store whose Close checkpoints, and
// holds the checkpoint: a Ledger's WaitEvents ends with ErrClosed at once,
// as the store's EventsCommitted promises, not once the checkpoint is
// written.
func TestCloseWakesWaitersFirst(t *testing.T) {
	ctx := context.Background()
	h := &holdFS{held: make(chan struct{}), release: make(chan struct{})}
	s := openT(t, t.TempDir(), &Options{NoSync: true, CompactMinBytes: 1 << 30, fs: h})
	l, err := escrow.New(ctx, s, &escrow.Options{EventPoll: time.Hour}) // no poll to end the wait
	if err != nil {
		t.Fatal(err)
	}
	fillPastCloseCheckpoint(t, s)
	var last uint64
	if err := s.View(ctx, func(tx escrow.Tx) error {
		evs, err := tx.Events(7990, 100)
		if len(evs) > 0 {
			last = evs[len(evs)-1].Seq
		}
		return err
	}); err != nil || last == 0 {
		t.Fatalf("the last event: %d, %v", last, err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := l.WaitEvents(ctx, last, 10)
		waited <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it wait
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	<-h.held // Close is checkpointing
	select {
	case err = <-waited:
	case <-time.After(2 * time.Second):
		t.Errorf("WaitEvents still waits while Close checkpoints")
		close(h.release)
		err = <-waited
		h.release = nil
	}
	if !errors.Is(err, escrow.ErrClosed) {
		t.Errorf("WaitEvents across Close = %v, want ErrClosed", err)
	}
	if h.release != nil {
		close(h.release)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}
