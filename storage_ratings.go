package escrow

import "time"

// RatingsTx is the part of a Tx that keeps ratings and what reputation is
// counted from them: aggregates with their ranking and re-key indexes, day
// counts, the pairs' monthly points, the marks of the repeat-item rule
// and the raters' days. Ratings, Aggregates, DayCounts, PairMonths,
// ItemMarks and AllRaterDays are for Check and snapshots.
type RatingsTx interface {
	// Rating returns the rating rater gave on the escrow, or ErrNotFound.
	Rating(escrow, rater string) (Rating, error)
	// PutRating creates or replaces the rating of r.Rater on r.Escrow.
	PutRating(r Rating) error
	// RatingsOf calls fn for every rating whose Ratee is party, ordered by
	// At, then Escrow, then Rater, beginning after the rating at after (the
	// zero RatingPos: from the first), stopping at the first error fn
	// returns, which it returns. None: no calls. It must use an index, not
	// read every rating. An adapter may order times only within the range
	// of time.Time.UnixNano (the years 1678 to 2262), as memstore and
	// filestore do: it may take every time before that range, an At or
	// after's, for one time before all of it, and every time after it for
	// one time after all of it, ratings at such a time then coming by
	// Escrow, then Rater. The ledger stamps At with its clock, so a clock
	// that reads within those years never meets the limit.
	RatingsOf(party string, after RatingPos, fn func(Rating) error) error
	// Ratings calls fn for every rating ordered by Escrow, then Rater,
	// stopping at the first error fn returns, which it returns.
	Ratings(fn func(Rating) error) error

	// Aggregate returns the reputation aggregate of party in role (Buyer
	// or Seller), or ErrNotFound.
	Aggregate(party string, role Role) (Aggregate, error)
	// PutAggregate creates or replaces the aggregate of a.Party in a.Role,
	// files it in the ranking index of its role under a.Wilson and
	// a.Expectation, and in the re-key index under a.RekeyDay; it removes
	// it from that index when a.RekeyDay is zero.
	PutAggregate(a Aggregate) error
	// TopAggregates returns at most limit aggregates of role with the
	// highest values of key (RankWilson or RankExpectation), highest first,
	// ties by Party ascending, beginning after the aggregate at after (the
	// zero RankPos: from the highest). A value below zero, or NaN, ranks
	// as zero. It must use an index, not read every aggregate. None: an
	// empty slice.
	TopAggregates(role Role, key RankKey, after RankPos, limit int) ([]Aggregate, error)
	// DueAggregates returns at most limit aggregates, of either role, whose
	// RekeyDay is not zero and not after day, earliest RekeyDay first, ties
	// by Party, then Role. None due: an empty slice. It must use an index,
	// not read every aggregate.
	DueAggregates(day int32, limit int) ([]Aggregate, error)
	// Aggregates calls fn for every aggregate ordered by Party, then Role,
	// stopping at the first error fn returns, which it returns.
	Aggregates(fn func(Aggregate) error) error

	// DayRange calls fn for the DayCount of party in role of every day
	// from from to to, both included, that has one, in ascending Day order,
	// stopping at the first error fn returns, which it returns.
	DayRange(party string, role Role, from, to int32, fn func(DayCount) error) error
	// PutDayCount creates or replaces the count of d.Party in d.Role on
	// d.Day; a count whose Positive, Neutral and Negative are zero may be
	// removed instead (the ledger then gives it no detail scores either).
	PutDayCount(d DayCount) error
	// DayCounts calls fn for every DayCount ordered by Party, Role, then
	// Day, stopping at the first error fn returns, which it returns.
	DayCounts(fn func(DayCount) error) error

	// PairMonth returns the points counted for ratings that rater gave
	// ratee in month ("2006-01"), or ErrNotFound.
	PairMonth(ratee, rater, month string) (PairMonth, error)
	// PutPairMonth creates or replaces the record of p.Ratee, p.Rater and
	// p.Month.
	PutPairMonth(p PairMonth) error
	// PairMonths calls fn for every record ordered by Ratee, Rater, then
	// Month, stopping at the first error fn returns, which it returns.
	PairMonths(fn func(PairMonth) error) error

	// ItemMark returns the mark of the ratings rater gave ratee on item,
	// or ErrNotFound.
	ItemMark(ratee, rater, item string) (ItemMark, error)
	// PutItemMark creates or replaces the mark of m.Ratee, m.Rater and
	// m.Item; a mark with an empty Escrow removes it instead.
	PutItemMark(m ItemMark) error
	// ItemMarks calls fn for every mark ordered by Ratee, Rater, then
	// Item, stopping at the first error fn returns, which it returns.
	ItemMarks(fn func(ItemMark) error) error

	// RaterDays returns the record of rater's ratings of ratee in role, or
	// ErrNotFound.
	RaterDays(ratee string, role Role, rater string) (RaterDays, error)
	// PutRaterDays creates or replaces the record of d.Ratee, d.Role and
	// d.Rater, keeping its own copy of the slices; a record whose
	// Positive and Negative are both empty removes it instead.
	PutRaterDays(d RaterDays) error
	// AllRaterDays calls fn for every record ordered by Ratee, Role, then
	// Rater, stopping at the first error fn returns, which it returns.
	AllRaterDays(fn func(RaterDays) error) error
}

// RatingPos is a rating's place in the order of RatingsOf.
type RatingPos struct {
	At     time.Time
	Escrow string
	Rater  string
}

// RankPos is an aggregate's place in the order of TopAggregates: its
// Party, and its value of the key ranked by, as the aggregate holds it.
type RankPos struct {
	Score float64
	Party string
}
