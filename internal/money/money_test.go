package money

import (
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
