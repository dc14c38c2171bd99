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
// any store on PostgreSQL, and what pgstore spends beyond them. Three more
// baselines split them. Each runs the minimal baseline's own four
// statements, one transaction a call, in one round trip a call, with what
// the package's documentation demands of a store and nothing else:
//
//   - minimal-serializable: at SERIALIZABLE isolation, each call in its own
//     BEGIN … COMMIT, run again after a serialization failure or a
//     deadlock, as Update does ("Transactions" in the package
//     documentation);
//   - minimal-numbered: that, and events and journal entries numbered with
//     no gaps in commit order without a counter row that every writer
//     updates ("Numbering"): the rows carry their transaction's id and no
//     number, and the round trip that commits also calls a function that
//     numbers them as pgstore_publish does;
//   - minimal-blocks: that, but numbered another way: each transaction's
//     rows get one row of m_blocks, the first numbers of its events and
//     entries, and a row's number is its block's first plus its rank in
//     the block, worked out when it is read, so that numbering writes one
//     row a transaction where pgstore_publish writes every row again.
//     Reads would pay for it with a join; the benchmark reads nothing.
//
// Their tables are the minimal's, with each entry's and event's number in
// num (seq stays the identity the minimal's statements return), and
// without the foreign key from postings to entries, which under
// serializable isolation makes every two writers conflict (pgstore
// dropped it for that reason). None has idempotency, timers, a party
// index, kept rows or striped system balances, and none checks state or
// money beyond the minimal's guards. All turn sequential scans off on
// their connections, as Update does in its transactions, since a
// sequential scan under serializable isolation conflicts with every
// writer of the table.
const guaranteedSchema = minimalEscrows + `
CREATE TABLE m_entries (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL,
	escrow text NOT NULL, xid xid8 NOT NULL DEFAULT pg_current_xact_id(), num bigint);
CREATE TABLE m_postings (seq bigint NOT NULL, idx smallint NOT NULL, account text NOT NULL,
	bucket smallint NOT NULL, change bigint NOT NULL, num bigint, PRIMARY KEY (seq, idx));
CREATE INDEX m_postings_account ON m_postings (account, num);
CREATE TABLE m_events (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, type text NOT NULL, at timestamptz NOT NULL,
	escrow text NOT NULL, actor text NOT NULL, state smallint NOT NULL, amount bigint, fee bigint,
	xid xid8 NOT NULL DEFAULT pg_current_xact_id(), num bigint);
INSERT INTO m_balances VALUES ('@fees', 0, 0);
`

// numberedSchema adds to guaranteedSchema what minimal-numbered numbers
// with: each table's numbers, unique, and its rows still to number.
const numberedSchema = `
CREATE UNIQUE INDEX m_entries_num ON m_entries (num) WHERE num IS NOT NULL;
CREATE INDEX m_entries_unnumbered ON m_entries (xid, seq) WHERE num IS NULL;
CREATE UNIQUE INDEX m_events_num ON m_events (num) WHERE num IS NOT NULL;
CREATE INDEX m_events_unnumbered ON m_events (xid, seq) WHERE num IS NULL;

CREATE FUNCTION m_number() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	horizon xid8;
	base    bigint;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('m_number:' || current_schema()));
	SELECT pg_snapshot_xmin(pg_current_snapshot()) INTO horizon;
	SELECT coalesce(max(num), 0) INTO base FROM m_events WHERE num IS NOT NULL;
	UPDATE m_events e SET num = base + o.n
	FROM (SELECT seq, row_number() OVER (ORDER BY xid, seq) AS n
		FROM m_events WHERE num IS NULL AND xid < horizon) o
	WHERE e.seq = o.seq;
	SELECT coalesce(max(num), 0) INTO base FROM m_entries WHERE num IS NOT NULL;
	WITH o AS (
		SELECT seq, base + row_number() OVER (ORDER BY xid, seq) AS num
		FROM m_entries WHERE num IS NULL AND xid < horizon),
	numbered AS (
		UPDATE m_entries e SET num = o.num FROM o WHERE e.seq = o.seq)
	UPDATE m_postings p SET num = o.num FROM o WHERE p.seq = o.seq;
	RETURN horizon::text::bigint;
END $$;

`

// blocksSchema adds to guaranteedSchema what minimal-blocks numbers with:
// its blocks, what it has numbered so far, and the rows by transaction.
const blocksSchema = `
CREATE INDEX m_events_xid ON m_events (xid, seq);
CREATE INDEX m_entries_xid ON m_entries (xid, seq);
CREATE TABLE m_blocks (xid xid8 PRIMARY KEY, event_base bigint NOT NULL, events integer NOT NULL,
	entry_base bigint NOT NULL, entries integer NOT NULL);
CREATE TABLE m_numbered (one boolean PRIMARY KEY DEFAULT true CHECK (one), horizon xid8 NOT NULL,
	events bigint NOT NULL, entries bigint NOT NULL);
INSERT INTO m_numbered VALUES (true, '0', 0, 0);

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

// setupGuaranteed makes a guaranteed baseline's tables, guaranteedSchema
// and then more, and its accounts, on a pool of its own, which shares
// pool's configuration and round-trip counter; number, if not empty, is
// the function that more makes and that numbers the rows after each
// commit. Each baseline has only the indexes it uses, so that none pays
// for another's.
func setupGuaranteed(b *testing.B, pool *pgxpool.Pool, workers int, more, number string) (lifecycle, func() error) {
	ctx := context.Background()
	cfg := pool.Config()
	cfg.ConnConfig.RuntimeParams["enable_seqscan"] = "off"
	gp, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gp.Close)
	call := func(ctx context.Context, sql string, args []any) error {
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
	trades, sums := minimalTrades(b, gp, guaranteedSchema+more, workers, call)
	return trades, func() error {
		if err := sums(); err != nil {
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
		"m_number": `SELECT count(*), count(DISTINCT num), coalesce(min(num), 0), coalesce(max(num), 0) FROM %[1]s`,
		"m_number_blocks": `SELECT count(*), count(DISTINCT n), coalesce(min(n), 0), coalesce(max(n), 0) FROM (
			SELECT b.%[2]s_base + row_number() OVER (PARTITION BY r.xid ORDER BY r.seq) AS n
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
