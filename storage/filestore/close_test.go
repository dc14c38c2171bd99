package filestore

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// holdFS is the operating system's file system, holding the first Create
// of a cold table until release closes.
type holdFS struct {
	osFS
	held, release chan struct{}
	once          sync.Once
}

func (h *holdFS) Create(name string) (file, error) {
	if strings.HasPrefix(filepath.Base(name), tablePrefix) {
		h.once.Do(func() { close(h.held); <-h.release })
	}
	return h.osFS.Create(name)
}

// TestCloseTwiceWaits closes a store from two goroutines while the first
// Close is still checkpointing: the second returns only once the store is
// closed, so that the directory is free to open whichever Close returns
// first.
func TestCloseTwiceWaits(t *testing.T) {
	dir := t.TempDir()
	h := &holdFS{held: make(chan struct{}), release: make(chan struct{})}
	s := openT(t, dir, &Options{NoSync: true, CompactMinBytes: 1 << 30, fs: h})
	fillPastCloseCheckpoint(t, s)
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { first <- s.Close() }()
	<-h.held // the first Close is checkpointing, holding the directory
	go func() { second <- s.Close() }()
	select {
	case err := <-second:
		s2, oerr := Open(dir, nil)
		t.Errorf("a second Close returned %v while the first was still closing; Open then: %v", err, oerr)
		if oerr == nil {
			s2.Close()
		}
		close(h.release)
		<-first
		return
	case <-time.After(50 * time.Millisecond):
	}
	close(h.release)
	if err := <-first; err != nil {
		t.Errorf("first Close: %v", err)
	}
	if err := <-second; err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a Close after both: %v", err)
	}
	s2 := openT(t, dir, nil)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

// fillPastCloseCheckpoint commits, from 8 goroutines, enough to s's log
// that its Close checkpoints.
func fillPastCloseCheckpoint(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if err := s.Update(ctx, func(tx escrow.Tx) error { return benchTx(tx, w) }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s.Stats().LogBytes < closeCheckpointBytes {
		t.Fatalf("%d bytes of log: Close would not checkpoint", s.Stats().LogBytes)
	}
}
