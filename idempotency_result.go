package escrow

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// An idempotency record keeps the call's result as JSON, and a record
// written by one release is replayed by the next for as long as the
// retention lasts (7 days by default), so the form of a stored result is
// versioned like the request beside it, and every version ever written is
// read:
//
//   - version 1, written until the public types had JSON forms of their
//     own: the result bare, as encoding/json rendered the types then (Go
//     field names, roles, scores and rounding modes as numbers, durations
//     in nanoseconds, unset times written out);
//   - version 2: {"v":2,"result":…}, the result in its documented JSON
//     form (the JSON section of doc.go).
//
// A new version is needed when a type's JSON form changes in a way that
// version's decoder would not read back exactly; the golden files in
// testdata/wire notice such a change. Versions 1 and 2 tell themselves
// apart by the "v" key, which no version 1 result has.
const resultVersion = 2

type resultEnvelope struct {
	V      int             `json:"v"`
	Result json.RawMessage `json:"result"`
}

// encodeResult renders a call's result, a pointer to it, for its record.
func encodeResult(result any) ([]byte, error) {
	r, err := json.Marshal(result)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resultEnvelope{V: resultVersion, Result: r})
}

// decodeResult decodes a stored result into out, a pointer to the call's
// result, whichever version wrote it. An escrow stored before some of its
// timers existed reads them as the built-in defaults, as from a store.
func decodeResult(b []byte, out any) error {
	if err := decodeResultAnyVersion(b, out); err != nil {
		return err
	}
	switch r := out.(type) {
	case *Escrow:
		r.Timers = r.Timers.stored()
	case *[]Escrow:
		for i := range *r {
			(*r)[i].Timers = (*r)[i].Timers.stored()
		}
	}
	return nil
}

func decodeResultAnyVersion(b []byte, out any) error {
	var env resultEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return err
	}
	switch env.V {
	case 0:
		return decodeResultV1(b, out)
	case resultVersion:
		// The call may be a retry of a transaction that set out before
		// it conflicted: a field the result leaves out must be zero.
		reflect.ValueOf(out).Elem().SetZero()
		return json.Unmarshal(env.Result, out)
	}
	return fmt.Errorf("a result in form %d, newer than this release reads", env.V)
}

// Version 1 decodes into these mirrors of the types as they were: no
// field tags, and plain numbers where the types now have words. They must
// not change.
type (
	accountV1 struct {
		ID        string
		System    bool
		CreatedAt time.Time
	}
	balanceV1 struct {
		Account  string
		Currency struct {
			Code  string
			Minor int
		}
		Available Money
		Held      Money
	}
	escrowV1 struct {
		ID, Buyer, Seller, Arbiter string
		Price                      Money
		Item                       string
		Milestones                 []struct {
			Name   string
			Amount Money
		}
		Timers struct{ PayWithin, ShipWithin, ConfirmWithin, RefundResponseWithin time.Duration }
		Fee    struct {
			RatePPM  int64
			Fixed    Money
			Rounding int
		}
		State                          string
		Held, Released, Fees, Refunded Money
		NextMilestone                  int
		Tracking                       string
		Refund                         struct {
			Amount Money
			Reason string
			At     time.Time
		}
		Resume                                           string
		Paused                                           time.Duration
		DueAt                                            time.Time
		DisputeLoser, Rated                              uint8
		RatingDueAt                                      time.Time
		CreatedAt, PaidAt, ShippedAt, EndedAt, UpdatedAt time.Time
		Version                                          uint64
	}
	ratingV1 struct {
		Escrow, Rater, Ratee string
		RateeRole            uint8
		Score                int8
		Details              struct{ Described, Communication, Shipping int8 }
		Comment              string
		At                   time.Time
		Default              bool
		Value                Money
		Weight               float64
		Revised              bool
		Original             int8
		RevisedAt            time.Time
		Reply                string
		RepliedAt            time.Time
		Counted              bool
		Reason               string
		Points               int64
	}
)

// decodeResultV1 decodes a version 1 result into out: *Account, *Balance,
// *Escrow or *Rating, the results of the calls that took keys then.
func decodeResultV1(b []byte, out any) error {
	switch out := out.(type) {
	case *Account:
		var v accountV1
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*out = Account{ID: v.ID, System: v.System, CreatedAt: v.CreatedAt}
	case *Balance:
		var v balanceV1
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*out = Balance{Account: v.Account, Currency: Currency{Code: v.Currency.Code, Minor: v.Currency.Minor},
			Available: v.Available, Held: v.Held}
	case *Escrow:
		return decodeEscrowV1(b, out)
	case *Rating:
		var v ratingV1
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*out = Rating{Escrow: v.Escrow, Rater: v.Rater, Ratee: v.Ratee, RateeRole: Role(v.RateeRole),
			Score: Score(v.Score), Comment: v.Comment, At: v.At,
			Default: v.Default, Value: v.Value, Weight: v.Weight, Revised: v.Revised,
			Original: Score(v.Original), RevisedAt: v.RevisedAt, Reply: v.Reply, RepliedAt: v.RepliedAt,
			Counted: v.Counted, Reason: v.Reason, Points: v.Points,
			Details: Details{Described: v.Details.Described, Communication: v.Details.Communication,
				Shipping: v.Details.Shipping}}
	default:
		return fmt.Errorf("no version 1 form of a %T", out)
	}
	return nil
}

func decodeEscrowV1(b []byte, out *Escrow) error {
	var v escrowV1
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	state, err := stateV1(v.State)
	if err != nil {
		return err
	}
	resume, err := stateV1(v.Resume)
	if err != nil {
		return err
	}
	var milestones []Milestone
	if v.Milestones != nil {
		milestones = make([]Milestone, len(v.Milestones))
		for i, m := range v.Milestones {
			milestones[i] = Milestone{Name: m.Name, Amount: m.Amount}
		}
	}
	*out = Escrow{
		Terms: Terms{ID: v.ID, Buyer: v.Buyer, Seller: v.Seller, Arbiter: v.Arbiter, Price: v.Price,
			Item: v.Item, Milestones: milestones, Timers: Timers{PayWithin: v.Timers.PayWithin,
				ShipWithin: v.Timers.ShipWithin, ConfirmWithin: v.Timers.ConfirmWithin,
				RefundResponseWithin: v.Timers.RefundResponseWithin}},
		Fee:   FeeTerms{RatePPM: v.Fee.RatePPM, Fixed: v.Fee.Fixed, Rounding: Rounding(v.Fee.Rounding)},
		State: state, Held: v.Held, Released: v.Released, Fees: v.Fees, Refunded: v.Refunded,
		NextMilestone: v.NextMilestone, Tracking: v.Tracking,
		Refund: RefundRequest{Amount: v.Refund.Amount, Reason: v.Refund.Reason, At: v.Refund.At},
		Resume: resume, Paused: v.Paused, DueAt: v.DueAt, DisputeLoser: Role(v.DisputeLoser),
		Rated: Role(v.Rated), RatingDueAt: v.RatingDueAt, CreatedAt: v.CreatedAt, PaidAt: v.PaidAt,
		ShippedAt: v.ShippedAt, EndedAt: v.EndedAt, UpdatedAt: v.UpdatedAt, Version: v.Version,
	}
	return nil
}

// stateV1 reads a state as version 1 wrote it: by its Go name, "" for none.
func stateV1(name string) (State, error) {
	if name == "" {
		return 0, nil
	}
	for _, s := range States() {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown state %q", name)
}
