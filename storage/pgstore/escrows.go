package pgstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
)

var _ escrow.EscrowClaimer = (*tx)(nil)

// This file holds the methods of escrow.Tx for escrows and their indexes.

const escrowCols = `id, state, buyer, seller, arbiter, currency, minor, price, held, released, fees, refunded,
	next_due, next_due_ns, created_at, created_ns, version, doc`

func (t *tx) PutEscrow(e escrow.Escrow) error {
	if err := t.check(true); err != nil {
		return err
	}
	c := currencyOf(e.Price, e.Held, e.Released, e.Fees, e.Refunded)
	what := fmt.Sprintf("escrow %q", e.ID)
	var amounts [5]*int64
	for i, m := range []escrow.Money{e.Price, e.Held, e.Released, e.Fees, e.Refunded} {
		var err error
		if amounts[i], err = amount(what, m, c); err != nil {
			return err
		}
	}
	var due *time.Time
	var dueNS *int16
	if next := e.NextDue(); !next.IsZero() {
		d, ns := ts(next)
		due, dueNS = &d, &ns
	}
	created, createdNS := ts(e.CreatedAt)
	// The doc holds what the columns do not.
	rest := e
	rest.ID, rest.State, rest.Buyer, rest.Seller, rest.Arbiter = "", 0, "", "", ""
	rest.Price, rest.Held, rest.Released, rest.Fees, rest.Refunded = escrow.Money{}, escrow.Money{}, escrow.Money{}, escrow.Money{}, escrow.Money{}
	rest.CreatedAt, rest.Version = time.Time{}, 0
	doc, err := json.Marshal(rest)
	if err != nil {
		// A time JSON cannot write: a year past 9999 or before 0.
		return fmt.Errorf("pgstore: %s: %w: %w", what, escrow.ErrInvalidArgument, err)
	}
	// The row is kept as a read would return it (see rows.go).
	key := rowKey{table: 'e', id: e.ID}
	t.wrote(key)
	row := &escrowRow{id: e.ID, buyer: e.Buyer, seller: e.Seller, arbiter: e.Arbiter, state: int16(e.State),
		c: escrow.Currency{Code: c.Code, Minor: int(int16(c.Minor))}, amounts: amounts, created: created,
		createdNS: createdNS, version: int64(e.Version), doc: doc}
	q := queued{sql: putEscrowSQL,
		args: owned([]any{e.ID, int16(e.State), e.Buyer, e.Seller, e.Arbiter, c.Code, int16(c.Minor),
			amounts[0], amounts[1], amounts[2], amounts[3], amounts[4], due, dueNS, created, createdNS, int64(e.Version), doc}),
		result: t.wroteRow(key, func(xmin int64) keptRow {
			r := *row
			r.xmin = xmin
			return keptRow{xmin: xmin, escrow: &r}
		})}
	if t.absent[e.ID] && t.dropAbsentGuard(e.ID) {
		q.sql, q.absent = insertEscrowSQL, e.ID // q.absent: see verify
	}
	return t.enqueue(q)
}

// The statements of PutEscrow. Both write the due time to escrow_due
// too, which indexes it, only when it changes (see migration 0007), and
// return the row's xmin.
const (
	escrowDueSQL = `WITH due AS (
			INSERT INTO escrow_due (id, next_due, next_due_ns) VALUES ($1, $13, $14)
			ON CONFLICT (id) DO UPDATE SET next_due = excluded.next_due, next_due_ns = excluded.next_due_ns
			WHERE (escrow_due.next_due, escrow_due.next_due_ns) IS DISTINCT FROM (excluded.next_due, excluded.next_due_ns))`

	// putEscrowSQL creates the escrow or replaces it.
	putEscrowSQL = escrowDueSQL + `
		INSERT INTO escrows (` + escrowCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (id) DO UPDATE SET state = $2, buyer = $3, seller = $4, arbiter = $5, currency = $6, minor = $7,
			price = $8, held = $9, released = $10, fees = $11, refunded = $12, next_due = $13, next_due_ns = $14,
			created_at = $15, created_ns = $16, version = $17, doc = $18
		RETURNING xmin::text::bigint`

	// insertEscrowSQL creates an escrow that a transaction took for absent
	// and whose guard it did not send (see absentEscrow): only if no
	// version of its row exists, committed or not; if one does, nothing is
	// inserted and the statement fails as the guard would have (PGS02), and
	// the transaction runs again reading the database. Under serializable
	// isolation, a row committed after the snapshot fails the insert with a
	// serialization failure; one being inserted by a transaction still
	// running makes it wait for that one. Escrows are never deleted, so a
	// row absent from every version was absent from the snapshot too.
	insertEscrowSQL = escrowDueSQL + `,
		ins AS (INSERT INTO escrows (` + escrowCols + `)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
			ON CONFLICT (id) DO NOTHING RETURNING xmin::text::bigint AS x)
		SELECT coalesce((SELECT x FROM ins), pgstore_row_changed())`
)

// escrowGuard is the guard of a kept escrow (see rows.go).
func escrowGuard(r keptRow) (string, []any) {
	return guarded(`SELECT FROM escrows WHERE id = $1 AND xmin::text::bigint = $2 AND state = $3 AND version = $4`),
		[]any{r.escrow.id, r.xmin, r.escrow.state, r.escrow.version}
}

// escrowRow is an escrow's row as the store reads it: the columns that
// make up an escrow.Escrow, and the row version (see rowKeeper).
type escrowRow struct {
	id, buyer, seller, arbiter string
	state                      int16
	c                          escrow.Currency
	amounts                    [5]*int64
	created                    time.Time
	createdNS                  int16
	version                    int64
	doc                        []byte
	xmin                       int64
}

// escrowRead selects an escrow's row for scanEscrowRow.
const escrowRead = `SELECT id, state, buyer, seller, arbiter, currency, minor, price, held, released, fees, refunded,
	created_at, created_ns, version, doc, xmin::text::bigint FROM escrows WHERE id = $1`

func scanEscrowRow(r pgx.Rows) (escrowRow, error) {
	var w escrowRow
	err := r.Scan(&w.id, &w.state, &w.buyer, &w.seller, &w.arbiter, &w.c.Code, &w.c.Minor,
		&w.amounts[0], &w.amounts[1], &w.amounts[2], &w.amounts[3], &w.amounts[4], &w.created, &w.createdNS, &w.version,
		&w.doc, &w.xmin)
	return w, err
}

// escrow returns the escrow of the row: a new one each time, sharing
// nothing with the row, so that a caller may change it.
func (w *escrowRow) escrow() (escrow.Escrow, error) {
	var e escrow.Escrow
	if err := json.Unmarshal(w.doc, &e); err != nil {
		return e, fmt.Errorf("escrow %q: %w", w.id, err)
	}
	inUTC(&e)
	e.ID, e.State, e.Buyer, e.Seller, e.Arbiter = w.id, escrow.State(w.state), w.buyer, w.seller, w.arbiter
	e.Price, e.Held, e.Released = money(w.amounts[0], w.c), money(w.amounts[1], w.c), money(w.amounts[2], w.c)
	e.Fees, e.Refunded = money(w.amounts[3], w.c), money(w.amounts[4], w.c)
	e.CreatedAt, e.Version = fromTS(w.created, w.createdNS), uint64(w.version)
	return e, nil
}

func scanEscrow(r pgx.Rows) (escrow.Escrow, error) {
	var (
		w     escrowRow
		due   *time.Time
		dueNS *int16
	)
	err := r.Scan(&w.id, &w.state, &w.buyer, &w.seller, &w.arbiter, &w.c.Code, &w.c.Minor,
		&w.amounts[0], &w.amounts[1], &w.amounts[2], &w.amounts[3], &w.amounts[4], &due, &dueNS, &w.created, &w.createdNS,
		&w.version, &w.doc)
	if err != nil {
		return escrow.Escrow{}, err
	}
	return w.escrow()
}

// Escrow reads the escrow. In a read-write transaction it reads ahead,
// in the same round trip, the balances of the buyer and the seller in the
// escrow's currency, which the ledger reads next when money moves (pay,
// release, refund), and Balance answers from them until the transaction
// writes them: the same rows, read in the same snapshot, and locked for
// conflict checks as a read of them would lock them.
//
// A read-write transaction answers from the store's kept rows, if the
// escrow is among them, with no round trip and no balances read ahead
// (see rows.go).
func (t *tx) Escrow(id string) (escrow.Escrow, error) {
	if err := t.check(false); err != nil {
		return escrow.Escrow{}, err
	}
	key := rowKey{table: 'e', id: id}
	if r, ok, err := t.kept(key, escrowGuard); err != nil || ok {
		if err != nil {
			return escrow.Escrow{}, err
		}
		return r.escrow.escrow()
	}
	if ok, err := t.absentEscrow(id); err != nil || ok {
		if err != nil {
			return escrow.Escrow{}, err
		}
		return escrow.Escrow{}, escrow.ErrNotFound
	}
	var ws []escrowRow
	scanAll := appendRows(&ws, scanEscrowRow)
	var err error
	if !t.write {
		err = t.query(escrowRead, []any{id}, scanAll)
	} else {
		ahead := map[balanceKey]readAhead{}
		seen := map[rowKey]keptRow{}
		err = t.reads(read{escrowRead, []any{id}, scanAll}, read{`SELECT p.account, e.currency, e.minor, b.minor, b.available, b.held,
				b.xmin::text::bigint
			FROM escrows e CROSS JOIN LATERAL (VALUES (e.buyer), (e.seller)) AS p(account)
			LEFT JOIN balances b ON b.account = p.account AND b.currency = e.currency
			WHERE e.id = $1 AND p.account NOT LIKE '@%'`, []any{id}, func(rows pgx.Rows) error {
			for rows.Next() {
				var a readAhead
				var minor *int16
				var avail, held, xmin *int64
				if err := rows.Scan(&a.b.Account, &a.b.Currency.Code, &a.b.Currency.Minor, &minor, &avail, &held, &xmin); err != nil {
					return err
				}
				key := balanceKey{a.b.Account, a.b.Currency.Code}
				if a.found = minor != nil; a.found {
					a.b.Currency.Minor = int(*minor)
					a.b.Available, a.b.Held = money(avail, a.b.Currency), money(held, a.b.Currency)
					if xmin != nil {
						seen[rowKey{table: 'b', id: key.account, currency: key.currency}] = keptRow{xmin: *xmin, balance: a.b}
					}
				} else {
					a.b = escrow.Balance{} // as Balance returns with ErrNotFound
				}
				ahead[key] = a
			}
			return nil
		}})
		if err == nil {
			// Kept only when nothing this transaction has queued can
			// have changed them: the read sent every queued write first.
			t.balances = ahead
			for k, r := range seen {
				t.readRow(k, r)
			}
		}
	}
	if err != nil {
		return escrow.Escrow{}, t.readErr(err)
	}
	if len(ws) == 0 {
		return escrow.Escrow{}, escrow.ErrNotFound
	}
	t.readRow(key, keptRow{xmin: ws[0].xmin, escrow: &ws[0]})
	return ws[0].escrow()
}

// ClaimEscrow makes the store an escrow.EscrowClaimer, so that ProcessDue
// run from several processes at once splits the due escrows between
// them. It locks the escrow's row with SELECT … FOR NO KEY UPDATE SKIP
// LOCKED: the row lock an UPDATE of the row takes, which the transaction
// would take anyway when it fires the timer, taken first and without
// waiting. A row that another transaction has locked (one firing the same
// timer, or any call that has written the escrow and not yet committed)
// comes back as no row, and the claim fails: ProcessDue leaves the escrow
// to that transaction, having read and written nothing else.
//
// The lock is not what keeps a timer from firing twice; serializable
// isolation does that, as before: the claiming transaction reads the
// escrow again after the claim and fires only what is still due in its
// snapshot, and two transactions that fire the same timer cannot both
// commit, lock or no lock. What the lock adds is that the second one does
// not do the work only to be aborted at its write (by lock_timeout, or by
// a serialization failure once the first commits) and retried, to find the
// timer fired. A claim that fails decides only to do nothing, which is
// serializable in any order; one that comes just after the holder committed
// reads the fired escrow (its snapshot is taken by the claim, the first
// statement) or, if the holder committed while the statement ran, fails
// with a serialization failure and is retried. Claiming by primary key,
// one escrow to a transaction, keeps the predicate locks of serializable
// isolation on that one row; claiming the next due escrows with FOR UPDATE
// SKIP LOCKED over the due index would put them on the range of the index
// that every other firing writes, so that concurrent firers would abort
// each other. CockroachDB has SKIP LOCKED since v22.2 and takes FOR NO
// KEY UPDATE as FOR UPDATE (not run against it here).
func (t *tx) ClaimEscrow(id string) (bool, error) {
	if err := t.check(true); err != nil {
		return false, err
	}
	var got string
	err := t.one(`SELECT id FROM escrows WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED`, []any{id}, &got)
	if !errors.Is(err, escrow.ErrNotFound) {
		if err == nil {
			if t.present == nil {
				t.present = make(map[string]bool)
			}
			t.present[id] = true
		}
		return err == nil, err
	}
	// No row: locked by another transaction, or not there at all.
	var exists bool
	if err := t.one(`SELECT EXISTS (SELECT FROM escrows WHERE id = $1)`, []any{id}, &exists); err != nil {
		return false, err
	}
	if !exists {
		return false, fmt.Errorf("pgstore: escrow %q: %w", id, escrow.ErrNotFound)
	}
	return false, nil
}

func (t *tx) DueEscrows(at time.Time, limit int) ([]string, error) {
	d, ns := boundTS(at)
	return all(t, `SELECT id FROM escrow_due WHERE next_due IS NOT NULL AND (next_due, next_due_ns) <= ($1, $2)
		ORDER BY next_due, next_due_ns, id LIMIT $3`, []any{d, ns, limitArg(limit)},
		func(r pgx.Rows) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
}

// PartyEscrows reads each role the query asks for from its own index, a
// page from each, and merges them; UNION drops an escrow met in two roles.
func (t *tx) PartyEscrows(q escrow.PartyQuery) ([]escrow.Escrow, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if q.Party == "" || q.Limit <= 0 {
		return []escrow.Escrow{}, nil
	}
	after := `true`
	args := []any{q.Party, limitArg(q.Limit)}
	if q.After != (escrow.EscrowPos{}) {
		at, ns := boundTS(q.After.CreatedAt)
		after = `(created_at, created_ns, id) < ($3, $4, $5)`
		args = append(args, at, ns, q.After.ID)
	}
	states := `true`
	if len(q.States) > 0 {
		s := make([]int16, len(q.States))
		for i, st := range q.States {
			s[i] = int16(st)
		}
		states = fmt.Sprintf(`state = ANY($%d)`, len(args)+1)
		args = append(args, s)
	}
	var pages []string
	for _, role := range []struct {
		role escrow.Role
		col  string
	}{{escrow.Buyer, "buyer"}, {escrow.Seller, "seller"}, {escrow.Arbiter, "arbiter"}} {
		if q.Role&role.role != 0 {
			pages = append(pages, `(SELECT id, created_at, created_ns FROM escrows WHERE `+role.col+` = $1 AND `+after+
				` AND `+states+` ORDER BY created_at DESC, created_ns DESC, id DESC LIMIT $2)`)
		}
	}
	if len(pages) == 0 {
		return []escrow.Escrow{}, nil
	}
	union := pages[0]
	for _, p := range pages[1:] {
		union += " UNION " + p
	}
	return all(t, `SELECT `+escrowCols+` FROM escrows WHERE id IN (
		SELECT id FROM (`+union+`) AS u ORDER BY created_at DESC, created_ns DESC, id DESC LIMIT $2)
		ORDER BY created_at DESC, created_ns DESC, id DESC`, args, scanEscrow)
}

func (t *tx) Escrows(fn func(escrow.Escrow) error) error {
	return each(t, `SELECT `+escrowCols+` FROM escrows ORDER BY id`, nil, scanEscrow, fn)
}
