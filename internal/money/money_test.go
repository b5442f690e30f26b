package money

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, cur string
		minor   int64
		out     string
		bad     bool
	}{
		{"49.00", "USD", 4900, "49.00", false},
		{"49", "usd", 4900, "49.00", false},
		{"0.5", "EUR", 50, "0.50", false},
		{"0", "USD", 0, "0.00", false},
		{"1000", "JPY", 1000, "1000", false},
		{"1.234", "KWD", 1234, "1.234", false},
		{"1.234", "USD", 0, "", true},
		{"-1", "USD", 0, "", true},
		{"1e3", "USD", 0, "", true},
		{"", "USD", 0, "", true},
		{"1.", "USD", 0, "", true},
		{".5", "USD", 0, "", true},
		{"10", "US", 0, "", true},
		{"10", "U$D", 0, "", true},
	}
	for _, tt := range tests {
		a, err := Parse(tt.in, tt.cur)
		if tt.bad {
			require.ErrorIs(t, err, ErrInvalid, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.minor, a.Minor, tt.in)
		require.Equal(t, tt.out, a.String(), tt.in)
	}
	require.Equal(t, "0.05", Format(5, "USD"))
	require.Equal(t, "-1.05", Format(-105, "USD"))
}

func TestCheckedArithmetic(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    int64
		n    int
		ok   bool
	}{
		{"small", 4900, 3, true},
		{"zero quantity", 4900, 0, true},
		{"the wrap of 2^64 cents", 18014398509481984, 1024, false},
		{"max int64 by two", math.MaxInt64, 2, false},
		{"negative", -1, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Mul(tc.a, tc.n)
			if !tc.ok {
				require.ErrorIs(t, err, ErrOverflow)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.a*int64(tc.n), got)
		})
	}
	_, err := Add(math.MaxInt64, 1)
	require.ErrorIs(t, err, ErrOverflow)
	s, err := Add(1, 2)
	require.NoError(t, err)
	require.Equal(t, int64(3), s)
}

func TestCurrencies(t *testing.T) {
	for _, tc := range []struct {
		code  string
		valid bool
		price string
		minor int64
	}{
		{"USD", true, "49.99", 4999},
		{"JPY", true, "4999", 4999},
		{"KWD", true, "1.234", 1234},
		{"CLF", true, "1.2345", 12345},
		{"QQQ", false, "", 0},
		{"USS", false, "", 0},
		{"usd", false, "", 0},
	} {
		t.Run(tc.code, func(t *testing.T) {
			require.Equal(t, tc.valid, ValidCurrency(tc.code))
			if !tc.valid {
				return
			}
			a, err := Parse(tc.price, tc.code)
			require.NoError(t, err)
			require.Equal(t, tc.minor, a.Minor)
			require.Equal(t, tc.price, a.String())
		})
	}
	_, err := Parse("1.5", "JPY")
	require.ErrorIs(t, err, ErrInvalid, "JPY has no minor unit")
	_, err = Parse("180143985094819.84", "USD")
	require.ErrorIs(t, err, ErrInvalid, "above the price ceiling")
	_, err = Parse("100000000000.00", "USD")
	require.NoError(t, err, "the ceiling itself")
}
