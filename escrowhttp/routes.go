package escrowhttp

import (
	"cmp"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/escrowkit/escrow"
)

// This file is the API's one route table: New registers it on the mux,
// and the OpenAPI document is built from it, so that the two cannot
// drift apart. A route's body and result types come from its handler's
// signature (see get and post), so the document describes what the
// handler decodes and returns, not what someone wrote down.

// access says who may call a route.
type access uint8

const (
	public       access = iota // anyone: the API's description
	actors                     // any actor; the handler checks whose data it is
	operatorOnly               // actors Options.Operator admits
)

// A param is one query parameter a route takes.
type param struct {
	name     string
	typ      reflect.Type // what it is read as: its schema in the document
	doc      string
	repeated bool // may be given several times
	min, max int  // bounds of an integer, if max > 0
}

// A route is one method and path of the API.
type route struct {
	method  string
	path    string // a ServeMux pattern's path: "/v1/escrows/{id}/pay"
	name    string // its operationId: "pay"
	summary string
	doc     string // who may call it and what it answers, beyond the summary
	access  access
	query   []param
	status  int          // the status of a success
	body    reflect.Type // what a POST's body is decoded into; nil for a GET
	result  reflect.Type // what a success answers; nil for an event stream
	// handle serves the request once admitted, returning what to answer
	// with status, or nil if it wrote its own answer.
	handle func(*server, *call) (any, error)
}

// get makes rt a GET route served by fn, which answers R.
func get[R any](rt route, fn func(*server, *call) (R, error)) route {
	rt.method, rt.result = http.MethodGet, reflect.TypeFor[R]()
	rt.status = cmp.Or(rt.status, http.StatusOK)
	rt.handle = func(s *server, c *call) (any, error) {
		v, err := fn(s, c)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	return rt
}

// post makes rt a POST route served by fn, which takes the body decoded
// into a B and answers R.
func post[B, R any](rt route, fn func(*server, *call, *B) (R, error)) route {
	rt.method, rt.body, rt.result = http.MethodPost, reflect.TypeFor[B](), reflect.TypeFor[R]()
	rt.status = cmp.Or(rt.status, http.StatusOK)
	rt.handle = func(s *server, c *call) (any, error) {
		b := new(B)
		if err := s.decode(c, b); err != nil {
			return nil, err
		}
		v, err := fn(s, c, b)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	return rt
}

// action makes the route of an escrow action: POST
// /v1/escrows/{id}/<word>, the word the action marshals to ("pay",
// "request_refund"), which is also its operationId.
func action[B any](a escrow.Action, summary, doc string, fn func(*server, *call, *B) (escrow.Escrow, error)) route {
	word, err := a.MarshalText()
	if err != nil {
		panic(err)
	}
	return post(route{path: "/v1/escrows/{id}/" + string(word), name: string(word), access: actors,
		summary: summary, doc: doc + " Answers the escrow as the action left it."}, fn)
}

// Query parameters that several routes take.
var (
	limitParam = param{name: "limit", typ: reflect.TypeFor[int](), min: 1, max: escrow.MaxPageLimit,
		doc: "the most items in the page; 20 if absent"}
	cursorParam = param{name: "cursor", typ: reflect.TypeFor[string](),
		doc: "the next of the page before; absent for the first page"}
	afterParam = param{name: "after", typ: reflect.TypeFor[uint64](),
		doc: "the seq of the last item already read; 0 or absent to read from the start"}
)

// eventLimit is the most events one read of the event stream returns.
const eventLimit = 1000

// routes is the API.
var routes = []route{
	get(route{path: "/v1/openapi.json", name: "openapi", access: public,
		summary: "This API, described in OpenAPI 3.1",
		doc:     "Needs no actor."}, (*server).describe),

	// Accounts.
	post(route{path: "/v1/accounts", name: "open_account", access: actors, status: http.StatusCreated,
		summary: "Open the actor's own account",
		doc:     "The account's ID is the actor's. Answers 201 with the account and its Location, and 409 already_exists if it is open."},
		(*server).openAccount),
	get(route{path: "/v1/accounts/{id}", name: "account", access: actors,
		summary: "Read an account",
		doc:     "Only its owner (the actor whose ID it is) or an operator; anyone else gets 403, whether or not it exists."},
		(*server).account),
	get(route{path: "/v1/accounts/{id}/balances", name: "balances", access: actors,
		summary: "An account's balance in every currency it has used",
		doc:     "Only its owner or an operator."},
		(*server).balances),
	get(route{path: "/v1/accounts/{id}/balances/{currency}", name: "balance", access: actors,
		summary: "An account's balance in one currency",
		doc:     "Only its owner or an operator. A currency the account never used is a zero balance; one the ledger does not know is 422 unknown_currency."},
		(*server).balance),
	get(route{path: "/v1/accounts/{id}/journal", name: "journal", access: actors,
		query:   []param{afterParam, limitParam},
		summary: "An account's journal entries, oldest first",
		doc:     "Only its owner or an operator. Pass the answer's next as after to read on; an empty page means up to date."},
		(*server).journal),
	post(route{path: "/v1/accounts/{id}/deposits", name: "deposit", access: operatorOnly,
		summary: "Deposit money into an account",
		doc:     "Operators only: money enters the ledger from the host's payment gateway. Answers the account's new balance."},
		(*server).deposit),
	post(route{path: "/v1/accounts/{id}/withdrawals", name: "withdraw", access: operatorOnly,
		summary: "Withdraw money from an account",
		doc: "Operators only: money leaves to the host's payment gateway; the platform's fees are paid out from @fees. " +
			"Answers the account's new balance; 402 insufficient_funds if the available balance is short."},
		(*server).withdraw),

	// Escrows.
	post(route{path: "/v1/escrows", name: "open", access: actors, status: http.StatusCreated,
		summary: "Open an escrow, as its buyer",
		doc: "The buyer must be the actor (an absent buyer is taken to be the actor); absent timers take the ledger's defaults. " +
			"The arbiter and the timers are the host's: a body that names an arbiter or sets timers is 403 forbidden, " +
			"unless the host's Options.Terms takes them; the host may also refuse terms with 403, or set them. " +
			"The seller accepts the terms by shipping. " +
			"Opening an ID again with the same terms answers the escrow " +
			"and changes nothing; with other terms, 409 already_exists. Answers 201 with the escrow and its Location."},
		(*server).open),
	get(route{path: "/v1/escrows", name: "escrows", access: actors,
		query: []param{
			{name: "party", typ: reflect.TypeFor[string](), doc: "whose escrows: the actor's if absent; an operator may name anyone"},
			{name: "role", typ: reflect.TypeFor[escrow.Role](), doc: "the party's part: buyer, seller, arbiter, or several joined by commas; any if absent"},
			{name: "state", typ: reflect.TypeFor[escrow.State](), repeated: true, doc: "only escrows in these states; repeat it, or join states by commas; any if absent"},
			limitParam, cursorParam},
		summary: "The actor's escrows, newest first",
		doc:     "A page at a time: pass the answer's next as cursor, with the other parameters unchanged."},
		(*server).escrows),
	get(route{path: "/v1/escrows/{id}", name: "escrow", access: actors,
		summary: "Read an escrow",
		doc:     "Only its buyer, seller or arbiter, or an operator; anyone else gets 403 not_party. An ID nobody opened is 404."},
		(*server).escrow),
	get(route{path: "/v1/escrows/{id}/history", name: "history", access: actors,
		summary: "An escrow's events, oldest first",
		doc:     "Its opening, every change, and the ratings given on it. Only its parties or an operator."},
		(*server).history),
	action(escrow.ActionPay, "Pay for the goods, as the buyer",
		"The price moves from the buyer's available balance to held; 402 insufficient_funds if it is short.", (*server).pay),
	action(escrow.ActionShip, "Record the shipment, as the seller",
		"With an optional tracking number. The confirmation timer starts.", (*server).ship),
	action(escrow.ActionShipPart, "Record the shipment of part of the order, as the seller",
		"With an optional tracking number, kept in the escrow's shipments; the escrow stays awaiting shipment until ship records the last part.",
		(*server).shipPart),
	action(escrow.ActionExtend, "Put back the auto-confirm deadline, as the buyer or the seller",
		"By a duration such as \"72h0m0s\"; absent, by the buyer's extension in the escrow's timers. The buyer may extend once, by at most "+
			"that; the seller any number of times, by at most the seller's extension limit in all.", (*server).extend),
	action(escrow.ActionConfirm, "Confirm receipt, as the buyer",
		"All that is held is released to the seller, less the fee.", (*server).confirm),
	action(escrow.ActionConfirmMilestone, "Confirm one milestone, as the buyer",
		"The body names the milestone, counting from 0: it must be the escrow's next_milestone, so a retry cannot release two.", (*server).confirmMilestone),
	action(escrow.ActionCancel, "Cancel before payment, as the buyer or the seller",
		"No money has moved, so none moves.", (*server).cancel),
	action(escrow.ActionRefund, "Refund the buyer, as the seller",
		"All that is held, or part of it.", (*server).refund),
	action(escrow.ActionRequestRefund, "Ask for money back, as the buyer",
		"The running timer pauses until the seller agrees or refuses.", (*server).requestRefund),
	action(escrow.ActionAgreeRefund, "Agree to the buyer's refund request, as the seller",
		"The refund is made as asked.", (*server).agreeRefund),
	action(escrow.ActionRefuseRefund, "Refuse the buyer's refund request, as the seller",
		"For a reason; the escrow returns to where it was.", (*server).refuseRefund),
	action(escrow.ActionRequestReturn, "Ask to send the goods back for a refund, as the buyer",
		"After shipment; the amount is all that is held or less. The auto-confirm timer pauses until the return ends. The seller "+
			"agrees with agree_return or turns the request down with refuse_refund.", (*server).requestReturn),
	action(escrow.ActionAgreeReturn, "Agree to take the goods back, as the seller",
		"With the address to send them to; the buyer then has the return_ship_within timer to ship them.", (*server).agreeReturn),
	action(escrow.ActionShipReturn, "Record that the goods were sent back, as the buyer",
		"With an optional tracking number; the seller then has the return_receive_within timer to confirm or refuse them.", (*server).shipReturn),
	action(escrow.ActionConfirmReturn, "Confirm receipt of the returned goods, as the seller",
		"The refund the buyer asked for is made.", (*server).confirmReturn),
	action(escrow.ActionRefuseReturn, "Refuse the returned goods, as the seller",
		"For a reason; either party may then dispute, or the buyer cancel the return.", (*server).refuseReturn),
	action(escrow.ActionCancelReturn, "End a return without a refund, as the buyer",
		"Before the goods are sent back, or accepting the seller's refusal of them; the auto-confirm timer resumes.", (*server).cancelReturn),
	action(escrow.ActionDispute, "Call the arbiter, as the buyer or the seller",
		"For a reason; every timer stops. 409 no_arbiter if the escrow has none.", (*server).dispute),
	action(escrow.ActionAddEvidence, "Add a note to a dispute, as the buyer, the seller or the arbiter",
		"A note, and an optional reference to a file the host keeps; the notes are kept in order in the escrow's evidence.", (*server).addEvidence),
	action(escrow.ActionResolve, "Split the money held, as the escrow's arbiter",
		"The parts must add up to exactly what is held; the fee comes off the seller's.", (*server).resolve),
	post(route{path: "/v1/carts/pay", name: "pay_all", access: actors,
		summary: "Pay for several escrows at once, as their buyer",
		doc: "All or none, in one transaction: each escrow is paid as pay pays it, with its own event, and answered in the order given. " +
			"The buyer must be the actor (an absent buyer is taken to be the actor). If any escrow may not be paid, none is: 409 " +
			"cart_refused lists each one refused, with its code. 402 insufficient_funds if the cart's total is short."},
		(*server).payAll),

	// Ratings and reputation.
	post(route{path: "/v1/escrows/{id}/ratings", name: "rate", access: actors, status: http.StatusCreated,
		summary: "Rate the other party of an escrow that ended",
		doc:     "The actor rates: its buyer rates the seller, its seller the buyer, once each, within the rating window. Answers 201 with the rating."},
		(*server).rate),
	post(route{path: "/v1/escrows/{id}/ratings/{rater}/revise", name: "revise", access: actors,
		summary: "Raise a neutral or negative rating, once",
		doc:     "Only its rater, who must be the actor and is named in the path. Answers the rating."},
		(*server).revise),
	post(route{path: "/v1/escrows/{id}/ratings/{rater}/reply", name: "reply", access: actors,
		summary: "Answer a rating, once, as the party it rates",
		doc:     "The rating is the one rater gave on the escrow. Answers the rating."},
		(*server).reply),
	post(route{path: "/v1/escrows/{id}/ratings/{rater}/withdraw", name: "withdraw_rating", access: actors,
		summary: "Withdraw a neutral or negative rating, once, as its rater",
		doc: "Only its rater, who must be the actor and is named in the path, within the withdrawal window, and only a rating " +
			"not revised. The rating is kept, marked withdrawn, and no longer counts. Answers the rating."},
		(*server).withdrawRating),
	post(route{path: "/v1/escrows/{id}/ratings/{rater}/void", name: "void_rating", access: operatorOnly,
		summary: "Void a rating, as an operator",
		doc: "For a reason (brushing found, a court order). The actor must also be one of the ledger's Options.Operators. " +
			"The rating is kept, marked voided with who voided it and why, and no longer counts. Answers the rating."},
		(*server).voidRating),
	get(route{path: "/v1/reputation/{party}", name: "reputation", access: actors,
		summary: "A party's reputation as a seller and as a buyer",
		doc:     "Public to every actor. A party never rated is unrated, not 404."},
		(*server).reputation),
	get(route{path: "/v1/reputation/{party}/concentration", name: "concentration", access: actors,
		summary: "How much of a seller's points of the last 365 days came from its top 5 raters and from raters new to trading",
		doc: "Public to every actor, as the ratings behind it are. A signal for a host's checks rather than every page: " +
			"it reads the seller's ratings of the window, not aggregates. A party never rated has zeros, not 404."},
		(*server).concentration),
	get(route{path: "/v1/reputation/{party}/ratings", name: "explain", access: actors,
		query:   []param{limitParam, cursorParam},
		summary: "The ratings a party received, oldest first, and what each counts for",
		doc:     "Public to every actor, as a shop's reputation page is."},
		(*server).explain),
	get(route{path: "/v1/top-sellers", name: "top_sellers", access: actors,
		query: []param{
			{name: "by", typ: reflect.TypeFor[escrow.RankKey](), doc: "wilson (the default) or expectation"},
			limitParam, cursorParam},
		summary: "The sellers ranked highest",
		doc:     "Public to every actor."},
		(*server).topSellers),

	// Events.
	get(route{path: "/v1/events", name: "events", access: operatorOnly,
		query: []param{afterParam,
			{name: "limit", typ: reflect.TypeFor[int](), min: 1, max: eventLimit, doc: "the most events; 100 if absent"},
			{name: "wait", typ: reflect.TypeFor[time.Duration](),
				doc: "how long to wait for an event after `after` if there is none yet, such as 25s; capped by the handler's MaxWait. Absent: answer at once"}},
		summary: "The ledger's events after a sequence number, oldest first",
		doc: "Operators only: every event of every party. With wait, a long poll: it answers as soon as an event commits, or with no events " +
			"when the wait is over. Pass the answer's next as after."},
		(*server).events),
	{method: http.MethodGet, path: "/v1/events/stream", name: "event_stream", access: operatorOnly, status: http.StatusOK,
		query:   []param{afterParam},
		summary: "The ledger's events as server-sent events",
		doc: "Operators only. Each event is one message: `id:` its seq and `data:` its JSON on one line. A reconnecting client's " +
			"Last-Event-ID header takes the place of after. An idle stream sends a comment every MaxWait. It runs until the client goes away.",
		handle: (*server).stream},
}

// pathParams returns the names of the wildcards in a route's path.
func pathParams(path string) []string {
	var names []string
	for _, seg := range strings.Split(path, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			names = append(names, strings.TrimSuffix(name, "}"))
		}
	}
	return names
}
