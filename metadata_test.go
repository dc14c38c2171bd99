package escrow_test

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// orderData is metadata as a shop might keep it.
func orderData() map[string]string {
	return map[string]string{"order": "A-1001", "customer": "c-77", "note": "gift wrap\nno invoice"}
}

// openWithMetadata opens escrow id from alice to bob, arbiter carol, for
// 100.00, with md; alice and bob must have accounts.
func openWithMetadata(w *world, id string, md map[string]string, opts ...escrow.CallOption) escrow.Escrow {
	w.t.Helper()
	e, err := w.l.Open(w.ctx, escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Arbiter: "carol",
		Price: cny("100.00"), Metadata: md}, opts...)
	w.must("Open "+id, err)
	return e
}

// TestMetadataOnTheEscrowAndItsEvents: metadata given to Open comes back
// on the escrow, from every call, and on every event of the escrow: the
// parties' actions, the timers' and the ratings'. Account events carry
// none.
func TestMetadataOnTheEscrowAndItsEvents(t *testing.T) {
	w := newFixture(t)
	want := orderData()
	w.funded("alice", "bob")
	e := openWithMetadata(w, "e1", orderData())
	if diff := cmp.Diff(want, e.Metadata); diff != "" {
		t.Errorf("Open (-want +got):\n%s", diff)
	}
	calls := []struct {
		name string
		call func() (escrow.Escrow, error)
	}{
		{"Pay", func() (escrow.Escrow, error) { return w.l.Pay(w.ctx, "e1", "alice") }},
		{"Ship", func() (escrow.Escrow, error) { return w.l.Ship(w.ctx, "e1", "bob", "SF1") }},
		{"Confirm", func() (escrow.Escrow, error) { return w.l.Confirm(w.ctx, "e1", "alice") }},
		{"Escrow", func() (escrow.Escrow, error) { return w.l.Escrow(w.ctx, "e1") }},
	}
	for _, c := range calls {
		e, err := c.call()
		w.must(c.name, err)
		if diff := cmp.Diff(want, e.Metadata); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	_, err := w.l.Rate(w.ctx, "e1", "alice", escrow.RatingInput{Score: escrow.Neutral})
	w.must("Rate", err)
	_, err = w.l.Revise(w.ctx, "e1", "alice", escrow.Positive, "")
	w.must("Revise", err)
	_, err = w.l.Reply(w.ctx, "e1", "alice", "bob", "thanks")
	w.must("Reply", err)
	w.clock.Advance(30 * 24 * time.Hour) // bob's rating comes by default
	w.processDue()
	// An unpaid escrow closed by its timer.
	_, err = w.l.Open(w.ctx, escrow.Terms{ID: "e2", Buyer: "alice", Seller: "bob", Price: cny("1.00"),
		Metadata: map[string]string{"order": "A-1002"}})
	w.must("Open e2", err)
	w.clock.Advance(escrow.DefaultTimers().PayWithin)
	w.processDue()

	type line struct {
		Type     escrow.EventType
		Escrow   string
		Metadata map[string]string
	}
	var got []line
	for _, ev := range pagedEvents(w, 100) {
		got = append(got, line{ev.Type, ev.Escrow, ev.Metadata})
	}
	e2 := map[string]string{"order": "A-1002"}
	wantLines := []line{
		{escrow.AccountOpened, "", nil}, {escrow.Deposited, "", nil}, {escrow.AccountOpened, "", nil}, {escrow.Deposited, "", nil},
		{escrow.EscrowOpened, "e1", want}, {escrow.EscrowPaid, "e1", want}, {escrow.EscrowShipped, "e1", want},
		{escrow.EscrowReleased, "e1", want}, {escrow.RatingGiven, "e1", want}, {escrow.RatingRevised, "e1", want},
		{escrow.RatingReplied, "e1", want}, {escrow.RatingGiven, "e1", want},
		{escrow.EscrowOpened, "e2", e2}, {escrow.EscrowClosed, "e2", e2},
	}
	if diff := cmp.Diff(wantLines, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestMetadataIsCopied: the ledger keeps no map the caller holds, and
// hands out none it keeps: changing the map given to Open, or one an
// escrow or an event came back with, changes nothing stored.
func TestMetadataIsCopied(t *testing.T) {
	w := newFixture(t)
	w.funded("alice", "bob")
	given := orderData()
	opened := openWithMetadata(w, "e1", given)
	given["order"] = "changed by the caller"
	given["extra"] = "x"
	opened.Metadata["customer"] = "changed on the result of Open"
	paid, err := w.l.Pay(w.ctx, "e1", "alice")
	w.must("Pay", err)
	paid.Metadata["note"] = "changed on the result of Pay"
	read := escrowNow(w, "e1")
	read.Metadata["order"] = "changed on the result of Escrow"
	events, err := w.l.Events(w.ctx, 0, 100)
	w.must("Events", err)
	for _, ev := range events {
		if ev.Metadata != nil {
			ev.Metadata["order"] = "changed on an event"
		}
	}

	if diff := cmp.Diff(orderData(), escrowNow(w, "e1").Metadata); diff != "" {
		t.Errorf("stored escrow (-want +got):\n%s", diff)
	}
	events, err = w.l.Events(w.ctx, 0, 100)
	w.must("Events", err)
	for _, ev := range events {
		if ev.Escrow == "e1" {
			if diff := cmp.Diff(orderData(), ev.Metadata); diff != "" {
				t.Errorf("stored %s event (-want +got):\n%s", ev.Type, diff)
			}
		}
	}
}

// TestMetadataLimits: Stripe's limits, at and one past each, and the
// text rules; a refused Open fails with a *MetadataError wrapping
// ErrInvalidArgument that names the key, and changes nothing.
func TestMetadataLimits(t *testing.T) {
	keys := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%02d", i)] = "v"
		}
		return m
	}
	long := func(n int) string { return strings.Repeat("é", n/2) + strings.Repeat("x", n%2) }
	for _, c := range []struct {
		name string
		md   map[string]string
		want *escrow.MetadataError // nil: accepted
	}{
		{"50 keys", keys(50), nil},
		{"51 keys", keys(51), &escrow.MetadataError{Keys: 51}},
		{"40-byte key", map[string]string{long(40): "v"}, nil},
		{"41-byte key", map[string]string{long(41): "v"}, &escrow.MetadataError{Key: long(41), Reason: "the key is 41 bytes, more than 40"}},
		{"500-byte value", map[string]string{"k": long(500)}, nil},
		{"501-byte value", map[string]string{"k": long(501)}, &escrow.MetadataError{Key: "k", Reason: "the value is 501 bytes, more than 500"}},
		{"value with newline and tab", map[string]string{"k": "a\nb\tc"}, nil},
		{"key with spaces and punctuation", map[string]string{"order id [shop]": "1"}, nil},
		{"empty key", map[string]string{"": "v"}, &escrow.MetadataError{Key: "", Reason: "the key is empty"}},
		{"empty value", map[string]string{"a": "1", "k": ""}, &escrow.MetadataError{Key: "k", Reason: "the value is empty; leave the key out instead"}},
		{"newline in key", map[string]string{"a\nb": "v"}, &escrow.MetadataError{Key: "a\nb", Reason: "the key contains control character U+000A"}},
		{"NUL in value", map[string]string{"k": "a\x00"}, &escrow.MetadataError{Key: "k", Reason: "the value contains control character U+0000"}},
		{"bidi override in value", map[string]string{"k": "a\u202eb"}, &escrow.MetadataError{Key: "k", Reason: "the value contains control character U+202E"}},
		{"invalid UTF-8 in key", map[string]string{"\xff": "v"}, &escrow.MetadataError{Key: "\xff", Reason: "the key is not valid UTF-8"}},
		// The first bad key in key order is the one named.
		{"two bad keys", map[string]string{"b": "", "a": ""}, &escrow.MetadataError{Key: "a", Reason: "the value is empty; leave the key out instead"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newFixture(t)
			w.funded("alice", "bob")
			before := w.dump()
			e, err := w.l.Open(w.ctx, escrow.Terms{ID: "e1", Buyer: "alice", Seller: "bob", Price: cny("1.00"), Metadata: c.md})
			if c.want == nil {
				w.must("Open", err)
				if diff := cmp.Diff(c.md, e.Metadata); diff != "" {
					t.Errorf("metadata (-want +got):\n%s", diff)
				}
				return
			}
			var me *escrow.MetadataError
			if !errors.As(err, &me) || !errors.Is(err, escrow.ErrInvalidArgument) {
				t.Fatalf("err = %v, want a *MetadataError wrapping ErrInvalidArgument", err)
			}
			if diff := cmp.Diff(c.want, me); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			w.unchanged(before, "a refused Open")
		})
	}
}

func TestMetadataErrorMessages(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&escrow.MetadataError{Keys: 51}, "escrow: invalid argument: metadata has 51 keys, more than 50"},
		{&escrow.MetadataError{Key: "k", Reason: "the value is empty; leave the key out instead"},
			`escrow: invalid argument: metadata key "k": the value is empty; leave the key out instead`},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}

// TestMetadataInTheTerms: reopening an escrow compares its metadata, in
// any order and with an empty map the same as none; other metadata is
// other terms, refused with ErrExists without a change.
func TestMetadataInTheTerms(t *testing.T) {
	w := newFixture(t)
	w.funded("alice", "bob")
	first := openWithMetadata(w, "e1", orderData())
	openWithMetadata(w, "e2", nil)
	before := w.dump()
	again := openWithMetadata(w, "e1", maps.Clone(orderData()))
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("reopened with the same metadata (-first +again):\n%s", diff)
	}
	if e := openWithMetadata(w, "e2", map[string]string{}); e.Metadata != nil || e.Version != 1 {
		t.Errorf("reopened with an empty map: metadata %#v, version %d", e.Metadata, e.Version)
	}
	w.unchanged(before, "reopening with the same terms")

	other := orderData()
	other["order"] = "A-1002"
	for name, md := range map[string]map[string]string{"other value": other, "none": nil, "some": {"order": "A"}} {
		id := "e1"
		if name == "some" {
			id = "e2"
		}
		_, err := w.l.Open(w.ctx, escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Arbiter: "carol",
			Price: cny("100.00"), Metadata: md})
		if !errors.Is(err, escrow.ErrExists) {
			t.Errorf("%s: err = %v, want ErrExists", name, err)
		}
		w.unchanged(before, "reopening with "+name)
	}
}

// TestMetadataInTheRequest: a keyed Open's request holds the metadata in
// key order, each key and value quoted; a retry with the same metadata
// replays it, one with other metadata is a mismatch. Terms without
// metadata keep the request form they had before metadata existed (see
// goldenRequests).
func TestMetadataInTheRequest(t *testing.T) {
	w := newFixture(t)
	w.funded("alice", "bob")
	md := map[string]string{"b": "2", "a": `say "hi"`, "c": "x\ny"}
	first := openWithMetadata(w, "e1", md, escrow.IdempotencyKey("open-e1"))
	var request string
	w.must("View", w.store.View(w.ctx, func(tx escrow.Tx) error {
		r, err := tx.Idempotency("open-e1")
		request = r.Request
		return err
	}))
	want := `v1 open id="e1" buyer="alice" seller="bob" arbiter="carol" price="100.00 CNY" ` +
		`pay-within=259200000000000 ship-within=604800000000000 confirm-within=864000000000000 ` +
		`refund-response-within=432000000000000 ` +
		`metadata="{\"a\":\"say \\\"hi\\\"\",\"b\":\"2\",\"c\":\"x\\ny\"}"`
	if request != want {
		t.Errorf("request\n%s\nwant\n%s", request, want)
	}

	before := w.dump()
	var replayed bool
	again, err := w.l.Open(w.ctx, escrow.Terms{ID: "e1", Buyer: "alice", Seller: "bob", Arbiter: "carol",
		Price: cny("100.00"), Metadata: maps.Clone(md)}, escrow.IdempotencyKey("open-e1"), escrow.Replayed(&replayed))
	w.must("Open again", err)
	if diff := cmp.Diff(first, again); !replayed || diff != "" {
		t.Errorf("retry: replayed %v, (-first +again):\n%s", replayed, diff)
	}
	md["c"] = "z"
	_, err = w.l.Open(w.ctx, escrow.Terms{ID: "e1", Buyer: "alice", Seller: "bob", Arbiter: "carol",
		Price: cny("100.00"), Metadata: md}, escrow.IdempotencyKey("open-e1"))
	if !errors.Is(err, escrow.ErrIdempotencyMismatch) {
		t.Errorf("retry with other metadata: err = %v, want ErrIdempotencyMismatch", err)
	}
	w.unchanged(before, "retries of a keyed Open")
}
