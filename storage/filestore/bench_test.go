package filestore

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// The commit benchmarks time one transaction shaped like a deposit (two
// balances, a journal entry and an event) through Update, beside a raw
// baseline in the same run: the same bytes appended to a file and
// fdatasynced, one commit per fsync for one committer, and batches of the
// size the store's group commit achieved for many.

// benchTx writes a deposit-shaped transaction for worker w.
func benchTx(tx escrow.Tx, w int) error {
	acct := "bench-" + strconv.Itoa(w)
	now := time.Unix(1_772_000_000, 0).UTC()
	for _, b := range []escrow.Balance{
		{Account: escrow.WorldAccount, Currency: escrow.CNY, Available: escrow.RestoreMoney(-100, escrow.CNY), Held: cny(0)},
		{Account: acct, Currency: escrow.CNY, Available: cny(100), Held: cny(0)},
	} {
		if err := tx.PutBalance(b); err != nil {
			return err
		}
	}
	err := tx.AppendEntry(&escrow.Entry{At: now, Kind: escrow.EntryDeposit, Currency: escrow.CNY, Postings: []escrow.Posting{
		{Account: escrow.WorldAccount, Bucket: escrow.Available, Change: -100},
		{Account: acct, Bucket: escrow.Available, Change: 100},
	}})
	if err != nil {
		return err
	}
	return tx.AppendEvent(&escrow.Event{Type: escrow.Deposited, At: now, Account: acct, Actor: acct, Amount: cny(100)})
}

// benchFrame returns the bytes the store logs for one benchTx.
func benchFrame(b *testing.B) []byte {
	s := openT(b, b.TempDir(), &Options{NoSync: true})
	defer s.Close()
	if err := s.Update(context.Background(), func(tx escrow.Tx) error { return benchTx(tx, 0) }); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(s.dir, segName(1)))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func reportRate(b *testing.B, commits int) {
	b.ReportMetric(float64(commits)/b.Elapsed().Seconds(), "commits/s")
}

// reportP99 reports the 99th percentile of latencies.
func reportP99(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// A span is a stretch of time: a commit's, a checkpoint's.
type span struct{ from, to time.Time }

func (x span) overlaps(y span) bool { return x.from.Before(y.to) && y.from.Before(x.to) }

// commitAll makes b.N commits of benchTx to s from committers goroutines,
// with the timer running only while they do, and returns how long each
// commit took.
func commitAll(b *testing.B, s *Store, committers int) []time.Duration {
	spans := commitSpans(b, s, committers)
	lat := make([]time.Duration, len(spans))
	for i, x := range spans {
		lat[i] = x.to.Sub(x.from)
	}
	return lat
}

// commitSpans is commitAll returning when each commit began and ended.
func commitSpans(b *testing.B, s *Store, committers int) []span {
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]span, committers)
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range committers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				start := time.Now()
				if err := s.Update(ctx, func(tx escrow.Tx) error { return benchTx(tx, w) }); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], span{start, time.Now()})
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	return slices.Concat(lat...)
}

// rawFile opens a file for the raw baselines.
func rawFile(b *testing.B) *os.File {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

func BenchmarkCommit(b *testing.B) {
	// One committer: each op is one commit to the store and one raw write
	// and fdatasync of the same bytes, interleaved so that both see the
	// same disk at the same moment; each is timed on its own.
	b.Run("Serial", func(b *testing.B) {
		s := openT(b, b.TempDir(), &Options{CompactRatio: -1})
		defer s.Close()
		frame := benchFrame(b)
		f := rawFile(b)
		ctx := context.Background()
		var store, raw time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if err := s.Update(ctx, func(tx escrow.Tx) error { return benchTx(tx, 0) }); err != nil {
				b.Fatal(err)
			}
			mid := time.Now()
			if _, err := f.Write(frame); err != nil {
				b.Fatal(err)
			}
			if err := datasync(f); err != nil {
				b.Fatal(err)
			}
			store, raw = store+mid.Sub(start), raw+time.Since(mid)
		}
		b.ReportMetric(float64(b.N)/store.Seconds(), "store-commits/s")
		b.ReportMetric(float64(b.N)/raw.Seconds(), "raw-commits/s")
		b.ReportMetric(100*raw.Seconds()/store.Seconds(), "%-of-raw")
	})
	for _, committers := range []int{64, 512} {
		// batch is the mean batch of the store's run, for the baseline.
		var batch atomic.Int64
		b.Run(strconv.Itoa(committers), func(b *testing.B) {
			b.Run("Store", func(b *testing.B) {
				s := openT(b, b.TempDir(), &Options{CompactRatio: -1})
				defer s.Close()
				lat := commitAll(b, s, committers)
				reportRate(b, b.N)
				reportP99(b, lat)
				mean := float64(b.N) / float64(max(1, s.flushes.Load()))
				b.ReportMetric(mean, "commits/fsync")
				batch.Store(max(1, int64(mean+0.5)))
			})
			b.Run("Raw", func(b *testing.B) {
				frame := benchFrame(b)
				n := int(batch.Load())
				if n == 0 {
					b.Skip("run with the Store benchmark before it")
				}
				buf := slices.Repeat(frame, n)
				f := rawFile(b)
				var lat []time.Duration
				b.ResetTimer()
				for done := 0; done < b.N; done += n {
					start := time.Now()
					if _, err := f.Write(buf); err != nil {
						b.Fatal(err)
					}
					if err := datasync(f); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
				b.StopTimer()
				reportRate(b, b.N)
				reportP99(b, lat)
				b.ReportMetric(float64(n), "commits/fsync")
			})
		})
	}
}

// BenchmarkRecovery times Open of a store holding about 32 MiB of log, or
// of snapshot, and reports MB/s of files replayed.
func BenchmarkRecovery(b *testing.B) {
	for _, snapshot := range []bool{false, true} {
		name := map[bool]string{false: "Log", true: "Snapshot"}[snapshot]
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			s := openT(b, dir, &Options{NoSync: true, CompactRatio: -1})
			ctx := context.Background()
			logSize := func() int64 { s.mu.Lock(); defer s.mu.Unlock(); return s.activeBytes }
			for i := 0; logSize() < 32<<20; i++ {
				if err := s.Update(ctx, func(tx escrow.Tx) error { return benchTx(tx, i%1000) }); err != nil {
					b.Fatal(err)
				}
			}
			if snapshot {
				if err := s.Compact(); err != nil {
					b.Fatal(err)
				}
			}
			s.Close()
			var size int64
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				info, _ := e.Info()
				size += info.Size()
			}
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := Open(dir, &Options{CompactRatio: -1})
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}

// BenchmarkCheckpoint measures what checkpoints cost the commits that run
// beside them. A store holding FILESTORE_BENCH_TRADES finished trades
// (20,000 unless set) takes deposit-shaped commits from 64 committers,
// Quiet with no checkpoint and Checkpointing with one every tenth of a
// second (each moving the records since the last into a table, merging
// tables, writing a snapshot): at this rate, ten or more times as often as
// the default options would. It reports the commits' rate, their
// 99.9th percentile and their longest wait, and the checkpoints done.
// Alternating (see there) compares commits beside checkpoints with those
// between them in one run. Each run starts from a synced copy of the
// same store; with FILESTORE_BENCH_DIR set, that store is built there
// once and reused.
func BenchmarkCheckpoint(b *testing.B) {
	trades := 20_000
	if n, err := strconv.Atoi(os.Getenv("FILESTORE_BENCH_TRADES")); err == nil && n > 0 {
		trades = n
	}
	// Building a large store takes minutes: with FILESTORE_BENCH_DIR set
	// it is built once, under that directory, and reused.
	dir := os.Getenv("FILESTORE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		dir = filepath.Join(dir, "trades-"+strconv.Itoa(trades))
	}
	built := filepath.Join(dir, "built")
	if _, err := os.Stat(built); err != nil {
		os.RemoveAll(dir)
		buildTrades(b, dir, trades)
		if err := os.WriteFile(built, nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}

	for _, checkpointing := range []bool{false, true} {
		b.Run(map[bool]string{false: "Quiet", true: "Checkpointing"}[checkpointing], func(b *testing.B) {
			s := openT(b, copyStore(b, dir), &Options{CompactRatio: -1})
			defer s.Close()
			stop, stopped := make(chan struct{}), make(chan struct{})
			checkpoints := 0
			go func() {
				defer close(stopped)
				for checkpointing {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if err := s.Compact(); err != nil {
						b.Error(err)
						return
					}
					checkpoints++
				}
			}()
			all := commitAll(b, s, 64)
			close(stop)
			<-stopped
			slices.Sort(all)
			reportRate(b, b.N)
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)*999/1000].Microseconds()), "p99.9-µs")
				b.ReportMetric(float64(all[len(all)-1].Microseconds()), "max-µs")
			}
			b.ReportMetric(float64(checkpoints), "checkpoints")
		})
	}
	// Alternating compares, in one run, the commits that overlap a
	// checkpoint with those that do not, so that both see the same
	// machine: the disk and processors of a shared machine change from
	// one second to the next. After each checkpoint it waits as long as
	// the checkpoint took, and at least a tenth of a second, so that about
	// as many commits run beside checkpoints as between them.
	b.Run("Alternating", func(b *testing.B) {
		s := openT(b, copyStore(b, dir), &Options{CompactRatio: -1})
		defer s.Close()
		stop, stopped := make(chan struct{}), make(chan struct{})
		var checkpoints []span
		go func() {
			defer close(stopped)
			wait := 100 * time.Millisecond
			for {
				select {
				case <-stop:
					return
				case <-time.After(wait):
				}
				start := time.Now()
				if err := s.Compact(); err != nil {
					b.Error(err)
					return
				}
				checkpoints = append(checkpoints, span{start, time.Now()})
				wait = max(100*time.Millisecond, time.Since(start))
			}
		}()
		commits := commitSpans(b, s, 64)
		close(stop)
		<-stopped
		var during, between []time.Duration
		for _, c := range commits {
			if slices.ContainsFunc(checkpoints, c.overlaps) {
				during = append(during, c.to.Sub(c.from))
			} else {
				between = append(between, c.to.Sub(c.from))
			}
		}
		reportRate(b, b.N)
		p999 := func(lat []time.Duration) time.Duration {
			if len(lat) == 0 {
				return 0
			}
			slices.Sort(lat)
			return lat[len(lat)*999/1000]
		}
		d, q := p999(during), p999(between)
		b.ReportMetric(float64(d.Microseconds()), "during-p99.9-µs")
		b.ReportMetric(float64(q.Microseconds()), "between-p99.9-µs")
		if q > 0 {
			b.ReportMetric(float64(d)/float64(q), "during/between")
		}
		if len(during) > 0 {
			b.ReportMetric(float64(during[len(during)-1].Microseconds()), "during-max-µs")
		}
		b.ReportMetric(float64(len(during))/float64(len(commits)), "share-during")
		b.ReportMetric(float64(len(checkpoints)), "checkpoints")
	})
}

// buildTrades makes a store in dir holding trades finished trades.
func buildTrades(b *testing.B, dir string, trades int) {
	s := openT(b, dir, &Options{NoSync: true})
	ctx := context.Background()
	l, err := escrow.New(ctx, s, nil)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	const builders = 16
	for w := range builders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buyer, seller := "buyer-"+strconv.Itoa(w), "seller-"+strconv.Itoa(w)
			l.OpenAccount(ctx, buyer)
			l.OpenAccount(ctx, seller)
			if _, err := l.Deposit(ctx, buyer, cny(int64(trades)*100)); err != nil {
				b.Error(err)
				return
			}
			for i := w; i < trades; i += builders {
				id := "t" + strconv.Itoa(i)
				_, err := l.Open(ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Price: cny(100)})
				if err == nil {
					_, err = l.Pay(ctx, id, buyer)
				}
				if err == nil {
					_, err = l.Ship(ctx, id, seller, "")
				}
				if err == nil {
					_, err = l.Confirm(ctx, id, buyer)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Compact(); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

// copyStore copies the store in dir to a new directory, synced so that
// the writeback of the copy does not hold up the commits timed on it, and
// returns the new directory.
func copyStore(b *testing.B, dir string) string {
	to := b.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	copyFile := func(name string) error {
		src, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := os.OpenFile(filepath.Join(to, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(dst, src)
		if err == nil {
			err = dst.Sync()
		}
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "built" || e.Name() == "LOCK" {
			continue
		}
		if err := copyFile(e.Name()); err != nil {
			b.Fatal(err)
		}
	}
	d, err := os.Open(to)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	return to
}
