package order

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRefundState(t *testing.T) {
	t.Parallel()
	state := func(refunds ...string) string {
		o := Order{}
		for _, r := range refunds {
			o.Lines = append(o.Lines, Line{RefundStatus: r})
		}
		return o.RefundState()
	}
	require.Equal(t, "", state("", ""))
	require.Equal(t, "", state("Denied"), "a denied refund gave nothing back")
	require.Equal(t, RefundFull, state("Complete"))
	require.Equal(t, RefundFull, state("Complete", "Complete"))
	require.Equal(t, RefundPartly, state("Complete", ""))
	require.Equal(t, RefundPartly, state("Complete", "Denied"))
	require.Equal(t, RefundPending, state("Open", "Complete"))
	require.Equal(t, RefundPending, state("Revocation Error"))
	require.True(t, Line{RefundStatus: "Open"}.InRefund())
	require.False(t, Line{RefundStatus: "Denied"}.InRefund())
	require.False(t, Line{}.InRefund())
}
