package escrow

import (
	"errors"
	"fmt"
	"testing"
	"unsafe"
)

// TestMoneySize keeps Money at two words: escrows, events and balances
// carry several each and are copied on every change.
func TestMoneySize(t *testing.T) {
	if n := unsafe.Sizeof(Money{}); n != 16 {
		t.Errorf("a Money is %d bytes, want 16", n)
	}
}

// TestInternLimit checks that a process keeps at most maxCurrencies
// distinct currencies: past it, constructors refuse a new currency with
// ErrInvalidArgument, while currencies already seen still work and
// RestoreMoney still restores (Equal comparing such a Money by value).
func TestInternLimit(t *testing.T) {
	defer func(n int) { maxCurrencies = n }(maxCurrencies)
	currencies.RLock()
	maxCurrencies = len(currencies.m) + 1
	currencies.RUnlock()

	first := Currency{Code: "LIMITA", Minor: 2}
	if _, err := MoneyFromUnits(100, first); err != nil {
		t.Fatalf("the last free currency: %v", err)
	}
	over := Currency{Code: "LIMITB", Minor: 2}
	for name, make := range map[string]func() (Money, error){
		"MoneyFromUnits": func() (Money, error) { return MoneyFromUnits(100, over) },
		"ParseMoney":     func() (Money, error) { return ParseMoney("1.00", over) },
	} {
		m, err := make()
		if !errors.Is(err, ErrInvalidArgument) || m != (Money{}) {
			t.Errorf("%s past the limit = %v, %v; want the zero Money and ErrInvalidArgument", name, m, err)
		}
	}
	currencies.RLock()
	_, kept := currencies.m[over]
	currencies.RUnlock()
	if kept {
		t.Error("a refused currency was interned")
	}
	if m, err := MoneyFromUnits(5, first); err != nil || m.Currency() != first {
		t.Errorf("a currency seen before: %v, %v", m, err)
	}
	if m, err := MoneyFromUnits(5, CNY); err != nil || m != MustParseMoney("0.05", CNY) {
		t.Errorf("a default currency: %v, %v", m, err)
	}
	a, b := RestoreMoney(7, over), RestoreMoney(7, over)
	if a.Currency() != over || !a.Equal(b) || a.Equal(RestoreMoney(8, over)) || a.Equal(RestoreMoney(7, first)) {
		t.Errorf("restored past the limit: %v and %v (currency %v)", a, b, a.Currency())
	}
	if got := fmt.Sprint(a); got != "0.07 LIMITB" {
		t.Errorf("restored past the limit prints %q", got)
	}
}
