package escrowhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/escrowkit/escrow"
)

// This file serves the event stream to operators: a page at a time, as a
// long poll, or as server-sent events.

// eventPage answers a read of the event stream. Next is the seq of its
// last event, or the after it was asked with if it is empty: the after of
// the next read.
type eventPage struct {
	Events []escrow.Event `json:"events"`
	Next   uint64         `json:"next"`
}

// defaultEventLimit is how many events a read returns unless its limit
// says otherwise.
const defaultEventLimit = 100

// writeSlack is how long past a wait the handler gives itself to write
// its answer, when it moves the server's write deadline (see extend).
const writeSlack = 10 * time.Second

// extend moves the write deadline of c's connection to wait (and
// writeSlack) from now, so that a server's WriteTimeout, meant for
// ordinary answers, does not cut a long poll or a stream as it waits. A
// ResponseWriter that cannot is left as it is.
func extend(c *call, wait time.Duration) {
	http.NewResponseController(c.w).SetWriteDeadline(time.Now().Add(wait + writeSlack))
}

func (s *server) events(c *call) (eventPage, error) {
	after, err := c.querySeq("after")
	if err != nil {
		return eventPage{}, err
	}
	limit, err := c.queryInt("limit", defaultEventLimit, 1, eventLimit)
	if err != nil {
		return eventPage{}, err
	}
	wait, err := c.queryWait()
	if err != nil {
		return eventPage{}, err
	}
	if c.r.Method == http.MethodHead {
		// A HEAD asks for the headers, which do not depend on what an
		// event would bring: it answers at once, as the stream's does.
		wait = 0
	}
	var events []escrow.Event
	if wait == 0 {
		events, err = s.ledger.Events(c.ctx, after, limit)
	} else {
		wait = min(wait, s.maxWait)
		extend(c, wait)
		ctx, cancel := context.WithTimeout(c.ctx, wait)
		events, err = s.ledger.WaitEvents(ctx, after, limit)
		// Only the wait's own end is an empty page: a refusal, or a store
		// that closed, is answered as itself. (cancel would end ctx, so
		// it is asked first.)
		over := ctx.Err() != nil && c.ctx.Err() == nil
		cancel()
		if err != nil && over && errors.Is(err, context.DeadlineExceeded) {
			// The wait is over and nothing came. It may have been over
			// before the ledger looked at all (a wait of a nanosecond), so
			// the answer is a read without a wait: an empty page, what
			// came at the last moment, or the refusal of a place past the
			// newest event, which an empty page would hide.
			events, err = s.ledger.Events(c.ctx, after, limit)
		}
	}
	page := eventPage{Events: nonNil(events), Next: after}
	if len(events) > 0 {
		page.Next = events[len(events)-1].Seq
	}
	return page, err
}

// queryWait reads the wait parameter: a duration such as "25s".
func (c *call) queryWait() (time.Duration, error) {
	s := c.r.URL.Query().Get("wait")
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, refuse("invalid_argument", "wait=%q: want a duration such as 25s", s)
	}
	return d, nil
}

// stream serves the events as server-sent events, from after (or the
// Last-Event-ID a reconnecting client sends) until the client goes away.
// It answers its own errors: once the stream has begun, a failure of the
// ledger is sent as an event named error, with the error body as its
// data, and ends the stream, which a client's EventSource reopens.
func (s *server) stream(c *call) (any, error) {
	after, err := c.querySeq("after")
	if err != nil {
		return nil, err
	}
	if id := c.r.Header.Get("Last-Event-ID"); id != "" {
		if after, err = strconv.ParseUint(id, 10, 64); err != nil {
			return nil, refuse("invalid_argument", "Last-Event-ID %q is not an event's seq", id)
		}
	}
	// A place past the newest event is refused before the stream begins,
	// with a status a client's EventSource does not reconnect on.
	if _, err := s.ledger.Events(c.ctx, after, 1); err != nil {
		return nil, err
	}
	rc := http.NewResponseController(c.w)
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx would hold events back otherwise
	c.w.WriteHeader(http.StatusOK)
	if c.r.Method == http.MethodHead { // the headers say all a HEAD asks
		return nil, nil
	}
	if err := rc.Flush(); err != nil {
		s.log.Error("escrowhttp: the ResponseWriter cannot flush, so it cannot stream events", "error", err)
		return nil, nil
	}
	for {
		extend(c, s.maxWait)
		ctx, cancel := context.WithTimeout(c.ctx, s.maxWait)
		events, err := s.ledger.WaitEvents(ctx, after, defaultEventLimit)
		cancel()
		switch {
		case c.ctx.Err() != nil: // the client went away, or the host's deadline passed
			return nil, nil
		case errors.Is(err, context.DeadlineExceeded):
			// Idle: a comment, which clients ignore, keeps proxies from
			// closing the connection.
			fmt.Fprint(c.w, ": idle\n\n")
		case err != nil:
			e := s.classify(c, err)
			b, _ := json.Marshal(e.body())
			fmt.Fprintf(c.w, "event: error\ndata: %s\n\n", b)
			rc.Flush()
			return nil, nil
		}
		for _, ev := range events {
			b, err := json.Marshal(ev)
			if err != nil {
				s.classify(c, fmt.Errorf("escrowhttp: encoding event %d: %w", ev.Seq, err))
				return nil, nil
			}
			fmt.Fprintf(c.w, "id: %d\ndata: %s\n\n", ev.Seq, b)
			after = ev.Seq
		}
		if err := rc.Flush(); err != nil {
			return nil, nil
		}
	}
}
