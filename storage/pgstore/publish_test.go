package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// appendNote appends a Deposited event with note in its own Update.
func appendNote(t *testing.T, s escrow.Storage, note string) {
	t.Helper()
	if err := s.Update(context.Background(), appending(note)); err != nil {
		t.Fatal(err)
	}
}

// notes returns the notes of the numbered events, checking that they are
// numbered 1, 2, 3, ….
func notes(t *testing.T, s escrow.Storage) []string {
	t.Helper()
	var out []string
	err := s.View(context.Background(), func(tx escrow.Tx) error {
		evs, err := tx.Events(0, 1000)
		for i, ev := range evs {
			if ev.Seq != uint64(i+1) {
				t.Fatalf("event %d has Seq %d", i+1, ev.Seq)
			}
			out = append(out, ev.Note)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// holdOpen starts an Update on s that runs fn and then waits, holding
// its transaction open, until release is closed, and returns end (nil
// commits). It returns once fn has run; the Update's result comes on the
// returned channel.
func holdOpen(t *testing.T, s escrow.Storage, fn func(escrow.Tx) error, release <-chan struct{}, end error) <-chan error {
	t.Helper()
	ran, result := make(chan struct{}), make(chan error, 1)
	go func() {
		result <- s.Update(context.Background(), func(tx escrow.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			// A read sends what fn wrote (the store holds writes back
			// until its next statement), so that the transaction is open
			// on the server, its writes made, while it waits.
			if _, err := tx.Account("held open"); !errors.Is(err, escrow.ErrNotFound) {
				return fmt.Errorf("a read after fn: %v, want ErrNotFound", err)
			}
			close(ran)
			<-release
			return end
		})
	}()
	select {
	case <-ran:
	case err := <-result:
		t.Fatalf("the held Update ended early: %v", err)
	}
	return result
}

// appending returns a function that appends a Deposited event with note.
func appending(note string) func(escrow.Tx) error {
	return func(tx escrow.Tx) error {
		return tx.AppendEvent(&escrow.Event{Type: escrow.Deposited, At: start, Account: "a", Note: note})
	}
}

// TestPublishWaitsForOlderTransactions checks the numbering promises of
// the package documentation: a transaction's events are not numbered
// while an older one still runs, which then takes the lower number;
// Update waits for its own to be numbered, but not past two seconds; and
// once the older one ends, the store's own publishing numbers what is
// left without another write.
//
// It does not run in parallel with the other tests: it holds the oldest
// transaction of the cluster open for seconds, which holds back the
// numbering of every schema's events, theirs too.
func TestPublishWaitsForOlderTransactions(t *testing.T) {
	schema := newSchema(t)
	a, b := open(t, schema), open(t, schema)
	defer a.Close()
	defer b.Close()

	// A short hold: the later Update waits for it and then returns.
	release := make(chan struct{})
	old := holdOpen(t, a, appending("old"), release, nil)
	go func() { time.Sleep(300 * time.Millisecond); close(release) }()
	began := time.Now()
	appendNote(t, b, "new")
	if took := time.Since(began); took < 250*time.Millisecond {
		t.Errorf("Update returned after %v, before the older transaction ended", took)
	}
	if err := <-old; err != nil {
		t.Fatal(err)
	}
	if got, want := notes(t, b), []string{"old", "new"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q: the older transaction first", got, want)
	}

	// A long hold: the later Update gives up waiting after two seconds,
	// the next does not wait at all, and the events are numbered once the
	// hold ends.
	release = make(chan struct{})
	old = holdOpen(t, a, appending("long"), release, nil)
	began = time.Now()
	appendNote(t, b, "gave up")
	if took := time.Since(began); took < 1500*time.Millisecond || took > 10*time.Second {
		t.Errorf("Update behind a long transaction returned after %v, want about two seconds", took)
	}
	began = time.Now()
	appendNote(t, b, "did not wait")
	if took := time.Since(began); took > time.Second {
		t.Errorf("a second Update behind the same transaction took %v: it waited again", took)
	}
	if got, want := notes(t, b), []string{"old", "new"}; !slices.Equal(got, want) {
		t.Fatalf("events while the long transaction runs: %q, want %q", got, want)
	}
	close(release)
	if err := <-old; err != nil {
		t.Fatal(err)
	}
	want := []string{"old", "new", "long", "gave up", "did not wait"}
	deadline := time.Now().Add(10 * time.Second)
	for got := notes(t, b); !slices.Equal(got, want); got = notes(t, b) {
		if time.Now().After(deadline) {
			t.Fatalf("events after the long transaction ended: %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPublishNumbersWhatOthersLeft commits events and journal entries
// with no number, as a process that died between its commit and its
// publish leaves them: they are pending while an older transaction runs,
// Publish waits for it, then numbers them, and a store that opens on the
// schema numbers such rows by itself.
//
// It does not run in parallel with the other tests: it holds the oldest
// transaction of the cluster open, which holds back the numbering of
// every schema's events.
func TestPublishNumbersWhatOthersLeft(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := open(t, schema)
	defer s.Close()
	// The older transaction keeps the store's own publishing, which runs
	// every second, from numbering the rows before the test looks.
	hold, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	leave := func(note string) {
		t.Helper()
		err := pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
			q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }
			_, err := tx.Exec(ctx, `INSERT INTO `+q("events")+` (xid, type, at, at_ns, account, escrow, buyer, seller, actor, by_timer, state, note)
				VALUES (pg_current_xact_id(), 'Deposited', now(), 0, 'a', '', '', '', 'a', false, 0, $1)`, note)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `WITH e AS (INSERT INTO `+q("entries")+` (xid, at, at_ns, kind, escrow, currency, minor)
				VALUES (pg_current_xact_id(), now(), 0, 'deposit', '', 'CNY', 2) RETURNING id)
				INSERT INTO `+q("postings")+` (entry, idx, account, bucket, change)
				SELECT id, 0, '@world', 0, -1 FROM e UNION ALL SELECT id, 1, 'a', 0, 1 FROM e`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	leave("left 1")
	var pending []escrow.Entry
	err = s.View(ctx, func(tx escrow.Tx) error {
		var err error
		pending, err = tx.(escrow.PendingTx).PendingEntries()
		return err
	})
	if err != nil || len(pending) != 1 || pending[0].Seq != 0 || len(pending[0].Postings) != 2 {
		t.Fatalf("PendingEntries before publishing: %+v (%v), want the one entry left", pending, err)
	}
	if got := notes(t, s); len(got) != 0 {
		t.Fatalf("events before publishing: %q, want none", got)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := s.Publish(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish while an older transaction runs: %v, want it to wait until its context ends", err)
	}
	if got := notes(t, s); len(got) != 0 {
		t.Fatalf("events after a Publish that waited in vain: %q, want none", got)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := notes(t, s), []string{"left 1"}; !slices.Equal(got, want) {
		t.Fatalf("events after Publish: %q, want %q", got, want)
	}
	var journal []escrow.Entry
	err = s.View(ctx, func(tx escrow.Tx) error {
		var err error
		if journal, err = tx.Entries("a", 0, 10); err != nil {
			return err
		}
		pending, err = tx.(escrow.PendingTx).PendingEntries()
		return err
	})
	if err != nil || len(journal) != 1 || journal[0].Seq != 1 || len(pending) != 0 {
		t.Fatalf("after Publish: journal %+v, pending %+v (%v); want entry 1 and nothing pending", journal, pending, err)
	}

	// A store that opens numbers them without a write.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	leave("left 2")
	other, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	want := []string{"left 1", "left 2"}
	deadline := time.Now().Add(10 * time.Second)
	for got := notes(t, other); !slices.Equal(got, want); got = notes(t, other) {
		if time.Now().After(deadline) {
			t.Fatalf("events after another store opened: %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Publish on a closed store is refused.
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Publish(ctx); !errors.Is(err, escrow.ErrClosed) {
		t.Fatalf("Publish on a closed store: %v, want ErrClosed", err)
	}
}

// TestPublishesCoalesce checks that the Updates of one store share their
// publishes (see Numbering in publish.go): Updates whose transactions
// commit together make far fewer publishes than commits, and each still
// returns only once its own event is numbered, as another connection
// reads it; and Updates that wait behind an older transaction share the
// polling instead of each polling.
//
// It does not run in parallel with the other tests: it holds transactions
// open, which holds back the numbering of every schema's events.
func TestPublishesCoalesce(t *testing.T) {
	const n = 32
	ctx := context.Background()
	schema := newSchema(t)
	var trips, publishes atomic.Int64
	pool := schemaPool(t, schema, func(cfg *pgxpool.Config) {
		cfg.ConnConfig.Tracer = tripCounter{n: &trips, publishes: &publishes}
		cfg.MaxConns = n + 2
	})
	s, err := pgstore.New(ctx, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events := pgx.Identifier{schema, "events"}.Sanitize()
	// numbered reads, on a connection of its own, whether the event with
	// note has a number.
	numbered := func(note string) error {
		var seq *int64
		if err := admin.QueryRow(ctx, `SELECT seq FROM `+events+` WHERE note = $1`, note).Scan(&seq); err != nil {
			return fmt.Errorf("reading %s: %w", note, err)
		}
		if seq == nil {
			return fmt.Errorf("%s is not numbered when its Update returns", note)
		}
		return nil
	}

	// n transactions, open at once, commit together.
	var ready sync.WaitGroup
	release := make(chan struct{})
	errs := make([]error, n)
	var done sync.WaitGroup
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			note := fmt.Sprintf("together %d", i)
			first := true
			err := s.Update(ctx, func(tx escrow.Tx) error {
				if err := appending(note)(tx); err != nil {
					return err
				}
				// A read sends the event, so that the transaction has
				// its id and its row before it waits.
				if _, err := tx.Account("none"); !errors.Is(err, escrow.ErrNotFound) {
					return fmt.Errorf("a read: %v, want ErrNotFound", err)
				}
				if first {
					first = false
					ready.Done()
				}
				<-release
				return nil
			})
			if err == nil {
				err = numbered(note)
			}
			errs[i] = err
		}()
	}
	ready.Wait()
	publishes.Store(0)
	close(release)
	done.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	together := publishes.Load()
	if together > n/2 {
		t.Errorf("%d Updates that committed together made %d publishes, want at most %d", n, together, n/2)
	}

	// n Updates wait behind an older transaction for hold: they share one
	// publish at a time, paused by up to 10ms, where each polling on its
	// own would make about n times as many.
	const hold = 500 * time.Millisecond
	old, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback(ctx)
	if _, err := old.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	publishes.Store(0)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			note := fmt.Sprintf("behind %d", i)
			err := s.Update(ctx, appending(note))
			if err == nil {
				err = numbered(note)
			}
			errs[i] = err
		}()
	}
	time.Sleep(hold)
	during := publishes.Load()
	if err := old.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	done.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if limit := int64(4 * hold / (10 * time.Millisecond)); during > limit {
		t.Errorf("%d Updates waiting %v behind an older transaction made %d publishes, want at most %d", n, hold, during, limit)
	}
	t.Logf("publishes: %d for %d commits together; %d while %d Updates waited %v", together, n, during, n, hold)
}
