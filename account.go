package escrow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// System accounts. Their IDs start with '@', which user account IDs may not.
// The ledger creates them when it opens a store.
const (
	// WorldAccount stands for the world outside the ledger: deposits come
	// from it and withdrawals go to it, so its balance is the negative of
	// all the money inside.
	WorldAccount = "@world"
	// FeeAccount collects the platform's fees, which the platform pays
	// out with Withdraw.
	FeeAccount = "@fees"
)

// An Account belongs to one party of the market (or is a system account).
// It holds one Balance per currency it has ever used.
type Account struct {
	ID        string    `json:"id"`
	System    bool      `json:"system"` // WorldAccount or FeeAccount
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// A Balance is what an account holds in one currency, in two buckets:
// Available money can be paid into an escrow or withdrawn; Held money has
// been paid into escrows this account is the buyer of and waits there until
// it is released to the seller or refunded. Held money is the escrow
// holding: it stays in the buyer's account, locked, the way a two-phase
// transfer keeps a pending debit, so a buyer always sees where it is.
// A user account's buckets are never negative; WorldAccount's available
// bucket is negative by the money deposited.
type Balance struct {
	Account   string   `json:"account"`
	Currency  Currency `json:"currency"`
	Available Money    `json:"available"`
	Held      Money    `json:"held"`
}

// Total returns Available plus Held.
func (b Balance) Total() Money {
	return RestoreMoney(b.Available.units+b.Held.units, b.Currency)
}

// A Bucket names one of the two parts of a Balance.
type Bucket uint8

// Buckets.
const (
	Available Bucket = iota
	Held
)

func (b Bucket) String() string {
	if b == Held {
		return "held"
	}
	return "available"
}

// An EntryKind says what a journal entry records.
type EntryKind string

// Journal entry kinds.
const (
	EntryDeposit    EntryKind = "deposit"    // world → available
	EntryWithdrawal EntryKind = "withdrawal" // available → world
	EntryHold       EntryKind = "hold"       // buyer available → buyer held (Pay)
	EntryRelease    EntryKind = "release"    // buyer held → seller available + fees
	EntryRefund     EntryKind = "refund"     // buyer held → buyer available
	EntrySplit      EntryKind = "split"      // buyer held → buyer, seller and fees (Resolve)
)

// An Entry is one movement of money in the double-entry journal: postings in
// one currency that add up to zero. Entries are never changed or removed.
type Entry struct {
	Seq      uint64    `json:"seq"` // position in the journal, from 1
	At       time.Time `json:"at,omitzero"`
	Kind     EntryKind `json:"kind"`
	Escrow   string    `json:"escrow,omitempty"` // the escrow it belongs to, if any
	Currency Currency  `json:"currency"`
	Postings []Posting `json:"postings"`
}

// A Posting changes one bucket of one account by Change minor units
// (positive in, negative out).
type Posting struct {
	Account string `json:"account"`
	Bucket  Bucket `json:"bucket"`
	Change  int64  `json:"change"`
}

// Change returns the net change the entry makes to account, both buckets
// together, in minor units.
func (e Entry) Change(account string) int64 {
	var n int64
	for _, p := range e.Postings {
		if p.Account == account {
			n += p.Change
		}
	}
	return n
}

// OpenAccount opens an account for a party. IDs are 1 to 128 bytes of
// printable UTF-8 (unicode.IsPrint: no control, format or bidirectional
// characters, no space but U+0020) and may not start with '@'. Opening an
// ID that exists fails with ErrExists (unless the call repeats an
// idempotency key).
func (l *Ledger) OpenAccount(ctx context.Context, id string, opts ...CallOption) (Account, error) {
	start := l.begin()
	if err := checkID("account", id); err != nil {
		return Account{}, l.finish(start, "open_account", err)
	}
	return mutate(ctx, l, start, "open_account", opts,
		func() string { return newRequest("open-account").str("id", id).String() },
		func(tx Tx, now time.Time) (Account, error) {
			if _, err := tx.Account(id); err == nil {
				return Account{}, fmt.Errorf("%w: account %q", ErrExists, id)
			} else if !errors.Is(err, ErrNotFound) {
				return Account{}, err
			}
			a := Account{ID: id, CreatedAt: now}
			if err := tx.PutAccount(a); err != nil {
				return Account{}, err
			}
			return a, tx.AppendEvent(&Event{Type: AccountOpened, At: now, Account: id, Actor: id})
		})
}

// Account returns the account with this ID, or ErrNotFound.
func (l *Ledger) Account(ctx context.Context, id string) (Account, error) {
	start := l.begin()
	if err := checkAccountRef(id); err != nil {
		return Account{}, l.finish(start, "account", err)
	}
	var a Account
	err := l.store.View(ctx, func(tx Tx) error {
		var err error
		a, err = getAccount(tx, id)
		return err
	})
	return a, l.finish(start, "account", err)
}

// Balance returns what account holds in currency c; an account that has
// never used c holds zero. It fails with ErrNotFound for an unknown account
// and ErrUnknownCurrency for a currency not in the registry.
func (l *Ledger) Balance(ctx context.Context, account string, c Currency) (Balance, error) {
	start := l.begin()
	if err := checkAccountRef(account); err != nil {
		return Balance{}, l.finish(start, "balance", err)
	}
	if err := l.checkCurrency(c); err != nil {
		return Balance{}, l.finish(start, "balance", err)
	}
	var b Balance
	err := l.store.View(ctx, func(tx Tx) error {
		if _, err := getAccount(tx, account); err != nil {
			return err
		}
		var err error
		b, err = getBalance(tx, account, c)
		return err
	})
	return b, l.finish(start, "balance", err)
}

// Balances returns what account holds in every currency it has used,
// ordered by currency code; an account that has used none holds an empty
// list. It fails with ErrNotFound for an unknown account.
func (l *Ledger) Balances(ctx context.Context, account string) ([]Balance, error) {
	start := l.begin()
	if err := checkAccountRef(account); err != nil {
		return nil, l.finish(start, "balances", err)
	}
	var out []Balance
	err := l.store.View(ctx, func(tx Tx) error {
		if _, err := getAccount(tx, account); err != nil {
			return err
		}
		var err error
		out, err = tx.AccountBalances(account)
		return err
	})
	if err != nil {
		return nil, l.finish(start, "balances", err)
	}
	return out, l.finish(start, "balances", nil)
}

// Deposit moves amount from the outside world into the account's available
// balance and returns the new balance. A deposit that would take a balance
// past MaxUnits is refused with an *AmountError wrapping
// ErrAmountTooLarge that names the account: the account's own, or
// WorldAccount's, which holds minus all the money deposited in the
// currency and not withdrawn, unless the store adds to system balances
// without reading them (see BalanceAdder).
func (l *Ledger) Deposit(ctx context.Context, account string, amount Money, opts ...CallOption) (Balance, error) {
	return l.move(ctx, EntryDeposit, account, amount, opts)
}

// Withdraw moves amount from the account's available balance to the outside
// world and returns the new balance. It fails with ErrInsufficientFunds if
// the available balance is smaller. The platform pays its fees out the same
// way, from FeeAccount; no other system account may be withdrawn from.
func (l *Ledger) Withdraw(ctx context.Context, account string, amount Money, opts ...CallOption) (Balance, error) {
	return l.move(ctx, EntryWithdrawal, account, amount, opts)
}

// move is Deposit (kind EntryDeposit) and Withdraw (EntryWithdrawal): it
// moves amount between WorldAccount and account's available balance.
func (l *Ledger) move(ctx context.Context, kind EntryKind, account string, amount Money, opts []CallOption) (Balance, error) {
	start := l.begin()
	request, event, from, to := "deposit", Deposited, WorldAccount, account
	if kind == EntryWithdrawal {
		request, event, from, to = "withdraw", Withdrawn, account, WorldAccount
	}
	// A system account is refused below, as not a user's: all but
	// FeeAccount's withdrawals, the platform paying its fees out.
	fees := kind == EntryWithdrawal && account == FeeAccount
	err := checkAccountRef(account)
	if err == nil {
		err = l.checkPayment(amount)
	}
	if err != nil {
		return Balance{}, l.finish(start, request, err)
	}
	return mutate(ctx, l, start, request, opts,
		func() string { return newRequest(request).str("account", account).money("amount", amount).String() },
		func(tx Tx, now time.Time) (Balance, error) {
			if fees {
				// post checks no system balance for an overdraft (and may
				// only add to it, see BalanceAdder): the fees are read.
				b, err := getBalance(tx, FeeAccount, amount.currency())
				if err != nil {
					return Balance{}, err
				}
				if b.Available.units < amount.units {
					return Balance{}, &InsufficientFundsError{Account: FeeAccount, Needed: amount, Available: b.Available}
				}
			} else if err := checkUserAccount(tx, account); err != nil {
				return Balance{}, err
			}
			err := post(tx, &Entry{At: now, Kind: kind, Currency: amount.currency(), Postings: []Posting{
				{Account: from, Bucket: Available, Change: -amount.units},
				{Account: to, Bucket: Available, Change: amount.units},
			}})
			if err != nil {
				return Balance{}, err
			}
			if err := tx.AppendEvent(&Event{Type: event, At: now, Account: account, Actor: account, Amount: amount}); err != nil {
				return Balance{}, err
			}
			return getBalance(tx, account, amount.currency())
		})
}

// Journal returns at most limit journal entries that touch account, with Seq
// greater than after, oldest first. Pass the last Seq you have read as after
// to read on; an empty result means you are up to date.
func (l *Ledger) Journal(ctx context.Context, account string, after uint64, limit int) ([]Entry, error) {
	start := l.begin()
	if err := checkAccountRef(account); err != nil {
		return nil, l.finish(start, "journal", err)
	}
	if limit <= 0 {
		return nil, l.finish(start, "journal", invalidArg("limit %d must be positive", limit))
	}
	var out []Entry
	err := l.store.View(ctx, func(tx Tx) error {
		if _, err := getAccount(tx, account); err != nil {
			return err
		}
		var err error
		out, err = tx.Entries(account, after, limit)
		return err
	})
	return out, l.finish(start, "journal", err)
}

// post applies a journal entry to the balances it names and appends it. It
// refuses an entry that does not balance, and any posting that would leave a
// user account's bucket negative (ErrInsufficientFunds) or past MaxUnits
// (a system account's too, unless the store adds to it unread: see
// BalanceAdder).
func post(tx Tx, e *Entry) error {
	var sum int64
	for _, p := range e.Postings {
		sum += p.Change
	}
	if sum != 0 {
		return fmt.Errorf("escrow: internal error: %s entry does not balance (%d)", e.Kind, sum)
	}
	if len(e.Postings) == 0 {
		return nil
	}
	// Each account's balance is read and written once, however many of
	// the entry's postings name it (Pay posts to both of the buyer's
	// buckets), applying its postings in order. A system account's is
	// only added to, when the store can (see BalanceAdder): it is never
	// checked for overdraft, so it need not be read.
	adder := balanceAdder(tx)
	for i, p := range e.Postings {
		if slices.ContainsFunc(e.Postings[:i], func(q Posting) bool { return q.Account == p.Account }) {
			continue
		}
		if adder != nil && isSystem(p.Account) {
			var avail, held int64
			for _, q := range e.Postings[i:] {
				if q.Account != p.Account {
					continue
				}
				if q.Bucket == Held {
					held += q.Change
				} else {
					avail += q.Change
				}
			}
			if err := adder.AddBalance(p.Account, e.Currency, avail, held); err != nil {
				return err
			}
			continue
		}
		b, err := getBalance(tx, p.Account, e.Currency)
		if err != nil {
			return err
		}
		for _, q := range e.Postings[i:] {
			if q.Account != p.Account {
				continue
			}
			m := &b.Available
			if q.Bucket == Held {
				m = &b.Held
			}
			next := m.units + q.Change
			if next > MaxUnits || next < -MaxUnits {
				change := max(q.Change, -q.Change)
				return &AmountError{Amount: RestoreMoney(change, e.Currency).amountString(), Currency: e.Currency.Code,
					Reason: fmt.Sprintf("the balance of %q would pass the largest amount", q.Account), Err: ErrAmountTooLarge}
			}
			if next < 0 && !isSystem(q.Account) {
				return &InsufficientFundsError{Account: q.Account,
					Needed: RestoreMoney(-q.Change, e.Currency), Available: *m}
			}
			m.units = next
		}
		if err := tx.PutBalance(b); err != nil {
			return err
		}
	}
	return tx.AppendEntry(e)
}

func getAccount(tx Tx, id string) (Account, error) {
	a, err := tx.Account(id)
	if errors.Is(err, ErrNotFound) {
		return Account{}, &NotFoundError{Kind: "account", ID: id}
	}
	return a, err
}

func checkUserAccount(tx Tx, id string) error {
	if isSystem(id) {
		return invalidArg("account %q is a system account", id)
	}
	_, err := getAccount(tx, id)
	return err
}

// getBalance returns the balance, or a zero one if there is none yet.
func getBalance(tx Tx, account string, c Currency) (Balance, error) {
	b, err := tx.Balance(account, c.Code)
	if errors.Is(err, ErrNotFound) {
		return Balance{Account: account, Currency: c, Available: RestoreMoney(0, c), Held: RestoreMoney(0, c)}, nil
	}
	return b, err
}

func isSystem(id string) bool { return strings.HasPrefix(id, "@") }

// checkID validates a caller-chosen account or escrow ID: 1 to 128 bytes
// of printable UTF-8 as unicode.IsPrint has it (no control, format or
// bidirectional characters, no space but U+0020), not starting with '@'.
func checkID(what, id string) error {
	if len(id) > 0 && len(id) <= 128 && id[0] != '@' && printableASCII(id) {
		return nil // most IDs, decided without decoding runes
	}
	if id == "" || len(id) > 128 {
		return invalidArg("%s ID %s must be 1 to 128 bytes", what, quoted(id))
	}
	if isSystem(id) {
		return invalidArg("%s ID %q may not start with '@'", what, id)
	}
	if err := checkText(what, id, 128, false); err != nil {
		return err
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return invalidArg("%s ID %q contains non-printable character %U", what, id, r)
		}
	}
	return nil
}

// printableASCII reports whether s is ASCII with no control characters.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// checkAccountRef validates an account ID a call reads or names: a system
// account, or one that checkID would let be opened.
func checkAccountRef(id string) error {
	if id == WorldAccount || id == FeeAccount {
		return nil
	}
	return checkID("account", id)
}

// checkText refuses text longer than max bytes, invalid UTF-8, control
// characters (C0, DEL and C1; newlines and tabs are allowed if multiline)
// and bidirectional formatting characters, which would let a text show
// other than what it says.
func checkText(what, s string, max int, multiline bool) error {
	if problem := textProblem(s, max, multiline); problem != "" {
		return invalidArg("%s %s", what, problem)
	}
	return nil
}

// textProblem says what checkText finds wrong with s ("is 1001 bytes, more
// than 1000"), or "" if nothing.
func textProblem(s string, max int, multiline bool) string {
	if len(s) > max {
		return fmt.Sprintf("is %d bytes, more than %d", len(s), max)
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return "is not valid UTF-8"
		case multiline && (r == '\n' || r == '\t'):
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			return fmt.Sprintf("contains control character %U", r)
		}
	}
	return ""
}
