package escrowhttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/escrowkit/escrow"
)

// An apiError is a refusal as the client sees it: a status, a code that
// names its class, a message for people and details for programs.
type apiError struct {
	status  int
	code    string
	message string
	details map[string]any
	header  map[string]string // sent with it: Allow, Retry-After
}

func (e *apiError) Error() string { return e.message }

// errorBody is the JSON of every refusal:
//
//	{"error":{"code":"insufficient_funds","message":"…","details":{…}}}
type errorBody struct {
	Error errorObject `json:"error"`
}

// errorObject is the refusal inside errorBody.
type errorObject struct {
	// Code names the class of the refusal, one of the codes below. It is
	// stable: clients switch on it, not on the message.
	Code string `json:"code"`
	// Message says what went wrong, for people; its wording may change.
	Message string `json:"message"`
	// Details carry what the refusal is about, by class: the escrow, the
	// action and the state of a transition refused, what an account needed
	// and had, the words an enumeration takes.
	Details map[string]any `json:"details,omitempty"`
}

// A class is one kind of refusal: its code and its status.
type class struct {
	code   string
	status int
	err    error // the ledger's sentinel it answers, if any
}

// classes lists every code the API answers with. The ledger's sentinels
// come in the order classify tries them; the rest are the handler's own.
var classes = []class{
	{"not_found", http.StatusNotFound, escrow.ErrNotFound},
	{"already_exists", http.StatusConflict, escrow.ErrExists},
	{"invalid_transition", http.StatusConflict, escrow.ErrInvalidTransition},
	{"already_rated", http.StatusConflict, escrow.ErrAlreadyRated},
	{"rating_closed", http.StatusConflict, escrow.ErrRatingClosed},
	{"no_arbiter", http.StatusConflict, escrow.ErrNoArbiter},
	{"idempotency_mismatch", http.StatusConflict, escrow.ErrIdempotencyMismatch},
	{"conflict", http.StatusConflict, escrow.ErrConflict},
	{"not_party", http.StatusForbidden, escrow.ErrNotParty},
	{"invalid_amount", http.StatusUnprocessableEntity, escrow.ErrInvalidAmount},
	{"amount_too_large", http.StatusUnprocessableEntity, escrow.ErrAmountTooLarge},
	{"unknown_currency", http.StatusUnprocessableEntity, escrow.ErrUnknownCurrency},
	{"currency_mismatch", http.StatusUnprocessableEntity, escrow.ErrCurrencyMismatch},
	{"insufficient_funds", http.StatusPaymentRequired, escrow.ErrInsufficientFunds},
	{"invalid_argument", http.StatusBadRequest, escrow.ErrInvalidArgument},
	{"closed", http.StatusServiceUnavailable, escrow.ErrClosed},
	{"read_only", http.StatusServiceUnavailable, escrow.ErrReadOnly},
	{"timeout", http.StatusServiceUnavailable, context.DeadlineExceeded},
	{"canceled", http.StatusServiceUnavailable, context.Canceled},

	{"cart_refused", http.StatusConflict, nil},
	{"invalid_json", http.StatusBadRequest, nil},
	{"unknown_field", http.StatusBadRequest, nil},
	{"unauthenticated", http.StatusUnauthorized, nil},
	{"forbidden", http.StatusForbidden, nil},
	{"route_not_found", http.StatusNotFound, nil},
	{"method_not_allowed", http.StatusMethodNotAllowed, nil},
	{"body_too_large", http.StatusRequestEntityTooLarge, nil},
	{"unsupported_media_type", http.StatusUnsupportedMediaType, nil},
	{"rate_limited", http.StatusTooManyRequests, nil},
	{"internal", http.StatusInternalServerError, nil},
}

// refuse returns the refusal of class code, with a message. A string
// among args, which may be what the client sent, is cut as clip cuts it.
func refuse(code, format string, args ...any) *apiError {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = clipped(s)
		}
	}
	for _, c := range classes {
		if c.code == code {
			return &apiError{status: c.status, code: code, message: fmt.Sprintf(format, args...)}
		}
	}
	panic("escrowhttp: no class " + code)
}

// maxEcho is the most bytes of a value the client sent that a refusal
// repeats, in its message or its details: room for any ID the ledger
// takes (128 bytes) and any Idempotency-Key (256), and more than any
// amount, currency or word.
const maxEcho = 256

// clip is s cut to its first maxEcho bytes, at a character's boundary,
// with an ellipsis and its length when longer: so a refusal of a value of
// 60 KB, or of a query of a megabyte, names it in a few bytes rather than
// sending it back whole.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:clipAt(s)], len(s))
}

// clipAt is where clip cuts s, longer than maxEcho.
func clipAt(s string) int {
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return cut
}

// A clipped string formats as clip has it: %q quotes the bytes kept and
// adds the ellipsis and the length after the quote.
type clipped string

func (s clipped) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		if len(s) <= maxEcho {
			fmt.Fprintf(f, "%q", string(s))
			return
		}
		fmt.Fprintf(f, "%q… (%d bytes)", string(s[:clipAt(string(s))]), len(s))
		return
	}
	fmt.Fprint(f, clip(string(s)))
}

// clipDetails returns details with every string the client may have sent
// cut by clip, at any depth. A "message" is left whole: it is a message
// built here or by the ledger, bounded already.
func clipDetails(v any) any {
	switch v := v.(type) {
	case string:
		return clip(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			if s, ok := x.(string); ok && k == "message" {
				out[k] = s
				continue
			}
			out[k] = clipDetails(x)
		}
		return out
	case []map[string]any:
		out := make([]map[string]any, len(v))
		for i, x := range v {
			out[i] = clipDetails(x).(map[string]any)
		}
		return out
	case []string:
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = clip(x)
		}
		return out
	}
	return v
}

// body is the JSON body of refusal e, its details clipped.
func (e *apiError) body() errorBody {
	o := errorObject{Code: e.code, Message: e.message}
	if e.details != nil {
		o.Details = clipDetails(e.details).(map[string]any)
	}
	return errorBody{o}
}

// tooLarge is the refusal of a body over limit bytes.
func tooLarge(limit int64) *apiError {
	e := refuse("body_too_large", "the request body is over %d bytes", limit)
	e.details = map[string]any{"limit": limit}
	return e
}

// fixedMessages replace the ledger's message where it speaks of the
// store, which is the host's business, not the client's.
var fixedMessages = map[string]string{
	"conflict":  "the request lost a race with another; retry it",
	"closed":    "the ledger is closed",
	"read_only": "the ledger is read-only",
	"timeout":   "the request ran out of time before the ledger answered",
	"canceled":  "the request ended before the ledger answered",
	"internal":  "internal error",
}

// ledgerClass returns the class of the ledger's sentinel err wraps, if
// it wraps one.
func ledgerClass(err error) (class, bool) {
	for _, cl := range classes {
		if cl.err != nil && errors.Is(err, cl.err) {
			return cl, true
		}
	}
	return class{}, false
}

// classify turns an error from the ledger, or from reading the request,
// into what the client is told. c is the call it came from; nil outside
// a route.
func (s *server) classify(c *call, err error) *apiError {
	if e, ok := as[*apiError](err); ok {
		return e
	}
	if e, ok := as[*http.MaxBytesError](err); ok {
		return tooLarge(e.Limit)
	}
	if e, ok := as[*escrow.CartError](err); ok {
		return s.cartRefused(c, e)
	}
	if cl, ok := ledgerClass(err); ok {
		a := &apiError{status: cl.status, code: cl.code, message: err.Error()}
		if msg, ok := fixedMessages[cl.code]; ok {
			a.message = msg
		}
		a.details = details(err)
		if e, ok := as[*escrow.RoleError](err); ok {
			a.message = roleMessage(e)
		}
		if e, ok := as[*escrow.IdempotencyMismatchError](err); ok && c != nil {
			a.message, a.details = mismatch(e, c.key)
		}
		return a
	}
	a := refuse("internal", "%s", fixedMessages["internal"])
	attrs := []slog.Attr{slog.Any("error", err)}
	if c != nil {
		attrs = append(attrs, slog.String("method", c.r.Method), slog.String("path", c.r.URL.Path), slog.String("actor", c.actor))
	}
	s.log.LogAttrs(context.Background(), slog.LevelError, "escrowhttp: internal error", attrs...)
	return a
}

// cartRefused words a CartError: none of the cart was paid, and details
// list each escrow refused with the code, message and details it would
// have been refused with alone, so that a client can tell the buyer which
// orders to take out of the cart.
func (s *server) cartRefused(c *call, e *escrow.CartError) *apiError {
	a := refuse("cart_refused", "none of the cart of %d was paid: %d of its escrows may not be", e.Size, len(e.Refused))
	refused := make([]map[string]any, len(e.Refused))
	for i, r := range e.Refused {
		one := s.classify(c, r.Err)
		refused[i] = map[string]any{"escrow": r.Escrow, "code": one.code, "message": one.message}
		if one.details != nil {
			refused[i]["details"] = one.details
		}
	}
	a.details = map[string]any{"size": e.Size, "refused": refused}
	return a
}

// details returns what a typed error of the ledger carries, for the
// client; nil for a plain sentinel.
func details(err error) map[string]any {
	if e, ok := as[*escrow.AmountError](err); ok {
		return map[string]any{"amount": e.Amount, "currency": e.Currency, "reason": e.Reason}
	}
	if e, ok := as[*escrow.RoleError](err); ok {
		// Not the state: a stranger who knows an escrow's ID learns no
		// more of it by trying an action.
		return map[string]any{"escrow": e.Escrow, "action": e.Action, "actor": e.Actor}
	}
	if e, ok := as[*escrow.TransitionError](err); ok {
		return map[string]any{"escrow": e.Escrow, "action": e.Action, "state": e.State}
	}
	if e, ok := as[*escrow.InsufficientFundsError](err); ok {
		return map[string]any{"account": e.Account, "needed": e.Needed, "available": e.Available}
	}
	if e, ok := as[*escrow.EnumError](err); ok {
		return map[string]any{"type": e.Type, "text": e.Text, "words": e.Words}
	}
	if e, ok := as[*escrow.NotFoundError](err); ok {
		// What was looked for: "escrow", "account" or "rating" (the one
		// its rater gave on escrow id), so that a client can tell which of
		// the things a call names is missing.
		d := map[string]any{"kind": e.Kind, "id": e.ID}
		if e.Rater != "" {
			d["rater"] = e.Rater
		}
		return d
	}
	if e, ok := as[*escrow.MetadataError](err); ok {
		if e.Keys > 0 {
			return map[string]any{"keys": e.Keys, "max_keys": escrow.MetadataMaxKeys}
		}
		return map[string]any{"key": e.Key, "reason": e.Reason}
	}
	return nil
}

// roleMessage words a RoleError without the escrow's state, which a
// stranger may not read.
func roleMessage(e *escrow.RoleError) string {
	return fmt.Sprintf("escrow: %q may not %s escrow %q: only %s may", clipped(e.Actor), e.Action, clipped(e.Escrow), e.Want)
}

// mismatch words an IdempotencyMismatchError with the key the client
// sent, not the one the ledger keeps (prefixed with the actor).
func mismatch(e *escrow.IdempotencyMismatchError, key string) (string, map[string]any) {
	shown := *e
	shown.Key = key
	d := map[string]any{"key": key}
	for name, v := range map[string]string{"call": e.Call, "escrow": e.Escrow, "account": e.Account} {
		if v != "" {
			d[name] = v
		}
	}
	return shown.Error(), d
}

// as is errors.As for a type: the first error in err's tree of type E.
func as[E error](err error) (E, bool) {
	var e E
	ok := errors.As(err, &e)
	return e, ok
}
