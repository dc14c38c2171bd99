package pgstore

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
)

// This file holds the methods of escrow.Tx for ratings, aggregates, day
// counts, monthly pair counters, item marks and raters' days.

const ratingCols = `escrow, rater, ratee, ratee_role, score, at, at_ns, is_default, currency, minor, value, weight,
	counted, points, doc`

// ratingDoc holds the fields of a Rating that have no column.
type ratingDoc struct {
	Details   escrow.Details `json:"details,omitzero"`
	Comment   string         `json:"comment,omitempty"`
	Revised   bool           `json:"revised,omitempty"`
	Original  escrow.Score   `json:"original,omitzero"`
	RevisedAt time.Time      `json:"revised_at,omitzero"`
	Reply     string         `json:"reply,omitempty"`
	RepliedAt time.Time      `json:"replied_at,omitzero"`
	Reason    string         `json:"reason,omitempty"`
	// From migration 0003 on; older docs lack them, and read as zero.
	Withdrawn   bool      `json:"withdrawn,omitempty"`
	WithdrawnAt time.Time `json:"withdrawn_at,omitzero"`
	Voided      bool      `json:"voided,omitempty"`
	VoidedBy    string    `json:"voided_by,omitempty"`
	VoidReason  string    `json:"void_reason,omitempty"`
	VoidedAt    time.Time `json:"voided_at,omitzero"`
}

func (t *tx) PutRating(r escrow.Rating) error {
	if err := t.check(true); err != nil {
		return err
	}
	c := r.Value.Currency()
	value, err := amount(fmt.Sprintf("rating of %q on %q", r.Rater, r.Escrow), r.Value, c)
	if err != nil {
		return err
	}
	var code *string
	var minor *int16
	if value != nil {
		m := int16(c.Minor)
		code, minor = &c.Code, &m
	}
	doc, err := json.Marshal(ratingDoc{Details: r.Details, Comment: r.Comment, Revised: r.Revised, Original: r.Original,
		RevisedAt: r.RevisedAt, Reply: r.Reply, RepliedAt: r.RepliedAt, Reason: r.Reason,
		Withdrawn: r.Withdrawn, WithdrawnAt: r.WithdrawnAt, Voided: r.Voided, VoidedBy: r.VoidedBy,
		VoidReason: r.VoidReason, VoidedAt: r.VoidedAt})
	if err != nil {
		// A time JSON cannot write: a year past 9999 or before 0.
		return fmt.Errorf("pgstore: rating of %q on %q: %w: %w", r.Rater, r.Escrow, escrow.ErrInvalidArgument, err)
	}
	at, ns := ts(r.At)
	return t.exec(`INSERT INTO ratings (`+ratingCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (escrow, rater) DO UPDATE SET ratee = $3, ratee_role = $4, score = $5, at = $6, at_ns = $7,
			is_default = $8, currency = $9, minor = $10, value = $11, weight = $12, counted = $13, points = $14, doc = $15`,
		r.Escrow, r.Rater, r.Ratee, int16(r.RateeRole), int16(r.Score), at, ns, r.Default, code, minor, value, r.Weight,
		r.Counted, r.Points, doc)
}

func scanRating(row pgx.Rows) (escrow.Rating, error) {
	var r escrow.Rating
	var role, score int16
	var at time.Time
	var ns int16
	var code *string
	var minor *int16
	var value *int64
	var doc []byte
	err := row.Scan(&r.Escrow, &r.Rater, &r.Ratee, &role, &score, &at, &ns, &r.Default, &code, &minor, &value, &r.Weight,
		&r.Counted, &r.Points, &doc)
	if err != nil {
		return r, err
	}
	r.RateeRole, r.Score, r.At = escrow.Role(role), escrow.Score(score), fromTS(at, ns)
	if code != nil {
		r.Value = money(value, escrow.Currency{Code: *code, Minor: int(*minor)})
	}
	var d ratingDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return r, fmt.Errorf("rating of %q on %q: %w", r.Rater, r.Escrow, err)
	}
	inUTC(&d)
	r.Details, r.Comment, r.Revised, r.Original, r.RevisedAt = d.Details, d.Comment, d.Revised, d.Original, d.RevisedAt
	r.Reply, r.RepliedAt, r.Reason = d.Reply, d.RepliedAt, d.Reason
	r.Withdrawn, r.WithdrawnAt, r.Voided, r.VoidedBy, r.VoidReason, r.VoidedAt =
		d.Withdrawn, d.WithdrawnAt, d.Voided, d.VoidedBy, d.VoidReason, d.VoidedAt
	return r, nil
}

func (t *tx) Rating(escrowID, rater string) (escrow.Rating, error) {
	rs, err := all(t, `SELECT `+ratingCols+` FROM ratings WHERE escrow = $1 AND rater = $2`, []any{escrowID, rater}, scanRating)
	if err != nil {
		return escrow.Rating{}, err
	}
	if len(rs) == 0 {
		return escrow.Rating{}, escrow.ErrNotFound
	}
	return rs[0], nil
}

func (t *tx) RatingsOf(party string, after escrow.RatingPos, fn func(escrow.Rating) error) error {
	at, ns := boundTS(after.At)
	args := []any{party}
	where := `ratee = $1`
	if after != (escrow.RatingPos{}) {
		where += ` AND (at, at_ns, escrow, rater) > ($2, $3, $4, $5)`
		args = append(args, at, ns, after.Escrow, after.Rater)
	}
	return each(t, `SELECT `+ratingCols+` FROM ratings WHERE `+where+` ORDER BY at, at_ns, escrow, rater`, args, scanRating, fn)
}

func (t *tx) Ratings(fn func(escrow.Rating) error) error {
	return each(t, `SELECT `+ratingCols+` FROM ratings ORDER BY escrow, rater`, nil, scanRating, fn)
}

const aggCols = `party, role, points, positive, neutral, negative, beta_positive, beta_negative, wilson, expectation,
	rank_wilson, rank_expectation, rekey_day, doc`

// aggDoc holds the fields of an Aggregate that have no column.
type aggDoc struct {
	Windows      [5]escrow.Counts `json:"windows"`
	WindowsDay   int32            `json:"windows_day"`
	BetaAt       time.Time        `json:"beta_at,omitzero"`
	DetailSums   [3]int64         `json:"detail_sums"`
	DetailCounts [3]int64         `json:"detail_counts"`
	UpdatedAt    time.Time        `json:"updated_at,omitzero"`
	// The windowed detail sums; a doc written before them has none, and
	// reads DetailDays as false.
	DetailWindowSums   [3]int64 `json:"detail_window_sums"`
	DetailWindowCounts [3]int64 `json:"detail_window_counts"`
	DetailDays         bool     `json:"detail_days,omitempty"`
	UniquePositive     int64    `json:"unique_positive,omitempty"`
	UniqueNegative     int64    `json:"unique_negative,omitempty"`
	RatersKept         bool     `json:"raters_kept,omitempty"`
}

// rankScore is the place of a ranking key's value in the ranking: below
// zero, or NaN, ranks as zero.
func rankScore(f float64) float64 {
	if f < 0 || math.IsNaN(f) {
		return 0
	}
	return f
}

func (t *tx) PutAggregate(a escrow.Aggregate) error {
	if err := t.check(true); err != nil {
		return err
	}
	doc, err := json.Marshal(aggDoc{Windows: a.Windows, WindowsDay: a.WindowsDay, BetaAt: a.BetaAt,
		DetailSums: a.DetailSums, DetailCounts: a.DetailCounts, UpdatedAt: a.UpdatedAt,
		DetailWindowSums: a.DetailWindowSums, DetailWindowCounts: a.DetailWindowCounts, DetailDays: a.DetailDays,
		UniquePositive: a.UniquePositive, UniqueNegative: a.UniqueNegative, RatersKept: a.RatersKept})
	if err != nil {
		// A time JSON cannot write: a year past 9999 or before 0.
		return fmt.Errorf("pgstore: aggregate of %q: %w: %w", a.Party, escrow.ErrInvalidArgument, err)
	}
	return t.exec(`INSERT INTO aggregates (`+aggCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (party, role) DO UPDATE SET points = $3, positive = $4, neutral = $5, negative = $6,
			beta_positive = $7, beta_negative = $8, wilson = $9, expectation = $10, rank_wilson = $11,
			rank_expectation = $12, rekey_day = $13, doc = $14`,
		a.Party, int16(a.Role), a.Points, a.Positive, a.Neutral, a.Negative, a.BetaPositive, a.BetaNegative,
		a.Wilson, a.Expectation, rankScore(a.Wilson), rankScore(a.Expectation), a.RekeyDay, doc)
}

func scanAggregate(r pgx.Rows) (escrow.Aggregate, error) {
	var a escrow.Aggregate
	var role int16
	var rankW, rankE float64
	var doc []byte
	err := r.Scan(&a.Party, &role, &a.Points, &a.Positive, &a.Neutral, &a.Negative, &a.BetaPositive, &a.BetaNegative,
		&a.Wilson, &a.Expectation, &rankW, &rankE, &a.RekeyDay, &doc)
	if err != nil {
		return a, err
	}
	a.Role = escrow.Role(role)
	var d aggDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return a, fmt.Errorf("aggregate of %q: %w", a.Party, err)
	}
	inUTC(&d)
	a.Windows, a.WindowsDay, a.BetaAt, a.DetailSums, a.DetailCounts, a.UpdatedAt =
		d.Windows, d.WindowsDay, d.BetaAt, d.DetailSums, d.DetailCounts, d.UpdatedAt
	a.DetailWindowSums, a.DetailWindowCounts, a.DetailDays = d.DetailWindowSums, d.DetailWindowCounts, d.DetailDays
	a.UniquePositive, a.UniqueNegative, a.RatersKept = d.UniquePositive, d.UniqueNegative, d.RatersKept
	return a, nil
}

func (t *tx) Aggregate(party string, role escrow.Role) (escrow.Aggregate, error) {
	as, err := all(t, `SELECT `+aggCols+` FROM aggregates WHERE party = $1 AND role = $2`, []any{party, int16(role)}, scanAggregate)
	if err != nil {
		return escrow.Aggregate{}, err
	}
	if len(as) == 0 {
		return escrow.Aggregate{}, escrow.ErrNotFound
	}
	return as[0], nil
}

func (t *tx) TopAggregates(role escrow.Role, key escrow.RankKey, after escrow.RankPos, limit int) ([]escrow.Aggregate, error) {
	col := "rank_wilson"
	switch key {
	case escrow.RankWilson:
	case escrow.RankExpectation:
		col = "rank_expectation"
	default:
		if err := t.check(false); err != nil {
			return nil, err
		}
		return []escrow.Aggregate{}, nil // no aggregate is ranked by an unknown key
	}
	args := []any{int16(role), limitArg(limit)}
	where := `role = $1`
	if after != (escrow.RankPos{}) {
		where += ` AND (` + col + ` < $3 OR ` + col + ` = $3 AND party > $4)`
		args = append(args, rankScore(after.Score), after.Party)
	}
	return all(t, `SELECT `+aggCols+` FROM aggregates WHERE `+where+` ORDER BY `+col+` DESC, party LIMIT $2`, args, scanAggregate)
}

func (t *tx) DueAggregates(day int32, limit int) ([]escrow.Aggregate, error) {
	return all(t, `SELECT `+aggCols+` FROM aggregates WHERE rekey_day <> 0 AND rekey_day <= $1
		ORDER BY rekey_day, party, role LIMIT $2`, []any{day, limitArg(limit)}, scanAggregate)
}

func (t *tx) Aggregates(fn func(escrow.Aggregate) error) error {
	return each(t, `SELECT `+aggCols+` FROM aggregates ORDER BY party, role`, nil, scanAggregate, fn)
}

const dayCols = `party, role, day, positive, neutral, negative,
	described_sum, described_count, communication_sum, communication_count, shipping_sum, shipping_count,
	unique_positive, unique_negative`

func scanDayCount(r pgx.Rows) (escrow.DayCount, error) {
	var d escrow.DayCount
	var role int16
	err := r.Scan(&d.Party, &role, &d.Day, &d.Positive, &d.Neutral, &d.Negative,
		&d.DetailSums[0], &d.DetailCounts[0], &d.DetailSums[1], &d.DetailCounts[1], &d.DetailSums[2], &d.DetailCounts[2],
		&d.UniquePositive, &d.UniqueNegative)
	d.Role = escrow.Role(role)
	return d, err
}

func (t *tx) DayRange(party string, role escrow.Role, from, to int32, fn func(escrow.DayCount) error) error {
	return each(t, `SELECT `+dayCols+` FROM day_counts WHERE party = $1 AND role = $2 AND day BETWEEN $3 AND $4 ORDER BY day`,
		[]any{party, int16(role), from, to}, scanDayCount, fn)
}

func (t *tx) PutDayCount(d escrow.DayCount) error {
	if d.Positive == 0 && d.Neutral == 0 && d.Negative == 0 {
		// The contract allows it, and it keeps DayRange short.
		return t.exec(`DELETE FROM day_counts WHERE party = $1 AND role = $2 AND day = $3`, d.Party, int16(d.Role), d.Day)
	}
	return t.exec(`INSERT INTO day_counts (`+dayCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (party, role, day) DO UPDATE SET positive = $4, neutral = $5, negative = $6,
			described_sum = $7, described_count = $8, communication_sum = $9, communication_count = $10,
			shipping_sum = $11, shipping_count = $12, unique_positive = $13, unique_negative = $14`,
		d.Party, int16(d.Role), d.Day, d.Positive, d.Neutral, d.Negative,
		d.DetailSums[0], d.DetailCounts[0], d.DetailSums[1], d.DetailCounts[1], d.DetailSums[2], d.DetailCounts[2],
		d.UniquePositive, d.UniqueNegative)
}

func (t *tx) DayCounts(fn func(escrow.DayCount) error) error {
	return each(t, `SELECT `+dayCols+` FROM day_counts ORDER BY party, role, day`, nil, scanDayCount, fn)
}

const pairCols = `ratee, rater, month, positive, negative`

func scanPairMonth(r pgx.Rows) (escrow.PairMonth, error) {
	var p escrow.PairMonth
	err := r.Scan(&p.Ratee, &p.Rater, &p.Month, &p.Positive, &p.Negative)
	return p, err
}

func (t *tx) PairMonth(ratee, rater, month string) (escrow.PairMonth, error) {
	var p escrow.PairMonth
	err := t.one(`SELECT `+pairCols+` FROM pair_months WHERE ratee = $1 AND rater = $2 AND month = $3`,
		[]any{ratee, rater, month}, &p.Ratee, &p.Rater, &p.Month, &p.Positive, &p.Negative)
	return p, err
}

func (t *tx) PutPairMonth(p escrow.PairMonth) error {
	return t.exec(`INSERT INTO pair_months (`+pairCols+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (ratee, rater, month) DO UPDATE SET positive = $4, negative = $5`,
		p.Ratee, p.Rater, p.Month, p.Positive, p.Negative)
}

func (t *tx) PairMonths(fn func(escrow.PairMonth) error) error {
	return each(t, `SELECT `+pairCols+` FROM pair_months ORDER BY ratee, rater, month`, nil, scanPairMonth, fn)
}

const markCols = `ratee, rater, item, escrow, at, at_ns`

func scanItemMark(r pgx.Rows) (escrow.ItemMark, error) {
	var m escrow.ItemMark
	var at time.Time
	var ns int16
	err := r.Scan(&m.Ratee, &m.Rater, &m.Item, &m.Escrow, &at, &ns)
	m.At = fromTS(at, ns)
	return m, err
}

func (t *tx) ItemMark(ratee, rater, item string) (escrow.ItemMark, error) {
	m := escrow.ItemMark{}
	var at time.Time
	var ns int16
	err := t.one(`SELECT `+markCols+` FROM item_marks WHERE ratee = $1 AND rater = $2 AND item = $3`,
		[]any{ratee, rater, item}, &m.Ratee, &m.Rater, &m.Item, &m.Escrow, &at, &ns)
	if err != nil {
		return escrow.ItemMark{}, err
	}
	m.At = fromTS(at, ns)
	return m, nil
}

func (t *tx) PutItemMark(m escrow.ItemMark) error {
	if m.Escrow == "" {
		return t.exec(`DELETE FROM item_marks WHERE ratee = $1 AND rater = $2 AND item = $3`, m.Ratee, m.Rater, m.Item)
	}
	at, ns := ts(m.At)
	return t.exec(`INSERT INTO item_marks (`+markCols+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (ratee, rater, item) DO UPDATE SET escrow = $4, at = $5, at_ns = $6`,
		m.Ratee, m.Rater, m.Item, m.Escrow, at, ns)
}

func (t *tx) ItemMarks(fn func(escrow.ItemMark) error) error {
	return each(t, `SELECT `+markCols+` FROM item_marks ORDER BY ratee, rater, item`, nil, scanItemMark, fn)
}

const raterCols = `ratee, role, rater, positive, negative`

func scanRaterDays(r pgx.Rows) (escrow.RaterDays, error) {
	var d escrow.RaterDays
	var role int16
	err := r.Scan(&d.Ratee, &role, &d.Rater, &d.Positive, &d.Negative)
	d.Role = escrow.Role(role)
	if len(d.Positive) == 0 {
		d.Positive = nil
	}
	if len(d.Negative) == 0 {
		d.Negative = nil
	}
	return d, err
}

func (t *tx) RaterDays(ratee string, role escrow.Role, rater string) (escrow.RaterDays, error) {
	ds, err := all(t, `SELECT `+raterCols+` FROM rater_days WHERE ratee = $1 AND role = $2 AND rater = $3`,
		[]any{ratee, int16(role), rater}, scanRaterDays)
	if err != nil {
		return escrow.RaterDays{}, err
	}
	if len(ds) == 0 {
		return escrow.RaterDays{}, escrow.ErrNotFound
	}
	return ds[0], nil
}

func (t *tx) PutRaterDays(d escrow.RaterDays) error {
	if len(d.Positive) == 0 && len(d.Negative) == 0 {
		return t.exec(`DELETE FROM rater_days WHERE ratee = $1 AND role = $2 AND rater = $3`, d.Ratee, int16(d.Role), d.Rater)
	}
	return t.exec(`INSERT INTO rater_days (`+raterCols+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (ratee, role, rater) DO UPDATE SET positive = $4, negative = $5`,
		d.Ratee, int16(d.Role), d.Rater, d.Positive, d.Negative)
}

func (t *tx) AllRaterDays(fn func(escrow.RaterDays) error) error {
	return each(t, `SELECT `+raterCols+` FROM rater_days ORDER BY ratee, role, rater`, nil, scanRaterDays, fn)
}
