package escrowhttp

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/escrowkit/escrow"
)

// Limits the handler takes unless Options say otherwise.
const (
	// DefaultMaxBodyBytes is the largest request body: 64 KiB, room for
	// terms with the most metadata the ledger takes (50 values of 500
	// bytes) and then some.
	DefaultMaxBodyBytes = 64 << 10
	// DefaultMaxWait is the longest a long poll of the events waits, and
	// how often an idle event stream sends a comment to keep proxies from
	// closing it.
	DefaultMaxWait = 30 * time.Second
)

// Options configure the handler that New returns. Actor is required; the
// zero value of every other field takes its default.
type Options struct {
	// Actor names the party a request comes from: an account ID, or an
	// arbiter's ID. It is the host's authentication: the handler reads no
	// credentials itself. An error, or an empty name, refuses the request
	// with 401 and the error's text as the message (its first 256 bytes,
	// as a refusal repeats what a client sent). Every route calls it
	// but the API's description (GET /v1/openapi.json).
	Actor func(*http.Request) (string, error)
	// Operator reports whether a request comes from the host itself (its
	// payment gateway, its back office): only operators deposit, withdraw,
	// read the whole event stream, and read accounts and escrows that are
	// not theirs. It is asked after Actor, so an operator has an actor
	// name too. Nil means nobody is an operator, and the operator routes
	// answer 403.
	Operator func(*http.Request) bool
	// MaxBodyBytes is the largest request body; a larger one is refused
	// with 413. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RateLimit caps each actor's requests; the zero value caps nothing.
	RateLimit RateLimit
	// MaxWait caps how long a long poll of GET /v1/events waits for an
	// event (its wait parameter), and is how often an idle event stream
	// sends a comment. Zero means DefaultMaxWait.
	MaxWait time.Duration
	// Logger is told of each request answered 500, with the error the
	// client is not shown. Nil means slog.Default(), as net/http logs to
	// the standard logger: an internal error must be seen somewhere.
	Logger *slog.Logger
	// Terms decides what POST /v1/escrows opens. The buyer alone writes
	// that body, so Terms is given the request and the terms as sent,
	// with the buyer filled in, before the ledger sees them: it may set
	// what the host decides (the arbiter, the timers, a listing's price)
	// or refuse the request with an error. An error that wraps one of
	// package escrow's is answered as the ledger's own error of that kind
	// is, with the host's text as the message where that kind's message
	// is the error's text (not_found, say; not conflict or timeout); any
	// other is 403 forbidden, with the error's text as the message. A
	// message is cut after its first 256 bytes, and says how long it
	// was, as every refusal's is. It runs for a
	// retry of a keyed request too, which replays only if the terms it
	// leaves are the same. It may not change the buyer: a request whose
	// buyer it changed is answered 500 and logged.
	//
	// Nil keeps the arbiter and the timers the host's: a body that names
	// an arbiter or sets a timer is refused with 403 forbidden, and the
	// escrow takes escrow.Options.Arbiter and the ledger's timers.
	// Otherwise a buyer could name a friend to settle a dispute, or give
	// the seller's money 50 years to be released.
	Terms func(r *http.Request, t *escrow.Terms) error
}

// A server is the handler New returns.
type server struct {
	ledger   *escrow.Ledger
	actor    func(*http.Request) (string, error)
	operator func(*http.Request) bool
	terms    func(*http.Request, *escrow.Terms) error // nil: the arbiter and timers are the host's
	maxBody  int64
	maxWait  time.Duration
	limit    *limiter // nil: no limit
	log      *slog.Logger
	mux      *http.ServeMux
	openapi  []byte // the API's description, built once
}

// New returns an http.Handler that serves l as the JSON API described in
// the package documentation, under /v1/. It listens nowhere: mount it on
// the host's own server, behind whatever authenticates its users.
//
// It fails with an error wrapping escrow.ErrInvalidArgument if l or
// opts.Actor is nil (so opts may not be nil), or a limit is negative.
func New(l *escrow.Ledger, opts *Options) (http.Handler, error) {
	switch {
	case l == nil:
		return nil, invalid("a nil Ledger")
	case opts == nil || opts.Actor == nil:
		return nil, invalid("Options.Actor is required: the handler has no other way to know who calls")
	case opts.MaxBodyBytes < 0 || opts.MaxWait < 0:
		return nil, invalid("a negative MaxBodyBytes or MaxWait")
	case !(opts.RateLimit.Rate >= 0) || math.IsInf(opts.RateLimit.Rate, 0) || opts.RateLimit.Burst < 0:
		return nil, invalid("a RateLimit that is negative or not a finite number")
	}
	s := &server{
		ledger:   l,
		actor:    opts.Actor,
		operator: opts.Operator,
		terms:    opts.Terms,
		maxBody:  cmp.Or(opts.MaxBodyBytes, DefaultMaxBodyBytes),
		maxWait:  cmp.Or(opts.MaxWait, DefaultMaxWait),
		limit:    newLimiter(opts.RateLimit),
		log:      opts.Logger,
		mux:      http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	doc, err := json.Marshal(openAPI())
	if err != nil {
		return nil, fmt.Errorf("escrowhttp: describing the API: %w", err)
	}
	s.openapi = doc
	for i := range routes {
		rt := &routes[i]
		s.mux.HandleFunc(rt.method+" "+rt.path, s.serve(rt))
	}
	s.mux.HandleFunc("/", s.noRoute)
	return s, nil
}

func invalid(what string) error {
	return fmt.Errorf("escrowhttp: %w: %s", escrow.ErrInvalidArgument, what)
}

// ServeHTTP answers one request.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Answers carry balances and trades: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// Cleanness is judged on the path as sent, segment by segment, as the
	// mux routes it: %2F and %2E inside a segment are part of an ID
	// ("a//b" is a%2F%2Fb, "." is %2E), and only "." and ".." as whole
	// segments, and empty ones, are steps in the path.
	if p := r.URL.EscapedPath(); p != cleanPath(p) {
		// The mux would redirect to the clean path, in HTML; no route
		// has such a path, and clients of a JSON API want JSON.
		s.fail(w, refuse("route_not_found", "no route for %s %s: the path is not in its clean form", r.Method, p))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// pathSegment is s escaped as one segment of a URL's path: "/" in it is
// %2F, and "." and ".." are %2E and %2E%2E, which a client resolving a
// relative URL would otherwise take as steps in the path.
func pathSegment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// cleanPath is p as http.ServeMux routes it: rooted, with no empty, "."
// or ".." segments, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}

// A call is one request on its way through a route.
type call struct {
	w        http.ResponseWriter
	r        *http.Request
	ctx      context.Context
	route    *route
	actor    string
	operator bool
	// key is the client's Idempotency-Key, "" without one; opts carry it,
	// prefixed with the actor, to the ledger, with Replayed. asked is set
	// once the route hands them to the ledger (see keyed).
	key      string
	opts     []escrow.CallOption
	asked    bool
	replayed bool
}

// keyed returns the options that carry the call's Idempotency-Key to the
// ledger, and notes that the ledger was asked: only then does the answer
// say whether it was replayed. Every route passes them to the one ledger
// call that changes something.
func (c *call) keyed() []escrow.CallOption {
	c.asked = true
	return c.opts
}

// serve returns the handler of one route.
func (s *server) serve(rt *route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := &call{w: w, r: r, ctx: r.Context(), route: rt}
		var v any
		err := s.admit(c)
		if err == nil {
			v, err = rt.handle(s, c)
		}
		if c.key != "" && c.asked {
			// Refused before the ledger saw the key, the call neither ran
			// nor was replayed: the header would say one or the other.
			w.Header().Set("Idempotent-Replayed", strconv.FormatBool(c.replayed))
		}
		switch {
		case err != nil:
			s.fail(w, s.classify(c, err))
		case v != nil: // nil: the route wrote its own answer
			s.respond(w, rt.status, v)
		}
	}
}

// admit lets a request through to its route, or returns why not: no
// actor (401), an empty bucket (429), not an operator (403), unknown
// query parameters (400), a body of the wrong type (415) or too large
// (413), or an Idempotency-Key that is empty or given twice (400).
func (s *server) admit(c *call) error {
	r, rt := c.r, c.route
	if rt.access == public {
		return s.checkQuery(c)
	}
	actor, err := s.actor(r)
	if err != nil {
		// The host's text may repeat what the client sent (a token, a
		// header): cut as every refusal cuts it, as Terms's errors are.
		return refuse("unauthenticated", "%s", err.Error())
	}
	if actor == "" {
		return refuse("unauthenticated", "the request names no actor")
	}
	c.actor = actor
	if s.limit != nil {
		if ok, wait := s.limit.allow(actor, time.Now()); !ok {
			e := refuse("rate_limited", "too many requests from %q; retry in %s", actor, wait.Round(time.Millisecond))
			e.header = map[string]string{"Retry-After": strconv.FormatInt(retryAfter(wait), 10)}
			e.details = map[string]any{"retry_after": retryAfter(wait)}
			return e
		}
	}
	c.operator = s.operator != nil && s.operator(r)
	if rt.access == operatorOnly && !c.operator {
		return refuse("forbidden", "only the platform's operators may %s %s", r.Method, r.URL.Path)
	}
	if err := s.checkQuery(c); err != nil {
		return err
	}
	if rt.body == nil {
		return nil
	}
	// A browser sends application/json to another site only after a CORS
	// preflight, so requiring it keeps a page elsewhere from making a
	// signed-in user pay, even with an empty body.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return refuse("unsupported_media_type", "a %s request must have Content-Type application/json", r.Method)
	}
	if r.ContentLength > s.maxBody {
		return tooLarge(s.maxBody)
	}
	r.Body = http.MaxBytesReader(c.w, r.Body, s.maxBody)
	if keys, ok := r.Header["Idempotency-Key"]; ok {
		if len(keys) > 1 {
			// Joined, the lines would make a key of their own, so a
			// retry that repeated a line would be a new call.
			return refuse("invalid_argument", "Idempotency-Key given in %d header lines: send one key, once", len(keys))
		}
		// Only the spaces and tabs HTTP allows around a field's value
		// are not the key's (net/http has taken them off already); any
		// other character is the client's, a no-break space or a C1
		// control such as U+0085 too, which keyProblem then judges.
		c.key = strings.Trim(keys[0], " \t")
		if c.key == "" {
			return refuse("invalid_argument", "an empty Idempotency-Key: send a key, or no header")
		}
		if problem := keyProblem(c.key); problem != "" {
			return refuse("invalid_argument", "the Idempotency-Key %s", problem)
		}
		c.opts = []escrow.CallOption{escrow.IdempotencyKey(ledgerKey(c.actor, c.key)), escrow.Replayed(&c.replayed)}
	}
	return nil
}

// maxKeyBytes is the longest Idempotency-Key a client may send, the
// ledger's own limit on a key.
const maxKeyBytes = 256

// keyProblem says what is wrong with a client's Idempotency-Key, in the
// ledger's words for a key ("is 300 bytes, more than 256"), or "" if
// nothing: it is held to the ledger's rule for a key by itself, not with
// the actor's namespace that ledgerKey adds.
func keyProblem(key string) string {
	if len(key) > maxKeyBytes {
		return fmt.Sprintf("is %d bytes, more than %d", len(key), maxKeyBytes)
	}
	if !utf8.ValidString(key) {
		return "is not valid UTF-8"
	}
	for _, r := range key {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return fmt.Sprintf("contains control character %U", r)
		}
	}
	return ""
}

// ledgerKey is the idempotency key the ledger keeps for an actor's key.
// The ledger's keys are global, so each actor's are put in a namespace of
// their own: the actor, quoted (so that no actor's prefix is another's),
// and a colon. One client's key then never meets another's, and the
// mismatch error for a reused key names only the actor's own calls.
//
// Where that form is longer than the ledger keeps, it is kept as
// "sha256:" and the hex of its SHA-256 instead, so that every key a
// client may send fits whatever the actor's name. The two forms cannot
// meet: the first always begins with a quote. Keys that fit keep the
// first form, which the ledger kept before the second was added.
func ledgerKey(actor, key string) string {
	k := strconv.Quote(actor) + ":" + key
	if len(k) <= maxKeyBytes {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkQuery refuses a query the handler cannot read whole, such as one
// with a malformed escape or a semicolon between parameters
// (invalid_argument), a query parameter the route does not take
// (unknown_field, as a body's unknown member is), or one given twice that
// may be given once (invalid_argument), so that a misspelt filter is an
// error rather than a listing of everything. (url.URL.Query, which the
// routes read, drops the parameters it cannot read without a word.)
func (s *server) checkQuery(c *call) error {
	query, err := url.ParseQuery(c.r.URL.RawQuery)
	if err != nil {
		return refuse("invalid_argument", "the query cannot be read: %v", err)
	}
	for name, values := range query {
		i := slices.IndexFunc(c.route.query, func(p param) bool { return p.name == name })
		switch {
		case i < 0:
			e := refuse("unknown_field", "unknown query parameter %q", name)
			e.details = map[string]any{"parameter": name}
			return e
		case len(values) > 1 && !c.route.query[i].repeated:
			return refuse("invalid_argument", "query parameter %q given %d times", name, len(values))
		}
	}
	return nil
}

// respond writes v as the JSON answer, with status.
func (s *server) respond(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.fail(w, s.classify(nil, fmt.Errorf("escrowhttp: encoding the answer: %w", err)))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// fail writes a refusal.
func (s *server) fail(w http.ResponseWriter, e *apiError) {
	for k, v := range e.header {
		w.Header().Set(k, v)
	}
	body := e.body()
	b, err := json.Marshal(body)
	if err != nil { // details the ledger gave that do not encode: send none
		body.Error.Details = nil
		b, _ = json.Marshal(body)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	w.Write(append(b, '\n'))
}

// noRoute answers a request that no route takes: 405 with the methods
// the path takes, if some route takes the path, else 404. The mux would
// answer both in plain text; clients of a JSON API want JSON.
func (s *server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		s.fail(w, refuse("route_not_found", "no route for %s %s", r.Method, r.URL.Path))
		return
	}
	e := refuse("method_not_allowed", "%s takes %s, not %s", r.URL.Path, strings.Join(allow, ", "), r.Method)
	e.header = map[string]string{"Allow": strings.Join(allow, ", ")}
	s.fail(w, e)
}
