package escrowhttp

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

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
	var conc escrow.Concentration
	r = h.do(req{method: "GET", path: "/v1/reputation/teashop/concentration", actor: "bob"}).ok(http.StatusOK)
	r.into(&conc)
	r.same(must(h.l.Concentration(h.ctx, "teashop")))
	if conc.Points != 1 || conc.Raters != 1 || conc.TopRatersShare != 1 || conc.NewRatersShare != 1 {
		t.Errorf("teashop's concentration: %+v", conc)
	}
	// A party never rated as a seller: zeros, and an empty list, not null.
	r = h.do(req{method: "GET", path: "/v1/reputation/bob/concentration", actor: "bob"}).ok(http.StatusOK)
	r.same(must(h.l.Concentration(h.ctx, "bob")))
	if !strings.Contains(string(r.body), `"top_raters":[]`) {
		t.Errorf("bob's concentration: %s", r.body)
	}
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

// TestReturnAndRefund sends goods back through the API, after two
// extensions, and holds every answer to the ledger's own.
func TestReturnAndRefund(t *testing.T) {
	h := newHarness(t, nil, nil)
	for _, a := range []string{"alice", "teashop"} {
		h.do(req{method: "POST", path: "/v1/accounts", actor: a}).ok(http.StatusCreated)
	}
	must(h.l.Deposit(h.ctx, "alice", money("100.00")))
	h.do(req{method: "POST", path: "/v1/escrows", actor: "alice",
		body: map[string]any{"id": "pot", "seller": "teashop", "price": cny("80.00")}}).ok(http.StatusCreated)
	step := func(action, actor string, body any, want escrow.State) escrow.Escrow {
		t.Helper()
		var e escrow.Escrow
		r := h.do(req{method: "POST", path: "/v1/escrows/pot/" + action, actor: actor, body: body}).ok(http.StatusOK)
		r.into(&e)
		r.same(must(h.l.Escrow(h.ctx, "pot")))
		if e.State != want {
			t.Fatalf("after %s the escrow is %s, want %s", action, e.State, want)
		}
		return e
	}
	step("pay", "alice", nil, escrow.AwaitingShipment)
	step("ship_part", "teashop", map[string]string{"tracking": "SF1"}, escrow.AwaitingShipment)
	shipped := step("ship", "teashop", map[string]string{"tracking": "SF2"}, escrow.AwaitingConfirmation)
	e := step("extend", "alice", map[string]string{"by": "48h0m0s"}, escrow.AwaitingConfirmation)
	if got := e.DueAt.Sub(shipped.DueAt); got != 48*time.Hour {
		t.Errorf("the buyer's extension moved the deadline %s, want 48h", got)
	}
	// The buyer's one extension is spent: a second changes nothing.
	before := h.dump()
	if c := h.do(req{method: "POST", path: "/v1/escrows/pot/extend", actor: "alice"}).ok(http.StatusBadRequest).refusal(); c.Code != "invalid_argument" {
		t.Errorf("a second extension: %q", c.Code)
	}
	if !bytes.Equal(before, h.dump()) {
		t.Error("a refused extension changed the store")
	}
	step("request_return", "alice", map[string]any{"amount": cny("80.00"), "reason": "chipped spout"}, escrow.ReturnRequested)
	step("agree_return", "teashop", map[string]string{"address": "9 Tea Street, Hangzhou"}, escrow.AwaitingReturn)
	e = step("ship_return", "alice", map[string]string{"tracking": "SF3"}, escrow.ReturnShipped)
	if e.Return.Address != "9 Tea Street, Hangzhou" || e.Return.Tracking != "SF3" {
		t.Errorf("the return: %+v", e.Return)
	}
	e = step("confirm_return", "teashop", nil, escrow.Refunded)
	if !e.Refunded.Equal(money("80.00")) || !e.Held.IsZero() {
		t.Errorf("refunded %v, still held %v", e.Refunded, e.Held)
	}
	var hist history
	h.do(req{method: "GET", path: "/v1/escrows/pot/history", actor: "alice"}).ok(http.StatusOK).into(&hist)
	var types []escrow.EventType
	for _, ev := range hist.Events {
		types = append(types, ev.Type)
	}
	want := []escrow.EventType{escrow.EscrowOpened, escrow.EscrowPaid, escrow.EscrowShippedPart, escrow.EscrowShipped,
		escrow.EscrowExtended, escrow.EscrowReturnRequested, escrow.EscrowReturnAgreed, escrow.EscrowReturnShipped, escrow.EscrowRefunded}
	if !equal(types, want) {
		t.Errorf("history %v, want %v", types, want)
	}
	if b := must(h.l.Balance(h.ctx, "alice", escrow.CNY)); !b.Available.Equal(money("100.00")) {
		t.Errorf("alice has %v available, want all 100.00 back", b.Available)
	}
	if err := h.l.Check(h.ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPayAll pays a cart through the API: all at once, safely retried
// under one key, and not at all when one escrow of it may not be paid.
func TestPayAll(t *testing.T) {
	h := newHarness(t, nil, nil)
	for _, a := range []string{"alice", "teashop", "potter"} {
		h.do(req{method: "POST", path: "/v1/accounts", actor: a}).ok(http.StatusCreated)
	}
	must(h.l.Deposit(h.ctx, "alice", money("100.00")))
	for id, seller := range map[string]string{"tea": "teashop", "pot": "potter", "cup": "potter"} {
		h.do(req{method: "POST", path: "/v1/escrows", actor: "alice",
			body: map[string]any{"id": id, "seller": seller, "price": cny("30.00")}}).ok(http.StatusCreated)
	}
	must(h.l.Pay(h.ctx, "cup", "alice"))

	// "cup" is paid already: the cart is refused, and "tea" stays unpaid.
	before := h.dump()
	e := h.do(req{method: "POST", path: "/v1/carts/pay", actor: "alice", body: map[string]any{"escrows": []string{"tea", "cup"}}}).
		ok(http.StatusConflict).refusal()
	if e.Code != "cart_refused" || !strings.Contains(e.Message, "none of the cart of 2 was paid") {
		t.Errorf("refusal %+v", e)
	}
	if !bytes.Equal(before, h.dump()) {
		t.Error("a refused cart changed the store")
	}

	cart := req{method: "POST", path: "/v1/carts/pay", actor: "alice", body: map[string]any{"buyer": "alice", "escrows": []string{"tea", "pot"}},
		header: map[string]string{"Idempotency-Key": "cart-1"}}
	var paid paidCart
	r := h.do(cart).ok(http.StatusOK)
	r.into(&paid)
	r.same(paidCart{Escrows: []escrow.Escrow{must(h.l.Escrow(h.ctx, "tea")), must(h.l.Escrow(h.ctx, "pot"))}})
	for _, e := range paid.Escrows {
		if e.State != escrow.AwaitingShipment || e.Cart != "tea" || e.CartSize != 2 {
			t.Errorf("%s: %s, cart %q of %d", e.ID, e.State, e.Cart, e.CartSize)
		}
	}
	if r.header.Get("Idempotent-Replayed") != "false" {
		t.Errorf("the first call says Idempotent-Replayed %q", r.header.Get("Idempotent-Replayed"))
	}
	// The retry answers the same and pays nothing more.
	after := h.dump()
	r = h.do(cart).ok(http.StatusOK)
	r.same(paid)
	if r.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(after, h.dump()) {
		t.Errorf("the retry: Idempotent-Replayed %q; store changed %v", r.header.Get("Idempotent-Replayed"), !bytes.Equal(after, h.dump()))
	}
	if b := must(h.l.Balance(h.ctx, "alice", escrow.CNY)); !b.Available.Equal(money("10.00")) || !b.Held.Equal(money("90.00")) {
		t.Errorf("alice's balance %+v, want 10.00 available and 90.00 held", b)
	}
	if err := h.l.Check(h.ctx); err != nil {
		t.Fatal(err)
	}
}

// TestIDsInPaths: an escrow or an account whose ID has slashes and dots,
// or is "." or "..", is reached at the Location it was opened with, and
// its actions at that path, since an ID travels as one percent-encoded
// segment; "." and ".." as whole segments of a path are still refused.
func TestIDsInPaths(t *testing.T) {
	h := newHarness(t, nil, nil)
	resolve := func(base, loc string) string {
		t.Helper()
		ref, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("Location %q: %v", loc, err)
		}
		return must(url.Parse(base)).ResolveReference(ref).String()
	}
	ids := []string{"a//b", "/x", "x/", "a/./b", "a/../b", ".", "..", "./a", "../a", "a/.", "a/..", "%2E", "100%"}
	h.do(req{method: "POST", path: "/v1/accounts", actor: "alice"}).ok(http.StatusCreated)
	for _, id := range ids {
		r := h.do(req{method: "POST", path: "/v1/accounts", actor: id}).ok(http.StatusCreated)
		at := resolve("/v1/accounts", r.header.Get("Location"))
		var a escrow.Account
		h.do(req{method: "GET", path: at, actor: id}).ok(http.StatusOK).into(&a)
		if a.ID != id {
			t.Errorf("GET %s read account %q, want %q", at, a.ID, id)
		}
	}
	for _, id := range ids {
		r := h.do(req{method: "POST", path: "/v1/escrows", actor: "alice",
			body: map[string]any{"id": id, "seller": "a//b", "price": cny("1.00")}}).ok(http.StatusCreated)
		at := resolve("/v1/escrows", r.header.Get("Location"))
		var e escrow.Escrow
		h.do(req{method: "GET", path: at, actor: "alice"}).ok(http.StatusOK).into(&e)
		if e.ID != id {
			t.Errorf("GET %s read escrow %q, want %q", at, e.ID, id)
		}
		h.do(req{method: "POST", path: at + "/cancel", actor: "a//b"}).ok(http.StatusOK).into(&e)
		if e.ID != id || e.State != escrow.Closed {
			t.Errorf("POST %s/cancel: escrow %q in %s", at, e.ID, e.State)
		}
	}
	for _, path := range []string{"/v1/escrows/.", "/v1/escrows/..", "/v1/escrows/a/../b", "/v1/escrows//x", "/v1/escrows/./x/history"} {
		if e := h.do(req{method: "GET", path: path, actor: "alice"}).ok(http.StatusNotFound).refusal(); e.Code != "route_not_found" {
			t.Errorf("GET %s: code %q", path, e.Code)
		}
	}
}

// TestBuyerWritesTheTerms: with an Options.Terms that takes the terms as
// the buyer sends them, an arbiter named there replaces the ledger's
// default, and timers there replace its defaults, up to escrow.MaxTimer:
// the seller finds them on the escrow, and accepts them by shipping.
func TestBuyerWritesTheTerms(t *testing.T) {
	h := newHarness(t, nil, &escrow.Options{Arbiter: "platform"})
	for _, id := range []string{"mallory", "teashop"} {
		h.do(req{method: "POST", path: "/v1/accounts", actor: id}).ok(http.StatusCreated)
	}
	h.do(req{method: "POST", path: "/v1/accounts/mallory/deposits", actor: "gateway", operator: true,
		body: map[string]any{"amount": cny("100.00")}}).ok(http.StatusOK)
	var e escrow.Escrow
	h.do(req{method: "POST", path: "/v1/escrows", actor: "mallory", body: map[string]any{"id": "o-1", "seller": "teashop",
		"arbiter": "mallorys-friend", "price": cny("100.00"), "timers": map[string]string{"confirm_within": "438000h0m0s"}}}).
		ok(http.StatusCreated).into(&e)
	if e.Arbiter != "mallorys-friend" || e.Timers.ConfirmWithin != escrow.MaxTimer {
		t.Fatalf("opened with arbiter %q and %s to confirm; want the buyer's", e.Arbiter, e.Timers.ConfirmWithin)
	}
	h.do(req{method: "POST", path: "/v1/escrows/o-1/pay", actor: "mallory"}).ok(http.StatusOK)
	h.do(req{method: "POST", path: "/v1/escrows/o-1/ship", actor: "teashop"}).ok(http.StatusOK).into(&e)
	if !e.DueAt.Equal(start.Add(escrow.MaxTimer)) {
		t.Errorf("shipped: auto-confirm due %s, want %s", e.DueAt, start.Add(escrow.MaxTimer))
	}
	h.do(req{method: "POST", path: "/v1/escrows/o-1/dispute", actor: "mallory", body: map[string]string{"reason": "not as described"}}).
		ok(http.StatusOK)
	h.do(req{method: "POST", path: "/v1/escrows/o-1/resolve", actor: "platform", body: map[string]any{"buyer": cny("100.00")}}).
		ok(http.StatusForbidden)
	h.do(req{method: "POST", path: "/v1/escrows/o-1/resolve", actor: "mallorys-friend", body: map[string]any{"buyer": cny("100.00")}}).
		ok(http.StatusOK).into(&e)
	if e.State != escrow.Resolved || e.Refunded != money("100.00") {
		t.Errorf("resolved by the buyer's arbiter: %s, refunded %s", e.State, e.Refunded)
	}
}

// TestTermsAreTheHosts: without Options.Terms, a buyer may not name the
// arbiter or set the timers, and a refused open changes nothing; with it,
// the host sets them, or refuses the terms as it sees fit.
func TestTermsAreTheHosts(t *testing.T) {
	h := newHarness(t, nil, &escrow.Options{Arbiter: "platform"})
	h.srv.terms = nil
	for _, id := range []string{"mallory", "teashop"} {
		h.do(req{method: "POST", path: "/v1/accounts", actor: id}).ok(http.StatusCreated)
	}
	h.do(req{method: "POST", path: "/v1/accounts/mallory/deposits", actor: "gateway", operator: true,
		body: map[string]any{"amount": cny("100.00")}}).ok(http.StatusOK)
	terms := func(extra map[string]any) map[string]any {
		b := map[string]any{"id": "o-1", "seller": "teashop", "price": cny("100.00")}
		maps.Copy(b, extra)
		return b
	}
	before := h.dump()
	for _, extra := range []map[string]any{
		{"arbiter": "mallorys-friend"},
		{"timers": map[string]string{"confirm_within": "438000h0m0s"}},
		{"arbiter": "platform"}, // even the host's own: the host names it
		{"timers": map[string]string{"buyer_extension": "72h0m0s"}},
	} {
		r := h.do(req{method: "POST", path: "/v1/escrows", actor: "mallory", body: terms(extra),
			header: map[string]string{"Idempotency-Key": "open-1"}}).ok(http.StatusForbidden)
		if code := r.refusal().Code; code != "forbidden" {
			t.Errorf("%v: code %q, want forbidden", extra, code)
		}
		if got := r.header.Get("Idempotent-Replayed"); got != "" {
			t.Errorf("%v: Idempotent-Replayed %q on a request the ledger never saw", extra, got)
		}
		if after := h.dump(); !bytes.Equal(before, after) {
			t.Fatalf("%v: a refused open changed the store", extra)
		}
	}
	var e escrow.Escrow
	h.do(req{method: "POST", path: "/v1/escrows", actor: "mallory", body: terms(nil),
		header: map[string]string{"Idempotency-Key": "open-1"}}).ok(http.StatusCreated).into(&e)
	if e.Arbiter != "platform" || e.Timers != escrow.DefaultTimers() {
		t.Errorf("opened with arbiter %q and timers %+v; want the host's", e.Arbiter, e.Timers)
	}

	// A host's Terms sets the arbiter whatever the body says, and refuses
	// a price its listing does not have.
	h.srv.terms = func(r *http.Request, t *escrow.Terms) error {
		t.Arbiter, t.Timers = "platform", escrow.Timers{}
		switch {
		case t.SKU != "lamp-1":
			return fmt.Errorf("%w: no listing %q", escrow.ErrNotFound, t.SKU)
		case !t.Price.Equal(money("59.90")):
			return fmt.Errorf("lamp-1 sells at 59.90, not %s", t.Price)
		}
		return nil
	}
	before = h.dump()
	r := h.do(req{method: "POST", path: "/v1/escrows", actor: "mallory",
		body: terms(map[string]any{"id": "o-2", "sku": "lamp-1", "price": cny("1.00")})}).ok(http.StatusForbidden)
	if msg := r.refusal().Message; msg != "lamp-1 sells at 59.90, not 1.00 CNY" {
		t.Errorf("refused with %q", msg)
	}
	h.do(req{method: "POST", path: "/v1/escrows", actor: "mallory",
		body: terms(map[string]any{"id": "o-2", "sku": "lamp-2"})}).ok(http.StatusNotFound)
	if after := h.dump(); !bytes.Equal(before, after) {
		t.Fatal("an open the host refused changed the store")
	}
	h.do(req{method: "POST", path: "/v1/escrows", actor: "mallory", body: terms(map[string]any{"id": "o-2", "sku": "lamp-1",
		"price": cny("59.90"), "arbiter": "mallorys-friend", "timers": map[string]string{"confirm_within": "438000h0m0s"}})}).
		ok(http.StatusCreated).into(&e)
	if e.Arbiter != "platform" || e.Timers != escrow.DefaultTimers() {
		t.Errorf("opened with arbiter %q and timers %+v; want the host's", e.Arbiter, e.Timers)
	}

	// A Terms that changes the buyer is the host's mistake: nothing opens.
	h.srv.terms = func(r *http.Request, t *escrow.Terms) error { t.Buyer = "teashop"; return nil }
	before = h.dump()
	h.do(req{method: "POST", path: "/v1/escrows", actor: "mallory", body: terms(map[string]any{"id": "o-3"})}).
		ok(http.StatusInternalServerError)
	if after := h.dump(); !bytes.Equal(before, after) {
		t.Fatal("an open whose buyer Terms changed changed the store")
	}
}

// TestTermsErrorBounded: an error of Options.Terms that repeats what the
// buyer sent, such as a SKU of 60 KB no listing has, is cut to the first
// 256 bytes of what it repeats, as every refusal is, whether it wraps one
// of the ledger's errors (and is answered as that error) or not (403);
// and the open changes nothing.
func TestTermsErrorBounded(t *testing.T) {
	h := newHarness(t, &Options{Terms: func(r *http.Request, t *escrow.Terms) error {
		if t.Item != "" {
			return fmt.Errorf("no listing sells %q", t.Item)
		}
		return fmt.Errorf("%w: no listing %q", escrow.ErrNotFound, t.SKU)
	}}, nil)
	h.do(req{method: "POST", path: "/v1/accounts", actor: "mallory"}).ok(http.StatusCreated)
	long := strings.Repeat("s", 60<<10)
	before := h.dump()
	for _, c := range []struct {
		member string
		status int
		code   string
	}{{"sku", http.StatusNotFound, "not_found"}, {"item", http.StatusForbidden, "forbidden"}} {
		r := h.do(req{method: "POST", path: "/v1/escrows", actor: "mallory",
			body: map[string]any{"id": "o-1", "seller": "teashop", "price": cny("1.00"), c.member: long}}).ok(c.status)
		if code := r.refusal().Code; code != c.code {
			t.Errorf("a long %s: code %q, want %q", c.member, code, c.code)
		}
		if len(r.body) > 2048 {
			t.Errorf("a long %s: a refusal of %d bytes: %.300s…", c.member, len(r.body), r.body)
		}
		// The message says how long the host's text was, all of it.
		var n int
		msg := r.refusal().Message
		if i := strings.LastIndex(msg, "… ("); i < 0 {
			t.Errorf("a long %s: %q does not say how long the text was", c.member, msg)
		} else if _, err := fmt.Sscanf(msg[i+len("… ("):], "%d bytes)", &n); err != nil || n < len(long) {
			t.Errorf("a long %s: %q says the text was %d bytes, want at least %d", c.member, msg, n, len(long))
		}
	}
	if !bytes.Equal(before, h.dump()) {
		t.Error("an open the host refused changed the store")
	}
}
