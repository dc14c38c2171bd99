package escrow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/shopspring/decimal"
)

// A guaranteed trade from start to finish: the buyer's money is held until
// the buyer confirms the goods arrived, then paid to the seller minus a
// 0.6% platform fee.
func Example() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	ledger, err := escrow.New(ctx, store, &escrow.Options{
		Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")},
	})
	if err != nil {
		log.Fatal(err)
	}

	for _, id := range []string{"alice", "bob"} {
		if _, err := ledger.OpenAccount(ctx, id); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := ledger.Deposit(ctx, "alice", escrow.MustParseMoney("500.00", escrow.CNY)); err != nil {
		log.Fatal(err)
	}

	// Alice buys a keyboard from Bob.
	_, err = ledger.Open(ctx, escrow.Terms{
		ID:     "order-1001",
		Buyer:  "alice",
		Seller: "bob",
		Price:  escrow.MustParseMoney("199.00", escrow.CNY),
		Item:   "mechanical keyboard",
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Pay(ctx, "order-1001", "alice"); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Ship(ctx, "order-1001", "bob", "SF1234567890"); err != nil {
		log.Fatal(err)
	}
	e, err := ledger.Confirm(ctx, "order-1001", "alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state:", e.State)
	fmt.Println("fee:  ", e.Fees)

	for _, id := range []string{"alice", "bob", escrow.FeeAccount} {
		b, err := ledger.Balance(ctx, id, escrow.CNY)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-6s available %s, held %s\n", id, b.Available, b.Held)
	}
	// Output:
	// state: Completed
	// fee:   1.19 CNY
	// alice  available 301.00 CNY, held 0.00 CNY
	// bob    available 197.81 CNY, held 0.00 CNY
	// @fees  available 1.19 CNY, held 0.00 CNY
}

// exampleLedger returns a ledger over a new memstore whose clock is clock,
// with accounts for alice (holding 500.00 CNY) and bob.
func exampleLedger(clock escrow.Clock) *escrow.Ledger {
	ctx := context.Background()
	ledger, err := escrow.New(ctx, memstore.New(), &escrow.Options{Clock: clock})
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"alice", "bob"} {
		if _, err := ledger.OpenAccount(ctx, id); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := ledger.Deposit(ctx, "alice", escrow.MustParseMoney("500.00", escrow.CNY)); err != nil {
		log.Fatal(err)
	}
	return ledger
}

// Opening an escrow moves no money: it records the terms and starts the
// buyer's payment timer. Opening the same ID with the same terms again
// returns the same escrow, so a retried request is harmless.
func ExampleLedger_Open() {
	ctx := context.Background()
	clock := escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	ledger := exampleLedger(clock)

	terms := escrow.Terms{
		ID:      "order-1002",
		Buyer:   "alice",
		Seller:  "bob",
		Arbiter: "support",
		Price:   escrow.MustParseMoney("80.00", escrow.CNY),
		Item:    "used camera lens",
		Timers:  escrow.Timers{PayWithin: 30 * time.Minute},
	}
	e, err := ledger.Open(ctx, terms)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.ID, e.State, e.Price)
	fmt.Println("pay by:", e.DueAt.Format(time.DateTime))
	fmt.Println("ship within:", e.Timers.ShipWithin) // a default

	again, err := ledger.Open(ctx, terms)
	fmt.Println("opened again:", again.ID, again.Version, err)

	terms.Price = escrow.MustParseMoney("60.00", escrow.CNY)
	_, err = ledger.Open(ctx, terms)
	fmt.Println("other terms:", errors.Is(err, escrow.ErrExists))
	// Output:
	// order-1002 AwaitingPayment 80.00 CNY
	// pay by: 2026-03-01 09:30:00
	// ship within: 168h0m0s
	// opened again: order-1002 1 <nil>
	// other terms: true
}

// Timers run when ProcessDue is called. Here the buyer never confirms
// receipt, so ten days after shipping the money is released to the seller
// anyway (auto-confirm). A ManualClock lets the example skip the ten days.
func ExampleLedger_ProcessDue() {
	ctx := context.Background()
	clock := escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	ledger := exampleLedger(clock)

	terms := escrow.Terms{ID: "order-1003", Buyer: "alice", Seller: "bob", Price: escrow.MustParseMoney("45.50", escrow.CNY)}
	if _, err := ledger.Open(ctx, terms); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Pay(ctx, "order-1003", "alice"); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Ship(ctx, "order-1003", "bob", ""); err != nil {
		log.Fatal(err)
	}

	clock.Advance(9 * 24 * time.Hour)
	n, err := ledger.ProcessDue(ctx)
	fmt.Println("after 9 days:", n, err)

	clock.Advance(24 * time.Hour)
	n, err = ledger.ProcessDue(ctx)
	fmt.Println("after 10 days:", n, err)

	e, err := ledger.Escrow(ctx, "order-1003")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.State, "released", e.Released)
	// Output:
	// after 9 days: 0 <nil>
	// after 10 days: 1 <nil>
	// Completed released 45.50 CNY
}

// The seller may refund part of what is held, for instance for a scratched
// item the buyer keeps. The escrow goes on with the rest.
func ExampleLedger_Refund() {
	ctx := context.Background()
	ledger := exampleLedger(nil)

	terms := escrow.Terms{ID: "order-1004", Buyer: "alice", Seller: "bob", Price: escrow.MustParseMoney("120.00", escrow.CNY)}
	if _, err := ledger.Open(ctx, terms); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Pay(ctx, "order-1004", "alice"); err != nil {
		log.Fatal(err)
	}
	e, err := ledger.Refund(ctx, "order-1004", "bob", escrow.MustParseMoney("20.00", escrow.CNY))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.State, "held", e.Held, "refunded", e.Refunded)

	b, err := ledger.Balance(ctx, "alice", escrow.CNY)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice: available", b.Available, "held", b.Held)
	// Output:
	// AwaitingShipment held 100.00 CNY refunded 20.00 CNY
	// alice: available 400.00 CNY held 100.00 CNY
}

// When buyer and seller disagree, either may call the arbiter named in the
// terms, who splits what is held between them.
func ExampleLedger_Resolve() {
	ctx := context.Background()
	ledger := exampleLedger(nil)

	terms := escrow.Terms{ID: "order-1005", Buyer: "alice", Seller: "bob", Arbiter: "support",
		Price: escrow.MustParseMoney("300.00", escrow.CNY)}
	if _, err := ledger.Open(ctx, terms); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Pay(ctx, "order-1005", "alice"); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Ship(ctx, "order-1005", "bob", "YT998877"); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Dispute(ctx, "order-1005", "alice", "half the set is missing"); err != nil {
		log.Fatal(err)
	}
	e, err := ledger.Resolve(ctx, "order-1005", "support", escrow.Split{
		Buyer:  escrow.MustParseMoney("150.00", escrow.CNY),
		Seller: escrow.MustParseMoney("150.00", escrow.CNY),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.State, "refunded", e.Refunded, "released", e.Released)

	for _, id := range []string{"alice", "bob"} {
		b, err := ledger.Balance(ctx, id, escrow.CNY)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(id, b.Available)
	}
	// Output:
	// Resolved refunded 150.00 CNY released 150.00 CNY
	// alice 350.00 CNY
	// bob 150.00 CNY
}

// A call made with an idempotency key can be retried safely, say after a
// timeout: the repeat returns the first result and moves no money.
func ExampleIdempotencyKey() {
	ctx := context.Background()
	ledger := exampleLedger(nil)
	hundred := escrow.MustParseMoney("100.00", escrow.CNY)

	for range 3 {
		b, err := ledger.Deposit(ctx, "bob", hundred, escrow.IdempotencyKey("topup-7f3a"))
		fmt.Println(b.Available, err)
	}

	// The same key with other arguments is a mistake, not a retry.
	_, err := ledger.Deposit(ctx, "bob", escrow.MustParseMoney("1.00", escrow.CNY), escrow.IdempotencyKey("topup-7f3a"))
	fmt.Println(errors.Is(err, escrow.ErrIdempotencyMismatch))
	// Output:
	// 100.00 CNY <nil>
	// 100.00 CNY <nil>
	// 100.00 CNY <nil>
	// true
}

// A host serving the ledger over HTTP scopes its clients' keys to the
// user (keys are global to the ledger), and tells a client whether a
// response is a replay, as payment APIs do with an Idempotent-Replayed
// header. A key reused for something else is refused with a message that
// says what it was first used for.
func ExampleReplayed() {
	ctx := context.Background()
	ledger := exampleLedger(nil)
	hundred := escrow.MustParseMoney("100.00", escrow.CNY)
	user, clientKey := "bob", "7f3a" // the authenticated user, and the Idempotency-Key header
	key := escrow.IdempotencyKey(user + ":" + clientKey)

	for range 2 {
		var replayed bool
		b, err := ledger.Deposit(ctx, "bob", hundred, key, escrow.Replayed(&replayed))
		fmt.Println(b.Available, "replayed:", replayed, err)
	}
	_, err := ledger.Withdraw(ctx, "bob", hundred, key)
	fmt.Println(err)
	// Output:
	// 100.00 CNY replayed: false <nil>
	// 100.00 CNY replayed: true <nil>
	// escrow: idempotency key reused with different arguments: key "bob:7f3a" was first used to deposit into account "bob"
}

// Events, like every type the ledger returns, have a JSON form that can go
// straight into an API or a message queue: snake_case names, words for
// enumerations, RFC 3339 times, exact amounts.
func ExampleEvent() {
	ctx := context.Background()
	ledger := exampleLedger(escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)))
	terms := escrow.Terms{ID: "order-1007", Buyer: "alice", Seller: "bob", Price: escrow.MustParseMoney("9.99", escrow.CNY)}
	if _, err := ledger.Open(ctx, terms); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Pay(ctx, "order-1007", "alice"); err != nil {
		log.Fatal(err)
	}
	events, err := ledger.Events(ctx, 3, 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(b))
	}
	// Output:
	// {"seq":4,"type":"escrow_opened","at":"2026-03-01T09:00:00Z","escrow":"order-1007","buyer":"alice","seller":"bob","actor":"alice","by_timer":false,"state":"awaiting_payment","amount":{"amount":"9.99","currency":"CNY"},"fee":null}
	// {"seq":5,"type":"escrow_paid","at":"2026-03-01T09:00:00Z","escrow":"order-1007","buyer":"alice","seller":"bob","actor":"alice","by_timer":false,"state":"awaiting_shipment","amount":{"amount":"9.99","currency":"CNY"},"fee":null}
}

// Amounts are exact decimals, checked against the currency's minor units.
func ExampleParseMoney() {
	price, err := escrow.ParseMoney("199.9", escrow.CNY)
	fmt.Println(price, price.Units(), err)

	yen, err := escrow.ParseMoney("500", escrow.JPY)
	fmt.Println(yen, yen.Units(), err)

	_, err = escrow.ParseMoney("0.5", escrow.JPY)
	fmt.Println(errors.Is(err, escrow.ErrInvalidAmount), err)
	// Output:
	// 199.90 CNY 19990 <nil>
	// 500 JPY 500 <nil>
	// true escrow: invalid amount: 0.5 JPY: more than 0 decimal places
}

// Allocate splits an amount without losing a cent: the leftover units go to
// the parts that rounding shortchanged most.
func ExampleAllocate() {
	bill := escrow.MustParseMoney("100.00", escrow.CNY)
	parts, err := escrow.Allocate(bill, 1, 1, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(parts)

	parts, err = escrow.Allocate(bill, 70, 20, 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(parts)
	// Output:
	// [33.34 CNY 33.33 CNY 33.33 CNY]
	// [70.00 CNY 20.00 CNY 10.00 CNY]
}

// Every change is also an event, written in the same transaction. A reader
// keeps the Seq of the last event it handled and asks for what came after,
// so it never misses one and never sees one twice.
func ExampleLedger_Events() {
	ctx := context.Background()
	ledger := exampleLedger(nil)
	terms := escrow.Terms{ID: "order-1006", Buyer: "alice", Seller: "bob", Price: escrow.MustParseMoney("9.99", escrow.CNY)}
	if _, err := ledger.Open(ctx, terms); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Pay(ctx, "order-1006", "alice"); err != nil {
		log.Fatal(err)
	}

	var cursor uint64 // in a real program, stored with the reader's own state
	for {
		events, err := ledger.Events(ctx, cursor, 2)
		if err != nil {
			log.Fatal(err)
		}
		if len(events) == 0 {
			break // up to date
		}
		for _, ev := range events {
			fmt.Println(ev.Seq, ev.Type, ev.Account+ev.Escrow)
			cursor = ev.Seq
		}
	}
	// Output:
	// 1 AccountOpened alice
	// 2 AccountOpened bob
	// 3 Deposited alice
	// 4 EscrowOpened order-1006
	// 5 EscrowPaid order-1006
}

// completedTrade runs an escrow from alice to bob from Open to Confirm.
func completedTrade(ledger *escrow.Ledger, id, price string) {
	ctx := context.Background()
	terms := escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Price: escrow.MustParseMoney(price, escrow.CNY)}
	if _, err := ledger.Open(ctx, terms); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Pay(ctx, id, "alice"); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Ship(ctx, id, "bob", ""); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Confirm(ctx, id, "alice"); err != nil {
		log.Fatal(err)
	}
}

// Once a trade has ended, buyer and seller may each rate the other, once,
// within 15 days. Only the buyer gives detail scores.
func ExampleLedger_Rate() {
	ctx := context.Background()
	ledger := exampleLedger(escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)))
	completedTrade(ledger, "order-1007", "90.00")

	r, err := ledger.Rate(ctx, "order-1007", "alice", escrow.RatingInput{
		Score:   escrow.Positive,
		Details: escrow.Details{Described: 5, Communication: 4, Shipping: 5},
		Comment: "exactly as pictured",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Rater, "rated", r.RateeRole, r.Ratee+":", r.Score)
	fmt.Println("counted:", r.Counted, "points:", r.Points, "weight:", r.Weight)

	_, err = ledger.Rate(ctx, "order-1007", "alice", escrow.RatingInput{Score: escrow.Negative})
	fmt.Println("again:", errors.Is(err, escrow.ErrAlreadyRated))
	_, err = ledger.Rate(ctx, "order-1007", "mallory", escrow.RatingInput{Score: escrow.Negative})
	fmt.Println("a stranger:", errors.Is(err, escrow.ErrNotParty))
	// Output:
	// alice rated the seller bob: positive
	// counted: true points: 1 weight: 2
	// again: true
	// a stranger: true
}

// A reputation is read from aggregates kept up to date by every rating.
// Ratings weigh log10(10 + price), so a 990.00 trade weighs 3 and a 90.00
// one 2: here α = 1 + 2 + 2 and β = 1 + 3.
func ExampleLedger_Reputation() {
	ctx := context.Background()
	ledger := exampleLedger(escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)))
	if _, err := ledger.Deposit(ctx, "alice", escrow.MustParseMoney("1000.00", escrow.CNY)); err != nil {
		log.Fatal(err)
	}
	for i, rating := range []struct {
		price string
		score escrow.Score
	}{{"90.00", escrow.Positive}, {"90.00", escrow.Positive}, {"990.00", escrow.Negative}} {
		id := fmt.Sprintf("order-%d", 2001+i)
		completedTrade(ledger, id, rating.price)
		if _, err := ledger.Rate(ctx, id, "alice", escrow.RatingInput{Score: rating.score}); err != nil {
			log.Fatal(err)
		}
	}

	rep, err := ledger.Reputation(ctx, "bob")
	if err != nil {
		log.Fatal(err)
	}
	v := rep.AsSeller
	fmt.Println("points:", v.Points, "level:", v.Level, "ratings:", v.Total)
	fmt.Printf("positive rate %.3f, Wilson %.3f\n", v.PositiveRate, v.Wilson)
	fmt.Printf("Beta expectation %.3f, uncertainty %.3f\n", v.Expectation, v.Uncertainty)
	fmt.Println("as a buyer, unrated:", rep.AsBuyer.Unrated)
	// Output:
	// points: 1 level: None ratings: {2 0 1}
	// positive rate 0.667, Wilson 0.208
	// Beta expectation 0.556, uncertainty 0.222
	// as a buyer, unrated: true
}

// Points earn levels: hearts from 4 points, then diamonds, crowns and gold
// crowns, five tiers each.
func ExampleLevelFor() {
	for _, points := range []int64{0, 3, 4, 10, 11, 250, 251, 10001, 500001, 20000000} {
		fmt.Println(points, escrow.LevelFor(points))
	}
	// Output:
	// 0 None
	// 3 None
	// 4 Heart 1
	// 10 Heart 1
	// 11 Heart 2
	// 250 Heart 5
	// 251 Diamond 1
	// 10001 Crown 1
	// 500001 Gold crown 1
	// 20000000 Gold crown 5
}

// Explain lists the ratings behind a reputation, including those that do
// not count and why: here a trade below the minimum value of 1.00.
func ExampleLedger_Explain() {
	ctx := context.Background()
	ledger := exampleLedger(escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)))
	completedTrade(ledger, "order-3001", "0.50")
	completedTrade(ledger, "order-3002", "90.00")
	for _, id := range []string{"order-3001", "order-3002"} {
		if _, err := ledger.Rate(ctx, id, "alice", escrow.RatingInput{Score: escrow.Positive}); err != nil {
			log.Fatal(err)
		}
	}

	page, err := ledger.Explain(ctx, "bob", escrow.Page{})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range page.Contributions {
		fmt.Printf("%s %s counted=%t points=%d weight=%.1f\n", c.Escrow, c.Score, c.Counted, c.Points, c.BetaWeight)
		if !c.Counted {
			fmt.Println("  because", c.Reason)
		}
	}
	// Output:
	// order-3001 positive counted=false points=0 weight=0.0
	//   because the escrow is worth less than the minimum that counts
	// order-3002 positive counted=true points=1 weight=2.0
}

// printer is an Observer that prints what it is told, without the times.
type printer struct{}

func (printer) Call(c escrow.CallInfo) {
	fmt.Println("call:", c.Call, "error:", c.Err, "replayed:", c.Replayed)
}

func (printer) Commit(c escrow.CommitInfo) {
	fmt.Println("commit:", c.Call, "writes:", c.Writes, "error:", c.Err)
}

func (printer) Timer(t escrow.TimerInfo) {
	fmt.Println("timer:", t.Escrow, t.Action, "left it", t.State)
}

// An Observer is told of every call, every write transaction with the
// number of records it wrote, and every timer; a Logger of what has no
// caller to tell, such as a timer firing. examples/metrics counts the same
// into expvar.
func ExampleObserver() {
	ctx := context.Background()
	clock := escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for output that does not change
			}
			return a
		},
	}))
	ledger, err := escrow.New(ctx, memstore.New(), &escrow.Options{Clock: clock, Observer: printer{}, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.OpenAccount(ctx, "alice"); err != nil {
		log.Fatal(err)
	}
	ledger.OpenAccount(ctx, "alice") // refused: it exists
	terms := escrow.Terms{ID: "order-1009", Buyer: "alice", Seller: "bob", Price: escrow.MustParseMoney("9.90", escrow.CNY)}
	ledger.Open(ctx, terms) // refused: bob has no account
	if _, err := ledger.OpenAccount(ctx, "bob"); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Open(ctx, terms); err != nil {
		log.Fatal(err)
	}

	clock.Advance(4 * 24 * time.Hour) // alice never pays
	if _, err := ledger.ProcessDue(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// commit: new writes: 2 error: <nil>
	// commit: open_account writes: 2 error: <nil>
	// call: open_account error: <nil> replayed: false
	// commit: open_account writes: 0 error: escrow: already exists: account "alice"
	// call: open_account error: escrow: already exists: account "alice" replayed: false
	// commit: open writes: 0 error: escrow: not found: account "bob"
	// call: open error: escrow: not found: account "bob" replayed: false
	// commit: open_account writes: 2 error: <nil>
	// call: open_account error: <nil> replayed: false
	// commit: open writes: 2 error: <nil>
	// call: open error: <nil> replayed: false
	// commit: process_due writes: 2 error: <nil>
	// timer: order-1009 cancel left it Closed
	// {"level":"INFO","msg":"escrow: timer fired","call":"process_due","escrow":"order-1009","action":"cancel","state":"closed"}
	// call: process_due error: <nil> replayed: false
}
