package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltStore keeps the escrow tables in bbolt, a copy-on-write B+tree in
// one memory-mapped file, with its default options: each commit writes
// its pages and fsyncs the file before it returns.
//
// With batch set it commits through DB.Batch, bbolt's own group commit:
// concurrent calls share one transaction and one fsync, after waiting up
// to MaxBatchDelay (10 ms by default) for others to join. That is the
// nearest thing bbolt has to the file store's group commit.
type boltStore struct {
	peer
	db    *bolt.DB
	batch bool
}

// The buckets. Keys of the index buckets are built by key; their values
// are empty.
var (
	bAccounts       = []byte("accounts")        // id → created at
	bBalances       = []byte("balances")        // account, currency → available, held
	bEntries        = []byte("entries")         // seq → entry
	bEntriesAccount = []byte("entries_account") // account, seq
	bEscrows        = []byte("escrows")         // id → trade
	bEscrowsParty   = []byte("escrows_party")   // party, created at, id, role
	bEscrowsDue     = []byte("escrows_due")     // next due, id
	bEvents         = []byte("events")          // seq → event
	bEventsEscrow   = []byte("events_escrow")   // escrow, seq
	boltBuckets     = [][]byte{bAccounts, bBalances, bEntries, bEntriesAccount, bEscrows, bEscrowsParty, bEscrowsDue, bEvents, bEventsEscrow}
)

func openBolt(dir string, m mode) (store, error) { return openBoltWith(dir, m, false) }

func openBoltBatch(dir string, m mode) (store, error) { return openBoltWith(dir, m, true) }

// openBoltWith opens escrow.bolt in dir.
func openBoltWith(dir string, m mode, batch bool) (store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "escrow.bolt"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: m.noSync})
	if err != nil {
		return nil, err
	}
	s := &boltStore{db: db, batch: batch}
	s.peer = newPeer(s, m)
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range boltBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return setup(&boltTx{tx: tx})
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *boltStore) update(ctx context.Context, fn func(tables) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	run := func(tx *bolt.Tx) error { return fn(&boltTx{tx: tx}) }
	if s.batch {
		return s.db.Batch(run)
	}
	return s.db.Update(run)
}

func (s *boltStore) view(ctx context.Context, fn func(tables) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(&boltTx{tx: tx}) })
}

func (s *boltStore) close() error { return s.db.Close() }

// boltTx is the tables of one bbolt transaction.
type boltTx struct{ tx *bolt.Tx }

func (t *boltTx) b(name []byte) *bolt.Bucket { return t.tx.Bucket(name) }

// key joins strings, each ended by a zero byte, and numbers, 8 bytes big
// endian, so that keys sort by their parts in order.
func key(parts ...any) []byte {
	var k []byte
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			k = append(append(k, v...), 0)
		case int64:
			k = binary.BigEndian.AppendUint64(k, uint64(v))
		case uint64:
			k = binary.BigEndian.AppendUint64(k, v)
		case byte:
			k = append(k, v)
		default:
			panic(fmt.Sprintf("key part %T", p))
		}
	}
	return k
}

func (t *boltTx) accountExists(id string) (bool, error) {
	return t.b(bAccounts).Get([]byte(id)) != nil, nil
}

func (t *boltTx) putAccount(id string, at int64) error {
	return t.b(bAccounts).Put([]byte(id), key(at))
}

func (t *boltTx) balance(account string) (balance, error) {
	v := t.b(bBalances).Get(key(account, currency))
	if v == nil {
		return balance{}, nil
	}
	if len(v) != 16 {
		return balance{}, errors.New("bbolt: bad balance")
	}
	return balance{Available: int64(binary.BigEndian.Uint64(v)), Held: int64(binary.BigEndian.Uint64(v[8:]))}, nil
}

func (t *boltTx) putBalance(account string, b balance) error {
	return t.b(bBalances).Put(key(account, currency), key(b.Available, b.Held))
}

func (t *boltTx) trade(id string) (trade, error) {
	v := t.b(bEscrows).Get([]byte(id))
	if v == nil {
		return trade{}, errNotFound
	}
	return decodeTrade(v)
}

// putTrade writes the trade and moves it in the indexes: by party once,
// when it is created (its parties and creation time never change), and by
// deadline whenever its next deadline changes.
func (t *boltTx) putTrade(old, r *trade) error {
	if old == nil {
		party := t.b(bEscrowsParty)
		for _, k := range [][]byte{key(r.Buyer, r.CreatedAt, r.ID, byte('b')), key(r.Seller, r.CreatedAt, r.ID, byte('s'))} {
			if err := party.Put(k, nil); err != nil {
				return err
			}
		}
	}
	due := t.b(bEscrowsDue)
	if old != nil && old.nextDue() != 0 && old.nextDue() != r.nextDue() {
		if err := due.Delete(key(old.nextDue(), r.ID)); err != nil {
			return err
		}
	}
	if r.nextDue() != 0 {
		if err := due.Put(key(r.nextDue(), r.ID), nil); err != nil {
			return err
		}
	}
	return t.b(bEscrows).Put([]byte(r.ID), encodeTrade(r))
}

func (t *boltTx) appendEntry(e *entry) error {
	entries := t.b(bEntries)
	seq, err := entries.NextSequence()
	if err != nil {
		return err
	}
	e.Seq = seq
	if err := entries.Put(key(seq), encodeEntry(e)); err != nil {
		return err
	}
	byAccount := t.b(bEntriesAccount)
	for i, p := range e.Postings {
		seen := false
		for _, q := range e.Postings[:i] {
			seen = seen || q.Account == p.Account
		}
		if !seen {
			if err := byAccount.Put(key(p.Account, seq), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *boltTx) appendEvent(ev *event) error {
	events := t.b(bEvents)
	seq, err := events.NextSequence()
	if err != nil {
		return err
	}
	ev.Seq = seq
	if err := events.Put(key(seq), encodeEvent(ev)); err != nil {
		return err
	}
	if ev.Escrow == "" {
		return nil
	}
	return t.b(bEventsEscrow).Put(key(ev.Escrow, seq), nil)
}

func (t *boltTx) journal(account string, limit int) ([]entry, error) {
	prefix := key(account)
	entries := t.b(bEntries)
	var out []entry
	c := t.b(bEntriesAccount).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
		seq := k[len(prefix):]
		v := entries.Get(seq)
		if v == nil {
			return nil, fmt.Errorf("bbolt: entry %x indexed, not stored", seq)
		}
		e, err := decodeEntry(v)
		if err != nil {
			return nil, err
		}
		e.Seq = binary.BigEndian.Uint64(seq)
		out = append(out, e)
	}
	return out, nil
}

// The records are encoded as a host would encode them for a key-value
// store: compactly, each field in turn, strings with their length.

type enc struct{ b []byte }

func (e *enc) str(s string) { e.b = append(binary.AppendUvarint(e.b, uint64(len(s))), s...) }
func (e *enc) int(v int64)  { e.b = binary.AppendVarint(e.b, v) }

type dec struct {
	b   []byte
	err error
}

func (d *dec) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errors.New("bbolt: bad record")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.err = errors.New("bbolt: bad record")
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}

func encodeTrade(r *trade) []byte {
	e := enc{b: make([]byte, 0, 128)}
	for _, s := range []string{r.ID, r.Buyer, r.Seller, r.Item, r.Tracking, r.State, r.Currency} {
		e.str(s)
	}
	for _, v := range []int64{r.Price, r.Held, r.Released, r.Fees, r.Refunded, r.FeeRatePPM,
		r.PayWithin, r.ShipWithin, r.ConfirmWithin, r.RefundWithin, r.Version,
		r.CreatedAt, r.UpdatedAt, r.StateAt, r.PaidAt, r.ShippedAt, r.DueAt, r.RatingDueAt} {
		e.int(v)
	}
	return e.b
}

func decodeTrade(b []byte) (trade, error) {
	d := dec{b: b}
	var r trade
	for _, s := range []*string{&r.ID, &r.Buyer, &r.Seller, &r.Item, &r.Tracking, &r.State, &r.Currency} {
		*s = d.str()
	}
	for _, v := range []*int64{&r.Price, &r.Held, &r.Released, &r.Fees, &r.Refunded, &r.FeeRatePPM,
		&r.PayWithin, &r.ShipWithin, &r.ConfirmWithin, &r.RefundWithin, &r.Version,
		&r.CreatedAt, &r.UpdatedAt, &r.StateAt, &r.PaidAt, &r.ShippedAt, &r.DueAt, &r.RatingDueAt} {
		*v = d.int()
	}
	return r, d.err
}

func encodeEntry(x *entry) []byte {
	e := enc{b: make([]byte, 0, 96)}
	e.int(x.At)
	e.str(x.Kind)
	e.str(x.Escrow)
	e.str(x.Currency)
	e.int(int64(len(x.Postings)))
	for _, p := range x.Postings {
		e.str(p.Account)
		held := int64(0)
		if p.Held {
			held = 1
		}
		e.int(held)
		e.int(p.Change)
	}
	return e.b
}

func decodeEntry(b []byte) (entry, error) {
	d := dec{b: b}
	x := entry{At: d.int(), Kind: d.str(), Escrow: d.str(), Currency: d.str()}
	n := d.int()
	for i := int64(0); i < n && d.err == nil; i++ {
		x.Postings = append(x.Postings, posting{Account: d.str(), Held: d.int() == 1, Change: d.int()})
	}
	return x, d.err
}

func encodeEvent(ev *event) []byte {
	e := enc{b: make([]byte, 0, 96)}
	for _, s := range []string{ev.Type, ev.Escrow, ev.Buyer, ev.Seller, ev.Actor, ev.State, ev.Currency, ev.Note} {
		e.str(s)
	}
	for _, v := range []int64{ev.At, ev.Amount, ev.Fee} {
		e.int(v)
	}
	return e.b
}
