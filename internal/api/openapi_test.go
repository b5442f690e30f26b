package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"fulfill/internal/api"
	"fulfill/internal/api/openapitest"
	"fulfill/internal/apptest"
	"fulfill/internal/sqlstore"
)

// routePattern is a mux.Handle("METHOD /path", …) of the API's sources.
var routePattern = regexp.MustCompile(`mux\.Handle\("([A-Z]+) (/[^"]*)"`)

// templateParam is a path parameter, whatever its name.
var templateParam = regexp.MustCompile(`\{[^}]*\}`)

// normalRoute is a route with its parameters unnamed and the mux's {$}
// dropped, so that the mux's patterns and the document's paths compare.
func normalRoute(method, path string) string {
	path = strings.TrimSuffix(path, "{$}")
	return method + " " + templateParam.ReplaceAllString(path, "{}")
}

// TestDocumentCoversEveryRoute: every route of routes.go (and the
// document's own) is an operation of the document, and every operation a
// route: a route added or removed without its description fails here,
// before any test sends it a request.
func TestDocumentCoversEveryRoute(t *testing.T) {
	routes := map[string]bool{}
	for _, file := range []string{"routes.go", "openapi.go", "bff.go"} {
		src, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
			method, path := m[1], m[2]
			switch {
			case path == "/payment/{processor}/pay/{$}", strings.HasPrefix(path, "/payment/sandbox/pay/"):
				continue // the processors' pages, for browsers
			case path == "/metrics", path == "/coupons/redeem/{$}", strings.HasPrefix(path, "/api"), strings.HasPrefix(path, "/health"),
				path == "/readyz", strings.HasPrefix(path, "/payment/"),
				strings.HasPrefix(path, "/bff/"), path == "/csrf/api/v1/token", path == "/checkout/free-checkout/{$}": // the payment MFE's

			default:
				t.Errorf("routes.go serves %s %s: describe it in openapi.yaml or say here why it is not part of the API", method, path)
			}
			routes[normalRoute(method, path)] = true
		}
	}
	require.Greater(t, len(routes), 30, "the routes were read")
	v, err := openapitest.Default()
	require.NoError(t, err)
	ops := map[string]bool{}
	for path, item := range v.Doc.Paths.Map() {
		for method := range item.Operations() {
			ops[normalRoute(method, path)] = true
		}
	}
	var missing, extra []string
	for r := range routes {
		if !ops[r] {
			missing = append(missing, r)
		}
	}
	for o := range ops {
		if !routes[o] {
			extra = append(extra, o)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	require.Empty(t, missing, "routes the document does not describe")
	require.Empty(t, extra, "operations of the document no route serves")
}

// TestSchemaAndDocsPage: the document is served as JSON and YAML, and as
// a page that lists every operation, with nothing fetched from elsewhere.
func TestSchemaAndDocsPage(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		res, body := e.Send(e.NewRequest("GET", "/api/v2/schema/", ""))
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "application/vnd.oai.openapi+json"), res.Header.Get("Content-Type"))
		var doc map[string]any
		require.NoError(t, json.Unmarshal(body, &doc))
		require.Equal(t, "3.1.0", doc["openapi"])
		require.Contains(t, doc["paths"], "/api/v2/orders/{number}/fulfill/")

		req := e.NewRequest("GET", "/api/v2/schema/", "")
		req.Header.Set("Accept", "application/vnd.oai.openapi")
		res, body = e.Send(req)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "application/vnd.oai.openapi;"), res.Header.Get("Content-Type"))
		require.Equal(t, api.Document(), body)
		var fromYAML map[string]any
		require.NoError(t, yaml.Unmarshal(body, &fromYAML))
		require.Equal(t, "3.1.0", fromYAML["openapi"])

		res, body = e.Send(e.NewRequest("GET", "/api-docs/", ""))
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
		page := string(body)
		for _, item := range doc["paths"].(map[string]any) {
			for _, op := range item.(map[string]any) {
				if op, ok := op.(map[string]any); ok && op["operationId"] != nil {
					require.Contains(t, page, `id="op-`+op["operationId"].(string)+`"`)
				}
			}
		}
		require.Contains(t, page, `id="schema-Order"`)
		require.NotRegexp(t, `(src|href)="(https?:)?//`, page, "self-contained: nothing from another host")
	})
}
