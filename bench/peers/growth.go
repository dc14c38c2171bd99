package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// childCommand, as the first argument, runs this binary as the fresh
// process that growth measures a store in. It is not for people.
const childCommand = "_measure"

// The probe a child makes: the first trade built, which is the oldest,
// and a buyer's journal.
const (
	probeTrade   = "t1"
	probeAccount = "buyer-0"
)

// A measurement is what a child process saw, sent back as JSON.
type measurement struct {
	Open  time.Duration // opening the store until it is ready for calls
	Probe time.Duration // one escrow and one page of the journal
	// Memory of the process, in KiB, from /proc/self/status (-1 where
	// there is none): after the open and the probe, and after a
	// runtime.GC.
	RSS, HWM, RSSAnon, RSSFile int64
	RSSAfterGC                 int64
	HeapAfterGC                int64 // Go heap in use after the GC, KiB
	Stats                      string
}

// child opens the store named by its flags, measures, and writes a
// measurement to stdout.
func child(args []string) int {
	fl := flag.NewFlagSet(childCommand, flag.ContinueOnError)
	name := fl.String("store", "", "")
	dir := fl.String("dir", "", "")
	if fl.Parse(args) != nil {
		return 2
	}
	k, ok := kindNamed(*name)
	if !ok {
		fmt.Fprintf(os.Stderr, "no store %q\n", *name)
		return 2
	}
	m, err := measureHere(k, *dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", k.name, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(m); err != nil {
		return 1
	}
	return 0
}

func measureHere(k kind, dir string) (measurement, error) {
	var m measurement
	start := time.Now()
	s, err := k.open(dir, mode{})
	if err != nil {
		return m, err
	}
	m.Open = time.Since(start)
	err = m.probe(s)
	if cerr := s.close(); err == nil {
		err = cerr
	}
	return m, err
}

// probe reads from the open store s, and then the process's memory.
func (m *measurement) probe(s store) error {
	start := time.Now()
	if err := s.probe(context.Background(), probeTrade, probeAccount); err != nil {
		return err
	}
	m.Probe = time.Since(start)
	mem := procStatus()
	m.RSS, m.HWM, m.RSSAnon, m.RSSFile = mem["VmRSS"], mem["VmHWM"], mem["RssAnon"], mem["RssFile"]
	runtime.GC()
	m.RSSAfterGC = procStatus()["VmRSS"]
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.HeapAfterGC = int64(ms.HeapInuse / 1024)
	if ls, ok := s.(*ledgerStore); ok {
		m.Stats = ls.stats()
	}
	return nil
}

// procStatus reads the memory lines of /proc/self/status, in KiB. A line
// it cannot read reads as -1.
func procStatus() map[string]int64 {
	out := map[string]int64{"VmRSS": -1, "VmHWM": -1, "RssAnon": -1, "RssFile": -1}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if _, want := out[name]; !ok || !want {
			continue
		}
		f := strings.Fields(value)
		if len(f) == 2 && f[1] == "kB" {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				out[name] = n
			}
		}
	}
	return out
}

// measureInChild runs this binary again to measure the store in dir.
func measureInChild(k kind, dir string) (measurement, error) {
	var m measurement
	exe, err := os.Executable()
	if err != nil {
		return m, err
	}
	cmd := exec.Command(exe, childCommand, "-store", k.name, "-dir", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return m, fmt.Errorf("measuring in a child process: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	err = json.Unmarshal(out, &m)
	return m, err
}

// A built store is one of n finished trades, closed.
type built struct {
	build time.Duration
	bytes int64 // total size of the files in its directory
}

// buildStore fills a new store of kind k in dir with n finished trades,
// traded by workers, checks that the money adds up, and closes it.
func buildStore(k kind, dir string, n, workers int, md mode) (built, error) {
	var b built
	start := time.Now()
	s, err := k.open(dir, md)
	if err != nil {
		return b, err
	}
	err = fill(s, n, workers)
	if cerr := s.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return b, err
	}
	b.build = time.Since(start)
	b.bytes, err = dirBytes(dir)
	return b, err
}

func fill(s store, n, workers int) error {
	ctx := context.Background()
	m, err := newMarket(ctx, s, min(workers, n))
	if err != nil {
		return err
	}
	var next atomic.Int64
	if err := m.run(ctx, "t", func() (int64, bool) {
		i := next.Add(1)
		return i, i <= int64(n)
	}); err != nil {
		return err
	}
	return m.verify(ctx)
}

func dirBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	return total, err
}

// A growthResult is one store of one size, built and measured.
type growthResult struct {
	built
	measurement
}

func measureGrowth(cfg config, k kind, dir string, n int) (growthResult, error) {
	var r growthResult
	var err error
	if r.built, err = buildStore(k, dir, n, cfg.buildWorkers, mode{noSync: !cfg.buildSync, grouped: cfg.buildGrouped}); err != nil {
		return r, fmt.Errorf("building: %w", err)
	}
	// A store built without fsync leaves its files to the kernel to write
	// back, which would then compete with the open measured next; a store
	// closed cleanly has them on disk already.
	syncAll()
	if r.measurement, err = measureInChild(k, dir); err != nil {
		return r, err
	}
	if cfg.verbose {
		fmt.Printf("  %s, %s trades: built in %v, %s bytes; opened in %v, probe %v; RssAnon %s, RssFile %s, Go heap after GC %s\n",
			k.name, thousands(int64(n)), roundDuration(r.build), thousands(r.bytes), roundDuration(r.Open),
			roundDuration(r.Probe), mib(r.RSSAnon), mib(r.RSSFile), mib(r.HeapAfterGC))
		if r.Stats != "" {
			fmt.Printf("    filestore.Stats: %s\n", r.Stats)
		}
	}
	return r, nil
}

func growthTable(cfg config, base string) error {
	build := "without fsync"
	if cfg.buildSync {
		build = "with fsync"
	}
	if cfg.buildGrouped {
		build += ", the peers' steps grouped in shared transactions"
	} else {
		build += ", each step its own transaction"
	}
	fmt.Printf("Growth: a store of N finished trades, built by %d workers %s (see -h),\n", cfg.buildWorkers, build)
	fmt.Printf("closed, and opened in a fresh process that reads trade %s and a page of %s's journal.\n", probeTrade, probeAccount)
	fmt.Println("RSS is after the open and the read, peak is VmHWM, GC is the RSS after runtime.GC. Ratios to filestore.")
	for _, n := range cfg.growth {
		rows := [][]string{{"N=" + thousands(int64(n)), "build", "open", "", "RSS", "", "peak", "", "GC", "disk/trade", ""}}
		var afterTable []killed
		results := map[string]growthResult{}
		for _, k := range cfg.stores {
			if !k.growth {
				continue
			}
			dir := filepath.Join(base, fmt.Sprintf("growth-%s-%d", k.name, n))
			r, err := measureGrowth(cfg, k, dir, n)
			if err == nil && cfg.kill && k.name == "filestore" {
				var kr killed
				if kr, err = measureKilled(dir); err == nil {
					afterTable = append(afterTable, kr)
				}
			}
			if !cfg.keep {
				os.RemoveAll(dir)
			}
			if err != nil {
				return fmt.Errorf("%s, %d trades: %w", k.name, n, err)
			}
			results[k.name] = r
			f := results["filestore"] // zero, and no ratios, without it
			perTrade := float64(r.bytes) / float64(n)
			rows = append(rows, []string{k.name, roundDuration(r.build),
				roundDuration(r.Open), ratio(float64(r.Open), float64(f.Open)),
				mib(r.RSS), ratio(float64(r.RSS), float64(f.RSS)),
				mib(r.HWM), ratio(float64(r.HWM), float64(f.HWM)),
				mib(r.RSSAfterGC),
				fmt.Sprintf("%.0f B", perTrade), ratio(perTrade, float64(f.bytes)/float64(n))})
		}
		table(rows)
		for _, kr := range afterTable {
			printKilled(kr)
		}
	}
	return nil
}

// check builds the file store alone and holds its open time and peak RSS
// to the bounds the flags give.
func check(cfg config, base string) error {
	k, _ := kindNamed("filestore")
	dir := filepath.Join(base, "check-filestore")
	if !cfg.keep {
		defer os.RemoveAll(dir)
	}
	r, err := measureGrowth(cfg, k, dir, cfg.checkTrades)
	if err != nil {
		return err
	}
	fmt.Printf("filestore with %s finished trades (%s bytes on disk, %.0f B a trade), in a fresh process:\n",
		thousands(int64(cfg.checkTrades)), thousands(r.bytes), float64(r.bytes)/float64(cfg.checkTrades))
	fmt.Printf("  open:      %v (bound %s)\n", roundDuration(r.Open), bound(cfg.maxOpen > 0, cfg.maxOpen.String()))
	fmt.Printf("  peak RSS:  %s (bound %s)\n", mib(r.HWM), bound(cfg.maxRSSMiB > 0, strconv.FormatFloat(cfg.maxRSSMiB, 'f', -1, 64)+" MiB"))
	fmt.Printf("  RSS after the open and a read: %s; after runtime.GC: %s\n", mib(r.RSS), mib(r.RSSAfterGC))
	if r.Stats != "" && cfg.verbose {
		fmt.Printf("  filestore.Stats: %s\n", r.Stats)
	}
	var failed []string
	if cfg.kill {
		kr, err := measureKilled(dir)
		if err != nil {
			return err
		}
		printKilled(kr)
		if cfg.maxKillOpen > 0 && kr.Open > cfg.maxKillOpen {
			failed = append(failed, fmt.Sprintf("opening after the SIGKILL took %v, more than -max-kill-open %v", roundDuration(kr.Open), cfg.maxKillOpen))
		}
	}
	if cfg.maxOpen > 0 && r.Open > cfg.maxOpen {
		failed = append(failed, fmt.Sprintf("opening took %v, more than -max-open %v", roundDuration(r.Open), cfg.maxOpen))
	}
	if cfg.maxRSSMiB > 0 {
		if r.HWM < 0 {
			failed = append(failed, "peak RSS is unknown here (no /proc/self/status), and -max-rss-mib asks for it")
		} else if float64(r.HWM)/1024 > cfg.maxRSSMiB {
			failed = append(failed, fmt.Sprintf("peak RSS was %s, more than -max-rss-mib %s MiB", mib(r.HWM), strconv.FormatFloat(cfg.maxRSSMiB, 'f', -1, 64)))
		}
	}
	if len(failed) > 0 {
		return errors.New("check failed: " + strings.Join(failed, "; "))
	}
	fmt.Println("check passed")
	return nil
}

func bound(set bool, s string) string {
	if !set {
		return "none given"
	}
	return s
}
