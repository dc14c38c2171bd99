package escrow_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/google/go-cmp/cmp"
)

// claimStore is a memstore whose transactions are EscrowClaimers, as a
// store shared by several processes is: the escrows in held are claimed by
// some other transaction, so a claim of one fails; a claim of one in
// broken fails with errBroken.
type claimStore struct {
	*memstore.Store
	mu      sync.Mutex
	held    map[string]bool
	broken  map[string]bool
	claimed []string // every claim asked for, in order
}

var errBroken = errors.New("escrow: test: the claim failed")

func (s *claimStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	return s.Store.Update(ctx, func(tx escrow.Tx) error { return fn(claimTx{tx, s}) })
}

type claimTx struct {
	escrow.Tx
	s *claimStore
}

func (t claimTx) ClaimEscrow(id string) (bool, error) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.claimed = append(t.s.claimed, id)
	if t.s.broken[id] {
		return false, fmt.Errorf("%w: %q", errBroken, id)
	}
	return !t.s.held[id], nil
}

// TestProcessDueSkipsClaimed runs ProcessDue over escrows past their
// confirmation deadline, some of them claimed by another transaction:
// those are neither fired nor counted nor reported, to the caller or to
// the observer, and they stay due; once the claims are let go, the next
// ProcessDue fires them. A claim that fails is a skipped escrow like any
// other. With an observer, the ledger's own wrapper of the transaction
// must pass the claims on.
func TestProcessDueSkipsClaimed(t *testing.T) {
	for _, observed := range []bool{false, true} {
		t.Run(fmt.Sprintf("observed=%v", observed), func(t *testing.T) {
			store := &claimStore{Store: memstore.New(), held: map[string]bool{}, broken: map[string]bool{}}
			t.Cleanup(func() { store.Close() })
			rec := &recorder{}
			var opts escrow.Options
			if observed {
				opts.Observer = rec
			}
			w := newWorld(t, store, opts)
			var ids []string
			for range 6 {
				ids = append(ids, w.shipped("alice", "bob"))
			}
			w.clock.Advance(30 * 24 * time.Hour) // past every confirmation deadline
			store.held[ids[1]], store.held[ids[4]] = true, true
			store.broken[ids[2]] = true
			store.claimed = nil
			rec.reset()
			before := map[string]escrow.Escrow{}
			for _, id := range ids {
				before[id] = escrowNow(w, id)
			}

			fired, err := w.l.ProcessDue(w.ctx)
			if fired != 3 {
				t.Errorf("ProcessDue fired %d, want 3", fired)
			}
			var due *escrow.DueError
			if !errors.As(err, &due) || len(due.Escrows) != 1 || !errors.Is(due.Escrows[ids[2]], errBroken) {
				t.Fatalf("ProcessDue error %v, want a DueError for %s alone", err, ids[2])
			}
			if diff := cmp.Diff(ids, store.claimed); diff != "" {
				t.Errorf("claims asked for (-want +got):\n%s", diff)
			}
			for _, id := range []string{ids[0], ids[3], ids[5]} {
				if e := escrowNow(w, id); e.State != escrow.Completed {
					t.Errorf("%s is %v, want Completed", id, e.State)
				}
			}
			if observed {
				var told []string
				for _, ti := range rec.timers {
					told = append(told, ti.Escrow)
				}
				if want := []string{ids[0], ids[2], ids[3], ids[5]}; !cmp.Equal(want, told) {
					t.Errorf("the observer was told of %v, want %v", told, want)
				}
			}
			for _, id := range []string{ids[1], ids[2], ids[4]} {
				if diff := cmp.Diff(before[id], escrowNow(w, id)); diff != "" {
					t.Errorf("%s changed (-before +after):\n%s", id, diff)
				}
			}

			// The claims let go, the next run fires the rest.
			store.held, store.broken = map[string]bool{}, map[string]bool{}
			if fired := w.processDue(); fired != 3 {
				t.Errorf("ProcessDue after the claims ended fired %d, want 3", fired)
			}
			for _, id := range ids {
				if e := escrowNow(w, id); e.State != escrow.Completed {
					t.Errorf("%s is %v, want Completed", id, e.State)
				}
			}
			w.check()
		})
	}
}
