package escrow

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// CheckMoney verifies the money invariants over everything in store, in one
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
//     escrows have a timer due;
//   - an open refund request or return never asks for more than the
//     escrow holds, and knows the state it returns to;
//   - a cart was paid all at once: every escrow PayAll paid together
//     records the same cart, size, buyer and time of payment, and as many
//     escrows record the cart as it paid.
//
// It reads every record, so it is for tests, audits and escrowctl check,
// not for the request path. Any error from the store is returned as is;
// a nil store is ErrInvalidArgument.
func CheckMoney(ctx context.Context, store Storage) error {
	if store == nil {
		return invalidArg("nil storage")
	}
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
			if b.Available.currency() != b.Currency || b.Held.currency() != b.Currency {
				bad("balance of %q in %s has amounts in another currency", b.Account, b.Currency)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for c := range totals { // violations are sorted at the end
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
					// Reported once, from the account of its first posting.
					if sum != 0 && e.Postings[0].Account == a.ID {
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
		// A Publisher's entries that are committed but not yet numbered
		// are in the balances too.
		if ptx, ok := tx.(PendingTx); ok {
			pending, err := ptx.PendingEntries()
			if err != nil {
				return err
			}
			for _, e := range pending {
				var sum int64
				for _, p := range e.Postings {
					sum += p.Change
					k := key{p.Account, e.Currency.Code}
					r := replayed[k]
					r[p.Bucket] += p.Change
					replayed[k] = r
				}
				if sum != 0 {
					bad("unnumbered journal entry of %s does not balance: %d", e.Escrow, sum)
				}
			}
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
		// Each cart's escrows, paid all at once or not at all.
		type cartSeen struct {
			size, found int
			paidAt      time.Time
			buyer       string
		}
		carts := map[string]*cartSeen{}
		err = tx.Escrows(func(e Escrow) error {
			for _, m := range []Money{e.Held, e.Released, e.Refunded, e.Fees} {
				if !sameCurrency(m, e.Price) {
					bad("escrow %q mixes currencies: %s and %s", e.ID, m.currency(), e.Price.currency())
				}
				if m.units < 0 {
					bad("escrow %q has a negative amount %d", e.ID, m.units)
				}
			}
			heldByBuyer[key{e.Buyer, e.Price.currency().Code}] += e.Held.units
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
			if e.State < AwaitingPayment || e.State > lastState {
				bad("escrow %q has unknown state %d", e.ID, e.State)
			}
			switch e.State {
			case RefundRequested, ReturnRequested, AwaitingReturn, ReturnShipped, ReturnRefused:
				if e.Refund.Amount.units > e.Held.units || !sameCurrency(e.Refund.Amount, e.Price) {
					bad("escrow %q is %s for a refund of %s but holds %s", e.ID, e.State, e.Refund.Amount, e.Held)
				}
				if e.Resume == 0 {
					bad("escrow %q is %s with no state to return to", e.ID, e.State)
				}
			}
			if e.Cart != "" {
				c := carts[e.Cart]
				if c == nil {
					c = &cartSeen{size: e.CartSize, paidAt: e.PaidAt, buyer: e.Buyer}
					carts[e.Cart] = c
				}
				c.found++
				if e.CartSize != c.size || !e.PaidAt.Equal(c.paidAt) || e.Buyer != c.buyer || e.PaidAt.IsZero() {
					bad("escrow %q of cart %q: size %d, paid at %s by %q; the cart's first seen: size %d, paid at %s by %q",
						e.ID, e.Cart, e.CartSize, e.PaidAt, e.Buyer, c.size, c.paidAt, c.buyer)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for id, c := range carts {
			if c.found != c.size {
				bad("cart %q paid %d escrows but %d of them record it", id, c.size, c.found)
			}
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
	return violations(v)
}

// Check verifies everything: the money invariants of the ledger's store
// (see CheckMoney, which needs no Ledger, and so no reputation policy)
// and, under the ledger's reputation policy, that the reputation
// aggregates equal a recomputation from scratch over all ratings:
//
//   - every rating belongs to an escrow whose Rated records it, and names
//     that escrow's parties;
//   - each aggregate's points, counts, windows, detail sums (all time and
//     over the DetailWindow) and per-day counts and detail sums are those
//     of the counted ratings of its party and role, and its Beta sums are
//     their decayed weights (to within rounding); an aggregate written
//     before day counts carried detail scores (its DetailDays is false)
//     has none, in it or in its day counts, until the ledger next writes
//     it;
//   - each pair's monthly points are those of its counted ratings, within
//     the cap;
//   - under a policy with UniqueRaters, each aggregate that keeps its
//     raters (RatersKept) has the distinct raters, and the raters whose
//     latest rating fell on each day of its UniqueWindow, that its counted
//     ratings give, and each rater's record holds the days of its counted
//     ratings in the window; one that does not has none; and no day
//     counts more raters than ratings.
func (l *Ledger) Check(ctx context.Context) error {
	start := l.begin()
	return l.finish(start, "check", l.check(ctx))
}

func (l *Ledger) check(ctx context.Context) error {
	if err := CheckMoney(ctx, l.store); err != nil {
		return err
	}
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	err := l.store.View(ctx, func(tx Tx) error {
		v = v[:0]
		type aggKey struct {
			party string
			role  Role
		}
		want := map[aggKey]*Aggregate{}
		ratings := map[aggKey][]Rating{}
		type pairPoints struct{ pos, neg int64 }
		pairWant := map[[3]string]pairPoints{}
		latest := map[[3]string]Rating{} // the latest counted rating of each (ratee, rater, item)
		err := tx.Ratings(func(r Rating) error {
			e, err := tx.Escrow(r.Escrow)
			if err != nil {
				bad("rating by %q on escrow %q: the escrow: %v", r.Rater, r.Escrow, err)
				return nil
			}
			raterRole := e.RoleOf(r.Rater)
			if (raterRole != Buyer && raterRole != Seller) || e.RoleOf(r.Ratee) == raterRole ||
				e.RoleOf(r.Ratee) != r.RateeRole || e.Rated&raterRole == 0 {
				bad("rating by %q of %q on escrow %q does not match the escrow's parties", r.Rater, r.Ratee, r.Escrow)
			}
			if (r.Voided || r.Withdrawn) && r.Counted {
				bad("rating by %q on escrow %q is withdrawn or voided and counts", r.Rater, r.Escrow)
			}
			if !r.Counted {
				if r.Points != 0 {
					bad("uncounted rating by %q on escrow %q has %d points", r.Rater, r.Escrow, r.Points)
				}
				return nil
			}
			if item := l.repeatItem(&e); item != "" {
				mk := [3]string{r.Ratee, r.Rater, item}
				if last, ok := latest[mk]; !ok || r.At.After(last.At) {
					latest[mk] = r
				}
			}
			k := aggKey{r.Ratee, r.RateeRole}
			a := want[k]
			if a == nil {
				a = &Aggregate{}
				want[k] = a
			}
			a.Points += r.Points
			one := r.Score.counts(1)
			a.Positive, a.Neutral, a.Negative = a.Positive+one.Positive, a.Neutral+one.Neutral, a.Negative+one.Negative
			for i, d := range r.Details.array() {
				if d != 0 {
					a.DetailSums[i] += int64(d)
					a.DetailCounts[i]++
				}
			}
			ratings[k] = append(ratings[k], r)
			pk := [3]string{r.Ratee, r.Rater, l.capMonth(&e, &r)}
			pp := pairWant[pk]
			if r.Points > 0 {
				pp.pos += r.Points
			} else {
				pp.neg -= r.Points
			}
			pairWant[pk] = pp
			return nil
		})
		if err != nil {
			return err
		}
		seen := map[aggKey]bool{}
		detailDays := map[aggKey]bool{}
		windowsDay := map[aggKey]int32{}
		uniqueGot := map[aggKey][2]int64{}
		ratersKept := map[aggKey]bool{}
		err = tx.Aggregates(func(a Aggregate) error {
			k := aggKey{a.Party, a.Role}
			seen[k] = true
			w := want[k]
			if w == nil {
				w = &Aggregate{}
			}
			if a.Points != w.Points || a.Positive != w.Positive || a.Neutral != w.Neutral || a.Negative != w.Negative ||
				a.DetailSums != w.DetailSums || a.DetailCounts != w.DetailCounts {
				bad("aggregate of %q as %s: points %d, counts %d/%d/%d; its ratings give %d, %d/%d/%d",
					a.Party, a.Role, a.Points, a.Positive, a.Neutral, a.Negative, w.Points, w.Positive, w.Neutral, w.Negative)
			}
			// The windows ending on WindowsDay, and the Beta sums.
			var windows [5]Counts
			var detailSums, detailCounts [3]int64
			lens := l.windowDays()
			var betaPos, betaNeg float64
			detailDays[k] = a.DetailDays
			windowsDay[k] = a.WindowsDay
			uniqueGot[k] = [2]int64{a.UniquePositive, a.UniqueNegative}
			ratersKept[k] = a.RatersKept
			for _, r := range ratings[k] {
				w := r.Weight * l.decayFactor(a.BetaAt.Sub(r.At))
				one := Counts{}
				switch r.Score {
				case Positive:
					betaPos += w
					one.Positive = 1
				case Neutral:
					one.Neutral = 1
				case Negative:
					betaNeg += w
					one.Negative = 1
				}
				d := l.dayOf(r.At)
				for i, w := range lens {
					if d <= a.WindowsDay && d > a.WindowsDay-w {
						windows[i] = windows[i].plus(one)
					}
				}
				if a.DetailDays && d <= a.WindowsDay && d > a.WindowsDay-l.rep.detailDays {
					for i, v := range r.Details.array() {
						if v != 0 {
							detailSums[i] += int64(v)
							detailCounts[i]++
						}
					}
				}
			}
			if windows != a.Windows {
				bad("aggregate of %q as %s: windows %v to day %d, its ratings give %v", a.Party, a.Role, a.Windows, a.WindowsDay, windows)
			}
			// An aggregate written before the windowed detail sums existed
			// has none until the ledger next writes it.
			if detailSums != a.DetailWindowSums || detailCounts != a.DetailWindowCounts {
				bad("aggregate of %q as %s: detail sums %v of %v over the detail window to day %d, its ratings give %v of %v",
					a.Party, a.Role, a.DetailWindowSums, a.DetailWindowCounts, a.WindowsDay, detailSums, detailCounts)
			}
			if !closeTo(a.BetaPositive, betaPos) || !closeTo(a.BetaNegative, betaNeg) {
				bad("aggregate of %q as %s: Beta sums %g/%g, its ratings give %g/%g",
					a.Party, a.Role, a.BetaPositive, a.BetaNegative, betaPos, betaNeg)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for k, w := range want {
			if !seen[k] && (w.Positive+w.Neutral+w.Negative) > 0 {
				bad("%q as %s has counted ratings but no aggregate", k.party, k.role)
			}
		}
		type dayKey struct {
			party string
			role  Role
			day   int32
		}
		// The distinct raters of UniqueRaters: each rater's days in the
		// window ending on the aggregate's WindowsDay, the raters whose
		// latest day is each day, and how many there are.
		type raterKey struct {
			aggKey
			rater string
		}
		inUnique := func(k aggKey, day int32) bool {
			last, ok := windowsDay[k]
			return ok && l.rep.unique && ratersKept[k] && day <= last && day > last-l.rep.uniqueDays
		}
		raterWant := map[raterKey]*[2][]int32{}
		for k, rs := range ratings {
			for _, r := range rs {
				if d := l.dayOf(r.At); r.Score != Neutral && inUnique(k, d) {
					rk := raterKey{k, r.Rater}
					if raterWant[rk] == nil {
						raterWant[rk] = new([2][]int32)
					}
					i := 0
					if r.Score == Negative {
						i = 1
					}
					raterWant[rk][i] = append(raterWant[rk][i], d)
				}
			}
		}
		latestWant := map[dayKey][2]int32{}
		uniqueWant := map[aggKey][2]int64{}
		for rk, days := range raterWant {
			for i := range days {
				slices.Sort(days[i])
				if n := len(days[i]); n != 0 {
					dk := dayKey{rk.party, rk.role, days[i][n-1]}
					c := latestWant[dk]
					c[i]++
					latestWant[dk] = c
					u := uniqueWant[rk.aggKey]
					u[i]++
					uniqueWant[rk.aggKey] = u
				}
			}
		}
		for k, got := range uniqueGot {
			// Without the option, an aggregate not written since keeps
			// what it kept; one not kept has none.
			if (l.rep.unique || !ratersKept[k]) && got != uniqueWant[k] {
				bad("aggregate of %q as %s: %d/%d distinct raters to day %d, its ratings give %d/%d",
					k.party, k.role, got[0], got[1], windowsDay[k], uniqueWant[k][0], uniqueWant[k][1])
			}
		}
		dayWant := map[dayKey]DayCount{}
		for k, rs := range ratings {
			for _, r := range rs {
				dk := dayKey{k.party, k.role, l.dayOf(r.At)}
				d := dayWant[dk]
				d.Party, d.Role, d.Day = dk.party, dk.role, dk.day
				one := r.Score.counts(1)
				d.Positive += int32(one.Positive)
				d.Neutral += int32(one.Neutral)
				d.Negative += int32(one.Negative)
				if detailed, ok := detailDays[k]; detailed || !ok {
					for i, v := range r.Details.array() {
						if v != 0 {
							d.DetailSums[i] += int32(v)
							d.DetailCounts[i]++
						}
					}
				}
				dayWant[dk] = d
			}
		}
		err = tx.DayCounts(func(d DayCount) error {
			dk := dayKey{d.Party, d.Role, d.Day}
			w := dayWant[dk]
			w.Party, w.Role, w.Day = d.Party, d.Role, d.Day
			k := aggKey{d.Party, d.Role}
			if inUnique(k, d.Day) {
				w.UniquePositive, w.UniqueNegative = latestWant[dk][0], latestWant[dk][1]
			} else {
				// Left the window, or not kept: not read, and at most the
				// day's ratings.
				if d.UniquePositive < 0 || d.UniquePositive > w.Positive || d.UniqueNegative < 0 || d.UniqueNegative > w.Negative {
					bad("day %d of %q as %s, out of the unique window, counts %d/%d distinct raters, more than its ratings %d/%d",
						d.Day, d.Party, d.Role, d.UniquePositive, d.UniqueNegative, w.Positive, w.Negative)
				}
				w.UniquePositive, w.UniqueNegative = d.UniquePositive, d.UniqueNegative
			}
			if d.UniquePositive != w.UniquePositive || d.UniqueNegative != w.UniqueNegative {
				bad("day %d of %q as %s counts %d/%d distinct raters, its ratings give %d/%d",
					d.Day, d.Party, d.Role, d.UniquePositive, d.UniqueNegative, w.UniquePositive, w.UniqueNegative)
			}
			w.UniquePositive, w.UniqueNegative = d.UniquePositive, d.UniqueNegative
			if d != w {
				bad("day %d of %q as %s counts %d/%d/%d, its ratings give %d/%d/%d; details %v of %v, its ratings give %v of %v",
					d.Day, d.Party, d.Role, d.Positive, d.Neutral, d.Negative, w.Positive, w.Neutral, w.Negative,
					d.DetailSums, d.DetailCounts, w.DetailSums, w.DetailCounts)
			}
			delete(dayWant, dk)
			return nil
		})
		if err != nil {
			return err
		}
		for dk := range dayWant {
			bad("day %d of %q as %s has counted ratings but no count", dk.day, dk.party, dk.role)
		}
		err = tx.AllRaterDays(func(d RaterDays) error {
			k := aggKey{d.Ratee, d.Role}
			rk := raterKey{k, d.Rater}
			if !l.rep.unique || !ratersKept[k] {
				return nil // not read until the ledger works them out again
			}
			w := raterWant[rk]
			if w == nil {
				w = new([2][]int32)
			}
			delete(raterWant, rk)
			for i, days := range [2][]int32{d.Positive, d.Negative} {
				var in []int32
				for _, day := range days {
					if inUnique(k, day) {
						in = append(in, day)
					}
				}
				if !slices.IsSorted(days) || !slices.Equal(in, w[i]) || (len(days) != 0 && days[len(days)-1] > windowsDay[k]) {
					bad("rater %q of %q as %s has days %v/%v to day %d, its ratings give %v/%v in the window",
						d.Rater, d.Ratee, d.Role, d.Positive, d.Negative, windowsDay[k], w[0], w[1])
					break
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for rk, w := range raterWant {
			bad("rater %q of %q as %s has no record of its days %v/%v", rk.rater, rk.party, rk.role, w[0], w[1])
		}
		gotPairs := map[[3]string]bool{}
		err = tx.PairMonths(func(p PairMonth) error {
			k := [3]string{p.Ratee, p.Rater, p.Month}
			gotPairs[k] = true
			w := pairWant[k]
			if p.Positive != w.pos || p.Negative != w.neg {
				bad("pair %q by %q in %s counts +%d/−%d, its ratings give +%d/−%d", p.Ratee, p.Rater, p.Month, p.Positive, p.Negative, w.pos, w.neg)
			}
			// Under the net cap, taking a counted rating out may leave
			// the others past it, so only the separate caps are checked.
			if !l.rep.netCap && (p.Positive > l.rep.pairCap || p.Negative > l.rep.pairCap) {
				bad("pair %q by %q in %s counts +%d/−%d, past the cap %d", p.Ratee, p.Rater, p.Month, p.Positive, p.Negative, l.rep.pairCap)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for k, w := range pairWant {
			if !gotPairs[k] && (w.pos != 0 || w.neg != 0) {
				bad("pair %q by %q in %s has counted points but no record", k[0], k[1], k[2])
			}
		}
		// A mark names the latest counted rating of its item. One may be
		// missing: when the rating that held it leaves the count, the mark
		// goes back only as far as the repeat window.
		return tx.ItemMarks(func(m ItemMark) error {
			r, ok := latest[[3]string{m.Ratee, m.Rater, m.Item}]
			if !ok || !r.At.Equal(m.At) { // two counted at one moment: either may hold it
				bad("the mark of %q by %q on item %q names the rating on escrow %q at %s, not the latest counted one",
					m.Ratee, m.Rater, m.Item, m.Escrow, m.At.Format(time.RFC3339Nano))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	return violations(v)
}

// violations returns nil, or an *InvariantError listing v in order.
func violations(v []string) error {
	if len(v) == 0 {
		return nil
	}
	sort.Strings(v)
	return &InvariantError{Violations: v}
}

// closeTo compares floating-point sums built in different orders.
func closeTo(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}
