package escrow

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// requestVersion tags the canonical form of a call's arguments that an
// idempotency record keeps. A record whose form carries another tag (or
// none: those written before the form was versioned) never matches, so a
// retry with its key fails with ErrIdempotencyMismatch until the record
// expires.
const requestVersion = "v1"

// A request renders one call and its arguments in the canonical form an
// idempotency record keeps, to tell a true retry from a key reused for
// something else:
//
//	v1 deposit account="alice" amount="12.30 CNY"
//
// Arguments follow the call's name in a fixed order, each as name=value;
// strings are quoted with strconv.Quote, so no value can pass for another
// argument. An argument whose value is zero (an empty string, 0, a zero
// amount of any currency or none) is left out, so that every zero form of
// an argument is one request, and so that an argument added in a later
// release, whose zero value keeps the old behaviour, leaves the form of
// every older call as it was. A change to the meaning of an existing
// argument needs a new requestVersion.
type request struct{ b strings.Builder }

func newRequest(call string) *request {
	r := &request{}
	r.b.WriteString(requestVersion)
	r.b.WriteByte(' ')
	r.b.WriteString(call)
	return r
}

func (r *request) field(name string) {
	r.b.WriteByte(' ')
	r.b.WriteString(name)
	r.b.WriteByte('=')
}

func (r *request) str(name, v string) *request {
	if v != "" {
		r.field(name)
		r.b.WriteString(strconv.Quote(v))
	}
	return r
}

func (r *request) int(name string, v int64) *request {
	if v != 0 {
		r.field(name)
		r.b.WriteString(strconv.FormatInt(v, 10))
	}
	return r
}

func (r *request) money(name string, m Money) *request {
	if !m.IsZero() {
		r.str(name, m.String())
	}
	return r
}

func (r *request) dur(name string, d time.Duration) *request {
	return r.int(name, int64(d))
}

func (r *request) String() string { return r.b.String() }

// terms adds the terms of an escrow, as Open normalised them.
func (r *request) terms(t *Terms) *request {
	r.str("id", t.ID).str("buyer", t.Buyer).str("seller", t.Seller).str("arbiter", t.Arbiter).
		money("price", t.Price).str("item", t.Item)
	for _, m := range t.Milestones {
		r.str("milestone", m.Name).money("milestone-amount", m.Amount)
	}
	r.dur("pay-within", t.Timers.PayWithin).dur("ship-within", t.Timers.ShipWithin).
		dur("confirm-within", t.Timers.ConfirmWithin).dur("refund-response-within", t.Timers.RefundResponseWithin).
		metadata("metadata", t.Metadata)
	// The timers added later are written only where they are not the
	// built-in defaults, so that a retry of an Open made before they
	// existed, which the defaults then fill in, is still the same call.
	d := DefaultTimers()
	later := []struct {
		name     string
		got, def time.Duration
	}{
		{"return-response-within", t.Timers.ReturnResponseWithin, d.ReturnResponseWithin},
		{"return-ship-within", t.Timers.ReturnShipWithin, d.ReturnShipWithin},
		{"return-receive-within", t.Timers.ReturnReceiveWithin, d.ReturnReceiveWithin},
		{"return-dispute-within", t.Timers.ReturnDisputeWithin, d.ReturnDisputeWithin},
		{"arbiter-within", t.Timers.ArbiterWithin, d.ArbiterWithin},
		{"buyer-extension", t.Timers.BuyerExtension, d.BuyerExtension},
		{"seller-extension-limit", t.Timers.SellerExtensionLimit, d.SellerExtensionLimit},
	}
	for _, x := range later {
		if x.got != x.def {
			r.dur(x.name, x.got)
		}
	}
	if t.SKU != "" { // added later too
		r.str("sku", t.SKU)
	}
	return r
}

// keyReused is the error for a key whose record holds request, another
// call than the one being made. It names that call in words read back
// from request, never request itself.
func keyReused(key, request string) error {
	e := &IdempotencyMismatchError{Key: key}
	call, fields := readRequest(request)
	e.Call = strings.ReplaceAll(call, "-", "_")
	switch call {
	case "open":
		e.Escrow = fields["id"]
	case "open-account":
		e.Account = fields["id"]
	default:
		e.Escrow, e.Account = fields["escrow"], fields["account"]
	}
	return e
}

// otherCalls are the names in requests of the calls that are not actions.
var otherCalls = []string{"open", "open-account", "deposit", "withdraw", "revise", "reply", "withdraw-rating",
	"void-rating", "pay-all"}

// readRequest reads back from a request the call's name and its string
// arguments, for messages. From a request of the form before versions
// ("pay|…") it reads only the name; from one it does not know, nothing.
func readRequest(s string) (call string, fields map[string]string) {
	known := func(name string) bool {
		return slices.Contains(otherCalls, name) || slices.ContainsFunc(rules[:], func(r rule) bool {
			return r.request != "" && r.request == name
		})
	}
	rest, versioned := strings.CutPrefix(s, requestVersion+" ")
	if !versioned {
		if name, _, ok := strings.Cut(s, "|"); ok && known(name) {
			return name, nil
		}
		return "", nil
	}
	call, rest, _ = strings.Cut(rest, " ")
	if !known(call) {
		return "", nil
	}
	fields = map[string]string{}
	for rest != "" {
		name, value, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		if quoted, err := strconv.QuotedPrefix(value); err == nil {
			if _, repeated := fields[name]; !repeated { // a cart's escrows: the first
				fields[name], _ = strconv.Unquote(quoted)
			}
			rest = strings.TrimPrefix(value[len(quoted):], " ")
			continue
		}
		_, rest, _ = strings.Cut(value, " ") // a number
	}
	return call, fields
}

// callPhrase words a call for messages, to take an escrow or an account
// after it ("pay" escrow "e1", "deposit into" account "alice"), given its
// word; "" for a word that names no call.
func callPhrase(word string) string {
	switch word {
	case "open", "open_account":
		return "open"
	case "deposit":
		return "deposit into"
	case "withdraw":
		return "withdraw from"
	case "revise":
		return "revise the rating on"
	case "reply":
		return "reply to the rating on"
	case "withdraw_rating":
		return "withdraw the rating on"
	case "void_rating":
		return "void the rating on"
	case "pay_all":
		return "pay the cart of"
	}
	var a Action
	if word != "" && a.UnmarshalText([]byte(word)) == nil {
		return rules[a].name
	}
	return ""
}
