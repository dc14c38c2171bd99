package escrow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"

	"github.com/shopspring/decimal"
)

// A Currency is an ISO 4217-style code with its number of minor units: CNY
// has 2 (fen), JPY has 0. A ledger accepts only the currencies in its
// registry: the defaults below plus those given in Options.Currencies.
type Currency struct {
	Code  string `json:"code"`  // "CNY"; 1 to 12 upper-case letters or digits
	Minor int    `json:"minor"` // decimal places of the minor unit, 0 to 9
}

// The currencies every ledger knows.
var (
	CNY = Currency{Code: "CNY", Minor: 2}
	USD = Currency{Code: "USD", Minor: 2}
	EUR = Currency{Code: "EUR", Minor: 2}
	GBP = Currency{Code: "GBP", Minor: 2}
	JPY = Currency{Code: "JPY", Minor: 0}
)

// DefaultCurrencies returns the currencies every ledger knows.
func DefaultCurrencies() []Currency { return []Currency{CNY, USD, EUR, GBP, JPY} }

// MaxUnits is the largest amount, in minor units, that a Money may hold
// (10^18 − 1). Sums that would pass it are refused with ErrAmountTooLarge.
const MaxUnits = 999_999_999_999_999_999

func (c Currency) String() string { return c.Code }

func (c Currency) validate() error {
	if c.Code == "" || len(c.Code) > 12 {
		return invalidArg("currency code %s must be 1 to 12 characters", quoted(c.Code))
	}
	for _, r := range c.Code {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return invalidArg("currency code %q must be upper-case letters and digits", c.Code)
		}
	}
	if c.Minor < 0 || c.Minor > 9 {
		return invalidArg("currency %s: minor units %d out of range 0..9", c.Code, c.Minor)
	}
	return nil
}

// Money is an exact, non-negative amount of one currency. It is an immutable
// value; the zero Money has no currency and is the "no amount" value.
// Internally it counts minor units (fen, cents) in an int64, so arithmetic is
// exact and cheap; at the API it converts to and from decimal.Decimal.
//
// A Money is 16 bytes: its currency is held by a pointer to the one copy
// of that currency the process keeps (see intern). Escrows, events and
// balances carry several Money each and are copied on every change, so the
// size shows in every call. Money values may be compared with == or Equal.
type Money struct {
	units int64
	cur   *Currency // interned; nil in the zero Money
}

// maxCurrencies bounds how many distinct currencies a process interns, so
// that amounts in made-up currencies, read from untrusted input, cannot
// grow memory without limit. Ledgers need a handful. A currency a Ledger
// registered is interned past the bound, so that input cannot use up the
// room the host's own currencies need.
var maxCurrencies = 4096

var currencies = struct {
	sync.RWMutex
	m map[Currency]*Currency
}{m: map[Currency]*Currency{}}

func init() {
	for _, c := range DefaultCurrencies() {
		intern(c)
		register(c)
	}
}

// intern returns the process's one copy of c, making it if there is room
// or if a Ledger registered c. Once maxCurrencies distinct currencies have
// been seen, it refuses any other with ErrUnknownCurrency: no ledger of
// the process knows it.
func intern(c Currency) (*Currency, error) {
	currencies.RLock()
	p := currencies.m[c]
	currencies.RUnlock()
	if p != nil {
		return p, nil
	}
	currencies.Lock()
	defer currencies.Unlock()
	if p := currencies.m[c]; p != nil {
		return p, nil
	}
	if len(currencies.m) >= maxCurrencies {
		if known, ok := registered(c.Code); !ok || known != c {
			return nil, &AmountError{Currency: c.Code, Err: ErrUnknownCurrency,
				Reason: fmt.Sprintf("no ledger registered it, and this process has seen %d other currencies", maxCurrencies)}
		}
	}
	p = &c
	currencies.m[c] = p
	return p, nil
}

// NewMoney returns d of currency c. It fails with ErrInvalidAmount if d is
// negative or has more decimal places than c allows, with ErrAmountTooLarge
// if it exceeds MaxUnits minor units, with ErrInvalidArgument if c is
// malformed, and with ErrUnknownCurrency if no Ledger of the process
// registered c and it would be the 4,097th distinct currency the process
// has seen. Zero is a valid Money; calls that move money refuse it.
func NewMoney(d decimal.Decimal, c Currency) (Money, error) {
	if err := c.validate(); err != nil {
		return Money{}, err
	}
	cur, err := intern(c)
	if err != nil {
		return Money{}, err
	}
	amountErr := func(sentinel error, reason string) error {
		return &AmountError{Amount: decimalText(d), Currency: c.Code, Reason: reason, Err: sentinel}
	}
	switch {
	case d.Sign() < 0:
		return Money{}, amountErr(ErrInvalidAmount, "negative")
	case d.IsZero():
		return Money{cur: cur}, nil
	}
	// A decimal built in code may have any exponent an int32 holds. Where
	// the exponent alone decides, it decides before the shift, which could
	// pass an int32 or rescale a coefficient of millions of digits: at
	// 10^18 minor units or more the amount is too large, and a coefficient
	// with fewer digits than the places to drop leaves a fraction.
	switch places := int64(d.Exponent()) + int64(c.Minor); {
	case places >= 18:
		return Money{}, amountErr(ErrAmountTooLarge, "exceeds the largest amount")
	case places < 0 && -places > int64(d.NumDigits()):
		return Money{}, amountErr(ErrInvalidAmount, fmt.Sprintf("more than %d decimal places", c.Minor))
	}
	units := d.Shift(int32(c.Minor))
	if !units.IsInteger() {
		return Money{}, amountErr(ErrInvalidAmount, fmt.Sprintf("more than %d decimal places", c.Minor))
	}
	if units.Cmp(maxUnitsDecimal) > 0 {
		return Money{}, amountErr(ErrAmountTooLarge, "exceeds the largest amount")
	}
	return Money{units: units.IntPart(), cur: cur}, nil
}

var maxUnitsDecimal = decimal.NewFromInt(MaxUnits)

// decimalText writes d for an error: in full, or, when its exponent would
// take millions of digits to write out, as its coefficient and exponent.
func decimalText(d decimal.Decimal) string {
	if e := d.Exponent(); e > 40 || e < -40 {
		return d.Coefficient().String() + "e" + strconv.Itoa(int(e))
	}
	return d.String()
}

// ParseMoney parses a decimal string such as "199.00" or "12.3" as an
// amount of c, with the rules of NewMoney. The string is digits with an
// optional fraction after a '.', as amounts are written on the wire: no
// exponent ("1e3"), no '+', no leading or trailing '.', no spaces.
// Leading zeros, and zeros after the currency's last place, are not
// digits of the amount, however many there are: "0012.300" CNY is
// 12.30 CNY. It reads s in time proportional to its length.
func ParseMoney(s string, c Currency) (Money, error) {
	amountErr := func(sentinel error, reason string) error {
		return &AmountError{Amount: s, Currency: c.Code, Reason: reason, Err: sentinel}
	}
	if !plainDecimal(s) {
		return Money{}, amountErr(ErrInvalidAmount, "not a decimal number as amounts are written (digits, a fraction after a '.' if any)")
	}
	if err := c.validate(); err != nil {
		return Money{}, err
	}
	cur, err := intern(c)
	if err != nil {
		return Money{}, err
	}
	// The digits are read here rather than by decimal.NewFromString,
	// which takes time quadratic in their number and refuses a fraction
	// of more places than its MaxDecodeExponent; the rules, and the order
	// in which they refuse, are NewMoney's.
	digits, negative := strings.CutPrefix(s, "-")
	whole, frac, _ := strings.Cut(digits, ".")
	whole, frac = strings.TrimLeft(whole, "0"), strings.TrimRight(frac, "0")
	switch {
	case whole == "" && frac == "":
		return Money{cur: cur}, nil // zero, "-0" too
	case negative:
		return Money{}, amountErr(ErrInvalidAmount, "negative")
	case len(frac) > c.Minor:
		return Money{}, amountErr(ErrInvalidAmount, fmt.Sprintf("more than %d decimal places", c.Minor))
	case len(whole)+c.Minor > 18: // 10^18 minor units or more
		return Money{}, amountErr(ErrAmountTooLarge, "exceeds the largest amount")
	}
	var units int64 // at most 18 digits: below 10^18, no overflow
	for _, d := range whole + frac {
		units = units*10 + int64(d-'0')
	}
	for range c.Minor - len(frac) {
		units *= 10
	}
	return Money{units: units, cur: cur}, nil
}

// plainDecimal reports whether s is an optional '-', digits, and an
// optional '.' followed by digits.
func plainDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, dot := strings.Cut(s, ".")
	digits := func(p string) bool {
		return p != "" && strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' }) < 0
	}
	return digits(whole) && (!dot || digits(frac))
}

// byCode maps a currency code to the currency a Ledger of this process
// registered under it (every default currency is registered), so that an
// amount read from JSON takes its minor units from its code, not from how
// many places it was written with. A code registered with two different
// minor units maps to nothing: such an amount keeps the places it has.
var byCode = struct {
	sync.RWMutex
	m map[string]*Currency // nil value: ambiguous
}{m: map[string]*Currency{}}

// register records c under its code; see codes.
func register(c Currency) {
	byCode.Lock()
	defer byCode.Unlock()
	if known, ok := byCode.m[c.Code]; !ok {
		byCode.m[c.Code] = &c
	} else if known != nil && *known != c {
		byCode.m[c.Code] = nil
	}
}

// registered returns the currency registered under code, if exactly one is.
func registered(code string) (Currency, bool) {
	byCode.RLock()
	defer byCode.RUnlock()
	if c := byCode.m[code]; c != nil {
		return *c, true
	}
	return Currency{}, false
}

// MustParseMoney is like ParseMoney but panics on error. It is meant for
// constants in programs and tests.
func MustParseMoney(s string, c Currency) Money {
	m, err := ParseMoney(s, c)
	if err != nil {
		panic(err)
	}
	return m
}

// MoneyFromUnits returns units minor units of c (199 fen is 1.99 CNY), with
// the rules of NewMoney.
func MoneyFromUnits(units int64, c Currency) (Money, error) {
	if err := c.validate(); err != nil {
		return Money{}, err
	}
	cur, err := intern(c)
	if err != nil {
		return Money{}, err
	}
	m := Money{units: units, cur: cur}
	if err := m.check(); err != nil {
		return Money{}, err
	}
	return m, nil
}

// check is the one rule every amount a caller hands in must meet: not
// negative and not past MaxUnits. A Money made by RestoreMoney may break it.
func (m Money) check() error {
	switch {
	case m.units < 0:
		return &AmountError{Amount: m.amountString(), Currency: m.currency().Code, Reason: "negative", Err: ErrInvalidAmount}
	case m.units > MaxUnits:
		return &AmountError{Amount: m.amountString(), Currency: m.currency().Code, Reason: "exceeds the largest amount", Err: ErrAmountTooLarge}
	}
	return nil
}

// RestoreMoney returns units minor units of c exactly as a storage adapter
// stored them, without the checks of MoneyFromUnits: the available balance
// of WorldAccount is negative, and an adapter that serialises records must be
// able to read it back. Code outside storage adapters should use
// MoneyFromUnits. Past the process's limit of distinct currencies the
// Money it returns keeps a currency of its own, which Equal still compares
// by value but == does not.
func RestoreMoney(units int64, c Currency) Money {
	cur, err := intern(c)
	if err != nil {
		cur = &c
	}
	return Money{units: units, cur: cur}
}

// Currency returns m's currency.
func (m Money) Currency() Currency { return m.currency() }

func (m Money) currency() Currency {
	if m.cur == nil {
		return Currency{}
	}
	return *m.cur
}

// Units returns m in minor units.
func (m Money) Units() int64 { return m.units }

// Equal reports whether m and o are the same amount of the same currency.
// A zero amount of one currency is not equal to a zero amount of another,
// nor to the zero Money. (It also lets go-cmp compare Money values.)
func (m Money) Equal(o Money) bool { return m.units == o.units && sameCurrency(m, o) }

// IsZero reports whether m is zero (of any currency, or none).
func (m Money) IsZero() bool { return m.units == 0 }

// Decimal returns m as an exact decimal in major units.
func (m Money) Decimal() decimal.Decimal { return decimal.New(m.units, -int32(m.currency().Minor)) }

// String formats m with exactly its currency's decimal places and the code:
// "199.00 CNY".
func (m Money) String() string {
	if m.cur == nil {
		return "0"
	}
	return m.amountString() + " " + m.cur.Code
}

func (m Money) amountString() string {
	return m.Decimal().StringFixed(int32(m.currency().Minor))
}

type moneyJSON struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// MarshalJSON encodes m as {"amount":"199.00","currency":"CNY"}, the amount a
// string with exactly the currency's decimal places. The zero Money is null.
func (m Money) MarshalJSON() ([]byte, error) {
	if m.cur == nil {
		return []byte("null"), nil
	}
	return json.Marshal(moneyJSON{Amount: m.amountString(), Currency: m.cur.Code})
}

// UnmarshalJSON decodes what MarshalJSON encodes. A code that a Ledger of
// this process registered decides the minor units: "12.3" CNY is 12.30
// CNY, and "12.345" CNY is refused for its third place. A code none
// registered keeps the places its amount was written with. Input that is
// not such an object, or whose amount is not a string, fails with an
// error wrapping ErrInvalidAmount and the encoding/json error; the amount
// and the code are then read as ParseMoney reads them, so a malformed
// code (lower case, empty, or left out) fails with ErrInvalidArgument.
func (m *Money) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*m = Money{}
		return nil
	}
	var v moneyJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidAmount, err)
	}
	// The code decides the minor units: "12.3" CNY is 12.30 CNY, and
	// "12.345" CNY is refused for its third place. A code no Ledger of
	// this process registered keeps the places it was written with, and a
	// Ledger then refuses it as not in its registry.
	c, ok := registered(v.Currency)
	if !ok {
		c = Currency{Code: v.Currency}
		if i := strings.IndexByte(v.Amount, '.'); i >= 0 {
			c.Minor = len(v.Amount) - i - 1
		}
	}
	got, err := ParseMoney(v.Amount, c)
	if err != nil {
		return err
	}
	*m = got
	return nil
}

// sameCurrency reports whether a and b are of one currency.
func sameCurrency(a, b Money) bool {
	return a.cur == b.cur || a.cur != nil && b.cur != nil && *a.cur == *b.cur
}

// plus returns m+o, refusing a currency mix and a sum past MaxUnits.
func (m Money) plus(o Money) (Money, error) {
	if !sameCurrency(m, o) {
		return Money{}, mismatch(m, o)
	}
	s := m.units + o.units // both ≤ MaxUnits < 2^62: cannot overflow int64
	if s > MaxUnits {
		return Money{}, &AmountError{Amount: o.amountString(), Currency: o.currency().Code, Reason: "sum exceeds the largest amount", Err: ErrAmountTooLarge}
	}
	return Money{units: s, cur: m.cur}, nil
}

// minus returns m−o; the caller guarantees o ≤ m and one currency.
func (m Money) minus(o Money) Money { return Money{units: m.units - o.units, cur: m.cur} }

func mismatch(a, b Money) error {
	return &AmountError{Amount: b.amountString(), Currency: b.currency().Code,
		Reason: "expected " + a.currency().Code, Err: ErrCurrencyMismatch}
}

// zeroOf returns no money of c's currency.
func zeroOf(c *Currency) Money { return Money{cur: c} }

// Allocate splits m into parts proportional to weights, allocating every
// minor unit: the parts always add up to m exactly. Units left over by
// rounding down go one each to the parts with the largest remainders,
// earlier parts first on ties. Weights must be non-negative with a positive
// sum below 2^64; other weights are refused with ErrInvalidArgument. It fails with ErrInvalidAmount for a negative m (such as the balance
// of WorldAccount) and ErrAmountTooLarge for one past MaxUnits.
func Allocate(m Money, weights ...int64) ([]Money, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	var total uint64
	for _, w := range weights {
		if w < 0 {
			return nil, invalidArg("allocate: negative weight %d", w)
		}
		var carry uint64
		total, carry = bits.Add64(total, uint64(w), 0)
		if carry != 0 {
			return nil, invalidArg("allocate: weights too large")
		}
	}
	if total == 0 {
		return nil, invalidArg("allocate: weights sum to zero")
	}
	parts := make([]Money, len(weights))
	rems := make([]uint64, len(weights))
	var given int64
	for i, w := range weights {
		hi, lo := bits.Mul64(uint64(m.units), uint64(w))
		q, r := bits.Div64(hi, lo, total) // q ≤ units, cannot overflow
		parts[i] = Money{units: int64(q), cur: m.cur}
		rems[i] = r
		given += int64(q)
	}
	for left := m.units - given; left > 0; left-- {
		best := -1
		for i, r := range rems {
			if weights[i] > 0 && (best < 0 || r > rems[best]) {
				best = i
			}
		}
		parts[best].units++
		rems[best] = 0
	}
	return parts, nil
}

// Rounding says how a computed amount that falls between two minor units is
// rounded. The zero value is RoundHalfEven.
type Rounding int

// Rounding modes.
const (
	RoundHalfEven Rounding = iota // to nearest, ties to even (banker's rounding)
	RoundHalfUp                   // to nearest, ties away from zero
	RoundDown                     // toward zero
	RoundUp                       // away from zero
)

func (r Rounding) String() string {
	switch r {
	case RoundHalfEven:
		return "half-even"
	case RoundHalfUp:
		return "half-up"
	case RoundDown:
		return "down"
	case RoundUp:
		return "up"
	}
	return fmt.Sprintf("Rounding(%d)", int(r))
}

// mulDiv returns a·num/den rounded by mode, exact in 128 bits. a, num ≥ 0
// and den > 0; the result must fit (callers pass num ≤ den).
func mulDiv(a, num, den int64, mode Rounding) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(num))
	q, r := bits.Div64(hi, lo, uint64(den))
	if r == 0 {
		return int64(q)
	}
	up := false
	switch mode {
	case RoundUp:
		up = true
	case RoundHalfUp:
		up = 2*r >= uint64(den)
	case RoundHalfEven:
		twice := 2 * r
		up = twice > uint64(den) || (twice == uint64(den) && q%2 == 1)
	}
	if up {
		q++
	}
	return int64(q)
}
