package brushing

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// Goals are the figures the issue sets goals for, from one Result (the
// default policy's), by Wilson ([0]) and by expectation ([1]).
type Goals struct {
	// RankRatio is the ranking places ring (a) climbed per 1,000 CNY it
	// lost, over the places the average honest shop climbed per 1,000 CNY
	// of fees. Goal: at most 0.1.
	RankRatio [2]float64
	// MatchDay is the day of the attack on which ring (a) first ranked as
	// high as the median honest shop ends, MatchSpend what it had spent by
	// then (fen), and MatchCost the median shop's fees over that spend:
	// how many times dearer the honest way to that rank was.
	MatchDay   [2]int
	MatchSpend [2]int64
	MatchCost  [2]float64
	// TopDecileDay is the day of the attack on which ring (a) first stood
	// in the top tenth of the honest shops, TopDecileVolume the volume it
	// had sold itself by then (fen), and VolumeRatio that volume over the
	// median honest shop's. Goal: at least 100. Zero day: never.
	TopDecileDay    [2]int
	TopDecileVolume [2]int64
	VolumeRatio     [2]float64
}

// Row returns the row of attack a, "(a)" to "(d)".
func (r Result) Row(a string) Row {
	for _, row := range r.Rows {
		if row.Attack == a {
			return row
		}
	}
	return Row{}
}

// Goals works out the goals' figures from r.
func (r Result) Goals() Goals {
	var g Goals
	a, med := r.Row("(a)"), r.Median
	_, _, _, aw, ae := a.PerThousand()
	_, _, _, mw, me := r.Average.PerThousand()
	for k, ratio := range [2][2]float64{{aw, mw}, {ae, me}} {
		if ratio[1] != 0 {
			g.RankRatio[k] = ratio[0] / ratio[1]
		}
		if d := a.MatchMedian[k]; d.Day != 0 {
			g.MatchDay[k], g.MatchSpend[k] = d.Day, d.Spend
			if d.Spend != 0 {
				g.MatchCost[k] = float64(med.Spend) / float64(d.Spend)
			}
		}
		if d := a.TopDecile[k]; d.Day != 0 {
			g.TopDecileDay[k], g.TopDecileVolume[k] = d.Day, d.Volume
			if med.Volume != 0 {
				g.VolumeRatio[k] = float64(d.Volume) / float64(med.Volume)
			}
		}
	}
	return g
}

// WriteTable prints results, one block of rows per policy set, and the
// goals' figures under the default policy: the table the README quotes.
func WriteTable(w io.Writer, results []Result) error {
	if len(results) == 0 {
		return nil
	}
	c, r0 := results[0].Config, results[0]
	p := &printer{w: w}
	p.printf("Seed %d: %d days, %s buyers, %d honest shops, fee %s%%; the attacks run from day %d, for %d days.\n",
		c.Seed, c.Days, thousands(int64(c.Buyers)), r0.HonestShops, percent(c.FeeRate), c.AttackFrom+1, c.Days-c.AttackFrom)
	p.printf("Ranks are among the %d honest shops (a new shop starts at %d). Spend is what the attacker lost:\n",
		r0.HonestShops, r0.HonestShops+1)
	p.printf("the fees when the money came back to its own shop, the prices when it went to a rival; the honest\n")
	p.printf("shop's is its fees. (d) shows the rival: its figures after the attack, its loss per 1,000 CNY.\n")
	p.printf("top5 and new are Concentration's shares of the points from the top 5 raters and from new raters.\n\n")
	p.printf("%-8s %-38s %6s %7s %10s %6s %-9s %6s %6s %7s %7s %4s %4s | %s\n", "policy", "who", "orders", "counted",
		"spend CNY", "points", "level", "Wilson", "Beta", "rank W", "rank E", "top5", "new",
		"per 1,000 CNY: points  Wilson   Beta  rank W  rank E")
	for _, res := range results {
		for _, row := range append([]Row{res.Median, res.Average}, res.Rows...) {
			name := row.Name
			if row.Attack != "" {
				name = row.Attack + " " + name
			}
			counted := strconv.Itoa(row.Counted)
			if row.Attack == "" {
				counted = "-"
			}
			rw, re := strconv.Itoa(row.To.RankWilson), strconv.Itoa(row.To.RankExpectation)
			if row.Attack == "(d)" {
				rw = strconv.Itoa(row.From.RankWilson) + "→" + rw
				re = strconv.Itoa(row.From.RankExpectation) + "→" + re
			}
			pts, wil, exp, rkw, rke := row.PerThousand()
			p.printf("%-8s %-38s %6d %7s %10s %6d %-9s %6.3f %6.3f %7s %7s %3.0f%% %3.0f%% | %21s %7s %6s %7s %7s\n",
				res.Policy, name, row.Orders, counted, money(row.Spend), row.To.Points, row.To.Level,
				row.To.Wilson, row.To.Expectation, rw, re, 100*row.To.TopShare, 100*row.To.NewShare,
				thousands(round(pts)), fixed(wil), fixed(exp), thousands(round(rkw)), thousands(round(rke)))
		}
	}
	for _, res := range results {
		if res.Policy == "default" {
			writeGoals(p, res)
		}
	}
	return p.err
}

// writeGoals prints the goals' figures of res.
func writeGoals(p *printer, res Result) {
	g, med := res.Goals(), res.Median
	p.printf("\nGoals under the default policy, for ring (a); the median honest shop is %s: %s CNY of volume,\n",
		med.Party, money(med.Volume))
	p.printf("%s CNY of fees, rank %d by Wilson and %d by expectation.\n\n", money(med.Spend), med.To.RankWilson, med.To.RankExpectation)
	var cells [3][2]string
	for k := range 2 {
		cells[0][k] = ratio(g.RankRatio[k]) + "×"
		cells[1][k], cells[2][k] = "never", "never"
		if g.MatchDay[k] != 0 {
			cells[1][k] = fmt.Sprintf("%s CNY, day %d", money(g.MatchSpend[k]), g.MatchDay[k])
		}
		if g.TopDecileDay[k] != 0 {
			cells[2][k] = fmt.Sprintf("%s×, day %d", ratio(g.VolumeRatio[k]), g.TopDecileDay[k])
		}
	}
	rows := [4][4]string{
		{"", "by Wilson", "by expectation", "goal"},
		{"places climbed per 1,000 CNY, over an honest shop's", cells[0][0], cells[0][1], "at most 0.1×"},
		{"spend to rank as high as the median shop", cells[1][0], cells[1][1], ""},
		{"volume when first in the top decile, over the median's", cells[2][0], cells[2][1], "at least 100×"},
	}
	for _, r := range rows {
		p.printf("%s\n", strings.TrimRight(fmt.Sprintf("%-55s %-18s %-18s %s", r[0], r[1], r[2], r[3]), " "))
	}
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// money formats fen as CNY with thousands separators: 1,234.50.
func money(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%s.%02d", sign, thousands(fen/100), fen%100)
}

// thousands formats n with thousands separators.
func thousands(n int64) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func round(x float64) int64 {
	if x < 0 {
		return -int64(-x + 0.5)
	}
	return int64(x + 0.5)
}

// fixed formats a per-1,000 figure of a score: two decimals below 100,
// whole numbers above.
func fixed(x float64) string {
	if x >= 100 || x <= -100 {
		return thousands(round(x))
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

// ratio formats a ratio to two significant figures or whole numbers.
func ratio(x float64) string {
	switch {
	case x >= 100:
		return thousands(round(x))
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 0.1:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strconv.FormatFloat(x, 'g', 2, 64)
}

// percent formats a fee rate, "0.006", as a percentage, "0.6".
func percent(rate string) string {
	d, err := decimal.NewFromString(rate)
	if err != nil {
		return rate
	}
	return d.Shift(2).String()
}
