package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRun: the counters are those of the trades, worked out by hand from
// what each call writes. Commits: New's, two accounts, two deposits (one
// replayed, writing nothing), two opens, two payments, a shipment and a
// confirmation, and ProcessDue's pruning and refund, 13 in all; the two
// refusals rolled back. Writes: 2 system accounts; 2 for each account and
// each open (the record and its event); 5 for the deposit (two balances,
// the entry, the event, the key's record); 4 for each payment and for the
// refund (the buyer's balance, the entry, the escrow, the event); 2 for
// the shipment; 6 for the confirmation (three balances, the entry, the
// escrow, the event): 35.
func TestRun(t *testing.T) {
	var out, logs bytes.Buffer
	if err := run(&out, &logs, newMetrics()); err != nil {
		t.Fatalf("run: %v", err)
	}
	var got map[string]map[string]int64
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	want := map[string]map[string]int64{
		"escrow_calls": {
			"open_account ok": 2, "deposit ok": 1, "deposit replayed": 1, "open ok": 2, "pay ok": 2,
			"ship ok": 1, "confirm ok": 1, "pay not_party": 1, "withdraw insufficient_funds": 1,
			"process_due ok": 1,
		},
		"escrow_commits": {"ok": 13, "failed": 2, "writes": 35},
		"escrow_timers":  {"refund": 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	// The logger told of the timer, and of nothing else.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `level=INFO msg="escrow: timer fired" call=process_due escrow=order-2 action=refund state=refunded`) {
		t.Errorf("log:\n%s\nwant one line telling of order-2's refund", logs.String())
	}
}

// TestArguments: the program takes no arguments. A flag or an argument
// is refused, rather than ignored while the program runs as if it were
// not there, as the other examples refuse theirs; -h asks for the usage.
func TestArguments(t *testing.T) {
	for _, args := range [][]string{{"-v"}, {"-seed", "3"}, {"extra"}} {
		var out bytes.Buffer
		if err := parseArgs(&out, args); err == nil || errors.Is(err, flag.ErrHelp) {
			t.Errorf("parseArgs(%q) = %v, want an error", args, err)
		}
	}
	var out bytes.Buffer
	if err := parseArgs(&out, []string{"-h"}); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "go run ./examples/metrics") {
		t.Errorf("parseArgs(-h) = %v, printed %q; want flag.ErrHelp and the usage", err, out.String())
	}
	if err := parseArgs(&out, nil); err != nil {
		t.Errorf("parseArgs() = %v, want nil", err)
	}
}
