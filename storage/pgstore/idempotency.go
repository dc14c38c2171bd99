package pgstore

import (
	"time"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
)

// This file holds the methods of escrow.Tx for idempotency records.

const idemCols = `key, request, result, at, at_ns`

func scanIdempotency(r pgx.Rows) (escrow.IdempotencyRecord, error) {
	var rec escrow.IdempotencyRecord
	var at time.Time
	var ns int16
	err := r.Scan(&rec.Key, &rec.Request, &rec.Result, &at, &ns)
	rec.At = fromTS(at, ns)
	return rec, err
}

func (t *tx) Idempotency(key string) (escrow.IdempotencyRecord, error) {
	rs, err := all(t, `SELECT `+idemCols+` FROM idempotency WHERE key = $1`, []any{key}, scanIdempotency)
	if err != nil {
		return escrow.IdempotencyRecord{}, err
	}
	if len(rs) == 0 {
		return escrow.IdempotencyRecord{}, escrow.ErrNotFound
	}
	return rs[0], nil
}

func (t *tx) PutIdempotency(r escrow.IdempotencyRecord) error {
	at, ns := ts(r.At)
	result := r.Result
	if result == nil {
		result = []byte{}
	}
	return t.exec(`INSERT INTO idempotency (`+idemCols+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (key) DO UPDATE SET request = $2, result = $3, at = $4, at_ns = $5`, r.Key, r.Request, result, at, ns)
}

func (t *tx) Idempotencies(fn func(escrow.IdempotencyRecord) error) error {
	return each(t, `SELECT `+idemCols+` FROM idempotency ORDER BY key`, nil, scanIdempotency, fn)
}

func (t *tx) IdempotenciesUntil(at time.Time, limit int) ([]string, error) {
	d, ns := boundTS(at)
	return all(t, `SELECT key FROM idempotency WHERE (at, at_ns) <= ($1, $2) ORDER BY at, at_ns, key LIMIT $3`,
		[]any{d, ns, limitArg(limit)}, func(r pgx.Rows) (string, error) {
			var k string
			return k, r.Scan(&k)
		})
}

func (t *tx) DeleteIdempotency(key string) error {
	return t.exec(`DELETE FROM idempotency WHERE key = $1`, key)
}
