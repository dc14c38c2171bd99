package escrow_test

import (
	"bytes"
	"encoding"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// readmeBlock returns the fenced block of the given language that follows
// the line after in README.md.
func readmeBlock(t *testing.T, after, lang string) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), after)
	if !ok {
		t.Fatalf("README.md has no %q", after)
	}
	_, rest, ok = strings.Cut(rest, "```"+lang+"\n")
	if !ok {
		t.Fatalf("README.md has no %s block after %q", lang, after)
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// The JSON section's escrow is the quickstart's trade, once confirmed, at
// the times the block shows.
func TestReadmeQuickstartJSON(t *testing.T) {
	w := newWorldAt(t, nil, escrow.Options{}, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	l := w.l
	w.account("buyer")
	w.account("seller")
	_, err := l.Deposit(w.ctx, "buyer", escrow.MustParseMoney("100.00", escrow.CNY))
	w.must("Deposit", err)
	_, err = l.Open(w.ctx, escrow.Terms{ID: "order-1", Buyer: "buyer", Seller: "seller",
		Item: "Longjing tea", Price: escrow.MustParseMoney("59.90", escrow.CNY)})
	w.must("Open", err)
	w.clock.Advance(5 * time.Minute)
	_, err = l.Pay(w.ctx, "order-1", "buyer")
	w.must("Pay", err)
	w.clock.Advance(115 * time.Minute)
	_, err = l.Ship(w.ctx, "order-1", "seller", "SF1234")
	w.must("Ship", err)
	w.clock.Advance(21 * time.Hour)
	e, err := l.Confirm(w.ctx, "order-1", "buyer")
	w.must("Confirm", err)
	if got := e.State.String() + " " + e.Released.String(); got != "Completed 59.90 CNY" {
		t.Errorf("the quickstart prints %q, want %q", got, "Completed 59.90 CNY")
	}

	got, err := json.Marshal(e)
	w.must("Marshal", err)
	var want bytes.Buffer
	w.must("Compact", json.Compact(&want, []byte(readmeBlock(t, "The escrow of the quickstart, once confirmed:", "json"))))
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the escrow's JSON differs from the README's:\n got: %s\nwant: %s", got, want.Bytes())
	}
}

// numbersLeftOut are the only numbers a JSON form leaves out, each while
// it is zero: an escrow's cart_size (paid on its own), a page request's
// limit (the default page) and a rating's detail scores (none given).
var numbersLeftOut = map[string]bool{"cart_size": true, "limit": true,
	"described": true, "communication": true, "shipping": true}

// TestWireFormsKeepNumbers: in every form, zero ones included, the
// numbers and booleans are there, but for those the JSON section names.
func TestWireFormsKeepNumbers(t *testing.T) {
	text := reflect.TypeFor[encoding.TextMarshaler]()
	var walk func(path string, typ reflect.Type, obj map[string]any)
	walk = func(path string, typ reflect.Type, obj map[string]any) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && name == "" {
				walk(path, f.Type, obj)
				continue
			}
			if name == "-" || name == "" {
				continue
			}
			v, there := obj[name]
			switch f.Type.Kind() {
			case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
				if f.Type.Implements(text) || f.Type == reflect.TypeFor[time.Duration]() {
					continue // an enumeration's word, or a duration's string
				}
				if !there && !numbersLeftOut[name] {
					t.Errorf("%s%s, a number or boolean, is left out", path, name)
				}
			case reflect.Struct:
				if sub, ok := v.(map[string]any); ok {
					walk(path+name+".", f.Type, sub)
				}
			}
		}
	}
	for name, cases := range wireForms() {
		for _, c := range cases {
			typ := reflect.TypeOf(c.value)
			if typ.Kind() != reflect.Struct {
				continue
			}
			b, err := json.Marshal(c.value)
			if err != nil {
				t.Fatalf("%s %s: %v", name, c.name, err)
			}
			var obj map[string]any
			if err := json.Unmarshal(b, &obj); err != nil {
				t.Fatalf("%s %s: %v", name, c.name, err)
			}
			walk(name+" "+c.name+": ", typ, obj)
		}
	}
	// The README and the package documentation name each of them.
	for _, doc := range []string{"README.md", "doc.go"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, []byte("whose zero means none"))
		if i < 0 {
			t.Fatalf("%s does not say which numbers are left out", doc)
		}
		// The sentence that names them, joined across its lines.
		j := bytes.Index(b[i:], []byte(").\n"))
		if j < 0 {
			t.Fatalf("%s: no end to the sentence on the numbers left out", doc)
		}
		sentence := strings.Join(strings.Fields(string(b[i:i+j])), " ")
		for name := range numbersLeftOut {
			if !strings.Contains(sentence, name) {
				t.Errorf("%s does not name %s among the numbers left out: %q", doc, name, sentence)
			}
		}
	}
}

// TestLedgerTimesAreUTC: whatever zone the clock reads in, every time in
// what the ledger returns is written in UTC, as the JSON section says; a
// time a host sets in another zone keeps its offset.
func TestLedgerTimesAreUTC(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	w := newWorldAt(t, nil, escrow.Options{Timers: escrow.Timers{ArbiterWithin: time.Hour}},
		time.Date(2026, 3, 1, 17, 0, 0, 0, cst))
	id := w.shipped("b", "s")
	setup(t,
		func() (escrow.Escrow, error) { return w.l.Extend(w.ctx, id, "b", 0) },
		func() (escrow.Escrow, error) { return w.l.RequestReturn(w.ctx, id, "b", cny("10.00"), "torn") },
		func() (escrow.Escrow, error) { return w.l.AgreeReturn(w.ctx, id, "s", "the shop") },
		func() (escrow.Escrow, error) { return w.l.ShipReturn(w.ctx, id, "b", "SF9") },
		func() (escrow.Escrow, error) { return w.l.RefuseReturn(w.ctx, id, "s", "not torn") },
		func() (escrow.Escrow, error) { return w.l.Dispute(w.ctx, id, "b", "it is torn") },
		func() (escrow.Escrow, error) { return w.l.AddEvidence(w.ctx, id, "b", "a photo", "photo-1") },
	)
	w.clock.Advance(2 * time.Hour)
	w.processDue() // the arbiter's deadline: escalated
	_, err := w.l.Resolve(w.ctx, id, "carol", escrow.Split{Buyer: cny("40.00"), Seller: cny("60.00")})
	w.must("Resolve", err)
	_, err = w.l.Rate(w.ctx, id, "b", escrow.RatingInput{Score: escrow.Positive})
	w.must("Rate", err)
	rating, err := w.l.Reply(w.ctx, id, "b", "s", "thank you")
	w.must("Reply", err)
	w.clock.Advance(30 * 24 * time.Hour)
	w.processDue() // the rating window: the seller's default rating

	results := []any{rating}
	read := func(v any, err error) {
		t.Helper()
		w.must("read", err)
		results = append(results, v)
	}
	read(w.l.Escrow(w.ctx, id))
	read(w.l.Escrows(w.ctx, escrow.EscrowQuery{Party: "s"}))
	read(w.l.Events(w.ctx, 0, 1000))
	read(w.l.Journal(w.ctx, "b", 0, 1000))
	read(w.l.Account(w.ctx, "b"))
	read(w.l.Reputation(w.ctx, "s"))
	read(w.l.Concentration(w.ctx, "s"))
	read(w.l.Explain(w.ctx, "s", escrow.Page{}))
	read(w.l.SetConsumer(w.ctx, "mailer", 1))
	stamp := regexp.MustCompile(`"\d{4}-\d\d-\d\dT[^"]*"`)
	seen := 0
	for _, v := range results {
		b, err := json.Marshal(v)
		w.must("Marshal", err)
		for _, s := range stamp.FindAllString(string(b), -1) {
			seen++
			if !strings.HasSuffix(s, `Z"`) {
				t.Errorf("%T carries the time %s, not in UTC", v, s)
			}
		}
	}
	if seen < 20 {
		t.Errorf("only %d times seen", seen)
	}

	b, err := json.Marshal(escrow.Account{ID: "b", CreatedAt: time.Date(2026, 3, 1, 17, 0, 0, 0, cst)})
	w.must("Marshal", err)
	if want := `{"id":"b","system":false,"created_at":"2026-03-01T17:00:00+08:00"}`; string(b) != want {
		t.Errorf("a host's own time: %s, want %s", b, want)
	}
}
