package escrow

import (
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
	key    string
	hasKey bool // set by IdempotencyKey, so that an empty key is noticed
}

// IdempotencyKey makes a call safe to retry: the first call made with key
// runs and its result is remembered in the same transaction; a later call
// with the same key and the same arguments returns that result and changes
// nothing; one with different arguments fails with ErrIdempotencyMismatch.
// A call that fails is not remembered, so it may be retried with its key.
// A result is replayed while less than Options.IdempotencyRetention (by
// default 7 days) has passed since the first call; from then on the key is
// free, a call with it is a new call, and ProcessDue deletes the record.
// Keys are global to the ledger; 1 to 256 bytes. An empty key is refused
// with ErrInvalidArgument rather than ignored, so that a caller whose key
// went missing does not make the call twice.
func IdempotencyKey(key string) CallOption { return CallOption{key: key, hasKey: true} }

// mutate runs fn in one storage transaction, honouring an idempotency key
// among opts (see runKeyed). describe renders the call and its arguments
// canonically; it is called only when there is a key.
func mutate[T any](ctx context.Context, l *Ledger, opts []CallOption, describe func() string,
	fn func(tx Tx, now time.Time) (T, error)) (T, error) {
	key, err := keyOf(opts)
	if err != nil {
		return *new(T), err
	}
	c := &fnCall[T]{describe: describe, fn: fn, now: l.now()}
	if err := l.store.Update(ctx, func(tx Tx) error { return l.runKeyed(tx, key, c.now, c) }); err != nil {
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
// result replayed instead (or fails with ErrIdempotencyMismatch if it was
// another call), and a new call's result is remembered in the same
// transaction.
func (l *Ledger) runKeyed(tx Tx, key string, now time.Time, c keyed) error {
	if key == "" {
		return c.apply(tx)
	}
	request := c.request()
	if found, err := l.recall(tx, key, request, c.result(), now); found || err != nil {
		return err
	}
	if err := c.apply(tx); err != nil {
		return err
	}
	return remember(tx, key, request, c.result(), now)
}

// fnCall is a keyed call made of functions.
type fnCall[T any] struct {
	describe func() string
	fn       func(tx Tx, now time.Time) (T, error)
	now      time.Time
	out      T
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

// keyOf returns the idempotency key among opts, if any.
func keyOf(opts []CallOption) (string, error) {
	var key string
	hasKey := false
	for _, o := range opts {
		if o.hasKey {
			key, hasKey = o.key, true
		}
	}
	if hasKey && key == "" {
		return "", invalidArg("empty idempotency key")
	}
	if len(key) > 256 {
		return "", invalidArg("idempotency key is %d bytes, more than 256", len(key))
	}
	return key, nil
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
		return true, fmt.Errorf("%w: key %q was first used for %q", ErrIdempotencyMismatch, key, rec.Request)
	}
	if err := decodeResult(rec.Result, out); err != nil {
		return true, fmt.Errorf("%w: key %q holds a result this release cannot read: %w", ErrIdempotencyMismatch, key, err)
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

// pruneIdempotency deletes the idempotency records that expired by now,
// a batch per transaction, through the store's index of them by age.
func (l *Ledger) pruneIdempotency(ctx context.Context, now time.Time) error {
	const batch = 256
	until := now.Add(-l.retention)
	for {
		n := 0
		err := l.store.Update(ctx, func(tx Tx) error {
			keys, err := tx.IdempotenciesUntil(until, batch)
			if err != nil {
				return err
			}
			n = len(keys)
			for _, k := range keys {
				if err := tx.DeleteIdempotency(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || n < batch {
			return err
		}
	}
}
