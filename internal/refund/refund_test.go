package refund

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTransitionEveryPair(t *testing.T) {
	t.Parallel()
	allowed := map[[2]Status]bool{
		{StatusOpen, StatusDenied}: true, {StatusOpen, StatusPaymentRefundError}: true, {StatusOpen, StatusPaymentRefunded}: true,
		{StatusPaymentRefundError, StatusPaymentRefunded}: true, {StatusPaymentRefundError, StatusPaymentRefundError}: true,
		{StatusPaymentRefunded, StatusRevocationError}: true, {StatusPaymentRefunded, StatusComplete}: true,
		{StatusRevocationError, StatusRevocationError}: true, {StatusRevocationError, StatusComplete}: true,
	}
	for _, from := range Statuses() {
		for _, to := range Statuses() {
			err := Transition(from, to)
			if allowed[[2]Status{from, to}] {
				require.NoError(t, err, "%s → %s", from, to)
			} else {
				require.ErrorIs(t, err, ErrInvalidTransition, "%s → %s", from, to)
			}
		}
	}
}

func TestLineTransitionEveryPair(t *testing.T) {
	t.Parallel()
	allowed := map[[2]LineStatus]bool{
		{LineOpen, LineDenied}: true, {LineOpen, LineRevocationError}: true, {LineOpen, LineComplete}: true,
		{LineRevocationError, LineRevocationError}: true, {LineRevocationError, LineComplete}: true,
	}
	for _, from := range LineStatuses() {
		for _, to := range LineStatuses() {
			err := LineTransition(from, to)
			if allowed[[2]LineStatus{from, to}] {
				require.NoError(t, err, "%s → %s", from, to)
			} else {
				require.ErrorIs(t, err, ErrInvalidTransition, "%s → %s", from, to)
			}
		}
	}
	require.True(t, ActionApprovePaymentOnly.Valid())
	require.False(t, Action("refund").Valid())
}
