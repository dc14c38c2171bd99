package filestore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/escrowkit/escrow"
)

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

func sameDir(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	after := dirImage(t, dir)
	names := slices.Sorted(maps.Keys(before))
	for name := range after {
		if _, ok := before[name]; !ok {
			names = append(names, name)
		}
	}
	for _, name := range names {
		if before[name] != after[name] {
			t.Errorf("%s changed: %.60q became %.60q", name, before[name], after[name])
		}
	}
}

// TestReadOnly opens a store whose log has a torn tail and which holds a
// compaction's leftovers: the read-only store reads what a writer would
// recover, reports the tail, refuses to write, shares the directory with
// other readers but not with a writer, and changes no byte.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir, &Options{CompactRatio: -1})
	runWorkload(t, s, 30)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: "kept"}) }); err != nil {
		t.Fatal(err)
	}
	want := dumpT(t, s)
	seq := s.Stats().Seq
	s.Close()
	seg := filepath.Join(dir, segName(seq))
	end := int64(len(dirFile(t, seg)))
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := appendFrame(nil, seq+1, 0, []byte("a record cut short"))[:30]
	f.Write(torn)
	f.Close()
	os.WriteFile(filepath.Join(dir, snapName(seq)+tmpSuffix), []byte("leftover"), 0o600)
	before := dirImage(t, dir)

	r := openT(t, dir, &Options{ReadOnly: true})
	if got := dumpT(t, r); !bytes.Equal(got, want) {
		t.Errorf("read-only store differs from what was committed: %s", cmp.Diff(string(want), string(got)))
	}
	wantTorn(t, r, TornTail{File: seg, Offset: end, Bytes: 30, FirstSeq: seq + 1, LastSeq: seq + 1})
	if st := r.Stats(); st.Seq != seq {
		t.Errorf("Stats().Seq = %d, want %d", st.Seq, seq)
	}
	err = r.Update(ctx, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: "refused"}) })
	if !errors.Is(err, escrow.ErrReadOnly) {
		t.Errorf("a write on a read-only store = %v, want ErrReadOnly", err)
	}
	if _, err := escrow.New(ctx, r, nil); err != nil { // its Update only reads
		t.Errorf("escrow.New on a read-only store: %v", err)
	}
	if got := dumpT(t, r); !bytes.Equal(got, want) {
		t.Errorf("read-only store changed after a refused write")
	}
	if err := r.Compact(); !errors.Is(err, escrow.ErrReadOnly) {
		t.Errorf("Compact on a read-only store = %v, want ErrReadOnly", err)
	}

	r2 := openT(t, dir, &Options{ReadOnly: true}) // readers share
	var le *LockedError
	if _, err := Open(dir, nil); !errors.As(err, &le) || le.PID != 0 {
		// LOCK names the last writer, which is not the holder.
		t.Errorf("Open for writing under readers = %v, want a LockedError with no PID", err)
	}
	r2.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	sameDir(t, dir, before)

	w := openT(t, dir, nil) // the writer drops the tail
	defer w.Close()
	if _, err := Open(dir, &Options{ReadOnly: true}); !errors.As(err, &le) || le.PID != holderPID() {
		t.Errorf("read-only Open under a writer = %v, want a LockedError naming process %d", err, holderPID())
	}
}

// holderPID is the PID a LockedError names when this process holds the
// store: none on Windows, where LOCK cannot be read while it is locked.
func holderPID() int {
	if runtime.GOOS == "windows" {
		return 0
	}
	return os.Getpid()
}

func dirFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestReadOnlyNotStore: a read-only Open makes no store where there is
// none.
func TestReadOnlyNotStore(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a store"), 0o600)
	before := dirImage(t, dir)
	if _, err := Open(dir, &Options{ReadOnly: true}); !errors.Is(err, ErrNotStore) {
		t.Errorf("read-only Open of a directory without a store = %v, want ErrNotStore", err)
	}
	sameDir(t, dir, before)

	// A path that names a file holds no store either, and the file is
	// left as it was.
	file := filepath.Join(dir, "notes.txt")
	if _, err := Open(file, &Options{ReadOnly: true}); !errors.Is(err, ErrNotStore) {
		t.Errorf("read-only Open of a file = %v, want ErrNotStore", err)
	}
	sameDir(t, dir, before)

	missing := filepath.Join(dir, "missing")
	if _, err := Open(missing, &Options{ReadOnly: true}); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrNotStore) {
		t.Errorf("read-only Open of a missing directory = %v, want ErrNotExist and ErrNotStore", err)
	}
	sameDir(t, dir, before)
}
