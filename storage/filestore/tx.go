package filestore

import (
	"fmt"
	"time"

	"github.com/escrowkit/escrow"
)

// recordingTx is the transaction Update hands out: it forwards every call
// to the in-memory store's transaction and records each write that
// succeeds as an operation of the transaction's log record. It lists every
// method rather than embedding escrow.Tx, so that a write method added to
// the interface fails to compile here instead of going unrecorded.
type recordingTx struct {
	s    *Store
	tx   escrow.Tx
	done bool
}

var _ escrow.Tx = (*recordingTx)(nil)

// errEnded is returned by a transaction used after its function returned.
// The in-memory store reuses its transaction, so without this check a
// leaked one could write into the next transaction.
var errEnded = fmt.Errorf("filestore: transaction used after it ended: %w", escrow.ErrClosed)

func (t *recordingTx) Account(id string) (escrow.Account, error) {
	if t.done {
		return escrow.Account{}, errEnded
	}
	return t.tx.Account(id)
}

func (t *recordingTx) PutAccount(a escrow.Account) error {
	if t.done {
		return errEnded
	}
	if err := t.tx.PutAccount(a); err != nil {
		return err
	}
	t.s.ops.account(&a)
	return nil
}

func (t *recordingTx) Accounts(fn func(escrow.Account) error) error {
	if t.done {
		return errEnded
	}
	return t.tx.Accounts(fn)
}

func (t *recordingTx) Balance(account, currency string) (escrow.Balance, error) {
	if t.done {
		return escrow.Balance{}, errEnded
	}
	return t.tx.Balance(account, currency)
}

func (t *recordingTx) PutBalance(b escrow.Balance) error {
	if t.done {
		return errEnded
	}
	if err := t.tx.PutBalance(b); err != nil {
		return err
	}
	t.s.ops.balance(&b)
	return nil
}

func (t *recordingTx) Balances(fn func(escrow.Balance) error) error {
	if t.done {
		return errEnded
	}
	return t.tx.Balances(fn)
}

func (t *recordingTx) Escrow(id string) (escrow.Escrow, error) {
	if t.done {
		return escrow.Escrow{}, errEnded
	}
	return t.tx.Escrow(id)
}

func (t *recordingTx) PutEscrow(e escrow.Escrow) error {
	if t.done {
		return errEnded
	}
	if err := t.tx.PutEscrow(e); err != nil {
		return err
	}
	t.s.ops.escrow(&e)
	return nil
}

func (t *recordingTx) DueEscrows(at time.Time, limit int) ([]string, error) {
	if t.done {
		return nil, errEnded
	}
	return t.tx.DueEscrows(at, limit)
}

func (t *recordingTx) Escrows(fn func(escrow.Escrow) error) error {
	if t.done {
		return errEnded
	}
	return t.tx.Escrows(fn)
}

func (t *recordingTx) AppendEntry(e *escrow.Entry) error {
	if t.done {
		return errEnded
	}
	if err := t.tx.AppendEntry(e); err != nil {
		return err
	}
	t.s.ops.entry(e) // with the Seq just given, which replay checks
	return nil
}

func (t *recordingTx) Entries(account string, after uint64, limit int) ([]escrow.Entry, error) {
	if t.done {
		return nil, errEnded
	}
	return t.tx.Entries(account, after, limit)
}

func (t *recordingTx) Journal(after uint64, limit int) ([]escrow.Entry, error) {
	if t.done {
		return nil, errEnded
	}
	return t.tx.Journal(after, limit)
}

func (t *recordingTx) AppendEvent(ev *escrow.Event) error {
	if t.done {
		return errEnded
	}
	if err := t.tx.AppendEvent(ev); err != nil {
		return err
	}
	t.s.ops.event(ev)
	return nil
}

func (t *recordingTx) Events(after uint64, limit int) ([]escrow.Event, error) {
	if t.done {
		return nil, errEnded
	}
	return t.tx.Events(after, limit)
}

func (t *recordingTx) Idempotency(key string) (escrow.IdempotencyRecord, error) {
	if t.done {
		return escrow.IdempotencyRecord{}, errEnded
	}
	return t.tx.Idempotency(key)
}

func (t *recordingTx) PutIdempotency(r escrow.IdempotencyRecord) error {
	if t.done {
		return errEnded
	}
	if err := t.tx.PutIdempotency(r); err != nil {
		return err
	}
	t.s.ops.idempotency(&r)
	return nil
}

func (t *recordingTx) Idempotencies(fn func(escrow.IdempotencyRecord) error) error {
	if t.done {
		return errEnded
	}
	return t.tx.Idempotencies(fn)
}

func (t *recordingTx) Rating(escrowID, rater string) (escrow.Rating, error) {
	if t.done {
		return escrow.Rating{}, errEnded
	}
	return t.tx.Rating(escrowID, rater)
}

func (t *recordingTx) PutRating(r escrow.Rating) error {
	if t.done {
		return errEnded
	}
	if err := t.tx.PutRating(r); err != nil {
		return err
	}
	t.s.ops.rating(&r)
	return nil
}

func (t *recordingTx) RatingsOf(party string, fn func(escrow.Rating) error) error {
	if t.done {
		return errEnded
	}
	return t.tx.RatingsOf(party, fn)
}

func (t *recordingTx) Ratings(fn func(escrow.Rating) error) error {
	if t.done {
		return errEnded
	}
	return t.tx.Ratings(fn)
}

func (t *recordingTx) Aggregate(party string, role escrow.Role) (escrow.Aggregate, error) {
	if t.done {
		return escrow.Aggregate{}, errEnded
	}
	return t.tx.Aggregate(party, role)
}

func (t *recordingTx) PutAggregate(a escrow.Aggregate) error {
	if t.done {
		return errEnded
	}
	if err := t.tx.PutAggregate(a); err != nil {
		return err
	}
	t.s.ops.aggregate(&a)
	return nil
}

func (t *recordingTx) TopAggregates(role escrow.Role, key escrow.RankKey, limit int) ([]escrow.Aggregate, error) {
	if t.done {
		return nil, errEnded
	}
	return t.tx.TopAggregates(role, key, limit)
}

func (t *recordingTx) Aggregates(fn func(escrow.Aggregate) error) error {
	if t.done {
		return errEnded
	}
	return t.tx.Aggregates(fn)
}

func (t *recordingTx) PairMonth(ratee, rater, month string) (escrow.PairMonth, error) {
	if t.done {
		return escrow.PairMonth{}, errEnded
	}
	return t.tx.PairMonth(ratee, rater, month)
}

func (t *recordingTx) PutPairMonth(p escrow.PairMonth) error {
	if t.done {
		return errEnded
	}
	if err := t.tx.PutPairMonth(p); err != nil {
		return err
	}
	t.s.ops.pairMonth(&p)
	return nil
}

func (t *recordingTx) PairMonths(fn func(escrow.PairMonth) error) error {
	if t.done {
		return errEnded
	}
	return t.tx.PairMonths(fn)
}

func (t *recordingTx) DayRange(party string, role escrow.Role, from, to int32, fn func(escrow.DayCount) error) error {
	if t.done {
		return errEnded
	}
	return t.tx.DayRange(party, role, from, to, fn)
}

func (t *recordingTx) PutDayCount(d escrow.DayCount) error {
	if t.done {
		return errEnded
	}
	if err := t.tx.PutDayCount(d); err != nil {
		return err
	}
	t.s.ops.dayCount(&d)
	return nil
}

func (t *recordingTx) DayCounts(fn func(escrow.DayCount) error) error {
	if t.done {
		return errEnded
	}
	return t.tx.DayCounts(fn)
}
