package refund

import (
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/order"
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

func TestRefundable(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		order  order.Status
		line   order.LineStatus
		price  int64
		refund string
		want   bool
	}{
		{"delivered, order complete (Otto)", order.StatusComplete, order.LineComplete, 100, "", true},
		{"delivered, free (Otto's $0 refund)", order.StatusComplete, order.LineComplete, 0, "", true},
		{"delivered, another line failed", order.StatusFulfillmentError, order.LineComplete, 100, "", false},
		{"failed, paid", order.StatusFulfillmentError, order.LineServerError, 100, "", true},
		{"failed for good, paid", order.StatusFulfillmentError, order.LineConfigurationError, 100, "", true},
		{"failed, free", order.StatusFulfillmentError, order.LineNetworkError, 0, "", false},
		{"still being delivered", order.StatusOpen, order.LineOpen, 100, "", false},
		{"refund open", order.StatusComplete, order.LineComplete, 100, "Open", false},
		{"refunded", order.StatusFulfillmentError, order.LineTimeoutError, 100, "Complete", false},
		{"refund denied", order.StatusFulfillmentError, order.LineTimeoutError, 100, "Denied", true},
	} {
		l := order.Line{Status: c.line, LinePriceMinor: c.price, RefundStatus: c.refund}
		require.Equal(t, c.want, Refundable(order.Order{Status: c.order, Lines: []order.Line{l}}, l), c.name)
	}
}
