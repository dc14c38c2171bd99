package escrow

import (
	"context"
	"fmt"
	"sort"
)

// Check verifies the ledger's invariants over everything in store, in one
// read transaction, and returns nil or an *InvariantError (wrapping
// ErrInvariant) listing every violation found:
//
//   - every journal entry balances, and replaying an account's entries
//     gives exactly its stored balances;
//   - per currency, the balances of all accounts add up to zero;
//   - no user account and no fee account has a negative bucket, and only
//     user accounts hold money in the held bucket;
//   - each buyer's held money equals what the escrows they pay for hold;
//   - each escrow's money adds up: Held + Released + Refunded is its price
//     once paid, and zero before; Fees are at most Released;
//   - an escrow in a terminal state holds nothing, and only non-terminal
//     escrows have a timer due.
//
// It reads every record, so it is for tests, audits and escrowctl check,
// not for the request path. Any error from the store is returned as is.
func Check(ctx context.Context, store Storage) error {
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	err := store.View(ctx, func(tx Tx) error {
		v = v[:0]
		type key struct{ account, currency string }
		stored := map[key]Balance{}
		totals := map[string]int64{}
		err := tx.Balances(func(b Balance) error {
			stored[key{b.Account, b.Currency.Code}] = b
			totals[b.Currency.Code] += b.Available.units + b.Held.units
			if b.Account != WorldAccount && (b.Available.units < 0 || b.Held.units < 0) {
				bad("account %q has a negative balance: available %d, held %d %s", b.Account, b.Available.units, b.Held.units, b.Currency)
			}
			if isSystem(b.Account) && b.Held.units != 0 {
				bad("system account %q holds %d %s in the held bucket", b.Account, b.Held.units, b.Currency)
			}
			if b.Available.cur != b.Currency || b.Held.cur != b.Currency {
				bad("balance of %q in %s has amounts in another currency", b.Account, b.Currency)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range sortedKeys(totals) {
			if totals[c] != 0 {
				bad("balances in %s add up to %d, not zero", c, totals[c])
			}
		}

		// Replay the journal account by account.
		replayed := map[key][2]int64{}
		err = tx.Accounts(func(a Account) error {
			var after uint64
			for {
				entries, err := tx.Entries(a.ID, after, 1000)
				if err != nil {
					return err
				}
				for _, e := range entries {
					after = e.Seq
					var sum int64
					for _, p := range e.Postings {
						sum += p.Change
						if p.Account == a.ID {
							k := key{a.ID, e.Currency.Code}
							r := replayed[k]
							r[p.Bucket] += p.Change
							replayed[k] = r
						}
					}
					if sum != 0 {
						bad("journal entry %d does not balance: %d", e.Seq, sum)
					}
				}
				if len(entries) < 1000 {
					return nil
				}
			}
		})
		if err != nil {
			return err
		}
		for k, b := range stored {
			r := replayed[k]
			if r[Available] != b.Available.units || r[Held] != b.Held.units {
				bad("balance of %q in %s is %d/%d but its journal gives %d/%d",
					k.account, k.currency, b.Available.units, b.Held.units, r[Available], r[Held])
			}
		}
		for k, r := range replayed {
			if _, ok := stored[k]; !ok && (r[Available] != 0 || r[Held] != 0) {
				bad("journal of %q in %s gives %d/%d but there is no balance", k.account, k.currency, r[Available], r[Held])
			}
		}

		// Escrows against their own arithmetic and against buyers' holds.
		heldByBuyer := map[key]int64{}
		err = tx.Escrows(func(e Escrow) error {
			c := e.Price.cur
			for _, m := range []Money{e.Held, e.Released, e.Refunded, e.Fees} {
				if m.cur != c {
					bad("escrow %q mixes currencies: %s and %s", e.ID, m.cur, c)
				}
				if m.units < 0 {
					bad("escrow %q has a negative amount %d", e.ID, m.units)
				}
			}
			heldByBuyer[key{e.Buyer, c.Code}] += e.Held.units
			accounted := e.Held.units + e.Released.units + e.Refunded.units
			paid := !e.PaidAt.IsZero()
			if paid && accounted != e.Price.units {
				bad("escrow %q: held %d + released %d + refunded %d is not its price %d",
					e.ID, e.Held.units, e.Released.units, e.Refunded.units, e.Price.units)
			}
			if !paid && accounted != 0 {
				bad("escrow %q was never paid but accounts for %d", e.ID, accounted)
			}
			if e.Fees.units > e.Released.units {
				bad("escrow %q: fees %d exceed released %d", e.ID, e.Fees.units, e.Released.units)
			}
			if e.State.Terminal() && !e.Held.IsZero() {
				bad("escrow %q is %s but still holds %s", e.ID, e.State, e.Held)
			}
			if e.State.Terminal() && !e.DueAt.IsZero() {
				bad("escrow %q is %s but has a timer due at %s", e.ID, e.State, e.DueAt)
			}
			if e.State < AwaitingPayment || e.State > Closed {
				bad("escrow %q has unknown state %d", e.ID, e.State)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for k, b := range stored {
			if !isSystem(k.account) && b.Held.units != heldByBuyer[k] {
				bad("account %q holds %d %s but its escrows hold %d", k.account, b.Held.units, k.currency, heldByBuyer[k])
			}
		}
		for k, h := range heldByBuyer {
			if _, ok := stored[k]; !ok && h != 0 {
				bad("escrows of buyer %q hold %d %s but the account has no balance", k.account, h, k.currency)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(v) > 0 {
		sort.Strings(v)
		return &InvariantError{Violations: v}
	}
	return nil
}

// Check verifies the invariants of the ledger's store; see the function Check.
func (l *Ledger) Check(ctx context.Context) error { return Check(ctx, l.store) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
