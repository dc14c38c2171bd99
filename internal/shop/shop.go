package shop

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/escrowhttp"
)

// The people of the shop: who you may act as.
const (
	buyer   = "mei"
	seller  = "teahouse"
	arbiter = "arbiter"
)

var people = []string{buyer, seller, arbiter}

// shop serves the page and the forms it posts.
type shop struct {
	ledger *escrow.Ledger
	page   *template.Template
	orders atomic.Int64 // the highest order number given, for the next ID; requests come concurrently
	mux    *http.ServeMux
}

//go:embed page.html
var pageHTML string

// newShop opens the ledger over store, with the arbiter as the default for
// every order, and gives the buyer an account with money in it.
func newShop(ctx context.Context, store escrow.Storage, clock escrow.Clock) (*shop, error) {
	l, err := escrow.New(ctx, store, &escrow.Options{Clock: clock, Arbiter: arbiter})
	if err != nil {
		return nil, err
	}
	for _, id := range []string{buyer, seller} {
		if _, err := l.OpenAccount(ctx, id); err != nil && !errors.Is(err, escrow.ErrExists) {
			return nil, err
		}
	}
	// The buyer's money comes in once: the deposit is keyed.
	if _, err := l.Deposit(ctx, buyer, escrow.MustParseMoney("500.00", escrow.CNY), escrow.IdempotencyKey("shop-first-deposit")); err != nil {
		return nil, err
	}
	page, err := template.New("page").Parse(pageHTML)
	if err != nil {
		return nil, err
	}
	s := &shop{ledger: l, page: page, mux: http.NewServeMux()}
	// A reopened shop numbers on after the highest order it has, not
	// from how many it has: a refused order uses up its number, and the
	// next order's ID must not be one that is taken, since opening it
	// again with the same terms would answer the old order.
	for q := (escrow.EscrowQuery{Party: buyer, Limit: escrow.MaxPageLimit}); ; {
		mine, err := l.Escrows(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range mine.Escrows {
			if n, ok := orderNumber(e.ID); ok && n > s.orders.Load() {
				s.orders.Store(n)
			}
		}
		if q.Cursor = mine.Next; q.Cursor == "" {
			break
		}
	}
	s.mux.HandleFunc("GET /{$}", s.show)
	s.mux.HandleFunc("POST /order", s.order)
	s.mux.HandleFunc("POST /act", s.act)
	s.mux.HandleFunc("POST /cart", s.cart)
	// The same ledger as a JSON API, for a front end or a script: whoever
	// the X-Actor header names, as long as it is one of the shop's people.
	// A real host names the actor from its own sign-in.
	api, err := escrowhttp.New(l, &escrowhttp.Options{Actor: func(r *http.Request) (string, error) {
		who := r.Header.Get("X-Actor")
		if !slices.Contains(people, who) {
			return "", fmt.Errorf("X-Actor must name one of %v", people)
		}
		return who, nil
	}})
	if err != nil {
		return nil, err
	}
	s.mux.Handle("/v1/", api)
	return s, nil
}

// orderNumber returns n of an ID "order-n" the shop gave an order.
func orderNumber(id string) (int64, bool) {
	digits, ok := strings.CutPrefix(id, "order-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil && n > 0
}

func (s *shop) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// as returns whom the request acts as: ?as= or the form's "as".
func as(r *http.Request) string {
	who := r.FormValue("as")
	for _, p := range people {
		if who == p {
			return who
		}
	}
	return buyer
}

// view is what the page shows.
type view struct {
	As, Buyer, Seller string
	People            []string
	Problem           string // the last action's refusal, if any
	Orders            []order
	Unpaid            []string // the buyer's orders awaiting payment, for the cart
	Balances          []escrow.Balance
	Reputation        escrow.View
}

// order is an escrow as the page shows it: with its timeline and what the
// person acting may do next.
type order struct {
	escrow.Escrow
	Timeline []escrow.Event
	Actions  []string
	CanRate  bool
}

func (s *shop) show(w http.ResponseWriter, r *http.Request) {
	ctx, who := r.Context(), as(r)
	v := view{As: who, Buyer: buyer, Seller: seller, People: people, Problem: r.FormValue("problem")}
	page, err := s.ledger.Escrows(ctx, escrow.EscrowQuery{Party: who, Limit: escrow.MaxPageLimit})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, e := range page.Escrows {
		o := order{Escrow: e}
		if o.Timeline, err = s.ledger.History(ctx, e.ID); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		role := roleOf(e, who)
		for _, a := range escrow.Actions() {
			// The buyer's one extension, once spent, is no button.
			spent := a == escrow.ActionExtend && role == escrow.Buyer && e.Extended.Buyer != 0
			if escrow.Allowed(a, role, e.State) && a != escrow.ActionConfirmMilestone && !spent {
				o.Actions = append(o.Actions, word(a))
			}
		}
		o.CanRate = (role == escrow.Buyer || role == escrow.Seller) && e.State.Terminal() &&
			!e.RatingDueAt.IsZero() && e.Rated&role == 0
		v.Orders = append(v.Orders, o)
		if role == escrow.Buyer && e.State == escrow.AwaitingPayment {
			v.Unpaid = append(v.Unpaid, e.ID)
		}
	}
	if who != arbiter {
		if v.Balances, err = s.ledger.Balances(ctx, who); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	rep, err := s.ledger.Reputation(ctx, seller)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	v.Reputation = rep.AsSeller
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.page.Execute(w, v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// roleOf returns who's part in e.
func roleOf(e escrow.Escrow, who string) escrow.Role {
	switch who {
	case e.Buyer:
		return escrow.Buyer
	case e.Seller:
		return escrow.Seller
	case e.Arbiter:
		return escrow.Arbiter
	}
	return 0
}

// word is an action's word in the page's forms: its JSON form.
func word(a escrow.Action) string {
	b, _ := a.MarshalText()
	return string(b)
}

// back sends the browser to the page again, as who, with the refusal of
// the action if there was one.
func back(w http.ResponseWriter, r *http.Request, who string, err error) {
	q := url.Values{"as": {who}}
	if err != nil {
		q.Set("problem", err.Error())
	}
	http.Redirect(w, r, "/?"+q.Encode(), http.StatusSeeOther)
}

// order opens an escrow for a teapot at the price asked, as the buyer.
func (s *shop) order(w http.ResponseWriter, r *http.Request) {
	price, err := escrow.ParseMoney(r.FormValue("price"), escrow.CNY)
	if err == nil {
		_, err = s.ledger.Open(r.Context(), escrow.Terms{ID: fmt.Sprintf("order-%d", s.orders.Add(1)), Buyer: buyer,
			Seller: seller, Price: price, Item: r.FormValue("item")})
	}
	back(w, r, buyer, err)
}

// act takes the action the form names on the escrow it names.
func (s *shop) act(w http.ResponseWriter, r *http.Request) {
	ctx, who, id := r.Context(), as(r), r.FormValue("id")
	amount := func() (escrow.Money, error) { return escrow.ParseMoney(r.FormValue("amount"), escrow.CNY) }
	reason := r.FormValue("reason")
	var err error
	switch r.FormValue("action") {
	case "pay":
		_, err = s.ledger.Pay(ctx, id, who)
	case "ship":
		_, err = s.ledger.Ship(ctx, id, who, r.FormValue("tracking"))
	case "ship_part":
		_, err = s.ledger.ShipPart(ctx, id, who, r.FormValue("tracking"))
	case "extend": // by the buyer's extension, the escrow's default
		_, err = s.ledger.Extend(ctx, id, who, 0)
	case "confirm":
		_, err = s.ledger.Confirm(ctx, id, who)
	case "cancel":
		_, err = s.ledger.Cancel(ctx, id, who)
	case "refund":
		var m escrow.Money
		if m, err = amount(); err == nil {
			_, err = s.ledger.Refund(ctx, id, who, m)
		}
	case "request_refund":
		var m escrow.Money
		if m, err = amount(); err == nil {
			_, err = s.ledger.RequestRefund(ctx, id, who, m, reason)
		}
	case "agree_refund":
		_, err = s.ledger.AgreeRefund(ctx, id, who)
	case "refuse_refund":
		_, err = s.ledger.RefuseRefund(ctx, id, who, reason)
	case "request_return":
		var m escrow.Money
		if m, err = amount(); err == nil {
			_, err = s.ledger.RequestReturn(ctx, id, who, m, reason)
		}
	case "agree_return":
		_, err = s.ledger.AgreeReturn(ctx, id, who, r.FormValue("address"))
	case "ship_return":
		_, err = s.ledger.ShipReturn(ctx, id, who, r.FormValue("tracking"))
	case "confirm_return":
		_, err = s.ledger.ConfirmReturn(ctx, id, who)
	case "refuse_return":
		_, err = s.ledger.RefuseReturn(ctx, id, who, reason)
	case "cancel_return":
		_, err = s.ledger.CancelReturn(ctx, id, who)
	case "dispute":
		_, err = s.ledger.Dispute(ctx, id, who, reason)
	case "add_evidence":
		_, err = s.ledger.AddEvidence(ctx, id, who, r.FormValue("note"), "")
	case "resolve":
		var m escrow.Money
		if m, err = amount(); err == nil {
			var e escrow.Escrow
			if e, err = s.ledger.Escrow(ctx, id); err == nil {
				rest := escrow.RestoreMoney(e.Held.Units()-m.Units(), escrow.CNY) // the ledger refuses a negative part
				_, err = s.ledger.Resolve(ctx, id, who, escrow.Split{Buyer: m, Seller: rest})
			}
		}
	case "rate":
		var score escrow.Score
		if err = score.UnmarshalText([]byte(r.FormValue("score"))); err == nil {
			in := escrow.RatingInput{Score: score, Comment: r.FormValue("comment")}
			if stars, _ := strconv.Atoi(r.FormValue("stars")); who == buyer && stars >= 1 && stars <= 5 {
				in.Details = escrow.Details{Described: int8(stars), Communication: int8(stars), Shipping: int8(stars)}
			}
			_, err = s.ledger.Rate(ctx, id, who, in)
		}
	default:
		err = fmt.Errorf("no action %q", r.FormValue("action"))
	}
	back(w, r, who, err)
}

// cart pays every order the form checked in one payment, all or none.
func (s *shop) cart(w http.ResponseWriter, r *http.Request) {
	who := as(r)
	_, err := s.ledger.PayAll(r.Context(), who, r.Form["id"])
	back(w, r, who, err)
}
