package escrow

import "context"

// Storage is the contract a storage adapter implements: transactions over
// accounts, balances, escrows, the journal, events and idempotency records.
// The Ledger is the only caller; hosts open an adapter (memstore, filestore,
// pgstore) and hand it to New. The conformance suite in storage/storagetest
// checks every rule below, so an adapter that passes it is a correct one.
//
// Records go in and come out by value: an adapter must not keep or hand out
// memory the caller can still reach (it copies slices and maps, such as
// Terms.Metadata and Event.Metadata, on the way in and out).
type Storage interface {
	// Update runs fn in a read-write transaction. If fn returns nil, every
	// write it made is committed atomically and durably before Update
	// returns nil; if fn returns an error or panics, none is, and Update
	// returns fn's error (or re-panics). If ctx ends while fn runs, an
	// adapter may roll back though fn returned nil, and return ctx's error
	// (pgstore does; memstore and filestore commit): a nil from Update, not
	// from fn, is what says the writes are committed. (An adapter over a
	// network connection cannot always tell whether a commit cut off on its
	// way took effect; it then returns an error though the writes may be
	// committed, as pgstore's doc says.) An adapter that detects a
	// conflict with a concurrent transaction may run fn again from the
	// start, so fn must have no effects outside tx; if it gives up it
	// returns an error wrapping ErrConflict. After Close, Update returns
	// ErrClosed without calling fn.
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
//
// Its methods come in four groups, one file each: accounts, the journal
// and the event outbox (AccountsTx); escrows and their due index
// (EscrowsTx); ratings and reputation (RatingsTx); idempotency records
// (IdempotencyTx). The methods that visit every record of a kind (Accounts,
// Balances, Escrows, Journal, Ratings, Aggregates, DayCounts, PairMonths,
// Idempotencies) exist for Check, escrowctl (dump, stats) and adapters' snapshots;
// no call of the Ledger on the request path uses them.
type Tx interface {
	AccountsTx
	EscrowsTx
	RatingsTx
	IdempotencyTx
}

// EventNotifier is an optional capability of a Storage: telling when an
// event was committed by any writer, including one in another process
// (pgstore does it with LISTEN/NOTIFY; memstore and filestore tell of the
// commits of every Ledger in the process). WaitEvents and Consume use it
// when the store has it, so that they wake at once rather than at their
// next poll for events committed through another Ledger; they go on
// polling as well, so a notifier that misses a commit only delays it.
type EventNotifier interface {
	// EventsCommitted returns a channel that is closed once an event has
	// been committed after the call, or earlier with nothing new, which a
	// waiter takes as a reason to look again. Close closes it too (and
	// it is closed already when the store is), so that a waiter finds the
	// store closed at once rather than at its next poll. It never blocks.
	EventsCommitted() <-chan struct{}
}

// BalanceAdder is an optional capability of a Tx: adding to a system
// account's balance (WorldAccount, FeeAccount) without reading it. Every
// deposit and withdrawal posts to WorldAccount and every release with a
// fee to FeeAccount, so a store whose transactions read and write one row
// for each would make all of them conflict with each other; with
// AddBalance the store may keep a system balance as several rows that it
// adds to independently and sums on read (pgstore keeps stripes). When a
// read-write Tx has it, the ledger posts to system accounts through
// AddBalance instead of Balance and PutBalance; user accounts are always
// read, since their postings are checked against what they hold.
//
// What is given up: the ledger does not read a system balance on that
// path, so it cannot refuse a posting that would take it past MaxUnits
// (999,999,999,999,999,999 minor units, about 10^16 yuan, far past any
// real ledger) as it does when it reads one. The store bounds what it
// keeps instead, or says that it does not; Check still reads every balance.
// memstore and filestore do not have it: they run one writer at a time
// anyway.
type BalanceAdder interface {
	// AddBalance adds available and held minor units of currency c to the
	// balance of the system account account, creating the balance if the
	// account has never held c, as if it had read the balance (a zero one
	// if none) and put the sum. Afterwards, in this transaction and once
	// it commits, Balance, AccountBalances and Balances return the sum. It
	// refuses an account that is not a system account with an error
	// wrapping ErrInvalidArgument, and changes nothing.
	AddBalance(account string, c Currency, available, held int64) error
}
