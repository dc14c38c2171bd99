// Package brushing measures what a bought reputation costs on the escrow
// ledger. It runs an honest market (buyers, shops with long-tailed prices,
// a few percent negatives, fees on every sale) on a manual clock over
// memstore, and beside it attackers who pay real prices and real fees for
// ratings:
//
//	(a) a ring of sybil buyers ordering cheap items from one new shop;
//	(b) a ring ordering the same cheap item from one new shop, again and again;
//	(c) two new shops buying from each other and rating each other;
//	(d) a shop whose sybils buy a rival's cheapest items and rate them negative.
//
// It uses only the ledger's public API, so what it measures is what a host
// gets. The same market runs under each policy set (PolicySets), and the
// result reports what each attack bought per 1,000 CNY of fees and price
// lost, against what the median honest shop got per 1,000 CNY of the fees
// it paid on real trades.
//
// It is a package of its own, not a test file, because two programs use
// it: the test that asserts what must hold (brushing_test.go, short in
// `go test`, long with ESCROW_BRUSHING_LONG=1) and examples/brushing, which
// prints the table quoted in the README. Being internal, it is not part of
// the module's API.
package brushing

import (
	"github.com/escrowkit/escrow"
)

// A Config sizes a run. The same Config gives the same Result, byte for
// byte.
type Config struct {
	Seed         uint64
	Days         int    // how long the market runs
	Buyers       int    // honest buyers
	Shops        int    // honest shops
	OrdersPerDay int    // honest orders a day, on average
	AttackFrom   int    // the day the attacks begin (0 is the first), when the market has a history
	FeeRate      string // the platform's fee on a sale, as Options.Fee.Rate: "0.006" is 0.6%
	// Sybils is the number of buyer accounts in the rings of attacks (a)
	// and (b); RivalSybils in attack (d).
	Sybils      int
	RivalSybils int
}

// Short is the run `go test` makes: 1,000 buyers and 50 shops for 90 days,
// the attacks in the last 60.
func Short() Config {
	return Config{Seed: 1, Days: 90, Buyers: 1000, Shops: 50, OrdersPerDay: 60, AttackFrom: 30, FeeRate: "0.006", Sybils: 10, RivalSybils: 5}
}

// Long is the run ESCROW_BRUSHING_LONG=1 makes, and examples/brushing
// with -long: half a year, the attacks in the last 120 days, with two and
// a half times the orders a day.
func Long() Config {
	c := Short()
	c.Days, c.OrdersPerDay, c.AttackFrom = 180, 150, 60
	return c
}

// A PolicySet is a named reputation policy to measure the attacks under.
type PolicySet struct {
	Name   string
	Policy escrow.ReputationPolicy
}

// PolicySets are the policies measured:
//
//   - before: the rules as they were before the rules against brushing: a
//     price of exactly the minimum counts, and so does every repeat of
//     an item;
//   - default: the zero ReputationPolicy;
//   - strict: the default with every option that makes brushing dearer:
//     the pair cap by the month of the order, and on the pair's net
//     points, and points counted as distinct raters.
//
// Each option is one line here, so that a new one is measured by adding it.
func PolicySets() []PolicySet {
	before := escrow.ReputationPolicy{}
	before.MinValueRule = escrow.AtLeastMinValue
	before.CountRepeatItems = true

	def := escrow.ReputationPolicy{}

	strict := escrow.ReputationPolicy{}
	strict.PairCapBy = escrow.OrderMonth
	strict.NetPairCap = true
	strict.UniqueRaters = true

	return []PolicySet{{"before", before}, {"default", def}, {"strict", strict}}
}
