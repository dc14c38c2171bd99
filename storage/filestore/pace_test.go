package filestore

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// A fakeClock advances by tick at every look, and records the sleeps
// asked of it, calling onSleep, if set, after each.
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	tick    time.Duration
	slept   []time.Duration
	onSleep func()
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.tick)
	return c.t
}

func (c *fakeClock) sleep(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.slept = append(c.slept, d)
	f := c.onSleep
	c.mu.Unlock()
	if f != nil {
		f()
	}
}

func (c *fakeClock) sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// TestPacer checks that a pacer sleeps after each stretch of paceSlice,
// for paceShare of the time, not within a stretch, not once the log has
// run ahead, and not at all if nil.
func TestPacer(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0), tick: 100 * time.Microsecond}
	s := &Store{opts: Options{clock: c}, compactAt: 16 << 20}
	p := s.newPacer()
	for range paceCheck - 1 {
		p.step()
	}
	if n := len(c.sleeps()); n != 0 {
		t.Fatalf("slept %d times within a stretch of work", n)
	}
	p.step() // the clock has gone on by a tick: too short a stretch
	if n := len(c.sleeps()); n != 0 {
		t.Fatalf("slept %d times after %v of work", n, c.tick)
	}
	c.tick = 5 * time.Millisecond
	for range paceCheck {
		p.step()
	}
	slept := c.sleeps()
	if len(slept) != 1 {
		t.Fatalf("slept %d times after a stretch of work, want 1", len(slept))
	}
	// The stretch ran from the pacer's start to this look at the clock:
	// a tick of 100µs and one of 5ms.
	worked := 100*time.Microsecond + 5*time.Millisecond
	if want := time.Duration(float64(worked) * (1/paceShare - 1)); slept[0] != want {
		t.Errorf("slept %v after %v of work, want %v", slept[0], worked, want)
	}
	c.tick = time.Second // a write that took long
	p.pause()
	if slept := c.sleeps(); len(slept) != 2 || slept[1] != paceMaxSleep {
		t.Errorf("after a second of work slept %v, want %v", slept[1:], paceMaxSleep)
	}

	// The log since the last checkpoint has reached a quarter of what
	// starts the next: work goes on at full speed.
	s.activeBytes = s.compactAt / paceGiveWay
	for range 10 * paceCheck {
		p.step()
	}
	p.pause()
	if n := len(c.sleeps()); n != 2 {
		t.Errorf("slept %d times with the log run ahead", n-2)
	}
	s.activeBytes = 0
	s.closed.Store(true)
	p.pause()
	if n := len(c.sleeps()); n != 2 {
		t.Errorf("slept %d times while closing", n-2)
	}

	var none *pacer
	none.step()
	none.pause()
}

// TestPacingGivesWay checks that a checkpoint is paced while commits go
// on at an ordinary rate, and gives way to a flood of them, which writes
// a quarter of the log that starts a checkpoint before it ends: a paced
// checkpoint would fall further behind such a flood with every one. It
// also checks that the checkpoint at Close is not paced.
func TestPacingGivesWay(t *testing.T) {
	ctx := context.Background()
	const compactMin = 64 << 10 // pacing gives way at 16 KiB of log
	run := func(flood bool) int {
		c := &fakeClock{t: time.Unix(0, 0), tick: paceSlice} // every look ends a stretch
		s := openT(t, t.TempDir(), &Options{NoSync: true, CompactRatio: -1, CompactMinBytes: compactMin, clock: c})
		defer s.Close()
		commit := func(w int) {
			if err := s.Update(ctx, func(tx escrow.Tx) error { return benchTx(tx, w) }); err != nil {
				t.Error(err)
			}
		}
		for i := range 3000 {
			commit(i % 100)
		}
		if flood {
			// Each sleep lets a batch of commits in: at this rate the
			// log reaches 16 KiB after a few sleeps.
			c.onSleep = func() {
				if s.logRunsAhead() {
					t.Error("slept with the log run ahead")
				}
				for i := range 10 {
					commit(i)
				}
			}
		}
		if err := s.Compact(); err != nil {
			t.Fatal(err)
		}
		c.onSleep = nil
		return len(c.sleeps())
	}
	paced, flooded := run(false), run(true)
	// 3,000 commits make about 15,000 records and keys for the table, a
	// look at the clock every paceCheck of them.
	if paced < 100 {
		t.Errorf("a checkpoint of 3,000 commits slept %d times; want one after each stretch of work, 100 or more", paced)
	}
	if flooded == 0 || flooded > 20 {
		t.Errorf("a checkpoint beside a flood of commits slept %d times; want a few, until the log ran ahead", flooded)
	}

	// Close checkpoints without pacing.
	c := &fakeClock{t: time.Unix(0, 0), tick: paceSlice}
	s := openT(t, t.TempDir(), &Options{NoSync: true, clock: c})
	for i := 0; s.Stats().LogBytes <= closeCheckpointBytes; i++ {
		if err := s.Update(ctx, func(tx escrow.Tx) error { return benchTx(tx, i%100) }); err != nil {
			t.Fatal(err)
		}
	}
	before := len(c.sleeps())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(c.sleeps()) - before; n != 0 {
		t.Errorf("the checkpoint at Close slept %d times", n)
	}
}

// TestHugeCompactRatio: a ratio so large that the log it allows passes
// what an int64 counts never starts a compaction of a log as small as
// CompactMinBytes; the product overflowed and made that the threshold.
func TestHugeCompactRatio(t *testing.T) {
	for _, ratio := range []float64{1e300, math.Inf(1)} {
		s := openT(t, t.TempDir(), &Options{NoSync: true, CompactRatio: ratio, CompactMinBytes: 1 << 10})
		runWorkload(t, s, 20)
		if err := s.Compact(); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		at, snap := s.compactAt, s.snapBytes
		s.mu.Unlock()
		if snap == 0 || at < 1<<40 {
			t.Errorf("CompactRatio %g over a snapshot of %d bytes compacts a log of %d bytes", ratio, snap, at)
		}
		s.Close()
	}
}
