package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/escrowkit/escrow/storage/storagetest"
	"github.com/jackc/pgx/v5"
)

// open opens a store in a new schema of its own.
func open(t testing.TB, schema string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), dsn, &pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func harness(t testing.TB) escrow.Storage { return open(t, newSchema(t)) }

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.RunConformanceTests(t, harness)
}

func TestSimulation(t *testing.T) {
	t.Parallel()
	storagetest.RunSimulation(t, harness, storagetest.SimulationBudget(storagetest.MediumSimulation))
}

func BenchmarkConformance(b *testing.B) { storagetest.RunBenchmarks(b, harness) }

// TestNewerSchemaRefused checks that Open refuses a database whose schema
// a newer release migrated, with a SchemaError, and changes nothing.
func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := newSchema(t)
	open(t, schema).Close()
	table := pgx.Identifier{schema, "pgstore_migrations"}.Sanitize()
	known := migrationFiles(t)
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != known {
		t.Fatalf("%d migrations recorded (%v), want this release's %d", n, err, known)
	}
	if _, err := admin.Exec(ctx, `INSERT INTO `+table+` (version, name) VALUES (999, '999_from_the_future.sql')`); err != nil {
		t.Fatal(err)
	}
	_, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: schema})
	var se *pgstore.SchemaError
	if !errors.Is(err, pgstore.ErrNewerSchema) || !errors.As(err, &se) || se.Found != 999 {
		t.Fatalf("Open on a newer schema: %v, want a SchemaError found 999", err)
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != known+1 {
		t.Fatalf("%d migrations recorded (%v), want %d: this release's and the future one", n, err, known+1)
	}
}

// migrationFiles returns how many migrations this release has.
func migrationFiles(t testing.TB) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found (%v)", err)
	}
	return len(files)
}

// TestMigrateFromFirstSchema opens a database made by the first release
// of the schema (migration 1 alone), holding numbered journal entries and
// events: Open applies the later migrations, the states table names every
// state, the item marks have their table, the old rows keep their numbers,
// and new ones are numbered after them.
func TestMigrateFromFirstSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := newSchema(t)
	first, err := os.ReadFile(filepath.Join("migrations", "0001_tables.sql"))
	if err != nil {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		for _, sql := range []string{
			`CREATE SCHEMA ` + pgx.Identifier{schema}.Sanitize(),
			`SET LOCAL search_path = ` + pgx.Identifier{schema}.Sanitize(),
			string(first),
			`CREATE TABLE pgstore_migrations (version integer PRIMARY KEY, name text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now())`,
			`INSERT INTO pgstore_migrations (version, name) VALUES (1, '0001_tables.sql')`,
			`INSERT INTO accounts (id, system, created_at, created_ns) VALUES ('alice', false, now(), 0), ('@world', true, now(), 0)`,
			`INSERT INTO entries (seq, at, at_ns, kind, escrow, currency, minor) VALUES
				(1, now(), 0, 'deposit', '', 'CNY', 2), (2, now(), 0, 'deposit', '', 'CNY', 2)`,
			`INSERT INTO postings (seq, idx, account, bucket, change) VALUES
				(1, 0, '@world', 0, -100), (1, 1, 'alice', 0, 100), (2, 0, '@world', 0, -50), (2, 1, 'alice', 0, 50)`,
			`INSERT INTO balances (account, currency, minor, available, held) VALUES
				('@world', 'CNY', 2, -150, 0), ('alice', 'CNY', 2, 150, 0)`,
			`INSERT INTO events (seq, type, at, at_ns, account, escrow, buyer, seller, actor, by_timer, state, note) VALUES
				(1, 'Deposited', now(), 0, 'alice', '', '', '', 'alice', false, 0, 'old 1'),
				(2, 'Deposited', now(), 0, 'alice', '', '', '', 'alice', false, 0, 'old 2')`,
		} {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%.60s…: %w", sql, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	store := open(t, schema)
	defer store.Close()
	q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }
	var migrations, states int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+q("pgstore_migrations")).Scan(&migrations); err != nil {
		t.Fatal(err)
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+q("escrow_states")).Scan(&states); err != nil {
		t.Fatal(err)
	}
	if migrations != migrationFiles(t) || states != len(escrow.States()) {
		t.Fatalf("after Open: %d migrations recorded, %d states named; want %d and %d",
			migrations, states, migrationFiles(t), len(escrow.States()))
	}
	var marks int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+q("item_marks")).Scan(&marks); err != nil || marks != 0 {
		t.Fatalf("item_marks after Open: %d rows (%v), want an empty table", marks, err)
	}

	l, err := escrow.New(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Deposit(ctx, "alice", fen(25)); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(ctx); err != nil {
		t.Fatal(err)
	}
	events, err := l.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range events {
		got = append(got, fmt.Sprintf("%d %s", ev.Seq, ev.Note))
	}
	if want := []string{"1 old 1", "2 old 2", "3 "}; !slices.Equal(got, want) {
		t.Fatalf("events after the migration and a deposit: %q, want %q", got, want)
	}
	entries, err := l.Journal(ctx, "alice", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%d %d", e.Seq, e.Postings[1].Change))
	}
	if want := []string{"1 100", "2 50", "3 25"}; !slices.Equal(got, want) {
		t.Fatalf("alice's journal after the migration and a deposit: %q, want %q", got, want)
	}
}

// TestMixedCurrencyRefused checks that a record holding amounts of two
// currencies is refused with the core's sentinel, and nothing is written.
func TestMixedCurrencyRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newSchema(t))
	defer s.Close()
	usd, _ := escrow.MoneyFromUnits(5, escrow.USD)
	err := s.Update(ctx, func(tx escrow.Tx) error {
		return tx.PutBalance(escrow.Balance{Account: "a", Currency: escrow.CNY, Available: fen(5), Held: usd})
	})
	if !errors.Is(err, escrow.ErrCurrencyMismatch) {
		t.Fatalf("PutBalance with a USD bucket in a CNY balance: %v, want ErrCurrencyMismatch", err)
	}
	err = s.View(ctx, func(tx escrow.Tx) error {
		_, err := tx.Balance("a", "CNY")
		return err
	})
	if !errors.Is(err, escrow.ErrNotFound) {
		t.Fatalf("after the refused write, Balance: %v, want ErrNotFound", err)
	}
}

// TestTextPostgresCannotHold checks that an ID with a NUL byte, or bytes
// that are not UTF-8, which a text column cannot hold, is refused with
// ErrInvalidArgument and the transaction writes nothing. (The ledger
// refuses such IDs itself; this is the store used directly.)
func TestTextPostgresCannotHold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newSchema(t))
	defer s.Close()
	for _, id := range []string{"a\x00b", "a\xffb"} {
		err := s.Update(ctx, func(tx escrow.Tx) error {
			if err := tx.PutAccount(escrow.Account{ID: "fine"}); err != nil {
				return err
			}
			return tx.PutAccount(escrow.Account{ID: id})
		})
		if !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("PutAccount(%q): %v, want ErrInvalidArgument", id, err)
		}
	}
	err := s.View(ctx, func(tx escrow.Tx) error {
		return tx.Accounts(func(a escrow.Account) error { return fmt.Errorf("account %q was written", a.ID) })
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStateNames checks that the table naming the states for operators
// agrees with the package's names.
func TestStateNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := newSchema(t)
	open(t, schema).Close()
	rows, err := admin.Query(ctx, `SELECT state, name FROM `+pgx.Identifier{schema, "escrow_states"}.Sanitize()+` ORDER BY state`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var n int
		var name string
		err := r.Scan(&n, &name)
		return fmt.Sprintf("%d %s", n, name), err
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range slices.Sorted(slices.Values(escrow.States())) { // by number, as the query orders them
		want = append(want, fmt.Sprintf("%d %s", s, s))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("escrow_states holds %v, want %v", got, want)
	}
}

// TestTablesDocumented: every table and view a store makes is named where
// an operator looks for them, in the package documentation's Tables and
// in the README's paragraph on pgstore, so that none (the stripes of a
// system balance above all, without which a balance read from balances
// alone is wrong) is left for an operator to find.
func TestTablesDocumented(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := newSchema(t)
	open(t, schema).Close()
	rows, err := admin.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) == 0 {
		t.Fatalf("the schema's tables: %v, %v", names, err)
	}
	src, err := os.ReadFile("pgstore.go")
	if err != nil {
		t.Fatal(err)
	}
	_, tables, ok := strings.Cut(string(src), "// # Tables\n")
	tables, _, ok2 := strings.Cut(tables, "\n// # ")
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, para, ok3 := strings.Cut(string(readme), "\n- `storage/pgstore`:")
	para, _, ok4 := strings.Cut(para, "\n- ")
	if !ok || !ok2 || !ok3 || !ok4 {
		t.Fatal("no Tables section in the package documentation, or no pgstore paragraph in the README")
	}
	docs := map[string]string{"the package documentation": strings.ReplaceAll(tables, "\n//", ""),
		"the README": strings.ReplaceAll(para, "\n ", "")}
	for where, text := range docs {
		for _, n := range names {
			if !strings.Contains(text, n) {
				t.Errorf("%s does not name the table %s", where, n)
			}
		}
	}
}
