package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
)

// market makes a store with two accounts and three escrows: one
// completed, one paid, one refunded.
func market(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.OpenAccount(ctx, "ann"))
	must(l.OpenAccount(ctx, "bob"))
	must(l.Deposit(ctx, "ann", escrow.MustParseMoney("100.00", escrow.CNY)))
	for _, id := range []string{"e1", "e2", "e3"} {
		must(l.Open(ctx, escrow.Terms{ID: id, Buyer: "ann", Seller: "bob", Price: escrow.MustParseMoney("10.00", escrow.CNY)}))
		must(l.Pay(ctx, id, "ann"))
	}
	must(l.Ship(ctx, "e1", "bob", "SF1"))
	must(l.Confirm(ctx, "e1", "ann"))
	must(l.Refund(ctx, "e3", "bob", escrow.MustParseMoney("10.00", escrow.CNY)))
	return dir
}

func runT(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(&out, args)
	return out.String(), err
}

func TestCheckStatsDumpCompact(t *testing.T) {
	dir := market(t)
	out, err := runT(t, "check", dir)
	if err != nil || !strings.HasPrefix(out, "ok: 13 records") {
		t.Fatalf("check = %q, %v; want ok with 13 records", out, err)
	}
	if out, err := runT(t, "check", "-ratings", dir); err != nil || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("check -ratings = %q, %v", out, err)
	}

	out, err = runT(t, "stats", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"accounts   4\n", "events     12\n", "escrows    3\n",
		"  AwaitingShipment       1\n", "  Completed              1\n", "  Refunded               1\n", "records    13 committed"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats lacks %q:\n%s", want, out)
		}
	}

	out, err = runT(t, "dump", "-escrow", "e1", dir)
	if err != nil {
		t.Fatal(err)
	}
	var types []escrow.EventType
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev escrow.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("dump line %q: %v", line, err)
		}
		if ev.Escrow != "e1" {
			t.Errorf("dump -escrow e1 printed an event of %q", ev.Escrow)
		}
		types = append(types, ev.Type)
	}
	want := []escrow.EventType{escrow.EscrowOpened, escrow.EscrowPaid, escrow.EscrowShipped, escrow.EscrowReleased}
	if !slices.Equal(types, want) {
		t.Errorf("history of e1 = %v, want %v", types, want)
	}
	if out, err := runT(t, "dump", dir); err != nil || strings.Count(out, "\n") != 12 {
		t.Errorf("dump printed %d lines (%v), want 12", strings.Count(out, "\n"), err)
	}
	if _, err := runT(t, "dump", "-escrow", "nope", dir); !errors.Is(err, escrow.ErrNotFound) {
		t.Errorf("dump of an unknown escrow = %v, want ErrNotFound", err)
	}

	out, err = runT(t, "compact", dir)
	if err != nil || !strings.HasPrefix(out, "compacted: snapshot of 13 records") {
		t.Fatalf("compact = %q, %v", out, err)
	}
	if out, err := runT(t, "check", dir); err != nil || !strings.Contains(out, "snapshot to 13, 0 in the log") {
		t.Fatalf("check after compact = %q, %v", out, err)
	}
}

func TestCheckFindsProblems(t *testing.T) {
	t.Run("Checksum", func(t *testing.T) {
		dir := market(t)
		seg := filepath.Join(dir, "log-0000000000000001.wal")
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		data[30] ^= 1 // inside the first record
		os.WriteFile(seg, data, 0o600)
		if _, err := runT(t, "check", dir); !errors.Is(err, filestore.ErrCorrupt) {
			t.Fatalf("check of a damaged log = %v, want ErrCorrupt", err)
		}
	})
	t.Run("Invariant", func(t *testing.T) {
		dir := market(t)
		s, err := filestore.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Money from nowhere: a balance the journal does not explain.
		err = s.Update(context.Background(), func(tx escrow.Tx) error {
			b, err := tx.Balance("bob", "CNY")
			if err != nil {
				return err
			}
			m, _ := escrow.MoneyFromUnits(b.Available.Units()+1, escrow.CNY)
			b.Available = m
			return tx.PutBalance(b)
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := runT(t, "check", dir); !errors.Is(err, escrow.ErrInvariant) {
			t.Fatalf("check of a broken ledger = %v, want ErrInvariant", err)
		}
	})
	t.Run("Usage", func(t *testing.T) {
		if _, err := runT(t); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("no arguments = %v, want the usage", err)
		}
		if _, err := runT(t, "frobnicate", t.TempDir()); err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("unknown command = %v", err)
		}
		if _, err := runT(t, "stats", filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing directory = %v, want ErrNotExist (and no store created)", err)
		}
	})
}

// TestCheckRatings shows that -ratings is what catches a reputation
// aggregate that disagrees with its ratings: the plain check, which knows
// no reputation policy, passes the same store.
func TestCheckRatings(t *testing.T) {
	dir := market(t)
	ctx := context.Background()
	s, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Rate(ctx, "e1", "ann", escrow.RatingInput{Score: escrow.Positive}); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx escrow.Tx) error {
		a, err := tx.Aggregate("bob", escrow.Seller)
		if err != nil {
			return err
		}
		a.Points++
		return tx.PutAggregate(a)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := runT(t, "check", dir); err != nil || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("check = %q, %v; want ok", out, err)
	}
	if _, err := runT(t, "check", "-ratings", dir); !errors.Is(err, escrow.ErrInvariant) {
		t.Fatalf("check -ratings of a bad aggregate = %v, want ErrInvariant", err)
	}
}

// TestUnknownCommandTouchesNothing: a mistyped command is refused before
// the store is opened, so the directory gains no lock file and no log.
func TestUnknownCommandTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, err := runT(t, "chekc", dir); err == nil || !strings.Contains(err.Error(), `unknown command "chekc"`) {
		t.Fatalf("escrowctl chekc = %v, want an unknown command error", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("a refused command left %d files in the directory", len(entries))
	}
}
