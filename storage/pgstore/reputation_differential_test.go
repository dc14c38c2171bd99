package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/pgstore"
	"github.com/shopspring/decimal"
)

// TestReputationDifferential drives three ledgers, on memstore, filestore
// and pgstore, through the same seeded history of trades and every
// reputation call (ratings, revisions, replies, withdrawals, voids, the
// windows closing with default ratings, days and months passing, the
// file store compacted and both persistent stores reopened) and
// every reputation read (Reputation, Explain page by page, Concentration,
// TopSellers by both keys), and requires the same reply from each, byte
// for byte as JSON, error text included; at the end the three stores
// must pass Check with reputation and dump to the same bytes. It runs
// under the default policy and under one with every option that keeps
// records of its own (the order month, the net cap, distinct raters, a
// location east of UTC, refunded trades rateable).
func TestReputationDifferential(t *testing.T) {
	t.Parallel()
	strict := escrow.ReputationPolicy{PairCapBy: escrow.OrderMonth, NetPairCap: true, UniqueRaters: true,
		Location:       time.FixedZone("UTC+8", 8*3600),
		RateableStates: []escrow.State{escrow.Completed, escrow.Resolved, escrow.Refunded}}
	for _, c := range []struct {
		name   string
		policy escrow.ReputationPolicy
		seed   uint64
	}{{"default", escrow.ReputationPolicy{}, 3}, {"strict", strict, 11}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			steps := 600
			if testing.Short() {
				steps = 200
			}
			reputationDifferential(t, c.seed, steps, c.policy)
		})
	}
}

func reputationDifferential(t *testing.T, seed uint64, steps int, policy escrow.ReputationPolicy) {
	ctx := context.Background()
	dir, schema := t.TempDir(), newSchema(t)
	opts := func(c *escrow.ManualClock) *escrow.Options {
		return &escrow.Options{Clock: c, Arbiter: "arbiter", Operators: []string{"ops"},
			Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")}, Reputation: policy}
	}
	// reopen, for the stores that persist, compacts the file store,
	// closes the store and opens it again, with a new ledger: what the
	// ledger reads next comes from the disk, or from the database
	// rather than the rows a pgstore kept.
	reopen := map[string]func() (escrow.Storage, error){
		"filestore": func() (escrow.Storage, error) { return filestore.Open(dir, &filestore.Options{NoSync: true}) },
		"pgstore": func() (escrow.Storage, error) {
			return pgstore.Open(ctx, dsn, &pgstore.Options{Schema: schema})
		},
	}
	var ps []*party
	for _, name := range []string{"memstore", "filestore", "pgstore"} {
		var s escrow.Storage = memstore.New()
		if open := reopen[name]; open != nil {
			var err error
			if s, err = open(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		c := escrow.NewManualClock(start)
		l, err := escrow.New(ctx, s, opts(c))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := &party{name: name, store: s, l: l, clock: c}
		t.Cleanup(func() { p.store.Close() })
		ps = append(ps, p)
	}
	rnd := rand.New(rand.NewPCG(seed, seed^0x7a7e))
	accounts := []string{"ann", "bob", "cat", "dan", "eve", "fay"}
	for _, a := range accounts {
		for _, p := range ps {
			if _, err := p.l.OpenAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
			if _, err := p.l.Deposit(ctx, a, fen(100_000_000)); err != nil {
				t.Fatal(err)
			}
		}
	}
	prices := []int64{50, 100, 101, 500, 990, 10_000, 200_000}
	skus := []string{"", "", "card", "pen", "ink"}
	var ended []string                // escrows that ended
	parties := map[string][2]string{} // buyer and seller of each escrow
	pick := func(xs []string) string {
		if len(xs) == 0 {
			return "none"
		}
		if n := len(xs); rnd.IntN(3) > 0 {
			return xs[n-1-rnd.IntN(min(n, 6))] // mostly a recent one
		}
		return xs[rnd.IntN(len(xs))]
	}
	// each runs call on every store and requires the same reply.
	passed := map[string]int{}
	each := func(step int, name string, call func(p *party) (any, error)) bool {
		t.Helper()
		var err0 error
		same(t, ps, fmt.Sprintf("step %d, %s", step, name), func(p *party) (any, error) {
			got, err := call(p)
			if p == ps[0] {
				err0 = err
			}
			return got, err
		})
		if err0 == nil {
			passed[strings.Fields(name)[0]]++
		}
		return err0 == nil
	}
	var rated [][2]string // escrow and rater of each rating given
	for step := 0; step < steps; step++ {
		e := pick(ended)
		ab := parties[e]
		rater := ab[rnd.IntN(2)]
		if rnd.IntN(12) == 0 {
			rater = accounts[rnd.IntN(len(accounts))]
		}
		op := rnd.IntN(20)
		if op >= 9 && op < 14 && len(rated) > 0 && rnd.IntN(5) > 0 {
			// Mostly a rating that was given, a recent one more often.
			r := rated[len(rated)-1-rnd.IntN(min(len(rated), 8))]
			if rnd.IntN(3) == 0 {
				r = rated[rnd.IntN(len(rated))]
			}
			e, rater, ab = r[0], r[1], parties[r[0]]
		}
		switch {
		case op < 5: // a trade that ends: completed, resolved or refunded
			id := fmt.Sprintf("t%d", step)
			buyer := accounts[rnd.IntN(len(accounts))]
			seller := accounts[rnd.IntN(len(accounts))]
			for seller == buyer {
				seller = accounts[rnd.IntN(len(accounts))]
			}
			price := fen(prices[rnd.IntN(len(prices))])
			terms := escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Price: price, SKU: skus[rnd.IntN(len(skus))],
				Item: "item " + id}
			end := rnd.IntN(6)
			cut := rnd.Int64N(price.Units() + 1)
			toBuyer, toSeller := fen(cut), fen(price.Units()-cut)
			each(step, "Trade "+id, func(p *party) (any, error) {
				if _, err := p.l.Open(ctx, terms); err != nil {
					return nil, err
				}
				if _, err := p.l.Pay(ctx, id, buyer); err != nil {
					return nil, err
				}
				switch end {
				case 0: // refunded before shipping
					return p.l.Refund(ctx, id, seller, price)
				case 1: // resolved with a split
					if _, err := p.l.Dispute(ctx, id, buyer, "late"); err != nil {
						return nil, err
					}
					return p.l.Resolve(ctx, id, "arbiter", escrow.Split{Buyer: toBuyer, Seller: toSeller})
				}
				if _, err := p.l.Ship(ctx, id, seller, "SF"+id); err != nil {
					return nil, err
				}
				return p.l.Confirm(ctx, id, buyer)
			})
			ended = append(ended, id)
			parties[id] = [2]string{buyer, seller}
		case op < 9:
			score := escrow.Score(1 + rnd.IntN(3))
			in := escrow.RatingInput{Score: score, Comment: "ok"}
			if rnd.IntN(3) == 0 {
				in.Details = escrow.Details{Described: int8(rnd.IntN(6)), Communication: int8(1 + rnd.IntN(5)), Shipping: int8(rnd.IntN(6))}
			}
			if each(step, "Rate "+e, func(p *party) (any, error) { return p.l.Rate(ctx, e, rater, in) }) {
				rated = append(rated, [2]string{e, rater})
			}
		case op < 11:
			score := escrow.Score(1 + rnd.IntN(3))
			each(step, "Revise "+e, func(p *party) (any, error) { return p.l.Revise(ctx, e, rater, score, "better") })
		case op < 12:
			each(step, "WithdrawRating "+e, func(p *party) (any, error) { return p.l.WithdrawRating(ctx, e, rater) })
		case op < 13:
			operator := "ops"
			if rnd.IntN(4) == 0 {
				operator = rater
			}
			each(step, "VoidRating "+e, func(p *party) (any, error) { return p.l.VoidRating(ctx, e, rater, operator, "brushing") })
		case op < 14:
			actor := ab[rnd.IntN(2)]
			each(step, "Reply "+e, func(p *party) (any, error) { return p.l.Reply(ctx, e, rater, actor, "thanks") })
		case op < 16:
			// Minutes, or days, and nanoseconds, which a store must keep.
			d := time.Duration(rnd.IntN(6*24*60))*time.Minute + time.Duration(rnd.IntN(1e9))
			if rnd.IntN(4) == 0 {
				d = time.Duration(rnd.IntN(40)) * 24 * time.Hour
			}
			each(step, "Advance and ProcessDue", func(p *party) (any, error) { p.clock.Advance(d); return p.l.ProcessDue(ctx) })
		case op < 17 && rnd.IntN(8) == 0:
			passed["Reopen"]++
			for _, p := range ps {
				open := reopen[p.name]
				if open == nil {
					continue
				}
				if fs, ok := p.store.(*filestore.Store); ok {
					if err := fs.Compact(); err != nil {
						t.Fatalf("step %d: compacting: %v", step, err)
					}
				}
				if err := p.store.Close(); err != nil {
					t.Fatalf("step %d: closing %s: %v", step, p.name, err)
				}
				var err error
				if p.store, err = open(); err != nil {
					t.Fatalf("step %d: reopening %s: %v", step, p.name, err)
				}
				if p.l, err = escrow.New(ctx, p.store, opts(p.clock)); err != nil {
					t.Fatalf("step %d: %s: %v", step, p.name, err)
				}
			}
		case op < 17:
			a := accounts[rnd.IntN(len(accounts))]
			each(step, "Reputation "+a, func(p *party) (any, error) { return p.l.Reputation(ctx, a) })
		case op < 18:
			a := accounts[rnd.IntN(len(accounts))]
			each(step, "Explain "+a, func(p *party) (any, error) {
				var all []escrow.Contribution
				for pg := (escrow.Page{Limit: 4}); ; {
					page, err := p.l.Explain(ctx, a, pg)
					if err != nil {
						return all, err
					}
					all = append(all, page.Contributions...)
					if pg.Cursor = page.Next; pg.Cursor == "" {
						return all, nil
					}
				}
			})
		case op < 19:
			a := accounts[rnd.IntN(len(accounts))]
			each(step, "Concentration "+a, func(p *party) (any, error) { return p.l.Concentration(ctx, a) })
		default:
			by := escrow.RankKey(1 + rnd.IntN(2))
			each(step, "TopSellers", func(p *party) (any, error) {
				var all []escrow.Ranked
				for pg := (escrow.Page{Limit: 2}); ; {
					page, err := p.l.TopSellers(ctx, by, pg)
					if err != nil {
						return all, err
					}
					all = append(all, page.Sellers...)
					if pg.Cursor = page.Next; pg.Cursor == "" {
						return all, nil
					}
				}
			})
		}
	}
	for _, call := range []string{"Trade", "Rate", "Revise", "WithdrawRating", "VoidRating", "Reply", "Reopen"} {
		if passed[call] == 0 {
			t.Errorf("no %s passed in %d steps: the run compares too little (passed: %v)", call, steps, passed)
		}
	}
	t.Logf("calls passed: %v", passed)
	sameAtTheEnd(t, ctx, ps)
}
