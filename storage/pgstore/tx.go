package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
)

// tx implements escrow.Tx over one database transaction on one
// connection. Statements go to the server in pipelined batches, one round
// trip each (see "Round trips" in the package documentation): BEGIN waits
// for the first statement, and a write that needs no reply waits, queued,
// for the next read or for COMMIT, and goes in the same batch, ahead of it.
type tx struct {
	ctx    context.Context
	conn   *pgx.Conn
	write  bool
	done   bool
	failed error // the first statement that failed; the transaction is aborted
	xid    int64 // the transaction's id, once it has stored rows to publish

	begin    []string // the statements that begin the transaction, until sent
	queue    []queued // writes not sent yet
	appended bool     // a write queued or sent stores rows that publishing numbers
	eagerAdd bool     // AddBalance reads whether it added (see AddBalance)

	// balances holds the user balances read ahead with an escrow (see
	// Escrow), each until the transaction writes it.
	balances map[balanceKey]readAhead

	// Rows kept (see rows.go).
	store   *Store
	keep    bool               // reads may be answered from the store's kept rows
	guess   bool               // reads of escrows not kept may be answered as absent (see absentEscrow)
	guarded int                // the tables of the reads answered so (see rowKeeper.judge)
	seen    map[rowKey]keptRow // rows read or written, kept if the transaction commits
	written map[rowKey]bool    // rows written: their reads go to the database
	absent  map[string]bool    // escrows answered as absent without a read (see absentEscrow)
	present map[string]bool    // escrows this attempt found there (claimed): never guessed absent
}

type balanceKey struct{ account, currency string }

// readAhead is a balance read ahead: the balance, or found false if the
// account had none in the currency.
type readAhead struct {
	b     escrow.Balance
	found bool
}

// queued is a statement waiting for the next batch. result, if not nil,
// reads its reply; if nil, the reply is read and dropped.
type queued struct {
	sql    string
	args   []any
	result func(pgx.BatchResults) error
	guard  bool   // a kept row's guard (see rows.go)
	absent string // the escrow whose absence the guard, or the insert in its place, checks (see absentEscrow)
}

// maxQueued bounds the writes a transaction holds back: past it they are
// sent on their own, so that a transaction that writes thousands of rows
// does not build one batch of them all.
const maxQueued = 64

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

// send sends, in one batch, what has not been sent of BEGIN, the queued
// writes, and then last, and reads every reply in order. It returns the
// first error: a statement's, which the caller records with fail (the
// batch stops there, and nothing after it ran), or a result function's.
func (t *tx) send(last ...queued) error {
	b := &pgx.Batch{}
	for _, sql := range t.begin {
		b.Queue(sql)
	}
	t.begin = nil
	for _, q := range append(t.queue, last...) {
		qq := b.Queue(q.sql, q.args...)
		if q.result != nil {
			qq.Fn = q.result
		}
	}
	clear(t.queue)
	t.queue = t.queue[:0]
	if b.Len() == 0 {
		return nil
	}
	return t.conn.SendBatch(t.ctx, b).Close()
}

// exec queues a statement that writes, to be sent with the next read or
// with COMMIT; result, if not nil, reads its reply then.
func (t *tx) exec(sql string, args ...any) error {
	return t.execThen(sql, args, nil)
}

// execThen is exec with a function that reads the statement's reply.
func (t *tx) execThen(sql string, args []any, result func(pgx.BatchResults) error) error {
	if err := t.check(true); err != nil {
		return err
	}
	return t.enqueue(queued{sql: sql, args: owned(args), result: result})
}

// enqueue holds back q, sending the queue once it is full.
func (t *tx) enqueue(q queued) error {
	t.queue = append(t.queue, q)
	if len(t.queue) >= maxQueued {
		if err := t.send(); err != nil {
			return t.fail(err)
		}
	}
	return nil
}

// owned copies the slices among args, in place, so that a queued
// statement sends what its caller gave even if the caller changes its
// slices before the statement is sent (the contract lets it). The other
// arguments are values, or pointers the store made.
func owned(args []any) []any {
	for i, a := range args {
		if v := reflect.ValueOf(a); v.Kind() == reflect.Slice && !v.IsNil() {
			c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			reflect.Copy(c, v)
			args[i] = c.Interface()
		}
	}
	return args
}

// query runs a statement that reads, after the queued writes and in the
// same round trip, and gives its rows to fn. An error of fn's (a row that
// does not scan, or pgx.ErrNoRows from one) leaves the transaction
// usable and comes back as it is; a statement's, queued writes' included,
// fails the transaction.
func (t *tx) query(sql string, args []any, fn func(pgx.Rows) error) error {
	return t.reads(read{sql, args, fn})
}

// read is a statement that reads, and what reads its rows.
type read struct {
	sql  string
	args []any
	fn   func(pgx.Rows) error
}

// reads is query for several statements, sent in one round trip; their
// functions run in order, until one fails.
func (t *tx) reads(rs ...read) error {
	if err := t.check(false); err != nil {
		return err
	}
	var own error
	items := make([]queued, len(rs))
	for i, r := range rs {
		items[i] = queued{sql: r.sql, args: r.args, result: func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			defer rows.Close()
			if err := r.fn(rows); err != nil {
				rows.Close()
				if rows.Err() != nil {
					return rows.Err()
				}
				own = err
				return err
			}
			rows.Close()
			return rows.Err()
		}}
	}
	err := t.send(items...)
	if err != nil && err == own {
		return own
	}
	if err != nil {
		return t.fail(err)
	}
	return nil
}

// firstRow moves rows to its first row, or returns pgx.ErrNoRows, or the
// error that ended them.
func firstRow(rows pgx.Rows) error {
	if rows.Next() {
		return nil
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return pgx.ErrNoRows
}

// appendRows returns a function that reads every row with scan onto *out.
func appendRows[T any](out *[]T, scan func(pgx.Rows) (T, error)) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			*out = append(*out, v)
		}
		return nil
	}
}

// readErr returns the error of a read: one of the caller's own reading of
// the rows (a row that does not scan), which leaves the transaction
// usable, with the package's prefix; a statement's as fail recorded it.
func (t *tx) readErr(err error) error {
	if err != nil && t.failed == nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	return err
}

// one reads the row sql selects into dest, or returns ErrNotFound: the
// sentinel itself, as memstore does, since a miss is routine.
func (t *tx) one(sql string, args []any, dest ...any) error {
	err := t.query(sql, args, func(rows pgx.Rows) error {
		if err := firstRow(rows); err != nil {
			return err
		}
		return rows.Scan(dest...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return escrow.ErrNotFound
	}
	return t.readErr(err)
}

// oneOf reads the one row sql selects with scan: escrow.ErrNotFound if
// there is none.
func oneOf[T any](t *tx, sql string, args []any, scan func(pgx.Row) (T, error)) (T, error) {
	var v T
	err := t.query(sql, args, func(rows pgx.Rows) error {
		if err := firstRow(rows); err != nil {
			return err
		}
		var err error
		v, err = scan(rows)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		var zero T
		return zero, escrow.ErrNotFound
	}
	return v, t.readErr(err)
}

// all reads every row sql selects, each with scan, into a slice (never
// nil). It reads them all before returning, so that a caller may run
// other statements while it works through them.
func all[T any](t *tx, sql string, args []any, scan func(pgx.Rows) (T, error)) ([]T, error) {
	out := []T{}
	if err := t.query(sql, args, appendRows(&out, scan)); err != nil {
		return nil, t.readErr(err)
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

// The range of a timestamptz: 4714-11-24 BC (year -4713) to the last
// microsecond of 294276 AD. A write of a time outside it fails
// (SQLSTATE 22008, ErrInvalidArgument), so every stored time lies in it.
var (
	firstTS = time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC)
	lastTS  = time.Date(294276, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// boundTS returns the two column values of t as a bound of a query that
// compares (time, nanoseconds) pairs: a time outside the range of a
// timestamptz, which no stored time is, becomes the end of the range with
// nanoseconds past any stored (-1 before the first, 1000 after the last),
// so that the query answers as if it held t, as the other stores do,
// instead of failing and aborting the transaction.
func boundTS(t time.Time) (time.Time, int16) {
	switch {
	case t.Before(firstTS):
		return firstTS, -1
	case t.After(lastTS.Add(999)):
		return lastTS, 1000
	}
	return ts(t)
}

// fromTS returns the time of two column values.
func fromTS(t time.Time, ns int16) time.Time {
	return t.Add(time.Duration(ns)).UTC()
}

// amount returns the column value of m in a record of currency c: its
// minor units, or NULL for the zero Money of no currency. A Money of
// another currency is refused.
func amount(what string, m escrow.Money, c escrow.Currency) (*int64, error) {
	if err := checkMinor(what, c); err != nil {
		return nil, err
	}
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

// checkMinor refuses a currency whose minor units the core would not
// take (0 to 9): the column is a SMALLINT, and a value past it would be
// stored as another, changing every amount's scale.
func checkMinor(what string, c escrow.Currency) error {
	if c.Minor < 0 || c.Minor > 9 {
		return fmt.Errorf("pgstore: %s: %w: currency %s has %d minor units, not 0 to 9", what, escrow.ErrInvalidArgument, c.Code, c.Minor)
	}
	return nil
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
