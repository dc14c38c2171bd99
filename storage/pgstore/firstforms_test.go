package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// A migration that a release applied keeps the form it had then: a later
// change to its file never reaches a database that applied it. Four
// migrations changed after their first release, and testdata/first-forms
// keeps each as it was first released, copied from the commit that added
// it: 0001 without escrow_states, 0004 without the UniqueRaters columns
// and rater_days, 0005 with the foreign key from postings to entries, and
// 0007 without pgstore_stripe_full.

// firstForm returns the migration of the given file name as it was first
// released, and whether it changed since.
func firstForm(t testing.TB, name string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "first-forms", name))
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// migrateAs makes schema a store at the given version as the release that
// added that migration made it: the migrations before it as they are now,
// and that one in its first form.
func migrateAs(t testing.TB, schema string, version int) {
	t.Helper()
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) < version {
		t.Fatalf("migrations: %v (%d files)", err, len(files))
	}
	err = pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		stmts := []string{
			`CREATE SCHEMA ` + pgx.Identifier{schema}.Sanitize(),
			`SET LOCAL search_path = ` + pgx.Identifier{schema}.Sanitize(),
			`CREATE TABLE pgstore_migrations (version integer PRIMARY KEY, name text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now())`,
		}
		for i, f := range files[:version] {
			name := filepath.Base(f)
			sql, first := firstForm(t, name)
			if !first || name != filepath.Base(files[version-1]) {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				sql = string(b)
			}
			stmts = append(stmts, sql, fmt.Sprintf(`INSERT INTO pgstore_migrations (version, name) VALUES (%d, '%s')`,
				i+1, name))
		}
		for _, sql := range stmts {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%.60s…: %w", sql, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// schemaShape describes what the migrations made in schema: its columns,
// constraints, indexes, views, functions, table options and state names,
// with the schema's name taken out, one line each, sorted.
func schemaShape(t testing.TB, schema string) []string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	for _, q := range []string{
		`SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null ' || is_nullable ||
			' default ' || coalesce(column_default, '-') || ' collate ' || coalesce(collation_name, '-')
			FROM information_schema.columns WHERE table_schema = $1`,
		`SELECT 'constraint ' || c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
			FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
			WHERE k.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)`,
		`SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = $1`,
		`SELECT 'view ' || viewname || ' ' || definition FROM pg_views WHERE schemaname = $1`,
		`SELECT 'function ' || proname || ' ' || prosrc FROM pg_proc
			WHERE pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)`,
		`SELECT 'options ' || relname || ' ' || array_to_string(reloptions, ',') FROM pg_class
			WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND reloptions IS NOT NULL`,
		`SELECT 'state ' || state || ' ' || name FROM ` + pgx.Identifier{schema, "escrow_states"}.Sanitize() + ` WHERE $1 <> ''`,
	} {
		rows, err := admin.Query(ctx, q, schema)
		if err != nil {
			t.Fatalf("%.40s…: %v", q, err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%.40s…: %v", q, err)
		}
		for _, l := range got {
			l = strings.ReplaceAll(l, pgx.Identifier{schema}.Sanitize()+".", "")
			lines = append(lines, strings.ReplaceAll(l, schema+".", ""))
		}
	}
	slices.Sort(lines)
	return lines
}

// TestMigrateFromFirstForms opens, with this release, stores made by the
// releases that first had each migration changed since: Open brings each
// schema to what a new store has, and a trade, rated
// both ways under UniqueRaters, runs on it.
func TestMigrateFromFirstForms(t *testing.T) {
	t.Parallel()
	fresh := newSchema(t)
	open(t, fresh).Close()
	want := schemaShape(t, fresh)
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	tested := 0
	for i, f := range files {
		if _, first := firstForm(t, filepath.Base(f)); !first {
			continue
		}
		tested++
		version := i + 1
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			schema := newSchema(t)
			migrateAs(t, schema, version)
			s := open(t, schema)
			defer s.Close()
			if diff := cmp.Diff(want, schemaShape(t, schema)); diff != "" {
				t.Errorf("schema migrated from the first form of %s differs from a new store's (-new +migrated):\n%s",
					filepath.Base(f), diff)
			}
			l, err := escrow.New(ctx, s, &escrow.Options{Clock: escrow.NewManualClock(start),
				Reputation: escrow.ReputationPolicy{UniqueRaters: true}})
			if err != nil {
				t.Fatal(err)
			}
			steps := []func() error{
				func() error { _, err := l.OpenAccount(ctx, "ann"); return err },
				func() error { _, err := l.OpenAccount(ctx, "bob"); return err },
				func() error { _, err := l.Deposit(ctx, "ann", fen(10_000)); return err },
				func() error {
					_, err := l.Open(ctx, escrow.Terms{ID: "t1", Buyer: "ann", Seller: "bob", Price: fen(5_000), Item: "lamp"})
					return err
				},
				func() error { _, err := l.Pay(ctx, "t1", "ann"); return err },
				func() error { _, err := l.Ship(ctx, "t1", "bob", "SF1"); return err },
				func() error { _, err := l.Confirm(ctx, "t1", "ann"); return err },
				func() error {
					_, err := l.Rate(ctx, "t1", "ann", escrow.RatingInput{Score: escrow.Positive})
					return err
				},
				func() error {
					_, err := l.Rate(ctx, "t1", "bob", escrow.RatingInput{Score: escrow.Negative})
					return err
				},
				func() error { _, err := l.ProcessDue(ctx); return err },
				func() error { return l.Check(ctx) },
			}
			for i, step := range steps {
				if err := step(); err != nil {
					t.Fatalf("step %d on the migrated store: %v", i, err)
				}
			}
			rep, err := l.Reputation(ctx, "bob")
			if err != nil || rep.AsSeller.Points != 1 {
				t.Fatalf("bob's reputation: %+v, %v; want 1 point as a seller", rep.AsSeller, err)
			}
		})
	}
	if tested == 0 {
		t.Fatal("no first forms in testdata/first-forms")
	}
}
