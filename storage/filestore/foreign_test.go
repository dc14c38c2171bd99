package filestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/escrowkit/escrow"
)

// TestOpenForeignDirectory: a writer's Open of a directory that holds
// files but no store makes none among them. It fails with ErrNotStore and
// leaves every file as it was, a file named LOCK among them, and creates
// none; a directory left with only the LOCK of an Open that failed, or
// one holding a store beside files of other names, opens.
func TestOpenForeignDirectory(t *testing.T) {
	for _, files := range []map[string]string{
		{"notes.txt": "the host's own notes"},
		{"LOCK": "another program's lock", "data.db": "its data"},
		{"LOCK": "held by nothing we wrote"},
		{"MANIFEST.json": "{}", "LOCK": ""},
	} {
		dir := t.TempDir()
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		before := dirImage(t, dir)
		s, err := Open(dir, nil)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, ErrNotStore) {
			t.Errorf("Open of a directory holding %v = %v, want ErrNotStore", before, err)
		}
		sameDir(t, dir, before)
	}

	// What a first Open that failed after taking the lock leaves.
	for _, lock := range []string{"", strconv.Itoa(os.Getpid()) + "\n"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, lockName), []byte(lock), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, nil)
		if err != nil {
			t.Fatalf("Open of a directory holding only LOCK %q: %v", lock, err)
		}
		runWorkload(t, s, 2)
		s.Close()
	}

	// A store beside a file of the host's opens, and the file stays.
	dir := t.TempDir()
	s := openT(t, dir, nil)
	runWorkload(t, s, 2)
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("the market's books"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, nil)
	if err := s.Update(context.Background(), func(tx escrow.Tx) error {
		return tx.PutAccount(escrow.Account{ID: "after"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if data, err := os.ReadFile(filepath.Join(dir, "README")); err != nil || string(data) != "the market's books" {
		t.Errorf("README after a store beside it opened and compacted = %q, %v", data, err)
	}
}
