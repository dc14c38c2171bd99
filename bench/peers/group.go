package main

import (
	"context"
	"sync"
	"time"
)

// A grouper runs the updates of concurrent callers in shared
// transactions of its backend. A goroutine of its own runs every update
// waiting in one transaction, and again while more arrive; the callers
// wait for it. A failing update fails its whole group. It makes a peer's
// growth store quick to build (see mode.grouped); nothing timed runs
// through it.
//
// Before each group after the first, it waits for the callers of the last
// one to come back with their next steps. Each caller has one update in
// flight, so taking only the calls already waiting would run one small
// group after another (10 of 64 builders' steps on average, measured),
// each paying bbolt's per-commit cost of rewriting every page it touched.
// And the goroutine is not one of the callers, which would then wait
// until the others were done.
type grouper struct {
	backend
	mu      sync.Mutex
	waiting []*groupedCall
	running bool
	// With full set, the goroutine is waiting for want calls; the call
	// that makes them want closes full.
	want int
	full chan struct{}
}

type groupedCall struct {
	ctx  context.Context
	fn   func(tables) error
	done chan error
}

// groupWait is the longest the goroutine waits for the last group's
// callers to come back: a caller that is done (the build is over for it)
// does not.
const groupWait = 5 * time.Millisecond

func (g *grouper) update(ctx context.Context, fn func(tables) error) error {
	c := &groupedCall{ctx: ctx, fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.waiting = append(g.waiting, c)
	if g.full != nil && len(g.waiting) >= g.want {
		close(g.full)
		g.full = nil
	}
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	return <-c.done
}

// run runs the groups until none is waiting, nor comes back in time.
func (g *grouper) run() {
	g.mu.Lock()
	defer g.mu.Unlock()
	want := 0 // the calls there are once the last group's callers are back
	for {
		if len(g.waiting) < want {
			full := make(chan struct{})
			g.want, g.full = want, full
			g.mu.Unlock()
			timer := time.NewTimer(groupWait)
			select {
			case <-full:
			case <-timer.C:
			}
			timer.Stop()
			g.mu.Lock()
			g.full = nil
		}
		if len(g.waiting) == 0 {
			g.running = false
			return
		}
		group := g.waiting
		g.waiting = nil
		g.mu.Unlock()
		err := g.backend.update(group[0].ctx, func(t tables) error {
			for _, c := range group {
				if err := c.fn(t); err != nil {
					return err
				}
			}
			return nil
		})
		for _, c := range group {
			c.done <- err
		}
		g.mu.Lock()
		want = len(g.waiting) + len(group)
	}
}
