package escrow

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"strings"
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

// Page sizes of the listing calls.
const (
	DefaultPageLimit = 20
	MaxPageLimit     = 100
)

// Escrows lists the escrows of q.Party, newest first (by CreatedAt, ties by
// ID), a page at a time: pass the returned Next as q.Cursor for the next
// page, with the rest of q unchanged. A page never repeats or skips an
// escrow, whatever is opened between calls; escrows opened after the first
// page appear only on a new first page. It reads an index of escrows by
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
	out := EscrowPage{Escrows: page}
	if len(page) == pq.Limit { // one more than asked: there is a next page
		out.Escrows = page[:len(page)-1]
		last := out.Escrows[len(out.Escrows)-1]
		out.Next = encodeCursor(EscrowPos{last.CreatedAt, last.ID})
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
	pos, err := decodeCursor(q.Cursor)
	if err != nil {
		return PartyQuery{}, err
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

// A cursor is an escrow's CreatedAt and ID, "<RFC 3339 time>|<ID>", then
// the CRC-32 of those bytes, in base64 so that a host treats it as
// opaque. The time is exact to the nanosecond and holds no "|", so the
// first one ends it; the checksum refuses a cursor cut short or changed
// by mistake (not by design: a cursor only says where a page starts).
func encodeCursor(p EscrowPos) string {
	b := []byte(p.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + p.ID)
	return base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b)))
}

func decodeCursor(c string) (EscrowPos, error) {
	if c == "" {
		return EscrowPos{}, nil
	}
	bad := invalidArg("cursor %q is not one a listing returned", c)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 4 {
		return EscrowPos{}, bad
	}
	b, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	at, id, ok := strings.Cut(string(b), "|")
	t, err := time.Parse(time.RFC3339Nano, at)
	if sum != crc32.ChecksumIEEE(b) || !ok || err != nil || id == "" {
		return EscrowPos{}, bad
	}
	return EscrowPos{CreatedAt: t, ID: id}, nil
}

// historyPage is how many events History reads at a time.
const historyPage = 64

// History returns the events of the escrow with this ID, oldest first:
// its opening, every change, and the ratings given on it with their
// revisions and replies. It reads an index of events by escrow. It fails
// with ErrNotFound if there is no such escrow.
func (l *Ledger) History(ctx context.Context, id string) ([]Event, error) {
	start := l.begin()
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
