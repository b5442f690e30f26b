package openapitest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/api/openapitest"
)

// TestDocumentLoads checks that the document is a valid OpenAPI 3.1
// document and builds a router.
func TestDocumentLoads(t *testing.T) {
	v, err := openapitest.Default()
	require.NoError(t, err)
	require.True(t, v.Doc.IsOpenAPI31OrLater(), "OpenAPI %s", v.Doc.OpenAPI)
}

func exchange(t *testing.T, method, target, auth, contentType, reqBody string, status int, resType, resBody string) openapitest.Exchange {
	req, err := http.NewRequest(method, "http://127.0.0.1:8080"+target, strings.NewReader(reqBody))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	h := http.Header{}
	if resType != "" {
		h.Set("Content-Type", resType)
	}
	var sent []byte
	if reqBody != "" {
		sent = []byte(reqBody)
	}
	return openapitest.Exchange{Request: req, RequestBody: sent, Status: status, Header: h, Body: []byte(resBody)}
}

// TestCheckFindsDrift shows what a drift looks like to the harness.
func TestCheckFindsDrift(t *testing.T) {
	v, err := openapitest.Default()
	require.NoError(t, err)
	const problem = `{"type":"about:blank","title":"Unauthorized","status":401,"instance":"/api/v2/payment/processors/"}`
	cases := []struct {
		name string
		x    openapitest.Exchange
		bad  string // "" when the exchange matches the document
	}{
		{"as described", exchange(t, "GET", "/api/v2/payment/processors/", "JWT x", "", "", 200, "application/json", `["sandbox"]`), ""},
		{"Bearer", exchange(t, "GET", "/api/v2/payment/processors/", "Bearer x", "", "", 200, "application/json", `["sandbox"]`), ""},
		{"no token, refused", exchange(t, "GET", "/api/v2/payment/processors/", "", "", "", 401, "application/problem+json", problem), ""},
		{"no token, served", exchange(t, "GET", "/api/v2/payment/processors/", "", "", "", 200, "application/json", `["sandbox"]`), "calls this request invalid"},
		{"wrong shape", exchange(t, "GET", "/api/v2/payment/processors/", "JWT x", "", "", 200, "application/json", `{"processors":[]}`), "doesn't match"},
		{"undocumented status", exchange(t, "GET", "/api/v2/payment/processors/", "JWT x", "", "", 418, "application/problem+json", problem), "status is not supported"},
		{"error not problem+json", exchange(t, "GET", "/api/v2/payment/processors/", "", "", "", 401, "text/plain", "no"), "Content-Type"},
		{"undocumented field", exchange(t, "GET", "/healthz", "", "", "", 200, "application/json", `{"status":"ok","extra":1}`), "doesn't match"},
		{"undocumented path, served", exchange(t, "GET", "/api/v2/secret/", "JWT x", "", "", 200, "application/json", `{}`), "no such path"},
		{"undocumented path, not found", exchange(t, "GET", "/api/v2/secret/", "JWT x", "", "", 404, "application/problem+json", problem), ""},
		{"undocumented method, served", exchange(t, "DELETE", "/api/v2/orders/EDX-1/", "JWT x", "", "", 200, "application/json", `{}`), "no DELETE operation"},
		{"undocumented method, refused", exchange(t, "DELETE", "/api/v2/orders/EDX-1/", "JWT x", "", "", 405, "application/problem+json", problem), ""},
		{"form body", exchange(t, "PUT", "/api/v2/refunds/1/process/", "JWT x", "application/x-www-form-urlencoded", "action=approve", 404,
			"application/problem+json", problem), ""},
		{"invalid body, served", exchange(t, "POST", "/api/v2/baskets/", "JWT x", "application/json", `{"products":[]}`, 200,
			"application/json", `{"id":1,"order":null,"payment_data":null}`), "calls this request invalid"},
		{"not a page", exchange(t, "GET", "/", "", "", "", 200, "text/html", "<p>"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := v.Check(c.x)
			if c.bad == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), c.bad)
		})
	}
}
