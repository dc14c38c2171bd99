package pgstore

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
)

// This file holds the methods of escrow.Tx for accounts, the journal,
// events and consumers; balances.go holds those for balances.

const accountCols = `id, system, created_at, created_ns`

func scanAccount(r pgx.Row) (escrow.Account, error) {
	var a escrow.Account
	var at time.Time
	var ns int16
	err := r.Scan(&a.ID, &a.System, &at, &ns)
	a.CreatedAt = fromTS(at, ns)
	return a, err
}

// Account answers a read-write transaction from the store's kept rows if
// the account is among them (see rows.go).
func (t *tx) Account(id string) (escrow.Account, error) {
	if err := t.check(false); err != nil {
		return escrow.Account{}, err
	}
	key := rowKey{table: 'a', id: id}
	if r, ok, err := t.kept(key, accountGuard); err != nil || ok {
		return r.account, err
	}
	var xmin int64
	a, err := oneOf(t, `SELECT `+accountCols+`, xmin::text::bigint FROM accounts WHERE id = $1`, []any{id},
		func(r pgx.Row) (escrow.Account, error) {
			var a escrow.Account
			var at time.Time
			var ns int16
			err := r.Scan(&a.ID, &a.System, &at, &ns, &xmin)
			a.CreatedAt = fromTS(at, ns)
			return a, err
		})
	if err == nil {
		t.readRow(key, keptRow{xmin: xmin, account: a})
	}
	return a, err
}

// accountGuard is the guard of a kept account (see rows.go).
func accountGuard(r keptRow) (string, []any) {
	at, ns := ts(r.account.CreatedAt)
	return guarded(`SELECT FROM accounts WHERE id = $1 AND xmin::text::bigint = $2 AND system = $3
			AND created_at = $4 AND created_ns = $5`),
		[]any{r.account.ID, r.xmin, r.account.System, at, ns}
}

func (t *tx) PutAccount(a escrow.Account) error {
	if err := t.check(true); err != nil {
		return err
	}
	at, ns := ts(a.CreatedAt)
	key := rowKey{table: 'a', id: a.ID}
	t.wrote(key)
	kept := escrow.Account{ID: a.ID, System: a.System, CreatedAt: fromTS(at, ns)} // as a read returns it
	return t.execThen(`INSERT INTO accounts (`+accountCols+`) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET system = $2, created_at = $3, created_ns = $4
		RETURNING xmin::text::bigint`, []any{a.ID, a.System, at, ns},
		t.wroteRow(key, func(xmin int64) keptRow { return keptRow{xmin: xmin, account: kept} }))
}

func (t *tx) Accounts(fn func(escrow.Account) error) error {
	return each(t, `SELECT `+accountCols+` FROM accounts ORDER BY id`, nil,
		func(r pgx.Rows) (escrow.Account, error) { return scanAccount(r) }, fn)
}

func (t *tx) AppendEntry(e *escrow.Entry) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := checkMinor("entry", e.Currency); err != nil {
		return err
	}
	at, ns := ts(e.At)
	accounts, buckets, changes := make([]string, len(e.Postings)), make([]int16, len(e.Postings)), make([]int64, len(e.Postings))
	for i, p := range e.Postings {
		accounts[i], buckets[i], changes[i] = p.Account, int16(p.Bucket), p.Change
	}
	// One statement, one round trip: store the entry and its postings,
	// unnumbered; they are numbered when published (see publish.go).
	return t.appendRows(`WITH e AS (
			INSERT INTO entries (xid, at, at_ns, kind, escrow, currency, minor)
			VALUES (pg_current_xact_id(), $1, $2, $3, $4, $5, $6)
			RETURNING id, xid),
		p AS (
			INSERT INTO postings (entry, idx, account, bucket, change)
			SELECT e.id, (p.ord - 1)::smallint, p.account, p.bucket, p.change
			FROM e, unnest($7::text[], $8::smallint[], $9::bigint[]) WITH ORDINALITY AS p(account, bucket, change, ord))
		SELECT xid::text::bigint FROM e`,
		[]any{at, ns, string(e.Kind), e.Escrow, e.Currency.Code, e.Currency.Minor, accounts, buckets, changes},
		func() { e.Seq = 0 }) // numbered when published
}

// entries reads the entries whose Seq the subquery sel selects (in its
// ascending order), with their postings.
func (t *tx) entries(sel string, args ...any) ([]escrow.Entry, error) {
	return t.entryRows(`SELECT e.id, e.seq, e.at, e.at_ns, e.kind, e.escrow, e.currency, e.minor, p.account, p.bucket, p.change
		FROM (`+sel+`) AS s JOIN entries e ON e.seq = s.seq LEFT JOIN postings p ON p.entry = e.id
		ORDER BY e.seq, p.idx`, args...)
}

// entryRows reads entries from sql, which selects an entry's id and
// columns with one of its postings per row, the rows of an entry together
// and in posting order. An entry not yet numbered has Seq 0.
func (t *tx) entryRows(sql string, args ...any) ([]escrow.Entry, error) {
	type row struct {
		id      int64
		e       escrow.Entry
		posting escrow.Posting
		has     bool
	}
	rows, err := all(t, sql, args, func(r pgx.Rows) (row, error) {
		var x row
		var seq *int64
		var at time.Time
		var ns int16
		var acct *string
		var bucket *int16
		var change *int64
		err := r.Scan(&x.id, &seq, &at, &ns, &x.e.Kind, &x.e.Escrow, &x.e.Currency.Code, &x.e.Currency.Minor, &acct, &bucket, &change)
		if seq != nil {
			x.e.Seq = uint64(*seq)
		}
		x.e.At = fromTS(at, ns)
		if acct != nil {
			x.has = true
			x.posting = escrow.Posting{Account: *acct, Bucket: escrow.Bucket(*bucket), Change: *change}
		}
		return x, err
	})
	if err != nil {
		return nil, err
	}
	out := []escrow.Entry{}
	for i, r := range rows {
		if i == 0 || r.id != rows[i-1].id {
			out = append(out, r.e)
		}
		if r.has {
			e := &out[len(out)-1]
			e.Postings = append(e.Postings, r.posting)
		}
	}
	return out, nil
}

// Entries and Journal read only numbered entries: see publish.go.

func (t *tx) Entries(account string, after uint64, limit int) ([]escrow.Entry, error) {
	return t.entries(`SELECT DISTINCT seq FROM postings WHERE account = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		account, seqArg(after), limitArg(limit))
}

func (t *tx) Journal(after uint64, limit int) ([]escrow.Entry, error) {
	return t.entries(`SELECT seq FROM entries WHERE seq > $1 ORDER BY seq LIMIT $2`, seqArg(after), limitArg(limit))
}

const eventCols = `seq, type, at, at_ns, account, escrow, buyer, seller, actor, by_timer, state, currency, minor, amount, fee, note, metadata`

func (t *tx) AppendEvent(ev *escrow.Event) error {
	if err := t.check(true); err != nil {
		return err
	}
	c := currencyOf(ev.Amount, ev.Fee)
	what := fmt.Sprintf("event %s", ev.Type)
	amt, err := amount(what, ev.Amount, c)
	if err != nil {
		return err
	}
	fee, err := amount(what, ev.Fee, c)
	if err != nil {
		return err
	}
	var code *string
	var minor *int16
	if c != (escrow.Currency{}) {
		m := int16(c.Minor)
		code, minor = &c.Code, &m
	}
	var meta []byte
	if len(ev.Metadata) > 0 {
		if meta, err = json.Marshal(ev.Metadata); err != nil {
			return fmt.Errorf("pgstore: event metadata: %w", err)
		}
	}
	at, ns := ts(ev.At)
	// Stored unnumbered; publishing numbers it and notifies the
	// listeners (see publish.go and notify.go).
	return t.appendRows(`INSERT INTO events (xid, `+eventCols[len("seq, "):]+`)
		VALUES (pg_current_xact_id(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		RETURNING xid::text::bigint`,
		[]any{string(ev.Type), at, ns, ev.Account, ev.Escrow, ev.Buyer, ev.Seller, ev.Actor, ev.ByTimer, int16(ev.State),
			code, minor, amt, fee, ev.Note, meta},
		func() { ev.Seq = 0 }) // numbered when published
}

func scanEvent(r pgx.Rows) (escrow.Event, error) {
	var ev escrow.Event
	var at time.Time
	var ns, state int16
	var code *string
	var minor *int16
	var amt, fee *int64
	var meta []byte
	err := r.Scan(&ev.Seq, &ev.Type, &at, &ns, &ev.Account, &ev.Escrow, &ev.Buyer, &ev.Seller, &ev.Actor, &ev.ByTimer,
		&state, &code, &minor, &amt, &fee, &ev.Note, &meta)
	if err != nil {
		return ev, err
	}
	ev.At, ev.State = fromTS(at, ns), escrow.State(state)
	if code != nil {
		c := escrow.Currency{Code: *code, Minor: int(*minor)}
		ev.Amount, ev.Fee = money(amt, c), money(fee, c)
	}
	if meta != nil {
		if err := json.Unmarshal(meta, &ev.Metadata); err != nil {
			return ev, fmt.Errorf("event %d metadata: %w", ev.Seq, err)
		}
	}
	return ev, nil
}

func (t *tx) Events(after uint64, limit int) ([]escrow.Event, error) {
	return all(t, `SELECT `+eventCols+` FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`,
		[]any{seqArg(after), limitArg(limit)}, scanEvent)
}

func (t *tx) EscrowEvents(id string, after uint64, limit int) ([]escrow.Event, error) {
	if id == "" { // the index leaves out the events of no escrow
		return []escrow.Event{}, t.check(false)
	}
	return all(t, `SELECT `+eventCols+` FROM events WHERE escrow = $1 AND escrow <> '' AND seq > $2 ORDER BY seq LIMIT $3`,
		[]any{id, seqArg(after), limitArg(limit)}, scanEvent)
}

const consumerCols = `name, seq, updated_at, updated_ns`

func scanConsumer(r pgx.Row) (escrow.Consumer, error) {
	var c escrow.Consumer
	var at time.Time
	var ns int16
	err := r.Scan(&c.Name, &c.Seq, &at, &ns)
	c.UpdatedAt = fromTS(at, ns)
	return c, err
}

func (t *tx) Consumer(name string) (escrow.Consumer, error) {
	return oneOf(t, `SELECT `+consumerCols+` FROM consumers WHERE name = $1`, []any{name}, scanConsumer)
}

func (t *tx) PutConsumer(c escrow.Consumer) error {
	if c.Seq > math.MaxInt64 { // the column is a BIGINT, as every Seq is
		return fmt.Errorf("pgstore: consumer %q: %w: Seq %d past the largest a store numbers", c.Name, escrow.ErrInvalidArgument, c.Seq)
	}
	at, ns := ts(c.UpdatedAt)
	return t.exec(`INSERT INTO consumers (`+consumerCols+`) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET seq = $2, updated_at = $3, updated_ns = $4`, c.Name, seqArg(c.Seq), at, ns)
}

func (t *tx) Consumers(fn func(escrow.Consumer) error) error {
	return each(t, `SELECT `+consumerCols+` FROM consumers ORDER BY name`, nil,
		func(r pgx.Rows) (escrow.Consumer, error) { return scanConsumer(r) }, fn)
}
