package memstore

import (
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/escrowkit/escrow"
)

// This file holds the methods of escrow.Tx for accounts, balances,
// escrows, the journal, events and idempotency records.

func (t *tx) Account(id string) (escrow.Account, error) {
	return get(t, &t.st.accounts, id, val)
}

func (t *tx) PutAccount(a escrow.Account) error {
	if err := t.check(true); err != nil {
		return err
	}
	t.st.accounts.put(a.ID, a)
	return nil
}

func (t *tx) Accounts(fn func(escrow.Account) error) error {
	return each(t, &t.st.accounts, val, fn)
}

func (t *tx) Balance(account, currency string) (escrow.Balance, error) {
	return get(t, &t.st.balances, balanceKey{account, currency}, val)
}

func (t *tx) PutBalance(b escrow.Balance) error {
	if err := t.check(true); err != nil {
		return err
	}
	t.st.balances.put(balanceKey{b.Account, b.Currency.Code}, b)
	return nil
}

func (t *tx) AccountBalances(account string) ([]escrow.Balance, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	out := []escrow.Balance{}
	t.st.balances.bt.Ascend(row[balanceKey, escrow.Balance]{key: balanceKey{account, ""}},
		func(r row[balanceKey, escrow.Balance]) bool {
			if r.key.account != account {
				return false
			}
			out = append(out, *r.val)
			return true
		})
	return out, nil
}

func (t *tx) Balances(fn func(escrow.Balance) error) error {
	return each(t, &t.st.balances, val, fn)
}

// Escrow is get written out, so that the escrow is unpacked straight into
// the result: through get's generic result it was copied twice more, on a
// call every action makes.
func (t *tx) Escrow(id string) (escrow.Escrow, error) {
	if err := t.check(false); err != nil {
		return escrow.Escrow{}, err
	}
	s, ok := t.st.escrows.get(id)
	if !ok {
		return escrow.Escrow{}, escrow.ErrNotFound
	}
	return unpack(s), nil
}

func (t *tx) PutEscrow(e escrow.Escrow) error {
	if err := t.check(true); err != nil {
		return err
	}
	s := pack(&e, t.st.lastShared)
	t.st.lastShared = s.shared
	old, had := t.st.escrows.get(e.ID)
	if had && old.filed && (!s.filed || old.due != s.due) {
		t.st.due.delete(timeKey{old.due, e.ID})
	}
	if s.filed {
		t.st.due.set(timeKey{s.due, e.ID})
	}
	if now := s.partyKeys(); !had || old.partyKeys() != now {
		if had {
			for _, k := range old.partyKeys() {
				t.st.parties.delete(k)
			}
		}
		for _, k := range now {
			if k.party != "" {
				t.st.parties.set(k)
			}
		}
	}
	t.st.escrows.put(e.ID, s)
	return nil
}

// partyKey files an escrow under one of its parties.
type partyKey struct {
	party string
	at    int64 // nanos(CreatedAt)
	id    string
	role  escrow.Role
}

func (a partyKey) less(b partyKey) bool {
	if c := strings.Compare(a.party, b.party); c != 0 {
		return c < 0
	}
	if a.at != b.at {
		return a.at < b.at
	}
	if c := strings.Compare(a.id, b.id); c != 0 {
		return c < 0
	}
	return a.role < b.role
}

// PartyEscrows walks the party's keys from the newest down: the index
// sorts them oldest first, so the walk descends, from the greatest key
// below the one after (or from the top of the party's keys, which end
// below party+"\x00").
func (t *tx) PartyEscrows(q escrow.PartyQuery) ([]escrow.Escrow, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	from := partyKey{party: q.Party + "\x00", at: math.MinInt64}
	if q.After != (escrow.EscrowPos{}) {
		from = partyKey{party: q.Party, at: nanos(q.After.CreatedAt), id: q.After.ID} // role 0: below its keys
	}
	page := []escrow.Escrow{}
	last := ""
	t.st.parties.bt.Descend(from, func(k partyKey) bool {
		if k.party != q.Party || len(page) >= q.Limit {
			return false
		}
		if k.role&q.Role == 0 || k.id == last {
			return true
		}
		e, ok := t.st.escrows.get(k.id)
		if ok && (len(q.States) == 0 || slices.Contains(q.States, e.state)) {
			page = append(page, unpack(e))
			last = k.id
		}
		return true
	})
	return page, nil
}

func (t *tx) DueEscrows(at time.Time, limit int) ([]string, error) {
	return upTo(t, t.st.due.scan, at, limit)
}

func (t *tx) Escrows(fn func(escrow.Escrow) error) error {
	return each(t, &t.st.escrows, unpack, fn)
}

func copyEntry(e *escrow.Entry) escrow.Entry {
	c := *e
	c.Postings = slices.Clone(e.Postings)
	return c
}

func (t *tx) AppendEntry(e *escrow.Entry) error {
	if err := t.check(true); err != nil {
		return err
	}
	e.Seq = uint64(t.st.journal.n) + 1
	stored := *e
	stored.Postings = t.st.copyPostings(e.Postings)
	t.st.journal.append(stored)
	for i, p := range stored.Postings {
		if !slices.ContainsFunc(stored.Postings[:i], func(q escrow.Posting) bool { return q.Account == p.Account }) {
			fileSeq(&t.st.byAccount, p.Account, stored.Seq)
		}
	}
	return nil
}

// copyPostings copies p to the end of st.postings, a page shared by many
// entries, which spares an allocation per entry. The result's capacity is
// its length, so that an append by a reader cannot reach a neighbour's
// postings; a snapshot shares the page, and the writer only writes past
// the postings that a snapshot's entries hold.
func (st *state) copyPostings(p []escrow.Posting) []escrow.Posting {
	if cap(st.postings)-len(st.postings) < len(p) {
		st.postings = make([]escrow.Posting, 0, max(4096, len(p)))
	}
	start := len(st.postings)
	st.postings = append(st.postings, p...)
	return st.postings[start:len(st.postings):len(st.postings)]
}

// fileSeq adds seq, the newest of its kind, to the list under key in
// index. The list is appended to in place, even where a snapshot shares
// it: a snapshot's list ends where it did when the snapshot was made, and
// the writer only writes past the end of the committed list.
func fileSeq(index *table[string, []uint64], key string, seq uint64) {
	index.put(key, append(seqsOf(index, key), seq))
}

func seqsOf(index *table[string, []uint64], key string) []uint64 {
	if p, ok := index.get(key); ok {
		return *p
	}
	return nil
}

// seqPage returns the numbers of at most limit records filed under key in
// index, with Seq greater than after.
func seqPage(index *table[string, []uint64], key string, after uint64, limit int) []uint64 {
	seqs := seqsOf(index, key)
	i, _ := slices.BinarySearch(seqs, after+1)
	if after == math.MaxUint64 {
		i = len(seqs)
	}
	return seqs[i : i+max(0, min(limit, len(seqs)-i))]
}

func (t *tx) Entries(account string, after uint64, limit int) ([]escrow.Entry, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	seqs := seqPage(&t.st.byAccount, account, after, limit)
	page := make([]escrow.Entry, len(seqs))
	for i, seq := range seqs {
		page[i] = copyEntry(t.st.journal.at(seq))
	}
	return page, nil
}

func (t *tx) Journal(after uint64, limit int) ([]escrow.Entry, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	after = max(after, uint64(t.st.journal.floor))
	page := make([]escrow.Entry, 0, pageSize(after, t.st.journal.n, limit))
	for seq := after + 1; len(page) < cap(page); seq++ {
		page = append(page, copyEntry(t.st.journal.at(seq)))
	}
	return page, nil
}

func (t *tx) AppendEvent(ev *escrow.Event) error {
	if err := t.check(true); err != nil {
		return err
	}
	ev.Seq = uint64(t.st.events.n) + 1
	t.st.events.append(copyEvent(ev))
	t.appended = true
	if ev.Escrow != "" {
		t.st.byEscrow.set(escrowSeq{ev.Escrow, ev.Seq})
	}
	return nil
}

func (t *tx) Consumer(name string) (escrow.Consumer, error) {
	return get(t, &t.st.consumers, name, val)
}

func (t *tx) PutConsumer(c escrow.Consumer) error {
	if err := t.check(true); err != nil {
		return err
	}
	t.st.consumers.put(c.Name, c)
	return nil
}

func (t *tx) Consumers(fn func(escrow.Consumer) error) error {
	return each(t, &t.st.consumers, val, fn)
}

func (t *tx) EscrowEvents(id string, after uint64, limit int) ([]escrow.Event, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	page := []escrow.Event{}
	if after == math.MaxUint64 {
		return page, nil
	}
	t.st.byEscrow.bt.Ascend(escrowSeq{id, after + 1}, func(k escrowSeq) bool {
		if k.id != id || len(page) >= limit {
			return false
		}
		page = append(page, copyEvent(t.st.events.at(k.seq)))
		return true
	})
	return page, nil
}

// escrowSeq files an event under its escrow. An escrow's events arrive in
// Seq order, so each goes to the end of its escrow's run of keys.
type escrowSeq struct {
	id  string
	seq uint64
}

func (a escrowSeq) less(b escrowSeq) bool {
	if c := strings.Compare(a.id, b.id); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

func copyEvent(ev *escrow.Event) escrow.Event {
	c := *ev
	c.Metadata = maps.Clone(ev.Metadata)
	return c
}

func (t *tx) Events(after uint64, limit int) ([]escrow.Event, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	after = max(after, uint64(t.st.events.floor))
	page := make([]escrow.Event, 0, pageSize(after, t.st.events.n, limit))
	for seq := after + 1; len(page) < cap(page); seq++ {
		page = append(page, copyEvent(t.st.events.at(seq)))
	}
	return page, nil
}

// pageSize is how many records a page of at most limit after Seq after,
// out of n numbered from 1, holds: the capacity to allocate for it once.
func pageSize(after uint64, n, limit int) int {
	if after >= uint64(n) || limit <= 0 {
		return 0
	}
	return int(min(uint64(n)-after, uint64(limit)))
}

func copyIdempotency(r *escrow.IdempotencyRecord) escrow.IdempotencyRecord {
	c := *r
	c.Result = slices.Clone(r.Result)
	return c
}

func (t *tx) Idempotency(key string) (escrow.IdempotencyRecord, error) {
	return get(t, &t.st.idem, key, copyIdempotency)
}

func (t *tx) PutIdempotency(r escrow.IdempotencyRecord) error {
	if err := t.DeleteIdempotency(r.Key); err != nil {
		return err
	}
	r.Result = slices.Clone(r.Result)
	t.st.idem.put(r.Key, r)
	t.st.idemAge.set(timeKey{nanos(r.At), r.Key})
	return nil
}

func (t *tx) DeleteIdempotency(key string) error {
	if err := t.check(true); err != nil {
		return err
	}
	if old, ok := t.st.idem.get(key); ok {
		t.st.idemAge.delete(timeKey{nanos(old.At), key})
		t.st.idem.delete(key)
	}
	return nil
}

func (t *tx) IdempotenciesUntil(at time.Time, limit int) ([]string, error) {
	return upTo(t, t.st.idemAge.bt.Scan, at, limit)
}

func (t *tx) Idempotencies(fn func(escrow.IdempotencyRecord) error) error {
	return each(t, &t.st.idem, copyIdempotency, fn)
}
