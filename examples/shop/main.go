// Command shop runs a small web shop on the escrow ledger, to see a
// guaranteed trade from both sides: a buyer orders a teapot and pays, the
// money is held, the seller ships, the buyer confirms (or asks for a
// refund, sends the goods back for one, puts the deadline back, or calls
// the arbiter), and each rates the other. Several orders can be paid in
// one payment. One page shows it all: the orders of whoever you act as,
// what each may do next, every order's timeline of events, the balances
// and the seller's reputation.
//
// Usage:
//
//	go run ./examples/shop [-addr localhost:8080] [-data DIR]
//
// It prints the address to open. The books are kept in a file store in
// -data (a new temporary directory by default, removed at exit). The page
// is plain HTML forms rendered by html/template: no script and no build
// step. Acting as someone is a link, not a login: this is a demonstration.
//
// The same ledger is served as escrowhttp's JSON API under /v1/, acting
// as whoever the X-Actor header names (mei, teahouse or arbiter):
//
//	curl -H 'X-Actor: mei' http://localhost:8080/v1/escrows
//
// The program is in internal/shop. To keep the books in PostgreSQL, run it
// from the PostgreSQL store's module, which adds -pg DSN:
//
//	cd storage/pgstore && go run ./examples/shop -pg 'postgres://user@localhost/shop'
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/escrowkit/escrow/internal/shop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := shop.Run(ctx, os.Stdout, os.Args[1:], shop.Options{}); err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Fatal("shop: ", err)
	}
}
