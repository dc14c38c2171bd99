package escrow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// Reputation is built only from real, finished trades: the buyer and the
// seller of an escrow that ended may rate each other once, within a window,
// and every rating records whether it counted towards the other party's
// score and why not. Aggregates are updated in the same transaction as each
// rating, so reading a reputation never reads the history.
//
// This file holds the rules: who may rate, when, and how ratings are
// given, revised and answered; reputation_count.go counts them,
// reputation_score.go scores them and reputation_rank.go ranks them.

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
		return Rating{}, &NotFoundError{Kind: "rating", ID: escrowID, Rater: rater}
	}
	return r, err
}

// rank orders scores from worst to best, for "revised upward".
func (s Score) rank() int { return 4 - int(s) }

// Details are a buyer's optional 1 to 5 scores of a seller; 0 means not
// given.
type Details struct {
	Described     int8 `json:"described,omitzero"` // the item was as described
	Communication int8 `json:"communication,omitzero"`
	Shipping      int8 `json:"shipping,omitzero"`
}

func (d Details) given() bool { return d != Details{} }

func (d Details) array() [3]int8 { return [3]int8{d.Described, d.Communication, d.Shipping} }

// RatingInput is what a party says when rating.
type RatingInput struct {
	Score   Score   `json:"score"`
	Details Details `json:"details,omitzero"`  // only a buyer rating a seller may give them
	Comment string  `json:"comment,omitempty"` // up to 500 bytes of UTF-8
}

// A Rating is one party's verdict on the other after an escrow ended.
type Rating struct {
	Escrow    string    `json:"escrow"`
	Rater     string    `json:"rater"`
	Ratee     string    `json:"ratee"`
	RateeRole Role      `json:"ratee_role"` // Seller if the buyer rated, Buyer if the seller did
	Score     Score     `json:"score"`
	Details   Details   `json:"details,omitzero"`
	Comment   string    `json:"comment,omitempty"`
	At        time.Time `json:"at,omitzero"` // when it was given; its place in every window
	Default   bool      `json:"default"`     // given by the ledger for a party who stayed silent
	Value     Money     `json:"value"`       // what the escrow released to the seller, or its price if nothing (then no positive counts)
	Weight    float64   `json:"weight"`      // log10(10 + Value in major units): its weight in the Beta score

	// Revised is set when a Neutral or Negative was revised upward; Original
	// is the score it replaced.
	Revised   bool      `json:"revised"`
	Original  Score     `json:"original,omitzero"`
	RevisedAt time.Time `json:"revised_at,omitzero"`
	// Reply is the rated party's one answer.
	Reply     string    `json:"reply,omitempty"`
	RepliedAt time.Time `json:"replied_at,omitzero"`
	// Withdrawn is set when its rater withdrew it (see WithdrawRating):
	// it is kept, and no longer counts.
	Withdrawn   bool      `json:"withdrawn"`
	WithdrawnAt time.Time `json:"withdrawn_at,omitzero"`
	// Voided is set when an operator voided it (see VoidRating): VoidedBy
	// names the operator and VoidReason says why. It is kept, and no
	// longer counts.
	Voided     bool      `json:"voided"`
	VoidedBy   string    `json:"voided_by,omitempty"`
	VoidReason string    `json:"void_reason,omitempty"`
	VoidedAt   time.Time `json:"voided_at,omitzero"`

	// Counted reports whether the rating counts towards the ratee's
	// reputation; if not, Reason says why. Points is what it added to the
	// ratee's points (0 when not counted).
	Counted bool   `json:"counted"`
	Reason  string `json:"reason,omitempty"`
	Points  int64  `json:"points"`
}

// Reasons a rating does not count.
const (
	ReasonBelowMinimum = "the escrow is worth less than the minimum that counts"
	ReasonPairCap      = "the pair's monthly cap on points was reached"
	ReasonDisputeLost  = "the rater lost the dispute on this escrow"
	ReasonRepeatItem   = "the rater's rating of the same item from the same party counted less than the repeat window before"
	ReasonWithdrawn    = "the rater withdrew it"
	ReasonVoided       = "an operator voided it"
)

// An ItemMark records, for one rater, one ratee and one item, the latest
// counted rating, for ReputationPolicy.RepeatItemWindow.
type ItemMark struct {
	Ratee  string    `json:"ratee"`
	Rater  string    `json:"rater"`
	Item   string    `json:"item"`        // the escrow's SKU, or its Item when it has none
	Escrow string    `json:"escrow"`      // the rating's escrow
	At     time.Time `json:"at,omitzero"` // when it was given
}

// PairMonth records the points counted for one rater's ratings of one
// ratee in one calendar month, for the monthly cap.
type PairMonth struct {
	Ratee    string `json:"ratee"`
	Rater    string `json:"rater"`
	Month    string `json:"month"`    // "2006-01"
	Positive int64  `json:"positive"` // points added by positive ratings
	Negative int64  `json:"negative"` // points taken by negative ratings, as a positive number
}

// An Aggregate is what the ledger keeps of a party's ratings in one role,
// updated as each rating counts. Hosts read Reputation instead.
type Aggregate struct {
	Party string `json:"party"`
	Role  Role   `json:"role"` // Seller: ratings received as a seller; Buyer: as a buyer
	// Points is the sum of counted points.
	Points int64 `json:"points"`
	// Positive, Neutral and Negative count counted ratings, all time.
	Positive int64 `json:"positive"`
	Neutral  int64 `json:"neutral"`
	Negative int64 `json:"negative"`
	// Windows count counted ratings in the windows that end on WindowsDay
	// (days since 1970-01-01 in the policy's location): the last 7, 30,
	// 180 and 365 days, and the positive rate's window, in that order. They
	// are kept up to date as days pass, from the DayCount records.
	Windows    [5]Counts `json:"windows"`
	WindowsDay int32     `json:"windows_day"`
	// BetaPositive and BetaNegative are the weighted, decayed sums of
	// positive and negative ratings as of BetaAt.
	BetaPositive float64   `json:"beta_positive"`
	BetaNegative float64   `json:"beta_negative"`
	BetaAt       time.Time `json:"beta_at,omitzero"`
	// DetailSums and DetailCounts total the detail scores of counted
	// ratings, all time, in the order described, communication, shipping.
	DetailSums   [3]int64 `json:"detail_sums"`
	DetailCounts [3]int64 `json:"detail_counts"`
	// Wilson and Expectation are the ranking keys as of UpdatedAt.
	Wilson      float64   `json:"wilson"`
	Expectation float64   `json:"expectation"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
	// RekeyDay is the day (numbered as WindowsDay) on which ProcessDue next
	// works the ranking keys out again, as time alone changes them; 0 when
	// time alone no longer does. See TopSellers.
	RekeyDay int32 `json:"rekey_day"`
	// DetailWindowSums and DetailWindowCounts total the detail scores of
	// the counted ratings in the policy's DetailWindow ending on
	// WindowsDay, kept up to date as days pass like Windows, from the
	// detail sums of the DayCount records.
	DetailWindowSums   [3]int64 `json:"detail_window_sums"`
	DetailWindowCounts [3]int64 `json:"detail_window_counts"`
	// DetailDays reports that the DayCount records of this party and role
	// carry their detail scores and that DetailWindowSums and
	// DetailWindowCounts are kept. It is false only in an aggregate
	// written before they existed: the ledger works them out from the
	// party's ratings when it next writes the aggregate, for a rating or
	// when ProcessDue re-keys it (the day after, for any aggregate with a
	// rating in its windows).
	DetailDays bool `json:"detail_days"`
	// UniquePositive and UniqueNegative count the distinct raters with a
	// counted positive (negative) rating in the policy's UniqueWindow
	// ending on WindowsDay, kept up to date as days pass like Windows;
	// zero unless the policy has UniqueRaters.
	UniquePositive int64 `json:"unique_positive"`
	UniqueNegative int64 `json:"unique_negative"`
	// RatersKept reports that UniquePositive, UniqueNegative, the
	// distinct raters of the day counts and the RaterDays records of this
	// party and role are kept. The ledger sets it when it writes the
	// aggregate under a policy with UniqueRaters, working them out from
	// the ratings if it was not set (the option was just turned on), and
	// clears it under a policy without.
	RatersKept bool `json:"raters_kept"`
}

// A PartyRole names a party in one role: whose aggregate it is.
type PartyRole struct {
	Party string `json:"party"`
	Role  Role   `json:"role"`
}

// A DayCount counts one day's counted ratings of a party in a role.
type DayCount struct {
	Party    string `json:"party"`
	Role     Role   `json:"role"`
	Day      int32  `json:"day"` // days since 1970-01-01 in the policy's location
	Positive int32  `json:"positive"`
	Neutral  int32  `json:"neutral"`
	Negative int32  `json:"negative"`
	// DetailSums and DetailCounts total the detail scores of the day's
	// counted ratings, in the order described, communication, shipping.
	DetailSums   [3]int32 `json:"detail_sums"`
	DetailCounts [3]int32 `json:"detail_counts"`
	// UniquePositive and UniqueNegative count the raters whose latest
	// counted positive (negative) rating in the UniqueWindow fell on the
	// day, under a policy with UniqueRaters; zero without. Once the day
	// has left the window they are no longer read, and are at most
	// Positive (Negative).
	UniquePositive int32 `json:"unique_positive"`
	UniqueNegative int32 `json:"unique_negative"`
}

// RaterDays records, under a policy with UniqueRaters, the days (numbered
// as DayCount's) of one rater's counted positive and negative ratings of
// one ratee in one role, ascending, a day once for each rating: what
// tells the ledger the rater's latest rating in the UniqueWindow, and
// which it is after one is taken out. Days that have left the window are
// dropped when the record is next written.
type RaterDays struct {
	Ratee    string  `json:"ratee"`
	Role     Role    `json:"role"` // the ratee's
	Rater    string  `json:"rater"`
	Positive []int32 `json:"positive"`
	Negative []int32 `json:"negative"`
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
	// revise it upward, once: 30 days, at most 365.
	RevisionWindow time.Duration
	// ReplyWindow is how long after a rating its ratee may reply to it:
	// 30 days.
	ReplyWindow time.Duration
	// Points are the points of a Positive, Neutral and Negative rating:
	// +1, 0 and −1.
	Points *[3]int64
	// PairCap caps the points one rater's ratings add to (and take from)
	// one ratee in a calendar month: 6 each way. The cap is applied as a
	// rating counts; taking a counted rating out (a revision, a void, a
	// withdrawal) does not count again one the cap held back.
	PairCap int64
	// PairCapBy says which month a rating counts in for PairCap: the
	// month it was given (RatingMonth, the default) or the month its
	// escrow was opened (OrderMonth), as the platform counts: a trade
	// opened on 28 February and rated on 1 March counts in February.
	PairCapBy PairCapMonth
	// NetPairCap caps the pair's month as a whole: its counted points,
	// positive and negative together, stay within −PairCap and +PairCap
	// as each rating counts. By default positives and negatives are
	// capped apart, so one pair may add PairCap positive and PairCap
	// negative points in a month. Either way the cap is on points, not
	// ratings: a neutral rating, of no points, is never held back, and
	// under NetPairCap neither is a rating that brings the net back
	// towards zero. Under NetPairCap, taking a counted rating out (a
	// revision, a void, a withdrawal) that leaves the net past the cap
	// holds back the pair's latest counted ratings of that month on the
	// other side, until it is within the cap: they are stored as not
	// counted, for ReasonPairCap.
	NetPairCap bool
	// RepeatItemWindow is how long after (or before) a counted rating of
	// the same rater on the same ratee and item another does not count:
	// 14 days, at most 365. The item is the escrow's Terms.SKU, or its Terms.Item when
	// it has no SKU; escrows with neither are not held to it.
	// CountRepeatItems turns the rule off.
	RepeatItemWindow time.Duration
	CountRepeatItems bool
	// WithdrawWindow is how long after giving a Neutral or Negative its
	// rater may withdraw it, once: 30 days, at most 365. NoWithdraw turns
	// withdrawal off.
	WithdrawWindow time.Duration
	NoWithdraw     bool
	// MinValue is the value, in major units of the escrow's currency,
	// that an escrow's ratings must pass to count: 1. An escrow's value
	// is what it released to the seller, fees included, or its price if
	// it released nothing (Rating.Value), and then no positive rating of
	// it counts. MinValueRule says whether a value of exactly MinValue
	// passes.
	MinValue     decimal.Decimal
	MinValueRule MinValueRule
	// CountDisputeLosers lets the rating left by the party who lost a
	// dispute count; by default it does not.
	CountDisputeLosers bool
	// RateWindow is the trailing window, in whole days, of the positive
	// rate and its Wilson bound: 180 days, at least a day and at most 365.
	RateWindow time.Duration
	// Decay is the factor λ by which a rating's weight in the Beta score
	// shrinks per DecayPeriod of age: 0.98 per 30 days.
	Decay       float64
	DecayPeriod time.Duration
	// Location is where calendar months and days begin: UTC.
	Location *time.Location
	// DetailWindow is the trailing window, in whole days, over which a
	// View averages the detail scores: 180 days, at most 365.
	DetailWindow time.Duration
	// UniqueRaters makes a View's Points (and so its Level) the number of
	// distinct raters with a counted positive rating in the UniqueWindow
	// minus those with a counted negative one, as on eBay: a rater who
	// gave several positives adds one point, and one who gave both a
	// positive and a negative adds one and takes one. Each rating still
	// records the points it counted under the pair cap, and
	// Aggregate.Points still adds those up. Turned on for a store that
	// has ratings, it counts a party's raters from its ratings the first
	// time it writes the party's aggregate (for a rating, or ProcessDue
	// the next day); until then that party's points are counted as
	// without it, unless it has no counted rating in the UniqueWindow:
	// its points are then 0 at once, as there is no rater to count (and
	// ProcessDue, which re-keys only parties with ratings in a window,
	// never writes its aggregate).
	UniqueRaters bool
	// UniqueWindow is the trailing window, in whole days, of
	// UniqueRaters: 365 days, at most 365.
	UniqueWindow time.Duration
}

// A MinValueRule says how an escrow's value (Rating.Value) is compared with
// ReputationPolicy.MinValue.
type MinValueRule uint8

// Minimum value rules.
const (
	// AboveMinValue counts the ratings of escrows worth more than MinValue
	// only: with the default of 1, an order of 1.00 CNY or less scores
	// nothing, as on the platform the rules come from. The default.
	AboveMinValue MinValueRule = iota
	// AtLeastMinValue counts those worth MinValue or more: 1.00
	// counts. It was the rule before MinValueRule existed.
	AtLeastMinValue
)

// A PairCapMonth says which month a rating counts in for the monthly
// pair cap.
type PairCapMonth uint8

// Months for the pair cap.
const (
	// RatingMonth counts a rating in the month it was given. The default.
	RatingMonth PairCapMonth = iota
	// OrderMonth counts it in the month its escrow was opened.
	OrderMonth
)

// policy is a ReputationPolicy with its defaults filled in.
type policy struct {
	window, revision, reply, rateWindow, decayPeriod time.Duration
	rateable                                         map[State]bool
	noDefault, countLosers                           bool
	points                                           [3]int64
	pairCap                                          int64
	minValue                                         decimal.Decimal
	minAtLeast                                       bool // MinValueRule is AtLeastMinValue
	decay                                            float64
	decayRate                                        float64 // ln λ per nanosecond of age
	loc                                              *time.Location
	minUnits                                         map[string]int64 // the least price that counts, in each currency's minor units
	byOrderMonth, netCap                             bool
	repeatItem                                       time.Duration // 0: the rule is off
	withdraw                                         time.Duration // 0: withdrawal is off
	detailDays                                       int32         // DetailWindow in days
	unique                                           bool          // UniqueRaters
	uniqueDays                                       int32         // UniqueWindow in days
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
		window: or(p.Window, 15*day), revision: or(p.RevisionWindow, 30*day), reply: or(p.ReplyWindow, 30*day),
		rateWindow: or(p.RateWindow, 180*day), decayPeriod: or(p.DecayPeriod, 30*day),
		noDefault: p.NoDefaultRating, countLosers: p.CountDisputeLosers,
		points: [3]int64{1, 0, -1}, pairCap: p.PairCap, minValue: p.MinValue,
		decay: p.Decay, loc: p.Location, rateable: map[State]bool{},
	}
	c.repeatItem, c.withdraw = or(p.RepeatItemWindow, 14*day), or(p.WithdrawWindow, 30*day)
	if c.window < 0 || c.revision < 0 || c.reply < 0 || c.rateWindow < 0 || c.decayPeriod < 0 || c.repeatItem < 0 || c.withdraw < 0 {
		return policy{}, invalidArg("reputation policy durations may not be negative")
	}
	if c.revision > 365*day {
		return policy{}, invalidArg("reputation RevisionWindow %s is longer than 365 days", c.revision)
	}
	if c.repeatItem > 365*day {
		return policy{}, invalidArg("reputation RepeatItemWindow %s is longer than 365 days", c.repeatItem)
	}
	if c.withdraw > 365*day {
		return policy{}, invalidArg("reputation WithdrawWindow %s is longer than 365 days", c.withdraw)
	}
	if p.CountRepeatItems {
		c.repeatItem = 0
	}
	if p.NoWithdraw {
		c.withdraw = 0
	}
	switch p.PairCapBy {
	case RatingMonth:
	case OrderMonth:
		c.byOrderMonth = true
	default:
		return policy{}, invalidArg("reputation PairCapBy %d is neither RatingMonth nor OrderMonth", p.PairCapBy)
	}
	c.netCap = p.NetPairCap
	if c.rateWindow < day || c.rateWindow > 365*day {
		return policy{}, invalidArg("reputation RateWindow %s is not between a day and 365 days", c.rateWindow)
	}
	if p.Points != nil {
		c.points = *p.Points
	}
	detail := or(p.DetailWindow, 180*day)
	if detail < day || detail > 365*day {
		return policy{}, invalidArg("reputation DetailWindow %s is not between a day and 365 days", detail)
	}
	c.detailDays = int32(detail / day)
	uniqueWindow := or(p.UniqueWindow, 365*day)
	if uniqueWindow < day || uniqueWindow > 365*day {
		return policy{}, invalidArg("reputation UniqueWindow %s is not between a day and 365 days", uniqueWindow)
	}
	c.unique, c.uniqueDays = p.UniqueRaters, int32(uniqueWindow/day)
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
	switch p.MinValueRule {
	case AboveMinValue:
	case AtLeastMinValue:
		c.minAtLeast = true
	default:
		return policy{}, invalidArg("reputation MinValueRule %d is neither AboveMinValue nor AtLeastMinValue", p.MinValueRule)
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
// ErrRatingClosed once the window has closed (at its last instant, when the
// default is due, even before ProcessDue records it), and with
// ErrInvalidArgument for a bad
// score, details from a seller, or a comment over 500 bytes.
func (l *Ledger) Rate(ctx context.Context, escrowID, rater string, in RatingInput, opts ...CallOption) (Rating, error) {
	start := l.begin()
	err := checkID("escrow", escrowID)
	if err == nil {
		err = in.check()
	}
	var o callOptions
	if err == nil {
		o, err = optionsOf(opts)
	}
	if err != nil {
		return Rating{}, l.finish(start, "rate", err)
	}
	c := ratePool.Get().(*rateCall)
	c.l, c.escrowID, c.rater, c.in, c.key, c.now = l, escrowID, rater, in, o.key, l.now()
	err = l.update(ctx, "rate", c.fn)
	o.done(c.replayed, err)
	r, replayed := c.r, c.replayed
	c.reset()
	ratePool.Put(c)
	if err = l.finishKeyed(start, "rate", replayed, err); err != nil {
		return Rating{}, err
	}
	return r, nil
}

// check refuses a bad score or detail score, or a comment over 500 bytes.
func (in RatingInput) check() error {
	if err := in.Score.check(); err != nil {
		return err
	}
	for _, d := range in.Details.array() {
		if d < 0 || d > 5 {
			return invalidArg("detail score %d is not 1 to 5 (or 0 for none)", d)
		}
	}
	return checkText("comment", in.Comment, 500, true)
}

// A rateCall is one Rate call, pooled with its transaction function bound
// as escrow calls are, since rating follows every finished trade: made
// with closures, as Revise and Reply are, a rating took about 45% longer
// against the same run's Baseline (median of five interleaved runs).
type rateCall struct {
	l               *Ledger
	escrowID, rater string
	in              RatingInput
	key             string
	now             time.Time
	replayed        bool
	e               Escrow
	r               Rating
	ev              Event
	fn              func(Tx) error
}

var ratePool = sync.Pool{New: func() any {
	c := new(rateCall)
	c.fn = c.run
	return c
}}

// reset readies c for its next call. As call.reset does, it leaves the
// escrow, the rating and the event for the next call to write whole
// before it reads them.
func (c *rateCall) reset() {
	c.l, c.escrowID, c.rater, c.in, c.key, c.now, c.replayed = nil, "", "", RatingInput{}, "", time.Time{}, false
}

func (c *rateCall) run(tx Tx) (err error) {
	c.replayed, err = c.l.runKeyed(tx, c.key, c.now, c)
	return err
}

func (c *rateCall) request() string {
	d := c.in.Details
	return newRequest(rules[ActionRate].request).str("escrow", c.escrowID).str("rater", c.rater).int("score", int64(c.in.Score)).
		int("described", int64(d.Described)).int("communication", int64(d.Communication)).
		int("shipping", int64(d.Shipping)).str("comment", c.in.Comment).String()
}

func (c *rateCall) result() any { return &c.r }

func (c *rateCall) apply(tx Tx) error {
	l, e, now := c.l, &c.e, c.now
	var err error
	if err = loadEscrow(tx, c.escrowID, e); err != nil {
		return err
	}
	role := e.RoleOf(c.rater)
	switch {
	case role != Buyer && role != Seller:
		return &RoleError{Escrow: e.ID, Action: ActionRate, Actor: c.rater, State: e.State, Want: (Buyer | Seller).String()}
	case !e.State.Terminal() || !l.rep.rateable[e.State]:
		return &TransitionError{Escrow: e.ID, Action: ActionRate, State: e.State}
	case e.Rated&role != 0:
		// A party that let the window close has the default rating: its
		// rating now is late, not a second one.
		if r, err := getRating(tx, e.ID, c.rater); err == nil && r.Default {
			return fmt.Errorf("%w: escrow %q: the window closed %s, and the default rating was recorded",
				ErrRatingClosed, e.ID, r.At.Format(time.RFC3339))
		}
		return fmt.Errorf("%w: %q on escrow %q", ErrAlreadyRated, c.rater, e.ID)
	case e.RatingDueAt.IsZero() || !now.Before(e.RatingDueAt):
		return fmt.Errorf("%w: escrow %q ended %s", ErrRatingClosed, e.ID, e.EndedAt.Format(time.RFC3339))
	case role == Seller && c.in.Details.given():
		return invalidArg("only a buyer rating a seller gives detail scores")
	}
	c.r = l.newRating(e, role, c.in, now, false)
	if err := l.record(tx, e, &c.r, role, now); err != nil {
		return err
	}
	if e.Rated == Buyer|Seller {
		e.RatingDueAt = time.Time{}
	}
	c.ev = Event{Type: RatingGiven, At: now, Escrow: e.ID, Account: c.r.Ratee, Actor: c.rater, State: e.State, Note: c.r.Score.String()}
	return save(tx, e, &c.ev, now)
}

func (l *Ledger) newRating(e *Escrow, raterRole Role, in RatingInput, now time.Time, byDefault bool) Rating {
	r := Rating{Escrow: e.ID, Score: in.Score, Details: in.Details, Comment: in.Comment, At: now,
		Default: byDefault, Value: ratedValue(e)}
	if raterRole == Buyer {
		r.Rater, r.Ratee, r.RateeRole = e.Buyer, e.Seller, Seller
	} else {
		r.Rater, r.Ratee, r.RateeRole = e.Seller, e.Buyer, Buyer
	}
	major := float64(r.Value.units) / math.Pow10(r.Value.currency().Minor)
	r.Weight = math.Log10(10 + major)
	return r
}

// ratedValue is what an ended escrow's ratings are worth: the money it
// released to the seller, fees included. A price refunded in part before
// the buyer confirmed is not worth its whole price, or a seller could buy
// a full-price rating for the fee on a cent. An escrow that released
// nothing (Refunded, or resolved wholly for the buyer) is worth its price
// to a neutral or a negative, and no positive rating of it counts: none
// cost a fee, and an arbiter the parties named could resolve a ring's
// orders wholly for the buyer.
func ratedValue(e *Escrow) Money {
	if e.Released.IsZero() {
		return e.Price
	}
	return e.Released
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
// positive, a default, or the new score is not higher), ErrRatingClosed
// after the window, and ErrInvalidArgument for a rater whose ID breaks
// the rule.
func (l *Ledger) Revise(ctx context.Context, escrowID, rater string, score Score, comment string, opts ...CallOption) (Rating, error) {
	start := l.begin()
	if err := checkID("escrow", escrowID); err != nil {
		return Rating{}, l.finish(start, "revise", err)
	}
	if err := checkID("rater", rater); err != nil {
		return Rating{}, l.finish(start, "revise", err)
	}
	if err := score.check(); err != nil {
		return Rating{}, l.finish(start, "revise", err)
	}
	if err := checkText("comment", comment, 500, true); err != nil {
		return Rating{}, l.finish(start, "revise", err)
	}
	return mutate(ctx, l, start, "revise", opts, func() string {
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
			case r.Withdrawn || r.Voided:
				return Rating{}, fmt.Errorf("%w: the rating by %q on escrow %q was withdrawn or voided", ErrInvalidTransition, rater, escrowID)
			case r.Score == Positive || score.rank() <= r.Score.rank():
				return Rating{}, fmt.Errorf("%w: a %s rating can only be revised upward, not to %s", ErrInvalidTransition, r.Score, score)
			case now.After(r.At.Add(l.rep.revision)):
				return Rating{}, fmt.Errorf("%w: the rating by %q on escrow %q was given %s", ErrRatingClosed, rater, escrowID, r.At.Format(time.RFC3339))
			}
			e, err := getEscrow(tx, escrowID)
			if err != nil {
				return Rating{}, err
			}
			if err := l.uncountRating(tx, &e, &r, now); err != nil {
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
			ev := Event{Type: RatingRevised, At: now, Account: r.Ratee, Actor: rater,
				Note: r.Original.String() + " to " + r.Score.String()}
			about(&ev, &e)
			return r, tx.AppendEvent(&ev)
		})
}

// Reply posts the rated party's one answer to a rating (up to 500 bytes),
// within the reply window (by default 30 days from the rating). It fails
// with ErrNotFound if there is no such rating, ErrNotParty if the actor is
// not the ratee, ErrAlreadyRated if there is a reply already and
// ErrRatingClosed after the window.
func (l *Ledger) Reply(ctx context.Context, escrowID, rater, actor, text string, opts ...CallOption) (Rating, error) {
	start := l.begin()
	if err := checkID("escrow", escrowID); err != nil {
		return Rating{}, l.finish(start, "reply", err)
	}
	if err := checkID("rater", rater); err != nil {
		return Rating{}, l.finish(start, "reply", err)
	}
	if err := checkText("reply", text, 500, true); err != nil {
		return Rating{}, l.finish(start, "reply", err)
	}
	if text == "" {
		return Rating{}, l.finish(start, "reply", invalidArg("empty reply"))
	}
	return mutate(ctx, l, start, "reply", opts, func() string {
		return newRequest("reply").str("escrow", escrowID).str("rater", rater).str("actor", actor).str("text", text).String()
	},
		func(tx Tx, now time.Time) (Rating, error) {
			r, err := getRating(tx, escrowID, rater)
			if err != nil {
				return Rating{}, err
			}
			if actor != r.Ratee {
				return Rating{}, fmt.Errorf("%w: only %q may reply to this rating, not %s", ErrNotParty, r.Ratee, quoted(actor))
			}
			if r.Reply != "" {
				return Rating{}, fmt.Errorf("%w: %q already replied to the rating on escrow %q", ErrAlreadyRated, actor, escrowID)
			}
			if now.After(r.At.Add(l.rep.reply)) {
				return Rating{}, fmt.Errorf("%w: the rating by %q on escrow %q was given %s, more than %s ago",
					ErrRatingClosed, rater, escrowID, r.At.Format(time.RFC3339), l.rep.reply)
			}
			// The event carries the escrow's parties, state and metadata, as every escrow event does.
			e, err := getEscrow(tx, escrowID)
			if err != nil {
				return Rating{}, err
			}
			r.Reply, r.RepliedAt = text, now
			if err := tx.PutRating(r); err != nil {
				return Rating{}, err
			}
			ev := Event{Type: RatingReplied, At: now, Account: rater, Actor: actor, Note: text}
			about(&ev, &e)
			return r, tx.AppendEvent(&ev)
		})
}

// WithdrawRating removes a Neutral or Negative from the count at its
// rater's wish, once, within the policy's WithdrawWindow (by default 30
// days from the rating): the rating is kept, marked Withdrawn, and every
// aggregate, window, ranking and explanation follows. A rating that was
// revised cannot also be withdrawn: a rater changes a verdict once. It
// fails with ErrNotFound if there is no such rating, ErrInvalidTransition
// if the rating cannot be withdrawn (positive, a default, revised,
// already withdrawn or voided, or withdrawal is off), ErrRatingClosed
// after the window, whose last instant is still in it, and
// ErrInvalidArgument for a rater whose ID breaks the rule.
func (l *Ledger) WithdrawRating(ctx context.Context, escrowID, rater string, opts ...CallOption) (Rating, error) {
	start := l.begin()
	if err := checkID("escrow", escrowID); err != nil {
		return Rating{}, l.finish(start, "withdraw_rating", err)
	}
	if err := checkID("rater", rater); err != nil {
		return Rating{}, l.finish(start, "withdraw_rating", err)
	}
	return mutate(ctx, l, start, "withdraw_rating", opts, func() string {
		return newRequest("withdraw-rating").str("escrow", escrowID).str("rater", rater).String()
	},
		func(tx Tx, now time.Time) (Rating, error) {
			r, err := getRating(tx, escrowID, rater)
			if err != nil {
				return Rating{}, err
			}
			switch {
			case l.rep.withdraw == 0:
				return Rating{}, fmt.Errorf("%w: the reputation policy does not let ratings be withdrawn", ErrInvalidTransition)
			case r.Withdrawn || r.Voided || r.Revised || r.Default:
				return Rating{}, fmt.Errorf("%w: the rating by %q on escrow %q cannot be withdrawn", ErrInvalidTransition, rater, escrowID)
			case r.Score == Positive:
				return Rating{}, fmt.Errorf("%w: a positive rating cannot be withdrawn", ErrInvalidTransition)
			case now.After(r.At.Add(l.rep.withdraw)):
				return Rating{}, fmt.Errorf("%w: the rating by %q on escrow %q was given %s, more than %s ago",
					ErrRatingClosed, rater, escrowID, r.At.Format(time.RFC3339), l.rep.withdraw)
			}
			return l.takeOut(tx, r, now, func(r *Rating) *Event {
				r.Withdrawn, r.WithdrawnAt = true, now
				return &Event{Type: RatingWithdrawn, At: now, Account: r.Ratee, Actor: rater, Note: r.Score.String()}
			})
		})
}

// VoidRating takes a rating out of the count by an operator's decision
// (brushing found, a court order), with a reason of up to 500 bytes: the
// rating is kept, marked Voided with who voided it and why, and every
// aggregate, window, ranking and explanation follows; a RatingVoided
// event records it. Only an account named in Options.Operators may void.
// It fails with ErrNotParty if operator is not one, ErrNotFound if there
// is no such rating, ErrInvalidTransition if it is voided already and
// ErrInvalidArgument for an empty or bad reason. A withdrawn rating may be
// voided too, to record the operator's finding; it counted already not.
func (l *Ledger) VoidRating(ctx context.Context, escrowID, rater, operator, reason string, opts ...CallOption) (Rating, error) {
	start := l.begin()
	if err := checkID("escrow", escrowID); err != nil {
		return Rating{}, l.finish(start, "void_rating", err)
	}
	if err := checkID("rater", rater); err != nil {
		return Rating{}, l.finish(start, "void_rating", err)
	}
	if err := checkText("void reason", reason, 500, true); err != nil {
		return Rating{}, l.finish(start, "void_rating", err)
	}
	if reason == "" {
		return Rating{}, l.finish(start, "void_rating", invalidArg("empty void reason"))
	}
	return mutate(ctx, l, start, "void_rating", opts, func() string {
		return newRequest("void-rating").str("escrow", escrowID).str("rater", rater).str("operator", operator).
			str("reason", reason).String()
	},
		func(tx Tx, now time.Time) (Rating, error) {
			if !l.operators[operator] {
				return Rating{}, fmt.Errorf("%w: %s is not an operator", ErrNotParty, quoted(operator))
			}
			r, err := getRating(tx, escrowID, rater)
			if err != nil {
				return Rating{}, err
			}
			if r.Voided {
				return Rating{}, fmt.Errorf("%w: the rating by %q on escrow %q is voided already", ErrInvalidTransition, rater, escrowID)
			}
			return l.takeOut(tx, r, now, func(r *Rating) *Event {
				r.Voided, r.VoidedBy, r.VoidReason, r.VoidedAt = true, operator, reason, now
				return &Event{Type: RatingVoided, At: now, Account: r.Ratee, Actor: operator, Note: reason}
			})
		})
}

// takeOut uncounts r, marks it as mark says, counts it again (which now
// finds it does not count, and why), stores it and appends the event mark
// returns.
func (l *Ledger) takeOut(tx Tx, r Rating, now time.Time, mark func(*Rating) *Event) (Rating, error) {
	e, err := getEscrow(tx, r.Escrow)
	if err != nil {
		return Rating{}, err
	}
	if err := l.uncountRating(tx, &e, &r, now); err != nil {
		return Rating{}, err
	}
	ev := mark(&r)
	if err := l.countRating(tx, &e, &r, now); err != nil {
		return Rating{}, err
	}
	if err := tx.PutRating(r); err != nil {
		return Rating{}, err
	}
	about(ev, &e)
	return r, tx.AppendEvent(ev)
}
