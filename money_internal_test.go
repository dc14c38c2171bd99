package escrow

import (
	"context"
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
// ErrUnknownCurrency, while currencies already seen still work, a
// currency a Ledger registered is still taken, and RestoreMoney still
// restores (Equal comparing such a Money by value).
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
		if !errors.Is(err, ErrUnknownCurrency) || m != (Money{}) {
			t.Errorf("%s past the limit = %v, %v; want the zero Money and ErrUnknownCurrency", name, m, err)
		}
	}
	var fromJSON Money
	if err := fromJSON.UnmarshalJSON([]byte(`{"amount":"1.00","currency":"LIMITB"}`)); !errors.Is(err, ErrUnknownCurrency) {
		t.Errorf("JSON in a new currency past the limit: %v, want ErrUnknownCurrency", err)
	}
	// A ledger's own currency, not seen before, is taken past the limit.
	own := Currency{Code: "LIMITC", Minor: 3}
	l, err := New(context.Background(), oneTxStore{setUpTx{}}, &Options{Currencies: []Currency{own}})
	if err != nil {
		t.Fatal(err)
	}
	for name, make := range map[string]func() (Money, error){
		"ParseMoney": func() (Money, error) { return ParseMoney("1.234", own) },
		"UnmarshalJSON": func() (Money, error) {
			var m Money
			return m, m.UnmarshalJSON([]byte(`{"amount":"1.234","currency":"LIMITC"}`))
		},
	} {
		if m, err := make(); err != nil || m.Units() != 1234 || m.Currency() != own {
			t.Errorf("%s in a registered currency past the limit = %v, %v; want 1.234 LIMITC", name, m, err)
		}
	}
	if err := l.checkCurrency(own); err != nil {
		t.Errorf("the ledger refuses its own currency: %v", err)
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

// setUpTx is a Tx whose store has the system accounts already, all that
// New reads.
type setUpTx struct{ plainTx }

func (setUpTx) Account(id string) (Account, error) { return Account{ID: id, System: true}, nil }
