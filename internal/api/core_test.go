package api_test

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/sqlstore/sqlstoretest"
)

func TestFreeSeatEnrollsAndCompletes(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			before := time.Now().UTC().Add(-time.Second)
			ans := e.buy("ann", e.skus["verified"])
			require.Equal(t, "Complete", ans.Order.Status)
			require.Regexp(t, `^EDX-1\d{5}$`, ans.Order.Number)
			require.Equal(t, ans.Order.Number, "EDX-"+itoa(ans.ID+100000))
			require.Nil(t, ans.PaymentData)

			reqs := e.lms.Requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			require.Equal(t, "POST", r.Method)
			require.Equal(t, "/api/enrollment/v1/enrollment", r.Path)
			require.Equal(t, lmsKey, r.APIKey)
			o := e.order(ans.Order.Number)
			require.Equal(t, ans.Order.Number+":"+itoa(o.Lines[0].ID), r.IdempotencyKey)
			require.Equal(t, "ann", r.Body.User)
			require.True(t, r.Body.IsActive)
			require.Equal(t, "verified", r.Body.Mode)
			require.Equal(t, course, r.Body.CourseDetails.CourseID)
			require.Len(t, r.Body.EnrollmentAttributes, 3)
			require.Equal(t, lms.Attribute{Namespace: "order", Name: "order_number", Value: ans.Order.Number}, r.Body.EnrollmentAttributes[0])
			placed := r.Body.EnrollmentAttributes[1]
			require.Equal(t, "date_placed", placed.Name)
			at, err := time.Parse("2006-01-02T15:04:05Z", placed.Value)
			require.NoError(t, err, "date_placed must be %%Y-%%m-%%dT%%H:%%M:%%SZ")
			require.True(t, at.After(before))
			require.Equal(t, lms.Attribute{Namespace: "order", Name: "sku", Value: e.skus["verified"]}, r.Body.EnrollmentAttributes[2])
			// The wire body has exactly Otto's fields.
			require.JSONEq(t, `{"user":"ann","is_active":true,"mode":"verified","course_details":{"course_id":"`+course+`"},
				"enrollment_attributes":[{"namespace":"order","name":"order_number","value":"`+ans.Order.Number+`"},
				{"namespace":"order","name":"date_placed","value":"`+placed.Value+`"},
				{"namespace":"order","name":"sku","value":"`+e.skus["verified"]+`"}]}`, string(r.RawBody))

			en, ok := e.lms.Enrollment("ann", course)
			require.True(t, ok)
			require.True(t, en.IsActive)
			require.Equal(t, "verified", en.Mode)

			require.Equal(t, "Complete", o.Status)
			require.Equal(t, "0.00", o.TotalExclTax)
			require.Equal(t, "USD", o.Currency)
			require.Equal(t, "ann", o.User.Username)
			require.Equal(t, "Complete", o.Lines[0].Status)
			require.Equal(t, 1, o.Lines[0].Attempts)
			require.Nil(t, o.NextAttemptAt)

			// The learner sees the order in their list; another learner does not.
			var list struct{ Results []orderOut }
			e.do("GET", "/api/v2/orders/", e.token("ann", false), nil, http.StatusOK, &list)
			require.Len(t, list.Results, 1)
			e.do("GET", "/api/v2/orders/", e.token("bob", false), nil, http.StatusOK, &list)
			require.Empty(t, list.Results)
			e.do("GET", "/api/v2/orders/?username=ann&status=Complete", e.staff, nil, http.StatusOK, &list)
			require.Len(t, list.Results, 1)
			e.do("GET", "/api/v2/orders/"+ans.Order.Number+"/", e.token("bob", false), nil, http.StatusNotFound, nil)
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestSeatModesAndCreditAttribute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqlstoretest.Engines(t)[0], envOpts{})
	require.Equal(t, "Complete", e.buy("cat", e.skus["credit"]).Order.Status)
	require.Equal(t, "Complete", e.buy("dan", e.skus["audit"], e.skus["course2 audit"]).Order.Status)
	reqs := e.lms.Requests()
	require.Len(t, reqs, 3)
	credit := reqs[0].Body
	require.Equal(t, "credit", credit.Mode)
	require.Contains(t, credit.EnrollmentAttributes, lms.Attribute{Namespace: "credit", Name: "provider_id", Value: "asu"})
	for _, r := range reqs[1:] {
		require.Equal(t, "audit", r.Body.Mode)
		require.Equal(t, "dan", r.Body.User)
	}
}

func TestLMSFailureClasses(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + closed.Addr().String()
	closed.Close()

	tests := []struct {
		name      string
		faults    lmstest.Faults
		opts      envOpts
		wantLine  string
		wantHTTP  int
		attention bool
		noteHas   string
	}{
		{name: "5xx", faults: lmstest.Faults{FailRate: 1, FailStatus: 503}, wantLine: "Fulfillment Server Error", wantHTTP: 503},
		{name: "400 is permanent", faults: lmstest.Faults{FailRate: 1, FailStatus: 400}, wantLine: "Fulfillment Server Error", wantHTTP: 400, attention: true},
		{name: "timeout", faults: lmstest.Faults{TimeoutRate: 1}, opts: envOpts{lmsTimeout: 200 * time.Millisecond}, wantLine: "Fulfillment Timeout Error"},
		{name: "reset", faults: lmstest.Faults{ResetRate: 1}, wantLine: "Fulfillment Network Error"},
		{name: "refused", opts: envOpts{lmsURL: refused}, wantLine: "Fulfillment Network Error"},
		{name: "wrong api key", opts: envOpts{lmsKey: "wrong"}, wantLine: "Fulfillment Server Error", wantHTTP: 403, attention: true},
		{name: "no api key", opts: envOpts{lmsKey: " "}, wantLine: "Fulfillment Server Error", wantHTTP: 401, attention: true},
		{name: "no module", opts: envOpts{modules: map[catalog.Class]string{}}, wantLine: "Fulfillment Configuration Error", attention: true, noteHas: "no fulfillment module"},
	}
	for _, engine := range sqlstoretest.Engines(t) {
		for _, tt := range tests {
			t.Run(string(engine)+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, engine, tt.opts)
				e.lms.SetFaults(tt.faults)
				ans := e.buy("ann", e.skus["verified"])
				require.Equal(t, "Fulfillment Error", ans.Order.Status)
				o := e.order(ans.Order.Number)
				require.Equal(t, "Fulfillment Error", o.Status)
				l := o.Lines[0]
				require.Equal(t, tt.wantLine, l.Status)
				require.Equal(t, tt.wantHTTP, l.LastHTTPStatus)
				require.Equal(t, 1, l.Attempts)
				require.Equal(t, tt.attention, o.NeedsAttention)
				if tt.attention {
					require.Nil(t, o.NextAttemptAt, "a permanent failure is not retried")
				} else {
					require.NotNil(t, o.NextAttemptAt, "a transient failure is scheduled for a retry")
				}
				require.Len(t, o.Notes, 1)
				require.Equal(t, "Error", o.Notes[0].Kind)
				require.NotEmpty(t, o.LastError)
				if tt.noteHas != "" {
					require.Contains(t, o.Notes[0].Message, tt.noteHas)
				}
				if tt.wantHTTP == 503 {
					require.Contains(t, o.Notes[0].Message, l.LastError, "the LMS's message is kept as a note")
				}
				_, enrolled := e.lms.Enrollment("ann", course)
				require.False(t, enrolled)
			})
		}
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			ann := e.token("ann", false)
			bad := []struct {
				method, path, token string
				body                any
				want                int
			}{
				{"POST", "/api/v2/baskets/", "", `{"products":[{"sku":"X"}],"checkout":true}`, http.StatusUnauthorized},
				{"POST", "/api/v2/baskets/", "not-a-jwt", `{}`, http.StatusUnauthorized},
				{"POST", "/api/v2/baskets/", ann, `{`, http.StatusBadRequest},
				{"POST", "/api/v2/baskets/", ann, ``, http.StatusBadRequest},
				{"POST", "/api/v2/baskets/", ann, `[]`, http.StatusBadRequest},
				{"POST", "/api/v2/baskets/", ann, `{"products":[]}`, http.StatusBadRequest},
				{"POST", "/api/v2/baskets/", ann, `{"products":[{"sku":""}],"checkout":true}`, http.StatusBadRequest},
				{"POST", "/api/v2/baskets/", ann, `{"products":"x"}`, http.StatusBadRequest},
				{"POST", "/api/v2/baskets/", ann, `{"products":[{"sku":"NOPE"}],"checkout":true}`, http.StatusBadRequest},
				{"POST", "/api/v2/baskets/", ann, `{"products":[{"sku":"` + e.skus["no-id-professional"] + `"}],"checkout":true,"payment_processor_name":"paypal"}`, http.StatusBadRequest},
				{"POST", "/api/v2/baskets/", ann, `{"products":[{"sku":"` + e.skus["audit"] + `"}],"checkout":true,"username":"bob"}`, http.StatusForbidden},
				{"PUT", "/api/v2/courses/" + course + "/", ann, `{"name":"x","modes":[{"price":"1"}]}`, http.StatusForbidden},
				{"PUT", "/api/v2/courses/not-a-course/", e.staff, `{"name":"x","modes":[{"price":"1"}]}`, http.StatusBadRequest},
				{"PUT", "/api/v2/courses/" + course + "/", e.staff, `{"name":"x","modes":[{"price":"1.234"}]}`, http.StatusBadRequest},
				{"PUT", "/api/v2/courses/" + course + "/", e.staff, `{"name":"x","modes":[{"price":"1","currency":"dollars"}]}`, http.StatusBadRequest},
				{"PUT", "/api/v2/courses/" + course + "/", e.staff, `{"name":"x","modes":[{"certificate_type":"gold","price":"1"}]}`, http.StatusBadRequest},
				{"PUT", "/api/v2/courses/" + course + "/", e.staff, `{"name":"x","modes":[{}]}`, http.StatusBadRequest},
				{"PUT", "/api/v2/courses/" + course + "/", e.staff, `{"name":"x","modes":[{"price":true}]}`, http.StatusBadRequest},
				{"GET", "/api/v2/courses/course-v1:no+such+course/", ann, nil, http.StatusNotFound},
				{"GET", "/api/v2/products/", ann, nil, http.StatusBadRequest},
				{"GET", "/api/v2/orders/EDX-999999/", ann, nil, http.StatusNotFound},
				{"GET", "/api/v2/orders/?status=Shipped", e.staff, nil, http.StatusBadRequest},
				{"GET", "/api/v2/orders/?cursor=x", e.staff, nil, http.StatusBadRequest},
				{"DELETE", "/api/v2/orders/", ann, nil, http.StatusMethodNotAllowed},
				{"GET", "/no/such/route", ann, nil, http.StatusNotFound},
			}
			for _, b := range bad {
				raw := e.do(b.method, b.path, b.token, b.body, b.want, nil)
				if strings.Contains(b.path, "baskets") && b.want == http.StatusBadRequest && strings.Contains(b.body.(string), "NOPE") {
					require.Contains(t, string(raw), "NOPE", "an unknown SKU is named")
				}
			}
			require.Empty(t, e.lms.Requests(), "no bad request reached the LMS")

			// Products read back by SKU, a course read back with its SKUs.
			var ps struct {
				Results []struct {
					SKU   string `json:"sku"`
					Price string `json:"price"`
				}
			}
			e.do("GET", "/api/v2/products/?sku="+e.skus["verified"]+"&sku=NOPE", ann, nil, http.StatusOK, &ps)
			require.Len(t, ps.Results, 1)
			require.Equal(t, e.skus["verified"], ps.Results[0].SKU)
			require.Equal(t, "0.00", ps.Results[0].Price)
		})
	}
}

func TestCoursePutIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqlstoretest.Engines(t)[0], envOpts{})
	var c1, c2 struct {
		Modes []struct{ Name, SKU, Price string }
	}
	body := map[string]any{"name": "Demo", "modes": []map[string]any{{"certificate_type": "verified", "id_verification_required": true, "price": "49.00", "currency": "USD"}}}
	e.do("PUT", "/api/v2/courses/"+course+"/", e.staff, body, http.StatusOK, &c1)
	e.do("PUT", "/api/v2/courses/"+course+"/", e.staff, body, http.StatusOK, &c2)
	require.Equal(t, e.skus["verified"], c2.Modes[1].SKU)
	require.Equal(t, c1, c2)
	require.Len(t, c2.Modes, 4, "modes not named are kept")
	for _, m := range c2.Modes {
		if m.Name == "verified" {
			require.Equal(t, "49.00", m.Price)
		}
	}
}
