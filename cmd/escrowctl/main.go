// Command escrowctl inspects and maintains a file store (storage/filestore)
// while no program has it open.
//
// Usage:
//
//	escrowctl check [-ratings] DIR    verify every checksum and the ledger's invariants
//	escrowctl stats DIR               sizes, records, accounts and escrows by state
//	escrowctl dump [-escrow ID] DIR   the event outbox, or one escrow's history, as JSON lines
//	escrowctl compact DIR             write a snapshot and drop the log it covers
//
// check exits with status 1 on any problem: damaged files (opening a store
// verifies every checksum it reads) or a broken invariant. With -ratings it
// also recomputes every reputation aggregate under the default reputation
// policy, which is right only for hosts that use it.
//
// Opening a store drops a torn record at the end of its log, as any open
// does; apart from that only compact writes.
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
	"slices"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
)

func main() {
	err := run(os.Stdout, os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "escrowctl:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  escrowctl check [-ratings] DIR
  escrowctl stats DIR
  escrowctl dump [-escrow ID] DIR
  escrowctl compact DIR
`

// run is the whole program but for the exit status.
func run(w io.Writer, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(w, usage)
		return flag.ErrHelp
	}
	cmd := args[0]
	flags := flag.NewFlagSet("escrowctl "+cmd, flag.ContinueOnError)
	flags.SetOutput(w)
	flags.Usage = func() { fmt.Fprint(w, usage) }
	ratings := flags.Bool("ratings", false, "check: also recompute reputation under the default policy")
	escrowID := flags.String("escrow", "", "dump: only this escrow's history")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return flag.ErrHelp
	}
	// Refuse a mistyped command before opening the store: Open takes the
	// lock and may repair a torn tail.
	if !slices.Contains([]string{"check", "stats", "dump", "compact"}, cmd) {
		flags.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
	dir := flags.Arg(0)
	if _, err := os.Stat(dir); err != nil {
		return err // Open would create an empty store
	}
	store, err := filestore.Open(dir, &filestore.Options{CompactRatio: -1})
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
	case "dump":
		return dump(ctx, w, store, *escrowID)
	case "compact":
		before := store.Stats()
		if err := store.Compact(); err != nil {
			return err
		}
		after := store.Stats()
		fmt.Fprintf(w, "compacted: snapshot of %d records, %d bytes; log %d → %d bytes\n",
			after.SnapshotSeq, after.SnapshotBytes, before.LogBytes, after.LogBytes)
	}
	return nil
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
	} else if err := escrow.Check(ctx, store); err != nil {
		return err
	}
	st := store.Stats()
	fmt.Fprintf(w, "ok: %d records (snapshot to %d, %d in the log), checksums and invariants hold\n",
		st.Seq, st.SnapshotSeq, st.LogRecords)
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
	st := store.Stats()
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(w, "directory  %s: %d files, %d bytes\n", abs, files, size)
	fmt.Fprintf(w, "records    %d committed; snapshot to %d (%d bytes); %d in the log (%d bytes)\n",
		st.Seq, st.SnapshotSeq, st.SnapshotBytes, st.LogRecords, st.LogBytes)
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
