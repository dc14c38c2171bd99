package escrow

import "context"

// AccountsTx is the part of a Tx that keeps accounts, their balances, the
// double-entry journal and the event outbox. Accounts, Balances and Journal
// are for Check, escrowctl and snapshots, and so is Consumers.
type AccountsTx interface {
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
	// AccountBalances returns every balance of account, ordered by currency
	// code. None: an empty slice. It must use an index, not read every
	// balance.
	AccountBalances(account string) ([]Balance, error)
	// Balances calls fn for every balance ordered by account, then currency
	// code, stopping at the first error fn returns, which it returns.
	Balances(fn func(Balance) error) error

	// AppendEntry stores a journal entry and files it under each account
	// its postings name. The entry takes the next number of the journal
	// sequence (1, 2, 3, … with no gaps among committed entries, in an
	// order no later commit can pass), which the store gives in one of two
	// ways. Most set e.Seq here, and the transaction's own reads show the
	// entry at once. A Publisher numbers entries after their transaction
	// commits: it leaves e.Seq zero, and Entries and Journal show the entry
	// once it is numbered (PendingEntries lists it until then).
	AppendEntry(e *Entry) error
	// Entries returns at most limit numbered entries that post to account,
	// with Seq greater than after, in ascending Seq order. None: an empty
	// slice.
	Entries(account string, after uint64, limit int) ([]Entry, error)

	// Journal returns at most limit numbered entries with Seq greater than
	// after, of every account, in ascending Seq order. None: an empty
	// slice.
	Journal(after uint64, limit int) ([]Entry, error)

	// AppendEvent stores an event. It takes the next number of the event
	// sequence (1, 2, 3, … with no gaps among committed events), given as
	// for AppendEntry: set in ev.Seq here, or by a Publisher after commit,
	// ev.Seq left zero.
	AppendEvent(ev *Event) error
	// Events returns at most limit numbered events with Seq greater than
	// after, in ascending Seq order. None: an empty slice. A reader that
	// passes the last Seq it handled never skips an event.
	Events(after uint64, limit int) ([]Event, error)
	// Consumer returns the consumer with this name, or ErrNotFound.
	Consumer(name string) (Consumer, error)
	// PutConsumer creates or replaces the consumer c.Name.
	PutConsumer(c Consumer) error
	// Consumers calls fn for every consumer in ascending name order,
	// stopping at the first error fn returns, which it returns.
	Consumers(fn func(Consumer) error) error
	// EscrowEvents returns at most limit events whose Escrow is id, with Seq
	// greater than after, in ascending Seq order. None: an empty slice. It
	// must use an index, not read every event.
	EscrowEvents(id string, after uint64, limit int) ([]Event, error)
}

// A Publisher is a Storage that numbers journal entries and events when it
// publishes them, after their transaction commits, rather than as they are
// appended. Numbering inside the transaction makes every transaction that
// appends one conflict with every other that does, which a store running
// many writers at once (pgstore) cannot afford. A Publisher still keeps
// both sequences gap-free and numbers rows only once no transaction that
// could commit an earlier one is still running, so a reader following
// Events never skips one. Update publishes what its transaction appended
// before it returns, unless an older transaction is still running; then
// the rows are numbered as soon as it ends.
type Publisher interface {
	Storage
	// Publish numbers every entry and event whose transaction committed
	// before the call, waiting while transactions that began earlier are
	// still running, until ctx ends.
	Publish(ctx context.Context) error
}

// PendingTx is implemented by the Tx of a Publisher.
type PendingTx interface {
	// PendingEntries returns the journal entries the transaction sees that
	// are not numbered yet, each with Seq zero, in the order they were
	// appended. Check adds them to what the journal gives, so that it
	// holds while writers commit.
	PendingEntries() ([]Entry, error)
}
