package lms_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/money"
)

const (
	oauthID     = "ecommerce-backend-service"
	oauthSecret = "backend-secret"
	courseID    = "course-v1:edX+DemoX+2024"
)

// standIn starts the LMS stand-in with opts behind a real socket.
func standIn(t *testing.T, opts lmstest.Options) (*lmstest.Server, string) {
	t.Helper()
	s := lmstest.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	return s, srv.URL
}

func price(t *testing.T, s, currency string) money.Amount {
	t.Helper()
	a, err := money.Parse(s, currency)
	require.NoError(t, err)
	return a
}

// TestPublicationPrices: Otto publishes int(price), which truncates.
func TestPublicationPrices(t *testing.T) {
	tests := []struct {
		price, currency string
		want            int64
	}{
		{"49.99", "USD", 49},
		{"49.00", "USD", 49},
		{"0.50", "USD", 0},
		{"0", "USD", 0},
		{"100", "EUR", 100},
		{"5000", "JPY", 5000},
		{"1.999", "KWD", 1},
	}
	for _, tc := range tests {
		t.Run(tc.price+" "+tc.currency, func(t *testing.T) {
			pc := lms.Publication(catalog.Course{ID: courseID, Name: "Demo", Seats: []catalog.Seat{
				{CertificateType: catalog.CertVerified, IDVerificationRequired: true, Price: price(t, tc.price, tc.currency), SKU: "SKU1"},
			}})
			require.Len(t, pc.Modes, 1)
			require.Equal(t, tc.want, pc.Modes[0].Price)
			raw, err := json.Marshal(pc.Modes[0])
			require.NoError(t, err)
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(raw, &m))
			require.Equal(t, strings.TrimSpace(string(mustJSON(t, tc.want))), string(m["price"]), "an integer, not a string or a decimal")
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestPublicationModes checks every key of the modes Otto sends,
// android_sku and ios_sku included (null: no mobile seats are sold here).
func TestPublicationModes(t *testing.T) {
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	pc := lms.Publication(catalog.Course{ID: courseID, Name: "Demo", Seats: []catalog.Seat{
		{CertificateType: "", Price: price(t, "0", "USD"), SKU: "A"},
		{CertificateType: catalog.CertVerified, IDVerificationRequired: true, Price: price(t, "49.99", "USD"), SKU: "V", BulkSKU: "BV", Expires: &expires},
		{CertificateType: catalog.CertProfessional, Price: price(t, "100.00", "USD"), SKU: "P", Expires: &expires},
	}})
	raw, err := json.Marshal(pc)
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"course-v1:edX+DemoX+2024","name":"Demo","verification_deadline":null,"modes":[
		{"name":"audit","currency":"USD","price":0,"sku":"A","bulk_sku":null,"expires":null,"android_sku":null,"ios_sku":null},
		{"name":"verified","currency":"USD","price":49,"sku":"V","bulk_sku":"BV","expires":"2030-01-02T03:04:05Z","android_sku":null,"ios_sku":null},
		{"name":"no-id-professional","currency":"USD","price":100,"sku":"P","bulk_sku":null,"expires":null,"android_sku":null,"ios_sku":null}]}`, string(raw))

	// Set SKUs go out as strings.
	android, ios := "mobile.android.V", "mobile.ios.V"
	pc.Modes[1].AndroidSKU, pc.Modes[1].IOSSKU = &android, &ios
	raw, err = json.Marshal(pc.Modes[1])
	require.NoError(t, err)
	require.Contains(t, string(raw), `"android_sku":"mobile.android.V","ios_sku":"mobile.ios.V"`)
}

// TestPublishCourse publishes to the stand-in: a credit course is made a
// credit course first, with the same credentials, and the stand-in keeps
// the integer prices and mobile SKUs.
func TestPublishCourse(t *testing.T) {
	android := "mobile.android.V"
	credit := lms.PublishedMode{Name: "credit", Currency: "USD", Price: 250, SKU: "C"}
	verified := lms.PublishedMode{Name: "verified", Currency: "USD", Price: 49, SKU: "V", AndroidSKU: &android}
	tests := []struct {
		name       string
		oauth      bool
		modes      []lms.PublishedMode
		wantCredit bool
		wantPaths  []string
	}{
		{name: "credit course with OAuth", oauth: true, modes: []lms.PublishedMode{verified, credit}, wantCredit: true,
			wantPaths: []string{lms.TokenPath, lms.CreditCoursesPath + courseID + "/", lms.CommerceCoursesPath + courseID + "/"}},
		{name: "course without credit with OAuth", oauth: true, modes: []lms.PublishedMode{verified},
			wantPaths: []string{lms.TokenPath, lms.CommerceCoursesPath + courseID + "/"}},
		{name: "credit course with the API key", modes: []lms.PublishedMode{credit, verified}, wantCredit: true,
			wantPaths: []string{lms.CreditCoursesPath + courseID + "/", lms.CommerceCoursesPath + courseID + "/"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := lmstest.Options{APIKey: testKey, Seed: 1}
			var copts []lms.Option
			if tc.oauth {
				opts.OAuthClientID, opts.OAuthClientSecret = oauthID, oauthSecret
				copts = append(copts, lms.WithOAuth(lms.OAuth{ClientID: oauthID, ClientSecret: oauthSecret}))
			}
			s, base := standIn(t, opts)
			c := lms.NewClient(base, testKey, time.Second, copts...)

			require.NoError(t, c.PublishCourse(context.Background(), lms.PublishedCourse{ID: courseID, Name: "Demo", Modes: tc.modes}))

			calls := s.Calls()
			var paths []string
			for _, call := range calls {
				paths = append(paths, call.Path)
				require.Less(t, call.Status, 300, "%s %s", call.Method, call.Path)
				if call.Path == lms.TokenPath {
					continue
				}
				require.Equal(t, http.MethodPut, call.Method)
				if tc.oauth {
					require.True(t, strings.HasPrefix(call.Authorization, "JWT "), call.Authorization)
					require.Empty(t, call.APIKey, "the OAuth client's calls carry no API key")
				} else {
					require.Empty(t, call.Authorization)
					require.Equal(t, testKey, call.APIKey, "without an OAuth client the API key is sent, as before")
				}
			}
			require.Equal(t, tc.wantPaths, paths)

			cc, isCredit := s.CreditCourse(courseID)
			require.Equal(t, tc.wantCredit, isCredit)
			if isCredit {
				require.Equal(t, lms.CreditCourse{CourseKey: courseID, Enabled: true}, cc)
			}
			pc, ok := s.PublishedCourse(courseID)
			require.True(t, ok)
			require.Equal(t, tc.modes, pc.Modes)

			back, err := c.GetPublishedCourse(context.Background(), courseID)
			require.NoError(t, err)
			require.Equal(t, tc.modes, back.Modes)
		})
	}
}

// TestPublishCreditFailureStops: when the LMS refuses the credit course,
// the course itself is not published (Otto's LMSPublisher returns first).
func TestPublishCreditFailureStops(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"detail":"You do not have permission to perform this action."}`))
	}))
	t.Cleanup(srv.Close)
	c := lms.NewClient(srv.URL, testKey, time.Second)
	err := c.Publish(context.Background(), catalog.Course{ID: courseID, Name: "Demo", Seats: []catalog.Seat{
		{CertificateType: catalog.CertCredit, CreditProvider: "asu", Price: price(t, "10", "USD"), SKU: "C"}}})
	var pe *catalog.PublishError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "the LMS did not take the course as a credit course: You do not have permission to perform this action.", pe.Message)
	require.Equal(t, []string{lms.CreditCoursesPath + courseID + "/"}, paths)
}

// TestStandInRefusesNonIntegerPrice: the stand-in reads prices as the
// LMS's IntegerField does and answers a refusal with DRF's nested error,
// whose message the client names.
func TestStandInRefusesNonIntegerPrice(t *testing.T) {
	tests := []struct {
		name      string
		price     string // JSON text; "" leaves the key out
		wantPrice int64
		wantErr   string
	}{
		{name: "integer", price: `49`, wantPrice: 49},
		{name: "float with a zero fraction", price: `49.0`, wantPrice: 49},
		{name: "string with a zero fraction", price: `"49.00"`, wantPrice: 49},
		{name: "exponent", price: `1e2`, wantPrice: 100},
		{name: "decimal", price: `49.99`, wantErr: "A valid integer is required."},
		{name: "decimal string", price: `"49.99"`, wantErr: "A valid integer is required."},
		{name: "word", price: `"free"`, wantErr: "A valid integer is required."},
		{name: "boolean", price: `true`, wantErr: "A valid integer is required."},
		{name: "null", price: `null`, wantErr: "This field may not be null."},
		{name: "missing", wantErr: "This field is required."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, base := standIn(t, lmstest.Options{APIKey: testKey, Seed: 1})
			second := `{"name":"verified","currency":"USD","sku":"V"`
			if tc.price != "" {
				second += `,"price":` + tc.price
			}
			second += `}`
			body := `{"id":"` + courseID + `","modes":[{"name":"audit","currency":"USD","price":0,"sku":"A"},` + second + `]}`
			req, err := http.NewRequest(http.MethodPut, base+lms.CommerceCoursesPath+courseID+"/", strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("X-Edx-Api-Key", testKey)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			var answer map[string]any
			require.NoError(t, json.NewDecoder(res.Body).Decode(&answer))
			if tc.wantErr == "" {
				require.Equal(t, http.StatusOK, res.StatusCode, "%v", answer)
				pc, ok := s.PublishedCourse(courseID)
				require.True(t, ok)
				require.Equal(t, tc.wantPrice, pc.Modes[1].Price)
				return
			}
			require.Equal(t, http.StatusBadRequest, res.StatusCode)
			require.Equal(t, map[string]any{"modes": []any{map[string]any{}, map[string]any{"price": []any{tc.wantErr}}}}, answer)
			_, ok := s.PublishedCourse(courseID)
			require.False(t, ok, "nothing is stored")
		})
	}

	t.Run("the client names the refused field", func(t *testing.T) {
		srv, _, _ := recorder(t, http.StatusBadRequest, nil, `{"modes":[{},{"price":["A valid integer is required."]}]}`)
		err := lms.NewClient(srv.URL, testKey, time.Second).PublishCourse(context.Background(),
			lms.PublishedCourse{ID: courseID, Modes: []lms.PublishedMode{{Name: "audit", SKU: "A"}}})
		var le *lms.Error
		require.True(t, errors.As(err, &le))
		require.Equal(t, "modes[1].price: A valid integer is required.", le.Message)
	})
}

// TestEnrollTrackingHeaders: the enrollment carries the buyer's
// tracking_context as Otto's headers, when there is one, next to the API
// key; the body is unchanged.
func TestEnrollTrackingHeaders(t *testing.T) {
	tests := []struct {
		name            string
		tracking        lms.Tracking
		wantGA, wantXFF string
	}{
		{name: "both", tracking: lms.Tracking{GAClientID: "GA1.2.3.4", IP: "203.0.113.9"}, wantGA: "GA1.2.3.4", wantXFF: "203.0.113.9"},
		{name: "client id only", tracking: lms.Tracking{GAClientID: "GA1.2.3.4"}, wantGA: "GA1.2.3.4"},
		{name: "ip only", tracking: lms.Tracking{IP: "2001:db8::1"}, wantXFF: "2001:db8::1"},
		{name: "none (the retry worker)", tracking: lms.Tracking{}},
		{name: "a value no header can hold is left out", tracking: lms.Tracking{GAClientID: "GA1\r\nX-Evil: 1", IP: "203.0.113.9"}, wantXFF: "203.0.113.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, base := standIn(t, lmstest.Options{APIKey: testKey, Seed: 1, OAuthClientID: oauthID, OAuthClientSecret: oauthSecret})
			c := lms.NewClient(base, testKey, time.Second, lms.WithOAuth(lms.OAuth{ClientID: oauthID, ClientSecret: oauthSecret}))
			req := lms.EnrollmentRequest{User: "alice", IsActive: true, Mode: "verified",
				CourseDetails: lms.CourseDetails{CourseID: courseID}, Tracking: tc.tracking}
			err := c.Enroll(context.Background(), req, "EDX-100001:1")
			require.NoError(t, err)
			reqs := s.Requests()
			require.Len(t, reqs, 1)
			require.Equal(t, tc.wantGA, reqs[0].GAClientID)
			require.Equal(t, tc.wantXFF, reqs[0].ForwardedFor)
			require.Equal(t, testKey, reqs[0].APIKey, "the Enrollment API keeps X-Edx-Api-Key")
			require.JSONEq(t, `{"user":"alice","is_active":true,"mode":"verified","course_details":{"course_id":"`+courseID+`"}}`, string(reqs[0].RawBody))
			require.Zero(t, s.Stats().TokensIssued, "enrollment needs no OAuth token")
		})
	}
}
