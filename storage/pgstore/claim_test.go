package pgstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
)

// These tests are of ClaimEscrow and of ProcessDue run from several
// stores, goroutines or processes, at once: the runs split the due
// escrows, each fired once.

// confirmWithin is the confirmation deadline of the escrows of
// shippedEscrows; dueAt is a time past it.
const confirmWithin = time.Hour

var dueAt = start.Add(2 * confirmWithin)

// shippedEscrows opens n escrows of 100+i fen from buyer to seller on l,
// e-000 onwards, each paid and shipped, so that each waits for the
// buyer's confirmation until confirmWithin after start; it returns their
// IDs.
func shippedEscrows(ctx context.Context, t testing.TB, l *escrow.Ledger, n int) []string {
	t.Helper()
	for _, id := range []string{"buyer", "seller"} {
		if _, err := l.OpenAccount(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Deposit(ctx, "buyer", fen(int64(n*(n+200)))); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		id := fmt.Sprintf("e-%03d", i)
		terms := escrow.Terms{ID: id, Buyer: "buyer", Seller: "seller", Price: fen(int64(100 + i)),
			Timers: escrow.Timers{ConfirmWithin: confirmWithin}}
		if _, err := l.Open(ctx, terms); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Pay(ctx, id, "buyer"); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Ship(ctx, id, "seller", "SF"+id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// checkFiredOnce fails t unless every one of ids was released to the
// seller by its timer exactly once, and nothing else: each is Completed,
// with one EscrowReleased event; the buyer holds nothing, the seller has
// every price; and the ledger's invariants hold.
func checkFiredOnce(ctx context.Context, t *testing.T, l *escrow.Ledger, ids []string) {
	t.Helper()
	released := map[string]int{}
	var after uint64
	// Events are numbered, and read, once published: an older
	// transaction that ran meanwhile can hold that up for a second or two.
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := l.Events(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			if len(released) >= len(ids) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for _, ev := range evs {
			if ev.Type == escrow.EscrowReleased {
				released[ev.Escrow]++
				if !ev.ByTimer {
					t.Errorf("escrow %s was released, not by its timer", ev.Escrow)
				}
			}
		}
		after = evs[len(evs)-1].Seq
	}
	var prices int64
	for i, id := range ids {
		prices += int64(100 + i)
		if released[id] != 1 {
			t.Errorf("escrow %s released %d times, want once", id, released[id])
		}
		e, err := l.Escrow(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.State != escrow.Completed {
			t.Errorf("escrow %s is %v, want Completed", id, e.State)
		}
	}
	if len(released) != len(ids) {
		t.Errorf("%d escrows released, want %d", len(released), len(ids))
	}
	b, err := l.Balance(ctx, "buyer", escrow.CNY)
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Balance(ctx, "seller", escrow.CNY)
	if err != nil {
		t.Fatal(err)
	}
	if b.Held.Units() != 0 || s.Available.Units() != prices || s.Held.Units() != 0 {
		t.Errorf("buyer holds %v, seller has %v and holds %v; want nothing held and %d fen to the seller",
			b.Held, s.Available, s.Held, prices)
	}
	if err := l.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestClaimEscrow: a claim holds until its transaction ends; another
// transaction's claim of the escrow fails meanwhile without waiting and
// without aborting it; the holder's own claim succeeds again; a claim of
// no escrow is ErrNotFound and one in a View is ErrReadOnly, and neither
// aborts its transaction.
//
// It does not run in parallel with the other tests: its claim is an open
// write transaction, the oldest of the cluster while it lasts, which holds
// back the numbering of every schema's events (see publish.go).
func TestClaimEscrow(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s0, s1 := open(t, schema), open(t, schema)
	defer s0.Close()
	defer s1.Close()
	l, err := escrow.New(ctx, s0, &escrow.Options{Clock: escrow.NewManualClock(start)})
	if err != nil {
		t.Fatal(err)
	}
	shippedEscrows(ctx, t, l, 2)
	claim := func(tx escrow.Tx, id string) (bool, error) {
		c, ok := tx.(escrow.EscrowClaimer)
		if !ok {
			t.Fatalf("a pgstore transaction (%T) is not an EscrowClaimer", tx)
		}
		return c.ClaimEscrow(id)
	}

	release, errRelease := make(chan struct{}), errors.New("let go")
	done := holdOpen(t, s0, func(tx escrow.Tx) error {
		for i := range 2 {
			if ok, err := claim(tx, "e-000"); !ok || err != nil {
				return fmt.Errorf("claim %d: %v, %v; want true, nil", i, ok, err)
			}
		}
		return nil
	}, release, errRelease)
	for _, s := range []*pgstore.Store{s0, s1} {
		err := s.Update(ctx, func(tx escrow.Tx) error {
			began := time.Now()
			if ok, err := claim(tx, "e-000"); ok || err != nil {
				t.Errorf("claim of a held escrow = %v, %v; want false, nil", ok, err)
			}
			if d := time.Since(began); d > 5*time.Second {
				t.Errorf("claim of a held escrow took %v", d)
			}
			if ok, err := claim(tx, "nobody"); ok || !errors.Is(err, escrow.ErrNotFound) {
				t.Errorf("claim of no escrow = %v, %v; want false, ErrNotFound", ok, err)
			}
			if ok, err := claim(tx, "e-001"); !ok || err != nil {
				t.Errorf("claim of a free escrow = %v, %v; want true, nil", ok, err)
			}
			// The transaction goes on: nothing above aborted it.
			_, err := tx.Escrow("e-000")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = s1.View(ctx, func(tx escrow.Tx) error {
		if ok, err := claim(tx, "e-001"); ok || !errors.Is(err, escrow.ErrReadOnly) {
			t.Errorf("claim in a View = %v, %v; want false, ErrReadOnly", ok, err)
		}
		_, err := tx.Escrow("e-001")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; !errors.Is(err, errRelease) {
		t.Fatalf("the holding transaction: %v", err)
	}
	err = s1.Update(ctx, func(tx escrow.Tx) error {
		if ok, err := claim(tx, "e-000"); !ok || err != nil {
			t.Errorf("claim after the holder rolled back = %v, %v; want true, nil", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestProcessDueLeavesClaimed holds the claim of one due escrow in an open
// transaction while ProcessDue runs on another store: it fires the others
// and leaves that one, neither counted nor reported. Once the holder rolls
// back, the next ProcessDue fires it.
//
// It does not run in parallel with the other tests: its claim is an open
// write transaction, the oldest of the cluster while it lasts, which holds
// back the numbering of every schema's events (see publish.go).
func TestProcessDueLeavesClaimed(t *testing.T) {
	ctx := context.Background()
	ls, clocks := ledgers(t, 2)
	ids := shippedEscrows(ctx, t, ls[0], 10)
	for _, c := range clocks {
		c.Set(dueAt)
	}
	release, errRelease := make(chan struct{}), errors.New("let go")
	done := holdOpen(t, ls[0].Storage(), func(tx escrow.Tx) error {
		if ok, err := tx.(escrow.EscrowClaimer).ClaimEscrow(ids[3]); !ok || err != nil {
			return fmt.Errorf("claim: %v, %v; want true, nil", ok, err)
		}
		return nil
	}, release, errRelease)
	fired, err := ls[1].ProcessDue(ctx)
	if fired != len(ids)-1 || err != nil {
		t.Errorf("ProcessDue with %s claimed = %d, %v; want %d, nil", ids[3], fired, err, len(ids)-1)
	}
	if e, err := ls[1].Escrow(ctx, ids[3]); err != nil || e.State != escrow.AwaitingConfirmation {
		t.Errorf("the claimed escrow: %v, %v; want it still AwaitingConfirmation", e.State, err)
	}
	close(release)
	if err := <-done; !errors.Is(err, errRelease) {
		t.Fatalf("the holding transaction: %v", err)
	}
	if fired, err := ls[1].ProcessDue(ctx); fired != 1 || err != nil {
		t.Errorf("ProcessDue after the holder rolled back = %d, %v; want 1, nil", fired, err)
	}
	checkFiredOnce(ctx, t, ls[0], ids)
}

// countingStore counts the work of the Updates run on it: the calls,
// their attempts (each run of the transaction's function, retries
// included), the claims that failed, and the attempts that wrote
// something but did not commit, whose work was wasted. Unless claims is
// set it hides ClaimEscrow, to do what ProcessDue did before stores had
// it.
type countingStore struct {
	escrow.Storage
	claims bool

	mu   sync.Mutex
	work dueWork
}

// dueWork is what ProcessDue did in one process and what it cost.
type dueWork struct {
	fired    int // what ProcessDue returned, over its runs
	runs     int // see processAll
	updates  int
	attempts int
	skipped  int // claims that failed
	wasted   int // attempts that wrote and were rolled back
	ms       int // how long ProcessDue took, in milliseconds
}

func (w dueWork) String() string {
	return fmt.Sprintf("fired %d runs %d updates %d attempts %d skipped %d wasted %d ms %d",
		w.fired, w.runs, w.updates, w.attempts, w.skipped, w.wasted, w.ms)
}

func (s *countingStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	var wrote bool
	err := s.Storage.Update(ctx, func(tx escrow.Tx) error {
		s.mu.Lock()
		s.work.attempts++
		if wrote {
			s.work.wasted++ // the attempt before this one
		}
		s.mu.Unlock()
		wrote = false
		counted := &countingTx{Tx: tx, s: s, wrote: &wrote}
		if c, ok := tx.(escrow.EscrowClaimer); ok && s.claims {
			return fn(claimingTx{counted, c})
		}
		return fn(counted)
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.work.updates++
	if wrote && err != nil {
		s.work.wasted++
	}
	return err
}

// reset forgets the work counted so far.
func (s *countingStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.work = dueWork{}
}

// counted returns the work counted so far.
func (s *countingStore) counted() dueWork {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.work
}

// countingTx notes whether its attempt wrote, by the writes a timer
// makes.
type countingTx struct {
	escrow.Tx
	s     *countingStore
	wrote *bool
}

func (t *countingTx) PutEscrow(e escrow.Escrow) error {
	*t.wrote = true
	return t.Tx.PutEscrow(e)
}

func (t *countingTx) PutBalance(b escrow.Balance) error {
	*t.wrote = true
	return t.Tx.PutBalance(b)
}

func (t *countingTx) AppendEntry(e *escrow.Entry) error {
	*t.wrote = true
	return t.Tx.AppendEntry(e)
}

func (t *countingTx) AppendEvent(ev *escrow.Event) error {
	*t.wrote = true
	return t.Tx.AppendEvent(ev)
}

type claimingTx struct {
	*countingTx
	c escrow.EscrowClaimer
}

func (t claimingTx) ClaimEscrow(id string) (bool, error) {
	ok, err := t.c.ClaimEscrow(id)
	if !ok && err == nil {
		t.s.mu.Lock()
		t.s.work.skipped++
		t.s.mu.Unlock()
	}
	return ok, err
}

// TestProcessDueSplitsAcrossStores runs ProcessDue from two stores at
// once, each with its own pool, over the same due escrows: each fires
// once and the two counts add up to the number of escrows, none counted
// by both. What the runs cost, in attempts, failed claims and attempts
// wasted, is logged (see claimModes for a baseline without claims).
func TestProcessDueSplitsAcrossStores(t *testing.T) {
	t.Parallel()
	for _, claims := range claimModes() {
		t.Run(fmt.Sprintf("claims=%v", claims), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			schema := newSchema(t)
			const n = 100
			var ids []string
			var ls []*escrow.Ledger
			var stores []*countingStore
			for i := range 2 {
				s := open(t, schema)
				t.Cleanup(func() { s.Close() })
				cs := &countingStore{Storage: s, claims: claims}
				clock := escrow.NewManualClock(start)
				l, err := escrow.New(ctx, cs, &escrow.Options{Clock: clock})
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					ids = shippedEscrows(ctx, t, l, n)
				}
				clock.Set(dueAt)
				ls, stores = append(ls, l), append(stores, cs)
			}
			for _, s := range stores {
				s.reset()
			}
			work := make([]dueWork, 2)
			errs := race(2, func(i int) error {
				var err error
				work[i].fired, work[i].runs, err = processAll(ctx, ls[i])
				return err
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("ProcessDue %d: %v", i, err)
				}
				fired, runs := work[i].fired, work[i].runs
				work[i] = stores[i].counted()
				work[i].fired, work[i].runs = fired, runs
			}
			t.Logf("claims=%v: %v; %v", claims, work[0], work[1])
			if work[0].fired+work[1].fired != n {
				t.Errorf("the runs fired %d and %d, want %d in all", work[0].fired, work[1].fired, n)
			}
			checkFiredOnce(ctx, t, ls[0], ids)
		})
	}
}

// processAll runs ProcessDue as RunTimers would, again while it reports
// only escrows skipped because the store gave up on a conflict (those
// stay due, for the next run), up to five runs. It returns what the runs
// fired in all, and how many ran.
func processAll(ctx context.Context, l *escrow.Ledger) (fired, runs int, err error) {
	for runs < 5 {
		var n int
		n, err = l.ProcessDue(ctx)
		fired, runs = fired+n, runs+1
		var due *escrow.DueError
		if !errors.As(err, &due) || due.Stopped != nil || len(due.Aggregates) > 0 {
			return fired, runs, err
		}
		for _, e := range due.Escrows {
			if !errors.Is(e, escrow.ErrConflict) {
				return fired, runs, err
			}
		}
	}
	return fired, runs, err
}

// claimModes are the modes the ProcessDue tests run in: with claims, and
// also without them, as a baseline to compare their cost with, when
// PGSTORE_CLAIMS_BASELINE is set:
//
//	PGSTORE_CLAIMS_BASELINE=1 go test -run 'TestProcessDue(Splits|Processes)' -v -count=5
func claimModes() []bool {
	if os.Getenv("PGSTORE_CLAIMS_BASELINE") != "" {
		return []bool{true, false}
	}
	return []bool{true}
}

// The processes of TestProcessDueProcesses are this test binary run again
// with TestProcessDueWorker selected and these in the environment.
const (
	envDueSchema = "PGSTORE_DUE_SCHEMA"
	envDueClaims = "PGSTORE_DUE_CLAIMS"
)

const (
	dueProcesses = 3
	dueEscrows   = 200
)

// TestProcessDueProcesses runs ProcessDue from several OS processes at
// once, started together, over the same due escrows: each fires once,
// with the balances and invariants right, and the counts the processes
// return add up to the number of escrows, so none is counted twice. The
// log gives what each process's run cost in attempts, failed claims and
// attempts wasted (see claimModes for a baseline without claims).
func TestProcessDueProcesses(t *testing.T) {
	t.Parallel()
	for _, claims := range claimModes() {
		t.Run(fmt.Sprintf("claims=%v", claims), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			schema := newSchema(t)
			s := open(t, schema)
			defer s.Close()
			l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(start)})
			if err != nil {
				t.Fatal(err)
			}
			ids := shippedEscrows(ctx, t, l, dueEscrows)

			type proc struct {
				cmd   *exec.Cmd
				in    io.WriteCloser
				out   *bufio.Scanner
				lines []string
				work  dueWork
			}
			procs := make([]*proc, dueProcesses)
			for i := range procs {
				cmd := exec.Command(os.Args[0], "-test.run=^TestProcessDueWorker$", "-test.count=1", "-test.v")
				cmd.Env = append(os.Environ(), "PGSTORE_DSN="+dsn, envDueSchema+"="+schema,
					envDueClaims+"="+strconv.FormatBool(claims))
				cmd.Stderr = os.Stderr
				in, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				p := &proc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
				procs[i] = p
				defer func() {
					in.Close()
					cmd.Process.Kill()
					cmd.Wait()
				}()
			}
			// Each process says when it is ready; then all are told to go.
			for i, p := range procs {
				ready := false
				for !ready && p.out.Scan() {
					p.lines = append(p.lines, p.out.Text())
					ready = p.out.Text() == "ready"
				}
				if !ready {
					t.Fatalf("process %d ended before it was ready:\n%s", i, strings.Join(p.lines, "\n"))
				}
			}
			for _, p := range procs {
				if _, err := io.WriteString(p.in, "go\n"); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for i, p := range procs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got := false
					for p.out.Scan() {
						line := p.out.Text()
						p.lines = append(p.lines, line)
						w := &p.work
						if _, err := fmt.Sscanf(line, "fired %d runs %d updates %d attempts %d skipped %d wasted %d ms %d",
							&w.fired, &w.runs, &w.updates, &w.attempts, &w.skipped, &w.wasted, &w.ms); err == nil {
							got = true
						}
					}
					if err := p.cmd.Wait(); err != nil || !got {
						t.Errorf("process %d: %v\n%s", i, err, strings.Join(p.lines, "\n"))
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			sum, works := 0, make([]string, len(procs))
			for i, p := range procs {
				sum += p.work.fired
				works[i] = p.work.String()
			}
			t.Logf("claims=%v: %s", claims, strings.Join(works, "; "))
			if sum != dueEscrows {
				t.Errorf("the processes fired %s: %d in all, want %d", strings.Join(works, ", "), sum, dueEscrows)
			}
			checkFiredOnce(ctx, t, l, ids)
		})
	}
}

// TestProcessDueWorker is one process of TestProcessDueProcesses: it
// opens its store and ledger, prints "ready", waits for a line on its
// standard input, runs ProcessDue and prints what it did. Run on its own
// it does nothing.
func TestProcessDueWorker(t *testing.T) {
	schema := os.Getenv(envDueSchema)
	if schema == "" {
		t.Skip("a child process of TestProcessDueProcesses")
	}
	ctx := context.Background()
	s := open(t, schema)
	defer s.Close()
	cs := &countingStore{Storage: s, claims: os.Getenv(envDueClaims) == "true"}
	l, err := escrow.New(ctx, cs, &escrow.Options{Clock: escrow.NewManualClock(dueAt)})
	if err != nil {
		t.Fatal(err)
	}
	// A transaction to warm the pool up, so that each process starts its
	// run with a connection in hand.
	if _, err := l.Escrow(ctx, "e-000"); err != nil {
		t.Fatal(err)
	}
	cs.reset()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	fired, runs, err := processAll(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	work := cs.counted()
	work.fired, work.runs, work.ms = fired, runs, int(time.Since(began).Milliseconds())
	fmt.Println(work)
}
