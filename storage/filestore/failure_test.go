package filestore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// afterFailedSync is what a machine finds after a failed fsync of the log
// and a crash: a failed fsync may have dropped the dirty pages, so each
// segment holds only what was synced.
func afterFailedSync(fs *memFS) *memFS {
	img := fs.crashImage(newRand(3))
	for name, f := range img.names {
		if strings.Contains(name, segPrefix) {
			f.data = f.data[:len(fs.names[name].synced)]
		}
	}
	return img
}

// TestNoReadOfLostCommit fails the fsync of a commit. The event it
// appended must never be shown to a reader, and so its sequence number,
// given to another event after the store is reopened, names only that one.
func TestNoReadOfLostCommit(t *testing.T) {
	ctx := context.Background()
	fs := newMemFS(1)
	s := openT(t, crashDir, &Options{fs: fs, CompactRatio: -1})
	clock := escrow.NewManualClock(workloadStart)
	l, err := escrow.New(ctx, s, workloadOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]escrow.Event{} // every event a reader was shown
	read := func(l *escrow.Ledger) error {
		evs, err := l.Events(ctx, 0, 1<<20)
		for _, ev := range evs {
			seen[ev.Seq] = ev
		}
		return err
	}
	for i := range 40 {
		if err := workloadCall(ctx, l, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := read(l); err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	fs.fault = fs.ops + 2 // the write succeeds, its fsync fails
	fs.mu.Unlock()
	if _, err := l.Deposit(ctx, "u1", cny(700)); !errors.Is(err, ErrFailed) {
		t.Fatalf("Deposit whose fsync failed = %v, want ErrFailed", err)
	}
	if err := read(l); !errors.Is(err, ErrFailed) {
		t.Errorf("Events after the failed commit = %v, want ErrFailed", err)
	}
	s.Close()

	s = openT(t, crashDir, &Options{fs: afterFailedSync(fs), CompactRatio: -1})
	defer s.Close()
	l, err = escrow.New(ctx, s, workloadOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Withdraw(ctx, "u1", cny(1)); err != nil {
		t.Fatal(err)
	}
	evs, err := l.Events(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if old, ok := seen[ev.Seq]; ok {
			if diff := cmp.Diff(old, ev, moneyEqual); diff != "" {
				t.Errorf("event %d was shown before the failure as another event (-before +after):\n%s", ev.Seq, diff)
			}
		}
	}
}
