package storagetest

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/escrowkit/escrow"
)

// mapStore is the least a store can be and still carry the Lifecycle
// benchmark's trades: maps and pages under one mutex. It keeps no index,
// no snapshot and no undo, so it is not a store: a transaction that fails
// keeps what it wrote, a View sees the writer's records as they change,
// an escrow's maps and slices are kept as handed over, not copied, and
// every method of escrow.Tx it has no use for panics (the nil Tx it
// embeds). The Baseline/LedgerOnMaps benchmark runs the ledger on it, so
// that the ledger's own cost, with a store that costs almost nothing, can
// be read beside the adapters' and the bare baseline's in the same run.
type mapStore struct {
	mu       sync.Mutex
	accounts map[string]escrow.Account
	balances map[[2]string]escrow.Balance
	escrows  map[string]*escrow.Escrow
	entries  pages[escrow.Entry]
	events   pages[escrow.Event]
}

// pages holds records in pages of a fixed size, so that appending never
// copies what is there.
type pages[T any] struct {
	p [][]T
	n int
}

func (p *pages[T]) append(v T) {
	if p.n%pageSize == 0 {
		p.p = append(p.p, make([]T, 0, pageSize))
	}
	p.p[len(p.p)-1] = append(p.p[len(p.p)-1], v)
	p.n++
}

const pageSize = 1024

func newMapStore(testing.TB) escrow.Storage {
	return &mapStore{accounts: map[string]escrow.Account{}, balances: map[[2]string]escrow.Balance{},
		escrows: map[string]*escrow.Escrow{}}
}

func (s *mapStore) Update(_ context.Context, fn func(escrow.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(mapTx{s: s})
}

func (s *mapStore) View(_ context.Context, fn func(escrow.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(mapTx{s: s})
}

func (s *mapStore) Close() error { return nil }

type mapTx struct {
	escrow.Tx // nil: the methods the benchmark does not need panic
	s         *mapStore
}

func (t mapTx) Account(id string) (escrow.Account, error) {
	a, ok := t.s.accounts[id]
	if !ok {
		return a, escrow.ErrNotFound
	}
	return a, nil
}

func (t mapTx) PutAccount(a escrow.Account) error {
	t.s.accounts[a.ID] = a
	return nil
}

func (t mapTx) Balance(account, currency string) (escrow.Balance, error) {
	b, ok := t.s.balances[[2]string{account, currency}]
	if !ok {
		return b, escrow.ErrNotFound
	}
	return b, nil
}

func (t mapTx) PutBalance(b escrow.Balance) error {
	t.s.balances[[2]string{b.Account, b.Currency.Code}] = b
	return nil
}

func (t mapTx) AppendEntry(e *escrow.Entry) error {
	e.Seq = uint64(t.s.entries.n + 1)
	c := *e
	c.Postings = slices.Clone(e.Postings)
	t.s.entries.append(c)
	return nil
}

func (t mapTx) AppendEvent(ev *escrow.Event) error {
	ev.Seq = uint64(t.s.events.n + 1)
	c := *ev
	c.Metadata = maps.Clone(ev.Metadata)
	t.s.events.append(c)
	return nil
}

func (t mapTx) Escrow(id string) (escrow.Escrow, error) {
	e, ok := t.s.escrows[id]
	if !ok {
		return escrow.Escrow{}, escrow.ErrNotFound
	}
	return *e, nil
}

// PutEscrow copies e into a record of its own the first time and over it
// after that. Taking e's address instead would move the parameter to the
// heap on every call, a 960-byte allocation each, which no store needs.
func (t mapTx) PutEscrow(e escrow.Escrow) error {
	p, ok := t.s.escrows[e.ID]
	if !ok {
		p = new(escrow.Escrow)
		t.s.escrows[e.ID] = p
	}
	*p = e
	return nil
}

func (t mapTx) Idempotency(string) (escrow.IdempotencyRecord, error) {
	return escrow.IdempotencyRecord{}, escrow.ErrNotFound
}
