package escrowhttp

import (
	"encoding"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/escrowkit/escrow"
)

// This file builds the OpenAPI 3.1 document of the API, GET
// /v1/openapi.json, from the route table. Schemas are made by reflection
// from the very types the handlers decode and answer, read the way
// encoding/json writes them, with the ledger's wire forms for the types
// that write themselves: Money, times, durations and the enumerations'
// words.

// openAPI returns the document.
func openAPI() map[string]any {
	g := &schemas{defs: map[string]any{}, types: map[string]reflect.Type{}}
	paths := map[string]any{}
	for i := range routes {
		rt := &routes[i]
		item, ok := paths[rt.path].(map[string]any)
		if !ok {
			item = map[string]any{}
			paths[rt.path] = item
		}
		item[strings.ToLower(rt.method)] = g.operation(rt)
	}
	g.of(reflect.TypeFor[errorBody]())
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "escrow",
			"version":     "1",
			"description": apiDescription,
		},
		"paths":      paths,
		"components": map[string]any{"schemas": g.defs},
	}
}

const apiDescription = "An escrow ledger: it holds a buyer's money until the goods arrive. " +
	"Every route but this document's needs an actor, whom the host authenticates in its own way. " +
	"Refusals are {\"error\":{\"code\",\"message\",\"details\"}}, with a stable code per class. " +
	"Every POST takes an Idempotency-Key header, scoped to the actor, and needs Content-Type application/json, even with no body. " +
	"An ID in a path is one percent-encoded segment (\"order/1\" is order%2F1), and \".\" and \"..\" are %2E and %2E%2E."

// operation returns the Operation Object of rt.
func (g *schemas) operation(rt *route) map[string]any {
	params := []any{}
	for _, name := range pathParams(rt.path) {
		params = append(params, map[string]any{"name": name, "in": "path", "required": true,
			"schema": map[string]any{"type": "string"}, "description": pathParamDoc(rt.path, name)})
	}
	for _, p := range rt.query {
		s := g.of(p.typ)
		if p.max > 0 {
			s = map[string]any{"type": "integer", "minimum": p.min, "maximum": p.max}
		}
		q := map[string]any{"name": p.name, "in": "query", "schema": s, "description": p.doc}
		if p.repeated {
			q["schema"] = map[string]any{"type": "array", "items": s}
			q["style"], q["explode"] = "form", true
		}
		params = append(params, q)
	}
	if rt.method == http.MethodPost {
		params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header",
			"schema": map[string]any{"type": "string", "minLength": 1},
			"description": "makes the call safe to retry: a repeat with the same key and body answers the first result and changes nothing. " +
				"Keys are the actor's own: another actor's same key is another key."})
	}
	if rt.result == nil {
		params = append(params, map[string]any{"name": "Last-Event-ID", "in": "header",
			"schema":      map[string]any{"type": "string", "pattern": "^[0-9]+$"},
			"description": "the id of the last event received, which a reconnecting client sends: the stream resumes after it"})
	}
	op := map[string]any{
		"operationId": rt.name,
		"summary":     rt.summary,
		"description": rt.doc,
		"parameters":  params,
		"responses":   g.responses(rt),
		"x-access":    [...]string{public: "public", actors: "actor", operatorOnly: "operator"}[rt.access],
	}
	if rt.body != nil {
		// An empty body is read as {}, so a body is required only if {}
		// lacks a member the body must have.
		op["requestBody"] = map[string]any{
			"required": hasRequired(rt.body),
			"content":  map[string]any{"application/json": map[string]any{"schema": g.of(rt.body)}},
		}
	}
	return op
}

// hasRequired reports whether the JSON object of struct t has a member
// that may not be left out.
func hasRequired(t reflect.Type) bool {
	for f := range structFields(t) {
		if !optional(t, f) {
			return true
		}
	}
	return false
}

// optional reports whether member f of struct t's JSON object may be left
// out: it is omitted when empty, or the call fills it in.
func optional(t reflect.Type, f jsonField) bool {
	return f.optional || slices.Contains(filledIn[t], f.name)
}

// filledIn are the members of bodies that a request may leave out, since
// the call fills them in, though the ledger writes them in every answer
// that holds them: an absent buyer is the actor, absent timers take the
// defaults, and an absent part of a split is zero.
var filledIn = map[reflect.Type][]string{
	reflect.TypeFor[escrow.Terms](): {"buyer", "timers"},
	reflect.TypeFor[escrow.Split](): {"buyer", "seller"},
}

// pathParamDoc describes a path parameter.
func pathParamDoc(path, name string) string {
	switch {
	case name == "id" && strings.HasPrefix(path, "/v1/accounts/"):
		return "the account's ID"
	case name == "id":
		return "the escrow's ID"
	case name == "rater":
		return "who gave the rating"
	case name == "party":
		return "the party, an account ID"
	case name == "currency":
		return "a currency code, such as CNY"
	}
	return name
}

// responses returns rt's Responses Object: its success and the refusals
// it may answer.
func (g *schemas) responses(rt *route) map[string]any {
	ok := map[string]any{"description": http.StatusText(rt.status)}
	if rt.result != nil {
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.of(rt.result)}}
	} else {
		ok["content"] = map[string]any{"text/event-stream": map[string]any{"schema": map[string]any{
			"type": "string", "description": "messages of an id: line (the event's seq) and a data: line (the Event's JSON)"}}}
	}
	headers := map[string]any{}
	if rt.method == http.MethodPost {
		headers["Idempotent-Replayed"] = map[string]any{"schema": map[string]any{"type": "boolean"},
			"description": "with an Idempotency-Key: true if this answer is the first call's, replayed"}
	}
	if rt.status == http.StatusCreated && rt.name != "rate" {
		headers["Location"] = map[string]any{"schema": map[string]any{"type": "string"},
			"description": "where to read what was made, relative to the request's URL"}
	}
	if len(headers) > 0 {
		ok["headers"] = headers
	}
	out := map[string]any{strconv.Itoa(rt.status): ok}
	for _, status := range refusals(rt) {
		var codes []string
		for _, c := range classes {
			if c.status == status {
				codes = append(codes, c.code)
			}
		}
		refusal := map[string]any{
			"description": http.StatusText(status) + ": " + strings.Join(codes, ", "),
			"content":     map[string]any{"application/json": map[string]any{"schema": g.of(reflect.TypeFor[errorBody]())}},
		}
		if status == http.StatusTooManyRequests {
			refusal["headers"] = map[string]any{"Retry-After": map[string]any{
				"schema":      map[string]any{"type": "integer", "minimum": 1},
				"description": "how many whole seconds until the actor's next request is let through"}}
		}
		out[strconv.Itoa(status)] = refusal
	}
	return out
}

// refusals returns the statuses of the refusals rt may answer.
func refusals(rt *route) []int {
	// Every route refuses a query parameter it does not take.
	st := []int{http.StatusBadRequest}
	if rt.access == public {
		return st
	}
	st = append(st, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusServiceUnavailable)
	// A path names what may not exist; so do terms, their seller's and
	// their buyer's accounts.
	if len(pathParams(rt.path)) > 0 || rt.name == "open" {
		st = append(st, http.StatusNotFound)
	}
	if rt.method == http.MethodPost {
		st = append(st, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
			http.StatusUnprocessableEntity)
		if rt.name == "pay" || rt.name == "pay_all" || rt.name == "withdraw" {
			st = append(st, http.StatusPaymentRequired)
		}
	}
	if rt.name == "balance" {
		st = append(st, http.StatusUnprocessableEntity)
	}
	slices.Sort(st)
	return st
}

// schemas makes JSON Schemas of Go types, keeping each named struct and
// enumeration once, as a component.
type schemas struct {
	defs  map[string]any          // components by name
	types map[string]reflect.Type // the type of each component
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
	rawType      = reflect.TypeFor[json.RawMessage]()
	roleType     = reflect.TypeFor[escrow.Role]()
	// bodyDurationType is a duration in a request body, written as
	// durationType is.
	bodyDurationType = reflect.TypeFor[duration]()
)

// of returns the schema of t, a reference for a component.
func (g *schemas) of(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case durationType, bodyDurationType:
		return map[string]any{"type": "string", "description": "a duration as Go writes it, such as 72h0m0s or 1.5s", "examples": []string{"72h0m0s"}}
	case rawType:
		return map[string]any{"type": "object"}
	case moneyType:
		return g.ref(t, func() map[string]any {
			return map[string]any{
				"type": []string{"object", "null"},
				"description": "An exact amount of one currency, its amount a decimal string with at most the currency's decimal places (\"12.3\" CNY is 12.30 CNY); " +
					"null for no amount. Only a balance's amounts may be negative.",
				"properties": map[string]any{
					"amount":   map[string]any{"type": "string", "pattern": `^-?[0-9]+(\.[0-9]+)?$`, "examples": []string{"199.00"}},
					"currency": map[string]any{"type": "string", "pattern": "^[A-Z0-9]{1,12}$", "examples": []string{"CNY"}},
				},
				"required": []string{"amount", "currency"},
			}
		})
	case roleType:
		return g.ref(t, func() map[string]any {
			return map[string]any{"type": "string", "pattern": "^(buyer|seller|arbiter)(,(buyer|seller|arbiter))*$",
				"description": "a party's part in an escrow: buyer, seller or arbiter; several joined by commas"}
		})
	}
	if words, ok := enumWords[t]; ok {
		return g.ref(t, func() map[string]any { return map[string]any{"type": "string", "enum": words} })
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.of(t.Elem())
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Int64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.of(t.Elem())}
	case reflect.Array:
		return map[string]any{"type": "array", "items": g.of(t.Elem()), "minItems": t.Len(), "maxItems": t.Len()}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		return g.ref(t, func() map[string]any { return g.object(t) })
	}
	panic(fmt.Sprintf("escrowhttp: no schema for %s", t))
}

// object returns the schema of struct t's JSON object.
func (g *schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for f := range structFields(t) {
		props[f.name] = g.of(f.typ)
		if !optional(t, f) {
			required = append(required, f.name)
		}
	}
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	if doc, ok := componentDocs[t]; ok {
		s["description"] = doc
	}
	if t == reflect.TypeFor[errorObject]() {
		var codes []string
		for _, c := range classes {
			codes = append(codes, c.code)
		}
		props["code"] = map[string]any{"type": "string", "enum": codes}
	}
	return s
}

// ref returns a reference to t's component, made by build the first time.
func (g *schemas) ref(t reflect.Type, build func() map[string]any) map[string]any {
	name := componentName(t)
	if have, ok := g.types[name]; !ok {
		g.types[name] = t
		g.defs[name] = map[string]any{} // a placeholder while build runs, for types that contain themselves
		g.defs[name] = build()
	} else if have != t {
		panic(fmt.Sprintf("escrowhttp: two types named %s in the API", name))
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// componentName names t's component: its Go name, capitalised for this
// package's own ("journalPage" is JournalPage).
func componentName(t reflect.Type) string {
	r := []rune(t.Name())
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// componentDocs describe the components a client meets first.
var componentDocs = map[reflect.Type]string{
	reflect.TypeFor[escrow.Escrow]():  "One trade: its terms in line with its state, its money and its times.",
	reflect.TypeFor[escrow.Terms]():   "What buyer and seller agree on when an escrow is opened.",
	reflect.TypeFor[escrow.Event]():   "One change, in the ledger's transactional outbox; seq numbers the events 1, 2, 3… in commit order.",
	reflect.TypeFor[escrow.Balance](): "What an account holds in one currency: available, and held in escrows it pays for.",
	reflect.TypeFor[escrow.Entry]():   "One movement of money in the double-entry journal; postings are in minor units.",
	reflect.TypeFor[errorBody]():      "A refusal.",
}

// enumWords are the words of each enumeration, as the ledger marshals
// its values.
var enumWords = map[reflect.Type][]string{
	reflect.TypeFor[escrow.State]():    words(escrow.States()...),
	reflect.TypeFor[escrow.Action]():   words(append(escrow.Actions(), escrow.ActionRate)...),
	reflect.TypeFor[escrow.Score]():    words(escrow.Positive, escrow.Neutral, escrow.Negative),
	reflect.TypeFor[escrow.Rounding](): words(escrow.RoundHalfEven, escrow.RoundHalfUp, escrow.RoundDown, escrow.RoundUp),
	reflect.TypeFor[escrow.Bucket]():   words(escrow.Available, escrow.Held),
	reflect.TypeFor[escrow.RankKey]():  words(escrow.RankWilson, escrow.RankExpectation),
	reflect.TypeFor[escrow.EventType](): words(escrow.AccountOpened, escrow.Deposited, escrow.Withdrawn,
		escrow.EscrowOpened, escrow.EscrowPaid, escrow.EscrowShipped, escrow.EscrowReleased, escrow.EscrowRefunded,
		escrow.EscrowRefundRequested, escrow.EscrowRefundRefused, escrow.EscrowDisputed, escrow.EscrowResolved,
		escrow.EscrowClosed, escrow.RatingGiven, escrow.RatingRevised, escrow.RatingReplied,
		escrow.EscrowShippedPart, escrow.EscrowExtended, escrow.EscrowReturnRequested, escrow.EscrowReturnAgreed,
		escrow.EscrowReturnShipped, escrow.EscrowReturnRefused, escrow.EscrowReturnCancelled, escrow.EscrowEvidenceAdded,
		escrow.EscrowEscalated, escrow.RatingWithdrawn, escrow.RatingVoided),
	reflect.TypeFor[escrow.EntryKind](): words(escrow.EntryDeposit, escrow.EntryWithdrawal, escrow.EntryHold,
		escrow.EntryRelease, escrow.EntryRefund, escrow.EntrySplit),
}

// words returns the text of each value.
func words[T encoding.TextMarshaler](values ...T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		b, err := v.MarshalText()
		if err != nil {
			panic(err)
		}
		out[i] = string(b)
	}
	return out
}
