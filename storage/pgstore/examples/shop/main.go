// Command shop is the escrow module's web shop example with PostgreSQL:
// -pg DSN (or ESCROW_PG_DSN, unless -data is given) keeps the shop's
// books in that database, so that several shop processes can serve one
// market:
//
//	go run ./examples/shop -pg 'postgres://user@localhost/shop' [-addr localhost:8080]
//
// Without -pg it runs as the escrow module's examples/shop does; an empty
// -pg (as -pg "$DSN" with DSN unset gives) is refused, not taken for no
// -pg. It lives in this module so that the escrow module never requires
// the PostgreSQL driver.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/internal/shop"
	"github.com/escrowkit/escrow/storage/pgstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := shop.Run(ctx, os.Stdout, os.Args[1:], shop.Options{OpenPG: openPG}); err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Fatal("shop: ", err)
	}
}

// openPG opens the PostgreSQL store dsn names, with pgstore's defaults.
func openPG(ctx context.Context, dsn string) (escrow.Storage, error) {
	return pgstore.Open(ctx, dsn, nil)
}
