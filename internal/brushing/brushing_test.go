package brushing

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestShort runs the short market under every policy set, checks the
// conclusions the package doc and the README draw from it, and checks
// that the README's table is the one it prints.
func TestShort(t *testing.T) {
	if raceDetector {
		t.Skip("the short run takes over a minute under the race detector; TestDeterministic runs small ones side by side")
	}
	results, err := RunAll(context.Background(), Short())
	if err != nil {
		t.Fatal(err)
	}
	checkConclusions(t, results)
	var out bytes.Buffer
	if err := WriteTable(&out, results); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	checkDoc(t, results)
	// The figures the README's text quotes.
	before, def := policy(results, "before"), policy(results, "default")
	b, d := before.Row("(b)"), def.Row("(b)")
	if want := fmt.Sprintf("cuts ring (b), which orders one item, from %d counted ratings to %d, and from place %d to place %d by Wilson",
		b.Counted, d.Counted, b.To.RankWilson, d.To.RankWilson); !strings.Contains(oneLine(string(readme)), want) {
		t.Errorf("the README does not say %q", want)
	}
	if a, avg := def.Row("(a)").To, def.Average.To; !strings.Contains(oneLine(string(readme)),
		fmt.Sprintf("%.0f%% of its points came from its top 5 raters, against %.0f%% for the average honest shop", 100*a.TopShare, 100*avg.TopShare)) ||
		a.NewShare != 0 {
		t.Errorf("the README's concentration figures are not %.0f%% and %.0f%%, or ring (a) has new raters (%v)",
			100*a.TopShare, 100*avg.TopShare, a.NewShare)
	}
	if got := readmeTable(t, string(readme)); got != out.String() {
		t.Errorf("the README's brushing table is not what `go run ./examples/brushing` prints now; "+
			"paste its output between the markers. It prints:\n%s\ndiff (-README +now):\n%s",
			out.String(), cmp.Diff(got, out.String()))
	}
}

// TestLong runs half a year of the market, with ESCROW_BRUSHING_LONG=1,
// and checks the same conclusions.
func TestLong(t *testing.T) {
	if os.Getenv("ESCROW_BRUSHING_LONG") == "" {
		t.Skip("set ESCROW_BRUSHING_LONG=1 to run the long brushing simulation (about 40 CPU-seconds)")
	}
	results, err := RunAll(context.Background(), Long())
	if err != nil {
		t.Fatal(err)
	}
	checkConclusions(t, results)
	var out bytes.Buffer
	if err := WriteTable(&out, results); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
}

// A seed gives the same run, rankings included, every time, and RunAll,
// which runs the policy sets side by side, gives what Run gives for each
// alone; another seed gives another market.
func TestDeterministic(t *testing.T) {
	cfg := Config{Seed: 7, Days: 30, Buyers: 100, Shops: 10, OrdersPerDay: 20, AttackFrom: 10, FeeRate: "0.006",
		Sybils: 3, RivalSybils: 2}
	all, err := RunAll(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(PolicySets()) {
		t.Fatalf("RunAll returned %d results for %d policy sets", len(all), len(PolicySets()))
	}
	for i, ps := range PolicySets() {
		alone, err := Run(context.Background(), cfg, ps)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(alone, all[i]); diff != "" {
			t.Errorf("%s: Run alone and RunAll differ (-alone +RunAll):\n%s", ps.Name, diff)
		}
	}
	first := all[1]
	if len(first.Rankings[0]) < cfg.Shops || len(first.Rankings[1]) < cfg.Shops {
		t.Errorf("rankings %v list fewer than the %d honest shops", first.Rankings, cfg.Shops)
	}
	cfg.Seed++
	other, err := Run(context.Background(), cfg, PolicySets()[1])
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Equal(first.Rankings, other.Rankings) && first.HonestTrades == other.HonestTrades {
		t.Errorf("seeds %d and %d ran the same market", cfg.Seed-1, cfg.Seed)
	}
}

// checkConclusions checks what the package doc and the README say the
// runs show.
func checkConclusions(t *testing.T, results []Result) {
	t.Helper()
	by := map[string]Result{}
	for _, name := range []string{"before", "default", "strict"} {
		by[name] = policy(results, name)
	}
	cfg := results[0].Config
	// Calendar months the attacks touch, for the pair cap.
	months := map[string]bool{}
	for d := cfg.AttackFrom; d < cfg.Days; d++ {
		months[dayStart(d).Format("2006-01")] = true
	}
	for _, r := range results {
		if r.HonestTrades < cfg.Days*cfg.OrdersPerDay*8/10 {
			t.Errorf("%s: %d honest trades completed, fewer than expected of %d days of %d orders",
				r.Policy, r.HonestTrades, cfg.Days, cfg.OrdersPerDay)
		}
		if r.Median.To.Points <= 0 || r.Average.To.Points <= 0 {
			t.Errorf("%s: honest shops gained no points: median %+v, average %+v", r.Policy, r.Median.To, r.Average.To)
		}
		// The pair cap: a sybil's ratings count at most 6 points a month,
		// and a colluding shop's at most 6 (its default ratings of the
		// other as a buyer use the same cap).
		for _, c := range []struct {
			attack string
			raters int
		}{{"(a)", cfg.Sybils}, {"(b)", cfg.Sybils}, {"(c)", 1}, {"(d)", cfg.RivalSybils}} {
			if got, most := r.Row(c.attack).Counted, 6*c.raters*len(months); got > most {
				t.Errorf("%s %s: %d ratings counted, more than the pair cap allows (%d)", r.Policy, c.attack, got, most)
			}
		}
		// A ring of sybils reaches the top decile, by either key, with far
		// less than the median honest shop's volume: the goal of 100× is
		// not met under any policy set.
		a := r.Row("(a)")
		for k, key := range []string{"Wilson", "expectation"} {
			if a.TopDecile[k].Day == 0 {
				t.Errorf("%s: ring (a) never reached the top decile by %s", r.Policy, key)
			} else if v := float64(a.TopDecile[k].Volume) / float64(r.Median.Volume); v >= 0.1 {
				t.Errorf("%s: ring (a) reached the top decile by %s with %.3f× the median honest volume, not less than 0.1×",
					r.Policy, key, v)
			}
		}
		// Attack (d) sinks the rival from the top ten to the bottom tenth
		// of both rankings, for less than 500 CNY a month.
		d, bottom := r.Row("(d)"), r.HonestShops-r.HonestShops/10
		if d.From.RankWilson > 10 || d.From.RankExpectation > 10 || d.To.RankWilson <= bottom ||
			d.To.RankExpectation <= bottom || d.Spend*30 >= 50_000*int64(cfg.Days-cfg.AttackFrom) {
			t.Errorf("%s: attack (d) spent %s CNY and took the rival from %+v to %+v", r.Policy, money(d.Spend), d.From, d.To)
		}
		// The colluding shops' default ratings of each other use up part
		// of their cap.
		if c := r.Row("(c)"); c.Counted >= 6*len(months) {
			t.Errorf("%s: attack (c) counted %d ratings, the whole cap of %d months", r.Policy, c.Counted, len(months))
		}
	}
	// Each policy set is at least as strict as the one before it for
	// attacks (a), (b) and (d): none counts more ratings under it.
	for _, attack := range []string{"(a)", "(b)", "(d)"} {
		before, def, strict := by["before"].Row(attack), by["default"].Row(attack), by["strict"].Row(attack)
		if def.Counted > before.Counted || strict.Counted > def.Counted {
			t.Errorf("attack %s counted %d ratings before, %d by default and %d under strict", attack,
				before.Counted, def.Counted, strict.Counted)
		}
	}
	// The repeat-item rule cuts what ring (b), which orders one item,
	// gets: fewer ratings count, and it ranks lower by both keys.
	if before, def := by["before"].Row("(b)"), by["default"].Row("(b)"); def.Counted >= before.Counted ||
		def.To.RankWilson <= before.To.RankWilson || def.To.RankExpectation <= before.To.RankExpectation {
		t.Errorf("the repeat-item rule did not cut ring (b): before %d counted, %+v; by default %d, %+v",
			before.Counted, before.To, def.Counted, def.To)
	}
	// The exception: with the pair cap by order month, the default ratings
	// the colluding shops get as buyers, given when a window closes, fall
	// in a month their ratings as sellers have already filled, so more of
	// the latter count under strict than by default.
	if def, strict := by["default"].Row("(c)"), by["strict"].Row("(c)"); strict.Counted <= def.Counted {
		t.Errorf("attack (c) counted %d ratings by default and %d under strict, not more", def.Counted, strict.Counted)
	}
	// None of the rules measured touches a ring that spreads its orders
	// over cheap listings priced above the minimum: ring (a) has the same
	// ratings counted, and the same figures, under every policy set. (Its
	// ranks may differ a little, as the rules change honest shops' figures.)
	for _, policy := range []string{"default", "strict"} {
		a, b := by["before"].Row("(a)"), by[policy].Row("(a)")
		if a.Counted != b.Counted || a.To.Wilson != b.To.Wilson || a.To.Expectation != b.To.Expectation ||
			policy == "default" && a.To.Points != b.To.Points {
			t.Errorf("ring (a) counted %d ratings before, %+v, and %d under %s, %+v", a.Counted, a.To, b.Counted, policy, b.To)
		}
	}
	// Unique raters (strict) give ring (a) one point a sybil, and no more.
	if a := by["strict"].Row("(a)"); a.To.Points > int64(cfg.Sybils) {
		t.Errorf("ring (a) has %d points under strict, more than its %d sybils", a.To.Points, cfg.Sybils)
	}
	// Under the default policy the goal of at most 0.1× is not met either.
	if g := by["default"].Goals(); g.RankRatio[0] <= 0.1 || g.RankRatio[1] <= 0.1 {
		t.Errorf("ring (a) climbed %v× the places of honest fees, within the goal; update the docs", g.RankRatio)
	}
}

// readmeTable returns the table between the brushing markers of the
// README, without the code fence.
func readmeTable(t *testing.T, readme string) string {
	t.Helper()
	const begin, end = "<!-- brushing table: begin -->\n```text\n", "```\n<!-- brushing table: end -->"
	_, rest, ok := strings.Cut(readme, begin)
	if !ok {
		t.Fatalf("no %q in the README", begin)
	}
	table, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("no %q in the README", end)
	}
	return table
}

// checkDoc checks the figures the package doc of escrow quotes against
// the default policy's run.
func checkDoc(t *testing.T, results []Result) {
	t.Helper()
	src, err := os.ReadFile("../../doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := oneLine(string(src))
	r := policy(results, "default")
	c, g, med := r.Config, r.Goals(), r.Median
	for _, want := range []string{
		fmt.Sprintf("runs %s buyers and %d shops for %d days with a fee of %s%%", thousands(int64(c.Buyers)), c.Shops, c.Days, percent(c.FeeRate)),
		fmt.Sprintf("A ring of %d sybil buyers ordering cheap items from a new shop climbs %s times as many TopSellers places",
			c.Sybils, ratio(g.RankRatio[0])),
		fmt.Sprintf("reaches the top tenth by Wilson after %d days with %s CNY of sales to itself, %s times the median honest shop's %s CNY",
			g.TopDecileDay[0], money(g.TopDecileVolume[0]), ratio(g.VolumeRatio[0]), money(med.Volume)),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("doc.go does not say %q", want)
		}
	}
}

// oneLine returns text as one line, comment markers and all runs of white
// space made single spaces, so that a phrase is found across line breaks.
func oneLine(text string) string {
	var words []string
	for _, line := range strings.Split(text, "\n") {
		words = append(words, strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "//"))...)
	}
	return strings.Join(words, " ")
}

// policy returns the result of the policy set called name.
func policy(results []Result, name string) Result {
	for _, r := range results {
		if r.Policy == name {
			return r
		}
	}
	panic("no result for policy set " + name)
}
