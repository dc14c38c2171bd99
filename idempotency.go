package escrow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// Idempotency: a call made with a key runs once; a retry with the same key
// and arguments gets the first result back (see IdempotencyKey). The
// canonical form of a call's arguments is in request.go.

// A CallOption modifies one mutating call. The zero CallOption changes
// nothing.
type CallOption struct {
	key      string
	hasKey   bool // set by IdempotencyKey, so that an empty key is noticed
	replayed *bool
	// hasReplayed is set by Replayed, so that a nil pointer is noticed.
	hasReplayed bool
}

// IdempotencyKey makes a call safe to retry: the first call made with key
// runs and its result is remembered in the same transaction; a later call
// with the same key and the same arguments returns that result and changes
// nothing; one with different arguments fails with an
// *IdempotencyMismatchError (ErrIdempotencyMismatch), which says what the
// key was first used for. A call that fails is not remembered, so it may
// be retried with its key. A result is replayed while less than
// Options.IdempotencyRetention (by default 7 days) has passed since the
// first call; from then on the key is free, a call with it is a new call,
// and ProcessDue deletes the record. Replayed tells a replay from a first
// run.
//
// Keys are global to the ledger: one namespace for every party and every
// method. A host that takes keys from its clients (an Idempotency-Key
// header) must prefix them with whatever scopes them, such as the
// authenticated user or tenant ("user-42:" + key); otherwise one client's
// key collides with another's, and the mismatch error tells the second
// which call and which escrow or account the first used it for. A key is
// 1 to 256 bytes of valid UTF-8 with no control character (C0, DEL, C1)
// and no bidirectional formatting character, so that every store keeps it
// as given; any other is refused with ErrInvalidArgument. Other characters
// are the key's as sent, compared byte for byte: unlike an ID, a key may
// hold characters that do not print, so "k" and "k" with a zero-width
// space after it are two keys. An empty key is refused too, rather than
// ignored, so that a caller whose key went missing does not make the call
// twice; so it is when another key follows it. Of two keys given to one
// call, the last counts.
func IdempotencyKey(key string) CallOption { return CallOption{key: key, hasKey: true} }

// Replayed makes a call report in *replayed whether its result was
// replayed: true if the call succeeded by returning the result remembered
// under its IdempotencyKey, false if it ran now, or failed, or had no key.
// It sets *replayed to false when it is called, and the call sets it to
// true only if it replays. A host passes the flag on to its client, as
// payment APIs do with an Idempotent-Replayed header, so that a retry's
// answer can be told from a first one. A nil pointer is refused with
// ErrInvalidArgument.
func Replayed(replayed *bool) CallOption {
	if replayed != nil {
		*replayed = false
	}
	return CallOption{replayed: replayed, hasReplayed: true}
}

// callOptions are the options of one call, gathered.
type callOptions struct {
	key      string
	replayed *bool
}

// optionsOf gathers opts; where one is given twice, the last counts.
func optionsOf(opts []CallOption) (callOptions, error) {
	var o callOptions
	for _, opt := range opts {
		if opt.hasKey {
			if opt.key == "" {
				// Refused wherever it stands: a later key does not make
				// up for the one that went missing.
				return callOptions{}, invalidArg("empty idempotency key")
			}
			o.key = opt.key
		}
		if opt.hasReplayed {
			if opt.replayed == nil {
				return callOptions{}, invalidArg("Replayed with a nil pointer")
			}
			o.replayed = opt.replayed
		}
	}
	if err := checkText("idempotency key", o.key, 256, false); err != nil {
		return callOptions{}, err
	}
	return o, nil
}

// done tells a Replayed option how the call ended.
func (o *callOptions) done(replayed bool, err error) {
	if o.replayed != nil {
		*o.replayed = replayed && err == nil
	}
}

// mutate runs fn in one storage transaction, honouring an idempotency key
// among opts (see runKeyed), for the call named call, begun at start (see
// Ledger.begin). describe renders the call and its arguments canonically;
// it is called only when there is a key.
func mutate[T any](ctx context.Context, l *Ledger, start time.Time, call string, opts []CallOption,
	describe func() string, fn func(tx Tx, now time.Time) (T, error)) (T, error) {
	o, err := optionsOf(opts)
	if err != nil {
		return *new(T), l.finish(start, call, err)
	}
	c := &fnCall[T]{describe: describe, fn: fn, now: l.now()}
	err = l.update(ctx, call, func(tx Tx) error {
		var err error
		c.replayed, err = l.runKeyed(tx, o.key, c.now, c)
		return err
	})
	o.done(c.replayed, err)
	if err = l.finishKeyed(start, call, c.replayed, err); err != nil {
		return *new(T), err
	}
	return c.out, nil
}

// A keyed call is one that can run under an idempotency key: the pooled
// escrow call, or an fnCall.
type keyed interface {
	request() string   // the call and its arguments, canonically
	apply(tx Tx) error // make the call's change, setting its result
	result() any       // a pointer to the result
}

// runKeyed runs c in tx. With a key, a call already made with it has its
// result replayed instead, and runKeyed reports true (or fails with
// ErrIdempotencyMismatch if it was another call); a new call's result is
// remembered in the same transaction.
func (l *Ledger) runKeyed(tx Tx, key string, now time.Time, c keyed) (replayed bool, err error) {
	if key == "" {
		return false, c.apply(tx)
	}
	request := c.request()
	if found, err := l.recall(tx, key, request, c.result(), now); found || err != nil {
		return found, err
	}
	if err := c.apply(tx); err != nil {
		return false, err
	}
	return false, remember(tx, key, request, c.result(), now)
}

// fnCall is a keyed call made of functions.
type fnCall[T any] struct {
	describe func() string
	fn       func(tx Tx, now time.Time) (T, error)
	now      time.Time
	out      T
	replayed bool
}

func (c *fnCall[T]) request() string { return c.describe() }
func (c *fnCall[T]) result() any     { return &c.out }

func (c *fnCall[T]) apply(tx Tx) error {
	v, err := c.fn(tx, c.now)
	if err == nil {
		c.out = v
	}
	return err
}

// recall looks key up. If a call was made with it less than the retention
// before now, recall decodes that call's result into out and reports true,
// or fails with ErrIdempotencyMismatch if the call was another.
func (l *Ledger) recall(tx Tx, key, request string, out any, now time.Time) (bool, error) {
	rec, err := tx.Idempotency(key)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case !now.Before(rec.At.Add(l.retention)):
		return false, nil // expired: the call is new, and its record replaces this one
	case rec.Request != request:
		return true, keyReused(key, rec.Request)
	}
	if err := decodeResult(rec.Result, out); err != nil {
		return true, fmt.Errorf("%w: key %s holds a result this release cannot read: %w", ErrIdempotencyMismatch, quoted(key), err)
	}
	return true, nil
}

// remember stores the result of the call made with key.
func remember(tx Tx, key, request string, result any, now time.Time) error {
	b, err := encodeResult(result)
	if err != nil {
		return err
	}
	return tx.PutIdempotency(IdempotencyRecord{Key: key, Request: request, Result: b, At: now})
}

// pruneIdempotency deletes the idempotency records that expired by the
// run's now, found through the store's index of them by age, as drain
// takes due escrows: a batch per transaction, and a batch whose
// transaction fails again one record at a time, so that a record that
// cannot be deleted holds up none of the others. A batch of which no
// record could be deleted ends the pruning, for then it is the store that
// fails, not a record. It returns the error that stopped it, or else the
// first a record met.
func (r *dueRun) pruneIdempotency() error {
	until := r.now.Add(-r.l.retention)
	failed := map[string]error{}
	var first error
	list := func(tx Tx, limit int) ([]string, error) { return tx.IdempotenciesUntil(until, limit) }
	err := drain(r, failed, list, func(keys []string) (progress int, err error) {
		for start := 0; start < len(keys); start += dueBatch {
			batch := keys[start:min(start+dueBatch, len(keys))]
			err := r.prune(until, batch...)
			if err == nil || r.stops(err) {
				if err != nil {
					return start, err
				}
				continue
			}
			deleted := 0
			for _, k := range batch {
				if err := r.prune(until, k); r.stops(err) {
					return start, err
				} else if err != nil {
					failed[k] = err
					first = cmp.Or(first, err)
				} else {
					deleted++
				}
			}
			if deleted == 0 {
				return 0, nil
			}
		}
		return len(keys), nil
	})
	return cmp.Or(err, first)
}

// prune deletes the records of keys in one transaction, each only if it
// is still expired: a key used again since is a new record.
func (r *dueRun) prune(until time.Time, keys ...string) error {
	return r.l.update(r.ctx, "process_due", func(tx Tx) error {
		for _, k := range keys {
			rec, err := tx.Idempotency(k)
			switch {
			case errors.Is(err, ErrNotFound):
				continue
			case err != nil:
				return err
			case rec.At.After(until):
				continue
			}
			if err := tx.DeleteIdempotency(k); err != nil {
				return err
			}
		}
		return nil
	})
}
