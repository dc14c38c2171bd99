// Package shop is the program of examples/shop, importable so that a
// module with another store's driver (storage/pgstore) can serve the same
// shop on its store; see examples/shop for what it does.
package shop

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
)

// Options are what the host program adds to the shop.
type Options struct {
	// OpenPG, if not nil, opens a PostgreSQL store from a connection
	// string: Run then offers -pg DSN, which keeps the books there
	// instead of in -data (ESCROW_PG_DSN by default, unless -data is
	// given). An empty -pg names no database and is refused.
	OpenPG func(ctx context.Context, dsn string) (escrow.Storage, error)
}

// Run serves the shop until ctx ends.
func Run(ctx context.Context, w io.Writer, args []string, o Options) error {
	flags := flag.NewFlagSet("shop", flag.ContinueOnError)
	flags.SetOutput(w)
	addr := flags.String("addr", "localhost:8080", "the address to listen on")
	data := flags.String("data", "", "the file store's directory (default: a new temporary one, removed at exit)")
	var pg *string
	if o.OpenPG != nil {
		// The variable is read after the flags, not made the flag's
		// default, so that -h does not print it (a DSN may hold a
		// password) and an explicit -data wins over it.
		pg = flags.String("pg", "", "a PostgreSQL connection string: keep the books in that database instead of -data\n"+
			"(default $ESCROW_PG_DSN, unless -data is given)")
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	if pg != nil && given(flags, "pg") && *pg == "" {
		// -pg "$DSN" with DSN unset: no database, and not a reason to
		// keep the books somewhere else instead.
		return errors.New("-pg needs a connection string")
	}
	if pg != nil && !given(flags, "pg") && !given(flags, "data") {
		*pg = os.Getenv("ESCROW_PG_DSN")
	}
	var store escrow.Storage
	var err error
	if pg != nil && *pg != "" {
		store, err = o.OpenPG(ctx, *pg)
	} else {
		store, err = openDir(*data)
	}
	if err != nil {
		return err
	}
	defer store.Close()
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

// given reports whether the command line set the flag name.
func given(flags *flag.FlagSet, name string) bool {
	set := false
	flags.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// openDir opens the file store in dir, or in a new temporary directory
// that its Close removes.
func openDir(dir string) (escrow.Storage, error) {
	if dir != "" {
		return filestore.Open(dir, nil)
	}
	tmp, err := os.MkdirTemp("", "shop-")
	if err != nil {
		return nil, err
	}
	store, err := filestore.Open(tmp, nil)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return removeOnClose{store, tmp}, nil
}

// removeOnClose is a store in a temporary directory, removed on Close.
type removeOnClose struct {
	*filestore.Store
	dir string
}

func (s removeOnClose) Close() error {
	err := s.Store.Close()
	if rmErr := os.RemoveAll(s.dir); err == nil {
		err = rmErr
	}
	return err
}
