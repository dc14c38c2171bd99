package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
)

const (
	rsWorkers  = 8
	rsAccounts = 6
	rsBefore   = 40 // completions before the crash
	rsAfter    = 40 // and after the server is back
)

// TestServerRestart crashes the database server (every server process
// ends at once, as pg_ctl stop -m immediate does) while eight workers run
// trades over six accounts, and starts it again, which recovers from the
// WAL. It runs on a cluster of its own, so that the tests beside it keep
// theirs. Calls that meet the dead server must fail with an error; the
// workers then read the escrow and take whatever step it still lacks.
// Afterwards the ledger's invariants hold (nothing was half-applied),
// every acknowledged completion is there, and every completed escrow was
// either acknowledged or completed by a Confirm that failed with an error
// (a commit whose reply the crash cut off: applied whole, not half).
func TestServerRestart(t *testing.T) {
	t.Parallel()
	if _, err := pgBin(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("restarting a server needs a cluster of the test's own: %v\n%s", err, howToRun)
		}
		t.Fatal(err)
	}
	srv, err := startServer("synchronous_commit=on")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := pgstore.Open(ctx, srv.dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(start)})
	if err != nil {
		t.Fatal(err)
	}
	openAccounts(ctx, t, l, rsAccounts, 10_000_000)

	var (
		mu        sync.Mutex
		acked     = map[string]bool{} // Confirm returned nil
		uncertain = map[string]bool{} // Confirm returned an error
		failed    atomic.Int64        // calls that returned an error
		done      atomic.Int64        // trades completed
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for w := range rsWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-t%d", w, n)
				buyer, seller := fmt.Sprintf("acct%d", (w+n)%rsAccounts), fmt.Sprintf("acct%d", (w+n+1)%rsAccounts)
				for attempt := 0; ; attempt++ {
					if attempt == 400 || ctx.Err() != nil {
						t.Errorf("%s: not completed after %d attempts", id, attempt)
						return
					}
					step, err := nextStep(ctx, l, id, buyer, seller)
					if err == nil && step == nil {
						break // completed
					}
					if err == nil {
						err = step.call()
						if step.confirm {
							mu.Lock()
							if err == nil {
								acked[id] = true
							} else {
								uncertain[id] = true
							}
							mu.Unlock()
						}
					}
					if err != nil {
						failed.Add(1)
						time.Sleep(20 * time.Millisecond)
					}
				}
				done.Add(1)
			}
		}()
	}
	waitFor := func(n int64) {
		for done.Load() < n && !t.Failed() && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(rsBefore)
	if err := srv.kill(); err != nil {
		t.Error(err)
	}
	atCrash := done.Load()
	time.Sleep(200 * time.Millisecond) // calls meet the dead server
	if err := srv.start(); err != nil {
		t.Error(err)
	}
	waitFor(atCrash + rsAfter)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d trades completed, %d before the crash; %d calls failed while the server was down", done.Load(), atCrash, failed.Load())
	if failed.Load() == 0 {
		t.Error("no call failed: the crash did not meet the workload")
	}

	if err := l.Check(ctx); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	completed := map[string]bool{}
	err = s.View(ctx, func(tx escrow.Tx) error {
		return tx.Escrows(func(e escrow.Escrow) error {
			if e.State == escrow.Completed {
				completed[e.ID] = true
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(completed)) != done.Load() {
		t.Errorf("%d escrows completed, the workers completed %d", len(completed), done.Load())
	}
	for id := range acked {
		if !completed[id] {
			t.Errorf("escrow %s: Confirm was acknowledged, but the escrow is not completed", id)
		}
	}
	for id := range completed {
		if !acked[id] && !uncertain[id] {
			t.Errorf("escrow %s is completed, but no Confirm of it returned", id)
		}
	}
}

// step is one call that takes a trade forward.
type step struct {
	call    func() error
	confirm bool
}

// nextStep reads escrow id and returns the call that takes it a step
// on, or nil if it is completed.
func nextStep(ctx context.Context, l *escrow.Ledger, id, buyer, seller string) (*step, error) {
	e, err := l.Escrow(ctx, id)
	if errors.Is(err, escrow.ErrNotFound) {
		return &step{call: func() error {
			_, err := l.Open(ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Price: fen(100)})
			return err
		}}, nil
	}
	if err != nil {
		return nil, err
	}
	switch e.State {
	case escrow.AwaitingPayment:
		return &step{call: func() error { _, err := l.Pay(ctx, id, buyer); return err }}, nil
	case escrow.AwaitingShipment:
		return &step{call: func() error { _, err := l.Ship(ctx, id, seller, "T"+id); return err }}, nil
	case escrow.AwaitingConfirmation:
		return &step{call: func() error { _, err := l.Confirm(ctx, id, buyer); return err }, confirm: true}, nil
	case escrow.Completed:
		return nil, nil
	}
	return nil, fmt.Errorf("escrow %s is %s, which this workload never leads to", id, e.State)
}
