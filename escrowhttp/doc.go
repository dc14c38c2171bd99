// Package escrowhttp serves an escrow.Ledger as a JSON API over HTTP, so
// that a host whose own service is not written in Go can run the ledger
// beside it and call it, or let its users call it, over HTTP.
//
// # Basics
//
// New returns an http.Handler; it listens nowhere, so the host chooses the
// listener, TLS and timeouts, and whatever middleware it runs:
//
//	api, err := escrowhttp.New(ledger, &escrowhttp.Options{
//		Actor:    func(r *http.Request) (string, error) { return sessions.User(r) },
//		Operator: func(r *http.Request) bool { return gateway.Signed(r) },
//	})
//	mux.Handle("/v1/", api)
//
// Authentication stays the host's. Options.Actor names the party a
// request comes from, an account ID or an arbiter's ID, and the handler
// trusts it; it never reads credentials itself. Options.Operator names the
// host's own callers, its payment gateway and back office: only they move
// money in and out, read the whole event stream, and read what is not
// theirs.
//
// # Routes
//
// Every path is under /v1/. An ID in a path is one segment,
// percent-encoded ("order/1" is order%2F1, "a//b" is a%2F%2Fb), so that
// any ID the ledger takes can be reached; an ID that is "." or ".." is
// written %2E or %2E%2E, since as they are they would be steps in the
// path, which the handler refuses. The Location of what a POST makes is
// written so. A proxy that decodes %2E before it routes, as RFC 3986 lets
// it, turns those two IDs back into steps: a host behind one should keep
// them out of the IDs it lets its users choose. GET /v1/openapi.json
// describes every route, its parameters and bodies, and the schemas of
// what it answers.
//
//	GET  /v1/openapi.json                         this API in OpenAPI 3.1; needs no actor
//	POST /v1/accounts                             open the actor's own account (201)
//	GET  /v1/accounts/{id}                        an account: its owner or an operator
//	GET  /v1/accounts/{id}/balances               its balance in every currency
//	GET  /v1/accounts/{id}/balances/{currency}    its balance in one currency
//	GET  /v1/accounts/{id}/journal                its journal entries: ?after=&limit=
//	POST /v1/accounts/{id}/deposits               operators: {"amount":…}
//	POST /v1/accounts/{id}/withdrawals            operators: {"amount":…}
//	POST /v1/escrows                              open an escrow as its buyer: Terms (201)
//	GET  /v1/escrows                              the actor's escrows: ?party=&role=&state=&limit=&cursor=
//	GET  /v1/escrows/{id}                         an escrow: its parties or an operator
//	GET  /v1/escrows/{id}/history                 its events
//	POST /v1/escrows/{id}/pay                     the buyer
//	POST /v1/escrows/{id}/ship                    the seller: {"tracking":…}
//	POST /v1/escrows/{id}/ship_part               the seller, one part of the order: {"tracking":…}
//	POST /v1/escrows/{id}/extend                  the buyer or the seller: {"by":"72h0m0s"}, or {} for the buyer's default
//	POST /v1/escrows/{id}/confirm                 the buyer
//	POST /v1/escrows/{id}/confirm_milestone       the buyer: {"milestone":0}
//	POST /v1/escrows/{id}/cancel                  the buyer or the seller
//	POST /v1/escrows/{id}/refund                  the seller: {"amount":…}
//	POST /v1/escrows/{id}/request_refund          the buyer: {"amount":…,"reason":…}
//	POST /v1/escrows/{id}/agree_refund            the seller
//	POST /v1/escrows/{id}/refuse_refund           the seller: {"reason":…}
//	POST /v1/escrows/{id}/request_return          the buyer: {"amount":…,"reason":…}
//	POST /v1/escrows/{id}/agree_return            the seller: {"address":…}
//	POST /v1/escrows/{id}/ship_return             the buyer: {"tracking":…}
//	POST /v1/escrows/{id}/confirm_return          the seller: the refund is made
//	POST /v1/escrows/{id}/refuse_return           the seller: {"reason":…}
//	POST /v1/escrows/{id}/cancel_return           the buyer
//	POST /v1/escrows/{id}/dispute                 the buyer or the seller: {"reason":…}
//	POST /v1/escrows/{id}/add_evidence            a party or the arbiter: {"note":…,"ref":…}
//	POST /v1/escrows/{id}/resolve                 the arbiter: a Split, {"buyer":…,"seller":…}
//	POST /v1/carts/pay                            the buyer, all or none: {"escrows":[…]}
//	POST /v1/escrows/{id}/ratings                 rate the other party: a RatingInput (201)
//	POST /v1/escrows/{id}/ratings/{rater}/revise  the rater: {"score":…,"comment":…}
//	POST /v1/escrows/{id}/ratings/{rater}/reply   the rated party: {"text":…}
//	POST /v1/escrows/{id}/ratings/{rater}/withdraw the rater, a neutral or negative
//	POST /v1/escrows/{id}/ratings/{rater}/void    operators: {"reason":…}
//	GET  /v1/reputation/{party}                   a party's reputation
//	GET  /v1/reputation/{party}/ratings           the ratings behind it: ?limit=&cursor=
//	GET  /v1/reputation/{party}/concentration     a seller's points from its top and new raters
//	GET  /v1/top-sellers                          ?by=wilson|expectation&limit=&cursor=
//	GET  /v1/events                               operators: ?after=&limit=&wait=
//	GET  /v1/events/stream                        operators: server-sent events, ?after=
//
// The actions' paths end in the words escrow.Action marshals to, and each
// answers the escrow as the action left it. POST /v1/carts/pay pays
// several escrows at once, as escrow.Ledger.PayAll does, and answers
// {"escrows":[…]}, each paid, in the order given. A POST that makes an
// account or an escrow answers 201 with a Location relative to its own URL
// (so it holds wherever the host mounts the handler); one that makes a
// rating answers 201 with the rating and no Location, since a rating has
// no URL of its own. Every other success is 200.
//
// # Bodies and answers
//
// Bodies and answers are the ledger's own JSON wire forms (see the JSON
// section of package escrow): Terms, Split and RatingInput are bodies as
// they are, and an amount is {"amount":"199.00","currency":"CNY"}, with at
// most the currency's decimal places ("12.3" CNY is 12.30 CNY). A call's other arguments are the
// members of an object named as the ledger names them. Lists come in an
// object ({"balances":[…]}, {"events":[…],"next":7}), never bare.
//
// A POST must say Content-Type: application/json, even with no body (an
// empty body is {}, but a body of null is invalid_json, as any other that
// is not an object): a browser sends that type to another site only after
// a CORS preflight, so a page elsewhere cannot make a signed-in user pay.
// A body is read strictly: a member the call does not take, at any depth
// and in any letter case but its own, is refused (unknown_field), and so
// is a query parameter a route does not take; a query that cannot be read
// whole (a malformed %-escape, parameters split by ";") is
// invalid_argument, never read in part. An object that has a member
// twice, at any depth, is invalid_json, with the member's path in details:
// which of the two it means cannot be told. A body must be valid UTF-8,
// as JSON text is: bytes that are not, or a \u escape that is half of a
// UTF-16 surrogate pair, are refused (invalid_json, with the offset of the
// first in details) rather than read as U+FFFD, text the client never
// sent. A value of the wrong JSON type (a number where an amount or a
// timer takes a string) is invalid_json, with the field's full path
// ("price.amount", "timers.pay_within") in details, beside the kind
// expected and the kind got ("string", "integer", "object"); so is a
// number where an integer is meant that is not one its field can hold,
// such as 0.5, 1e0 or one out of range ("got":"number"). A value of the
// right kind that the ledger refuses is refused with the ledger's code:
// an amount's currency the ledger does not know, however it is spelt
// ("cny" as "XYZ"), is 422 unknown_currency with the field in details, as
// a currency in a path is, and an amount with more places than its
// currency takes is 422 invalid_amount.
//
// # Who may read what
//
// An account is read by its owner, the actor whose ID it is, and by
// operators; anyone else gets 403 before the ledger is read, so a stranger
// cannot tell whether an account exists. The system accounts, @world and
// @fees, are the platform's and no actor's: only operators read them.
//
// An escrow and its history are read by its buyer, seller and arbiter,
// and by operators; anyone else gets 403 not_party. An escrow ID nobody opened is 404 for everyone:
// escrow IDs are one namespace, chosen by buyers, and opening a taken ID
// answers 409 already_exists whatever the handler did on reads, so hiding
// an escrow's existence behind a 404 would promise what the API cannot
// keep. Hosts that want IDs unguessable choose them so. A refusal of an
// action to a stranger does not tell the escrow's state. Reputation, the
// ratings behind it, its concentration and the top sellers are public to
// every actor, as a shop's page is.
//
// # Idempotency
//
// Every POST takes an Idempotency-Key header, once (in two header lines
// it is 400 invalid_argument), passed to the ledger as
// escrow.IdempotencyKey: a retry with the same key and body answers the
// first call's result, with its status, and changes nothing; the same key
// with another body is 409 idempotency_mismatch. An answer the ledger gave
// to a keyed call carries Idempotent-Replayed: true if it was replayed,
// false if the call ran now or the ledger refused it (a refused call is
// not remembered). A keyed request refused before it reaches the ledger
// (a body that cannot be read, a route's own 403, a 413 or a 415) carries
// none: nothing ran and nothing was replayed.
//
// A key is 1 to 256 bytes of UTF-8 with no control character, as the
// ledger's keys are; any other is 400 invalid_argument, saying what is
// wrong with the key as sent. The ledger's keys are global, so the
// handler puts each actor's in a namespace of its own: it keeps the key
// as the actor, quoted as Go quotes strings, a colon and the client's key
// (alice's "k-1" is "alice":k-1), or, where that form is longer than the
// ledger's 256 bytes, as "sha256:" and the hex of its SHA-256. One
// client's key never meets another's.
//
// # Errors
//
// A refusal is {"error":{"code":…,"message":…,"details":{…}}}. The code
// names its class and is stable; the message is for people; details carry
// what the ledger's typed errors carry (the escrow, action and state of a
// refused transition, what an account needed and had, the words an
// enumeration takes, what was not found: {"kind":"account","id":"bob"},
// the field a body got wrong, the query parameter a route does not
// take). A refusal repeats a value the client sent, in its message or its
// details, only up to its first 256 bytes, then says how long it was
// ("… (61440 bytes)"), so that a large body or query is not sent back
// whole. A cart that may not be paid is cart_refused,
// whatever the reasons; its details are the cart's size and the escrows
// refused, each with the code, message and details it would have been
// refused with alone:
//
//	{"error":{"code":"cart_refused","message":…,"details":{"size":3,"refused":[
//	  {"escrow":"o-2","code":"invalid_transition","message":…,"details":{…}}]}}}
//
//	400 invalid_argument, invalid_json, unknown_field
//	401 unauthenticated        no actor
//	402 insufficient_funds
//	403 not_party, forbidden   the wrong party; not the actor's, or not an operator
//	404 not_found, route_not_found   route_not_found for a path not in its clean
//	                           form too (an empty, "." or ".." segment as sent,
//	                           not percent-encoded), which is not redirected
//	405 method_not_allowed     with an Allow header
//	409 invalid_transition, already_exists, already_rated, rating_closed,
//	    no_arbiter, idempotency_mismatch, conflict, cart_refused
//	413 body_too_large
//	415 unsupported_media_type
//	422 invalid_amount, amount_too_large, unknown_currency, currency_mismatch
//	429 rate_limited           with a Retry-After header
//	500 internal               the message says no more; Options.Logger is told
//	503 closed, read_only, timeout, canceled
//
// # Events
//
// The ledger's events, its transactional outbox, are the operators': GET
// /v1/events reads a page after a seq, and with wait (a duration such as
// 25s, capped by Options.MaxWait) it is a long poll, answering as soon as
// an event commits, or with no events when the wait is over; a HEAD of
// either answers at once. GET
// /v1/events/stream sends them as server-sent events: each is one message
// whose id is its seq and whose data is its JSON on one line. A
// reconnecting client's Last-Event-ID resumes after it. An idle stream
// sends a comment every MaxWait to keep proxies from closing it, and runs
// until the client goes away; a failure of the ledger is sent as an event
// named error, with a refusal as its data, and ends it. While a long poll
// or a stream waits, the handler moves its connection's write deadline
// forward, so that a server's WriteTimeout does not cut it.
//
// # Caveats
//
//   - The rate limit is per actor and per handler: replicas of the host
//     each keep their own buckets.
//   - Long polls and streams wake at once on commits made through the same
//     Ledger, and on those made through another Ledger on the same store
//     if the store is an escrow.EventNotifier: memstore and filestore are,
//     for the Ledgers of one process, and pgstore is, for every process on
//     the database. On any other store, events committed through another
//     Ledger are seen within escrow.Options.EventPoll.
//   - Operators act on escrows as their Actor: being an operator lets one
//     read any escrow, not take its parties' actions.
//   - The buyer alone writes the body of POST /v1/escrows. The price
//     and the milestones are the buyer's, and the seller accepts them by
//     shipping, or declines with a refund; the arbiter and the timers are
//     the host's unless Options.Terms lets the buyer choose them.
//   - The handler fires no timers: the host runs Ledger.RunTimers, or
//     ProcessDue, as it would without it.
package escrowhttp
