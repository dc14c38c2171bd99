package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// fundAmount is what each buyer deposits: enough for any run.
const fundAmount = 1_000_000_000_000

func buyerOf(w int) string  { return "buyer-" + strconv.Itoa(w) }
func sellerOf(w int) string { return "seller-" + strconv.Itoa(w) }

// A market is a store with its workers' accounts, funded.
type market struct {
	s       store
	workers int
	// trades counts each worker's finished trades.
	trades []int64
}

func newMarket(ctx context.Context, s store, workers int) (*market, error) {
	for w := range workers {
		if err := s.fund(ctx, buyerOf(w), sellerOf(w), fundAmount); err != nil {
			return nil, fmt.Errorf("funding worker %d: %w", w, err)
		}
	}
	return &market{s: s, workers: workers, trades: make([]int64, workers)}, nil
}

// run has the workers trade, each between its own buyer and seller,
// taking trade numbers from next until more returns false. Trade n's ID is
// prefix and n. It returns the first error.
func (m *market) run(ctx context.Context, prefix string, more func() (n int64, ok bool)) error {
	var wg sync.WaitGroup
	errs := make([]error, m.workers)
	for w := range m.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buyer, seller := buyerOf(w), sellerOf(w)
			buf := []byte(prefix)
			for {
				n, ok := more()
				if !ok {
					return
				}
				buf = strconv.AppendInt(buf[:len(prefix)], n, 10)
				if err := m.s.trade(ctx, string(buf), buyer, seller); err != nil {
					errs[w] = fmt.Errorf("trade %s: %w", buf, err)
					return
				}
				m.trades[w]++
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *market) total() int64 {
	var n int64
	for _, t := range m.trades {
		n += t
	}
	return n
}

// verify checks that the money adds up after the trades: each buyer paid
// the price of each of its trades and holds nothing, each seller received
// the price less the fee, and the fee account has every fee. A store that
// skipped work would be fast for the wrong reason.
func (m *market) verify(ctx context.Context) error {
	f := fee(price, feeRatePPM)
	for w, n := range m.trades {
		a, h, err := m.s.balance(ctx, buyerOf(w))
		if err != nil {
			return err
		}
		if want := fundAmount - n*price; a != want || h != 0 {
			return fmt.Errorf("%s has %d available and %d held after %d trades, want %d and 0", buyerOf(w), a, h, n, want)
		}
		if a, h, err = m.s.balance(ctx, sellerOf(w)); err != nil {
			return err
		}
		if want := n * (price - f); a != want || h != 0 {
			return fmt.Errorf("%s has %d available and %d held after %d trades, want %d and 0", sellerOf(w), a, h, n, want)
		}
	}
	a, _, err := m.s.balance(ctx, feeAccount)
	if err != nil {
		return err
	}
	if want := m.total() * f; a != want {
		return fmt.Errorf("%s has %d after %d trades, want %d", feeAccount, a, m.total(), want)
	}
	return nil
}

// A cell is one store's throughput at one number of workers.
type cell struct {
	trades  int64
	elapsed time.Duration
	stats   string // the file store's Stats after the run
}

func (c cell) rate() float64 { return float64(c.trades) / c.elapsed.Seconds() }

// measureThroughput runs workers for d on a new store of kind k in dir.
func measureThroughput(k kind, dir string, workers int, d time.Duration) (cell, error) {
	s, err := k.open(dir, mode{})
	if err != nil {
		return cell{}, err
	}
	c, err := runFor(s, workers, d)
	if cerr := s.close(); err == nil {
		err = cerr
	}
	return c, err
}

// runFor has workers trade on s for d, and checks the money.
func runFor(s store, workers int, d time.Duration) (cell, error) {
	ctx := context.Background()
	m, err := newMarket(ctx, s, workers)
	if err != nil {
		return cell{}, err
	}
	var mu sync.Mutex
	var next int64
	start := time.Now()
	deadline := start.Add(d)
	err = m.run(ctx, "e", func() (int64, bool) {
		if time.Now().After(deadline) {
			return 0, false
		}
		mu.Lock()
		defer mu.Unlock()
		next++
		return next, true
	})
	c := cell{trades: m.total(), elapsed: time.Since(start)}
	if err != nil {
		return c, err
	}
	if err := m.verify(ctx); err != nil {
		return c, err
	}
	if ls, ok := s.(*ledgerStore); ok {
		c.stats = ls.stats()
	}
	return c, nil
}

func throughputTable(cfg config, base string) error {
	fmt.Printf("Throughput: finished trades per second (each 4 durable transactions), %v per cell, ratio to filestore\n", cfg.cellTime)
	results := make(map[string]map[int]cell)
	for _, k := range cfg.stores {
		results[k.name] = map[int]cell{}
	}
	// Each number of workers runs every store in turn, so that a change
	// in the machine's load during the run spreads over all of them.
	for _, w := range cfg.workers {
		for _, k := range cfg.stores {
			dir := filepath.Join(base, fmt.Sprintf("throughput-%s-%d", k.name, w))
			c, err := measureThroughput(k, dir, w, cfg.cellTime)
			if err != nil {
				return fmt.Errorf("%s with %s: %w", k.name, plural(w, "worker"), err)
			}
			if !cfg.keep {
				os.RemoveAll(dir)
			}
			results[k.name][w] = c
			if cfg.verbose {
				fmt.Printf("  %s, %s: %d trades in %v", k.name, plural(w, "worker"), c.trades, roundDuration(c.elapsed))
				if c.stats != "" {
					fmt.Printf("\n    filestore.Stats: %s", c.stats)
				}
				fmt.Println()
			}
		}
	}
	header := []string{"store"}
	for _, w := range cfg.workers {
		header = append(header, plural(w, "worker"), "")
	}
	rows := [][]string{header}
	for _, k := range cfg.stores {
		row := []string{k.name}
		for _, w := range cfg.workers {
			c := results[k.name][w]
			base, ok := results["filestore"][w]
			r := "-"
			if ok {
				r = ratio(c.rate(), base.rate())
			}
			row = append(row, thousands(int64(c.rate()))+"/s", r)
		}
		rows = append(rows, row)
	}
	table(rows)
	return nil
}
