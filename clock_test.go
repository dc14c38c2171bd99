package escrow_test

import (
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

func TestManualClock(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := escrow.NewManualClock(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now() = %v, want %v", got, t0)
	}
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("the clock moved by itself: %v", got)
	}
	if got, want := c.Advance(90*time.Minute), t0.Add(90*time.Minute); !got.Equal(want) || !c.Now().Equal(want) {
		t.Fatalf("Advance(90m) = %v, Now() = %v; want %v", got, c.Now(), want)
	}
	if got, want := c.Advance(-30*time.Minute), t0.Add(time.Hour); !got.Equal(want) || !c.Now().Equal(want) {
		t.Fatalf("Advance(-30m) = %v, Now() = %v; want %v", got, c.Now(), want)
	}
	t1 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) // backwards is allowed
	c.Set(t1)
	if got := c.Now(); !got.Equal(t1) {
		t.Fatalf("after Set, Now() = %v, want %v", got, t1)
	}
}

// TestManualClockConcurrent advances one clock from many goroutines; run
// with -race it also proves the clock is safe for concurrent use.
func TestManualClockConcurrent(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := escrow.NewManualClock(t0)
	const workers, steps = 8, 100
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range steps {
				c.Advance(time.Second)
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	if got, want := c.Now(), t0.Add(workers*steps*time.Second); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}

func TestSystemClock(t *testing.T) {
	before := time.Now()
	got := escrow.SystemClock{}.Now()
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Fatalf("SystemClock.Now() = %v, not between %v and %v", got, before, after)
	}
}
