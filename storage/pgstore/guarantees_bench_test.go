package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The minimal baseline keeps none of the guarantees this package gives,
// so its distance from pgstore mixes two costs: what the guarantees cost
// any store on PostgreSQL, and what pgstore spends beyond them. Two more
// baselines split them. Each runs the minimal baseline's four statements,
// one transaction a call, in one round trip a call, with what the
// package's documentation demands of a store and nothing else:
//
//   - minimal-serializable: at SERIALIZABLE isolation, each call in its own
//     BEGIN … COMMIT, run again after a serialization failure or a
//     deadlock, as Update does ("Isolation" in the package documentation);
//   - minimal-numbered: that, and events and journal entries numbered with
//     no gaps in commit order without a counter row that every writer
//     updates ("Numbering"): the rows carry their transaction's id and no
//     number, and the round trip that commits also calls a function that
//     numbers them as pgstore_publish does;
//   - minimal-blocks: that, but numbering as pgstore does not (yet): each
//     transaction's rows get one row of m_blocks, the first numbers of its
//     events and entries, and a row's number is its block's first plus its
//     rank in the block, worked out when it is read, so that numbering
//     writes one row a transaction where pgstore_publish writes every row
//     again. Reads would pay for it with a join; the benchmark reads
//     nothing.
//
// Neither has idempotency, timers, a party index, kept rows or striped
// system balances, and neither checks state or money beyond the minimal
// baseline's guards: ceilings, not ledgers. Both turn sequential scans off
// on their connections, as Update does in its transactions, since a
// sequential scan under serializable isolation conflicts with every
// writer of the table.
const guaranteedSchema = `
CREATE TABLE m_balances (account text PRIMARY KEY, available bigint NOT NULL, held bigint NOT NULL);
CREATE TABLE m_escrows (id text PRIMARY KEY, state smallint NOT NULL, buyer text NOT NULL, seller text NOT NULL,
	price bigint NOT NULL, held bigint NOT NULL, released bigint NOT NULL, fees bigint NOT NULL,
	created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE INDEX m_escrows_buyer ON m_escrows (buyer, created_at, id);
CREATE INDEX m_escrows_seller ON m_escrows (seller, created_at, id);
CREATE TABLE m_entries (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
	seq bigint, at timestamptz NOT NULL, kind text NOT NULL, escrow text NOT NULL);
CREATE UNIQUE INDEX m_entries_seq ON m_entries (seq) WHERE seq IS NOT NULL;
CREATE INDEX m_entries_unnumbered ON m_entries (xid, id) WHERE seq IS NULL;
CREATE TABLE m_postings (entry bigint NOT NULL, idx smallint NOT NULL, seq bigint, account text NOT NULL,
	bucket smallint NOT NULL, change bigint NOT NULL, PRIMARY KEY (entry, idx));
CREATE INDEX m_postings_account ON m_postings (account, seq);
CREATE TABLE m_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
	seq bigint, type text NOT NULL, at timestamptz NOT NULL, escrow text NOT NULL, actor text NOT NULL,
	state smallint NOT NULL, amount bigint, fee bigint);
CREATE UNIQUE INDEX m_events_seq ON m_events (seq) WHERE seq IS NOT NULL;
CREATE INDEX m_events_unnumbered ON m_events (xid, id) WHERE seq IS NULL;
INSERT INTO m_balances VALUES ('@fees', 0, 0);

CREATE FUNCTION m_number() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	horizon xid8;
	base    bigint;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('m_number:' || current_schema()));
	SELECT pg_snapshot_xmin(pg_current_snapshot()) INTO horizon;
	SELECT coalesce(max(seq), 0) INTO base FROM m_events WHERE seq IS NOT NULL;
	UPDATE m_events e SET seq = base + o.n
	FROM (SELECT id, row_number() OVER (ORDER BY xid, id) AS n
		FROM m_events WHERE seq IS NULL AND xid < horizon) o
	WHERE e.id = o.id;
	SELECT coalesce(max(seq), 0) INTO base FROM m_entries WHERE seq IS NOT NULL;
	WITH o AS (
		SELECT id, base + row_number() OVER (ORDER BY xid, id) AS seq
		FROM m_entries WHERE seq IS NULL AND xid < horizon),
	numbered AS (
		UPDATE m_entries e SET seq = o.seq FROM o WHERE e.id = o.id)
	UPDATE m_postings p SET seq = o.seq FROM o WHERE p.entry = o.id;
	RETURN horizon::text::bigint;
END $$;

CREATE TABLE m_blocks (xid xid8 PRIMARY KEY, event_base bigint NOT NULL, events integer NOT NULL,
	entry_base bigint NOT NULL, entries integer NOT NULL);
CREATE TABLE m_numbered (one boolean PRIMARY KEY DEFAULT true CHECK (one), horizon xid8 NOT NULL,
	events bigint NOT NULL, entries bigint NOT NULL);
INSERT INTO m_numbered VALUES (true, '0', 0, 0);
CREATE INDEX m_events_xid ON m_events (xid, id);
CREATE INDEX m_entries_xid ON m_entries (xid, id);

CREATE FUNCTION m_number_blocks() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	upto xid8;
	done m_numbered;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('m_number:' || current_schema()));
	SELECT pg_snapshot_xmin(pg_current_snapshot()) INTO upto;
	SELECT * INTO done FROM m_numbered WHERE one;
	IF upto > done.horizon THEN
		WITH ev AS (SELECT xid, count(*) AS n FROM m_events WHERE xid >= done.horizon AND xid < upto GROUP BY xid),
		en AS (SELECT xid, count(*) AS n FROM m_entries WHERE xid >= done.horizon AND xid < upto GROUP BY xid),
		t AS (SELECT xid, coalesce(ev.n, 0) AS events, coalesce(en.n, 0) AS entries FROM ev FULL JOIN en USING (xid)),
		b AS (INSERT INTO m_blocks
			SELECT xid, done.events + sum(events) OVER w - events, events, done.entries + sum(entries) OVER w - entries, entries
			FROM t WINDOW w AS (ORDER BY xid)
			RETURNING events, entries)
		UPDATE m_numbered SET horizon = upto,
			events = m_numbered.events + (SELECT coalesce(sum(events), 0) FROM b),
			entries = m_numbered.entries + (SELECT coalesce(sum(entries), 0) FROM b)
		WHERE one AND EXISTS (SELECT FROM b);
	END IF;
	RETURN upto::text::bigint;
END $$;
`

// The calls of the guaranteed baselines: the minimal baseline's, on
// guaranteedSchema's tables.
const (
	guaranteedOpen = `WITH e AS (
		INSERT INTO m_escrows VALUES ($1, 1, $2, $3, $4, 0, 0, 0, now(), now()) RETURNING id)
	INSERT INTO m_events (type, at, escrow, actor, state) SELECT 'opened', now(), id, $2, 1 FROM e RETURNING id`
	guaranteedPay = `WITH e AS (
		UPDATE m_escrows SET state = 2, held = price, updated_at = now() WHERE id = $1 AND state = 1
			AND (SELECT available FROM m_balances WHERE account = buyer) >= price
		RETURNING id, buyer, price),
	b AS (UPDATE m_balances SET available = available - e.price, held = held + e.price FROM e WHERE account = e.buyer RETURNING 1),
	j AS (INSERT INTO m_entries (at, kind, escrow) SELECT now(), 'pay', id FROM e RETURNING id),
	p AS (INSERT INTO m_postings (entry, idx, account, bucket, change) SELECT j.id, x.idx, e.buyer, x.bucket, x.sign * e.price
		FROM j, e, (VALUES (0::smallint, 0::smallint, -1), (1, 1, 1)) AS x(idx, bucket, sign))
	INSERT INTO m_events (type, at, escrow, actor, state, amount) SELECT 'paid', now(), id, buyer, 2, price FROM e RETURNING id`
	guaranteedShip = `WITH e AS (
		UPDATE m_escrows SET state = 3, updated_at = now() WHERE id = $1 AND state = 2 RETURNING id, seller)
	INSERT INTO m_events (type, at, escrow, actor, state) SELECT 'shipped', now(), id, seller, 3 FROM e RETURNING id`
	guaranteedConfirm = `WITH e AS (
		UPDATE m_escrows SET state = 6, held = 0, released = price - $2, fees = $2, updated_at = now() WHERE id = $1 AND state = 3
		RETURNING id, buyer, seller, price),
	b AS (UPDATE m_balances SET held = held - e.price FROM e WHERE account = e.buyer RETURNING 1),
	s AS (UPDATE m_balances SET available = available + e.price - $2 FROM e WHERE account = e.seller RETURNING 1),
	f AS (UPDATE m_balances SET available = available + $2 FROM e WHERE account = '@fees' RETURNING 1),
	j AS (INSERT INTO m_entries (at, kind, escrow) SELECT now(), 'release', id FROM e RETURNING id),
	p AS (INSERT INTO m_postings (entry, idx, account, bucket, change) SELECT j.id, x.idx, x.account, x.bucket, x.change
		FROM j, e, LATERAL (VALUES (0::smallint, e.buyer, 1::smallint, -e.price), (1, e.seller, 0, e.price - $2), (2, '@fees', 0, $2))
			AS x(idx, account, bucket, change))
	INSERT INTO m_events (type, at, escrow, actor, state, amount, fee) SELECT 'completed', now(), id, buyer, 6, price, $2 FROM e RETURNING id`
)

// setupGuaranteed makes a guaranteed baseline's tables and accounts on a
// pool of its own, which shares pool's configuration and round-trip
// counter; number, if not empty, is the function that numbers the rows
// after each commit.
func setupGuaranteed(b *testing.B, pool *pgxpool.Pool, workers int, number string) (lifecycle, func() error) {
	ctx := context.Background()
	cfg := pool.Config()
	cfg.ConnConfig.RuntimeParams["enable_seqscan"] = "off"
	gp, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gp.Close)
	if _, err := gp.Exec(ctx, guaranteedSchema); err != nil {
		b.Fatal(err)
	}
	for w := range workers {
		_, err := gp.Exec(ctx, `INSERT INTO m_balances VALUES ($1, $2, 0), ($3, 0, 0)`,
			buyerOf(w), int64(benchPrice)*int64(b.N+2), sellerOf(w))
		if err != nil {
			b.Fatal(err)
		}
	}
	const fee = benchPrice / 100
	call := func(ctx context.Context, sql string, args ...any) error {
		c, err := gp.Acquire(ctx)
		if err != nil {
			return err
		}
		defer c.Release()
		for attempt := 0; ; attempt++ {
			err := guaranteedCall(ctx, c.Conn(), number, sql, args)
			var pe *pgconn.PgError
			if err == nil || attempt == 20 || !errors.As(err, &pe) || (pe.Code != "40001" && pe.Code != "40P01") {
				return err
			}
			if _, err := c.Exec(ctx, `ROLLBACK`); err != nil {
				return err
			}
			time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond)<<min(attempt, 6))) + 1)
		}
	}
	return func(ctx context.Context, w, n int) error {
			id := fmt.Sprintf("w%d-%d", w, n)
			for _, c := range []struct {
				sql  string
				args []any
			}{
				{guaranteedOpen, []any{id, buyerOf(w), sellerOf(w), benchPrice}},
				{guaranteedPay, []any{id}},
				{guaranteedShip, []any{id}},
				{guaranteedConfirm, []any{id, fee}},
			} {
				if err := call(ctx, c.sql, c.args...); err != nil {
					return fmt.Errorf("escrow %s: %w", id, err)
				}
			}
			return nil
		}, func() error {
			if err := sumIs(gp, `SELECT sum(available + held) FROM m_balances`, int64(benchPrice)*int64(b.N+2)*int64(workers)); err != nil {
				return err
			}
			return guaranteedCheck(gp, number)
		}
}

// guaranteedCall runs one call in one round trip: its statement, which
// must return a row, in a serializable transaction, and then the
// function number, if not empty.
func guaranteedCall(ctx context.Context, conn *pgx.Conn, number string, sql string, args []any) error {
	batch := &pgx.Batch{}
	batch.Queue(`BEGIN ISOLATION LEVEL SERIALIZABLE`)
	batch.Queue(sql, args...)
	batch.Queue(`COMMIT`)
	if number != "" {
		batch.Queue(`SELECT ` + number + `()`)
	}
	br := conn.SendBatch(ctx, batch)
	_, err := br.Exec()
	if err == nil {
		var id int64
		err = br.QueryRow().Scan(&id)
	}
	if err == nil {
		_, err = br.Exec()
	}
	if err == nil && number != "" {
		var horizon int64
		err = br.QueryRow().Scan(&horizon)
	}
	return errors.Join(err, br.Close())
}

// guaranteedCheck checks that every call ran once and, if number is not
// empty, that once it has run a last time the events and entries are
// numbered 1 to n with no gap.
func guaranteedCheck(pool *pgxpool.Pool, number string) error {
	ctx := context.Background()
	var escrows, events, entries int64
	err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM m_escrows WHERE state = 6), (SELECT count(*) FROM m_events),
		(SELECT count(*) FROM m_entries)`).Scan(&escrows, &events, &entries)
	if err != nil {
		return err
	}
	if events != 4*escrows || entries != 2*escrows {
		return fmt.Errorf("%d events and %d entries for %d completed escrows, want 4 and 2 each", events, entries, escrows)
	}
	if number == "" {
		return nil
	}
	if _, err := pool.Exec(ctx, `SELECT `+number+`()`); err != nil {
		return err
	}
	// The numbers as a reader sees them: a row's own, or its block's first
	// plus its rank in the block.
	numbers := map[string]string{
		"m_number": `SELECT count(*), count(DISTINCT seq), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM %[1]s`,
		"m_number_blocks": `SELECT count(*), count(DISTINCT n), coalesce(min(n), 0), coalesce(max(n), 0) FROM (
			SELECT b.%[2]s_base + row_number() OVER (PARTITION BY r.xid ORDER BY r.id) AS n
			FROM %[1]s r JOIN m_blocks b USING (xid)) numbered`,
	}
	for _, t := range []struct {
		table, block string
		want         int64
	}{{"m_events", "event", events}, {"m_entries", "entry", entries}} {
		table, want := t.table, t.want
		var n, distinct, low, high int64
		sql := fmt.Sprintf(numbers[number], table, t.block)
		if err := pool.QueryRow(ctx, sql).Scan(&n, &distinct, &low, &high); err != nil {
			return err
		}
		if n != want || distinct != want || low != 1 || high != want {
			return fmt.Errorf("%s: %d of %d rows numbered, %d distinct numbers from %d to %d", table, n, want, distinct, low, high)
		}
	}
	return nil
}
