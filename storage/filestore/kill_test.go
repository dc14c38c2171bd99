package filestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// The kill test's workload: killWorkers goroutines, each with its own buyer
// and seller, repeat a cycle of five calls (deposit, open, pay, ship,
// confirm), each appending one event that names the worker. A worker's
// events in a recovered store must be exactly its first k calls, in order,
// with k at least what it acknowledged.
const killWorkers = 8

var killCycle = []escrow.EventType{escrow.Deposited, escrow.EscrowOpened, escrow.EscrowPaid, escrow.EscrowShipped, escrow.EscrowReleased}

func killBuyer(w int) string  { return "kb" + strconv.Itoa(w) }
func killSeller(w int) string { return "ks" + strconv.Itoa(w) }
func killEscrow(w, step int) string {
	return "k" + strconv.Itoa(w) + "-" + strconv.Itoa(step/len(killCycle))
}

func killCall(ctx context.Context, l *escrow.Ledger, w, step int) error {
	id, buyer, seller := killEscrow(w, step), killBuyer(w), killSeller(w)
	var err error
	switch step % len(killCycle) {
	case 0:
		_, err = l.Deposit(ctx, buyer, cny(1000))
	case 1:
		_, err = l.Open(ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Price: cny(1000)})
	case 2:
		_, err = l.Pay(ctx, id, buyer)
	case 3:
		_, err = l.Ship(ctx, id, seller, "")
	case 4:
		_, err = l.Confirm(ctx, id, buyer)
	}
	return err
}

// killChild runs the test binary as a child that runs only the test run,
// with env added, and kills it with SIGKILL: once it has acknowledged a
// call if waitWorking (so that the kill lands on a running workload), after
// a pause of 50 ms and up to spread ms more. It hands ack each line the
// child prints, which reports whether the line acknowledged a call or was
// wrong, and returns once every line is read, failing t if the child
// reported an error or ack found one.
func killChild(t *testing.T, rng *rand.Rand, kill int, run string, env []string, waitWorking bool, spread int, ack func(line string) (bool, error)) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	working := make(chan struct{}) // closed at the child's first acknowledgement, or when it ends
	var once sync.Once
	markWorking := func() { once.Do(func() { close(working) }) }
	go func() {
		defer markWorking()
		sc := bufio.NewScanner(stdout)
		var errLine string
		for sc.Scan() {
			if ok, err := ack(sc.Text()); err != nil {
				errLine = "error " + err.Error()
			} else if ok {
				markWorking()
			} else if strings.HasPrefix(sc.Text(), "error") {
				errLine = sc.Text()
			}
		}
		lines <- errLine
	}()
	if waitWorking {
		<-working
	}
	time.Sleep(time.Duration(50+rng.IntN(spread)) * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	errLine := <-lines // all acknowledgements read
	cmd.Wait()
	if errLine != "" {
		t.Fatalf("kill %d: the child failed: %s", kill, errLine)
	}
}

// killProgress reads the store's events and returns how many calls of
// each worker it holds, checking that they are the worker's first calls in
// order.
func killProgress(ctx context.Context, s escrow.Storage) ([killWorkers]int, error) {
	var done [killWorkers]int
	var events []escrow.Event
	err := s.View(ctx, func(tx escrow.Tx) error {
		var err error
		events, err = tx.Events(0, 1<<30)
		return err
	})
	if err != nil {
		return done, err
	}
	for _, ev := range events {
		if ev.Type == escrow.AccountOpened {
			continue
		}
		w := -1
		for k := range killWorkers {
			if ev.Account == killBuyer(k) || strings.HasPrefix(ev.Escrow, "k"+strconv.Itoa(k)+"-") {
				w = k
			}
		}
		if w < 0 {
			return done, fmt.Errorf("event %d (%s) belongs to no worker", ev.Seq, ev.Type)
		}
		step := done[w]
		if ev.Type != killCycle[step%len(killCycle)] || (ev.Escrow != "" && ev.Escrow != killEscrow(w, step)) {
			return done, fmt.Errorf("event %d is %s on %q; worker %d's call %d should be %s on %q",
				ev.Seq, ev.Type, ev.Escrow, w, step, killCycle[step%len(killCycle)], killEscrow(w, step))
		}
		done[w]++
	}
	return done, nil
}

// killOptions compact often, so that kills land in compactions too.
var killOptions = Options{CompactMinBytes: 64 << 10, CompactRatio: 1}

// TestKillChild is the child process of TestKill: it resumes the workload
// where the store left it and prints "ack <worker> <call>" after each call
// returns, until it is killed.
func TestKillChild(t *testing.T) {
	dir := os.Getenv("FILESTORE_KILL_DIR")
	if dir == "" {
		t.Skip("run by TestKill")
	}
	ctx := context.Background()
	var s *Store
	var err error
	for range 100 { // the killed parent's lock is released at exit
		if s, err = Open(dir, &killOptions); !errors.Is(err, ErrLocked) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	l, err := escrow.New(ctx, s, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for w := range killWorkers {
		for _, id := range []string{killBuyer(w), killSeller(w)} {
			if _, err := l.OpenAccount(ctx, id); err != nil && !errors.Is(err, escrow.ErrExists) {
				fmt.Println("error", err)
				os.Exit(2)
			}
		}
	}
	done, err := killProgress(ctx, s)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range killWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for step := done[w]; ; step++ {
				if err := killCall(ctx, l, w, step); err != nil {
					out.Lock()
					fmt.Println("error", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Printf("ack %d %d\n", w, step)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestKill runs the workload in a child process and kills it with SIGKILL
// at random moments, then checks the store against what the child
// acknowledged. It kills a few times by default; FILESTORE_KILLS=n kills n
// times.
func TestKill(t *testing.T) {
	if os.Getenv("FILESTORE_KILL_DIR") != "" {
		t.Skip("inside the child")
	}
	kills := 3
	if n, err := strconv.Atoi(os.Getenv("FILESTORE_KILLS")); err == nil {
		kills = n
	}
	ctx := context.Background()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var acked [killWorkers]int // calls acknowledged, over all runs
	for kill := range kills {
		// The first kill lands on a running workload. Starting the child
		// can take longer than the longest pause on a loaded machine or
		// under the race detector, and a run whose kills all came before
		// the first acknowledgement would test nothing. Later kills may
		// come at any moment, recovery included.
		killChild(t, rng, kill, "TestKillChild", []string{"FILESTORE_KILL_DIR=" + dir}, kill == 0, 400,
			func(line string) (bool, error) {
				var w, step int
				if _, err := fmt.Sscanf(line, "ack %d %d", &w, &step); err == nil && w >= 0 && w < killWorkers {
					acked[w] = max(acked[w], step+1)
					return true, nil
				}
				return false, nil
			})

		s, err := Open(dir, &killOptions)
		if err != nil {
			t.Fatalf("kill %d: Open: %v", kill, err)
		}
		done, err := killProgress(ctx, s)
		if err != nil {
			t.Fatalf("kill %d: %v", kill, err)
		}
		for w := range killWorkers {
			if done[w] < acked[w] {
				t.Fatalf("kill %d: worker %d acknowledged %d calls, the store holds %d", kill, w, acked[w], done[w])
			}
		}
		if err := escrow.CheckMoney(ctx, s); err != nil {
			t.Fatalf("kill %d: invariants: %v", kill, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("kill %d: calls acknowledged %v, recovered %v", kill, acked, done)
	}
	// Every check above holds trivially if the child never acknowledged
	// anything, so insist that it did.
	total := 0
	for _, n := range acked {
		total += n
	}
	if total == 0 {
		t.Fatal("the child acknowledged no call before any kill; nothing was tested")
	}
}
