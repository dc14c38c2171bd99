package escrowhttp

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// document fetches the API's description through the API.
func (h *harness) document() map[string]any {
	h.t.Helper()
	r := h.do(req{method: "GET", path: "/v1/openapi.json"}).ok(http.StatusOK)
	var doc map[string]any
	r.into(&doc)
	return doc
}

// TestOpenAPIRoutes holds the document and the mux to each other: every
// route is documented, and every documented method and path is served by
// the route of that pattern.
func TestOpenAPIRoutes(t *testing.T) {
	h := newHarness(t, nil, nil)
	doc := h.document()
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi %v", doc["openapi"])
	}
	documented := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			pattern := strings.ToUpper(method) + " " + path
			documented[pattern] = true
			// A request to the path, with each wildcard filled in,
			// reaches the handler registered under the pattern.
			url := regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "x")
			hr, err := http.NewRequest(strings.ToUpper(method), url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, got := h.srv.mux.Handler(hr); got != pattern {
				t.Errorf("documented %s is served by %q", pattern, got)
			}
		}
	}
	served := map[string]bool{}
	for _, rt := range routes {
		pattern := rt.method + " " + rt.path
		if served[pattern] {
			t.Errorf("route %s twice", pattern)
		}
		served[pattern] = true
		if !documented[pattern] {
			t.Errorf("route %s is not documented", pattern)
		}
	}
	if len(documented) != len(served) {
		t.Errorf("%d operations documented, %d routes", len(documented), len(served))
	}
	// Every action the ledger knows has its route, named by its word.
	for _, a := range escrow.Actions() {
		word := must(a.MarshalText())
		if !served["POST /v1/escrows/{id}/"+string(word)] {
			t.Errorf("no route for the action %s", word)
		}
	}
}

// TestOpenAPIReferences: every $ref names a component.
func TestOpenAPIReferences(t *testing.T) {
	doc := newHarness(t, nil, nil).document()
	comps := doc["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name, found := strings.CutPrefix(ref, "#/components/schemas/")
				if _, ok := comps[name]; !found || !ok {
					t.Errorf("%s: $ref %q names no component", at, ref)
				}
			}
			for k, x := range v {
				walk(x, at+"/"+k)
			}
		case []any:
			for i, x := range v {
				walk(x, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(doc, "")
}

// TestOpenAPIWire holds the document's schemas to the ledger's own
// examples of its wire forms (testdata/wire in the module's root): each
// must validate, with no member the schema does not name.
func TestOpenAPIWire(t *testing.T) {
	doc := newHarness(t, nil, nil).document()
	v := newValidator(doc)
	components := map[string]string{"account": "Account", "balance": "Balance", "contribution": "Contribution",
		"contribution_page": "ContributionPage", "concentration": "Concentration", "currency": "Currency", "entry": "Entry", "escrow": "Escrow",
		"escrow_page": "EscrowPage", "event": "Event", "ranked": "Ranked", "ranked_page": "RankedPage",
		"rating": "Rating", "rating_input": "RatingInput", "reputation": "Reputation", "split": "Split",
		"terms": "Terms", "timers": "Timers", "view": "View"}
	for file, name := range components {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "wire", file+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var examples map[string]any
		if err := json.Unmarshal(b, &examples); err != nil {
			t.Fatal(err)
		}
		for ex, value := range examples {
			if ex == "zero" { // a zero value, which no answer carries
				continue
			}
			if err := v.check(ref(name), value, file+"."+ex); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	// The validator refuses what it should, or the above proves nothing.
	for _, bad := range []struct {
		name string
		x    any
	}{
		{"Event", map[string]any{"seq": 1, "type": "escrow_lost", "by_timer": false, "amount": nil, "fee": nil}},
		{"Event", map[string]any{"seq": 1, "type": "escrow_paid", "by_timer": false, "amount": nil}},
		{"Account", map[string]any{"id": "a", "system": false, "surprise": 1}},
		{"Money", map[string]any{"amount": 1, "currency": "CNY"}},
		{"Counts", map[string]any{"positive": 1.5, "neutral": 0, "negative": 0}},
		{"Entry", map[string]any{"seq": 1, "at": "yesterday", "kind": "deposit", "currency": map[string]any{"code": "CNY", "minor": 2}, "postings": []any{}}},
	} {
		var x any
		if err := json.Unmarshal(must(json.Marshal(bad.x)), &x); err != nil {
			t.Fatal(err)
		}
		if err := v.check(ref(bad.name), x, bad.name); err == nil {
			t.Errorf("%s %v passed", bad.name, bad.x)
		}
	}
}

// TestDocumentedInGodoc: the package documentation lists every route.
func TestDocumentedInGodoc(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range routes {
		if !regexp.MustCompile(`(?m)^//\s+` + rt.method + `\s+` + regexp.QuoteMeta(rt.path) + `(\s|$)`).Match(b) {
			t.Errorf("doc.go does not list %s %s", rt.method, rt.path)
		}
	}
}

// A validator checks JSON values against the document's schemas, as far
// as the document uses JSON Schema: $ref, type, enum, pattern, format
// date-time, properties and required, additionalProperties, items and
// numeric bounds. It is strict where the document is not: an object may
// have no member its schema does not name, so that a field the handler
// answers and the document forgets fails.
type validator struct{ comps map[string]any }

func newValidator(doc map[string]any) *validator {
	return &validator{comps: doc["components"].(map[string]any)["schemas"].(map[string]any)}
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func (v *validator) check(schema map[string]any, x any, at string) error {
	if r, ok := schema["$ref"].(string); ok {
		target, ok := v.comps[strings.TrimPrefix(r, "#/components/schemas/")].(map[string]any)
		if !ok {
			return fmt.Errorf("%s: no component %s", at, r)
		}
		return v.check(target, x, at)
	}
	if types, ok := schema["type"]; ok && !typeIn(types, x) {
		return fmt.Errorf("%s: %v is not of type %v", at, x, types)
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, x) {
		return fmt.Errorf("%s: %v is not one of %v", at, x, enum)
	}
	if p, ok := schema["pattern"].(string); ok {
		if s, ok := x.(string); ok && !regexp.MustCompile(p).MatchString(s) {
			return fmt.Errorf("%s: %q does not match %s", at, s, p)
		}
	}
	if schema["format"] == "date-time" {
		if _, err := time.Parse(time.RFC3339Nano, x.(string)); err != nil {
			return fmt.Errorf("%s: %v", at, err)
		}
	}
	if n, ok := x.(float64); ok {
		if lo, ok := schema["minimum"].(float64); ok && n < lo {
			return fmt.Errorf("%s: %v below %v", at, n, lo)
		}
		if hi, ok := schema["maximum"].(float64); ok && n > hi {
			return fmt.Errorf("%s: %v above %v", at, n, hi)
		}
	}
	switch x := x.(type) {
	case map[string]any:
		props, named := schema["properties"].(map[string]any)
		for k, value := range x {
			var sub map[string]any
			var ok bool
			if named {
				if sub, ok = props[k].(map[string]any); !ok {
					return fmt.Errorf("%s: member %q is not in the schema", at, k)
				}
			} else if sub, ok = schema["additionalProperties"].(map[string]any); !ok {
				continue
			}
			if err := v.check(sub, value, at+"."+k); err != nil {
				return err
			}
		}
		if req, ok := schema["required"].([]any); ok {
			for _, k := range req {
				if _, ok := x[k.(string)]; !ok {
					return fmt.Errorf("%s: required member %q is missing", at, k)
				}
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, value := range x {
				if err := v.check(items, value, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// typeIn reports whether x is of the JSON Schema type, or one of the
// types, given.
func typeIn(types any, x any) bool {
	list, ok := types.([]any)
	if !ok {
		list = []any{types}
	}
	for _, t := range list {
		switch t {
		case "null":
			if x == nil {
				return true
			}
		case "boolean":
			if _, ok := x.(bool); ok {
				return true
			}
		case "string":
			if _, ok := x.(string); ok {
				return true
			}
		case "number":
			if _, ok := x.(float64); ok {
				return true
			}
		case "integer":
			if n, ok := x.(float64); ok && n == math.Trunc(n) {
				return true
			}
		case "array":
			if _, ok := x.([]any); ok {
				return true
			}
		case "object":
			if _, ok := x.(map[string]any); ok {
				return true
			}
		}
	}
	return false
}

// answer checks an answer to r against what the document says the
// route answers with its status.
func (v *validator) answer(doc map[string]any, pattern string, r *resp) error {
	method, path, _ := strings.Cut(pattern, " ")
	op, ok := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if !ok {
		return fmt.Errorf("%s is not documented", pattern)
	}
	status := fmt.Sprint(r.status)
	documented, ok := op["responses"].(map[string]any)[status].(map[string]any)
	if !ok {
		return fmt.Errorf("%s does not document status %s", pattern, status)
	}
	content := documented["content"].(map[string]any)
	media, ok := content[strings.Split(r.header.Get("Content-Type"), ";")[0]].(map[string]any)
	if !ok {
		return fmt.Errorf("%s %s answered %s, documented %v", pattern, status, r.header.Get("Content-Type"), content)
	}
	if r.header.Get("Content-Type") != "application/json" {
		return nil
	}
	var x any
	if err := json.Unmarshal(r.body, &x); err != nil {
		return err
	}
	return v.check(media["schema"].(map[string]any), x, pattern)
}

// request checks the body of a request that the route took against what
// the document says the route takes: no body only if the body is not
// required, else one its schema holds.
func (v *validator) request(doc map[string]any, pattern string, body any) error {
	method, path, _ := strings.Cut(pattern, " ")
	op, ok := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if !ok {
		return fmt.Errorf("%s is not documented", pattern)
	}
	rb, ok := op["requestBody"].(map[string]any)
	if !ok {
		if body != nil {
			return fmt.Errorf("%s took a body, and the document says it takes none", pattern)
		}
		return nil
	}
	if body == nil {
		if rb["required"] != false {
			return fmt.Errorf("%s took no body, and the document says one is required", pattern)
		}
		return nil
	}
	b, ok := body.(string)
	if !ok {
		b = string(must(json.Marshal(body)))
	}
	var x any
	if err := json.Unmarshal([]byte(b), &x); err != nil {
		return err
	}
	schema := rb["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	return v.check(schema, x, pattern+" body")
}

// TestOpenAPIRequiredBodies: a body is required where {} would be
// refused for a missing member, and not where every member may be left
// out. Each route documented as taking no body takes none: on an escrow
// nobody opened it reaches the ledger, which answers 404.
func TestOpenAPIRequiredBodies(t *testing.T) {
	h := newHarness(t, nil, nil)
	doc := h.document()
	optional := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		op, ok := item.(map[string]any)["post"].(map[string]any)
		if !ok {
			continue
		}
		rb := op["requestBody"].(map[string]any)
		if rb["required"] == false {
			optional[op["operationId"].(string)] = true
			url := strings.NewReplacer("{id}", "nope", "{rater}", "alice").Replace(path)
			r := h.do(req{method: "POST", path: url, actor: "alice"})
			if path == "/v1/accounts" {
				r.ok(http.StatusCreated)
			} else if e := r.ok(http.StatusNotFound).refusal(); e.Code != "not_found" {
				t.Errorf("POST %s with no body: %s", url, e.Code)
			}
		}
	}
	// The calls whose every argument may be left out, and no other.
	want := []string{"open_account", "pay", "ship", "ship_part", "extend", "confirm", "cancel", "agree_refund", "refuse_refund",
		"agree_return", "ship_return", "confirm_return", "refuse_return", "cancel_return", "dispute", "resolve", "withdraw_rating"}
	for _, name := range want {
		if !optional[name] {
			t.Errorf("%s: requestBody.required is not false", name)
		}
		delete(optional, name)
	}
	for name := range optional {
		t.Errorf("%s: requestBody.required is false", name)
	}
}

// TestOpenAPITerms: the terms of POST /v1/escrows require only what the
// call cannot do without; an escrow, which is its terms in line with its
// state, always has the rest.
func TestOpenAPITerms(t *testing.T) {
	h := newHarness(t, nil, nil)
	comps := h.document()["components"].(map[string]any)["schemas"].(map[string]any)
	required := func(name string) []any { return comps[name].(map[string]any)["required"].([]any) }
	if got, want := required("Terms"), []any{"id", "seller", "price"}; !slices.Equal(got, want) {
		t.Errorf("Terms require %v, want %v", got, want)
	}
	for _, name := range []string{"buyer", "timers"} {
		if !slices.Contains(required("Escrow"), any(name)) {
			t.Errorf("an Escrow does not require %s", name)
		}
	}
	// A split's absent part is zero (all to the other party).
	if r, ok := comps["Split"].(map[string]any)["required"]; ok {
		t.Errorf("a Split requires %v; an absent part is zero", r)
	}
	// Terms with no more than the schema requires open an escrow.
	h.do(req{method: "POST", path: "/v1/accounts", actor: "alice"}).ok(http.StatusCreated)
	h.do(req{method: "POST", path: "/v1/accounts", actor: "shop"}).ok(http.StatusCreated)
	terms := map[string]any{"id": "e1", "seller": "shop", "price": cny("1.00")}
	v := newValidator(h.document())
	if err := v.request(h.document(), "POST /v1/escrows", terms); err != nil {
		t.Error(err)
	}
	h.do(req{method: "POST", path: "/v1/escrows", actor: "alice", body: terms}).ok(http.StatusCreated)
}

// TestOpenAPIStatuses holds the statuses routes answer to what the
// document lists for them: the refusals every route may meet, and
// requests that reach the ledger and are refused there.
func TestOpenAPIStatuses(t *testing.T) {
	h := refusalFixture(t, nil)
	doc := h.document()
	v := newValidator(doc)
	check := func(r req, status int) {
		t.Helper()
		res := h.do(r)
		if res.status != status {
			t.Errorf("%s %s: status %d, want %d: %s", r.method, r.path, res.status, status, res.body)
		}
		_, pattern := h.srv.mux.Handler(h.request(r))
		if err := v.answer(doc, pattern, res); err != nil {
			t.Errorf("%s %s: %v", r.method, r.path, err)
		}
	}
	for _, rt := range routes {
		path := strings.NewReplacer("{id}", "paid", "{rater}", "alice", "{party}", "shop", "{currency}", "CNY").Replace(rt.path)
		r := req{method: rt.method, path: path + "?zz=1", actor: "alice", operator: true}
		check(r, http.StatusBadRequest)
		r.operator = false
		if rt.access == public {
			continue
		}
		r.path = path
		r.actor = ""
		check(r, http.StatusUnauthorized)
		if rt.method == http.MethodPost {
			check(req{method: "POST", path: path, actor: "alice", operator: true, header: map[string]string{"Content-Type": "text/plain"}},
				http.StatusUnsupportedMediaType)
		}
	}
	post := func(path, actor, body string) req { return req{method: "POST", path: path, actor: actor, body: body} }
	for _, c := range []struct {
		r      req
		status int
	}{
		{post("/v1/escrows", "alice", `{"id":"z","seller":"nobody","price":{"amount":"5.00","currency":"CNY"}}`), http.StatusNotFound},
		{post("/v1/escrows", "carol", `{"id":"z","seller":"shop","price":{"amount":"5.00","currency":"CNY"}}`), http.StatusNotFound},
		{post("/v1/accounts", "@fees", ""), http.StatusBadRequest},
		{post("/v1/carts/pay", "alice", `{"escrows":["nope"]}`), http.StatusConflict},
		{post("/v1/escrows/nope/ratings", "alice", `{"score":"positive"}`), http.StatusNotFound},
		{req{method: "GET", path: "/v1/openapi.json?x=1&x=2"}, http.StatusBadRequest},
		{req{method: "GET", path: "/v1/top-sellers?limt=5", actor: "alice"}, http.StatusBadRequest},
		{req{method: "GET", path: "/v1/escrows?party=nobody", actor: "ops", operator: true}, http.StatusOK},
		{req{method: "GET", path: "/v1/accounts/alice/balances/XYZ", actor: "alice"}, http.StatusUnprocessableEntity},
	} {
		check(c.r, c.status)
	}
}

// TestOpenAPIRefusalHeaders: the headers a refusal is sent with are in
// the document beside it: Retry-After on every 429, which says when to
// try again, as the package documentation promises.
func TestOpenAPIRefusalHeaders(t *testing.T) {
	doc := newHarness(t, nil, nil).document()
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			r, ok := op.(map[string]any)["responses"].(map[string]any)["429"].(map[string]any)
			if !ok {
				continue
			}
			h, _ := r["headers"].(map[string]any)
			ra, ok := h["Retry-After"].(map[string]any)
			if !ok || ra["schema"].(map[string]any)["type"] != "integer" {
				t.Errorf("%s %s: 429 documents no Retry-After in whole seconds: %v", method, path, r)
			}
		}
	}
}
