package filestore

import (
	"time"

	"github.com/escrowkit/escrow"
)

// recordingTx is the transaction Update hands out: it forwards every call
// to the in-memory store's transaction and records each write that
// succeeds as an operation of the transaction's log record. It lists every
// method rather than embedding escrow.Tx, so that a write method added to
// the interface fails to compile here instead of going unrecorded.
type recordingTx struct {
	s        *Store
	tx       escrow.Tx // ends with the Update, so a leaked recordingTx records nothing
	appended bool      // an event: see EventsCommitted
}

var _ escrow.Tx = (*recordingTx)(nil)

func (t *recordingTx) Account(id string) (escrow.Account, error) {
	return t.tx.Account(id)
}

func (t *recordingTx) PutAccount(a escrow.Account) error {
	if err := t.tx.PutAccount(a); err != nil {
		return err
	}
	t.s.ops.account(&a)
	return nil
}

func (t *recordingTx) Accounts(fn func(escrow.Account) error) error {
	return t.tx.Accounts(fn)
}

func (t *recordingTx) Balance(account, currency string) (escrow.Balance, error) {
	return t.tx.Balance(account, currency)
}

func (t *recordingTx) PutBalance(b escrow.Balance) error {
	if err := t.tx.PutBalance(b); err != nil {
		return err
	}
	t.s.ops.balance(&b)
	return nil
}

func (t *recordingTx) AccountBalances(account string) ([]escrow.Balance, error) {
	return t.tx.AccountBalances(account)
}

func (t *recordingTx) Balances(fn func(escrow.Balance) error) error {
	return t.tx.Balances(fn)
}

func (t *recordingTx) Escrow(id string) (escrow.Escrow, error) {
	return t.tx.Escrow(id)
}

func (t *recordingTx) PutEscrow(e escrow.Escrow) error {
	if err := t.tx.PutEscrow(e); err != nil {
		return err
	}
	t.s.ops.escrow(&e)
	return nil
}

func (t *recordingTx) DueEscrows(at time.Time, limit int) ([]string, error) {
	return t.tx.DueEscrows(at, limit)
}

func (t *recordingTx) Escrows(fn func(escrow.Escrow) error) error {
	return t.tx.Escrows(fn)
}

func (t *recordingTx) PartyEscrows(q escrow.PartyQuery) ([]escrow.Escrow, error) {
	return t.tx.PartyEscrows(q)
}

func (t *recordingTx) Consumer(name string) (escrow.Consumer, error) {
	return t.tx.Consumer(name)
}

func (t *recordingTx) PutConsumer(c escrow.Consumer) error {
	if err := t.tx.PutConsumer(c); err != nil {
		return err
	}
	t.s.ops.consumer(&c)
	return nil
}

func (t *recordingTx) Consumers(fn func(escrow.Consumer) error) error {
	return t.tx.Consumers(fn)
}

func (t *recordingTx) EscrowEvents(id string, after uint64, limit int) ([]escrow.Event, error) {
	return t.tx.EscrowEvents(id, after, limit)
}

func (t *recordingTx) AppendEntry(e *escrow.Entry) error {
	if err := t.tx.AppendEntry(e); err != nil {
		return err
	}
	t.s.ops.entry(e) // with the Seq just given, which replay checks
	return nil
}

func (t *recordingTx) Entries(account string, after uint64, limit int) ([]escrow.Entry, error) {
	return t.tx.Entries(account, after, limit)
}

func (t *recordingTx) Journal(after uint64, limit int) ([]escrow.Entry, error) {
	return t.tx.Journal(after, limit)
}

func (t *recordingTx) AppendEvent(ev *escrow.Event) error {
	if err := t.tx.AppendEvent(ev); err != nil {
		return err
	}
	t.s.ops.event(ev)
	t.appended = true
	return nil
}

func (t *recordingTx) Events(after uint64, limit int) ([]escrow.Event, error) {
	return t.tx.Events(after, limit)
}

func (t *recordingTx) Idempotency(key string) (escrow.IdempotencyRecord, error) {
	return t.tx.Idempotency(key)
}

func (t *recordingTx) PutIdempotency(r escrow.IdempotencyRecord) error {
	if err := t.tx.PutIdempotency(r); err != nil {
		return err
	}
	t.s.ops.idempotency(&r)
	return nil
}

func (t *recordingTx) Idempotencies(fn func(escrow.IdempotencyRecord) error) error {
	return t.tx.Idempotencies(fn)
}

func (t *recordingTx) IdempotenciesUntil(at time.Time, limit int) ([]string, error) {
	return t.tx.IdempotenciesUntil(at, limit)
}

func (t *recordingTx) DeleteIdempotency(key string) error {
	if err := t.tx.DeleteIdempotency(key); err != nil {
		return err
	}
	t.s.ops.deleteIdempotency(key)
	return nil
}

func (t *recordingTx) Rating(escrowID, rater string) (escrow.Rating, error) {
	return t.tx.Rating(escrowID, rater)
}

func (t *recordingTx) PutRating(r escrow.Rating) error {
	if err := t.tx.PutRating(r); err != nil {
		return err
	}
	t.s.ops.rating(&r)
	return nil
}

func (t *recordingTx) RatingsOf(party string, after escrow.RatingPos, fn func(escrow.Rating) error) error {
	return t.tx.RatingsOf(party, after, fn)
}

func (t *recordingTx) Ratings(fn func(escrow.Rating) error) error {
	return t.tx.Ratings(fn)
}

func (t *recordingTx) Aggregate(party string, role escrow.Role) (escrow.Aggregate, error) {
	return t.tx.Aggregate(party, role)
}

func (t *recordingTx) PutAggregate(a escrow.Aggregate) error {
	if err := t.tx.PutAggregate(a); err != nil {
		return err
	}
	t.s.ops.aggregate(&a)
	return nil
}

func (t *recordingTx) TopAggregates(role escrow.Role, key escrow.RankKey, after escrow.RankPos, limit int) ([]escrow.Aggregate, error) {
	return t.tx.TopAggregates(role, key, after, limit)
}

func (t *recordingTx) DueAggregates(day int32, limit int) ([]escrow.Aggregate, error) {
	return t.tx.DueAggregates(day, limit)
}

func (t *recordingTx) Aggregates(fn func(escrow.Aggregate) error) error {
	return t.tx.Aggregates(fn)
}

func (t *recordingTx) PairMonth(ratee, rater, month string) (escrow.PairMonth, error) {
	return t.tx.PairMonth(ratee, rater, month)
}

func (t *recordingTx) PutPairMonth(p escrow.PairMonth) error {
	if err := t.tx.PutPairMonth(p); err != nil {
		return err
	}
	t.s.ops.pairMonth(&p)
	return nil
}

func (t *recordingTx) PairMonths(fn func(escrow.PairMonth) error) error {
	return t.tx.PairMonths(fn)
}

func (t *recordingTx) DayRange(party string, role escrow.Role, from, to int32, fn func(escrow.DayCount) error) error {
	return t.tx.DayRange(party, role, from, to, fn)
}

func (t *recordingTx) PutDayCount(d escrow.DayCount) error {
	if err := t.tx.PutDayCount(d); err != nil {
		return err
	}
	t.s.ops.dayCount(&d)
	return nil
}

func (t *recordingTx) DayCounts(fn func(escrow.DayCount) error) error {
	return t.tx.DayCounts(fn)
}

func (t *recordingTx) ItemMark(ratee, rater, item string) (escrow.ItemMark, error) {
	return t.tx.ItemMark(ratee, rater, item)
}

func (t *recordingTx) PutItemMark(m escrow.ItemMark) error {
	if err := t.tx.PutItemMark(m); err != nil {
		return err
	}
	t.s.ops.itemMark(&m)
	return nil
}

func (t *recordingTx) ItemMarks(fn func(escrow.ItemMark) error) error {
	return t.tx.ItemMarks(fn)
}

func (t *recordingTx) RaterDays(ratee string, role escrow.Role, rater string) (escrow.RaterDays, error) {
	return t.tx.RaterDays(ratee, role, rater)
}

func (t *recordingTx) PutRaterDays(d escrow.RaterDays) error {
	if err := t.tx.PutRaterDays(d); err != nil {
		return err
	}
	t.s.ops.raterDays(&d)
	return nil
}

func (t *recordingTx) AllRaterDays(fn func(escrow.RaterDays) error) error {
	return t.tx.AllRaterDays(fn)
}
