package filestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// The flows kill test's workload: flowWorkers goroutines, each with its own
// buyer and seller, repeat a cycle of flowCycle calls that takes escrows
// through the trade flows besides the plain one TestKill runs: a cart paid
// with PayAll, a part shipment, a return and refund, milestones, a partial
// refund request agreed to, a dispute with evidence resolved by the
// arbiter, an auto-confirm fired by ProcessDue on a manual clock moved
// forward, and ratings with a reply. Every call but ProcessDue carries an
// idempotency key naming the worker and the call, so that a child resumes
// at the first call its parent saw no acknowledgement of and a call that
// was made but not acknowledged is answered from its stored result.
const (
	flowWorkers = 4
	flowCycle   = 35
	flowArbiter = "farb"
)

var flowStart = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

func flowBuyer(w int) string  { return "fb" + strconv.Itoa(w) }
func flowSeller(w int) string { return "fs" + strconv.Itoa(w) }

// flowOptions give every timer but the one ProcessDue is meant to fire the
// longest there is, so that moving the clock fires nothing else, and keep
// idempotency keys for long enough to replay any call after a kill.
func flowOptions(clock escrow.Clock) *escrow.Options {
	return &escrow.Options{
		Clock:                clock,
		Arbiter:              flowArbiter,
		Timers:               escrow.Timers{PayWithin: escrow.MaxTimer, ShipWithin: escrow.MaxTimer, ConfirmWithin: escrow.MaxTimer, RefundResponseWithin: escrow.MaxTimer, ReturnResponseWithin: escrow.MaxTimer, ReturnShipWithin: escrow.MaxTimer, ReturnReceiveWithin: escrow.MaxTimer, ReturnDisputeWithin: escrow.MaxTimer},
		IdempotencyRetention: 10 * 365 * 24 * time.Hour,
	}
}

// flowTimer is the auto-confirm timer of each cycle's escrow T, which
// ProcessDue fires; each firing moves the clock about this much, so that
// the rating windows (15 days) of earlier cycles close in ProcessDue too,
// giving default ratings, while a window stays open for the few calls
// between an escrow's end and its rating.
const flowTimer = 24 * time.Hour

// flowClock is the child's manual clock, its reading kept in a file before
// it moves, so that a restarted child never reads an earlier time than
// anything the store holds.
type flowClock struct {
	*escrow.ManualClock
	mu   sync.Mutex
	path string
}

func (c *flowClock) moveTo(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.After(c.Now()) {
		return nil
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(t.Format(time.RFC3339Nano)), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return err
	}
	c.Set(t)
	return nil
}

func readFlowClock(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return flowStart, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339Nano, string(b))
}

// flowCall makes call step of worker w and returns what it acknowledges:
// space-separated e=<escrow>/<version>/<state>, r=<escrow>/<rater> (a
// rating), p=<escrow>/<rater> (a reply to it) and d=<account>/<n> (the
// account's nth deposit).
func flowCall(ctx context.Context, l *escrow.Ledger, clock *flowClock, w, step int) (string, error) {
	cycle, k := step/flowCycle, step%flowCycle
	buyer, seller := flowBuyer(w), flowSeller(w)
	id := func(x string) string { return "f" + strconv.Itoa(w) + "-" + strconv.Itoa(cycle) + "-" + x }
	key := escrow.IdempotencyKey("fk" + strconv.Itoa(w) + "-" + strconv.Itoa(step))
	var es []escrow.Escrow
	one := func(e escrow.Escrow, err error) error {
		es = append(es, e)
		return err
	}
	rated := func(r escrow.Rating, err error) (string, error) {
		return "r=" + r.Escrow + "/" + r.Rater, err
	}
	var err error
	switch k {
	case 0:
		_, err = l.Deposit(ctx, buyer, cny(5000), key)
		return "d=" + buyer + "/" + strconv.Itoa(cycle+1), err
	case 1:
		err = one(l.Open(ctx, escrow.Terms{ID: id("a"), Buyer: buyer, Seller: seller, Price: cny(1000), Item: "lamp"}, key))
	case 2:
		err = one(l.Open(ctx, escrow.Terms{ID: id("b"), Buyer: buyer, Seller: seller, Price: cny(500), Item: "shade"}, key))
	case 3:
		es, err = l.PayAll(ctx, buyer, []string{id("a"), id("b")}, key)
	case 4:
		err = one(l.ShipPart(ctx, id("a"), seller, "SF1", key))
	case 5:
		err = one(l.Ship(ctx, id("a"), seller, "SF2", key))
	case 6:
		err = one(l.Confirm(ctx, id("a"), buyer, key))
	case 7:
		return rated(l.Rate(ctx, id("a"), buyer, escrow.RatingInput{Score: escrow.Positive,
			Details: escrow.Details{Described: 5, Communication: 4, Shipping: 3}, Comment: "good"}, key))
	case 8:
		_, err = l.Reply(ctx, id("a"), buyer, seller, "thanks", key)
		return "p=" + id("a") + "/" + buyer, err
	case 9:
		return rated(l.Rate(ctx, id("a"), seller, escrow.RatingInput{Score: escrow.Positive}, key))
	case 10:
		err = one(l.Ship(ctx, id("b"), seller, "SF3", key))
	case 11:
		err = one(l.RequestReturn(ctx, id("b"), buyer, cny(500), "wrong colour", key))
	case 12:
		err = one(l.AgreeReturn(ctx, id("b"), seller, "1 Dock Road", key))
	case 13:
		err = one(l.ShipReturn(ctx, id("b"), buyer, "SF4", key))
	case 14:
		err = one(l.ConfirmReturn(ctx, id("b"), seller, key))
	case 15:
		err = one(l.Open(ctx, escrow.Terms{ID: id("c"), Buyer: buyer, Seller: seller, Price: cny(1000), Item: "kitchen",
			Milestones: []escrow.Milestone{{Name: "design", Amount: cny(600)}, {Name: "build", Amount: cny(400)}}}, key))
	case 16:
		err = one(l.Pay(ctx, id("c"), buyer, key))
	case 17:
		err = one(l.Ship(ctx, id("c"), seller, "", key))
	case 18:
		err = one(l.ConfirmMilestone(ctx, id("c"), buyer, 0, key))
	case 19:
		err = one(l.ConfirmMilestone(ctx, id("c"), buyer, 1, key))
	case 20:
		err = one(l.Open(ctx, escrow.Terms{ID: id("d"), Buyer: buyer, Seller: seller, Price: cny(800), Item: "chair"}, key))
	case 21:
		err = one(l.Pay(ctx, id("d"), buyer, key))
	case 22:
		err = one(l.RequestRefund(ctx, id("d"), buyer, cny(300), "one leg short", key))
	case 23:
		err = one(l.AgreeRefund(ctx, id("d"), seller, key))
	case 24:
		err = one(l.Dispute(ctx, id("d"), buyer, "never came", key))
	case 25:
		err = one(l.AddEvidence(ctx, id("d"), buyer, "no parcel", "", key))
	case 26:
		err = one(l.AddEvidence(ctx, id("d"), seller, "posted", "receipt.jpg", key))
	case 27:
		err = one(l.AddEvidence(ctx, id("d"), flowArbiter, "asked the carrier", "", key))
	case 28:
		err = one(l.Resolve(ctx, id("d"), flowArbiter, escrow.Split{Buyer: cny(200), Seller: cny(300)}, key))
	case 29:
		return rated(l.Rate(ctx, id("d"), seller, escrow.RatingInput{Score: escrow.Neutral, Comment: "slow"}, key))
	case 30:
		timers := escrow.Timers{ConfirmWithin: flowTimer}
		err = one(l.Open(ctx, escrow.Terms{ID: id("t"), Buyer: buyer, Seller: seller, Price: cny(1000), Item: "rug", Timers: timers}, key))
	case 31:
		err = one(l.Pay(ctx, id("t"), buyer, key))
	case 32:
		err = one(l.Ship(ctx, id("t"), seller, "SF5", key))
	case 33:
		// The clock moves past T's auto-confirm deadline and ProcessDue
		// fires it, unless another worker's ProcessDue already did.
		e, err := l.Escrow(ctx, id("t"))
		if err != nil {
			return "", err
		}
		if e.State == escrow.AwaitingConfirmation {
			if err := clock.moveTo(e.DueAt.Add(time.Minute)); err != nil {
				return "", err
			}
			if _, err := l.ProcessDue(ctx); err != nil {
				return "", err
			}
			if e, err = l.Escrow(ctx, id("t")); err != nil {
				return "", err
			}
		}
		if e.State != escrow.Completed {
			return "", fmt.Errorf("escrow %s is %s after ProcessDue, not Completed", e.ID, e.State)
		}
		es = append(es, e)
	case 34:
		return rated(l.Rate(ctx, id("t"), buyer, escrow.RatingInput{Score: escrow.Positive}, key))
	}
	if err != nil {
		return "", err
	}
	var ack []string
	for _, e := range es {
		ack = append(ack, fmt.Sprintf("e=%s/%d/%d", e.ID, e.Version, e.State))
	}
	return strings.Join(ack, " "), nil
}

// TestKillFlowsChild is the child process of TestKillFlows: it resumes
// each worker at the call FILESTORE_FLOWS_FROM names and prints
// "ack <worker> <call> <effects>" after each call returns, until it is
// killed.
func TestKillFlowsChild(t *testing.T) {
	dir := os.Getenv("FILESTORE_FLOWS_DIR")
	if dir == "" {
		t.Skip("run by TestKillFlows")
	}
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var from [flowWorkers]int
	for w, f := range strings.Split(os.Getenv("FILESTORE_FLOWS_FROM"), ",") {
		n, err := strconv.Atoi(f)
		if err != nil || w >= flowWorkers {
			fail(fmt.Errorf("bad FILESTORE_FLOWS_FROM %q", os.Getenv("FILESTORE_FLOWS_FROM")))
		}
		from[w] = n
	}
	clockPath := filepath.Join(filepath.Dir(dir), "clock")
	now, err := readFlowClock(clockPath)
	if err != nil {
		fail(err)
	}
	clock := &flowClock{ManualClock: escrow.NewManualClock(now), path: clockPath}
	var s *Store
	for range 100 { // the killed child's lock is released at exit
		if s, err = Open(dir, &killOptions); !errors.Is(err, ErrLocked) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		fail(err)
	}
	l, err := escrow.New(ctx, s, flowOptions(clock))
	if err != nil {
		fail(err)
	}
	for w := range flowWorkers {
		for _, id := range []string{flowBuyer(w), flowSeller(w)} {
			if _, err := l.OpenAccount(ctx, id); err != nil && !errors.Is(err, escrow.ErrExists) {
				fail(err)
			}
		}
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range flowWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for step := from[w]; ; step++ {
				ack, err := flowCall(ctx, l, clock, w, step)
				out.Lock()
				if err != nil {
					fail(fmt.Errorf("worker %d call %d: %w", w, step, err))
				}
				fmt.Printf("ack %d %d %s\n", w, step, ack)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}

// flowAcked is what the children acknowledged, over all runs.
type flowAcked struct {
	calls    [flowWorkers]int
	escrows  map[string][2]uint64 // version and state
	ratings  map[string]bool      // escrow/rater
	replies  map[string]bool
	deposits map[string]int
}

func (a *flowAcked) add(line string) (bool, error) {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "ack" {
		return false, nil
	}
	w, err1 := strconv.Atoi(f[1])
	step, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || w < 0 || w >= flowWorkers {
		return false, fmt.Errorf("bad acknowledgement %q", line)
	}
	a.calls[w] = max(a.calls[w], step+1)
	for _, eff := range f[3:] {
		kind, what, _ := strings.Cut(eff, "=")
		switch kind {
		case "e":
			p := strings.Split(what, "/")
			if len(p) != 3 {
				return false, fmt.Errorf("bad acknowledgement %q", line)
			}
			v, err1 := strconv.ParseUint(p[1], 10, 64)
			st, err2 := strconv.ParseUint(p[2], 10, 8)
			if err1 != nil || err2 != nil {
				return false, fmt.Errorf("bad acknowledgement %q", line)
			}
			if v >= a.escrows[p[0]][0] {
				a.escrows[p[0]] = [2]uint64{v, st}
			}
		case "r":
			a.ratings[what] = true
		case "p":
			a.replies[what] = true
		case "d":
			acct, n, _ := strings.Cut(what, "/")
			k, err := strconv.Atoi(n)
			if err != nil {
				return false, fmt.Errorf("bad acknowledgement %q", line)
			}
			a.deposits[acct] = max(a.deposits[acct], k)
		default:
			return false, fmt.Errorf("bad acknowledgement %q", line)
		}
	}
	return true, nil
}

// check reports the first acknowledged effect s does not hold, and returns
// how many default ratings s holds.
func (a *flowAcked) check(ctx context.Context, s escrow.Storage) (defaults int, err error) {
	return defaults, s.View(ctx, func(tx escrow.Tx) error {
		defaults = 0
		err := tx.Ratings(func(r escrow.Rating) error {
			if r.Default {
				defaults++
			}
			return nil
		})
		if err != nil {
			return err
		}
		for id, want := range a.escrows {
			e, err := tx.Escrow(id)
			if err != nil {
				return fmt.Errorf("escrow %s, acknowledged at version %d: %w", id, want[0], err)
			}
			if e.Version < want[0] || e.Version == want[0] && uint64(e.State) != want[1] {
				return fmt.Errorf("escrow %s is %s at version %d; %s at version %d was acknowledged",
					id, e.State, e.Version, escrow.State(want[1]), want[0])
			}
		}
		for k := range a.ratings {
			id, rater, _ := strings.Cut(k, "/")
			if _, err := tx.Rating(id, rater); err != nil {
				return fmt.Errorf("the acknowledged rating of %s by %s: %w", id, rater, err)
			}
		}
		for k := range a.replies {
			id, rater, _ := strings.Cut(k, "/")
			r, err := tx.Rating(id, rater)
			if err != nil || r.Reply == "" {
				return fmt.Errorf("the acknowledged reply to the rating of %s by %s is missing (%v)", id, rater, err)
			}
		}
		events, err := tx.Events(0, 1<<30)
		if err != nil {
			return err
		}
		deposits := map[string]int{}
		for _, ev := range events {
			if ev.Type == escrow.Deposited {
				deposits[ev.Account]++
			}
		}
		for acct, n := range a.deposits {
			// At most the one call a worker had made when it was killed
			// is there unacknowledged; a keyed deposit replayed as a new
			// one would make two.
			if deposits[acct] < n || deposits[acct] > n+1 {
				return fmt.Errorf("account %s holds %d deposits; %d were acknowledged", acct, deposits[acct], n)
			}
		}
		return nil
	})
}

// TestKillFlows runs the flows workload in a child process and kills it
// with SIGKILL at random moments, then reopens the store and checks that
// it holds every effect the child acknowledged and passes the ledger's
// Check, ratings included. Each child resumes on the store the last one
// left, and the last one must make progress on it. FILESTORE_KILLS=n
// kills n times.
func TestKillFlows(t *testing.T) {
	if os.Getenv("FILESTORE_FLOWS_DIR") != "" || os.Getenv("FILESTORE_KILL_DIR") != "" {
		t.Skip("inside a child")
	}
	kills := 4
	if n, err := strconv.Atoi(os.Getenv("FILESTORE_KILLS")); err == nil {
		kills = max(n, 1)
	}
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	acked := &flowAcked{escrows: map[string][2]uint64{}, ratings: map[string]bool{}, replies: map[string]bool{}, deposits: map[string]int{}}
	for kill := range kills {
		from := make([]string, flowWorkers)
		for w, n := range acked.calls {
			from[w] = strconv.Itoa(n)
		}
		before := acked.calls
		last := kill == kills-1
		// The first kill lands on a running workload, and the last shows
		// that a child goes on where the killed one left off. The others
		// may come at any moment, recovery included.
		killChild(t, rng, kill, "TestKillFlowsChild",
			[]string{"FILESTORE_FLOWS_DIR=" + dir, "FILESTORE_FLOWS_FROM=" + strings.Join(from, ",")},
			kill == 0 || last, 350, acked.add)
		if last && acked.calls == before {
			t.Fatalf("kill %d: the child acknowledged no call on the reopened store", kill)
		}

		s, err := Open(dir, &killOptions)
		if err != nil {
			t.Fatalf("kill %d: Open: %v", kill, err)
		}
		defaults, err := acked.check(ctx, s)
		if err != nil {
			t.Fatalf("kill %d: %v", kill, err)
		}
		now, err := readFlowClock(filepath.Join(root, "clock"))
		if err != nil {
			t.Fatal(err)
		}
		l, err := escrow.New(ctx, s, flowOptions(escrow.NewManualClock(now)))
		if err != nil {
			t.Fatalf("kill %d: New: %v", kill, err)
		}
		if err := l.Check(ctx); err != nil {
			t.Fatalf("kill %d: Check: %v", kill, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("kill %d: calls acknowledged %v, clock %s, default ratings %d", kill, acked.calls, now.Format(time.DateTime), defaults)
	}
}
