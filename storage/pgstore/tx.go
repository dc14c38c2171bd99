package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
)

// tx implements escrow.Tx over one database transaction.
type tx struct {
	ctx    context.Context
	tx     pgx.Tx
	write  bool
	done   bool
	failed error // the first statement that failed; the transaction is aborted
	xid    int64 // the transaction's id, once it has stored rows to publish
}

// check reports whether the transaction may run a statement, a write if
// write.
func (t *tx) check(write bool) error {
	if t.done {
		return fmt.Errorf("pgstore: transaction used after it ended: %w", escrow.ErrClosed)
	}
	if write && !t.write {
		return escrow.ErrReadOnly
	}
	if t.failed != nil {
		return t.failed
	}
	return nil
}

// fail records that a statement failed, which aborts the transaction in
// PostgreSQL, and returns the error to give the caller.
func (t *tx) fail(err error) error {
	err = classify(err)
	if t.failed == nil {
		t.failed = err
	}
	return err
}

// exec runs a statement that writes.
func (t *tx) exec(sql string, args ...any) error {
	if err := t.check(true); err != nil {
		return err
	}
	if _, err := t.tx.Exec(t.ctx, sql, args...); err != nil {
		return t.fail(err)
	}
	return nil
}

// one reads the row sql selects into dest, or returns ErrNotFound: the
// sentinel itself, as memstore does, since a miss is routine.
func (t *tx) one(sql string, args []any, dest ...any) error {
	if err := t.check(false); err != nil {
		return err
	}
	err := t.tx.QueryRow(t.ctx, sql, args...).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return escrow.ErrNotFound
	}
	if err != nil {
		return t.fail(err)
	}
	return nil
}

// oneOf reads the one row sql selects with scan: escrow.ErrNotFound if
// there is none.
func oneOf[T any](t *tx, sql string, args []any, scan func(pgx.Row) (T, error)) (T, error) {
	var zero T
	if err := t.check(false); err != nil {
		return zero, err
	}
	v, err := scan(t.tx.QueryRow(t.ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, escrow.ErrNotFound
	}
	if err != nil {
		return zero, t.fail(err)
	}
	return v, nil
}

// all reads every row sql selects, each with scan, into a slice (never
// nil). It reads them all before returning, so that a caller may run
// other statements while it works through them.
func all[T any](t *tx, sql string, args []any, scan func(pgx.Rows) (T, error)) ([]T, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, t.fail(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			rows.Close()
			if t.failed == nil && rows.Err() != nil {
				return nil, t.fail(rows.Err())
			}
			return nil, fmt.Errorf("pgstore: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err)
	}
	return out, nil
}

// each calls fn with every record sql selects, read first by all, until
// fn returns an error, which it returns.
func each[T any](t *tx, sql string, args []any, scan func(pgx.Rows) (T, error), fn func(T) error) error {
	recs, err := all(t, sql, args, scan)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Times are stored as a timestamptz, which holds microseconds, and the
// nanoseconds below them; the zero time as 0001-01-01 UTC, which a
// timestamptz holds and which reads back as the zero time.

// ts returns the two column values of t.
func ts(t time.Time) (time.Time, int16) {
	t = t.UTC()
	return t.Truncate(time.Microsecond), int16(t.Nanosecond() % 1000)
}

// fromTS returns the time of two column values.
func fromTS(t time.Time, ns int16) time.Time {
	return t.Add(time.Duration(ns)).UTC()
}

// amount returns the column value of m in a record of currency c: its
// minor units, or NULL for the zero Money of no currency. A Money of
// another currency is refused.
func amount(what string, m escrow.Money, c escrow.Currency) (*int64, error) {
	mc := m.Currency()
	if mc == (escrow.Currency{}) {
		if m.Units() != 0 {
			return nil, fmt.Errorf("pgstore: %s: %w: %d units of no currency", what, escrow.ErrInvalidAmount, m.Units())
		}
		return nil, nil
	}
	if mc != c {
		return nil, fmt.Errorf("pgstore: %s: %w: %s beside %s", what, escrow.ErrCurrencyMismatch, mc.Code, c.Code)
	}
	u := m.Units()
	return &u, nil
}

// money returns the Money of a column value read by amount.
func money(units *int64, c escrow.Currency) escrow.Money {
	if units == nil {
		return escrow.Money{}
	}
	return escrow.RestoreMoney(*units, c)
}

// currencyOf returns the currency of the first of ms that has one.
func currencyOf(ms ...escrow.Money) escrow.Currency {
	for _, m := range ms {
		if c := m.Currency(); c != (escrow.Currency{}) {
			return c
		}
	}
	return escrow.Currency{}
}

// limitArg returns limit as a LIMIT value: none below zero.
func limitArg(limit int) int64 { return int64(max(limit, 0)) }

// seqArg returns a Seq as a bigint, clamped: no stored Seq passes
// MaxInt64.
func seqArg(after uint64) int64 { return int64(min(after, math.MaxInt64)) }
