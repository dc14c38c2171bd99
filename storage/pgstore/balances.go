package pgstore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
)

// This file holds the methods of escrow.Tx for balances, and AddBalance.
//
// A user account's balance is one row of balances, which the ledger reads
// and writes. A system account's (its ID starts with '@': @world, @fees)
// is that row, if any, plus the rows of balance_stripes, which AddBalance
// adds to without reading; the view system_balances sums them. Every
// deposit and withdrawal posts to @world, and every release with a fee to
// @fees: as one row read and written, those transactions would all
// conflict with each other.

var _ escrow.BalanceAdder = (*tx)(nil)

// stripes is how many rows of balance_stripes a system balance in one
// currency is spread over. AddBalance picks the row by the server
// process of its connection (pg_backend_pid() % stripes), so that one
// connection, whose transactions run one after another, keeps writing one
// row, and two connections share one only when their process IDs fall
// together modulo stripes. A transaction that updates a row which another
// has updated since it began is aborted under SERIALIZABLE (and
// REPEATABLE READ), whether or not it read the row: so the fewer writers
// a row has, the fewer retries. 64 rows cover a pool of a few dozen
// connections with few shared rows, and a full read of a system balance
// is still one index range of at most 64 rows, on the rare paths that
// read one (Balance, Check, a dump).
const stripes = 64

// isSystem reports whether account is a system account, as the ledger
// has it: one whose balance may have stripes.
func isSystem(account string) bool { return strings.HasPrefix(account, "@") }

const balanceCols = `account, currency, minor, available, held`

func scanBalance(r pgx.Rows) (escrow.Balance, error) {
	var b escrow.Balance
	var avail, held *int64
	err := r.Scan(&b.Account, &b.Currency.Code, &b.Currency.Minor, &avail, &held)
	b.Available, b.Held = money(avail, b.Currency), money(held, b.Currency)
	return b, err
}

// balancesOf returns the table or view that holds account's balances,
// whole.
func balancesOf(account string) string {
	if isSystem(account) {
		return "system_balances"
	}
	return "balances"
}

func (t *tx) Balance(account, currency string) (escrow.Balance, error) {
	if a, ok := t.balances[balanceKey{account, currency}]; ok {
		if err := t.check(false); err != nil {
			return escrow.Balance{}, err
		}
		if !a.found {
			return a.b, escrow.ErrNotFound
		}
		return a.b, nil
	}
	if err := t.check(false); err != nil {
		return escrow.Balance{}, err
	}
	var b escrow.Balance
	var avail, held *int64
	if isSystem(account) {
		err := t.one(`SELECT `+balanceCols+` FROM system_balances WHERE account = $1 AND currency = $2`,
			[]any{account, currency}, &b.Account, &b.Currency.Code, &b.Currency.Minor, &avail, &held)
		b.Available, b.Held = money(avail, b.Currency), money(held, b.Currency)
		return b, err
	}
	key := rowKey{table: 'b', id: account, currency: currency}
	if r, ok, err := t.kept(key, balanceGuard); err != nil || ok {
		return r.balance, err
	}
	var xmin int64
	err := t.one(`SELECT `+balanceCols+`, xmin::text::bigint FROM balances WHERE account = $1 AND currency = $2`,
		[]any{account, currency}, &b.Account, &b.Currency.Code, &b.Currency.Minor, &avail, &held, &xmin)
	b.Available, b.Held = money(avail, b.Currency), money(held, b.Currency)
	if err == nil {
		t.readRow(key, keptRow{xmin: xmin, balance: b})
	}
	return b, err
}

// balanceGuard is the guard of a kept balance (see rows.go).
func balanceGuard(r keptRow) (string, []any) {
	b := r.balance
	return guarded(`SELECT FROM balances WHERE account = $1 AND currency = $2 AND xmin::text::bigint = $3
			AND minor = $4 AND available IS NOT DISTINCT FROM $5::bigint AND held IS NOT DISTINCT FROM $6::bigint`),
		[]any{b.Account, b.Currency.Code, r.xmin, int16(b.Currency.Minor), units(b.Available), units(b.Held)}
}

// units returns the column value of a balance's amount: nil for the zero
// Money, as a read gives it.
func units(m escrow.Money) *int64 {
	if m.Currency() == (escrow.Currency{}) {
		return nil
	}
	u := m.Units()
	return &u
}

// PutBalance sets the balance. A system account's is set whole: its row
// of balances takes the value and its stripes are removed, in one
// statement.
func (t *tx) PutBalance(b escrow.Balance) error {
	if err := t.check(true); err != nil {
		return err
	}
	delete(t.balances, balanceKey{b.Account, b.Currency.Code}) // read ahead, now stale
	what := fmt.Sprintf("balance of %q in %s", b.Account, b.Currency.Code)
	avail, err := amount(what, b.Available, b.Currency)
	if err != nil {
		return err
	}
	held, err := amount(what, b.Held, b.Currency)
	if err != nil {
		return err
	}
	put := `INSERT INTO balances (` + balanceCols + `) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account, currency) DO UPDATE SET minor = $3, available = $4, held = $5`
	if isSystem(b.Account) {
		put = `WITH gone AS (DELETE FROM balance_stripes WHERE account = $1 AND currency = $2) ` + put
		return t.exec(put, b.Account, b.Currency.Code, b.Currency.Minor, avail, held)
	}
	// A user's balance is kept as a read would return it (see rows.go).
	key := rowKey{table: 'b', id: b.Account, currency: b.Currency.Code}
	t.wrote(key)
	c := escrow.Currency{Code: b.Currency.Code, Minor: int(int16(b.Currency.Minor))}
	kept := escrow.Balance{Account: b.Account, Currency: c, Available: money(avail, c), Held: money(held, c)}
	return t.execThen(put+` RETURNING xmin::text::bigint`, []any{b.Account, b.Currency.Code, b.Currency.Minor, avail, held},
		t.wroteRow(key, func(xmin int64) keptRow { return keptRow{xmin: xmin, balance: kept} }))
}

// The bounds that let AddBalance keep a system balance within
// escrow.MaxUnits without reading its stripes: while the balances row is
// within baseBound and every stripe within stripeBound, the sum is within
// MaxUnits (baseBound + stripes*stripeBound <= MaxUnits). Both are past
// any real balance (stripeBound is 78 trillion yuan in fen).
const (
	baseBound   = escrow.MaxUnits / 2
	stripeBound = escrow.MaxUnits / (2 * stripes)
)

// AddBalance adds to a system account's balance without reading it, in
// one of its stripes; see escrow.BalanceAdder and stripes. It refuses a
// sum past escrow.MaxUnits with escrow.ErrAmountTooLarge, as the ledger
// does when it reads a balance, and writes nothing then: in one statement
// it reads the account's row of balances (which only PutBalance writes)
// and adds to the stripe only if the row is within baseBound and the
// stripe stays within stripeBound. Otherwise (never, for real amounts) it
// reads the whole balance, checks the sum and puts it whole, as PutBalance
// does, removing the stripes.
//
// The statement is held back like any write, to go with the next one
// (see tx); when it finds that the stripe cannot take the addition, it
// fails (pgstore_stripe_full), so that nothing after it runs, and Update
// runs the transaction again with AddBalance waiting for its statement's
// answer and taking the path above. So a refusal can come from the
// second attempt of an Update, not the first.
func (t *tx) AddBalance(account string, c escrow.Currency, available, held int64) error {
	if err := t.check(true); err != nil {
		return err
	}
	if !isSystem(account) {
		return fmt.Errorf("pgstore: AddBalance to %q: %w: not a system account", account, escrow.ErrInvalidArgument)
	}
	if c.Code == "" {
		return fmt.Errorf("pgstore: AddBalance to %q: %w: no currency", account, escrow.ErrInvalidArgument)
	}
	if err := checkMinor("AddBalance to "+account, c); err != nil {
		return err
	}
	tooLarge := func(u int64) error {
		return &escrow.AmountError{Amount: fmt.Sprint(u), Currency: c.Code,
			Reason: "balance would exceed the largest amount", Err: escrow.ErrAmountTooLarge}
	}
	for _, u := range []int64{available, held} {
		if u > escrow.MaxUnits || u < -escrow.MaxUnits {
			return tooLarge(u)
		}
	}
	if abs(available) <= stripeBound && abs(held) <= stripeBound {
		if !t.eagerAdd {
			// Held back like any write (see tx), to go with the next
			// statement. If the stripe cannot take it, the statement
			// fails with pgstore_stripe_full, so that nothing after it
			// runs, COMMIT included, and the attempt runs again with
			// eagerAdd, reading the count below.
			return t.exec(`WITH s AS (`+addStripe+`)
				SELECT CASE WHEN count(*) = 1 THEN 1 ELSE pgstore_stripe_full() END FROM s`,
				account, c.Code, c.Minor, available, held, int64(baseBound), int64(stripeBound), stripes)
		}
		var added int64
		err := t.one(`WITH s AS (`+addStripe+`)
			SELECT count(*) FROM s`,
			[]any{account, c.Code, c.Minor, available, held, int64(baseBound), int64(stripeBound), stripes}, &added)
		if err != nil || added == 1 {
			return err
		}
	}
	b, err := t.Balance(account, c.Code)
	if errors.Is(err, escrow.ErrNotFound) {
		b, err = escrow.Balance{Account: account, Currency: c}, nil
	}
	if err != nil {
		return err
	}
	avail, hld := b.Available.Units()+available, b.Held.Units()+held
	if avail > escrow.MaxUnits || avail < -escrow.MaxUnits {
		return tooLarge(available)
	}
	if hld > escrow.MaxUnits || hld < -escrow.MaxUnits {
		return tooLarge(held)
	}
	return t.PutBalance(escrow.Balance{Account: account, Currency: c,
		Available: escrow.RestoreMoney(avail, c), Held: escrow.RestoreMoney(hld, c)})
}

// addStripe adds $4 available and $5 held to the stripe of account $1
// in currency $2 (minor units $3) that the connection writes, if the
// account's row of balances is within $6 and the stripe stays within $7,
// and returns a row if it did. $8 is the number of stripes.
const addStripe = `INSERT INTO balance_stripes AS s (account, currency, minor, stripe, available, held)
				SELECT $1, $2, $3, pg_backend_pid() % $8, $4, $5
				WHERE NOT EXISTS (SELECT FROM balances b WHERE b.account = $1 AND b.currency = $2
					AND (abs(coalesce(b.available, 0)) > $6 OR abs(coalesce(b.held, 0)) > $6))
				ON CONFLICT (account, currency, stripe) DO UPDATE
				SET available = s.available + excluded.available, held = s.held + excluded.held
				WHERE abs(s.available + excluded.available) <= $7 AND abs(s.held + excluded.held) <= $7
				RETURNING 1`

func abs(u int64) int64 {
	if u < 0 {
		return -u
	}
	return u
}

func (t *tx) AccountBalances(account string) ([]escrow.Balance, error) {
	return all(t, `SELECT `+balanceCols+` FROM `+balancesOf(account)+` WHERE account = $1 ORDER BY currency`,
		[]any{account}, scanBalance)
}

func (t *tx) Balances(fn func(escrow.Balance) error) error {
	return each(t, `SELECT `+balanceCols+` FROM (
			SELECT `+balanceCols+` FROM balances WHERE account NOT LIKE '@%'
			UNION ALL SELECT `+balanceCols+` FROM system_balances) AS b
		ORDER BY account, currency`, nil, scanBalance, fn)
}
