package escrow

import (
	"context"
	"errors"
	"time"
)

// ProcessDue fires every timer that is due by the clock's current time and
// returns how many fired. Each escrow's timers run in a transaction of its
// own, each action as if its party had acted, and emit their events with
// ByTimer set:
//
//	AwaitingPayment       → Closed (unpaid)
//	AwaitingShipment      → all held refunded to the buyer → Refunded
//	AwaitingConfirmation  → all held released to the seller → Completed (auto-confirm)
//	RefundRequested       → the refund made as asked (the seller ignored it)
//	ReturnRequested       → the return agreed to, with no address → AwaitingReturn
//	AwaitingReturn        → the return lapses (the buyer did not send the goods back) → AwaitingConfirmation
//	ReturnShipped         → the refund made as asked (the seller did not confirm receipt)
//	ReturnRefused         → the return ends (nobody disputed the refusal) → AwaitingConfirmation
//	Disputed              → EscrowEscalated, the dispute left open (only if Timers.ArbiterWithin is set)
//
// A return that ends goes back to AwaitingConfirmation with the
// auto-confirm timer resumed from where the return paused it.
//
// A deadline a timer starts runs from when that timer's deadline passed,
// not from when ProcessDue got to it; if it has passed too, it fires in
// the same transaction, and counts as a timer of its own. So one late run
// leaves every escrow as runs at each deadline would have.
//
// It also closes the rating windows that are due (see Rate): a party who
// stayed silent while the other rated gets the default rating, with a
// RatingGiven event. And it works out again the ranking keys of the
// aggregates that time has changed (see TopSellers), a batch of them per
// transaction. Neither is counted in the result, which counts the escrow
// timers above.
//
// Before the timers it deletes the idempotency records older than
// Options.IdempotencyRetention (see IdempotencyKey), found through the
// store's index of them by age. If that fails, the records left stay for
// the next run (no call replays them), the timers fire all the same, and
// the DueError says why in Idempotency.
//
// Due escrows and aggregates are found through the store's indexes, so the
// cost depends on how many are due, not on how many exist. ProcessDue is
// safe to run from several goroutines or processes at once: an escrow
// whose timer was fired (or whose state changed) meanwhile is skipped.
// On a store whose transactions are EscrowClaimers (pgstore), runs at
// once also split the work: each leaves an escrow that another
// transaction is working on to that one, without firing it, counting it
// or reporting it, and a later run finds it still due if that
// transaction rolled back.
//
// An escrow or aggregate whose transaction fails is skipped for the rest
// of the run and stays due; ProcessDue goes on with the others and then
// returns the count with a *DueError that lists each one skipped and its
// error. Only the store closing (ErrClosed) or ctx ending stops a run
// early; with some skipped before that, the DueError carries that error
// as Stopped.
//
// Options.Logger and Options.Observer are told of each timer fired, each
// rating window closed and each escrow or aggregate skipped, as it happens.
func (l *Ledger) ProcessDue(ctx context.Context) (int, error) {
	start := l.begin()
	r := dueRun{l: l, ctx: ctx, now: l.now(), escrows: map[string]error{}, aggregates: map[PartyRole]error{}}
	r.today = l.dayOf(r.now)
	// Records that cannot be deleted stay for the next run; they hold up
	// no timer.
	pruneErr := r.pruneIdempotency()
	if r.stops(pruneErr) {
		return 0, l.finish(start, "process_due", pruneErr)
	}
	err := drain(&r, r.escrows, r.dueEscrows, r.fireEach)
	if err == nil {
		err = drain(&r, r.aggregates, r.dueAggregates, r.rekeyAll)
	}
	if len(r.escrows) > 0 || len(r.aggregates) > 0 || pruneErr != nil {
		err = &DueError{Escrows: r.escrows, Aggregates: r.aggregates, Idempotency: pruneErr, Stopped: err}
	}
	return r.fired, l.finish(start, "process_due", err)
}

// A dueRun is one ProcessDue call.
type dueRun struct {
	l     *Ledger
	ctx   context.Context
	now   time.Time
	today int32
	fired int
	// The escrows and aggregates skipped, each with its error.
	escrows    map[string]error
	aggregates map[PartyRole]error
}

// dueBatch is how many due escrows or aggregates a run reads at a time;
// rekeyBatch is how many aggregates it re-keys in one transaction.
const (
	dueBatch   = 256
	rekeyBatch = 64
)

// drain acts on everything list reports due, a batch at a time, until a
// batch comes back short or act made no progress on it. Each batch asks
// for as many more as have been skipped (those in failed, which act
// fills), so skipped ones, which stay first in their index, cannot crowd
// out the rest.
func drain[K comparable](r *dueRun, failed map[K]error, list func(tx Tx, limit int) ([]K, error),
	act func([]K) (progress int, err error)) error {
	for {
		limit := dueBatch + len(failed)
		var keys []K
		err := r.l.store.View(r.ctx, func(tx Tx) error {
			var err error
			keys, err = list(tx, limit)
			return err
		})
		if err != nil {
			return err
		}
		fresh := make([]K, 0, len(keys))
		for _, k := range keys {
			if _, skipped := failed[k]; !skipped {
				fresh = append(fresh, k)
			}
		}
		progress, err := act(fresh)
		if err != nil || len(keys) < limit || progress == 0 {
			return err
		}
	}
}

func (r *dueRun) dueEscrows(tx Tx, limit int) ([]string, error) {
	return tx.DueEscrows(r.now, limit)
}

// fireEach fires the timer or closes the rating window of each escrow.
func (r *dueRun) fireEach(ids []string) (progress int, err error) {
	for _, id := range ids {
		if err := r.ctx.Err(); err != nil {
			return progress, ctxErr(err)
		}
		f, err := r.l.fire(r.ctx, id, r.now)
		if r.stops(err) {
			return progress, err
		}
		r.l.fired(r.ctx, "process_due", id, f, err)
		switch {
		case err != nil:
			r.escrows[id] = err
			progress++
		case f.acted:
			progress++
		default:
			// No longer due, or claimed by another transaction: no
			// progress, so a batch of only these ends the run rather than
			// read them again.
		}
		if err == nil {
			r.fired += len(f.timers)
		}
	}
	return progress, nil
}

func (r *dueRun) dueAggregates(tx Tx, limit int) ([]PartyRole, error) {
	due, err := tx.DueAggregates(r.today, limit)
	keys := make([]PartyRole, len(due))
	for i, a := range due {
		keys[i] = PartyRole{a.Party, a.Role}
	}
	return keys, err
}

// rekeyAll re-keys the aggregates, rekeyBatch to a transaction. When a
// batch's transaction fails, it re-keys that batch one by one, so as to
// skip only the aggregate at fault.
func (r *dueRun) rekeyAll(keys []PartyRole) (progress int, err error) {
	for start := 0; start < len(keys); start += rekeyBatch {
		if err := r.ctx.Err(); err != nil {
			return start, ctxErr(err)
		}
		batch := keys[start:min(start+rekeyBatch, len(keys))]
		err := r.rekey(batch...)
		if err == nil {
			continue
		}
		if r.stops(err) {
			return start, err
		}
		for _, k := range batch {
			if err := r.rekey(k); r.stops(err) {
				return start, err
			} else if err != nil {
				r.aggregates[k] = err
				r.l.rekeyFailed(r.ctx, k, err)
			}
		}
	}
	return len(keys), nil
}

// rekey re-keys the aggregates of keys in one transaction.
func (r *dueRun) rekey(keys ...PartyRole) error {
	return r.l.update(r.ctx, "process_due", func(tx Tx) error {
		for _, k := range keys {
			if err := r.l.rekey(tx, k, r.now, r.today); err != nil {
				return err
			}
		}
		return nil
	})
}

// stops reports whether err ends the run rather than one escrow's or
// aggregate's turn: the store is closed or the context has ended.
func (r *dueRun) stops(err error) bool {
	return err != nil && r.ctx.Err() != nil || errors.Is(err, ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fire runs the due timer of one escrow, if it is still due, or closes its
// rating window. It reports whether an escrow timer fired, whether it did
// anything at all, and what. On a store that claims escrows, an escrow
// another transaction has claimed is left alone, as if no longer due.
func (l *Ledger) fire(ctx context.Context, id string, now time.Time) (f firing, err error) {
	err = l.update(ctx, "process_due", func(tx Tx) error {
		f = firing{}
		if c := escrowClaimer(tx); c != nil {
			// One that another transaction works on is left to it.
			if claimed, err := c.ClaimEscrow(id); err != nil || !claimed {
				return err
			}
		}
		e, err := getEscrow(tx, id)
		if err != nil {
			return err
		}
		if e.DueAt.IsZero() || e.DueAt.After(now) {
			if e.RatingDueAt.IsZero() || e.RatingDueAt.After(now) {
				return nil
			}
			f.acted, f.closed = true, true
			err := l.closeRatings(tx, &e, now)
			f.state = e.State
			return err
		}
		f.acted = true
		if f.timers, err = l.fireDue(tx, &e, now); err != nil || len(f.timers) > 0 {
			return err
		}
		touch(&e, now) // no timer runs in its state: fireDue cleared DueAt
		return tx.PutEscrow(e)
	})
	return f, err
}

// RunTimers calls ProcessDue every interval until ctx ends, passing any
// error to onError (which may be nil), a *DueError included. It returns
// when ctx is done. An interval that is not positive fires nothing: it
// is passed to onError as an error wrapping ErrInvalidArgument, and
// RunTimers returns at once.
func (l *Ledger) RunTimers(ctx context.Context, interval time.Duration, onError func(error)) {
	if interval <= 0 {
		if onError != nil {
			onError(invalidArg("RunTimers interval %v must be positive", interval))
		}
		return
	}
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
