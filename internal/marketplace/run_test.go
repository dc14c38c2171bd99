package marketplace

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
)

// runOutput runs the example with args and returns what it printed. It
// keeps the books in memory unless args choose a store, so that tests never
// write into the source tree.
func runOutput(t *testing.T, args ...string) string {
	t.Helper()
	if !slices.Contains(args, "-store") && !slices.Contains(args, "-data") {
		args = append([]string{"-store", "mem"}, args...)
	}
	var out bytes.Buffer
	if err := Run(&out, args, Options{}); err != nil {
		t.Fatalf("run(%q): %v\n%s", args, err, out.String())
	}
	return out.String()
}

// balances reads the final balance table: account → {available, held}.
func balances(t *testing.T, out string) map[string][2]string {
	t.Helper()
	_, table, ok := strings.Cut(out, "\naccount ")
	if !ok {
		t.Fatalf("no balance table in the output:\n%s", out)
	}
	got := map[string][2]string{}
	for _, line := range strings.Split(table, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) == 0 {
			break
		}
		if len(f) == 3 {
			got[f[0]] = [2]string{f[1], f[2]}
		}
	}
	return got
}

// repTable reads the sellers' reputation table, a row of fields per
// seller.
func repTable(t *testing.T, out string) [][]string {
	t.Helper()
	_, table, ok := strings.Cut(out, "\nseller ")
	if !ok {
		t.Fatalf("no reputation table in the output:\n%s", out)
	}
	var rows [][]string
	for _, line := range strings.Split(table, "\n")[1:] {
		if line == "" || strings.HasPrefix(line, "Levels") {
			break
		}
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

// lineWith returns the first output line that contains every part.
func lineWith(out string, parts ...string) (string, bool) {
	for _, line := range strings.Split(out, "\n") {
		found := true
		for _, p := range parts {
			found = found && strings.Contains(line, p)
		}
		if found {
			return line, true
		}
	}
	return "", false
}

func TestDefaultRun(t *testing.T) {
	out := runOutput(t)

	// Each balance worked out by hand from the trades, fees at 0.6%
	// rounded half-even: e.g. li.na 5000.00 − 168.00 − 96.50 + 19.30
	// − 175.20 (her cart). liu.yang's lamp came back and was refunded in
	// full, so it leaves no trace in any balance.
	want := map[string][2]string{
		"li.na":          {"4579.60", "0.00"},
		"wang.fang":      {"4423.50", "0.00"},
		"zhang.wei":      {"4626.80", "0.00"},
		"chen.jie":       {"4488.96", "0.00"},
		"liu.yang":       {"1400.00", "0.00"},
		"west-lake-tea":  {"897.38", "0.00"},
		"lantern-lamps":  {"4303.87", "0.00"},
		"shenzhen-cases": {"147.01", "0.00"},
		"@fees":          {"32.88", "0.00"},
		"@world":         {"-24900.00", "0.00"},
		"sum":            {"0.00", "0.00"},
	}
	if diff := cmp.Diff(want, balances(t, out)); diff != "" {
		t.Errorf("balances (-want +got):\n%s", diff)
	}

	for _, parts := range [][]string{
		{"order-1001", "EscrowReleased", "li.na confirmed: 168.00 CNY to the seller, fee 1.01 CNY", "[Completed]"},
		{"order-1002", "EscrowRefunded", "lantern-lamps refunded 239.00 CNY", "[Refunded]"},
		{"order-1003", "EscrowRefunded", "shenzhen-cases refunded 39.90 CNY", "[Refunded]"},
		{"order-1004", "EscrowRefundRefused", "[AwaitingConfirmation]"},
		{"order-1004", "EscrowResolved", "buyer 336.00 CNY, seller 144.00 CNY; fee 0.86 CNY", "[Resolved]"},
		{"Mar 05 09:00", "order-1005", "EscrowClosed", "not paid before the deadline", "[Closed]"},
		{"order-3001", "confirmed second 40 lanterns: 1200.00 CNY", "fee 7.20 CNY", "[AwaitingConfirmation]"},
		{"order-3001", "confirmed last 40 lanterns", "[Completed]"},
		{"Mar 12 09:00", "order-1006", "auto-confirmed: 128.00 CNY to the seller, fee 0.77 CNY", "[Completed]"},
		{"Mar 12 09:00", "order-1007", "auto-confirmed: 96.50 CNY to the seller, fee 0.58 CNY", "[Completed]"},
		{"refused:", "order-1006", "only the buyer may"},
		{"ProcessDue fired 2 timers"},
		{"ProcessDue fired 4 timers"},
		{"Trades: 19 (13 Completed, 3 Refunded, 1 Resolved, 2 Closed)"},

		// The return and refund, the extensions and the cart.
		{"Mar 09 09:00", "order-1008", "EscrowReturnRequested", "liu.yang asked to send it back for 239.00 CNY", "[ReturnRequested]"},
		{"Mar 09 11:00", "order-1008", "EscrowReturnAgreed", "12 Qiantang Road", "[AwaitingReturn]"},
		{"Mar 09 14:00", "order-1008", "EscrowReturnShipped", "tracking SF1402950118", "[ReturnShipped]"},
		{"Mar 10 10:00", "order-1008", "EscrowRefunded", "lantern-lamps refunded 239.00 CNY", "[Refunded]"},
		{"order-1009", "EscrowExtended", "chen.jie put the confirmation deadline back by 72h0m0s", "[AwaitingConfirmation]"},
		{"the confirmation deadline is now Mar 23 12:00"},
		{"refused:", "the buyer has already extended escrow"},
		{"order-1009", "EscrowExtended", "west-lake-tea put the confirmation deadline back by 48h0m0s"},
		{"the confirmation deadline is now Mar 25 12:00"},
		{"refused:", "cart of 4 not paid: 1 refused", `"order-1005"`, "in state Closed"},
		{"Mar 10 19:05", "order-1012", "EscrowPaid", "li.na paid 19.90 CNY, held", "[AwaitingShipment]"},
		{"one payment of 175.20 CNY, held in 3 escrows"},
		{"order-1012", "li.na confirmed: 19.90 CNY to the seller, fee 0.12 CNY", "[Completed]"},
		{"Check: the books balance."},

		// The ratings.
		{"Mar 12 11:00", "order-1001", "RatingGiven", "li.na rated west-lake-tea positive", "[Completed]"},
		{"refused:", "already rated", `"li.na" on escrow "order-1001"`},
		{"refused:", `escrow "order-1002" in state Refunded`},
		{"Mar 12 12:40", "order-1004", "RatingReplied", "lantern-lamps replied to chen.jie's rating", "[Resolved]"},
		{"order-1004", "lantern-lamps rated chen.jie negative", "[Resolved]"},
		{"not counted: " + escrow.ReasonDisputeLost},
		{"Mar 20 10:00", "order-1007", "RatingRevised", "wang.fang revised the rating of west-lake-tea: neutral to positive"},
		{"Mar 28 09:00", "order-1007", "RatingGiven", "rating of wang.fang: positive (default)", "[Completed]"},
		{"ProcessDue fired 0 timers"},
		{"Top sellers by Wilson bound: 1. west-lake-tea, 2. shenzhen-cases, 3. lantern-lamps"},
		{"Top sellers by Beta expectation: 1. west-lake-tea, 2. shenzhen-cases, 3. lantern-lamps"},
	} {
		if _, ok := lineWith(out, parts...); !ok {
			t.Errorf("no line with %q", parts)
		}
	}

	// Worked out by hand. Wilson lower bound with z = 1.96, z² = 3.8416:
	// n = 2, p = 1 gives 1/(1 + z²/2) = 0.3424; n = 1, p = 1 gives
	// 1/(1 + z²) = 0.2065; n = 2, p = 1/2 gives
	// (0.5 + 0.9604 − 1.96·√(0.125 + 0.2401))/2.9208 = 0.0945.
	// Beta expectation (1+P)/(2+P+N), each rating weighing log10(10 + what
	// the escrow released to the seller) times 0.98^(age/30 days) on
	// March 28 09:00:
	//   west-lake-tea: 168.00 rated 15d22h before, 96.50 15d20h before (the
	//   neutral, revised to positive, keeps its time): P = 2.2264 + 2.0058,
	//   N = 0, so 5.2322/6.2322 = 0.8395;
	//   lantern-lamps: 3600.00 positive, 15d21.5h: P = 3.5196; the 480.00
	//   lamp resolved 30% to the seller, 144.00, negative, 15d20.5h:
	//   N = 2.1643, so 4.5196/7.6839 = 0.5882;
	//   shenzhen-cases: 128.00 positive, 15d21h: P = 2.1171, 3.1171/4.1171 = 0.7571.
	// The details average what the buyers gave: (5+4)/2, (5+3)/2, (4+2)/2 for
	// the tea shop, (5+2)/2, (5+1)/2, (5+3)/2 for the lamps.
	wantRep := [][]string{
		{"west-lake-tea", "None", "2", "2/0/0", "100.0%", "0.342", "0.840", "4.5/4.0/3.0"},
		{"lantern-lamps", "None", "0", "1/0/1", "50.0%", "0.095", "0.588", "3.5/3.0/4.0"},
		{"shenzhen-cases", "None", "1", "1/0/0", "100.0%", "0.207", "0.757", "4.0/4.0/5.0"},
	}
	if diff := cmp.Diff(wantRep, repTable(t, out)); diff != "" {
		t.Errorf("sellers' reputations (-want +got):\n%s", diff)
	}

	// The retried payment carried the same idempotency key: one event only;
	// and the refused cart paid nothing, so each of its escrows is paid once.
	for _, id := range []string{"order-1001", "order-1010", "order-1011", "order-1012"} {
		if n := strings.Count(out, id+"      EscrowPaid"); n != 1 {
			t.Errorf("%s was paid %d times, want once", id, n)
		}
	}
	if !strings.HasSuffix(out, "Check: the books balance.\n") {
		t.Errorf("the output does not end with the check:\n%s", out[max(0, len(out)-200):])
	}
}

func TestSameSeedSameOutput(t *testing.T) {
	first, second := runOutput(t, "-seed", "7"), runOutput(t, "-seed", "7")
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("two runs with seed 7 differ (-first +second):\n%s", diff)
	}
	if first == runOutput(t, "-seed", "8") {
		t.Error("seeds 7 and 8 printed the same run")
	}
}

// Every seed must end with balanced books and nothing held, since every
// trade ends one way or another.
func TestManySeedsBalance(t *testing.T) {
	defaultRep := repTable(t, runOutput(t))
	for seed := range 20 {
		out := runOutput(t, "-store", "mem", "-seed", fmt.Sprint(seed))
		got := balances(t, out)
		if got["sum"] != [2]string{"0.00", "0.00"} {
			t.Errorf("seed %d: balances add up to %v, want zero", seed, got["sum"])
		}
		for id, b := range got {
			if b[1] != "0.00" {
				t.Errorf("seed %d: %s still holds %s", seed, id, b[1])
			}
		}
		if _, ok := lineWith(out, "Trades: 19 ("); !ok {
			t.Errorf("seed %d: not 19 trades", seed)
		}
		if !strings.HasSuffix(out, "Check: the books balance.\n") {
			t.Errorf("seed %d: no balanced check at the end", seed)
		}
		// Only the fixed trades are rated, so the seed changes no reputation.
		if diff := cmp.Diff(defaultRep, repTable(t, out)); diff != "" {
			t.Errorf("seed %d: reputations differ from the default run's (-default +seed):\n%s", seed, diff)
		}
	}
}

func TestBadArguments(t *testing.T) {
	var out bytes.Buffer
	err := Run(&out, []string{"-store", "postgres"}, Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown store "postgres"`) {
		t.Errorf("-store postgres: got %v, want an unknown store error", err)
	}
	if out.Len() != 0 {
		t.Errorf("-store postgres printed %q before failing", out.String())
	}

	out.Reset()
	if err := Run(&out, []string{"-h"}, Options{}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: got %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), "-store") || !strings.Contains(out.String(), "-seed") {
		t.Errorf("-h printed no usage:\n%s", out.String())
	}

	if err := Run(&out, []string{"extra"}, Options{}); err == nil {
		t.Error("a stray argument was accepted")
	}
}

// TestFileStoreContinues runs the market twice on one file store: the
// first run prints what a memory run prints, and the second continues the
// same market a month later, with the same accounts, their balances
// carried over, orders of its own and books that still balance.
func TestFileStoreContinues(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "books")
	first := runOutput(t, "-data", dir)
	if mem := runOutput(t); first != mem {
		t.Errorf("the first run on a file store differs from a memory run")
	}
	second := runOutput(t, "-data", dir)
	if !strings.HasPrefix(second, "Continuing the market kept in "+dir+": month 2.\n") {
		t.Errorf("the second run does not say it continues:\n%.300s", second)
	}
	for _, want := range []string{"== April 1: accounts open, buyers top up ==", "2025-04/order-1001", "Check: the books balance.\n"} {
		if !strings.Contains(second, want) {
			t.Errorf("the second run does not print %q", want)
		}
	}
	if strings.Contains(second, "AccountOpened") {
		t.Errorf("the second run opened accounts again")
	}
	// Everyone's money carried over: each buyer topped up twice, so the
	// world has given 2 × 5 × 5000.00.
	b1, b2 := balances(t, first), balances(t, second)
	if b1["@world"][0] != "-24900.00" || b2["@world"][0] != "-49800.00" {
		t.Errorf("@world: %s after the first run, %s after the second; want -24900.00 and -49800.00", b1["@world"][0], b2["@world"][0])
	}
	third := runOutput(t, "-data", dir)
	if !strings.HasPrefix(third, "Continuing the market kept in "+dir+": month 3.\n") || !strings.Contains(third, "2025-05/order-1001") {
		t.Errorf("the third run does not continue into May:\n%.300s", third)
	}
}

// TestReadmeDumpNamesAnOrder: the README's escrowctl dump -escrow ID,
// run after the market it shows beside it, names an escrow that market
// made, so the command prints a history instead of "not found".
func TestReadmeDumpNamesAnOrder(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`escrowctl dump -escrow (\S+)`).FindAllSubmatch(readme, -1)
	if len(ids) == 0 {
		t.Fatal("the README shows no escrowctl dump -escrow ID")
	}
	dir := filepath.Join(t.TempDir(), "books")
	runOutput(t, "-data", dir)
	store, err := filestore.Open(dir, &filestore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, m := range ids {
		id := string(m[1])
		err := store.View(context.Background(), func(tx escrow.Tx) error {
			_, err := tx.Escrow(id)
			return err
		})
		if err != nil {
			t.Errorf("the README dumps escrow %q, which a run of the market does not make: %v", id, err)
		}
	}
}

// TestEnvironmentYieldsToFlags: ESCROW_PG_DSN is the default of -pg, not
// a flag given. With it set, as the README's PostgreSQL section sets it,
// an explicit -store mem or -data DIR still keeps the books where it
// says, and the database is not touched; -h does not print the variable
// (a DSN may hold a password). With neither flag, the variable chooses
// the database, as before.
func TestEnvironmentYieldsToFlags(t *testing.T) {
	const dsn = "postgres://me:s3cret@db.example/market"
	t.Setenv("ESCROW_PG_DSN", dsn)
	var opened []string
	errOpened := errors.New("the database was opened")
	o := Options{OpenPG: func(ctx context.Context, dsn string) (escrow.Storage, error) {
		opened = append(opened, dsn)
		return nil, errOpened
	}}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(&out, args, o)
		return out.String(), err
	}
	mem := runOutput(t)
	if out, err := run("-store", "mem"); err != nil || out != mem {
		t.Errorf("-store mem with ESCROW_PG_DSN set: %v; printed the memory run: %v", err, out == mem)
	}
	dir := filepath.Join(t.TempDir(), "books")
	if out, err := run("-data", dir); err != nil || out != mem {
		t.Errorf("-data DIR with ESCROW_PG_DSN set: %v; printed the memory run: %v", err, out == mem)
	}
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err != nil {
		t.Errorf("-data DIR with ESCROW_PG_DSN set made no store in DIR: %v", err)
	}
	if len(opened) != 0 {
		t.Errorf("with -store or -data given, the database in ESCROW_PG_DSN was opened %d times", len(opened))
	}
	if out, err := run("-h"); !errors.Is(err, flag.ErrHelp) || strings.Contains(out, "s3cret") || !strings.Contains(out, "ESCROW_PG_DSN") {
		t.Errorf("-h = %v, printed\n%s\nwant the usage, naming ESCROW_PG_DSN and not its value", err, out)
	}
	if _, err := run(); !errors.Is(err, errOpened) || !slices.Equal(opened, []string{dsn}) {
		t.Errorf("no flags with ESCROW_PG_DSN set: %v, opened %q; want the database in the variable", err, opened)
	}
	opened = nil
	if _, err := run("-pg", "postgres://db.example/other", "-seed", "3"); !errors.Is(err, errOpened) || !slices.Equal(opened, []string{"postgres://db.example/other"}) {
		t.Errorf("-pg DSN: %v, opened %q; want the database -pg names", err, opened)
	}
}

// TestEmptyPG: -pg given an empty DSN (-pg "$DSN" with DSN unset) names
// no database. It is refused before anything is opened or printed,
// rather than run the market in a file store in marketplace-data, which
// it would create in the working directory.
func TestEmptyPG(t *testing.T) {
	t.Chdir(t.TempDir())
	opened := false
	o := Options{OpenPG: func(ctx context.Context, dsn string) (escrow.Storage, error) {
		opened = true
		return nil, errors.New("the database was opened")
	}}
	for _, args := range [][]string{{"-pg", ""}, {"-pg="}, {"-pg", "", "-store", "mem"}} {
		var out bytes.Buffer
		err := Run(&out, args, o)
		if err == nil || err.Error() != "-pg needs a connection string" || out.Len() != 0 {
			t.Errorf("run(%q) = %v, printed %d bytes; want \"-pg needs a connection string\" and nothing", args, err, out.Len())
		}
	}
	if opened {
		t.Error("an empty -pg opened a database")
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Errorf("an empty -pg left %d files in the working directory", len(entries))
	}
}
