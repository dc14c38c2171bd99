// Command metrics wires a Ledger's Observer to the standard library's
// expvar and its Logger to log/slog, runs a few trades and a timer on a
// manual clock, and prints the counters as expvar would serve them at
// /debug/vars. A host that serves HTTP gets the same page by importing
// expvar; one that uses another metrics system writes the same small
// Observer against its client, in its own module.
//
// Usage:
//
//	go run ./examples/metrics
package main

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

func main() {
	if err := parseArgs(os.Stdout, os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		return
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
		os.Exit(1)
	}
	m := newMetrics()
	m.publish("escrow_")
	if err := run(os.Stdout, os.Stderr, m); err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
		os.Exit(1)
	}
}

// parseArgs refuses arguments, as the program takes none, so that a flag
// meant for another example is not silently ignored; -h prints the usage
// on w and returns flag.ErrHelp.
func parseArgs(w io.Writer, args []string) error {
	flags := flag.NewFlagSet("metrics", flag.ContinueOnError)
	flags.SetOutput(w)
	flags.Usage = func() { fmt.Fprintln(w, "usage: go run ./examples/metrics (it takes no arguments)") }
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	return nil
}

// metrics is an escrow.Observer that counts into expvar maps. expvar's
// types are safe for concurrent use, and adding to them is quick, as an
// Observer's methods must be.
type metrics struct {
	calls   *expvar.Map // calls by word and outcome: "pay ok", "pay not_party"
	callNS  *expvar.Map // total nanoseconds spent in each call, by word
	commits *expvar.Map // "ok", "failed", "writes", "ns": write transactions, their records and time
	timers  *expvar.Map // timers fired by action ("refund"), and "failed"
}

func newMetrics() *metrics {
	return &metrics{calls: new(expvar.Map), callNS: new(expvar.Map), commits: new(expvar.Map), timers: new(expvar.Map)}
}

// publish makes the maps part of what expvar serves, under prefix. expvar
// names are global to the process, so a host publishes them once.
func (m *metrics) publish(prefix string) {
	expvar.Publish(prefix+"calls", m.calls)
	expvar.Publish(prefix+"call_ns", m.callNS)
	expvar.Publish(prefix+"commits", m.commits)
	expvar.Publish(prefix+"timers", m.timers)
}

func (m *metrics) Call(c escrow.CallInfo) {
	m.calls.Add(c.Call+" "+outcome(c.Err, c.Replayed), 1)
	m.callNS.Add(c.Call, int64(c.Duration))
}

func (m *metrics) Commit(c escrow.CommitInfo) {
	if c.Err != nil {
		m.commits.Add("failed", 1)
	} else {
		m.commits.Add("ok", 1)
		m.commits.Add("writes", int64(c.Writes))
	}
	m.commits.Add("ns", int64(c.Duration))
}

func (m *metrics) Timer(t escrow.TimerInfo) {
	if t.Err != nil {
		m.timers.Add("failed", 1)
		return
	}
	word, _ := t.Action.MarshalText()
	m.timers.Add(string(word), 1)
}

// outcome names a call's outcome for a metric's label: "ok", "replayed",
// or the kind of error, from a short list a dashboard can group by.
func outcome(err error, replayed bool) string {
	switch {
	case err == nil && replayed:
		return "replayed"
	case err == nil:
		return "ok"
	}
	for _, k := range []struct {
		err  error
		name string
	}{
		{escrow.ErrInsufficientFunds, "insufficient_funds"},
		{escrow.ErrNotParty, "not_party"},
		{escrow.ErrInvalidTransition, "invalid_transition"},
		{escrow.ErrNotFound, "not_found"},
		{escrow.ErrInvalidArgument, "invalid_argument"},
		{escrow.ErrClosed, "closed"},
		{escrow.ErrReadOnly, "read_only"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "error"
}

// run trades on a ledger observed by m, and prints what m counted.
func run(out, logs io.Writer, m *metrics) error {
	ctx := context.Background()
	clock := escrow.NewManualClock(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))
	store := memstore.New()
	defer store.Close()
	l, err := escrow.New(ctx, store, &escrow.Options{
		Clock:    clock,
		Observer: m,
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		return err
	}
	cny := func(s string) escrow.Money { return escrow.MustParseMoney(s, escrow.CNY) }

	order := func(id, price string) escrow.Terms {
		return escrow.Terms{ID: id, Buyer: "mei", Seller: "teashop", Price: cny(price)}
	}
	// The calls all run, in order; the first error, if any, is reported.
	for i, err := range []error{
		errOf(l.OpenAccount(ctx, "mei")),
		errOf(l.OpenAccount(ctx, "teashop")),
		errOf(l.Deposit(ctx, "mei", cny("300.00"), escrow.IdempotencyKey("dep-1"))),
		// A retry of the same deposit, answered from its key.
		errOf(l.Deposit(ctx, "mei", cny("300.00"), escrow.IdempotencyKey("dep-1"))),
		errOf(l.Open(ctx, order("order-1", "120.00"))),
		errOf(l.Pay(ctx, "order-1", "mei")),
		errOf(l.Ship(ctx, "order-1", "teashop", "SF1001")),
		errOf(l.Confirm(ctx, "order-1", "mei")),
		errOf(l.Open(ctx, order("order-2", "80.00"))),
		errOf(l.Pay(ctx, "order-2", "mei")),
	} {
		if err != nil {
			return fmt.Errorf("call %d: %w", i, err)
		}
	}
	// Two refusals, counted by the kind of error.
	if _, err := l.Pay(ctx, "order-2", "teashop"); !errors.Is(err, escrow.ErrNotParty) {
		return fmt.Errorf("the seller paying: %v, want ErrNotParty", err)
	}
	if _, err := l.Withdraw(ctx, "mei", cny("1000.00")); !errors.Is(err, escrow.ErrInsufficientFunds) {
		return fmt.Errorf("withdrawing too much: %v, want ErrInsufficientFunds", err)
	}
	// The shop never ships order-2: past its week to ship, the timer refunds mei.
	clock.Advance(8 * 24 * time.Hour)
	if _, err := l.ProcessDue(ctx); err != nil {
		return err
	}
	return print(out, m)
}

// errOf returns a call's error, dropping its result.
func errOf[T any](_ T, err error) error { return err }

// print writes the counters as expvar serves them, without the times,
// which differ from run to run.
func print(out io.Writer, m *metrics) error {
	vars := map[string]any{}
	for name, v := range map[string]*expvar.Map{"escrow_calls": m.calls, "escrow_commits": m.commits, "escrow_timers": m.timers} {
		var values map[string]int64
		if err := json.Unmarshal([]byte(v.String()), &values); err != nil {
			return err
		}
		delete(values, "ns")
		vars[name] = values
	}
	b, err := json.MarshalIndent(vars, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}
