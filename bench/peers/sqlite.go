package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the "sqlite" driver, pure Go
)

// sqliteStore keeps the escrow tables in SQLite, in WAL mode with
// synchronous=FULL: each commit is fsynced before it returns.
//
// It writes through one connection. SQLite has one writer at a time
// whatever the number of connections, and a second connection that finds
// the write lock taken waits in SQLite's busy handler, which sleeps for
// milliseconds; one connection makes the writers queue in Go instead,
// which is the faster of the two and the usual advice.
type sqliteStore struct {
	peer
	db    *sql.DB
	stmts map[string]*sql.Stmt
}

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS accounts (
	id TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS balances (
	account TEXT NOT NULL,
	currency TEXT NOT NULL,
	available INTEGER NOT NULL,
	held INTEGER NOT NULL,
	PRIMARY KEY (account, currency)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entries (
	seq INTEGER PRIMARY KEY,
	at INTEGER NOT NULL,
	kind TEXT NOT NULL,
	escrow TEXT NOT NULL,
	currency TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS postings (
	entry INTEGER NOT NULL,
	n INTEGER NOT NULL,
	account TEXT NOT NULL,
	held INTEGER NOT NULL,
	change INTEGER NOT NULL,
	PRIMARY KEY (entry, n)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS postings_by_account ON postings (account, entry);
CREATE TABLE IF NOT EXISTS escrows (
	id TEXT PRIMARY KEY,
	buyer TEXT NOT NULL,
	seller TEXT NOT NULL,
	item TEXT NOT NULL,
	tracking TEXT NOT NULL,
	state TEXT NOT NULL,
	currency TEXT NOT NULL,
	price INTEGER NOT NULL,
	held INTEGER NOT NULL,
	released INTEGER NOT NULL,
	fees INTEGER NOT NULL,
	refunded INTEGER NOT NULL,
	fee_rate_ppm INTEGER NOT NULL,
	pay_within INTEGER NOT NULL,
	ship_within INTEGER NOT NULL,
	confirm_within INTEGER NOT NULL,
	refund_within INTEGER NOT NULL,
	version INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	state_at INTEGER NOT NULL,
	paid_at INTEGER NOT NULL,
	shipped_at INTEGER NOT NULL,
	due_at INTEGER NOT NULL,
	rating_due_at INTEGER NOT NULL,
	next_due INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS escrows_by_buyer ON escrows (buyer, created_at, id);
CREATE INDEX IF NOT EXISTS escrows_by_seller ON escrows (seller, created_at, id);
CREATE INDEX IF NOT EXISTS escrows_by_due ON escrows (next_due, id) WHERE next_due > 0;
CREATE TABLE IF NOT EXISTS events (
	seq INTEGER PRIMARY KEY,
	type TEXT NOT NULL,
	at INTEGER NOT NULL,
	escrow TEXT NOT NULL,
	buyer TEXT NOT NULL,
	seller TEXT NOT NULL,
	actor TEXT NOT NULL,
	state TEXT NOT NULL,
	amount INTEGER NOT NULL,
	fee INTEGER NOT NULL,
	currency TEXT NOT NULL,
	note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_escrow ON events (escrow, seq) WHERE escrow <> '';
`

const tradeColumns = `id, buyer, seller, item, tracking, state, currency, price, held, released, fees, refunded,
	fee_rate_ppm, pay_within, ship_within, confirm_within, refund_within, version,
	created_at, updated_at, state_at, paid_at, shipped_at, due_at, rating_due_at, next_due`

var sqliteQueries = map[string]string{
	"account":    `SELECT 1 FROM accounts WHERE id = ?`,
	"putAccount": `INSERT INTO accounts (id, created_at) VALUES (?, ?)`,
	"balance":    `SELECT available, held FROM balances WHERE account = ? AND currency = ?`,
	"putBalance": `INSERT INTO balances (account, currency, available, held) VALUES (?, ?, ?, ?)
		ON CONFLICT (account, currency) DO UPDATE SET available = excluded.available, held = excluded.held`,
	"trade": `SELECT ` + tradeColumns + ` FROM escrows WHERE id = ?`,
	"putTrade": `INSERT INTO escrows (` + tradeColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET tracking = excluded.tracking, state = excluded.state,
		held = excluded.held, released = excluded.released, fees = excluded.fees,
		refunded = excluded.refunded, version = excluded.version, updated_at = excluded.updated_at,
		state_at = excluded.state_at, paid_at = excluded.paid_at, shipped_at = excluded.shipped_at,
		due_at = excluded.due_at, rating_due_at = excluded.rating_due_at, next_due = excluded.next_due`,
	"appendEntry":   `INSERT INTO entries (at, kind, escrow, currency) VALUES (?, ?, ?, ?)`,
	"appendPosting": `INSERT INTO postings (entry, n, account, held, change) VALUES (?, ?, ?, ?, ?)`,
	"appendEvent": `INSERT INTO events (type, at, escrow, buyer, seller, actor, state, amount, fee, currency, note)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	"journal": `SELECT seq, at, kind, escrow, currency FROM entries WHERE seq IN
		(SELECT DISTINCT entry FROM postings WHERE account = ? ORDER BY entry LIMIT ?) ORDER BY seq`,
	"postings": `SELECT account, held, change FROM postings WHERE entry = ? ORDER BY n`,
}

// openSQLite opens the database escrow.db in dir. Without fsync, it sets
// synchronous=OFF.
func openSQLite(dir string, m mode) (store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sync := "FULL"
	if m.noSync {
		sync = "OFF"
	}
	dsn := "file:" + filepath.Join(dir, "escrow.db") +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	s := &sqliteStore{db: db, stmts: map[string]*sql.Stmt{}}
	s.peer = newPeer(s, m)
	if err := s.init(sync); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *sqliteStore) init(sync string) error {
	ctx := context.Background()
	// Make sure the pragmas took: a benchmark of the wrong mode would
	// mislead.
	var mode string
	var level int
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if err := s.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&level); err != nil {
		return err
	}
	if want := map[string]int{"OFF": 0, "FULL": 2}[sync]; mode != "wal" || level != want {
		return fmt.Errorf("sqlite: journal_mode=%s synchronous=%d, want wal and %d", mode, level, want)
	}
	if _, err := s.db.ExecContext(ctx, sqliteSchema); err != nil {
		return err
	}
	for name, q := range sqliteQueries {
		st, err := s.db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", name, err)
		}
		s.stmts[name] = st
	}
	return s.update(ctx, setup)
}

func (s *sqliteStore) update(ctx context.Context, fn func(tables) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(&sqliteTx{ctx: ctx, tx: tx, s: s}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (s *sqliteStore) view(ctx context.Context, fn func(tables) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(&sqliteTx{ctx: ctx, tx: tx, s: s})
}

func (s *sqliteStore) close() error {
	for _, st := range s.stmts {
		st.Close()
	}
	return s.db.Close()
}

// sqliteTx is the tables of one SQLite transaction.
type sqliteTx struct {
	ctx context.Context
	tx  *sql.Tx
	s   *sqliteStore
}

func (t *sqliteTx) stmt(name string) *sql.Stmt { return t.tx.StmtContext(t.ctx, t.s.stmts[name]) }

func (t *sqliteTx) exec(name string, args ...any) (sql.Result, error) {
	return t.stmt(name).ExecContext(t.ctx, args...)
}

func (t *sqliteTx) accountExists(id string) (bool, error) {
	var one int
	err := t.stmt("account").QueryRowContext(t.ctx, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (t *sqliteTx) putAccount(id string, at int64) error {
	_, err := t.exec("putAccount", id, at)
	return err
}

func (t *sqliteTx) balance(account string) (balance, error) {
	var b balance
	err := t.stmt("balance").QueryRowContext(t.ctx, account, currency).Scan(&b.Available, &b.Held)
	if errors.Is(err, sql.ErrNoRows) {
		return balance{}, nil
	}
	return b, err
}

func (t *sqliteTx) putBalance(account string, b balance) error {
	_, err := t.exec("putBalance", account, currency, b.Available, b.Held)
	return err
}

func (t *sqliteTx) trade(id string) (trade, error) {
	var r trade
	var next int64
	err := t.stmt("trade").QueryRowContext(t.ctx, id).Scan(&r.ID, &r.Buyer, &r.Seller, &r.Item, &r.Tracking,
		&r.State, &r.Currency, &r.Price, &r.Held, &r.Released, &r.Fees, &r.Refunded,
		&r.FeeRatePPM, &r.PayWithin, &r.ShipWithin, &r.ConfirmWithin, &r.RefundWithin, &r.Version,
		&r.CreatedAt, &r.UpdatedAt, &r.StateAt, &r.PaidAt, &r.ShippedAt, &r.DueAt, &r.RatingDueAt, &next)
	if errors.Is(err, sql.ErrNoRows) {
		return r, errNotFound
	}
	return r, err
}

// putTrade upserts the row; SQLite moves it in the indexes.
func (t *sqliteTx) putTrade(old, r *trade) error {
	_, err := t.exec("putTrade", r.ID, r.Buyer, r.Seller, r.Item, r.Tracking,
		r.State, r.Currency, r.Price, r.Held, r.Released, r.Fees, r.Refunded,
		r.FeeRatePPM, r.PayWithin, r.ShipWithin, r.ConfirmWithin, r.RefundWithin, r.Version,
		r.CreatedAt, r.UpdatedAt, r.StateAt, r.PaidAt, r.ShippedAt, r.DueAt, r.RatingDueAt, r.nextDue())
	return err
}

func (t *sqliteTx) appendEntry(e *entry) error {
	res, err := t.exec("appendEntry", e.At, e.Kind, e.Escrow, e.Currency)
	if err != nil {
		return err
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return err
	}
	e.Seq = uint64(seq)
	for n, p := range e.Postings {
		if _, err := t.exec("appendPosting", seq, n, p.Account, p.Held, p.Change); err != nil {
			return err
		}
	}
	return nil
}

func (t *sqliteTx) appendEvent(ev *event) error {
	res, err := t.exec("appendEvent", ev.Type, ev.At, ev.Escrow, ev.Buyer, ev.Seller, ev.Actor,
		ev.State, ev.Amount, ev.Fee, ev.Currency, ev.Note)
	if err != nil {
		return err
	}
	seq, err := res.LastInsertId()
	ev.Seq = uint64(seq)
	return err
}

func (t *sqliteTx) journal(account string, limit int) ([]entry, error) {
	rows, err := t.stmt("journal").QueryContext(t.ctx, account, limit)
	if err != nil {
		return nil, err
	}
	var out []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.Seq, &e.At, &e.Kind, &e.Escrow, &e.Currency); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		rows, err := t.stmt("postings").QueryContext(t.ctx, out[i].Seq)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var p posting
			if err := rows.Scan(&p.Account, &p.Held, &p.Change); err != nil {
				rows.Close()
				return nil, err
			}
			out[i].Postings = append(out[i].Postings, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
