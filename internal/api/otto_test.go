package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
	"fulfill/internal/fulfillment/entitlement"
	"fulfill/internal/payment"
	"fulfill/internal/sqlstore"
)

// The bodies, formats and endpoints Open edX's own clients use
// (shared/reference/otto-clients.md), as they send and read them.

// send makes a request with a raw body of contentType as token, checks the
// status (a 4xx must be problem+json), and decodes the answer into out.
// apptest.Env.Send checks the exchange against the OpenAPI document.
func (e *env) send(method, path, token, contentType string, body []byte, want int, out any) []byte {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "JWT "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, raw := e.Send(req)
	require.Equal(e.t, want, res.StatusCode, "%s %s: %s", method, path, raw)
	if want >= 400 && want != http.StatusInternalServerError {
		require.Equal(e.t, "application/problem+json", res.Header.Get("Content-Type"), string(raw))
	}
	if out != nil {
		require.NoError(e.t, json.Unmarshal(raw, out), string(raw))
	}
	return raw
}

// form sends v form-encoded, as requests.post(url, data=…) and jQuery do.
func (e *env) form(method, path, token string, v url.Values, want int, out any) []byte {
	e.t.Helper()
	return e.send(method, path, token, "application/x-www-form-urlencoded", []byte(v.Encode()), want, out)
}

// multipartForm sends the fields (name, value, name, value…) as
// multipart/form-data.
func (e *env) multipartForm(method, path, token string, want int, out any, kv ...string) []byte {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(kv); i += 2 {
		require.NoError(e.t, mw.WriteField(kv[i], kv[i+1]))
	}
	require.NoError(e.t, mw.Close())
	return e.send(method, path, token, mw.FormDataContentType(), buf.Bytes(), want, out)
}

func TestFormBodiesAsDRFParsesThem(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		ann := e.token("ann", false)

		// A basket as a form: products[0][sku] (jQuery), products[1]sku
		// (DRF's own form), checkout as "true".
		var b basketAnswer
		e.form("POST", "/api/v2/baskets/", ann, url.Values{"products[0][sku]": {e.skus["audit"]}, "products[1]sku": {e.skus["course2 audit"]},
			"checkout": {"true"}}, http.StatusOK, &b)
		require.Equal(t, "Complete", b.Order.Status)
		o := e.order(b.Order.Number)
		require.Len(t, o.Lines, 2)
		// A boolean that is not one, a number that is not one: 400 naming the field.
		raw := e.form("POST", "/api/v2/baskets/", ann, url.Values{"products[0][sku]": {e.skus["verified"]}, "checkout": {"maybe"}}, http.StatusBadRequest, nil)
		require.Contains(t, string(raw), "checkout")
		raw = e.form("POST", "/api/v2/baskets/", ann, url.Values{"products[0][sku]": {e.skus["verified"]}, "products[0][quantity]": {"two"}}, http.StatusBadRequest, nil)
		require.Contains(t, string(raw), "products[0].quantity")
		// NUL in a form value is refused like in JSON.
		e.send("PUT", "/api/v2/refunds/1/process/", e.staff, "application/x-www-form-urlencoded", []byte("action=approve%00"), http.StatusBadRequest, nil)
		// JSON labelled as a form (curl -d without -H) is still JSON.
		e.send("POST", "/api/v2/baskets/", e.token("bob", false), "application/x-www-form-urlencoded",
			[]byte(`{"products":[{"sku":"`+e.skus["course2 audit"]+`"}],"checkout":true}`), http.StatusOK, &b)
		require.Equal(t, "Complete", b.Order.Status)

		// The LMS's refund_seat (L3): form-encoded course_id and username,
		// answered with the JSON list of refund ids.
		paid := e.paidOrder("cat", e.skus["no-id-professional"])
		var ids []int64
		e.form("POST", "/api/v2/refunds/", e.staff, url.Values{"course_id": {course}, "username": {"cat"}}, http.StatusCreated, &ids)
		require.Len(t, ids, 1)
		// Otto's dashboard (D2): a form action, any case.
		var rf refundOut
		e.form("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, url.Values{"action": {"Approve_Payment_Only"}}, http.StatusOK, &rf)
		require.Equal(t, "Complete", rf.Status)
		require.Equal(t, []string{"100.00"}, e.credits(paid))
		e.form("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, url.Values{"action": {"refund-twice"}}, http.StatusBadRequest, nil)

		// A list as the name repeated (line_ids=…), and multipart: the
		// same fields.
		two := e.paidOrder("dan", e.skus["no-id-professional"], e.skus["course2 no-id-professional"])
		lines := e.order(two).Lines
		e.form("POST", "/api/v2/refunds/", e.staff, url.Values{"order_number": {two}, "line_ids": {itoa(lines[1].ID)}}, http.StatusCreated, &ids)
		var got refundOut
		e.do("GET", fmt.Sprintf("/api/v2/refunds/%d/", ids[0]), e.staff, nil, http.StatusOK, &got)
		require.Len(t, got.Lines, 1)
		require.Equal(t, lines[1].ID, got.Lines[0].OrderLineID)
		e.multipartForm("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, http.StatusOK, &rf, "action", "DENY")
		require.Equal(t, "Denied", rf.Status)
		var bulk struct{ Count int }
		e.multipartForm("POST", "/api/v2/orders/fulfill/", e.staff, http.StatusOK, &bulk, "numbers", two, "numbers", paid)
		require.Zero(t, bulk.Count, "Complete orders are skipped")
		e.multipartForm("POST", "/api/v2/orders/fulfill/", e.staff, http.StatusOK, &bulk, "filter.status", "Fulfillment Error")
	})
}

func TestEntitlementRefundByUUID(t *testing.T) {
	require.Equal(t, "entitlement_uuid", entitlement.DataUUID, "the key the API looks the uuid up by")
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		for _, sku := range []string{"ENT-A", "ENT-B"} {
			e.do("PUT", "/api/v2/products/"+sku+"/", e.staff, map[string]any{"product_class": "Course Entitlement", "title": "Entitlement " + sku,
				"price": "0", "currency": "USD", "attributes": map[string]any{"UUID": "uuid-" + sku, "certificate_type": "verified"}}, http.StatusOK, nil)
		}
		ans := e.buy("ann", "ENT-A", "ENT-B")
		require.Equal(t, "Complete", ans.Order.Status)
		o := e.order(ans.Order.Number)
		require.Len(t, o.Lines, 2)
		byCourse := map[string]string{}
		for _, en := range e.lms.Entitlements() {
			byCourse[en.CourseUUID] = en.UUID
		}
		require.Len(t, byCourse, 2)

		// The LMS's refund_entitlement (L5): form order_number, username,
		// entitlement_uuid refunds only that entitlement's line.
		var ids []int64
		e.form("POST", "/api/v2/refunds/", e.staff, url.Values{"order_number": {ans.Order.Number}, "username": {"ann"},
			"entitlement_uuid": {byCourse["uuid-ENT-B"]}}, http.StatusCreated, &ids)
		require.Len(t, ids, 1)
		var rf refundOut
		e.do("GET", fmt.Sprintf("/api/v2/refunds/%d/", ids[0]), e.staff, nil, http.StatusOK, &rf)
		require.Len(t, rf.Lines, 1)
		var entB int64
		for _, l := range o.Lines {
			if l.SKU == "ENT-B" {
				entB = l.ID
			}
		}
		require.Equal(t, entB, rf.Lines[0].OrderLineID)

		// Refunded already, an unknown uuid: nothing to refund. Another
		// user's order: 400.
		e.form("POST", "/api/v2/refunds/", e.staff, url.Values{"order_number": {ans.Order.Number}, "username": {"ann"},
			"entitlement_uuid": {byCourse["uuid-ENT-B"]}}, http.StatusOK, &ids)
		require.Empty(t, ids)
		e.form("POST", "/api/v2/refunds/", e.staff, url.Values{"order_number": {ans.Order.Number}, "entitlement_uuid": {"nope"}}, http.StatusOK, &ids)
		require.Empty(t, ids)
		e.form("POST", "/api/v2/refunds/", e.staff, url.Values{"order_number": {ans.Order.Number}, "username": {"bob"},
			"entitlement_uuid": {byCourse["uuid-ENT-A"]}}, http.StatusBadRequest, nil)
		e.form("POST", "/api/v2/refunds/", e.staff, url.Values{"entitlement_uuid": {byCourse["uuid-ENT-A"]}}, http.StatusBadRequest, nil)
	})
}

// ottoTime is Otto's ISO_8601_FORMAT, which the LMS parses with strptime.
var ottoTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// timesIn returns every string value under a key named like a time.
func timesIn(v any, key string, out map[string][]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			timesIn(c, k, out)
		}
	case []any:
		for _, c := range x {
			timesIn(c, key, out)
		}
	case string:
		switch key {
		case "date_placed", "updated_at", "next_attempt_at", "fulfilled_at", "created", "modified", "expires",
			"verification_deadline", "last_edited":
			out[key] = append(out[key], x)
		}
	}
}

func TestTimestampsAreWholeSeconds(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		e.do("PUT", "/api/v2/courses/"+course+"/", e.staff, map[string]any{"name": "Demo", "verification_deadline": "2031-01-02T03:04:05.678Z",
			"modes": []map[string]any{{"certificate_type": "professional", "price": "100.00", "currency": "USD", "expires": "2030-06-07T08:09:10.123456Z"}}},
			http.StatusOK, nil)
		number := e.paidOrder("ann", e.skus["no-id-professional"])
		var ids []int64
		e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{"order_number": number}, http.StatusCreated, &ids)

		seen := map[string][]string{}
		for _, path := range []string{"/api/v2/orders/" + number + "/", "/api/v2/orders/", fmt.Sprintf("/api/v2/refunds/%d/", ids[0]),
			"/api/v2/refunds/", "/api/v2/courses/" + course + "/?include_products=true", "/api/v2/courses/?include_products=true",
			"/api/v2/products/?sku=" + e.skus["no-id-professional"]} {
			var v any
			e.do("GET", path, e.staff, nil, http.StatusOK, &v)
			timesIn(v, "", seen)
		}
		for _, k := range []string{"date_placed", "updated_at", "fulfilled_at", "created", "modified", "expires", "verification_deadline", "last_edited"} {
			require.NotEmpty(t, seen[k], k)
			for _, s := range seen[k] {
				require.Regexp(t, ottoTime, s, k)
			}
		}
		require.Contains(t, seen["expires"], "2030-06-07T08:09:10Z")
		require.Contains(t, seen["verification_deadline"], "2031-01-02T03:04:05Z")
	})
}

type orderPage struct {
	Count    *int       `json:"count"`
	Next     *string    `json:"next"`
	Previous *string    `json:"previous"`
	Results  []orderOut `json:"results"`
}

func TestOrderListPages(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		ann := e.token("ann", false)
		var numbers []string
		for range 25 { // enrollment codes may be bought again and again
			numbers = append(numbers, e.buy("ann", e.skus["bulk verified"]).Order.Number)
		}
		e.buy("bob", e.skus["audit"])

		// The order-history MFE (O1) and the LMS (L14): page, page_size,
		// count, absolute next and previous.
		var p orderPage
		e.do("GET", "/api/v2/orders/?username=ann&page=1&page_size=20", ann, nil, http.StatusOK, &p)
		require.Equal(t, 25, *p.Count)
		require.Len(t, p.Results, 20)
		require.Equal(t, numbers[24], p.Results[0].Number, "newest first")
		require.Nil(t, p.Previous)
		require.NotNil(t, p.Next)
		require.Equal(t, e.srv.URL+"/api/v2/orders/?page=2&page_size=20&username=ann", *p.Next)
		next, err := url.Parse(*p.Next)
		require.NoError(t, err)
		var p2 orderPage
		e.do("GET", next.RequestURI(), ann, nil, http.StatusOK, &p2)
		require.Len(t, p2.Results, 5)
		require.Equal(t, numbers[0], p2.Results[4].Number)
		require.Nil(t, p2.Next)
		require.Equal(t, e.srv.URL+"/api/v2/orders/?page_size=20&username=ann", *p2.Previous)

		// 20 by default, at most 100, "last", and no page past the end.
		e.do("GET", "/api/v2/orders/", ann, nil, http.StatusOK, &p)
		require.Len(t, p.Results, 20)
		require.Equal(t, 25, *p.Count)
		e.do("GET", "/api/v2/orders/?page_size=1000", ann, nil, http.StatusOK, &p)
		require.Len(t, p.Results, 25)
		require.Nil(t, p.Next)
		e.do("GET", "/api/v2/orders/?page_size=10&page=last", ann, nil, http.StatusOK, &p)
		require.Len(t, p.Results, 5)
		require.Equal(t, e.srv.URL+"/api/v2/orders/?page=2&page_size=10", *p.Previous)
		e.do("GET", "/api/v2/orders/?page=3", ann, nil, http.StatusNotFound, nil)
		e.do("GET", "/api/v2/orders/?page=0", ann, nil, http.StatusNotFound, nil)
		e.do("GET", "/api/v2/orders/?page=1", e.token("nobody", false), nil, http.StatusOK, &p)
		require.Equal(t, 0, *p.Count)
		require.Empty(t, p.Results)

		// A learner asking for someone else's orders is refused; staff may.
		e.do("GET", "/api/v2/orders/?username=bob", ann, nil, http.StatusForbidden, nil)
		e.do("GET", "/api/v2/orders/?username=ann", e.staff, nil, http.StatusOK, &p)
		require.Equal(t, 25, *p.Count)
		e.do("GET", "/api/v2/orders/", e.staff, nil, http.StatusOK, &p)
		require.Equal(t, 26, *p.Count)

		// Keyset pages stay, with ?cursor= (empty for the first page).
		var k orderPage
		e.do("GET", "/api/v2/orders/?cursor=&page_size=10&username=ann", ann, nil, http.StatusOK, &k)
		require.Nil(t, k.Count)
		require.Len(t, k.Results, 10)
		require.Contains(t, *k.Next, "cursor=")
		next, err = url.Parse(*k.Next)
		require.NoError(t, err)
		e.do("GET", next.RequestURI(), ann, nil, http.StatusOK, &k)
		require.Equal(t, numbers[14], k.Results[0].Number)
	})
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestOrderCarriesOttosSerializer(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		number := e.paidOrder("ann", e.skus["no-id-professional"])
		var o map[string]any
		e.do("GET", "/api/v2/orders/"+number+"/", e.token("ann", false), nil, http.StatusOK, &o)
		for _, k := range []string{"basket_discounts", "billing_address", "contains_credit_seat", "currency", "date_placed", "dashboard_url",
			"discount", "enable_hoist_order_history", "enterprise_learner_portal_url", "lines", "number", "order_product_ids",
			"payment_processor", "payment_method", "product_tracking", "status", "total_before_discounts_incl_tax", "total_excl_tax",
			"user", "vouchers"} {
			require.Contains(t, o, k)
		}
		// The fields the API had before stay.
		for _, k := range []string{"basket_id", "updated_at", "total_incl_tax", "needs_attention", "fulfillment_attempts", "last_error",
			"next_attempt_at", "notes"} {
			require.Contains(t, o, k)
		}
		require.Equal(t, []any{}, o["basket_discounts"])
		require.Equal(t, []any{}, o["vouchers"])
		require.Nil(t, o["billing_address"])
		require.Nil(t, o["enterprise_learner_portal_url"])
		require.Equal(t, "0", o["discount"])
		require.Equal(t, false, o["contains_credit_seat"])
		require.Equal(t, "sandbox", o["payment_processor"])
		require.Equal(t, "100.00", o["total_excl_tax"])
		require.Equal(t, "100.00", o["total_before_discounts_incl_tax"])
		require.Equal(t, e.LMSURL+"/dashboard", o["dashboard_url"])
		require.Equal(t, map[string]any{"username": "ann", "email": "ann@example.com"}, o["user"])

		lines := o["lines"].([]any)
		require.Len(t, lines, 1)
		l := lines[0].(map[string]any)
		for _, k := range []string{"title", "quantity", "description", "course_organization", "status", "line_price_excl_tax", "unit_price_excl_tax", "product"} {
			require.Contains(t, l, k)
		}
		require.Equal(t, "edX", l["course_organization"])
		require.Equal(t, l["title"], l["description"])
		require.Equal(t, "100.00", l["line_price_excl_tax"])
		p := l["product"].(map[string]any)
		for _, k := range []string{"id", "url", "structure", "product_class", "title", "price", "expires", "attribute_values",
			"is_available_to_buy", "is_enrollment_code_product", "stockrecords"} {
			require.Contains(t, p, k)
		}
		id := int64(p["id"].(float64))
		require.Equal(t, strconv.FormatInt(id, 10), o["order_product_ids"])
		require.Equal(t, fmt.Sprintf("%s/api/v2/products/%d/", e.srv.URL, id), p["url"])
		require.Equal(t, "child", p["structure"])
		require.Equal(t, "Seat", p["product_class"])
		require.Equal(t, "100.00", p["price"])
		require.Equal(t, true, p["is_available_to_buy"])
		require.Equal(t, false, p["is_enrollment_code_product"])
		stock := p["stockrecords"].([]any)
		require.Len(t, stock, 1)
		require.Equal(t, e.skus["no-id-professional"], stock[0].(map[string]any)["partner_sku"])
		// The LMS receipt (L6) matches attribute_values on name.
		attrs := map[string]any{}
		for _, a := range p["attribute_values"].([]any) {
			av := a.(map[string]any)
			require.Equal(t, av["name"], av["code"])
			attrs[av["name"].(string)] = av["value"]
		}
		require.Equal(t, course, attrs["course_key"])
		// The product's url answers.
		var prod map[string]any
		e.do("GET", fmt.Sprintf("/api/v2/products/%d/", id), e.token("ann", false), nil, http.StatusOK, &prod)
		require.Equal(t, p["id"], prod["id"])
		e.do("GET", "/api/v2/products/999999/", e.token("ann", false), nil, http.StatusNotFound, nil)

		// A credit seat, free: contains_credit_seat, no processor.
		free := e.buy("bob", e.skus["credit"])
		e.do("GET", "/api/v2/orders/"+free.Order.Number+"/", e.staff, nil, http.StatusOK, &o)
		require.Equal(t, true, o["contains_credit_seat"])
		require.Nil(t, o["payment_processor"])
		require.Nil(t, o["payment_method"])

		// The list's results are the same serializer.
		var list struct{ Results []map[string]any }
		e.do("GET", "/api/v2/orders/", e.token("bob", false), nil, http.StatusOK, &list)
		require.Len(t, list.Results, 1)
		require.Equal(t, keys(o), keys(list.Results[0]))
	})
}

func TestBasketOrderAndProcessors(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		ann := e.token("ann", false)

		// The LMS's payment page (L2) lists the processors.
		var names []string
		e.do("GET", "/api/v2/payment/processors/", ann, nil, http.StatusOK, &names)
		require.Equal(t, []string{payment.SandboxName}, names)
		e.do("GET", "/api/v2/payment/processors/", "", nil, http.StatusUnauthorized, nil)

		// The receipt page (L7) polls the basket's order: 404 until the
		// payment places it, 404 for another user.
		b := e.startPaid("ann", e.skus["no-id-professional"])
		path := fmt.Sprintf("/api/v2/baskets/%d/order/", b.ID)
		e.do("GET", path, ann, nil, http.StatusNotFound, nil)
		code, out := e.notify(payment.SandboxNotification{BasketID: b.ID, Reference: "txn-basket", Amount: "100.00", Currency: "USD",
			Decision: payment.Accept}, []byte(sandboxSecret))
		require.Equal(t, http.StatusOK, code, out)
		var o map[string]any
		e.do("GET", path, ann, nil, http.StatusOK, &o)
		require.Equal(t, out["order_number"], o["number"])
		require.Equal(t, "Complete", o["status"])
		require.Contains(t, o, "date_placed")
		require.Contains(t, o, "billing_address")
		e.do("GET", path, e.token("bob", false), nil, http.StatusNotFound, nil)
		e.do("GET", "/api/v2/baskets/999999/order/", ann, nil, http.StatusNotFound, nil)
		e.do("GET", "/api/v2/baskets/x/order/", ann, nil, http.StatusNotFound, nil)

		free := e.buy("bob", e.skus["audit"])
		e.do("GET", fmt.Sprintf("/api/v2/baskets/%d/order/", free.ID), e.token("bob", false), nil, http.StatusOK, &o)
		require.Equal(t, free.Order.Number, o["number"])

		// Otto's health check.
		var h map[string]any
		e.do("GET", "/health/", "", nil, http.StatusOK, &h)
		require.Equal(t, map[string]any{"overall_status": "OK", "detailed_status": map[string]any{"database_status": "OK"}}, h)
	})
}

func TestDefaultPaymentProcessor(t *testing.T) {
	t.Parallel()
	e := apptest.New(t, sqlstore.SQLite, apptest.Options{})
	skus := e.Course(course, "Demo", []map[string]any{{"certificate_type": "professional", "price": "100.00", "currency": "USD"}})
	var b struct {
		PaymentData struct {
			ProcessorName string `json:"payment_processor_name"`
		} `json:"payment_data"`
	}
	// The LMS's create_order (L1) sends payment_processor_name null when
	// the learner chose none.
	e.Do("POST", "/api/v2/baskets/", e.Token("ann", false), map[string]any{"products": []map[string]string{{"sku": skus["no-id-professional"]}},
		"checkout": true, "payment_processor_name": nil}, http.StatusOK, &b)
	require.Equal(t, payment.SandboxName, b.PaymentData.ProcessorName)
	require.Equal(t, payment.SandboxName, e.App.Checkout.DefaultProcessorName())
}

type coursePage struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []struct {
		ID       string           `json:"id"`
		URL      string           `json:"url"`
		Type     string           `json:"type"`
		Products []map[string]any `json:"products"`
		Modes    []struct{ SKU string }
	} `json:"results"`
}

func TestCourseAndProductListsForDiscovery(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		ann := e.token("ann", false)

		// course-discovery's EcommerceApiDataLoader.
		var p coursePage
		e.do("GET", "/api/v2/courses/?page=1&page_size=1&include_products=true", e.staff, nil, http.StatusOK, &p)
		require.Equal(t, 2, p.Count)
		require.Len(t, p.Results, 1)
		require.Equal(t, course, p.Results[0].ID, "by course id")
		require.Equal(t, "credit", p.Results[0].Type)
		require.Equal(t, e.srv.URL+"/api/v2/courses/"+url.PathEscape(course)+"/", p.Results[0].URL)
		require.NotNil(t, p.Next)
		require.Equal(t, e.srv.URL+"/api/v2/courses/?include_products=true&page=2&page_size=1", *p.Next)
		structures := map[string]int{}
		for _, pr := range p.Results[0].Products {
			for _, k := range []string{"structure", "price", "expires", "attribute_values", "stockrecords"} {
				require.Contains(t, pr, k)
			}
			structures[pr["structure"].(string)]++
			if pr["structure"] == "child" {
				require.Len(t, pr["stockrecords"], 1)
				require.NotNil(t, pr["price"])
			}
		}
		require.Equal(t, 1, structures["parent"])
		require.Equal(t, 4, structures["child"], "the four seats")
		require.Equal(t, 2, structures["standalone"], "the verified and professional enrollment codes")
		next, err := url.Parse(*p.Next)
		require.NoError(t, err)
		e.do("GET", next.RequestURI(), ann, nil, http.StatusOK, &p)
		require.Equal(t, course2, p.Results[0].ID)
		require.Nil(t, p.Next)
		require.NotNil(t, p.Previous)
		e.do("GET", "/api/v2/courses/?page=3", ann, nil, http.StatusNotFound, nil)
		// Without include_products the products are left out.
		var plain map[string]any
		e.do("GET", "/api/v2/courses/", ann, nil, http.StatusOK, &plain)
		require.NotContains(t, plain["results"].([]any)[0], "products")

		// Products by class, page by page.
		for i := range 3 {
			e.do("PUT", fmt.Sprintf("/api/v2/products/ENT-%d/", i), e.staff, map[string]any{"product_class": "Course Entitlement", "title": "Entitlement",
				"price": "10", "currency": "USD", "attributes": map[string]any{"UUID": fmt.Sprintf("u-%d", i), "certificate_type": "verified"}}, http.StatusOK, nil)
		}
		var pp struct {
			Count   int              `json:"count"`
			Next    *string          `json:"next"`
			Results []map[string]any `json:"results"`
		}
		e.do("GET", "/api/v2/products/?product_class=Course+Entitlement&page_size=2", ann, nil, http.StatusOK, &pp)
		require.Equal(t, 3, pp.Count)
		require.Len(t, pp.Results, 2)
		require.NotNil(t, pp.Next)
		for _, r := range pp.Results {
			require.Equal(t, "Course Entitlement", r["product_class"])
			require.Equal(t, "standalone", r["structure"])
		}
		next, err = url.Parse(*pp.Next)
		require.NoError(t, err)
		e.do("GET", next.RequestURI(), ann, nil, http.StatusOK, &pp)
		require.Len(t, pp.Results, 1)
		require.Equal(t, "ENT-2", pp.Results[0]["sku"])
		e.do("GET", "/api/v2/products/?product_class=Seat", ann, nil, http.StatusOK, &pp)
		require.Equal(t, 10, pp.Count, "two parents and eight seats")
		// By SKU, the class filters too.
		e.do("GET", "/api/v2/products/?sku=ENT-0&sku="+e.skus["audit"]+"&product_class=Seat", ann, nil, http.StatusOK, &pp)
		require.Len(t, pp.Results, 1)
		require.Equal(t, e.skus["audit"], pp.Results[0]["sku"])
		require.True(t, strings.HasPrefix(pp.Results[0]["url"].(string), e.srv.URL+"/api/v2/products/"))
	})
}
