package escrow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. Every error the package returns either is one of these or
// wraps one, so callers test with errors.Is. There are two exceptions: an
// error of the host's own function, which Consume returns wrapped, and a
// failure of the store's own (a disk write that failed, a lost
// connection), which a call returns as the store gave it and Code calls
// "internal". Where a caller
// needs the details (which state, which actor, how much was missing), the
// error is also a typed value that errors.As can extract. A call that
// returns any of these errors has changed nothing: no money moved, no state
// changed, no event was written. ProcessDue and Consume are the exceptions:
// ProcessDue acts on many escrows, each in its own transaction, and its
// DueError lists the ones it could not act on while the others went ahead;
// Consume keeps the consumer places it stored before it returned.
var (
	// Errors in the arguments of a call.

	// ErrInvalidAmount reports an amount that is negative, zero where a
	// payment is meant, or more precise than its currency allows.
	ErrInvalidAmount = errors.New("escrow: invalid amount")
	// ErrAmountTooLarge reports an amount, or a sum of amounts, too large to
	// hold exactly.
	ErrAmountTooLarge = errors.New("escrow: amount too large")
	// ErrUnknownCurrency reports a currency that is not in the ledger's
	// registry, or that disagrees with the registered one.
	ErrUnknownCurrency = errors.New("escrow: unknown currency")
	// ErrCurrencyMismatch reports amounts of different currencies used together.
	ErrCurrencyMismatch = errors.New("escrow: currency mismatch")
	// ErrInvalidArgument reports any other malformed argument: an empty or
	// reserved ID, a buyer who is also the seller, a split that does not add
	// up, a negative timer, an over-long text.
	ErrInvalidArgument = errors.New("escrow: invalid argument")

	// Errors from the state of the ledger.

	// ErrNotFound reports a missing account, escrow or record.
	ErrNotFound = errors.New("escrow: not found")
	// ErrExists reports an account or escrow ID that is already taken by a
	// different account or escrow.
	ErrExists = errors.New("escrow: already exists")
	// ErrInsufficientFunds reports an account whose available balance cannot
	// cover a payment or withdrawal.
	ErrInsufficientFunds = errors.New("escrow: insufficient funds")
	// ErrNotParty reports an actor who may not take an action on an escrow:
	// a stranger, or a party in the wrong role (a seller trying to confirm).
	ErrNotParty = errors.New("escrow: actor may not take this action")
	// ErrInvalidTransition reports an action that the escrow's current state
	// does not allow, such as shipping an escrow that was never paid.
	ErrInvalidTransition = errors.New("escrow: action not allowed in this state")
	// ErrNoArbiter reports a dispute on an escrow that names no arbiter.
	ErrNoArbiter = errors.New("escrow: escrow has no arbiter")
	// ErrAlreadyRated reports a second rating of one escrow by one party,
	// or a second reply to one rating.
	ErrAlreadyRated = errors.New("escrow: already rated")
	// ErrRatingClosed reports a rating after the escrow's rating window, or
	// a revision after the revision window.
	ErrRatingClosed = errors.New("escrow: rating window closed")
	// ErrIdempotencyMismatch reports an idempotency key reused with
	// different arguments, or one whose record holds a result this release
	// cannot read (one written by a newer release).
	ErrIdempotencyMismatch = errors.New("escrow: idempotency key reused with different arguments")

	// Errors from storage. Adapters return these (possibly wrapped).

	// ErrConflict reports a transaction that lost a race with another and
	// may be retried.
	ErrConflict = errors.New("escrow: transaction conflict")
	// ErrClosed reports use of a ledger or store after Close.
	ErrClosed = errors.New("escrow: closed")
	// ErrReadOnly reports a write attempted inside a read-only transaction,
	// or on a store opened read-only.
	ErrReadOnly = errors.New("escrow: read-only transaction")
	// ErrInvariant reports a broken ledger invariant, found by Check or CheckMoney.
	ErrInvariant = errors.New("escrow: invariant violated")
)

// AmountError describes an amount that was refused. It wraps one of
// ErrInvalidAmount, ErrAmountTooLarge, ErrUnknownCurrency or
// ErrCurrencyMismatch.
type AmountError struct {
	Amount   string // the amount as given
	Currency string // the currency code as given
	Reason   string // why it was refused, in a few words
	Err      error  // the sentinel
}

// Error names the amount and the currency as given, each cut to its first
// 128 bytes and its length if longer: the fields keep them whole.
func (e *AmountError) Error() string {
	switch {
	case e.Amount == "" && e.Currency == "":
		return fmt.Sprintf("%s: %s", e.Err, e.Reason)
	case e.Amount == "":
		return fmt.Sprintf("%s: %s: %s", e.Err, shown(e.Currency), e.Reason)
	}
	return fmt.Sprintf("%s: %s %s: %s", e.Err, shown(e.Amount), shown(e.Currency), e.Reason)
}

func (e *AmountError) Unwrap() error { return e.Err }

// MetadataError reports Terms.Metadata that breaks a limit: more than
// MetadataMaxKeys keys, or a key or value that is empty, too long, or not
// text as the ledger takes it (see Terms.Metadata). It wraps
// ErrInvalidArgument.
type MetadataError struct {
	Keys   int    // the number of keys given, if more than MetadataMaxKeys; else 0
	Key    string // otherwise the key at fault
	Reason string // what is wrong with it, in a few words
}

func (e *MetadataError) Error() string {
	if e.Keys > 0 {
		return fmt.Sprintf("%s: metadata has %d keys, more than %d", ErrInvalidArgument, e.Keys, MetadataMaxKeys)
	}
	return fmt.Sprintf("%s: metadata key %s: %s", ErrInvalidArgument, quoted(e.Key), e.Reason)
}

// Unwrap returns ErrInvalidArgument.
func (e *MetadataError) Unwrap() error { return ErrInvalidArgument }

// RoleError reports an actor refused for an action. It wraps ErrNotParty.
type RoleError struct {
	Escrow string
	Action Action
	Actor  string
	State  State
	Want   string // the roles that may take the action, e.g. "the seller"
}

func (e *RoleError) Error() string {
	return fmt.Sprintf("escrow: %s may not %s escrow %s (state %s): only %s may",
		quoted(e.Actor), e.Action, quoted(e.Escrow), e.State, e.Want)
}

func (e *RoleError) Unwrap() error { return ErrNotParty }

// TransitionError reports an action that the escrow's state does not allow.
// It wraps ErrInvalidTransition.
type TransitionError struct {
	Escrow string
	Action Action
	State  State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("escrow: cannot %s escrow %q in state %s", e.Action, e.Escrow, e.State)
}

func (e *TransitionError) Unwrap() error { return ErrInvalidTransition }

// InsufficientFundsError reports how much an account lacked. It wraps
// ErrInsufficientFunds.
type InsufficientFundsError struct {
	Account   string
	Needed    Money
	Available Money
}

func (e *InsufficientFundsError) Error() string {
	return fmt.Sprintf("escrow: insufficient funds in %q: need %s, available %s",
		e.Account, e.Needed, e.Available)
}

func (e *InsufficientFundsError) Unwrap() error { return ErrInsufficientFunds }

// InvariantError lists the invariants that Check or CheckMoney found
// broken. It wraps ErrInvariant.
type InvariantError struct {
	Violations []string
}

func (e *InvariantError) Error() string {
	msg := fmt.Sprintf("escrow: %d invariant violation(s)", len(e.Violations))
	for i, v := range e.Violations {
		if i == 5 {
			msg += fmt.Sprintf("; and %d more", len(e.Violations)-i)
			break
		}
		msg += "; " + v
	}
	return msg
}

func (e *InvariantError) Unwrap() error { return ErrInvariant }

// IdempotencyMismatchError reports an idempotency key that was first used
// for another call, or for the same call with other arguments. It says in
// words which call that was (not in the form the ledger compares calls
// in), so that a client can see why its key was refused. It wraps
// ErrIdempotencyMismatch.
type IdempotencyMismatchError struct {
	Key string
	// Call is the first call's word: an action's ("pay",
	// "request_refund", "rate"), or "open", "open_account", "deposit",
	// "withdraw", "revise", "reply", "withdraw_rating", "void_rating" or
	// "pay_all"; "" if its record is of a form too old to tell.
	Call string
	// Escrow or Account is what the first call was made on, when its
	// record says.
	Escrow, Account string
}

func (e *IdempotencyMismatchError) Error() string {
	msg := fmt.Sprintf("%s: key %s was first used ", ErrIdempotencyMismatch, quoted(e.Key))
	phrase := callPhrase(e.Call)
	switch {
	case phrase != "" && e.Escrow != "":
		return msg + fmt.Sprintf("to %s escrow %q", phrase, e.Escrow)
	case phrase != "" && e.Account != "":
		return msg + fmt.Sprintf("to %s account %q", phrase, e.Account)
	case e.Call != "":
		return msg + "for " + e.Call
	}
	return msg + "for another call"
}

func (e *IdempotencyMismatchError) Unwrap() error { return ErrIdempotencyMismatch }

// EnumError reports a word that names no value of an enumeration (a
// State, Role, Score, Action, …) where its text form was decoded, or a
// value with no word where one was encoded. It wraps ErrInvalidArgument.
type EnumError struct {
	Type  string   // the enumeration, in words: "state", "role", "event type"
	Text  string   // the word as given, or the value as String shows it
	Words []string // the words that name a value
}

func (e *EnumError) Error() string {
	return fmt.Sprintf("%s: unknown %s %s (want one of %s)", ErrInvalidArgument, e.Type, quoted(e.Text), strings.Join(e.Words, ", "))
}

func (e *EnumError) Unwrap() error { return ErrInvalidArgument }

// maxShown is the most bytes of a value that an error message repeats:
// room for any ID (128 bytes) and more than any amount, currency or word
// the ledger takes.
const maxShown = 128

// shown is s cut to its first maxShown bytes, at a character's boundary,
// followed by an ellipsis and its length when longer, so that a message
// that repeats what a caller sent stays short however much was sent: a
// 2 MB amount is named by its first bytes and its length. The error's
// fields keep s whole.
func shown(s string) string {
	if len(s) <= maxShown {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:shownCut(s)], len(s))
}

// quoted is s as %q writes it, cut as shown cuts it.
func quoted(s string) string {
	if len(s) <= maxShown {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:shownCut(s)], len(s))
}

// shownCut is where shown cuts s, longer than maxShown: at most maxShown
// bytes in, at the start of a character.
func shownCut(s string) int {
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return cut
}

func invalidArg(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}

// DueError reports the escrows whose due timer or rating window ProcessDue
// could not act on, and the aggregates whose ranking keys it could not
// work out again, and a failure to delete the expired idempotency
// records. It skipped each of them and went on with the rest, so one that
// cannot be done does not hold up the others; a skipped one stays due and
// is tried again by the next ProcessDue. DueError unwraps to Stopped, if
// set, then to each escrow's error in ID order, then to each aggregate's
// in party and role order, then to Idempotency, so errors.Is and
// errors.As see through it.
type DueError struct {
	// Escrows maps the ID of each skipped escrow to why its action failed.
	Escrows map[string]error
	// Aggregates maps each skipped aggregate to why re-keying it failed.
	Aggregates map[PartyRole]error
	// Idempotency is why deleting the expired idempotency records failed,
	// or nil. The records it could not delete stay, and no call replays
	// them; the next ProcessDue deletes them.
	Idempotency error
	// Stopped is the error that ended the run early (the store closed, or
	// the context ended), or nil if ProcessDue got through everything due.
	Stopped error
}

func (e *DueError) Error() string {
	msg := fmt.Sprintf("escrow: %d due escrow(s) and %d aggregate(s) skipped", len(e.Escrows), len(e.Aggregates))
	if e.Stopped != nil {
		msg += fmt.Sprintf(", then stopped: %v", e.Stopped)
	}
	names, errs := e.list()
	for i, name := range names {
		if i == 5 {
			msg += fmt.Sprintf("; and %d more", len(names)-i)
			break
		}
		msg += fmt.Sprintf("; %s: %v", name, errs[i])
	}
	return msg
}

// Unwrap returns Stopped, if set, then each escrow's and each aggregate's
// error, then Idempotency, if set.
func (e *DueError) Unwrap() []error {
	_, errs := e.list()
	if e.Stopped != nil {
		errs = append([]error{e.Stopped}, errs...)
	}
	return errs
}

// list names what was skipped, escrows by ID, then aggregates by party
// and role, then the expired idempotency records, with the error of each.
func (e *DueError) list() (names []string, errs []error) {
	for _, id := range slices.Sorted(maps.Keys(e.Escrows)) {
		names, errs = append(names, fmt.Sprintf("escrow %q", id)), append(errs, e.Escrows[id])
	}
	keys := slices.SortedFunc(maps.Keys(e.Aggregates), func(a, b PartyRole) int {
		return cmp.Or(strings.Compare(a.Party, b.Party), cmp.Compare(a.Role, b.Role))
	})
	for _, k := range keys {
		names, errs = append(names, fmt.Sprintf("%q as %s", k.Party, k.Role)), append(errs, e.Aggregates[k])
	}
	if e.Idempotency != nil {
		names, errs = append(names, "expired idempotency records"), append(errs, e.Idempotency)
	}
	return names, errs
}

// NotFoundError reports what is missing: the kind of record ("account",
// "escrow", "rating", "consumer") and its ID (for a rating, the escrow's,
// with the rater in Rater). It wraps ErrNotFound.
type NotFoundError struct {
	Kind  string
	ID    string
	Rater string // for a rating: whose
}

func (e *NotFoundError) Error() string {
	if e.Kind == "rating" {
		return fmt.Sprintf("%s: no rating by %q on escrow %q", ErrNotFound, e.Rater, e.ID)
	}
	return fmt.Sprintf("%s: %s %q", ErrNotFound, e.Kind, e.ID)
}

func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// codes are the machine codes of the sentinel errors, in the order Code
// tries them: the more specific first where one error may wrap two.
var codes = []struct {
	err  error
	code string
}{
	{ErrIdempotencyMismatch, "idempotency_mismatch"},
	{ErrInvalidAmount, "invalid_amount"},
	{ErrAmountTooLarge, "amount_too_large"},
	{ErrUnknownCurrency, "unknown_currency"},
	{ErrCurrencyMismatch, "currency_mismatch"},
	{ErrInvalidArgument, "invalid_argument"},
	{ErrNotFound, "not_found"},
	{ErrExists, "already_exists"},
	{ErrInsufficientFunds, "insufficient_funds"},
	{ErrNotParty, "not_party"},
	{ErrInvalidTransition, "invalid_transition"},
	{ErrNoArbiter, "no_arbiter"},
	{ErrAlreadyRated, "already_rated"},
	{ErrRatingClosed, "rating_closed"},
	{ErrConflict, "conflict"},
	{ErrClosed, "closed"},
	{ErrReadOnly, "read_only"},
	{ErrInvariant, "invariant_violated"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "timeout"},
}

// Code returns a stable machine code for err, a snake_case word an API
// can send its clients: "insufficient_funds" for an error that wraps
// ErrInsufficientFunds, "not_party", "invalid_transition", and so on for
// every sentinel above, "canceled" and "timeout" for a call whose context
// ended. It returns "" for nil and "internal" for an error that wraps none
// of them (a store's own failure). The words never change once released.
func Code(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}
