package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the benchmark's as the child
// process that growth measures in.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		os.Exit(child(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// tradeAll has workers pairs run workers*n trades between them, durably,
// and returns the market to check.
func tradeAll(t *testing.T, s store, workers, n int) *market {
	t.Helper()
	ctx := context.Background()
	m, err := newMarket(ctx, s, workers)
	if err != nil {
		t.Fatal(err)
	}
	var next atomic.Int64
	err = m.run(ctx, "e", func() (int64, bool) {
		i := next.Add(1)
		return i, i <= int64(workers*n)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.total(); got != int64(workers*n) {
		t.Fatalf("%d trades finished, want %d", got, workers*n)
	}
	return m
}

// Every store, the peers above all, does the real work of a trade: the
// buyer pays the price, the seller receives it less the fee, the fee
// account collects the fee.
func TestMoneyAddsUp(t *testing.T) {
	const workers, n = 3, 4
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s, err := k.open(t.TempDir(), mode{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			m := tradeAll(t, s, workers, n)
			if err := m.verify(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The same, spelled out for one pair: its trades of
			// 100.00 at 0.6%.
			ctx := context.Background()
			k := m.trades[0]
			if a, h, err := s.balance(ctx, "buyer-0"); err != nil || a != fundAmount-k*10000 || h != 0 {
				t.Errorf("buyer-0 has %d available, %d held (%v) after %d trades, want %d and 0", a, h, err, k, fundAmount-k*10000)
			}
			if a, h, err := s.balance(ctx, "seller-0"); err != nil || a != k*(10000-60) || h != 0 {
				t.Errorf("seller-0 has %d available, %d held (%v) after %d trades, want %d and 0", a, h, err, k, k*(10000-60))
			}
			if a, _, err := s.balance(ctx, feeAccount); err != nil || a != workers*n*60 {
				t.Errorf("%s has %d (%v), want %d", feeAccount, a, err, workers*n*60)
			}
			if err := s.probe(ctx, "e1", "buyer-0"); err != nil {
				t.Error(err)
			}
		})
	}
}

func peerOf(t *testing.T, s store) *peer {
	switch s := s.(type) {
	case *sqliteStore:
		return &s.peer
	case *boltStore:
		return &s.peer
	}
	t.Fatalf("%T is no peer", s)
	return nil
}

// The peers refuse what the ledger refuses, and a refused step changes
// nothing: they check as much as the ledger does.
func TestPeersRefuse(t *testing.T) {
	for _, name := range []string{"sqlite", "bbolt"} {
		t.Run(name, func(t *testing.T) {
			k, _ := kindNamed(name)
			s, err := k.open(t.TempDir(), mode{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			ctx := context.Background()
			p := peerOf(t, s)
			step := func(fn func(tables) error) error { return p.b.update(ctx, fn) }

			if err := s.fund(ctx, "poor", "shop", price/2); err != nil {
				t.Fatal(err)
			}
			if err := step(func(tx tables) error { return openTrade(tx, "x", "poor", "nobody", price, now()) }); !errors.Is(err, errNotFound) {
				t.Errorf("opening with a seller who has no account: %v, want %v", err, errNotFound)
			}
			if err := step(func(tx tables) error { return openTrade(tx, "x", "poor", "shop", price, now()) }); err != nil {
				t.Fatal(err)
			}
			if err := step(func(tx tables) error { return openTrade(tx, "x", "poor", "shop", price, now()) }); !errors.Is(err, errExists) {
				t.Errorf("opening x again: %v, want %v", err, errExists)
			}
			if err := step(func(tx tables) error { return pay(tx, "x", "shop", now()) }); !errors.Is(err, errNotParty) {
				t.Errorf("the seller paying: %v, want %v", err, errNotParty)
			}
			if err := step(func(tx tables) error { return pay(tx, "x", "poor", now()) }); !errors.Is(err, errOverdraft) {
				t.Errorf("paying 100.00 with 50.00: %v, want %v", err, errOverdraft)
			}
			if err := step(func(tx tables) error { return confirm(tx, "x", "poor", now()) }); !errors.Is(err, errTransition) {
				t.Errorf("confirming before payment: %v, want %v", err, errTransition)
			}
			if a, h, err := s.balance(ctx, "poor"); err != nil || a != price/2 || h != 0 {
				t.Errorf("after the refusals the buyer has %d available, %d held (%v), want %d and 0", a, h, err, price/2)
			}
			err = p.b.view(ctx, func(tx tables) error {
				tr, err := tx.trade("x")
				if err == nil && (tr.State != awaitingPayment || tr.Version != 1) {
					t.Errorf("after the refusals x is %s at version %d, want %s at 1", tr.State, tr.Version, awaitingPayment)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Grouped building does the same work as the measured mode.
func TestGroupedBuild(t *testing.T) {
	for _, name := range []string{"sqlite", "bbolt"} {
		t.Run(name, func(t *testing.T) {
			k, _ := kindNamed(name)
			dir := t.TempDir()
			b, err := buildStore(k, dir, 200, 8, mode{noSync: true, grouped: true})
			if err != nil {
				t.Fatal(err)
			}
			if b.bytes == 0 {
				t.Error("the store's directory is empty")
			}
			// It opens again as measured, with every trade in it.
			s, err := k.open(dir, mode{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			if err := s.probe(context.Background(), "t200", "seller-0"); err != nil {
				t.Error(err)
			}
		})
	}
}

// Growth measures each store in a child process.
func TestGrowthChild(t *testing.T) {
	for _, k := range kinds {
		if !k.growth {
			continue
		}
		t.Run(k.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			if _, err := buildStore(k, dir, 100, 4, mode{noSync: true, grouped: true}); err != nil {
				t.Fatal(err)
			}
			m, err := measureInChild(k, dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Open <= 0 || m.Probe <= 0 {
				t.Errorf("open %v, probe %v", m.Open, m.Probe)
			}
			if runtime.GOOS == "linux" && (m.RSS <= 0 || m.HWM < m.RSS) {
				t.Errorf("RSS %d KiB, peak %d KiB", m.RSS, m.HWM)
			}
			if (k.name == "filestore") != (m.Stats != "") {
				t.Errorf("Stats %q", m.Stats)
			}
		})
	}
}

// -check fails past its bounds, and passes within them.
func TestCheck(t *testing.T) {
	cfg := config{checkTrades: 50, buildWorkers: 4, buildGrouped: true, maxOpen: time.Hour, maxRSSMiB: 1 << 20}
	if err := check(cfg, t.TempDir()); err != nil {
		t.Errorf("within generous bounds: %v", err)
	}
	cfg.maxOpen = time.Nanosecond
	err := check(cfg, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "-max-open") {
		t.Errorf("past -max-open: %v", err)
	}
	if runtime.GOOS == "linux" {
		cfg.maxOpen, cfg.maxRSSMiB = 0, 0.5
		err = check(cfg, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "-max-rss-mib") {
			t.Errorf("past -max-rss-mib: %v", err)
		}
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-growth", "100_000,1000000", "-workers", "2", "-stores", "sqlite,filestore"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.growth) != 2 || cfg.growth[0] != 100000 || cfg.growth[1] != 1000000 {
		t.Errorf("growth %v", cfg.growth)
	}
	if len(cfg.workers) != 1 || cfg.workers[0] != 2 || len(cfg.stores) != 2 || cfg.stores[1].name != "filestore" {
		t.Errorf("workers %v, stores %v", cfg.workers, cfg.stores)
	}
	if _, err := parseFlags([]string{"-stores", "postgres"}); err == nil {
		t.Error("-stores postgres accepted")
	}
}

func TestFee(t *testing.T) {
	for _, c := range []struct{ amount, want int64 }{
		{10000, 60}, {250, 2}, {750, 4}, {1250, 8}, {83, 0}, {84, 1}, {1, 0},
	} {
		if got := fee(c.amount, feeRatePPM); got != c.want {
			t.Errorf("fee(%d) = %d, want %d", c.amount, got, c.want)
		}
	}
}

// countingBackend runs transactions one at a time on no tables, each
// taking a while to commit, and counts them.
type countingBackend struct {
	mu  sync.Mutex
	txs int
}

func (b *countingBackend) update(ctx context.Context, fn func(tables) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.txs++
	err := fn(nil)
	time.Sleep(200 * time.Microsecond)
	return err
}

func (b *countingBackend) view(ctx context.Context, fn func(tables) error) error {
	return errors.New("no views here")
}

func (b *countingBackend) close() error { return nil }

// A grouper's transactions hold a step of most of its callers, not just
// of those that happen to be waiting when the last one commits; and a
// failing step fails its group alone.
func TestGrouper(t *testing.T) {
	const callers, steps = 8, 200
	b := &countingBackend{}
	g := &grouper{backend: b}
	ctx := context.Background()
	var ran atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range steps {
				if err := g.update(ctx, func(tables) error { ran.Add(1); return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if ran.Load() != callers*steps {
		t.Fatalf("%d steps ran, want %d", ran.Load(), callers*steps)
	}
	// A step of every caller in each transaction but the first: 8 each.
	// Taking only the steps waiting when a transaction commits made 4.
	if per := float64(callers*steps) / float64(b.txs); per < callers*3/4 {
		t.Errorf("%d transactions for %d steps, %.1f steps each; want at least %d", b.txs, callers*steps, per, callers*3/4)
	}

	bad := errors.New("bad step")
	if err := g.update(ctx, func(tables) error { return bad }); err != bad {
		t.Errorf("a failing step: %v", err)
	}
	if err := g.update(ctx, func(tables) error { return nil }); err != nil {
		t.Errorf("the step after a failing one: %v", err)
	}
}
