// Command marketplace is the escrow module's marketplace example with
// PostgreSQL: -pg DSN (or ESCROW_PG_DSN, unless -store or -data is given)
// keeps the market's books in that database, and running it again
// continues the same market a month later:
//
//	go run ./examples/marketplace -pg 'postgres://user@localhost/market'
//
// Without -pg it runs as the escrow module's examples/marketplace does.
// An empty -pg (as -pg "$DSN" with DSN unset gives) is refused, not
// taken for no -pg. It lives in this module so that the escrow module
// never requires the PostgreSQL driver.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/internal/marketplace"
	"github.com/escrowkit/escrow/storage/pgstore"
)

func main() {
	err := marketplace.Run(os.Stdout, os.Args[1:], marketplace.Options{OpenPG: openPG})
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "marketplace:", err)
		os.Exit(1)
	}
}

// openPG opens the PostgreSQL store dsn names, with pgstore's defaults.
func openPG(ctx context.Context, dsn string) (escrow.Storage, error) {
	return pgstore.Open(ctx, dsn, nil)
}
