package filestore

import (
	"testing"
	"time"
)

// TestPacer checks that a pacer sleeps after each slice of work, for the
// time the slice took times its factor, and not between slices.
func TestPacer(t *testing.T) {
	var slept []time.Duration
	p := newPacer()
	p.sleep = func(d time.Duration) { slept = append(slept, d) }
	for range 2 {
		start := time.Now()
		p.start = start
		for range paceEvery - 1 {
			p.step()
		}
		if len(slept) != 0 && len(slept) != 1 {
			t.Fatalf("slept %d times within a slice", len(slept))
		}
		before := len(slept)
		time.Sleep(5 * time.Millisecond) // the slice's work
		worked := time.Since(start)
		p.step()
		if len(slept) != before+1 {
			t.Fatalf("slept %d times after a slice, want once", len(slept)-before)
		}
		// At 0.3 of a core, the sleep is 7/3 of the work.
		if got, want := slept[before], time.Duration(float64(worked)*(1/paceShare-1)); got < want || got > want+50*time.Millisecond {
			t.Errorf("slept %v after %v of work; want about %v", got, worked, want)
		}
	}
}
