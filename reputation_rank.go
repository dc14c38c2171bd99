package escrow

import (
	"context"
	"strconv"
	"time"
)

// Ranking: the keys an aggregate is ranked by, kept current as time
// passes, and TopSellers, which reads the ranking index.

// putAggregate works out a's ranking keys, as view reports them now (its
// windows are at today and its sums at now already), and when they are
// next due, and stores it. An aggregate left with no counted rating is
// unrated: its keys are zeros, and TopSellers leaves it out.
//
// While a counted rating is in one of a's windows, its keys change with
// time alone: Wilson when a rating leaves the positive rate's window, and
// Expectation every day, as the Beta sums decay. Such an aggregate is due
// again tomorrow. Once every window is empty, Wilson is 0 and stays 0, and
// the Expectation key is left as it is: it then lags the decay.
func putAggregate(tx Tx, a *Aggregate, now time.Time, today int32) error {
	a.Wilson, a.Expectation, a.RekeyDay = 0, 0, 0
	if counted(a) {
		_, _, a.Wilson = positiveRate(a.Windows[4])
		a.Expectation, _ = betaScore(a.BetaPositive, a.BetaNegative)
	}
	if a.Windows != ([5]Counts{}) {
		a.RekeyDay = today + 1
	}
	a.UpdatedAt = now
	return tx.PutAggregate(*a)
}

// rekey brings the ranking keys of party in role to now, if they are due
// by today.
func (l *Ledger) rekey(tx Tx, k PartyRole, now time.Time, today int32) error {
	a, err := tx.Aggregate(k.Party, k.Role)
	if err != nil || a.RekeyDay == 0 || a.RekeyDay > today {
		return err // re-keyed, or rated, meanwhile
	}
	if a.BetaAt.After(now) { // as in addToAggregate: never back in time
		now = a.BetaAt
	}
	today = max(l.dayOf(now), a.WindowsDay)
	if err := l.advanceWindows(tx, &a, today); err != nil {
		return err
	}
	if err := l.detailDays(tx, &a); err != nil {
		return err
	}
	if err := l.keepRaters(tx, &a, today); err != nil {
		return err
	}
	l.decayTo(&a, now)
	return putAggregate(tx, &a, now, today)
}

// A Ranked is one seller in a ranking.
type Ranked struct {
	Party string `json:"party"`
	View  View   `json:"view"`
}

// TopSellers returns a page of the sellers with the highest Wilson bound
// or Beta expectation, highest first, ties by party ID ascending. It
// lists only sellers with a counted rating: one never rated, or whose
// every rating was withdrawn or voided, is unrated (View.Unrated), not a
// seller with a score of zero, and is not listed. Such a seller still
// takes a place in the index, among the keys of zero, so a page there may
// hold fewer than p.Limit sellers, or none, and still return a Next:
// read on until Next is empty. A page reads p.Limit+1 places at most,
// however many of them are unrated. It reads them from the
// store's ranking index, which orders sellers by their keys as of their
// latest rating or the latest ProcessDue, whichever came later; the
// Views are computed as of now.
//
// ProcessDue keeps the keys current as time passes: it works out again,
// once a day, the keys of every party with a counted rating in one of its
// windows (the last 365 days at most), through the store's index of due
// aggregates, not a scan. So the ranking is as of the day ProcessDue last
// ran (run it at least daily): by RankWilson exactly, since the Wilson
// bound changes only when a day leaves the positive rate's window; by
// RankExpectation to within that day's decay. A party with no counted
// rating in any window has a Wilson bound of 0 for good, and its
// Expectation key stays as of the day its last rating left the windows,
// while its View's Expectation goes on decaying towards ½ (by at most 2%
// of its distance from ½ every 30 days, with the default Decay): the
// ranking does not follow that.
//
// Pass the returned Next as p.Cursor for the next page: it holds the last
// seller's place (its key and ID), so a page begins after that place
// even if the ranking has moved since; a seller whose key moved between
// pages may then be listed twice or not at all. It fails with
// ErrInvalidArgument for an unknown key, a p.Limit out of range or a
// p.Cursor that is not one TopSellers returned for the same key.
func (l *Ledger) TopSellers(ctx context.Context, by RankKey, p Page) (RankedPage, error) {
	start := l.begin()
	if by != RankWilson && by != RankExpectation {
		return RankedPage{}, l.finish(start, "top_sellers", invalidArg("unknown rank key %d", by))
	}
	limit, err := pageLimit(p.Limit)
	if err != nil {
		return RankedPage{}, l.finish(start, "top_sellers", err)
	}
	listing := "top_sellers/" + strconv.Itoa(int(by))
	var after RankPos
	if f, err := decodeCursor(p.Cursor, listing, 2); err != nil {
		return RankedPage{}, l.finish(start, "top_sellers", err)
	} else if f != nil {
		// A key is a Wilson bound or an expectation, 0 to 1: any other
		// number, NaN above all, is none this listing wrote, and would
		// break the store's order.
		score, err := strconv.ParseFloat(f[0], 64)
		if err != nil || !(score >= 0 && score <= 1) || f[1] == "" {
			return RankedPage{}, l.finish(start, "top_sellers", invalidArg("cursor %s is not one the %s listing returned", quoted(p.Cursor), listing))
		}
		after = RankPos{Score: score, Party: f[1]}
	}
	now := l.now()
	var out RankedPage
	err = l.store.View(ctx, func(tx Tx) error {
		top, err := tx.TopAggregates(Seller, by, after, limit+1)
		if err != nil {
			return err
		}
		if len(top) > limit { // one more: a next page
			top = top[:limit]
			last := top[limit-1]
			out.Next = encodeCursor(listing, strconv.FormatFloat(rankKey(&last, by), 'g', -1, 64), last.Party)
		}
		out.Sellers = make([]Ranked, 0, len(top))
		for i := range top {
			if !counted(&top[i]) {
				continue // unrated: in the index with zero keys, not listed
			}
			r := Ranked{Party: top[i].Party}
			if err := l.view(tx, &top[i], now, &r.View); err != nil {
				return err
			}
			out.Sellers = append(out.Sellers, r)
		}
		return nil
	})
	if err != nil {
		return RankedPage{}, l.finish(start, "top_sellers", err)
	}
	return out, l.finish(start, "top_sellers", nil)
}

// counted reports whether a holds a counted rating. One that holds none
// is unrated, and stays in the ranking index with zero keys.
func counted(a *Aggregate) bool {
	return a.Positive != 0 || a.Neutral != 0 || a.Negative != 0
}

// rankKey returns a's key by, as the ranking index holds it.
func rankKey(a *Aggregate, by RankKey) float64 {
	if by == RankExpectation {
		return a.Expectation
	}
	return a.Wilson
}

// RankedPage is one page of TopSellers.
type RankedPage struct {
	Sellers []Ranked `json:"sellers"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}
