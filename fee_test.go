package escrow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestMulDiv(t *testing.T) {
	modes := []Rounding{RoundHalfEven, RoundHalfUp, RoundDown, RoundUp}
	tests := []struct {
		name         string
		a, num, den  int64
		even, up     int64 // RoundHalfEven, RoundHalfUp
		down, upward int64 // RoundDown, RoundUp
	}{
		{"exact", 6, 1, 2, 3, 3, 3, 3},
		{"zero", 0, 7, 9, 0, 0, 0, 0},
		{"zero rate", 12345, 0, 1_000_000, 0, 0, 0, 0},
		{"tie 0.5", 1, 1, 2, 0, 1, 0, 1},
		{"tie 2.5", 5, 1, 2, 2, 3, 2, 3},
		{"tie 3.5", 7, 1, 2, 4, 4, 3, 4},
		{"2.4", 24, 1, 10, 2, 2, 2, 3},
		{"2.6", 26, 1, 10, 3, 3, 2, 3},
		{"1/3", 1, 1, 3, 0, 0, 0, 1},
		{"2/3", 2, 1, 3, 1, 1, 0, 1},
		{"0.6% of 199.00", 19900, 6000, 1_000_000, 119, 119, 119, 120},
		{"0.6% of 2.50, a tie", 250, 6000, 1_000_000, 2, 2, 1, 2},
		{"0.6% of 7.50, a tie", 750, 6000, 1_000_000, 4, 5, 4, 5},
		{"whole of the largest", MaxUnits, 1_000_000, 1_000_000, MaxUnits, MaxUnits, MaxUnits, MaxUnits},
		{"half of the largest", MaxUnits, 1, 2,
			500_000_000_000_000_000, 500_000_000_000_000_000, 499_999_999_999_999_999, 500_000_000_000_000_000},
		{"99.9999% of the largest", MaxUnits, 999_999, 1_000_000,
			999_998_999_999_999_999, 999_998_999_999_999_999, 999_998_999_999_999_999, 999_999_000_000_000_000},
		// The product needs 122 bits.
		{"product past 64 bits", MaxUnits, 1 << 62, 1 << 62, MaxUnits, MaxUnits, MaxUnits, MaxUnits},
		{"int64 max, exact", math.MaxInt64, math.MaxInt64 - 1, math.MaxInt64,
			math.MaxInt64 - 1, math.MaxInt64 - 1, math.MaxInt64 - 1, math.MaxInt64 - 1},
		// (N−1)²/N is N − 2 + 1/N for N the largest int64.
		{"int64 max, inexact", math.MaxInt64 - 1, math.MaxInt64 - 1, math.MaxInt64,
			math.MaxInt64 - 2, math.MaxInt64 - 2, math.MaxInt64 - 2, math.MaxInt64 - 1},
	}
	for _, tc := range tests {
		for i, want := range []int64{tc.even, tc.up, tc.down, tc.upward} {
			if got := mulDiv(tc.a, tc.num, tc.den, modes[i]); got != want {
				t.Errorf("%s: mulDiv(%d, %d, %d, %s) = %d, want %d", tc.name, tc.a, tc.num, tc.den, modes[i], got, want)
			}
		}
	}
}

// TestMulDivMatchesBigRat compares mulDiv with exact rational arithmetic on
// a seeded random set.
func TestMulDivMatchesBigRat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		den := 1 + rng.Int64N(math.MaxInt64/2)
		if rng.IntN(2) == 0 {
			den = 1 + rng.Int64N(1000)
		}
		num := rng.Int64N(den + 1)
		a := rng.Int64N(MaxUnits + 1)
		if rng.IntN(4) == 0 {
			a = rng.Int64N(10_000)
		}
		// Make ties common: a·num ≡ den/2 needs an even den and a good a.
		if rng.IntN(4) == 0 && den%2 == 0 && num == 1 {
			a = den/2 + den*rng.Int64N(1000)
		}
		for _, mode := range []Rounding{RoundHalfEven, RoundHalfUp, RoundDown, RoundUp} {
			want := roundRat(a, num, den, mode)
			if got := mulDiv(a, num, den, mode); got != want {
				t.Fatalf("mulDiv(%d, %d, %d, %s) = %d, want %d", a, num, den, mode, got, want)
			}
		}
	}
}

// roundRat is a·num/den rounded by mode, computed with math/big.
func roundRat(a, num, den int64, mode Rounding) int64 {
	p := new(big.Int).Mul(big.NewInt(a), big.NewInt(num))
	q, r := new(big.Int).QuoRem(p, big.NewInt(den), new(big.Int))
	twice := new(big.Int).Lsh(r, 1)
	half := twice.Cmp(big.NewInt(den)) // -1 below half, 0 a tie, 1 above
	up := false
	switch {
	case r.Sign() == 0:
	case mode == RoundUp:
		up = true
	case mode == RoundHalfUp:
		up = half >= 0
	case mode == RoundHalfEven:
		up = half > 0 || half == 0 && q.Bit(0) == 1
	}
	if up {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64()
}

func TestRoundingString(t *testing.T) {
	for r, want := range map[Rounding]string{
		RoundHalfEven: "half-even", RoundHalfUp: "half-up", RoundDown: "down", RoundUp: "up", 9: "Rounding(9)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Rounding(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}

func TestFeeTermsFee(t *testing.T) {
	cny := func(units int64) Money { return RestoreMoney(units, CNY) }
	tests := []struct {
		name  string
		terms FeeTerms
		gross int64
		first bool
		want  int64
	}{
		{"no fee", FeeTerms{}, 19900, true, 0},
		{"rate only", FeeTerms{RatePPM: 6000}, 19900, true, 119},
		{"rate only, later release", FeeTerms{RatePPM: 6000}, 19900, false, 119},
		{"rate, half-up", FeeTerms{RatePPM: 6000, Rounding: RoundHalfUp}, 750, false, 5},
		{"rate, half-even", FeeTerms{RatePPM: 6000, Rounding: RoundHalfEven}, 750, false, 4},
		{"rate, down", FeeTerms{RatePPM: 6000, Rounding: RoundDown}, 19999, false, 119},
		{"rate, up", FeeTerms{RatePPM: 6000, Rounding: RoundUp}, 19801, false, 119},
		{"fixed on the first release", FeeTerms{Fixed: cny(100)}, 19900, true, 100},
		{"no fixed on a later release", FeeTerms{Fixed: cny(100)}, 19900, false, 0},
		{"rate and fixed", FeeTerms{RatePPM: 6000, Fixed: cny(100)}, 19900, true, 219},
		{"rate and fixed, later release", FeeTerms{RatePPM: 6000, Fixed: cny(100)}, 19900, false, 119},
		{"fixed capped at the release", FeeTerms{Fixed: cny(500)}, 300, true, 300},
		{"rate and fixed capped", FeeTerms{RatePPM: 999_999, Fixed: cny(1), Rounding: RoundUp}, 7, true, 7},
		{"nothing released", FeeTerms{RatePPM: 6000, Fixed: cny(100)}, 0, true, 0},
		{"largest release", FeeTerms{RatePPM: 999_999, Fixed: cny(MaxUnits), Rounding: RoundUp}, MaxUnits, true, MaxUnits},
		{"largest rate", FeeTerms{RatePPM: 999_999}, 1_000_000, false, 999_999},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.terms.fee(cny(tc.gross), tc.first)
			if got.units != tc.want || got.Currency() != CNY {
				t.Errorf("fee(%d, first %v) = %d units of %v, want %d CNY", tc.gross, tc.first, got.units, got.Currency(), tc.want)
			}
		})
	}
}

// errStoreReached is what untouchedStore returns once New gets past
// validation.
var errStoreReached = errors.New("store reached")

// untouchedStore is a Storage that counts transactions and runs none: New
// must refuse bad options before it opens a transaction, so a refused New
// leaves it at zero.
type untouchedStore struct{ calls int }

func (s *untouchedStore) Update(context.Context, func(Tx) error) error {
	s.calls++
	return errStoreReached
}

func (s *untouchedStore) View(context.Context, func(Tx) error) error {
	s.calls++
	return errStoreReached
}

func (s *untouchedStore) Close() error { return nil }

func TestNewValidatesOptions(t *testing.T) {
	rate := decimal.RequireFromString
	cny := MustParseMoney("1.00", CNY)
	xts := Currency{Code: "XTS", Minor: 2}
	tests := []struct {
		name string
		opts Options
		want error // errStoreReached: accepted
	}{
		{"zero options", Options{}, errStoreReached},
		{"rate 0.6%", Options{Fee: FeePolicy{Rate: rate("0.006")}}, errStoreReached},
		{"rate with six places", Options{Fee: FeePolicy{Rate: rate("0.999999")}}, errStoreReached},
		{"rate with seven places", Options{Fee: FeePolicy{Rate: rate("0.0000001")}}, ErrInvalidArgument},
		{"rate with trailing zeros", Options{Fee: FeePolicy{Rate: rate("0.10000000")}}, errStoreReached},
		{"rate of one", Options{Fee: FeePolicy{Rate: rate("1")}}, ErrInvalidArgument},
		{"rate above one", Options{Fee: FeePolicy{Rate: rate("1.5")}}, ErrInvalidArgument},
		{"negative rate", Options{Fee: FeePolicy{Rate: rate("-0.01")}}, ErrInvalidArgument},
		{"every rounding mode", Options{Fee: FeePolicy{Rounding: RoundUp}}, errStoreReached},
		{"unknown rounding mode", Options{Fee: FeePolicy{Rounding: RoundUp + 1}}, ErrInvalidArgument},
		{"negative rounding mode", Options{Fee: FeePolicy{Rounding: -1}}, ErrInvalidArgument},
		{"fixed fees in two currencies", Options{Fee: FeePolicy{Fixed: []Money{cny, MustParseMoney("100", JPY)}}}, errStoreReached},
		{"fixed fee in an unregistered currency", Options{Fee: FeePolicy{Fixed: []Money{MustParseMoney("1", xts)}}}, ErrUnknownCurrency},
		{"fixed fee in a host currency", Options{Currencies: []Currency{xts}, Fee: FeePolicy{Fixed: []Money{MustParseMoney("1", xts)}}}, errStoreReached},
		{"fixed fee disagreeing with the registry", Options{Fee: FeePolicy{Fixed: []Money{MustParseMoney("1", Currency{Code: "CNY", Minor: 3})}}}, ErrUnknownCurrency},
		{"fixed fee without currency", Options{Fee: FeePolicy{Fixed: []Money{{}}}}, ErrUnknownCurrency},
		{"duplicate fixed fees", Options{Fee: FeePolicy{Fixed: []Money{cny, MustParseMoney("2.00", CNY)}}}, ErrInvalidArgument},
		{"negative fixed fee", Options{Fee: FeePolicy{Fixed: []Money{RestoreMoney(-100, CNY)}}}, ErrInvalidAmount},
		{"fixed fee of MaxUnits", Options{Fee: FeePolicy{Fixed: []Money{RestoreMoney(MaxUnits, CNY)}}}, errStoreReached},
		{"fixed fee past MaxUnits", Options{Fee: FeePolicy{Fixed: []Money{RestoreMoney(MaxUnits+1, CNY)}}}, ErrAmountTooLarge},
		{"fixed fee past int64 with the rate's", Options{Fee: FeePolicy{Rate: rate("0.5"), Fixed: []Money{RestoreMoney(math.MaxInt64, CNY)}}}, ErrAmountTooLarge},
		{"host currency", Options{Currencies: []Currency{xts}}, errStoreReached},
		{"default currency again", Options{Currencies: []Currency{CNY, JPY}}, errStoreReached},
		{"host currency twice", Options{Currencies: []Currency{xts, xts}}, errStoreReached},
		{"default currency with other minor units", Options{Currencies: []Currency{{Code: "CNY", Minor: 3}}}, ErrInvalidArgument},
		{"host currency twice with other minor units", Options{Currencies: []Currency{xts, {Code: "XTS", Minor: 0}}}, ErrInvalidArgument},
		{"malformed host currency", Options{Currencies: []Currency{{Code: "xts", Minor: 2}}}, ErrInvalidArgument},
		{"negative timer", Options{Timers: Timers{ShipWithin: -time.Second}}, ErrInvalidArgument},
		{"timer past MaxTimer", Options{Timers: Timers{PayWithin: MaxTimer + 1}}, ErrInvalidArgument},
		{"timer at MaxTimer", Options{Timers: Timers{PayWithin: MaxTimer}}, errStoreReached},
		{"custom timer", Options{Timers: Timers{ConfirmWithin: time.Hour}}, errStoreReached},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &untouchedStore{}
			l, err := New(context.Background(), store, &tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("New = %v, want %v", err, tc.want)
			}
			if l != nil {
				t.Errorf("New returned a ledger with error %v", err)
			}
			if tc.want != errStoreReached && store.calls != 0 {
				t.Errorf("refused New opened %d transactions", store.calls)
			}
		})
	}
	if l, err := New(context.Background(), nil, nil); !errors.Is(err, ErrInvalidArgument) || l != nil {
		t.Errorf("New(nil store) = %v, %v; want ErrInvalidArgument", l, err)
	}
	if _, err := New(context.Background(), &untouchedStore{}, nil); !errors.Is(err, errStoreReached) {
		t.Errorf("New with nil options = %v, want the defaults accepted", err)
	}
}

// TestFeeTermsFor checks the terms an escrow is opened with: the compiled
// rate, the fixed fee in the escrow's currency (none in others).
func TestFeeTermsFor(t *testing.T) {
	l := &Ledger{currencies: map[string]Currency{}}
	for _, c := range DefaultCurrencies() {
		l.currencies[c.Code] = c
	}
	var err error
	l.fee, l.fixedFees, err = l.compileFee(FeePolicy{
		Rate:     decimal.RequireFromString("0.0125"),
		Fixed:    []Money{MustParseMoney("0.30", USD), MustParseMoney("50", JPY)},
		Rounding: RoundHalfUp,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cur  Currency
		want FeeTerms
	}{
		{USD, FeeTerms{RatePPM: 12_500, Fixed: RestoreMoney(30, USD), Rounding: RoundHalfUp}},
		{JPY, FeeTerms{RatePPM: 12_500, Fixed: RestoreMoney(50, JPY), Rounding: RoundHalfUp}},
		{CNY, FeeTerms{RatePPM: 12_500, Fixed: RestoreMoney(0, CNY), Rounding: RoundHalfUp}},
	}
	for _, tc := range tests {
		if got := l.feeTermsFor(RestoreMoney(0, tc.cur).cur); got != tc.want {
			t.Errorf("feeTermsFor(%s) = %+v, want %+v", tc.cur, got, tc.want)
		}
	}
}

// TestNewRefusesExtremeFeeRates: a fee rate built in code may carry any
// exponent an int32 holds, as a decimal read from a configuration file
// with decimal.NewFromString may. New refuses such a rate at once with
// ErrInvalidArgument, in a message of ordinary length, rather than
// rescaling it or writing it out digit by digit.
func TestNewRefusesExtremeFeeRates(t *testing.T) {
	for _, rate := range []decimal.Decimal{
		decimal.New(1, -1_000_000_000),   // a fraction of a billion places
		decimal.New(5, math.MinInt32),    // the least exponent
		decimal.New(1, 1_000_000_000),    // a billion digits
		decimal.New(7, math.MaxInt32),    // the largest exponent
		decimal.New(-3, 500_000_000),     // negative, and huge
		decimal.New(123, -1_000_000_000), // digits to spare, still too many places
	} {
		done := make(chan error, 1)
		go func() {
			_, _, err := (&Ledger{}).compileFee(FeePolicy{Rate: rate})
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("rate %se%d: %v, want ErrInvalidArgument", rate.Coefficient(), rate.Exponent(), err)
			} else if len(err.Error()) > 200 {
				t.Errorf("rate %se%d: a message of %d bytes", rate.Coefficient(), rate.Exponent(), len(err.Error()))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("rate %se%d: New did not return in 5s", rate.Coefficient(), rate.Exponent())
		}
	}
	// A rate whose exponent is far below its places, but whose coefficient
	// has the zeros to match, is still the rate it equals.
	tenth := decimal.NewFromBigInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(99), nil), -100)
	terms, _, err := (&Ledger{}).compileFee(FeePolicy{Rate: tenth})
	if err != nil || terms.ppm != 100_000 {
		t.Errorf("rate 10^99e-100 = %+v, %v; want 100000 ppm", terms, err)
	}
	// Zero is no fee, whatever its exponent.
	for _, exp := range []int32{math.MinInt32, -1_000_000_000, 1_000_000_000, math.MaxInt32} {
		done := make(chan error, 1)
		go func() {
			terms, _, err := (&Ledger{}).compileFee(FeePolicy{Rate: decimal.New(0, exp)})
			if err == nil && terms.ppm != 0 {
				err = fmt.Errorf("%d ppm", terms.ppm)
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("rate 0e%d: %v, want no fee", exp, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("rate 0e%d: New did not return in 5s", exp)
		}
	}
}

// FuzzFeeRate compiles rates of any coefficient and int32 exponent: New
// takes exactly the rates from 0 up to but not including 1 with at most
// six places, as that many parts per million, and refuses the rest with
// ErrInvalidArgument in a message of ordinary length.
func FuzzFeeRate(f *testing.F) {
	f.Add(int64(6), int32(-3))
	f.Add(int64(999_999), int32(-6))
	f.Add(int64(1), int32(-7))
	f.Add(int64(1), int32(0))
	f.Add(int64(-1), int32(-2))
	f.Add(int64(10_000_000_000), int32(-11))
	f.Add(int64(3), int32(math.MaxInt32))
	f.Add(int64(3), int32(math.MinInt32))
	f.Fuzz(func(t *testing.T, coef int64, exp int32) {
		rate := decimal.New(coef, exp)
		terms, _, err := (&Ledger{}).compileFee(FeePolicy{Rate: rate})
		var want *big.Rat // the rate in parts per million, if it is one
		if exp > -40 && exp < 40 {
			r := new(big.Rat).SetInt64(coef)
			p := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(exp, -exp))), nil))
			if exp >= 0 {
				r.Mul(r, p)
			} else {
				r.Quo(r, p)
			}
			r.Mul(r, big.NewRat(1_000_000, 1))
			if r.IsInt() && r.Sign() >= 0 && r.Cmp(big.NewRat(1_000_000, 1)) < 0 {
				want = r
			}
		} else if coef == 0 {
			want = new(big.Rat)
		}
		if want == nil {
			if !errors.Is(err, ErrInvalidArgument) || len(err.Error()) > 200 {
				t.Fatalf("rate %de%d: %v, want ErrInvalidArgument", coef, exp, err)
			}
			return
		}
		if err != nil || terms.ppm != want.Num().Int64() {
			t.Fatalf("rate %de%d: %d ppm, %v; want %s", coef, exp, terms.ppm, err, want)
		}
	})
}

// FuzzFee computes fees of any rate, fixed fee, rounding and release
// against exact arithmetic: the rate's share rounded as the mode says,
// plus the fixed fee on the first release, never more than the release.
func FuzzFee(f *testing.F) {
	f.Add(int64(19900), int64(6000), int64(100), uint8(0), true)
	f.Add(int64(750), int64(6000), int64(0), uint8(1), false)
	f.Add(int64(MaxUnits), int64(999_999), int64(MaxUnits), uint8(3), true)
	f.Add(int64(7), int64(500_000), int64(0), uint8(0), false)
	f.Fuzz(func(t *testing.T, gross, ppm, fixed int64, mode uint8, first bool) {
		if gross < 0 || ppm < 0 || fixed < 0 {
			return
		}
		gross, ppm, fixed = gross%(MaxUnits+1), ppm%1_000_000, fixed%(MaxUnits+1)
		terms := FeeTerms{RatePPM: ppm, Fixed: RestoreMoney(fixed, CNY), Rounding: Rounding(mode % 4)}
		got := terms.fee(RestoreMoney(gross, CNY), first)
		want := roundRat(gross, ppm, 1_000_000, terms.Rounding)
		if first {
			want += fixed
		}
		want = min(want, gross)
		if got.units != want || got.Currency() != CNY || got.units < 0 || got.units > gross {
			t.Fatalf("fee(%d, %d ppm, fixed %d, %s, first %v) = %d, want %d", gross, ppm, fixed, terms.Rounding, first, got.units, want)
		}
	})
}
