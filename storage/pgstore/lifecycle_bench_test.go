package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
)

// BenchmarkLifecycle runs trades through their whole lifecycle (open,
// pay, ship, confirm, with a 1% fee to @fees) from 1, 16 and 64 workers,
// each worker trading between a buyer and a seller of its own, in several
// ways in one run and one database:
//
//   - pgstore: the ledger on this store, as a host runs it;
//   - minimal: the least SQL that makes the same row writes (an escrow row
//     inserted then updated three times, an event per call, the balances,
//     an entry and its postings for the payment and the release), one
//     statement per call at READ COMMITTED, numbered by sequences. It keeps
//     no idempotency, no timers and no gap-free numbering, and guards
//     states and balances without locks: a floor, not a ledger;
//   - minimal-serializable, minimal-numbered and minimal-blocks: the
//     minimal's statements with only what this package's documentation
//     demands of a store added, serializable transactions, and then
//     gap-free numbering after the commit in two ways (see
//     guarantees_bench_test.go): what those guarantees cost by themselves,
//     so that the distance from the minimal splits into theirs and
//     pgstore's own;
//   - pgstore-turns and pgstore-turns-nokeep: the ledger on two stores on
//     the same database, as two processes, each call of a trade on the
//     other store than the call before: every row a store kept has been
//     changed by the other when it reads it again, the worst case for
//     keeping rows; and the same with no rows kept (Options.KeptRows -1);
//   - pgledger: a plain Postgres ledger's transfer, as pgledger does it: one
//     SQL function that locks both accounts' rows in id order, checks and
//     moves the money and records the transfer and its two entries. A
//     lifecycle is two transfers, buyer to a holding account and holding
//     account to seller: no fee, no events, no escrow state.
//
// Each reports lifecycles/s, the 99th percentile of a lifecycle's time and
// the round trips to the server per lifecycle, retries included, the
// publishes among them (pgstore_publish, alone or in a batch), the round
// trips that failed (a failed attempt of a transaction ends with one:
// read failed-trips/lifecycle as retries), and the
// growth of its tables on disk per lifecycle (coarse: files grow by 8 KiB
// pages, so run a few hundred lifecycles for a figure), and then
// checks that no money was made or lost (for pgstore, the ledger's Check).
//
//	cd storage/pgstore && go test -run '^$' -bench Lifecycle -benchtime 400x
func BenchmarkLifecycle(b *testing.B) {
	for _, kind := range []struct {
		name  string
		setup func(b *testing.B, pool *pgxpool.Pool, workers int) (lifecycle, func() error)
	}{
		{"pgstore", setupLedger},
		{"pgstore-turns", func(b *testing.B, pool *pgxpool.Pool, workers int) (lifecycle, func() error) {
			return setupLedgers(b, pool, workers, nil)
		}},
		{"pgstore-turns-nokeep", func(b *testing.B, pool *pgxpool.Pool, workers int) (lifecycle, func() error) {
			return setupLedgers(b, pool, workers, &pgstore.Options{KeptRows: -1})
		}},
		{"minimal", setupMinimal},
		{"minimal-serializable", func(b *testing.B, pool *pgxpool.Pool, workers int) (lifecycle, func() error) {
			return setupGuaranteed(b, pool, workers, "", "")
		}},
		{"minimal-numbered", func(b *testing.B, pool *pgxpool.Pool, workers int) (lifecycle, func() error) {
			return setupGuaranteed(b, pool, workers, numberedSchema, "m_number")
		}},
		{"minimal-blocks", func(b *testing.B, pool *pgxpool.Pool, workers int) (lifecycle, func() error) {
			return setupGuaranteed(b, pool, workers, blocksSchema, "m_number_blocks")
		}},
		{"pgledger", setupTransfer},
	} {
		for _, workers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/workers=%d", kind.name, workers), func(b *testing.B) {
				counter := tripCounter{n: new(atomic.Int64), publishes: new(atomic.Int64), failed: new(atomic.Int64)}
				pool := benchPool(b, workers, counter)
				run, check := kind.setup(b, pool, workers)
				before := schemaBytes(b, pool)
				runLifecycles(b, workers, run, counter)
				b.ReportMetric(float64(schemaBytes(b, pool)-before)/float64(b.N), "disk-B/lifecycle")
				if err := check(); err != nil {
					b.Fatalf("after the run: %v", err)
				}
			})
		}
	}
}

// A lifecycle runs trade n of worker w from start to end.
type lifecycle func(ctx context.Context, w, n int) error

// runLifecycles runs b.N lifecycles from workers goroutines and reports
// the figures. First each worker runs one untimed lifecycle, so that every
// connection is open and has its statements prepared: a new backend's
// first statements are slow, and 64 of them at once would dominate a short
// run.
func runLifecycles(b *testing.B, workers int, run lifecycle, counter tripCounter) {
	ctx := context.Background()
	workers = min(workers, b.N) // a short run (-benchtime 1x) stays short
	warm := make([]error, workers)
	var warming sync.WaitGroup
	for w := range workers {
		warming.Add(1)
		go func() {
			defer warming.Done()
			warm[w] = run(ctx, w, -1)
		}()
	}
	warming.Wait()
	if err := errors.Join(warm...); err != nil {
		b.Fatal(err)
	}
	counter.reset()
	var next atomic.Int64
	took := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	b.ResetTimer()
	began := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; next.Add(1) <= int64(b.N); n++ {
				t0 := time.Now()
				if err := run(ctx, w, n); err != nil {
					b.Error(err)
					return
				}
				took[w] = append(took[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	b.StopTimer()
	all := slices.Concat(took...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	p99 := all[(len(all)*99+99)/100-1]
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "lifecycles/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(counter.n.Load())/float64(len(all)), "trips/lifecycle")
	b.ReportMetric(float64(counter.publishes.Load())/float64(len(all)), "publishes/lifecycle")
	b.ReportMetric(float64(counter.failed.Load())/float64(len(all)), "failed-trips/lifecycle")
}

// benchPool returns a pool on a new schema with a connection per worker,
// which counts with counter the round trips it makes.
func benchPool(b *testing.B, workers int, counter tripCounter) *pgxpool.Pool {
	return schemaPool(b, newSchema(b), func(cfg *pgxpool.Config) {
		cfg.ConnConfig.Tracer = counter
		cfg.MaxConns = int32(workers) + 1
	})
}

// schemaBytes returns the size on disk of the tables of the pool's
// schema, their indexes and TOAST included.
func schemaBytes(b *testing.B, pool *pgxpool.Pool) int64 {
	var n int64
	err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
		WHERE s.nspname = current_schema() AND c.relkind = 'r'`).Scan(&n)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// tripCounter counts the round trips a pool makes: a statement sent on
// its own, or a batch of them sent together; and, where its counters are
// not nil, the publishes among the statements, alone or in a batch, and
// the round trips that failed.
type tripCounter struct{ n, publishes, failed *atomic.Int64 }

func (c tripCounter) reset() {
	for _, n := range []*atomic.Int64{c.n, c.publishes, c.failed} {
		if n != nil {
			n.Store(0)
		}
	}
}

func (c tripCounter) countFailed(err error) {
	if c.failed != nil && err != nil {
		c.failed.Add(1)
	}
}

func (c tripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	c.countPublish(data.SQL)
	return ctx
}

func (c tripCounter) countPublish(sql string) {
	if c.publishes != nil && sql == "SELECT pgstore_publish()" {
		c.publishes.Add(1)
	}
}

func (c tripCounter) TraceQueryEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	c.countFailed(data.Err)
}

func (c tripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c tripCounter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	c.countPublish(data.SQL)
}

func (c tripCounter) TraceBatchEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	c.countFailed(data.Err)
}

const benchPrice = 10_000 // fen

func buyerOf(w int) string  { return fmt.Sprintf("buyer%d", w) }
func sellerOf(w int) string { return fmt.Sprintf("seller%d", w) }

// setupLedger opens the store and a ledger with a 1% fee, and gives each
// worker a buyer with money and a seller.
func setupLedger(b *testing.B, pool *pgxpool.Pool, workers int) (lifecycle, func() error) {
	l := benchLedger(b, pool, nil)
	return ledgerTrades(b, l, l, workers)
}

// setupLedgers is setupLedger with two stores, opened with opts, whose
// ledgers take turns at the calls of a trade.
func setupLedgers(b *testing.B, pool *pgxpool.Pool, workers int, opts *pgstore.Options) (lifecycle, func() error) {
	return ledgerTrades(b, benchLedger(b, pool, opts), benchLedger(b, pool, opts), workers)
}

// benchLedger opens a store on pool with opts and a ledger on it with a
// 1% fee.
func benchLedger(b *testing.B, pool *pgxpool.Pool, opts *pgstore.Options) *escrow.Ledger {
	ctx := context.Background()
	s, err := pgstore.New(ctx, pool, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	l, err := escrow.New(ctx, s, &escrow.Options{
		Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.01"), Rounding: escrow.RoundHalfEven},
	})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// ledgerTrades gives each worker a buyer with money and a seller, and
// returns the lifecycle that opens and ships with l and pays and
// confirms with other (l itself, or a ledger on another store).
func ledgerTrades(b *testing.B, l, other *escrow.Ledger, workers int) (lifecycle, func() error) {
	ctx := context.Background()
	for w := range workers {
		for _, id := range []string{buyerOf(w), sellerOf(w)} {
			if _, err := l.OpenAccount(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := l.Deposit(ctx, buyerOf(w), fen(int64(benchPrice)*int64(b.N+2))); err != nil {
			b.Fatal(err)
		}
	}
	return func(ctx context.Context, w, n int) error {
		id := fmt.Sprintf("w%d-%d", w, n)
		buyer, seller := buyerOf(w), sellerOf(w)
		if _, err := l.Open(ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Price: fen(benchPrice)}); err != nil {
			return err
		}
		if _, err := other.Pay(ctx, id, buyer); err != nil {
			return err
		}
		if _, err := l.Ship(ctx, id, seller, "T"+id); err != nil {
			return err
		}
		_, err := other.Confirm(ctx, id, buyer)
		return err
	}, func() error { return l.Check(ctx) }
}

// minimalEscrows holds the balances and escrows of the minimal baseline
// and of the guaranteed ones (guarantees_bench_test.go).
const minimalEscrows = `
CREATE TABLE m_balances (account text PRIMARY KEY, available bigint NOT NULL, held bigint NOT NULL);
CREATE TABLE m_escrows (id text PRIMARY KEY, state smallint NOT NULL, buyer text NOT NULL, seller text NOT NULL,
	price bigint NOT NULL, held bigint NOT NULL, released bigint NOT NULL, fees bigint NOT NULL,
	created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE INDEX m_escrows_buyer ON m_escrows (buyer, created_at, id);
CREATE INDEX m_escrows_seller ON m_escrows (seller, created_at, id);
`

// minimalSchema holds the minimal baseline's tables: the columns the
// ledger's rows are found and checked by, and the same indexes on them.
const minimalSchema = minimalEscrows + `
CREATE TABLE m_entries (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, escrow text NOT NULL);
CREATE TABLE m_postings (seq bigint NOT NULL REFERENCES m_entries, idx smallint NOT NULL, account text NOT NULL,
	bucket smallint NOT NULL, change bigint NOT NULL, PRIMARY KEY (seq, idx));
CREATE INDEX m_postings_account ON m_postings (account, seq);
CREATE TABLE m_events (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, type text NOT NULL, at timestamptz NOT NULL,
	escrow text NOT NULL, actor text NOT NULL, state smallint NOT NULL, amount bigint, fee bigint);
INSERT INTO m_balances VALUES ('@fees', 0, 0);
`

// The minimal baseline's calls, one statement each. A call whose guard
// fails (the escrow in another state, too little money) writes nothing
// and returns no row.
const (
	minimalOpen = `WITH e AS (
		INSERT INTO m_escrows VALUES ($1, 1, $2, $3, $4, 0, 0, 0, now(), now()) RETURNING id)
	INSERT INTO m_events (type, at, escrow, actor, state) SELECT 'opened', now(), id, $2, 1 FROM e RETURNING seq`
	minimalPay = `WITH e AS (
		UPDATE m_escrows SET state = 2, held = price, updated_at = now() WHERE id = $1 AND state = 1
			AND (SELECT available FROM m_balances WHERE account = buyer) >= price
		RETURNING id, buyer, price),
	b AS (UPDATE m_balances SET available = available - e.price, held = held + e.price FROM e WHERE account = e.buyer RETURNING 1),
	j AS (INSERT INTO m_entries (at, kind, escrow) SELECT now(), 'pay', id FROM e RETURNING seq),
	p AS (INSERT INTO m_postings SELECT j.seq, x.idx, e.buyer, x.bucket, x.sign * e.price
		FROM j, e, (VALUES (0::smallint, 0::smallint, -1), (1, 1, 1)) AS x(idx, bucket, sign))
	INSERT INTO m_events (type, at, escrow, actor, state, amount) SELECT 'paid', now(), id, buyer, 2, price FROM e RETURNING seq`
	minimalShip = `WITH e AS (
		UPDATE m_escrows SET state = 3, updated_at = now() WHERE id = $1 AND state = 2 RETURNING id, seller)
	INSERT INTO m_events (type, at, escrow, actor, state) SELECT 'shipped', now(), id, seller, 3 FROM e RETURNING seq`
	minimalConfirm = `WITH e AS (
		UPDATE m_escrows SET state = 6, held = 0, released = price - $2, fees = $2, updated_at = now() WHERE id = $1 AND state = 3
		RETURNING id, buyer, seller, price),
	b AS (UPDATE m_balances SET held = held - e.price FROM e WHERE account = e.buyer RETURNING 1),
	s AS (UPDATE m_balances SET available = available + e.price - $2 FROM e WHERE account = e.seller RETURNING 1),
	f AS (UPDATE m_balances SET available = available + $2 FROM e WHERE account = '@fees' RETURNING 1),
	j AS (INSERT INTO m_entries (at, kind, escrow) SELECT now(), 'release', id FROM e RETURNING seq),
	p AS (INSERT INTO m_postings SELECT j.seq, x.idx, x.account, x.bucket, x.change
		FROM j, e, LATERAL (VALUES (0::smallint, e.buyer, 1::smallint, -e.price), (1, e.seller, 0, e.price - $2), (2, '@fees', 0, $2))
			AS x(idx, account, bucket, change))
	INSERT INTO m_events (type, at, escrow, actor, state, amount, fee) SELECT 'completed', now(), id, buyer, 6, price, $2 FROM e RETURNING seq`
)

// setupMinimal makes the minimal baseline's tables and accounts.
func setupMinimal(b *testing.B, pool *pgxpool.Pool, workers int) (lifecycle, func() error) {
	return minimalTrades(b, pool, minimalSchema, workers, func(ctx context.Context, sql string, args []any) error {
		var seq int64
		return pool.QueryRow(ctx, sql, args...).Scan(&seq)
	})
}

// minimalTrades makes the tables of schema, which holds the minimal
// baseline's, and each worker's buyer, with money, and seller. It returns
// the lifecycle that runs the minimal's calls through call, which fails
// unless its statement returned a row, and a check that the balances
// still add up to what the accounts were given.
func minimalTrades(b *testing.B, pool *pgxpool.Pool, schema string, workers int,
	call func(ctx context.Context, sql string, args []any) error) (lifecycle, func() error) {
	ctx := context.Background()
	if _, err := pool.Exec(ctx, schema); err != nil {
		b.Fatal(err)
	}
	for w := range workers {
		_, err := pool.Exec(ctx, `INSERT INTO m_balances VALUES ($1, $2, 0), ($3, 0, 0)`,
			buyerOf(w), int64(benchPrice)*int64(b.N+2), sellerOf(w))
		if err != nil {
			b.Fatal(err)
		}
	}
	const fee = benchPrice / 100
	return func(ctx context.Context, w, n int) error {
			id := fmt.Sprintf("w%d-%d", w, n)
			for _, c := range []struct {
				sql  string
				args []any
			}{
				{minimalOpen, []any{id, buyerOf(w), sellerOf(w), benchPrice}},
				{minimalPay, []any{id}},
				{minimalShip, []any{id}},
				{minimalConfirm, []any{id, fee}},
			} {
				if err := call(ctx, c.sql, c.args); err != nil {
					return fmt.Errorf("escrow %s: %w", id, err)
				}
			}
			return nil
		}, func() error {
			return sumIs(pool, `SELECT sum(available + held) FROM m_balances`, int64(benchPrice)*int64(b.N+2)*int64(workers))
		}
}

// sumIs checks that the sum sql selects is want.
func sumIs(pool *pgxpool.Pool, sql string, want int64) error {
	var got int64
	if err := pool.QueryRow(context.Background(), sql).Scan(&got); err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the balances sum to %d, the deposits to %d", got, want)
	}
	return nil
}

// transferSchema is a plain Postgres ledger after pgledger's design: an
// account row with its balance, a transfer row and an entry row per side,
// and one function that moves money, locking the two accounts in id order
// so that transfers between the same accounts never deadlock.
const transferSchema = `
CREATE TABLE l_accounts (id bigint PRIMARY KEY, name text UNIQUE NOT NULL, balance bigint NOT NULL, version bigint NOT NULL);
CREATE TABLE l_transfers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, from_id bigint NOT NULL REFERENCES l_accounts,
	to_id bigint NOT NULL REFERENCES l_accounts, amount bigint NOT NULL CHECK (amount > 0), at timestamptz NOT NULL);
CREATE TABLE l_entries (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account bigint NOT NULL REFERENCES l_accounts,
	transfer bigint NOT NULL REFERENCES l_transfers, change bigint NOT NULL, balance_after bigint NOT NULL, version bigint NOT NULL);
CREATE INDEX l_entries_account ON l_entries (account, id);
CREATE FUNCTION l_transfer(src bigint, dst bigint, amt bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	src_after bigint;
	src_version bigint;
	dst_after bigint;
	dst_version bigint;
	tid bigint;
BEGIN
	-- Both rows locked, the lower id first.
	PERFORM 1 FROM l_accounts WHERE id IN (src, dst) ORDER BY id FOR UPDATE;
	UPDATE l_accounts SET balance = balance - amt, version = version + 1 WHERE id = src AND balance >= amt
		RETURNING balance, version INTO src_after, src_version;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'account % lacks % for the transfer', src, amt USING ERRCODE = 'check_violation';
	END IF;
	UPDATE l_accounts SET balance = balance + amt, version = version + 1 WHERE id = dst
		RETURNING balance, version INTO dst_after, dst_version;
	INSERT INTO l_transfers (from_id, to_id, amount, at) VALUES (src, dst, amt, now()) RETURNING id INTO tid;
	INSERT INTO l_entries (account, transfer, change, balance_after, version)
		VALUES (src, tid, -amt, src_after, src_version), (dst, tid, amt, dst_after, dst_version);
	RETURN tid;
END $$;
`

// setupTransfer makes the pgledger-style ledger with a buyer, a holding
// account and a seller per worker.
func setupTransfer(b *testing.B, pool *pgxpool.Pool, workers int) (lifecycle, func() error) {
	ctx := context.Background()
	if _, err := pool.Exec(ctx, transferSchema); err != nil {
		b.Fatal(err)
	}
	for w := range workers {
		_, err := pool.Exec(ctx, `INSERT INTO l_accounts VALUES ($1, $2, $3, 0), ($1 + 1, $4, 0, 0), ($1 + 2, $5, 0, 0)`,
			3*w+1, buyerOf(w), int64(benchPrice)*int64(b.N+2), fmt.Sprintf("hold%d", w), sellerOf(w))
		if err != nil {
			b.Fatal(err)
		}
	}
	return func(ctx context.Context, w, n int) error {
			buyer, hold, seller := 3*w+1, 3*w+2, 3*w+3
			var tid int64
			if err := pool.QueryRow(ctx, `SELECT l_transfer($1, $2, $3)`, buyer, hold, benchPrice).Scan(&tid); err != nil {
				return err
			}
			return pool.QueryRow(ctx, `SELECT l_transfer($1, $2, $3)`, hold, seller, benchPrice).Scan(&tid)
		}, func() error {
			return sumIs(pool, `SELECT sum(balance) FROM l_accounts`, int64(benchPrice)*int64(b.N+2)*int64(workers))
		}
}
