package escrow

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Wire forms: the text and JSON of the public types, as the JSON section
// of the package documentation (doc.go) describes them.
//
// Every enumeration is written as a lower-case word, its Go name in
// snake_case ("awaiting_payment", "buyer", "request_refund"), through
// MarshalText and UnmarshalText, so it reads the same in JSON, in a URL and
// as a map key. String, by contrast, is for people and messages, and may
// be prose ("request a refund on").

// An enum is the text form of one enumeration: the word of each value,
// indexed by value. A value without a word ("") has no text form, except
// that the zero value's "" stands for "none" in enumerations whose zero is
// no value (no state, no score).
type enum struct {
	name  string   // what the values are, in messages: "state"
	words []string // by value
}

// text returns the word of value v, or an *EnumError naming it as shown.
func (e *enum) text(v int, shown string) ([]byte, error) {
	if v >= 0 && v < len(e.words) && (e.words[v] != "" || v == 0) {
		return []byte(e.words[v]), nil
	}
	return nil, e.unknown(shown)
}

// value returns the value whose word is b.
func (e *enum) value(b []byte) (int, error) {
	if i := slices.Index(e.words, string(b)); i >= 0 {
		return i, nil
	}
	return 0, e.unknown(string(b))
}

func (e *enum) unknown(text string) error {
	var want []string
	for _, w := range e.words {
		if w != "" {
			want = append(want, w)
		}
	}
	return &EnumError{Type: e.name, Text: text, Words: want}
}

var stateWords = enum{"state", []string{"", "awaiting_payment", "awaiting_shipment", "awaiting_confirmation",
	"refund_requested", "disputed", "completed", "refunded", "resolved", "closed",
	"return_requested", "awaiting_return", "return_shipped", "return_refused"}}

// MarshalText encodes s as its word: "awaiting_payment", "refund_requested";
// the zero State (no state) as "".
func (s State) MarshalText() ([]byte, error) { return stateWords.text(int(s), s.String()) }

// UnmarshalText decodes a state's word, or "" as the zero State. The Go
// names that earlier releases wrote ("AwaitingPayment") are read too.
func (s *State) UnmarshalText(b []byte) error {
	v, err := stateWords.value(b)
	if err != nil {
		for i, name := range stateNames {
			if i > 0 && name == string(b) {
				v, err = i, nil
			}
		}
	}
	if err != nil {
		return err
	}
	*s = State(v)
	return nil
}

var actionWords = func() enum {
	e := enum{name: "action", words: make([]string, len(rules))}
	for a, r := range rules {
		e.words[a] = strings.ReplaceAll(r.request, "-", "_")
	}
	return e
}()

// MarshalText encodes a as its word: "pay", "confirm_milestone",
// "request_refund", "rate".
func (a Action) MarshalText() ([]byte, error) { return actionWords.text(int(a), a.String()) }

// UnmarshalText decodes an action's word, or "" as the zero Action.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := actionWords.value(b)
	if err == nil {
		*a = Action(v)
	}
	return err
}

// roleWords are the words of the single roles, by bit.
var roleWords = enum{"role", []string{"buyer", "seller", "arbiter"}}

// MarshalText encodes r as its word: "buyer", "seller" or "arbiter".
// Roles combined with | are their words joined by commas, in that order
// ("buyer,seller"); the zero Role (nobody) is "".
func (r Role) MarshalText() ([]byte, error) {
	if r >= 1<<len(roleWords.words) {
		return nil, roleWords.unknown(r.String())
	}
	var b []byte
	for i, w := range roleWords.words {
		if r&(1<<i) != 0 {
			if len(b) > 0 {
				b = append(b, ',')
			}
			b = append(b, w...)
		}
	}
	return b, nil
}

// UnmarshalText decodes a role's word, or several joined by commas, each
// once, in any order; "" is the zero Role.
func (r *Role) UnmarshalText(b []byte) error {
	var v Role
	if len(b) > 0 {
		for _, w := range strings.Split(string(b), ",") {
			i, err := roleWords.value([]byte(w))
			if err != nil || v&(1<<i) != 0 {
				return roleWords.unknown(string(b))
			}
			v |= 1 << i
		}
	}
	*r = v
	return nil
}

var scoreWords = enum{"score", []string{"", "positive", "neutral", "negative"}}

// MarshalText encodes s as "positive", "neutral" or "negative"; the zero
// Score (none) as "".
func (s Score) MarshalText() ([]byte, error) { return scoreWords.text(int(s), s.String()) }

// UnmarshalText decodes a score's word, or "" as the zero Score.
func (s *Score) UnmarshalText(b []byte) error {
	v, err := scoreWords.value(b)
	if err == nil {
		*s = Score(v)
	}
	return err
}

var roundingWords = enum{"rounding mode", []string{"half_even", "half_up", "down", "up"}}

// MarshalText encodes r as "half_even", "half_up", "down" or "up".
func (r Rounding) MarshalText() ([]byte, error) { return roundingWords.text(int(r), r.String()) }

// UnmarshalText decodes a rounding mode's word. Since the zero Rounding is
// RoundHalfEven, "" is not one.
func (r *Rounding) UnmarshalText(b []byte) error {
	v, err := roundingWords.value(b)
	if err == nil {
		*r = Rounding(v)
	}
	return err
}

var bucketWords = enum{"bucket", []string{"available", "held"}}

// MarshalText encodes b as "available" or "held".
func (b Bucket) MarshalText() ([]byte, error) {
	return bucketWords.text(int(b), "Bucket("+strconv.Itoa(int(b))+")")
}

// UnmarshalText decodes a bucket's word.
func (b *Bucket) UnmarshalText(text []byte) error {
	v, err := bucketWords.value(text)
	if err == nil {
		*b = Bucket(v)
	}
	return err
}

var rankKeyWords = enum{"rank key", []string{"", "wilson", "expectation"}}

// MarshalText encodes k as "wilson" or "expectation"; the zero RankKey as "".
func (k RankKey) MarshalText() ([]byte, error) {
	return rankKeyWords.text(int(k), "RankKey("+strconv.Itoa(int(k))+")")
}

// UnmarshalText decodes a rank key's word, or "" as the zero RankKey.
func (k *RankKey) UnmarshalText(b []byte) error {
	v, err := rankKeyWords.value(b)
	if err == nil {
		*k = RankKey(v)
	}
	return err
}

// eventTypes are the event types, in the order of their words.
var eventTypes = []EventType{AccountOpened, Deposited, Withdrawn, EscrowOpened, EscrowPaid, EscrowShipped,
	EscrowReleased, EscrowRefunded, EscrowRefundRequested, EscrowRefundRefused, EscrowDisputed,
	EscrowResolved, EscrowClosed, RatingGiven, RatingRevised, RatingReplied,
	EscrowShippedPart, EscrowExtended, EscrowReturnRequested, EscrowReturnAgreed, EscrowReturnShipped,
	EscrowReturnRefused, EscrowReturnCancelled, EscrowEvidenceAdded, EscrowEscalated, RatingWithdrawn, RatingVoided}

var eventTypeWords = func() enum {
	e := enum{name: "event type"}
	for _, t := range eventTypes {
		e.words = append(e.words, snakeCase(string(t)))
	}
	return e
}()

// snakeCase returns a Go name in snake_case: EscrowRefundRequested is
// escrow_refund_requested.
func snakeCase(name string) string {
	var b strings.Builder
	for i, r := range name {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// MarshalText encodes t as its word: "escrow_paid", "rating_given"; the
// empty EventType (none) as "". The value of the constant ("EscrowPaid")
// is what storage keeps; the word is what JSON carries.
func (t EventType) MarshalText() ([]byte, error) {
	if i := slices.Index(eventTypes, t); i >= 0 {
		return []byte(eventTypeWords.words[i]), nil
	}
	if t == "" {
		return []byte{}, nil
	}
	return nil, eventTypeWords.unknown(string(t))
}

// UnmarshalText decodes an event type's word, or "" as the empty
// EventType. The constants' values, which earlier releases wrote
// ("EscrowPaid"), are read too.
func (t *EventType) UnmarshalText(b []byte) error {
	if i := slices.Index(eventTypes, EventType(b)); i >= 0 || len(b) == 0 {
		*t = EventType(b)
		return nil
	}
	i, err := eventTypeWords.value(b)
	if err == nil {
		*t = eventTypes[i]
	}
	return err
}

// entryKinds are the journal entry kinds; their values are their words.
var entryKinds = []EntryKind{EntryDeposit, EntryWithdrawal, EntryHold, EntryRelease, EntryRefund, EntrySplit}

var entryKindWords = func() enum {
	e := enum{name: "entry kind"}
	for _, k := range entryKinds {
		e.words = append(e.words, string(k))
	}
	return e
}()

// MarshalText encodes k as its value, which is its word: "deposit",
// "release"; the empty EntryKind (none) as "".
func (k EntryKind) MarshalText() ([]byte, error) {
	if k == "" || slices.Contains(entryKinds, k) {
		return []byte(k), nil
	}
	return nil, entryKindWords.unknown(string(k))
}

// UnmarshalText decodes an entry kind's word, or "" as the empty
// EntryKind.
func (k *EntryKind) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*k = ""
		return nil
	}
	i, err := entryKindWords.value(b)
	if err == nil {
		*k = entryKinds[i]
	}
	return err
}

// A duration is a time.Duration in JSON: a string as Duration.String
// writes it ("72h0m0s", "1.5s"), read back by time.ParseDuration, which
// gives the same value to the nanosecond. A number is refused, not taken
// as nanoseconds: 72 meant as hours would be 72ns.
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

func (d *duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return invalidArg("duration %s is not a string such as \"72h0m0s\"", shown(string(b)))
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return invalidArg("duration %s is not one time.ParseDuration reads, such as \"72h0m0s\"", quoted(s))
	}
	*d = duration(v)
	return nil
}

// timersJSON is Timers in JSON.
type timersJSON struct {
	PayWithin            duration `json:"pay_within,omitzero"`
	ShipWithin           duration `json:"ship_within,omitzero"`
	ConfirmWithin        duration `json:"confirm_within,omitzero"`
	RefundResponseWithin duration `json:"refund_response_within,omitzero"`
	ReturnResponseWithin duration `json:"return_response_within,omitzero"`
	ReturnShipWithin     duration `json:"return_ship_within,omitzero"`
	ReturnReceiveWithin  duration `json:"return_receive_within,omitzero"`
	ReturnDisputeWithin  duration `json:"return_dispute_within,omitzero"`
	ArbiterWithin        duration `json:"arbiter_within,omitzero"`
	BuyerExtension       duration `json:"buyer_extension,omitzero"`
	SellerExtensionLimit duration `json:"seller_extension_limit,omitzero"`
}

// fields returns pointers to v's fields, in the order of Timers.fields.
func (v *timersJSON) fields() []*duration {
	return []*duration{&v.PayWithin, &v.ShipWithin, &v.ConfirmWithin, &v.RefundResponseWithin,
		&v.ReturnResponseWithin, &v.ReturnShipWithin, &v.ReturnReceiveWithin, &v.ReturnDisputeWithin,
		&v.ArbiterWithin, &v.BuyerExtension, &v.SellerExtensionLimit}
}

// MarshalJSON encodes t with each duration as a string ("72h0m0s"),
// leaving out the zero ones, which take the defaults.
func (t Timers) MarshalJSON() ([]byte, error) {
	var v timersJSON
	out := v.fields()
	for i, f := range t.fields() {
		*out[i] = duration(*f)
	}
	return json.Marshal(v)
}

// UnmarshalJSON decodes what MarshalJSON encodes; a duration that is not
// such a string fails with an error wrapping ErrInvalidArgument.
func (t *Timers) UnmarshalJSON(b []byte) error {
	var v timersJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	var out Timers
	in := v.fields()
	for i, f := range out.fields() {
		*f = time.Duration(*in[i])
	}
	*t = out
	return nil
}

// extensionsJSON is Extensions in JSON.
type extensionsJSON struct {
	Buyer  duration `json:"buyer,omitzero"`
	Seller duration `json:"seller,omitzero"`
}

// MarshalJSON encodes x with each duration as a string ("72h0m0s"),
// leaving out the zero ones.
func (x Extensions) MarshalJSON() ([]byte, error) {
	return json.Marshal(extensionsJSON{duration(x.Buyer), duration(x.Seller)})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (x *Extensions) UnmarshalJSON(b []byte) error {
	var v extensionsJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*x = Extensions{time.Duration(v.Buyer), time.Duration(v.Seller)}
	return nil
}

// escrowFields is Escrow without its methods, so that its JSON form can
// be Escrow's with Paused as a duration.
type escrowFields Escrow

// escrowJSON is Escrow in JSON: its fields, and its Terms' in line, under
// their tags, with Paused, which hides escrowFields.Paused, as a string.
type escrowJSON struct {
	*escrowFields
	Paused duration `json:"paused,omitzero"`
}

// MarshalJSON encodes e with its fields and its Terms' in one object, and
// Paused as a duration string (see the JSON section of the package
// documentation).
func (e Escrow) MarshalJSON() ([]byte, error) {
	return json.Marshal(escrowJSON{(*escrowFields)(&e), duration(e.Paused)})
}

// UnmarshalJSON decodes what MarshalJSON encodes into e, replacing all of
// it: a field the JSON leaves out is zero.
func (e *Escrow) UnmarshalJSON(b []byte) error {
	var v Escrow
	w := escrowJSON{escrowFields: (*escrowFields)(&v)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	v.Paused = time.Duration(w.Paused)
	*e = v
	return nil
}

// signedMoney is an amount in JSON that may be negative: a bucket of
// WorldAccount's Balance, which is minus all the money deposited.
type signedMoney Money

func (m *signedMoney) UnmarshalJSON(b []byte) error {
	var v moneyJSON
	if err := json.Unmarshal(b, &v); err != nil || !strings.HasPrefix(v.Amount, "-") {
		return (*Money)(m).UnmarshalJSON(b)
	}
	v.Amount = v.Amount[1:]
	abs, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var pos Money
	if err := pos.UnmarshalJSON(abs); err != nil {
		return err
	}
	*m = signedMoney{units: -pos.units, cur: pos.cur}
	return nil
}

// UnmarshalJSON decodes a Balance from its fields' JSON. Unlike a Money
// alone, its amounts may be negative, as WorldAccount's are.
func (b *Balance) UnmarshalJSON(data []byte) error {
	type fields Balance
	var v Balance
	w := struct {
		*fields
		Available signedMoney `json:"available"`
		Held      signedMoney `json:"held"`
	}{fields: (*fields)(&v)}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	v.Available, v.Held = Money(w.Available), Money(w.Held)
	*b = v
	return nil
}

// stateWord is one of an EscrowQuery's states in JSON. A State is a byte,
// so encoding/json would read a string in place of a list of them as
// base64, each byte a state by number, numbers of no state among them;
// a list of stateWords is read only as a list of words.
type stateWord struct{ s State }

func (w *stateWord) UnmarshalText(b []byte) error { return w.s.UnmarshalText(b) }

// UnmarshalJSON decodes q's fields, its states as a list of their words
// ("disputed", or a Go name earlier releases wrote); a string in place of
// the list, or a word that names no state, is refused and q is left as it
// was. An empty list is no states, as it is encoded.
func (q *EscrowQuery) UnmarshalJSON(b []byte) error {
	type fields EscrowQuery
	v := *q // what the JSON leaves out keeps its value, as in any struct
	w := struct {
		*fields
		States json.RawMessage `json:"states,omitempty"`
	}{fields: (*fields)(&v)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.States != nil {
		var words []stateWord
		if err := json.Unmarshal(w.States, &words); err != nil {
			return err
		}
		v.States = nil
		for _, s := range words {
			v.States = append(v.States, s.s)
		}
	}
	*q = v
	return nil
}
