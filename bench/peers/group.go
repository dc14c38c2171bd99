package main

import (
	"context"
	"sync"
)

// A grouper runs the updates of concurrent callers in shared
// transactions of its backend: the first caller to find none running
// runs every update waiting, its own among them, in one transaction, and
// again while more arrive; the others wait for it. A failing update fails
// its whole group. It makes a peer's growth store quick to build (see
// mode.grouped); nothing timed runs through it.
type grouper struct {
	backend
	mu      sync.Mutex
	waiting []*groupedCall
	running bool
}

type groupedCall struct {
	fn   func(tables) error
	done chan error
}

func (g *grouper) update(ctx context.Context, fn func(tables) error) error {
	c := &groupedCall{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.waiting = append(g.waiting, c)
	if g.running {
		g.mu.Unlock()
		return <-c.done
	}
	g.running = true
	for len(g.waiting) > 0 {
		group := g.waiting
		g.waiting = nil
		g.mu.Unlock()
		err := g.backend.update(ctx, func(t tables) error {
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
	}
	g.running = false
	g.mu.Unlock()
	return <-c.done
}
