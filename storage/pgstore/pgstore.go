// Package pgstore is an escrow.Storage in a PostgreSQL database, for a
// market that runs in several processes, or on several machines, that
// share one database. It is a module of its own, so that the core module
// never requires the PostgreSQL driver (github.com/jackc/pgx/v5).
//
// # Basics
//
// Open connects to a database from a connection string and makes the
// tables if they are not there; New does the same on a pool the host
// already has:
//
//	store, err := pgstore.Open(ctx, "postgres://escrow@db/market", nil)
//	...
//	ledger, err := escrow.New(ctx, store, nil)
//
// # Tables
//
// Every record is a row an operator can query with SQL: accounts,
// balances (available and held; a system account's also in
// balance_stripes, summed by the view system_balances), escrows (state,
// parties, amounts, the next due time, indexed where the ledger looks
// them up; the due time is indexed in escrow_due, see below; the table
// escrow_states names the numbers in the state columns), entries and
// postings (the double-entry journal), events (the outbox), consumers,
// ratings, aggregates, day_counts, pair_months, item_marks, rater_days
// and idempotency; pgstore_migrations lists the migrations applied. Amounts
// are BIGINT minor units beside the currency's code and minor units, never
// floating point. Where a record has fields nobody queries (an escrow's
// terms and timers, a rating's comment, an aggregate's windows) they are
// kept as JSONB in a doc column beside the real ones. The schema is
// created by versioned migrations embedded in the package, applied by
// Open in one transaction under an advisory lock, so that processes
// starting together apply each once; a database whose schema is newer
// than this release fails Open with a SchemaError. On a schema already
// at this release's version Open runs no DDL, so a role that may only
// read and write the store's rows opens it; the role that applies
// migrations must be able to create tables. With Options.ReadOnly,
// Open applies nothing and creates nothing: a schema with no store fails
// with ErrNotStore, and one at another version than this release's with a
// SchemaError. Without it, a database that takes no writes (a standby,
// or default_transaction_read_only on) fails Open with escrow.ErrReadOnly,
// and a write that meets one later (after a failover, say) fails with
// ErrReadOnly, changing nothing.
//
// # Transactions
//
// Update runs in a SERIALIZABLE transaction. PostgreSQL's serializable
// snapshot isolation lets transactions run side by side and aborts one
// of two that would otherwise give a result no serial order gives, with
// SQLSTATE 40001 (or 40P01 for a deadlock); Update then rolls back and runs
// the function again, after a jittered backoff that grows to a cap, up
// to Options.MaxAttempts times, and then returns an error wrapping
// escrow.ErrConflict. The contract allows this: a transaction function has
// no effects outside its transaction, and the ledger's functions start
// from what they read in it. So two payments racing for one account's
// last money cannot both pass: each reads the balance and writes it, and
// one of them is aborted and, run again, sees the other's payment.
//
// This approach, rather than row locks taken in a fixed order, is the one
// that is also correct on CockroachDB: CockroachDB runs every transaction
// as SERIALIZABLE and reports the same SQLSTATE 40001 when one must be
// retried, so the same retry loop serves both. Row locks would need every
// call to know beforehand every row it will touch, which the ledger's
// calls (an idempotency record, then an escrow, then the balances its
// state names) do not. A unique violation (23505) on a table the store
// only ever upserts into can come only from two transactions inserting
// the same new key at once, so it is retried the same way.
//
// A connection lost while its COMMIT is on the way (a server killed, a
// network cut, a context that ends just then) leaves the outcome unknown
// to the store: Update returns an error, though the server may have
// committed. A ledger call made with an idempotency key is safe to make
// again then: if it did commit, it replays.
//
// A commit Update acknowledges is as durable as the server makes it: the
// store leaves synchronous_commit as the database, the role or the DSN
// sets it. PostgreSQL's default (on) flushes the commit's WAL before it
// answers, which is what the storage contract asks; with it off, a server
// crash may lose the last commits acknowledged, so a host that turns it
// off for speed gives up that promise, as the setting's own docs say.
//
// View runs in a REPEATABLE READ READ ONLY transaction: a snapshot of
// committed data, which never waits for a writer nor aborts one.
//
// # Round trips
//
// The ledger calls a transaction's methods one by one, and most of them
// write without needing an answer. So a transaction sends its
// statements in pipelined batches, one round trip each: BEGIN goes with
// the first statement, a write is held back and goes with the next read,
// ahead of it in the same batch (so a read sees the writes before it), and
// the writes left at the end go with COMMIT, followed, in the same round
// trip, by the publishing of its rows (see Numbering). A call costs its
// reads plus one round trip. And in a read-write transaction, reading an
// escrow also reads, in the same round trip, the buyer's and the seller's
// balances in its currency, which the ledger reads next when money moves;
// Balance answers from them until the transaction writes one (the same
// rows in the same snapshot, locked for conflict checks as a read of them
// locks them). And a read of a row the store kept (see Rows kept) takes
// no round trip of its own. A trade's four calls (open, pay, ship,
// confirm) take 4 round trips, 10 without the kept rows and 35 before the
// batches (SCALING.md). A transaction that sent nothing ends without a
// round trip.
//
// A held-back write that fails (a serialization failure, text PostgreSQL
// cannot hold) fails the statement that sent it: the read returns the
// write's error, as does every later call, and Update reports it (or
// retries, for a conflict) and rolls back, nothing of the transaction
// applied. A write's arguments are copied when it is held back, so a
// caller may change its slices at once. What differs from sending each
// write at once: the error comes from the next read or from Update rather
// than from the write, and a function that returns an error of its own
// after a write that would have failed gets its own error back.
//
// A transaction that keeps losing is not starved: after three failed
// attempts it runs alone among the store's writers in this process (see
// Store.attempt). Across processes only the bounded attempts remain.
//
// # Rows kept
//
// A store keeps in memory the last version it saw of the escrows, user
// accounts and user balances its read-write transactions read or wrote
// and committed (8,192 rows unless Options.KeptRows says otherwise), each
// with its row version: the xmin of the row, the id of the transaction
// that wrote that version. Update answers a read of a kept row from
// memory, and sends in its place a guard, held back like a write: a
// statement that reads the same row by the same index, so that
// serializable isolation locks and checks what the read would have, and
// fails (pgstore_row_changed, SQLSTATE PGS02) unless the row is still the
// version kept. Any write of the row, in this
// process or another, makes a new version with a new xmin, so a guard
// that passes has seen, in the transaction's snapshot, the row the
// transaction decided on. When one fails, nothing after it runs, COMMIT
// included, and Update runs the transaction again at once, reading every
// row from the database. A function that returns an error of its own
// after reading kept rows has their guards sent, with ROLLBACK, before
// Update returns the error, so that no error comes from a row that had
// changed. A guard also compares an escrow's state and version, a
// balance's amounts and an account's columns, so that an xmin that comes
// round again after four billion transactions does not pass it alone.
//
// Where processes take turns on the same escrows, a row one kept has
// mostly been changed by another when it reads it again, and a failed
// guard costs an attempt and a round trip. So a store counts, for each
// table, the attempts that read kept rows of it and those that failed on
// a changed row; when more than half of 64 failed, its next 1,024 reads
// of that table go to the database, and then it tries again (so
// accounts, which seldom change, stay kept when escrows are not).
//
// With the rows of the previous calls kept, each of a trade's calls
// takes one round trip (BEGIN, the guards, the writes, COMMIT, the
// publish). The kept rows save round trips, not work: each guard is a
// statement, as the read was (see SCALING.md for what that gained). A
// View reads the database.
//
// An escrow that is not kept is answered as absent, with a guard that
// fails unless it is: most often it is one being opened, whose ID the
// ledger reads to refuse a duplicate. Read from the database, an absent
// ID locks for conflict checks the page of the primary key where it
// would be, and the insert that follows writes to that page, so two
// opens whose IDs share a page (IDs given in order, or a young table)
// each wrote what the other read, and one was aborted: at 16 workers
// nearly every retry of the lifecycle benchmark. When the transaction
// writes the escrow while the guard is still queued, the guard is
// dropped and the escrow inserted, not upserted, with ON CONFLICT DO
// NOTHING, and the statement fails (PGS02) unless it inserted: the
// primary key's uniqueness, which sees every version of the row,
// committed or not, checks the absence instead of a predicate lock. A row
// committed after the transaction's snapshot makes the insert fail with
// a serialization failure, one being inserted makes it wait for its
// transaction, and escrows are never deleted, so an insert that succeeds
// proves the ID absent from the snapshot too, and no transaction can
// write the ID concurrently and commit. The answers are judged as a
// table of kept rows: while more than half fail (escrows made by other
// processes, or forgotten), they pause, and so do they while the kept
// escrows are paused; and only in an Update's first attempt, since an
// attempt that failed forgets the rows it read.
//
// # Numbering
//
// Journal entries and events are numbered 1, 2, 3, … with no gaps, and a
// reader that follows Events with the last Seq it handled never skips one,
// even when transactions commit in another order than they began
// (TestCursorNeverSkips). The numbers are not given inside the writing
// transaction: had they been (the greatest number plus one, as the first
// release did), every two transactions that appended an event, which is
// every ledger call that changes something, would have conflicted, and
// one of them would have run again. A PostgreSQL sequence would not do
// either: its numbers are given at insert, not at commit, so a reader
// could pass a number whose transaction had yet to commit.
//
// So the store is an escrow.Publisher. A transaction stores its rows with
// no number and with its transaction id. After it commits, Update calls
// pgstore_publish (sent in the round trip of the COMMIT, and again, with
// a growing pause, while an older transaction holds its rows back), a
// function the migrations make, which numbers, under
// an advisory lock and at READ COMMITTED (outside the serializable
// checks), the rows of every transaction older than the oldest one still
// running: no transaction that could add a row before them is left, so
// their numbers are final. The publishes of one store coalesce: one is in
// flight at a time, and an Update that commits meanwhile waits for it, or
// for the next, which numbers its rows with those of every other Update
// that committed before it (see publish.go). Update returns once its own
// rows are numbered,
// or after two seconds if an older transaction (anywhere in the cluster:
// transaction ids are the cluster's) keeps running; the store's own
// publishing, every second and at once after such a wait, numbers them
// then. Until they are numbered, Entries, Journal, Events and EscrowEvents
// leave them out, the writing transaction's own reads included, and
// PendingEntries lists the entries, which Check adds to the journal. The
// price is the work of publishing after commits that appended (no
// round trip of its own when nothing older is running and no other
// publish is in flight), and a second write of each numbered row.
//
// Publishing takes the oldest running transaction id from
// pg_current_snapshot, which is PostgreSQL's own; see below.
//
// # System balances
//
// The balances of the system accounts (@world, @fees), which every
// deposit, withdrawal and fee posts to, are not one row each: the store is
// an escrow.BalanceAdder and adds to them without reading, in one of 64
// rows of balance_stripes chosen by the connection's server process, so
// that one connection keeps writing one row and concurrent transactions
// seldom update the same one. A system balance is its row of balances
// plus its stripes; the view system_balances gives it whole (SELECT *
// FROM system_balances WHERE account = '@fees'), and Balance,
// AccountBalances and Balances read it that way. PutBalance of a system
// account sets it whole and removes its stripes. A sum past
// escrow.MaxUnits is still refused with ErrAmountTooLarge: while the
// balances row stays within MaxUnits/2 and each stripe within
// MaxUnits/128 the sum cannot pass it, and past those bounds the balance
// is read, checked and folded back into one row. AddBalance is held back
// like the other writes (see Round trips); an addition past those bounds
// fails its statement instead, and Update runs the transaction again,
// this time reading, checking and folding, so a refusal can come from an
// Update's second attempt.
//
// # Due times
//
// An escrow's next due time is in its row (next_due) and, indexed, in
// escrow_due, one row per escrow, which DueEscrows reads; PutEscrow
// writes both in one statement, escrow_due only when the time changes.
// Indexed on escrows, it made every call that moved a timer (most calls)
// write a new entry into each of the escrows' indexes, and under
// serializable isolation, which locks the index pages a transaction
// reads, two calls on different escrows whose IDs shared a page of the
// primary key aborted one another. Now an update of an escrow changes no
// indexed column, and with the room the table keeps on each page
// (fillfactor 70; 50 for balances) PostgreSQL updates the row in place
// (a HOT update), writing no index entry at all.
//
// # Timers across processes
//
// ProcessDue may run in every process at once. The store's transactions
// are escrow.EscrowClaimers: the transaction that fires an escrow's timer
// first locks the escrow's row with SELECT … FOR NO KEY UPDATE SKIP
// LOCKED, and a run that finds the row locked by another transaction
// leaves that escrow to it, neither firing, counting nor reporting it; a
// later run fires it if that transaction rolled back. The lock only
// spares duplicate work: that each timer fires once still rests on
// serializable isolation, since the claiming transaction reads the escrow
// again and fires only what is still due. Claims go by primary key, one
// escrow to a transaction, so that the predicate locks stay on that row;
// claiming the next due escrows from the due index with SKIP LOCKED would
// put them on the index range every firing writes, and concurrent firers
// would abort each other. Runs that split the escrows still contend on
// the rows every firing writes (a seller's balance), so an escrow can be
// skipped with ErrConflict and is fired by the next run.
//
// # Notifications
//
// Publishing notifies the channel pgstore_events, with the schema as the
// payload, when it numbers events; PostgreSQL delivers it on commit. The
// store is an escrow.EventNotifier: the ledger's WaitEvents and Consume
// wake on it at once, in every process, instead of at their next poll. The
// listener holds one connection from the first wait until Close, taken
// from the pool and then out of its count: the server sees one more
// connection than the pool's MaxConns. A waiter may also wake when the
// listener starts or reconnects, with nothing new: it looks again.
//
// # CockroachDB and other databases
//
// The transactions need nothing PostgreSQL alone has: SERIALIZABLE,
// retry on 40001, INSERT … ON CONFLICT and row comparisons all work on
// CockroachDB. What is PostgreSQL's own: the advisory locks that guard
// migrations and publishing (pg_advisory_xact_lock), lock_timeout, which
// bounds waits for row locks, LISTEN/NOTIFY, which CockroachDB lacks
// (readers there fall back to polling), and the transaction ids and
// snapshots that publishing reads (pg_current_xact_id,
// pg_current_snapshot; PostgreSQL 13 or later), and the xmin system
// column, the row version that the guards of kept rows compare
// (CockroachDB has none; there a kept row would need a version column
// of its own, or none kept). CockroachDB has SKIP LOCKED since v22.2. On
// CockroachDB publishing
// would have to number by commit timestamp once it is closed (a
// changefeed's resolved timestamp) instead. None of this has been run
// against CockroachDB yet.
//
// # Times
//
// A time is kept in two columns: a timestamptz, which holds
// microseconds, and the nanoseconds below them (the *_ns columns), so
// that it reads back exactly and orders exactly; the zero time is
// 0001-01-01 00:00 UTC. A time with no column of its own (an escrow's
// DueAt, PaidAt or UpdatedAt, the times of its refund, return, dispute,
// shipments and evidence, a rating's RevisedAt, an aggregate's BetaAt, …)
// is kept in the JSONB doc as RFC 3339 text, so it must lie in the years
// 0 to 9999 (a write of one outside fails with escrow.ErrInvalidArgument,
// writing nothing); the columns take PostgreSQL's range, 4714 BC to
// 294276 AD. Every time of a record reads back in UTC, whatever zone it
// was written in, those of the docs included. A query bounded by a time
// outside PostgreSQL's range (DueEscrows, IdempotenciesUntil, the After
// of PartyEscrows, the after of RatingsOf) answers as memstore and
// filestore do, since no stored time lies outside it, rather than failing
// and aborting the transaction.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ escrow.Storage = (*Store)(nil)

// Options configure a Store. The zero value, or a nil *Options, takes
// every default.
type Options struct {
	// Schema, if not empty, is the schema Open keeps the tables in (it is
	// created if missing, so only then does the role need the privilege
	// to create schemas in the database), named exactly as written:
	// capitals, spaces and commas are part of the name. PostgreSQL keeps
	// a name of at most 63 bytes, and cuts a longer one, so Open refuses
	// a longer Schema with escrow.ErrInvalidArgument, creating nothing;
	// so it does "$user" (which a search_path takes for the schema named
	// after the user), a name beginning with pg_ (which PostgreSQL
	// reserves) and one with a NUL byte or bytes that are not UTF-8. Open
	// sets it as the search_path of the pool's connections. New ignores
	// it: the pool's own search_path decides, and a search_path that
	// names no schema that exists is refused with ErrInvalidArgument.
	Schema string
	// MaxAttempts is how many times Update runs a transaction that
	// conflicts with others before it gives up with ErrConflict. Zero
	// means 30. The runs again that are no conflict, after a kept row
	// changed or a balance stripe could not take an addition, do not
	// count (see "Rows kept" and "System balances").
	MaxAttempts int
	// MaxBackoff caps the wait between two attempts. Zero means 10ms.
	MaxBackoff time.Duration
	// KeptRows is how many rows the store keeps in memory to answer
	// reads with guards instead (see "Rows kept" in the package
	// documentation). Zero means 8,192; a negative number, none, so that
	// every read goes to the database, as before rows were kept.
	KeptRows int
	// ReadOnly opens the store for reading only, changing nothing in the
	// database: Open creates no schema and applies no migration, and
	// fails with an error wrapping ErrNotStore if the schema holds no
	// store, or with a *SchemaError if its version is not this release's.
	// Update runs its function as View does, so that every write fails
	// with escrow.ErrReadOnly and a transaction that only reads succeeds;
	// Publish fails with escrow.ErrReadOnly. Events that writers commit
	// are numbered by the writers' stores.
	ReadOnly bool
}

// Store is an escrow.Storage in a PostgreSQL database; see the package
// documentation. It is safe for concurrent use, by goroutines and by
// other processes on the same database.
type Store struct {
	pool        *pgxpool.Pool
	ownPool     bool // Open made the pool, so Close closes it
	readOnly    bool
	maxAttempts int
	maxBackoff  time.Duration

	// gate is held for reading by each attempt of an Update, and for
	// writing by an attempt that follows soloAfter failed ones; see
	// Update.
	gate   sync.RWMutex
	listen listener  // see EventsCommitted
	pub    publisher // see publish.go
	kept   rowKeeper // see rows.go

	mu     sync.RWMutex // held for reading by running transactions
	closed bool
}

// Open connects to the database that dsn names (a URL or key=value
// string, as pgx takes it), applies the migrations the schema lacks
// (unless Options.ReadOnly) and returns the store. Close closes the pool
// it made.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if len(o.Schema) > maxIdentifier {
		// PostgreSQL would cut it to its first 63 bytes, and two stores
		// whose names differ only after them would share one schema. The
		// message shows those 63 bytes, not a name of any length whole.
		return nil, fmt.Errorf("pgstore: %w: Schema is %d bytes long, past PostgreSQL's %d: %q…",
			escrow.ErrInvalidArgument, len(o.Schema), maxIdentifier, o.Schema[:maxIdentifier])
	}
	if err := checkSchema(o.Schema); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if o.Schema != "" {
		// Quoted, so that the name is one schema as written: a capital
		// letter, a space or a comma in it stays part of it.
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{o.Schema}.Sanitize()
	}
	// The store names the isolation of every transaction it begins; what
	// runs outside them, the publish sent after a COMMIT, must run at READ
	// COMMITTED (see Numbering), whatever the database's, the role's or
	// the DSN's default.
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s, err := newStore(ctx, pool, o)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ownPool = true
	return s, nil
}

// checkSchema refuses, with ErrInvalidArgument, a Schema that cannot be
// one schema named as written: "$user", which a search_path reads as the
// schema named after the user, quoted or not, so that the tables would go
// there; a name that begins with pg_, which PostgreSQL reserves for its
// own schemas; and text it cannot hold (a NUL byte, bytes that are not
// UTF-8).
func checkSchema(name string) error {
	var why string
	switch {
	case name == "$user":
		why = "a search_path reads it as the schema named after the user"
	case strings.HasPrefix(name, "pg_"):
		why = "PostgreSQL reserves the prefix pg_ for its own schemas"
	case strings.IndexByte(name, 0) >= 0 || !utf8.ValidString(name):
		why = "PostgreSQL cannot hold a NUL byte, or bytes that are not UTF-8, in a name"
	default:
		return nil
	}
	return fmt.Errorf("pgstore: %w: Schema %q: %s", escrow.ErrInvalidArgument, name, why)
}

// maxIdentifier is the longest name, in bytes, that PostgreSQL keeps
// whole (NAMEDATALEN - 1); it cuts a longer one.
const maxIdentifier = 63

// New returns a store on a pool the host made, applying the migrations
// the schema lacks (unless Options.ReadOnly). Close leaves the pool open.
// A nil pool is refused with escrow.ErrInvalidArgument. The pool's
// connections should keep PostgreSQL's default_transaction_isolation,
// READ COMMITTED, as Open's do: the store's publish runs at that default
// (see Numbering), and at a stricter one a publish that overlaps another
// fails and leaves its rows to the next.
func New(ctx context.Context, pool *pgxpool.Pool, opts *Options) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("pgstore: %w: New needs a pool, not nil", escrow.ErrInvalidArgument)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Schema = ""
	return newStore(ctx, pool, o)
}

func newStore(ctx context.Context, pool *pgxpool.Pool, o Options) (*Store, error) {
	if o.MaxAttempts < 0 || o.MaxBackoff < 0 {
		return nil, fmt.Errorf("pgstore: %w: MaxAttempts %d and MaxBackoff %v may not be negative",
			escrow.ErrInvalidArgument, o.MaxAttempts, o.MaxBackoff)
	}
	s := &Store{pool: pool, maxAttempts: o.MaxAttempts, maxBackoff: o.MaxBackoff, readOnly: o.ReadOnly}
	s.kept.max = o.KeptRows
	if s.kept.max == 0 {
		s.kept.max = 8192
	}
	if s.maxAttempts == 0 {
		s.maxAttempts = 30
	}
	if s.maxBackoff == 0 {
		s.maxBackoff = 10 * time.Millisecond
	}
	if o.ReadOnly {
		// Nothing to number: a read-only store writes no rows.
		if err := inspect(ctx, pool); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := migrate(ctx, pool, o.Schema); err != nil {
		return nil, err
	}
	s.pub.start(s)
	return s, nil
}

// Pool returns the pool the store runs its transactions on.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Update runs fn in a serializable transaction, again from the start when
// the database aborts it for a conflict; see escrow.Storage and the
// package documentation. On a read-only store it runs fn as View does.
//
// If ctx ends (is cancelled, or its deadline passes) while fn runs,
// Update commits nothing, even when fn returns nil: it rolls back what fn
// wrote and returns ctx's error, unlike memstore and filestore, which
// commit a function that returns nil. A statement that fn sends after ctx
// ends fails with ctx's error too.
func (s *Store) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	if s.readOnly {
		return s.View(ctx, fn)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	var last error
	eagerAdd, keep := false, true
	// A kept row that had changed, or a stripe that could not take an
	// addition, is no conflict: the attempt after it reads the database,
	// or folds the stripes, so neither comes twice. Neither counts
	// against MaxAttempts, which counts conflicts.
	attempt, spared := 0, 0
	for ; attempt < s.maxAttempts+spared; attempt++ {
		if attempt > 0 && keep {
			// Not after a kept row that had changed: that is no
			// conflict, and the next attempt reads the database.
			if err := s.backoff(ctx, attempt); err != nil {
				return err
			}
		}
		xid, published, err := s.attempt(ctx, attempt >= soloAfter, eagerAdd, keep, attempt == 0, fn)
		if err == nil && xid != 0 && !published {
			s.awaitPublished(ctx, xid)
		}
		if errors.Is(err, errStripeFull) {
			eagerAdd = true
		}
		keep = !errors.Is(err, errRowChanged)
		if !retryable(err) {
			return err
		}
		if (errors.Is(err, errRowChanged) || errors.Is(err, errStripeFull)) && spared < 2 {
			spared++
		}
		last = err
	}
	return fmt.Errorf("pgstore: gave up after %d attempts: %w: %w", attempt, escrow.ErrConflict, last)
}

// soloAfter is how many times an Update may fail on a conflict before
// its next attempt runs alone among this store's writers.
const soloAfter = 3

// attempt runs one attempt of an Update. Serializable snapshot isolation
// does not queue conflicting transactions, it aborts one of them, and it
// is not fair: a transaction that has failed and waits out its backoff can
// lose again and again to short ones that start while it waits, as the
// parallel lifecycle benchmark showed (30 failed attempts in a row). So
// after soloAfter failures an attempt runs alone: it waits for this
// store's running writers to end and keeps new ones out until it ends.
// Writers in other processes are not held back; across processes the
// bounded attempts and ErrConflict remain the answer.
func (s *Store) attempt(ctx context.Context, solo, eagerAdd, keep, guess bool, fn func(escrow.Tx) error) (xid int64, published bool, err error) {
	if solo {
		s.gate.Lock()
		defer s.gate.Unlock()
	} else {
		s.gate.RLock()
		defer s.gate.RUnlock()
	}
	return s.run(ctx, beginUpdate, true, eagerAdd, keep, guess, fn)
}

// View runs fn in a read-only transaction on a snapshot of committed
// data; see escrow.Storage.
func (s *Store) View(ctx context.Context, fn func(escrow.Tx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	_, _, err := s.run(ctx, beginView, false, false, false, false, fn)
	return err
}

// enter read-locks s for a transaction, unless s is closed.
func (s *Store) enter() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return escrow.ErrClosed
	}
	return nil
}

// backoff waits before attempt (1 for the second one): a random time up
// to a bound that doubles from 1ms with each attempt, to the cap.
func (s *Store) backoff(ctx context.Context, attempt int) error {
	bound := time.Millisecond << min(attempt-1, 16)
	bound = min(bound, s.maxBackoff)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(bound)) + 1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// beginUpdate starts the transaction of an Update, sent with its first
// statement: serializable, and with a bound (set_config local to the
// transaction, as SET LOCAL) on how long a statement waits for a row
// lock. In a
// serializable transaction such a wait ends in a serialization failure
// anyway if the holder commits, and two transactions that wait for each
// other would wait for the deadlock detector (deadlock_timeout, a
// second by default) before one is aborted. Failing fast and retrying
// after a backoff does better under contention.
//
// It also turns sequential scans off. The statements of an Update find
// their rows through indexes, but on a small table the planner prefers to
// read the whole table, and under serializable isolation a sequential scan locks
// the whole table for conflict checks: every writer of any of its rows
// then conflicts with the reader (PostgreSQL's documentation on
// serializable isolation says as much). An index scan locks only the
// pages it reads.
var beginUpdate = []string{`BEGIN ISOLATION LEVEL SERIALIZABLE`,
	`SELECT set_config('lock_timeout', '20ms', true), set_config('enable_seqscan', 'off', true)`}

// beginView starts the transaction of a View.
var beginView = []string{`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`}

// errRetry marks an error that a transaction's function returned after a
// statement of its own failed in a way that calls for running it again.
type errRetry struct{ err error }

func (e *errRetry) Error() string { return e.err.Error() }
func (e *errRetry) Unwrap() error { return e.err }

// run runs fn once in a transaction that begin begins, committing if
// write and fn returns nil, rolling back otherwise. An error that calls
// for a retry comes back as an *errRetry. After a commit, xid is the
// transaction's id if it stored rows to publish, and zero if not, and
// published reports whether the publish sent with the commit numbered
// them.
//
// The connection is the transaction's own, taken from the pool; begin is
// sent with the first statement, and writes are sent with the statement
// after them (see tx). A transaction that sent nothing commits or rolls
// back without a round trip.
//
// A read-write transaction keeps the rows it read and wrote if it commits,
// and answers reads from the rows kept if keep, and reads of escrows not
// kept as absent if guess too (see rows.go).
func (s *Store) run(ctx context.Context, begin []string, write, eagerAdd, keep, guess bool, fn func(escrow.Tx) error) (xid int64, published bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, false, classify(err)
	}
	t := &tx{ctx: ctx, conn: pc.Conn(), write: write, begin: begin, eagerAdd: eagerAdd, store: s,
		keep: keep && write && s.kept.max > 0}
	t.guess = t.keep && guess
	committed := false
	defer func() {
		if t.guarded != 0 {
			s.kept.judge(t.guarded, errors.Is(err, errRowChanged))
		}
		if committed {
			s.kept.update(t.seen, t.written)
		} else if len(t.seen) > 0 || len(t.written) > 0 {
			// What it read may be what made it fail, and what it wrote
			// was not committed.
			for key := range t.seen {
				t.wrote(key)
			}
			s.kept.update(nil, t.written)
		}
		t.done = true
		if c := pc.Conn(); !c.IsClosed() && c.PgConn().TxStatus() != 'I' {
			// Rolled back even if ctx has ended: a connection must not go
			// back to the pool inside a transaction (and the pool closes
			// one that would).
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_, _ = c.Exec(rctx, "ROLLBACK")
			cancel()
		}
		pc.Release()
	}()
	err = fn(t)
	if t.failed != nil {
		// A statement failed: the transaction is aborted whatever fn made
		// of the error, so it is what Update reports, or retries.
		return 0, false, t.failed
	}
	if err != nil {
		// fn may have decided on a kept row that has changed.
		if verr := t.verify(); verr != nil {
			return 0, false, verr
		}
		return 0, false, err
	}
	if !write || (t.begin != nil && len(t.queue) == 0) {
		// Read-only, or nothing was sent: the deferred rollback ends
		// what is open.
		return 0, false, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	end := []queued{{sql: "COMMIT", result: func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err != nil {
			return err
		}
		if tag.String() != "COMMIT" {
			return fmt.Errorf("pgstore: COMMIT ended the transaction with %s", tag)
		}
		committed = true
		return nil
	}}}
	var r *round
	if t.appended {
		// Publishing runs after the commit, in the same round trip, in a
		// transaction of its own, unless the store has a publish in
		// flight already: then Update waits for that one (see Numbering).
		// Whatever becomes of it, the commit stands, and what it leaves
		// unnumbered is numbered later.
		r = s.pub.claim()
	}
	if r != nil {
		defer func() {
			if r != nil {
				// The publish did not run, or failed (or a panic is on
				// its way): the round ends with no horizon, and whoever
				// waits for it starts the next.
				s.pub.end(r, 0, 0, nil)
			}
		}()
		end = append(end, queued{sql: publishSQL, result: func(br pgx.BatchResults) error {
			var horizon int64
			if br.QueryRow().Scan(&horizon) == nil {
				published = t.xid < horizon
				want := int64(0)
				if t.xid != 0 {
					want = t.xid + 1
				}
				s.pub.end(r, want, horizon, nil)
				r = nil
			}
			return nil
		}})
	}
	if err := t.send(end...); err != nil && !committed {
		return 0, false, classify(err)
	}
	return t.xid, published, nil
}

// classify wraps an error from the database as an *errRetry when the
// transaction should run again: a serialization failure, a deadlock, a
// lock timeout or a unique violation (see the package documentation);
// text the database cannot store is ErrInvalidArgument, and a write in a
// transaction the database keeps read-only (a standby) is ErrReadOnly.
func classify(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", "23505", "55P03":
			return &errRetry{fmt.Errorf("pgstore: %s: %w", pgErr.Code, err)}
		case "PGS01":
			return &errRetry{fmt.Errorf("pgstore: %w: %w", errStripeFull, err)}
		case "PGS02":
			return &errRetry{fmt.Errorf("pgstore: %w: %w", errRowChanged, err)}
		case "25006":
			// A write in a transaction the database made read-only: a
			// standby, or default_transaction_read_only.
			return fmt.Errorf("pgstore: %w: %w", escrow.ErrReadOnly, err)
		case "22021", "22P05", "22008":
			// Text PostgreSQL cannot hold: a NUL byte, or bytes that are
			// not UTF-8, in an ID or a field; or a time out of its range
			// (4713 BC to 294276 AD).
			return fmt.Errorf("pgstore: %w: %w", escrow.ErrInvalidArgument, err)
		}
	}
	return fmt.Errorf("pgstore: %w", err)
}

// errStripeFull reports an AddBalance, held back, that its stripe could
// not take: Update runs the transaction again with AddBalance reading
// whether it added, and folding the stripes if not.
var errStripeFull = errors.New("a balance stripe cannot take the addition")

func retryable(err error) bool {
	var r *errRetry
	return errors.As(err, &r)
}

// Close marks the store closed, once the running transactions have ended,
// and closes the pool if Open made it. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.listen.stop()
	s.pub.close()
	if s.ownPool {
		s.pool.Close()
	}
	return nil
}
