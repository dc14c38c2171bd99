package filestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// writeTestdata makes TestWriteStore write a store in the current format
// to testdata. It is meant to be run once per released format version, by
// the release that introduced it; later releases keep the files and only
// read them.
var writeTestdata = flag.Bool("write-testdata", false, "TestWriteStore: write testdata/v<format version>store")

// storeTestdata returns where the store written in format version v and
// its expected contents (storagetest.Dump of the store, as JSON) live.
func storeTestdata(v int) (dir, dump string) {
	dir = filepath.Join("testdata", fmt.Sprintf("v%dstore", v))
	return dir, dir + ".json"
}

// TestWriteStore writes testdata/v<format version>store through the
// public API: escrows in every state, milestones, refunds, disputes,
// returns, parts shipped, extensions, evidence, an escalation, a cart, an
// escrow with a SKU, ratings given, revised, replied to, given by default,
// withdrawn and voided, item marks (and marks removed both before and
// after they left memory), idempotency records, a snapshot and a log
// after it. testdata/v1store was written by
// the last release without a file header.
//
//	go test ./storage/filestore -run TestWriteStore -args -write-testdata
func TestWriteStore(t *testing.T) {
	if !*writeTestdata {
		t.Skip("rewrites testdata only with -write-testdata")
	}
	dir := t.TempDir()
	s := openT(t, dir, &Options{CompactRatio: -1})
	w := &storeWriter{t: t, ctx: context.Background(), clock: escrow.NewManualClock(time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC))}
	var err error
	w.l, err = escrow.New(w.ctx, s, &escrow.Options{Clock: w.clock, Operators: []string{"ops"},
		Fee: escrow.FeePolicy{Rate: escrowDecimal("0.02"), Fixed: []escrow.Money{cny(50)}}})
	if err != nil {
		t.Fatal(err)
	}
	w.beforeSnapshot()
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	w.afterSnapshot()
	dump := dumpT(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	storeDir, storeDump := storeTestdata(formatVersion)
	if err := os.RemoveAll(storeDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range names {
		if e.Name() == lockName {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(storeDir, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, dump); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(storeDump, compact.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// storeWriter makes the calls of TestWriteStore, failing the test on any
// error.
type storeWriter struct {
	t     *testing.T
	ctx   context.Context
	l     *escrow.Ledger
	clock *escrow.ManualClock
}

func (w *storeWriter) must(_ any, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *storeWriter) tick() { w.clock.Advance(7 * time.Minute) }

// open opens escrow id from buyer to seller, with arbiter "arb".
func (w *storeWriter) open(id, buyer, seller string, price int64, milestones ...escrow.Milestone) {
	w.t.Helper()
	w.tick()
	w.must(w.l.Open(w.ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Arbiter: "arb",
		Price: cny(price), Item: "item " + id, Milestones: milestones}))
}

func (w *storeWriter) payShip(id, buyer, seller string) {
	w.t.Helper()
	w.tick()
	w.must(w.l.Pay(w.ctx, id, buyer, escrow.IdempotencyKey("pay-"+id)))
	w.tick()
	w.must(w.l.Ship(w.ctx, id, seller, "SF-"+id))
}

func (w *storeWriter) beforeSnapshot() {
	w.t.Helper()
	ctx, l := w.ctx, w.l
	for _, p := range []string{"alice", "bob", "carol", "dave"} {
		w.tick()
		w.must(l.OpenAccount(ctx, p))
		w.must(l.Deposit(ctx, p, cny(1_000_000), escrow.IdempotencyKey("deposit-"+p)))
	}
	// Completed, rated by both; a neutral revised upward, then replied to.
	w.tick()
	w.must(l.Open(ctx, escrow.Terms{ID: "done", Buyer: "alice", Seller: "bob", Price: cny(20_000), Item: "keyed",
		SKU: "KEY-1"}, escrow.IdempotencyKey("open-done")))
	w.payShip("done", "alice", "bob")
	w.tick()
	w.must(l.Confirm(ctx, "done", "alice"))
	w.must(l.Rate(ctx, "done", "alice", escrow.RatingInput{Score: escrow.Neutral,
		Details: escrow.Details{Described: 3, Communication: 4, Shipping: 2}, Comment: "slow"}))
	w.must(l.Rate(ctx, "done", "bob", escrow.RatingInput{Score: escrow.Positive}))
	w.tick()
	w.must(l.Revise(ctx, "done", "alice", escrow.Positive, "arrived after all"))
	w.must(l.Reply(ctx, "done", "alice", "bob", "thanks"))
	// Completed; only the buyer rates, the seller's rating comes by default.
	w.open("quiet", "carol", "dave", 3_000)
	w.payShip("quiet", "carol", "dave")
	w.must(l.Confirm(ctx, "quiet", "carol"))
	w.must(l.Rate(ctx, "quiet", "carol", escrow.RatingInput{Score: escrow.Negative, Comment: "broken"}))
	// Withdrawn by its rater, which removes its item mark in memory.
	w.tick()
	w.must(l.WithdrawRating(ctx, "quiet", "carol"))
	// Closed by its timer, unpaid.
	w.open("unpaid", "bob", "carol", 700)
	w.clock.Advance(16 * 24 * time.Hour)
	w.must(l.ProcessDue(ctx))
	// Closed by the buyer.
	w.open("cancelled", "alice", "carol", 900)
	w.must(l.Cancel(ctx, "cancelled", "alice"))
	// Refunded in full by the seller.
	w.open("refunded", "dave", "alice", 4_200)
	w.tick()
	w.must(l.Pay(ctx, "refunded", "dave"))
	w.must(l.Refund(ctx, "refunded", "alice", cny(4_200)))
	// A partial refund agreed, then confirmed for the rest.
	w.open("partial", "bob", "dave", 10_000)
	w.payShip("partial", "bob", "dave")
	w.must(l.RequestRefund(ctx, "partial", "bob", cny(2_500), "one missing"))
	w.tick()
	w.must(l.AgreeRefund(ctx, "partial", "dave"))
	w.must(l.Confirm(ctx, "partial", "bob"))
	// Resolved by the arbiter.
	w.open("resolved", "carol", "bob", 8_000)
	w.payShip("resolved", "carol", "bob")
	w.must(l.Dispute(ctx, "resolved", "carol", "not as described"))
	w.tick()
	w.must(l.Resolve(ctx, "resolved", "arb", escrow.Split{Buyer: cny(5_000), Seller: cny(3_000)}))
	// Milestones, all confirmed.
	w.open("stages", "dave", "carol", 9_000, escrow.Milestone{Name: "design", Amount: cny(4_000)},
		escrow.Milestone{Name: "build", Amount: cny(5_000)})
	w.payShip("stages", "dave", "carol")
	w.must(l.ConfirmMilestone(ctx, "stages", "dave", 0))
	w.tick()
	w.must(l.ConfirmMilestone(ctx, "stages", "dave", 1))
	w.must(l.Withdraw(ctx, "carol", cny(1_234), escrow.IdempotencyKey("withdraw-carol")))
	// Returned and refunded in full.
	w.open("returned", "alice", "bob", 6_000)
	w.payShip("returned", "alice", "bob")
	w.must(l.RequestReturn(ctx, "returned", "alice", cny(6_000), "wrong size"))
	w.must(l.AgreeReturn(ctx, "returned", "bob", "1 Dock Road"))
	w.tick()
	w.must(l.ShipReturn(ctx, "returned", "alice", "RT-returned"))
	w.must(l.ConfirmReturn(ctx, "returned", "bob"))
	// Shipped in parts, extended, returned and refused, disputed with
	// evidence, escalated past the arbiter's deadline, and resolved.
	w.tick()
	w.must(l.Open(ctx, escrow.Terms{ID: "escalated", Buyer: "dave", Seller: "carol", Arbiter: "arb", Price: cny(7_000),
		Item: "item escalated", Timers: escrow.Timers{ArbiterWithin: 24 * time.Hour}}))
	w.tick()
	w.must(l.Pay(ctx, "escalated", "dave"))
	w.must(l.ShipPart(ctx, "escalated", "carol", "SF-part-1"))
	w.tick()
	w.must(l.Ship(ctx, "escalated", "carol", "SF-part-2"))
	w.must(l.Extend(ctx, "escalated", "dave", 0))
	w.must(l.Extend(ctx, "escalated", "carol", 12*time.Hour))
	w.must(l.RequestReturn(ctx, "escalated", "dave", cny(7_000), "not as described"))
	w.must(l.AgreeReturn(ctx, "escalated", "carol", "2 Quay Street"))
	w.must(l.ShipReturn(ctx, "escalated", "dave", "RT-escalated"))
	w.tick()
	w.must(l.RefuseReturn(ctx, "escalated", "carol", "came back used"))
	w.must(l.Dispute(ctx, "escalated", "dave", "the return was refused"))
	w.must(l.AddEvidence(ctx, "escalated", "dave", "photos of the parcel", "file:escalated-1"))
	w.must(l.AddEvidence(ctx, "escalated", "arb", "asked the courier", ""))
	w.clock.Advance(25 * time.Hour)
	w.must(l.ProcessDue(ctx))
	w.must(l.Resolve(ctx, "escalated", "arb", escrow.Split{Buyer: cny(4_000), Seller: cny(3_000)}))
	// Paid together as a cart, then confirmed.
	w.open("cart-a", "carol", "alice", 1_000)
	w.open("cart-b", "carol", "dave", 2_000)
	w.tick()
	w.must(l.PayAll(ctx, "carol", []string{"cart-a", "cart-b"}, escrow.IdempotencyKey("payall-carol")))
	for _, c := range [][2]string{{"cart-a", "alice"}, {"cart-b", "dave"}} {
		w.tick()
		w.must(l.Ship(ctx, c[0], c[1], "SF-"+c[0]))
		w.must(l.Confirm(ctx, c[0], "carol"))
	}
}

// afterSnapshot leaves escrows open in every state that is not an end, in
// the log after the snapshot.
func (w *storeWriter) afterSnapshot() {
	w.t.Helper()
	ctx, l := w.ctx, w.l
	w.open("waiting", "alice", "dave", 1_100)
	w.open("paid", "bob", "alice", 1_200)
	w.tick()
	w.must(l.Pay(ctx, "paid", "bob"))
	w.open("shipped", "carol", "alice", 1_300)
	w.payShip("shipped", "carol", "alice")
	w.open("asking", "dave", "bob", 1_400)
	w.payShip("asking", "dave", "bob")
	w.must(l.RequestRefund(ctx, "asking", "dave", cny(400), "scratched"))
	w.open("disputed", "alice", "bob", 1_500)
	w.payShip("disputed", "alice", "bob")
	w.must(l.Dispute(ctx, "disputed", "bob", "buyer unreachable"))
	w.open("halfway", "bob", "carol", 2_000, escrow.Milestone{Name: "first", Amount: cny(800)},
		escrow.Milestone{Name: "second", Amount: cny(1_200)})
	w.payShip("halfway", "bob", "carol")
	w.must(l.ConfirmMilestone(ctx, "halfway", "bob", 0))
	w.must(l.Rate(ctx, "stages", "dave", escrow.RatingInput{Score: escrow.Positive,
		Details: escrow.Details{Communication: 5}}, escrow.IdempotencyKey("rate-stages")))
	w.must(l.Deposit(ctx, "alice", cny(77), escrow.IdempotencyKey("deposit-alice-2")))
	// Voided, after the snapshot moved it and its item mark to a cold
	// table: the mark's removal is in the log.
	w.tick()
	w.must(l.VoidRating(ctx, "done", "bob", "ops", "paid to rate"))
	// The states of a return, a part shipped, an extension and evidence.
	w.open("in-parts", "dave", "alice", 2_100)
	w.tick()
	w.must(l.Pay(ctx, "in-parts", "dave"))
	w.must(l.ShipPart(ctx, "in-parts", "alice", "SF-in-parts-1"))
	w.must(l.ShipPart(ctx, "in-parts", "alice", ""))
	w.open("extended", "alice", "carol", 2_200)
	w.payShip("extended", "alice", "carol")
	w.must(l.Extend(ctx, "extended", "alice", 24*time.Hour))
	w.must(l.Extend(ctx, "extended", "carol", 0))
	steps := []string{"return-asked", "return-agreed", "return-shipped", "return-refused"}
	for i, id := range steps {
		w.open(id, "bob", "dave", 2_300+int64(i))
		w.payShip(id, "bob", "dave")
		w.must(l.RequestReturn(ctx, id, "bob", cny(1_000), "changed my mind"))
		if i >= 1 {
			w.must(l.AgreeReturn(ctx, id, "dave", "3 Mill Lane"))
		}
		if i >= 2 {
			w.must(l.ShipReturn(ctx, id, "bob", "RT-"+id))
		}
		if i >= 3 {
			w.must(l.RefuseReturn(ctx, id, "dave", "nothing in the box"))
		}
	}
	w.open("evidence", "carol", "bob", 2_400)
	w.payShip("evidence", "carol", "bob")
	w.must(l.Dispute(ctx, "evidence", "carol", "never arrived"))
	w.must(l.AddEvidence(ctx, "evidence", "bob", "courier's proof of delivery", "file:evidence-1"))
}

func escrowDecimal(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// decodeDump decodes a storagetest.Dump.
func decodeDump(t testing.TB, dump []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(dump, &v); err != nil {
		t.Fatalf("decode dump: %v", err)
	}
	return v
}

// dropNewZeros removes from got, a decoded dump, the object fields that
// want lacks and that hold a zero value: fields added to a record after
// want was written, which an old store leaves zero.
func dropNewZeros(want, got any) {
	switch g := got.(type) {
	case map[string]any:
		w, _ := want.(map[string]any)
		for k, v := range g {
			if wv, ok := w[k]; ok {
				dropNewZeros(wv, v)
			} else if isZeroJSON(v) {
				delete(g, k)
			}
		}
	case []any:
		w, _ := want.([]any)
		for i := range min(len(w), len(g)) {
			dropNewZeros(w[i], g[i])
		}
	}
}

// isZeroJSON reports whether v is how encoding/json renders a zero value.
func isZeroJSON(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case float64:
		return v == 0
	case string:
		return v == "" || v == "0001-01-01T00:00:00Z"
	case []any:
		for _, e := range v {
			if !isZeroJSON(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range v {
			if !isZeroJSON(e) {
				return false
			}
		}
		return true
	}
	return false
}

// fileV1Rekeys sets in want, the dump of a version 1 store, the RekeyDay
// that decoding gives an aggregate of that version: the day after its
// WindowsDay if any of its windows counts a rating, else none.
func fileV1Rekeys(want any) {
	for _, a := range want.(map[string]any)["Aggregates"].([]any) {
		a := a.(map[string]any)
		if !isZeroJSON(a["Windows"]) {
			a["RekeyDay"] = a["WindowsDay"].(float64) + 1
		}
	}
}

// copyDir copies the files of testdata directory src into a new temporary
// directory, so that opening the store cannot change the testdata.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	names, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range names {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestOpenOldStores opens each store in testdata, written by an earlier
// format version, and finds exactly what it held; it then takes a new
// commit, which survives a reopen alongside the old records.
func TestOpenOldStores(t *testing.T) {
	for v := 1; v <= formatVersion; v++ {
		dir, dump := storeTestdata(v)
		if _, err := os.Stat(dir); v > 1 && errors.Is(err, os.ErrNotExist) {
			continue // not released yet
		}
		t.Run(filepath.Base(dir), func(t *testing.T) { testOpenOldStore(t, dir, dump) })
		t.Run(filepath.Base(dir)+"/checkpoint", func(t *testing.T) { testCheckpointOldStore(t, dir) })
	}
}

// testCheckpointOldStore checkpoints a copy of an old store as soon as it
// opens, so that the timers of the escrows in its tables, which a
// snapshot of version 4 or before held, go to the checkpoint's table, and
// finds the same contents after a reopen.
func testCheckpointOldStore(t *testing.T, storeDir string) {
	dir := copyDir(t, storeDir)
	s := openT(t, dir, &Options{CompactRatio: -1})
	before := dumpT(t, s)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if kinds, version := snapshotOps(t, s); kinds[opColdDue] != 0 || version != formatVersion {
		t.Fatalf("the snapshot of the checkpoint (version %d) holds %d batches of timers", version, kinds[opColdDue])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, &Options{CompactRatio: -1})
	defer s.Close()
	if diff := cmp.Diff(string(before), string(dumpT(t, s))); diff != "" {
		t.Fatalf("store reopened after a checkpoint with different contents (-want +got):\n%s", diff)
	}
}

func testOpenOldStore(t *testing.T, storeDir, storeDump string) {
	ctx := context.Background()
	golden, err := os.ReadFile(storeDump)
	if err != nil {
		t.Fatal(err)
	}
	want := decodeDump(t, golden)
	if strings.HasSuffix(storeDir, "v1store") {
		fileV1Rekeys(want)
	}
	dir := copyDir(t, storeDir)
	s := openT(t, dir, &Options{CompactRatio: -1})
	got := decodeDump(t, dumpT(t, s))
	// Sections a later Dump added list the same records by another index;
	// the sections of the records themselves are compared in full.
	for k := range got.(map[string]any) {
		if _, ok := want.(map[string]any)[k]; !ok {
			delete(got.(map[string]any), k)
		}
	}
	dropNewZeros(want, got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("store opened with different contents (-want +got):\n%s", diff)
	}
	if err := escrow.CheckMoney(ctx, s); err != nil {
		t.Fatalf("invariants: %v", err)
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := l.Deposit(ctx, "alice", cny(5)); err != nil {
		t.Fatal(err)
	}
	// Every aggregate with ratings in its windows is due for re-keying,
	// and ProcessDue re-keys them all.
	due := func(day int32) (n int) {
		t.Helper()
		err := s.View(ctx, func(tx escrow.Tx) error {
			aggs, err := tx.DueAggregates(day, 1000)
			n = len(aggs)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := due(math.MaxInt32); n == 0 {
		t.Fatal("no aggregate of the old store is due for re-keying")
	}
	if _, err := l.ProcessDue(ctx); err != nil {
		t.Fatal(err)
	}
	if n := due(int32(now.Unix() / 86400)); n != 0 {
		t.Fatalf("%d aggregates still due after ProcessDue", n)
	}
	// The aggregates ProcessDue re-keyed have their windowed detail sums
	// worked out from the ratings, and the rest read as they were
	// written: the reputation invariants hold either way.
	if err := l.Check(ctx); err != nil {
		t.Fatalf("reputation invariants after ProcessDue: %v", err)
	}
	before := dumpT(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, &Options{CompactRatio: -1})
	defer s.Close()
	if diff := cmp.Diff(string(before), string(dumpT(t, s))); diff != "" {
		t.Fatalf("store with a new commit reopened with different contents (-want +got):\n%s", diff)
	}
}

// setVersion rewrites the format version in the header of the named file,
// with a matching checksum.
func setVersion(t *testing.T, name string, version uint32) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	h := appendFileHeader(nil, string(data[:8]))
	binary.LittleEndian.PutUint32(h[8:], version)
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	copy(data, h)
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// setTableVersion rewrites the format version in the footer of the named
// cold table, with a matching checksum, and returns the version it wrote:
// one newer than this release's tables.
func setTableVersion(t *testing.T, name string) uint32 {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	// The footer's last 56 bytes: version at 40, its CRC-32C over 0–43 at
	// 44, then the magic.
	f := data[len(data)-56:]
	if string(f[48:]) != "escrowST" {
		t.Fatalf("%s does not end in a table footer", name)
	}
	version := binary.LittleEndian.Uint32(f[40:]) + 1
	binary.LittleEndian.PutUint32(f[40:], version)
	binary.LittleEndian.PutUint32(f[44:], crc32.Checksum(f[:44], castagnoli))
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return version
}

// TestNewerVersionRefused opens a store one of whose files claims a format
// version newer than this release: a segment, a snapshot, the manifest or
// a cold table. Open, and a read-only Open, fail with a VersionError
// naming the file, and change nothing.
func TestNewerVersionRefused(t *testing.T) {
	for _, file := range []string{segName(4), snapName(3), manifestName, tableName(3, 3)} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, &Options{CompactRatio: -1})
			runWorkload(t, s, 2)
			if err := s.Compact(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			name := filepath.Join(dir, file)
			version := uint32(formatVersion + 1)
			if _, _, ok := parseTableName(file); ok {
				version = setTableVersion(t, name)
			} else {
				setVersion(t, name, version)
			}
			before := dirImage(t, dir)
			for _, opts := range []*Options{nil, {ReadOnly: true}} {
				_, err := Open(dir, opts)
				var ve *VersionError
				if !errors.Is(err, ErrNewerVersion) || !errors.As(err, &ve) {
					t.Fatalf("Open(%+v) = %v, want a VersionError", opts, err)
				}
				if diff := cmp.Diff(VersionError{File: name, Version: version}, *ve); diff != "" {
					t.Errorf("VersionError (-want +got):\n%s", diff)
				}
				if !strings.Contains(err.Error(), "newer release") {
					t.Errorf("Open = %q, which does not say that a newer release wrote it", err)
				}
				if diff := cmp.Diff(before, dirImage(t, dir)); diff != "" {
					t.Errorf("a refused Open changed the directory (-before +after):\n%s", diff)
				}
			}
		})
	}
}

// TestFramedOpFields decodes framed operations whose fields end early, as
// those written before a field was added do, and ones with fields this
// release does not know.
func TestFramedOpFields(t *testing.T) {
	var e encoder
	e.account(&escrow.Account{ID: "a", System: true, CreatedAt: time.Unix(5, 0).UTC()})
	full := e.b
	// The account without its last field, CreatedAt: 1, 5 and 0.
	short := append([]byte{opAccount, byte(len(full) - 2 - 3)}, full[2:len(full)-3]...)
	got, err := decodeAll(short)
	if err != nil {
		t.Fatalf("decode of a short op: %v", err)
	}
	if diff := cmp.Diff([]op{{kind: opAccount, account: escrow.Account{ID: "a", System: true}}}, got, moneyEqual, cmp.AllowUnexported(op{})); diff != "" {
		t.Errorf("short op (-want +got):\n%s", diff)
	}
	long := append([]byte{opAccount, full[1] + 1}, full[2:]...)
	long = append(long, 7)
	if _, err := decodeAll(long); !errors.Is(err, errDecode) {
		t.Errorf("decode of an op with an unknown field = %v, want errDecode", err)
	}
}
