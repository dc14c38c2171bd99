package filestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// TestColdTablesMatchMemory runs the workload on a file store that
// checkpoints at random moments, so that ended escrows, ratings, the
// journal and the events leave memory for cold tables (and the tables
// merge), and on a memory store beside it. Rating windows close on the
// clock, so evicted escrows are written again. After every checkpoint,
// and after reopening, every read the ledger makes answers as the memory
// store's does, page by page, across the line between tables and memory.
func TestColdTablesMatchMemory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir, &Options{NoSync: true, CompactRatio: -1})
	defer func() { s.Close() }()
	ref := memstore.New()
	clock := escrow.NewManualClock(workloadStart)
	ledger := func(st escrow.Storage) *escrow.Ledger {
		l, err := escrow.New(ctx, st, workloadOptions(clock))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	lf, lm := ledger(s), ledger(ref)
	rng := rand.New(rand.NewPCG(7, 7))
	compare := func(when string) {
		t.Helper()
		if diff := cmp.Diff(string(dumpT(t, ref)), string(dumpT(t, s))); diff != "" {
			t.Fatalf("%s: dump (-memory +file):\n%s", when, diff)
		}
		if diff := cmp.Diff(readsT(t, ref), readsT(t, s)); diff != "" {
			t.Fatalf("%s: reads (-memory +file):\n%s", when, diff)
		}
	}
	tables, evicted := 0, uint64(0)
	for i := 0; i < 900; i++ {
		clock.Advance(time.Minute)
		if i%150 == 149 {
			clock.Advance(20 * 24 * time.Hour) // past the rating windows
			_, errF := lf.ProcessDue(ctx)
			_, errM := lm.ProcessDue(ctx)
			if errF != nil || errM != nil {
				t.Fatalf("ProcessDue: %v, %v", errF, errM)
			}
		}
		errF, errM := workloadCall(ctx, lf, i), workloadCall(ctx, lm, i)
		if fmt.Sprint(errF) != fmt.Sprint(errM) {
			t.Fatalf("call %d: file store %v, memory store %v", i, errF, errM)
		}
		if rng.IntN(40) == 0 {
			if err := s.Compact(); err != nil {
				t.Fatal(err)
			}
			compare(fmt.Sprintf("after call %d", i))
			tables = max(tables, len(s.tables.Load().tables))
		}
		if i%300 == 299 {
			evicted += s.evicted.Load()
			s.Close()
			s = openT(t, dir, &Options{NoSync: true, CompactRatio: -1})
			lf = ledger(s)
			compare(fmt.Sprintf("reopened after call %d", i))
		}
	}
	if evicted == 0 || tables < 2 {
		t.Fatalf("too little left memory (evicted %d, at most %d tables)", evicted, tables)
	}
	if n := len(s.tables.Load().tables); n > 6 {
		t.Errorf("%d tables after the workload: merging keeps them few", n)
	}
}

// readsT reads s as the ledger's queries do, a few records a page, so
// that pages cross from the tables to memory: the journal, the events,
// each account's entries, each escrow's events, each party's escrows in
// each role (with and without a state filter), and each ratee's ratings
// from every position.
func readsT(t testing.TB, s escrow.Storage) string {
	t.Helper()
	var b strings.Builder
	err := s.View(context.Background(), func(tx escrow.Tx) error {
		var ids []string
		parties := map[string]bool{}
		if err := tx.Escrows(func(e escrow.Escrow) error {
			ids = append(ids, e.ID)
			parties[e.Buyer], parties[e.Seller] = true, true
			return nil
		}); err != nil {
			return err
		}
		for after := uint64(0); ; {
			page, err := tx.Journal(after, 7)
			if err != nil || len(page) == 0 {
				break
			}
			fmt.Fprintf(&b, "journal %d: %d..%d\n", after, page[0].Seq, page[len(page)-1].Seq)
			after = page[len(page)-1].Seq
		}
		for after := uint64(0); ; {
			page, err := tx.Events(after, 5)
			if err != nil || len(page) == 0 {
				break
			}
			fmt.Fprintf(&b, "events %d: %d..%d %s\n", after, page[0].Seq, page[len(page)-1].Seq, page[0].Type)
			after = page[len(page)-1].Seq
		}
		for p := range parties {
			for after := uint64(0); ; {
				page, err := tx.Entries(p, after, 3)
				if err != nil {
					return err
				}
				if len(page) == 0 {
					break
				}
				fmt.Fprintf(&b, "entries %s %d: %d %v\n", p, after, page[0].Seq, page[0].Postings)
				after = page[len(page)-1].Seq
			}
			for _, role := range []escrow.Role{escrow.Buyer, escrow.Seller, escrow.Buyer | escrow.Seller} {
				for _, states := range [][]escrow.State{nil, {escrow.Completed}} {
					q := escrow.PartyQuery{Party: p, Role: role, States: states, Limit: 2}
					for {
						page, err := tx.PartyEscrows(q)
						if err != nil {
							return err
						}
						if len(page) == 0 {
							break
						}
						for _, e := range page {
							fmt.Fprintf(&b, "party %s %v %v: %s %v\n", p, role, states, e.ID, e.State)
						}
						last := page[len(page)-1]
						q.After = escrow.EscrowPos{CreatedAt: last.CreatedAt, ID: last.ID}
					}
				}
			}
			var pos []escrow.RatingPos
			err := tx.RatingsOf(p, escrow.RatingPos{}, func(r escrow.Rating) error {
				fmt.Fprintf(&b, "rating of %s: %s by %s %v\n", p, r.Escrow, r.Rater, r.Score)
				pos = append(pos, escrow.RatingPos{At: r.At, Escrow: r.Escrow, Rater: r.Rater})
				return nil
			})
			if err != nil {
				return err
			}
			for _, after := range pos {
				n := 0
				if err := tx.RatingsOf(p, after, func(escrow.Rating) error { n++; return nil }); err != nil {
					return err
				}
				fmt.Fprintf(&b, "ratings of %s after %s: %d\n", p, after.Escrow, n)
			}
		}
		for _, id := range ids {
			for after := uint64(0); ; {
				page, err := tx.EscrowEvents(id, after, 2)
				if err != nil {
					return err
				}
				if len(page) == 0 {
					break
				}
				fmt.Fprintf(&b, "events of %s %d: %d %s\n", id, after, page[0].Seq, page[0].Type)
				after = page[len(page)-1].Seq
			}
			if r, err := tx.Rating(id, "u0"); err == nil {
				fmt.Fprintf(&b, "rating %s by u0: %v\n", id, r.Score)
			}
		}
		due, err := tx.DueEscrows(time.Unix(1<<40, 0), 1<<20)
		fmt.Fprintf(&b, "due %v\n", due)
		return err
	})
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	// Parties were visited in map order: sort the lines.
	lines := strings.Split(b.String(), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestTablesOnOpen: a table the snapshot names and that is gone fails Open
// with ErrCorrupt and changes nothing; a table no snapshot names (left by
// a checkpoint that crashed before its snapshot) is removed, and the
// store reads as before.
func TestTablesOnOpen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, &Options{CompactRatio: -1})
	runWorkload(t, s, 200)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	want := dumpT(t, s)
	table := s.tables.Load().tables[0]
	s.Close()

	data, err := os.ReadFile(filepath.Join(dir, table.name))
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(dir, tableName(table.hi+100, table.hi+100))
	if err := os.WriteFile(orphan, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, nil)
	if got := dumpT(t, s); string(got) != string(want) {
		t.Error("the store reads differently with a table no snapshot names")
	}
	s.Close()
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the orphan table is still there: %v", err)
	}

	if err := os.Remove(filepath.Join(dir, table.name)); err != nil {
		t.Fatal(err)
	}
	before := dirImage(t, dir)
	if _, err := Open(dir, nil); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), table.name) {
		t.Fatalf("Open without a table the snapshot names = %v, want ErrCorrupt naming %s", err, table.name)
	}
	sameDir(t, dir, before)
}
