package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/api"
	"fulfill/internal/auth"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/fulfillment"
	"fulfill/internal/fulfillment/enrollment"
	"fulfill/internal/fulfillment/enrollmentcode"
	"fulfill/internal/fulfillment/entitlement"
	"fulfill/internal/fulfillment/webhook"
	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/payment"
	"fulfill/internal/payment/stripe"
	"fulfill/internal/payment/stripe/stripemock"
	"fulfill/internal/refund"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

const (
	secret              = "test-secret"
	lmsKey              = "lms-key"
	course              = "course-v1:edX+DemoX+Demo"
	course2             = "course-v1:edX+Second+Run"
	sandboxSecret       = "sandbox-secret"
	stripeWebhookSecret = "whsec_test"
	webhookSecret       = "webhook-secret"
)

// env is a whole service over real HTTP: a real database, the real API
// server, the LMS stand-in behind a real socket.
type env struct {
	t       testing.TB
	db      *sqlstore.DB
	srv     *httptest.Server
	lms     *lmstest.Server
	lmsSrv  *httptest.Server
	svc     *fulfillment.Service
	metrics *api.Metrics
	sandbox *payment.Sandbox
	refunds *refund.Service
	staff   string
	skus    map[string]string // "course mode" → SKU, e.g. "verified", "course2 audit"
}

type envOpts struct {
	lmsTimeout       time.Duration
	policy           fulfillment.Policy
	breakerThreshold int
	breakerCooldown  time.Duration
	lmsURL           string // overrides the stand-in's URL (e.g. a closed port)
	lmsKey           string
	modules          map[catalog.Class]string
	worker           bool
	stripeBackend    string // enables the Stripe processor against this API (stripe-mock)
	publish          bool   // publish saved courses to the LMS stand-in
	rollout          *catalog.Rollout
	serviceUsers     []string
	webhookURL       string
}

func newEnv(t testing.TB, engine sqlstore.Engine, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, db: sqlstoretest.Open(t, engine), skus: map[string]string{}}
	e.lms = lmstest.New(lmstest.Options{APIKey: lmsKey, Seed: 1})
	e.lmsSrv = httptest.NewServer(e.lms)
	t.Cleanup(func() { e.lms.Close(); e.lmsSrv.Close() })
	if o.lmsTimeout == 0 {
		o.lmsTimeout = 2 * time.Second
	}
	if o.policy.Attempts == 0 {
		// Far apart, so that a test without a worker sees the first state.
		o.policy = fulfillment.Policy{Base: time.Hour, Cap: time.Hour, Attempts: 10}
	}
	if o.breakerThreshold == 0 {
		o.breakerThreshold = 1000
	}
	if o.breakerCooldown == 0 {
		o.breakerCooldown = time.Second
	}
	url := e.lmsSrv.URL
	if o.lmsURL != "" {
		url = o.lmsURL
	}
	key := lmsKey
	if o.lmsKey != "" {
		key = o.lmsKey
	}
	if o.modules == nil {
		o.modules = map[catalog.Class]string{catalog.ClassSeat: enrollment.Name, catalog.ClassEnrollmentCode: enrollmentcode.Name,
			catalog.ClassCourseEntitlement: entitlement.Name, catalog.ClassDonation: webhook.Name}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.metrics = api.NewMetrics(e.db)
	client := lms.NewClient(url, key, o.lmsTimeout)
	modules := []fulfillment.Module{&enrollment.Module{LMS: client}, &enrollmentcode.Module{Codes: e.db}, &entitlement.Module{LMS: client},
		&webhook.Module{URL: o.webhookURL, Secret: []byte(webhookSecret), Client: lms.NewClient("", "", o.lmsTimeout)}}
	reg, err := fulfillment.NewRegistry(o.modules, modules,
		func(m string) *fulfillment.Breaker {
			return fulfillment.NewBreaker(o.breakerThreshold, o.breakerCooldown, func(_, to fulfillment.BreakerState) { e.metrics.BreakerChanged(m, to) })
		})
	require.NoError(t, err)
	e.svc = &fulfillment.Service{Store: e.db, Registry: reg, Policy: o.policy, Lease: o.lmsTimeout + 3*time.Second,
		WaitForLease: 10 * time.Second, BreakerDelay: o.breakerCooldown, Observer: e.metrics, Log: log}
	e.sandbox = &payment.Sandbox{Secret: []byte(sandboxSecret)}
	processors := map[string]payment.Processor{payment.SandboxName: e.sandbox}
	if o.stripeBackend != "" {
		sp, err := stripe.New(stripe.Config{SecretKey: stripemock.Key, WebhookSecret: stripeWebhookSecret, BackendURL: o.stripeBackend})
		require.NoError(t, err)
		processors[stripe.Name] = sp
	}
	co := &checkout.Service{Store: e.db, Fulfill: e.svc, Processors: processors, Log: log}
	e.refunds = &refund.Service{Store: e.db, Revoker: reg, Processors: processors, Policy: o.policy, Lease: e.svc.Lease,
		WaitForLease: 10 * time.Second, Log: log}
	var handler http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	handler = api.NewServer(api.Deps{Log: log, Store: e.db, Service: e.svc, Verifier: auth.NewVerifier(secret), Metrics: e.metrics,
		Checkout: co, Refunds: e.refunds, PublicURL: e.srv.URL, Demo: true, Rollout: o.rollout, ServiceUsers: o.serviceUsers,
		Publisher: publisherFor(o.publish, client)})
	t.Cleanup(e.srv.Close)
	if o.worker {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		w := &fulfillment.Worker{Service: e.svc, Owner: "test-worker", Poll: 20 * time.Millisecond, Batch: 100, MaxInFlight: 500}
		go func() {
			go e.refunds.RunWorker(wctx, "test-refunds", 20*time.Millisecond)
			w.Run(wctx)
			close(done)
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	e.staff = e.token("staff", true)

	for _, c := range []struct{ id, prefix string }{{course, ""}, {course2, "course2 "}} {
		var out struct {
			Modes []struct {
				Name, SKU string
				BulkSKU   string `json:"bulk_sku"`
			}
		}
		e.do("PUT", "/api/v2/courses/"+c.id+"/", e.staff, map[string]any{"name": "Demo", "modes": []map[string]any{
			{"certificate_type": "", "price": "0.00", "currency": "USD"},
			{"certificate_type": "verified", "id_verification_required": true, "price": "0", "currency": "USD"},
			{"certificate_type": "credit", "credit_provider": "asu", "price": 0, "currency": "USD"},
			{"certificate_type": "professional", "price": "100.00", "currency": "USD"},
		}}, http.StatusOK, &out)
		for _, m := range out.Modes {
			e.skus[c.prefix+m.Name] = m.SKU
			if m.BulkSKU != "" {
				e.skus["bulk "+c.prefix+m.Name] = m.BulkSKU
			}
		}
	}
	return e
}

func (e *env) token(user string, staff bool) string {
	tok, err := auth.Sign(secret, user, staff, time.Hour, time.Now())
	require.NoError(e.t, err)
	return tok
}

// do sends a JSON request and checks the status; out, when not nil,
// receives the decoded body. It returns the raw body.
func (e *env) do(method, path, token string, body any, want int, out any) []byte {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "JWT "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	require.Equal(e.t, want, res.StatusCode, "%s %s: %s", method, path, raw)
	// A 500 of the fulfill and refund-process routes carries the order or
	// refund itself, as Otto's does; every other error is problem+json.
	if res.StatusCode >= 400 && res.StatusCode != http.StatusInternalServerError {
		require.Equal(e.t, "application/problem+json", res.Header.Get("Content-Type"), string(raw))
		var p api.Problem
		require.NoError(e.t, json.Unmarshal(raw, &p))
		require.Equal(e.t, res.StatusCode, p.Status)
		require.NotEmpty(e.t, p.Title)
	}
	if out != nil {
		require.NoError(e.t, json.Unmarshal(raw, out), string(raw))
	}
	return raw
}

type basketAnswer struct {
	ID    int64 `json:"id"`
	Order struct {
		Number string `json:"number"`
		Status string `json:"status"`
	} `json:"order"`
	PaymentData any `json:"payment_data"`
}

// buy checks out the given SKUs as user and returns the answer.
func (e *env) buy(user string, skus ...string) basketAnswer {
	e.t.Helper()
	products := []map[string]string{}
	for _, s := range skus {
		products = append(products, map[string]string{"sku": s})
	}
	var out basketAnswer
	e.do("POST", "/api/v2/baskets/", e.token(user, false), map[string]any{"products": products, "checkout": true}, http.StatusOK, &out)
	return out
}

type lineOut struct {
	ID             int64      `json:"id"`
	Status         string     `json:"status"`
	SKU            string     `json:"sku"`
	Attempts       int        `json:"fulfillment_attempts"`
	LastErrorClass string     `json:"last_error_class"`
	LastHTTPStatus int        `json:"last_http_status"`
	LastError      string     `json:"last_error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
}

type orderOut struct {
	Number         string     `json:"number"`
	Status         string     `json:"status"`
	TotalExclTax   string     `json:"total_excl_tax"`
	Currency       string     `json:"currency"`
	NeedsAttention bool       `json:"needs_attention"`
	Attempts       int        `json:"fulfillment_attempts"`
	LastError      string     `json:"last_error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	User           struct{ Username string }
	Lines          []lineOut `json:"lines"`
	Notes          []struct{ Kind, Message string }
}

func (e *env) order(number string) orderOut {
	e.t.Helper()
	var o orderOut
	e.do("GET", "/api/v2/orders/"+number+"/", e.staff, nil, http.StatusOK, &o)
	return o
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type fulfillmentPolicy = fulfillment.Policy

func publisherFor(on bool, c *lms.Client) api.Publisher {
	if !on {
		return nil
	}
	return c
}
