package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// fillCommand, as the first argument, runs this binary as a process that
// opens the file store in -dir, trades on it until the log since its last
// checkpoint is nearly what starts the next one, says so on stdout and
// waits to be killed. It is not for people.
const fillCommand = "_fill"

// The file store's documented defaults: a checkpoint starts once the log
// since the last one passes CompactMinBytes, 16 MiB, and a quarter of the
// snapshot. fillShare of that is the most log an Open after a crash finds
// with the defaults, short of the checkpoint it would have started.
const (
	defaultCompactMinBytes = 16 << 20
	defaultCompactRatio    = 0.25
	fillShare              = 0.9
)

func fillChild(args []string) int {
	fl := flag.NewFlagSet(fillCommand, flag.ContinueOnError)
	dir := fl.String("dir", "", "")
	if fl.Parse(args) != nil {
		return 2
	}
	s, err := openFilestore(*dir, mode{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fs := s.(*ledgerStore).file
	st := fs.Stats()
	target := int64(fillShare * max(defaultCompactMinBytes, defaultCompactRatio*float64(st.SnapshotBytes)))
	ctx := context.Background()
	const workers = 16
	m := &market{s: s, workers: workers, trades: make([]int64, workers)}
	var next atomic.Int64
	prefix := "k" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" // new trades on every run
	err = m.run(ctx, prefix, func() (int64, bool) {
		return next.Add(1), fs.Stats().LogBytes < target
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Every trade so far is durable; the store is not closed.
	fmt.Println(fs.Stats().LogBytes)
	select {}
}

// A killed store is what an Open after a SIGKILL found.
type killed struct {
	logBytes int64 // log since the last checkpoint when the process died
	measurement
}

// measureKilled has a child process trade on the file store in dir until
// it holds nearly the most log the default checkpoints allow, kills it
// with SIGKILL, and measures an Open of what it left in a fresh process.
func measureKilled(dir string) (killed, error) {
	var r killed
	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	cmd := exec.Command(exe, fillCommand, "-dir", dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		return r, err
	}
	line, rerr := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill() // SIGKILL where there are signals
	cmd.Wait()
	if rerr != nil {
		return r, fmt.Errorf("filling the log in a child process: %v: %s", rerr, strings.TrimSpace(stderr.String()))
	}
	if r.logBytes, err = strconv.ParseInt(strings.TrimSpace(line), 10, 64); err != nil {
		return r, fmt.Errorf("filling the log: the child said %q", line)
	}
	k, _ := kindNamed("filestore")
	r.measurement, err = measureInChild(k, dir)
	return r, err
}

func printKilled(r killed) {
	fmt.Printf("  after a SIGKILL with %s of log since the last checkpoint: open %v, RSS %s\n",
		mib(r.logBytes/1024), roundDuration(r.Open), mib(r.RSS))
}
