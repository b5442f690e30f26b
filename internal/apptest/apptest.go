// Package apptest is the one test harness: the whole service as app.New
// wires it, on a fresh database of one engine, behind a real HTTP server,
// with the LMS stand-in behind a real socket. Every package's end-to-end
// tests start from here; none wires the service itself.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/app"
	"fulfill/internal/auth"
	"fulfill/internal/catalog"
	"fulfill/internal/config"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// The secrets of every test service.
const (
	Secret              = "test-secret"
	LMSKey              = "lms-key"
	SandboxSecret       = "sandbox-secret"
	StripeWebhookSecret = "whsec_test"
	WebhookSecret       = "webhook-secret"
)

// Options change the service a test gets.
type Options struct {
	// Configure adjusts the configuration before the service is built. The
	// defaults: retries an hour apart (a test sees the first state until it
	// acts), a breaker that does not open, a 2 s LMS timeout, demo mode
	// (sandbox processor and its pages), every module mapped.
	Configure func(*config.Config)
	// Worker runs the background work (retry and refund workers, the
	// payment reconciler) while the test runs.
	Worker bool
}

// Env is one running service.
type Env struct {
	T   testing.TB
	App *app.App
	DB  *sqlstore.DB
	// Srv serves the whole service; URL is its base.
	Srv *httptest.Server
	URL string
	// LMS is the stand-in the service calls, at LMSURL.
	LMS    *lmstest.Server
	LMSURL string
	// Staff is a staff token.
	Staff string
}

// New starts the service on a fresh database of engine.
func New(t testing.TB, engine sqlstore.Engine, o Options) *Env {
	t.Helper()
	e := &Env{T: t}
	e.LMS = lmstest.New(lmstest.Options{APIKey: LMSKey, Seed: 1})
	lmsSrv := httptest.NewServer(e.LMS)
	t.Cleanup(func() { e.LMS.Close(); lmsSrv.Close() })
	e.LMSURL = lmsSrv.URL

	var handler http.Handler = http.NotFoundHandler()
	e.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(e.Srv.Close)
	e.URL = e.Srv.URL

	cfg := config.Flags(flag.NewFlagSet("test", flag.ContinueOnError))
	cfg.DB = sqlstoretest.URL(t, engine)
	cfg.Demo = true
	cfg.JWTSecret, cfg.SandboxSecret, cfg.WebhookSecret = Secret, SandboxSecret, WebhookSecret
	cfg.StripeWebhook = StripeWebhookSecret
	cfg.LMSURL, cfg.LMSAPIKey = lmsSrv.URL, LMSKey
	cfg.LMSTimeout = 2 * time.Second
	cfg.Lease = cfg.LMSTimeout + 3*time.Second
	cfg.RetryBase, cfg.RetryCap, cfg.RetryAttempts = time.Hour, time.Hour, 10
	cfg.BreakerThreshold, cfg.BreakerCooldown = 1000, time.Second
	cfg.WorkerPoll = 20 * time.Millisecond
	cfg.PublicURL = e.URL
	cfg.PublishCourses = false
	cfg.Modules[catalog.ClassDonation] = "webhook"
	if o.Configure != nil {
		o.Configure(cfg)
	}
	require.NoError(t, cfg.Validate())
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	e.App, e.DB, handler = a, a.DB, a.Handler
	if o.Worker {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { a.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	e.Staff = e.Token("staff", true)
	return e
}

// ForEngines runs fn as a parallel subtest on every engine.
func ForEngines(t *testing.T, fn func(t *testing.T, engine sqlstore.Engine)) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			fn(t, engine)
		})
	}
}

// Token signs a token for user, staff or not, valid for an hour.
func (e *Env) Token(user string, staff bool) string {
	tok, err := auth.Sign(Secret, user, staff, time.Hour, time.Now())
	require.NoError(e.T, err)
	return tok
}

// Do sends a JSON request (body marshalled, or sent as is when a string)
// and checks the status; out, when not nil, receives the decoded body. A
// 4xx must be problem+json with its status and a title, except a 500 of
// the fulfill and refund-process routes, which carries the order or
// refund itself, as Otto's does. Request and answer must match the API's
// OpenAPI document (CheckAPI). It returns the raw body.
func (e *Env) Do(method, path, token string, body any, want int, out any) []byte {
	e.T.Helper()
	var rd io.Reader
	var sent []byte
	switch b := body.(type) {
	case nil:
	case string:
		sent = []byte(b)
		rd = bytes.NewBufferString(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.T, err)
		sent = raw
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	require.NoError(e.T, err)
	if token != "" {
		req.Header.Set("Authorization", "JWT "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.T, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(e.T, err)
	require.Equal(e.T, want, res.StatusCode, "%s %s: %s", method, path, raw)
	e.CheckAPI(req, sent, res, raw) // against the OpenAPI document (openapi.go)
	if res.StatusCode >= 400 && res.StatusCode != http.StatusInternalServerError {
		require.Equal(e.T, "application/problem+json", res.Header.Get("Content-Type"), string(raw))
		var p struct {
			Title  string `json:"title"`
			Status int    `json:"status"`
		}
		require.NoError(e.T, json.Unmarshal(raw, &p))
		require.Equal(e.T, res.StatusCode, p.Status)
		require.NotEmpty(e.T, p.Title)
	}
	if out != nil {
		require.NoError(e.T, json.Unmarshal(raw, out), string(raw))
	}
	return raw
}

// Buy checks out the given SKUs as user through the JSON API, expecting
// want, and returns the answer.
func (e *Env) Buy(user string, want int, skus ...string) Basket {
	e.T.Helper()
	products := []map[string]string{}
	for _, s := range skus {
		products = append(products, map[string]string{"sku": s})
	}
	var out Basket
	e.Do("POST", "/api/v2/baskets/", e.Token(user, false), map[string]any{"products": products, "checkout": true}, want, &out)
	return out
}

// Basket is the answer of POST /api/v2/baskets/.
type Basket struct {
	ID    int64 `json:"id"`
	Order struct {
		Number string `json:"number"`
		Status string `json:"status"`
	} `json:"order"`
	PaymentData any `json:"payment_data"`
}

// Course puts a course with the given modes through the API and returns
// its SKUs by mode name ("audit", "verified", …) and, for modes with an
// enrollment-code product, "bulk <mode>".
func (e *Env) Course(id, name string, modes []map[string]any) map[string]string {
	e.T.Helper()
	var out struct {
		Modes []struct {
			Name, SKU string
			BulkSKU   string `json:"bulk_sku"`
		}
	}
	e.Do("PUT", "/api/v2/courses/"+id+"/", e.Staff, map[string]any{"name": name, "modes": modes}, http.StatusOK, &out)
	skus := map[string]string{}
	for _, m := range out.Modes {
		skus[m.Name] = m.SKU
		if m.BulkSKU != "" {
			skus["bulk "+m.Name] = m.BulkSKU
		}
	}
	return skus
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
