package enrollment_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/fulfillment/enrollment"
	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/order"
)

// TestTrackingHeaders: the order's user carries the tracking values of the
// token that placed it to the LMS; an order without them (as the retry
// worker reads it from the database) sends none.
func TestTrackingHeaders(t *testing.T) {
	tests := []struct {
		name            string
		user            order.User
		wantGA, wantXFF string
	}{
		{name: "placed by this request", user: order.User{Username: "alice", GAClientID: "GA1.2.111.222", IP: "198.51.100.7"},
			wantGA: "GA1.2.111.222", wantXFF: "198.51.100.7"},
		{name: "read back by the retry worker", user: order.User{Username: "alice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := lmstest.New(lmstest.Options{APIKey: "k", Seed: 1})
			srv := httptest.NewServer(s)
			t.Cleanup(srv.Close)
			m := &enrollment.Module{LMS: lms.NewClient(srv.URL, "k", time.Second)}
			o := order.Order{Number: "EDX-100001", User: tc.user, DatePlaced: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
			l := order.Line{ID: 1, Class: catalog.ClassSeat, SKU: "S1",
				Attributes: catalog.Attributes{"course_key": "course-v1:edX+DemoX+2024", "certificate_type": "verified", "id_verification_required": true}}

			require.Equal(t, lms.Tracking{GAClientID: tc.user.GAClientID, IP: tc.user.IP}, enrollment.Request(o, l).Tracking)
			r := m.Fulfill(context.Background(), o, l, "EDX-100001:1")
			require.Equal(t, fulfillment.OutcomeSuccess, r.Outcome, r.Message)
			reqs := s.Requests()
			require.Len(t, reqs, 1)
			require.Equal(t, tc.wantGA, reqs[0].GAClientID)
			require.Equal(t, tc.wantXFF, reqs[0].ForwardedFor)
		})
	}
}
