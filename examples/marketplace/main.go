// Command marketplace runs a small simulated market on the escrow ledger:
// three shops selling tea, lamps and phone cases, five buyers, a platform
// that keeps 0.6% of every sale, and an arbiter for disputes. Among the
// trades are a refund on request, a dispute, goods sent back and refunded,
// a confirmation deadline put back by both sides, and a cart from three
// shops paid in one payment. After the trades, buyers and shops rate each
// other. It prints each event from the
// ledger's outbox as it is committed, then the shops' reputations and every
// balance, and ends by checking that the books balance.
//
// Usage:
//
//	go run ./examples/marketplace [-store file|mem] [-data DIR] [-seed N]
//
// By default the books are kept in a file store in the directory
// marketplace-data, so running the program again continues the same
// market a month later: the accounts and their balances carry over, and
// the new month's orders get IDs of their own. With -store mem the market
// lives in memory and starts afresh every time. The same seed always
// prints the same run. The program is in internal/marketplace: the trades
// in trades.go, the ratings in ratings.go, and in run.go the ledger's set-up
// and the report.
//
// To keep the books in PostgreSQL instead, run the same program from the
// PostgreSQL store's module, which adds -pg DSN (see storage/pgstore):
//
//	cd storage/pgstore && go run ./examples/marketplace -pg 'postgres://user@localhost/market'
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/escrowkit/escrow/internal/marketplace"
)

func main() {
	err := marketplace.Run(os.Stdout, os.Args[1:], marketplace.Options{})
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "marketplace:", err)
		os.Exit(1)
	}
}
