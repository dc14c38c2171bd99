package escrow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	retention  time.Duration   // how long an idempotency key's result is replayed
	arbiter    string          // for escrows whose Terms name none
	operators  map[string]bool // who may void ratings
	obs        Observer        // nil: no one is told
	log        *slog.Logger    // nil: nothing is logged
	commits    commitSignal    // wakes WaitEvents and Consume
	poll       time.Duration   // how often they look for events committed elsewhere
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
	// Operators are the accounts that may void ratings (VoidRating): the
	// host's staff or its own systems. Each must be a valid ID and need
	// not have an account. None: no one may.
	Operators []string
	// Logger, if not nil, is told of what happens without a caller to
	// return an error to: each timer ProcessDue fires and each rating
	// window it closes (Info), each escrow or aggregate it skips, with the
	// error (Error), and each write the store refuses: at Warn when it is
	// closed or read-only, at Error when it failed in some other way of its
	// own. Records carry the call's word (process_due for what
	// ProcessDue does), the IDs, action and state words, and errors as
	// attributes; no amounts. Nil logs nothing.
	Logger *slog.Logger
	// Observer, if not nil, is told of every call, every read-write
	// transaction and every timer, for metrics; see Observer. Nil costs
	// nothing.
	Observer Observer
	// EventPoll is how often WaitEvents and Consume look for events that
	// another Ledger committed to the same store (another process, with a
	// store that several may share); zero means DefaultEventPoll. A commit
	// through this Ledger wakes them at once. It may not be negative.
	EventPoll time.Duration
}

// DefaultEventPoll is how often a waiting reader looks for events
// committed by another Ledger, unless Options say otherwise.
const DefaultEventPoll = time.Second

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
	l := &Ledger{host: store, store: ctxStore{store}, clock: opts.Clock, currencies: map[string]Currency{},
		obs: opts.Observer, log: opts.Logger}
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
	for _, op := range opts.Operators {
		if err := checkID("operator", op); err != nil {
			return nil, err
		}
		if l.operators == nil {
			l.operators = map[string]bool{}
		}
		l.operators[op] = true
	}
	switch l.poll = opts.EventPoll; {
	case l.poll < 0:
		return nil, invalidArg("EventPoll %v may not be negative", l.poll)
	case l.poll == 0:
		l.poll = DefaultEventPoll
	}
	switch l.retention = opts.IdempotencyRetention; {
	case l.retention < 0:
		return nil, invalidArg("IdempotencyRetention %v may not be negative", l.retention)
	case l.retention == 0:
		l.retention = DefaultIdempotencyRetention
	}
	l.rep.minUnits = map[string]int64{}
	for code, c := range l.currencies {
		l.rep.minUnits[code] = leastCounted(l.rep.minValue, c.Minor, l.rep.minAtLeast)
	}
	err = l.update(ctx, "new", func(tx Tx) error {
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
	for _, c := range l.currencies {
		register(c) // so that JSON amounts of c take its minor units
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

// checkCurrency refuses a currency the ledger does not know.
func (l *Ledger) checkCurrency(c Currency) error {
	if known, ok := l.currencies[c.Code]; !ok {
		return &AmountError{Currency: c.Code, Reason: "not in the ledger's registry", Err: ErrUnknownCurrency}
	} else if known != c {
		return &AmountError{Currency: c.Code, Err: ErrUnknownCurrency,
			Reason: fmt.Sprintf("has %d decimal places in the ledger's registry, not %d", known.Minor, c.Minor)}
	}
	return nil
}

// checkPayment refuses an amount that cannot be paid: unknown currency,
// zero, negative or past MaxUnits.
func (l *Ledger) checkPayment(m Money) error {
	if m.cur == nil { // the zero Money: no amount was given at all
		return &AmountError{Reason: "no amount given: a payment must be more than zero", Err: ErrInvalidAmount}
	}
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

// leastCounted is the least value, in minor units of a currency of minor
// places, whose ratings count under a positive minimum: the minimum
// itself, rounded up to a minor unit, or, unless atLeast, the least value
// above it. A minimum past MaxUnits lets nothing count. A minimum built
// in code may have any exponent an int32 holds, so its digits decide
// where they alone can, before any rescaling that would take time and
// memory in proportion to the exponent.
func leastCounted(minimum decimal.Decimal, minor int, atLeast bool) int64 {
	// min×10^minor has this many digits before its point.
	switch digits := int64(minimum.NumDigits()) + int64(minimum.Exponent()) + int64(minor); {
	case digits > 19: // at least 10^19
		return MaxUnits + 1
	case digits <= 0: // less than one minor unit
		return 1
	}
	units := minimum.Shift(int32(minor)).Ceil()
	if !atLeast {
		units = minimum.Shift(int32(minor)).Floor().Add(decimal.NewFromInt(1))
	}
	if units.GreaterThan(maxUnitsDecimal) {
		return MaxUnits + 1
	}
	return units.IntPart()
}
