package pgstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/filestore"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
)

// TestDifferential drives three ledgers, on memstore, filestore and
// pgstore, through the same seeded random calls (valid ones and wrong
// ones, with the clock moving and timers firing between them) and
// requires the same reply from each, byte for byte as JSON, error text
// included; at the end the three stores must dump to the same bytes.
// The simulation checks pgstore against a model of the rules; this
// checks it against the other adapters, including on calls and reads
// the model does not follow (listings, reputation, history).
func TestDifferential(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 7, 2026} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			differential(t, seed, 1000)
		})
	}
}

// progress returns the op of TestDifferential that takes the next step
// of escrow id's trade, with rnd choosing among the steps a state allows.
func progress(ctx context.Context, l *escrow.Ledger, rnd *rand.Rand, id string) int {
	e, err := l.Escrow(ctx, id)
	if err != nil {
		return 4 // open another
	}
	one := func(ops ...int) int { return ops[rnd.IntN(len(ops))] }
	switch e.State {
	case escrow.AwaitingPayment:
		return one(6, 6, opPayAll)
	case escrow.AwaitingShipment:
		return one(8, 8, opShipPart)
	case escrow.AwaitingConfirmation:
		return one(9, 9, 9, 10, opExtend, opRequestReturn, opRequestReturn)
	case escrow.ReturnRequested:
		return one(opAgreeReturn, opAgreeReturn, 14)
	case escrow.AwaitingReturn:
		return one(opShipReturn, opShipReturn, opShipReturn, opCancelReturn, 14)
	case escrow.ReturnShipped:
		return one(opConfirmReturn, opRefuseReturn, opRefuseReturn)
	case escrow.ReturnRefused:
		return one(11, opCancelReturn, 14)
	case escrow.Disputed:
		return one(opAddEvidence, opAddEvidence, 14)
	case escrow.RefundRequested:
		return 14 // let the timers or the clock move it
	}
	return 13 // rate it
}

// The ops of TestDifferential for the trade's later steps: parts
// shipped, extensions, returns, evidence and carts.
const (
	opShipPart = 20 + iota
	opExtend
	opRequestReturn
	opAgreeReturn
	opShipReturn
	opConfirmReturn
	opRefuseReturn
	opCancelReturn
	opAddEvidence
	opPayAll
	opCount // ops from here on take the next step of a trade (progress)
)

// a party to a differential run: one ledger on one store, with its clock.
type party struct {
	name  string
	store escrow.Storage
	l     *escrow.Ledger
	clock *escrow.ManualClock
}

func differential(t *testing.T, seed uint64, steps int) {
	ctx := context.Background()
	fs, err := filestore.Open(t.TempDir(), &filestore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	stores := []struct {
		name string
		s    escrow.Storage
	}{{"memstore", memstore.New()}, {"filestore", fs}, {"pgstore", open(t, newSchema(t))}}
	var ps []*party
	for _, st := range stores {
		t.Cleanup(func() { st.s.Close() })
		c := escrow.NewManualClock(start)
		l, err := escrow.New(ctx, st.s, &escrow.Options{Clock: c, Arbiter: "arbiter"})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		ps = append(ps, &party{name: st.name, store: st.s, l: l, clock: c})
	}

	rnd := rand.New(rand.NewPCG(seed, seed^0x5eed))
	accounts := []string{"ann", "bob", "cat", "dan", "eve"}
	var escrows []string
	parties := map[string][2]string{} // buyer and seller of each escrow
	prices := map[string]escrow.Money{}
	pick := func(xs []string) string {
		if len(xs) == 0 {
			return "none"
		}
		return xs[rnd.IntN(len(xs))]
	}
	for _, a := range accounts {
		for _, p := range ps {
			if _, err := p.l.OpenAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	passed := map[string]int{} // calls that succeeded, by their first word
	for step := 0; step < steps; step++ {
		var name string
		var call func(p *party) (any, error)
		e, a, b := pick(escrows), pick(accounts), pick(accounts)
		if n := len(escrows); n > 0 && rnd.IntN(5) > 0 {
			e = escrows[n-1-rnd.IntN(min(n, 4))] // mostly a recent one, still in play
		}
		// actor is mostly the party the action wants (who, 0 the buyer,
		// 1 the seller), sometimes anyone.
		var actors [2]string // drawn here, not in a call, so each store gets the same
		for who := range actors {
			actors[who] = a
			if ab, ok := parties[e]; ok && rnd.IntN(5) > 0 {
				actors[who] = ab[who]
			}
		}
		actor := func(who int) string { return actors[who] }
		amount := fen(int64(1 + rnd.IntN(30000)))
		op := rnd.IntN(opCount + 20)
		if op >= opCount {
			// Move an escrow on the way a trade goes: its state, read from
			// the first store, picks the action, then taken on every store.
			op = progress(ctx, ps[0].l, rnd, e)
			actors = parties[e]
		}
		switch op {
		case 0:
			name = "OpenAccount " + a
			call = func(p *party) (any, error) { return p.l.OpenAccount(ctx, a) }
		case 1, 2:
			name = "Deposit " + a
			deposit := fen(amount.Units() * 5)
			call = func(p *party) (any, error) { return p.l.Deposit(ctx, a, deposit) }
		case 3:
			name = "Withdraw " + a
			call = func(p *party) (any, error) { return p.l.Withdraw(ctx, a, amount) }
		case 4:
			id := fmt.Sprintf("e%d", step)
			escrows = append(escrows, id)
			parties[id] = [2]string{a, b}
			prices[id] = amount
			timers := escrow.Timers{PayWithin: 6 * time.Hour, ShipWithin: 12 * time.Hour, ConfirmWithin: 24 * time.Hour,
				ReturnResponseWithin: 6 * time.Hour, ReturnShipWithin: 12 * time.Hour, ReturnReceiveWithin: 12 * time.Hour,
				ReturnDisputeWithin: 6 * time.Hour, BuyerExtension: 6 * time.Hour, SellerExtensionLimit: 12 * time.Hour}
			if rnd.IntN(2) == 0 {
				timers.ArbiterWithin = 8 * time.Hour
			}
			terms := escrow.Terms{ID: id, Buyer: a, Seller: b, Price: amount, Timers: timers,
				Metadata: map[string]string{"order": id}}
			name = "Open " + id
			call = func(p *party) (any, error) { return p.l.Open(ctx, terms) }
		case 6, 7:
			name = "Pay " + e
			call = func(p *party) (any, error) { return p.l.Pay(ctx, e, actor(0)) }
		case 8:
			name = "Ship " + e
			call = func(p *party) (any, error) { return p.l.Ship(ctx, e, actor(1), "SF123") }
		case 9:
			name = "Confirm " + e
			call = func(p *party) (any, error) { return p.l.Confirm(ctx, e, actor(0)) }
		case 10:
			name = "RequestRefund " + e
			call = func(p *party) (any, error) { return p.l.RequestRefund(ctx, e, actor(0), amount, "broken") }
		case 11:
			name = "Dispute " + e
			call = func(p *party) (any, error) { return p.l.Dispute(ctx, e, actor(0), "no answer") }
		case 12:
			name = "Cancel " + e
			call = func(p *party) (any, error) { return p.l.Cancel(ctx, e, actor(0)) }
		case 13:
			name = "Rate " + e
			score := escrow.Score(1 + rnd.IntN(3))
			rater := actors[rnd.IntN(2)]
			call = func(p *party) (any, error) { return p.l.Rate(ctx, e, rater, escrow.RatingInput{Score: score}) }
		case 14:
			d := time.Duration(rnd.IntN(180)) * time.Minute
			name = "Advance and ProcessDue"
			call = func(p *party) (any, error) { p.clock.Advance(d); return p.l.ProcessDue(ctx) }
		case 15:
			name = "Escrows of " + a
			call = func(p *party) (any, error) { return p.l.Escrows(ctx, escrow.EscrowQuery{Party: a, Limit: 3}) }
		case 16:
			name = "Reputation of " + a
			call = func(p *party) (any, error) { return p.l.Reputation(ctx, a) }
		case 17:
			name = "History of " + e
			call = func(p *party) (any, error) { return p.l.History(ctx, e) }
		case 18:
			name = "TopSellers"
			call = func(p *party) (any, error) { return p.l.TopSellers(ctx, escrow.RankWilson, escrow.Page{Limit: 5}) }
		case opShipPart:
			name = "ShipPart " + e
			tracking := fmt.Sprintf("P%d", step)
			call = func(p *party) (any, error) { return p.l.ShipPart(ctx, e, actor(1), tracking) }
		case opExtend:
			name = "Extend " + e
			who := rnd.IntN(2)
			var by time.Duration // 0: the default, Timers.BuyerExtension
			if rnd.IntN(2) == 0 {
				by = time.Duration(1+rnd.IntN(8)) * time.Hour
			}
			call = func(p *party) (any, error) { return p.l.Extend(ctx, e, actor(who), by) }
		case opRequestReturn:
			name = "RequestReturn " + e
			back := amount // mostly all of the price, or a part of it
			if price, ok := prices[e]; ok && rnd.IntN(4) > 0 {
				back = price
				if rnd.IntN(3) == 0 {
					back = fen(1 + rnd.Int64N(price.Units()))
				}
			}
			call = func(p *party) (any, error) { return p.l.RequestReturn(ctx, e, actor(0), back, "wrong size") }
		case opAgreeReturn:
			name = "AgreeReturn " + e
			call = func(p *party) (any, error) { return p.l.AgreeReturn(ctx, e, actor(1), "1 Dock Road") }
		case opShipReturn:
			name = "ShipReturn " + e
			tracking := fmt.Sprintf("R%d", step)
			call = func(p *party) (any, error) { return p.l.ShipReturn(ctx, e, actor(0), tracking) }
		case opConfirmReturn:
			name = "ConfirmReturn " + e
			call = func(p *party) (any, error) { return p.l.ConfirmReturn(ctx, e, actor(1)) }
		case opRefuseReturn:
			name = "RefuseReturn " + e
			call = func(p *party) (any, error) { return p.l.RefuseReturn(ctx, e, actor(1), "not what was sent") }
		case opCancelReturn:
			name = "CancelReturn " + e
			call = func(p *party) (any, error) { return p.l.CancelReturn(ctx, e, actor(0)) }
		case opAddEvidence:
			name = "AddEvidence " + e
			by := []string{actor(0), actor(1), "arbiter"}[rnd.IntN(3)]
			note, ref := fmt.Sprintf("note %d", step), ""
			if rnd.IntN(2) == 0 {
				ref = fmt.Sprintf("file:%d", step)
			}
			call = func(p *party) (any, error) { return p.l.AddEvidence(ctx, e, by, note, ref) }
		case opPayAll:
			// A cart of e and some of the recent escrows, mostly the
			// buyer's own, sometimes another's or e twice.
			cart := []string{e}
			for _, id := range escrows[max(0, len(escrows)-6):] {
				if id != e && (parties[id][0] == parties[e][0] || rnd.IntN(8) == 0) && rnd.IntN(2) == 0 {
					cart = append(cart, id)
				}
			}
			if rnd.IntN(10) == 0 {
				cart = append(cart, e)
			}
			name = "PayAll " + strings.Join(cart, ",")
			call = func(p *party) (any, error) { return p.l.PayAll(ctx, actor(0), cart) }
		default:
			name = "Balances of " + a
			call = func(p *party) (any, error) { return p.l.Balances(ctx, a) }
		}
		var first []byte
		for i, p := range ps {
			got, err := call(p)
			reply := fmt.Sprintf("%s\nerror: %v", mustJSON(t, got), err)
			if i == 0 {
				first = []byte(reply)
				if err == nil {
					passed[strings.Fields(name)[0]]++
				}
			} else if reply != string(first) {
				t.Fatalf("step %d, %s: %s replied\n%s\nbut %s replied\n%s", step, name, ps[0].name, first, p.name, reply)
			}
		}
	}
	// A run in which the calls that move money never pass would compare
	// little but refusals.
	for _, call := range []string{"Deposit", "Open", "Pay", "Ship", "Confirm", "Rate", "Withdraw",
		"ShipPart", "Extend", "RequestReturn", "AgreeReturn", "ShipReturn", "ConfirmReturn", "RefuseReturn",
		"CancelReturn", "AddEvidence", "PayAll"} {
		if passed[call] == 0 {
			t.Errorf("no %s passed in %d steps: the run compares too little (passed: %v)", call, steps, passed)
		}
	}
	t.Logf("calls passed: %v", passed)
	// The clock's side of the new steps: the timers of a return and the
	// arbiter's deadline.
	fired := map[escrow.EventType]int{}
	for after := uint64(0); ; {
		evs, err := ps[0].l.Events(ctx, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if ev.ByTimer {
				fired[ev.Type]++
			}
		}
		after = evs[len(evs)-1].Seq
	}
	for _, typ := range []escrow.EventType{escrow.EscrowReturnAgreed, escrow.EscrowReturnCancelled, escrow.EscrowEscalated} {
		if fired[typ] == 0 {
			t.Errorf("no %s fired by the clock in %d steps (fired: %v)", typ, steps, fired)
		}
	}
	// Every listing, page by page, before and after the file store moves
	// what has ended to its cold tables.
	pagedReads(t, ctx, ps, accounts, escrows)
	if err := fs.Compact(); err != nil {
		t.Fatalf("filestore: Compact: %v", err)
	}
	if st := fs.Stats(); st.Tables == 0 || st.TableRecords == 0 {
		t.Fatalf("filestore: Compact left no cold table (%+v): the reads compare memory alone", st)
	}
	pagedReads(t, ctx, ps, accounts, escrows)
	sameAtTheEnd(t, ctx, ps)
}

// sameAtTheEnd requires every store to pass Check and to hold the same
// records, dumped byte for byte.
func sameAtTheEnd(t *testing.T, ctx context.Context, ps []*party) {
	t.Helper()
	var want []byte
	for i, p := range ps {
		if err := p.l.Check(ctx); err != nil {
			t.Fatalf("%s: Check: %v", p.name, err)
		}
		d, err := storagetest.Dump(ctx, p.store)
		if err != nil {
			t.Fatalf("%s: Dump: %v", p.name, err)
		}
		if i == 0 {
			want = d
		} else if !bytes.Equal(d, want) {
			t.Fatalf("at the end %s and %s differ:\n%s", ps[0].name, p.name, firstDiff(want, d))
		}
	}
}

// same makes call on every store and requires the same reply from each,
// byte for byte as JSON, error text included; it returns the first
// store's.
func same[T any](t *testing.T, ps []*party, what string, call func(p *party) (T, error)) T {
	t.Helper()
	var first T
	var want string
	for i, p := range ps {
		got, err := call(p)
		reply := fmt.Sprintf("%s\nerror: %v", mustJSON(t, got), err)
		if i == 0 {
			first, want = got, reply
		} else if reply != want {
			t.Fatalf("%s: %s replied\n%s\nbut %s replied\n%s", what, ps[0].name, want, p.name, reply)
		}
	}
	return first
}

// pagedReads reads every listing of the ledger to its end a few items a
// page, on each store with the cursor the page before returned on the
// first store, and requires the same pages from every store: a party's
// escrows in each role with and without a filter of states, the events,
// each account's journal, each escrow's history, each party's ratings
// (Explain) and both rankings.
func pagedReads(t *testing.T, ctx context.Context, ps []*party, accounts, escrows []string) {
	t.Helper()
	pages := 0
	parties := append(slices.Clone(accounts), "arbiter")
	for _, a := range parties {
		for _, role := range []escrow.Role{0, escrow.Buyer, escrow.Seller, escrow.Arbiter, escrow.Buyer | escrow.Seller} {
			for _, states := range [][]escrow.State{nil, {escrow.Completed, escrow.Refunded, escrow.Resolved}} {
				q := escrow.EscrowQuery{Party: a, Role: role, States: states, Limit: 2}
				for {
					what := fmt.Sprintf("Escrows(%+v)", q)
					page := same(t, ps, what, func(p *party) (escrow.EscrowPage, error) { return p.l.Escrows(ctx, q) })
					pages++
					if page.Next == "" {
						break
					}
					q.Cursor = page.Next
				}
			}
		}
		for p := (escrow.Page{Limit: 2}); ; pages++ {
			page := same(t, ps, fmt.Sprintf("Explain(%s, %+v)", a, p), func(x *party) (escrow.ContributionPage, error) {
				return x.l.Explain(ctx, a, p)
			})
			if page.Next == "" {
				break
			}
			p.Cursor = page.Next
		}
	}
	for _, by := range []escrow.RankKey{escrow.RankWilson, escrow.RankExpectation} {
		for p := (escrow.Page{Limit: 2}); ; pages++ {
			page := same(t, ps, fmt.Sprintf("TopSellers(%v, %+v)", by, p), func(x *party) (escrow.RankedPage, error) {
				return x.l.TopSellers(ctx, by, p)
			})
			if page.Next == "" {
				break
			}
			p.Cursor = page.Next
		}
	}
	for after := uint64(0); ; pages++ {
		evs := same(t, ps, fmt.Sprintf("Events(%d, 7)", after), func(p *party) ([]escrow.Event, error) {
			return p.l.Events(ctx, after, 7)
		})
		if len(evs) == 0 {
			break
		}
		after = evs[len(evs)-1].Seq
	}
	for _, a := range append(slices.Clone(accounts), escrow.WorldAccount, escrow.FeeAccount) {
		for after := uint64(0); ; pages++ {
			es := same(t, ps, fmt.Sprintf("Journal(%s, %d, 5)", a, after), func(p *party) ([]escrow.Entry, error) {
				return p.l.Journal(ctx, a, after, 5)
			})
			if len(es) == 0 {
				break
			}
			after = es[len(es)-1].Seq
		}
	}
	for _, id := range escrows {
		same(t, ps, "History "+id, func(p *party) ([]escrow.Event, error) { return p.l.History(ctx, id) })
		pages++
	}
	t.Logf("%d pages read alike", pages)
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstDiff shows where two dumps part.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-300)
	return fmt.Sprintf("…%s\n<<< one has >>>\n%s\n<<< the other >>>\n%s", a[from:i], a[i:min(len(a), i+200)], b[i:min(len(b), i+200)])
}
