package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
	"github.com/shopspring/decimal"
)

// The crash workload: a fixed sequence of ledger calls, each of which
// succeeds and appends exactly one event, so that the number of events in
// a recovered store says how many calls it holds. It opens eight accounts,
// then runs trades of eight calls each: deposit, open (every third with an
// idempotency key), pay, ship, confirm or refund, two ratings or
// deposits, and a withdrawal. In every fourth trade the seller rates the
// trade four before instead of its own, so that rating windows stay open
// across checkpoints, and escrows leave memory with their timers set and
// come back to be rated.
const (
	workloadParties = 8
	workloadTrade   = 8
)

// workloadCalls is the number of calls in the full workload: with the
// transaction that New makes, more than 2,000 transactions.
const workloadCalls = workloadParties + 250*workloadTrade

func workloadOptions(clock escrow.Clock) *escrow.Options {
	return &escrow.Options{Clock: clock, Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.01")}}
}

// workloadLedger returns a ledger on st with workloadOptions.
func workloadLedger(t testing.TB, st escrow.Storage, clock escrow.Clock) *escrow.Ledger {
	t.Helper()
	l, err := escrow.New(context.Background(), st, workloadOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func cny(units int64) escrow.Money {
	m, err := escrow.MoneyFromUnits(units, escrow.CNY)
	if err != nil {
		panic(err)
	}
	return m
}

// workloadCall makes call i of the workload.
func workloadCall(ctx context.Context, l *escrow.Ledger, i int) error {
	party := func(k int) string { return "u" + strconv.Itoa(k%workloadParties) }
	if i < workloadParties {
		_, err := l.OpenAccount(ctx, party(i))
		return err
	}
	k, step := (i-workloadParties)/workloadTrade, (i-workloadParties)%workloadTrade
	buyer, seller, id := party(k), party(k+1), "t"+strconv.Itoa(k)
	refunded := k%4 == 3
	var err error
	switch step {
	case 0:
		_, err = l.Deposit(ctx, buyer, cny(10_000))
	case 1:
		var opts []escrow.CallOption
		if k%3 == 0 {
			opts = append(opts, escrow.IdempotencyKey("open-"+id))
		}
		_, err = l.Open(ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Price: cny(5_000 + int64(k)), Item: "item " + id}, opts...)
	case 2:
		_, err = l.Pay(ctx, id, buyer)
	case 3:
		_, err = l.Ship(ctx, id, seller, "SF"+id)
	case 4:
		if refunded {
			_, err = l.Refund(ctx, id, seller, cny(5_000+int64(k)))
		} else {
			_, err = l.Confirm(ctx, id, buyer)
		}
	case 5:
		if refunded {
			_, err = l.Deposit(ctx, seller, cny(1))
		} else {
			_, err = l.Rate(ctx, id, buyer, escrow.RatingInput{Score: escrow.Positive,
				Details: escrow.Details{Described: 5, Communication: 4, Shipping: int8(1 + k%5)}, Comment: "fine"})
		}
	case 6:
		switch {
		case refunded || k == 1:
			_, err = l.Deposit(ctx, buyer, cny(2))
		case k%4 == 1:
			// The seller of the trade four before rates it: its rating
			// window stayed open meanwhile, with its timer set, and a
			// checkpoint may have moved it to a table.
			_, err = l.Rate(ctx, "t"+strconv.Itoa(k-4), party(k-3), escrow.RatingInput{Score: escrow.Score(1 + k%3)})
		default:
			_, err = l.Rate(ctx, id, seller, escrow.RatingInput{Score: escrow.Score(1 + k%3)})
		}
	case 7:
		_, err = l.Withdraw(ctx, buyer, cny(100))
	}
	return err
}

// reference returns the dumps of a memory store after New and the first n
// calls of the workload, for any n asked for, computing each once.
type reference struct {
	empty []byte
	dumps map[int][]byte
}

func newReference(t testing.TB) *reference {
	s := memstore.New()
	empty, err := storagetest.Dump(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return &reference{empty: empty, dumps: map[int][]byte{}}
}

func (r *reference) dump(t testing.TB, n int) []byte {
	if d, ok := r.dumps[n]; ok {
		return d
	}
	s := memstore.New()
	runWorkload(t, s, n)
	d := dumpT(t, s)
	r.dumps[n] = d
	return d
}

var workloadStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// crashRun is one run of the workload over a memFS with a fault.
type crashRun struct {
	fs       *memFS
	acked    int  // calls that returned nil
	newAcked bool // New returned nil
	started  int  // calls begun
}

const crashDir = "/store"

// runCrash runs calls of the workload on a store over fs until one fails,
// compacting every compactEvery calls, and checks that once an Update has
// failed the store refuses updates but still reads.
func runCrash(t *testing.T, fs *memFS, calls, compactEvery int) crashRun {
	t.Helper()
	ctx := context.Background()
	r := crashRun{fs: fs}
	s, err := Open(crashDir, &Options{fs: fs, CompactRatio: -1})
	if err != nil {
		return r // the fault hit Open; nothing was acknowledged
	}
	defer s.Close()
	clock := escrow.NewManualClock(workloadStart)
	l, err := escrow.New(ctx, s, workloadOptions(clock))
	if err != nil {
		return r
	}
	r.newAcked = true
	for i := range calls {
		clock.Advance(time.Minute)
		r.started = i + 1
		if err := workloadCall(ctx, l, i); err != nil {
			if !errors.Is(err, errInjected) {
				t.Fatalf("call %d failed with %v, not the injected error", i, err)
			}
			// The store is failed now: updates are refused without
			// running, and reads too where they would see a commit
			// that may be lost.
			ran := false
			err := s.Update(ctx, func(escrow.Tx) error { ran = true; return nil })
			if !errors.Is(err, ErrFailed) || ran {
				t.Fatalf("Update after a failed commit = %v (ran %v), want ErrFailed without running", err, ran)
			}
			if _, err := storagetest.Dump(ctx, s); err != nil && !errors.Is(err, ErrFailed) {
				t.Fatalf("reading after a failed commit: %v", err)
			}
			return r
		}
		r.acked = i + 1
		if compactEvery > 0 && (i+1)%compactEvery == 0 {
			// A failed compaction leaves the log as it was and the store
			// working, unless the failure was in the log itself.
			if err := s.Compact(); err != nil && !errors.Is(err, errInjected) {
				t.Fatalf("Compact: %v", err)
			}
		}
	}
	return r
}

// checkRecovery opens a crash image and checks that it holds every
// acknowledged call, a whole number of calls, and nothing else.
func checkRecovery(t *testing.T, ref *reference, r crashRun, img *memFS) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(crashDir, &Options{fs: img})
	if err != nil {
		t.Fatalf("Open after the crash: %v", err)
	}
	defer s.Close()
	var events []escrow.Event
	err = s.View(ctx, func(tx escrow.Tx) error {
		var err error
		events, err = tx.Events(0, 1<<30)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n := len(events)
	if n < r.acked || n > r.started {
		t.Fatalf("recovered %d calls; %d were acknowledged and %d begun", n, r.acked, r.started)
	}
	got, err := storagetest.Dump(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	want := ref.dump(t, n)
	if n == 0 && !r.newAcked && bytes.Equal(got, ref.empty) {
		want = ref.empty // New's own commit was lost, and never acknowledged
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("recovered store with %d calls differs from the reference:\ngot  %.1500s\nwant %.1500s", n, got, want)
	}
	if err := escrow.CheckMoney(ctx, s); err != nil {
		t.Fatalf("invariants after recovery: %v", err)
	}
	// The recovered log takes appends where it was cut.
	l, err := escrow.New(ctx, s, workloadOptions(escrow.NewManualClock(workloadStart.Add(time.Duration(n+1)*time.Minute))))
	if err != nil {
		t.Fatalf("New after recovery: %v", err)
	}
	if n >= workloadParties {
		if _, err := l.Deposit(ctx, "u0", cny(1)); err != nil {
			t.Fatalf("Deposit after recovery: %v", err)
		}
	}
	before := dumpT(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(crashDir, &Options{fs: img})
	if err != nil {
		t.Fatalf("second Open after the crash: %v", err)
	}
	after := dumpT(t, s2)
	s2.Close()
	if !bytes.Equal(before, after) {
		t.Fatalf("store changed across a clean reopen after recovery")
	}
}

// crashPoints returns the counted operations of a fault-free run.
func crashPoints(t *testing.T, calls, compactEvery int) []string {
	fs := newMemFS(1)
	r := runCrash(t, fs, calls, compactEvery)
	if r.acked != calls {
		t.Fatalf("fault-free run acknowledged %d of %d calls", r.acked, calls)
	}
	return fs.points
}

// TestCrashPoints fails, and separately crashes at, write and fsync points
// of the workload, then recovers and checks the result. By default it
// tries a sample of the points; FILESTORE_CRASH=full tries every one (some
// minutes).
func TestCrashPoints(t *testing.T) {
	const compactEvery = 300
	calls := workloadCalls
	points := crashPoints(t, calls, compactEvery)
	kinds := map[string]int{}
	for _, k := range points {
		kinds[k]++
	}
	t.Logf("%d calls, %d counted operations: %v", calls, len(points), kinds)
	if kinds["write"] < 2000 || kinds["sync"] < 2000 {
		t.Fatalf("the workload wrote %d times and synced %d times, want at least 2,000 each", kinds["write"], kinds["sync"])
	}

	var sample []int
	if os.Getenv("FILESTORE_CRASH") == "full" {
		for n := 1; n <= len(points); n++ {
			sample = append(sample, n)
		}
	} else {
		// The first points (Open, New), every point of the first
		// compaction, and a seeded random spread of the rest.
		rng := rand.New(rand.NewPCG(7, 7))
		for n := 1; n <= 12; n++ {
			sample = append(sample, n)
		}
		// The first compaction begins with the first file created after
		// Open's: its cold table. Every point of it, through its
		// snapshot, the new segment and the cleanup, is in the window.
		first := 2 * (compactEvery + workloadParties/2)
		for i := 12; i < len(points); i++ {
			if points[i] == "create" {
				first = i + 1
				break
			}
		}
		for n := first - 4; n <= first+40; n++ {
			sample = append(sample, n)
		}
		count := 40
		if raceEnabled || testing.Short() {
			count = 0 // the points above cover every kind; the race detector makes long runs slow
		}
		for range count {
			sample = append(sample, 1+rng.IntN(len(points)))
		}
	}
	ref := newReference(t)
	for _, n := range sample {
		for _, crash := range []bool{false, true} {
			name := fmt.Sprintf("%s-%d-%s", map[bool]string{false: "fail", true: "crash"}[crash], n, points[n-1])
			ok := t.Run(name, func(t *testing.T) {
				fs := newMemFS(uint64(n))
				fs.fault, fs.crashAfterFault = n, crash
				r := runCrash(t, fs, calls, compactEvery)
				rng := rand.New(rand.NewPCG(uint64(n), 1))
				checkRecovery(t, ref, r, fs.crashImage(rng))
			})
			if !ok {
				return // one failure explains the rest
			}
		}
	}
}

// TestCrashTornTails crashes the workload at each of a run of points and
// recovers from every variety of lost unsynced bytes, many seeds per point.
func TestCrashTornTails(t *testing.T) {
	calls := 200
	points := crashPoints(t, calls, 60)
	ref := newReference(t)
	seeds := 8
	if raceEnabled || testing.Short() {
		seeds = 1
	}
	for n := 1; n <= len(points); n += 7 {
		fs := newMemFS(uint64(n))
		fs.fault, fs.crashAfterFault = n, true
		r := runCrash(t, fs, calls, 60)
		for seed := range seeds {
			rng := rand.New(rand.NewPCG(uint64(n), uint64(seed)))
			t.Run(fmt.Sprintf("%d-%s-seed%d", n, points[n-1], seed), func(t *testing.T) {
				checkRecovery(t, ref, r, fs.crashImage(rng))
			})
		}
	}
}

// loadMemFS returns a memFS holding the files of the store in dir, all
// durable, under crashDir.
func loadMemFS(t *testing.T, dir string, seed uint64) *memFS {
	t.Helper()
	fs := newMemFS(seed)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		f := &memFile{data: data, synced: bytes.Clone(data)}
		fs.names[path.Join(crashDir, e.Name())], fs.durable[path.Join(crashDir, e.Name())] = f, f
	}
	return fs
}

// TestCrashPointsOldStore fails, and separately crashes at, every write
// and sync of the first checkpoint of a store of format version 4, which
// moves the timers of the escrows in its tables from the snapshot to the
// checkpoint's table, and finds the store as it was after recovery, with
// its timers, and again after the recovered store checkpoints.
func TestCrashPointsOldStore(t *testing.T) {
	storeDir, _ := storeTestdata(4)
	run := func(fs *memFS) {
		s, err := Open(crashDir, &Options{fs: fs, CompactRatio: -1})
		if err != nil {
			return
		}
		defer s.Close()
		if err := s.Compact(); err != nil && !errors.Is(err, errInjected) {
			t.Fatalf("Compact: %v", err)
		}
	}
	ref := openT(t, copyDir(t, storeDir), &Options{ReadOnly: true})
	want := dumpT(t, ref)
	ref.Close()
	// "resolved" is one of the ended escrows whose timer the snapshot holds.
	if due, _ := decodeDump(t, want).(map[string]any)["Due"].([]any); !slices.Contains(due, any("resolved")) {
		t.Fatalf("the store has no timer of an escrow in its tables: %v", due)
	}
	clean := loadMemFS(t, storeDir, 1)
	run(clean)
	points := clean.points
	t.Logf("%d counted operations", len(points))
	for n := 1; n <= len(points); n++ {
		for _, crash := range []bool{false, true} {
			name := fmt.Sprintf("%s-%d-%s", map[bool]string{false: "fail", true: "crash"}[crash], n, points[n-1])
			ok := t.Run(name, func(t *testing.T) {
				fs := loadMemFS(t, storeDir, uint64(n))
				fs.fault, fs.crashAfterFault = n, crash
				run(fs)
				img := fs.crashImage(rand.New(rand.NewPCG(uint64(n), 1)))
				s, err := Open(crashDir, &Options{fs: img, CompactRatio: -1})
				if err != nil {
					t.Fatalf("Open after the crash: %v", err)
				}
				defer func() { s.Close() }()
				if diff := cmp.Diff(string(want), string(dumpT(t, s))); diff != "" {
					t.Fatalf("recovered store (-want +got):\n%s", diff)
				}
				if err := s.Compact(); err != nil {
					t.Fatal(err)
				}
				s.Close()
				s, err = Open(crashDir, &Options{fs: img, CompactRatio: -1})
				if err != nil {
					t.Fatalf("Open after a checkpoint: %v", err)
				}
				if diff := cmp.Diff(string(want), string(dumpT(t, s))); diff != "" {
					t.Fatalf("recovered store after a checkpoint (-want +got):\n%s", diff)
				}
			})
			if !ok {
				return
			}
		}
	}
}
