// Package escrow holds a buyer's money until the goods arrive, then pays the
// seller; it refunds, or lets an arbiter split the money, when things go
// wrong. It is a library, not a server: a Go program opens a store, creates
// a Ledger over it and calls methods.
//
// # Basics
//
// A Ledger ties everything to one Storage:
//
//	store := memstore.New()
//	l, err := escrow.New(ctx, store, &escrow.Options{
//		Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")}, // 0.6%
//	})
//
// Parties have accounts. Money enters with Deposit and leaves with Withdraw;
// in between it only moves between accounts, so the ledger always balances.
//
//	l.OpenAccount(ctx, "alice")
//	l.Deposit(ctx, "alice", escrow.MustParseMoney("500.00", escrow.CNY))
//
// A trade is an Escrow, opened with a caller-chosen ID:
//
//	l.Open(ctx, escrow.Terms{ID: "order-1001", Buyer: "alice", Seller: "teashop",
//		Price: escrow.MustParseMoney("199.00", escrow.CNY), Item: "Longjing, 250 g"})
//	l.Pay(ctx, "order-1001", "alice")          // alice's 199.00 is now held
//	l.Ship(ctx, "order-1001", "teashop", "SF1234567890")
//	l.Confirm(ctx, "order-1001", "alice")      // released: 197.81 to teashop, 1.19 fee
//
// Account and escrow IDs are 1 to 128 bytes of printable UTF-8 in the sense
// of unicode.IsPrint: no control, format or bidirectional characters and no
// space but U+0020. Free text (an item, a tracking number, a reason, a
// comment, a reply) may hold no control characters, newlines and tabs aside
// where a text may span lines, and no bidirectional formatting characters
// such as U+202E, which would make it display as something else. Either is
// refused with ErrInvalidArgument: an ID when the account or escrow is
// opened and wherever a call names one to act on or to read (an escrow ""
// is refused as invalid, not looked for), the system accounts aside, which
// may be read (and FeeAccount withdrawn from). An actor is the exception: no party of any escrow has an ID
// that breaks the rule, so an action by such an actor is refused with
// ErrNotParty.
//
// # The trade lifecycle
//
// An escrow moves through these states (see State):
//
//	AwaitingPayment --Pay--> AwaitingShipment --Ship--> AwaitingConfirmation --Confirm--> Completed
//
// Before payment either party may Cancel (Closed). After payment, while no
// refund request, return or dispute is open, the seller may Refund any
// part of what is held, any number of times; the buyer may
// RequestRefund, which the seller answers with AgreeRefund or RefuseRefund;
// either party may Dispute, and the escrow's arbiter ends the dispute with
// Resolve and a Split. An escrow with Milestones is paid once and released in
// tranches, each confirmed on its own with ConfirmMilestone. The reasons
// given stay on the escrow: Escrow.Refund holds the request and any
// refusal of it, Escrow.Dispute who disputed, why and when. Terms.Metadata
// carries the host's own data about the trade (up to 50 keys, as Stripe
// allows), returned on the escrow and on each of its events.
//
// Goods that were shipped usually have to come back before the money does.
// After shipment the buyer may RequestReturn instead of a refund: the
// seller agrees with AgreeReturn and an address (or turns the request down
// with RefuseRefund), the buyer sends the goods back with ShipReturn and a
// tracking number, and the seller's ConfirmReturn refunds the amount asked
// for; the seller may instead RefuseReturn the goods, with a reason, and
// then either party may Dispute. The buyer may CancelReturn until the goods
// are shipped back, or accept the seller's refusal of them with it. Escrow.Return holds the
// address, the tracking number and any refusal.
//
//	AwaitingConfirmation --RequestReturn--> ReturnRequested --AgreeReturn or timer--> AwaitingReturn
//	                                               |                                        |
//	                                      RefuseRefund: back                           ShipReturn
//	                                                                                        v
//	                       Refunded (or back, if partial) <--ConfirmReturn or timer-- ReturnShipped
//	                                                                                        |
//	                                                                                  RefuseReturn
//	                                                                                        v
//	                                                            Disputed <--Dispute-- ReturnRefused
//
//	ReturnRequested, AwaitingReturn, ReturnRefused --CancelReturn--> back
//	AwaitingReturn (not shipped back), ReturnRefused (not disputed) --timer: the return lapses--> back
//
// Back is AwaitingConfirmation, with the auto-confirm timer, paused for the
// whole return, resumed with the time that was left.
//
// Some actions change no state. A seller who ships an order in parts
// records each with ShipPart and its tracking number (kept in
// Escrow.Shipments), and the last with Ship, from which the auto-confirm
// deadline runs. Extend puts that deadline back: the buyer once, by up to
// Timers.BuyerExtension (3 days by default), the seller any number of
// times, up to Timers.SellerExtensionLimit (30 days) in all; Escrow.Extended
// keeps the sums. In a dispute the buyer, the seller and the arbiter add
// notes with AddEvidence, each with an optional reference to a file the
// host keeps, kept in order in Escrow.Evidence.
//
// PayAll pays a buyer's cart, escrows with several sellers, in one
// transaction: all of them, each with its own EscrowPaid event, or none.
// If one may not be paid, a *CartError names each one refused and why; if
// the cart's total is more than the buyer has, an *InsufficientFundsError
// says so. Under one idempotency key, the whole cart is one call.
//
// Every action names its actor. Only the buyer pays, confirms, requests
// refunds and returns and ships the goods back; only the seller ships,
// refunds and answers refund and return requests; only the arbiter
// resolves. A wrong actor gets ErrNotParty, an action the state does not
// allow gets ErrInvalidTransition; Allowed tells a user interface in
// advance. Completed, Refunded, Resolved and Closed are terminal, and a
// terminal escrow holds nothing.
//
// # Money
//
// Amounts are Money values: exact, non-negative, of one Currency with a
// fixed number of minor units (CNY 2, JPY 0). They convert to and from
// decimal.Decimal at the API and are counted in int64 minor units inside, so
// arithmetic is exact and cheap. An amount more precise than its currency,
// a negative one, zero where a payment is meant, a currency the ledger does
// not know (register more with Options.Currencies), a mix of currencies, or
// an amount past MaxUnits is refused with a typed error.
//
// Every movement of money is one journal Entry whose postings add up to
// zero. A Balance has two buckets: Available, and Held — the buyer's money
// paid into escrows, locked in the buyer's own account until it is released
// or refunded. WorldAccount is the outside world (deposits and withdrawals)
// and FeeAccount collects fees, which are rounded by a stated Rounding mode;
// Allocate splits an amount without losing a minor unit. CheckMoney
// verifies the money invariants: each currency sums to zero, no user
// balance is negative, each buyer's held money equals what their escrows
// hold, and terminal escrows hold nothing; Ledger.Check adds reputation's.
//
// # Timers
//
// Each waiting state has a deadline and an action (see Timers and
// DefaultTimers): unpaid escrows close, unshipped ones are refunded, shipped
// ones are released to the seller after 10 days (auto-confirm), and a refund
// request the seller ignores is granted. In a return, a request the seller
// does not answer in 5 days is agreed to, goods the buyer does not send back
// within 7 days end the return (it lapses, and the trade goes back to
// where it was), returned goods the seller does not confirm within 10 days
// are refunded, and a refusal of them nobody disputes within 7 days ends
// the return likewise. A dispute has no deadline unless
// Timers.ArbiterWithin sets one: then, when it passes, an EscrowEscalated
// event tells the host, which may escalate, and the dispute stays open. An
// open refund request, return or dispute pauses the running timer.
//
// A deadline binds when it passes, not when ProcessDue gets to it: any
// action taken after it, before ProcessDue fired it, fires it first and
// is judged on the state that left, so the outcome does not depend on
// which ran first. A late Ship finds the escrow refunded and a late Pay
// finds it closed, both refused with ErrInvalidTransition; a late refusal
// of a refund finds the refund made; a timer that has run out cannot be
// paused by a refund request or dispute; and a late Confirm finds the
// escrow completed. A deadline that a fired timer starts (the auto-confirm
// resumed when a refund request or return ends, the buyer's time to send
// goods back once the seller's time to answer passed) runs from when the
// one before it passed, so when both have passed, both fire, in order.
// Time comes from Options.Clock; ProcessDue fires whatever is due,
// finding it through the store's due index, and RunTimers calls it on a
// ticker. An escrow whose action fails is skipped, stays due and is
// reported in a DueError; the others fire all the same.
//
// # Reputation
//
// The buyer and the seller of an escrow that ended (Completed or Resolved by
// default) may Rate each other once, within 15 days: Positive, Neutral or
// Negative, and from a buyer optional Details scored 1 to 5. When the window
// closes, ProcessDue gives a party who stayed silent while the other rated
// a default Positive. Revise raises a Neutral or Negative once within 30
// days, or WithdrawRating takes it back; Reply answers a rating once; an
// operator (Options.Operators) may VoidRating any rating, with a reason.
//
// A rating counts +1, 0 or −1 point, unless one rater's ratings of one
// ratee already reached 6 points either way in the calendar month, the
// rater's rating of the same item (Terms.SKU) counted less than 14 days
// before, the escrow was worth 1 unit or less, or the rater lost the
// dispute on it; each Rating records whether it counted and why not. Reputation reads a
// party's views as seller and as buyer from aggregates kept in the same
// transaction as each rating: points and Level (see LevelFor), counts over
// 7 to 365 days, the positive rate over 180 days and its Wilson lower
// bound, a Beta reputation weighted by price and decayed by age, and the
// averages of the detail scores over 180 days. Explain lists the ratings
// behind it, and TopSellers ranks sellers from the store's index, which
// ProcessDue keeps current as days pass (see TopSellers for how far).
// Concentration, a read of the ratings themselves, reports the share of a
// seller's points of the last 365 days that came from its top 5 raters
// and from raters with fewer than 3 trades, so a host can flag a
// reputation that a few accounts made. ReputationPolicy, in
// Options.Reputation, changes the rules; with UniqueRaters, points are
// distinct raters over 365 days, positive minus negative.
//
// What a bought reputation costs is measured rather than assumed:
// examples/brushing runs 1,000 buyers and 50 shops for 90 days with a fee
// of 0.6%, and beside them accounts that buy ratings (its table is in the
// README). Two goals were set for the default policy, and neither is met. A
// ring of 10 sybil buyers ordering cheap items from a new shop climbs 53
// times as many TopSellers places per 1,000 CNY as honest shops' fees buy
// (the goal was at most 0.1 times), and reaches the top tenth by Wilson
// after 17 days with 209.31 CNY of sales to itself, 0.018 times the median
// honest shop's 11,513.20 CNY (the goal was at least 100 times). The money
// a sybil pays comes back to the ring, so a counted rating costs at most
// the fee on the cheapest price that counts (nothing, released in
// milestones whose fees each round to zero, since each release's fee is
// rounded on its own), and an all-positive record outranks honest shops
// with a few percent negatives. The pair cap, the
// minimum value and the other rules bound what each account adds, not how
// many accounts there are; no symmetric reputation function is sybil-proof
// (Cheng and Friedman, 2005), so the aim is cost, not immunity, and a host
// that needs more must look at who is behind the accounts.
//
// # Queries
//
// Escrows lists a party's escrows (as buyer, seller or arbiter, in given
// states) newest first, a page at a time behind an opaque cursor; History
// returns one escrow's events; Balances an account's balance in every
// currency. Explain and TopSellers are paged with a Page. Each reads an
// index the store keeps, never every record.
//
// # Idempotency and events
//
// Every call that takes CallOptions (every trade, account and rating
// call; not SetConsumer, Consume, ProcessDue or RunTimers, which are safe
// to repeat as they are) accepts IdempotencyKey: a retry with the same key and
// arguments returns the first result and changes nothing, and the same key
// with other arguments fails with an *IdempotencyMismatchError
// (ErrIdempotencyMismatch) that says which call, on which escrow or
// account, the key was first used for. Replayed reports whether a result
// was replayed. Keys are global to the ledger, so a host that takes them
// from its clients prefixes them with the user or tenant. Arguments are
// compared in an explicit, versioned form that leaves out zero values, so
// a zero spelled two ways (Money{} or 0.00 CNY in a Split) is the same
// argument, and a field added to Terms in a later release does not turn a
// retry across the upgrade into a mismatch. A result is replayed while
// less than Options.IdempotencyRetention (default 7 days) has passed since
// the first call; after that a call with the key is a new call, and
// ProcessDue deletes the old record. Opening an escrow ID again with
// identical terms is also a no-op.
//
// Every change appends one Event in the same transaction — a transactional
// outbox. Read it with Events from the last Seq you handled; you never miss
// an event and never see one whose change was rolled back. WaitEvents
// blocks until there is news, woken by this Ledger's commits; Consume runs
// a named consumer whose place the store keeps, delivering each event at
// least once.
//
// # JSON
//
// Every type a Ledger takes or returns, and every record of the Storage
// contract, has a stable JSON form, meant to go straight into an API;
// testdata/wire holds an example of each, and the tests hold the package
// to them. (Options and the policies in it are configuration, set in Go,
// and have none.)
//
//   - Fields are snake_case: "id", "next_milestone", "rating_due_at". An
//     Escrow is one object, the fields of its Terms in line with its own;
//     a Contribution likewise carries its Rating's.
//   - Enumerations are lower-case words, their Go names in snake_case, by
//     MarshalText and UnmarshalText: states ("awaiting_payment",
//     "refund_requested"), roles ("buyer", "seller", "arbiter"; several
//     joined by commas, "buyer,seller"), scores ("positive"), actions
//     ("pay", "request_refund"), rounding modes ("half_even"), buckets
//     ("available"), rank keys ("wilson"), event types ("escrow_paid") and
//     entry kinds ("deposit"). A word that names no value fails with an
//     *EnumError, wrapping ErrInvalidArgument, that lists the words there
//     are. States and event types are also read in the Go names earlier
//     releases wrote ("AwaitingPayment", "EscrowPaid"). String is for
//     people and messages, and may differ: Action's is prose ("request a
//     refund on"), and an EventType's value ("EscrowPaid") is what stores
//     keep.
//   - Times are RFC 3339 in UTC, with as many fractional digits as they
//     need, and are left out when unset: a field such as "paid_at" is
//     there only once it happened. The ledger keeps every time in UTC,
//     whatever zone its Clock reads in; a time a host sets itself in a
//     value it encodes is written with its own offset.
//   - Durations (an escrow's "timers", "extended" and "paused") are strings as
//     time.Duration's String writes them, "72h0m0s" or "1.5s", which
//     time.ParseDuration reads back to the nanosecond; a zero timer, which
//     takes the default, is left out. A number is refused, not taken as
//     nanoseconds.
//   - Amounts are Money's {"amount":"199.00","currency":"CNY"}, the
//     amount a string with the currency's decimal places; no amount (the
//     zero Money) is null. A Balance's amounts may be negative, as
//     WorldAccount's are.
//   - Optional text (an arbiter, an item, a tracking number, a reason, a
//     comment, a reply, a note), an unset state, score or role, no detail
//     scores, no refund request, no dispute and no metadata are left out;
//     numbers, booleans and amounts are always there, but for the numbers
//     whose zero means none: an escrow's "cart_size" (not paid in a cart),
//     a page request's "limit" (the default page) and a rating's detail
//     scores "described", "communication" and "shipping" (a score not
//     given).
//   - Metadata, the host's own data on an escrow and its events, is an
//     object of strings: "metadata":{"order":"A-1001"}.
//
// Decoding any of these forms gives back exactly the value that was
// encoded. Idempotency records keep results in a versioned form of their
// own, so a result stored by an earlier release replays unchanged.
//
// # Errors
//
// Errors are the sentinels in errors.go, tested with errors.Is, and typed
// errors (AmountError, RoleError, TransitionError, InsufficientFundsError,
// NotFoundError, CartError, IdempotencyMismatchError, EnumError,
// MetadataError, InvariantError, DueError) where the caller needs the
// details. Messages start with
// "escrow: ", and repeat a value the caller gave (an amount, an ID, a
// word) only up to its first 128 bytes, then its length ("… (2097152
// bytes)"); the typed error's fields keep it whole. A failure of the store's own (a disk write that failed) is
// the exception: it is returned as the store gave it, wrapping none of the
// sentinels, and Code calls it "internal". A call whose context is cancelled or past its deadline fails
// with an error for which errors.Is(err, context.Canceled) (or
// context.DeadlineExceeded) is true. A call that returns an error has
// changed nothing, except ProcessDue, whose DueError names the escrows it
// skipped while the others went ahead, and Consume, which keeps the
// consumer places it stored before it returned (and returns the error of
// the host's function wrapped, as its doc says).
//
// # Storage
//
// Storage is a small transactional contract (Update, View and the Tx
// methods) that adapters implement and storage/storagetest verifies.
// storage/filestore, the embedded default, keeps the books durably in one
// directory (an fsynced append-only log with snapshots); storage/memstore
// keeps everything in memory; storage/pgstore, a module of its own so that
// this one never requires a SQL driver, keeps them in PostgreSQL, for a
// market run by several processes or machines on one database.
//
// # Observability
//
// Options.Logger, a *slog.Logger, is told of what has no caller to return
// an error to: the timers that fire, whether ProcessDue fires them or a
// party's call finds a deadline passed and fires it first, and the rating
// windows ProcessDue closes (Info), the escrows and aggregates it skips
// (Error), and the writes a store refuses, at Warn when it is closed or
// read-only and at Error when it failed on its own (a failed disk write).
// Records carry the call's word (process_due for the timers it fires, the
// call's own, such as dispute, for a timer a call fires), IDs, action and
// state words and the error as attributes, and no amount but what the
// error's own text names (an InsufficientFundsError gives the balance it
// found short).
//
// Options.Observer is told, for metrics, of each call (its word such as
// "pay", its duration, its error and whether it was a replay), each
// read-write transaction (its duration, outcome and the records it wrote)
// and each timer fired, by ProcessDue or by a call, or skipped. Its methods
// run synchronously on the caller's goroutine: they must be quick and safe
// for concurrent use.
// examples/metrics wires one to expvar. With neither set, the ledger does
// no more than without them: no clock read, no transaction wrapped.
//
// # Concurrency
//
// A Ledger is safe for concurrent use: each call is one storage transaction,
// so two goroutines paying the same escrow, or spending the same balance,
// cannot both succeed.
package escrow
