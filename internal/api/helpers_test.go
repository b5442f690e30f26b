package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"fulfill/internal/apptest"
	"fulfill/internal/catalog"
	"fulfill/internal/config"
	"fulfill/internal/fulfillment"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/payment"
	"fulfill/internal/payment/stripe/stripemock"
	"fulfill/internal/refund"
	"fulfill/internal/sqlstore"
)

const (
	secret              = apptest.Secret
	lmsKey              = apptest.LMSKey
	course              = "course-v1:edX+DemoX+Demo"
	course2             = "course-v1:edX+Second+Run"
	sandboxSecret       = apptest.SandboxSecret
	stripeWebhookSecret = apptest.StripeWebhookSecret
	webhookSecret       = apptest.WebhookSecret
)

// env is the service as apptest starts it, with the API tests' names for
// its parts and two seeded courses.
type env struct {
	*apptest.Env
	t       testing.TB
	db      *sqlstore.DB
	srv     struct{ URL string }
	lms     *lmstest.Server
	svc     *fulfillment.Service
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

// configure turns the options into the service's settings.
func (o envOpts) configure(cfg *config.Config) {
	if o.lmsTimeout > 0 {
		cfg.LMSTimeout, cfg.Lease = o.lmsTimeout, o.lmsTimeout+3*time.Second
	}
	if o.policy.Attempts > 0 {
		cfg.RetryBase, cfg.RetryCap, cfg.RetryAttempts = o.policy.Base, o.policy.Cap, o.policy.Attempts
	}
	if o.breakerThreshold > 0 {
		cfg.BreakerThreshold = o.breakerThreshold
	}
	if o.breakerCooldown > 0 {
		cfg.BreakerCooldown = o.breakerCooldown
	}
	if o.lmsURL != "" {
		cfg.LMSURL = o.lmsURL
	}
	if o.lmsKey != "" {
		cfg.LMSAPIKey = o.lmsKey
	}
	if o.modules != nil {
		cfg.Modules = o.modules
	}
	if o.stripeBackend != "" {
		cfg.Processors, cfg.StripeKey, cfg.StripeBackend = "sandbox,stripe", stripemock.Key, o.stripeBackend
	}
	cfg.PublishCourses = o.publish
	if o.rollout != nil {
		cfg.SoldCourses, cfg.UnsoldSKUs = strings.Join(o.rollout.Courses, ","), strings.Join(o.rollout.UnsoldSKUs, ",")
	}
	cfg.ServiceUsers = strings.Join(o.serviceUsers, ",")
	cfg.WebhookURL = o.webhookURL
}

func newEnv(t testing.TB, engine sqlstore.Engine, o envOpts) *env {
	t.Helper()
	a := apptest.New(t, engine, apptest.Options{Configure: o.configure, Worker: o.worker})
	e := &env{Env: a, t: t, db: a.DB, lms: a.LMS, svc: a.App.Fulfill, refunds: a.App.Refunds, staff: a.Staff,
		skus: map[string]string{}}
	e.srv.URL = a.URL
	e.sandbox = a.App.Checkout.Processors[payment.SandboxName].(*payment.Sandbox)
	for _, c := range []struct{ id, prefix string }{{course, ""}, {course2, "course2 "}} {
		for mode, sku := range a.Course(c.id, "Demo", []map[string]any{
			{"certificate_type": "", "price": "0.00", "currency": "USD"},
			{"certificate_type": "verified", "id_verification_required": true, "price": "0", "currency": "USD"},
			{"certificate_type": "credit", "credit_provider": "asu", "price": 0, "currency": "USD"},
			{"certificate_type": "professional", "price": "100.00", "currency": "USD"},
		}) {
			e.skus[c.prefix+mode] = sku
		}
	}
	return e
}

func (e *env) token(user string, staff bool) string { return e.Token(user, staff) }

// do sends a JSON request and checks the status (apptest.Env.Do).
func (e *env) do(method, path, token string, body any, want int, out any) []byte {
	e.t.Helper()
	return e.Do(method, path, token, body, want, out)
}

type basketAnswer = apptest.Basket

// buy checks out the given SKUs as user and returns the answer.
func (e *env) buy(user string, skus ...string) basketAnswer {
	e.t.Helper()
	return e.Buy(user, http.StatusOK, skus...)
}

type lineOut struct {
	ID             int64      `json:"id"`
	Status         string     `json:"status"`
	SKU            string     `json:"sku"`
	Attempts       int        `json:"fulfillment_attempts"`
	LastErrorClass string     `json:"last_error_class"`
	LastHTTPStatus int        `json:"last_http_status"`
	LastError      string     `json:"last_error"`
	Waiting        string     `json:"waiting"`
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
	apptest.Eventually(t, within, cond, msg)
}

type fulfillmentPolicy = fulfillment.Policy
