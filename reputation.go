package escrow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// Reputation is built only from real, finished trades: the buyer and the
// seller of an escrow that ended may rate each other once, within a window,
// and every rating records whether it counted towards the other party's
// score and why not. Aggregates are updated in the same transaction as each
// rating, so reading a reputation never reads the history.

// A Score is a rating's verdict.
type Score int8

// Scores. The zero Score is not a valid rating.
const (
	Positive Score = 1
	Neutral  Score = 2
	Negative Score = 3
)

func (s Score) String() string {
	switch s {
	case Positive:
		return "positive"
	case Neutral:
		return "neutral"
	case Negative:
		return "negative"
	}
	return "Score(" + strconv.Itoa(int(s)) + ")"
}

// check refuses a score that is not Positive, Neutral or Negative.
func (s Score) check() error {
	if s < Positive || s > Negative {
		return invalidArg("score %d is not Positive, Neutral or Negative", s)
	}
	return nil
}

// counts returns sign (1 or −1) counted under s's kind.
func (s Score) counts(sign int64) Counts {
	switch s {
	case Positive:
		return Counts{Positive: sign}
	case Neutral:
		return Counts{Neutral: sign}
	case Negative:
		return Counts{Negative: sign}
	}
	return Counts{}
}

// getRating reads rater's rating on escrowID, naming both if there is none.
func getRating(tx Tx, escrowID, rater string) (Rating, error) {
	r, err := tx.Rating(escrowID, rater)
	if errors.Is(err, ErrNotFound) {
		return Rating{}, fmt.Errorf("%w: no rating by %q on escrow %q", ErrNotFound, rater, escrowID)
	}
	return r, err
}

// rank orders scores from worst to best, for "revised upward".
func (s Score) rank() int { return 4 - int(s) }

// Details are a buyer's optional 1 to 5 scores of a seller; 0 means not
// given.
type Details struct {
	Described     int8 // the item was as described
	Communication int8
	Shipping      int8
}

func (d Details) given() bool { return d != Details{} }

func (d Details) array() [3]int8 { return [3]int8{d.Described, d.Communication, d.Shipping} }

// RatingInput is what a party says when rating.
type RatingInput struct {
	Score   Score
	Details Details // only a buyer rating a seller may give them
	Comment string  // up to 500 bytes of UTF-8
}

// A Rating is one party's verdict on the other after an escrow ended.
type Rating struct {
	Escrow    string
	Rater     string
	Ratee     string
	RateeRole Role // Seller if the buyer rated, Buyer if the seller did
	Score     Score
	Details   Details
	Comment   string
	At        time.Time // when it was given; its place in every window
	Default   bool      // given by the ledger for a party who stayed silent
	Value     Money     // the escrow's price
	Weight    float64   // log10(10 + Value in major units): its weight in the Beta score

	// Revised is set when a Neutral or Negative was revised upward; Original
	// is the score it replaced.
	Revised   bool
	Original  Score
	RevisedAt time.Time
	// Reply is the rated party's one answer.
	Reply     string
	RepliedAt time.Time

	// Counted reports whether the rating counts towards the ratee's
	// reputation; if not, Reason says why. Points is what it added to the
	// ratee's points (0 when not counted).
	Counted bool
	Reason  string
	Points  int64
}

// Reasons a rating does not count.
const (
	ReasonBelowMinimum = "the escrow is worth less than the minimum that counts"
	ReasonPairCap      = "the pair's monthly cap on points was reached"
	ReasonDisputeLost  = "the rater lost the dispute on this escrow"
)

// PairMonth records the points counted for one rater's ratings of one
// ratee in one calendar month, for the monthly cap.
type PairMonth struct {
	Ratee, Rater string
	Month        string // "2006-01"
	Positive     int64  // points added by positive ratings
	Negative     int64  // points taken by negative ratings, as a positive number
}

// An Aggregate is what the ledger keeps of a party's ratings in one role,
// updated as each rating counts. Hosts read Reputation instead.
type Aggregate struct {
	Party string
	Role  Role // Seller: ratings received as a seller; Buyer: as a buyer
	// Points is the sum of counted points.
	Points int64
	// Positive, Neutral and Negative count counted ratings, all time.
	Positive, Neutral, Negative int64
	// Windows count counted ratings in the windows that end on WindowsDay
	// (days since 1970-01-01 in the policy's location): the last 7, 30,
	// 180 and 365 days, and the positive rate's window, in that order. They
	// are kept up to date as days pass, from the DayCount records.
	Windows    [5]Counts
	WindowsDay int32
	// BetaPositive and BetaNegative are the weighted, decayed sums of
	// positive and negative ratings as of BetaAt.
	BetaPositive, BetaNegative float64
	BetaAt                     time.Time
	// DetailSums and DetailCounts total the detail scores given, in the
	// order described, communication, shipping.
	DetailSums, DetailCounts [3]int64
	// Wilson and Expectation are the ranking keys as of UpdatedAt.
	Wilson, Expectation float64
	UpdatedAt           time.Time
	// RekeyDay is the day (numbered as WindowsDay) on which ProcessDue next
	// works the ranking keys out again, as time alone changes them; 0 when
	// time alone no longer does. See TopSellers.
	RekeyDay int32
}

// A PartyRole names a party in one role: whose aggregate it is.
type PartyRole struct {
	Party string
	Role  Role
}

// A DayCount counts one day's counted ratings of a party in a role.
type DayCount struct {
	Party                       string
	Role                        Role
	Day                         int32 // days since 1970-01-01 in the policy's location
	Positive, Neutral, Negative int32
}

// A RankKey is what TopSellers ranks by.
type RankKey uint8

// Rank keys.
const (
	RankWilson      RankKey = iota + 1 // the Wilson lower bound of the positive rate
	RankExpectation                    // the Beta reputation's expectation
)

// ReputationPolicy holds the rating and scoring rules. Zero fields take the
// defaults named on each.
type ReputationPolicy struct {
	// Window is how long after an escrow ends its parties may rate: 15 days.
	Window time.Duration
	// RateableStates are the end states whose parties may rate each other:
	// Completed and Resolved. Refunded may be added; Closed may not, since
	// nothing was paid.
	RateableStates []State
	// NoDefaultRating turns off the default: when the window closes and
	// only one party rated, the silent one is taken to have rated Positive.
	NoDefaultRating bool
	// RevisionWindow is how long after a Neutral or Negative its rater may
	// revise it upward, once: 30 days.
	RevisionWindow time.Duration
	// Points are the points of a Positive, Neutral and Negative rating:
	// +1, 0 and −1.
	Points *[3]int64
	// PairCap caps the points one rater's ratings add to (and take from)
	// one ratee in a calendar month: 6 each way.
	PairCap int64
	// MinValue is the least price, in major units of the escrow's
	// currency, of an escrow whose ratings count: 1.
	MinValue decimal.Decimal
	// CountDisputeLosers lets the rating left by the party who lost a
	// dispute count; by default it does not.
	CountDisputeLosers bool
	// RateWindow is the trailing window of the positive rate: 180 days.
	RateWindow time.Duration
	// Decay is the factor λ by which a rating's weight in the Beta score
	// shrinks per DecayPeriod of age: 0.98 per 30 days.
	Decay       float64
	DecayPeriod time.Duration
	// Location is where calendar months and days begin: UTC.
	Location *time.Location
}

// policy is a ReputationPolicy with its defaults filled in.
type policy struct {
	window, revision, rateWindow, decayPeriod time.Duration
	rateable                                  map[State]bool
	noDefault, countLosers                    bool
	points                                    [3]int64
	pairCap                                   int64
	minValue                                  decimal.Decimal
	decay                                     float64
	decayRate                                 float64 // ln λ per nanosecond of age
	loc                                       *time.Location
	minUnits                                  map[string]int64 // minValue in each currency's minor units, rounded up
}

func (p ReputationPolicy) compile() (policy, error) {
	const day = 24 * time.Hour
	or := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	c := policy{
		window: or(p.Window, 15*day), revision: or(p.RevisionWindow, 30*day),
		rateWindow: or(p.RateWindow, 180*day), decayPeriod: or(p.DecayPeriod, 30*day),
		noDefault: p.NoDefaultRating, countLosers: p.CountDisputeLosers,
		points: [3]int64{1, 0, -1}, pairCap: p.PairCap, minValue: p.MinValue,
		decay: p.Decay, loc: p.Location, rateable: map[State]bool{},
	}
	if c.window < 0 || c.revision < 0 || c.rateWindow < 0 || c.decayPeriod < 0 {
		return policy{}, invalidArg("reputation policy durations may not be negative")
	}
	if c.revision > 365*day {
		return policy{}, invalidArg("reputation RevisionWindow %s is longer than 365 days", c.revision)
	}
	if c.rateWindow > 365*day {
		return policy{}, invalidArg("reputation RateWindow %s is longer than 365 days", c.rateWindow)
	}
	if p.Points != nil {
		c.points = *p.Points
	}
	if c.points[0] < 0 || c.points[2] > 0 {
		return policy{}, invalidArg("reputation points %v: a positive rating may not subtract, a negative one may not add", c.points)
	}
	if c.pairCap == 0 {
		c.pairCap = 6
	}
	if c.pairCap < 0 {
		return policy{}, invalidArg("reputation PairCap %d is negative", c.pairCap)
	}
	if c.minValue.IsZero() {
		c.minValue = decimal.NewFromInt(1)
	}
	if c.minValue.Sign() < 0 {
		return policy{}, invalidArg("reputation MinValue %s is negative", c.minValue)
	}
	if c.decay == 0 {
		c.decay = 0.98
	}
	if c.decay <= 0 || c.decay > 1 || math.IsNaN(c.decay) {
		return policy{}, invalidArg("reputation Decay %v must be in (0, 1]", c.decay)
	}
	c.decayRate = math.Log(c.decay) / float64(c.decayPeriod)
	if c.loc == nil {
		c.loc = time.UTC
	}
	states := p.RateableStates
	if states == nil {
		states = []State{Completed, Resolved}
	}
	for _, s := range states {
		if !s.Terminal() {
			return policy{}, invalidArg("reputation: state %s is not an end state", s)
		}
		if s == Closed { // ended before payment: no trade took place
			return policy{}, invalidArg("reputation: a %s escrow cannot be rated", s)
		}
		c.rateable[s] = true
	}
	return c, nil
}

// openRatings starts the rating window of an escrow that has just ended in
// a rateable state.
func (l *Ledger) openRatings(e *Escrow) {
	if e.State.Terminal() && e.RatingDueAt.IsZero() && e.Rated == 0 && l.rep.rateable[e.State] {
		e.RatingDueAt = e.EndedAt.Add(l.rep.window)
	}
}

// Rate records rater's verdict on the other party of an escrow that ended
// in a rateable state (by default Completed or Resolved), within the rating
// window (by default 15 days from the end). It fails with ErrNotParty for a
// stranger, ErrInvalidTransition for an escrow that has not ended or ended
// in a state that cannot be rated, ErrAlreadyRated for a second rating and
// ErrRatingClosed after the window, and with ErrInvalidArgument for a bad
// score, details from a seller, or a comment over 500 bytes.
func (l *Ledger) Rate(ctx context.Context, escrowID, rater string, in RatingInput, opts ...CallOption) (Rating, error) {
	if err := in.Score.check(); err != nil {
		return Rating{}, err
	}
	for _, d := range in.Details.array() {
		if d < 0 || d > 5 {
			return Rating{}, invalidArg("detail score %d is not 1 to 5 (or 0 for none)", d)
		}
	}
	if err := checkText("comment", in.Comment, 500, true); err != nil {
		return Rating{}, err
	}
	describe := func() string {
		d := in.Details
		return newRequest("rate").str("escrow", escrowID).str("rater", rater).int("score", int64(in.Score)).
			int("described", int64(d.Described)).int("communication", int64(d.Communication)).
			int("shipping", int64(d.Shipping)).str("comment", in.Comment).String()
	}
	return mutate(ctx, l, opts, describe, func(tx Tx, now time.Time) (Rating, error) {
		return l.rate(tx, escrowID, rater, in, now)
	})
}

func (l *Ledger) rate(tx Tx, escrowID, rater string, in RatingInput, now time.Time) (Rating, error) {
	e, err := getEscrow(tx, escrowID)
	if err != nil {
		return Rating{}, err
	}
	role := e.RoleOf(rater)
	switch {
	case role != Buyer && role != Seller:
		return Rating{}, &RoleError{Escrow: e.ID, Action: ActionRate, Actor: rater, State: e.State, Want: (Buyer | Seller).String()}
	case !e.State.Terminal() || !l.rep.rateable[e.State]:
		return Rating{}, &TransitionError{Escrow: e.ID, Action: ActionRate, State: e.State}
	case e.Rated&role != 0:
		return Rating{}, fmt.Errorf("%w: %q on escrow %q", ErrAlreadyRated, rater, e.ID)
	case e.RatingDueAt.IsZero() || !now.Before(e.RatingDueAt):
		return Rating{}, fmt.Errorf("%w: escrow %q ended %s", ErrRatingClosed, e.ID, e.EndedAt.Format(time.RFC3339))
	case role == Seller && in.Details.given():
		return Rating{}, invalidArg("only a buyer rating a seller gives detail scores")
	}
	r := l.newRating(&e, role, in, now, false)
	if err := l.record(tx, &e, &r, role, now); err != nil {
		return Rating{}, err
	}
	if e.Rated == Buyer|Seller {
		e.RatingDueAt = time.Time{}
	}
	ev := Event{Type: RatingGiven, At: now, Escrow: e.ID, Account: r.Ratee, Actor: rater, State: e.State, Note: r.Score.String()}
	return r, save(tx, &e, &ev, now)
}

func (l *Ledger) newRating(e *Escrow, raterRole Role, in RatingInput, now time.Time, byDefault bool) Rating {
	r := Rating{Escrow: e.ID, Score: in.Score, Details: in.Details, Comment: in.Comment, At: now,
		Default: byDefault, Value: e.Price}
	if raterRole == Buyer {
		r.Rater, r.Ratee, r.RateeRole = e.Buyer, e.Seller, Seller
	} else {
		r.Rater, r.Ratee, r.RateeRole = e.Seller, e.Buyer, Buyer
	}
	major := float64(e.Price.units) / math.Pow10(e.Price.cur.Minor)
	r.Weight = math.Log10(10 + major)
	return r
}

// record counts r, given by the party of e in raterRole, stores it and
// marks that party as having rated.
func (l *Ledger) record(tx Tx, e *Escrow, r *Rating, raterRole Role, now time.Time) error {
	if err := l.countRating(tx, e, r, now); err != nil {
		return err
	}
	if err := tx.PutRating(*r); err != nil {
		return err
	}
	e.Rated |= raterRole
	return nil
}

// closeRatings ends an escrow's rating window: a party who stayed silent
// while the other rated is taken to have rated Positive, unless the policy
// says otherwise.
func (l *Ledger) closeRatings(tx Tx, e *Escrow, now time.Time) error {
	closesAt := e.RatingDueAt
	e.RatingDueAt = time.Time{}
	if l.rep.noDefault || e.Rated == 0 || e.Rated == Buyer|Seller {
		touch(e, now)
		return tx.PutEscrow(*e)
	}
	silent := Buyer
	if e.Rated == Buyer {
		silent = Seller
	}
	r := l.newRating(e, silent, RatingInput{Score: Positive}, closesAt, true)
	if err := l.record(tx, e, &r, silent, now); err != nil {
		return err
	}
	ev := Event{Type: RatingGiven, At: now, Escrow: e.ID, Account: r.Ratee, ByTimer: true, Note: "positive (default)"}
	return save(tx, e, &ev, now)
}

// Revise raises a Neutral or Negative rating, once, within the revision
// window (by default 30 days from the rating). Only its rater may revise it,
// and only upward. It fails with ErrNotFound if there is no such rating,
// ErrInvalidTransition if the rating cannot be revised (already revised,
// positive, a default, or the new score is not higher) and ErrRatingClosed
// after the window.
func (l *Ledger) Revise(ctx context.Context, escrowID, rater string, score Score, comment string, opts ...CallOption) (Rating, error) {
	if err := score.check(); err != nil {
		return Rating{}, err
	}
	if err := checkText("comment", comment, 500, true); err != nil {
		return Rating{}, err
	}
	return mutate(ctx, l, opts, func() string {
		return newRequest("revise").str("escrow", escrowID).str("rater", rater).int("score", int64(score)).
			str("comment", comment).String()
	},
		func(tx Tx, now time.Time) (Rating, error) {
			r, err := getRating(tx, escrowID, rater)
			if err != nil {
				return Rating{}, err
			}
			switch {
			case r.Revised || r.Default:
				return Rating{}, fmt.Errorf("%w: the rating by %q on escrow %q cannot be revised again", ErrInvalidTransition, rater, escrowID)
			case r.Score == Positive || score.rank() <= r.Score.rank():
				return Rating{}, fmt.Errorf("%w: a %s rating can only be revised upward, not to %s", ErrInvalidTransition, r.Score, score)
			case now.After(r.At.Add(l.rep.revision)):
				return Rating{}, fmt.Errorf("%w: the rating by %q on escrow %q was given %s", ErrRatingClosed, rater, escrowID, r.At.Format(time.RFC3339))
			}
			e, err := getEscrow(tx, escrowID)
			if err != nil {
				return Rating{}, err
			}
			if err := l.uncountRating(tx, &r, now); err != nil {
				return Rating{}, err
			}
			r.Original, r.Score, r.Revised, r.RevisedAt = r.Score, score, true, now
			if comment != "" {
				r.Comment = comment
			}
			if err := l.countRating(tx, &e, &r, now); err != nil {
				return Rating{}, err
			}
			if err := tx.PutRating(r); err != nil {
				return Rating{}, err
			}
			return r, tx.AppendEvent(&Event{Type: RatingRevised, At: now, Escrow: escrowID, Account: r.Ratee,
				Actor: rater, State: e.State, Note: r.Original.String() + " to " + r.Score.String()})
		})
}

// Reply posts the rated party's one answer to a rating (up to 500 bytes).
// It fails with ErrNotFound if there is no such rating, ErrNotParty if the
// actor is not the ratee and ErrAlreadyRated if there is a reply already.
func (l *Ledger) Reply(ctx context.Context, escrowID, rater, actor, text string, opts ...CallOption) (Rating, error) {
	if err := checkText("reply", text, 500, true); err != nil {
		return Rating{}, err
	}
	if text == "" {
		return Rating{}, invalidArg("empty reply")
	}
	return mutate(ctx, l, opts, func() string {
		return newRequest("reply").str("escrow", escrowID).str("rater", rater).str("actor", actor).str("text", text).String()
	},
		func(tx Tx, now time.Time) (Rating, error) {
			r, err := getRating(tx, escrowID, rater)
			if err != nil {
				return Rating{}, err
			}
			if actor != r.Ratee {
				return Rating{}, fmt.Errorf("%w: only %q may reply to this rating, not %q", ErrNotParty, r.Ratee, actor)
			}
			if r.Reply != "" {
				return Rating{}, fmt.Errorf("%w: %q already replied to the rating on escrow %q", ErrAlreadyRated, actor, escrowID)
			}
			// The event carries the escrow's state, as every escrow event does.
			e, err := getEscrow(tx, escrowID)
			if err != nil {
				return Rating{}, err
			}
			r.Reply, r.RepliedAt = text, now
			if err := tx.PutRating(r); err != nil {
				return Rating{}, err
			}
			return r, tx.AppendEvent(&Event{Type: RatingReplied, At: now, Escrow: escrowID, Account: rater, Actor: actor, State: e.State, Note: text})
		})
}

// countRating decides whether r counts, and if it does adds it to the
// ratee's aggregate and to the pair's monthly points.
func (l *Ledger) countRating(tx Tx, e *Escrow, r *Rating, now time.Time) error {
	r.Counted, r.Reason, r.Points = false, "", 0
	raterRole := Buyer
	if r.RateeRole == Buyer {
		raterRole = Seller
	}
	switch {
	case e.Price.units < l.rep.minUnits[e.Price.cur.Code]:
		r.Reason = ReasonBelowMinimum
		return nil
	case !l.rep.countLosers && e.DisputeLoser == raterRole:
		r.Reason = ReasonDisputeLost
		return nil
	}
	points := l.rep.points[r.Score-1]
	month := l.monthOf(r.At)
	pm, err := tx.PairMonth(r.Ratee, r.Rater, month)
	if errors.Is(err, ErrNotFound) {
		pm = PairMonth{Ratee: r.Ratee, Rater: r.Rater, Month: month}
	} else if err != nil {
		return err
	}
	switch {
	case points > 0 && pm.Positive+points > l.rep.pairCap, points < 0 && pm.Negative-points > l.rep.pairCap:
		r.Reason = ReasonPairCap
		return nil
	case points > 0:
		pm.Positive += points
	case points < 0:
		pm.Negative -= points
	}
	if points != 0 {
		if err := tx.PutPairMonth(pm); err != nil {
			return err
		}
	}
	r.Counted, r.Points = true, points
	return l.addToAggregate(tx, r, 1, now)
}

// uncountRating takes a counted rating back out, before it is revised.
func (l *Ledger) uncountRating(tx Tx, r *Rating, now time.Time) error {
	if !r.Counted {
		return nil
	}
	if r.Points != 0 {
		month := l.monthOf(r.At)
		pm, err := tx.PairMonth(r.Ratee, r.Rater, month)
		if err != nil {
			return err
		}
		if r.Points > 0 {
			pm.Positive -= r.Points
		} else {
			pm.Negative += r.Points
		}
		if err := tx.PutPairMonth(pm); err != nil {
			return err
		}
	}
	return l.addToAggregate(tx, r, -1, now)
}

// addToAggregate adds (sign 1) or removes (sign −1) a counted rating.
func (l *Ledger) addToAggregate(tx Tx, r *Rating, sign int64, now time.Time) error {
	a, err := tx.Aggregate(r.Ratee, r.RateeRole)
	if errors.Is(err, ErrNotFound) {
		a = Aggregate{Party: r.Ratee, Role: r.RateeRole, BetaAt: now}
	} else if err != nil {
		return err
	}
	// A call that read the clock before another one committed a later
	// update (ProcessDue reads it once for a whole run) must not count
	// back in time: decay and windows only move forward.
	if a.BetaAt.After(now) {
		now = a.BetaAt
	}
	a.Points += sign * r.Points
	today, day := max(l.dayOf(now), a.WindowsDay), l.dayOf(r.At)
	if err := l.advanceWindows(tx, &a, today); err != nil {
		return err
	}
	dc, err := l.dayCount(tx, r.Ratee, r.RateeRole, day)
	if err != nil {
		return err
	}
	one := r.Score.counts(sign)
	a.Positive, a.Neutral, a.Negative = a.Positive+one.Positive, a.Neutral+one.Neutral, a.Negative+one.Negative
	dc.Positive += int32(one.Positive)
	dc.Neutral += int32(one.Neutral)
	dc.Negative += int32(one.Negative)
	if dc.Positive < 0 || dc.Neutral < 0 || dc.Negative < 0 {
		return fmt.Errorf("escrow: internal error: day %d of %q would count below zero", day, r.Ratee)
	}
	if err := tx.PutDayCount(dc); err != nil {
		return err
	}
	for k, w := range l.windowDays() {
		if age := today - day; age >= 0 && age < w {
			a.Windows[k] = a.Windows[k].plus(one)
		}
	}
	// Bring the Beta sums to now, then add the rating at its age.
	l.decayTo(&a, now)
	w := r.Weight * l.decayFactor(now.Sub(r.At))
	switch r.Score {
	case Positive:
		a.BetaPositive = math.Max(0, a.BetaPositive+float64(sign)*w)
	case Negative:
		a.BetaNegative = math.Max(0, a.BetaNegative+float64(sign)*w)
	}
	for k, v := range r.Details.array() {
		if v != 0 {
			a.DetailSums[k] += sign * int64(v)
			a.DetailCounts[k] += sign
		}
	}
	return putAggregate(tx, &a, now, today)
}

// putAggregate works out a's ranking keys, as view reports them now (its
// windows are at today and its sums at now already), and when they are
// next due, and stores it. An aggregate left with no counted rating is
// unrated and ranks with zeros.
//
// While a counted rating is in one of a's windows, its keys change with
// time alone: Wilson when a rating leaves the positive rate's window, and
// Expectation every day, as the Beta sums decay. Such an aggregate is due
// again tomorrow. Once every window is empty, Wilson is 0 and stays 0, and
// the Expectation key is left as it is: it then lags the decay.
func putAggregate(tx Tx, a *Aggregate, now time.Time, today int32) error {
	a.Wilson, a.Expectation, a.RekeyDay = 0, 0, 0
	if a.Positive != 0 || a.Neutral != 0 || a.Negative != 0 {
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
	l.decayTo(&a, now)
	return putAggregate(tx, &a, now, today)
}

// decayTo moves a's Beta sums forward to t.
func (l *Ledger) decayTo(a *Aggregate, t time.Time) {
	if t.After(a.BetaAt) {
		f := l.decayFactor(t.Sub(a.BetaAt))
		a.BetaPositive *= f
		a.BetaNegative *= f
		a.BetaAt = t
	}
}

// decayFactor is what a weight shrinks to over age: λ^(age/period),
// worked out as e^(age·ln λ/period), which spares Pow's general case on
// every counted rating and every read.
func (l *Ledger) decayFactor(age time.Duration) float64 {
	return math.Exp(float64(age) * l.rep.decayRate)
}

// monthOf names the calendar month of t in the policy's location, the key
// of the monthly pair cap.
func (l *Ledger) monthOf(t time.Time) string {
	return t.In(l.rep.loc).Format("2006-01")
}

// dayOf numbers the calendar day of t in the policy's location: days since
// 1970-01-01.
func (l *Ledger) dayOf(t time.Time) int32 {
	y, m, d := t.In(l.rep.loc).Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// windowDays returns the lengths in days of the aggregate's windows.
func (l *Ledger) windowDays() [5]int32 {
	return [5]int32{7, 30, 180, 365, int32(l.rep.rateWindow / (24 * time.Hour))}
}

// dayCount returns the DayCount of party in role on day, zero if none.
func (l *Ledger) dayCount(tx Tx, party string, role Role, day int32) (DayCount, error) {
	dc := DayCount{Party: party, Role: role, Day: day}
	err := tx.DayRange(party, role, day, day, func(d DayCount) error { dc = d; return nil })
	return dc, err
}

// advanceWindows moves a's window counts forward to today, taking out the
// days that have left each window. It reads only those days, so an
// aggregate already up to date costs nothing here.
func (l *Ledger) advanceWindows(tx Tx, a *Aggregate, today int32) error {
	if a.WindowsDay == 0 && a.Windows == ([5]Counts{}) {
		a.WindowsDay = today
		return nil
	}
	if today <= a.WindowsDay {
		return nil
	}
	w, err := l.expireWindows(tx, a.Party, a.Role, a.Windows, a.WindowsDay, today)
	if err != nil {
		return err
	}
	a.Windows, a.WindowsDay = w, today
	return nil
}

// expireWindows returns windows, counted to day last, counted to today
// instead. It takes values rather than the aggregate so that the common
// case, where nothing expires, keeps the aggregate off the heap.
func (l *Ledger) expireWindows(tx Tx, party string, role Role, windows [5]Counts, last, today int32) ([5]Counts, error) {
	lens := l.windowDays()
	var from, to int32 = math.MaxInt32, math.MinInt32
	for k, w := range lens {
		if today-w >= last { // the whole window has passed
			windows[k] = Counts{}
		} else {
			from, to = min(from, last-w+1), max(to, today-w)
		}
	}
	if from > to {
		return windows, nil
	}
	err := tx.DayRange(party, role, from, to, func(d DayCount) error {
		c := Counts{-int64(d.Positive), -int64(d.Neutral), -int64(d.Negative)}
		for k, w := range lens {
			// The day was inside the window ending at last and is
			// outside the one ending today.
			if today-w < last && d.Day > last-w && d.Day <= today-w {
				windows[k] = windows[k].plus(c)
			}
		}
		return nil
	})
	return windows, err
}

// A Level is a rank earned by points: None (tier 0) below 4 points, then
// Heart, Diamond, Crown and Gold crown, each in tiers 1 to 5.
type Level struct {
	Name string
	Tier int
}

func (lv Level) String() string {
	if lv.Tier == 0 {
		return lv.Name
	}
	return lv.Name + " " + strconv.Itoa(lv.Tier)
}

// levelFloors are the least points of each level, Heart 1 to Gold crown 5.
var levelFloors = [20]int64{4, 11, 41, 91, 151, 251, 501, 1001, 2001, 5001, 10001, 20001, 50001,
	100001, 200001, 500001, 1000001, 2000001, 5000001, 10000001}

var levelNames = [4]string{"Heart", "Diamond", "Crown", "Gold crown"}

// LevelFor returns the level that points earn.
func LevelFor(points int64) Level {
	n := 0
	for n < len(levelFloors) && points >= levelFloors[n] {
		n++
	}
	if n == 0 {
		return Level{Name: "None"}
	}
	return Level{Name: levelNames[(n-1)/5], Tier: (n-1)%5 + 1}
}

// Counts are counted ratings in a window.
type Counts struct {
	Positive, Neutral, Negative int64
}

func (c Counts) plus(o Counts) Counts {
	return Counts{c.Positive + o.Positive, c.Neutral + o.Neutral, c.Negative + o.Negative}
}

// A View is a party's reputation in one role, as of a moment.
type View struct {
	Role Role
	// Unrated is true when no rating of the party in this role counts;
	// every figure below is then zero.
	Unrated bool
	Points  int64
	Level   Level
	// Total counts every counted rating.
	Total Counts
	// Last7, Last30, Last180 and Last365 count the counted ratings given in
	// the last 7, 30, 180 and 365 days, today included.
	Last7, Last30, Last180, Last365 Counts
	// PositiveRate is positive/(positive+negative) over the policy's
	// RateWindow (180 days); RateBasis is that denominator, and the rate
	// is 0 when it is.
	PositiveRate float64
	RateBasis    int64
	// Wilson is the lower bound of the 95% Wilson score interval (z = 1.96)
	// of PositiveRate; exactly 0 when no rating in the window is positive.
	Wilson float64
	// Expectation is α/(α+β) and Uncertainty 2/(α+β) of the Beta
	// reputation, α = 1 + Σ w·positive and β = 1 + Σ w·negative, each rating
	// weighted by w = log10(10 + value) and decayed by age.
	Expectation, Uncertainty float64
	// Described, Communication and Shipping average the detail scores
	// buyers gave (sellers only); 0 when none were given.
	Described, Communication, Shipping float64
}

// Reputation is a party's standing as a seller and as a buyer.
type Reputation struct {
	Party    string
	AsSeller View
	AsBuyer  View
}

// Reputation returns party's reputation now. It reads two aggregates and no
// ratings. An unknown party, or one never rated, is reported unrated.
func (l *Ledger) Reputation(ctx context.Context, party string) (Reputation, error) {
	now := l.now()
	rep := Reputation{Party: party}
	err := l.store.View(ctx, func(tx Tx) error {
		for _, role := range [2]Role{Seller, Buyer} {
			a, err := tx.Aggregate(party, role)
			if errors.Is(err, ErrNotFound) {
				a = Aggregate{Party: party, Role: role}
			} else if err != nil {
				return err
			}
			v, err := l.view(tx, a, now)
			if err != nil {
				return err
			}
			if role == Seller {
				rep.AsSeller = v
			} else {
				rep.AsBuyer = v
			}
		}
		return nil
	})
	return rep, err
}

const wilsonZ = 1.96

// view computes a View from an aggregate as of now.
func (l *Ledger) view(tx Tx, agg Aggregate, now time.Time) (View, error) {
	a := &agg
	v := View{Role: a.Role}
	v.Total = Counts{a.Positive, a.Neutral, a.Negative}
	if v.Total == (Counts{}) {
		v.Unrated = true
		v.Level = LevelFor(0)
		return v, nil
	}
	v.Points = a.Points
	v.Level = LevelFor(a.Points)
	if err := l.advanceWindows(tx, a, l.dayOf(now)); err != nil {
		return View{}, err
	}
	v.Last7, v.Last30, v.Last180, v.Last365 = a.Windows[0], a.Windows[1], a.Windows[2], a.Windows[3]
	v.RateBasis, v.PositiveRate, v.Wilson = positiveRate(a.Windows[4])
	l.decayTo(a, now)
	v.Expectation, v.Uncertainty = betaScore(a.BetaPositive, a.BetaNegative)
	avg := func(k int) float64 {
		if a.DetailCounts[k] == 0 {
			return 0
		}
		return float64(a.DetailSums[k]) / float64(a.DetailCounts[k])
	}
	v.Described, v.Communication, v.Shipping = avg(0), avg(1), avg(2)
	return v, nil
}

// positiveRate returns the positive rate of c, positive/(positive+negative),
// with its basis, the denominator, and the lower bound of its Wilson
// interval; the rate and the bound are 0 when the basis is. With no
// positives the bound is exactly 0: the formula works it out as a
// difference of equal terms, which leaves rounding noise of either sign,
// and a ranking would order all-negative parties by that noise.
func positiveRate(c Counts) (basis int64, rate, wilson float64) {
	basis = c.Positive + c.Negative
	if c.Positive == 0 {
		return basis, 0, 0
	}
	n := float64(basis)
	p := float64(c.Positive) / n
	z2 := wilsonZ * wilsonZ
	return basis, p, (p + z2/(2*n) - wilsonZ*math.Sqrt(p*(1-p)/n+z2/(4*n*n))) / (1 + z2/n)
}

// betaScore returns the expectation and uncertainty of the Beta
// reputation with α = 1 + positive and β = 1 + negative.
func betaScore(positive, negative float64) (expectation, uncertainty float64) {
	alpha, beta := 1+positive, 1+negative
	return alpha / (alpha + beta), 2 / (alpha + beta)
}

// A Contribution explains one rating's part in a reputation.
type Contribution struct {
	Rating
	// BetaWeight is the weight it carries in the Beta score now, after
	// decay; 0 if it does not count or is neutral.
	BetaWeight float64
	// InRateWindow reports whether it is within the positive rate's window.
	InRateWindow bool
}

// Explain returns every rating party has received, oldest first, each with
// whether it counted and why not, and what it contributes now, so a host
// can show why a score is what it is. It reads the party's ratings, so it
// is for a reputation page, not a listing.
func (l *Ledger) Explain(ctx context.Context, party string) ([]Contribution, error) {
	now := l.now()
	out := []Contribution{}
	err := l.store.View(ctx, func(tx Tx) error {
		return tx.RatingsOf(party, func(r Rating) error {
			c := Contribution{Rating: r}
			if r.Counted {
				age := now.Sub(r.At)
				c.InRateWindow = l.dayOf(now)-l.dayOf(r.At) < l.windowDays()[4]
				if r.Score != Neutral {
					c.BetaWeight = r.Weight * l.decayFactor(age)
				}
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// A Ranked is one seller in a ranking.
type Ranked struct {
	Party string
	View  View
}

// TopSellers returns at most n sellers with the highest Wilson bound or Beta
// expectation, highest first. It reads them from the store's ranking index,
// which orders sellers by their keys as of their latest rating or the
// latest ProcessDue, whichever came later; the Views are computed as of now.
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
func (l *Ledger) TopSellers(ctx context.Context, n int, by RankKey) ([]Ranked, error) {
	if n <= 0 {
		return nil, invalidArg("n %d must be positive", n)
	}
	if by != RankWilson && by != RankExpectation {
		return nil, invalidArg("unknown rank key %d", by)
	}
	now := l.now()
	var out []Ranked
	err := l.store.View(ctx, func(tx Tx) error {
		top, err := tx.TopAggregates(Seller, by, n)
		if err != nil {
			return err
		}
		out = make([]Ranked, 0, len(top))
		for _, a := range top {
			v, err := l.view(tx, a, now)
			if err != nil {
				return err
			}
			out = append(out, Ranked{Party: a.Party, View: v})
		}
		return nil
	})
	return out, err
}
