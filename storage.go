package escrow

import (
	"context"
	"time"
)

// Storage is the contract a storage adapter implements: transactions over
// accounts, balances, escrows, the journal, events and idempotency records.
// The Ledger is the only caller; hosts open an adapter (memstore, filestore,
// pgstore) and hand it to New. The conformance suite in storage/storagetest
// checks every rule below, so an adapter that passes it is a correct one.
//
// Records go in and come out by value: an adapter must not keep or hand out
// memory the caller can still reach (it copies slices on the way in and out).
type Storage interface {
	// Update runs fn in a read-write transaction. If fn returns nil, every
	// write it made is committed atomically and durably before Update
	// returns; if fn returns an error or panics, none is, and Update returns
	// fn's error (or re-panics). An adapter that detects a conflict with a
	// concurrent transaction may run fn again from the start, so fn must have
	// no effects outside tx; if it gives up it returns an error wrapping
	// ErrConflict. After Close, Update returns ErrClosed without calling fn.
	Update(ctx context.Context, fn func(tx Tx) error) error

	// View runs fn in a read-only transaction that sees a consistent
	// snapshot of committed data. Writes inside it fail with ErrReadOnly.
	// After Close, View returns ErrClosed without calling fn.
	View(ctx context.Context, fn func(tx Tx) error) error

	// Close releases the store. It is idempotent; calls after the first
	// return nil.
	Close() error
}

// Tx is one transaction. Its methods may be called only while the function
// passed to Update or View is running. Every "not found" is an error for
// which errors.Is(err, ErrNotFound) is true.
type Tx interface {
	// Account returns the account with this ID, or ErrNotFound.
	Account(id string) (Account, error)
	// PutAccount creates or replaces the account a.ID.
	PutAccount(a Account) error
	// Accounts calls fn for every account in ascending ID order, stopping at
	// the first error fn returns, which it returns. No accounts: no calls.
	Accounts(fn func(Account) error) error

	// Balance returns the balance of account in the currency with this code,
	// or ErrNotFound if that account has never held that currency.
	Balance(account, currency string) (Balance, error)
	// PutBalance creates or replaces the balance of b.Account in b.Currency.
	PutBalance(b Balance) error
	// Balances calls fn for every balance ordered by account, then currency
	// code, stopping at the first error fn returns, which it returns.
	Balances(fn func(Balance) error) error

	// Escrow returns the escrow with this ID, or ErrNotFound.
	Escrow(id string) (Escrow, error)
	// PutEscrow creates or replaces the escrow e.ID, and files it in the due
	// index under e.NextDue(): the earlier of e.DueAt and e.RatingDueAt that
	// is not zero; it removes it from that index when both are zero.
	PutEscrow(e Escrow) error
	// DueEscrows returns the IDs of at most limit escrows whose NextDue is
	// not after t, earliest first (ties by ID). None due: an empty slice. It must
	// use an index, not read every escrow.
	DueEscrows(t time.Time, limit int) ([]string, error)
	// Escrows calls fn for every escrow in ascending ID order, stopping at the
	// first error fn returns, which it returns.
	Escrows(fn func(Escrow) error) error

	// AppendEntry stores a journal entry, setting e.Seq to the next number
	// of the journal sequence (1, 2, 3, … with no gaps among committed
	// entries), and files it under each account its postings name.
	AppendEntry(e *Entry) error
	// Entries returns at most limit entries that post to account, with Seq
	// greater than after, in ascending Seq order. None: an empty slice.
	Entries(account string, after uint64, limit int) ([]Entry, error)

	// Journal returns at most limit entries with Seq greater than after, of
	// every account, in ascending Seq order. None: an empty slice.
	Journal(after uint64, limit int) ([]Entry, error)

	// AppendEvent stores an event, setting ev.Seq to the next number of the
	// event sequence (1, 2, 3, … with no gaps among committed events).
	AppendEvent(ev *Event) error
	// Events returns at most limit events with Seq greater than after, in
	// ascending Seq order. None: an empty slice.
	Events(after uint64, limit int) ([]Event, error)

	// Rating returns the rating rater gave on the escrow, or ErrNotFound.
	Rating(escrow, rater string) (Rating, error)
	// PutRating creates or replaces the rating of r.Rater on r.Escrow.
	PutRating(r Rating) error
	// RatingsOf calls fn for every rating whose Ratee is party, ordered by
	// At, then Escrow, then Rater, stopping at the first error fn returns,
	// which it returns. None: no calls.
	RatingsOf(party string, fn func(Rating) error) error
	// Ratings calls fn for every rating ordered by Escrow, then Rater,
	// stopping at the first error fn returns, which it returns.
	Ratings(fn func(Rating) error) error

	// Aggregate returns the reputation aggregate of party in role (Buyer
	// or Seller), or ErrNotFound.
	Aggregate(party string, role Role) (Aggregate, error)
	// PutAggregate creates or replaces the aggregate of a.Party in a.Role,
	// files it in the ranking index of its role under a.Wilson and
	// a.Expectation, and in the re-key index under a.RekeyDay; it removes
	// it from that index when a.RekeyDay is zero.
	PutAggregate(a Aggregate) error
	// TopAggregates returns at most limit aggregates of role with the
	// highest values of key (RankWilson or RankExpectation), highest first,
	// ties by Party ascending. It must use an index, not read every
	// aggregate. None: an empty slice.
	TopAggregates(role Role, key RankKey, limit int) ([]Aggregate, error)
	// DueAggregates returns at most limit aggregates, of either role, whose
	// RekeyDay is not zero and not after day, earliest RekeyDay first, ties
	// by Party, then Role. None due: an empty slice. It must use an index,
	// not read every aggregate.
	DueAggregates(day int32, limit int) ([]Aggregate, error)
	// Aggregates calls fn for every aggregate ordered by Party, then Role,
	// stopping at the first error fn returns, which it returns.
	Aggregates(fn func(Aggregate) error) error

	// DayRange calls fn for the DayCount of party in role of every day
	// from from to to, both included, that has one, in ascending Day order,
	// stopping at the first error fn returns, which it returns.
	DayRange(party string, role Role, from, to int32, fn func(DayCount) error) error
	// PutDayCount creates or replaces the count of d.Party in d.Role on
	// d.Day; a count whose three numbers are zero may be removed instead.
	PutDayCount(d DayCount) error
	// DayCounts calls fn for every DayCount ordered by Party, Role, then
	// Day, stopping at the first error fn returns, which it returns.
	DayCounts(fn func(DayCount) error) error

	// PairMonth returns the points counted for ratings that rater gave
	// ratee in month ("2006-01"), or ErrNotFound.
	PairMonth(ratee, rater, month string) (PairMonth, error)
	// PutPairMonth creates or replaces the record of p.Ratee, p.Rater and
	// p.Month.
	PutPairMonth(p PairMonth) error
	// PairMonths calls fn for every record ordered by Ratee, Rater, then
	// Month, stopping at the first error fn returns, which it returns.
	PairMonths(fn func(PairMonth) error) error

	// Idempotency returns the record stored under key, or ErrNotFound.
	Idempotency(key string) (IdempotencyRecord, error)
	// PutIdempotency stores r under r.Key, replacing any record there.
	PutIdempotency(r IdempotencyRecord) error
	// Idempotencies calls fn for every record in ascending key order,
	// stopping at the first error fn returns, which it returns.
	Idempotencies(fn func(IdempotencyRecord) error) error
	// IdempotenciesUntil returns the keys of at most limit records whose
	// At is not after t, oldest first (ties by key). None: an empty slice.
	// It must use an index, not read every record.
	IdempotenciesUntil(t time.Time, limit int) ([]string, error)
	// DeleteIdempotency removes the record stored under key, from that
	// index too. No record under key: it does nothing and returns nil.
	DeleteIdempotency(key string) error
}

// IdempotencyRecord remembers the outcome of a call made with an
// idempotency key, so that a repeat of the call returns the same result.
type IdempotencyRecord struct {
	Key     string    // the caller's key
	Request string    // a canonical description of the call and its arguments
	Result  []byte    // the call's result, JSON-encoded
	At      time.Time // when the call was made
}
