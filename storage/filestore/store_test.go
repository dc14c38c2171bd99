package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/storagetest"
	"github.com/google/go-cmp/cmp"
)

// openT opens a store or fails the test; the test closes it.
func openT(t testing.TB, dir string, opts *Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func dumpT(t testing.TB, s escrow.Storage) []byte {
	t.Helper()
	d, err := storagetest.Dump(context.Background(), s)
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return d
}

// indexesT reads s through the indexes behind the ledger's queries: the
// events of every escrow, and the escrows of every party, in every role.
func indexesT(t testing.TB, s escrow.Storage) string {
	t.Helper()
	var b strings.Builder
	err := s.View(context.Background(), func(tx escrow.Tx) error {
		parties := map[string]bool{}
		err := tx.Escrows(func(e escrow.Escrow) error {
			parties[e.Buyer], parties[e.Seller], parties[e.Arbiter] = true, true, true
			evs, err := tx.EscrowEvents(e.ID, 0, 1<<20)
			for _, ev := range evs {
				fmt.Fprintf(&b, "%s %d %s\n", e.ID, ev.Seq, ev.Type)
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, p := range slices.Sorted(maps.Keys(parties)) {
			for _, role := range []escrow.Role{escrow.Buyer, escrow.Seller, escrow.Arbiter} {
				es, err := tx.PartyEscrows(escrow.PartyQuery{Party: p, Role: role, Limit: 1 << 20})
				if err != nil {
					return err
				}
				for _, e := range es {
					fmt.Fprintf(&b, "%s %v %s\n", p, role, e.ID)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the indexes: %v", err)
	}
	return b.String()
}

// runWorkload runs the first n calls of the crash workload on s.
func runWorkload(t testing.TB, s escrow.Storage, n int) {
	t.Helper()
	ctx := context.Background()
	clock := escrow.NewManualClock(workloadStart)
	l, err := escrow.New(ctx, s, workloadOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		clock.Advance(time.Minute)
		if err := workloadCall(ctx, l, i); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// TestReopen runs the workload through a ledger, closes the store and
// opens it again: the dump is the same byte for byte, with and without a
// snapshot in between, and the invariants hold.
// TestIdempotencyDeletionSurvivesReopen: a deleted idempotency record stays
// deleted when the store reopens, whether the deletion is replayed from the
// log or a snapshot taken after it leaves the record out, and the index of
// records by age comes back without it.
func TestIdempotencyDeletionSurvivesReopen(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		compactBefore, compactEnd bool
	}{
		{"LogOnly", false, false},
		{"SnapshotBeforeDeletion", true, false},
		{"SnapshotAfterDeletion", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			s := openT(t, dir, &Options{CompactRatio: -1})
			update := func(fn func(tx escrow.Tx) error) {
				t.Helper()
				if err := s.Update(ctx, fn); err != nil {
					t.Fatal(err)
				}
			}
			compact := func() {
				t.Helper()
				if err := s.Compact(); err != nil {
					t.Fatal(err)
				}
			}
			at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
			update(func(tx escrow.Tx) error {
				for i, k := range []string{"k1", "k2", "k3"} {
					r := escrow.IdempotencyRecord{Key: k, Request: "r", At: at.Add(time.Duration(i) * time.Minute)}
					if err := tx.PutIdempotency(r); err != nil {
						return err
					}
				}
				return nil
			})
			if tc.compactBefore {
				compact()
			}
			update(func(tx escrow.Tx) error { return tx.DeleteIdempotency("k2") })
			if tc.compactEnd {
				compact()
			}
			before := dumpT(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir, nil)
			defer s.Close()
			if after := dumpT(t, s); !bytes.Equal(before, after) {
				t.Fatalf("dump after reopening differs:\nbefore %.2000s\nafter  %.2000s", before, after)
			}
			err := s.View(ctx, func(tx escrow.Tx) error {
				if _, err := tx.Idempotency("k2"); !errors.Is(err, escrow.ErrNotFound) {
					t.Errorf("Idempotency(k2) after reopening: %v, want ErrNotFound", err)
				}
				keys, err := tx.IdempotenciesUntil(at.Add(time.Hour), 10)
				if diff := cmp.Diff([]string{"k1", "k3"}, keys); diff != "" {
					t.Errorf("IdempotenciesUntil after reopening (-want +got):\n%s", diff)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReopen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		compact bool
		opts    Options
	}{
		{"LogOnly", false, Options{CompactRatio: -1}},
		{"Snapshot", true, Options{CompactRatio: -1}},
		{"AutoCompact", false, Options{CompactMinBytes: 8 << 10, CompactRatio: 0.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			s := openT(t, dir, &tc.opts)
			runWorkload(t, s, 600)
			if err := s.Update(ctx, func(tx escrow.Tx) error {
				return tx.PutConsumer(escrow.Consumer{Name: "mailer", Seq: 42, UpdatedAt: workloadStart})
			}); err != nil {
				t.Fatal(err)
			}
			if tc.compact {
				if err := s.Compact(); err != nil {
					t.Fatalf("Compact: %v", err)
				}
				// More after the snapshot, replayed from the log.
				if _, err := escrow.New(ctx, s, nil); err != nil {
					t.Fatal(err)
				}
				if err := s.Update(ctx, func(tx escrow.Tx) error {
					if err := tx.PutConsumer(escrow.Consumer{Name: "sms", Seq: 7}); err != nil {
						return err
					}
					return tx.PutIdempotency(escrow.IdempotencyRecord{Key: "after", Request: "r", Result: []byte(`{}`)})
				}); err != nil {
					t.Fatal(err)
				}
			}
			before, indexes := dumpT(t, s), indexesT(t, s)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s = openT(t, dir, &tc.opts)
			defer s.Close()
			if after := dumpT(t, s); !bytes.Equal(before, after) {
				t.Fatalf("dump after reopening differs:\nbefore %.2000s\nafter  %.2000s", before, after)
			}
			if !bytes.Contains(before, []byte(`"mailer"`)) {
				t.Fatalf("the dump lacks the consumer:\n%.2000s", before)
			}
			if diff := cmp.Diff(indexes, indexesT(t, s)); diff != "" || !strings.Contains(indexes, " EscrowPaid\n") {
				t.Fatalf("the indexes after reopening differ (-before +after):\n%s", diff)
			}
			if err := escrow.CheckMoney(ctx, s); err != nil {
				t.Fatalf("invariants after reopening: %v", err)
			}
			// Open may have started a compaction; Close waits for it.
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			names, _ := os.ReadDir(dir)
			var snaps, segs int
			for _, e := range names {
				switch {
				case strings.HasPrefix(e.Name(), snapPrefix):
					snaps++
				case strings.HasPrefix(e.Name(), segPrefix):
					segs++
				}
			}
			if tc.compact && (snaps != 1 || segs != 1) {
				t.Errorf("after Compact the directory holds %d snapshots and %d segments, want 1 and 1", snaps, segs)
			}
			if tc.name == "AutoCompact" && snaps != 1 {
				t.Errorf("automatic compaction left %d snapshots, want 1", snaps)
			}
		})
	}
}

// TestOpenRemovesOnlyItsLeftovers opens a store whose directory holds the
// temporary files a crashed checkpoint, merge or rotation leaves, and
// files of other names that merely begin and end as those do: Open
// removes the first and leaves the others, which the store did not write.
func TestOpenRemovesOnlyItsLeftovers(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, &Options{CompactRatio: -1})
	runWorkload(t, s, 10)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	leftovers := []string{snapName(99) + tmpSuffix, tableName(99, 99) + tmpSuffix, tableName(3, 99) + tmpSuffix,
		nextSegName, manifestName + tmpSuffix}
	others := []string{"snap-notes.tmp", "snap-shot.png.tmp", "tbl-sales.csv.tmp", "tbl-.tmp", snapName(99) + ".old.tmp"}
	for _, name := range slices.Concat(leftovers, others) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = openT(t, dir, &Options{CompactRatio: -1})
	s.Close()
	for _, name := range leftovers {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open left %s (%v), which a crash of the store left", name, err)
		}
	}
	for _, name := range others {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(data) != "x" {
			t.Errorf("Open removed or changed %s, which the store did not write: %q, %v", name, data, err)
		}
	}
}

func TestLockAndPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := openT(t, dir, nil)
	defer s.Close()
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open in the same process = %v, want ErrLocked", err)
	}
	runWorkload(t, s, 20)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode = %v (%v), want 0700", st.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 5 {
		t.Errorf("directory holds %d files, want LOCK, MANIFEST, a snapshot, a segment and a table", len(entries))
	}
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}

	// Another process is refused too.
	lockChild(t, dir)

	// Closing releases the lock; Close is idempotent; use after Close.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	ran := false
	if err := s.Update(context.Background(), func(escrow.Tx) error { ran = true; return nil }); !errors.Is(err, escrow.ErrClosed) || ran {
		t.Errorf("Update after Close = %v (ran %v), want ErrClosed", err, ran)
	}
	if err := s.View(context.Background(), func(escrow.Tx) error { ran = true; return nil }); !errors.Is(err, escrow.ErrClosed) || ran {
		t.Errorf("View after Close = %v (ran %v), want ErrClosed", err, ran)
	}
	if err := s.Compact(); !errors.Is(err, escrow.ErrClosed) {
		t.Errorf("Compact after Close = %v, want ErrClosed", err)
	}
	s2 := openT(t, dir, nil)
	s2.Close()
}

// TestLockWithoutLockFile removes LOCK from under an open store: another
// process is still refused, because the lock is held on the directory
// itself, which cannot be unlinked while it holds the store.
func TestLockWithoutLockFile(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, nil)
	defer s.Close()
	runWorkload(t, s, 5)
	if err := os.Remove(filepath.Join(dir, lockName)); err != nil {
		t.Skipf("LOCK cannot be removed while open on this system: %v", err)
	}
	lockChild(t, dir)
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open in the same process = %v, want ErrLocked", err)
	}
	// The holder goes on.
	if err := s.Update(context.Background(), func(tx escrow.Tx) error {
		return tx.PutAccount(escrow.Account{ID: "after"})
	}); err != nil {
		t.Fatal(err)
	}
}

// lockChild runs TestLockChild in another process, which must find dir
// locked.
func lockChild(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$")
	cmd.Env = append(os.Environ(), "FILESTORE_LOCK_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "locked as expected") {
		t.Fatalf("child process: %v\n%s", err, out)
	}
}

// TestLockChild is the other process of the lock tests.
func TestLockChild(t *testing.T) {
	dir := os.Getenv("FILESTORE_LOCK_CHILD")
	if dir == "" {
		t.Skip("run by TestLockAndPermissions and TestLockWithoutLockFile")
	}
	_, err := Open(dir, nil)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open of a locked directory = %v, want a LockedError naming it", err)
	}
	// The holder's ID is in LOCK, where there is one to read.
	want := 0
	if _, err := os.Stat(filepath.Join(dir, lockName)); err == nil && holderPID() != 0 {
		want = os.Getppid()
	}
	if le.PID != want {
		t.Fatalf("LockedError.PID = %d, want %d", le.PID, want)
	}
	t.Log("locked as expected")
	os.Stdout.WriteString("locked as expected\n")
}

// TestFailedStore fails one fsync: the Update that hit it returns the
// error, every later Update and View is refused without running, and a
// reopened store holds what was acknowledged.
func TestFailedStore(t *testing.T) {
	ctx := context.Background()
	fs := newMemFS(1)
	s := openT(t, crashDir, &Options{fs: fs})
	runWorkload(t, s, 40)
	before := dumpT(t, s)
	fs.mu.Lock()
	fs.fault = fs.ops + 2 // the write succeeds, its fsync fails
	fs.mu.Unlock()
	err := s.Update(ctx, func(tx escrow.Tx) error {
		return tx.PutAccount(escrow.Account{ID: "late"})
	})
	if !errors.Is(err, ErrFailed) || !errors.Is(err, errInjected) {
		t.Fatalf("Update whose fsync failed = %v, want ErrFailed wrapping the cause", err)
	}
	for range 3 {
		ran := false
		err := s.Update(ctx, func(escrow.Tx) error { ran = true; return nil })
		if !errors.Is(err, ErrFailed) || ran {
			t.Fatalf("Update after the failure = %v (ran %v), want ErrFailed without running", err, ran)
		}
	}
	ran := false
	err = s.View(ctx, func(escrow.Tx) error { ran = true; return nil })
	if !errors.Is(err, ErrFailed) || ran {
		t.Fatalf("View after the failure = %v (ran %v), want ErrFailed without running", err, ran)
	}
	if err := s.Compact(); !errors.Is(err, ErrFailed) {
		t.Errorf("Compact after the failure = %v, want ErrFailed", err)
	}
	s.Close()
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	// The failed fsync lost the record; what was acknowledged is there.
	s2 := openT(t, crashDir, &Options{fs: afterFailedSync(fs)})
	defer s2.Close()
	if after := dumpT(t, s2); !bytes.Equal(before, after) {
		t.Fatalf("store after the failure differs from what was acknowledged")
	}
}

func TestCorruption(t *testing.T) {
	ctx := context.Background()
	// A store with three records in one segment, each written alone.
	build := func(t *testing.T) (string, []int64) {
		dir := t.TempDir()
		s := openT(t, dir, nil)
		var ends []int64
		for _, id := range []string{"a", "b", "c"} {
			if err := s.Update(ctx, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: id}) }); err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(filepath.Join(dir, segName(1)))
			ends = append(ends, st.Size())
		}
		s.Close()
		return dir, ends
	}
	accounts := func(t *testing.T, s *Store) []string {
		var ids []string
		s.View(ctx, func(tx escrow.Tx) error {
			return tx.Accounts(func(a escrow.Account) error { ids = append(ids, a.ID); return nil })
		})
		return ids
	}
	seg := func(dir string) string { return filepath.Join(dir, segName(1)) }

	t.Run("TornTail", func(t *testing.T) {
		dir, ends := build(t)
		data, _ := os.ReadFile(seg(dir))
		// Cut the last record in half.
		os.WriteFile(seg(dir), data[:ends[1]+(ends[2]-ends[1])/2], 0o600)
		s := openT(t, dir, nil)
		if got := accounts(t, s); strings.Join(got, ",") != "a,b" {
			t.Errorf("accounts after a torn tail = %v, want a, b", got)
		}
		// Cut inside its header, the record cannot be told.
		wantTorn(t, s, TornTail{File: seg(dir), Offset: ends[1], Bytes: (ends[2] - ends[1]) / 2})
		s.Close()
		if st, _ := os.Stat(seg(dir)); st.Size() != ends[1] {
			t.Errorf("segment is %d bytes after recovery, want it truncated to %d", st.Size(), ends[1])
		}
		s = openT(t, dir, nil)
		wantTorn(t, s, TornTail{}) // dropped once, for good
		s.Close()
	})
	t.Run("BitFlipInLastRecord", func(t *testing.T) {
		dir, ends := build(t)
		data, _ := os.ReadFile(seg(dir))
		data[ends[2]-1] ^= 0x10
		os.WriteFile(seg(dir), data, 0o600)
		s := openT(t, dir, nil)
		defer s.Close()
		if got := accounts(t, s); strings.Join(got, ",") != "a,b" {
			t.Errorf("accounts after damage to the last record = %v, want a, b", got)
		}
		wantTorn(t, s, TornTail{File: seg(dir), Offset: ends[1], Bytes: ends[2] - ends[1], FirstSeq: 3, LastSeq: 3})
	})
	t.Run("TornBatch", func(t *testing.T) {
		// Records 3 and 4 written together; 3 did not reach the disk
		// whole, 4 did.
		dir, ends := build(t)
		data, _ := os.ReadFile(seg(dir))
		_, _, payload, _, _ := parseFrame(data[ends[1]:])
		batch := appendFrame(nil, 3, 0, payload)
		batch[frameHeader] ^= 1
		batch = appendFrame(batch, 4, 1, payload)
		os.WriteFile(seg(dir), append(data[:ends[1]:ends[1]], batch...), 0o600)
		s := openT(t, dir, nil)
		defer s.Close()
		wantTorn(t, s, TornTail{File: seg(dir), Offset: ends[1], Bytes: int64(len(batch)), FirstSeq: 3, LastSeq: 4})
	})
	t.Run("GarbageTail", func(t *testing.T) {
		dir, ends := build(t)
		f, _ := os.OpenFile(seg(dir), os.O_WRONLY|os.O_APPEND, 0)
		f.Write(bytes.Repeat([]byte{0}, 4096))
		f.Close()
		s := openT(t, dir, nil)
		if got := accounts(t, s); len(got) != 3 {
			t.Errorf("accounts = %v, want all three", got)
		}
		// Zeros hold no record: bytes dropped, none lost.
		wantTorn(t, s, TornTail{File: seg(dir), Offset: ends[2], Bytes: 4096})
		s.Close()
		if st, _ := os.Stat(seg(dir)); st.Size() != ends[2] {
			t.Errorf("segment is %d bytes, want %d", st.Size(), ends[2])
		}
	})
	t.Run("Middle", func(t *testing.T) {
		dir, ends := build(t)
		data, _ := os.ReadFile(seg(dir))
		data[ends[0]+frameHeader+1] ^= 0x40 // inside record 2, records after it
		os.WriteFile(seg(dir), data, 0o600)
		before, _ := os.ReadFile(seg(dir))
		_, err := Open(dir, nil)
		var ce *CorruptError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.File != seg(dir) || ce.Offset != ends[0] {
			t.Fatalf("Open = %v, want ErrCorrupt at %s offset %d", err, seg(dir), ends[0])
		}
		if after, _ := os.ReadFile(seg(dir)); !bytes.Equal(before, after) {
			t.Errorf("a failed Open changed the segment")
		}
		// The lock was released.
		if _, err := Open(dir, nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("second Open = %v, want ErrCorrupt again", err)
		}
	})
	t.Run("Snapshot", func(t *testing.T) {
		dir, _ := build(t)
		s := openT(t, dir, nil)
		s.Compact()
		s.Close()
		name := filepath.Join(dir, snapName(3))
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)-3] ^= 1
		os.WriteFile(name, data, 0o600)
		_, err = Open(dir, nil)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.File != name {
			t.Fatalf("Open with a damaged snapshot = %v, want ErrCorrupt naming it", err)
		}
	})
	t.Run("MissingSegment", func(t *testing.T) {
		dir, _ := build(t)
		s := openT(t, dir, nil)
		s.Compact()
		runWorkload(t, s, 3)
		s.Close()
		os.Remove(filepath.Join(dir, snapName(3)))
		_, err := Open(dir, nil)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open without the snapshot the log needs = %v, want ErrCorrupt", err)
		}
	})
}

// wantTorn checks what s reports of a torn tail.
func wantTorn(t *testing.T, s *Store, want TornTail) {
	t.Helper()
	if got := s.Stats().TornTail; got != want {
		t.Errorf("Stats().TornTail = %+v, want %+v", got, want)
	}
}

// TestViewWaitsForDurability holds a commit's fsync and checks that a
// reader does not see the commit until it is durable.
func TestViewWaitsForDurability(t *testing.T) {
	ctx := context.Background()
	fs := &gateFS{memFS: newMemFS(1), waiting: make(chan struct{})}
	s := openT(t, crashDir, &Options{fs: fs})
	defer s.Close()
	fs.gate = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Update(ctx, func(tx escrow.Tx) error { return tx.AppendEvent(&escrow.Event{Type: escrow.Deposited}) }); err != nil {
			t.Errorf("Update: %v", err)
		}
	}()
	<-fs.waiting // the commit is applied in memory and its fsync is held
	seen := make(chan int, 1)
	go func() {
		s.View(ctx, func(tx escrow.Tx) error {
			evs, _ := tx.Events(0, 10)
			seen <- len(evs)
			return nil
		})
	}()
	select {
	case n := <-seen:
		t.Fatalf("View ran while the commit was not durable and saw %d events", n)
	case <-time.After(50 * time.Millisecond):
	}
	close(fs.gate)
	if n := <-seen; n != 1 {
		t.Fatalf("View after the fsync saw %d events, want 1", n)
	}
	wg.Wait()
}

// gateFS holds the first file sync after gate is set until gate closes.
type gateFS struct {
	*memFS
	gate    chan struct{}
	waiting chan struct{}
	once    sync.Once
}

func (g *gateFS) Create(name string) (file, error) {
	f, err := g.memFS.Create(name)
	if err != nil {
		return nil, err
	}
	return &gateFile{file: f, g: g}, nil
}

func (g *gateFS) OpenAppend(name string) (file, error) {
	f, err := g.memFS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return &gateFile{file: f, g: g}, nil
}

type gateFile struct {
	file
	g *gateFS
}

func (f *gateFile) Sync() error {
	if f.g.gate != nil {
		f.g.once.Do(func() {
			close(f.g.waiting)
			<-f.g.gate
		})
	}
	return f.file.Sync()
}

// TestCloseCheckpoints closes a store with more than a MiB of log since its
// last checkpoint: Close checkpoints, so that the store reopens with no log
// to replay and the same data. With automatic compaction off, or with
// little log, Close leaves the log as it is.
func TestCloseCheckpoints(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		opts    Options
		commits int
		replay  bool // whether the reopened store replays log records
	}{
		{"BigLog", Options{NoSync: true, CompactMinBytes: 1 << 30}, 8000, false},
		{"SmallLog", Options{NoSync: true, CompactMinBytes: 1 << 30}, 100, true},
		{"CompactionOff", Options{NoSync: true, CompactRatio: -1}, 8000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, &tc.opts)
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range tc.commits / 8 {
						if err := s.Update(ctx, func(tx escrow.Tx) error { return benchTx(tx, w) }); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if big := s.Stats().LogBytes >= closeCheckpointBytes; big != (tc.commits > 1000) {
				t.Fatalf("%d commits wrote %d bytes of log; the test needs more or less", tc.commits, s.Stats().LogBytes)
			}
			want := dumpT(t, s)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s = openT(t, dir, &tc.opts)
			defer s.Close()
			if got := s.Stats().LogRecords; (got > 0) != tc.replay {
				t.Errorf("reopened with %d log records to replay; want replay %v", got, tc.replay)
			}
			if got := dumpT(t, s); !bytes.Equal(got, want) {
				t.Errorf("reopened store differs (-before close +after):\n%s", cmp.Diff(string(want), string(got)))
			}
		})
	}
}
