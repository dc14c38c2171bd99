package pgstore_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/escrowkit/escrow"
)

// The multi-process test runs its workers in child processes: this test
// binary, run again with the worker's test selected and its orders in the
// environment.
const (
	envWorkerSchema = "PGSTORE_WORKER_SCHEMA"
	envWorkerID     = "PGSTORE_WORKER_ID"
)

const (
	mpProcesses = 2
	mpWorkers   = 10 // per process
	mpTrades    = 6  // per worker
	mpAccounts  = 10
)

// TestMultiProcess runs a trade workload from two OS processes, ten
// workers each, over ten accounts that every worker buys from and sells
// to, against one database. Each process prints the trades it saw
// confirmed. Afterwards the ledger's invariants hold, and the completed
// escrows are exactly the acknowledged completions: none lost, none
// completed that no worker was told of.
func TestMultiProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := newSchema(t)
	s := open(t, schema)
	defer s.Close()
	l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(start)})
	if err != nil {
		t.Fatal(err)
	}
	openAccounts(ctx, t, l, mpAccounts, 1_000_000)

	acked := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p := range mpProcesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcessWorker$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "PGSTORE_DSN="+dsn, envWorkerSchema+"="+schema, envWorkerID+"="+strconv.Itoa(p))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("process %d: %v\n%s\n%s", p, err, out, stderr.Bytes())
				return
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			mu.Lock()
			defer mu.Unlock()
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "completed "); ok {
					acked[id] = true
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if err := l.Check(ctx); err != nil {
		t.Fatal(err)
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
	if want := mpProcesses * mpWorkers * mpTrades; len(acked) != want {
		t.Errorf("%d completions acknowledged, want %d", len(acked), want)
	}
	for id := range acked {
		if !completed[id] {
			t.Errorf("escrow %s was acknowledged completed but is not", id)
		}
	}
	for id := range completed {
		if !acked[id] {
			t.Errorf("escrow %s is completed but no worker was told", id)
		}
	}
}

// TestMultiProcessWorker is one process of TestMultiProcess; run on its
// own it does nothing.
func TestMultiProcessWorker(t *testing.T) {
	schema, proc := os.Getenv(envWorkerSchema), os.Getenv(envWorkerID)
	if schema == "" {
		t.Skip("a child process of TestMultiProcess")
	}
	ctx := context.Background()
	s := open(t, schema)
	defer s.Close()
	l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(start)})
	if err != nil {
		t.Fatal(err)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range mpWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range mpTrades {
				n := w*mpTrades + i
				buyer, seller := fmt.Sprintf("acct%d", n%mpAccounts), fmt.Sprintf("acct%d", (n+1+w)%mpAccounts)
				if buyer == seller {
					seller = fmt.Sprintf("acct%d", (n+1)%mpAccounts)
				}
				id := fmt.Sprintf("p%s-w%d-t%d", proc, w, i)
				steps := []func() error{
					func() error {
						_, err := l.Open(ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Price: fen(int64(100 + n))})
						return err
					},
					func() error { _, err := l.Pay(ctx, id, buyer); return err },
					func() error { _, err := l.Ship(ctx, id, seller, "T"+id); return err },
					func() error { _, err := l.Confirm(ctx, id, buyer); return err },
				}
				for _, step := range steps {
					// A conflict the store gave up on committed nothing, so
					// the step is taken again.
					err := step()
					for errors.Is(err, escrow.ErrConflict) {
						err = step()
					}
					if err != nil {
						t.Errorf("%s: %v", id, err)
						return
					}
				}
				out.Lock()
				fmt.Printf("completed %s\n", id)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}
