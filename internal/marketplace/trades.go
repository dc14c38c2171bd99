package marketplace

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/escrowkit/escrow"
)

const day = 24 * time.Hour

// The market's people. Account IDs are the host's own user IDs.
var (
	buyers  = []string{"li.na", "wang.fang", "zhang.wei", "chen.jie", "liu.yang"}
	sellers = []string{"west-lake-tea", "lantern-lamps", "shenzhen-cases"}
)

// arbiter settles disputes. The arbiter is named on each escrow but needs no
// account: the money it divides goes straight to buyer and seller.
const arbiter = "arbiter.hu"

// A product is something a shop sells, for the randomly drawn orders.
type product struct {
	seller, item, price string
}

var catalog = []product{
	{"west-lake-tea", "Longjing green tea, 250 g", "168.00"},
	{"west-lake-tea", "Tieguanyin oolong, 500 g", "96.50"},
	{"west-lake-tea", "Yixing clay teapot", "320.00"},
	{"lantern-lamps", "Red silk lanterns, pair", "58.80"},
	{"lantern-lamps", "Rattan floor lamp", "239.00"},
	{"lantern-lamps", "Porcelain table lamp", "480.00"},
	{"shenzhen-cases", "Clear phone case", "19.90"},
	{"shenzhen-cases", "Leather phone case", "39.90"},
	{"shenzhen-cases", "Magnetic charging case", "128.00"},
}

// cny is an amount in yuan, written as a price is written. Amounts are
// exact decimals; a third decimal place would be refused.
func cny(s string) escrow.Money { return escrow.MustParseMoney(s, escrow.CNY) }

// order returns the terms of an ordinary order: one item at one price, the
// platform's arbiter, and the ledger's default deadlines.
func order(id, buyer, seller, item, price string) escrow.Terms {
	return escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Arbiter: arbiter, Item: item, Price: cny(price)}
}

// openAccounts opens an account for everyone and tops the buyers up, as if
// from their bank cards.
func openAccounts(m *market) {
	m.section(m.date(1) + ": accounts open, buyers top up")
	for _, id := range append(append([]string{}, buyers...), sellers...) {
		// A month that continues the market finds its accounts already
		// open. An idempotency key would not do: keys expire after
		// Options.IdempotencyRetention, and a month is longer.
		a, err := m.ledger.OpenAccount(m.ctx, id)
		if errors.Is(err, escrow.ErrExists) {
			continue
		}
		m.do(a, err)
	}
	for _, id := range buyers {
		m.do(m.ledger.Deposit(m.ctx, id, cny("5000.00")))
	}
}

// normalTrade is the everyday case. From payment to confirmation the money
// sits in the buyer's held balance, where neither side can spend it; then it
// goes to the seller, less the fee.
func normalTrade(m *market) {
	m.section("A normal trade: pay, ship, confirm")
	id := m.id("order-1001")
	m.wait(20 * time.Minute)
	m.do(m.ledger.Open(m.ctx, escrow.Terms{
		ID:      id, // chosen by the host, so opening again after a timeout is harmless
		Buyer:   "li.na",
		Seller:  "west-lake-tea",
		Arbiter: arbiter,
		Item:    "Longjing green tea, 250 g",
		Price:   cny("168.00"),
	}))
	m.wait(5 * time.Minute)
	// The buyer's app timed out and sent the payment again. With the same
	// idempotency key the retry returns the first result and charges
	// nothing more.
	pay := escrow.IdempotencyKey("pay-" + id)
	m.do(m.ledger.Pay(m.ctx, id, "li.na", pay))
	m.do(m.ledger.Pay(m.ctx, id, "li.na", pay))
	m.note("li.na's app retried the payment with the same idempotency key: no second charge")
	m.wait(1 * time.Hour)
	m.do(m.ledger.Ship(m.ctx, id, "west-lake-tea", "SF1402938475"))
	m.wait(2 * time.Hour)
	m.do(m.ledger.Confirm(m.ctx, id, "li.na"))
}

// sellerRefund: the shop cannot fill the order and returns the money
// itself. No request from the buyer is needed.
func sellerRefund(m *market) {
	m.section("Refunded by the seller: out of stock")
	id := m.id("order-1002")
	m.wait(10 * time.Minute)
	m.do(m.ledger.Open(m.ctx, order(id, "wang.fang", "lantern-lamps", "Rattan floor lamp", "239.00")))
	m.wait(10 * time.Minute)
	m.do(m.ledger.Pay(m.ctx, id, "wang.fang"))
	m.wait(40 * time.Minute)
	m.do(m.ledger.Refund(m.ctx, id, "lantern-lamps", cny("239.00")))
}

// refundAgreed: the buyer asks for the money back and the seller agrees.
// While the request is open the confirmation deadline stands still.
func refundAgreed(m *market) {
	m.section("Refunded on request: the wrong model")
	id := m.id("order-1003")
	m.wait(10 * time.Minute)
	m.do(m.ledger.Open(m.ctx, order(id, "zhang.wei", "shenzhen-cases", "Leather phone case", "39.90")))
	m.do(m.ledger.Pay(m.ctx, id, "zhang.wei"))
	m.wait(30 * time.Minute)
	m.do(m.ledger.Ship(m.ctx, id, "shenzhen-cases", "YT7781203341"))
	m.wait(1 * time.Hour)
	m.do(m.ledger.RequestRefund(m.ctx, id, "zhang.wei", cny("39.90"), "made for another phone model"))
	m.wait(15 * time.Minute)
	m.do(m.ledger.AgreeRefund(m.ctx, id, "shenzhen-cases"))
}

// disputeSplit: the seller refuses a refund, the buyer calls the arbiter,
// and the arbiter divides the money.
func disputeSplit(m *market) {
	m.section("Disputed: a refund refused, the arbiter splits")
	id := m.id("order-1004")
	m.wait(10 * time.Minute)
	m.do(m.ledger.Open(m.ctx, order(id, "chen.jie", "lantern-lamps", "Porcelain table lamp", "480.00")))
	m.do(m.ledger.Pay(m.ctx, id, "chen.jie"))
	m.wait(30 * time.Minute)
	m.do(m.ledger.Ship(m.ctx, id, "lantern-lamps", "ZTO5510029384"))
	m.wait(90 * time.Minute)
	m.do(m.ledger.RequestRefund(m.ctx, id, "chen.jie", cny("480.00"), "arrived with a cracked base"))
	m.wait(30 * time.Minute)
	m.do(m.ledger.RefuseRefund(m.ctx, id, "lantern-lamps", "it left here whole, packed in foam"))
	m.wait(10 * time.Minute)
	e, err := m.ledger.Dispute(m.ctx, id, "chen.jie", "the seller will not refund a broken lamp")
	m.do(e, err)
	if m.err != nil {
		return
	}
	// The arbiter holds the courier's packing partly to blame and returns
	// 70% to the buyer. Allocate divides by weight down to the last fen, so
	// the parts always add up to exactly what is held.
	parts, err := escrow.Allocate(e.Held, 70, 30)
	if err != nil {
		m.do(nil, err)
		return
	}
	m.wait(1 * time.Hour)
	m.do(m.ledger.Resolve(m.ctx, id, arbiter, escrow.Split{Buyer: parts[0], Seller: parts[1]}))
}

// unpaidOrder is never paid. Nothing is held, so nothing moves; the
// payment deadline (three days by default) closes it.
func unpaidOrder(m *market) {
	m.section("Never paid")
	m.wait(10 * time.Minute)
	m.do(m.ledger.Open(m.ctx, order(m.id("order-1005"), "li.na", "west-lake-tea", "Yixing clay teapot", "320.00")))
	m.note("li.na changes her mind and never pays")
}

// leftUnconfirmed: the goods arrive but the buyers never press Confirm.
// The seller cannot confirm for them; the confirmation deadline (ten days
// from shipping by default) will pay the seller instead.
func leftUnconfirmed(m *market) {
	m.section("Shipped, never confirmed")
	m.wait(10 * time.Minute)
	m.do(m.ledger.Open(m.ctx, order(m.id("order-1006"), "zhang.wei", "shenzhen-cases", "Magnetic charging case", "128.00")))
	m.do(m.ledger.Open(m.ctx, order(m.id("order-1007"), "wang.fang", "west-lake-tea", "Tieguanyin oolong, 500 g", "96.50")))
	m.do(m.ledger.Pay(m.ctx, m.id("order-1006"), "zhang.wei"))
	m.do(m.ledger.Pay(m.ctx, m.id("order-1007"), "wang.fang"))
	m.wait(30 * time.Minute)
	m.do(m.ledger.Ship(m.ctx, m.id("order-1006"), "shenzhen-cases", "YT7781209950"))
	m.do(m.ledger.Ship(m.ctx, m.id("order-1007"), "west-lake-tea", "SF1402941120"))
	_, err := m.ledger.Confirm(m.ctx, m.id("order-1006"), "shenzhen-cases")
	m.refused(err, escrow.ErrNotParty)
}

// randomOrders places six more orders drawn from the seed: who buys what,
// and how it goes. Orders left unpaid or unconfirmed are finished by the
// deadlines later, along with the ones above.
func randomOrders(m *market, rng *rand.Rand) {
	m.section("More orders in the evening, drawn from -seed")
	for i := range 6 {
		id := m.id(fmt.Sprintf("order-%d", 2001+i))
		buyer := buyers[rng.IntN(len(buyers))]
		p := catalog[rng.IntN(len(catalog))]
		m.wait(time.Duration(5+rng.IntN(40)) * time.Minute)
		m.do(m.ledger.Open(m.ctx, order(id, buyer, p.seller, p.item, p.price)))
		switch rng.IntN(4) {
		case 0: // never paid
			continue
		case 1: // all goes well
			m.do(m.ledger.Pay(m.ctx, id, buyer))
			m.do(m.ledger.Ship(m.ctx, id, p.seller, fmt.Sprintf("SF%010d", rng.IntN(1e10))))
			m.do(m.ledger.Confirm(m.ctx, id, buyer))
		case 2: // never confirmed
			m.do(m.ledger.Pay(m.ctx, id, buyer))
			m.do(m.ledger.Ship(m.ctx, id, p.seller, fmt.Sprintf("SF%010d", rng.IntN(1e10))))
		case 3: // a fifth back for a scuffed box, the rest to the seller
			m.do(m.ledger.Pay(m.ctx, id, buyer))
			m.do(m.ledger.Ship(m.ctx, id, p.seller, fmt.Sprintf("SF%010d", rng.IntN(1e10))))
			parts, err := escrow.Allocate(cny(p.price), 1, 4)
			if err != nil {
				m.do(nil, err)
				return
			}
			m.do(m.ledger.RequestRefund(m.ctx, id, buyer, parts[0], "the box arrived scuffed"))
			m.do(m.ledger.AgreeRefund(m.ctx, id, p.seller))
			m.do(m.ledger.Confirm(m.ctx, id, buyer))
		}
	}
}

// paymentDeadline: on March 5 the orders of March 1 are past their three
// days to pay. ProcessDue closes them.
func paymentDeadline(m *market) {
	m.section(m.date(5) + ": past the payment deadline")
	m.clock.Set(m.at(5, 9))
	m.processDue()
}

// milestoneTrade releases the price in tranches. A restaurant orders 120
// lanterns in three deliveries and pays for each as it arrives, so neither
// side carries the risk of the whole order at once.
func milestoneTrade(m *market) {
	m.section("A milestone trade: three deliveries, paid one by one")
	id := m.id("order-3001")
	terms := order(id, "liu.yang", "lantern-lamps", "120 red silk lanterns for a restaurant", "3600.00")
	terms.Milestones = []escrow.Milestone{
		{Name: "first 40 lanterns", Amount: cny("1200.00")},
		{Name: "second 40 lanterns", Amount: cny("1200.00")},
		{Name: "last 40 lanterns", Amount: cny("1200.00")},
	}
	m.wait(1 * time.Hour)
	m.do(m.ledger.Open(m.ctx, terms))
	m.do(m.ledger.Pay(m.ctx, id, "liu.yang"))
	m.wait(2 * time.Hour)
	m.do(m.ledger.Ship(m.ctx, id, "lantern-lamps", "DB5520117 (first van)"))
	for n := range terms.Milestones {
		m.wait(1 * day)
		m.do(m.ledger.ConfirmMilestone(m.ctx, id, "liu.yang", n))
	}
}

// returnAndRefund: the goods have to come back before the money does.
// The buyer asks to return them, the seller agrees and gives an address,
// the buyer sends them back with tracking, and the seller's confirmation
// of their receipt refunds the buyer. Each step has its deadline (5 days
// for the seller to answer, 7 for the buyer to send, 10 for the seller to
// confirm), and the confirmation deadline stands still meanwhile.
func returnAndRefund(m *market) {
	m.section("Returned and refunded: the wrong colour")
	id := m.id("order-1008")
	m.wait(1 * time.Hour)
	m.do(m.ledger.Open(m.ctx, order(id, "liu.yang", "lantern-lamps", "Rattan floor lamp", "239.00")))
	m.do(m.ledger.Pay(m.ctx, id, "liu.yang"))
	m.wait(2 * time.Hour)
	m.do(m.ledger.Ship(m.ctx, id, "lantern-lamps", "ZTO5510031177"))
	m.wait(18 * time.Hour)
	m.do(m.ledger.RequestReturn(m.ctx, id, "liu.yang", cny("239.00"), "the shade is not the colour pictured"))
	m.wait(2 * time.Hour)
	m.do(m.ledger.AgreeReturn(m.ctx, id, "lantern-lamps", "Lantern Lamps returns, 12 Qiantang Road, Hangzhou"))
	m.wait(3 * time.Hour)
	m.do(m.ledger.ShipReturn(m.ctx, id, "liu.yang", "SF1402950118"))
	m.wait(20 * time.Hour)
	m.do(m.ledger.ConfirmReturn(m.ctx, id, "lantern-lamps"))
}

// extendedTrade: the goods are late, so the buyer puts the confirmation
// deadline back, by three days (the default), once; the seller may put it
// back too, up to 30 days in all.
func extendedTrade(m *market) {
	m.section("More time to confirm: a parcel held at customs")
	id := m.id("order-1009")
	m.wait(1 * time.Hour)
	m.do(m.ledger.Open(m.ctx, order(id, "chen.jie", "west-lake-tea", "Yixing clay teapot", "320.00")))
	m.do(m.ledger.Pay(m.ctx, id, "chen.jie"))
	m.wait(1 * time.Hour)
	m.do(m.ledger.Ship(m.ctx, id, "west-lake-tea", "EMS8830041977"))
	m.wait(4 * time.Hour)
	e, err := m.ledger.Extend(m.ctx, id, "chen.jie", 0)
	m.do(e, err)
	m.due(e)
	_, err = m.ledger.Extend(m.ctx, id, "chen.jie", 0)
	m.refused(err, escrow.ErrInvalidArgument)
	e, err = m.ledger.Extend(m.ctx, id, "west-lake-tea", 2*day)
	m.do(e, err)
	m.due(e)
	m.wait(2 * time.Hour)
	m.do(m.ledger.Confirm(m.ctx, id, "chen.jie"))
}

// due says when an escrow's running deadline falls.
func (m *market) due(e escrow.Escrow) {
	m.note("the confirmation deadline is now %s", e.DueAt.In(cst).Format("Jan 02 15:04"))
}

// cartAtOnce: a buyer with orders from three shops pays them in one
// payment. It is all or nothing: a cart that holds one order that may not
// be paid pays none, and the refusal names it.
func cartAtOnce(m *market) {
	m.section("One payment for a cart from three shops")
	cart := []string{m.id("order-1010"), m.id("order-1011"), m.id("order-1012")}
	m.wait(1 * time.Hour)
	m.do(m.ledger.Open(m.ctx, order(cart[0], "li.na", "west-lake-tea", "Tieguanyin oolong, 500 g", "96.50")))
	m.do(m.ledger.Open(m.ctx, order(cart[1], "li.na", "lantern-lamps", "Red silk lanterns, pair", "58.80")))
	m.do(m.ledger.Open(m.ctx, order(cart[2], "li.na", "shenzhen-cases", "Clear phone case", "19.90")))
	m.wait(5 * time.Minute)
	// Her cart still holds the teapot that closed unpaid on the 5th.
	_, err := m.ledger.PayAll(m.ctx, "li.na", append(cart[:3:3], m.id("order-1005")))
	m.refused(err, escrow.ErrInvalidTransition)
	paid, err := m.ledger.PayAll(m.ctx, "li.na", cart)
	m.do(paid, err)
	var total int64
	for _, e := range paid {
		total += e.Held.Units()
	}
	m.note("one payment of %s, held in %d escrows", escrow.RestoreMoney(total, escrow.CNY), len(paid))
	m.wait(3 * time.Hour)
	m.do(m.ledger.Ship(m.ctx, cart[0], "west-lake-tea", "SF1402951302"))
	m.do(m.ledger.Ship(m.ctx, cart[1], "lantern-lamps", "ZTO5510031420"))
	m.do(m.ledger.Ship(m.ctx, cart[2], "shenzhen-cases", "YT7781215562"))
	m.wait(1 * day)
	for _, id := range cart {
		m.do(m.ledger.Confirm(m.ctx, id, "li.na"))
	}
}

// confirmationDeadline: by March 12 more than ten days have passed since
// the March 1 shipments. ProcessDue confirms for the silent buyers and
// pays their sellers.
func confirmationDeadline(m *market) {
	m.section(m.date(12) + ": past the confirmation deadline")
	m.clock.Set(m.at(12, 9))
	m.processDue()
}

// cashOut: a shop takes some of its takings to the bank.
func cashOut(m *market) {
	m.section("A shop cashes out")
	m.wait(1 * time.Hour)
	m.do(m.ledger.Withdraw(m.ctx, "west-lake-tea", cny("100.00")))
}
