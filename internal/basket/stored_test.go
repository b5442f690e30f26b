package basket

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStatuses checks every pair of the basket table.
func TestStatuses(t *testing.T) {
	all := []Status{StatusOpen, StatusFrozen, StatusSubmitted}
	allowed := map[[2]Status]bool{
		{StatusOpen, StatusFrozen}: true, {StatusOpen, StatusSubmitted}: true,
		{StatusFrozen, StatusFrozen}: true, {StatusFrozen, StatusOpen}: true, {StatusFrozen, StatusSubmitted}: true,
	}
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
	require.Error(t, Statuses.Check("Gone", StatusOpen), "unknown status")
	require.True(t, Statuses.Terminal(StatusSubmitted))
}
