package escrowctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/google/go-cmp/cmp"
)

// market makes a store with two accounts and three escrows: one
// completed, one paid, one refunded.
func market(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.OpenAccount(ctx, "ann"))
	must(l.OpenAccount(ctx, "bob"))
	must(l.Deposit(ctx, "ann", escrow.MustParseMoney("100.00", escrow.CNY)))
	for _, id := range []string{"e1", "e2", "e3"} {
		must(l.Open(ctx, escrow.Terms{ID: id, Buyer: "ann", Seller: "bob", Price: escrow.MustParseMoney("10.00", escrow.CNY)}))
		must(l.Pay(ctx, id, "ann"))
	}
	must(l.Ship(ctx, "e1", "bob", "SF1"))
	must(l.Confirm(ctx, "e1", "ann"))
	must(l.Refund(ctx, "e3", "bob", escrow.MustParseMoney("10.00", escrow.CNY)))
	return dir
}

func runT(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(&out, args, Options{})
	return out.String(), err
}

func TestCheckStatsDumpCompact(t *testing.T) {
	dir := market(t)
	out, err := runT(t, "check", dir)
	if err != nil || !strings.HasPrefix(out, "ok: 13 records") {
		t.Fatalf("check = %q, %v; want ok with 13 records", out, err)
	}
	if out, err := runT(t, "check", "-ratings", dir); err != nil || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("check -ratings = %q, %v", out, err)
	}

	out, err = runT(t, "stats", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"accounts   4\n", "events     12\n", "escrows    3\n",
		"  AwaitingShipment       1\n", "  Completed              1\n", "  Refunded               1\n", "records    13 committed"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats lacks %q:\n%s", want, out)
		}
	}

	out, err = runT(t, "dump", "-escrow", "e1", dir)
	if err != nil {
		t.Fatal(err)
	}
	var types []escrow.EventType
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev escrow.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("dump line %q: %v", line, err)
		}
		if ev.Escrow != "e1" {
			t.Errorf("dump -escrow e1 printed an event of %q", ev.Escrow)
		}
		types = append(types, ev.Type)
	}
	want := []escrow.EventType{escrow.EscrowOpened, escrow.EscrowPaid, escrow.EscrowShipped, escrow.EscrowReleased}
	if !slices.Equal(types, want) {
		t.Errorf("history of e1 = %v, want %v", types, want)
	}
	if out, err := runT(t, "dump", dir); err != nil || strings.Count(out, "\n") != 12 {
		t.Errorf("dump printed %d lines (%v), want 12", strings.Count(out, "\n"), err)
	}
	if _, err := runT(t, "dump", "-escrow", "nope", dir); !errors.Is(err, escrow.ErrNotFound) {
		t.Errorf("dump of an unknown escrow = %v, want ErrNotFound", err)
	}

	out, err = runT(t, "compact", dir)
	if err != nil || !strings.HasPrefix(out, "compacted: snapshot of 13 records") {
		t.Fatalf("compact = %q, %v", out, err)
	}
	if out, err := runT(t, "check", dir); err != nil || !strings.Contains(out, "snapshot to 13, 0 in the log") {
		t.Fatalf("check after compact = %q, %v", out, err)
	}
}

func TestCheckFindsProblems(t *testing.T) {
	t.Run("Checksum", func(t *testing.T) {
		dir := market(t)
		seg := filepath.Join(dir, "log-0000000000000001.wal")
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		data[30] ^= 1 // inside the first record
		os.WriteFile(seg, data, 0o600)
		if _, err := runT(t, "check", dir); !errors.Is(err, filestore.ErrCorrupt) {
			t.Fatalf("check of a damaged log = %v, want ErrCorrupt", err)
		}
	})
	t.Run("Invariant", func(t *testing.T) {
		dir := market(t)
		s, err := filestore.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Money from nowhere: a balance the journal does not explain.
		err = s.Update(context.Background(), func(tx escrow.Tx) error {
			b, err := tx.Balance("bob", "CNY")
			if err != nil {
				return err
			}
			m, _ := escrow.MoneyFromUnits(b.Available.Units()+1, escrow.CNY)
			b.Available = m
			return tx.PutBalance(b)
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := runT(t, "check", dir); !errors.Is(err, escrow.ErrInvariant) {
			t.Fatalf("check of a broken ledger = %v, want ErrInvariant", err)
		}
	})
	t.Run("Usage", func(t *testing.T) {
		var usageErr usageError
		if _, err := runT(t); !errors.As(err, &usageErr) {
			t.Errorf("no arguments = %v, want a usage error", err)
		}
		if _, err := runT(t, "frobnicate", t.TempDir()); !errors.As(err, &usageErr) || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("unknown command = %v", err)
		}
		if _, err := runT(t, "stats", filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing directory = %v, want ErrNotExist (and no store created)", err)
		}
	})
}

// TestCheckRatings shows that -ratings is what catches a reputation
// aggregate that disagrees with its ratings: the plain check, which knows
// no reputation policy, passes the same store.
func TestCheckRatings(t *testing.T) {
	dir := market(t)
	ctx := context.Background()
	s, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Rate(ctx, "e1", "ann", escrow.RatingInput{Score: escrow.Positive}); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx escrow.Tx) error {
		a, err := tx.Aggregate("bob", escrow.Seller)
		if err != nil {
			return err
		}
		a.Points++
		return tx.PutAggregate(a)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := runT(t, "check", dir); err != nil || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("check = %q, %v; want ok", out, err)
	}
	if _, err := runT(t, "check", "-ratings", dir); !errors.Is(err, escrow.ErrInvariant) {
		t.Fatalf("check -ratings of a bad aggregate = %v, want ErrInvariant", err)
	}
}

// TestUnknownCommandTouchesNothing: a mistyped command is refused before
// the store is opened, so the directory gains no lock file and no log.
func TestUnknownCommandTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, err := runT(t, "chekc", dir); err == nil || !strings.Contains(err.Error(), `unknown command "chekc"`) {
		t.Fatalf("escrowctl chekc = %v, want an unknown command error", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("a refused command left %d files in the directory", len(entries))
	}
}

// dirImage is every file in a directory: name, mode and contents.
func dirImage(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	img := map[string]string{}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		img[e.Name()] = info.Mode().String() + " " + string(data)
	}
	return img
}

// changedFiles lists the files that differ between two dirImages.
func changedFiles(before, after map[string]string) []string {
	var names []string
	for name := range before {
		if before[name] != after[name] {
			names = append(names, name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// runStatus runs escrowctl as main does and returns its output, its
// standard error and its exit status.
func runStatus(args ...string) (stdout, stderr string, status int) {
	var out, errOut bytes.Buffer
	status = ExitStatus(&errOut, Run(&out, args, Options{}), Options{})
	return out.String(), errOut.String(), status
}

// TestReadOnlyCommands runs check, stats and dump on a sound store, on one
// whose log ends in a torn write, and on directories that hold no store:
// none changes a byte or a name in the directory, and each reports what
// it finds with the exit status it promises.
func TestReadOnlyCommands(t *testing.T) {
	torn := market(t)
	seg := filepath.Join(torn, "log-0000000000000001.wal")
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1 // the last record, record 13
	os.WriteFile(seg, data, 0o600)
	empty := t.TempDir()
	notStore := t.TempDir()
	os.WriteFile(filepath.Join(notStore, "notes.txt"), []byte("hello"), 0o600)

	for _, tc := range []struct {
		name, dir string
		status    map[string]int
		stdout    map[string]string // a line each command's output must hold
		stderr    string            // what every failing command says
	}{
		{"Sound", market(t), map[string]int{"check": 0, "stats": 0, "dump": 0},
			map[string]string{"check": "ok: 13 records", "stats": "records    13 committed", "dump": `"escrow_opened"`}, ""},
		{"TornTail", torn, map[string]int{"check": 1, "stats": 0, "dump": 0},
			map[string]string{"stats": "torn tail  " + seg + ": ", "dump": `"escrow_paid"`},
			"escrowctl: torn tail in " + seg + ": "},
		{"Empty", empty, map[string]int{"check": 1, "stats": 1, "dump": 1}, nil,
			"escrowctl: not an escrow store: " + empty + "\n"},
		{"NotStore", notStore, map[string]int{"check": 1, "stats": 1, "dump": 1}, nil,
			"escrowctl: not an escrow store: " + notStore + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := dirImage(t, tc.dir)
			for _, cmd := range []string{"check", "stats", "dump"} {
				stdout, stderr, status := runStatus(cmd, tc.dir)
				if status != tc.status[cmd] {
					t.Errorf("%s: exit status %d, want %d; stderr %q", cmd, status, tc.status[cmd], stderr)
				}
				if want := tc.stdout[cmd]; !strings.Contains(stdout, want) {
					t.Errorf("%s: output lacks %q:\n%s", cmd, want, stdout)
				}
				if status != 0 && !strings.HasPrefix(stderr, tc.stderr) {
					t.Errorf("%s: stderr = %q, want it to start %q", cmd, stderr, tc.stderr)
				}
				if changed := changedFiles(before, dirImage(t, tc.dir)); len(changed) > 0 {
					t.Fatalf("%s changed %v in the directory", cmd, changed)
				}
			}
		})
	}

	// The torn record is record 13, which runs to the end of the file;
	// compact drops it.
	_, stderr, _ := runStatus("check", torn)
	var n, off int
	_, err = fmt.Sscanf(strings.TrimPrefix(stderr, "escrowctl: torn tail in "+seg+": "), "%d bytes at offset %d", &n, &off)
	if err != nil || n+off != len(data) || n <= 0 ||
		!strings.Contains(stderr, ", holding records 13 to 13; the 12 records before it check out") {
		t.Errorf("check of a torn tail says %q; want the %d bytes it ends with, record 13 and 12 records kept", stderr, len(data))
	}
	if stdout, _, status := runStatus("compact", torn); status != 0 || !strings.HasPrefix(stdout, "dropped a torn tail: "+seg) {
		t.Errorf("compact of a torn tail: status %d, output %q", status, stdout)
	}
	if _, _, status := runStatus("check", torn); status != 0 {
		t.Errorf("check after compact: status %d, want 0", status)
	}
	// compact refuses to make a store too.
	before := dirImage(t, notStore)
	if _, stderr, status := runStatus("compact", notStore); status != 1 || !strings.HasPrefix(stderr, "escrowctl: not an escrow store") {
		t.Errorf("compact of a directory without a store: status %d, stderr %q", status, stderr)
	}
	if changed := changedFiles(before, dirImage(t, notStore)); len(changed) > 0 {
		t.Errorf("compact changed %v in a directory that holds no store", changed)
	}
}

// TestExitStatus: every command reports on standard error with one
// prefix, and exits 0 when all is well, 1 on a problem, 2 on a usage
// error.
func TestExitStatus(t *testing.T) {
	dir := market(t)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		args   []string
		status int
		stderr string // how standard error starts
	}{
		{nil, 2, "escrowctl: no command\nusage:"},
		{[]string{"chekc", dir}, 2, "escrowctl: unknown command \"chekc\"\nusage:"},
		{[]string{"check"}, 2, "escrowctl: check takes one directory\nusage:"},
		{[]string{"stats", dir, dir}, 2, "escrowctl: stats takes one directory\nusage:"},
		{[]string{"dump", "-bogus", dir}, 2, "escrowctl: flag provided but not defined: -bogus\nusage:"},
		{[]string{"check", "-h"}, 0, "usage:"},
		{[]string{"-h"}, 0, "usage:"},
		{[]string{"--help"}, 0, "usage:"},
		{[]string{"help"}, 0, "usage:"},
		{[]string{"check", "-escrow", "x", dir}, 2, "escrowctl: flag provided but not defined: -escrow\nusage:"},
		{[]string{"stats", "-ratings", dir}, 2, "escrowctl: flag provided but not defined: -ratings\nusage:"},
		{[]string{"compact", "-escrow", "x", dir}, 2, "escrowctl: flag provided but not defined: -escrow\nusage:"},
		{[]string{"dump", missing}, 1, "escrowctl: not an escrow store: stat " + missing + ": no such file or directory\n"},
		{[]string{"dump", "-escrow", "nope", dir}, 1, "escrowctl: escrow \"nope\": not found\n"},
		{[]string{"check", dir}, 0, ""},
	} {
		stdout, stderr, status := runStatus(tc.args...)
		if status != tc.status || !strings.HasPrefix(stderr, tc.stderr) || tc.stderr == "" && stderr != "" {
			t.Errorf("escrowctl %q: status %d, stderr %q; want %d and %q", tc.args, status, stderr, tc.status, tc.stderr)
		}
		if status == 2 && stdout != "" {
			t.Errorf("escrowctl %q printed %q on standard output", tc.args, stdout)
		}
	}
}

// TestLockedStore: while a program has the store open, every command is
// refused, naming the program's process, and changes nothing.
func TestLockedStore(t *testing.T) {
	dir := market(t)
	s, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := dirImage(t, dir)
	want := fmt.Sprintf("escrowctl: %s is locked by another store (process %d)\n", dir, os.Getpid())
	if runtime.GOOS == "windows" { // LOCK cannot be read while it is locked
		want = fmt.Sprintf("escrowctl: %s is locked by another store\n", dir)
	}
	for _, cmd := range []string{"check", "stats", "dump", "compact"} {
		if _, stderr, status := runStatus(cmd, dir); status != 1 || stderr != want {
			t.Errorf("%s of a store in use: status %d, stderr %q; want 1 and %q", cmd, status, stderr, want)
		}
	}
	if changed := changedFiles(before, dirImage(t, dir)); len(changed) > 0 {
		t.Errorf("refused commands changed %v in the directory", changed)
	}
}

// TestStatsTiers shows where the records are: the last checkpoint and the
// log since, the cold tables and the cache.
func TestStatsTiers(t *testing.T) {
	var out bytes.Buffer
	tiers(&out, filestore.Stats{LastCheckpoint: time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC), LogRecords: 7, LogBytes: 700,
		Tables: 2, TableBytes: 9000, TableRecords: 120, TableMemBytes: 300, CacheBytes: 4096, CacheMaxBytes: 1 << 20, CacheHits: 5, CacheMisses: 2})
	want := "checkpoint 2026-11-30T04:00:00Z; 7 records and 700 bytes of log since\n" +
		"tables     2 cold tables, 9000 bytes, 120 keys; 300 bytes of their indexes and filters in memory\n" +
		"cache      4096 of 1048576 bytes; 5 hits, 2 misses\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("tiers (-want +got):\n%s", diff)
	}
	out.Reset()
	tiers(&out, filestore.Stats{})
	if !strings.HasPrefix(out.String(), "checkpoint none recorded;") {
		t.Errorf("tiers of a store never checkpointed = %q", out.String())
	}
}

// TestStatsCompactionError shows a failed compaction in the records lines
// of stats, and nothing when there is none.
func TestStatsCompactionError(t *testing.T) {
	for _, tc := range []struct {
		st   filestore.Stats
		want string
	}{
		{filestore.Stats{Seq: 9, SnapshotSeq: 4, SnapshotBytes: 100, LogRecords: 5, LogBytes: 50},
			"records    9 committed; snapshot to 4 (100 bytes); 5 in the log (50 bytes)\n"},
		{filestore.Stats{Seq: 9, CompactError: errors.New("filestore: compact: cannot start log segment x")},
			"records    9 committed; snapshot to 0 (0 bytes); 0 in the log (0 bytes)\n" +
				"compaction failed: filestore: compact: cannot start log segment x\n"},
	} {
		var out bytes.Buffer
		records(&out, tc.st)
		if diff := cmp.Diff(tc.want, out.String()); diff != "" {
			t.Errorf("records(%+v) (-want +got):\n%s", tc.st, diff)
		}
	}
}

// TestStatsReturnStates: stats counts the escrows of a return and refund
// under their own states, in lifecycle order, between the refund request
// and the dispute.
func TestStatsReturnStates(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	l, err := escrow.New(ctx, store, &escrow.Options{Clock: escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)), Arbiter: "arb"})
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.OpenAccount(ctx, "ann"))
	must(l.OpenAccount(ctx, "bob"))
	must(l.Deposit(ctx, "ann", escrow.MustParseMoney("100.00", escrow.CNY)))
	ten := escrow.MustParseMoney("10.00", escrow.CNY)
	// r<n> goes n steps into a return: requested, agreed, shipped back,
	// refused; r5 is then disputed.
	steps := []func(id string){
		func(id string) { must(l.RequestReturn(ctx, id, "ann", ten, "cracked")) },
		func(id string) { must(l.AgreeReturn(ctx, id, "bob", "1 Kiln Road")) },
		func(id string) { must(l.ShipReturn(ctx, id, "ann", "SF9")) },
		func(id string) { must(l.RefuseReturn(ctx, id, "bob", "not ours")) },
		func(id string) { must(l.Dispute(ctx, id, "ann", "it is theirs")) },
	}
	for n := 1; n <= len(steps); n++ {
		id := fmt.Sprintf("r%d", n)
		must(l.Open(ctx, escrow.Terms{ID: id, Buyer: "ann", Seller: "bob", Price: ten}))
		must(l.Pay(ctx, id, "ann"))
		must(l.Ship(ctx, id, "bob", ""))
		for _, step := range steps[:n] {
			step(id)
		}
	}
	n, err := count(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n.write(&out)
	_, got, _ := strings.Cut(out.String(), "escrows    5\n")
	want := "  ReturnRequested        1\n  AwaitingReturn         1\n  ReturnShipped          1\n  ReturnRefused          1\n  Disputed               1\n"
	if got != want {
		t.Errorf("stats listed\n%s\nwant\n%s", out.String(), want)
	}
}

// TestCheckRatingsOfStoreNoLedgerOpened: a store that was opened and
// closed with no ledger holds no system accounts, which a read-only check
// cannot write; check -ratings finds nothing to recompute there and
// passes, as check does, and changes nothing.
func TestCheckRatingsOfStoreNoLedgerOpened(t *testing.T) {
	dir := t.TempDir()
	s, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := dirImage(t, dir)
	for _, args := range [][]string{{"check", dir}, {"check", "-ratings", dir}} {
		stdout, stderr, status := runStatus(args...)
		if status != 0 || stderr != "" || !strings.HasPrefix(stdout, "ok:") {
			t.Errorf("escrowctl %q: status %d, stdout %q, stderr %q; want 0 and ok", args, status, stdout, stderr)
		}
	}
	if changed := changedFiles(before, dirImage(t, dir)); len(changed) > 0 {
		t.Errorf("check changed %v", changed)
	}
}

// TestFileInPlaceOfDirectory: a path that names a file, not a directory,
// holds no store: every command says so, as it does of a directory that
// holds none, and leaves the file and the directory around it as they
// were.
func TestFileInPlaceOfDirectory(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "market.db")
	if err := os.WriteFile(file, []byte("not a store"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := dirImage(t, parent)
	for _, cmd := range []string{"check", "stats", "dump", "compact"} {
		if _, err := runT(t, cmd, file); !errors.Is(err, filestore.ErrNotStore) {
			t.Errorf("%s of a file = %v, want ErrNotStore", cmd, err)
		}
		want := "escrowctl: not an escrow store: " + file + " is not a directory\n"
		if stdout, stderr, status := runStatus(cmd, file); status != 1 || stderr != want || stdout != "" {
			t.Errorf("%s of a file: status %d, stdout %q, stderr %q; want 1 and %q", cmd, status, stdout, stderr, want)
		}
		if changed := changedFiles(before, dirImage(t, parent)); len(changed) > 0 {
			t.Fatalf("%s of a file changed %v", cmd, changed)
		}
	}
}

// TestDumpEmptyEscrowID: -escrow given an empty ID (as a script's unset
// variable gives it) asks for one escrow's history and names none: it is
// a usage error, not a dump of every event.
func TestDumpEmptyEscrowID(t *testing.T) {
	dir := market(t)
	before := dirImage(t, dir)
	for _, args := range [][]string{{"dump", "-escrow", "", dir}, {"dump", "-escrow=", dir}} {
		stdout, stderr, status := runStatus(args...)
		want := "escrowctl: dump -escrow needs an escrow ID\nusage:"
		if status != 2 || stdout != "" || !strings.HasPrefix(stderr, want) {
			t.Errorf("escrowctl %q: status %d, stdout %d bytes, stderr %q; want 2, nothing and %q",
				args, status, len(stdout), stderr, want)
		}
	}
	if changed := changedFiles(before, dirImage(t, dir)); len(changed) > 0 {
		t.Errorf("a refused dump changed %v", changed)
	}
}

// TestFlagAfterDirectory: a flag written after the directory, as in
// dump DIR -escrow ID, is not taken for a second directory: the usage
// error says that flags go before it, and nothing is opened.
func TestFlagAfterDirectory(t *testing.T) {
	dir := market(t)
	before := dirImage(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dump", dir, "-escrow", "e1"}, "escrowctl: dump takes its flags before the directory, not \"-escrow\" after it\nusage:"},
		{[]string{"check", dir, "-ratings"}, "escrowctl: check takes its flags before the directory, not \"-ratings\" after it\nusage:"},
		{[]string{"stats", dir, dir}, "escrowctl: stats takes one directory\nusage:"},
	} {
		stdout, stderr, status := runStatus(tc.args...)
		if status != 2 || stdout != "" || !strings.HasPrefix(stderr, tc.want) {
			t.Errorf("escrowctl %q: status %d, stdout %q, stderr %q; want 2 and %q", tc.args, status, stdout, stderr, tc.want)
		}
	}
	if changed := changedFiles(before, dirImage(t, dir)); len(changed) > 0 {
		t.Errorf("refused commands changed %v", changed)
	}
}

// TestPGWithoutPostgreSQL: the escrow module's escrowctl has no
// PostgreSQL driver; -pg given to it is refused with a usage error that
// says which build takes it, not only that the flag is not defined.
func TestPGWithoutPostgreSQL(t *testing.T) {
	for _, args := range [][]string{
		{"check", "-pg", "postgres://me@localhost/market"},
		{"stats", "--pg=postgres://me@localhost/market"},
		{"dump", "-escrow", "e1", "-pg", "postgres://me@localhost/market"},
	} {
		want := "escrowctl: -pg needs the PostgreSQL build of escrowctl: cd storage/pgstore && go run ./cmd/escrowctl " + args[0] + " ...\nusage:"
		stdout, stderr, status := runStatus(args...)
		if status != 2 || stdout != "" || !strings.HasPrefix(stderr, want) {
			t.Errorf("escrowctl %q: status %d, stdout %q, stderr %q; want 2 and %q", args, status, stdout, stderr, want)
		}
	}
}

// fullWriter is standard output on a full disk: every write fails.
type fullWriter struct{}

var errFull = errors.New("no space left on device")

func (fullWriter) Write([]byte) (int, error) { return 0, errFull }

// TestOutputLost: a command whose output cannot be written has not done
// what it was asked, whether or not it found a problem: it exits 1 and
// says why, as dump already did, instead of 0 with a report nobody can
// read.
func TestOutputLost(t *testing.T) {
	dir := market(t)
	for _, cmd := range []string{"check", "stats", "dump", "compact"} {
		err := Run(fullWriter{}, []string{cmd, dir}, Options{})
		if !errors.Is(err, errFull) {
			t.Errorf("%s with its output lost = %v, want the write's error", cmd, err)
		}
		var stderr bytes.Buffer
		if status := ExitStatus(&stderr, err, Options{}); status != 1 || !strings.Contains(stderr.String(), "no space left on device") {
			t.Errorf("%s with its output lost: status %d, stderr %q; want 1 and the write's error", cmd, status, stderr.String())
		}
	}
}

// TestDumpInvalidEscrowID: -escrow given an ID no escrow can have (too
// long, a system account's, with a control character) is a usage error,
// as an empty one is, not a search of the store that reports it not
// found: the ledger refuses such an ID as invalid rather than look for
// it. Nothing is opened, and the usage error comes before the directory
// is looked at.
func TestDumpInvalidEscrowID(t *testing.T) {
	dir := market(t)
	before := dirImage(t, dir)
	for _, id := range []string{strings.Repeat("x", 129), "@fees", "a\x01b", "a\u202eb"} {
		for _, target := range []string{dir, filepath.Join(t.TempDir(), "missing")} {
			args := []string{"dump", "-escrow", id, target}
			stdout, stderr, status := runStatus(args...)
			if status != 2 || stdout != "" || !strings.HasPrefix(stderr, "escrowctl: dump -escrow: ") || !strings.Contains(stderr, "\nusage:") {
				t.Errorf("escrowctl %q: status %d, stdout %d bytes, stderr %q; want 2, nothing and a usage error",
					args, status, len(stdout), stderr)
			}
		}
	}
	if _, stderr, status := runStatus("dump", "-escrow", "nope", dir); status != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("dump of an escrow nobody opened: status %d, stderr %q; want 1 and not found", status, stderr)
	}
	if changed := changedFiles(before, dirImage(t, dir)); len(changed) > 0 {
		t.Errorf("a refused dump changed %v", changed)
	}
}

// runStatusWith is runStatus for a build with the options o.
func runStatusWith(o Options, args ...string) (stdout, stderr string, status int) {
	var out, errOut bytes.Buffer
	status = ExitStatus(&errOut, Run(&out, args, o), o)
	return out.String(), errOut.String(), status
}

// TestPGEmptyDSN: in the PostgreSQL build, -pg given an empty DSN (as a
// script's unset variable gives it: -pg "$ESCROW_PG_DSN") names no
// database. It is a usage error that says so, not a command on the
// directory given beside it, nor "takes one directory" when none was
// meant; nothing is opened.
func TestPGEmptyDSN(t *testing.T) {
	dir := market(t)
	before := dirImage(t, dir)
	opened := false
	o := Options{OpenPG: func(ctx context.Context, dsn string) (escrow.Storage, error) {
		opened = true
		return nil, errors.New("not to be opened")
	}}
	for _, args := range [][]string{
		{"check", "-pg", ""},
		{"check", "-pg", "", dir},
		{"stats", "-pg=", dir},
		{"dump", "-escrow", "e1", "-pg", "", dir},
		{"compact", "-pg", "", dir},
	} {
		stdout, stderr, status := runStatusWith(o, args...)
		want := "escrowctl: -pg needs a connection string\nusage:"
		if status != 2 || stdout != "" || !strings.HasPrefix(stderr, want) {
			t.Errorf("escrowctl %q: status %d, stdout %q, stderr %q; want 2, nothing and %q", args, status, stdout, stderr, want)
		}
	}
	if opened {
		t.Error("a command with an empty -pg opened a database")
	}
	if changed := changedFiles(before, dirImage(t, dir)); len(changed) > 0 {
		t.Errorf("a refused command changed %v", changed)
	}
}

// TestFlagGivenTwice: a flag given twice is a usage error naming it, not
// the last value silently: dump -escrow a -escrow b asks for two
// histories and would print one, and -pg given twice names two databases.
// Nothing is opened.
func TestFlagGivenTwice(t *testing.T) {
	dir := market(t)
	before := dirImage(t, dir)
	opened := false
	o := Options{OpenPG: func(ctx context.Context, dsn string) (escrow.Storage, error) {
		opened = true
		return nil, errors.New("not to be opened")
	}}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"dump", "-escrow", "e1", "-escrow", "e2", dir}, "escrow"},
		{[]string{"dump", "-escrow=e1", "--escrow", "e1", dir}, "escrow"},
		{[]string{"check", "-ratings", "-ratings=false", dir}, "ratings"},
		{[]string{"stats", "-pg", "postgres://a/one", "-pg", "postgres://a/two"}, "pg"},
	} {
		stdout, stderr, status := runStatusWith(o, tc.args...)
		want := "escrowctl: -" + tc.flag + " given twice\nusage:"
		if status != 2 || stdout != "" || !strings.HasPrefix(stderr, want) {
			t.Errorf("escrowctl %q: status %d, stdout %d bytes, stderr %q; want 2, nothing and %q",
				tc.args, status, len(stdout), stderr, want)
		}
	}
	if opened {
		t.Error("a command with -pg given twice opened a database")
	}
	if changed := changedFiles(before, dirImage(t, dir)); len(changed) > 0 {
		t.Errorf("a refused command changed %v", changed)
	}
	// Given once, each still works.
	if _, _, status := runStatusWith(o, "dump", "-escrow", "e1", dir); status != 0 {
		t.Errorf("dump -escrow e1: status %d, want 0", status)
	}
}

// TestEmptyDirectory: an empty argument in place of DIR (escrowctl check
// "$DIR" with DIR unset) names no directory: a usage error, as an empty
// -escrow ID is, not a failed look for a store at "", and nothing in the
// working directory is opened or made.
func TestEmptyDirectory(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	for _, cmd := range []string{"check", "stats", "dump", "compact"} {
		stdout, stderr, status := runStatus(cmd, "")
		want := "escrowctl: " + cmd + " needs a directory, not an empty argument\nusage:"
		if status != 2 || stdout != "" || !strings.HasPrefix(stderr, want) {
			t.Errorf("escrowctl %s \"\": status %d, stdout %q, stderr %q; want 2, nothing and %q", cmd, status, stdout, stderr, want)
		}
	}
	if entries, _ := os.ReadDir(wd); len(entries) != 0 {
		t.Errorf("a refused command left %d files in the working directory", len(entries))
	}
}

// TestPGNoAnswer: a database that takes the connection and never answers
// (a stuck server, a proxy with nothing behind it) does not hold the
// command forever: the open is given openTimeout, after which the command
// fails with status 1 and says the database did not answer.
func TestPGNoAnswer(t *testing.T) {
	defer func(d time.Duration) { openTimeout = d }(openTimeout)
	openTimeout = 50 * time.Millisecond
	o := Options{OpenPG: func(ctx context.Context, dsn string) (escrow.Storage, error) {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("failed to connect: %w", ctx.Err())
		case <-time.After(2 * time.Second):
			return nil, errors.New("the open was given no deadline")
		}
	}}
	for _, cmd := range []string{"check", "stats", "dump"} {
		start := time.Now()
		stdout, stderr, status := runStatusWith(o, cmd, "-pg", "postgres://db.example/market")
		want := "escrowctl: the database did not answer within 50ms: failed to connect: context deadline exceeded\n"
		if status != 1 || stdout != "" || stderr != want {
			t.Errorf("%s on a database that does not answer: status %d, stdout %q, stderr %q; want 1 and %q", cmd, status, stdout, stderr, want)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s on a database that does not answer took %v", cmd, d)
		}
	}
}
