package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions, each a file named
// <version>_<what it does>.sql, applied in order of version. A database
// runs each once, in the form its release had, so a released migration is
// never changed: what it lacks goes in a new one (see 0009, for four that
// were; TestMigrateFromFirstForms opens schemas made by their first forms,
// kept in testdata/first-forms). The one exception is a migration that
// cannot run at all on an earlier one's first form, as 0002 could not on
// 0001's: it may add what it needs, in a form that changes nothing on a
// schema that has it, since no database that ran it is affected.
//
//go:embed migrations/*.sql
var migrations embed.FS

var (
	// ErrNewerSchema reports a database whose schema was made by a newer
	// release than this one; a SchemaError says which versions.
	ErrNewerSchema = errors.New("pgstore: schema is newer than this release")
	// ErrOlderSchema reports a store opened read-only on a schema that
	// lacks migrations of this release, which only an Open for writing
	// applies; a SchemaError says which versions.
	ErrOlderSchema = errors.New("pgstore: schema is older than this release")
	// ErrNotStore reports a store opened read-only on a schema that holds
	// no store, or on a search_path that names no schema that exists.
	ErrNotStore = errors.New("pgstore: not an escrow store")
)

// A SchemaError reports a database whose schema is at a version this
// release cannot use: newer than its newest migration, or, for a store
// opened read-only, older. It wraps ErrNewerSchema or ErrOlderSchema.
type SchemaError struct {
	Schema string // the schema the tables are in
	Found  int    // the newest version applied to the database
	Known  int    // the newest version this release has
}

func (e *SchemaError) Error() string {
	than := "newer"
	if e.Found < e.Known {
		than = "older"
	}
	return fmt.Sprintf("pgstore: schema %q is at version %d, %s than this release's %d", e.Schema, e.Found, than, e.Known)
}

// Unwrap returns ErrNewerSchema or ErrOlderSchema.
func (e *SchemaError) Unwrap() error {
	if e.Found < e.Known {
		return ErrOlderSchema
	}
	return ErrNewerSchema
}

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in order of version.
func loadMigrations() ([]migration, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files { // Glob returns them sorted, so a zero-padded version sorts right
		name := path.Base(f)
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != len(out)+1 {
			return nil, fmt.Errorf("pgstore: migration %s: want version %d first in its name", name, len(out)+1)
		}
		b, err := migrations.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	return out, nil
}

// migrate brings the schema in pool's search path (schema, if not empty,
// which it creates) up to the newest migration, in one transaction under
// an advisory lock named after the schema, so that processes opening the
// store at once apply each migration once. A schema newer than the
// newest migration fails with a *SchemaError and changes nothing.
//
// The transaction is READ COMMITTED whatever the database's default
// (default_transaction_isolation): each statement then reads what has
// committed when it starts, so an Open that waited for the lock sees the
// migrations the holder applied. Under REPEATABLE READ or SERIALIZABLE
// its snapshot would be the one taken by the lock's statement, before
// the wait, and it would apply them again and fail.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		// A database that takes no writes is refused here, not at the
		// first write: on a schema at this release's version the rest
		// only reads, and would pass.
		var readOnly string
		if err := tx.QueryRow(ctx, `SELECT current_setting('transaction_read_only')`).Scan(&readOnly); err != nil {
			return err
		}
		if readOnly == "on" {
			return fmt.Errorf("%w: the database takes no writes (transaction_read_only is on: a standby, or default_transaction_read_only); open the store with Options.ReadOnly", escrow.ErrReadOnly)
		}
		if schema != "" {
			// Serialise the creators first: two transactions that find
			// the schema missing and create it at once would fail.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('pgstore:' || $1))`, schema); err != nil {
				return err
			}
			// Created only if missing: CREATE SCHEMA, IF NOT EXISTS or
			// not, needs the privilege to create schemas in the database,
			// which a role given a schema of its own seldom has.
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
					return err
				}
			}
		}
		var current *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&current); err != nil {
			return err
		}
		if current == nil {
			var path string
			if err := tx.QueryRow(ctx, `SHOW search_path`).Scan(&path); err != nil {
				return err
			}
			return fmt.Errorf("%w: no schema in the search_path (%s) exists; create one, or name it in Options.Schema, which Open creates", escrow.ErrInvalidArgument, path)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('pgstore:' || $1))`, current); err != nil {
			return err
		}
		// Made only if missing, so that a schema at this release's version
		// is opened with no DDL, by a role that may only read and write
		// the store's rows: CREATE TABLE IF NOT EXISTS would need the
		// privilege to create tables in the schema even when the table is
		// there.
		var has bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass(quote_ident(current_schema()) || '.pgstore_migrations') IS NOT NULL`).Scan(&has); err != nil {
			return err
		}
		if !has {
			if _, err := tx.Exec(ctx, `CREATE TABLE pgstore_migrations (
				version    integer PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
				return err
			}
		}
		var found int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM pgstore_migrations`).Scan(&found); err != nil {
			return err
		}
		if found > len(ms) {
			return &SchemaError{Schema: *current, Found: found, Known: len(ms)}
		}
		for _, m := range ms[found:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO pgstore_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return err
			}
		}
		return nil
	})
	var se *SchemaError
	if err != nil && !errors.As(err, &se) {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	return err
}

// inspect checks, changing nothing, that the schema in pool's search path
// holds a store at this release's version: the Open of a read-only store.
// A schema with no store fails with ErrNotStore, one at another version
// with a *SchemaError.
func inspect(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// The table is looked for in the schema migrate would make it in,
		// not anywhere on the search path.
		var current *string
		var has bool
		if err := tx.QueryRow(ctx, `SELECT current_schema(),
			to_regclass(quote_ident(current_schema()) || '.pgstore_migrations') IS NOT NULL`).Scan(&current, &has); err != nil {
			return err
		}
		if current == nil {
			var path string
			if err := tx.QueryRow(ctx, `SHOW search_path`).Scan(&path); err != nil {
				return err
			}
			return fmt.Errorf("%w: no schema in the search_path (%s) exists", ErrNotStore, path)
		}
		if !has {
			return fmt.Errorf("%w: schema %q has no pgstore_migrations table", ErrNotStore, *current)
		}
		var found int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM pgstore_migrations`).Scan(&found); err != nil {
			return err
		}
		if found != len(ms) {
			return &SchemaError{Schema: *current, Found: found, Known: len(ms)}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotStore) && !errors.As(err, new(*SchemaError)) {
		return fmt.Errorf("pgstore: inspecting the schema: %w", err)
	}
	return err
}
