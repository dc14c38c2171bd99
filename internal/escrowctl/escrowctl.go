// Package escrowctl is the program of cmd/escrowctl, importable so that a
// module with another store's driver (storage/pgstore) can offer the same
// commands on its store; see cmd/escrowctl for what they do.
package escrowctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
	"github.com/escrowkit/escrow/storage/memstore"
)

// Options are what the host program adds to the commands.
type Options struct {
	// OpenPG, if not nil, opens a PostgreSQL store from a connection
	// string, read-only, as the commands change nothing: check, stats and
	// dump then take -pg DSN in place of DIR.
	OpenPG func(ctx context.Context, dsn string) (escrow.Storage, error)
}

const usage = `usage:
  escrowctl check [-ratings] DIR
  escrowctl stats DIR
  escrowctl dump [-escrow ID] DIR
  escrowctl compact DIR
`

const usagePG = `usage:
  escrowctl check [-ratings] DIR | -pg DSN
  escrowctl stats DIR | -pg DSN
  escrowctl dump [-escrow ID] DIR | -pg DSN
  escrowctl compact DIR
`

// A usageError is a command line that makes no sense.
type usageError string

func (e usageError) Error() string { return string(e) }

// ExitStatus reports err, an error from Run with o, on stderr and
// returns the exit status for it.
func ExitStatus(stderr io.Writer, err error, o Options) int {
	usage := usage
	if o.OpenPG != nil {
		usage = usagePG
	}
	var usageErr usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stderr, usage)
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "escrowctl: %s\n%s", usageErr, usage)
		return 2
	}
	fmt.Fprintln(stderr, "escrowctl:", message(err))
	return 1
}

// message is err's text without the prefixes that name the package each
// wrapped error came from: here escrowctl's is the one that counts.
func message(err error) string {
	msg := err.Error()
	for _, prefix := range []string{"filestore: ", "pgstore: ", "escrow: "} {
		msg = strings.TrimPrefix(msg, prefix)
		msg = strings.ReplaceAll(msg, ": "+prefix, ": ")
	}
	return msg
}

// Run is the whole program but for reporting errors and the exit status.
// Output that could not be written is an error: a report nobody can read
// is not all being well.
func Run(w io.Writer, args []string, o Options) error {
	out := &writeChecker{w: w}
	err := run(out, args, o)
	if err == nil && out.err != nil {
		err = fmt.Errorf("writing the output: %w", out.err)
	}
	return err
}

// A writeChecker keeps the first error of the writes to w.
type writeChecker struct {
	w   io.Writer
	err error
}

func (c *writeChecker) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.err = err
	return n, err
}

func run(w io.Writer, args []string, o Options) error {
	if len(args) == 0 {
		return usageError("no command")
	}
	cmd := args[0]
	if slices.Contains([]string{"-h", "-help", "--help", "help"}, cmd) {
		return flag.ErrHelp
	}
	// Refuse a mistyped command before opening the store.
	if !slices.Contains([]string{"check", "stats", "dump", "compact"}, cmd) {
		return usageError(fmt.Sprintf("unknown command %q", cmd))
	}
	// Each command takes its own flags, and only those: a flag meant for
	// another (check -escrow ID, as if it checked one escrow) is refused.
	flags := flag.NewFlagSet("escrowctl "+cmd, flag.ContinueOnError)
	flags.SetOutput(io.Discard) // exitStatus reports the error
	ratings, escrowID := new(bool), new(string)
	switch cmd {
	case "check":
		flags.BoolVar(ratings, "ratings", false, "also recompute reputation under the default policy")
	case "dump":
		flags.StringVar(escrowID, "escrow", "", "only this escrow's history")
	}
	// -pg is defined in every build, so that this one, which has no
	// PostgreSQL driver, can say which build takes it.
	pg := flags.String("pg", "", "the PostgreSQL database to work on, in place of DIR")
	// Each flag is given at most once: the flag package would keep the
	// last value, and dump -escrow a -escrow b print one history of two.
	twice := ""
	flags.VisitAll(func(f *flag.Flag) { f.Value = &onceValue{Value: f.Value, name: f.Name, twice: &twice} })
	if err := flags.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		return err
	} else if twice != "" {
		return usageError(fmt.Sprintf("-%s given twice", twice))
	} else if err != nil {
		return usageError(err.Error())
	}
	if o.OpenPG == nil && flagSet(flags, "pg") {
		return usageError("-pg needs the PostgreSQL build of escrowctl: cd storage/pgstore && go run ./cmd/escrowctl " + cmd + " ...")
	}
	if *pg == "" && flagSet(flags, "pg") {
		// Not the directory beside it, nor the defaults of the driver
		// (which would read PGHOST and the rest): -pg "$DSN" with DSN
		// unset names no database.
		return usageError("-pg needs a connection string")
	}
	if f := flagAfterOperand(flags, args[1:]); f != "" {
		// The flag package stops at the directory and would take the flag
		// for a second one.
		return usageError(fmt.Sprintf("%s takes its flags before the directory, not %q after it", cmd, f))
	}
	if cmd == "dump" && *escrowID == "" && flagSet(flags, "escrow") {
		// Not a dump of every event, which is dump without -escrow.
		return usageError("dump -escrow needs an escrow ID")
	}
	if cmd == "dump" && *escrowID != "" {
		if err := checkEscrowID(*escrowID); err != nil {
			// No escrow has such an ID, as no escrow has an empty one:
			// the ledger refuses it as invalid rather than look for it.
			return usageError("dump -escrow: " + message(err))
		}
	}
	if *pg != "" {
		if cmd == "compact" {
			return usageError("compact works on a file store's directory, not on -pg")
		}
		if flags.NArg() != 0 {
			return usageError(cmd + " takes a directory or -pg, not both")
		}
		return runPG(w, cmd, *pg, o, *ratings, *escrowID)
	}
	if flags.NArg() != 1 {
		return usageError(cmd + " takes one directory")
	}
	dir := flags.Arg(0)
	if dir == "" {
		// "$DIR" with DIR unset: no directory, not one to look for.
		return usageError(cmd + " needs a directory, not an empty argument")
	}
	if info, err := os.Stat(dir); err != nil {
		return fmt.Errorf("%w: %w", filestore.ErrNotStore, err) // and not to be made one
	} else if !info.IsDir() {
		// A file holds no store either; opening it would report only
		// that its lock file cannot be made inside it.
		return fmt.Errorf("%w: %s is not a directory", filestore.ErrNotStore, dir)
	}
	if cmd == "compact" {
		return compact(w, dir)
	}
	store, err := filestore.Open(dir, &filestore.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer store.Close()
	ctx := context.Background()
	switch cmd {
	case "check":
		return check(ctx, w, store, *ratings)
	case "stats":
		return stats(ctx, w, dir, store)
	default:
		return dump(ctx, w, store, *escrowID)
	}
}

// checkEscrowID returns the error with which the ledger refuses id as an
// escrow's ID, or nil if an escrow may have it. It asks a ledger over an
// empty store in memory, so that the rule is the ledger's own.
func checkEscrowID(id string) error {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	l, err := escrow.New(ctx, store, nil)
	if err != nil {
		return err
	}
	if _, err = l.Escrow(ctx, id); errors.Is(err, escrow.ErrInvalidArgument) {
		return err
	}
	return nil
}

// A onceValue is a flag's value that may be set once: a second Set
// records the flag's name in twice and fails.
type onceValue struct {
	flag.Value
	name  string
	set   bool
	twice *string
}

func (v *onceValue) Set(s string) error {
	if v.set {
		*v.twice = v.name
		return errors.New("given twice")
	}
	v.set = true
	return v.Value.Set(s)
}

// IsBoolFlag keeps a boolean flag one that takes no value.
func (v *onceValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// flagSet reports whether the command line set the flag name.
func flagSet(flags *flag.FlagSet, name string) bool {
	set := false
	flags.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// flagAfterOperand returns the first argument after the first operand
// that looks like a flag, or "" if there is none or "--" ended the flags.
func flagAfterOperand(flags *flag.FlagSet, args []string) string {
	if flags.NArg() < 2 || slices.Contains(args, "--") {
		return ""
	}
	for _, a := range flags.Args()[1:] {
		if len(a) > 1 && a[0] == '-' {
			return a
		}
	}
	return ""
}

// openTimeout is how long a command waits for the PostgreSQL store to
// open: a server that takes the connection and never answers would
// otherwise hold it forever.
var openTimeout = 30 * time.Second

// runPG runs cmd on the PostgreSQL store dsn names.
func runPG(w io.Writer, cmd, dsn string, o Options, ratings bool, escrowID string) error {
	ctx := context.Background()
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	store, err := o.OpenPG(octx, dsn)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the database did not answer within %v: %w", openTimeout, err)
	} else if err != nil {
		return err
	}
	defer store.Close()
	switch cmd {
	case "check":
		if err := checkInvariants(ctx, store, ratings); err != nil {
			return err
		}
		fmt.Fprintln(w, "ok: invariants hold")
		return nil
	case "stats":
		n, err := count(ctx, store)
		if err != nil {
			return err
		}
		n.write(w)
		return nil
	default:
		return dump(ctx, w, store, escrowID)
	}
}

// compact opens the store for writing, which drops a torn tail, and
// compacts it. A read-only open first refuses a directory that holds no
// store, which opening for writing would make into one.
func compact(w io.Writer, dir string) error {
	store, err := filestore.Open(dir, &filestore.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	store.Close()
	if store, err = filestore.Open(dir, &filestore.Options{CompactRatio: -1}); err != nil {
		return err
	}
	defer store.Close()
	before := store.Stats()
	if before.TornTail.Bytes > 0 {
		fmt.Fprintf(w, "dropped a torn tail: %s\n", tornTail(before.TornTail))
	}
	if err := store.Compact(); err != nil {
		return err
	}
	after := store.Stats()
	fmt.Fprintf(w, "compacted: snapshot of %d records, %d bytes; log %d → %d bytes\n",
		after.SnapshotSeq, after.SnapshotBytes, before.LogBytes, after.LogBytes)
	return nil
}

// tornTail describes a torn tail in a few words.
func tornTail(t filestore.TornTail) string {
	s := fmt.Sprintf("%s: %d bytes at offset %d", t.File, t.Bytes, t.Offset)
	if t.FirstSeq > 0 {
		s += fmt.Sprintf(", holding records %d to %d", t.FirstSeq, t.LastSeq)
	}
	return s
}

func check(ctx context.Context, w io.Writer, store *filestore.Store, ratings bool) error {
	if err := checkInvariants(ctx, store, ratings); err != nil {
		return err
	}
	if err := store.VerifyTables(); err != nil {
		return err
	}
	st := store.Stats()
	if st.TornTail.Bytes > 0 {
		return fmt.Errorf("torn tail in %s; the %d records before it check out, and the next open for writing drops it",
			tornTail(st.TornTail), st.Seq)
	}
	fmt.Fprintf(w, "ok: %d records (snapshot to %d, %d in the log), %d cold tables, checksums and invariants hold\n",
		st.Seq, st.SnapshotSeq, st.LogRecords, st.Tables)
	return nil
}

// checkInvariants checks the money's invariants in store, and with
// ratings the reputation too.
func checkInvariants(ctx context.Context, store escrow.Storage, ratings bool) error {
	if !ratings {
		return escrow.CheckMoney(ctx, store)
	}
	// The ledger's Check is the store's Check plus reputation.
	l, err := escrow.New(ctx, store, nil)
	if errors.Is(err, escrow.ErrReadOnly) {
		// New would write the system accounts: no ledger has opened the
		// store, and there is no reputation to recompute unless someone
		// wrote ratings without one.
		if err := escrow.CheckMoney(ctx, store); err != nil {
			return err
		}
		return store.View(ctx, func(tx escrow.Tx) error {
			return tx.Ratings(func(r escrow.Rating) error {
				return fmt.Errorf("rating by %q on escrow %q in a store no ledger has opened: it has no system accounts", r.Rater, r.Escrow)
			})
		})
	}
	if err != nil {
		return err
	}
	return l.Check(ctx)
}

func stats(ctx context.Context, w io.Writer, dir string, store *filestore.Store) error {
	var files int
	var size int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return err
		}
		files++
		size += info.Size()
	}
	n, err := count(ctx, store)
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(w, "directory  %s: %d files, %d bytes\n", abs, files, size)
	st := store.Stats()
	records(w, st)
	tiers(w, st)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(w, "memory     %d bytes of heap in use after reading every record, %d obtained from the system\n", m.HeapInuse, m.Sys)
	n.write(w)
	return nil
}

// tally is what stats counts in any store.
type tally struct {
	accounts, events int
	byState          map[escrow.State]int
}

// count counts the accounts, events and escrows by state in store.
func count(ctx context.Context, store escrow.Storage) (tally, error) {
	var accounts, events int
	byState := map[escrow.State]int{}
	err := store.View(ctx, func(tx escrow.Tx) error {
		if err := tx.Accounts(func(escrow.Account) error { accounts++; return nil }); err != nil {
			return err
		}
		if err := tx.Escrows(func(e escrow.Escrow) error { byState[e.State]++; return nil }); err != nil {
			return err
		}
		for after := uint64(0); ; {
			page, err := tx.Events(after, 4096)
			if err != nil || len(page) == 0 {
				return err
			}
			events += len(page)
			after = page[len(page)-1].Seq
		}
	})
	return tally{accounts, events, byState}, err
}

// write writes the lines of stats about what n counted.
func (n tally) write(w io.Writer) {
	accounts, events, byState := n.accounts, n.events, n.byState
	fmt.Fprintf(w, "accounts   %d\n", accounts)
	fmt.Fprintf(w, "events     %d\n", events)
	total := 0
	for _, n := range byState {
		total += n
	}
	fmt.Fprintf(w, "escrows    %d\n", total)
	for _, s := range escrow.States() {
		if byState[s] > 0 {
			fmt.Fprintf(w, "  %-22s %d\n", s, byState[s])
		}
	}
}

// records writes the lines of stats about the store's files: its records,
// a torn tail the open found, and why the last compaction failed, if it
// did.
func records(w io.Writer, st filestore.Stats) {
	fmt.Fprintf(w, "records    %d committed; snapshot to %d (%d bytes); %d in the log (%d bytes)\n",
		st.Seq, st.SnapshotSeq, st.SnapshotBytes, st.LogRecords, st.LogBytes)
	if st.TornTail.Bytes > 0 {
		fmt.Fprintf(w, "torn tail  %s (the next open for writing drops it)\n", tornTail(st.TornTail))
	}
	if st.CompactError != nil {
		fmt.Fprintf(w, "compaction failed: %v\n", st.CompactError)
	}
}

// tiers writes the lines of stats about where the records are: the last
// checkpoint and the log since, the cold tables and their cache.
func tiers(w io.Writer, st filestore.Stats) {
	checkpoint := "none recorded"
	if !st.LastCheckpoint.IsZero() {
		checkpoint = st.LastCheckpoint.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "checkpoint %s; %d records and %d bytes of log since\n", checkpoint, st.LogRecords, st.LogBytes)
	fmt.Fprintf(w, "tables     %d cold tables, %d bytes, %d keys; %d bytes of their indexes and filters in memory\n",
		st.Tables, st.TableBytes, st.TableRecords, st.TableMemBytes)
	fmt.Fprintf(w, "cache      %d of %d bytes; %d hits, %d misses\n", st.CacheBytes, st.CacheMaxBytes, st.CacheHits, st.CacheMisses)
}

// dump writes events as JSON lines: all of them, or those of one escrow.
func dump(ctx context.Context, w io.Writer, store escrow.Storage, escrowID string) error {
	enc := json.NewEncoder(w)
	found := escrowID == ""
	err := store.View(ctx, func(tx escrow.Tx) error {
		if escrowID != "" {
			if _, err := tx.Escrow(escrowID); err != nil {
				return fmt.Errorf("escrow %q: %w", escrowID, err)
			}
		}
		for after := uint64(0); ; {
			page, err := tx.Events(after, 4096)
			if err != nil || len(page) == 0 {
				return err
			}
			for _, ev := range page {
				if escrowID != "" && ev.Escrow != escrowID {
					continue
				}
				found = true
				if err := enc.Encode(ev); err != nil {
					return err
				}
			}
			after = page[len(page)-1].Seq
		}
	})
	if err == nil && !found {
		err = fmt.Errorf("escrow %q has no events", escrowID)
	}
	return err
}
