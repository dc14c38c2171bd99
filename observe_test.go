package escrow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/google/go-cmp/cmp"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu      sync.Mutex
	calls   []escrow.CallInfo
	commits []escrow.CommitInfo
	timers  []escrow.TimerInfo
}

func (r *recorder) Call(c escrow.CallInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recorder) Commit(c escrow.CommitInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commits = append(r.commits, c)
}

func (r *recorder) Timer(t escrow.TimerInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timers = append(r.timers, t)
}

// reset forgets everything told so far.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls, r.commits, r.timers = nil, nil, nil
}

// A callRow is a CallInfo without its duration, and with its error as
// text, to compare.
type callRow struct {
	Call     string
	Err      string
	Replayed bool
}

// A commitRow is a CommitInfo without its duration.
type commitRow struct {
	Call   string
	Writes int
	Err    string
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// rows returns the calls and commits told so far, and checks their
// durations: a call or commit that reached the store took some time.
func (r *recorder) rows(t *testing.T) ([]callRow, []commitRow) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var calls []callRow
	for _, c := range r.calls {
		if c.Duration < 0 {
			t.Errorf("call %s took %v", c.Call, c.Duration)
		}
		calls = append(calls, callRow{c.Call, errText(c.Err), c.Replayed})
	}
	var commits []commitRow
	for _, c := range r.commits {
		if c.Duration <= 0 {
			t.Errorf("commit of %s took %v", c.Call, c.Duration)
		}
		commits = append(commits, commitRow{c.Call, c.Writes, errText(c.Err)})
	}
	return calls, commits
}

// TestObserverCalls: the observer is told of each call with its word and
// outcome, typed errors included, of each replay, and of each write
// transaction with the records it wrote.
func TestObserverCalls(t *testing.T) {
	rec := &recorder{}
	w := newWorld(t, nil, escrow.Options{Observer: rec})
	_, commits := rec.rows(t)
	// New writes the two system accounts.
	if diff := cmp.Diff([]commitRow{{"new", 2, ""}}, commits); diff != "" {
		t.Errorf("New's commit (-want +got):\n%s", diff)
	}
	rec.reset()

	var replayed bool
	ctx := w.ctx
	_, err := w.l.OpenAccount(ctx, "alice")
	w.must("OpenAccount", err)
	_, err = w.l.OpenAccount(ctx, "bob")
	w.must("OpenAccount", err)
	_, err = w.l.Deposit(ctx, "alice", cny("100.00"), escrow.IdempotencyKey("d1"))
	w.must("Deposit", err)
	_, err = w.l.Deposit(ctx, "alice", cny("100.00"), escrow.IdempotencyKey("d1"), escrow.Replayed(&replayed))
	if err != nil || !replayed {
		t.Fatalf("Deposit again: replayed %v, %v; want a replay", replayed, err)
	}
	w.l.Withdraw(ctx, "alice", cny("500.00")) // refused: the observer is told how
	_, err = w.l.Open(ctx, escrow.Terms{ID: "e1", Buyer: "alice", Seller: "bob", Price: cny("60.00")})
	w.must("Open", err)
	w.l.Pay(ctx, "e1", "bob")
	_, err = w.l.Pay(ctx, "e1", "alice")
	w.must("Pay", err)
	w.l.Ship(ctx, "e1", "bob", strings.Repeat("x", 201))
	_, err = w.l.Escrow(ctx, "e1")
	w.must("Escrow", err)
	w.l.Balance(ctx, "nobody", escrow.CNY)

	calls, commits := rec.rows(t)
	wantCalls := []callRow{
		{Call: "open_account"},
		{Call: "open_account"},
		{Call: "deposit"},
		{Call: "deposit", Replayed: true},
		{Call: "withdraw", Err: `escrow: insufficient funds in "alice": need 500.00 CNY, available 100.00 CNY`},
		{Call: "open"},
		{Call: "pay", Err: `escrow: "bob" may not pay escrow "e1" (state AwaitingPayment): only the buyer may`},
		{Call: "pay"},
		{Call: "ship", Err: "escrow: invalid argument: tracking is 201 bytes, more than 200"},
		{Call: "escrow"},
		{Call: "balance", Err: `escrow: not found: account "nobody"`},
	}
	if diff := cmp.Diff(wantCalls, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// The errors are the typed ones the caller got.
	var funds *escrow.InsufficientFundsError
	if !errors.As(rec.calls[4].Err, &funds) || funds.Account != "alice" || funds.Needed.Units() != 50000 {
		t.Errorf("withdraw's error %#v, want an *InsufficientFundsError for alice's 500.00", rec.calls[4].Err)
	}
	var role *escrow.RoleError
	if !errors.As(rec.calls[6].Err, &role) || role.Actor != "bob" || role.Action != escrow.ActionPay {
		t.Errorf("pay's error %#v, want a *RoleError for bob paying", rec.calls[6].Err)
	}
	if !errors.Is(rec.calls[8].Err, escrow.ErrInvalidArgument) || !errors.Is(rec.calls[10].Err, escrow.ErrNotFound) {
		t.Errorf("ship's and balance's errors %v, %v; want ErrInvalidArgument and ErrNotFound", rec.calls[8].Err, rec.calls[10].Err)
	}

	// The writes of each: an account and its event; two balances, an
	// entry, an event and the key's record; none for a replay or a refusal;
	// an escrow and its event; the buyer's balance, an entry, the escrow
	// and its event. Ship was refused before its transaction, and reads
	// have none.
	wantCommits := []commitRow{
		{"open_account", 2, ""},
		{"open_account", 2, ""},
		{"deposit", 5, ""},
		{"deposit", 0, ""},
		{"withdraw", 0, wantCalls[4].Err},
		{"open", 2, ""},
		{"pay", 0, wantCalls[6].Err},
		{"pay", 4, ""},
	}
	if diff := cmp.Diff(wantCommits, commits); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
}

// TestObserverTimers: after the clock passes two deadlines, ProcessDue
// tells the observer of each timer it fired, with the action the clock
// took and the state it left, and of each transaction it ran.
func TestObserverTimers(t *testing.T) {
	rec := &recorder{}
	w := newWorld(t, nil, escrow.Options{Observer: rec})
	paid := w.paid("alice", "bob") // the shipping deadline: 7 days
	w.account("carol")
	_, err := w.l.Open(w.ctx, escrow.Terms{ID: "unpaid", Buyer: "carol", Seller: "bob", Price: cny("5.00")})
	w.must("Open", err) // the payment deadline: 3 days
	rec.reset()

	w.clock.Advance(escrow.DefaultTimers().ShipWithin + time.Minute)
	if n := w.processDue(); n != 2 {
		t.Errorf("ProcessDue fired %d, want 2", n)
	}
	want := []escrow.TimerInfo{
		{Escrow: "unpaid", Action: escrow.ActionCancel, State: escrow.Closed},
		{Escrow: paid, Action: escrow.ActionRefund, State: escrow.Refunded},
	}
	if diff := cmp.Diff(want, rec.timers); diff != "" {
		t.Errorf("timers (-want +got):\n%s", diff)
	}
	calls, commits := rec.rows(t)
	if diff := cmp.Diff([]callRow{{Call: "process_due"}}, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// Pruning found no expired key, which takes no transaction; closing
	// wrote the escrow and its event; the refund the buyer's balance, an
	// entry, the escrow and its event.
	wantCommits := []commitRow{{"process_due", 2, ""}, {"process_due", 4, ""}}
	if diff := cmp.Diff(wantCommits, commits); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
}

// jsonLogger returns a logger that writes JSON lines to buf, without
// times, from Debug up.
func jsonLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// records decodes the JSON lines in buf, and empties it.
func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(buf)
	for dec.More() {
		var r map[string]any
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("log record: %v", err)
		}
		out = append(out, r)
	}
	buf.Reset()
	return out
}

// TestLoggerTimers: ProcessDue logs each timer it fires and each rating
// window it closes at Info, and each escrow or aggregate it has to skip at
// Error with the error, after the store's own failure. Every record names
// the call, process_due, as the records of refused writes do.
func TestLoggerTimers(t *testing.T) {
	var buf bytes.Buffer
	rec := &recorder{}
	store := &stuckStore{Store: memstore.New(), stuck: map[string]bool{}}
	t.Cleanup(func() { store.Close() })
	w := newWorld(t, store, escrow.Options{Logger: jsonLogger(&buf), Observer: rec})
	w.account("alice")
	w.account("bob")
	for _, id := range []string{"a-good", "z-stuck"} {
		_, err := w.l.Open(w.ctx, escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Price: cny("10.00")})
		w.must("Open", err)
		w.clock.Advance(time.Minute)
	}
	store.stuck["z-stuck"] = true
	if got := records(t, &buf); len(got) != 0 {
		t.Fatalf("calls that succeed logged %v, want nothing", got)
	}
	rec.reset()

	w.clock.Advance(escrow.DefaultTimers().PayWithin)
	n, err := w.l.ProcessDue(w.ctx)
	if n != 1 || !errors.Is(err, errStuck) {
		t.Fatalf("ProcessDue = %d, %v; want 1 and a DueError wrapping errStuck", n, err)
	}
	stuckErr := fmt.Sprintf("%v: %q", errStuck, "z-stuck")
	want := []map[string]any{
		{"level": "INFO", "msg": "escrow: timer fired", "call": "process_due", "escrow": "a-good", "action": "cancel", "state": "closed"},
		{"level": "ERROR", "msg": "escrow: store failed a write", "call": "process_due", "error": stuckErr},
		{"level": "ERROR", "msg": "escrow: due escrow skipped", "call": "process_due", "escrow": "z-stuck", "action": "cancel", "error": stuckErr},
	}
	if diff := cmp.Diff(want, records(t, &buf)); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	wantTimers := []escrow.TimerInfo{
		{Escrow: "a-good", Action: escrow.ActionCancel, State: escrow.Closed},
		{Escrow: "z-stuck", Action: escrow.ActionCancel, Err: errors.New(stuckErr)},
	}
	if diff := cmp.Diff(wantTimers, rec.timers, cmp.Comparer(func(a, b error) bool { return errText(a) == errText(b) })); diff != "" ||
		!errors.Is(rec.timers[1].Err, errStuck) {
		t.Errorf("timers (-want +got):\n%s", diff)
	}

	// A rating window closes with the silent seller's default rating, and
	// the seller's aggregate, which the store now refuses, cannot be
	// re-keyed the next day.
	delete(store.stuck, "z-stuck")
	w.rated("shop", escrow.Positive)
	rated := fmt.Sprintf("e-%03d", w.trades)
	store.stuck["shop"] = true
	buf.Reset()
	w.clock.Advance(15*24*time.Hour + time.Minute)
	_, err = w.l.ProcessDue(w.ctx)
	if !errors.Is(err, errStuck) {
		t.Fatalf("ProcessDue: %v, want a DueError wrapping errStuck", err)
	}
	var got []map[string]any
	for _, r := range records(t, &buf) {
		if r["msg"] != "escrow: store failed a write" { // the aggregate's batch, then itself
			got = append(got, r)
		}
	}
	want = []map[string]any{
		{"level": "INFO", "msg": "escrow: timer fired", "call": "process_due", "escrow": "z-stuck", "action": "cancel", "state": "closed"},
		{"level": "INFO", "msg": "escrow: rating window closed", "call": "process_due", "escrow": rated, "state": "completed"},
		{"level": "ERROR", "msg": "escrow: aggregate re-key skipped", "call": "process_due", "party": "shop", "role": "seller",
			"error": fmt.Sprintf("%v: %q", errStuck, "shop")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	if i := slices.IndexFunc(rec.timers, func(ti escrow.TimerInfo) bool { return ti.Escrow == rated }); i < 0 ||
		rec.timers[i] != (escrow.TimerInfo{Escrow: rated, Action: escrow.ActionRate, State: escrow.Completed}) {
		t.Errorf("timers %+v, want the rating window of %s closed", rec.timers, rated)
	}
}

// failingStore is a memstore whose updates fail, once failed is set, as a
// file store's do after a write to its log failed.
type failingStore struct {
	*memstore.Store
	failed bool
}

var errDiskFailed = fmt.Errorf("%w: write log: %w", filestore.ErrFailed, syscall.EIO)

func (s *failingStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	if s.failed {
		return errDiskFailed
	}
	return s.Store.Update(ctx, fn)
}

// TestLoggerStoreRefusesWrites: a write that a closed or read-only store
// refuses is logged at Warn, one that fails in the store at Error, with
// the call and the error; a call the ledger's rules refuse is not logged.
func TestLoggerStoreRefusesWrites(t *testing.T) {
	var buf bytes.Buffer
	log := jsonLogger(&buf)
	ctx := context.Background()

	// A read-only file store.
	dir := t.TempDir()
	fs, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := escrow.New(ctx, fs, nil); err != nil {
		t.Fatal(err)
	}
	fs.Close()
	ro, err := filestore.Open(dir, &filestore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	l, err := escrow.New(ctx, ro, &escrow.Options{Logger: log})
	if err != nil {
		t.Fatalf("New on a read-only store: %v", err)
	}
	if _, err := l.OpenAccount(ctx, "alice"); !errors.Is(err, escrow.ErrReadOnly) {
		t.Fatalf("OpenAccount on a read-only store: %v, want ErrReadOnly", err)
	}

	// A store that failed, and a closed one.
	store := &failingStore{Store: memstore.New()}
	w := newWorld(t, store, escrow.Options{Logger: log})
	w.funded("bob")
	if _, err := w.l.Withdraw(w.ctx, "bob", cny("5000.00")); !errors.Is(err, escrow.ErrInsufficientFunds) {
		t.Fatalf("Withdraw: %v, want ErrInsufficientFunds", err)
	}
	store.failed = true
	if _, err := w.l.Deposit(w.ctx, "bob", cny("1.00")); !errors.Is(err, filestore.ErrFailed) {
		t.Fatalf("Deposit on a failed store: %v, want filestore.ErrFailed", err)
	}
	store.failed = false
	store.Close()
	if _, err := w.l.Pay(w.ctx, "e1", "bob"); !errors.Is(err, escrow.ErrClosed) {
		t.Fatalf("Pay on a closed store: %v, want ErrClosed", err)
	}

	want := []map[string]any{
		{"level": "WARN", "msg": "escrow: store refused a write", "call": "open_account", "error": escrow.ErrReadOnly.Error()},
		{"level": "ERROR", "msg": "escrow: store failed a write", "call": "deposit", "error": errDiskFailed.Error()},
		{"level": "WARN", "msg": "escrow: store refused a write", "call": "pay", "error": escrow.ErrClosed.Error()},
	}
	if diff := cmp.Diff(want, records(t, &buf)); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// TestObserverRefusedStore: the observer is told of a write the store
// refused, as a commit that failed with the store's error.
func TestObserverRefusedStore(t *testing.T) {
	rec := &recorder{}
	store := memstore.New()
	w := newWorld(t, store, escrow.Options{Observer: rec})
	w.funded("alice")
	rec.reset()
	store.Close()
	_, err := w.l.Deposit(w.ctx, "alice", cny("1.00"))
	calls, commits := rec.rows(t)
	if !errors.Is(err, escrow.ErrClosed) ||
		!cmp.Equal([]callRow{{Call: "deposit", Err: "escrow: closed"}}, calls) ||
		!cmp.Equal([]commitRow{{"deposit", 0, "escrow: closed"}}, commits) ||
		!errors.Is(rec.calls[0].Err, escrow.ErrClosed) || !errors.Is(rec.commits[0].Err, escrow.ErrClosed) {
		t.Errorf("Deposit on a closed store: %v; told of calls %+v and commits %+v", err, calls, commits)
	}
}

// TestObserverWords: every method of the Ledger that calls the store
// tells the observer its word, once, whether it succeeds or not.
func TestObserverWords(t *testing.T) {
	rec := &recorder{}
	w := newWorld(t, nil, escrow.Options{Observer: rec})
	w.funded("alice", "bob")
	_, err := w.l.Open(w.ctx, escrow.Terms{ID: "m", Buyer: "alice", Seller: "bob", Arbiter: "carol", Price: cny("10.00"),
		Milestones: []escrow.Milestone{{Name: "half", Amount: cny("5.00")}, {Name: "rest", Amount: cny("5.00")}}})
	w.must("Open", err)
	id, ctx, l := "m", w.ctx, w.l
	half := cny("1.00")
	for _, c := range []struct {
		word string
		call func() error
	}{
		{"open_account", func() error { return errOf(l.OpenAccount(ctx, "dave")) }},
		{"account", func() error { return errOf(l.Account(ctx, "dave")) }},
		{"deposit", func() error { return errOf(l.Deposit(ctx, "dave", half)) }},
		{"withdraw", func() error { return errOf(l.Withdraw(ctx, "dave", half)) }},
		{"balance", func() error { return errOf(l.Balance(ctx, "dave", escrow.CNY)) }},
		{"journal", func() error { return errOf(l.Journal(ctx, "dave", 0, 10)) }},
		{"events", func() error { return errOf(l.Events(ctx, 0, 10)) }},
		{"open", func() error {
			return errOf(l.Open(ctx, escrow.Terms{ID: "x", Buyer: "dave", Seller: "bob", Price: half}))
		}},
		{"cancel", func() error { return errOf(l.Cancel(ctx, "x", "dave")) }},
		{"pay", func() error { return errOf(l.Pay(ctx, id, "alice")) }},
		{"request_refund", func() error { return errOf(l.RequestRefund(ctx, id, "alice", half, "late")) }},
		{"refuse_refund", func() error { return errOf(l.RefuseRefund(ctx, id, "bob", "on its way")) }},
		{"agree_refund", func() error { return errOf(l.AgreeRefund(ctx, id, "bob")) }}, // refused: answered
		{"refund", func() error { return errOf(l.Refund(ctx, id, "bob", half)) }},
		{"ship", func() error { return errOf(l.Ship(ctx, id, "bob", "")) }},
		{"confirm_milestone", func() error { return errOf(l.ConfirmMilestone(ctx, id, "alice", 0)) }},
		{"dispute", func() error { return errOf(l.Dispute(ctx, id, "alice", "broken")) }},
		{"resolve", func() error {
			return errOf(l.Resolve(ctx, id, "carol", escrow.Split{Buyer: cny("2.00"), Seller: cny("2.00")}))
		}},
		{"confirm", func() error { return errOf(l.Confirm(ctx, id, "alice")) }}, // refused: resolved
		{"rate", func() error { return errOf(l.Rate(ctx, id, "alice", escrow.RatingInput{Score: escrow.Negative})) }},
		{"revise", func() error { return errOf(l.Revise(ctx, id, "alice", escrow.Neutral, "")) }},
		{"reply", func() error { return errOf(l.Reply(ctx, id, "alice", "bob", "thanks")) }},
		{"escrow", func() error { return errOf(l.Escrow(ctx, id)) }},
		{"reputation", func() error { return errOf(l.Reputation(ctx, "bob")) }},
		{"concentration", func() error { return errOf(l.Concentration(ctx, "bob")) }},
		{"explain", func() error { return errOf(l.Explain(ctx, "bob", escrow.Page{})) }},
		{"top_sellers", func() error { return errOf(l.TopSellers(ctx, escrow.RankWilson, escrow.Page{Limit: 3})) }},
		{"balances", func() error { return errOf(l.Balances(ctx, "dave")) }},
		{"escrows", func() error { return errOf(l.Escrows(ctx, escrow.EscrowQuery{Party: "alice"})) }},
		{"history", func() error { return errOf(l.History(ctx, id)) }},
		{"wait_events", func() error { return errOf(l.WaitEvents(ctx, 0, 10)) }},
		{"set_consumer", func() error { return errOf(l.SetConsumer(ctx, "mailer", 1)) }},
		{"consumer", func() error { return errOf(l.Consumer(ctx, "mailer")) }},
		{"consume", func() error { // hands on one event, whose place it stores, and stops at the next
			n := 0
			return l.Consume(ctx, "mailer", func(escrow.Event) error {
				if n++; n > 1 {
					return errors.New("stop")
				}
				return nil
			})
		}},
		{"process_due", func() error { return errOf(l.ProcessDue(ctx)) }},
		{"check", func() error { return l.Check(ctx) }},
	} {
		rec.reset()
		err := c.call()
		rec.mu.Lock()
		got, commits := rec.calls, rec.commits
		rec.mu.Unlock()
		if len(got) != 1 || got[0].Call != c.word || !errors.Is(got[0].Err, err) || (err == nil) != (got[0].Err == nil) {
			t.Errorf("%s (returned %v): observer told of %+v, want one call of that word and error", c.word, err, got)
		}
		for _, commit := range commits { // the call's transactions are told under its word too
			if commit.Call != c.word {
				t.Errorf("%s: observer told of a commit of %q", c.word, commit.Call)
			}
		}
		if c.word == "consume" || c.word == "set_consumer" {
			if len(commits) != 1 || commits[0].Writes != 1 {
				t.Errorf("%s: observer told of commits %+v, want the one that stores the place", c.word, commits)
			}
		}
	}
}

// errOf returns a call's error, dropping its result.
func errOf[T any](_ T, err error) error { return err }

// TestObserverConcurrent: calls from many goroutines are each told once,
// with the writes of each transaction counted apart.
func TestObserverConcurrent(t *testing.T) {
	rec := &recorder{}
	w := newWorld(t, nil, escrow.Options{Observer: rec})
	w.funded("alice")
	rec.reset()
	const goroutines, each = 8, 25
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := w.l.Deposit(w.ctx, "alice", cny("0.01")); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	calls, commits := rec.rows(t)
	want := slices.Repeat([]commitRow{{"deposit", 4, ""}}, goroutines*each)
	if diff := cmp.Diff(want, commits); diff != "" || len(calls) != goroutines*each {
		t.Errorf("%d calls; commits (-want +got):\n%s", len(calls), diff)
	}
}

// TestStoreFailureReturnedAsIs: a failure of the store's own, which wraps
// none of the sentinels, comes back from a call as the store gave it, and
// Code calls it internal; the call has changed nothing.
func TestStoreFailureReturnedAsIs(t *testing.T) {
	store := &failingStore{Store: memstore.New()}
	t.Cleanup(func() { store.Store.Close() })
	w := newWorld(t, store, escrow.Options{})
	w.funded("bob")
	before := w.dump()
	store.failed = true
	_, err := w.l.Deposit(w.ctx, "bob", cny("1.00"))
	if !errors.Is(err, filestore.ErrFailed) || err.Error() != errDiskFailed.Error() || escrow.Code(err) != "internal" {
		t.Errorf("Deposit on a failed store: %v (code %q), want the store's own error, code internal", err, escrow.Code(err))
	}
	store.failed = false
	w.unchanged(before, "a deposit the store failed")
}

// writeCounter is a store that counts, by its own Tx, every write its
// transactions make that succeeds: what CommitInfo.Writes must report.
type writeCounter struct {
	escrow.Storage
	writes int // in the last Update
}

func (s *writeCounter) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	return s.Storage.Update(ctx, func(tx escrow.Tx) error {
		c := &writeCountingTx{Tx: tx}
		err := fn(c)
		s.writes = c.n
		return err
	})
}

type writeCountingTx struct {
	escrow.Tx
	n int
}

func (t *writeCountingTx) count(err error) error {
	if err == nil {
		t.n++
	}
	return err
}

func (t *writeCountingTx) PutAccount(a escrow.Account) error   { return t.count(t.Tx.PutAccount(a)) }
func (t *writeCountingTx) PutBalance(b escrow.Balance) error   { return t.count(t.Tx.PutBalance(b)) }
func (t *writeCountingTx) AppendEntry(e *escrow.Entry) error   { return t.count(t.Tx.AppendEntry(e)) }
func (t *writeCountingTx) AppendEvent(ev *escrow.Event) error  { return t.count(t.Tx.AppendEvent(ev)) }
func (t *writeCountingTx) PutEscrow(e escrow.Escrow) error     { return t.count(t.Tx.PutEscrow(e)) }
func (t *writeCountingTx) PutConsumer(c escrow.Consumer) error { return t.count(t.Tx.PutConsumer(c)) }
func (t *writeCountingTx) PutRating(r escrow.Rating) error     { return t.count(t.Tx.PutRating(r)) }
func (t *writeCountingTx) PutAggregate(a escrow.Aggregate) error {
	return t.count(t.Tx.PutAggregate(a))
}
func (t *writeCountingTx) PutDayCount(d escrow.DayCount) error { return t.count(t.Tx.PutDayCount(d)) }
func (t *writeCountingTx) PutPairMonth(p escrow.PairMonth) error {
	return t.count(t.Tx.PutPairMonth(p))
}
func (t *writeCountingTx) PutItemMark(m escrow.ItemMark) error { return t.count(t.Tx.PutItemMark(m)) }
func (t *writeCountingTx) PutRaterDays(d escrow.RaterDays) error {
	return t.count(t.Tx.PutRaterDays(d))
}
func (t *writeCountingTx) PutIdempotency(r escrow.IdempotencyRecord) error {
	return t.count(t.Tx.PutIdempotency(r))
}
func (t *writeCountingTx) DeleteIdempotency(key string) error {
	return t.count(t.Tx.DeleteIdempotency(key))
}

// TestObserverCountsEveryWrite: CommitInfo.Writes is every record the
// transaction wrote, as the store counts them, for calls that write each
// kind of record: the rating calls under a policy with UniqueRaters too,
// which keep the raters' days.
func TestObserverCountsEveryWrite(t *testing.T) {
	rec := &recorder{}
	store := &writeCounter{Storage: memstore.New()}
	t.Cleanup(func() { store.Close() })
	w := newWorld(t, store, escrow.Options{Observer: rec, Operators: []string{"ops"},
		Reputation: escrow.ReputationPolicy{UniqueRaters: true}})
	check := func(what string) {
		t.Helper()
		rec.mu.Lock()
		last := rec.commits[len(rec.commits)-1]
		rec.mu.Unlock()
		if last.Err != nil {
			t.Fatalf("%s: %v", what, last.Err)
		}
		if last.Writes != store.writes {
			t.Errorf("%s: the observer was told of %d writes, the store took %d", what, last.Writes, store.writes)
		}
	}
	id := w.shipped("alice", "bob")
	check("Ship")
	_, err := w.l.Confirm(w.ctx, id, "alice", escrow.IdempotencyKey("confirm-1"))
	w.must("Confirm", err)
	check("Confirm")
	_, err = w.l.Rate(w.ctx, id, "alice", escrow.RatingInput{Score: escrow.Negative})
	w.must("Rate", err)
	check("Rate")
	_, err = w.l.Rate(w.ctx, id, "bob", escrow.RatingInput{Score: escrow.Positive})
	w.must("Rate", err)
	check("Rate by the seller")
	_, err = w.l.Revise(w.ctx, id, "alice", escrow.Positive, "")
	w.must("Revise", err)
	check("Revise")
	_, err = w.l.VoidRating(w.ctx, id, "bob", "ops", "paid to rate")
	w.must("VoidRating", err)
	check("VoidRating")
	_, err = w.l.SetConsumer(w.ctx, "notifier", 1)
	w.must("SetConsumer", err)
	check("SetConsumer")
}

// TestObserverTimerActions: the action a fired timer is told with is the
// one its state's deadline takes, as a party would have: the observer and
// the logger name the same action, for each timed state.
func TestObserverTimerActions(t *testing.T) {
	rec := &recorder{}
	var buf bytes.Buffer
	hour := time.Hour
	w := newWorld(t, nil, escrow.Options{Observer: rec, Logger: jsonLogger(&buf), Timers: escrow.Timers{
		PayWithin: hour, ShipWithin: hour, ConfirmWithin: hour, RefundResponseWithin: hour,
		ReturnResponseWithin: hour, ReturnShipWithin: hour, ReturnReceiveWithin: hour, ReturnDisputeWithin: hour,
		ArbiterWithin: hour}})
	ctx, l := w.ctx, w.l
	w.account("alice")
	w.account("bob")
	_, err := l.Open(ctx, escrow.Terms{ID: "unpaid", Buyer: "alice", Seller: "bob", Price: cny("1.00")})
	w.must("Open", err)
	ids := map[string]string{"unpaid": "unpaid", "unshipped": w.paid("alice", "bob"), "unconfirmed": w.shipped("alice", "bob")}
	step := func(name, id string, calls ...func(id string) error) {
		for _, c := range calls {
			w.must(name, c(id))
		}
		ids[name] = id
	}
	requestRefund := func(id string) error { return errOf(l.RequestRefund(ctx, id, "alice", cny("10.00"), "")) }
	requestReturn := func(id string) error { return errOf(l.RequestReturn(ctx, id, "alice", cny("10.00"), "")) }
	agreeReturn := func(id string) error { return errOf(l.AgreeReturn(ctx, id, "bob", "a street")) }
	shipReturn := func(id string) error { return errOf(l.ShipReturn(ctx, id, "alice", "SF-back")) }
	refuseReturn := func(id string) error { return errOf(l.RefuseReturn(ctx, id, "bob", "worn")) }
	dispute := func(id string) error { return errOf(l.Dispute(ctx, id, "alice", "")) }
	step("refund request", w.paid("alice", "bob"), requestRefund)
	step("return request", w.shipped("alice", "bob"), requestReturn)
	step("return agreed", w.shipped("alice", "bob"), requestReturn, agreeReturn)
	step("return shipped", w.shipped("alice", "bob"), requestReturn, agreeReturn, shipReturn)
	step("return refused", w.shipped("alice", "bob"), requestReturn, agreeReturn, shipReturn, refuseReturn)
	step("dispute", w.paid("alice", "bob"), dispute)
	rec.reset()
	buf.Reset()

	w.clock.Advance(hour + time.Minute) // every deadline, and none a fired timer started
	if n := w.processDue(); n != len(ids) {
		t.Errorf("ProcessDue fired %d timers, want %d", n, len(ids))
	}
	want := map[string]escrow.Action{
		"unpaid":         escrow.ActionCancel,
		"unshipped":      escrow.ActionRefund,
		"unconfirmed":    escrow.ActionConfirm,
		"refund request": escrow.ActionAgreeRefund,
		"return request": escrow.ActionAgreeReturn,
		"return agreed":  escrow.ActionCancelReturn,
		"return shipped": escrow.ActionConfirmReturn,
		"return refused": escrow.ActionCancelReturn,
		"dispute":        escrow.ActionEscalate,
	}
	told := map[string]escrow.Action{}
	for _, ti := range rec.timers {
		told[ti.Escrow] = ti.Action
	}
	logged := map[string]string{}
	for _, r := range records(t, &buf) {
		logged[fmt.Sprint(r["escrow"])] = fmt.Sprint(r["action"])
	}
	for name, action := range want {
		word, _ := action.MarshalText()
		if got := told[ids[name]]; got != action {
			t.Errorf("%s: the observer was told of %v, want %v", name, got, action)
		}
		if got := logged[ids[name]]; got != string(word) {
			t.Errorf("%s: the log names %q, want %q", name, got, word)
		}
	}
}

// TestTimersFiredByCalls: a timer that a party's call fires, finding its
// deadline passed, is told to the observer and logged as one ProcessDue
// fires, under the call's word, once the call commits; a call refused
// after firing one commits nothing, and tells of no timer. ProcessDue's
// count is its own.
func TestTimersFiredByCalls(t *testing.T) {
	var buf bytes.Buffer
	rec := &recorder{}
	w := newWorld(t, nil, escrow.Options{Logger: jsonLogger(&buf), Observer: rec})
	asked := w.shipped("alice", "bob")
	_, err := w.l.RequestRefund(w.ctx, asked, "alice", cny("40.00"), "one cup broken")
	w.must("RequestRefund", err)
	unshipped := w.paid("alice", "bob")
	buf.Reset()
	rec.reset()

	w.clock.Advance(escrow.DefaultTimers().RefundResponseWithin + time.Minute)
	// The seller ignored the request: the dispute finds the refund made,
	// and disputes the rest.
	_, err = w.l.Dispute(w.ctx, asked, "alice", "the rest is broken too")
	w.must("Dispute", err)
	w.clock.Advance(escrow.DefaultTimers().ShipWithin)
	// A late Ship finds the escrow refunded, and is refused: nothing of
	// it, the refund included, is committed.
	if _, err := w.l.Ship(w.ctx, unshipped, "bob", "SF9"); !errors.Is(err, escrow.ErrInvalidTransition) {
		t.Fatalf("a late Ship: %v, want ErrInvalidTransition", err)
	}
	wantTimers := []escrow.TimerInfo{{Escrow: asked, Action: escrow.ActionAgreeRefund, State: escrow.AwaitingConfirmation}}
	if diff := cmp.Diff(wantTimers, rec.timers); diff != "" {
		t.Errorf("timers (-want +got):\n%s", diff)
	}
	want := []map[string]any{
		{"level": "INFO", "msg": "escrow: timer fired", "call": "dispute", "escrow": asked, "action": "agree_refund", "state": "awaiting_confirmation"},
	}
	if diff := cmp.Diff(want, records(t, &buf)); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	// ProcessDue then fires the one left, and counts only that.
	rec.reset()
	if n := w.processDue(); n != 1 {
		t.Errorf("ProcessDue fired %d, want 1", n)
	}
	wantTimers = []escrow.TimerInfo{{Escrow: unshipped, Action: escrow.ActionRefund, State: escrow.Refunded}}
	if diff := cmp.Diff(wantTimers, rec.timers); diff != "" {
		t.Errorf("ProcessDue's timers (-want +got):\n%s", diff)
	}
}
