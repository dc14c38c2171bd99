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
	ledger := func(st escrow.Storage) *escrow.Ledger { return workloadLedger(t, st, clock) }
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
	// Records after the checkpoint, which the next checkpoint's table
	// would hold.
	for _, id := range []string{"after1", "after2"} {
		if err := s.Update(context.Background(), func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: id}) }); err != nil {
			t.Fatal(err)
		}
	}
	want := dumpT(t, s)
	table := s.tables.Load().tables[0]
	seq := s.Stats().Seq
	s.Close()

	data, err := os.ReadFile(filepath.Join(dir, table.name))
	if err != nil {
		t.Fatal(err)
	}
	// The table of a checkpoint at the last record that crashed before its
	// snapshot was in place.
	orphan := filepath.Join(dir, tableName(seq, seq))
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

// TestColdTradeFields ends escrows that went through the trade's later
// steps (parts shipped, extensions, a return accepted and one refused,
// evidence, an escalated dispute, a cart), moves them to the cold tables
// and reopens the store: each reads back from the tables as it was in
// memory, field for field.
func TestColdTradeFields(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir, &Options{NoSync: true, CompactRatio: -1})
	defer func() { s.Close() }()
	clock := escrow.NewManualClock(workloadStart)
	l, err := escrow.New(ctx, s, workloadOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	for _, p := range []string{"alice", "bob", "carol"} {
		must(l.OpenAccount(ctx, p))
		must(l.Deposit(ctx, p, cny(100_000)))
	}
	const day = 24 * time.Hour
	open := func(id, seller string, timers escrow.Timers) {
		t.Helper()
		must(l.Open(ctx, escrow.Terms{ID: id, Buyer: "alice", Seller: seller, Arbiter: "arb", Price: cny(9_000),
			Item: "item " + id, Timers: timers}))
	}

	// Shipped in parts, extended by both, returned and refused, then
	// disputed with evidence, escalated, and resolved.
	open("disputed", "bob", escrow.Timers{ArbiterWithin: 2 * day, BuyerExtension: 4 * day})
	must(l.Pay(ctx, "disputed", "alice"))
	must(l.ShipPart(ctx, "disputed", "bob", "P1"))
	must(l.ShipPart(ctx, "disputed", "bob", ""))
	must(l.Ship(ctx, "disputed", "bob", "P3"))
	must(l.Extend(ctx, "disputed", "alice", 0))
	must(l.Extend(ctx, "disputed", "bob", day))
	must(l.RequestReturn(ctx, "disputed", "alice", cny(9_000), "broken"))
	must(l.AgreeReturn(ctx, "disputed", "bob", "1 Dock Road"))
	must(l.ShipReturn(ctx, "disputed", "alice", "RT1"))
	must(l.RefuseReturn(ctx, "disputed", "bob", "not what was sent"))
	must(l.Dispute(ctx, "disputed", "alice", "the return was refused"))
	must(l.AddEvidence(ctx, "disputed", "alice", "photo of the parcel", "file:17"))
	must(l.AddEvidence(ctx, "disputed", "arb", "asked the courier", ""))
	clock.Advance(3 * day)
	must(l.ProcessDue(ctx))
	must(l.Resolve(ctx, "disputed", "arb", escrow.Split{Buyer: cny(6_000), Seller: cny(3_000)}))
	// Returned and refunded in full.
	open("returned", "carol", escrow.Timers{})
	must(l.Pay(ctx, "returned", "alice"))
	must(l.Ship(ctx, "returned", "carol", "SF9"))
	must(l.RequestReturn(ctx, "returned", "alice", cny(9_000), "wrong size"))
	must(l.AgreeReturn(ctx, "returned", "carol", ""))
	must(l.ShipReturn(ctx, "returned", "alice", "RT2"))
	must(l.ConfirmReturn(ctx, "returned", "carol"))
	// Paid together, then confirmed.
	open("cart-1", "bob", escrow.Timers{})
	open("cart-2", "carol", escrow.Timers{})
	must(l.PayAll(ctx, "alice", []string{"cart-1", "cart-2"}))
	for _, id := range []string{"cart-1", "cart-2"} {
		seller := map[string]string{"cart-1": "bob", "cart-2": "carol"}[id]
		must(l.Ship(ctx, id, seller, "C"+id))
		must(l.Confirm(ctx, id, "alice"))
	}

	ids := []string{"disputed", "returned", "cart-1", "cart-2"}
	read := func(st escrow.Storage) map[string]escrow.Escrow {
		t.Helper()
		got := map[string]escrow.Escrow{}
		err := st.View(ctx, func(tx escrow.Tx) error {
			for _, id := range ids {
				e, err := tx.Escrow(id)
				if err != nil {
					return fmt.Errorf("escrow %s: %w", id, err)
				}
				got[id] = e
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	hot := read(s)
	d, c := hot["disputed"], hot["cart-2"]
	if d.State != escrow.Resolved || len(d.Shipments) != 2 || d.Extended.Buyer == 0 || d.Extended.Seller == 0 ||
		d.Return.RefusedAt.IsZero() || len(d.Evidence) != 2 || d.Dispute.EscalatedAt.IsZero() ||
		d.Timers.ArbiterWithin != 2*day || d.Timers.BuyerExtension != 4*day {
		t.Fatalf("the disputed escrow did not take every step: %+v", d)
	}
	if r := hot["returned"]; r.State != escrow.Refunded || r.Return.ReceivedAt.IsZero() || r.Return.Tracking != "RT2" {
		t.Fatalf("the returned escrow did not take every step: %+v", r)
	}
	if c.State != escrow.Completed || c.Cart != "cart-1" || c.CartSize != 2 {
		t.Fatalf("the cart's escrow did not take every step: %+v", c)
	}

	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	err = s.mem.View(ctx, func(tx escrow.Tx) error {
		for _, id := range ids {
			if _, err := tx.Escrow(id); !errors.Is(err, escrow.ErrNotFound) {
				return fmt.Errorf("escrow %s still in memory after the checkpoint (%v)", id, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(hot, read(s), moneyEqual); diff != "" {
		t.Fatalf("escrows read from the cold tables (-memory +tables):\n%s", diff)
	}
	s.Close()
	s = openT(t, dir, &Options{NoSync: true, CompactRatio: -1})
	if diff := cmp.Diff(hot, read(s), moneyEqual); diff != "" {
		t.Fatalf("escrows read from the cold tables after reopening (-memory +tables):\n%s", diff)
	}
}

// TestColdItemMarks removes item marks that a checkpoint moved to a cold
// table, and one removed and put back: reads answer as if the removed
// marks were never there, after a reopen (which replays the removal from
// the log), after another checkpoint (which moves the removal to a newer
// table) and after the tables merge (which drops the removal once no
// table under the merged one holds a copy for it to hide).
func TestColdItemMarks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir, &Options{NoSync: true, CompactRatio: -1})
	defer func() { s.Close() }()
	at := workloadStart
	mark := func(ratee, rater, item, esc string) escrow.ItemMark {
		return escrow.ItemMark{Ratee: ratee, Rater: rater, Item: item, Escrow: esc, At: at}
	}
	a, b, c := mark("bob", "alice", "SKU-1", "e-1"), mark("bob", "alice", "SKU-2", "e-2"), mark("bob", "carol", "SKU-1", "e-3")
	put := func(ms ...escrow.ItemMark) {
		t.Helper()
		err := s.Update(ctx, func(tx escrow.Tx) error {
			for _, m := range ms {
				if err := tx.PutItemMark(m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	remove := func(m escrow.ItemMark) { t.Helper(); m.Escrow, m.At = "", time.Time{}; put(m) }
	compact := func() {
		t.Helper()
		if err := s.Compact(); err != nil {
			t.Fatal(err)
		}
	}
	reopen := func() {
		t.Helper()
		s.Close()
		s = openT(t, dir, &Options{NoSync: true, CompactRatio: -1})
	}
	check := func(when string, want ...escrow.ItemMark) {
		t.Helper()
		err := s.View(ctx, func(tx escrow.Tx) error {
			got := []escrow.ItemMark{}
			if err := tx.ItemMarks(func(m escrow.ItemMark) error { got = append(got, m); return nil }); err != nil {
				return err
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: ItemMarks (-want +got):\n%s", when, diff)
			}
			for _, m := range []escrow.ItemMark{a, b, c} {
				got, err := tx.ItemMark(m.Ratee, m.Rater, m.Item)
				switch {
				case slices.Contains(want, m) && (err != nil || got != m):
					t.Errorf("%s: ItemMark(%s, %s, %s) = %+v, %v; want %+v", when, m.Ratee, m.Rater, m.Item, got, err, m)
				case !slices.Contains(want, m) && !errors.Is(err, escrow.ErrNotFound):
					t.Errorf("%s: ItemMark(%s, %s, %s) = %+v, %v; want ErrNotFound", when, m.Ratee, m.Rater, m.Item, got, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// b is removed before the first checkpoint, and put back.
	put(a, b, c)
	remove(b)
	put(b)
	compact()
	if n := memMarks(t, s); n != 0 {
		t.Fatalf("%d item marks left in memory after the checkpoint", n)
	}
	check("in the table", a, b, c)
	remove(a)
	check("a removed from the table", b, c)
	reopen()
	check("reopened", b, c)
	compact()
	check("its removal in a second table", b, c)
	reopen()
	check("reopened with two tables", b, c)
	if err := s.mergeTables(); err != nil {
		t.Fatal(err)
	}
	ts := s.tables.Load().tables
	if len(ts) != 1 {
		t.Fatalf("%d tables after merging two small ones, want 1", len(ts))
	}
	check("merged", b, c)
	var keys int
	it := ts[0].t.NewIter()
	for ok := it.First(); ok; ok = it.Next() {
		if it.Key()[0] == kindMark {
			keys++
		}
	}
	if err := it.Err(); err != nil || keys != 2 {
		t.Errorf("the merged table holds %d item marks (%v), want the 2 left: the removal is dropped", keys, it.Err())
	}
	reopen()
	check("reopened after the merge", b, c)
	// Put back after its removal left the tables, and removed again
	// before a checkpoint.
	put(a)
	check("a put back", a, b, c)
	remove(c)
	remove(a)
	check("a and c removed", b)
	compact()
	reopen()
	check("a and c removed, checkpointed and reopened", b)
	// A mark naming the escrow a removal is kept as is refused.
	err := s.Update(ctx, func(tx escrow.Tx) error { return tx.PutItemMark(mark("bob", "alice", "SKU-1", markGone)) })
	if !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("PutItemMark naming escrow %q: %v, want ErrInvalidArgument", markGone, err)
	}
	check("after a refused mark", b)
}

// memMarks counts the item marks memstore holds, removals included.
func memMarks(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.mem.View(context.Background(), func(tx escrow.Tx) error {
		return tx.ItemMarks(func(escrow.ItemMark) error { n++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEndedTxOverTables keeps a Tx past the end of its View and of its
// Update on a store whose oldest records are in the cold tables: a page
// the tables alone could fill must still fail, as every call through an
// ended transaction does, and after Close too.
func TestEndedTxOverTables(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir(), &Options{CompactRatio: -1})
	defer s.Close()
	runWorkload(t, s, 300)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Tables == 0 {
		t.Fatal("the compaction wrote no cold table")
	}
	var escrowID string
	var leakedR, leakedW escrow.Tx
	err := s.View(ctx, func(tx escrow.Tx) error {
		leakedR = tx
		evs, err := tx.Events(0, 100)
		for _, ev := range evs {
			if escrowID == "" && ev.Escrow != "" {
				escrowID = ev.Escrow
			}
		}
		return err
	})
	if err != nil || escrowID == "" {
		t.Fatalf("reading the events: %v, escrow %q", err, escrowID)
	}
	if err := s.Update(ctx, func(tx escrow.Tx) error { leakedW = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	try := func(when string) {
		for name, leaked := range map[string]escrow.Tx{"View": leakedR, "Update": leakedW} {
			reads := map[string]func() (int, error){
				"Journal":      func() (int, error) { p, err := leaked.Journal(0, 1); return len(p), err },
				"Events":       func() (int, error) { p, err := leaked.Events(0, 1); return len(p), err },
				"Entries":      func() (int, error) { p, err := leaked.Entries("u1", 0, 1); return len(p), err },
				"EscrowEvents": func() (int, error) { p, err := leaked.EscrowEvents(escrowID, 0, 1); return len(p), err },
			}
			for read, call := range reads {
				if n, err := call(); err == nil {
					t.Errorf("%s: %s through the Tx of an ended %s returned %d records and no error", when, read, name, n)
				}
			}
		}
	}
	try("open")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	try("closed")
}

// TestViewAcrossClose: a View still running when Close returns may find
// the cold tables' files closed under it; its reads then fail with
// escrow.ErrClosed, not with ErrCorrupt, which would report damage that
// is not there.
func TestViewAcrossClose(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir(), &Options{CompactRatio: -1, CacheBytes: -1})
	runWorkload(t, s, 300)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	err := s.View(ctx, func(tx escrow.Tx) error {
		closed := make(chan error)
		go func() { closed <- s.Close() }()
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
		reads := map[string]func() error{
			"Journal":      func() error { _, err := tx.Journal(0, 1000); return err },
			"Events":       func() error { _, err := tx.Events(0, 1000); return err },
			"Entries":      func() error { _, err := tx.Entries("u1", 0, 1000); return err },
			"PartyEscrows": func() error { _, err := tx.PartyEscrows(escrow.PartyQuery{Party: "u1", Limit: 1000}); return err },
		}
		for name, read := range reads {
			if err := read(); errors.Is(err, ErrCorrupt) || err != nil && !errors.Is(err, escrow.ErrClosed) {
				t.Errorf("%s in a View across Close: %v, want no error or ErrClosed", name, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
