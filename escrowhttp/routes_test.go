package escrowhttp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/shopspring/decimal"
)

// TestEveryRoute calls every route at least once, in trades that take
// every action, and holds each answer to what the document says the route
// answers.
func TestEveryRoute(t *testing.T) {
	h := newHarness(t, nil, &escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")}, Operators: []string{"ops"}})
	doc := h.document()
	v := newValidator(doc)
	call := func(r req, status int) *resp {
		t.Helper()
		res := h.do(r).ok(status)
		_, pattern := h.srv.mux.Handler(h.request(r))
		if err := v.answer(doc, pattern, res); err != nil {
			t.Errorf("%s %s: %v", r.method, r.path, err)
		}
		// A body the route took is one the document says it takes.
		if res.status < 300 {
			if err := v.request(doc, pattern, r.body); err != nil {
				t.Errorf("%s %s: %v", r.method, r.path, err)
			}
		}
		return res
	}
	post := func(path, actor string, body any) req {
		return req{method: "POST", path: path, actor: actor, body: body}
	}
	get := func(path, actor string) req { return req{method: "GET", path: path, actor: actor} }
	ops := func(r req) req { r.operator = true; return r }

	for _, a := range []string{"alice", "shop"} {
		call(post("/v1/accounts", a, nil), http.StatusCreated)
	}
	call(ops(post("/v1/accounts/alice/deposits", "gateway", map[string]any{"amount": cny("500.00")})), http.StatusOK)
	call(ops(post("/v1/accounts/alice/withdrawals", "gateway", map[string]any{"amount": cny("10.00")})), http.StatusOK)
	call(get("/v1/accounts/alice", "alice"), http.StatusOK)
	call(get("/v1/accounts/alice/balances", "alice"), http.StatusOK)
	call(get("/v1/accounts/alice/balances/CNY", "alice"), http.StatusOK)
	call(get("/v1/accounts/alice/journal?after=0&limit=5", "alice"), http.StatusOK)

	open := func(id string, extra map[string]any) {
		terms := map[string]any{"id": id, "seller": "shop", "arbiter": "arb", "price": cny("20.00")}
		for k, x := range extra {
			terms[k] = x
		}
		call(post("/v1/escrows", "alice", terms), http.StatusCreated)
	}
	act := func(id, action, actor string, body any) escrow.Escrow {
		var e escrow.Escrow
		call(post("/v1/escrows/"+id+"/"+action, actor, body), http.StatusOK).into(&e)
		return e
	}
	// Milestones, a refused refund request, a dispute and its resolution.
	open("m1", map[string]any{"price": cny("59.90"), "timers": map[string]string{"ship_within": "48h0m0s"},
		"milestones": []map[string]any{{"name": "tea", "amount": cny("30.00")}, {"name": "pot", "amount": cny("29.90")}}})
	act("m1", "pay", "alice", nil)
	act("m1", "ship", "shop", map[string]string{"tracking": "SF1"})
	act("m1", "confirm_milestone", "alice", map[string]int{"milestone": 0})
	act("m1", "request_refund", "alice", map[string]any{"amount": cny("29.90"), "reason": "the pot broke"})
	act("m1", "refuse_refund", "shop", map[string]string{"reason": "it left whole"})
	act("m1", "dispute", "alice", map[string]string{"reason": "see the photos"})
	if e := act("m1", "resolve", "arb", map[string]any{"buyer": cny("10.00"), "seller": cny("19.90")}); e.State != escrow.Resolved {
		t.Errorf("m1 is %s", e.State)
	}
	// The platform pays out some of the fees it has taken so far.
	var fees escrow.Balance
	call(ops(post("/v1/accounts/@fees/withdrawals", "gateway", map[string]any{"amount": cny("0.10")})), http.StatusOK).into(&fees)
	if fees.Account != escrow.FeeAccount || fees.Available.Units() <= 0 {
		t.Errorf("@fees after paying 0.10 out: %+v", fees)
	}
	// Cancelled before payment; refunded by the seller; refunded on request;
	// confirmed.
	open("c1", nil)
	act("c1", "cancel", "shop", nil)
	open("r1", nil)
	act("r1", "pay", "alice", nil)
	if e := act("r1", "refund", "shop", map[string]any{"amount": cny("20.00")}); e.State != escrow.Refunded {
		t.Errorf("r1 is %s", e.State)
	}
	open("a1", nil)
	act("a1", "pay", "alice", nil)
	act("a1", "ship", "shop", nil)
	act("a1", "request_refund", "alice", map[string]any{"amount": cny("20.00")})
	if e := act("a1", "agree_refund", "shop", nil); e.State != escrow.Refunded {
		t.Errorf("a1 is %s", e.State)
	}
	open("f1", nil)
	act("f1", "pay", "alice", nil)
	act("f1", "ship", "shop", nil)
	act("f1", "confirm", "alice", nil)

	// Shipped in parts, extended by both, returned and refunded.
	open("s1", nil)
	act("s1", "pay", "alice", nil)
	act("s1", "ship_part", "shop", map[string]string{"tracking": "SF2"})
	act("s1", "ship", "shop", map[string]string{"tracking": "SF3"})
	act("s1", "extend", "shop", map[string]string{"by": "24h0m0s"})
	if e := act("s1", "extend", "alice", nil); e.Extended != (escrow.Extensions{Buyer: 72 * time.Hour, Seller: 24 * time.Hour}) {
		t.Errorf("s1 extended %+v", e.Extended)
	}
	act("s1", "request_return", "alice", map[string]any{"amount": cny("20.00"), "reason": "wrong colour"})
	act("s1", "agree_return", "shop", map[string]string{"address": "1 Tea Street"})
	act("s1", "ship_return", "alice", map[string]string{"tracking": "SF4"})
	if e := act("s1", "confirm_return", "shop", nil); e.State != escrow.Refunded || len(e.Shipments) != 1 {
		t.Errorf("s1 is %s with shipments %+v", e.State, e.Shipments)
	}
	// A return cancelled, another refused and disputed, with evidence.
	open("x1", nil)
	act("x1", "pay", "alice", nil)
	act("x1", "ship", "shop", nil)
	act("x1", "request_return", "alice", map[string]any{"amount": cny("20.00")})
	act("x1", "agree_return", "shop", nil)
	act("x1", "cancel_return", "alice", nil)
	act("x1", "request_return", "alice", map[string]any{"amount": cny("20.00")})
	act("x1", "agree_return", "shop", nil)
	act("x1", "ship_return", "alice", nil)
	act("x1", "refuse_return", "shop", map[string]string{"reason": "it came back broken"})
	act("x1", "dispute", "alice", map[string]string{"reason": "it left here whole"})
	act("x1", "add_evidence", "alice", map[string]string{"note": "the courier's photo", "ref": "photos/x1-1.jpg"})
	if e := act("x1", "add_evidence", "arb", map[string]string{"note": "asked the courier"}); len(e.Evidence) != 2 || e.Evidence[1].By != escrow.Arbiter {
		t.Errorf("x1's evidence: %+v", e.Evidence)
	}
	act("x1", "resolve", "arb", map[string]any{"buyer": cny("10.00"), "seller": cny("10.00")})
	// A cart of two, paid at once.
	open("k1", nil)
	open("k2", nil)
	var paid paidCart
	call(post("/v1/carts/pay", "alice", map[string]any{"escrows": []string{"k1", "k2"}}), http.StatusOK).into(&paid)
	if len(paid.Escrows) != 2 || paid.Escrows[1].State != escrow.AwaitingShipment || paid.Escrows[1].Cart != "k1" {
		t.Errorf("the cart paid %+v", paid.Escrows)
	}

	// Ratings: a neutral raised, and answered.
	call(post("/v1/escrows/m1/ratings", "alice", map[string]any{"score": "neutral", "comment": "slow"}), http.StatusCreated)
	var r escrow.Rating
	call(post("/v1/escrows/m1/ratings/alice/revise", "alice", map[string]any{"score": "positive"}), http.StatusOK).into(&r)
	if r.Score != escrow.Positive || r.Original != escrow.Neutral {
		t.Errorf("revised: %+v", r)
	}
	call(post("/v1/escrows/m1/ratings/alice/reply", "shop", map[string]any{"text": "thank you"}), http.StatusOK).into(&r)
	if r.Reply != "thank you" {
		t.Errorf("replied: %+v", r)
	}
	call(post("/v1/escrows/f1/ratings", "alice", map[string]any{"score": "positive"}), http.StatusCreated)
	// A negative withdrawn by its rater, and a positive voided by an
	// operator; neither counts after.
	call(post("/v1/escrows/f1/ratings", "shop", map[string]any{"score": "negative"}), http.StatusCreated)
	call(post("/v1/escrows/f1/ratings/shop/withdraw", "alice", nil), http.StatusForbidden)
	call(post("/v1/escrows/f1/ratings/shop/withdraw", "shop", nil), http.StatusOK).into(&r)
	if !r.Withdrawn || r.Counted {
		t.Errorf("withdrawn: %+v", r)
	}
	call(post("/v1/escrows/f1/ratings/alice/void", "shop", map[string]string{"reason": "brushing"}), http.StatusForbidden)
	call(ops(post("/v1/escrows/f1/ratings/alice/void", "ops", map[string]string{"reason": "brushing"})), http.StatusOK).into(&r)
	if !r.Voided || r.VoidedBy != "ops" || r.Counted {
		t.Errorf("voided: %+v", r)
	}

	var page escrow.EscrowPage
	call(get("/v1/escrows?state=refunded&state=resolved,closed&limit=10", "alice"), http.StatusOK).into(&page)
	if len(page.Escrows) != 6 {
		t.Errorf("%d escrows refunded, resolved or closed, want 6", len(page.Escrows))
	}
	call(get("/v1/escrows/m1", "arb"), http.StatusOK)
	call(get("/v1/escrows/m1/history", "shop"), http.StatusOK)
	call(get("/v1/reputation/shop", "alice"), http.StatusOK)
	call(get("/v1/reputation/shop/ratings?limit=1", "alice"), http.StatusOK)
	call(get("/v1/reputation/shop/concentration", "alice"), http.StatusOK)
	call(get("/v1/reputation/nobody/concentration", "alice"), http.StatusOK)
	call(get("/v1/top-sellers", "alice"), http.StatusOK)
	call(ops(get("/v1/events?after=0&limit=5", "ops")), http.StatusOK)
	call(ops(get("/v1/events?after=0&wait=1ms", "ops")), http.StatusOK)

	// The stream, until its request ends: every event so far, each with
	// its seq.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	sr := ops(get("/v1/events/stream", "ops"))
	sr.ctx = ctx
	res := call(sr, http.StatusOK)
	last := must(h.l.Events(h.ctx, 0, eventLimit))
	var ids []string
	for _, line := range strings.Split(string(res.body), "\n") {
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) != len(last) || ids[len(ids)-1] != fmt.Sprint(last[len(last)-1].Seq) {
		t.Errorf("the stream sent ids %v; the ledger has %d events", ids, len(last))
	}

	for _, rt := range routes {
		if !h.hit[rt.method+" "+rt.path] {
			t.Errorf("no request reached %s %s", rt.method, rt.path)
		}
	}
	if err := h.l.Check(h.ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNoRoute: 404 and 405 answer JSON, 405 with the methods the path
// takes.
func TestNoRoute(t *testing.T) {
	h := newHarness(t, nil, nil)
	r := h.do(req{method: "PUT", path: "/v1/escrows", actor: "alice"}).ok(http.StatusMethodNotAllowed)
	if got := r.header.Get("Allow"); got != "GET, HEAD, POST" {
		t.Errorf("Allow %q", got)
	}
	if e := r.refusal(); e.Code != "method_not_allowed" {
		t.Errorf("code %q", e.Code)
	}
	r = h.do(req{method: "GET", path: "/v1/escrows/e1/pay", actor: "alice"}).ok(http.StatusMethodNotAllowed)
	if got := r.header.Get("Allow"); got != "POST" {
		t.Errorf("Allow %q", got)
	}
	for _, path := range []string{"/", "/v1", "/v1/escrows/e1/fly", "/v1/accounts/a/b/c/d"} {
		if e := h.do(req{method: "GET", path: path, actor: "alice"}).ok(http.StatusNotFound).refusal(); e.Code != "route_not_found" {
			t.Errorf("%s: code %q", path, e.Code)
		}
	}
	// Every answer, refusals too, says no cache may keep it.
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
}
