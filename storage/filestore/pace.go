package filestore

import "time"

// Pacing. A checkpoint's work (building its table, encoding its snapshot,
// writing both) runs beside commits and competes with them for the
// processor and the disk. On a small machine the committers
// alone can keep every core busy, so whatever a checkpoint takes at full
// speed, they lose: measured with BenchmarkCheckpoint on 2 cores, their
// p99.9 latency during checkpoints was several times the figure without.
// Paced, the work takes a share of the time it runs in (paceShare), and
// sleeps for the rest, so commits keep most of the machine while it goes
// on, at the cost of a checkpoint that takes longer.
//
// A paced checkpoint must still keep up with the log, or the log and the
// tables pile up behind it and with them memory, disk and the time Open
// replays: under a flood of writes a checkpoint held to a share of a core
// falls further behind with every one. So pacing gives way: once the log
// written since the running checkpoint began reaches a quarter of the
// size that starts the next, the work goes on at full speed. A checkpoint
// at Close is not paced at all.
//
// Merges of tables are not paced. Paced as well, they run three times as
// long, and Close abandons one still running; in one of four growth
// checks of bench/peers so measured, the store took 903 bytes a trade,
// 195 ms to open and 39 MiB where it took 847 bytes, 60-130 ms and 22 MiB
// with merges at full speed.

const (
	// paceShare is the share of its time paced work spends working.
	paceShare = 0.3
	// paceSlice is how long a stretch of work goes on before a sleep.
	paceSlice = time.Millisecond
	// paceMaxSleep bounds one sleep, after a stretch that a slow write
	// drew out.
	paceMaxSleep = 50 * time.Millisecond
	// paceCheck is how many steps pass between looks at the clock.
	paceCheck = 64
	// paceGiveWay is the fraction of the size that starts a checkpoint
	// that the log since the last may reach before pacing stops.
	paceGiveWay = 4 // a quarter
)

// A pacer paces one checkpoint. A nil pacer does not pace.
type pacer struct {
	s     *Store
	start time.Time // the current stretch of work began
	n     int       // steps
	slept time.Duration
}

// newPacer returns a pacer for work beside commits to s.
func (s *Store) newPacer() *pacer {
	return &pacer{s: s, start: s.paceNow()}
}

// step counts a small unit of work, such as a record added to a table.
func (p *pacer) step() {
	if p == nil {
		return
	}
	if p.n++; p.n%paceCheck == 0 {
		p.pause()
	}
}

// pause ends the current stretch of work if it has lasted paceSlice, and
// sleeps for its share unless the log has run ahead. It is called after
// a large unit of work, such as a chunk written, and by step.
func (p *pacer) pause() {
	if p == nil {
		return
	}
	now := p.s.paceNow()
	worked := now.Sub(p.start)
	if worked < paceSlice {
		return
	}
	if !p.s.logRunsAhead() {
		d := min(time.Duration(float64(worked)*(1/paceShare-1)), paceMaxSleep)
		p.s.paceSleep(d)
		p.slept += d
		now = p.s.paceNow()
	}
	p.start = now
}

// logRunsAhead reports whether the log written since the last checkpoint
// has reached the share of the size that starts a checkpoint past which
// pacing gives way, or the store is closing.
func (s *Store) logRunsAhead() bool {
	if s.closed.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.activeBytes >= s.compactAt/paceGiveWay
}

// paceNow and paceSleep are the clock pacing uses; tests replace them.
func (s *Store) paceNow() time.Time {
	if s.opts.clock != nil {
		return s.opts.clock.now()
	}
	return time.Now()
}

func (s *Store) paceSleep(d time.Duration) {
	if s.opts.clock != nil {
		s.opts.clock.sleep(d)
		return
	}
	time.Sleep(d)
}

// A paceClock replaces the clock of pacing in tests.
type paceClock interface {
	now() time.Time
	sleep(time.Duration)
}
