package escrowhttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// refusalFixture is a ledger in which every refusal can be provoked:
//
//   - accounts alice (100.00 CNY), bob (nothing) and shop;
//   - "unpaid", opened by alice with the key k1; "bobs", bought by bob from alice;
//     "paid", paid by alice;
//     "noarb", paid, with no arbiter; "done", completed and rated by
//     alice, whose one-hour rating window has closed.
func refusalFixture(t *testing.T, opts *Options) *harness {
	h := newHarness(t, opts, &escrow.Options{Reputation: escrow.ReputationPolicy{Window: time.Hour}})
	for _, a := range []string{"alice", "bob", "shop"} {
		h.do(req{method: "POST", path: "/v1/accounts", actor: a}).ok(http.StatusCreated)
	}
	must(h.l.Deposit(h.ctx, "alice", money("100.00")))
	open := func(id, key string) {
		arbiter := "arb"
		if id == "noarb" {
			arbiter = ""
		}
		r := req{method: "POST", path: "/v1/escrows", actor: "alice",
			body: map[string]any{"id": id, "seller": "shop", "arbiter": arbiter, "price": cny("10.00")}}
		if key != "" {
			r.header = map[string]string{"Idempotency-Key": key}
		}
		h.do(r).ok(http.StatusCreated)
	}
	open("unpaid", "k1")
	h.do(req{method: "POST", path: "/v1/escrows", actor: "bob",
		body: map[string]any{"id": "bobs", "seller": "alice", "price": cny("10.00")}}).ok(http.StatusCreated)
	for _, id := range []string{"paid", "noarb", "done"} {
		open(id, "")
		must(h.l.Pay(h.ctx, id, "alice"))
	}
	must(h.l.Ship(h.ctx, "done", "shop", ""))
	must(h.l.Confirm(h.ctx, "done", "alice"))
	must(h.l.Rate(h.ctx, "done", "alice", escrow.RatingInput{Score: escrow.Positive}))
	h.clock.Advance(2 * time.Hour)
	return h
}

// A refusalCase is one request that must be refused.
type refusalCase struct {
	name    string
	r       req
	status  int
	code    string
	details map[string]any // if not nil, what the details must hold
	fault   error          // the store fails with it while the request runs
}

// TestRefusals holds every class of refusal to its status and code, and
// checks that a refused request changes nothing in the store.
func TestRefusals(t *testing.T) {
	big := `{"tracking":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), start)
	defer cancel2()
	post := func(path, actor string, body any) req {
		return req{method: "POST", path: path, actor: actor, body: body}
	}
	get := func(path, actor string) req { return req{method: "GET", path: path, actor: actor} }
	ops := func(r req) req { r.operator = true; return r }
	withHeader := func(r req, k, v string) req { r.header = map[string]string{k: v}; return r }
	chunked := func(r req) req { r.chunked = true; return r }

	cases := []refusalCase{
		// 404
		{name: "no such escrow", r: get("/v1/escrows/nope", "alice"), status: 404, code: "not_found",
			details: map[string]any{"kind": "escrow", "id": "nope"}},
		{name: "action on no escrow", r: post("/v1/escrows/nope/pay", "alice", nil), status: 404, code: "not_found"},
		{name: "no such account", r: ops(get("/v1/accounts/nobody", "ops")), status: 404, code: "not_found",
			details: map[string]any{"kind": "account", "id": "nobody"}},
		{name: "seller with no account", r: post("/v1/escrows", "alice", map[string]any{"id": "t", "seller": "ghost", "price": cny("1.00")}),
			status: 404, code: "not_found", details: map[string]any{"kind": "account", "id": "ghost"}},
		{name: "revise on no escrow", r: post("/v1/escrows/nope/ratings/alice/revise", "bob", map[string]any{"score": "positive"}),
			status: 404, code: "not_found"},
		{name: "withdraw on no escrow", r: post("/v1/escrows/nope/ratings/alice/withdraw", "bob", nil), status: 404, code: "not_found"},
		{name: "revise own on no escrow", r: post("/v1/escrows/nope/ratings/alice/revise", "alice", map[string]any{"score": "positive"}),
			status: 404, code: "not_found"},
		{name: "no such rating", r: post("/v1/escrows/done/ratings/shop/reply", "alice", map[string]string{"text": "hi"}), status: 404, code: "not_found",
			details: map[string]any{"kind": "rating", "id": "done", "rater": "shop"}},
		{name: "no such route", r: get("/v2/escrows", "alice"), status: 404, code: "route_not_found"},
		{name: "empty segment", r: get("/v1//escrows/paid", "alice"), status: 404, code: "route_not_found"},
		{name: "dot segment", r: get("/v1/escrows/../escrows/paid", "alice"), status: 404, code: "route_not_found"},
		{name: "dot segment in an action", r: post("/v1/escrows/./paid/ship", "shop", nil), status: 404, code: "route_not_found"},
		// 405
		{name: "method", r: req{method: "DELETE", path: "/v1/escrows/paid", actor: "alice"}, status: 405, code: "method_not_allowed"},
		// 409
		{name: "wrong state", r: post("/v1/escrows/unpaid/ship", "shop", nil), status: 409, code: "invalid_transition",
			details: map[string]any{"escrow": "unpaid", "action": "ship", "state": "awaiting_payment"}},
		{name: "account exists", r: post("/v1/accounts", "alice", nil), status: 409, code: "already_exists"},
		{name: "escrow exists", r: post("/v1/escrows", "alice", map[string]any{"id": "paid", "seller": "shop", "price": cny("1.00")}),
			status: 409, code: "already_exists"},
		{name: "rated twice", r: post("/v1/escrows/done/ratings", "alice", map[string]any{"score": "positive"}), status: 409, code: "already_rated"},
		{name: "rating closed", r: post("/v1/escrows/done/ratings", "shop", map[string]any{"score": "positive"}), status: 409, code: "rating_closed"},
		{name: "no arbiter", r: post("/v1/escrows/noarb/dispute", "alice", map[string]any{"reason": "late"}), status: 409, code: "no_arbiter"},
		{name: "key reused by its actor", r: withHeader(post("/v1/escrows/unpaid/pay", "alice", nil), "Idempotency-Key", "k1"), status: 409,
			code: "idempotency_mismatch", details: map[string]any{"key": "k1", "call": "open", "escrow": "unpaid"}},
		{name: "conflict", r: post("/v1/escrows/paid/ship", "shop", nil), fault: escrow.ErrConflict, status: 409, code: "conflict"},
		{name: "cart refused", r: post("/v1/carts/pay", "alice", map[string]any{"escrows": []string{"unpaid", "paid", "nope"}}),
			status: 409, code: "cart_refused", details: map[string]any{"size": 3, "refused": []map[string]any{
				{"escrow": "paid", "code": "invalid_transition", "message": `escrow: cannot pay escrow "paid" in state AwaitingShipment`,
					"details": map[string]any{"escrow": "paid", "action": "pay", "state": "awaiting_shipment"}},
				{"escrow": "nope", "code": "not_found", "message": `escrow: not found: escrow "nope"`,
					"details": map[string]any{"kind": "escrow", "id": "nope"}}}}},
		{name: "cart of another's", r: post("/v1/carts/pay", "shop", map[string]any{"escrows": []string{"unpaid"}}),
			status: 409, code: "cart_refused", details: map[string]any{"refused": []map[string]any{
				{"escrow": "unpaid", "code": "not_party", "message": `escrow: "shop" may not pay escrow "unpaid": only the buyer may`,
					"details": map[string]any{"escrow": "unpaid", "action": "pay", "actor": "shop"}}}}},
		{name: "ship part, unpaid", r: post("/v1/escrows/unpaid/ship_part", "shop", map[string]string{"tracking": "SF1"}), status: 409, code: "invalid_transition"},
		{name: "extend before shipment", r: post("/v1/escrows/paid/extend", "alice", nil), status: 409, code: "invalid_transition",
			details: map[string]any{"action": "extend", "state": "awaiting_shipment"}},
		{name: "request return before shipment", r: post("/v1/escrows/paid/request_return", "alice", map[string]any{"amount": cny("10.00")}),
			status: 409, code: "invalid_transition"},
		{name: "confirm return, none shipped", r: post("/v1/escrows/paid/confirm_return", "shop", nil), status: 409, code: "invalid_transition"},
		{name: "refuse return, none shipped", r: post("/v1/escrows/paid/refuse_return", "shop", map[string]string{"reason": "no"}), status: 409, code: "invalid_transition"},
		{name: "cancel return, none asked", r: post("/v1/escrows/paid/cancel_return", "alice", nil), status: 409, code: "invalid_transition"},
		{name: "evidence, no dispute", r: post("/v1/escrows/paid/add_evidence", "arb", map[string]string{"note": "n"}), status: 409, code: "invalid_transition"},
		// 403
		{name: "wrong party", r: post("/v1/escrows/unpaid/pay", "shop", nil), status: 403, code: "not_party",
			details: map[string]any{"escrow": "unpaid", "action": "pay", "actor": "shop"}},
		{name: "stranger acts", r: post("/v1/escrows/paid/dispute", "bob", nil), status: 403, code: "not_party"},
		{name: "buyer agrees to a return", r: post("/v1/escrows/paid/agree_return", "alice", nil), status: 403, code: "not_party"},
		{name: "seller ships a return", r: post("/v1/escrows/paid/ship_return", "shop", nil), status: 403, code: "not_party"},
		{name: "cart for another buyer", r: post("/v1/carts/pay", "alice", map[string]any{"buyer": "bob", "escrows": []string{"unpaid"}}),
			status: 403, code: "forbidden"},
		{name: "stranger reads escrow", r: get("/v1/escrows/paid", "bob"), status: 403, code: "not_party"},
		{name: "stranger reads history", r: get("/v1/escrows/paid/history", "bob"), status: 403, code: "not_party"},
		{name: "stranger rates", r: post("/v1/escrows/done/ratings", "bob", map[string]any{"score": "negative"}), status: 403, code: "not_party"},
		{name: "revise for another", r: post("/v1/escrows/done/ratings/alice/revise", "shop", map[string]any{"score": "positive"}),
			status: 403, code: "not_party"},
		{name: "withdraw for another", r: post("/v1/escrows/done/ratings/alice/withdraw", "bob", nil), status: 403, code: "not_party"},
		{name: "reply for another", r: post("/v1/escrows/done/ratings/alice/reply", "bob", map[string]any{"text": "hi"}),
			status: 403, code: "not_party"},
		{name: "stranger reads account", r: get("/v1/accounts/alice", "bob"), status: 403, code: "forbidden"},
		{name: "stranger reads missing account", r: get("/v1/accounts/nobody", "bob"), status: 403, code: "forbidden"},
		{name: "fee account read by an actor of its name", r: get("/v1/accounts/@fees/balances", "@fees"), status: 403, code: "forbidden"},
		{name: "world account read by an actor of its name", r: get("/v1/accounts/@world/journal", "@world"), status: 403, code: "forbidden"},
		{name: "stranger reads balances", r: get("/v1/accounts/alice/balances", "bob"), status: 403, code: "forbidden"},
		{name: "stranger reads balance", r: get("/v1/accounts/alice/balances/CNY", "bob"), status: 403, code: "forbidden"},
		{name: "stranger reads journal", r: get("/v1/accounts/alice/journal", "bob"), status: 403, code: "forbidden"},
		{name: "stranger lists escrows", r: get("/v1/escrows?party=alice", "bob"), status: 403, code: "forbidden"},
		{name: "deposit, not an operator", r: post("/v1/accounts/alice/deposits", "alice", map[string]any{"amount": cny("5.00")}),
			status: 403, code: "forbidden"},
		{name: "withdraw, not an operator", r: post("/v1/accounts/alice/withdrawals", "alice", map[string]any{"amount": cny("5.00")}),
			status: 403, code: "forbidden"},
		{name: "events, not an operator", r: get("/v1/events", "alice"), status: 403, code: "forbidden"},
		{name: "stream, not an operator", r: get("/v1/events/stream", "alice"), status: 403, code: "forbidden"},
		{name: "open for another buyer", r: post("/v1/escrows", "bob", map[string]any{"id": "x", "buyer": "alice", "seller": "shop", "price": cny("1.00")}),
			status: 403, code: "forbidden"},
		// 401
		{name: "no actor", r: get("/v1/escrows", ""), status: 401, code: "unauthenticated"},
		{name: "empty actor", r: withHeader(get("/v1/escrows", ""), "X-Actor", " "), status: 401, code: "unauthenticated"},
		// 422
		{name: "negative amount", r: ops(post("/v1/accounts/alice/deposits", "ops", map[string]any{"amount": cny("-1.00")})),
			status: 422, code: "invalid_amount"},
		{name: "zero amount", r: ops(post("/v1/accounts/alice/deposits", "ops", map[string]any{"amount": cny("0.00")})),
			status: 422, code: "invalid_amount"},
		{name: "too large", r: ops(post("/v1/accounts/alice/deposits", "ops", map[string]any{"amount": cny("10000000000000000.00")})),
			status: 422, code: "amount_too_large"},
		{name: "unknown currency", r: ops(post("/v1/accounts/alice/deposits", "ops",
			map[string]any{"amount": map[string]string{"amount": "1.00", "currency": "XYZ"}})),
			status: 422, code: "unknown_currency", details: map[string]any{"currency": "XYZ"}},
		{name: "decimal places", r: ops(post("/v1/accounts/alice/deposits", "ops", map[string]any{"amount": cny("1.555")})),
			status: 422, code: "invalid_amount", details: map[string]any{"field": "amount", "amount": "1.555", "currency": "CNY"}},
		{name: "decimal places of a part", r: post("/v1/escrows/paid/resolve", "arb", map[string]any{"buyer": cny("5.001"), "seller": cny("5.00")}),
			status: 422, code: "invalid_amount", details: map[string]any{"field": "buyer"}},
		{name: "amount a number", r: ops(post("/v1/accounts/alice/deposits", "ops", `{"amount":{"amount":1.50,"currency":"CNY"}}`)),
			status: 400, code: "invalid_json", details: map[string]any{"field": "amount.amount", "expected": "string", "got": "number"}},
		{name: "price's amount a number", r: post("/v1/escrows", "alice", `{"id":"t","seller":"shop","price":{"amount":5,"currency":"CNY"}}`),
			status: 400, code: "invalid_json", details: map[string]any{"field": "price.amount", "expected": "string", "got": "number"}},
		{name: "price's currency a number", r: post("/v1/escrows", "alice", `{"id":"t","seller":"shop","price":{"amount":"5.00","currency":156}}`),
			status: 400, code: "invalid_json", details: map[string]any{"field": "price.currency", "expected": "string", "got": "number"}},
		{name: "price a number", r: post("/v1/escrows", "alice", `{"id":"t","seller":"shop","price":5}`),
			status: 400, code: "invalid_json", details: map[string]any{"field": "price", "expected": "object", "got": "number"}},
		{name: "milestone's amount a boolean", r: post("/v1/escrows", "alice",
			`{"id":"t","seller":"shop","price":{"amount":"5.00","currency":"CNY"},"milestones":[{"name":"a","amount":{"amount":true,"currency":"CNY"}}]}`),
			status: 400, code: "invalid_json", details: map[string]any{"field": "milestones[0].amount.amount", "expected": "string", "got": "bool"}},
		{name: "unknown currency read", r: get("/v1/accounts/alice/balances/XYZ", "alice"), status: 422, code: "unknown_currency"},
		{name: "currency mismatch", r: post("/v1/escrows/paid/refund", "shop", map[string]any{"amount": map[string]string{"amount": "1.00", "currency": "USD"}}),
			status: 422, code: "currency_mismatch"},
		// 402
		{name: "cart short of funds", r: post("/v1/carts/pay", "bob", map[string]any{"escrows": []string{"bobs"}}),
			status: 402, code: "insufficient_funds", details: map[string]any{"account": "bob", "needed": cny("10.00"), "available": cny("0.00")}},
		{name: "insufficient funds", r: ops(post("/v1/accounts/alice/withdrawals", "ops", map[string]any{"amount": cny("1000.00")})),
			status: 402, code: "insufficient_funds",
			details: map[string]any{"account": "alice", "needed": cny("1000.00"), "available": cny("70.00")}},
		// 400
		{name: "unknown state", r: get("/v1/escrows?state=lost", "alice"), status: 400, code: "invalid_argument",
			details: map[string]any{"type": "state", "text": "lost"}},
		{name: "empty state", r: get("/v1/escrows?state=awaiting_shipment,", "alice"), status: 400, code: "invalid_argument"},
		{name: "unknown role", r: get("/v1/escrows?role=thief", "alice"), status: 400, code: "invalid_argument"},
		{name: "unknown rank key", r: get("/v1/top-sellers?by=luck", "alice"), status: 400, code: "invalid_argument"},
		{name: "limit 0", r: get("/v1/escrows?limit=0", "alice"), status: 400, code: "invalid_argument"},
		{name: "limit too big", r: get("/v1/reputation/shop/ratings?limit=101", "alice"), status: 400, code: "invalid_argument"},
		{name: "limit with a sign", r: get("/v1/escrows?limit=%2B5", "alice"), status: 400, code: "invalid_argument"},
		{name: "system account's concentration", r: get("/v1/reputation/%40fees/concentration", "alice"), status: 400, code: "invalid_argument"},
		{name: "bad cursor", r: get("/v1/escrows?cursor=nonsense", "alice"), status: 400, code: "invalid_argument"},
		{name: "bad after", r: get("/v1/accounts/alice/journal?after=-1", "alice"), status: 400, code: "invalid_argument"},
		{name: "bad wait", r: ops(get("/v1/events?wait=forever", "ops")), status: 400, code: "invalid_argument"},
		{name: "bad Last-Event-ID", r: ops(withHeader(get("/v1/events/stream", "ops"), "Last-Event-ID", "x")), status: 400, code: "invalid_argument"},
		{name: "unknown parameter", r: get("/v1/escrows?stat=paid", "alice"), status: 400, code: "unknown_field",
			details: map[string]any{"parameter": "stat"}},
		{name: "unknown parameter of the top sellers", r: get("/v1/top-sellers?limt=5", "alice"), status: 400, code: "unknown_field",
			details: map[string]any{"parameter": "limt"}},
		{name: "parameter twice", r: get("/v1/escrows?limit=1&limit=2", "alice"), status: 400, code: "invalid_argument"},
		{name: "parameters split by a semicolon", r: get("/v1/escrows?state=completed;role=seller", "alice"), status: 400, code: "invalid_argument"},
		{name: "bad escape in a parameter", r: get("/v1/escrows?state=%zz", "alice"), status: 400, code: "invalid_argument"},
		{name: "bad escape in a parameter's name", r: get("/v1/top-sellers?b%zzy=luck", "alice"), status: 400, code: "invalid_argument"},
		{name: "bad escape in an operator's filter", r: ops(get("/v1/escrows?party=shop%zz", "ops")), status: 400, code: "invalid_argument"},
		{name: "empty key", r: withHeader(post("/v1/escrows/paid/ship", "shop", nil), "Idempotency-Key", " "), status: 400, code: "invalid_argument"},
		{name: "no milestone", r: post("/v1/escrows/paid/confirm_milestone", "alice", nil), status: 400, code: "invalid_argument"},
		{name: "milestone a string", r: post("/v1/escrows/paid/confirm_milestone", "alice", `{"milestone":"0"}`), status: 400, code: "invalid_json",
			details: map[string]any{"field": "milestone", "expected": "integer", "got": "string"}},
		{name: "milestone a fraction", r: post("/v1/escrows/paid/confirm_milestone", "alice", `{"milestone":0.5}`), status: 400, code: "invalid_json",
			details: map[string]any{"field": "milestone", "expected": "integer", "got": "number"}},
		{name: "milestone past a float", r: post("/v1/escrows/paid/confirm_milestone", "alice", `{"milestone":1e400}`), status: 400, code: "invalid_json",
			details: map[string]any{"field": "milestone", "expected": "integer", "got": "number"}},
		{name: "milestone with an exponent", r: post("/v1/escrows/paid/confirm_milestone", "alice", `{"milestone":1e0}`), status: 400, code: "invalid_json",
			details: map[string]any{"field": "milestone", "expected": "integer", "got": "number"}},
		{name: "detail score past its type", r: post("/v1/escrows/done/ratings", "shop", `{"score":"positive","details":{"described":300}}`),
			status: 400, code: "invalid_json", details: map[string]any{"field": "details.described", "expected": "integer", "got": "number"}},
		{name: "extension a number", r: post("/v1/escrows/paid/extend", "alice", `{"by":72}`), status: 400, code: "invalid_json",
			details: map[string]any{"field": "by", "expected": "string", "got": "number"}},
		{name: "extension not a duration", r: post("/v1/escrows/paid/extend", "alice", map[string]string{"by": "3 days"}), status: 400, code: "invalid_argument"},
		{name: "negative extension", r: post("/v1/escrows/paid/extend", "alice", map[string]string{"by": "-1h"}), status: 400, code: "invalid_argument"},
		{name: "evidence without a note", r: post("/v1/escrows/paid/add_evidence", "alice", nil), status: 400, code: "invalid_argument"},
		{name: "empty cart", r: post("/v1/carts/pay", "alice", map[string]any{"escrows": []string{}}), status: 400, code: "invalid_argument"},
		{name: "escrow twice in a cart", r: post("/v1/carts/pay", "alice", map[string]any{"escrows": []string{"unpaid", "unpaid"}}),
			status: 400, code: "invalid_argument"},
		{name: "bad score", r: post("/v1/escrows/done/ratings", "shop", map[string]any{"score": "great"}), status: 400, code: "invalid_argument",
			details: map[string]any{"type": "score", "text": "great"}},
		{name: "bad timer", r: post("/v1/escrows", "alice", map[string]any{"id": "t", "seller": "shop", "price": cny("1.00"),
			"timers": map[string]any{"pay_within": 72}}), status: 400, code: "invalid_json",
			details: map[string]any{"field": "timers.pay_within", "expected": "string", "got": "number"}},
		{name: "control character", r: post("/v1/escrows/paid/dispute", "alice", map[string]any{"reason": "a\u202eb"}), status: 400, code: "invalid_argument"},
		{name: "not UTF-8", r: post("/v1/escrows", "alice", "{\"id\":\"u\xff1\",\"seller\":\"shop\",\"price\":{\"amount\":\"1.00\",\"currency\":\"CNY\"}}"),
			status: 400, code: "invalid_json", details: map[string]any{"offset": 8}},
		{name: "not UTF-8 in a reason", r: post("/v1/escrows/paid/dispute", "alice", "{\"reason\":\"\xe4\xb8\"}"),
			status: 400, code: "invalid_json", details: map[string]any{"offset": 11}},
		{name: "lone surrogate", r: post("/v1/escrows", "alice", `{"id":"u\ud8001","seller":"shop","price":{"amount":"1.00","currency":"CNY"}}`),
			status: 400, code: "invalid_json", details: map[string]any{"offset": 8}},
		{name: "low surrogate first", r: post("/v1/escrows/paid/dispute", "alice", `{"reason":"\\\udc00\ud800"}`),
			status: 400, code: "invalid_json", details: map[string]any{"offset": 13}},
		{name: "syntax", r: post("/v1/escrows/paid/ship", "shop", `{"tracking":`), status: 400, code: "invalid_json"},
		{name: "not JSON", r: post("/v1/escrows/paid/ship", "shop", `tracking=1`), status: 400, code: "invalid_json"},
		{name: "not an object", r: post("/v1/escrows/paid/ship", "shop", `["x"]`), status: 400, code: "invalid_json"},
		{name: "null", r: post("/v1/escrows/paid/dispute", "alice", `null`), status: 400, code: "invalid_json"},
		{name: "null for terms", r: post("/v1/escrows", "alice", ` null `), status: 400, code: "invalid_json"},
		{name: "two values", r: post("/v1/escrows/paid/ship", "shop", `{} {}`), status: 400, code: "invalid_json"},
		{name: "wrong type", r: post("/v1/escrows/paid/ship", "shop", `{"tracking":5}`), status: 400, code: "invalid_json",
			details: map[string]any{"field": "tracking", "expected": "string", "got": "number"}},
		{name: "unknown field", r: post("/v1/escrows/paid/ship", "shop", `{"trackin":"SF1"}`), status: 400, code: "unknown_field",
			details: map[string]any{"field": "trackin"}},
		{name: "member twice", r: post("/v1/escrows/paid/ship", "shop", `{"tracking":"SF1","tracking":"SF2"}`), status: 400, code: "invalid_json",
			details: map[string]any{"field": "tracking"}},
		{name: "member twice, once escaped", r: post("/v1/escrows/paid/ship", "shop", `{"tracking":"SF1","\u0074racking":"SF2"}`),
			status: 400, code: "invalid_json", details: map[string]any{"field": "tracking"}},
		{name: "amount twice in an amount", r: ops(post("/v1/accounts/alice/deposits", "ops", `{"amount":{"amount":"1.00","currency":"CNY","amount":"90.00"}}`)),
			status: 400, code: "invalid_json", details: map[string]any{"field": "amount.amount"}},
		{name: "price twice", r: post("/v1/escrows", "alice", `{"id":"t","seller":"shop","price":{"amount":"1.00","currency":"CNY"},"price":{"amount":"2.00","currency":"CNY"}}`),
			status: 400, code: "invalid_json", details: map[string]any{"field": "price"}},
		{name: "metadata key twice", r: post("/v1/escrows", "alice", `{"id":"t","seller":"shop","price":{"amount":"1.00","currency":"CNY"},"metadata":{"a":"1","a":"2"}}`),
			status: 400, code: "invalid_json", details: map[string]any{"field": "metadata.a"}},
		{name: "member twice in a milestone", r: post("/v1/escrows", "alice", `{"id":"t","seller":"shop","price":{"amount":"1.00","currency":"CNY"},"milestones":[{"name":"a","amount":null},{"name":"b","name":"c","amount":null}]}`),
			status: 400, code: "invalid_json", details: map[string]any{"field": "milestones[1].name"}},
		{name: "field of another case", r: post("/v1/escrows/paid/ship", "shop", `{"Tracking":"SF1"}`), status: 400, code: "unknown_field"},
		{name: "unknown field in an amount", r: post("/v1/escrows/paid/refund", "shop", `{"amount":{"amount":"1.00","currency":"CNY","note":"x"}}`),
			status: 400, code: "unknown_field", details: map[string]any{"field": "amount.note"}},
		{name: "unknown field in timers", r: post("/v1/escrows", "alice", `{"id":"t","seller":"shop","price":{"amount":"1.00","currency":"CNY"},"timers":{"ship_witin":"1h"}}`),
			status: 400, code: "unknown_field", details: map[string]any{"field": "timers.ship_witin"}},
		{name: "unknown field in a milestone", r: post("/v1/escrows", "alice", `{"id":"t","seller":"shop","price":{"amount":"1.00","currency":"CNY"},"milestones":[{"name":"a","amount":null,"due":1}]}`),
			status: 400, code: "unknown_field", details: map[string]any{"field": "milestones[0].due"}},
		// 413, 415
		{name: "body too large", r: post("/v1/escrows/paid/ship", "shop", big), status: 413, code: "body_too_large",
			details: map[string]any{"limit": float64(DefaultMaxBodyBytes)}},
		{name: "body too large, no length", r: chunked(post("/v1/escrows/paid/ship", "shop", big)), status: 413, code: "body_too_large"},
		{name: "form", r: withHeader(post("/v1/escrows/paid/pay", "alice", nil), "Content-Type", "application/x-www-form-urlencoded"),
			status: 415, code: "unsupported_media_type"},
		{name: "no content type", r: withHeader(post("/v1/escrows/paid/pay", "alice", nil), "Content-Type", ""), status: 415, code: "unsupported_media_type"},
		// 503, 500
		{name: "closed", r: get("/v1/escrows/paid", "alice"), fault: escrow.ErrClosed, status: 503, code: "closed"},
		{name: "read-only", r: post("/v1/escrows/paid/ship", "shop", nil), fault: escrow.ErrReadOnly, status: 503, code: "read_only"},
		{name: "canceled", r: req{method: "POST", path: "/v1/escrows/paid/ship", actor: "shop", ctx: canceled}, status: 503, code: "canceled"},
		{name: "timed out", r: req{method: "GET", path: "/v1/reputation/shop", actor: "shop", ctx: expired}, status: 503, code: "timeout"},
		{name: "internal", r: get("/v1/escrows/paid", "alice"), fault: errors.New("disk on fire at /var/secret"), status: 500, code: "internal"},
	}
	h := refusalFixture(t, nil)
	doc := h.document()
	v := newValidator(doc)
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.t = t
			before := h.dump()
			h.store.fail(c.fault)
			r := h.do(c.r)
			h.store.fail(nil)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			got := r.refusal()
			if got.Code != c.code || got.Message == "" {
				t.Errorf("code %q, message %q; want code %q", got.Code, got.Message, c.code)
			}
			seen[got.Code] = true
			// A refusal by a route is one the document lists for it.
			if _, pattern := h.srv.mux.Handler(h.request(c.r)); pattern != "/" {
				if err := v.answer(doc, pattern, r); err != nil {
					t.Error(err)
				}
			}
			if strings.Contains(got.Message, "a number, not a number") {
				t.Errorf("the message contradicts itself: %q", got.Message)
			}
			if r.status == 500 && (got.Message != "internal error" || bytes.Contains(r.body, []byte("secret"))) {
				t.Errorf("a 500 tells the client %s", r.body)
			}
			for k, want := range c.details {
				if d := cmp.Diff(jsonOf(t, want), jsonOf(t, got.Details[k])); d != "" {
					t.Errorf("details[%q] (-want +got):\n%s", k, d)
				}
			}
			if !bytes.Equal(before, h.dump()) {
				t.Errorf("a refused request changed the store")
			}
		})
	}
	h.t = t
	if logged := h.logged.String(); !strings.Contains(logged, "disk on fire") {
		t.Errorf("the internal error was not logged: %q", logged)
	}
	for _, c := range classes {
		if c.code != "rate_limited" && !seen[c.code] {
			t.Errorf("no case answers %s (TestLimits answers rate_limited)", c.code)
		}
	}
}

// jsonOf returns v as JSON decodes it into any, to compare values that
// went through JSON with values that did not.
func jsonOf(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCodesAreTheLedgers: every class that answers a ledger's sentinel
// uses the ledger's own code for it, so a client sees one word for one
// refusal whether it came through this API or from escrow.Code.
func TestCodesAreTheLedgers(t *testing.T) {
	for _, c := range classes {
		if c.err != nil && c.code != escrow.Code(c.err) {
			t.Errorf("class %q answers %v, whose code is %q", c.code, c.err, escrow.Code(c.err))
		}
	}
}

// TestBodyUnicode: escapes that make whole characters are read as they
// are, beside the refusals of TestRefusals for those that do not.
func TestBodyUnicode(t *testing.T) {
	h := refusalFixture(t, nil)
	// A surrogate pair, and a backslash escaped before "ud800", which is
	// then no escape.
	r := h.do(req{method: "POST", path: "/v1/escrows/paid/ship", actor: "shop", body: `{"tracking":"\ud83d\ude00 \\ud800"}`}).ok(http.StatusOK)
	var e escrow.Escrow
	r.into(&e)
	if want := "\U0001F600 \\ud800"; e.Tracking != want {
		t.Errorf("tracking %q, want %q", e.Tracking, want)
	}
}

// TestCurrencyCodeNotKnown: a currency code the ledger does not know is
// a value refused, 422 unknown_currency naming the field, however it is
// spelt: "cny" as "XYZ" is, and as it is in a path. A currency left out
// of an amount is a malformed body (400). Nothing changes.
func TestCurrencyCodeNotKnown(t *testing.T) {
	h := refusalFixture(t, nil)
	amount := func(code string) map[string]string { return map[string]string{"amount": "1.00", "currency": code} }
	for _, c := range []struct {
		name   string
		r      req
		status int
		code   string
		field  string
	}{
		{"lower case in a deposit", req{method: "POST", path: "/v1/accounts/alice/deposits", actor: "ops", operator: true,
			body: map[string]any{"amount": amount("cny")}}, 422, "unknown_currency", "amount"},
		{"mixed case in a price", req{method: "POST", path: "/v1/escrows", actor: "alice",
			body: map[string]any{"id": "t", "seller": "shop", "price": amount("Cny")}}, 422, "unknown_currency", "price"},
		{"lower case in a milestone", req{method: "POST", path: "/v1/escrows", actor: "alice",
			body: map[string]any{"id": "t", "seller": "shop", "price": cny("1.00"),
				"milestones": []any{map[string]any{"name": "a", "amount": amount("cny")}}}}, 422, "unknown_currency", "milestones[0].amount"},
		{"empty code in a refund", req{method: "POST", path: "/v1/escrows/paid/refund", actor: "shop",
			body: map[string]any{"amount": amount("")}}, 422, "unknown_currency", "amount"},
		{"a code too long", req{method: "POST", path: "/v1/escrows/paid/refund", actor: "shop",
			body: map[string]any{"amount": amount("ABCDEFGHIJKLMN")}}, 422, "unknown_currency", "amount"},
		{"lower case in a path", req{method: "GET", path: "/v1/accounts/alice/balances/cny", actor: "alice"}, 422, "unknown_currency", ""},
		{"no currency", req{method: "POST", path: "/v1/escrows/paid/refund", actor: "shop",
			body: `{"amount":{"amount":"1.00"}}`}, 400, "invalid_argument", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.t = t
			before := h.dump()
			r := h.do(c.r)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			got := r.refusal()
			if got.Code != c.code {
				t.Errorf("code %q, want %q: %s", got.Code, c.code, r.body)
			}
			if c.field != "" && got.Details["field"] != c.field {
				t.Errorf("details %v, want field %q", got.Details, c.field)
			}
			if !bytes.Equal(before, h.dump()) {
				t.Errorf("a refused request changed the store")
			}
		})
	}
}

// TestRefusalsBounded: a refusal names a value the client sent by its
// first bytes and its length, in its message and its details, so that a
// body of 60 KB or a query of a megabyte is not sent back whole; what it
// refuses and why are as they would be for a short value. Nothing
// changes.
func TestRefusalsBounded(t *testing.T) {
	h := refusalFixture(t, nil)
	long := strings.Repeat("9", 60<<10)
	word := strings.Repeat("w", 60<<10)
	query := strings.Repeat("q", 1<<20)
	ops := func(r req) req { r.operator = true; r.actor = "ops"; return r }
	for _, c := range []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"a long amount", ops(req{method: "POST", path: "/v1/accounts/alice/deposits", body: map[string]any{"amount": cny(long)}}),
			422, "amount_too_large"},
		{"a long amount with places", ops(req{method: "POST", path: "/v1/accounts/alice/deposits", body: map[string]any{"amount": cny(long + ".123")}}),
			422, "invalid_amount"},
		{"a long currency", ops(req{method: "POST", path: "/v1/accounts/alice/deposits",
			body: map[string]any{"amount": map[string]string{"amount": "1.00", "currency": word}}}), 422, "unknown_currency"},
		{"a long unknown field", req{method: "POST", path: "/v1/escrows/paid/ship", actor: "shop", body: map[string]any{word: "x"}},
			400, "unknown_field"},
		{"a long member twice", req{method: "POST", path: "/v1/escrows", actor: "alice",
			body: `{"id":"t","seller":"shop","price":{"amount":"1.00","currency":"CNY"},"metadata":{"` + word[:20<<10] + `":"1","` + word[:20<<10] + `":"2"}}`},
			400, "invalid_json"},
		{"a long metadata key", req{method: "POST", path: "/v1/escrows", actor: "alice",
			body: map[string]any{"id": "t", "seller": "shop", "price": cny("1.00"), "metadata": map[string]string{word: "v"}}},
			400, "invalid_argument"},
		{"a long score", req{method: "POST", path: "/v1/escrows/done/ratings", actor: "shop", body: map[string]any{"score": word}},
			400, "invalid_argument"},
		{"a long escrow ID", req{method: "POST", path: "/v1/escrows", actor: "alice",
			body: map[string]any{"id": word, "seller": "shop", "price": cny("1.00")}}, 400, "invalid_argument"},
		{"a long extension", req{method: "POST", path: "/v1/escrows/paid/extend", actor: "alice", body: map[string]any{"by": word}},
			400, "invalid_argument"},
		{"a long timer", req{method: "POST", path: "/v1/escrows", actor: "alice",
			body: map[string]any{"id": "t", "seller": "shop", "price": cny("1.00"), "timers": map[string]string{"pay_within": long}}},
			400, "invalid_argument"},
		{"a long top sellers cursor", req{method: "GET", path: "/v1/top-sellers?cursor=" + rankCursor(word), actor: "alice"},
			400, "invalid_argument"},
		{"a long state", req{method: "GET", path: "/v1/escrows?state=" + query, actor: "alice"}, 400, "invalid_argument"},
		{"a long limit", req{method: "GET", path: "/v1/escrows?limit=" + query, actor: "alice"}, 400, "invalid_argument"},
		{"a long cursor", req{method: "GET", path: "/v1/escrows?cursor=" + query, actor: "alice"}, 400, "invalid_argument"},
		{"a long unknown parameter", req{method: "GET", path: "/v1/escrows?" + query + "=1", actor: "alice"}, 400, "unknown_field"},
		{"a long after", ops(req{method: "GET", path: "/v1/events?after=" + query}), 400, "invalid_argument"},
		{"a long wait", ops(req{method: "GET", path: "/v1/events?wait=" + query}), 400, "invalid_argument"},
		{"a long Last-Event-ID", ops(req{method: "GET", path: "/v1/events/stream", header: map[string]string{"Last-Event-ID": query}}),
			400, "invalid_argument"},
		{"a long party", ops(req{method: "GET", path: "/v1/reputation/" + query}), 400, "invalid_argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.t = t
			before := h.dump()
			r := h.do(c.r)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, c.status, r.body)
			}
			if e := r.refusal(); e.Code != c.code {
				t.Errorf("code %q, want %q", e.Code, c.code)
			}
			if len(r.body) > 2048 {
				t.Errorf("a refusal of %d bytes: %.400s…", len(r.body), r.body)
			}
			if !bytes.Contains(r.body, []byte(" bytes)")) {
				t.Errorf("the refusal does not say how long the value was: %s", r.body)
			}
			if !bytes.Equal(before, h.dump()) {
				t.Errorf("a refused request changed the store")
			}
		})
	}
}

// rankCursor builds a cursor of the Wilson ranking as the ledger writes
// one, with a checksum that holds, a score no ranking writes and party.
func rankCursor(party string) string {
	listing := "top_sellers/" + strconv.Itoa(int(escrow.RankWilson))
	b := binary.AppendUvarint(nil, uint64(len(listing)))
	b = append(b, listing...)
	for _, f := range []string{"2", party} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b)))
}

// TestActorErrorBounded: the 401 of a host whose Actor fails says the
// error's text, which may repeat a credential or a header the client
// sent, only up to its first 256 bytes, as every refusal repeats what a
// client sent, and as an error of Options.Terms is cut; the request
// costs the store nothing.
func TestActorErrorBounded(t *testing.T) {
	h := refusalFixture(t, &Options{Actor: func(r *http.Request) (string, error) {
		if token := r.Header.Get("X-Token"); token != "" {
			return "", fmt.Errorf("no session for token %s", token)
		}
		return headerActor(r)
	}})
	token := strings.Repeat("t", 60<<10)
	before := h.dump()
	r := h.do(req{method: "POST", path: "/v1/escrows/paid/pay", header: map[string]string{"X-Token": token}}).ok(http.StatusUnauthorized)
	if e := r.refusal(); e.Code != "unauthenticated" || !strings.HasPrefix(e.Message, "no session for token ttt") {
		t.Errorf("refusal %.300s", r.body)
	}
	if len(r.body) > 2048 || !bytes.Contains(r.body, []byte(" bytes)")) {
		t.Errorf("a 401 of %d bytes, which does not say how long the error was: %.400s…", len(r.body), r.body)
	}
	if !bytes.Equal(before, h.dump()) {
		t.Error("a refused request changed the store")
	}
}
