package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/escrowkit/escrow"
)

// lowerMaxPayload makes frames hold at most n bytes until the test ends,
// so that a record past the limit takes kilobytes, not a GiB. Tests that
// call it must not run in parallel: the limit is the package's.
func lowerMaxPayload(t *testing.T, n uint32) {
	was := maxPayload
	maxPayload = n
	t.Cleanup(func() { maxPayload = was })
}

// putIdem commits an idempotency record whose result is size bytes.
func putIdem(s escrow.Storage, key string, size int) error {
	return s.Update(context.Background(), func(tx escrow.Tx) error {
		return tx.PutIdempotency(escrow.IdempotencyRecord{Key: key, Request: "req",
			Result: bytes.Repeat([]byte{'x'}, size), At: workloadStart})
	})
}

// TestUpdateRefusesRecordPastLimit checks that a transaction whose log
// record recovery would refuse is refused before it is acknowledged, and
// leaves the store as it was: acknowledging it lost it on the next Open,
// which took the frame for a torn tail.
func TestUpdateRefusesRecordPastLimit(t *testing.T) {
	lowerMaxPayload(t, 4096)
	dir := t.TempDir()
	s := openT(t, dir, nil)
	defer func() { s.Close() }()
	if err := putIdem(s, "small", 100); err != nil {
		t.Fatal(err)
	}
	before := dumpT(t, s)

	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := tx.PutAccount(escrow.Account{ID: "alice", CreatedAt: workloadStart}); err != nil {
			return err
		}
		return tx.PutIdempotency(escrow.IdempotencyRecord{Key: "big", Request: "req",
			Result: bytes.Repeat([]byte{'x'}, 8192), At: workloadStart})
	})
	if !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Fatalf("Update of a record past the limit = %v, want an error wrapping ErrInvalidArgument", err)
	}
	if after := dumpT(t, s); !bytes.Equal(before, after) {
		t.Fatalf("the refused transaction changed the store:\nbefore: %s\nafter: %s", before, after)
	}

	// The store goes on.
	if err := putIdem(s, "next", 100); err != nil {
		t.Fatalf("a normal commit after the refusal: %v", err)
	}
	s = reopenSame(t, s, dir)
}

// TestUpdateTakesRecordAtLimit checks the limit's edge: a record of
// exactly maxPayload bytes is taken and survives reopening, one byte more
// is refused.
func TestUpdateTakesRecordAtLimit(t *testing.T) {
	// The size of a record holding one idempotency record of result n.
	var enc encoder
	enc.idempotency(&escrow.IdempotencyRecord{Key: "edge", Request: "req",
		Result: bytes.Repeat([]byte{'x'}, 3000), At: workloadStart})
	overhead := len(enc.b) - 3000
	lowerMaxPayload(t, 4096)
	dir := t.TempDir()
	s := openT(t, dir, nil)
	defer func() { s.Close() }()
	if err := putIdem(s, "edge", 4096-overhead+1); !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Fatalf("a record one byte past the limit: %v, want an error wrapping ErrInvalidArgument", err)
	}
	if err := putIdem(s, "edge", 4096-overhead); err != nil {
		t.Fatalf("a record at the limit: %v", err)
	}
	s = reopenSame(t, s, dir)
}

// TestSnapshotChunksFitLimit checks that a snapshot never writes a chunk
// that recovery would refuse, even when its records together pass the
// limit: one that did left a store that no longer opened, its log gone.
func TestSnapshotChunksFitLimit(t *testing.T) {
	lowerMaxPayload(t, 4096)
	dir := t.TempDir()
	s := openT(t, dir, &Options{CompactRatio: -1})
	defer func() { s.Close() }()
	for i := range 12 {
		// Each near the limit, so that no two fit in one chunk.
		if err := putIdem(s, fmt.Sprintf("k%02d", i), 3000); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	s = reopenSame(t, s, dir)
}

// TestSnapshotRefusesRecordPastLimit checks that a snapshot that would
// need a chunk past the limit for one record fails the compaction and
// loses nothing, rather than writing a snapshot that does not open.
func TestSnapshotRefusesRecordPastLimit(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, &Options{CompactRatio: -1})
	defer func() { s.Close() }()
	if err := putIdem(s, "big", 8192); err != nil {
		t.Fatal(err)
	}
	want := dumpT(t, s)
	// No Update could have committed such a record under the lower limit.
	was := maxPayload
	maxPayload = 4096
	err := s.Compact()
	maxPayload = was
	if err == nil || !strings.Contains(err.Error(), "more than the 4096") {
		t.Fatalf("Compact with a record past the limit = %v, want it to fail", err)
	}
	if s.Stats().CompactError == nil {
		t.Error("Stats().CompactError is nil after a failed compaction")
	}
	if got := dumpT(t, s); !bytes.Equal(got, want) {
		t.Fatalf("after the failed compaction:\ngot: %s\nwant: %s", got, want)
	}
	s = reopenSame(t, s, dir)
}

// reopenSame closes s and opens dir again, failing t unless the store
// reads as it did, with no torn tail; it returns the store reopened.
func reopenSame(t *testing.T, s *Store, dir string) *Store {
	t.Helper()
	want := dumpT(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, nil)
	wantTorn(t, s, TornTail{})
	if got := dumpT(t, s); !bytes.Equal(got, want) {
		t.Fatalf("after reopening:\ngot: %s\nwant: %s", got, want)
	}
	return s
}

// TestLargeRecordBuffersReleased commits one large transaction and then a
// small one: the buffers the large record was encoded and written from
// are not kept, so that memory goes back to what the live records need.
func TestLargeRecordBuffersReleased(t *testing.T) {
	s := openT(t, t.TempDir(), &Options{NoSync: true})
	defer s.Close()
	if err := putIdem(s, "large", 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := putIdem(s, "small", 10); err != nil {
		t.Fatal(err)
	}
	// A refused transaction's record is not kept either.
	if err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := tx.PutIdempotency(escrow.IdempotencyRecord{Key: "refused", Request: "req",
			Result: bytes.Repeat([]byte{'x'}, 8<<20), At: workloadStart}); err != nil {
			return err
		}
		return errors.New("changed my mind")
	}); err == nil {
		t.Fatal("the transaction's error was lost")
	}
	s.mu.Lock()
	ops, pending, spare := cap(s.ops.b), cap(s.pending), cap(s.spare)
	s.mu.Unlock()
	if limit := 1 << 20; ops > limit || pending > limit || spare > limit {
		t.Errorf("after a large record the store keeps buffers of %d, %d and %d bytes, want at most %d each",
			ops, pending, spare, limit)
	}
}
