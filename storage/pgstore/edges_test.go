package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/escrowkit/escrow/storage/storagetest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tablesIn counts the tables in the schema named exactly name.
func tablesIn(t *testing.T, name string) int {
	t.Helper()
	var n int
	err := admin.QueryRow(context.Background(),
		`SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, name).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dropAfter drops the schemas named exactly names when the test ends.
func dropAfter(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			admin.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{n}.Sanitize()+` CASCADE`)
		}
	})
}

// TestSchemaNamedAsWritten: Options.Schema is one schema, named exactly as
// written, whatever it holds: capitals, a space, a comma. The tables go
// there and nowhere else.
func TestSchemaNamedAsWritten(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	tag := fmt.Sprintf("%d", os.Getpid())
	first := "edges_first_" + tag
	for _, name := range []string{"Edges Mixed " + tag, first + ",edges_second_" + tag} {
		dropAfter(t, name, first)
		if _, err := admin.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{first}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		s, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: name})
		if err != nil {
			t.Errorf("Open with Schema %q: %v", name, err)
			continue
		}
		err = s.Update(ctx, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: "ann", CreatedAt: start}) })
		s.Close()
		if err != nil {
			t.Errorf("Schema %q: Update: %v", name, err)
		}
		if n := tablesIn(t, name); n == 0 {
			t.Errorf("Schema %q holds no table", name)
		}
		if n := tablesIn(t, first); n != 0 {
			t.Errorf("Schema %q: %d tables went to %q", name, n, first)
		}
	}
}

// TestSearchPathOfNoSchema: a DSN whose search_path names no schema that
// exists is refused with ErrInvalidArgument, saying so, and creates
// nothing.
func TestSearchPathOfNoSchema(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	missing := fmt.Sprintf("edges_missing_%d", os.Getpid())
	_, err := pgstore.Open(ctx, withParam(dsn, "search_path", missing), nil)
	if !errors.Is(err, escrow.ErrInvalidArgument) {
		t.Errorf("Open with search_path %q: %v, want ErrInvalidArgument", missing, err)
	}
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, missing).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %q made: %d, %v", missing, n, err)
	}
}

// withParam returns dsn, a URL or key=value string, with one more
// run-time parameter.
func withParam(dsn, name, value string) string {
	switch {
	case !strings.Contains(dsn, "://"):
		return dsn + " " + name + "=" + value
	case strings.Contains(dsn, "?"):
		return dsn + "&" + name + "=" + value
	}
	return dsn + "?" + name + "=" + value
}

// dumpOf is the store's whole dump, as text.
func dumpOf(t *testing.T, s escrow.Storage) string {
	t.Helper()
	d, err := storagetest.Dump(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return string(d)
}

// TestMaxAttemptsCountsConflicts: with MaxAttempts 1, an Update whose kept
// row another store changed runs again and succeeds: that is no conflict,
// and MaxAttempts counts conflicts.
func TestMaxAttemptsCountsConflicts(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	a, _ := tripStore(t, schema, &pgstore.Options{MaxAttempts: 1})
	b, _ := tripStore(t, schema, &pgstore.Options{MaxAttempts: 1})
	keptFixture(t, a) // a keeps ann's account
	if err := b.Update(ctx, func(tx escrow.Tx) error {
		return tx.PutAccount(escrow.Account{ID: "ann", CreatedAt: start.Add(time.Hour)})
	}); err != nil {
		t.Fatal(err)
	}
	runs := 0
	err := a.Update(ctx, func(tx escrow.Tx) error {
		runs++
		acc, err := tx.Account("ann")
		if err != nil {
			return err
		}
		if !acc.CreatedAt.Equal(start.Add(time.Hour)) {
			return fmt.Errorf("read ann created at %v, want the change", acc.CreatedAt)
		}
		return tx.PutAccount(escrow.Account{ID: "ann2", CreatedAt: acc.CreatedAt})
	})
	if err != nil {
		t.Errorf("Update after a kept row changed, MaxAttempts 1: %v (fn ran %d times)", err, runs)
	}
}

// TestValuesPastColumns: values the columns cannot hold as given are
// refused with ErrInvalidArgument, and nothing is written: minor units the
// core would not take, a consumer's Seq past the largest a store numbers,
// a time past PostgreSQL's range.
func TestValuesPastColumns(t *testing.T) {
	s := open(t, newSchema(t))
	defer s.Close()
	odd := escrow.Currency{Code: "CNY", Minor: 65538}
	refusedWrites(t, s, map[string]func(tx escrow.Tx) error{
		"escrow": func(tx escrow.Tx) error {
			return tx.PutEscrow(escrow.Escrow{Terms: escrow.Terms{ID: "m", Buyer: "ann", Seller: "bob",
				Price: escrow.RestoreMoney(100, odd)}, State: escrow.AwaitingPayment, CreatedAt: start, Version: 1})
		},
		"event": func(tx escrow.Tx) error {
			return tx.AppendEvent(&escrow.Event{Type: escrow.EscrowPaid, At: start, Escrow: "m", Amount: escrow.RestoreMoney(5, odd)})
		},
		"balance": func(tx escrow.Tx) error {
			return tx.PutBalance(escrow.Balance{Account: "ann", Currency: odd, Available: escrow.RestoreMoney(5, odd), Held: escrow.RestoreMoney(0, odd)})
		},
		"entry": func(tx escrow.Tx) error {
			return tx.AppendEntry(&escrow.Entry{At: start, Kind: escrow.EntryDeposit, Currency: odd,
				Postings: []escrow.Posting{{Account: "ann", Change: 5}, {Account: escrow.WorldAccount, Change: -5}}})
		},
		"consumer": func(tx escrow.Tx) error {
			return tx.PutConsumer(escrow.Consumer{Name: "c", Seq: math.MaxUint64, UpdatedAt: start})
		},
		"time": func(tx escrow.Tx) error {
			return tx.PutAccount(escrow.Account{ID: "t", CreatedAt: time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)})
		},
	})
}

// TestReadOnly: a store opened read-only changes nothing in the database.
// On a schema with no store, or a search_path of no schema, Open fails
// with ErrNotStore and creates nothing; on a schema of another version it
// fails with a SchemaError. On a store it reads, a write fails with
// ErrReadOnly, a transaction that only reads succeeds, and Publish is
// refused.
func TestReadOnly(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	ro := &pgstore.Options{ReadOnly: true}

	empty := newSchema(t)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{empty}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if _, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: empty, ReadOnly: true}); !errors.Is(err, pgstore.ErrNotStore) {
		t.Errorf("read-only Open of an empty schema: %v, want ErrNotStore", err)
	}
	if n := tablesIn(t, empty); n != 0 {
		t.Errorf("read-only Open made %d tables", n)
	}
	missing := fmt.Sprintf("edges_ro_missing_%d", os.Getpid())
	if _, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: missing, ReadOnly: true}); !errors.Is(err, pgstore.ErrNotStore) {
		t.Errorf("read-only Open of a missing schema: %v, want ErrNotStore", err)
	}
	if _, err := pgstore.Open(ctx, withParam(dsn, "search_path", missing), ro); !errors.Is(err, pgstore.ErrNotStore) {
		t.Errorf("read-only Open with a search_path of no schema: %v, want ErrNotStore", err)
	}
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, missing).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %q made: %d, %v", missing, n, err)
	}

	// A store with an account and a trade's worth of rows, some of them
	// events that the writer's store numbered.
	schema := newSchema(t)
	w, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	l, err := escrow.New(ctx, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenAccount(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Deposit(ctx, "ann", cnyUnits(1000)); err != nil {
		t.Fatal(err)
	}
	w.Close()

	r, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: schema, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	before := dumpOf(t, r)
	var acct escrow.Account
	err = r.Update(ctx, func(tx escrow.Tx) error {
		var err error
		acct, err = tx.Account("ann")
		return err
	})
	if err != nil || acct.ID != "ann" {
		t.Errorf("an Update that only reads: %v, %+v", err, acct)
	}
	if _, err := escrow.New(ctx, r, nil); err != nil {
		t.Errorf("a ledger on a read-only store that has its system accounts: %v", err)
	}
	err = r.Update(ctx, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: "bob", CreatedAt: start}) })
	if !errors.Is(err, escrow.ErrReadOnly) {
		t.Errorf("a write: %v, want ErrReadOnly", err)
	}
	if err := r.Publish(ctx); !errors.Is(err, escrow.ErrReadOnly) {
		t.Errorf("Publish: %v, want ErrReadOnly", err)
	}
	if after := dumpOf(t, r); after != before {
		t.Errorf("the read-only store changed:\n%s\nwas\n%s", after, before)
	}

	// Another version than this release's, either way, is refused.
	var known int
	if err := admin.QueryRow(ctx, `SELECT max(version) FROM `+pgx.Identifier{schema}.Sanitize()+`.pgstore_migrations`).Scan(&known); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sql  string
		want error
	}{
		{`INSERT INTO %s.pgstore_migrations (version, name) VALUES (` + fmt.Sprint(known+1) + `, 'from a newer release')`, pgstore.ErrNewerSchema},
		{`DELETE FROM %s.pgstore_migrations WHERE version >= ` + fmt.Sprint(known), pgstore.ErrOlderSchema},
	} {
		if _, err := admin.Exec(ctx, fmt.Sprintf(c.sql, pgx.Identifier{schema}.Sanitize())); err != nil {
			t.Fatal(err)
		}
		_, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: schema, ReadOnly: true})
		var se *pgstore.SchemaError
		if !errors.Is(err, c.want) || !errors.As(err, &se) {
			t.Errorf("read-only Open after %q: %v, want %v in a SchemaError", c.sql, err, c.want)
		}
	}
}

// TestSchemaNameTooLong: PostgreSQL cuts a name past 63 bytes, so that
// two Schemas differing only after it would be one schema; Open refuses
// such a Schema with ErrInvalidArgument and creates nothing. A name of
// exactly 63 bytes is kept whole.
func TestSchemaNameTooLong(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	whole := fmt.Sprintf("edges_long_%d_", os.Getpid())
	whole += strings.Repeat("x", 63-len(whole))
	dropAfter(t, whole)
	for _, name := range []string{whole + "a", whole + "b", whole + "é", whole + strings.Repeat("y", 1<<20)} {
		s, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: name})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("Open with a Schema of %d bytes: %.200v, want ErrInvalidArgument", len(name), err)
		} else if n := len(err.Error()); n > 256 {
			// The name is the caller's, of any length: the message shows
			// its first bytes, as the ledger's own messages do.
			t.Errorf("Open with a Schema of %d bytes: a message of %d bytes", len(name), n)
		}
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, whole).Scan(&n); err != nil || n != 0 {
			t.Errorf("Open with a Schema of %d bytes made schema %q: %d, %v", len(name), whole, n, err)
		}
	}
	s, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: whole})
	if err != nil {
		t.Fatalf("Open with a Schema of 63 bytes: %v", err)
	}
	s.Close()
	if n := tablesIn(t, whole); n == 0 {
		t.Errorf("Schema %q of 63 bytes holds no table", whole)
	}
}

// TestSchemaNamesRefused: a Schema that cannot be one schema named as
// written is refused with ErrInvalidArgument, creating nothing: "$user",
// which a search_path reads as the schema named after the user, so that
// the tables went there; a name with PostgreSQL's reserved prefix pg_;
// and text PostgreSQL cannot hold in a name.
func TestSchemaNamesRefused(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	var user string
	if err := admin.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	// The schema the search_path "$user" means, made if missing (and then
	// dropped at the end), so that a store could be put there.
	var had bool
	if err := admin.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_namespace WHERE nspname = $1`, user).Scan(&had); err != nil {
		t.Fatal(err)
	}
	if !had {
		if _, err := admin.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{user}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		dropAfter(t, user)
	}
	userTables := tablesIn(t, user)
	reserved := fmt.Sprintf("pg_edges_%d", os.Getpid())
	for _, name := range []string{"$user", reserved, "edges\x00nul", "edges\xffbyte"} {
		dropAfter(t, name)
		s, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: name})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("Open with Schema %q: %v, want ErrInvalidArgument", name, err)
		}
		if n := tablesIn(t, user); n != userTables {
			t.Errorf("Open with Schema %q: schema %q holds %d tables, had %d", name, user, n, userTables)
		}
		if strings.HasPrefix(name, "edges") {
			continue // a name the server cannot hold: no schema to look for
		}
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, name).Scan(&n); err != nil || n != 0 {
			t.Errorf("Open with Schema %q made the schema: %d, %v", name, n, err)
		}
	}
}

// refusedWrites runs each write in an Update of its own, and fails t
// unless it is refused with ErrInvalidArgument and leaves the store as it
// was.
func refusedWrites(t *testing.T, s escrow.Storage, writes map[string]func(tx escrow.Tx) error) {
	t.Helper()
	for name, write := range writes {
		before := dumpOf(t, s)
		if err := s.Update(context.Background(), write); !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
		if after := dumpOf(t, s); after != before {
			t.Errorf("%s: the refused write changed the store", name)
		}
	}
}

// TestNewNilPool: New with no pool is refused with ErrInvalidArgument, as
// other bad arguments are, rather than panicking.
func TestNewNilPool(t *testing.T) {
	for _, opts := range []*pgstore.Options{nil, {ReadOnly: true}} {
		s, err := pgstore.New(context.Background(), nil, opts)
		if !errors.Is(err, escrow.ErrInvalidArgument) || s != nil {
			t.Errorf("New with a nil pool and %+v: %v, %v, want ErrInvalidArgument", opts, s, err)
		}
	}
}

// TestExistingSchemaNeedsNoCreate: Open with Options.Schema creates the
// schema only if it is missing, so a role that may not create schemas
// in the database (most roles: PostgreSQL grants that to none by
// default) opens a store in a schema made for it beforehand.
func TestExistingSchemaNeedsNoCreate(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	role := fmt.Sprintf("edges_app_%d", os.Getpid())
	schema := newSchema(t)
	ident := pgx.Identifier{role}.Sanitize()
	if _, err := admin.Exec(ctx, `CREATE ROLE `+ident+` LOGIN`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// After the schema's own cleanup, which runs first, as the last
		// registered: nothing is left that the role owns.
		admin.Exec(context.Background(), `DROP ROLE IF EXISTS `+ident)
	})
	t.Cleanup(func() {
		admin.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	})
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()+` AUTHORIZATION `+ident); err != nil {
		t.Fatal(err)
	}
	var may bool
	if err := admin.QueryRow(ctx, `SELECT has_database_privilege($1, current_database(), 'CREATE')`, role).Scan(&may); err != nil {
		t.Fatal(err)
	}
	if may {
		t.Skipf("role %s may create schemas in this database", role)
	}
	asRole := withParam(dsn, "user", role)
	conn, err := pgx.Connect(ctx, asRole)
	if err != nil {
		t.Skipf("the server does not let the new role %s in without a password: %v", role, err)
	}
	conn.Close(ctx)
	s, err := pgstore.Open(ctx, asRole, &pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open as a role that may not create schemas, in a schema it owns: %v", err)
	}
	defer s.Close()
	if err := s.Update(ctx, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: "ann", CreatedAt: start}) }); err != nil {
		t.Errorf("Update: %v", err)
	}
	if n := tablesIn(t, schema); n == 0 {
		t.Errorf("schema %q holds no table", schema)
	}
}

// TestUpToDateSchemaNeedsNoDDL: Open for writing on a schema that is
// already at this release's version changes no table, so a role that may
// read and write the store's rows but not create tables (the schema made
// by another role, which migrated it) opens it, and its store works.
func TestUpToDateSchemaNeedsNoDDL(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	role := fmt.Sprintf("edges_dml_%d", os.Getpid())
	schema := newSchema(t)
	ident, sch := pgx.Identifier{role}.Sanitize(), pgx.Identifier{schema}.Sanitize()
	open(t, schema).Close()
	if _, err := admin.Exec(ctx, `CREATE ROLE `+ident+` LOGIN`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		admin.Exec(ctx, `DROP OWNED BY `+ident)
		admin.Exec(ctx, `DROP ROLE IF EXISTS `+ident)
	})
	if _, err := admin.Exec(ctx, `GRANT USAGE ON SCHEMA `+sch+` TO `+ident+`;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA `+sch+` TO `+ident+`;
		GRANT USAGE ON ALL SEQUENCES IN SCHEMA `+sch+` TO `+ident); err != nil {
		t.Fatal(err)
	}
	asRole := withParam(dsn, "user", role)
	conn, err := pgx.Connect(ctx, asRole)
	if err != nil {
		t.Skipf("the server does not let the new role %s in without a password: %v", role, err)
	}
	conn.Close(ctx)
	s, err := pgstore.Open(ctx, asRole, &pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open as a role that may not create tables, on an up-to-date schema: %v", err)
	}
	defer s.Close()
	l, err := escrow.New(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenAccount(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Deposit(ctx, "ann", cnyUnits(100)); err != nil {
		t.Fatal(err)
	}
	if evs, err := l.Events(ctx, 0, 100); err != nil || len(evs) == 0 {
		t.Errorf("Events: %v, %v", evs, err)
	}
	if err := l.Check(ctx); err != nil {
		t.Error(err)
	}
}

// TestDatabaseTakesNoWrites: a database that takes no writes (a standby,
// or one whose default_transaction_read_only is on) is refused by Open
// for writing with ErrReadOnly, pointing to Options.ReadOnly, and nothing
// is created, whether the schema is new or at this release's version
// (where Open would otherwise only read, and succeed, leaving every write
// to fail). A store whose database stops taking writes after Open fails
// each write with ErrReadOnly and changes nothing.
func TestDatabaseTakesNoWrites(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	ro := withParam(dsn, "default_transaction_read_only", "on")
	fresh := newSchema(t)
	if s, err := pgstore.Open(ctx, ro, &pgstore.Options{Schema: fresh}); !errors.Is(err, escrow.ErrReadOnly) {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open of a new schema on a database that takes no writes: %v, want ErrReadOnly", err)
	}
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, fresh).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %q made: %d, %v", fresh, n, err)
	}
	current := newSchema(t)
	open(t, current).Close()
	if s, err := pgstore.Open(ctx, ro, &pgstore.Options{Schema: current}); !errors.Is(err, escrow.ErrReadOnly) {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open of an up-to-date schema on a database that takes no writes: %v, want ErrReadOnly", err)
	}
	r, err := pgstore.Open(ctx, ro, &pgstore.Options{Schema: current, ReadOnly: true})
	if err != nil {
		t.Fatalf("a read-only Open there: %v", err)
	}
	r.Close()

	// A database that stops taking writes after Open.
	var readOnly atomic.Bool
	pool := schemaPool(t, current, func(cfg *pgxpool.Config) {
		cfg.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
			mode := "off"
			if readOnly.Load() {
				mode = "on"
			}
			_, err := c.Exec(ctx, `SET default_transaction_read_only = `+mode)
			return err == nil, err
		}
	})
	s, err := pgstore.New(ctx, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(id string) error {
		return s.Update(ctx, func(tx escrow.Tx) error { return tx.PutAccount(escrow.Account{ID: id, CreatedAt: start}) })
	}
	if err := put("ann"); err != nil {
		t.Fatal(err)
	}
	before := dumpOf(t, s)
	readOnly.Store(true)
	err = put("bob")
	readOnly.Store(false)
	if !errors.Is(err, escrow.ErrReadOnly) {
		t.Errorf("a write once the database takes none: %v, want ErrReadOnly", err)
	}
	if after := dumpOf(t, s); after != before {
		t.Errorf("the refused write changed the store:\n%s\nwas\n%s", after, before)
	}
}
