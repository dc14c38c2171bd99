// Package marketplace is the program of examples/marketplace, importable
// so that a module with another store's driver (storage/pgstore) can run
// the same market on its store; see examples/marketplace for what it does.
package marketplace

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
	"github.com/escrowkit/escrow/storage/memstore"
)

// Options are what the host program adds to the example.
type Options struct {
	// OpenPG, if not nil, opens a PostgreSQL store from a connection
	// string: Run then offers -pg DSN, which keeps the books there
	// instead (ESCROW_PG_DSN by default, unless -store or -data is given).
	// An empty -pg names no database and is refused.
	OpenPG func(ctx context.Context, dsn string) (escrow.Storage, error)
}

// Run is the whole program but for the exit status, so that a test can
// run it and read what it prints.
func Run(w io.Writer, args []string, o Options) error {
	flags := flag.NewFlagSet("marketplace", flag.ContinueOnError)
	flags.SetOutput(w)
	storeKind := flags.String("store", "file", "where the ledger keeps its books: file (durable, in -data) or mem (in memory, gone at exit)")
	dataDir := flags.String("data", "marketplace-data", "the file store's directory; created if missing")
	seed := flags.Uint64("seed", 2025, "seed for the orders drawn at random")
	var pg *string
	if o.OpenPG != nil {
		// The variable is read after the flags, not made the flag's
		// default, so that -h does not print it (a DSN may hold a
		// password) and an explicit -store or -data wins over it.
		pg = flags.String("pg", "", "a PostgreSQL connection string: keep the books in that database (overrides -store;\n"+
			"default $ESCROW_PG_DSN, unless -store or -data is given)")
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	if pg != nil && given(flags, "pg") && *pg == "" {
		// -pg "$DSN" with DSN unset: no database, and not a reason to
		// keep the books somewhere else instead.
		return errors.New("-pg needs a connection string")
	}
	if pg != nil && !given(flags, "pg") && !given(flags, "store") && !given(flags, "data") {
		*pg = os.Getenv("ESCROW_PG_DSN")
	}

	ctx := context.Background()
	var store escrow.Storage
	var err error
	where := *dataDir
	if pg != nil && *pg != "" {
		store, err = o.OpenPG(ctx, *pg)
		where = "the database"
	} else {
		store, err = openStore(*storeKind, *dataDir)
	}
	if err != nil {
		return err
	}
	// The ledger does not own its store: whoever opens the store closes it.
	defer store.Close()

	// A store that already holds a market is continued a month after the
	// last month it holds.
	month, cursor, err := resume(ctx, store)
	if err != nil {
		return err
	}

	// The clock starts at a fixed moment and moves only when the simulation
	// moves it. That keeps the output the same on every run, and lets
	// deadlines that are days away fire at once.
	m := &market{ctx: ctx, out: w, states: map[string]escrow.State{}, month: month, cursor: cursor}
	clock := escrow.NewManualClock(m.at(1, 9))
	ledger, err := escrow.New(ctx, store, &escrow.Options{
		Clock: clock,
		// 0.6% of every release to a seller, rounded half-even to the fen.
		Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006"), Rounding: escrow.RoundHalfEven},
	})
	if err != nil {
		return err
	}

	m.ledger, m.clock = ledger, clock
	if month > 0 {
		fmt.Fprintf(w, "Continuing the market kept in %s: month %d.\n", where, month+1)
	}
	rng := rand.New(rand.NewPCG(*seed, uint64(month)))
	// The parts of the simulation, in the order they happen.
	parts := []func(*market){
		openAccounts,
		normalTrade,
		sellerRefund,
		refundAgreed,
		disputeSplit,
		unpaidOrder,
		leftUnconfirmed,
		func(m *market) { randomOrders(m, rng) },
		paymentDeadline,
		milestoneTrade,
		returnAndRefund,
		extendedTrade,
		cartAtOnce,
		confirmationDeadline,
		cashOut,
		rateTrades,
		reviseRating,
		ratingWindowsClose,
		reputations,
	}
	for _, part := range parts {
		part(m)
		if m.err != nil {
			return m.err
		}
	}
	return m.report()
}

// given reports whether the command line set the flag name.
func given(flags *flag.FlagSet, name string) bool {
	set := false
	flags.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// openStore opens the store the ledger keeps its books in.
func openStore(kind, dir string) (escrow.Storage, error) {
	switch kind {
	case "file":
		return filestore.Open(dir, nil)
	case "mem":
		return memstore.New(), nil
	}
	return nil, fmt.Errorf("unknown store %q (choose file or mem)", kind)
}

// resume finds how many months of the market store already holds (the
// first order of each month is order-1001 under that month's prefix) and
// the Seq of its last event, so that this run prints only its own events.
func resume(ctx context.Context, store escrow.Storage) (month int, cursor uint64, err error) {
	err = store.View(ctx, func(tx escrow.Tx) error {
		for ; ; month++ {
			_, err := tx.Escrow(orderID(month, "order-1001"))
			if errors.Is(err, escrow.ErrNotFound) {
				break
			} else if err != nil {
				return err
			}
		}
		for {
			events, err := tx.Events(cursor, 1000)
			if err != nil || len(events) == 0 {
				return err
			}
			cursor = events[len(events)-1].Seq
		}
	})
	return month, cursor, err
}

// cst is the market's time zone, China Standard Time. A fixed offset keeps
// the output the same on machines without a time zone database.
var cst = time.FixedZone("CST", 8*60*60)

// at returns an hour of a day of the month the simulation runs in: March
// 2025 on a new store, a month later on each run that continues one.
func (m *market) at(day, hour int) time.Time {
	return time.Date(2025, time.March+time.Month(m.month), day, hour, 0, 0, 0, cst)
}

// date names a day of the simulated month, as "March 12".
func (m *market) date(day int) string { return m.at(day, 0).Format("January 2") }

// id returns the ID of an order of this month. The first month's orders
// keep their plain IDs; later months prefix theirs with the month.
func (m *market) id(order string) string { return orderID(m.month, order) }

func orderID(month int, order string) string {
	if month == 0 {
		return order
	}
	return time.Date(2025, time.March+time.Month(month), 1, 0, 0, 0, 0, cst).Format("2006-01") + "/" + order
}

// A market drives the ledger through its trades and prints the ledger's
// events as they are committed.
type market struct {
	ctx    context.Context // one context for the whole run
	ledger *escrow.Ledger
	clock  *escrow.ManualClock
	out    io.Writer
	err    error // the first error; run stops after the part that made it

	cursor uint64                  // Seq of the last event printed
	states map[string]escrow.State // every escrow's latest state, kept from its events
	month  int                     // months the market ran before this run
}

// do takes the two results of a ledger call as they come, so that a trade
// reads as a plain list of calls. Like bufio.Scanner it keeps the first
// error and ignores what follows; on success it prints the events the call
// committed.
func (m *market) do(_ any, err error) {
	if m.err != nil {
		return
	}
	if err != nil {
		m.err = err
		return
	}
	m.printEvents()
}

// refused checks that a call was turned down for the reason expected, and
// says so. A refused call changes nothing, so there is no event to print.
func (m *market) refused(err, want error) {
	if m.err != nil {
		return
	}
	if !errors.Is(err, want) {
		m.err = fmt.Errorf("expected a refusal with %q, got %v", want, err)
		return
	}
	m.note("refused: %v", err)
}

// wait moves the clock on. Nothing fires by itself: deadlines are acted on
// only when ProcessDue runs.
func (m *market) wait(d time.Duration) { m.clock.Advance(d) }

// processDue fires every deadline that has passed, as a host would from
// RunTimers or a cron job.
func (m *market) processDue() {
	n, err := m.ledger.ProcessDue(m.ctx)
	m.do(n, err)
	m.note("ProcessDue fired %d timers", n)
}

func (m *market) section(title string) {
	if m.err == nil {
		fmt.Fprintf(m.out, "\n== %s ==\n", title)
	}
}

func (m *market) note(format string, args ...any) {
	if m.err == nil {
		fmt.Fprintf(m.out, "%14s%s\n", "", fmt.Sprintf(format, args...))
	}
}

// printEvents reads the event outbox from the cursor on, the way a host
// reads it to notify its users: ask for the events after the last Seq
// handled, handle them in order, move the cursor, and repeat until there
// are none. A host keeps its cursor in durable storage and saves it after
// handling, so that a crash repeats an event rather than losing it.
func (m *market) printEvents() {
	for {
		events, err := m.ledger.Events(m.ctx, m.cursor, 100)
		if err != nil {
			m.err = err
			return
		}
		if len(events) == 0 {
			return
		}
		for _, ev := range events {
			if err := m.printEvent(ev); err != nil {
				m.err = err
				return
			}
			m.cursor = ev.Seq
		}
	}
}

// printEvent prints one event as a line: when, which account or escrow,
// the event type, what happened, and the escrow's state afterwards.
func (m *market) printEvent(ev escrow.Event) error {
	when := ev.At.In(cst).Format("Jan 02 15:04")
	if ev.Escrow == "" {
		_, err := fmt.Fprintf(m.out, "%s  %-14s  %-21s  %s\n", when, ev.Account, ev.Type, describe(ev, ""))
		return err
	}
	m.states[ev.Escrow] = ev.State
	// An event carries IDs, not the whole record; a host that needs more
	// (here, who the seller is) reads the escrow.
	var seller string
	if ev.Type == escrow.EscrowOpened {
		e, err := m.ledger.Escrow(m.ctx, ev.Escrow)
		if err != nil {
			return err
		}
		seller = e.Seller
	}
	_, err := fmt.Fprintf(m.out, "%s  %-14s  %-21s  %s  [%s]\n", when, ev.Escrow, ev.Type, describe(ev, seller), ev.State)
	return err
}

// describe says in words what an event records.
func describe(ev escrow.Event, seller string) string {
	who := ev.Actor
	if ev.ByTimer {
		who = "the timer"
	}
	switch ev.Type {
	case escrow.AccountOpened:
		return "account opened"
	case escrow.Deposited:
		return fmt.Sprintf("deposited %s", ev.Amount)
	case escrow.Withdrawn:
		return fmt.Sprintf("withdrew %s", ev.Amount)
	case escrow.EscrowOpened:
		return fmt.Sprintf("%s ordered %q from %s, %s", who, ev.Note, seller, ev.Amount)
	case escrow.EscrowPaid:
		return fmt.Sprintf("%s paid %s, held", who, ev.Amount)
	case escrow.EscrowShipped:
		return fmt.Sprintf("%s shipped, tracking %s", who, ev.Note)
	case escrow.EscrowReleased:
		what := who + " confirmed"
		switch {
		case ev.ByTimer:
			what = "auto-confirmed"
		case ev.Note != "": // a milestone
			what = who + " confirmed " + ev.Note
		}
		return fmt.Sprintf("%s: %s to the seller, fee %s", what, ev.Amount, ev.Fee)
	case escrow.EscrowRefunded:
		return fmt.Sprintf("%s refunded %s", who, ev.Amount)
	case escrow.EscrowRefundRequested:
		return fmt.Sprintf("%s asked for %s back: %s", who, ev.Amount, ev.Note)
	case escrow.EscrowRefundRefused:
		return fmt.Sprintf("%s refused the refund: %s", who, ev.Note)
	case escrow.EscrowShippedPart:
		return fmt.Sprintf("%s shipped part of the order, tracking %s", who, ev.Note)
	case escrow.EscrowExtended:
		by, _, _ := strings.Cut(ev.Note, ",") // "by 72h0m0s, to <time in UTC>"
		return fmt.Sprintf("%s put the confirmation deadline back %s", who, by)
	case escrow.EscrowReturnRequested:
		return fmt.Sprintf("%s asked to send it back for %s: %s", who, ev.Amount, ev.Note)
	case escrow.EscrowReturnAgreed:
		if ev.ByTimer {
			return "the seller did not answer: the return is agreed"
		}
		return fmt.Sprintf("%s agreed to take it back, to %s", who, ev.Note)
	case escrow.EscrowReturnShipped:
		return fmt.Sprintf("%s sent it back, tracking %s", who, ev.Note)
	case escrow.EscrowReturnRefused:
		return fmt.Sprintf("%s refused the returned goods: %s", who, ev.Note)
	case escrow.EscrowReturnCancelled:
		if ev.ByTimer {
			return "the return lapsed; the trade goes on"
		}
		return who + " cancelled the return"
	case escrow.EscrowEvidenceAdded:
		return fmt.Sprintf("%s added evidence: %s", who, ev.Note)
	case escrow.EscrowEscalated:
		return "the arbiter's deadline passed"
	case escrow.EscrowDisputed:
		return fmt.Sprintf("%s called the arbiter: %s", who, ev.Note)
	case escrow.EscrowResolved:
		return fmt.Sprintf("%s split %s: %s; fee %s", who, ev.Amount, ev.Note, ev.Fee)
	case escrow.RatingGiven:
		if ev.ByTimer {
			return fmt.Sprintf("window closed, the silent party's rating of %s: %s", ev.Account, ev.Note)
		}
		return fmt.Sprintf("%s rated %s %s", who, ev.Account, ev.Note)
	case escrow.RatingRevised:
		return fmt.Sprintf("%s revised the rating of %s: %s", who, ev.Account, ev.Note)
	case escrow.RatingReplied:
		return fmt.Sprintf("%s replied to %s's rating", who, ev.Account)
	case escrow.EscrowClosed:
		if ev.ByTimer {
			return "closed: not paid before the deadline"
		}
		return who + " cancelled the order"
	}
	return string(ev.Type)
}

// report prints every balance, the trades by how they ended, and the
// result of the ledger's own audit.
func (m *market) report() error {
	w := m.out
	fmt.Fprintf(w, "\n== Balances on %s (CNY) ==\n", m.clock.Now().In(cst).Format("Jan 02"))
	const row = "%-16s %12s %12s\n"
	fmt.Fprintf(w, row, "account", "available", "held")
	accounts := append(append(append([]string{}, buyers...), sellers...), escrow.FeeAccount, escrow.WorldAccount)
	var available, held int64
	for _, id := range accounts {
		b, err := m.ledger.Balance(m.ctx, id, escrow.CNY)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, row, id, yuan(b.Available.Units()), yuan(b.Held.Units()))
		available += b.Available.Units()
		held += b.Held.Units()
	}
	// Every entry in the journal adds up to zero, so the balances do too:
	// @world is minus the money that came in from outside.
	fmt.Fprintf(w, row, "", strings.Repeat("-", 12), strings.Repeat("-", 12))
	fmt.Fprintf(w, row, "sum", yuan(available), yuan(held))

	counts := map[escrow.State]int{}
	for _, s := range m.states {
		counts[s]++
	}
	var ended []string
	for _, s := range escrow.States() {
		if counts[s] > 0 {
			ended = append(ended, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	fmt.Fprintf(w, "\nTrades: %d (%s)\n", len(m.states), strings.Join(ended, ", "))

	// Check replays the whole journal and every escrow against the
	// balances. It reads everything, so it belongs in tests and audits, not
	// on every request.
	if err := m.ledger.Check(m.ctx); err != nil {
		return fmt.Errorf("the books do not balance: %w", err)
	}
	fmt.Fprintln(w, "Check: the books balance.")
	return nil
}

// yuan formats an amount of fen (which may be negative, for @world) in
// yuan with two decimals.
func yuan(fen int64) string { return decimal.New(fen, -2).StringFixed(2) }
