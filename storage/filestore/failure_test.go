package filestore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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

// TestRotateFailure fails the creation of the segment a compaction
// rotates to. Compact reports it, naming what failed, and so does Stats;
// commits go on to the current segment, the next compaction succeeds, and
// a reopened store holds every commit.
func TestRotateFailure(t *testing.T) {
	ctx := context.Background()
	fs := newMemFS(1)
	s := openT(t, crashDir, &Options{fs: fs, CompactRatio: -1})
	clock := escrow.NewManualClock(workloadStart)
	l, err := escrow.New(ctx, s, workloadOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	calls := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			clock.Advance(time.Minute)
			if err := workloadCall(ctx, l, i); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	}
	calls(0, 30)
	fs.mu.Lock()
	fs.failCreate, fs.failCreateOf = true, segPrefix
	fs.mu.Unlock()
	err = s.Compact()
	want := "filestore: compact: cannot start log segment " + segName(s.Stats().Seq+1) +
		", so records go on to " + segName(1) + ": " + errInjected.Error()
	if err == nil || errors.Is(err, ErrFailed) || err.Error() != want {
		t.Fatalf("Compact = %v, want %q", err, want)
	}
	if got := s.Stats().CompactError; !errors.Is(got, errInjected) || got.Error() != want {
		t.Errorf("Stats().CompactError = %v, want %q", got, want)
	}
	calls(30, 60)
	fs.mu.Lock()
	fs.failCreate = false
	fs.mu.Unlock()
	if err := s.Compact(); err != nil {
		t.Fatalf("Compact once the segment can be created: %v", err)
	}
	if st := s.Stats(); st.CompactError != nil || st.SnapshotSeq != st.Seq {
		t.Errorf("Stats after a compaction = %+v, want no error and a snapshot of every record", st)
	}
	calls(60, 70)
	before := dumpT(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, crashDir, &Options{fs: fs.crashImage(newRand(1))})
	defer s.Close()
	if diff := cmp.Diff(string(before), string(dumpT(t, s))); diff != "" {
		t.Errorf("reopened store (-before +after):\n%s", diff)
	}
}
