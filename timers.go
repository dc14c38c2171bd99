package escrow

import (
	"context"
	"errors"
	"time"
)

// ProcessDue fires every timer that is due by the clock's current time and
// returns how many fired. Each timer's action runs in its own transaction,
// as if its party had acted, and emits its event with ByTimer set:
//
//	AwaitingPayment       → Closed (unpaid)
//	AwaitingShipment      → all held refunded to the buyer → Refunded
//	AwaitingConfirmation  → all held released to the seller → Completed (auto-confirm)
//	RefundRequested       → the refund made as asked (the seller ignored it)
//
// It also closes the rating windows that are due (see Rate): a party who
// stayed silent while the other rated gets the default rating, with a
// RatingGiven event. Closing a rating window is not counted in the result,
// which counts the escrow timers above.
//
// Before the timers it deletes the idempotency records older than
// Options.IdempotencyRetention (see IdempotencyKey), found through the
// store's index of them by age.
//
// Due escrows are found through the store's due index, so the cost depends
// on how many are due, not on how many exist. ProcessDue is safe to run
// from several goroutines or processes at once: an escrow whose timer was
// fired (or whose state changed) meanwhile is skipped.
//
// An escrow whose action fails (its transaction returns an error) is
// skipped for the rest of the run and stays due; ProcessDue goes on with
// the others and then returns the count with a *DueError that lists each
// skipped escrow and its error. Only the store closing (ErrClosed) or ctx
// ending stops a run early; with escrows skipped before that, the
// DueError carries that error as Stopped.
func (l *Ledger) ProcessDue(ctx context.Context) (int, error) {
	r := dueRun{l: l, ctx: ctx, now: l.now(), failed: map[string]error{}}
	if err := l.pruneIdempotency(ctx, r.now); err != nil {
		return 0, err
	}
	err := r.escrows()
	if len(r.failed) > 0 {
		err = &DueError{Escrows: r.failed, Stopped: err}
	}
	return r.fired, err
}

// A dueRun is one ProcessDue call.
type dueRun struct {
	l      *Ledger
	ctx    context.Context
	now    time.Time
	fired  int
	failed map[string]error // the escrows skipped, by ID
}

// dueBatch is how many due escrows a run reads at a time.
const dueBatch = 256

// escrows acts on every escrow due at r.now, a batch at a time. Each batch
// asks for as many more IDs as have been skipped, so skipped escrows,
// which stay first in the due index, cannot crowd out the rest.
func (r *dueRun) escrows() error {
	for {
		limit := dueBatch + len(r.failed)
		var ids []string
		err := r.l.store.View(r.ctx, func(tx Tx) error {
			var err error
			ids, err = tx.DueEscrows(r.now, limit)
			return err
		})
		if err != nil {
			return err
		}
		progress := 0
		for _, id := range ids {
			if _, skipped := r.failed[id]; skipped {
				continue
			}
			if err := r.ctx.Err(); err != nil {
				return ctxErr(err)
			}
			timer, acted, err := r.l.fire(r.ctx, id, r.now)
			if err != nil {
				if r.stops(err) {
					return err
				}
				r.failed[id] = err
				timer, acted = false, true
			}
			if timer {
				r.fired++
			}
			if acted {
				progress++
			}
		}
		if len(ids) < limit || progress == 0 {
			return nil
		}
	}
}

// stops reports whether err ends the run rather than one escrow's turn:
// the store is closed or the context has ended.
func (r *dueRun) stops(err error) bool {
	return r.ctx.Err() != nil || errors.Is(err, ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fire runs the due timer of one escrow, if it is still due, or closes its
// rating window. It reports whether an escrow timer fired and whether it
// did anything at all.
func (l *Ledger) fire(ctx context.Context, id string, now time.Time) (timer, acted bool, err error) {
	err = l.store.Update(ctx, func(tx Tx) error {
		timer, acted = false, false
		e, err := getEscrow(tx, id)
		if err != nil {
			return err
		}
		if e.DueAt.IsZero() || e.DueAt.After(now) {
			if e.RatingDueAt.IsZero() || e.RatingDueAt.After(now) {
				return nil
			}
			acted = true
			return l.closeRatings(tx, &e, now)
		}
		var buf entryBuf
		ev, err := fireTimer(tx, &e, now, &buf)
		if err != nil {
			return err
		}
		timer = ev.Type != ""
		acted = true
		if !timer {
			touch(&e, now)
			return tx.PutEscrow(e)
		}
		l.openRatings(&e)
		return save(tx, &e, &ev, now)
	})
	return timer, acted, err
}

// fireTimer runs the action of e's running timer, due by now, and returns
// the event that tells of it. In a state where no timer runs it clears
// DueAt and returns an event with no Type.
func fireTimer(tx Tx, e *Escrow, now time.Time, buf *entryBuf) (Event, error) {
	ev := Event{At: now, Escrow: e.ID, ByTimer: true}
	var err error
	switch e.State {
	case AwaitingPayment:
		e.enter(Closed, now)
		ev.Type = EscrowClosed
	case AwaitingShipment:
		err = refund(tx, e, &ev, e.Held, now, buf)
	case AwaitingConfirmation:
		err = release(tx, e, &ev, e.Held, now, buf)
	case RefundRequested:
		err = refund(tx, e, &ev, e.Refund.Amount, now, buf)
	default:
		e.DueAt = time.Time{} // no timer runs in this state
	}
	return ev, err
}

// expireFirst fires the escrow's running timer if it is due by the call's
// time, as ProcessDue would have, with its own event. A refund request or
// a dispute is then judged on the state the timer left, so its outcome is
// the same whether ProcessDue ran before it or not: a timer that has run
// out cannot be paused.
func (c *call) expireFirst(tx Tx) error {
	e := &c.e
	if e.DueAt.IsZero() || e.DueAt.After(c.now) {
		return nil
	}
	ev, err := fireTimer(tx, e, c.now, &c.buf)
	if err != nil || ev.Type == "" {
		return err
	}
	c.l.openRatings(e)
	return save(tx, e, &ev, c.now)
}

// RunTimers calls ProcessDue every interval until ctx ends, passing any
// error to onError (which may be nil), a *DueError included. It returns
// when ctx is done.
func (l *Ledger) RunTimers(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := l.ProcessDue(ctx); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
