// Command escrowctl is the escrow module's escrowctl with PostgreSQL: on
// top of its commands on a file store's directory, check, stats and dump
// take -pg DSN and work on a PostgreSQL store:
//
//	go run ./cmd/escrowctl check [-ratings] -pg 'postgres://user@localhost/market'
//	go run ./cmd/escrowctl stats -pg 'postgres://user@localhost/market'
//	go run ./cmd/escrowctl dump [-escrow ID] -pg 'postgres://user@localhost/market'
//
// It lives in this module so that the escrow module never requires the
// PostgreSQL driver. See the escrow module's cmd/escrowctl for the rest.
package main

import (
	"context"
	"os"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/internal/escrowctl"
	"github.com/escrowkit/escrow/storage/pgstore"
)

func main() {
	o := escrowctl.Options{OpenPG: openPG}
	os.Exit(escrowctl.ExitStatus(os.Stderr, escrowctl.Run(os.Stdout, os.Args[1:], o), o))
}

// openPG opens the PostgreSQL store dsn names, read-only: check, stats
// and dump change nothing in the database, and a database with no store
// is reported, not made into one.
func openPG(ctx context.Context, dsn string) (escrow.Storage, error) {
	return pgstore.Open(ctx, dsn, &pgstore.Options{ReadOnly: true})
}
