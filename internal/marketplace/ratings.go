package marketplace

import (
	"fmt"
	"strings"
	"time"

	"github.com/escrowkit/escrow"
)

// The ratings come after the trades. Only the fixed trades are rated, so
// the reputations printed at the end are the same for every seed; the
// random orders end unrated, and their rating windows simply close.

// rate gives one party's rating of the other on an escrow and says what
// the ledger made of it.
func (m *market) rate(id, rater string, score escrow.Score, details escrow.Details, comment string) {
	r, err := m.ledger.Rate(m.ctx, id, rater, escrow.RatingInput{Score: score, Details: details, Comment: comment})
	m.do(r, err)
	if m.err != nil {
		return
	}
	if details != (escrow.Details{}) {
		m.note("as described %d, communication %d, shipping %d: %q", details.Described, details.Communication, details.Shipping, comment)
	} else if comment != "" {
		m.note("%q", comment)
	}
	if !r.Counted {
		m.note("not counted: %s", r.Reason)
	}
}

// rateTrades: buyers and shops rate each other once the trades are over.
// Each may rate the other once, within 15 days of the end of the trade.
func rateTrades(m *market) {
	m.section(m.date(12) + ": buyers and shops rate each other")
	m.wait(1 * time.Hour)
	m.rate(m.id("order-1001"), "li.na", escrow.Positive, escrow.Details{Described: 5, Communication: 5, Shipping: 4}, "fresh and fragrant, as pictured")
	m.rate(m.id("order-1001"), "west-lake-tea", escrow.Positive, escrow.Details{}, "paid at once")
	_, err := m.ledger.Rate(m.ctx, m.id("order-1001"), "li.na", escrow.RatingInput{Score: escrow.Negative})
	m.refused(err, escrow.ErrAlreadyRated)
	// A trade that was refunded in full is not rated: nothing was sold.
	_, err = m.ledger.Rate(m.ctx, m.id("order-1002"), "wang.fang", escrow.RatingInput{Score: escrow.Negative})
	m.refused(err, escrow.ErrInvalidTransition)

	m.wait(30 * time.Minute)
	m.rate(m.id("order-3001"), "liu.yang", escrow.Positive, escrow.Details{Described: 5, Communication: 5, Shipping: 5}, "all 120 lanterns, well packed")
	m.rate(m.id("order-3001"), "lantern-lamps", escrow.Positive, escrow.Details{}, "three deliveries, three prompt confirmations")

	m.wait(30 * time.Minute)
	m.rate(m.id("order-1006"), "zhang.wei", escrow.Positive, escrow.Details{Described: 4, Communication: 4, Shipping: 5}, "snug fit, strong magnets")
	m.rate(m.id("order-1006"), "shenzhen-cases", escrow.Positive, escrow.Details{}, "")

	// The disputed lamp. The arbiter gave the buyer 70%, so the shop lost
	// the dispute: its rating of the buyer is kept but does not count. The
	// shop answers the buyer's negative in public instead.
	m.wait(30 * time.Minute)
	m.rate(m.id("order-1004"), "chen.jie", escrow.Negative, escrow.Details{Described: 2, Communication: 1, Shipping: 3}, "arrived cracked, no refund until the arbiter stepped in")
	m.wait(10 * time.Minute)
	const reply = "it left us whole, packed in foam; we accepted the arbiter's split"
	m.do(m.ledger.Reply(m.ctx, m.id("order-1004"), "chen.jie", "lantern-lamps", reply))
	m.note("%q", reply)
	m.rate(m.id("order-1004"), "lantern-lamps", escrow.Negative, escrow.Details{}, "blamed us for the courier")

	// wang.fang is lukewarm about the oolong she never confirmed, and the
	// shop does not rate her at all.
	m.wait(20 * time.Minute)
	m.rate(m.id("order-1007"), "wang.fang", escrow.Neutral, escrow.Details{Described: 4, Communication: 3, Shipping: 2}, "good tea, slow to arrive")
}

// reviseRating: a neutral or negative may be raised once, within 30 days.
func reviseRating(m *market) {
	m.section(m.date(20) + ": a neutral revised upward")
	m.clock.Set(m.at(20, 10))
	m.do(m.ledger.Revise(m.ctx, m.id("order-1007"), "wang.fang", escrow.Positive, "the second pot was worth the wait"))
}

// ratingWindowsClose: 15 days after order-1007 was auto-confirmed its
// rating window closes. wang.fang rated and the shop did not, so the shop
// is taken to have rated her positive.
func ratingWindowsClose(m *market) {
	m.section(m.date(28) + ": the rating windows have closed")
	m.clock.Set(m.at(28, 9))
	m.processDue()
	m.note("(closing rating windows is not counted among the timers fired)")
}

// reputations prints each shop's standing as a seller, then the ranking.
func reputations(m *market) {
	if m.err != nil {
		return
	}
	w := m.out
	fmt.Fprintf(w, "\n== Sellers' reputations on %s ==\n", m.clock.Now().In(cst).Format("Jan 02"))
	const row = "%-16s %-8s %6s %8s %9s %7s %6s  %s\n"
	fmt.Fprintf(w, row, "seller", "level", "points", "+/=/-", "positive", "Wilson", "Beta", "described/communication/shipping")
	for _, id := range sellers {
		rep, err := m.ledger.Reputation(m.ctx, id)
		if err != nil {
			m.err = err
			return
		}
		v := rep.AsSeller
		if v.Unrated {
			fmt.Fprintf(w, row, id, "unrated", "", "", "", "", "", "")
			continue
		}
		t := v.Total
		fmt.Fprintf(w, row, id, v.Level, fmt.Sprint(v.Points),
			fmt.Sprintf("%d/%d/%d", t.Positive, t.Neutral, t.Negative),
			fmt.Sprintf("%.1f%%", 100*v.PositiveRate), fmt.Sprintf("%.3f", v.Wilson), fmt.Sprintf("%.3f", v.Expectation),
			fmt.Sprintf("%.1f/%.1f/%.1f", v.Described, v.Communication, v.Shipping))
	}
	fmt.Fprintf(w, "Levels start at 4 points (%s); 11 make %s.\n", escrow.LevelFor(4), escrow.LevelFor(11))

	for _, by := range []struct {
		key  escrow.RankKey
		name string
	}{{escrow.RankWilson, "Wilson bound"}, {escrow.RankExpectation, "Beta expectation"}} {
		top, err := m.ledger.TopSellers(m.ctx, by.key, escrow.Page{Limit: 3})
		if err != nil {
			m.err = err
			return
		}
		var names []string
		for i, r := range top.Sellers {
			names = append(names, fmt.Sprintf("%d. %s", i+1, r.Party))
		}
		fmt.Fprintf(w, "Top sellers by %s: %s\n", by.name, strings.Join(names, ", "))
	}
}
