// Command reputation shows the rules that keep a seller's reputation honest,
// on one small stationery shop and three of its customers:
//
//   - the monthly pair cap: one buyer's ratings of one seller add at most 6
//     points in a calendar month, however many cheap items they trade;
//   - the repeat item: the same item from the same buyer counts once in 14
//     days, so the postcards here are eight different designs;
//   - the default rating: a buyer who stays silent while the seller rated
//     is taken to have rated positive when the 15-day window closes;
//   - revision: a negative may be raised once, within 30 days, and the
//     score moves with it;
//   - the minimum value: an escrow worth less than 1 unit scores nothing.
//
// It ends with the seller's reputation and Explain's account of it.
//
// Usage:
//
//	go run ./examples/reputation
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

func main() {
	if err := parseArgs(os.Stdout, os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		return
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "reputation:", err)
		os.Exit(1)
	}
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "reputation:", err)
		os.Exit(1)
	}
}

// parseArgs refuses arguments, as the program takes none, so that a flag
// meant for another example is not silently ignored; -h prints the usage
// on w and returns flag.ErrHelp.
func parseArgs(w io.Writer, args []string) error {
	flags := flag.NewFlagSet("reputation", flag.ContinueOnError)
	flags.SetOutput(w)
	flags.Usage = func() { fmt.Fprintln(w, "usage: go run ./examples/reputation (it takes no arguments)") }
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	return nil
}

const (
	shop = "paper-crane" // the seller
	day  = 24 * time.Hour
)

// A demo is the ledger, its clock and where to print. Like bufio.Scanner it
// keeps the first error and skips everything after it.
type demo struct {
	ctx    context.Context
	ledger *escrow.Ledger
	clock  *escrow.ManualClock
	out    io.Writer
	err    error
}

// run is the whole program but for the exit status, so that a test can run
// it and read what it prints.
func run(w io.Writer) error {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	// A manual clock lets the demo skip the days between a trade and the
	// end of its rating window.
	clock := escrow.NewManualClock(time.Date(2025, time.January, 6, 10, 0, 0, 0, time.UTC))
	ledger, err := escrow.New(ctx, store, &escrow.Options{Clock: clock})
	if err != nil {
		return err
	}
	d := &demo{ctx: ctx, ledger: ledger, clock: clock, out: w}
	for _, id := range []string{shop, "mei", "tao", "lin"} {
		d.must(ledger.OpenAccount(ctx, id))
	}
	for _, id := range []string{"mei", "tao", "lin"} {
		d.must(ledger.Deposit(ctx, id, cny("500.00")))
	}

	d.pairCap()
	d.defaultRating()
	d.revision()
	d.belowMinimum()
	d.windowCloses()
	d.nextMonth()
	d.explain()
	return d.err
}

func cny(s string) escrow.Money { return escrow.MustParseMoney(s, escrow.CNY) }

func (d *demo) must(_ any, err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *demo) printf(format string, args ...any) {
	if d.err == nil {
		_, d.err = fmt.Fprintf(d.out, format, args...)
	}
}

func (d *demo) section(title string) { d.printf("\n== %s ==\n", title) }

// trade runs one escrow from Open to Confirm: the buyer pays, the shop
// ships, the buyer confirms.
func (d *demo) trade(id, buyer, item, price string) {
	if d.err != nil {
		return
	}
	d.must(d.ledger.Open(d.ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: shop, Item: item, Price: cny(price)}))
	d.must(d.ledger.Pay(d.ctx, id, buyer))
	d.must(d.ledger.Ship(d.ctx, id, shop, ""))
	d.must(d.ledger.Confirm(d.ctx, id, buyer))
}

// rate has rater rate the other party of escrow id and prints whether the
// rating counted.
func (d *demo) rate(id, rater string, score escrow.Score, comment string) {
	if d.err != nil {
		return
	}
	r, err := d.ledger.Rate(d.ctx, id, rater, escrow.RatingInput{Score: score, Comment: comment})
	if err != nil {
		d.err = err
		return
	}
	d.printf("%s  %-11s %s rates %s %s: %s\n", d.when(), id, rater, r.Ratee, r.Score, counted(r))
}

// counted says whether a rating counted and what it added, or why not.
func counted(r escrow.Rating) string {
	if !r.Counted {
		return "not counted, " + r.Reason
	}
	return fmt.Sprintf("counted, %+d", r.Points)
}

func (d *demo) when() string { return d.clock.Now().Format("Jan 02") }

// standing prints the shop's reputation as a seller.
func (d *demo) standing() {
	if d.err != nil {
		return
	}
	rep, err := d.ledger.Reputation(d.ctx, shop)
	if err != nil {
		d.err = err
		return
	}
	v := rep.AsSeller
	d.printf("%s  %s: %d points (%s), %d/%d/%d, positive rate %.1f%%, Wilson %.3f, Beta %.3f\n",
		d.when(), shop, v.Points, v.Level, v.Total.Positive, v.Total.Neutral, v.Total.Negative,
		100*v.PositiveRate, v.Wilson, v.Expectation)
}

// pairCap: mei buys a postcard a day for eight days, each a different
// design (the same one twice within 14 days would count once). Her first
// six positives add six points; the seventh and eighth reach the pair's
// monthly cap and do not count, though they are kept and shown.
func (d *demo) pairCap() {
	d.section("January: one buyer, eight postcards (the monthly pair cap)")
	for i := 1; i <= 8; i++ {
		id := fmt.Sprintf("postcard-%d", i)
		d.trade(id, "mei", fmt.Sprintf("postcard, design %d", i), "5.00")
		d.rate(id, "mei", escrow.Positive, "")
		d.clock.Advance(day)
	}
	d.standing()
}

// defaultRating: tao buys a notebook; the shop rates him, he never rates
// the shop. Nothing happens until his window closes (see windowCloses).
func (d *demo) defaultRating() {
	d.section("A buyer who never rates (the default rating)")
	d.trade("notebook-1", "tao", "dot-grid notebook", "38.00")
	d.rate("notebook-1", shop, escrow.Positive, "quick payment")
	d.printf("%s  tao stays silent; his rating window closes in 15 days\n", d.when())
}

// revision: lin's negative costs a point and drags the scores down; when
// she raises it, the shop gets the point back and the scores recover.
func (d *demo) revision() {
	d.section("A negative, answered and revised (revision)")
	d.clock.Advance(day)
	d.trade("pen-1", "lin", "fountain pen", "120.00")
	d.rate("pen-1", "lin", escrow.Negative, "the nib scratches")
	d.standing()

	d.clock.Advance(2 * day)
	d.must(d.ledger.Reply(d.ctx, "pen-1", "lin", shop, "sorry: a smoother nib is in the post"))
	d.printf("%s  %s replies to lin\n", d.when(), shop)

	d.clock.Advance(5 * day)
	r, err := d.ledger.Revise(d.ctx, "pen-1", "lin", escrow.Positive, "the new nib writes beautifully")
	d.must(r, err)
	d.printf("%s  lin revises her rating: %s to %s, %s\n", d.when(), r.Original, r.Score, counted(r))
	d.standing()
}

// belowMinimum: a sticker for half a yuan. Trades that small are too cheap
// to build a reputation on, so its rating counts for nothing.
func (d *demo) belowMinimum() {
	d.section("A trade worth less than 1.00 (the minimum value)")
	d.clock.Advance(day)
	d.trade("sticker-1", "lin", "crane sticker", "0.50")
	d.rate("sticker-1", "lin", escrow.Positive, "")
}

// windowCloses: 15 days after the notebook trade, ProcessDue closes its
// rating window and gives the shop tao's default positive.
func (d *demo) windowCloses() {
	d.section("The notebook's rating window closes")
	d.clock.Set(time.Date(2025, time.January, 30, 9, 0, 0, 0, time.UTC))
	d.must(d.ledger.ProcessDue(d.ctx))
	d.printf("%s  ProcessDue closed the window: tao is taken to have rated %s positive\n", d.when(), shop)
	d.standing()
}

// nextMonth: in February mei's ratings count again.
func (d *demo) nextMonth() {
	d.section("February: a new month for mei and the shop")
	d.clock.Set(time.Date(2025, time.February, 3, 10, 0, 0, 0, time.UTC))
	d.trade("postcard-9", "mei", "postcard, design 9", "5.00")
	d.rate("postcard-9", "mei", escrow.Positive, "")
	d.standing()
}

// explain prints every rating the shop received, oldest first, with what
// it counts for now.
func (d *demo) explain() {
	if d.err != nil {
		return
	}
	d.section("Explain: the shop's ratings and what each counts for")
	var cs []escrow.Contribution
	for p := (escrow.Page{}); ; {
		page, err := d.ledger.Explain(d.ctx, shop, p)
		if err != nil {
			d.err = err
			return
		}
		cs = append(cs, page.Contributions...)
		if p.Cursor = page.Next; p.Cursor == "" {
			break
		}
	}
	for _, c := range cs {
		score := c.Score.String()
		switch {
		case c.Revised:
			score += " (revised from " + c.Original.String() + ")"
		case c.Default:
			score += " (default)"
		}
		d.printf("%s  %-11s %-4s %-34s %-12s weight %.3f\n", c.At.Format("Jan 02"), c.Escrow, c.Rater, score,
			points(c.Rating), c.BetaWeight)
		if !c.Counted {
			d.printf("%25s%s\n", "", c.Reason)
		}
	}
}

func points(r escrow.Rating) string {
	if !r.Counted {
		return "not counted"
	}
	return fmt.Sprintf("%+d", r.Points)
}
