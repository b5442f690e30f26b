// Package money holds amounts as integer minor units plus an ISO-4217
// currency, and converts them to and from the decimal strings ("49.00") that
// Otto and Oscar put in JSON. Floats never touch an amount.
package money

import (
	"fmt"
	"fulfill/internal/apperr"
	"math"
	"strconv"
	"strings"
)

// ErrInvalid is returned for an amount or currency that cannot be parsed.
var ErrInvalid = apperr.New(apperr.Invalid, "invalid amount")

// Amount is a sum of money in minor units (cents for USD).
type Amount struct {
	Minor    int64
	Currency string
}

// minorUnits is ISO 4217's list of active currency codes with the number
// of digits of their minor unit (precious metals and testing codes, which
// have none, are left out).
var minorUnits = func() map[string]int {
	m := map[string]int{}
	for _, c := range strings.Fields(`AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD
		BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL
		GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA
		MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB
		SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU
		UZS VED VES WST XCD YER ZAR ZMW ZWG ZWL`) {
		m[c] = 2
	}
	for _, c := range strings.Fields(`BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF`) {
		m[c] = 0
	}
	for _, c := range strings.Fields(`BHD IQD JOD KWD LYD OMR TND`) {
		m[c] = 3
	}
	m["CLF"], m["UYW"] = 4, 4
	return m
}()

// exponent is the number of minor-unit digits of a currency.
func exponent(currency string) int {
	if e, ok := minorUnits[currency]; ok {
		return e
	}
	return 2
}

// ValidCurrency reports whether c is an active ISO 4217 currency code.
func ValidCurrency(c string) bool { _, ok := minorUnits[c]; return ok }

// MaxMinor bounds a price, in minor units: ten trillion minor units (a
// hundred billion dollars) is beyond any real catalog, and a price of at
// most this, bought up to a basket's bounds, cannot overflow.
const MaxMinor int64 = 10_000_000_000_000

// ErrOverflow is returned when a sum of money would not fit.
var ErrOverflow = apperr.New(apperr.Invalid, "amount out of range")

// Mul returns minor × n, refusing to overflow.
func Mul(minor int64, n int) (int64, error) {
	if minor < 0 || n < 0 {
		return 0, fmt.Errorf("%w: negative amount or quantity", ErrOverflow)
	}
	if n != 0 && minor > math.MaxInt64/int64(n) {
		return 0, fmt.Errorf("%w: %d × %d", ErrOverflow, minor, n)
	}
	return minor * int64(n), nil
}

// Add returns a + b, refusing to overflow.
func Add(a, b int64) (int64, error) {
	if a < 0 || b < 0 || a > math.MaxInt64-b {
		return 0, fmt.Errorf("%w: %d + %d", ErrOverflow, a, b)
	}
	return a + b, nil
}

// Parse reads a non-negative decimal string in major units ("49", "49.5",
// "49.00") for currency. More fractional digits than the currency has are
// refused rather than rounded: a price is never silently changed.
func Parse(s, currency string) (Amount, error) {
	currency = strings.ToUpper(strings.TrimSpace(currency))
	if !ValidCurrency(currency) {
		return Amount{}, fmt.Errorf("%w: currency %q is not an ISO-4217 code", ErrInvalid, currency)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return Amount{}, fmt.Errorf("%w: empty amount", ErrInvalid)
	}
	exp := exponent(currency)
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || len(frac) > exp || len(whole) > 15 {
		return Amount{}, fmt.Errorf("%w: %q is not a price in %s", ErrInvalid, s, currency)
	}
	for _, part := range []string{whole, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return Amount{}, fmt.Errorf("%w: %q is not a price in %s", ErrInvalid, s, currency)
			}
		}
	}
	frac += strings.Repeat("0", exp-len(frac))
	v, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil || v > MaxMinor {
		return Amount{}, fmt.Errorf("%w: %q is out of range (at most %s %s)", ErrInvalid, s, Format(MaxMinor, currency), currency)
	}
	return Amount{Minor: v, Currency: currency}, nil
}

// String formats the amount in major units with the currency's digits.
func (a Amount) String() string { return Format(a.Minor, a.Currency) }

// Format writes minor units of currency as a decimal string in major units.
func Format(minor int64, currency string) string {
	exp := exponent(currency)
	neg := minor < 0
	if neg {
		minor = -minor
	}
	s := strconv.FormatInt(minor, 10)
	if exp > 0 {
		if len(s) <= exp {
			s = strings.Repeat("0", exp-len(s)+1) + s
		}
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
