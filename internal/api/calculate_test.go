package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
	"fulfill/internal/catalog"
	"fulfill/internal/offer"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// calculate is Otto's answer to GET /api/v2/baskets/calculate/.
type calculate struct {
	Before   json.Number `json:"total_incl_tax_excl_discounts"`
	Total    json.Number `json:"total_incl_tax"`
	Currency string      `json:"currency"`
}

func (e *env) calculate(token string, q url.Values, want int) calculate {
	e.t.Helper()
	var out calculate
	raw := e.do("GET", "/api/v2/baskets/calculate/?"+q.Encode(), token, nil, want, nil)
	if want == http.StatusOK {
		// The LMS subtracts the totals: they are JSON numbers, not strings.
		var shape map[string]any
		require.NoError(e.t, json.Unmarshal(raw, &shape))
		require.IsType(e.t, float64(0), shape["total_incl_tax"], string(raw))
		require.IsType(e.t, float64(0), shape["total_incl_tax_excl_discounts"], string(raw))
		require.NoError(e.t, json.Unmarshal(raw, &out))
	}
	return out
}

// discountEnv is a service with the professional seat (100.00) of course
// on a 10 % site offer, and a 25 % coupon LMS25 on the course.
func discountEnv(t testing.TB, engine sqlstore.Engine) *env {
	e := newEnv(t, engine, envOpts{serviceUsers: []string{"ecommerce_worker"}})
	_, err := e.db.CreateOffer(context.Background(), offer.Offer{Name: "Pro seats 10% off", Type: offer.TypeSite, Status: offer.StatusOpen,
		Exclusive: true, Condition: offer.Condition{Type: offer.ConditionCount, Value: 1,
			Range: offer.Range{Classes: []catalog.Class{catalog.ClassSeat}, SeatTypes: []string{"professional"}}},
		Benefit: offer.Benefit{Type: offer.BenefitPercentage, Value: 1000}})
	require.NoError(t, err)
	e.do("POST", "/api/v2/coupons/", e.staff, map[string]any{"title": "LMS", "code": "LMS25", "voucher_type": "Multi-use",
		"benefit_type": "Percentage", "benefit_value": 25, "start_datetime": "2020-01-01T00:00:00Z", "end_datetime": "2099-01-01T00:00:00Z",
		"course_keys": []string{course}}, http.StatusOK, nil)
	return e
}

// TestCalculateClientContracts prices baskets as Otto's real clients ask
// (otto-clients.md L9, L10, M2).
func TestCalculateClientContracts(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := discountEnv(t, engine)
		pro := e.skus["no-id-professional"]
		learner := e.token("ann", false)

		// L9: the LMS's track selection, with the learner's JWT.
		got := e.calculate(learner, url.Values{"sku": {pro}, "username": {"ann"}}, http.StatusOK)
		require.Equal(t, calculate{Before: "100.00", Total: "90.00", Currency: "USD"}, got)
		got = e.calculate(learner, url.Values{"sku": {pro}, "username": {"ann"}, "code": {"lms25"}}, http.StatusOK)
		require.Equal(t, json.Number("75.00"), got.Total, "the voucher (priority 20, exclusive) goes first")

		// L10: the program page, as the service user, anonymously.
		worker := e.token("ecommerce_worker", false)
		got = e.calculate(worker, url.Values{"sku": {pro, e.skus["verified"]}, "bundle": {"8a1b-program"}, "is_anonymous": {"True"}}, http.StatusOK)
		require.Equal(t, calculate{Before: "100.00", Total: "90.00", Currency: "USD"}, got)
		// …and for a learner the service knows, whom a service user may name
		// (one it never saw is priced anonymously, as Otto does).
		got = e.calculate(worker, url.Values{"sku": {pro}, "username": {"ann"}, "code": {"LMS25"}}, http.StatusOK)
		require.Equal(t, json.Number("90.00"), got.Total)
		_, err := e.db.UpsertUser(context.Background(), order.User{Username: "ann", Email: "ann@example.com"})
		require.NoError(t, err)
		got = e.calculate(worker, url.Values{"sku": {pro}, "username": {"ann"}, "code": {"LMS25"}}, http.StatusOK)
		require.Equal(t, json.Number("75.00"), got.Total)

		// M2: the marketing site, anonymous; the code is ignored, and a
		// second ask is answered from the cache with the same numbers.
		marketing := e.token("marketing_site_worker", false)
		q := url.Values{"sku": {pro}, "is_anonymous": {"true"}, "code": {"LMS25"}}
		first := e.calculate(marketing, q, http.StatusOK)
		require.Equal(t, calculate{Before: "100.00", Total: "90.00", Currency: "USD"}, first)
		require.Equal(t, first, e.calculate(marketing, q, http.StatusOK))
		require.Equal(t, first, e.calculate(marketing, url.Values{"sku": {pro}, "username": {"ann"}, "code": {"LMS25"}}, http.StatusOK),
			"the marketing site's user is always anonymous")

		// A new price reaches the cached answer at once.
		e.Course(course, "Demo", []map[string]any{{"certificate_type": "professional", "price": "80.00", "currency": "USD"}})
		require.Equal(t, calculate{Before: "80.00", Total: "72.00", Currency: "USD"}, e.calculate(marketing, q, http.StatusOK))

		// Nothing was written: the code is still unused.
		var codes struct{ Results []struct{ ID int64 } }
		e.do("GET", "/api/v2/coupons/", e.staff, nil, http.StatusOK, &codes)
		csv := e.do("GET", fmt.Sprintf("/api/v2/coupons/%d/codes.csv", codes.Results[0].ID), e.staff, nil, http.StatusOK, nil)
		require.Contains(t, string(csv), "LMS25,LMS,,0,")
	})
}

func TestCalculateErrors(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := discountEnv(t, engine)
		pro := e.skus["no-id-professional"]
		learner := e.token("ann", false)
		e.calculate(learner, url.Values{}, http.StatusBadRequest)
		var p struct {
			Detail string
			SKUs   []string `json:"skus"`
		}
		e.do("GET", "/api/v2/baskets/calculate/?sku=NOPE1&sku=NOPE2", learner, nil, http.StatusBadRequest, &p)
		require.Equal(t, []string{"NOPE1", "NOPE2"}, p.SKUs)
		got := e.calculate(learner, url.Values{"sku": {"NOPE1", pro}}, http.StatusOK)
		require.Equal(t, json.Number("100.00"), got.Before, "unknown SKUs are dropped when one is known")
		e.do("GET", "/api/v2/baskets/calculate/?sku="+pro+"&username=bob", learner, nil, http.StatusForbidden, &p)
		require.Contains(t, p.Detail, "Unauthorized user credentials")
		e.calculate(learner, url.Values{"sku": {pro}, "username": {"ann"}, "is_anonymous": {"true"}}, http.StatusBadRequest)
		e.calculate("", url.Values{"sku": {pro}}, http.StatusUnauthorized)
		got = e.calculate(e.staff, url.Values{"sku": {pro}, "username": {"never-seen"}, "code": {"LMS25"}}, http.StatusOK)
		require.Equal(t, json.Number("90.00"), got.Total, "staff naming an unknown user get the anonymous price")
	})
}

// BenchmarkCalculate measures GET /api/v2/baskets/calculate/ over HTTP:
// anonymous (the marketing site, answered from the cache after the first
// ask) and for a learner with a code (priced each time), in parallel.
func BenchmarkCalculate(b *testing.B) {
	for _, engine := range sqlstoretest.Engines(b) {
		b.Run(string(engine), func(b *testing.B) {
			e := discountEnv(b, engine)
			pro := e.skus["no-id-professional"]
			b.Run("cached", func(b *testing.B) {
				benchCalculate(b, e, e.token("marketing_site_worker", false), "sku="+pro+"&is_anonymous=true")
			})
			b.Run("uncached", func(b *testing.B) {
				benchCalculate(b, e, e.token("ann", false), "sku="+pro+"&username=ann&code=LMS25")
			})
		})
	}
}

func benchCalculate(b *testing.B, e *env, token, query string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v2/baskets/calculate/?"+query, nil)
			req.Header.Set("Authorization", "JWT "+token)
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "total_incl_tax") {
				b.Fatalf("status %d: %s", res.StatusCode, body)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "prices/s")
}
