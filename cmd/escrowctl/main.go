// Command escrowctl inspects and maintains a file store (storage/filestore).
//
// Usage:
//
//	escrowctl check [-ratings] DIR    verify every checksum and the ledger's invariants
//	escrowctl stats DIR               sizes, records, accounts and escrows by state
//	escrowctl dump [-escrow ID] DIR   the event outbox, or one escrow's history, as JSON lines
//	escrowctl compact DIR             write a snapshot and drop the log it covers
//
// check, stats and dump open the store read-only: they change nothing in
// DIR (they create no file, and report a torn tail at the end of the log
// instead of truncating it), and they may run side by side, but not while
// a program has the store open: then they fail, naming its process where
// the system allows. While one runs, a program cannot open the store.
// compact opens the store for writing, which drops a torn tail, and starts
// a new log segment in the current format for a store written by an older
// release, as any program's open does. Every command refuses a directory that holds no
// store ("not an escrow store") rather than create one.
//
// check reports a problem on damaged files (opening a store verifies every
// checksum it reads), a broken invariant, or a torn tail: a write cut short
// by a crash, or damage to the last record, which the next open for
// writing drops. With -ratings it also recomputes every reputation
// aggregate under the default reputation policy, which is right only for
// hosts that use it. stats shows a torn tail; compact says what it dropped.
//
// Errors and the usage go to standard error. The exit status is 0 when
// all is well, 1 when a problem was found or the store could not be
// opened, and 2 for a command line that makes no sense; -h prints the
// usage and exits 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
)

func main() {
	os.Exit(exitStatus(os.Stderr, run(os.Stdout, os.Args[1:])))
}

const usage = `usage:
  escrowctl check [-ratings] DIR
  escrowctl stats DIR
  escrowctl dump [-escrow ID] DIR
  escrowctl compact DIR
`

// A usageError is a command line that makes no sense.
type usageError string

func (e usageError) Error() string { return string(e) }

// exitStatus reports err on stderr and returns the exit status for it.
func exitStatus(stderr io.Writer, err error) int {
	var usageErr usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stderr, usage)
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "escrowctl: %s\n%s", usageErr, usage)
		return 2
	}
	fmt.Fprintln(stderr, "escrowctl:", message(err))
	return 1
}

// message is err's text without the prefixes that name the package each
// wrapped error came from: here escrowctl's is the one that counts.
func message(err error) string {
	msg := err.Error()
	for _, prefix := range []string{"filestore: ", "escrow: "} {
		msg = strings.TrimPrefix(msg, prefix)
		msg = strings.ReplaceAll(msg, ": "+prefix, ": ")
	}
	return msg
}

// run is the whole program but for reporting errors and the exit status.
func run(w io.Writer, args []string) error {
	if len(args) == 0 {
		return usageError("no command")
	}
	cmd := args[0]
	flags := flag.NewFlagSet("escrowctl "+cmd, flag.ContinueOnError)
	flags.SetOutput(io.Discard) // exitStatus reports the error
	ratings := flags.Bool("ratings", false, "check: also recompute reputation under the default policy")
	escrowID := flags.String("escrow", "", "dump: only this escrow's history")
	if err := flags.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		return err
	} else if err != nil {
		return usageError(err.Error())
	}
	// Refuse a mistyped command before opening the store.
	if !slices.Contains([]string{"check", "stats", "dump", "compact"}, cmd) {
		return usageError(fmt.Sprintf("unknown command %q", cmd))
	}
	if flags.NArg() != 1 {
		return usageError(cmd + " takes one directory")
	}
	dir := flags.Arg(0)
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	if cmd == "compact" {
		return compact(w, dir)
	}
	store, err := filestore.Open(dir, &filestore.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer store.Close()
	ctx := context.Background()
	switch cmd {
	case "check":
		return check(ctx, w, store, *ratings)
	case "stats":
		return stats(ctx, w, dir, store)
	default:
		return dump(ctx, w, store, *escrowID)
	}
}

// compact opens the store for writing, which drops a torn tail, and
// compacts it. A read-only open first refuses a directory that holds no
// store, which opening for writing would make into one.
func compact(w io.Writer, dir string) error {
	store, err := filestore.Open(dir, &filestore.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	store.Close()
	if store, err = filestore.Open(dir, &filestore.Options{CompactRatio: -1}); err != nil {
		return err
	}
	defer store.Close()
	before := store.Stats()
	if before.TornTail.Bytes > 0 {
		fmt.Fprintf(w, "dropped a torn tail: %s\n", tornTail(before.TornTail))
	}
	if err := store.Compact(); err != nil {
		return err
	}
	after := store.Stats()
	fmt.Fprintf(w, "compacted: snapshot of %d records, %d bytes; log %d → %d bytes\n",
		after.SnapshotSeq, after.SnapshotBytes, before.LogBytes, after.LogBytes)
	return nil
}

// tornTail describes a torn tail in a few words.
func tornTail(t filestore.TornTail) string {
	s := fmt.Sprintf("%s: %d bytes at offset %d", t.File, t.Bytes, t.Offset)
	if t.FirstSeq > 0 {
		s += fmt.Sprintf(", holding records %d to %d", t.FirstSeq, t.LastSeq)
	}
	return s
}

func check(ctx context.Context, w io.Writer, store *filestore.Store, ratings bool) error {
	if ratings {
		// The ledger's Check is the store's Check plus reputation.
		l, err := escrow.New(ctx, store, nil)
		if err != nil {
			return err
		}
		if err := l.Check(ctx); err != nil {
			return err
		}
	} else if err := escrow.CheckMoney(ctx, store); err != nil {
		return err
	}
	if err := store.VerifyTables(); err != nil {
		return err
	}
	st := store.Stats()
	if st.TornTail.Bytes > 0 {
		return fmt.Errorf("torn tail in %s; the %d records before it check out, and the next open for writing drops it",
			tornTail(st.TornTail), st.Seq)
	}
	fmt.Fprintf(w, "ok: %d records (snapshot to %d, %d in the log), %d cold tables, checksums and invariants hold\n",
		st.Seq, st.SnapshotSeq, st.LogRecords, st.Tables)
	return nil
}

func stats(ctx context.Context, w io.Writer, dir string, store *filestore.Store) error {
	var files int
	var size int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return err
		}
		files++
		size += info.Size()
	}
	var accounts, events int
	byState := map[escrow.State]int{}
	err = store.View(ctx, func(tx escrow.Tx) error {
		if err := tx.Accounts(func(escrow.Account) error { accounts++; return nil }); err != nil {
			return err
		}
		if err := tx.Escrows(func(e escrow.Escrow) error { byState[e.State]++; return nil }); err != nil {
			return err
		}
		for after := uint64(0); ; {
			page, err := tx.Events(after, 4096)
			if err != nil || len(page) == 0 {
				return err
			}
			events += len(page)
			after = page[len(page)-1].Seq
		}
	})
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(w, "directory  %s: %d files, %d bytes\n", abs, files, size)
	st := store.Stats()
	records(w, st)
	tiers(w, st)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(w, "memory     %d bytes of heap in use after reading every record, %d obtained from the system\n", m.HeapInuse, m.Sys)
	fmt.Fprintf(w, "accounts   %d\n", accounts)
	fmt.Fprintf(w, "events     %d\n", events)
	total := 0
	for _, n := range byState {
		total += n
	}
	fmt.Fprintf(w, "escrows    %d\n", total)
	for _, s := range escrow.States() {
		if byState[s] > 0 {
			fmt.Fprintf(w, "  %-22s %d\n", s, byState[s])
		}
	}
	return nil
}

// records writes the lines of stats about the store's files: its records,
// a torn tail the open found, and why the last compaction failed, if it
// did.
func records(w io.Writer, st filestore.Stats) {
	fmt.Fprintf(w, "records    %d committed; snapshot to %d (%d bytes); %d in the log (%d bytes)\n",
		st.Seq, st.SnapshotSeq, st.SnapshotBytes, st.LogRecords, st.LogBytes)
	if st.TornTail.Bytes > 0 {
		fmt.Fprintf(w, "torn tail  %s (the next open for writing drops it)\n", tornTail(st.TornTail))
	}
	if st.CompactError != nil {
		fmt.Fprintf(w, "compaction failed: %v\n", st.CompactError)
	}
}

// tiers writes the lines of stats about where the records are: the last
// checkpoint and the log since, the cold tables and their cache.
func tiers(w io.Writer, st filestore.Stats) {
	checkpoint := "none recorded"
	if !st.LastCheckpoint.IsZero() {
		checkpoint = st.LastCheckpoint.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "checkpoint %s; %d records and %d bytes of log since\n", checkpoint, st.LogRecords, st.LogBytes)
	fmt.Fprintf(w, "tables     %d cold tables, %d bytes, %d keys; %d bytes of their indexes and filters in memory\n",
		st.Tables, st.TableBytes, st.TableRecords, st.TableMemBytes)
	fmt.Fprintf(w, "cache      %d of %d bytes; %d hits, %d misses\n", st.CacheBytes, st.CacheMaxBytes, st.CacheHits, st.CacheMisses)
}

// dump writes events as JSON lines: all of them, or those of one escrow.
func dump(ctx context.Context, w io.Writer, store *filestore.Store, escrowID string) error {
	enc := json.NewEncoder(w)
	found := escrowID == ""
	err := store.View(ctx, func(tx escrow.Tx) error {
		if escrowID != "" {
			if _, err := tx.Escrow(escrowID); err != nil {
				return fmt.Errorf("escrow %q: %w", escrowID, err)
			}
		}
		for after := uint64(0); ; {
			page, err := tx.Events(after, 4096)
			if err != nil || len(page) == 0 {
				return err
			}
			for _, ev := range page {
				if escrowID != "" && ev.Escrow != escrowID {
					continue
				}
				found = true
				if err := enc.Encode(ev); err != nil {
					return err
				}
			}
			after = page[len(page)-1].Seq
		}
	})
	if err == nil && !found {
		err = fmt.Errorf("escrow %q has no events", escrowID)
	}
	return err
}
