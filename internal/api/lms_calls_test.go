package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
	"fulfill/internal/auth"
	"fulfill/internal/config"
	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/sqlstore"
)

// TestCoursePublishedWithOAuth: a course saved through the API reaches the
// LMS as Otto publishes it: with the OAuth client's JWT (fetched once),
// integer prices, and the credit course first.
func TestCoursePublishedWithOAuth(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		const id, clientID, clientSecret = "course-v1:edX+OAuth+Run", "ecommerce-backend", "backend-secret"
		stand := lmstest.New(lmstest.Options{APIKey: lmsKey, Seed: 1, OAuthClientID: clientID, OAuthClientSecret: clientSecret})
		lmsSrv := httptest.NewServer(stand)
		t.Cleanup(lmsSrv.Close)
		t.Cleanup(stand.Close)
		e := apptest.New(t, engine, apptest.Options{Configure: func(cfg *config.Config) {
			cfg.LMSURL = lmsSrv.URL
			cfg.LMSOAuthClientID, cfg.LMSOAuthClientSecret = clientID, clientSecret
			cfg.PublishCourses = true
		}})

		modes := []map[string]any{
			{"certificate_type": "", "price": "0.00", "currency": "USD"},
			{"certificate_type": "verified", "id_verification_required": true, "price": "49.99", "currency": "USD"},
			{"certificate_type": "credit", "credit_provider": "asu", "price": "250.50", "currency": "USD"},
			{"certificate_type": "professional", "price": "100.00", "currency": "USD"},
		}
		skus := e.Course(id, "OAuth course", modes)

		pc, ok := stand.PublishedCourse(id)
		require.True(t, ok, "published")
		prices := map[string]int64{}
		for _, m := range pc.Modes {
			prices[m.Name] = m.Price
			require.Equal(t, skus[m.Name], m.SKU)
			require.Nil(t, m.AndroidSKU)
			require.Nil(t, m.IOSSKU)
		}
		require.Equal(t, map[string]int64{"audit": 0, "verified": 49, "credit": 250, "no-id-professional": 100}, prices)
		cc, ok := stand.CreditCourse(id)
		require.True(t, ok, "made a credit course")
		require.Equal(t, lms.CreditCourse{CourseKey: id, Enabled: true}, cc)

		var got []string
		for _, c := range stand.Calls() {
			got = append(got, c.Method+" "+c.Path)
			if c.Path != lms.TokenPath {
				require.True(t, strings.HasPrefix(c.Authorization, "JWT "), "%s %s: %q", c.Method, c.Path, c.Authorization)
				require.Empty(t, c.APIKey)
			}
			require.Less(t, c.Status, 300, "%s %s", c.Method, c.Path)
		}
		require.Equal(t, []string{"POST " + lms.TokenPath, "PUT " + lms.CreditCoursesPath + id + "/", "PUT " + lms.CommerceCoursesPath + id + "/"}, got)

		// Saved again: the cached token is reused. Our own record keeps the
		// exact price.
		e.Course(id, "OAuth course", modes)
		require.Equal(t, 1, stand.Stats().TokensIssued)
		var out struct {
			Modes []struct{ Name, Price string }
		}
		e.Do("GET", "/api/v2/courses/"+id+"/", e.Staff, nil, http.StatusOK, &out)
		for _, m := range out.Modes {
			if m.Name == "verified" {
				require.Equal(t, "49.99", m.Price)
			}
		}
	})
}

// trackedToken signs a learner's token whose tracking_context holds the
// values Otto forwards to the LMS.
func trackedToken(t *testing.T, user, gaClientID, ip string) string {
	t.Helper()
	tc, err := json.Marshal(map[string]any{"lms_user_id": 7, "ga_client_id": gaClientID, "lms_ip": ip})
	require.NoError(t, err)
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, auth.Claims{
		RegisteredClaims:  jwt.RegisteredClaims{IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))},
		PreferredUsername: user, Email: user + "@example.com", TrackingContext: tc,
	}).SignedString([]byte(apptest.Secret))
	require.NoError(t, err)
	return tok
}

// TestEnrollmentCarriesTrackingContext: the enrollment of a checkout
// carries the buyer's tracking_context as X-Edx-Ga-Client-Id and
// X-Forwarded-For; a later retry, from the stored order, carries none.
func TestEnrollmentCarriesTrackingContext(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := apptest.New(t, engine, apptest.Options{})
		skus := e.Course(course, "Demo", []map[string]any{{"certificate_type": "", "price": "0", "currency": "USD"}})
		buy := func(token string) apptest.Basket {
			var b apptest.Basket
			e.Do("POST", "/api/v2/baskets/", token, map[string]any{"products": []map[string]string{{"sku": skus["audit"]}}, "checkout": true},
				http.StatusOK, &b)
			return b
		}
		last := func() lmstest.Request {
			reqs := e.LMS.Requests()
			require.NotEmpty(t, reqs)
			return reqs[len(reqs)-1]
		}

		b := buy(trackedToken(t, "ann", "GA1.2.345.678", "203.0.113.9"))
		require.Equal(t, "Complete", b.Order.Status)
		r := last()
		require.Equal(t, "ann", r.Body.User)
		require.Equal(t, "GA1.2.345.678", r.GAClientID)
		require.Equal(t, "203.0.113.9", r.ForwardedFor)
		require.Equal(t, lmsKey, r.APIKey)

		buy(e.Token("bob", false))
		r = last()
		require.Equal(t, "bob", r.Body.User)
		require.Empty(t, r.GAClientID, "no tracking_context, no header")
		require.Empty(t, r.ForwardedFor)

		// The LMS fails the first attempt; the retry comes from the
		// stored order, which keeps no tracking values.
		e.LMS.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: http.StatusServiceUnavailable})
		b = buy(trackedToken(t, "cid", "GA1.2.9.9", "198.51.100.1"))
		require.NotEqual(t, "Complete", b.Order.Status)
		require.Equal(t, "GA1.2.9.9", last().GAClientID, "the failed attempt had them")
		e.LMS.SetFaults(lmstest.Faults{})
		e.Do("PUT", "/api/v2/orders/"+b.Order.Number+"/fulfill/", e.Staff, nil, http.StatusOK, nil)
		r = last()
		require.Equal(t, "cid", r.Body.User)
		require.False(t, r.Faulted)
		require.Empty(t, r.GAClientID)
		require.Empty(t, r.ForwardedFor)
	})
}
