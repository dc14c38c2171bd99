package storagetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/google/go-cmp/cmp"
)

// TestDumpForm pins the dump's own form of records (see appendPlain):
// Go field names, embedded fields in line, plain numbers for enumerations
// and durations, state names, zero times written out, base64 bytes, maps
// in key order. Dumps kept by filestore's tests of old stores are in this
// form.
func TestDumpForm(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	defer s.Close()
	cny := func(units int64) escrow.Money { return escrow.RestoreMoney(units, escrow.CNY) }
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	err := s.Update(ctx, func(tx escrow.Tx) error {
		e := escrow.Escrow{Terms: escrow.Terms{ID: "e<1>", Buyer: "b", Seller: "s", Price: cny(1999),
			Milestones: []escrow.Milestone{{Name: "m", Amount: cny(1999)}},
			Timers:     escrow.Timers{PayWithin: time.Hour}, Metadata: map[string]string{"b": "2", "a": "<1>"}},
			Fee: escrow.FeeTerms{RatePPM: 6000, Fixed: cny(0), Rounding: escrow.RoundUp}, State: escrow.Disputed,
			Held: cny(1999), Shipments: []escrow.Shipment{{Tracking: "SF1", At: at}}, Extended: escrow.Extensions{Buyer: time.Minute},
			Evidence: []escrow.Evidence{{By: escrow.Seller, Note: "n", At: at}}, Paused: time.Second, DisputeLoser: escrow.Seller, Rated: escrow.Buyer | escrow.Seller,
			CreatedAt: at, Version: 3}
		if err := tx.PutEscrow(e); err != nil {
			return err
		}
		return tx.PutIdempotency(escrow.IdempotencyRecord{Key: "k", Request: "v1 pay", Result: []byte("{}"), At: at})
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Dump(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	compact := func(raw json.RawMessage) string {
		v, err := json.Marshal(raw) // RawMessage marshals compacted
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	want := map[string]string{
		"Escrows": `[{"ID":"e\u003c1\u003e","Buyer":"b","Seller":"s","Arbiter":"",` +
			`"Price":{"amount":"19.99","currency":"CNY"},"Item":"","SKU":"",` +
			`"Milestones":[{"Name":"m","Amount":{"amount":"19.99","currency":"CNY"}}],` +
			`"Timers":{"PayWithin":3600000000000,"ShipWithin":0,"ConfirmWithin":0,"RefundResponseWithin":0,` +
			`"ReturnResponseWithin":0,"ReturnShipWithin":0,"ReturnReceiveWithin":0,"ReturnDisputeWithin":0,` +
			`"ArbiterWithin":0,"BuyerExtension":0,"SellerExtensionLimit":0},` +
			`"Metadata":{"a":"\u003c1\u003e","b":"2"},` +
			`"Fee":{"RatePPM":6000,"Fixed":{"amount":"0.00","currency":"CNY"},"Rounding":3},"State":"Disputed",` +
			`"Held":{"amount":"19.99","currency":"CNY"},"Released":null,"Fees":null,"Refunded":null,` +
			`"NextMilestone":0,"Tracking":"","Shipments":[{"Tracking":"SF1","At":"2026-01-02T03:04:05.0000006Z"}],` +
			`"Extended":{"Buyer":60000000000,"Seller":0},"Refund":{"Amount":null,"Reason":"","At":"0001-01-01T00:00:00Z",` +
			`"RefuseReason":"","RefusedAt":"0001-01-01T00:00:00Z"},"Return":{"Address":"","AgreedAt":"0001-01-01T00:00:00Z",` +
			`"Tracking":"","ShippedAt":"0001-01-01T00:00:00Z","ReceivedAt":"0001-01-01T00:00:00Z","RefuseReason":"",` +
			`"RefusedAt":"0001-01-01T00:00:00Z"},"Dispute":{"By":0,"Reason":"","At":"0001-01-01T00:00:00Z",` +
			`"EscalatedAt":"0001-01-01T00:00:00Z"},"Evidence":[{"By":2,"Note":"n","Ref":"","At":"2026-01-02T03:04:05.0000006Z"}],` +
			`"Cart":"","CartSize":0,"Resume":"","Paused":1000000000,"DueAt":"0001-01-01T00:00:00Z","DisputeLoser":2,"Rated":3,` +
			`"RatingDueAt":"0001-01-01T00:00:00Z","CreatedAt":"2026-01-02T03:04:05.0000006Z",` +
			`"PaidAt":"0001-01-01T00:00:00Z","ShippedAt":"0001-01-01T00:00:00Z","EndedAt":"0001-01-01T00:00:00Z",` +
			`"UpdatedAt":"0001-01-01T00:00:00Z","Version":3}]`,
		"Idempotencies": `[{"Key":"k","Request":"v1 pay","Result":"e30=","At":"2026-01-02T03:04:05.0000006Z"}]`,
		"Ratings":       `null`,
	}
	for name, w := range want {
		if diff := cmp.Diff(w, compact(got[name])); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}
