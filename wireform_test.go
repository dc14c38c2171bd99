package escrow_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// The JSON form of every public type is locked by a golden file in
// testdata/wire: a change to a form shows up as a diff there, and must be
// one a host can live with (and, for the results of keyed calls, one the
// stored-result decoders read; see TestReplayStoredResults).
//
//	go test -run TestWireForms -update
//
// rewrites the files from the current encodings.
var update = flag.Bool("update", false, "TestWireForms: rewrite testdata/wire from the current encodings")

// A wireCase is one value of a type whose encoding is locked.
type wireCase struct {
	name  string
	value any
}

// at returns a fixed time plus d, in UTC as the ledger keeps times.
func at(d time.Duration) time.Time {
	return time.Date(2026, 3, 1, 9, 30, 0, 250_000_000, time.UTC).Add(d)
}

func jpy(s string) escrow.Money { return escrow.MustParseMoney(s, escrow.JPY) }

// wireForms returns, for each type, its golden file's name and the values
// it locks: a fully populated one, in which every field is set (so every
// field's form shows), and the zero value, in which every field is unset.
func wireForms() map[string][]wireCase {
	const h = time.Hour
	fullTerms := escrow.Terms{ID: "order-1001", Buyer: "alice", Seller: "teashop", Arbiter: "arb",
		Price: cny("199.00"), Item: "Longjing, 250 g <first flush> & \"more\"",
		Milestones: []escrow.Milestone{{Name: "tea", Amount: cny("150.00")}, {Name: "pot", Amount: cny("49.00")}},
		Timers: escrow.Timers{PayWithin: 72 * h, ShipWithin: 36*h + 30*time.Minute, ConfirmWithin: 1500 * time.Millisecond,
			RefundResponseWithin: 1<<63 - 1},
		Metadata: map[string]string{"order": "A-1001", "gift note": "for <Mei> & \"Lin\"\nwith love"}}
	fullEscrow := escrow.Escrow{Terms: fullTerms,
		Fee:   escrow.FeeTerms{RatePPM: 6000, Fixed: cny("0.50"), Rounding: escrow.RoundHalfUp},
		State: escrow.RefundRequested, Held: cny("49.00"), Released: cny("150.00"), Fees: cny("1.40"),
		Refunded: cny("0.00"), NextMilestone: 1, Tracking: "SF1234567890",
		Refund: escrow.RefundRequest{Amount: cny("49.00"), Reason: "the pot\narrived broken", At: at(5 * h),
			RefuseReason: "packed with care", RefusedAt: at(6 * h)},
		Dispute: escrow.DisputeClaim{By: escrow.Buyer, Reason: "see the photos", At: at(7 * h)},
		Resume:  escrow.AwaitingConfirmation, Paused: 4*h + 5*time.Minute + 250*time.Millisecond, DueAt: at(125 * h),
		DisputeLoser: escrow.Seller, Rated: escrow.Buyer | escrow.Seller, RatingDueAt: at(400 * h),
		CreatedAt: at(0), PaidAt: at(h), ShippedAt: at(2 * h), EndedAt: at(300 * h), UpdatedAt: at(5 * h), Version: 7}
	fullRating := escrow.Rating{Escrow: "order-1001", Rater: "alice", Ratee: "teashop", RateeRole: escrow.Seller,
		Score: escrow.Positive, Details: escrow.Details{Described: 5, Communication: 4, Shipping: 1},
		Comment: "good tea", At: at(301 * h), Default: true, Value: cny("199.00"), Weight: 2.3201462861110542,
		Revised: true, Original: escrow.Negative, RevisedAt: at(302 * h), Reply: "thank you", RepliedAt: at(303 * h),
		Counted: true, Reason: escrow.ReasonPairCap, Points: -1}
	fullView := escrow.View{Role: escrow.Seller, Unrated: true, Points: 12, Level: escrow.LevelFor(12),
		Total: escrow.Counts{Positive: 14, Neutral: 1, Negative: 2},
		Last7: escrow.Counts{Positive: 1}, Last30: escrow.Counts{Neutral: 1},
		Last180: escrow.Counts{Negative: 2}, Last365: escrow.Counts{Positive: 14, Neutral: 1, Negative: 2},
		PositiveRate: 0.875, RateBasis: 16, Wilson: 0.6395580949337519, Expectation: 0.8123456789012345,
		Uncertainty: 0.0625, Described: 4.5, Communication: 4.25, Shipping: 1.0 / 3}
	buyerView := escrow.View{Role: escrow.Buyer, Unrated: true, Level: escrow.LevelFor(0)}
	return map[string][]wireCase{
		"account": {{"full", escrow.Account{ID: "@fees", System: true, CreatedAt: at(0)}}, {"zero", escrow.Account{}}},
		"balance": {
			{"full", escrow.Balance{Account: "alice", Currency: escrow.CNY, Available: cny("1234.56"), Held: cny("0.01")}},
			{"world", escrow.Balance{Account: escrow.WorldAccount, Currency: escrow.JPY,
				Available: escrow.RestoreMoney(-5000, escrow.JPY), Held: jpy("0")}},
			{"zero", escrow.Balance{}}},
		"currency": {{"full", escrow.Currency{Code: "KWD", Minor: 3}}, {"zero", escrow.Currency{}}},
		"entry": {
			{"full", escrow.Entry{Seq: 42, At: at(h), Kind: escrow.EntrySplit, Escrow: "order-1001", Currency: escrow.CNY,
				Postings: []escrow.Posting{{Account: "alice", Bucket: escrow.Held, Change: -19900},
					{Account: "alice", Bucket: escrow.Available, Change: 10000},
					{Account: "teashop", Bucket: escrow.Available, Change: 9841},
					{Account: escrow.FeeAccount, Bucket: escrow.Available, Change: 59}}}},
			{"zero", escrow.Entry{}}},
		"event": {
			{"full", escrow.Event{Seq: 9, Type: escrow.EscrowReleased, At: at(3 * h), Account: "teashop", Escrow: "order-1001", Buyer: "alice", Seller: "teashop",
				Actor: "alice", ByTimer: true, State: escrow.Completed, Amount: cny("150.00"), Fee: cny("0.00"),
				Note: "milestone tea", Metadata: map[string]string{"order": "A-1001", "channel": "app"}}},
			{"zero", escrow.Event{}}},
		"terms": {{"full", fullTerms}, {"zero", escrow.Terms{}}},
		"timers": {{"full", fullTerms.Timers}, {"zero", escrow.Timers{}},
			{"fractions", escrow.Timers{PayWithin: time.Nanosecond, ShipWithin: 90*time.Minute + 5*time.Second + 7,
				ConfirmWithin: -time.Second}}},
		"escrow": {
			{"full", fullEscrow},
			{"opened", escrow.Escrow{Terms: escrow.Terms{ID: "order-1002", Buyer: "alice", Seller: "teashop",
				Price: jpy("1500"), Timers: escrow.DefaultTimers()},
				Fee: escrow.FeeTerms{Fixed: jpy("0")}, State: escrow.AwaitingPayment, Held: jpy("0"),
				Released: jpy("0"), Fees: jpy("0"), Refunded: jpy("0"), DueAt: at(72 * h), CreatedAt: at(0),
				UpdatedAt: at(0), Version: 1}},
			{"zero", escrow.Escrow{}}},
		"split": {{"full", escrow.Split{Buyer: cny("120.00"), Seller: cny("79.00")}},
			{"seller-only", escrow.Split{Seller: cny("199.00")}}, {"zero", escrow.Split{}}},
		"rating_input": {{"full", escrow.RatingInput{Score: escrow.Neutral,
			Details: escrow.Details{Described: 3, Shipping: 2}, Comment: "slow"}}, {"zero", escrow.RatingInput{}}},
		"rating": {{"full", fullRating}, {"zero", escrow.Rating{}}},
		"contribution": {{"full", escrow.Contribution{Rating: fullRating, BetaWeight: 1.9876, InRateWindow: true}},
			{"zero", escrow.Contribution{}}},
		"view":       {{"full", fullView}, {"zero", escrow.View{}}},
		"reputation": {{"full", escrow.Reputation{Party: "teashop", AsSeller: fullView, AsBuyer: buyerView}}, {"zero", escrow.Reputation{}}},
		"ranked":     {{"full", escrow.Ranked{Party: "teashop", View: fullView}}, {"zero", escrow.Ranked{}}},
		"concentration": {{"full", escrow.Concentration{Party: "teashop", Since: at(-33*h + 30*time.Minute - 250*time.Millisecond),
			Points: 12, Raters: 6, TopRaters: []escrow.RaterPoints{{Rater: "alice", Points: 6, New: true}, {Rater: "bo", Points: 2},
				{Rater: "chen", Points: 1}, {Rater: "dara", Points: 1, New: true}, {Rater: "eve", Points: 1}},
			TopRatersPoints: 11, TopRatersShare: 11.0 / 12, NewRaters: 2, NewRatersPoints: 7, NewRatersShare: 7.0 / 12}},
			{"none", escrow.Concentration{Party: "teashop", Since: at(-33*h + 30*time.Minute - 250*time.Millisecond),
				TopRaters: []escrow.RaterPoints{}}},
			{"zero", escrow.Concentration{}}},
		"aggregate": {{"full", escrow.Aggregate{Party: "teashop", Role: escrow.Seller, Points: 12, Positive: 14, Neutral: 1,
			Negative: 2, Windows: [5]escrow.Counts{{Positive: 1}, {Neutral: 1}, {Negative: 2}, {Positive: 14}, {Positive: 3, Negative: 1}},
			WindowsDay: 20513, BetaPositive: 20.25, BetaNegative: 0.5, BetaAt: at(24 * h),
			DetailSums: [3]int64{45, 40, 10}, DetailCounts: [3]int64{10, 10, 10}, Wilson: 0.64, Expectation: 0.81,
			UpdatedAt: at(25 * h), RekeyDay: 20514, DetailWindowSums: [3]int64{18, 14, 4}, DetailWindowCounts: [3]int64{4, 4, 3},
			DetailDays: true, UniquePositive: 11, UniqueNegative: 1, RatersKept: true}}, {"zero", escrow.Aggregate{}}},
		"day_count": {{"full", escrow.DayCount{Party: "teashop", Role: escrow.Buyer, Day: 20513, Positive: 3, Neutral: 2, Negative: 1,
			DetailSums: [3]int32{9, 8, 5}, DetailCounts: [3]int32{2, 2, 1}, UniquePositive: 2, UniqueNegative: 1}},
			{"zero", escrow.DayCount{}}},
		"rater_days": {{"full", escrow.RaterDays{Ratee: "teashop", Role: escrow.Seller, Rater: "alice",
			Positive: []int32{20500, 20513, 20513}, Negative: []int32{20510}}}, {"zero", escrow.RaterDays{}}},
		"consumer": {{"full", escrow.Consumer{Name: "notifier", Seq: 42, UpdatedAt: at(h)}}, {"zero", escrow.Consumer{}}},
		"item_mark": {{"full", escrow.ItemMark{Ratee: "teashop", Rater: "alice", Item: "LJ-250", Escrow: "order-1001", At: at(301 * h)}},
			{"zero", escrow.ItemMark{}}},
		"pair_month": {{"full", escrow.PairMonth{Ratee: "teashop", Rater: "alice", Month: "2026-03", Positive: 6, Negative: 2}},
			{"zero", escrow.PairMonth{}}},
		"party_role": {{"full", escrow.PartyRole{Party: "teashop", Role: escrow.Arbiter}}, {"zero", escrow.PartyRole{}}},
		"escrow_query": {{"full", escrow.EscrowQuery{Party: "teashop", Role: escrow.Seller | escrow.Arbiter,
			States: []escrow.State{escrow.Disputed, escrow.RefundRequested}, Limit: 50, Cursor: "opaque"}},
			{"zero", escrow.EscrowQuery{}}},
		"escrow_page": {{"full", escrow.EscrowPage{Escrows: []escrow.Escrow{fullEscrow}, Next: "opaque"}},
			{"last", escrow.EscrowPage{Escrows: []escrow.Escrow{}}}},
		"page": {{"full", escrow.Page{Limit: 50, Cursor: "opaque"}}, {"zero", escrow.Page{}}},
		"contribution_page": {{"full", escrow.ContributionPage{Contributions: []escrow.Contribution{{Rating: fullRating,
			BetaWeight: 1.5, InRateWindow: true}}, Next: "opaque"}},
			{"last", escrow.ContributionPage{Contributions: []escrow.Contribution{}}}},
		"ranked_page": {{"full", escrow.RankedPage{Sellers: []escrow.Ranked{{Party: "teashop", View: fullView}}, Next: "opaque"}},
			{"last", escrow.RankedPage{Sellers: []escrow.Ranked{}}}},
		"idempotency_record": {{"full", escrow.IdempotencyRecord{Key: "pay-order-1001", Request: `v1 pay escrow="order-1001" actor="alice"`,
			Result: []byte(`{"v":2}`), At: at(h)}}, {"zero", escrow.IdempotencyRecord{}}},
	}
}

// TestWireForms compares the encoding of every case with its golden file,
// and decodes the file back into exactly the value it came from.
func TestWireForms(t *testing.T) {
	for name, cases := range wireForms() {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("testdata", "wire", name+".json")
			doc := map[string]any{}
			for _, c := range cases {
				doc[c.name] = c.value
			}
			got, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s changed (-file +encoding); if the new form is meant, run with -update:\n%s", file, diff)
			}
			var golden map[string]json.RawMessage
			if err := json.Unmarshal(want, &golden); err != nil {
				t.Fatal(err)
			}
			for _, c := range cases {
				back := reflect.New(reflect.TypeOf(c.value))
				if err := json.Unmarshal(golden[c.name], back.Interface()); err != nil {
					t.Errorf("%s: decode: %v", c.name, err)
					continue
				}
				if diff := cmp.Diff(c.value, back.Elem().Interface()); diff != "" {
					t.Errorf("%s: decode(encode(x)) != x (-x +decoded):\n%s", c.name, diff)
				}
			}
		})
	}
}

// TestWireFormsLeaveOutUnsetTimes: a time that is not set is left out of
// every form, as the JSON section of the package documentation says,
// never written as the first instant of year 1, which a client would take
// for a date.
func TestWireFormsLeaveOutUnsetTimes(t *testing.T) {
	for name, cases := range wireForms() {
		for _, c := range cases {
			b, err := json.Marshal(c.value)
			if err != nil {
				t.Fatalf("%s/%s: %v", name, c.name, err)
			}
			if i := bytes.Index(b, []byte(`"0001-01-01T00:00:00Z"`)); i >= 0 {
				t.Errorf("%s/%s writes an unset time: ...%s", name, c.name, b[max(0, i-40):i+22])
			}
		}
	}
}

// TestWireFormsRoundTripFromLedger encodes and decodes what a ledger
// returns, after a scenario that sets most fields: every value comes back
// exactly.
func TestWireFormsRoundTripFromLedger(t *testing.T) {
	f := keyedWorld(t)
	values := runKeyedScenario(f)
	rep, err := f.l.Reputation(f.ctx, "bob")
	f.must("Reputation", err)
	explained, err := f.l.Explain(f.ctx, "bob", escrow.Page{Limit: 2})
	f.must("Explain", err)
	top, err := f.l.TopSellers(f.ctx, escrow.RankWilson, escrow.Page{Limit: 1})
	f.must("TopSellers", err)
	conc, err := f.l.Concentration(f.ctx, "bob")
	f.must("Concentration", err)
	events := eventsAfter(f, 0)
	journal, err := f.l.Journal(f.ctx, "alice", 0, 100)
	f.must("Journal", err)
	values = append(values, rep, explained, top, conc, events, journal)
	for i, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("value %d (%T): %v", i, v, err)
		}
		back := reflect.New(reflect.TypeOf(v))
		if err := json.Unmarshal(b, back.Interface()); err != nil {
			t.Fatalf("value %d (%T): decode %s: %v", i, v, b, err)
		}
		if diff := cmp.Diff(v, back.Elem().Interface()); diff != "" {
			t.Errorf("value %d (%T): decode(encode(x)) != x (-x +decoded):\n%s", i, v, diff)
		}
	}
}

// TestWireFormsRefused decodes JSON that is not a form: each fails with an
// error that says what was wrong, wrapping the sentinel a caller tests for.
func TestWireFormsRefused(t *testing.T) {
	tests := []struct {
		name string
		into any
		json string
		want error
		says string
	}{
		{"duration as a number", &escrow.Timers{}, `{"pay_within":259200000000000}`, escrow.ErrInvalidArgument, "is not a string"},
		{"duration in days", &escrow.Timers{}, `{"pay_within":"3d"}`, escrow.ErrInvalidArgument, `"3d"`},
		{"paused as a number", &escrow.Escrow{}, `{"paused":5}`, escrow.ErrInvalidArgument, "is not a string"},
		{"state unknown", &escrow.Escrow{}, `{"state":"shipped"}`, escrow.ErrInvalidArgument, `unknown state "shipped"`},
		{"role as a number", &escrow.Rating{}, `{"ratee_role":2}`, nil, "ratee_role"},
		{"role unknown", &escrow.Rating{}, `{"ratee_role":"shop"}`, escrow.ErrInvalidArgument, `unknown role "shop"`},
		{"score unknown", &escrow.RatingInput{}, `{"score":"great"}`, escrow.ErrInvalidArgument, `unknown score "great"`},
		{"rounding empty", &escrow.FeeTerms{}, `{"rounding":""}`, escrow.ErrInvalidArgument, `unknown rounding mode ""`},
		{"bucket unknown", &escrow.Posting{}, `{"bucket":"pending"}`, escrow.ErrInvalidArgument, `unknown bucket "pending"`},
		{"event type unknown", &escrow.Event{}, `{"type":"escrow_lost"}`, escrow.ErrInvalidArgument, `unknown event type`},
		{"entry kind unknown", &escrow.Entry{}, `{"kind":"gift"}`, escrow.ErrInvalidArgument, `unknown entry kind "gift"`},
		{"amount as a number", &escrow.Split{}, `{"buyer":{"amount":1,"currency":"CNY"}}`, escrow.ErrInvalidAmount, "amount"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := json.Unmarshal([]byte(tc.json), tc.into)
			if err == nil {
				t.Fatalf("%s decoded into %+v", tc.json, tc.into)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v does not wrap %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

// TestEscrowJSONReplaces decodes into an escrow that holds values: the
// decoded escrow replaces it whole, so a field the JSON leaves out (an
// unset time, no paused timer) is zero, not left over.
func TestEscrowJSONReplaces(t *testing.T) {
	full := wireForms()["escrow"][0].value.(escrow.Escrow)
	opened := wireForms()["escrow"][1].value.(escrow.Escrow)
	b, err := json.Marshal(opened)
	if err != nil {
		t.Fatal(err)
	}
	into := full
	if err := json.Unmarshal(b, &into); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(opened, into); diff != "" {
		t.Errorf("decoded over a full escrow (-want +got):\n%s", diff)
	}
}

// FuzzEscrowJSON decodes any bytes as an Escrow, a Rating and an Event:
// what decodes encodes, and decodes again to the same value.
func FuzzEscrowJSON(f *testing.F) {
	for _, name := range []string{"escrow", "rating", "event", "timers"} {
		b, err := os.ReadFile(filepath.Join("testdata", "wire", name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		var golden map[string]json.RawMessage
		if err := json.Unmarshal(b, &golden); err != nil {
			f.Fatal(err)
		}
		for _, raw := range golden {
			f.Add([]byte(raw))
		}
	}
	f.Add([]byte(`{"paused":"-1ns","rated":"seller,buyer","state":"AwaitingPayment","type":"EscrowPaid"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, into := range []any{new(escrow.Escrow), new(escrow.Rating), new(escrow.Event), new(escrow.Timers)} {
			if json.Unmarshal(b, into) != nil {
				continue
			}
			enc, err := json.Marshal(into)
			if err != nil {
				t.Fatalf("%T decoded from %s does not encode: %v", into, b, err)
			}
			again := reflect.New(reflect.TypeOf(into).Elem()).Interface()
			if err := json.Unmarshal(enc, again); err != nil {
				t.Fatalf("%T: its encoding %s does not decode: %v", into, enc, err)
			}
			if diff := cmp.Diff(into, again); diff != "" {
				t.Fatalf("%T: decode(encode(decode(b))) differs (-first +again):\n%s", into, diff)
			}
			if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
				t.Fatalf("%T: encodes as %s, then as %s", into, enc, enc2)
			}
		}
	})
}

// TestEscrowQueryStatesJSON: an EscrowQuery's states are words. A string
// in their place is refused, as encoding/json would otherwise read it as
// base64 bytes, each a state number, the numbers of no state too; and an
// empty list is no list, as it is encoded.
func TestEscrowQueryStatesJSON(t *testing.T) {
	for _, in := range []string{
		`{"party":"alice","states":"BQ=="}`, // [5]: disputed, by number
		`{"party":"alice","states":"/w=="}`, // [255]: no state
		`{"party":"alice","states":""}`,
		`{"party":"alice","states":[5]}`,
		`{"party":"alice","states":["shipped"]}`,
	} {
		q := escrow.EscrowQuery{Party: "bob", States: []escrow.State{escrow.Completed}}
		err := json.Unmarshal([]byte(in), &q)
		if err == nil {
			t.Errorf("%s decoded as %+v", in, q)
			continue
		}
		if q.Party != "bob" || len(q.States) != 1 || q.States[0] != escrow.Completed {
			t.Errorf("refused %s changed the query to %+v", in, q)
		}
	}
	var q escrow.EscrowQuery
	if err := json.Unmarshal([]byte(`{"party":"alice","states":["disputed","AwaitingPayment"],"limit":5}`), &q); err != nil {
		t.Fatal(err)
	}
	want := escrow.EscrowQuery{Party: "alice", States: []escrow.State{escrow.Disputed, escrow.AwaitingPayment}, Limit: 5}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("decoded query (-want +got):\n%s", diff)
	}
	q = escrow.EscrowQuery{}
	if err := json.Unmarshal([]byte(`{"party":"alice","states":[]}`), &q); err != nil || q.States != nil {
		t.Errorf(`"states":[] decodes as %#v, %v; want no states, as the query encodes`, q.States, err)
	}
	// As for any struct, what the JSON leaves out keeps its value.
	q = escrow.EscrowQuery{Party: "bob", States: []escrow.State{escrow.Completed}, Limit: 7}
	if err := json.Unmarshal([]byte(`{"party":"alice"}`), &q); err != nil {
		t.Fatal(err)
	}
	want = escrow.EscrowQuery{Party: "alice", States: []escrow.State{escrow.Completed}, Limit: 7}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("a query decoded over another (-want +got):\n%s", diff)
	}
}
