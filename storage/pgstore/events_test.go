package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// TestCursorNeverSkips has writers on two stores append events in
// transactions that take different times to commit, some rolled back,
// while a reader on a third store follows the outbox with a cursor, as a
// notifier would: it must see every committed event, each once, numbered
// 1, 2, 3, … with no gap, and never see one that was rolled back.
func TestCursorNeverSkips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := newSchema(t)
	stores := []escrow.Storage{open(t, schema), open(t, schema), open(t, schema)}
	for _, s := range stores {
		t.Cleanup(func() { s.Close() })
	}
	const writers, perWriter = 6, 25
	errAbort := errors.New("rolled back by the test")
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				err := stores[w%2].Update(ctx, func(tx escrow.Tx) error {
					ev := escrow.Event{Type: escrow.Deposited, At: start, Account: fmt.Sprintf("w%d", w), Note: fmt.Sprint(i)}
					if err := tx.AppendEvent(&ev); err != nil {
						return err
					}
					// Send the insert (the store holds writes back until its
					// next statement) and hold the transaction open for a
					// while, longer for some writers than others, so that
					// commits interleave.
					if _, err := tx.Account("none"); !errors.Is(err, escrow.ErrNotFound) {
						return fmt.Errorf("a read after the append: %v, want ErrNotFound", err)
					}
					time.Sleep(time.Duration((w*7+i*3)%5) * time.Millisecond)
					if i%5 == 4 {
						return errAbort
					}
					return nil
				})
				if errors.Is(err, escrow.ErrConflict) {
					t.Errorf("writer %d gave up on a conflict: %v", w, err)
					return
				}
				if err != nil && !errors.Is(err, errAbort) {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	want := writers * (perWriter - perWriter/5)
	seen := map[string]bool{}
	var cursor uint64
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		var page []escrow.Event
		err := stores[2].View(ctx, func(tx escrow.Tx) error {
			var err error
			page, err = tx.Events(cursor, 7)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page {
			if ev.Seq != cursor+1 {
				t.Fatalf("after event %d the reader got event %d: it skipped %d", cursor, ev.Seq, ev.Seq-cursor-1)
			}
			key := ev.Account + "/" + ev.Note
			if seen[key] {
				t.Fatalf("event %s seen twice", key)
			}
			var i int
			fmt.Sscan(ev.Note, &i)
			if i%5 == 4 {
				t.Fatalf("the reader saw event %s of a rolled-back transaction", key)
			}
			seen[key] = true
			cursor = ev.Seq
		}
		if finished && len(page) == 0 {
			break
		}
	}
	if len(seen) != want {
		t.Fatalf("the reader saw %d events, want %d", len(seen), want)
	}
}
