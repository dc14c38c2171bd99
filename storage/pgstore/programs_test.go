package pgstore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/internal/escrowctl"
	"github.com/escrowkit/escrow/internal/marketplace"
	"github.com/escrowkit/escrow/internal/shop"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/jackc/pgx/v5"
)

// The escrow module's example programs and escrowctl, run from this
// module with -pg, as cmd/escrowctl, examples/marketplace and
// examples/shop here run them.

func openPG(ctx context.Context, dsn string) (escrow.Storage, error) {
	return pgstore.Open(ctx, dsn, nil)
}

// readPG opens a store read-only, as cmd/escrowctl does.
func readPG(ctx context.Context, dsn string) (escrow.Storage, error) {
	return pgstore.Open(ctx, dsn, &pgstore.Options{ReadOnly: true})
}

// schemaDSN returns the test server's connection string with a new,
// empty schema of t's own as the search path: what a user's -pg DSN
// would name.
func schemaDSN(t *testing.T) string {
	t.Helper()
	return dsnFor(t, newSchema(t))
}

// dsnFor returns the test server's connection string with schema, which
// it creates, as the search path.
func dsnFor(t *testing.T, schema string) string {
	t.Helper()
	if _, err := admin.Exec(context.Background(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "search_path=" + url.QueryEscape(schema)
	}
	return dsn + " search_path=" + schema
}

// TestMarketplaceOnPostgres runs the marketplace example on a PostgreSQL
// store: it prints exactly what it prints in memory, and run again it
// continues the market a month later. Then escrowctl checks, counts and
// dumps that database.
func TestMarketplaceOnPostgres(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	pg := dsnFor(t, schema)
	o := marketplace.Options{OpenPG: openPG}
	ctl := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		co := escrowctl.Options{OpenPG: readPG}
		status := escrowctl.ExitStatus(&errOut, escrowctl.Run(&out, args, co), co)
		return out.String() + errOut.String(), status
	}
	// Pointed at a schema with no store, escrowctl says so and makes none.
	for _, cmd := range []string{"check", "stats", "dump"} {
		if out, status := ctl(cmd, "-pg", pg); status != 1 || !strings.Contains(out, "not an escrow store") {
			t.Errorf("escrowctl %s on an empty schema: status %d, want 1 and \"not an escrow store\"\n%s", cmd, status, out)
		}
	}
	if n := tablesIn(t, schema); n != 0 {
		t.Errorf("escrowctl made %d tables in an empty schema", n)
	}

	var mem, first, second bytes.Buffer
	if err := marketplace.Run(&mem, []string{"-store", "mem"}, o); err != nil {
		t.Fatal(err)
	}
	if err := marketplace.Run(&first, []string{"-pg", pg}, o); err != nil {
		t.Fatalf("%v\n%s", err, first.String())
	}
	if first.String() != mem.String() {
		t.Errorf("on PostgreSQL the market printed\n%s\nin memory\n%s", first.String(), mem.String())
	}
	if err := marketplace.Run(&second, []string{"-pg", pg}, o); err != nil {
		t.Fatalf("%v\n%s", err, second.String())
	}
	if !strings.HasPrefix(second.String(), "Continuing the market kept in the database: month 2.\n") ||
		!strings.Contains(second.String(), "2025-04/order-1001") {
		t.Errorf("the second run did not continue the market:\n%.400s", second.String())
	}

	ro, err := readPG(context.Background(), pg)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	before := dumpOf(t, ro)
	defer func() {
		if after := dumpOf(t, ro); after != before {
			t.Error("escrowctl changed the store")
		}
	}()
	if out, status := ctl("check", "-ratings", "-pg", pg); status != 0 || out != "ok: invariants hold\n" {
		t.Errorf("escrowctl check: status %d\n%s", status, out)
	}

	// What stats and dump say, against what the store holds.
	s := ro
	var accounts, escrows, events int
	var oneEscrow []uint64
	err = s.View(context.Background(), func(tx escrow.Tx) error {
		if err := tx.Accounts(func(escrow.Account) error { accounts++; return nil }); err != nil {
			return err
		}
		if err := tx.Escrows(func(escrow.Escrow) error { escrows++; return nil }); err != nil {
			return err
		}
		evs, err := tx.Events(0, 100000)
		for _, ev := range evs {
			if ev.Escrow == "2025-04/order-1001" {
				oneEscrow = append(oneEscrow, ev.Seq)
			}
		}
		events = len(evs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out, status := ctl("stats", "-pg", pg)
	for _, line := range []string{
		"accounts   " + strconv.Itoa(accounts) + "\n",
		"events     " + strconv.Itoa(events) + "\n",
		"escrows    " + strconv.Itoa(escrows) + "\n",
	} {
		if status != 0 || !strings.Contains(out, line) {
			t.Errorf("escrowctl stats: status %d, want the line %q:\n%s", status, line, out)
		}
	}
	out, status = ctl("dump", "-escrow", "2025-04/order-1001", "-pg", pg)
	var dumped []uint64
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); {
		var ev escrow.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("escrowctl dump printed %q: %v", sc.Text(), err)
		}
		dumped = append(dumped, ev.Seq)
	}
	if status != 0 || len(dumped) == 0 || fmt.Sprint(dumped) != fmt.Sprint(oneEscrow) {
		t.Errorf("escrowctl dump: status %d, events %v, want %v", status, dumped, oneEscrow)
	}

	if out, status := ctl("compact", "-pg", pg); status != 2 {
		t.Errorf("escrowctl compact -pg: status %d, want 2 (compact is for a file store)\n%s", status, out)
	}
	if out, status := ctl("check", "-pg", "host=/nonexistent-socket-dir dbname=none connect_timeout=2"); status != 1 {
		t.Errorf("escrowctl check on a database that is not there: status %d, want 1\n%s", status, out)
	}
}

// TestShopOnPostgres serves the shop on a PostgreSQL store, loads its
// page and its JSON API, and finds the shop's accounts in the database.
func TestShopOnPostgres(t *testing.T) {
	t.Parallel()
	pg := schemaDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- shop.Run(ctx, w, []string{"-addr", "127.0.0.1:0", "-pg", pg}, shop.Options{OpenPG: openPG})
		w.Close()
	}()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("the shop printed no address: %v, %v", err, <-done)
	}
	go io.Copy(io.Discard, r)
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "shop: open ")
	if !ok {
		t.Fatalf("the shop printed %q", line)
	}
	get := func(path, actor string) string {
		req, _ := http.NewRequest("GET", base+strings.TrimPrefix(path, "/"), nil)
		if actor != "" {
			req.Header.Set("X-Actor", actor)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, b)
		}
		return string(b)
	}
	if page := get("/", ""); !strings.Contains(page, "teahouse") {
		t.Errorf("the page does not show the shop:\n%.300s", page)
	}
	get("/v1/escrows", "mei")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the shop ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the shop did not stop")
	}
	s, err := pgstore.Open(context.Background(), pg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(context.Background(), func(tx escrow.Tx) error {
		for _, id := range []string{"mei", "teahouse"} {
			if _, err := tx.Account(id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the shop's accounts in the database: %v", err)
	}
}
