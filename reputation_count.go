package escrow

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Counting: how a rating is counted into, or taken out of, the ratee's
// aggregate, day counts and the pair's monthly points, and how the
// aggregate's windows and Beta sums move with time.

// countRating decides whether r counts, and if it does adds it to the
// ratee's aggregate, to the pair's monthly points and to the mark of its
// item.
func (l *Ledger) countRating(tx Tx, e *Escrow, r *Rating, now time.Time) error {
	r.Counted, r.Reason, r.Points = false, "", 0
	raterRole := Buyer
	if r.RateeRole == Buyer {
		raterRole = Seller
	}
	switch {
	case r.Voided:
		r.Reason = ReasonVoided
		return nil
	case r.Withdrawn:
		r.Reason = ReasonWithdrawn
		return nil
	case r.Value.units < l.rep.minUnits[r.Value.currency().Code],
		r.Score == Positive && e.Released.IsZero():
		// A positive must have cost a fee: see ratedValue.
		r.Reason = ReasonBelowMinimum
		return nil
	case !l.rep.countLosers && e.DisputeLoser == raterRole:
		r.Reason = ReasonDisputeLost
		return nil
	}
	item := l.repeatItem(e)
	var mark ItemMark
	if item != "" {
		var err error
		mark, err = tx.ItemMark(r.Ratee, r.Rater, item)
		if errors.Is(err, ErrNotFound) {
			mark = ItemMark{}
		} else if err != nil {
			return err
		}
		if mark.Escrow != "" && mark.Escrow != r.Escrow && absDuration(r.At.Sub(mark.At)) < l.rep.repeatItem {
			r.Reason = ReasonRepeatItem
			return nil
		}
	}
	points := l.rep.points[r.Score-1]
	month := l.capMonth(e, r)
	pm, err := tx.PairMonth(r.Ratee, r.Rater, month)
	if errors.Is(err, ErrNotFound) {
		pm = PairMonth{Ratee: r.Ratee, Rater: r.Rater, Month: month}
	} else if err != nil {
		return err
	}
	if l.capped(pm, points) {
		r.Reason = ReasonPairCap
		return nil
	}
	switch {
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
	if item != "" && (mark.Escrow == "" || !r.At.Before(mark.At)) {
		if err := tx.PutItemMark(ItemMark{Ratee: r.Ratee, Rater: r.Rater, Item: item, Escrow: r.Escrow, At: r.At}); err != nil {
			return err
		}
	}
	r.Counted, r.Points = true, points
	return l.addToAggregate(tx, r, 1, now)
}

// capped reports whether points more would pass the pair's monthly cap.
// Under the net cap a rating is held back only if it takes the net past
// the cap and further from zero: one that brings it back is not, even if
// the net is past the cap already (as a cap lowered since can leave it).
func (l *Ledger) capped(pm PairMonth, points int64) bool {
	if l.rep.netCap {
		net := pm.Positive - pm.Negative
		after := net + points
		return points != 0 && (after > l.rep.pairCap || after < -l.rep.pairCap) && abs64(after) > abs64(net)
	}
	return points > 0 && pm.Positive+points > l.rep.pairCap || points < 0 && pm.Negative-points > l.rep.pairCap
}

// capMonth names the month a rating on e counts in for the pair cap.
func (l *Ledger) capMonth(e *Escrow, r *Rating) string {
	if l.rep.byOrderMonth {
		return l.monthOf(e.CreatedAt)
	}
	return l.monthOf(r.At)
}

// repeatItem names the item of e for the repeat-item rule: its SKU, or its
// Item when it has none; empty when the rule is off or e names neither.
func (l *Ledger) repeatItem(e *Escrow) string {
	if l.rep.repeatItem == 0 {
		return ""
	}
	if e.SKU != "" {
		return e.SKU
	}
	return e.Item
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// uncountRating takes a counted rating of e back out, before it is
// revised, voided or withdrawn. If it held its item's mark, the mark goes
// back to the latest other counted rating of the same item within the
// repeat window before it, or goes. Under the net cap, if taking it out
// leaves the pair's month past the cap, the pair's latest counted ratings
// on the other side are held back until it is within it again.
func (l *Ledger) uncountRating(tx Tx, e *Escrow, r *Rating, now time.Time) error {
	pm, err := l.uncount(tx, e, r, now)
	if err != nil || !l.rep.netCap || !pastNetCap(pm, l.rep.pairCap) {
		return err
	}
	return l.holdBackPastCap(tx, r, pm, now)
}

// pastNetCap reports whether the month's counted points, as a whole, are
// past the cap.
func pastNetCap(pm PairMonth, limit int64) bool {
	return abs64(pm.Positive-pm.Negative) > limit
}

// holdBackPastCap holds back the latest counted ratings that r's rater
// gave r's ratee in the month of pm, on the side its net is past the cap,
// one by one until the net is within the cap: as if the cap had held
// them back when they came, had r not counted. Each is stored not counted,
// for ReasonPairCap.
func (l *Ledger) holdBackPastCap(tx Tx, r *Rating, pm PairMonth, now time.Time) error {
	side := int64(1)
	if pm.Positive < pm.Negative {
		side = -1
	}
	start, err := time.ParseInLocation("2006-01", pm.Month, l.rep.loc)
	if err != nil {
		return fmt.Errorf("escrow: pair month %q: %w", pm.Month, err)
	}
	// A rating comes after its escrow is opened, so none of the month's
	// is older than its first day; by the month it was given, none is
	// newer than its last.
	end := start.AddDate(0, 1, 0)
	var latest []Rating
	err = tx.RatingsOf(r.Ratee, RatingPos{At: start}, func(o Rating) error {
		if !l.rep.byOrderMonth && !o.At.Before(end) {
			return errPageFull
		}
		if o.Rater != r.Rater || !o.Counted || o.Points*side <= 0 || o.Escrow == r.Escrow {
			return nil
		}
		latest = append(latest, o)
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return err
	}
	for i := len(latest) - 1; i >= 0 && pastNetCap(pm, l.rep.pairCap); i-- {
		o := latest[i]
		oe, err := getEscrow(tx, o.Escrow)
		if err != nil {
			return err
		}
		if l.capMonth(&oe, &o) != pm.Month {
			continue
		}
		if pm, err = l.uncount(tx, &oe, &o, now); err != nil {
			return err
		}
		o.Counted, o.Points, o.Reason = false, 0, ReasonPairCap
		if err := tx.PutRating(o); err != nil {
			return err
		}
	}
	return nil
}

// uncount takes a counted rating of e back out of the pair's month, its
// item's mark and the aggregate, and returns the pair's month as it left
// it (zero if r carried no points).
func (l *Ledger) uncount(tx Tx, e *Escrow, r *Rating, now time.Time) (PairMonth, error) {
	if !r.Counted {
		return PairMonth{}, nil
	}
	var pm PairMonth
	if r.Points != 0 {
		var err error
		pm, err = tx.PairMonth(r.Ratee, r.Rater, l.capMonth(e, r))
		if err != nil {
			return pm, err
		}
		if r.Points > 0 {
			pm.Positive -= r.Points
		} else {
			pm.Negative += r.Points
		}
		if err := tx.PutPairMonth(pm); err != nil {
			return pm, err
		}
	}
	if item := l.repeatItem(e); item != "" {
		mark, err := tx.ItemMark(r.Ratee, r.Rater, item)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return pm, err
		case mark.Escrow == r.Escrow:
			if mark, err = l.previousMark(tx, r, item); err != nil {
				return pm, err
			}
			if err := tx.PutItemMark(mark); err != nil {
				return pm, err
			}
		}
	}
	return pm, l.addToAggregate(tx, r, -1, now)
}

// previousMark finds the latest counted rating, other than r, that r's
// rater gave r's ratee on item within the repeat window before r: the
// mark that r's leaving restores. It reads the ratee's ratings of that
// window through the store's index, and the escrows of those its rater
// gave. None: a mark with no Escrow, which removes it.
func (l *Ledger) previousMark(tx Tx, r *Rating, item string) (ItemMark, error) {
	m := ItemMark{Ratee: r.Ratee, Rater: r.Rater, Item: item}
	err := tx.RatingsOf(r.Ratee, RatingPos{At: r.At.Add(-l.rep.repeatItem)}, func(o Rating) error {
		if o.At.After(r.At) {
			return errPageFull
		}
		if o.Rater != r.Rater || !o.Counted || o.Escrow == r.Escrow {
			return nil
		}
		oe, err := getEscrow(tx, o.Escrow)
		if err != nil {
			return err
		}
		if l.repeatItem(&oe) == item && !o.At.Before(m.At) {
			m.Escrow, m.At = o.Escrow, o.At
		}
		return nil
	})
	if errors.Is(err, errPageFull) {
		err = nil
	}
	return m, err
}

// addToAggregate adds (sign 1) or removes (sign −1) a counted rating.
func (l *Ledger) addToAggregate(tx Tx, r *Rating, sign int64, now time.Time) error {
	a, err := tx.Aggregate(r.Ratee, r.RateeRole)
	if errors.Is(err, ErrNotFound) {
		a = Aggregate{Party: r.Ratee, Role: r.RateeRole, BetaAt: now, DetailDays: true, RatersKept: l.rep.unique}
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
	// The store's ratings are still those the aggregate counts: a rating
	// is stored after it is counted, or taken out.
	if err := l.detailDays(tx, &a); err != nil {
		return err
	}
	if err := l.keepRaters(tx, &a, today); err != nil {
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
	age := today - day
	inDetail := age >= 0 && age < l.rep.detailDays
	for k, v := range r.Details.array() {
		if v != 0 {
			dc.DetailSums[k] += int32(sign) * int32(v)
			dc.DetailCounts[k] += int32(sign)
			a.DetailSums[k] += sign * int64(v)
			a.DetailCounts[k] += sign
			if inDetail {
				a.DetailWindowSums[k] += sign * int64(v)
				a.DetailWindowCounts[k] += sign
			}
		}
	}
	if dc.Positive < 0 || dc.Neutral < 0 || dc.Negative < 0 || min(dc.DetailCounts[0], dc.DetailCounts[1], dc.DetailCounts[2]) < 0 {
		return fmt.Errorf("escrow: internal error: day %d of %q would count below zero", day, r.Ratee)
	}
	// A day that has left the unique window keeps its raters unread, as
	// does every day without the option; a rating taken out of it leaves
	// them at most its ratings.
	if age >= l.rep.uniqueDays || !l.rep.unique {
		dc.UniquePositive, dc.UniqueNegative = min(dc.UniquePositive, dc.Positive), min(dc.UniqueNegative, dc.Negative)
	}
	if err := l.countRater(tx, &a, r, sign, today, &dc); err != nil {
		return err
	}
	if err := tx.PutDayCount(dc); err != nil {
		return err
	}
	for k, w := range l.windowDays() {
		if age >= 0 && age < w {
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
	r := dayReaders.Get().(*dayReader)
	r.dc = DayCount{Party: party, Role: role, Day: day}
	err := tx.DayRange(party, role, day, day, r.fn)
	dc := r.dc
	r.dc = DayCount{}
	dayReaders.Put(r)
	return dc, err
}

// A dayReader receives the one DayCount that dayCount asks for. It is
// pooled with its function bound, since a closure over a local would be
// an allocation on every counted rating.
type dayReader struct {
	dc DayCount
	fn func(DayCount) error
}

var dayReaders = sync.Pool{New: func() any {
	r := new(dayReader)
	r.fn = func(d DayCount) error { r.dc = d; return nil }
	return r
}}

// countRater keeps the distinct raters of the UniqueRaters policy: it
// adds (sign 1) or takes out (sign −1) the day of r, a counted rating, in
// its rater's record, and if that moves the rater's latest day in the
// window, moves the rater there in the day counts and in a's totals. A
// rating outside the window changes nothing: it never comes back in, and
// the days there are no longer read. rday is the count of r's day, which
// the caller stores after: until then the store may have removed it, as
// the rating it held may have been the day's last.
func (l *Ledger) countRater(tx Tx, a *Aggregate, r *Rating, sign int64, today int32, rday *DayCount) error {
	day := rday.Day
	from := today - l.rep.uniqueDays // the last day before the window
	if r.Score == Neutral || day <= from || day > today || (!l.rep.unique && sign > 0) {
		return nil
	}
	rd, err := tx.RaterDays(r.Ratee, r.RateeRole, r.Rater)
	if errors.Is(err, ErrNotFound) {
		if !l.rep.unique {
			return nil
		}
		rd = RaterDays{Ratee: r.Ratee, Role: r.RateeRole, Rater: r.Rater}
	} else if err != nil {
		return err
	}
	rd.Positive, rd.Negative = daysAfter(rd.Positive, from), daysAfter(rd.Negative, from)
	days := &rd.Positive
	if r.Score == Negative {
		days = &rd.Negative
	}
	before := len(*days)
	was := lastDay(*days)
	i, found := slices.BinarySearch(*days, day)
	switch {
	case sign > 0:
		*days = slices.Insert(*days, i, day)
	case found:
		*days = slices.Delete(*days, i, i+1)
	case l.rep.unique:
		return fmt.Errorf("escrow: internal error: rater %q has no rating of %q on day %d to take out", r.Rater, r.Ratee, day)
	}
	if err := tx.PutRaterDays(rd); err != nil {
		return err
	}
	if !l.rep.unique {
		// A record left from a time with the option holds only counted
		// ratings, so that keepRaters can trust it if the option comes
		// back.
		return nil
	}
	now := lastDay(*days)
	if now == was && (len(*days) == 0) == (before == 0) {
		return nil
	}
	move := func(d int32, by int32) error {
		dc := rday
		if d != day {
			other, err := l.dayCount(tx, r.Ratee, r.RateeRole, d)
			if err != nil {
				return err
			}
			dc = &other
		}
		n := &dc.UniquePositive
		if r.Score == Negative {
			n = &dc.UniqueNegative
		}
		*n += by
		if *n < 0 {
			return fmt.Errorf("escrow: internal error: day %d of %q would count raters below zero", d, r.Ratee)
		}
		if d == day {
			return nil
		}
		return tx.PutDayCount(*dc)
	}
	total := &a.UniquePositive
	if r.Score == Negative {
		total = &a.UniqueNegative
	}
	if before != 0 {
		if err := move(was, -1); err != nil {
			return err
		}
		*total--
	}
	if len(*days) != 0 {
		if err := move(now, 1); err != nil {
			return err
		}
		*total++
	}
	return nil
}

// keepRaters keeps the distinct raters of a's party and role under a
// policy with UniqueRaters, and stops keeping them under one without. If
// they were not kept (the option was just turned on, or the aggregate is
// older than it), it works them out from the party's counted ratings in
// the window ending today: each rater's record, the day counts' raters
// and a's totals. It reads every rating of the party once, then nothing.
// Records left from an earlier time with the option hold no rating that
// has stopped counting (countRater takes them out), so each rater with a
// rating in the window gets a new record and the others' records hold
// only days before it.
func (l *Ledger) keepRaters(tx Tx, a *Aggregate, today int32) error {
	if !l.rep.unique {
		a.RatersKept, a.UniquePositive, a.UniqueNegative = false, 0, 0
		return nil
	}
	if a.RatersKept {
		return nil
	}
	from := today - l.rep.uniqueDays
	raters := map[string]*RaterDays{}
	var names []string
	err := tx.RatingsOf(a.Party, RatingPos{}, func(r Rating) error {
		d := l.dayOf(r.At)
		if r.RateeRole != a.Role || !r.Counted || r.Score == Neutral || d <= from || d > today {
			return nil
		}
		rd := raters[r.Rater]
		if rd == nil {
			rd = &RaterDays{Ratee: a.Party, Role: a.Role, Rater: r.Rater}
			raters[r.Rater] = rd
			names = append(names, r.Rater)
		}
		if r.Score == Positive { // in order of At, so of day
			rd.Positive = append(rd.Positive, d)
		} else {
			rd.Negative = append(rd.Negative, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(names)
	latest := map[int32][2]int32{}
	a.UniquePositive, a.UniqueNegative = 0, 0
	for _, name := range names {
		rd := raters[name]
		if err := tx.PutRaterDays(*rd); err != nil {
			return err
		}
		if len(rd.Positive) != 0 {
			c := latest[lastDay(rd.Positive)]
			c[0]++
			latest[lastDay(rd.Positive)] = c
			a.UniquePositive++
		}
		if len(rd.Negative) != 0 {
			c := latest[lastDay(rd.Negative)]
			c[1]++
			latest[lastDay(rd.Negative)] = c
			a.UniqueNegative++
		}
	}
	var days []DayCount
	err = tx.DayRange(a.Party, a.Role, math.MinInt32, today, func(d DayCount) error {
		days = append(days, d)
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range days {
		up, un := min(d.UniquePositive, d.Positive), min(d.UniqueNegative, d.Negative)
		if d.Day > from {
			up, un = latest[d.Day][0], latest[d.Day][1]
		}
		if up != d.UniquePositive || un != d.UniqueNegative {
			d.UniquePositive, d.UniqueNegative = up, un
			if err := tx.PutDayCount(d); err != nil {
				return err
			}
		}
	}
	a.RatersKept = true
	return nil
}

// daysAfter returns the days of days after from, which is sorted.
func daysAfter(days []int32, from int32) []int32 {
	i, _ := slices.BinarySearch(days, from+1)
	return days[i:]
}

// lastDay returns the last of days, which is sorted, or 0 if there is none.
func lastDay(days []int32) int32 {
	if len(days) == 0 {
		return 0
	}
	return days[len(days)-1]
}

// windowed is what an aggregate counts over trailing windows ending on its
// WindowsDay: its Windows, its detail sums over the DetailWindow and its
// distinct raters over the UniqueWindow.
type windowed struct {
	counts                   [5]Counts
	detailSums, detailCounts [3]int64
	unique                   [2]int64 // positive, negative
}

// advanceWindows moves a's window counts and windowed detail sums forward
// to today, taking out the days that have left each window. It reads
// only those days, so an aggregate already up to date costs nothing here.
func (l *Ledger) advanceWindows(tx Tx, a *Aggregate, today int32) error {
	if a.WindowsDay == 0 && a.Windows == ([5]Counts{}) {
		a.WindowsDay = today
		return nil
	}
	if today <= a.WindowsDay {
		return nil
	}
	w, err := l.expireWindows(tx, a.Party, a.Role, windowed{a.Windows, a.DetailWindowSums, a.DetailWindowCounts,
		[2]int64{a.UniquePositive, a.UniqueNegative}}, a.WindowsDay, today)
	if err != nil {
		return err
	}
	a.Windows, a.DetailWindowSums, a.DetailWindowCounts, a.WindowsDay = w.counts, w.detailSums, w.detailCounts, today
	a.UniquePositive, a.UniqueNegative = w.unique[0], w.unique[1]
	return nil
}

// expireWindows returns w, counted to day last, counted to today instead.
// It takes values rather than the aggregate so that the common case,
// where nothing expires, keeps the aggregate off the heap.
func (l *Ledger) expireWindows(tx Tx, party string, role Role, w windowed, last, today int32) (windowed, error) {
	lens := l.windowDays()
	dw := l.rep.detailDays
	var from, to int32 = math.MaxInt32, math.MinInt32
	for k, n := range lens {
		if today-n >= last { // the whole window has passed
			w.counts[k] = Counts{}
		} else {
			from, to = min(from, last-n+1), max(to, today-n)
		}
	}
	if today-dw >= last {
		w.detailSums, w.detailCounts = [3]int64{}, [3]int64{}
	} else {
		from, to = min(from, last-dw+1), max(to, today-dw)
	}
	uw := l.rep.uniqueDays
	if today-uw >= last {
		w.unique = [2]int64{}
	} else if w.unique != ([2]int64{}) {
		from, to = min(from, last-uw+1), max(to, today-uw)
	}
	if from > to {
		return w, nil
	}
	// A day leaves a window when it was inside the window ending at last
	// and is outside the one ending today.
	leaves := func(day, n int32) bool { return today-n < last && day > last-n && day <= today-n }
	err := tx.DayRange(party, role, from, to, func(d DayCount) error {
		c := Counts{-int64(d.Positive), -int64(d.Neutral), -int64(d.Negative)}
		for k, n := range lens {
			if leaves(d.Day, n) {
				w.counts[k] = w.counts[k].plus(c)
			}
		}
		if leaves(d.Day, dw) {
			for k := range 3 {
				w.detailSums[k] -= int64(d.DetailSums[k])
				w.detailCounts[k] -= int64(d.DetailCounts[k])
			}
		}
		if leaves(d.Day, uw) {
			w.unique[0] -= int64(d.UniquePositive)
			w.unique[1] -= int64(d.UniqueNegative)
		}
		return nil
	})
	return w, err
}

// detailDays brings an aggregate written before day counts carried detail
// scores up to date: it works out, from the counted ratings of its party
// and role, the detail sums of every day and those in the DetailWindow
// ending on a.WindowsDay. It reads every rating of the party once, the
// first time the aggregate is written, and nothing after.
func (l *Ledger) detailDays(tx Tx, a *Aggregate) error {
	if a.DetailDays {
		return nil
	}
	type sums struct{ sums, counts [3]int32 }
	days := map[int32]*sums{}
	var order []int32
	err := tx.RatingsOf(a.Party, RatingPos{}, func(r Rating) error {
		if r.RateeRole != a.Role || !r.Counted || !r.Details.given() {
			return nil
		}
		d := l.dayOf(r.At)
		s := days[d]
		if s == nil {
			s = new(sums)
			days[d] = s
			order = append(order, d)
		}
		for k, v := range r.Details.array() {
			if v != 0 {
				s.sums[k] += int32(v)
				s.counts[k]++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.DetailWindowSums, a.DetailWindowCounts = [3]int64{}, [3]int64{}
	for _, d := range order {
		s := days[d]
		dc, err := l.dayCount(tx, a.Party, a.Role, d)
		if err != nil {
			return err
		}
		dc.DetailSums, dc.DetailCounts = s.sums, s.counts
		if err := tx.PutDayCount(dc); err != nil {
			return err
		}
		if age := a.WindowsDay - d; age >= 0 && age < l.rep.detailDays {
			for k := range 3 {
				a.DetailWindowSums[k] += int64(s.sums[k])
				a.DetailWindowCounts[k] += int64(s.counts[k])
			}
		}
	}
	a.DetailDays = true
	return nil
}
