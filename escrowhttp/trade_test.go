package escrowhttp

import (
	"net/http"
	"testing"

	"github.com/escrowkit/escrow"
)

// TestTrade runs one trade end to end through the API and holds every
// answer to the ledger's own.
func TestTrade(t *testing.T) {
	h := newHarness(t, nil, nil)
	var acct escrow.Account
	r := h.do(req{method: "POST", path: "/v1/accounts", actor: "alice"}).ok(http.StatusCreated)
	r.into(&acct)
	if acct.ID != "alice" || r.header.Get("Location") != "accounts/alice" {
		t.Fatalf("opened %+v at %q", acct, r.header.Get("Location"))
	}
	r.same(must(h.l.Account(h.ctx, "alice")))
	h.do(req{method: "POST", path: "/v1/accounts", actor: "teashop", body: "{}"}).ok(http.StatusCreated)

	h.do(req{method: "POST", path: "/v1/accounts/alice/deposits", actor: "gateway", operator: true,
		body: map[string]any{"amount": cny("100.00")}}).ok(http.StatusOK).
		same(must(h.l.Balance(h.ctx, "alice", escrow.CNY)))

	// An ID with a slash and a space travels percent-encoded.
	id := "order/1 tea"
	terms := map[string]any{"id": id, "seller": "teashop", "arbiter": "arb", "price": cny("59.90"),
		"item": "Longjing, 250 g", "metadata": map[string]string{"order": "A-1001"}}
	r = h.do(req{method: "POST", path: "/v1/escrows", actor: "alice", body: terms}).ok(http.StatusCreated)
	if loc := r.header.Get("Location"); loc != "escrows/order%2F1%20tea" {
		t.Errorf("Location %q", loc)
	}
	r.same(must(h.l.Escrow(h.ctx, id)))
	base := "/v1/escrows/order%2F1%20tea"

	h.do(req{method: "POST", path: base + "/pay", actor: "alice"}).ok(http.StatusOK)
	h.do(req{method: "POST", path: base + "/ship", actor: "teashop", body: map[string]string{"tracking": "SF1234"}}).ok(http.StatusOK)
	var e escrow.Escrow
	r = h.do(req{method: "POST", path: base + "/confirm", actor: "alice"}).ok(http.StatusOK)
	r.into(&e)
	r.same(must(h.l.Escrow(h.ctx, id)))
	if e.State != escrow.Completed || e.Tracking != "SF1234" || !e.Released.Equal(money("59.90")) || !e.Fees.Equal(money("0.36")) {
		t.Errorf("confirmed: %+v", e)
	}

	var rating escrow.Rating
	h.do(req{method: "POST", path: base + "/ratings", actor: "alice", body: map[string]any{
		"score": "positive", "details": map[string]int{"described": 5, "shipping": 4}, "comment": "fresh"}}).
		ok(http.StatusCreated).into(&rating)
	if rating.Ratee != "teashop" || rating.Score != escrow.Positive || rating.Details.Described != 5 || !rating.Counted {
		t.Errorf("rating: %+v", rating)
	}
	h.do(req{method: "POST", path: base + "/ratings", actor: "teashop", body: map[string]any{"score": "positive"}}).ok(http.StatusCreated)

	// Balances: alice paid 59.90, the shop got it less the 0.6% fee.
	var bl balanceList
	r = h.do(req{method: "GET", path: "/v1/accounts/alice/balances", actor: "alice"}).ok(http.StatusOK)
	r.same(balanceList{Balances: must(h.l.Balances(h.ctx, "alice"))})
	r = h.do(req{method: "GET", path: "/v1/accounts/teashop/balances", actor: "teashop"}).ok(http.StatusOK)
	r.into(&bl)
	r.same(balanceList{Balances: must(h.l.Balances(h.ctx, "teashop"))})
	if len(bl.Balances) != 1 || !bl.Balances[0].Available.Equal(money("59.54")) {
		t.Errorf("teashop's balances: %+v", bl.Balances)
	}
	h.do(req{method: "GET", path: "/v1/accounts/alice/balances/CNY", actor: "alice"}).ok(http.StatusOK).
		same(must(h.l.Balance(h.ctx, "alice", escrow.CNY)))
	h.do(req{method: "GET", path: "/v1/accounts/alice/journal", actor: "alice"}).ok(http.StatusOK).
		same(journalPage{Entries: must(h.l.Journal(h.ctx, "alice", 0, 20)), Next: 3})

	// The escrow's history and the actor's list.
	var hist history
	r = h.do(req{method: "GET", path: base + "/history", actor: "teashop"}).ok(http.StatusOK)
	r.into(&hist)
	r.same(history{Events: must(h.l.History(h.ctx, id))})
	var types []escrow.EventType
	for _, ev := range hist.Events {
		types = append(types, ev.Type)
	}
	want := []escrow.EventType{escrow.EscrowOpened, escrow.EscrowPaid, escrow.EscrowShipped, escrow.EscrowReleased,
		escrow.RatingGiven, escrow.RatingGiven}
	if !equal(types, want) {
		t.Errorf("history %v, want %v", types, want)
	}
	h.do(req{method: "GET", path: "/v1/escrows?role=buyer&state=completed", actor: "alice"}).ok(http.StatusOK).
		same(must(h.l.Escrows(h.ctx, escrow.EscrowQuery{Party: "alice", Role: escrow.Buyer, States: []escrow.State{escrow.Completed}})))
	var page escrow.EscrowPage
	h.do(req{method: "GET", path: "/v1/escrows?role=seller", actor: "alice"}).ok(http.StatusOK).into(&page)
	if len(page.Escrows) != 0 {
		t.Errorf("alice sold %d escrows", len(page.Escrows))
	}

	// Reputation, as the ledger sees it now.
	var rep escrow.Reputation
	r = h.do(req{method: "GET", path: "/v1/reputation/teashop", actor: "bob"}).ok(http.StatusOK)
	r.into(&rep)
	r.same(must(h.l.Reputation(h.ctx, "teashop")))
	if rep.AsSeller.Unrated || rep.AsSeller.Total.Positive != 1 || rep.AsSeller.Described != 5 {
		t.Errorf("teashop as seller: %+v", rep.AsSeller)
	}
	h.do(req{method: "GET", path: "/v1/reputation/teashop/ratings", actor: "bob"}).ok(http.StatusOK).
		same(must(h.l.Explain(h.ctx, "teashop", escrow.Page{})))
	h.do(req{method: "GET", path: "/v1/top-sellers?by=expectation&limit=5", actor: "bob"}).ok(http.StatusOK).
		same(must(h.l.TopSellers(h.ctx, escrow.RankExpectation, escrow.Page{Limit: 5})))

	if err := h.l.Check(h.ctx); err != nil {
		t.Fatal(err)
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestAmountPlacesFromCurrency: an amount with fewer decimal places than
// its currency's is that amount ("1.5" CNY is 1.50 CNY), as the ledger
// reads it; one with more is refused, naming the field (in errors_test).
func TestAmountPlacesFromCurrency(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.do(req{method: "POST", path: "/v1/accounts", actor: "alice"}).ok(http.StatusCreated)
	h.do(req{method: "POST", path: "/v1/accounts/alice/deposits", actor: "gateway", operator: true,
		body: map[string]any{"amount": cny("1.5")}}).ok(http.StatusOK)
	if b := must(h.l.Balance(h.ctx, "alice", escrow.CNY)); b.Available != money("1.50") {
		t.Errorf("a deposit of \"1.5\" CNY left %v available, want 1.50 CNY", b.Available)
	}
}
