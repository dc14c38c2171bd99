package escrow

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"
)

// This file holds the reads a marketplace makes on every page: a party's
// escrows, one escrow's history and an account's balances.

// EscrowQuery selects a party's escrows for Ledger.Escrows.
type EscrowQuery struct {
	// Party is the account (or arbiter) whose escrows to list. Required.
	Party string `json:"party"`
	// Role holds the parts Party takes in the escrows to list: Buyer,
	// Seller, Arbiter, or several joined with |. Zero: any.
	Role Role `json:"role,omitzero"`
	// States, if any, are the only states to list.
	States []State `json:"states,omitempty"`
	// Limit is the most escrows in a page, 1 to MaxPageLimit; zero means
	// DefaultPageLimit.
	Limit int `json:"limit,omitzero"`
	// Cursor is the Next of the page before; empty for the first page.
	Cursor string `json:"cursor,omitempty"`
}

// EscrowPage is one page of a party's escrows, newest first.
type EscrowPage struct {
	Escrows []Escrow `json:"escrows"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// Page asks for one page of a listing: Explain, TopSellers.
type Page struct {
	// Limit is the most items in the page, 1 to MaxPageLimit; zero means
	// DefaultPageLimit.
	Limit int `json:"limit,omitzero"`
	// Cursor is the Next of the page before; empty for the first page.
	Cursor string `json:"cursor,omitempty"`
}

// errPageFull stops a scan that has filled its page.
var errPageFull = errors.New("escrow: page full")

// Page sizes of the listing calls.
const (
	DefaultPageLimit = 20
	MaxPageLimit     = 100
)

// Escrows lists the escrows of q.Party, newest first (by CreatedAt, ties by
// ID), a page at a time: pass the returned Next as q.Cursor for the next
// page, with the rest of q unchanged. The cursor is a place in that
// order, so a page never repeats or skips an escrow that was there when
// the first page was read, whatever is opened between calls. An escrow
// opened meanwhile takes its place by its CreatedAt, the clock's time when
// its Open began: as a rule that is after the cursor, and it appears only
// on a new first page; but an Open that waited for a busy store, a time
// equal to the cursor's (a coarse or manual clock) or a clock stepped back
// can put it on a page still to come. It reads an index of escrows by
// party, never every escrow; a filter on States is applied as that index
// is read, so a page of a rare state among a party's many escrows costs
// more to find. It fails with ErrInvalidArgument if q.Party is empty or
// not valid text, q.Role names no part, a state is unknown, q.Limit is
// out of range or q.Cursor is not one Escrows returned.
func (l *Ledger) Escrows(ctx context.Context, q EscrowQuery) (EscrowPage, error) {
	start := l.begin()
	pq, err := q.storage()
	if err != nil {
		return EscrowPage{}, l.finish(start, "escrows", err)
	}
	var page []Escrow
	err = l.store.View(ctx, func(tx Tx) error {
		var err error
		page, err = tx.PartyEscrows(pq)
		return err
	})
	if err != nil {
		return EscrowPage{}, l.finish(start, "escrows", err)
	}
	for i := range page {
		page[i].Timers = page[i].Timers.stored()
	}
	out := EscrowPage{Escrows: page}
	if len(page) == pq.Limit { // one more than asked: there is a next page
		out.Escrows = page[:len(page)-1]
		last := out.Escrows[len(out.Escrows)-1]
		out.Next = encodeCursor("escrows", cursorTime(last.CreatedAt), last.ID)
	}
	return out, l.finish(start, "escrows", nil)
}

// storage checks q and returns the PartyQuery that reads its page, with
// one escrow more than the page holds, to learn whether another follows.
func (q EscrowQuery) storage() (PartyQuery, error) {
	if q.Party == "" {
		return PartyQuery{}, invalidArg("an escrow query needs a party")
	}
	if err := checkText("party", q.Party, 128, false); err != nil {
		return PartyQuery{}, err
	}
	const anyRole = Buyer | Seller | Arbiter
	if q.Role&^anyRole != 0 {
		return PartyQuery{}, invalidArg("role %d names no part in an escrow", q.Role)
	}
	if q.Role == 0 {
		q.Role = anyRole
	}
	for _, s := range q.States {
		if s == 0 || int(s) >= len(stateNames) {
			return PartyQuery{}, invalidArg("unknown state %d", s)
		}
	}
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return PartyQuery{}, err
	}
	var pos EscrowPos
	if f, err := decodeCursor(q.Cursor, "escrows", 2); err != nil {
		return PartyQuery{}, err
	} else if f != nil {
		if pos.CreatedAt, err = parseCursorTime(f[0], q.Cursor, "escrows"); err != nil {
			return PartyQuery{}, err
		}
		pos.ID = f[1]
	}
	return PartyQuery{Party: q.Party, Role: q.Role, States: q.States, After: pos, Limit: limit + 1}, nil
}

// pageLimit checks the limit of a listing call, zero meaning the default.
func pageLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultPageLimit, nil
	case limit < 0 || limit > MaxPageLimit:
		return 0, invalidArg("limit %d must be 1 to %d", limit, MaxPageLimit)
	}
	return limit, nil
}

// A cursor is a place in one listing: the listing's name, then the
// fields of the place (an escrow's CreatedAt and ID, say), each as its
// length and its bytes, then the CRC-32 of all that, in base64 so that a
// host treats it as opaque. The name refuses a cursor of another listing;
// the checksum, one cut short or changed by mistake (not by design: a
// cursor only says where a page starts).
func encodeCursor(listing string, fields ...string) string {
	b := binary.AppendUvarint(nil, uint64(len(listing)))
	b = append(b, listing...)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b)))
}

// decodeCursor returns the n fields of cursor c of the listing, none if c
// is empty.
func decodeCursor(c, listing string, n int) ([]string, error) {
	if c == "" {
		return nil, nil
	}
	bad := invalidArg("cursor %s is not one the %s listing returned", quoted(c), listing)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 4 {
		return nil, bad
	}
	b, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if sum != crc32.ChecksumIEEE(b) {
		return nil, bad
	}
	var fields []string
	for len(b) > 0 {
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, bad
		}
		fields, b = append(fields, string(b[k:k+int(size)])), b[k+int(size):]
	}
	if len(fields) != n+1 || fields[0] != listing {
		return nil, bad
	}
	return fields[1:], nil
}

// A time in a cursor is exact to the nanosecond.
func cursorTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseCursorTime(s, c, listing string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalidArg("cursor %s is not one the %s listing returned", quoted(c), listing)
	}
	return t, nil
}

// historyPage is how many events History reads at a time.
const historyPage = 64

// History returns the events of the escrow with this ID, oldest first:
// its opening, every change, and the ratings given on it with their
// revisions and replies. It reads an index of events by escrow. It fails
// with ErrNotFound if there is no such escrow.
func (l *Ledger) History(ctx context.Context, id string) ([]Event, error) {
	start := l.begin()
	if err := checkID("escrow", id); err != nil {
		return nil, l.finish(start, "history", err)
	}
	var out []Event
	err := l.store.View(ctx, func(tx Tx) error {
		if _, err := getEscrow(tx, id); err != nil {
			return err
		}
		out = []Event{}
		for after := uint64(0); ; {
			page, err := tx.EscrowEvents(id, after, historyPage)
			if err != nil {
				return err
			}
			out = append(out, page...)
			if len(page) < historyPage {
				return nil
			}
			after = page[len(page)-1].Seq
		}
	})
	if err != nil {
		return nil, l.finish(start, "history", err)
	}
	return out, l.finish(start, "history", nil)
}
