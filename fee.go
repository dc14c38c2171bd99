package escrow

import (
	"github.com/shopspring/decimal"
)

// FeePolicy is the platform's fee on money released to a seller. Each
// release (the tranche ConfirmMilestone releases, all that Confirm or
// auto-confirm releases at once, the seller's part of a split) is charged
// on its own: Rate times the released amount, rounded to the currency's
// minor unit by Rounding, plus the Fixed fee in that currency on an
// escrow's first release (a split's part for the seller counts as one);
// it is never more than the amount released. It goes to
// FeeAccount. Each escrow keeps the fee terms in force when it was opened,
// so changing the policy never changes a trade already agreed.
type FeePolicy struct {
	// Rate is a fraction from 0 up to but not including 1, with at most six
	// decimal places ("0.006" is 0.6%).
	Rate decimal.Decimal
	// Fixed holds at most one fixed fee per currency.
	Fixed []Money
	// Rounding rounds the rate part; the zero value is RoundHalfEven.
	Rounding Rounding
}

// FeeTerms are the fee terms an escrow was opened with.
type FeeTerms struct {
	RatePPM  int64    `json:"rate_ppm"` // the rate in parts per million
	Fixed    Money    `json:"fixed"`    // charged once, on the first release
	Rounding Rounding `json:"rounding"` // how the rate part is rounded
}

// feeTerms is FeeTerms without the currency-specific part.
type feeTerms struct {
	ppm      int64
	rounding Rounding
}

var million = decimal.NewFromInt(1_000_000)

func (l *Ledger) compileFee(p FeePolicy) (feeTerms, map[string]int64, error) {
	refused := func() (feeTerms, map[string]int64, error) {
		return feeTerms{}, nil, invalidArg("fee rate %s must be in [0, 1) with at most 6 decimal places", decimalText(p.Rate))
	}
	// A rate built in code may have any exponent an int32 holds. As in
	// NewMoney, the exponent decides where it alone can, before any
	// rescaling that would take time and memory in proportion to it: zero
	// is zero whatever its exponent, a rate other than zero with an
	// exponent of 0 or more is at least 1, and one with fewer digits than
	// the places past the sixth has more than six places.
	var ppm int64
	if !p.Rate.IsZero() {
		if e := int64(p.Rate.Exponent()); e >= 0 || -e-6 > int64(p.Rate.NumDigits()) {
			return refused()
		}
		r := p.Rate.Mul(million)
		if p.Rate.Sign() < 0 || !r.IsInteger() || r.Cmp(million) >= 0 {
			return refused()
		}
		ppm = r.IntPart()
	}
	if p.Rounding < RoundHalfEven || p.Rounding > RoundUp {
		return feeTerms{}, nil, invalidArg("unknown rounding mode %d", int(p.Rounding))
	}
	fixed := map[string]int64{}
	for _, m := range p.Fixed {
		if err := l.checkCurrency(m.currency()); err != nil {
			return feeTerms{}, nil, err
		}
		if err := m.check(); err != nil {
			// A fee past MaxUnits would pass int64 added to the rate's.
			err.(*AmountError).Reason += " fixed fee"
			return feeTerms{}, nil, err
		}
		if _, dup := fixed[m.currency().Code]; dup {
			return feeTerms{}, nil, invalidArg("two fixed fees in %s", m.currency().Code)
		}
		fixed[m.currency().Code] = m.units
	}
	return feeTerms{ppm: ppm, rounding: p.Rounding}, fixed, nil
}

// feeTermsFor returns the terms an escrow in currency c is opened with.
func (l *Ledger) feeTermsFor(c *Currency) FeeTerms {
	return FeeTerms{RatePPM: l.fee.ppm, Fixed: Money{units: l.fixedFees[c.Code], cur: c}, Rounding: l.fee.rounding}
}

// fee returns the fee on a release of gross, the first release of its
// escrow or not.
func (t FeeTerms) fee(gross Money, first bool) Money {
	f := mulDiv(gross.units, t.RatePPM, 1_000_000, t.Rounding)
	if first {
		f += t.Fixed.units
	}
	if f > gross.units {
		f = gross.units
	}
	return Money{units: f, cur: gross.cur}
}
