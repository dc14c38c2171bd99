package escrowhttp

import (
	"encoding/json"
	"strings"

	"github.com/escrowkit/escrow"
)

// This file serves the accounts: opening one's own, reading it, and the
// operators' deposits and withdrawals.

// empty is the body of a call that takes no arguments: {} or nothing.
type empty struct{}

// amountBody is the body of a call that moves an amount.
type amountBody struct {
	Amount escrow.Money `json:"amount"`
}

// balanceList answers an account's balances.
type balanceList struct {
	Balances []escrow.Balance `json:"balances"`
}

// journalPage answers a page of an account's journal. Next is the seq of
// its last entry, or the after it was asked with if it is empty: the
// after of the next read.
type journalPage struct {
	Entries []escrow.Entry `json:"entries"`
	Next    uint64         `json:"next"`
}

// describe answers the OpenAPI document.
func (s *server) describe(*call) (json.RawMessage, error) { return s.openapi, nil }

// own refuses to show an account to anyone but its owner and operators.
// It answers before the ledger is read, so a stranger learns nothing,
// not even whether the account exists. A system account (@world, @fees)
// is the platform's, owned by no actor: only operators read it, even if
// the host's Actor names someone "@fees".
func (c *call) own(account string) error {
	if (c.actor != account || strings.HasPrefix(account, "@")) && !c.operator {
		return refuse("forbidden", "%q may not read account %q", c.actor, account)
	}
	return nil
}

func (s *server) openAccount(c *call, _ *empty) (escrow.Account, error) {
	a, err := s.ledger.OpenAccount(c.ctx, c.actor, c.keyed()...)
	if err == nil {
		// Relative, so that it holds wherever the host mounts the API.
		c.w.Header().Set("Location", "accounts/"+pathSegment(a.ID))
	}
	return a, err
}

func (s *server) account(c *call) (escrow.Account, error) {
	id := c.r.PathValue("id")
	if err := c.own(id); err != nil {
		return escrow.Account{}, err
	}
	return s.ledger.Account(c.ctx, id)
}

func (s *server) balances(c *call) (balanceList, error) {
	id := c.r.PathValue("id")
	if err := c.own(id); err != nil {
		return balanceList{}, err
	}
	b, err := s.ledger.Balances(c.ctx, id)
	return balanceList{Balances: nonNil(b)}, err
}

func (s *server) balance(c *call) (escrow.Balance, error) {
	id := c.r.PathValue("id")
	if err := c.own(id); err != nil {
		return escrow.Balance{}, err
	}
	cur, err := s.ledger.Currency(c.r.PathValue("currency"))
	if err != nil {
		return escrow.Balance{}, err
	}
	return s.ledger.Balance(c.ctx, id, cur)
}

func (s *server) journal(c *call) (journalPage, error) {
	id := c.r.PathValue("id")
	if err := c.own(id); err != nil {
		return journalPage{}, err
	}
	after, err := c.querySeq("after")
	if err != nil {
		return journalPage{}, err
	}
	limit, err := c.queryInt("limit", escrow.DefaultPageLimit, 1, escrow.MaxPageLimit)
	if err != nil {
		return journalPage{}, err
	}
	entries, err := s.ledger.Journal(c.ctx, id, after, limit)
	page := journalPage{Entries: nonNil(entries), Next: after}
	if len(entries) > 0 {
		page.Next = entries[len(entries)-1].Seq
	}
	return page, err
}

func (s *server) deposit(c *call, b *amountBody) (escrow.Balance, error) {
	return s.ledger.Deposit(c.ctx, c.r.PathValue("id"), b.Amount, c.keyed()...)
}

func (s *server) withdraw(c *call, b *amountBody) (escrow.Balance, error) {
	return s.ledger.Withdraw(c.ctx, c.r.PathValue("id"), b.Amount, c.keyed()...)
}

// nonNil returns s, or an empty slice for nil, so that an empty list is
// [] in JSON, not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
