// Command brushing measures what a bought reputation costs: it runs a
// simulated market of honest buyers and shops on the ledger, with fees on
// every sale, and beside it four attacks that pay real prices and real
// fees for ratings:
//
//	(a) a ring of sybil buyers ordering cheap items from one new shop;
//	(b) a ring ordering the same cheap item from one new shop;
//	(c) two new shops buying from each other and rating each other;
//	(d) a shop's sybils buying a rival's cheapest items to rate them negative.
//
// It runs the same market under three reputation policies (the rules
// before the rules against brushing, the defaults, and the strictest
// options) and prints, for each attack, the points, level, Wilson bound,
// Beta expectation and ranks it bought, in all and per 1,000 CNY of fees
// and prices lost, beside what honest shops got per 1,000 CNY of the fees
// they paid; then the figures the package doc quotes. The README's table
// is this program's output.
//
// Usage:
//
//	go run ./examples/brushing [-long] [-seed N]
//
// By default the market is 1,000 buyers and 50 shops over 90 days, the
// attacks in the last 60 (the run `go test` checks); -long runs half a
// year with more orders a day. The same seed always prints the same table.
// The simulation is in internal/brushing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/escrowkit/escrow/internal/brushing"
)

func main() {
	err := run(os.Stdout, os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "brushing:", err)
		os.Exit(1)
	}
}

// run is the whole program but for the exit status, so that a test can
// run it and read what it prints.
func run(w io.Writer, args []string) error {
	cfg, err := parse(w, args)
	if err != nil {
		return err
	}
	results, err := brushing.RunAll(context.Background(), cfg)
	if err != nil {
		return err
	}
	return brushing.WriteTable(w, results)
}

// parse reads the flags into a Config. Besides -long and -seed, the size
// of the market can be set flag by flag.
func parse(w io.Writer, args []string) (brushing.Config, error) {
	flags := flag.NewFlagSet("brushing", flag.ContinueOnError)
	flags.SetOutput(w)
	long := flags.Bool("long", false, "run half a year, with more orders a day")
	def := brushing.Short()
	seed := flags.Uint64("seed", def.Seed, "seed of the market's draws")
	days := flags.Int("days", 0, "days the market runs (0: the run's own)")
	buyers := flags.Int("buyers", 0, "honest buyers (0: the run's own)")
	shops := flags.Int("shops", 0, "honest shops, at least 10 (0: the run's own)")
	orders := flags.Int("orders", 0, "honest orders a day (0: the run's own)")
	if err := flags.Parse(args); err != nil {
		return brushing.Config{}, err
	}
	if flags.NArg() > 0 {
		return brushing.Config{}, fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"days", *days}, {"buyers", *buyers}, {"shops", *shops}, {"orders", *orders}} {
		if f.n < 0 {
			// 0 asks for the run's own size; below it there is none.
			return brushing.Config{}, fmt.Errorf("-%s %d: a market's size cannot be negative", f.name, f.n)
		}
	}
	cfg := def
	if *long {
		cfg = brushing.Long()
	}
	cfg.Seed = *seed
	if *days > 0 {
		// The attacks keep to the last two thirds.
		cfg.Days, cfg.AttackFrom = *days, *days/3
	}
	if *buyers > 0 {
		cfg.Buyers = *buyers
	}
	if *shops > 0 {
		cfg.Shops = *shops
	}
	if *orders > 0 {
		cfg.OrdersPerDay = *orders
	}
	if cfg.Shops < 10 || cfg.Days < 3 {
		return brushing.Config{}, fmt.Errorf("-shops %d and -days %d: the market needs at least 10 shops and 3 days", cfg.Shops, cfg.Days)
	}
	return cfg, nil
}
