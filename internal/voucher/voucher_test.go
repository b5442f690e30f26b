package voucher

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStatuses checks every pair of the enrollment-code table.
func TestStatuses(t *testing.T) {
	all := []Status{StatusAvailable, StatusRedeemed, StatusRevoked}
	allowed := map[[2]Status]bool{{StatusAvailable, StatusRedeemed}: true, {StatusAvailable, StatusRevoked}: true}
	for _, from := range all {
		for _, to := range all {
			err := Statuses.Check(from, to)
			if allowed[[2]Status{from, to}] {
				require.NoError(t, err, "%s → %s", from, to)
			} else {
				require.Error(t, err, "%s → %s", from, to)
			}
		}
	}
}
