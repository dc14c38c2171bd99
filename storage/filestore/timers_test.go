package filestore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// timerKeys counts the timers a table files as set and as gone.
func timerKeys(t *testing.T, ct *coldTable) (set, gone int) {
	t.Helper()
	it := ct.t.NewIter()
	for ok := it.Seek([]byte{kindTimer}); ok && it.Key()[0] == kindTimer; ok = it.Next() {
		if _, _, ok := readTimerKey(it.Key()); !ok {
			t.Fatalf("%s: bad timer key %q", ct.name, it.Key())
		}
		switch {
		case len(it.Value()) == 0:
			set++
		case bytes.Equal(it.Value(), timerGone):
			gone++
		default:
			t.Fatalf("%s: timer value %q", ct.name, it.Value())
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return set, gone
}

// snapshotOps counts the operations of each kind in the store's newest
// snapshot, and returns its format version.
func snapshotOps(t *testing.T, s *Store) (map[byte]int, uint32) {
	t.Helper()
	st := s.Stats()
	name := snapName(st.SnapshotSeq)
	data, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	chunks, version, _, err := s.verifySnapshot(name, data, st.SnapshotSeq)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[byte]int{}
	for _, c := range chunks {
		d := decoder{b: c, version: version}
		var o op
		for d.next(&o) {
			kinds[o.kind]++
		}
		if d.err != nil {
			t.Fatal(d.err)
		}
	}
	return kinds, version
}

// TestColdTimers: the timers of ended escrows whose rating windows are
// open leave with them for the cold tables and not for the snapshot. An
// escrow that comes back to memory to be rated or to have its timer
// fired, and leaves again, hides its old timer in the tables. Across
// checkpoints and reopens, the file store's timers and what ProcessDue
// fires match a memory store's; a merge that takes in the oldest table
// drops the hidden timers.
func TestColdTimers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := &Options{NoSync: true, CompactRatio: -1}
	s := openT(t, dir, opts)
	defer func() { s.Close() }()
	ref := memstore.New()
	clock := escrow.NewManualClock(workloadStart)
	ledger := func(st escrow.Storage) *escrow.Ledger { return workloadLedger(t, st, clock) }
	lf, lm := ledger(s), ledger(ref)
	both := func(what string, call func(l *escrow.Ledger) (any, error)) {
		t.Helper()
		a, errF := call(lf)
		b, errM := call(lm)
		if errF != nil || errM != nil {
			t.Fatalf("%s: file store %v, memory store %v", what, errF, errM)
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("%s: file store %v, memory store %v", what, a, b)
		}
	}
	compare := func(when string) {
		t.Helper()
		if diff := cmp.Diff(string(dumpT(t, ref)), string(dumpT(t, s))); diff != "" {
			t.Fatalf("%s: dump (-memory +file):\n%s", when, diff)
		}
	}
	checkpoint := func(when string) {
		t.Helper()
		if err := s.Compact(); err != nil {
			t.Fatal(err)
		}
		kinds, version := snapshotOps(t, s)
		if kinds[opColdDue] != 0 || version != formatVersion {
			t.Fatalf("%s: the snapshot (version %d) holds %d batches of timers", when, version, kinds[opColdDue])
		}
		tables := s.tables.Load().tables
		if _, gone := timerKeys(t, tables[len(tables)-1]); gone != 0 {
			t.Fatalf("%s: the oldest table hides %d timers, which no table under it files", when, gone)
		}
		compare(when)
	}
	reopen := func(when string) {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openT(t, dir, opts)
		lf = ledger(s)
		compare(when)
	}

	for _, p := range []string{"u0", "u1"} {
		both("open account "+p, func(l *escrow.Ledger) (any, error) { return l.OpenAccount(ctx, p) })
	}
	both("deposit", func(l *escrow.Ledger) (any, error) { return l.Deposit(ctx, "u0", cny(1_000_000)) })
	const trades = 60
	trade := func(k int) {
		id := "t" + strconv.Itoa(k)
		both("open "+id, func(l *escrow.Ledger) (any, error) {
			return l.Open(ctx, escrow.Terms{ID: id, Buyer: "u0", Seller: "u1", Price: cny(100)})
		})
		both("pay "+id, func(l *escrow.Ledger) (any, error) { return l.Pay(ctx, id, "u0") })
		both("ship "+id, func(l *escrow.Ledger) (any, error) { return l.Ship(ctx, id, "u1", "") })
		both("confirm "+id, func(l *escrow.Ledger) (any, error) { return l.Confirm(ctx, id, "u0") })
	}
	rate := func(k int, rater string) {
		id := "t" + strconv.Itoa(k)
		both("rate "+id, func(l *escrow.Ledger) (any, error) {
			return l.Rate(ctx, id, rater, escrow.RatingInput{Score: escrow.Positive})
		})
	}
	// due returns the escrows due now.
	due := func(st escrow.Storage) []string {
		t.Helper()
		var ids []string
		err := st.View(ctx, func(tx escrow.Tx) error {
			var err error
			ids, err = tx.DueEscrows(clock.Now(), 1<<20)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	// processDue runs ProcessDue on both stores and returns how many
	// escrows were due: timers fired and rating windows closed.
	processDue := func(when string) int {
		t.Helper()
		df, dm := due(s), due(ref)
		if diff := cmp.Diff(dm, df); diff != "" {
			t.Fatalf("%s: due (-memory +file):\n%s", when, diff)
		}
		nf, errF := lf.ProcessDue(ctx)
		nm, errM := lm.ProcessDue(ctx)
		if errF != nil || errM != nil || nf != nm {
			t.Fatalf("%s: ProcessDue fired %d (%v) on the file store, %d (%v) on the memory store", when, nf, errF, nm, errM)
		}
		if left := due(s); len(left) != 0 {
			t.Fatalf("%s: still due after ProcessDue: %v", when, left)
		}
		return len(df)
	}

	// Trades ending a day apart, so that their timers come due a day
	// apart; each checkpoint takes the ended ones to a table.
	for k := range trades {
		clock.Advance(24 * time.Hour)
		trade(k)
		if k%20 == 19 {
			checkpoint(fmt.Sprintf("after trade %d", k))
		}
	}
	set := 0
	for _, ct := range s.tables.Load().tables {
		n, _ := timerKeys(t, ct)
		set += n
	}
	if set != trades {
		t.Fatalf("the tables file %d timers set, want one for each of %d trades", set, trades)
	}
	reopen("reopened")

	// Back to memory and out again: rated by one side or both, which may
	// move or end the timer, and fired by ProcessDue.
	// The windows of the last 14 trades are open (15 days).
	for k := trades - 14; k < trades; k += 2 {
		rate(k, "u0")
		if k%4 == 0 {
			rate(k, "u1")
		}
	}
	fired := processDue("after ratings")
	checkpoint("after ratings")
	gone := 0
	for _, ct := range s.tables.Load().tables {
		_, n := timerKeys(t, ct)
		gone += n
	}
	if gone == 0 {
		t.Fatal("no table hides a timer after escrows in the tables were rated")
	}
	reopen("reopened after ratings")

	for round := range 4 {
		clock.Advance(20 * 24 * time.Hour)
		fired += processDue(fmt.Sprintf("round %d", round))
		checkpoint(fmt.Sprintf("after round %d", round))
		reopen(fmt.Sprintf("reopened after round %d", round))
	}
	if fired == 0 {
		t.Fatal("no escrow was due")
	}
	// More trades, until a merge takes in the oldest table and with it
	// every hidden timer.
	for k := trades; len(s.tables.Load().tables) > 1; k++ {
		if k == 4*trades {
			t.Fatalf("%d tables after %d more trades: no merge took in the oldest", len(s.tables.Load().tables), k-trades)
		}
		clock.Advance(time.Hour)
		trade(k)
		if k%10 == 9 {
			checkpoint(fmt.Sprintf("after trade %d", k))
		}
	}
	reopen("reopened after the merge")
	clock.Advance(20 * 24 * time.Hour)
	fired += processDue("after the merge")
	if n := processDue("at the end"); n != 0 {
		t.Fatalf("%d escrows due again", n)
	}
	err := s.View(ctx, func(tx escrow.Tx) error {
		due, err := tx.DueEscrows(time.Unix(1<<40, 0), 1<<20)
		if err == nil && len(due) != 0 {
			err = fmt.Errorf("timers left: %v", due)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
