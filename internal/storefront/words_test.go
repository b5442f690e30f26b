package storefront

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
	"fulfill/internal/order"
)

// TestLearnerWords: every order and line status, in every state a learner
// can see it in, has plain words, and none is a wire name.
func TestLearnerWords(t *testing.T) {
	t.Parallel()
	later := time.Now().Add(time.Minute)
	plain := func(what string, w words) {
		t.Helper()
		require.NotEmpty(t, w.Text, what)
		for _, wire := range []string{"Fulfillment", "Configuration", "Error", "Open", "Pending"} {
			require.NotContains(t, w.Text, wire, what)
			require.NotContains(t, w.Detail, wire, what)
		}
	}
	for _, class := range []catalog.Class{catalog.ClassSeat, catalog.ClassCourseEntitlement} {
		for _, st := range order.LineStatuses() {
			for _, next := range []*time.Time{nil, &later} {
				for _, refund := range []string{"", "Open", "Denied", "Complete"} {
					l := order.Line{Class: class, Status: st, RefundStatus: refund, NextAttemptAt: next}
					if st == order.LineComplete || st == order.LineOpen {
						l.NextAttemptAt = nil
					}
					o := order.Order{Status: order.StatusFulfillmentError, Lines: []order.Line{l}}
					plain(string(class)+" "+string(st)+" "+refund, learnerWords(o, &l))
				}
			}
		}
	}
	for _, st := range order.Statuses() {
		for _, attention := range []bool{false, true} {
			for _, next := range []*time.Time{nil, &later} {
				o := order.Order{Status: st, NeedsAttention: attention, NextAttemptAt: next,
					Lines: []order.Line{{Class: catalog.ClassSeat, Status: order.LineComplete}}}
				w := learnerWords(o, nil)
				plain(string(st), w)
				require.NotEmpty(t, w.Detail, st)
			}
		}
	}

	seat := order.Line{Class: catalog.ClassSeat}
	for _, c := range []struct {
		name  string
		o     order.Order
		l     *order.Line
		text  string
		final bool
	}{
		{"being enrolled", order.Order{Status: order.StatusOpen, Lines: []order.Line{seat}}, nil, "Enrolling you", false},
		{"retrying", order.Order{Status: order.StatusFulfillmentError, NextAttemptAt: &later, Lines: []order.Line{seat}}, nil, "Not complete yet", false},
		{"needs support", order.Order{Status: order.StatusFulfillmentError, NeedsAttention: true, Lines: []order.Line{seat}}, nil, "Not complete yet", true},
		{"complete", order.Order{Status: order.StatusComplete, Lines: []order.Line{seat}}, nil, "Complete", true},
		{"waiting for payment", order.Order{Status: order.StatusPending}, nil, "Waiting for your payment", false},
		{"enrolled", order.Order{}, &order.Line{Class: catalog.ClassSeat, Status: order.LineComplete}, "Enrolled", true},
		{"entitlement", order.Order{}, &order.Line{Class: catalog.ClassCourseEntitlement, Status: order.LineComplete}, "Delivered", true},
		{"line retrying", order.Order{}, &order.Line{Class: catalog.ClassSeat, Status: order.LineNetworkError, NextAttemptAt: &later}, "Not enrolled yet; we are retrying", false},
		{"line stuck", order.Order{}, &order.Line{Class: catalog.ClassSeat, Status: order.LineConfigurationError}, "Not enrolled yet; support has been told", true},
		{"line refunded", order.Order{}, &order.Line{Class: catalog.ClassSeat, Status: order.LineServerError, RefundStatus: "Complete"}, "Refunded", true},
	} {
		w := learnerWords(c.o, c.l)
		require.Equal(t, c.text, w.Text, c.name)
		require.Equal(t, c.final, w.Final, c.name)
	}
	w := learnerWords(order.Order{Status: order.StatusOpen, Lines: []order.Line{seat}}, nil)
	require.True(t, strings.HasPrefix(w.Detail, "We are enrolling you…"), w.Detail)
}
