package escrow

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Concentration: how much of a seller's recent reputation came from a few
// accounts, or from accounts that have hardly traded. It reads ratings, not
// aggregates, so it is a read of its own rather than part of Reputation,
// which reads two aggregates and nothing else.

// The concentration signal's fixed choices: the window, in calendar days
// as View.Last365 counts them; how many of the raters who gave the most
// are the top raters; and the trades below which a rater is new.
const (
	concentrationDays = 365
	topRaters         = 5
	newRaterTrades    = 3
)

// A Concentration tells a host how much of a seller's recent reputation a
// few accounts gave it, so that a shop whose points come from a handful of
// buyers, or from accounts that have hardly traded anywhere, can be flagged
// for a closer look. It is a signal, not a rule: nothing here changes what
// a rating counts.
//
// It covers the ratings the party received as a seller, given in the last
// 365 days, today included (the window of View.Last365), that counted and
// added points: Rating.Points above zero, by default the positives. The
// shares are of the points a seller gained; a rating that took points away
// or added none is left out, since a share of a net figure could pass 1 or
// fall below 0. A rating that did not count, whatever its Reason, is left
// out, as it is from the seller's points.
type Concentration struct {
	Party string `json:"party"`
	// Since is the first instant of the window: the start of the day 364
	// days before today, in the policy's location.
	Since time.Time `json:"since,omitzero"`
	// Points sums the points of those ratings, and Raters counts the
	// accounts that gave them: the sample the shares are of, for a host to
	// judge how much they say.
	Points int64 `json:"points"`
	Raters int64 `json:"raters"`
	// TopRaters are the 5 raters who gave the most of Points, most first,
	// ties by Rater ascending; fewer if fewer rated. TopRatersPoints sums
	// their points, and TopRatersShare is TopRatersPoints/Points (1 with 5
	// raters or fewer; 0 when Points is).
	TopRaters       []RaterPoints `json:"top_raters"`
	TopRatersPoints int64         `json:"top_raters_points"`
	TopRatersShare  float64       `json:"top_raters_share"`
	// NewRaters counts the raters with fewer than 3 trades overall, and
	// NewRatersPoints sums the points they gave; NewRatersShare is
	// NewRatersPoints/Points (0 when Points is). A rater's trades are the
	// escrows it is the buyer or the seller of, with anyone, that ended in
	// a state whose parties may rate (ReputationPolicy.RateableStates:
	// Completed and Resolved by default), counted as of now, the trade
	// rated included.
	NewRaters       int64   `json:"new_raters"`
	NewRatersPoints int64   `json:"new_raters_points"`
	NewRatersShare  float64 `json:"new_raters_share"`
}

// RaterPoints are the points one rater gave a seller in a Concentration's
// window.
type RaterPoints struct {
	Rater  string `json:"rater"`
	Points int64  `json:"points"`
	// New is true if the rater has fewer than 3 trades overall.
	New bool `json:"new"`
}

// Concentration returns the concentration of party's reputation as a
// seller now; see Concentration for what it measures. An unknown party,
// or one with no points in the window, gets zeros and an empty TopRaters.
// It fails with ErrInvalidArgument if party is not a valid
// account ID.
//
// It reads more than Reputation's two aggregates, and is meant for a host's
// checks rather than every page view: the seller's ratings of the window,
// through the store's index of ratings by ratee from the window's start,
// and for each rater at most 3 of its escrows, through the index of
// escrows by party.
func (l *Ledger) Concentration(ctx context.Context, party string) (Concentration, error) {
	start, now := l.begin(), l.now()
	if err := checkID("party", party); err != nil {
		return Concentration{}, l.finish(start, "concentration", err)
	}
	today := l.dayOf(now)
	first := today - (concentrationDays - 1)
	c := Concentration{Party: party, Since: l.dayStart(first), TopRaters: []RaterPoints{}}
	err := l.store.View(ctx, func(tx Tx) error {
		byRater := map[string]int64{}
		err := tx.RatingsOf(party, RatingPos{At: c.Since}, func(r Rating) error {
			if day := l.dayOf(r.At); day >= first && day <= today && r.RateeRole == Seller && r.Counted && r.Points > 0 {
				byRater[r.Rater] += r.Points
			}
			return nil
		})
		if err != nil {
			return err
		}
		raters := make([]RaterPoints, 0, len(byRater))
		states := l.rateableStates()
		for rater, points := range byRater {
			n, err := tx.PartyEscrows(PartyQuery{Party: rater, Role: Buyer | Seller, States: states, Limit: newRaterTrades})
			if err != nil {
				return err
			}
			raters = append(raters, RaterPoints{Rater: rater, Points: points, New: len(n) < newRaterTrades})
		}
		c.count(raters)
		return nil
	})
	if err != nil {
		return Concentration{}, l.finish(start, "concentration", err)
	}
	return c, l.finish(start, "concentration", nil)
}

// count fills in c's figures from the points of each rater.
func (c *Concentration) count(raters []RaterPoints) {
	slices.SortFunc(raters, func(a, b RaterPoints) int {
		return cmp.Or(cmp.Compare(b.Points, a.Points), cmp.Compare(a.Rater, b.Rater))
	})
	for i, r := range raters {
		c.Points += r.Points
		c.Raters++
		if i < topRaters {
			c.TopRaters = append(c.TopRaters, r)
			c.TopRatersPoints += r.Points
		}
		if r.New {
			c.NewRaters++
			c.NewRatersPoints += r.Points
		}
	}
	if c.Points > 0 {
		c.TopRatersShare = float64(c.TopRatersPoints) / float64(c.Points)
		c.NewRatersShare = float64(c.NewRatersPoints) / float64(c.Points)
	}
}

// rateableStates lists the end states whose parties may rate, in order.
func (l *Ledger) rateableStates() []State {
	states := make([]State, 0, len(l.rep.rateable))
	for s := range l.rep.rateable {
		states = append(states, s)
	}
	slices.Sort(states)
	return states
}

// dayStart returns the first instant of day (numbered as dayOf numbers
// them) in the policy's location, in UTC. Where the clocks skip that
// day's midnight, time.Date may answer an instant of the day before,
// read in the old offset: the day then begins where that offset ends.
func (l *Ledger) dayStart(day int32) time.Time {
	y, m, d := time.Unix(int64(day)*86400, 0).UTC().Date()
	t := time.Date(y, m, d, 0, 0, 0, 0, l.rep.loc)
	if l.dayOf(t) < day {
		if _, end := t.ZoneBounds(); !end.IsZero() {
			t = end
		}
	}
	return t.UTC()
}
