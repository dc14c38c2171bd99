package escrow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// btc is a host-registered currency with eight minor units.
var btc = escrow.Currency{Code: "BTC", Minor: 8}

// Malformed currencies, refused before any amount is looked at.
var badCurrencies = []struct {
	name string
	cur  escrow.Currency
}{
	{"empty code", escrow.Currency{Code: "", Minor: 2}},
	{"lower case", escrow.Currency{Code: "cny", Minor: 2}},
	{"punctuation", escrow.Currency{Code: "CN-Y", Minor: 2}},
	{"code too long", escrow.Currency{Code: "ABCDEFGHIJKLM", Minor: 2}},
	{"minor 10", escrow.Currency{Code: "CNY", Minor: 10}},
	{"negative minor", escrow.Currency{Code: "CNY", Minor: -1}},
}

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in        string
		cur       escrow.Currency
		wantUnits int64
		wantStr   string
	}{
		{"199.99", escrow.CNY, 19999, "199.99 CNY"},
		{"199", escrow.CNY, 19900, "199.00 CNY"},
		{"1.50", escrow.CNY, 150, "1.50 CNY"},
		{"1.5", escrow.CNY, 150, "1.50 CNY"},
		{"1.000", escrow.CNY, 100, "1.00 CNY"}, // trailing zeros are not extra precision
		{"0", escrow.CNY, 0, "0.00 CNY"},
		{"0.01", escrow.USD, 1, "0.01 USD"},
		{"500", escrow.JPY, 500, "500 JPY"},
		{"500.0", escrow.JPY, 500, "500 JPY"},
		{"0.00000001", btc, 1, "0.00000001 BTC"},
		{"21000000", btc, 2_100_000_000_000_000, "21000000.00000000 BTC"},
		{"9999999999999999.99", escrow.CNY, escrow.MaxUnits, "9999999999999999.99 CNY"},
		{"999999999999999999", escrow.JPY, escrow.MaxUnits, "999999999999999999 JPY"},
	}
	for _, tc := range tests {
		t.Run(tc.in+" "+tc.cur.Code, func(t *testing.T) {
			m, err := escrow.ParseMoney(tc.in, tc.cur)
			if err != nil {
				t.Fatalf("ParseMoney(%q, %s): %v", tc.in, tc.cur, err)
			}
			if m.Units() != tc.wantUnits {
				t.Errorf("Units() = %d, want %d", m.Units(), tc.wantUnits)
			}
			if m.Currency() != tc.cur {
				t.Errorf("Currency() = %+v, want %+v", m.Currency(), tc.cur)
			}
			if got := m.String(); got != tc.wantStr {
				t.Errorf("String() = %q, want %q", got, tc.wantStr)
			}
			if want := decimal.RequireFromString(tc.in); !m.Decimal().Equal(want) {
				t.Errorf("Decimal() = %s, want %s", m.Decimal(), want)
			}
			if m.IsZero() != (tc.wantUnits == 0) {
				t.Errorf("IsZero() = %v for %d units", m.IsZero(), tc.wantUnits)
			}
		})
	}
}

func TestParseMoneyRefusals(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		cur    escrow.Currency
		want   error
		reason string // a word of AmountError.Reason
	}{
		{"negative", "-1.00", escrow.CNY, escrow.ErrInvalidAmount, "negative"},
		{"negative smallest", "-0.01", escrow.CNY, escrow.ErrInvalidAmount, "negative"},
		{"too precise for CNY", "1.001", escrow.CNY, escrow.ErrInvalidAmount, "decimal places"},
		{"fraction of a yen", "0.5", escrow.JPY, escrow.ErrInvalidAmount, "decimal places"},
		{"too precise for BTC", "0.000000001", btc, escrow.ErrInvalidAmount, "decimal places"},
		{"not a number", "abc", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
		{"empty", "", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
		{"comma", "1,00", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
		{"with code", "1.00 CNY", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
		{"one past the largest", "10000000000000000.00", escrow.CNY, escrow.ErrAmountTooLarge, "largest"},
		{"one unit past the largest", "1000000000000000000", escrow.JPY, escrow.ErrAmountTooLarge, "largest"},
		{"huge decimal", "123456789012345678901234567890.12", escrow.CNY, escrow.ErrAmountTooLarge, "largest"},
		{"exponent", "1e3", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
		{"huge exponent", "1e30", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
		{"plus sign", "+3", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
		{"no whole part", ".5", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
		{"no fraction after the point", "5.", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
		{"space", " 5", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
		{"two points", "1.2.3", escrow.CNY, escrow.ErrInvalidAmount, "not a decimal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := escrow.ParseMoney(tc.in, tc.cur)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseMoney(%q, %s) = %v, %v; want %v", tc.in, tc.cur, m, err, tc.want)
			}
			if m != (escrow.Money{}) {
				t.Errorf("refused ParseMoney returned %v, want the zero Money", m)
			}
			var ae *escrow.AmountError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *AmountError", err)
			}
			// A decimal amount is reported in canonical form ("-1" for "-1.00").
			sameAmount := ae.Amount == tc.in
			if d, err := decimal.NewFromString(tc.in); err == nil {
				reported, err := decimal.NewFromString(ae.Amount)
				sameAmount = err == nil && reported.Equal(d)
			}
			if !sameAmount || ae.Currency != tc.cur.Code || !strings.Contains(ae.Reason, tc.reason) {
				t.Errorf("AmountError = %+v, want amount %q, currency %s, reason with %q", ae, tc.in, tc.cur.Code, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "escrow: ") {
				t.Errorf("error text %q does not start with the package name", err)
			}
		})
	}
	for _, bc := range badCurrencies {
		t.Run(bc.name, func(t *testing.T) {
			_, err := escrow.ParseMoney("1", bc.cur)
			if !errors.Is(err, escrow.ErrInvalidArgument) {
				t.Fatalf("ParseMoney with currency %+v: %v, want ErrInvalidArgument", bc.cur, err)
			}
		})
	}
}

func TestNewMoney(t *testing.T) {
	tests := []struct {
		name      string
		d         decimal.Decimal
		cur       escrow.Currency
		wantUnits int64
		wantErr   error
		amount    string // as the error names it, if not d.String()
	}{
		{"fen", decimal.New(19999, -2), escrow.CNY, 19999, nil, ""},
		{"exponent above zero", decimal.New(5, 3), escrow.JPY, 5000, nil, ""},
		{"largest", decimal.New(escrow.MaxUnits, -2), escrow.CNY, escrow.MaxUnits, nil, ""},
		{"zero", decimal.Zero, escrow.CNY, 0, nil, ""},
		{"negative", decimal.New(-1, -2), escrow.CNY, 0, escrow.ErrInvalidAmount, ""},
		{"too precise", decimal.New(1001, -3), escrow.CNY, 0, escrow.ErrInvalidAmount, ""},
		{"fraction of a yen", decimal.New(5, -1), escrow.JPY, 0, escrow.ErrInvalidAmount, ""},
		{"one unit too large", decimal.New(escrow.MaxUnits+1, -2), escrow.CNY, 0, escrow.ErrAmountTooLarge, ""},
		{"far too large", decimal.New(1, 40), escrow.CNY, 0, escrow.ErrAmountTooLarge, ""},
		// A decimal built in code may carry any int32 exponent: refused at
		// once, never shifted past an int32 nor written out in full.
		{"exponent near the int32 limit", decimal.New(5, math.MaxInt32-1), escrow.CNY, 0, escrow.ErrAmountTooLarge, "5e2147483646"},
		{"exponent of ten million", decimal.New(1, 10_000_000), escrow.JPY, 0, escrow.ErrAmountTooLarge, "1e10000000"},
		{"least exponent", decimal.New(1, math.MinInt32), escrow.JPY, 0, escrow.ErrInvalidAmount, "1e-2147483648"},
		{"one place too many by the exponent", decimal.New(123, -3), escrow.CNY, 0, escrow.ErrInvalidAmount, ""},
		{"zero with a huge exponent", decimal.New(0, math.MaxInt32), escrow.CNY, 0, nil, ""},
		{"trailing zeros below a fen", decimal.NewFromBigInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(50), nil), -50), escrow.CNY, 100, nil, ""},
		{"exactly 10^18 fen by the exponent", decimal.New(1, 16), escrow.CNY, 0, escrow.ErrAmountTooLarge, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := escrow.NewMoney(tc.d, tc.cur)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("NewMoney(%s, %s) error = %v, want %v", tc.d, tc.cur, err, tc.wantErr)
			}
			if tc.wantErr != nil {
				var ae *escrow.AmountError
				amount := tc.amount
				if amount == "" {
					amount = tc.d.String()
				}
				if !errors.As(err, &ae) || ae.Amount != amount || ae.Currency != tc.cur.Code {
					t.Errorf("error %v: want an *AmountError naming %s %s", err, amount, tc.cur.Code)
				}
				return
			}
			if m.Units() != tc.wantUnits || m.Currency() != tc.cur {
				t.Errorf("NewMoney(%s, %s) = %d units of %+v, want %d units", tc.d, tc.cur, m.Units(), m.Currency(), tc.wantUnits)
			}
		})
	}
	for _, bc := range badCurrencies {
		t.Run(bc.name, func(t *testing.T) {
			_, err := escrow.NewMoney(decimal.NewFromInt(1), bc.cur)
			if !errors.Is(err, escrow.ErrInvalidArgument) {
				t.Fatalf("NewMoney with currency %+v: %v, want ErrInvalidArgument", bc.cur, err)
			}
		})
	}
}

func TestMoneyFromUnits(t *testing.T) {
	tests := []struct {
		name    string
		units   int64
		cur     escrow.Currency
		wantStr string
		wantErr error
	}{
		{"fen", 199, escrow.CNY, "1.99 CNY", nil},
		{"yen", 500, escrow.JPY, "500 JPY", nil},
		{"satoshi", 1, btc, "0.00000001 BTC", nil},
		{"zero", 0, escrow.GBP, "0.00 GBP", nil},
		{"largest", escrow.MaxUnits, escrow.USD, "9999999999999999.99 USD", nil},
		{"negative", -1, escrow.CNY, "", escrow.ErrInvalidAmount},
		{"most negative", math.MinInt64, escrow.CNY, "", escrow.ErrInvalidAmount},
		{"one past the largest", escrow.MaxUnits + 1, escrow.CNY, "", escrow.ErrAmountTooLarge},
		{"int64 max", math.MaxInt64, escrow.JPY, "", escrow.ErrAmountTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := escrow.MoneyFromUnits(tc.units, tc.cur)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("MoneyFromUnits(%d, %s) error = %v, want %v", tc.units, tc.cur, err, tc.wantErr)
			}
			if tc.wantErr != nil {
				var ae *escrow.AmountError
				if !errors.As(err, &ae) || ae.Currency != tc.cur.Code {
					t.Errorf("error %v: want an *AmountError in %s", err, tc.cur.Code)
				}
				return
			}
			if m.Units() != tc.units || m.String() != tc.wantStr {
				t.Errorf("MoneyFromUnits(%d, %s) = %d units %q, want %q", tc.units, tc.cur, m.Units(), m, tc.wantStr)
			}
		})
	}
	for _, bc := range badCurrencies {
		t.Run(bc.name, func(t *testing.T) {
			_, err := escrow.MoneyFromUnits(1, bc.cur)
			if !errors.Is(err, escrow.ErrInvalidArgument) {
				t.Fatalf("MoneyFromUnits with currency %+v: %v, want ErrInvalidArgument", bc.cur, err)
			}
		})
	}
}

func TestMustParseMoneyPanics(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, escrow.ErrInvalidAmount) {
			t.Fatalf("MustParseMoney panicked with %v, want an error wrapping ErrInvalidAmount", r)
		}
	}()
	escrow.MustParseMoney("1.001", escrow.CNY)
}

func TestZeroMoney(t *testing.T) {
	var m escrow.Money
	if !m.IsZero() || m.Units() != 0 || m.Currency() != (escrow.Currency{}) || m.String() != "0" {
		t.Errorf("zero Money: IsZero %v, Units %d, Currency %+v, String %q", m.IsZero(), m.Units(), m.Currency(), m)
	}
}

func TestMoneyJSON(t *testing.T) {
	kwd := escrow.Currency{Code: "KWD", Minor: 3}
	tests := []struct {
		m    escrow.Money
		want string
	}{
		{escrow.MustParseMoney("199.99", escrow.CNY), `{"amount":"199.99","currency":"CNY"}`},
		{escrow.MustParseMoney("199", escrow.CNY), `{"amount":"199.00","currency":"CNY"}`},
		{escrow.MustParseMoney("0", escrow.USD), `{"amount":"0.00","currency":"USD"}`},
		{escrow.MustParseMoney("500", escrow.JPY), `{"amount":"500","currency":"JPY"}`},
		{escrow.MustParseMoney("1.5", kwd), `{"amount":"1.500","currency":"KWD"}`},
		{escrow.MustParseMoney("0.12345678", btc), `{"amount":"0.12345678","currency":"BTC"}`},
		{escrow.MustParseMoney("21000000", btc), `{"amount":"21000000.00000000","currency":"BTC"}`},
		{escrow.MustParseMoney("9999999999999999.99", escrow.EUR), `{"amount":"9999999999999999.99","currency":"EUR"}`},
		{escrow.Money{}, `null`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			b, err := json.Marshal(tc.m)
			if err != nil {
				t.Fatalf("Marshal(%v): %v", tc.m, err)
			}
			if string(b) != tc.want {
				t.Errorf("Marshal(%v) = %s, want %s", tc.m, b, tc.want)
			}
			// Decode into a non-zero value, so that null must clear it.
			got := escrow.MustParseMoney("1", escrow.GBP)
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if got != tc.m {
				t.Errorf("Unmarshal(%s) = %v (%d units of %+v), want %v", b, got, got.Units(), got.Currency(), tc.m)
			}
		})
	}
}

func TestMoneyJSONInStruct(t *testing.T) {
	type order struct {
		Price  escrow.Money
		Refund escrow.Money
	}
	in := order{Price: escrow.MustParseMoney("12.30", escrow.CNY)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"Price":{"amount":"12.30","currency":"CNY"},"Refund":null}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var out order
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip gave %+v, want %+v", out, in)
	}
}

func TestMoneyUnmarshalJSONRefusals(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{`{"amount":"-1.00","currency":"CNY"}`, escrow.ErrInvalidAmount},
		{`{"amount":"one","currency":"CNY"}`, escrow.ErrInvalidAmount},
		{`{"amount":"","currency":"CNY"}`, escrow.ErrInvalidAmount},
		{`{"amount":"1e30","currency":"JPY"}`, escrow.ErrInvalidAmount},
		{`{"amount":"12.345","currency":"CNY"}`, escrow.ErrInvalidAmount},
		{`{"amount":"1500.5","currency":"JPY"}`, escrow.ErrInvalidAmount},
		{`{"amount":"1.00","currency":"cny"}`, escrow.ErrInvalidArgument},
		{`{"amount":"1.00","currency":""}`, escrow.ErrInvalidArgument},
		{`{"amount":"1.0000000000","currency":"BTC"}`, escrow.ErrInvalidArgument}, // ten places
		{`{"amount":1.00,"currency":"CNY"}`, escrow.ErrInvalidAmount},
		{`{"amount":5,"currency":"CNY"}`, escrow.ErrInvalidAmount},
		{`"1.00 CNY"`, escrow.ErrInvalidAmount},
		{`[1,2]`, escrow.ErrInvalidAmount},
		{`{"amount":"1.00"`, escrow.ErrInvalidAmount},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			old := escrow.MustParseMoney("7.00", escrow.CNY)
			m := old
			err := m.UnmarshalJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("UnmarshalJSON(%s) = %v, want an error", tc.in, m)
			}
			if !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "escrow: ") {
				t.Errorf("UnmarshalJSON(%s) = %v, want %v", tc.in, err, tc.want)
			}
			if m != old {
				t.Errorf("refused UnmarshalJSON changed the value to %v", m)
			}
		})
	}
}

// TestNewWithHostCurrency registers a currency the defaults lack and uses it
// from deposit to release.
func TestNewWithHostCurrency(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	l, err := escrow.New(ctx, store, &escrow.Options{
		Currencies: []escrow.Currency{btc, escrow.CNY}, // CNY again, identical: allowed
		Fee:        escrow.FeePolicy{Rate: decimal.RequireFromString("0.01"), Fixed: []escrow.Money{escrow.MustParseMoney("0.00001", btc)}},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c, err := l.Currency("BTC"); err != nil || c != btc {
		t.Fatalf("Currency(BTC) = %+v, %v; want %+v", c, err, btc)
	}
	for _, id := range []string{"alice", "bob"} {
		if _, err := l.OpenAccount(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	b, err := l.Deposit(ctx, "alice", escrow.MustParseMoney("0.5", btc))
	if err != nil {
		t.Fatalf("Deposit in BTC: %v", err)
	}
	if b.Available.Units() != 50_000_000 || b.Currency != btc {
		t.Fatalf("balance after deposit = %d units of %+v, want 50000000 BTC", b.Available.Units(), b.Currency)
	}
	price := escrow.MustParseMoney("0.12345678", btc)
	if _, err := l.Open(ctx, escrow.Terms{ID: "e1", Buyer: "alice", Seller: "bob", Price: price}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Pay(ctx, "e1", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Ship(ctx, "e1", "bob", ""); err != nil {
		t.Fatal(err)
	}
	e, err := l.Confirm(ctx, "e1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	// 1% of 12345678 is 123456.78, half-even to 123457, plus the 1000 fixed.
	if e.State != escrow.Completed || e.Fees.Units() != 124_457 || e.Released != price {
		t.Errorf("escrow after confirm: state %s, fees %d, released %v", e.State, e.Fees.Units(), e.Released)
	}
	got := map[string]int64{}
	for _, id := range []string{"alice", "bob", escrow.FeeAccount} {
		b, err := l.Balance(ctx, id, btc)
		if err != nil {
			t.Fatal(err)
		}
		got[id] = b.Total().Units()
	}
	want := map[string]int64{"alice": 50_000_000 - 12_345_678, "bob": 12_345_678 - 124_457, escrow.FeeAccount: 124_457}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BTC balances (-want +got):\n%s", diff)
	}
	if err := l.Check(ctx); err != nil {
		t.Fatal(err)
	}

	// A currency the registry lacks, or one that disagrees with it, is
	// refused and changes nothing.
	before, err := storagetest.Dump(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []escrow.Money{
		escrow.MustParseMoney("1", escrow.Currency{Code: "XTS", Minor: 2}),
		escrow.MustParseMoney("1", escrow.Currency{Code: "BTC", Minor: 2}),
	} {
		if _, err := l.Deposit(ctx, "alice", m); !errors.Is(err, escrow.ErrUnknownCurrency) {
			t.Errorf("Deposit(%v in %+v) = %v, want ErrUnknownCurrency", m, m.Currency(), err)
		}
	}
	if _, err := l.Currency("XTS"); !errors.Is(err, escrow.ErrUnknownCurrency) {
		t.Errorf("Currency(XTS) = %v, want ErrUnknownCurrency", err)
	}
	after, err := storagetest.Dump(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("refused deposits changed the store:\nbefore: %s\nafter: %s", before, after)
	}
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name    string
		units   int64
		weights []int64
		want    []int64
	}{
		{"thirds", 100, []int64{1, 1, 1}, []int64{34, 33, 33}},
		{"one unit in thirds", 1, []int64{1, 1, 1}, []int64{1, 0, 0}},
		{"two units in thirds", 2, []int64{1, 1, 1}, []int64{1, 1, 0}},
		{"largest remainder wins", 100, []int64{1, 2}, []int64{33, 67}},
		{"exact", 10, []int64{3, 7}, []int64{3, 7}},
		{"zero weight in the middle", 101, []int64{1, 0, 1}, []int64{51, 0, 50}},
		{"only the last weighs", 5, []int64{0, 0, 1}, []int64{0, 0, 5}},
		{"single part", 12345, []int64{9}, []int64{12345}},
		{"nothing to split", 0, []int64{1, 2}, []int64{0, 0}},
		{"largest amount halves", escrow.MaxUnits, []int64{1, 1}, []int64{500_000_000_000_000_000, 499_999_999_999_999_999}},
		{"huge weights", escrow.MaxUnits, []int64{math.MaxInt64, 1}, []int64{escrow.MaxUnits, 0}},
		{"percentages", 19999, []int64{50, 30, 20}, []int64{9999, 6000, 4000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := escrow.MoneyFromUnits(tc.units, escrow.CNY)
			if err != nil {
				t.Fatal(err)
			}
			parts, err := escrow.Allocate(m, tc.weights...)
			if err != nil {
				t.Fatalf("Allocate(%d, %v): %v", tc.units, tc.weights, err)
			}
			got := make([]int64, len(parts))
			for i, p := range parts {
				got[i] = p.Units()
				if p.Currency() != escrow.CNY {
					t.Errorf("part %d is in %+v, want CNY", i, p.Currency())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Allocate(%d, %v) (-want +got):\n%s", tc.units, tc.weights, diff)
			}
		})
	}
}

func TestAllocateRefusals(t *testing.T) {
	m := escrow.MustParseMoney("100.00", escrow.CNY)
	for _, weights := range [][]int64{
		nil,
		{0},
		{0, 0, 0},
		{1, -1, 3},
		{-5},
		{math.MaxInt64, math.MaxInt64, 2}, // the sum does not fit in 64 bits
	} {
		parts, err := escrow.Allocate(m, weights...)
		if !errors.Is(err, escrow.ErrInvalidArgument) || parts != nil {
			t.Errorf("Allocate(100.00, %v) = %v, %v; want nil, ErrInvalidArgument", weights, parts, err)
		}
	}
}

// TestAllocateProperties checks, over a seeded random set, that the parts
// add up to the amount exactly and that each is its exact share rounded down
// or up by one unit (and exactly zero for a zero weight).
func TestAllocateProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(20260301, 7))
	runs := 3000
	if testing.Short() {
		runs = 300
	}
	for range runs {
		var units int64
		switch rng.IntN(3) {
		case 0:
			units = rng.Int64N(1000)
		case 1:
			units = rng.Int64N(1_000_000_000)
		default:
			units = rng.Int64N(escrow.MaxUnits + 1)
		}
		weights := make([]int64, 1+rng.IntN(12))
		var total int64
		for i := range weights {
			switch rng.IntN(4) {
			case 0:
				weights[i] = 0
			case 1:
				weights[i] = 1 + rng.Int64N(10)
			case 2:
				weights[i] = rng.Int64N(1_000_000)
			default:
				weights[i] = rng.Int64N(math.MaxInt64 / 16)
			}
			total += weights[i]
		}
		if total == 0 {
			weights[0], total = 1, 1
		}
		m, err := escrow.MoneyFromUnits(units, escrow.USD)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := escrow.Allocate(m, weights...)
		if err != nil {
			t.Fatalf("Allocate(%d, %v): %v", units, weights, err)
		}
		if len(parts) != len(weights) {
			t.Fatalf("Allocate(%d, %v) gave %d parts", units, weights, len(parts))
		}
		var sum int64
		for i, p := range parts {
			sum += p.Units()
			floor := new(big.Int).Mul(big.NewInt(units), big.NewInt(weights[i]))
			floor.Quo(floor, big.NewInt(total))
			extra := p.Units() - floor.Int64()
			if extra < 0 || extra > 1 || (weights[i] == 0 && p.Units() != 0) {
				t.Fatalf("Allocate(%d, %v): part %d is %d, exact share rounds down to %d", units, weights, i, p.Units(), floor)
			}
		}
		if sum != units {
			t.Fatalf("Allocate(%d, %v): parts add up to %d", units, weights, sum)
		}
	}
}

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"199.99", "1.50", "1.5", "0", "-0", "-1", "1.001", "0.5", "abc", "", "1e2", "1E-2",
		"9999999999999999.99", "10000000000000000.00", "1e30", "0e-10000", "1.", ".5", "+3", "00012.3400"} {
		f.Add(s, uint8(2))
	}
	f.Add("500", uint8(0))
	f.Add("0.00000001", uint8(8))
	f.Add("0.000000001", uint8(9))
	f.Fuzz(func(t *testing.T, s string, minor uint8) {
		cur := escrow.Currency{Code: "FZ", Minor: int(minor % 10)}
		m, err := escrow.ParseMoney(s, cur)
		if err != nil {
			if !errors.Is(err, escrow.ErrInvalidAmount) && !errors.Is(err, escrow.ErrAmountTooLarge) {
				t.Fatalf("ParseMoney(%q, %d): unexpected error %v", s, cur.Minor, err)
			}
			var ae *escrow.AmountError
			if !errors.As(err, &ae) {
				t.Fatalf("ParseMoney(%q, %d): error %v is not an *AmountError", s, cur.Minor, err)
			}
			return
		}
		if m.Units() < 0 || m.Units() > escrow.MaxUnits || m.Currency() != cur {
			t.Fatalf("ParseMoney(%q, %d) = %d units of %+v", s, cur.Minor, m.Units(), m.Currency())
		}
		if d := decimal.RequireFromString(s); !m.Decimal().Equal(d) {
			t.Fatalf("ParseMoney(%q, %d).Decimal() = %s, want %s", s, cur.Minor, m.Decimal(), d)
		}
		amount, code, ok := strings.Cut(m.String(), " ")
		if !ok || code != "FZ" {
			t.Fatalf("ParseMoney(%q, %d).String() = %q", s, cur.Minor, m.String())
		}
		again, err := escrow.ParseMoney(amount, cur)
		if err != nil || again != m {
			t.Fatalf("ParseMoney(%q) = %v, %v; want %v back", amount, again, err, m)
		}
	})
}

func FuzzMoneyUnmarshalJSON(f *testing.F) {
	for _, s := range []string{
		`{"amount":"199.99","currency":"CNY"}`,
		`{"amount":"500","currency":"JPY"}`,
		`{"amount":"0.00000001","currency":"BTC"}`,
		`{"amount":"1.5e1","currency":"X1"}`,
		`{"amount":"-1.00","currency":"CNY"}`,
		`{"amount":"1.00","currency":"cny"}`,
		`{"amount":1,"currency":"CNY"}`,
		`null`, ` null `, `{}`, `[]`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m escrow.Money
		if err := m.UnmarshalJSON(data); err != nil {
			return
		}
		if m.Units() < 0 || m.Units() > escrow.MaxUnits {
			t.Fatalf("UnmarshalJSON(%q) = %d units", data, m.Units())
		}
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of %v decoded from %q: %v", m, data, err)
		}
		var again escrow.Money
		if err := again.UnmarshalJSON(b); err != nil {
			t.Fatalf("UnmarshalJSON(%s), re-encoded from %q: %v", b, data, err)
		}
		if again != m {
			t.Fatalf("%q decoded to %v (%+v), re-encoded to %s, decoded to %v (%+v)",
				data, m, m.Currency(), b, again, again.Currency())
		}
	})
}

// TestMoneyEqual checks that Equal tells amounts apart by units and by
// currency, a zero of any currency from the zero Money included, and that
// cmp.Diff, which calls it, needs no comparer for Money.
func TestMoneyEqual(t *testing.T) {
	a := escrow.RestoreMoney(150, escrow.CNY)
	tests := []struct {
		b    escrow.Money
		want bool
	}{
		{escrow.RestoreMoney(150, escrow.CNY), true},
		{escrow.RestoreMoney(151, escrow.CNY), false},
		{escrow.RestoreMoney(150, escrow.JPY), false},
		{escrow.Money{}, false},
	}
	for _, tt := range tests {
		if got := a.Equal(tt.b); got != tt.want {
			t.Errorf("%v.Equal(%v) = %v, want %v", a, tt.b, got, tt.want)
		}
		if got := cmp.Equal(a, tt.b); got != tt.want {
			t.Errorf("cmp.Equal(%v, %v) = %v, want %v", a, tt.b, got, tt.want)
		}
	}
	if !escrow.RestoreMoney(0, escrow.CNY).IsZero() || escrow.RestoreMoney(0, escrow.CNY).Equal(escrow.Money{}) {
		t.Error("a zero CNY is zero but not the zero Money")
	}
}

// TestMoneyJSONTakesPlacesFromCode: an amount read from JSON takes its
// minor units from its currency's code, as registered by a Ledger (every
// default currency is), not from the places it was written with; and a
// currency the ledger does not know is refused with a message that says
// so plainly.
func TestMoneyJSONTakesPlacesFromCode(t *testing.T) {
	var m escrow.Money
	if err := json.Unmarshal([]byte(`{"amount":"12.3","currency":"CNY"}`), &m); err != nil || m != cny("12.30") {
		t.Errorf(`"12.3" CNY decodes as %v, %v; want 12.30 CNY`, m, err)
	}
	err := json.Unmarshal([]byte(`{"amount":"12.345","currency":"CNY"}`), &m)
	if !errors.Is(err, escrow.ErrInvalidAmount) || !strings.Contains(err.Error(), "more than 2 decimal places") {
		t.Errorf(`"12.345" CNY: %v, want ErrInvalidAmount naming CNY's 2 places`, err)
	}
	tok := escrow.Currency{Code: "TOK", Minor: 4}
	w := newFixtureWith(t, &escrow.Options{Currencies: []escrow.Currency{tok}})
	if err := json.Unmarshal([]byte(`{"amount":"1.5","currency":"TOK"}`), &m); err != nil || m != escrow.MustParseMoney("1.5000", tok) {
		t.Errorf(`"1.5" TOK, registered with 4 places, decodes as %v (%d units), %v`, m, m.Units(), err)
	}
	w.account("alice")
	before := w.dump()
	if err := json.Unmarshal([]byte(`{"amount":"1.0","currency":"XYZ"}`), &m); err != nil {
		t.Fatal(err)
	}
	_, err = w.l.Deposit(w.ctx, "alice", m)
	if !errors.Is(err, escrow.ErrUnknownCurrency) || err.Error() != "escrow: unknown currency: XYZ: not in the ledger's registry" {
		t.Errorf("a deposit in a currency nobody registered: %v", err)
	}
	_, err = w.l.Deposit(w.ctx, "alice", escrow.MustParseMoney("1.5", escrow.Currency{Code: "CNY", Minor: 1}))
	if !errors.Is(err, escrow.ErrUnknownCurrency) || !strings.Contains(err.Error(), "CNY: has 2 decimal places in the ledger's registry, not 1") {
		t.Errorf("a deposit of CNY with 1 place: %v", err)
	}
	w.unchanged(before, "refused deposits")
}

// TestParseMoneyLongAmounts: an amount is read in time proportional to
// its length, however many digits it is written with, and its zeros mean
// what they mean in a short one: leading zeros and zeros after the last
// place are not digits of the amount. Reading from JSON is the same.
func TestParseMoneyLongAmounts(t *testing.T) {
	const n = 2_000_000
	zeros := strings.Repeat("0", n)
	tests := []struct {
		name string
		in   string
		cur  escrow.Currency
		want string // the amount, or "" if refused
		err  error
	}{
		{"leading zeros", zeros + "12.30", escrow.CNY, "12.30 CNY", nil},
		{"zeros after the last place", "12.30" + zeros, escrow.CNY, "12.30 CNY", nil},
		{"zeros after the yen", "1500." + zeros, escrow.JPY, "1500 JPY", nil},
		{"zeros both sides", zeros + "0.01" + zeros, escrow.USD, "0.01 USD", nil},
		{"zero written long", zeros + "." + zeros, escrow.CNY, "0.00 CNY", nil},
		{"a place too many, far out", "1." + zeros + "1", escrow.CNY, "", escrow.ErrInvalidAmount},
		{"negative, written long", "-" + zeros + "1", escrow.CNY, "", escrow.ErrInvalidAmount},
		{"many digits", strings.Repeat("9", n), escrow.CNY, "", escrow.ErrAmountTooLarge},
		{"many digits and places", strings.Repeat("7", n) + "." + strings.Repeat("3", n), escrow.CNY, "", escrow.ErrInvalidAmount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			m, err := escrow.ParseMoney(tc.in, tc.cur)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("ParseMoney of %d bytes took %v", len(tc.in), d)
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) || m != (escrow.Money{}) {
					t.Errorf("ParseMoney = %v, %.100v; want %v", m, err, tc.err)
				}
			} else if err != nil || m.String() != tc.want {
				t.Errorf("ParseMoney = %v, %.100v; want %s", m, err, tc.want)
			}
			b, err := json.Marshal(map[string]string{"amount": tc.in, "currency": tc.cur.Code})
			if err != nil {
				t.Fatal(err)
			}
			start = time.Now()
			var fromJSON escrow.Money
			err = json.Unmarshal(b, &fromJSON)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("UnmarshalJSON of %d bytes took %v", len(b), d)
			}
			if (err == nil) != (tc.err == nil) || fromJSON != m {
				t.Errorf("from JSON: %v, %.100v; ParseMoney gave %v", fromJSON, err, m)
			}
		})
	}
}
