// Package money holds amounts as integer minor units plus an ISO-4217
// currency, and converts them to and from the decimal strings ("49.00") that
// Otto and Oscar put in JSON. Floats never touch an amount.
package money

import (
	"fmt"
	"fulfill/internal/apperr"
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

// exponent is the number of minor-unit digits; ISO-4217 lists the few
// currencies that differ from two.
func exponent(currency string) int {
	switch currency {
	case "JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "PYG", "RWF":
		return 0
	case "BHD", "JOD", "KWD", "OMR", "TND", "IQD", "LYD":
		return 3
	}
	return 2
}

// ValidCurrency reports whether c looks like an ISO-4217 code.
func ValidCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
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
	if err != nil {
		return Amount{}, fmt.Errorf("%w: %q is out of range", ErrInvalid, s)
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
