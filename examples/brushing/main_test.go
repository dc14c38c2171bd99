package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// A small market, so that the test is quick; internal/brushing checks the
// default run and the README's copy of its table.
var small = []string{"-days", "21", "-buyers", "100", "-shops", "10", "-orders", "15"}

func output(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(&out, args); err != nil {
		t.Fatalf("run(%q): %v\n%s", args, err, out.String())
	}
	return out.String()
}

// The table has a row for the median and the average honest shop and for
// each attack under each policy set, and the goals' figures after it.
func TestRun(t *testing.T) {
	out := output(t, small...)
	for _, want := range []string{
		"Seed 1: 21 days, 100 buyers, 10 honest shops, fee 0.6%; the attacks run from day 8, for 14 days.\n",
		"Ranks are among the 10 honest shops (a new shop starts at 11).",
		"\nGoals under the default policy, for ring (a)",
		"\nplaces climbed per 1,000 CNY, over an honest shop's ",
		"\nvolume when first in the top decile, over the median's ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output:\n%s", want, out)
		}
	}
	for _, policy := range []string{"before", "default", "strict"} {
		for _, who := range []string{"honest: median shop, shop-", "honest: average of 9 shops", "(a) 10 sybils buy cheap items",
			"(b) 10 sybils buy one item", "(c) two shops buy from each other", "(d) 5 sybils buy negatives for shop-10"} {
			if !strings.Contains(out, "\n"+policy+strings.Repeat(" ", 9-len(policy))+who) {
				t.Errorf("no row for %s under %s in the output:\n%s", who, policy, out)
			}
		}
	}
	// The same seed prints the same table; another seed another.
	if again := output(t, small...); again != out {
		t.Errorf("a second run printed another table:\n%s", again)
	}
	if other := output(t, append(small, "-seed", "2")...); other == out {
		t.Error("seed 2 printed the table of seed 1")
	}
}

func TestFlags(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{"-shops", "5"}, {"extra"}, {"-days", "x"}} {
		if err := run(&out, args); err == nil {
			t.Errorf("run(%q) did not fail", args)
		}
	}
}

// TestNegativeSizes: a market of -5 shops or -1 orders a day makes no
// sense; it is refused, not run at the default size as 0 asks.
func TestNegativeSizes(t *testing.T) {
	for _, name := range []string{"days", "buyers", "shops", "orders"} {
		args := []string{"-" + name, "-1"}
		cfg, err := parse(io.Discard, args)
		if err == nil || !strings.Contains(err.Error(), "-"+name+" -1: ") {
			t.Errorf("parse(%q) = %+v, %v; want an error naming -%s", args, cfg, err, name)
		}
	}
}
