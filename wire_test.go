package escrow_test

import (
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// textEnum is one enumeration's text form as a test sees it: each value
// with its word, the zero value's word if it has one, and values that have
// none.
type textEnum struct {
	name    string
	words   map[any]string // value → word, every value of the enumeration
	invalid []any          // values with no word
	// legacy maps words that earlier releases wrote, and that decode
	// still, to their values.
	legacy map[string]any
}

func textEnums() []textEnum {
	return []textEnum{
		{name: "State", words: map[any]string{
			escrow.State(0):             "",
			escrow.AwaitingPayment:      "awaiting_payment",
			escrow.AwaitingShipment:     "awaiting_shipment",
			escrow.AwaitingConfirmation: "awaiting_confirmation",
			escrow.RefundRequested:      "refund_requested",
			escrow.Disputed:             "disputed",
			escrow.Completed:            "completed",
			escrow.Refunded:             "refunded",
			escrow.Resolved:             "resolved",
			escrow.Closed:               "closed",
			escrow.ReturnRequested:      "return_requested",
			escrow.AwaitingReturn:       "awaiting_return",
			escrow.ReturnShipped:        "return_shipped",
			escrow.ReturnRefused:        "return_refused",
		}, invalid: []any{escrow.State(14), escrow.State(255)},
			legacy: map[string]any{"AwaitingPayment": escrow.AwaitingPayment, "RefundRequested": escrow.RefundRequested,
				"Closed": escrow.Closed}},
		{name: "Action", words: map[any]string{
			escrow.Action(0):              "",
			escrow.ActionPay:              "pay",
			escrow.ActionShip:             "ship",
			escrow.ActionConfirm:          "confirm",
			escrow.ActionConfirmMilestone: "confirm_milestone",
			escrow.ActionCancel:           "cancel",
			escrow.ActionRefund:           "refund",
			escrow.ActionRequestRefund:    "request_refund",
			escrow.ActionAgreeRefund:      "agree_refund",
			escrow.ActionRefuseRefund:     "refuse_refund",
			escrow.ActionDispute:          "dispute",
			escrow.ActionResolve:          "resolve",
			escrow.ActionRate:             "rate",
			escrow.ActionShipPart:         "ship_part",
			escrow.ActionExtend:           "extend",
			escrow.ActionRequestReturn:    "request_return",
			escrow.ActionAgreeReturn:      "agree_return",
			escrow.ActionShipReturn:       "ship_return",
			escrow.ActionConfirmReturn:    "confirm_return",
			escrow.ActionRefuseReturn:     "refuse_return",
			escrow.ActionCancelReturn:     "cancel_return",
			escrow.ActionAddEvidence:      "add_evidence",
			escrow.ActionEscalate:         "escalate",
		}, invalid: []any{escrow.Action(23), escrow.Action(200)}},
		{name: "Role", words: map[any]string{
			escrow.Role(0):                                "",
			escrow.Buyer:                                  "buyer",
			escrow.Seller:                                 "seller",
			escrow.Arbiter:                                "arbiter",
			escrow.Buyer | escrow.Seller:                  "buyer,seller",
			escrow.Buyer | escrow.Arbiter:                 "buyer,arbiter",
			escrow.Seller | escrow.Arbiter:                "seller,arbiter",
			escrow.Buyer | escrow.Seller | escrow.Arbiter: "buyer,seller,arbiter",
		}, invalid: []any{escrow.Role(8), escrow.Role(9), escrow.Role(255)},
			legacy: map[string]any{"seller,buyer": escrow.Buyer | escrow.Seller}},
		{name: "Score", words: map[any]string{
			escrow.Score(0): "",
			escrow.Positive: "positive",
			escrow.Neutral:  "neutral",
			escrow.Negative: "negative",
		}, invalid: []any{escrow.Score(4), escrow.Score(-1)}},
		{name: "Rounding", words: map[any]string{
			escrow.RoundHalfEven: "half_even",
			escrow.RoundHalfUp:   "half_up",
			escrow.RoundDown:     "down",
			escrow.RoundUp:       "up",
		}, invalid: []any{escrow.Rounding(4), escrow.Rounding(-1)}},
		{name: "Bucket", words: map[any]string{
			escrow.Available: "available",
			escrow.Held:      "held",
		}, invalid: []any{escrow.Bucket(2)}},
		{name: "RankKey", words: map[any]string{
			escrow.RankKey(0):      "",
			escrow.RankWilson:      "wilson",
			escrow.RankExpectation: "expectation",
		}, invalid: []any{escrow.RankKey(3)}},
		{name: "EventType", words: map[any]string{
			escrow.EventType(""):         "",
			escrow.AccountOpened:         "account_opened",
			escrow.Deposited:             "deposited",
			escrow.Withdrawn:             "withdrawn",
			escrow.EscrowOpened:          "escrow_opened",
			escrow.EscrowPaid:            "escrow_paid",
			escrow.EscrowShipped:         "escrow_shipped",
			escrow.EscrowReleased:        "escrow_released",
			escrow.EscrowRefunded:        "escrow_refunded",
			escrow.EscrowRefundRequested: "escrow_refund_requested",
			escrow.EscrowRefundRefused:   "escrow_refund_refused",
			escrow.EscrowDisputed:        "escrow_disputed",
			escrow.EscrowResolved:        "escrow_resolved",
			escrow.EscrowClosed:          "escrow_closed",
			escrow.RatingGiven:           "rating_given",
			escrow.RatingRevised:         "rating_revised",
			escrow.RatingReplied:         "rating_replied",
			escrow.EscrowShippedPart:     "escrow_shipped_part",
			escrow.EscrowExtended:        "escrow_extended",
			escrow.EscrowReturnRequested: "escrow_return_requested",
			escrow.EscrowReturnAgreed:    "escrow_return_agreed",
			escrow.EscrowReturnShipped:   "escrow_return_shipped",
			escrow.EscrowReturnRefused:   "escrow_return_refused",
			escrow.EscrowReturnCancelled: "escrow_return_cancelled",
			escrow.EscrowEvidenceAdded:   "escrow_evidence_added",
			escrow.EscrowEscalated:       "escrow_escalated",
		}, invalid: []any{escrow.EventType("EscrowLost"), escrow.EventType("escrow_paid")},
			legacy: map[string]any{"EscrowPaid": escrow.EscrowPaid, "RatingGiven": escrow.RatingGiven}},
		{name: "EntryKind", words: map[any]string{
			escrow.EntryKind(""):   "",
			escrow.EntryDeposit:    "deposit",
			escrow.EntryWithdrawal: "withdrawal",
			escrow.EntryHold:       "hold",
			escrow.EntryRelease:    "release",
			escrow.EntryRefund:     "refund",
			escrow.EntrySplit:      "split",
		}, invalid: []any{escrow.EntryKind("Deposit")}},
	}
}

// newOf returns a pointer to a new value of v's type, as an unmarshaler.
func newOf(v any) encoding.TextUnmarshaler {
	return reflect.New(reflect.TypeOf(v)).Interface().(encoding.TextUnmarshaler)
}

func elem(u encoding.TextUnmarshaler) any { return reflect.ValueOf(u).Elem().Interface() }

// TestEnumText pins the word of every value of every enumeration, and
// decodes each word back to its value.
func TestEnumText(t *testing.T) {
	for _, e := range textEnums() {
		t.Run(e.name, func(t *testing.T) {
			for v, word := range e.words {
				b, err := v.(encoding.TextMarshaler).MarshalText()
				if err != nil || string(b) != word {
					t.Errorf("%v.MarshalText() = %q, %v; want %q", v, b, err, word)
				}
				back := newOf(v)
				if err := back.UnmarshalText([]byte(word)); err != nil || elem(back) != v {
					t.Errorf("UnmarshalText(%q) = %v, %v; want %v", word, elem(back), err, v)
				}
			}
			for word, v := range e.legacy {
				back := newOf(v)
				if err := back.UnmarshalText([]byte(word)); err != nil || elem(back) != v {
					t.Errorf("UnmarshalText(%q), a word of earlier releases = %v, %v; want %v", word, elem(back), err, v)
				}
			}
			for _, v := range e.invalid {
				b, err := v.(encoding.TextMarshaler).MarshalText()
				var ee *escrow.EnumError
				if !errors.Is(err, escrow.ErrInvalidArgument) || !errors.As(err, &ee) {
					t.Errorf("%#v.MarshalText() = %q, %v; want an EnumError", v, b, err)
				}
			}
		})
	}
}

// TestEnumTextRefused decodes words that name no value: each fails with an
// EnumError that names the enumeration, the word and the words there are,
// and leaves the value as it was.
func TestEnumTextRefused(t *testing.T) {
	bad := []string{" pay", "Pay", "PAY", "pay ", "buyer,", ",buyer", "buyer,buyer", "buyer;seller",
		"positive\x00", "awaitingpayment", "Awaiting_Payment", "3", "State(3)", "escrowPaid", "held,available"}
	for _, e := range textEnums() {
		t.Run(e.name, func(t *testing.T) {
			var some any
			for v, w := range e.words {
				if w != "" {
					some = v
					break
				}
			}
			for _, word := range bad {
				if _, known := e.legacy[word]; known {
					continue
				}
				known := false
				for _, w := range e.words {
					known = known || w == word
				}
				if known {
					continue
				}
				u := newOf(some)
				reflect.ValueOf(u).Elem().Set(reflect.ValueOf(some))
				err := u.UnmarshalText([]byte(word))
				var ee *escrow.EnumError
				if !errors.As(err, &ee) || !errors.Is(err, escrow.ErrInvalidArgument) {
					t.Fatalf("UnmarshalText(%q) = %v, want an EnumError", word, err)
				}
				if ee.Text != word || len(ee.Words) == 0 {
					t.Errorf("UnmarshalText(%q): EnumError %+v does not name the word and the words", word, ee)
				}
				if got := elem(u); got != some {
					t.Errorf("a refused UnmarshalText(%q) changed the value from %v to %v", word, some, got)
				}
			}
		})
	}
	// The message says what was wrong, and what would be right.
	var s escrow.State
	err := s.UnmarshalText([]byte("shipped"))
	want := `escrow: invalid argument: unknown state "shipped" (want one of awaiting_payment, awaiting_shipment, ` +
		`awaiting_confirmation, refund_requested, disputed, completed, refunded, resolved, closed, ` +
		`return_requested, awaiting_return, return_shipped, return_refused)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

// TestEnumJSON shows that the words are what JSON carries, as values and
// as map keys.
func TestEnumJSON(t *testing.T) {
	in := struct {
		State escrow.State
		Roles map[escrow.Role]escrow.Score
	}{escrow.RefundRequested, map[escrow.Role]escrow.Score{escrow.Buyer: escrow.Positive, escrow.Seller: escrow.Negative}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"State":"refund_requested","Roles":{"buyer":"positive","seller":"negative"}}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	out := in
	out.State, out.Roles = 0, nil
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-in +out):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"State":3}`), &out); err == nil {
		t.Error("a state as a number decoded")
	}
}

// FuzzEnumText decodes any text as every enumeration: either it is
// refused with an EnumError and the value is unchanged, or it names a
// value whose word decodes to that value again.
func FuzzEnumText(f *testing.F) {
	for _, e := range textEnums() {
		for _, w := range e.words {
			f.Add(w)
		}
		for w := range e.legacy {
			f.Add(w)
		}
	}
	f.Add("buyer,seller,arbiter,buyer")
	enums := textEnums()
	f.Fuzz(func(t *testing.T, text string) {
		for _, e := range enums {
			var zero any
			for v := range e.words {
				zero = reflect.Zero(reflect.TypeOf(v)).Interface()
				break
			}
			u := newOf(zero)
			if err := u.UnmarshalText([]byte(text)); err != nil {
				var ee *escrow.EnumError
				if !errors.As(err, &ee) || elem(u) != zero {
					t.Fatalf("%s: UnmarshalText(%q) = %v leaving %v", e.name, text, err, elem(u))
				}
				continue
			}
			v := elem(u)
			word, err := v.(encoding.TextMarshaler).MarshalText()
			if err != nil {
				t.Fatalf("%s: %q decoded to %v, which does not encode: %v", e.name, text, v, err)
			}
			again := newOf(zero)
			if err := again.UnmarshalText(word); err != nil || elem(again) != v {
				t.Fatalf("%s: %q is %v, whose word %q decodes to %v, %v", e.name, text, v, word, elem(again), err)
			}
		}
	})
}
