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
// release, as any program's open does. Every command refuses a directory
// that holds no store, or a file in its place, as "not an escrow store"
// rather than create one.
//
// check reports a problem on damaged files (opening a store verifies every
// checksum it reads), a broken invariant, or a torn tail: a write cut short
// by a crash, or damage to the last record, which the next open for
// writing drops. With -ratings it also recomputes every reputation
// aggregate under the default reputation policy, which is right only for
// hosts that use it. stats shows a torn tail; compact says what it dropped.
//
// Errors and the usage go to standard error. The exit status is 0 when
// all is well, 1 when a problem was found, the store could not be opened
// or the output could not be written, and 2 for a command line that makes
// no sense, such as a flag given twice, an empty DIR, or dump -escrow with
// an ID that no escrow can have (empty, over 128 bytes, a system
// account's, or with a control character: the ledger's rule for an ID);
// -h prints the usage and exits 0.
//
// The commands are in internal/escrowctl. check, stats and dump also work
// on a PostgreSQL store (storage/pgstore), run from that store's module,
// which adds -pg DSN in place of DIR (an empty DSN, as an unset variable
// gives, is a usage error, not the driver's defaults):
//
//	cd storage/pgstore && go run ./cmd/escrowctl check -pg 'postgres://user@localhost/market'
//
// A database that has not let the store open within 30 seconds (a server
// that takes the connection and never answers) is a problem: the command
// says so and exits 1. A connect_timeout in the DSN can make it sooner.
package main

import (
	"os"

	"github.com/escrowkit/escrow/internal/escrowctl"
)

func main() {
	os.Exit(escrowctl.ExitStatus(os.Stderr, escrowctl.Run(os.Stdout, os.Args[1:], escrowctl.Options{}), escrowctl.Options{}))
}
