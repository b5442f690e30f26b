package api_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"fulfill/internal/sqlstore/sqlstoretest"
)

// FuzzRequestBodies throws arbitrary bodies at every JSON endpoint: the
// answer is never a 5xx, and every 4xx is problem+json. The seeds run as
// part of go test; `go test -fuzz=FuzzRequestBodies ./internal/api` explores.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{``, `{}`, `[]`, `null`, `{"products":[{"sku":"X"}],"checkout":true}`,
		`{"products":[{"sku":"","quantity":-5}]}`, `{"products":[{"sku":"A","quantity":1e99}]}`, `{"products":null,"checkout":"yes"}`,
		`{"name":"x","modes":[{"price":"-1"}]}`, `{"name":"x","modes":[{"price":"99999999999999999999"}]}`, `{"action":"approve"}`,
		`{"numbers":["EDX-1"]}`, `{"filter":{"status":"Open"}}`, `{"username":"a","course_id":"b"}`, `{"order_number":"x","line_ids":[1,2]}`,
		"\x00\xff", `{"products":[{"sku":"A"}]}{}`,
		// NUL and invalid UTF-8 inside strings, which PostgreSQL refuses.
		`{"products":[{"sku":"A\u0000"}],"checkout":true}`, "{\"products\":[{\"sku\":\"\xff\xfe\"}],\"checkout\":true}",
		`{"numbers":["EDX-\u0000"]}`, "{\"name\":\"\xc3\x28\",\"modes\":[]}", `{"basket_id":1,"reference":"\u0000","decision":"accept"}`,
		// Overflow: a price that wraps int64 when bought by the thousand.
		`{"name":"x","modes":[{"certificate_type":"verified","price":"180143985094819.84","currency":"USD"}]}`,
		`{"price":"180143985094819.84","currency":"USD","product_class":"Enrollment Code"}`,
		`{"products":[{"sku":"A","quantity":9223372036854775807}],"checkout":true}`,
		`{"name":"x","modes":[{"price":"1","currency":"QQQ"}]}`,
		// Forms, as the LMS and jQuery send them.
		`products[0][sku]=A&checkout=true`, `products[99999999999999999999][sku]=A&products[-1]sku=B`, `checkout=maybe`,
		`line_ids=1&line_ids=x&order_number=EDX-1`, `filter.status=Open&filter[needs_attention]=1`, `action=APPROVE`,
		`modes[0][price]=1&modes[0][expires]=soon&name=x`, `a%zz=1`, `products[0][sku]=%00`, "products[0][sku]=\xff",
		"--fuzz\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\ndeny\r\n--fuzz--\r\n", "--fuzz\r\n\r\n"} {
		f.Add([]byte(s))
	}
	var envs []*env
	for _, engine := range sqlstoretest.Engines(f) {
		envs = append(envs, newEnv(f, engine, envOpts{}))
	}
	// A huge list: past either engine's bind limit if it reached a query.
	many := bytes.NewBufferString(`{"products":[`)
	for i := range 70000 {
		if i > 0 {
			many.WriteByte(',')
		}
		many.WriteString(`{"sku":"S` + strconv.Itoa(i) + `"}`)
	}
	many.WriteString(`],"checkout":true}`)
	f.Add(many.Bytes())
	routes := []struct{ method, path string }{
		{"POST", "/api/v2/baskets/"},
		{"PUT", "/api/v2/courses/course-v1:Fuzz+F+1/"},
		{"PUT", "/api/v2/products/FUZZ-1/"},
		{"POST", "/api/v2/orders/fulfill/"},
		{"POST", "/api/v2/refunds/"},
		{"PUT", "/api/v2/refunds/1/process/"},
		{"POST", "/payment/sandbox/notify/"},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, e := range envs {
			fuzzOne(t, e, routes, body)
		}
	})
}

func fuzzOne(t *testing.T, e *env, routes []struct{ method, path string }, body []byte) {
	// Each body as JSON (no Content-Type), and as the forms DRF also parses.
	for _, ct := range []string{"", "application/x-www-form-urlencoded", "multipart/form-data; boundary=fuzz"} {
		for _, r := range routes {
			req, err := http.NewRequest(r.method, e.srv.URL+r.path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "JWT "+e.staff)
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode >= 500 {
				t.Fatalf("%s %s with %q: %d %s", r.method, r.path, body, res.StatusCode, raw)
			}
			if res.StatusCode >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %s with %q: %d is not problem+json: %s", r.method, r.path, body, res.StatusCode, raw)
			}
		}
	}
}

// FuzzRequestTargets throws arbitrary paths and query strings at every
// front end, on every engine: never a 5xx. `go test -fuzz=FuzzRequestTargets
// ./internal/api` explores.
func FuzzRequestTargets(f *testing.F) {
	for _, s := range []string{"%00", "%ff", "a%00b", "%c3%28", "EDX-100001", strings.Repeat("x", 5000), "%", "..%2f..%2f"} {
		f.Add(s)
	}
	var envs []*env
	for _, engine := range sqlstoretest.Engines(f) {
		envs = append(envs, newEnv(f, engine, envOpts{}))
	}
	f.Fuzz(func(t *testing.T, s string) {
		esc := url.PathEscape(s)
		q := url.QueryEscape(s)
		targets := []string{
			"/api/v2/orders/" + esc + "/", "/api/v2/courses/" + esc + "/", "/api/v2/products/?sku=" + q,
			"/api/v2/orders/?username=" + q + "&sku=" + q, "/basket/add/?sku=" + q, "/checkout/receipt/?order_number=" + q,
			"/coupons/redeem/?code=" + q, "/dashboard/orders/" + esc, "/dashboard/?user=" + q + "&sku=" + q,
			"/static/storefront/" + esc, "/dashboard/static/" + esc, "/" + esc,
			"/api/v2/orders/?page=" + q + "&page_size=" + q, "/api/v2/courses/?include_products=true&page=" + q,
			"/api/v2/products/?product_class=" + q + "&page=" + q, "/api/v2/products/" + esc + "/", "/api/v2/baskets/" + esc + "/order/",
			"/dashboard/refunds/" + esc + "/", "/api/v2/orders/?cursor=" + q,
		}
		for _, e := range envs {
			for _, target := range targets {
				req, err := http.NewRequest("GET", e.srv.URL+target, nil)
				if err != nil {
					continue // not a request a client could send
				}
				req.Header.Set("Authorization", "JWT "+e.staff)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode >= 500 {
					t.Fatalf("GET %s: %d %s", target, res.StatusCode, raw)
				}
			}
		}
	})
}
