package order

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOrderTransitionEveryPair(t *testing.T) {
	t.Parallel()
	allowed := map[[2]Status]bool{
		{StatusPending, StatusOpen}:              true,
		{StatusPending, StatusPaymentError}:      true,
		{StatusOpen, StatusComplete}:             true,
		{StatusOpen, StatusFulfillmentError}:     true,
		{StatusFulfillmentError, StatusComplete}: true,
	}
	for _, from := range Statuses() {
		for _, to := range Statuses() {
			err := Transition(from, to)
			if from == to || allowed[[2]Status{from, to}] {
				require.NoError(t, err, "%s → %s", from, to)
			} else {
				require.ErrorIs(t, err, ErrInvalidTransition, "%s → %s", from, to)
			}
		}
	}
	require.ErrorIs(t, Transition("Shipped", StatusOpen), ErrInvalidTransition)
	require.ErrorIs(t, Transition(StatusOpen, "Shipped"), ErrInvalidTransition)
}

func TestLineTransitionEveryPair(t *testing.T) {
	t.Parallel()
	for _, from := range LineStatuses() {
		for _, to := range LineStatuses() {
			err := LineTransition(from, to)
			var want bool
			switch {
			case from == to:
				want = true
			case from == LineComplete:
				want = false // terminal
			case to == LineOpen:
				want = false // nothing goes back to Open
			default:
				want = true // Open or an error → Complete or any error
			}
			if want {
				require.NoError(t, err, "%s → %s", from, to)
			} else {
				require.ErrorIs(t, err, ErrInvalidTransition, "%s → %s", from, to)
			}
		}
	}
}

func TestRollup(t *testing.T) {
	t.Parallel()
	require.Equal(t, StatusComplete, Rollup(StatusOpen, []LineStatus{LineComplete, LineComplete}))
	require.Equal(t, StatusComplete, Rollup(StatusFulfillmentError, []LineStatus{LineComplete}))
	require.Equal(t, StatusFulfillmentError, Rollup(StatusOpen, []LineStatus{LineComplete, LineNetworkError}))
	require.Equal(t, StatusFulfillmentError, Rollup(StatusOpen, []LineStatus{LineOpen, LineServerError}))
	require.Equal(t, StatusOpen, Rollup(StatusOpen, []LineStatus{LineOpen, LineComplete}))
	require.True(t, StatusOpen.Fulfillable())
	require.True(t, StatusFulfillmentError.Fulfillable())
	require.False(t, StatusComplete.Fulfillable())
	require.True(t, LineTimeoutError.IsError())
	require.False(t, LineComplete.IsError())
}
