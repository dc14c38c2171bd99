package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
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
	// The pool counts the round trips and the connections that the
	// crash cuts off or refuses, so that the test can tell that the crash
	// met the workload even when no call failed: Updates that committed
	// just before it wait, for up to two seconds, for their rows to be
	// numbered, and a restart within that time ends their wait with
	// success.
	cfg, err := pgxpool.ParseConfig(srv.dsn)
	if err != nil {
		t.Fatal(err)
	}
	lost := crashTracer{new(atomic.Int64)}
	cfg.ConnConfig.Tracer = lost
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := pgstore.New(ctx, pool, nil)
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
	t.Logf("%d trades completed, %d before the crash; %d calls failed, %d round trips and connections were lost to the crash",
		done.Load(), atCrash, failed.Load(), lost.n.Load())
	if failed.Load() == 0 && lost.n.Load() == 0 {
		t.Error("no call failed and no round trip or connection was lost: the crash did not meet the workload")
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

// crashTracer counts the round trips and the connections lost to a
// server's crash: those that failed other than with an error the server
// sent, or with one that says the connection is going (classes 08 and
// 57), and every connection that could not be made. A serialization
// failure is not counted, nor a query that found no row.
type crashTracer struct{ n *atomic.Int64 }

func (c crashTracer) count(err error) {
	var pe *pgconn.PgError
	if err == nil || errors.Is(err, pgx.ErrNoRows) {
		return
	}
	if !errors.As(err, &pe) || strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57") {
		c.n.Add(1)
	}
}

func (c crashTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (c crashTracer) TraceQueryEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	c.count(data.Err)
}

func (c crashTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c crashTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (c crashTracer) TraceBatchEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	c.count(data.Err)
}

func (c crashTracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return ctx
}

func (c crashTracer) TraceConnectEnd(_ context.Context, data pgx.TraceConnectEndData) {
	if data.Err != nil {
		c.n.Add(1)
	}
}
