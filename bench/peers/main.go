// Command peers compares the escrow library with the stores a host might
// write the same ledger on instead: SQLite and bbolt. Every store runs the
// same trade, open, pay, ship and confirm, each step one durable
// transaction that checks and moves balances, appends journal entries and
// an outbox event and rewrites the escrow row; see lifecycle.go for what
// the peers do and ledger.go for the library's calls.
//
//	go run .                         # throughput, then growth at 100,000 trades
//	go run . -growth 100000,1000000  # growth at more sizes
//	go run . -d 0 -growth 0 -v       # nothing timed; -v prints more
//	go run . -check -check-trades 200000 -max-rss-mib 200 -max-open 2s
//
// Throughput is finished trades per second at each number of concurrent
// workers, each worker trading between its own buyer and seller. Growth
// builds a store of N finished trades, closes it, and opens it again in a
// fresh process (this binary, run again) to time the open and read the
// process's memory after one escrow and a page of the journal are read.
// -check does that for the file store alone and fails past given bounds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// A store is one system under test, open on a directory.
type store interface {
	// fund opens a buyer's and a seller's account and deposits amount
	// (in fen) to the buyer's.
	fund(ctx context.Context, buyer, seller string, amount int64) error
	// trade runs one escrow from open to confirm: four transactions,
	// each durable when it returns.
	trade(ctx context.Context, id, buyer, seller string) error
	// balance returns the account's available and held money, in fen.
	balance(ctx context.Context, account string) (available, held int64, err error)
	// probe reads the completed escrow id and the first page of
	// account's journal: a host's first request after a restart.
	probe(ctx context.Context, id, account string) error
	close() error
}

// A kind is a store and how to open it.
type kind struct {
	name  string
	about string
	// open opens the store in dir, creating it if need be.
	open func(dir string, m mode) (store, error)
	// growth says whether the growth table measures it.
	growth bool
}

var kinds = []kind{
	{"filestore", "escrow on its file store, default options (group commit, fdatasync per write)", openFilestore, true},
	{"memstore", "escrow on memstore: in memory, NOT durable, for reference", openMemstore, false},
	{"sqlite", "SQLite (modernc.org/sqlite), WAL, synchronous=FULL, one connection", openSQLite, true},
	{"bbolt", "bbolt, default options: DB.Update, fsync per commit", openBolt, true},
	{"bbolt-batch", "bbolt with DB.Batch, its group commit (waits up to 10 ms for company)", openBoltBatch, false},
}

func kindNamed(name string) (kind, bool) {
	for _, k := range kinds {
		if k.name == name {
			return k, true
		}
	}
	return kind{}, false
}

// A mode says how a store is opened. The zero mode is the one measured:
// each step of a trade its own transaction, durable when it returns.
// Growth builds its stores in a faster mode.
type mode struct {
	// noSync skips fsync. The files come out the same, only sooner.
	noSync bool
	// grouped has a peer run the steps of concurrent trades in shared
	// transactions, as bbolt's Batch does (the file store groups its
	// commits itself). One failing step fails its whole group, so it is
	// for building only. The files come out much the same: SQLite's
	// B-trees hold the same rows wherever the commits fall, and bbolt's
	// file, measured at 20,000 and 100,000 trades, differed by less than
	// 0.2%.
	grouped bool
}

// journalPage is the page of the journal a probe reads.
const journalPage = 20

type config struct {
	stores       []kind
	cellTime     time.Duration
	workers      []int
	growth       []int
	buildWorkers int
	buildSync    bool
	buildGrouped bool
	dir          string
	keep         bool
	verbose      bool

	check       bool
	checkTrades int
	maxRSSMiB   float64
	maxOpen     time.Duration

	kill        bool
	maxKillOpen time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		os.Exit(child(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == fillCommand {
		os.Exit(fillChild(os.Args[2:]))
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fl := flag.NewFlagSet("peers", flag.ContinueOnError)
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.name
	}
	stores := fl.String("stores", strings.Join(names, ","), "the stores to compare, of "+strings.Join(names, ", "))
	fl.DurationVar(&cfg.cellTime, "d", 3*time.Second, "how long each throughput cell runs; 0 skips throughput")
	workers := fl.String("workers", "1,16,64", "the numbers of concurrent workers throughput is measured at")
	growth := fl.String("growth", "100000", "the numbers of finished trades growth is measured at; 0 skips growth")
	fl.IntVar(&cfg.buildWorkers, "build-workers", 64, "workers that build a growth store")
	fl.BoolVar(&cfg.buildSync, "build-sync", false, "build growth stores with fsync (slower; the files come out the same)")
	fl.BoolVar(&cfg.buildGrouped, "build-grouped", true, "build the peers' growth stores in transactions shared by the workers' steps (faster; false commits each step alone, as the throughput rows do; the files come out much the same)")
	fl.StringVar(&cfg.dir, "dir", "", "where the stores go (default: a new directory in $TMPDIR); it must be a real disk for fsync to mean anything")
	fl.BoolVar(&cfg.keep, "keep", false, "keep the stores' directories")
	fl.BoolVar(&cfg.verbose, "v", false, "print more: the file store's Stats, the Go heap, each phase")
	fl.BoolVar(&cfg.check, "check", false, "only check the file store's growth: build -check-trades trades, and fail past -max-rss-mib or -max-open")
	fl.IntVar(&cfg.checkTrades, "check-trades", 200000, "finished trades the -check store holds")
	fl.Float64Var(&cfg.maxRSSMiB, "max-rss-mib", 0, "with -check, fail if the peak RSS (VmHWM) of a fresh process that opens the store and reads from it exceeds this; 0: no bound")
	fl.DurationVar(&cfg.maxOpen, "max-open", 0, "with -check, fail if opening the store in a fresh process takes longer; 0: no bound")
	fl.BoolVar(&cfg.kill, "kill", false, "also measure the file store's open after a SIGKILL: a process trades on the built store until its log since the last checkpoint is 90% of what starts the next one with the default options, and is killed")
	fl.DurationVar(&cfg.maxKillOpen, "max-kill-open", 0, "with -check and -kill, fail if the open after the SIGKILL takes longer; 0: no bound")
	if err := fl.Parse(args); err != nil {
		return cfg, err
	}
	if fl.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	for _, name := range strings.Split(*stores, ",") {
		k, ok := kindNamed(strings.TrimSpace(name))
		if !ok {
			return cfg, fmt.Errorf("-stores: no store %q; there are %s", name, strings.Join(names, ", "))
		}
		cfg.stores = append(cfg.stores, k)
	}
	var err error
	if cfg.workers, err = counts("workers", *workers); err != nil {
		return cfg, err
	}
	if cfg.growth, err = counts("growth", *growth); err != nil {
		return cfg, err
	}
	if cfg.buildWorkers < 1 || cfg.checkTrades < 1 {
		return cfg, fmt.Errorf("-build-workers and -check-trades must be at least 1")
	}
	return cfg, nil
}

// counts parses a list of positive numbers ("1,16,64"); "0" or "" is none.
func counts(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.ReplaceAll(strings.TrimSpace(f), "_", "")
		if f == "" || f == "0" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("-%s: %q is not a count", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(cfg config) error {
	base := cfg.dir
	if base == "" {
		var err error
		if base, err = os.MkdirTemp("", "escrow-peers-"); err != nil {
			return err
		}
		if !cfg.keep {
			defer os.RemoveAll(base)
		}
	} else if err := os.MkdirAll(base, 0o700); err != nil {
		return err
	}
	if warning := fsWarning(base); warning != "" {
		fmt.Printf("WARNING: %s is on %s: fsync costs nothing there, so the durable figures mean nothing.\n\n", base, warning)
	}
	if cfg.check {
		return check(cfg, base)
	}
	fmt.Println("Stores:")
	for _, k := range cfg.stores {
		fmt.Printf("  %-12s %s\n", k.name, k.about)
	}
	fmt.Printf("One trade: open, pay, ship, confirm, each step one transaction (price %s CNY, fee %.1f%%).\n",
		money(price), float64(feeRatePPM)/1e4)
	fmt.Printf("Directory: %s\n", base)
	if cfg.cellTime > 0 && len(cfg.workers) > 0 {
		fmt.Println()
		if err := throughputTable(cfg, base); err != nil {
			return err
		}
	}
	if len(cfg.growth) > 0 {
		fmt.Println()
		if err := growthTable(cfg, base); err != nil {
			return err
		}
	}
	return nil
}

// table prints rows in aligned columns, the first row a header.
func table(rows [][]string) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t")+"\t")
	}
	w.Flush()
}

// ratio prints v relative to base (the file store's figure) as "0.42x",
// with a digit more for a small ratio and none for a large one.
func ratio(v, base float64) string {
	if base <= 0 || v < 0 {
		return "-"
	}
	switch r := v / base; {
	case r < 0.1:
		return fmt.Sprintf("%.3fx", r)
	case r >= 100:
		return fmt.Sprintf("%.0fx", r)
	default:
		return fmt.Sprintf("%.2fx", r)
	}
}

// thousands prints n with commas: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func money(fen int64) string { return fmt.Sprintf("%d.%02d", fen/100, fen%100) }

func mib(kib int64) string {
	if kib < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
