package escrowhttp

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

func TestNewRefuses(t *testing.T) {
	h := newHarness(t, nil, nil)
	for name, c := range map[string]struct {
		l    *escrow.Ledger
		opts *Options
	}{
		"nil options":    {h.l, nil},
		"no actor":       {h.l, &Options{}},
		"nil ledger":     {nil, &Options{Actor: headerActor}},
		"negative body":  {h.l, &Options{Actor: headerActor, MaxBodyBytes: -1}},
		"negative wait":  {h.l, &Options{Actor: headerActor, MaxWait: -time.Second}},
		"negative rate":  {h.l, &Options{Actor: headerActor, RateLimit: RateLimit{Rate: -1}}},
		"negative burst": {h.l, &Options{Actor: headerActor, RateLimit: RateLimit{Rate: 1, Burst: -1}}},
		"NaN rate":       {h.l, &Options{Actor: headerActor, RateLimit: RateLimit{Rate: math.NaN()}}},
		"infinite rate":  {h.l, &Options{Actor: headerActor, RateLimit: RateLimit{Rate: math.Inf(1)}}},
	} {
		if _, err := New(c.l, c.opts); !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

// TestAuthorization: strangers read nothing of others', operators read
// everything, and only operators move money in and out.
func TestAuthorization(t *testing.T) {
	h := refusalFixture(t, nil)
	// Each party of an escrow reads it; an operator too.
	for _, who := range []string{"alice", "shop", "arb"} {
		h.do(req{method: "GET", path: "/v1/escrows/paid", actor: who}).ok(http.StatusOK).same(must(h.l.Escrow(h.ctx, "paid")))
		h.do(req{method: "GET", path: "/v1/escrows/paid/history", actor: who}).ok(http.StatusOK)
	}
	h.do(req{method: "GET", path: "/v1/escrows/paid", actor: "ops", operator: true}).ok(http.StatusOK)
	h.do(req{method: "GET", path: "/v1/escrows/paid", actor: "bob"}).ok(http.StatusForbidden)
	// The test host makes bob an operator by a header; a host with no
	// Operator function has none, whatever the request says.
	h.do(req{method: "GET", path: "/v1/escrows/paid", actor: "bob", operator: true}).ok(http.StatusOK)
	noOps := must(New(h.l, &Options{Actor: headerActor}))
	for _, path := range []string{"/v1/escrows/paid", "/v1/events", "/v1/accounts/alice"} {
		w := httptest.NewRecorder()
		noOps.ServeHTTP(w, h.request(req{method: "GET", path: path, actor: "bob", operator: true}))
		if w.Code != http.StatusForbidden {
			t.Errorf("%s without operators: %d", path, w.Code)
		}
	}

	// Accounts: the owner and operators.
	h.do(req{method: "GET", path: "/v1/accounts/alice", actor: "alice"}).ok(http.StatusOK)
	h.do(req{method: "GET", path: "/v1/accounts/alice/journal", actor: "ops", operator: true}).ok(http.StatusOK)
	h.do(req{method: "GET", path: "/v1/accounts/alice/balances", actor: "shop"}).ok(http.StatusForbidden)
	h.do(req{method: "GET", path: "/v1/accounts/@fees/balances", actor: "ops", operator: true}).ok(http.StatusOK).
		same(balanceList{Balances: must(h.l.Balances(h.ctx, escrow.FeeAccount))})

	// Listing: one's own escrows; an operator names anyone's.
	var page escrow.EscrowPage
	h.do(req{method: "GET", path: "/v1/escrows", actor: "shop"}).ok(http.StatusOK).into(&page)
	if len(page.Escrows) != 4 {
		t.Errorf("shop sees %d escrows, want 4", len(page.Escrows))
	}
	h.do(req{method: "GET", path: "/v1/escrows?party=shop&role=seller&state=awaiting_shipment", actor: "ops", operator: true}).
		ok(http.StatusOK).same(must(h.l.Escrows(h.ctx, escrow.EscrowQuery{Party: "shop", Role: escrow.Seller,
		States: []escrow.State{escrow.AwaitingShipment}})))
	h.do(req{method: "GET", path: "/v1/escrows?party=alice", actor: "alice"}).ok(http.StatusOK)

	// The Actor's error is the message of the 401.
	deny := newHarness(t, &Options{Actor: func(*http.Request) (string, error) { return "", errors.New("token expired") }}, nil)
	r := deny.do(req{method: "GET", path: "/v1/escrows", actor: "alice"}).ok(http.StatusUnauthorized)
	if e := r.refusal(); e.Message != "token expired" {
		t.Errorf("401 says %q", e.Message)
	}
	// The description needs no actor.
	deny.do(req{method: "GET", path: "/v1/openapi.json"}).ok(http.StatusOK)
}

// TestIdempotency: a retry with the key answers the first result, marked
// replayed, and moves the money once; the key with another body is
// refused; another actor's same key is another key.
func TestIdempotency(t *testing.T) {
	h := newHarness(t, nil, nil)
	for _, a := range []string{"alice", "shop"} {
		h.do(req{method: "POST", path: "/v1/accounts", actor: a, header: map[string]string{"Idempotency-Key": "open-me"}}).
			ok(http.StatusCreated)
	}
	deposit := func(amount, key string) *resp {
		return h.do(req{method: "POST", path: "/v1/accounts/alice/deposits", actor: "gateway", operator: true,
			body: map[string]any{"amount": cny(amount)}, header: map[string]string{"Idempotency-Key": key}})
	}
	first := deposit("100.00", "dep-1").ok(http.StatusOK)
	if got := first.header.Get("Idempotent-Replayed"); got != "false" {
		t.Errorf("first call: Idempotent-Replayed %q", got)
	}
	again := deposit("100.00", "dep-1").ok(http.StatusOK)
	if got := again.header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("retry: Idempotent-Replayed %q", got)
	}
	if !bytes.Equal(first.body, again.body) {
		t.Errorf("retry answered %s, first %s", again.body, first.body)
	}
	if b := must(h.l.Balance(h.ctx, "alice", escrow.CNY)); !b.Available.Equal(money("100.00")) {
		t.Errorf("alice has %s after a deposit and its retry", b.Available)
	}

	before := h.dump()
	r := deposit("200.00", "dep-1").ok(http.StatusConflict)
	e := r.refusal()
	if e.Code != "idempotency_mismatch" || e.Details["key"] != "dep-1" || e.Details["call"] != "deposit" || e.Details["account"] != "alice" {
		t.Errorf("mismatch: %+v", e)
	}
	if strings.Contains(string(r.body), "gateway") {
		t.Errorf("the mismatch shows the key as the ledger keeps it: %s", r.body)
	}
	if !bytes.Equal(before, h.dump()) {
		t.Error("a refused retry changed the store")
	}

	// A created resource replays as created, with its Location.
	open := func() *resp {
		return h.do(req{method: "POST", path: "/v1/escrows", actor: "alice", header: map[string]string{"Idempotency-Key": "o-1"},
			body: map[string]any{"id": "e1", "seller": "shop", "price": cny("10.00")}})
	}
	o1, o2 := open().ok(http.StatusCreated), open().ok(http.StatusCreated)
	if o2.header.Get("Location") != "escrows/e1" || o2.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(o1.body, o2.body) {
		t.Errorf("replayed open: %v %s", o2.header, o2.body)
	}
	// Paying twice with one key holds the money once.
	pay := func() *resp {
		return h.do(req{method: "POST", path: "/v1/escrows/e1/pay", actor: "alice", header: map[string]string{"Idempotency-Key": "p-1"}})
	}
	p1, p2 := pay().ok(http.StatusOK), pay().ok(http.StatusOK)
	if !bytes.Equal(p1.body, p2.body) || p2.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replayed pay: %s", p2.body)
	}
	if b := must(h.l.Balance(h.ctx, "alice", escrow.CNY)); !b.Held.Equal(money("10.00")) || !b.Available.Equal(money("90.00")) {
		t.Errorf("after two pays with one key: %+v", b)
	}
	// Without a key there is no header.
	if r := h.do(req{method: "GET", path: "/v1/escrows/e1", actor: "alice"}); r.header.Get("Idempotent-Replayed") != "" {
		t.Error("a GET says Idempotent-Replayed")
	}
}

// TestLimits: the body limit, the per-actor rate limit, and a body's
// type.
func TestLimits(t *testing.T) {
	h := newHarness(t, &Options{MaxBodyBytes: 100, RateLimit: RateLimit{Rate: 0.001, Burst: 2}}, nil)
	h.do(req{method: "POST", path: "/v1/accounts", actor: "alice", body: strings.Repeat(" ", 100) + "{}"}).ok(http.StatusRequestEntityTooLarge)
	h.do(req{method: "POST", path: "/v1/accounts", actor: "alice", body: "{}"}).ok(http.StatusCreated)
	// The bucket of 2 is empty now; a token comes back in 1,000 s.
	r := h.do(req{method: "GET", path: "/v1/accounts/alice", actor: "alice"}).ok(http.StatusTooManyRequests)
	if got := r.header.Get("Retry-After"); got != "1000" {
		t.Errorf("Retry-After %q", got)
	}
	if e := r.refusal(); e.Code != "rate_limited" {
		t.Errorf("code %q", e.Code)
	}
	// Another actor has a bucket of its own; no actor costs nobody a token.
	h.do(req{method: "POST", path: "/v1/accounts", actor: "bob"}).ok(http.StatusCreated)
	h.do(req{method: "GET", path: "/v1/accounts/bob"}).ok(http.StatusUnauthorized)
	h.do(req{method: "GET", path: "/v1/accounts/bob", actor: "bob"}).ok(http.StatusOK)
}

func TestLimiter(t *testing.T) {
	l := newLimiter(RateLimit{Rate: 2, Burst: 3})
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	for i := range 3 {
		if ok, _ := l.allow("a", at(0)); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("a", at(0))
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("past the burst: %v, wait %s", ok, wait)
	}
	if ok, wait := l.allow("a", at(250)); ok || wait != 250*time.Millisecond {
		t.Fatalf("half a token later: %v, wait %s", ok, wait)
	}
	if ok, _ := l.allow("a", at(500)); !ok {
		t.Fatal("a token came back and was refused")
	}
	if ok, _ := l.allow("b", at(500)); !ok {
		t.Fatal("another actor's first request refused")
	}
	// A clock that steps back brings no tokens.
	if ok, _ := l.allow("a", at(100)); ok {
		t.Fatal("a step back of the clock made a token")
	}
	// Full buckets are dropped once one could have filled.
	l.allow("c", at(3000))
	if _, ok := l.buckets["a"]; ok {
		t.Errorf("a full bucket is kept: %d buckets", len(l.buckets))
	}
	if len(l.buckets) != 1 {
		t.Errorf("%d buckets after a sweep, want c's", len(l.buckets))
	}

	if newLimiter(RateLimit{}) != nil {
		t.Error("the zero RateLimit limits")
	}
	if l := newLimiter(RateLimit{Rate: 0.5}); l.burst != 1 {
		t.Errorf("burst of rate 0.5: %v", l.burst)
	}
	if l := newLimiter(RateLimit{Rate: 2.5}); l.burst != 3 {
		t.Errorf("burst of rate 2.5: %v", l.burst)
	}
	tiny := newLimiter(RateLimit{Rate: 1e-300})
	tiny.allow("x", start)
	if _, wait := tiny.allow("x", start); wait <= 0 {
		t.Errorf("a tiny rate's wait overflowed to %s", wait)
	}
	for d, want := range map[time.Duration]int64{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2} {
		if got := retryAfter(d); got != want {
			t.Errorf("retryAfter(%s) = %d, want %d", d, got, want)
		}
	}
}

// TestIdempotencyKeyOnce: an Idempotency-Key sent in two header lines is
// refused rather than joined into a key of its own, which would make a
// retry that repeats the line (by a proxy, or a client that adds the
// header twice) a new call that pays again.
func TestIdempotencyKeyOnce(t *testing.T) {
	h := refusalFixture(t, nil)
	before := h.dump()
	hr := h.request(req{method: "POST", path: "/v1/escrows/unpaid/pay", actor: "alice"})
	hr.Header.Add("Idempotency-Key", "pay-1")
	hr.Header.Add("Idempotency-Key", "pay-1")
	w := httptest.NewRecorder()
	h.srv.ServeHTTP(w, hr)
	r := &resp{t: t, status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	r.ok(http.StatusBadRequest)
	if e := r.refusal(); e.Code != "invalid_argument" {
		t.Errorf("code %q", e.Code)
	}
	if !bytes.Equal(before, h.dump()) {
		t.Error("a refused request changed the store")
	}
}

// TestReplayedHeaderOnlyWhenTheLedgerAnswered: Idempotent-Replayed says
// whether the ledger replayed a keyed call, so it is sent only where the
// ledger took the call: true on a replay, false where it ran now, and
// false on its own refusals (a refused call is not remembered). A keyed
// request refused before the ledger runs, whose key the ledger never saw,
// carries no header: nothing was run or replayed. Nothing changes.
func TestReplayedHeaderOnlyWhenTheLedgerAnswered(t *testing.T) {
	h := refusalFixture(t, nil)
	keyed := func(r req) req { r.header = map[string]string{"Idempotency-Key": "key-1"}; return r }
	for _, c := range []struct {
		name   string
		r      req
		status int
		want   string // the header; "" for none
	}{
		{"not JSON", keyed(req{method: "POST", path: "/v1/escrows/paid/ship", actor: "shop", body: `{"tracking":`}), 400, ""},
		{"unknown field", keyed(req{method: "POST", path: "/v1/escrows/paid/ship", actor: "shop", body: `{"trackin":"x"}`}), 400, ""},
		{"not an operator", keyed(req{method: "POST", path: "/v1/accounts/alice/deposits", actor: "alice",
			body: map[string]any{"amount": cny("1.00")}}), 403, ""},
		{"open for another buyer", keyed(req{method: "POST", path: "/v1/escrows", actor: "bob",
			body: map[string]any{"id": "x", "buyer": "alice", "seller": "shop", "price": cny("1.00")}}), 403, ""},
		{"no milestone", keyed(req{method: "POST", path: "/v1/escrows/paid/confirm_milestone", actor: "alice"}), 400, ""},
		{"revise for another", keyed(req{method: "POST", path: "/v1/escrows/done/ratings/alice/revise", actor: "shop",
			body: map[string]any{"score": "positive"}}), 403, ""},
		{"wrong media type", func() req {
			r := keyed(req{method: "POST", path: "/v1/escrows/paid/pay", actor: "alice"})
			r.header["Content-Type"] = "text/plain"
			return r
		}(), 415, ""},
		{"refused by the ledger", keyed(req{method: "POST", path: "/v1/escrows/unpaid/ship", actor: "shop"}), 409, "false"},
		{"run now", keyed(req{method: "POST", path: "/v1/escrows/unpaid/cancel", actor: "alice"}), 200, "false"},
		{"replayed", keyed(req{method: "POST", path: "/v1/escrows/unpaid/cancel", actor: "alice"}), 200, "true"},
		{"key reused", keyed(req{method: "POST", path: "/v1/escrows/bobs/cancel", actor: "alice"}), 409, "false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.t = t
			before := h.dump()
			r := h.do(c.r)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if got, ok := r.header["Idempotent-Replayed"]; c.want == "" && ok || c.want != "" && (len(got) != 1 || got[0] != c.want) {
				t.Errorf("Idempotent-Replayed %q, want %q", got, c.want)
			}
			if c.status >= 400 && !bytes.Equal(before, h.dump()) {
				t.Errorf("a refused request changed the store")
			}
		})
	}
}

// TestIdempotencyKeyLength: a client's Idempotency-Key is held to its own
// length, 1 to 256 bytes, whatever the actor's name adds to the key the
// ledger keeps: a key of 256 bytes works and replays, for a long actor
// too, and one of 257 is refused as 257 bytes, changing nothing.
func TestIdempotencyKeyLength(t *testing.T) {
	h := refusalFixture(t, nil)
	long := strings.Repeat("a", 120)
	h.do(req{method: "POST", path: "/v1/accounts", actor: long}).ok(http.StatusCreated)
	for _, actor := range []string{"alice", long} {
		for _, n := range []int{250, 256} {
			key := strings.Repeat("k", n)
			deposit := func() *resp {
				return h.do(req{method: "POST", path: "/v1/accounts/" + actor + "/deposits", actor: actor, operator: true,
					body: map[string]any{"amount": cny("1.00")}, header: map[string]string{"Idempotency-Key": key}})
			}
			first := deposit()
			if first.status != http.StatusOK || first.header.Get("Idempotent-Replayed") != "false" {
				t.Fatalf("a %d-byte key of a %d-byte actor: %d %v %s", n, len(actor), first.status, first.header, first.body)
			}
			again := deposit().ok(http.StatusOK)
			if again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(first.body, again.body) {
				t.Errorf("a %d-byte key of a %d-byte actor was not replayed: %v %s", n, len(actor), again.header, again.body)
			}
		}
	}
	// One client's long key is not another's.
	key := strings.Repeat("s", 256)
	for _, actor := range []string{"alice", long} {
		r := h.do(req{method: "POST", path: "/v1/accounts", actor: "x" + actor[:3], header: map[string]string{"Idempotency-Key": key}})
		if r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "false" {
			t.Errorf("%s's key met another's: %d %v %s", "x"+actor[:3], r.status, r.header, r.body)
		}
	}
	before := h.dump()
	for _, bad := range []struct{ key, says string }{
		{strings.Repeat("k", 257), "257 bytes, more than 256"},
		{"a\tb", "control character"},
		{"a\xffb", "UTF-8"},
	} {
		r := h.do(req{method: "POST", path: "/v1/accounts/alice/deposits", actor: "alice", operator: true,
			body: map[string]any{"amount": cny("1.00")}, header: map[string]string{"Idempotency-Key": bad.key}}).ok(http.StatusBadRequest)
		if e := r.refusal(); e.Code != "invalid_argument" || !strings.Contains(e.Message, "Idempotency-Key") || !strings.Contains(e.Message, bad.says) {
			t.Errorf("key %q: %+v; want invalid_argument saying %q of the Idempotency-Key", bad.key[:min(len(bad.key), 10)], e, bad.says)
		}
	}
	if !bytes.Equal(before, h.dump()) {
		t.Error("a refused key changed the store")
	}
}

// TestIdempotencyKeyAsSent: a key is taken as the client sent it. Only
// the spaces and tabs HTTP allows around a header's value are not part of
// it; any other character that Unicode calls a space is, so "k" and "k"
// with a no-break space after it are two keys, and a key ending in a C1
// control character such as U+0085 is refused for it, changing nothing,
// rather than taken for the key without it.
func TestIdempotencyKeyAsSent(t *testing.T) {
	h := refusalFixture(t, nil)
	deposit := func(key string) *resp {
		return h.do(req{method: "POST", path: "/v1/accounts/alice/deposits", actor: "alice", operator: true,
			body: map[string]any{"amount": cny("1.00")}, header: map[string]string{"Idempotency-Key": key}})
	}
	deposit("k").ok(http.StatusOK)
	for _, key := range []string{"k\u00a0", "\u2028k", "\u3000k\u3000"} {
		if r := deposit(key).ok(http.StatusOK); r.header.Get("Idempotent-Replayed") != "false" {
			t.Errorf("key %q was taken for another key: Idempotent-Replayed %q", key, r.header.Get("Idempotent-Replayed"))
		}
	}
	if r := deposit(" \tk\t ").ok(http.StatusOK); r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the spaces around a header's value made another key: Idempotent-Replayed %q", r.header.Get("Idempotent-Replayed"))
	}
	before := h.dump()
	for _, key := range []string{"k\u0085", "\u0085k", "\u0085"} {
		r := deposit(key).ok(http.StatusBadRequest)
		if e := r.refusal(); e.Code != "invalid_argument" || !strings.Contains(e.Message, "control character U+0085") {
			t.Errorf("key %q: %+v; want invalid_argument naming U+0085", key, e)
		}
		if _, ok := r.header["Idempotent-Replayed"]; ok {
			t.Errorf("key %q refused before the ledger saw it says Idempotent-Replayed", key)
		}
	}
	if !bytes.Equal(before, h.dump()) {
		t.Error("a key refused for a control character changed the store")
	}
	// A key of one no-break space is a key of two bytes, not an empty one.
	if r := deposit("\u00a0").ok(http.StatusOK); r.header.Get("Idempotent-Replayed") != "false" {
		t.Errorf("a key of one no-break space: Idempotent-Replayed %q", r.header.Get("Idempotent-Replayed"))
	}
}
