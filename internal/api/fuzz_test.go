package api_test

import (
	"bytes"
	"io"
	"net/http"
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
		"\x00\xff", `{"products":[{"sku":"A"}]}{}`} {
		f.Add([]byte(s))
	}
	e := newEnv(f, sqlstoretest.Engines(f)[0], envOpts{})
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
		for _, r := range routes {
			req, err := http.NewRequest(r.method, e.srv.URL+r.path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "JWT "+e.staff)
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
	})
}
