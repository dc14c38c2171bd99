package escrow

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
