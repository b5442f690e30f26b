package auth

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// TestTrackingContext: ga_client_id and lms_ip of the tracking_context
// claim reach the user; any other shape is ignored, never refused.
func TestTrackingContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claim  string // raw JSON; "" leaves the claim out
		wantGA string
		wantIP string
	}{
		{name: "LMS's claim", claim: `{"lms_user_id":7,"lms_client_id":"x","ga_client_id":"GA1.2.3.4","lms_ip":"203.0.113.9"}`, wantGA: "GA1.2.3.4", wantIP: "203.0.113.9"},
		{name: "ip only", claim: `{"lms_ip":"2001:db8::1"}`, wantIP: "2001:db8::1"},
		{name: "absent", claim: ""},
		{name: "null", claim: `null`},
		{name: "not an object", claim: `"GA1.2.3.4"`},
		{name: "values not strings", claim: `{"ga_client_id":12,"lms_ip":["203.0.113.9"]}`},
		{name: "spaces trimmed", claim: `{"ga_client_id":" GA1.2.3.4 "}`, wantGA: "GA1.2.3.4"},
	}
	v := NewVerifier("s3cret")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Claims{PreferredUsername: "ann",
				RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
			if tc.claim != "" {
				c.TrackingContext = json.RawMessage(tc.claim)
			}
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("s3cret"))
			require.NoError(t, err)
			u, err := v.User(tok)
			require.NoError(t, err)
			require.Equal(t, "ann", u.Username)
			require.Equal(t, tc.wantGA, u.GAClientID)
			require.Equal(t, tc.wantIP, u.IP)
		})
	}
}
