// Command shop runs a small web shop on the escrow ledger, to see a
// guaranteed trade from both sides: a buyer orders a teapot and pays, the
// money is held, the seller ships, the buyer confirms (or asks for a
// refund, or calls the arbiter), and each rates the other. One page shows
// it all: the orders of whoever you act as, what each may do next, every
// order's timeline of events, the balances and the seller's reputation.
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
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Fatal("shop: ", err)
	}
}

func run(w io.Writer, args []string) error {
	flags := flag.NewFlagSet("shop", flag.ContinueOnError)
	flags.SetOutput(w)
	addr := flags.String("addr", "localhost:8080", "the address to listen on")
	data := flags.String("data", "", "the file store's directory (default: a new temporary one, removed at exit)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "shop-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	store, err := filestore.Open(dir, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	shop, err := newShop(ctx, store, escrow.SystemClock{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "shop: open http://%s/\n", ln.Addr())
	srv := &http.Server{Handler: shop}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
