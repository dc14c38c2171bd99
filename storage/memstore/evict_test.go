package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// TestEvict takes the cold records of a snapshot out of the live store:
// an ended escrow, its party keys, a rating, a pair counter, the journal
// and the events. A record written again after the snapshot stays, an
// open escrow stays, a timer of an evicted escrow stays in the due index,
// and the next entry and event keep counting.
func TestEvict(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id string, state escrow.State) escrow.Escrow {
		return escrow.Escrow{Terms: escrow.Terms{ID: id, Buyer: "b", Seller: "s"}, State: state, CreatedAt: at}
	}
	ended, changed, open := mk("ended", escrow.Completed), mk("changed", escrow.Completed), mk("open", escrow.AwaitingPayment)
	ended.RatingDueAt = at.Add(time.Hour)
	update := func(fn func(tx escrow.Tx) error) {
		t.Helper()
		if err := s.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx escrow.Tx) error {
		for _, e := range []escrow.Escrow{ended, changed, open} {
			if err := tx.PutEscrow(e); err != nil {
				return err
			}
		}
		if err := tx.AppendEntry(&escrow.Entry{Escrow: "ended", Postings: []escrow.Posting{{Account: "b"}}}); err != nil {
			return err
		}
		if err := tx.AppendEvent(&escrow.Event{Escrow: "ended"}); err != nil {
			return err
		}
		if err := tx.PutRating(escrow.Rating{Escrow: "ended", Rater: "b", Ratee: "s", At: at}); err != nil {
			return err
		}
		return tx.PutPairMonth(escrow.PairMonth{Ratee: "s", Rater: "b", Month: "2026-03"})
	})
	var evicted int
	err := s.Snapshot(ctx, nil, func(snap escrow.Tx) error {
		update(func(tx escrow.Tx) error { // after the snapshot: stays
			changed.Version = 2
			return tx.PutEscrow(changed)
		})
		evicted = s.Evict(snap)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// ended, the rating, the pair, one entry, one event.
	if evicted != 5 {
		t.Errorf("Evict took out %d records, want 5", evicted)
	}
	err = s.View(ctx, func(tx escrow.Tx) error {
		if _, err := tx.Escrow("ended"); !errors.Is(err, escrow.ErrNotFound) {
			t.Errorf("the ended escrow is still there: %v", err)
		}
		if e, err := tx.Escrow("changed"); err != nil || e.Version != 2 {
			t.Errorf("the escrow written after the snapshot = %+v, %v; want it kept", e, err)
		}
		if _, err := tx.Escrow("open"); err != nil {
			t.Errorf("the open escrow: %v", err)
		}
		page, _ := tx.PartyEscrows(escrow.PartyQuery{Party: "b", Role: escrow.Buyer, Limit: 10})
		if len(page) != 2 {
			t.Errorf("b's escrows = %d, want the 2 in memory", len(page))
		}
		if due, _ := tx.DueEscrows(at.Add(2*time.Hour), 10); len(due) != 1 || due[0] != "ended" {
			t.Errorf("due = %q, want the evicted escrow's timer kept", due)
		}
		var cold []string
		memstore.ColdDue(tx, func(id string, _ int64) error { cold = append(cold, id); return nil })
		if len(cold) != 1 || cold[0] != "ended" {
			t.Errorf("ColdDue = %q, want [ended]", cold)
		}
		if j, e := memstore.Floors(tx); j != 1 || e != 1 {
			t.Errorf("Floors = %d, %d; want 1, 1", j, e)
		}
		if page, _ := tx.Journal(0, 10); len(page) != 0 {
			t.Errorf("journal = %d entries, want none", len(page))
		}
		if page, _ := tx.Entries("b", 0, 10); len(page) != 0 {
			t.Errorf("b's entries = %d, want none", len(page))
		}
		if page, _ := tx.EscrowEvents("ended", 0, 10); len(page) != 0 {
			t.Errorf("the escrow's events = %d, want none", len(page))
		}
		if _, err := tx.Rating("ended", "b"); !errors.Is(err, escrow.ErrNotFound) {
			t.Errorf("the rating is still there: %v", err)
		}
		n := 0
		tx.RatingsOf("s", escrow.RatingPos{}, func(escrow.Rating) error { n++; return nil })
		if n != 0 {
			t.Errorf("s's ratings = %d, want none", n)
		}
		if _, err := tx.PairMonth("s", "b", "2026-03"); !errors.Is(err, escrow.ErrNotFound) {
			t.Errorf("the pair counter is still there: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	update(func(tx escrow.Tx) error {
		e := escrow.Entry{}
		if err := tx.AppendEntry(&e); err != nil || e.Seq != 2 {
			t.Errorf("the next entry is %d (%v), want 2", e.Seq, err)
		}
		ev := escrow.Event{}
		if err := tx.AppendEvent(&ev); err != nil || ev.Seq != 2 {
			t.Errorf("the next event is %d (%v), want 2", ev.Seq, err)
		}
		return nil
	})
}

// TestStartAfter starts an empty store's journal and events after given
// numbers, as a store that loads its live records does, and refuses a
// store that holds records.
func TestStartAfter(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	if err := s.StartAfter(1500, 7); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx escrow.Tx) error {
		e := escrow.Entry{}
		if err := tx.AppendEntry(&e); err != nil || e.Seq != 1501 {
			t.Errorf("the first entry is %d (%v), want 1501", e.Seq, err)
		}
		ev := escrow.Event{}
		if err := tx.AppendEvent(&ev); err != nil || ev.Seq != 8 {
			t.Errorf("the first event is %d (%v), want 8", ev.Seq, err)
		}
		if err := memstore.FileDue(tx, []string{"cold"}, []int64{5}); err != nil {
			return err
		}
		page, err := tx.Journal(0, 10)
		if err != nil || len(page) != 1 || page[0].Seq != 1501 {
			t.Errorf("journal = %+v, %v; want entry 1501 alone", page, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StartAfter(1, 1); err == nil {
		t.Error("StartAfter on a store that holds records succeeded")
	}
	s.View(ctx, func(tx escrow.Tx) error {
		if due, _ := tx.DueEscrows(time.Unix(0, 5), 10); len(due) != 1 || due[0] != "cold" {
			t.Errorf("due = %q, want the escrow FileDue filed", due)
		}
		return nil
	})
}

// TestEvictRatingsOfOneRatee evicts thousands of ratings of one seller:
// each batch rewrites the seller's list of ratings once, not once for
// each rating it takes out, so that the work Evict does under the write
// lock, which commits wait for, grows with the ratings and not with their
// square. It measures that work by the bytes Evict allocates, which on a
// shared machine say more than a clock does. A rating written after the
// snapshot stays listed, and a ratee whose ratings all left has none.
func TestEvictRatingsOfOneRatee(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const n = 4000
	rating := func(i int, ratee string) escrow.Rating {
		return escrow.Rating{Escrow: fmt.Sprintf("e%05d", i), Rater: "b", Ratee: ratee, Score: escrow.Positive,
			At: at.Add(time.Duration(i) * time.Second)}
	}
	update := func(fn func(tx escrow.Tx) error) {
		t.Helper()
		if err := s.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx escrow.Tx) error {
		for i := range n {
			if err := tx.PutRating(rating(i, "shop")); err != nil {
				return err
			}
		}
		return tx.PutRating(rating(n, "other"))
	})
	var evicted int
	var allocated uint64
	err := s.Snapshot(ctx, nil, func(snap escrow.Tx) error {
		update(func(tx escrow.Tx) error { return tx.PutRating(rating(n+1, "shop")) }) // after the snapshot: stays
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		evicted = s.Evict(snap)
		runtime.ReadMemStats(&after)
		allocated = after.TotalAlloc - before.TotalAlloc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if evicted != n+1 {
		t.Errorf("Evict took out %d records, want %d", evicted, n+1)
	}
	t.Logf("Evict allocated %d bytes for %d ratings", allocated, n)
	if limit := uint64(n) * 2048; allocated > limit {
		t.Errorf("Evict allocated %d bytes for %d ratings of one ratee, more than %d: it copies the ratee's list once a rating",
			allocated, n, limit)
	}
	err = s.View(ctx, func(tx escrow.Tx) error {
		var shop []string
		if err := tx.RatingsOf("shop", escrow.RatingPos{}, func(r escrow.Rating) error {
			shop = append(shop, r.Escrow)
			return nil
		}); err != nil {
			return err
		}
		if want := rating(n+1, "shop").Escrow; len(shop) != 1 || shop[0] != want {
			t.Errorf("shop's ratings after Evict = %q, want [%s] alone", shop, want)
		}
		return tx.RatingsOf("other", escrow.RatingPos{}, func(r escrow.Rating) error {
			t.Errorf("other's ratings after Evict include %s", r.Escrow)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
