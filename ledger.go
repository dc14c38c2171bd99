package escrow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// A Ledger is the entry point of the package: it ties the accounts, the
// journal, the escrows and the event outbox to one Storage and enforces every
// money rule on the way in. Create one with New and share it: a Ledger is
// safe for concurrent use by many goroutines (and, on an adapter that allows
// it, by many processes sharing one store), because every call runs in one
// storage transaction.
//
// Every mutating method takes optional CallOptions; IdempotencyKey makes a
// retried call safe. Every method that fails returns an error from the
// documented set (see errors.go) and leaves the ledger unchanged.
type Ledger struct {
	host       Storage  // the store as the host gave it
	store      ctxStore // the same, as the ledger calls it
	clock      Clock
	currencies map[string]Currency
	fee        feeTerms
	fixedFees  map[string]int64
	timers     Timers
	rep        policy
	retention  time.Duration // how long an idempotency key's result is replayed
	arbiter    string        // for escrows whose Terms name none
}

// Options configure a Ledger. The zero value, or a nil *Options, means the
// defaults.
type Options struct {
	// Clock tells the time. Nil means the system clock; tests pass a
	// *ManualClock so that timers fire without sleeping.
	Clock Clock
	// Currencies are accepted besides DefaultCurrencies. A code may not be
	// registered twice with different minor units.
	Currencies []Currency
	// Fee is the platform's fee on money released to sellers. The zero
	// value charges nothing.
	Fee FeePolicy
	// Timers are the defaults for escrows whose Terms leave a timer zero.
	// Zero fields take DefaultTimers.
	Timers Timers
	// Reputation holds the rating and scoring rules; zero fields take the
	// defaults.
	Reputation ReputationPolicy
	// IdempotencyRetention is how long the result of a call made with an
	// IdempotencyKey is replayed; zero means DefaultIdempotencyRetention.
	// A retry after it is a new call. It may not be negative.
	IdempotencyRetention time.Duration
	// Arbiter resolves the disputes of escrows whose Terms name no arbiter:
	// Open fills it in, so the escrow and its events name it. Empty means
	// such escrows have none, and a Dispute on them fails with
	// ErrNoArbiter. It must be a valid ID and need not have an account.
	Arbiter string
}

// DefaultIdempotencyRetention is how long the result of a keyed call is
// replayed unless Options say otherwise: 7 days, inside the 24 hours to 30
// days that payment APIs keep idempotency keys for.
const DefaultIdempotencyRetention = 7 * 24 * time.Hour

// New returns a Ledger over store, creating the system accounts if the store
// is new. The Ledger does not own the store: close the store when done.
func New(ctx context.Context, store Storage, opts *Options) (*Ledger, error) {
	if store == nil {
		return nil, invalidArg("nil storage")
	}
	if opts == nil {
		opts = &Options{}
	}
	l := &Ledger{host: store, store: ctxStore{store}, clock: opts.Clock, currencies: map[string]Currency{}}
	if l.clock == nil {
		l.clock = SystemClock{}
	}
	for _, c := range append(DefaultCurrencies(), opts.Currencies...) {
		if err := c.validate(); err != nil {
			return nil, err
		}
		if old, ok := l.currencies[c.Code]; ok && old != c {
			return nil, invalidArg("currency %s registered with %d and %d minor units", c.Code, old.Minor, c.Minor)
		}
		l.currencies[c.Code] = c
	}
	var err error
	if l.fee, l.fixedFees, err = l.compileFee(opts.Fee); err != nil {
		return nil, err
	}
	if l.timers, err = opts.Timers.withDefaults(DefaultTimers()); err != nil {
		return nil, err
	}
	if l.rep, err = opts.Reputation.compile(); err != nil {
		return nil, err
	}
	if opts.Arbiter != "" {
		if err := checkID("default arbiter", opts.Arbiter); err != nil {
			return nil, err
		}
		l.arbiter = opts.Arbiter
	}
	switch l.retention = opts.IdempotencyRetention; {
	case l.retention < 0:
		return nil, invalidArg("IdempotencyRetention %v may not be negative", l.retention)
	case l.retention == 0:
		l.retention = DefaultIdempotencyRetention
	}
	l.rep.minUnits = map[string]int64{}
	for code, c := range l.currencies {
		units := l.rep.minValue.Shift(int32(c.Minor)).Ceil()
		if units.GreaterThan(maxUnitsDecimal) {
			units = maxUnitsDecimal.Add(decimal.NewFromInt(1))
		}
		l.rep.minUnits[code] = units.IntPart()
	}
	err = l.store.Update(ctx, func(tx Tx) error {
		for _, id := range []string{WorldAccount, FeeAccount} {
			if _, err := tx.Account(id); errors.Is(err, ErrNotFound) {
				if err := tx.PutAccount(Account{ID: id, System: true, CreatedAt: l.now()}); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Storage returns the store the ledger writes to.
func (l *Ledger) Storage() Storage { return l.host }

// ctxStore is the host's store as the ledger calls it. A call that its
// context ended fails with an error that starts "escrow: " like every
// other, and still matches context.Canceled or context.DeadlineExceeded.
type ctxStore struct{ Storage }

func (s ctxStore) Update(ctx context.Context, fn func(Tx) error) error {
	return ctxErr(s.Storage.Update(ctx, fn))
}

func (s ctxStore) View(ctx context.Context, fn func(Tx) error) error {
	return ctxErr(s.Storage.View(ctx, fn))
}

// ctxErr words an error that comes from a context, unless the store
// already did.
func ctxErr(err error) error {
	if (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) &&
		!strings.HasPrefix(err.Error(), "escrow: ") {
		return fmt.Errorf("escrow: call ended: %w", err)
	}
	return err
}

// now is the ledger's time: the clock's reading in UTC without a monotonic
// part, so that it survives storage unchanged.
func (l *Ledger) now() time.Time { return l.clock.Now().Round(0).UTC() }

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
	return true, json.Unmarshal(rec.Result, out)
}

// remember stores the result of the call made with key.
func remember(tx Tx, key, request string, result any, now time.Time) error {
	b, err := json.Marshal(result)
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

// checkCurrency refuses a currency the ledger does not know.
func (l *Ledger) checkCurrency(c Currency) error {
	if known, ok := l.currencies[c.Code]; !ok || known != c {
		return &AmountError{Amount: "", Currency: c.Code, Reason: "not in the ledger's registry", Err: ErrUnknownCurrency}
	}
	return nil
}

// checkPayment refuses an amount that cannot be paid: unknown currency,
// zero, negative or past MaxUnits.
func (l *Ledger) checkPayment(m Money) error {
	if err := l.checkCurrency(m.currency()); err != nil {
		return err
	}
	if err := m.check(); err != nil {
		return err
	}
	if m.units == 0 {
		return &AmountError{Amount: m.amountString(), Currency: m.currency().Code, Reason: "a payment must be more than zero", Err: ErrInvalidAmount}
	}
	return nil
}

// Currency returns the registered currency with this code, or an error
// wrapping ErrUnknownCurrency.
func (l *Ledger) Currency(code string) (Currency, error) {
	c, ok := l.currencies[code]
	if !ok {
		return Currency{}, &AmountError{Currency: code, Reason: "not in the ledger's registry", Err: ErrUnknownCurrency}
	}
	return c, nil
}
