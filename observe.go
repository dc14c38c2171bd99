package escrow

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// An Observer is told what a Ledger does, for metrics: each call of its
// methods, each read-write transaction, and each timer that fires,
// whether ProcessDue fires it or a party's call finds its deadline passed
// and fires it first, and each that ProcessDue fails to fire. Set one in
// Options.Observer; the standard library's expvar is enough to export
// what it is told (see examples/metrics).
//
// The Ledger calls its methods synchronously, on the goroutine that made
// the call, so they must be quick (count, add, and return) and safe for
// concurrent use. They must not call the Ledger. The values they are given
// are theirs to keep.
type Observer interface {
	// Call is told of each call of a Ledger method when it returns,
	// whether it succeeded or not: every method but Currency and Storage,
	// which read no store, and RunTimers, whose ProcessDue calls are told.
	Call(CallInfo)
	// Commit is told of each read-write transaction when it ends: committed
	// (Err nil) or rolled back. A call makes at most one, ProcessDue one for
	// each escrow it acts on and each batch it prunes or re-keys, and
	// Consume one for each batch of events it hands on.
	Commit(CommitInfo)
	// Timer is told of each due escrow ProcessDue acted on: a timer it
	// fired, a rating window it closed, or one of these that failed and was
	// skipped. It is told too of each timer a party's call fired before
	// its own action (see ProcessDue: a deadline binds when it passes),
	// once the call has committed, after Commit and before Call; a call
	// refused after firing one commits nothing, and tells of no timer. So
	// a count of timers by action counts every deadline that bound.
	Timer(TimerInfo)
}

// CallInfo describes one call of a Ledger method, for an Observer.
type CallInfo struct {
	// Call is the method's word: an action's word for the actions ("pay",
	// "ship", "confirm", "request_refund", …, "rate"); "open",
	// "open_account", "deposit", "withdraw", "revise", "reply",
	// "withdraw_rating", "void_rating", "pay_all", "consume" and
	// "set_consumer" for the other calls that change the ledger;
	// "escrow", "escrows", "history", "account", "balance", "balances",
	// "journal", "events", "wait_events", "consumer", "reputation",
	// "concentration", "explain", "top_sellers" and "check" for the reads;
	// "process_due" for ProcessDue.
	Call string
	// Duration is how long the call took, by the system's monotonic
	// clock (not Options.Clock).
	Duration time.Duration
	// Err is what the call returned: nil, or an error from the documented
	// set, so errors.Is and errors.As tell why it was refused.
	Err error
	// Replayed is true for a call that returned the result remembered
	// under its IdempotencyKey, as Replayed reports it to the caller.
	Replayed bool
}

// CommitInfo describes one read-write transaction, for an Observer.
type CommitInfo struct {
	// Call is the word of the call that ran it (see CallInfo), or "new"
	// for the one New runs to create the system accounts.
	Call string
	// Duration is how long Storage.Update took, the transaction's work and
	// its commit together (and its retries, if the store ran it again).
	Duration time.Duration
	// Writes is how many records the transaction wrote: every account,
	// balance, journal entry, event, escrow, consumer, rating, aggregate,
	// day count, pair month, item mark, rater's days and idempotency record
	// it put, appended or deleted (in its last run, if the store ran it
	// again). A transaction that failed
	// reports those it wrote before it failed, none of which were kept.
	Writes int
	// Err is nil if the transaction committed; otherwise why it did not,
	// an error of the call's or of the store's.
	Err error
}

// TimerInfo describes one due escrow that ProcessDue acted on, or one
// timer that a party's call fired before its own action, for an
// Observer.
type TimerInfo struct {
	// Escrow is the escrow's ID.
	Escrow string
	// Action is what the clock did: the action of a state's timer, the
	// one its party would have taken (ActionCancel for an unpaid escrow,
	// ActionRefund for an unshipped one, ActionConfirm for an unconfirmed
	// one, ActionAgreeRefund for an unanswered refund request,
	// ActionAgreeReturn for an unanswered return request,
	// ActionCancelReturn for a return that lapses, ActionConfirmReturn
	// for returned goods not confirmed, ActionEscalate for a dispute past
	// Timers.ArbiterWithin), or ActionRate for a rating window closed. It
	// is zero if the escrow failed before the clock chose its action.
	Action Action
	// State is the state the escrow was left in; zero if Err is set.
	State State
	// Err is nil if the timer fired; otherwise why it did not, and the
	// escrow was skipped (it stays due, for the next ProcessDue).
	Err error
}

// begin starts timing a call for the observer: it returns the time now,
// or the zero time when there is no observer, so that a ledger without
// one does not read the clock.
func (l *Ledger) begin() time.Time {
	if l.obs == nil {
		return time.Time{}
	}
	return time.Now()
}

// finish tells the observer that the call named call, begun at start,
// returned err, and returns err.
func (l *Ledger) finish(start time.Time, call string, err error) error {
	return l.finishKeyed(start, call, false, err)
}

// finishKeyed is finish for a call that may have replayed its result.
func (l *Ledger) finishKeyed(start time.Time, call string, replayed bool, err error) error {
	if l.obs != nil {
		l.obs.Call(CallInfo{Call: call, Duration: time.Since(start), Err: err, Replayed: replayed && err == nil})
	}
	return err
}

// update runs fn in a read-write transaction for the call named call,
// telling the observer of the transaction and logging a store that
// refused it. Without an observer it adds nothing to the transaction.
func (l *Ledger) update(ctx context.Context, call string, fn func(Tx) error) error {
	var err error
	if l.obs == nil {
		err = l.store.Update(ctx, fn)
	} else {
		err = l.observedUpdate(ctx, call, fn)
	}
	if err == nil {
		l.commits.wake()
	}
	if err != nil && l.log != nil {
		l.logRefused(ctx, call, err)
	}
	return err
}

// observedUpdate is update with an observer: it counts the transaction's
// writes through a countingTx and times it.
func (l *Ledger) observedUpdate(ctx context.Context, call string, fn func(Tx) error) error {
	start, writes := time.Now(), 0
	err := l.store.Update(ctx, func(tx Tx) error {
		counted := &countingTx{Tx: tx}
		err := fn(counted)
		writes = counted.writes
		return err
	})
	l.obs.Commit(CommitInfo{Call: call, Duration: time.Since(start), Writes: writes, Err: err})
	return err
}

// callErrors are the errors that tell of a call refused by the ledger's
// rules or its arguments, or that the caller can retry: they say nothing
// about the store's health, so a failed write with one of them is not
// logged.
var callErrors = []error{ErrInvalidAmount, ErrAmountTooLarge, ErrUnknownCurrency, ErrCurrencyMismatch,
	ErrInvalidArgument, ErrNotFound, ErrExists, ErrInsufficientFunds, ErrNotParty, ErrInvalidTransition,
	ErrNoArbiter, ErrAlreadyRated, ErrRatingClosed, ErrIdempotencyMismatch, ErrConflict,
	context.Canceled, context.DeadlineExceeded}

// logRefused logs a write that the store refused: at Warn if it is closed
// or read-only, at Error if it failed in some other way of its own (a disk
// write or fsync that failed, after which a file store refuses every
// update). A write refused by the ledger's rules is the caller's to
// handle, and is not logged.
func (l *Ledger) logRefused(ctx context.Context, call string, err error) {
	level, msg := slog.LevelError, "escrow: store failed a write"
	switch {
	case errors.Is(err, ErrReadOnly), errors.Is(err, ErrClosed):
		level, msg = slog.LevelWarn, "escrow: store refused a write"
	default:
		for _, e := range callErrors {
			if errors.Is(err, e) {
				return
			}
		}
	}
	l.log.LogAttrs(ctx, level, msg, slog.String("call", call), slog.Any("error", err))
}

// countingTx counts the writes of a transaction for the observer. Every
// write method of Tx is counted here: one added to Tx must be added here
// too.
type countingTx struct {
	Tx
	writes int
}

// count counts one write that succeeded, and returns err.
func (t *countingTx) count(err error) error {
	if err == nil {
		t.writes++
	}
	return err
}

func (t *countingTx) PutAccount(a Account) error     { return t.count(t.Tx.PutAccount(a)) }
func (t *countingTx) PutBalance(b Balance) error     { return t.count(t.Tx.PutBalance(b)) }
func (t *countingTx) AppendEntry(e *Entry) error     { return t.count(t.Tx.AppendEntry(e)) }
func (t *countingTx) AppendEvent(ev *Event) error    { return t.count(t.Tx.AppendEvent(ev)) }
func (t *countingTx) PutEscrow(e Escrow) error       { return t.count(t.Tx.PutEscrow(e)) }
func (t *countingTx) PutRating(r Rating) error       { return t.count(t.Tx.PutRating(r)) }
func (t *countingTx) PutAggregate(a Aggregate) error { return t.count(t.Tx.PutAggregate(a)) }
func (t *countingTx) PutDayCount(d DayCount) error   { return t.count(t.Tx.PutDayCount(d)) }
func (t *countingTx) PutPairMonth(p PairMonth) error { return t.count(t.Tx.PutPairMonth(p)) }
func (t *countingTx) PutItemMark(m ItemMark) error   { return t.count(t.Tx.PutItemMark(m)) }
func (t *countingTx) PutRaterDays(d RaterDays) error { return t.count(t.Tx.PutRaterDays(d)) }
func (t *countingTx) PutConsumer(c Consumer) error   { return t.count(t.Tx.PutConsumer(c)) }
func (t *countingTx) PutIdempotency(r IdempotencyRecord) error {
	return t.count(t.Tx.PutIdempotency(r))
}
func (t *countingTx) DeleteIdempotency(key string) error {
	return t.count(t.Tx.DeleteIdempotency(key))
}

// The ledger asks a Tx for the optional capabilities of its store through
// balanceAdder and escrowClaimer, which see through a countingTx: the
// capability is the store's, and the wrapper only counts the writes it
// makes. A capability added to the storage contract gets a function like
// these, not a wrapper type for every combination of capabilities.

// balanceAdder returns tx as a BalanceAdder, or nil if its store is not
// one. Under a countingTx, the adds are counted.
func balanceAdder(tx Tx) BalanceAdder {
	if c, ok := tx.(*countingTx); ok {
		if a, ok := c.Tx.(BalanceAdder); ok {
			return countingAdder{c, a}
		}
		return nil
	}
	a, _ := tx.(BalanceAdder)
	return a
}

// countingAdder counts the adds of a store's BalanceAdder.
type countingAdder struct {
	counted *countingTx
	adder   BalanceAdder
}

func (a countingAdder) AddBalance(account string, c Currency, available, held int64) error {
	return a.counted.count(a.adder.AddBalance(account, c, available, held))
}

// escrowClaimer returns tx as an EscrowClaimer, or nil if its store is
// not one. A claim writes nothing, so it is not counted.
func escrowClaimer(tx Tx) EscrowClaimer {
	if c, ok := tx.(*countingTx); ok {
		tx = c.Tx
	}
	c, _ := tx.(EscrowClaimer)
	return c
}

// firing is what ProcessDue did to one due escrow.
type firing struct {
	timers []timerStep // the state timers fired, in order; on a failure, the last is the one that failed
	closed bool        // the rating window closed
	acted  bool        // a timer fired or a rating window closed
	state  State       // the state a closed rating window left
}

// fired tells the logger and the observer what the call named call did
// to escrow id on the clock's behalf: each timer fired, a rating window
// closed, or a failure. ProcessDue tells of what it did to each due
// escrow, and a party's call of the timers it fired, and committed,
// before its own action. Neither tells of an escrow found no longer due,
// or only tidied.
func (l *Ledger) fired(ctx context.Context, call, id string, f firing, err error) {
	if err != nil {
		var action Action
		switch {
		case len(f.timers) > 0:
			action = f.timers[len(f.timers)-1].action
		case f.closed:
			action = ActionRate
		}
		l.firedOne(ctx, call, id, action, 0, err)
		return
	}
	for _, s := range f.timers {
		l.firedOne(ctx, call, id, s.action, s.state, nil)
	}
	if f.closed {
		l.firedOne(ctx, call, id, ActionRate, f.state, nil)
	}
}

// firedOne tells the logger and the observer of one thing the call named
// call did to escrow id on the clock's behalf: the clock's action
// (ActionRate for a rating window closed), which left it in state, or
// failed with err. Its log record names the call, as every record the
// ledger logs does.
func (l *Ledger) firedOne(ctx context.Context, call, id string, action Action, state State, err error) {
	if l.obs != nil {
		l.obs.Timer(TimerInfo{Escrow: id, Action: action, State: state, Err: err})
	}
	if l.log == nil {
		return
	}
	callAttr := slog.String("call", call)
	switch {
	case err != nil:
		attrs := []slog.Attr{callAttr, slog.String("escrow", id)}
		if action != 0 {
			attrs = append(attrs, slog.String("action", actionWords.words[action]))
		}
		l.log.LogAttrs(ctx, slog.LevelError, "escrow: due escrow skipped", append(attrs, slog.Any("error", err))...)
	case action != ActionRate:
		l.log.LogAttrs(ctx, slog.LevelInfo, "escrow: timer fired", callAttr, slog.String("escrow", id),
			slog.String("action", actionWords.words[action]), slog.String("state", stateWords.words[state]))
	default:
		l.log.LogAttrs(ctx, slog.LevelInfo, "escrow: rating window closed", callAttr, slog.String("escrow", id),
			slog.String("state", stateWords.words[state]))
	}
}

// rekeyFailed logs an aggregate whose ranking keys ProcessDue could not
// work out again, and skipped.
func (l *Ledger) rekeyFailed(ctx context.Context, k PartyRole, err error) {
	if l.log != nil {
		l.log.LogAttrs(ctx, slog.LevelError, "escrow: aggregate re-key skipped", slog.String("call", "process_due"),
			slog.String("party", k.Party),
			slog.Any("role", k.Role), slog.Any("error", err))
	}
}
