package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file holds the rules the peers (SQLite and bbolt) follow, written
// once over the tables interface so that both do the same work the ledger
// does in each step of a trade, and no less:
//
//   - open: the escrow must not exist and both parties must have accounts;
//     the escrow row is written with its payment deadline, and an event.
//   - pay: only the buyer, only awaiting payment; the buyer's available
//     balance is checked for overdraft and the price moves to held, by a
//     journal entry of two postings; the escrow row gets its new state and
//     shipping deadline; an event.
//   - ship: only the seller, only awaiting shipment; the escrow row gets the
//     tracking number, its new state and the confirmation deadline; an
//     event.
//   - confirm: only the buyer, only awaiting confirmation; the held money
//     goes to the seller less the fee, and the fee to the fee account, by
//     a journal entry of three postings (three balances read, checked and
//     written); the escrow row is completed and its rating window opened;
//     an event.
//
// Each step is one transaction, committed durably. Every write goes
// through the indexes a marketplace needs, as the ledger's stores keep
// them: escrows by party and by deadline, journal entries by account,
// events by escrow.

const (
	currency = "CNY"
	// price is the price of every trade, in fen.
	price = 10000
	// feeRatePPM is the platform fee, in millionths: 0.6%, the rate the
	// ledger is given too.
	feeRatePPM = 6000

	worldAccount = "@world"
	feeAccount   = "@fees"
)

// The escrow states, as the ledger spells them.
const (
	awaitingPayment      = "AwaitingPayment"
	awaitingShipment     = "AwaitingShipment"
	awaitingConfirmation = "AwaitingConfirmation"
	completed            = "Completed"
)

// The ledger's default deadlines.
var (
	payWithin     = 3 * 24 * time.Hour
	shipWithin    = 7 * 24 * time.Hour
	confirmWithin = 10 * 24 * time.Hour
	refundWithin  = 5 * 24 * time.Hour
	rateWithin    = 15 * 24 * time.Hour
)

var (
	errExists      = errors.New("escrow exists")
	errNotFound    = errors.New("not found")
	errNotParty    = errors.New("actor may not take this action")
	errTransition  = errors.New("action not allowed in this state")
	errOverdraft   = errors.New("insufficient funds")
	errUnbalanced  = errors.New("entry does not balance")
	errSystemParty = errors.New("system account cannot trade")
)

// A trade is an escrow row: the terms, the state, the money and the
// deadlines. Times are Unix nanoseconds, 0 for unset.
type trade struct {
	ID, Buyer, Seller, Item, Tracking, State string
	Currency                                 string
	Price, Held, Released, Fees, Refunded    int64
	FeeRatePPM                               int64
	// The deadlines the terms give each waiting state.
	PayWithin, ShipWithin, ConfirmWithin, RefundWithin int64
	Version                                            int64
	CreatedAt, UpdatedAt, StateAt, PaidAt, ShippedAt   int64
	DueAt, RatingDueAt                                 int64
}

// nextDue is what the deadline index files the trade under: the earlier of
// DueAt and RatingDueAt that is set, or 0.
func (t *trade) nextDue() int64 {
	switch {
	case t.DueAt == 0:
		return t.RatingDueAt
	case t.RatingDueAt == 0:
		return t.DueAt
	}
	return min(t.DueAt, t.RatingDueAt)
}

// A balance is one account's money in the one currency.
type balance struct {
	Available, Held int64
}

// A posting moves money in one bucket of one account.
type posting struct {
	Account string
	Held    bool // the held bucket, else available
	Change  int64
}

// An entry is one journal entry; its postings add up to zero.
type entry struct {
	Seq      uint64
	At       int64
	Kind     string
	Escrow   string
	Currency string
	Postings []posting
}

// An event is one row of the outbox.
type event struct {
	Seq                          uint64
	Type                         string
	At                           int64
	Escrow, Buyer, Seller, Actor string
	State                        string
	Amount, Fee                  int64
	Currency                     string
	Note                         string
}

// tables is what a peer's transaction offers the rules.
type tables interface {
	accountExists(id string) (bool, error)
	putAccount(id string, at int64) error
	// balance returns the account's balance, zero if it has none yet.
	balance(account string) (balance, error)
	putBalance(account string, b balance) error
	// trade returns the escrow, or errNotFound.
	trade(id string) (trade, error)
	// putTrade writes t; old is what was there, nil for a new escrow, so
	// that the indexes can move.
	putTrade(old, t *trade) error
	// appendEntry stores e, numbering it, and files it under each
	// account it posts to.
	appendEntry(e *entry) error
	// appendEvent stores ev, numbering it, and files it under its escrow.
	appendEvent(ev *event) error
	// journal returns the first limit entries that post to account.
	journal(account string, limit int) ([]entry, error)
}

// A backend runs transactions over tables: SQLite or bbolt.
type backend interface {
	update(ctx context.Context, fn func(tables) error) error
	view(ctx context.Context, fn func(tables) error) error
	close() error
}

// peer runs the lifecycle on a backend. The SQLite and bbolt stores embed
// it, and with their close they are stores.
type peer struct{ b backend }

func newPeer(b backend, m mode) peer {
	if m.grouped {
		return peer{b: &grouper{backend: b}}
	}
	return peer{b: b}
}

func (p *peer) fund(ctx context.Context, buyer, seller string, amount int64) error {
	for _, id := range []string{buyer, seller} {
		if err := p.b.update(ctx, func(t tables) error { return openAccount(t, id, now()) }); err != nil {
			return err
		}
	}
	return p.b.update(ctx, func(t tables) error { return deposit(t, buyer, amount, now()) })
}

func (p *peer) trade(ctx context.Context, id, buyer, seller string) error {
	err := p.b.update(ctx, func(t tables) error { return openTrade(t, id, buyer, seller, price, now()) })
	if err == nil {
		err = p.b.update(ctx, func(t tables) error { return pay(t, id, buyer, now()) })
	}
	if err == nil {
		err = p.b.update(ctx, func(t tables) error { return ship(t, id, seller, "", now()) })
	}
	if err == nil {
		err = p.b.update(ctx, func(t tables) error { return confirm(t, id, buyer, now()) })
	}
	return err
}

func (p *peer) balance(ctx context.Context, account string) (available, held int64, err error) {
	err = p.b.view(ctx, func(t tables) error {
		b, err := t.balance(account)
		available, held = b.Available, b.Held
		return err
	})
	return available, held, err
}

func (p *peer) probe(ctx context.Context, id, account string) error {
	return p.b.view(ctx, func(t tables) error {
		tr, err := t.trade(id)
		if err != nil {
			return fmt.Errorf("escrow %s: %w", id, err)
		}
		if tr.State != completed {
			return fmt.Errorf("escrow %s is %s, want %s", id, tr.State, completed)
		}
		entries, err := t.journal(account, journalPage)
		if err == nil && len(entries) == 0 {
			err = fmt.Errorf("account %s has no journal", account)
		}
		return err
	})
}

func now() int64 { return time.Now().UnixNano() }

// setup opens the system accounts, once per store.
func setup(t tables) error {
	for _, id := range []string{worldAccount, feeAccount} {
		ok, err := t.accountExists(id)
		if err != nil || ok {
			return err
		}
		if err := t.putAccount(id, now()); err != nil {
			return err
		}
	}
	return nil
}

func openAccount(t tables, id string, at int64) error {
	ok, err := t.accountExists(id)
	if err != nil || ok {
		return err
	}
	if err := t.putAccount(id, at); err != nil {
		return err
	}
	return t.appendEvent(&event{Type: "AccountOpened", At: at, Actor: id, Note: id})
}

func deposit(t tables, account string, amount int64, at int64) error {
	if ok, err := t.accountExists(account); err != nil || !ok {
		return cmpErr(err, errNotFound)
	}
	if err := post(t, &entry{At: at, Kind: "deposit", Currency: currency, Postings: []posting{
		{Account: worldAccount, Change: -amount},
		{Account: account, Change: amount},
	}}); err != nil {
		return err
	}
	return t.appendEvent(&event{Type: "Deposited", At: at, Actor: account, Amount: amount, Currency: currency})
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// post applies an entry's postings to the balances, refusing to take a
// user's balance below zero, and appends the entry. Each account's balance
// is read and written once.
func post(t tables, e *entry) error {
	var sum int64
	for _, p := range e.Postings {
		sum += p.Change
	}
	if sum != 0 {
		return errUnbalanced
	}
	for i, p := range e.Postings {
		seen := false
		for _, q := range e.Postings[:i] {
			seen = seen || q.Account == p.Account
		}
		if seen {
			continue
		}
		b, err := t.balance(p.Account)
		if err != nil {
			return err
		}
		for _, q := range e.Postings[i:] {
			if q.Account != p.Account {
				continue
			}
			m := &b.Available
			if q.Held {
				m = &b.Held
			}
			*m += q.Change
			if *m < 0 && p.Account[0] != '@' {
				return fmt.Errorf("%w: %s", errOverdraft, p.Account)
			}
		}
		if err := t.putBalance(p.Account, b); err != nil {
			return err
		}
	}
	return t.appendEntry(e)
}

// save writes the changed escrow and the event that tells of it.
func save(t tables, old, tr *trade, ev *event, at int64) error {
	tr.Version++
	tr.UpdatedAt = at
	ev.At, ev.Escrow, ev.Buyer, ev.Seller, ev.State = at, tr.ID, tr.Buyer, tr.Seller, tr.State
	ev.Currency = tr.Currency
	if err := t.putTrade(old, tr); err != nil {
		return err
	}
	return t.appendEvent(ev)
}

// enter moves tr to state at, with the deadline of that state.
func enter(tr *trade, state string, at int64, within int64) {
	tr.State, tr.StateAt, tr.DueAt = state, at, 0
	if within > 0 {
		tr.DueAt = at + within
	}
}

func openTrade(t tables, id, buyer, seller string, price int64, at int64) error {
	if _, err := t.trade(id); err == nil {
		return errExists
	} else if !errors.Is(err, errNotFound) {
		return err
	}
	for _, party := range []string{buyer, seller} {
		if party[0] == '@' {
			return errSystemParty
		}
		if ok, err := t.accountExists(party); err != nil || !ok {
			return cmpErr(err, fmt.Errorf("account %s: %w", party, errNotFound))
		}
	}
	tr := trade{ID: id, Buyer: buyer, Seller: seller, Currency: currency, Price: price,
		FeeRatePPM: feeRatePPM, PayWithin: int64(payWithin), ShipWithin: int64(shipWithin),
		ConfirmWithin: int64(confirmWithin), RefundWithin: int64(refundWithin), CreatedAt: at}
	enter(&tr, awaitingPayment, at, tr.PayWithin)
	return save(t, nil, &tr, &event{Type: "EscrowOpened", Actor: buyer, Amount: price}, at)
}

// load reads escrow id and checks that actor is its party named by role
// and that it is in state.
func load(t tables, id, actor string, buyer bool, state string) (trade, error) {
	tr, err := t.trade(id)
	if err != nil {
		return tr, err
	}
	if buyer && actor != tr.Buyer || !buyer && actor != tr.Seller {
		return tr, errNotParty
	}
	if tr.State != state {
		return tr, fmt.Errorf("%w: %s", errTransition, tr.State)
	}
	return tr, nil
}

func pay(t tables, id, actor string, at int64) error {
	tr, err := load(t, id, actor, true, awaitingPayment)
	if err != nil {
		return err
	}
	old := tr
	if err := post(t, &entry{At: at, Kind: "hold", Escrow: id, Currency: tr.Currency, Postings: []posting{
		{Account: tr.Buyer, Change: -tr.Price},
		{Account: tr.Buyer, Held: true, Change: tr.Price},
	}}); err != nil {
		return err
	}
	tr.Held, tr.PaidAt = tr.Price, at
	enter(&tr, awaitingShipment, at, tr.ShipWithin)
	return save(t, &old, &tr, &event{Type: "EscrowPaid", Actor: actor, Amount: tr.Price}, at)
}

func ship(t tables, id, actor, tracking string, at int64) error {
	tr, err := load(t, id, actor, false, awaitingShipment)
	if err != nil {
		return err
	}
	old := tr
	tr.Tracking, tr.ShippedAt = tracking, at
	enter(&tr, awaitingConfirmation, at, tr.ConfirmWithin)
	return save(t, &old, &tr, &event{Type: "EscrowShipped", Actor: actor, Note: tracking}, at)
}

func confirm(t tables, id, actor string, at int64) error {
	tr, err := load(t, id, actor, true, awaitingConfirmation)
	if err != nil {
		return err
	}
	old := tr
	amount := tr.Held
	f := fee(amount, tr.FeeRatePPM)
	if err := post(t, &entry{At: at, Kind: "release", Escrow: id, Currency: tr.Currency, Postings: []posting{
		{Account: tr.Buyer, Held: true, Change: -amount},
		{Account: tr.Seller, Change: amount - f},
		{Account: feeAccount, Change: f},
	}}); err != nil {
		return err
	}
	tr.Held -= amount
	tr.Released += amount
	tr.Fees += f
	enter(&tr, completed, at, 0)
	tr.RatingDueAt = at + int64(rateWithin)
	return save(t, &old, &tr, &event{Type: "EscrowReleased", Actor: actor, Amount: amount, Fee: f}, at)
}

// fee is ratePPM millionths of amount, rounded half to even, as the
// ledger rounds by default, and never more than amount.
func fee(amount, ratePPM int64) int64 {
	q, r := amount*ratePPM/1e6, amount*ratePPM%1e6
	if 2*r > 1e6 || 2*r == 1e6 && q%2 == 1 {
		q++
	}
	return min(q, amount)
}
