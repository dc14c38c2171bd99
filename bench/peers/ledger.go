package main

import (
	"context"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
	"github.com/escrowkit/escrow/storage/memstore"
)

// ledgerStore is the escrow library itself: a Ledger over one of its
// stores, driven through its public API exactly as a host drives it.
type ledgerStore struct {
	l     *escrow.Ledger
	store escrow.Storage
	file  *filestore.Store // nil on memstore
}

// ledgerOptions gives the ledger the fee the peers charge.
var ledgerOptions = escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.New(feeRatePPM, -6)}}

// openFilestore opens the file store in dir with its default options, or
// with NoSync in a mode without fsync. The file store groups concurrent
// commits itself, so m.grouped changes nothing.
func openFilestore(dir string, m mode) (store, error) {
	fs, err := filestore.Open(dir, &filestore.Options{NoSync: m.noSync})
	if err != nil {
		return nil, err
	}
	s, err := newLedgerStore(fs)
	if err != nil {
		fs.Close()
		return nil, err
	}
	s.file = fs
	return s, nil
}

// openMemstore keeps everything in memory: nothing is durable, and dir is
// not used. It is there to show what the ledger costs without a disk.
func openMemstore(dir string, m mode) (store, error) {
	return newLedgerStore(memstore.New())
}

func newLedgerStore(st escrow.Storage) (*ledgerStore, error) {
	opts := ledgerOptions
	l, err := escrow.New(context.Background(), st, &opts)
	if err != nil {
		return nil, err
	}
	return &ledgerStore{l: l, store: st}, nil
}

func (s *ledgerStore) fund(ctx context.Context, buyer, seller string, amount int64) error {
	for _, id := range []string{buyer, seller} {
		if _, err := s.l.OpenAccount(ctx, id); err != nil {
			return err
		}
	}
	m, err := escrow.MoneyFromUnits(amount, escrow.CNY)
	if err == nil {
		_, err = s.l.Deposit(ctx, buyer, m)
	}
	return err
}

var priceMoney, _ = escrow.MoneyFromUnits(price, escrow.CNY)

// trade makes the calls storage/storagetest's lifecycle benchmark makes.
func (s *ledgerStore) trade(ctx context.Context, id, buyer, seller string) error {
	_, err := s.l.Open(ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Price: priceMoney})
	if err == nil {
		_, err = s.l.Pay(ctx, id, buyer)
	}
	if err == nil {
		_, err = s.l.Ship(ctx, id, seller, "")
	}
	if err == nil {
		_, err = s.l.Confirm(ctx, id, buyer)
	}
	return err
}

func (s *ledgerStore) balance(ctx context.Context, account string) (available, held int64, err error) {
	b, err := s.l.Balance(ctx, account, escrow.CNY)
	return b.Available.Units(), b.Held.Units(), err
}

func (s *ledgerStore) probe(ctx context.Context, id, account string) error {
	e, err := s.l.Escrow(ctx, id)
	if err != nil {
		return err
	}
	if e.State != escrow.Completed {
		return fmt.Errorf("escrow %s is %v, want Completed", id, e.State)
	}
	entries, err := s.l.Journal(ctx, account, 0, journalPage)
	if err == nil && len(entries) == 0 {
		err = fmt.Errorf("account %s has no journal", account)
	}
	return err
}

// stats returns the file store's Stats, or "" on memstore.
func (s *ledgerStore) stats() string {
	if s.file == nil {
		return ""
	}
	return fmt.Sprintf("%+v", s.file.Stats())
}

func (s *ledgerStore) close() error { return s.store.Close() }
