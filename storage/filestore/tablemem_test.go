package filestore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// TestTableMemoryPerTrade checks the README's figure for the memory that
// history still takes once checkpoints have moved it to the cold tables:
// the tables' filters and top-level indexes, at most 20 bytes a finished
// trade that both parties rated.
func TestTableMemoryPerTrade(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir(), &Options{NoSync: true, CompactRatio: -1})
	defer s.Close()
	clock := escrow.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l, err := escrow.New(ctx, s, &escrow.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	const trades = 1000
	for _, id := range []string{"buyer", "seller"} {
		if _, err := l.OpenAccount(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Deposit(ctx, "buyer", cny(trades*10000)); err != nil {
		t.Fatal(err)
	}
	for i := range trades {
		id := "t" + strconv.Itoa(i)
		_, err := l.Open(ctx, escrow.Terms{ID: id, Buyer: "buyer", Seller: "seller", Price: cny(10000), SKU: id})
		if err == nil {
			_, err = l.Pay(ctx, id, "buyer")
		}
		if err == nil {
			_, err = l.Ship(ctx, id, "seller", "")
		}
		if err == nil {
			_, err = l.Confirm(ctx, id, "buyer")
		}
		if err == nil {
			_, err = l.Rate(ctx, id, "buyer", escrow.RatingInput{Score: escrow.Positive})
		}
		if err == nil {
			_, err = l.Rate(ctx, id, "seller", escrow.RatingInput{Score: escrow.Positive})
		}
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	perTrade := float64(st.TableMemBytes) / trades
	t.Logf("%d bytes of table indexes and filters in memory: %.1f a trade", st.TableMemBytes, perTrade)
	if perTrade > 20 {
		t.Errorf("the tables hold %.1f bytes a trade in memory, more than the 20 the README says", perTrade)
	}
}
