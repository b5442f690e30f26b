// Package app is the one wiring of the service: New opens the store, builds
// the modules, the services and their workers, and the root handler that
// serves the probes, the metrics, the JSON API, the dashboard and the
// storefront. serve, the CLI subcommands, the load tool and every test
// harness call it; nothing else wires the service.
package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"fulfill/internal/admin"
	"fulfill/internal/api"
	"fulfill/internal/apperr"
	"fulfill/internal/auth"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/config"
	"fulfill/internal/fulfillment"
	"fulfill/internal/fulfillment/enrollment"
	"fulfill/internal/fulfillment/enrollmentcode"
	"fulfill/internal/fulfillment/entitlement"
	"fulfill/internal/fulfillment/webhook"
	"fulfill/internal/lease"
	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/money"
	"fulfill/internal/payment"
	"fulfill/internal/payment/stripe"
	"fulfill/internal/refund"
	"fulfill/internal/sqlstore"
	"fulfill/internal/storefront"
)

// App is the wired service.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	DB       *sqlstore.DB
	Fulfill  *fulfillment.Service
	Checkout *checkout.Service
	Refunds  *refund.Service
	Metrics  *api.Metrics
	Worker   *fulfillment.Worker
	// Handler serves every route of the service.
	Handler http.Handler
	// LMS is the in-process LMS stand-in of the demo (nil otherwise).
	LMS *lmstest.Server

	closers []func()
}

// New wires the service described by cfg. The database is opened and
// migrated; in demo mode without an LMS URL an LMS stand-in is started
// in-process. Close releases what New opened.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*App, error) {
	a := &App{Config: cfg, Log: log}
	if err := a.build(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context) error {
	cfg, log := a.Config, a.Log
	db, err := sqlstore.Open(ctx, dbURL(cfg))
	if err != nil {
		return err
	}
	a.DB = db
	a.closers = append(a.closers, func() { _ = db.Close() })
	db.Partner = cfg.Partner
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	if err := a.demoDefaults(); err != nil {
		return err
	}
	processors, err := newProcessors(cfg)
	if err != nil {
		return err
	}
	a.Metrics = api.NewMetrics(db)
	client := LMSClient(cfg)
	// Every module the binary has; configuration maps product classes to them.
	modules := []fulfillment.Module{
		&enrollment.Module{LMS: client},
		&enrollmentcode.Module{Codes: db},
		&entitlement.Module{LMS: client},
		&webhook.Module{URL: cfg.WebhookURL, Secret: []byte(cfg.WebhookSecret), Client: lms.NewClient("", "", cfg.LMSTimeout)},
	}
	registry, err := fulfillment.NewRegistry(cfg.Modules, modules, func(module string) *fulfillment.Breaker {
		return fulfillment.NewBreaker(cfg.BreakerThreshold, cfg.BreakerCooldown, func(from, to fulfillment.BreakerState) {
			log.Warn("circuit breaker", "module", module, "from", from, "to", to)
			a.Metrics.BreakerChanged(module, to)
		})
	})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	owners := lease.NewOwners(host)
	policy := fulfillment.Policy{Base: cfg.RetryBase, Cap: cfg.RetryCap, Attempts: cfg.RetryAttempts, RetryAfterMax: cfg.RetryAfterMax}
	if _, ok := processors[payment.SandboxName]; ok && !cfg.Demo {
		log.Warn("the sandbox payment processor is enabled outside --demo (--sandbox-allow-production): it takes no real money, and anyone holding its secret can pay any basket")
	}
	if cfg.LMSURL == "" {
		log.Warn("no LMS is configured (--lms-url ''): seats and entitlements cannot be fulfilled; their lines wait, flagged")
	}
	a.Fulfill = &fulfillment.Service{Store: db, Registry: registry, Lease: cfg.Lease, WaitForLease: cfg.Lease,
		BreakerDelay: cfg.BreakerCooldown, Policy: policy, Observer: a.Metrics, Owners: owners, Log: log}
	a.Checkout = &checkout.Service{Store: db, Fulfill: a.Fulfill, Processors: processors, DefaultProcessor: cfg.DefaultProcessorName(),
		Rollout: rollout(cfg), ServiceUsers: config.List(cfg.ServiceUsers), PublicURL: cfg.PublicURL, Observer: a.Metrics, Log: log,
		Offers: db}
	a.Refunds = &refund.Service{Store: db, Revoker: registry, Processors: processors, Policy: policy,
		Lease: cfg.Lease, WaitForLease: cfg.Lease, Owners: owners, Log: log}
	a.Worker = &fulfillment.Worker{Service: a.Fulfill, Owner: owners.Next("worker"), Poll: cfg.WorkerPoll, Batch: 200, MaxInFlight: 2000}

	verifier, err := auth.New(auth.Options{Secret: cfg.JWTSecret, JWKSet: cfg.JWTJWKSet,
		Issuers: config.List(cfg.JWTIssuers), Audience: cfg.JWTAudience, MaxLifetime: cfg.JWTMaxLifetime})
	if err != nil {
		return fmt.Errorf("config: JWT verification (--jwt-secret, --jwt-public-signing-jwk-set): %w", err)
	}
	dashboard, err := admin.New(admin.Deps{Log: log, Store: db, Fulfill: a.Fulfill, Refunds: a.Refunds, Payments: a.Checkout,
		Verifier: verifier, Secret: cfg.JWTSecret, Demo: cfg.Demo, PageSize: cfg.DashboardPage})
	if err != nil {
		return err
	}
	shop := storefront.New(storefront.Deps{Log: log, Store: db, Verifier: verifier, Checkout: a.Checkout,
		JWTSecret: cfg.JWTSecret, Demo: cfg.Demo, LMSURL: cfg.LMSURL, LoginURL: cfg.LMSLoginURL,
		RegisterURL: cfg.LMSRegisterURL, DashboardURL: cfg.LMSDashboardURL, PublicURL: cfg.PublicURL})
	jsonAPI := api.NewServer(api.Deps{Log: log, Store: db, Service: a.Fulfill, Verifier: verifier, Metrics: a.Metrics,
		Checkout: a.Checkout, Refunds: a.Refunds, PublicURL: cfg.PublicURL, Demo: cfg.Demo, Storefront: true,
		Publisher: publisher(cfg, client), DashboardURL: cfg.DashboardURL()})
	a.Handler = routes(log, jsonAPI, dashboard, shop, landing(cfg, log, db))
	return nil
}

// routes is the root mux: every prefix of the service and the handler that
// serves it, behind the request-id and panic middleware. home, when not
// nil, answers exactly "/" (landing.go).
func routes(log *slog.Logger, jsonAPI, dashboard, shop, home http.Handler) http.Handler {
	mux := http.NewServeMux()
	if home != nil {
		mux.Handle("GET /{$}", home)
	}
	mux.Handle("/dashboard/", dashboard)
	for _, p := range []string{"/basket/", "/checkout/", "/login", "/register", "/logout", "/static/storefront/"} {
		mux.Handle(p, shop)
	}
	mux.Handle("/checkout/free-checkout/", jsonAPI) // the payment MFE's free checkout (api/bff.go)
	// The JSON API serves the rest: /api/…, /healthz, /readyz, /metrics,
	// /payment/…, /coupons/redeem/, and the problem+json 404.
	mux.Handle("/", jsonAPI)
	return withRequestID(recoverer(log, validText(mux)))
}

// maxValue bounds one query or form value: far above any SKU, number,
// code or filter, and small enough for any index.
const maxValue = 4096

// validText refuses, before any front end sees it, text that no route
// could serve and that PostgreSQL would refuse: a path that is not valid
// UTF-8 or holds a NUL is no route (404); such a query or form value, or
// one longer than maxValue, is a bad request (400). Both engines answer
// the same.
func validText(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !goodText(r.URL.Path) {
			api.WriteProblem(w, r, api.Problem{Status: http.StatusNotFound, Detail: "No route matches this path."})
			return
		}
		if err := goodValues(r.URL.Query()); err != "" {
			api.WriteProblem(w, r, api.Problem{Status: http.StatusBadRequest, Detail: "Query parameter " + err})
			return
		}
		if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(raw))
			if err != nil || r.ParseForm() != nil {
				api.WriteProblem(w, r, api.Problem{Status: http.StatusBadRequest, Detail: "The form could not be read."})
				return
			}
			// The body stays readable: the JSON API decodes forms (and JSON
			// sent labelled as one, as curl -d does) from the body itself.
			r.Body = io.NopCloser(bytes.NewReader(raw))
			if err := goodValues(r.PostForm); err != "" {
				api.WriteProblem(w, r, api.Problem{Status: http.StatusBadRequest, Detail: "Form field " + err})
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func goodText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// goodValues returns what is wrong with the first bad value, or "".
func goodValues(v url.Values) string {
	for k, vs := range v {
		if !goodText(k) {
			return "names must be UTF-8 text without NUL."
		}
		for _, x := range vs {
			switch {
			case !goodText(x):
				return fmt.Sprintf("%q must be UTF-8 text without NUL.", k)
			case len(x) > maxValue:
				return fmt.Sprintf("%q is longer than %d bytes.", k, maxValue)
			}
		}
	}
	return ""
}

// demoDefaults fills what the demo needs and nobody configured: the LMS
// stand-in, a JWT secret, a sandbox secret.
func (a *App) demoDefaults() error {
	cfg := a.Config
	if !cfg.Demo {
		return nil
	}
	if cfg.LMSURL == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("demo LMS: %w", err)
		}
		if cfg.LMSAPIKey == "" {
			cfg.LMSAPIKey = "demo-lms-key"
		}
		if cfg.LMSOAuthClientID == "" && cfg.LMSOAuthClientSecret == "" {
			cfg.LMSOAuthClientID, cfg.LMSOAuthClientSecret = "demo-oauth-client", "demo-oauth-secret"
		}
		a.LMS = lmstest.New(lmstest.Options{APIKey: cfg.LMSAPIKey,
			OAuthClientID: cfg.LMSOAuthClientID, OAuthClientSecret: cfg.LMSOAuthClientSecret})
		srv := &http.Server{Handler: a.LMS, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		a.closers = append(a.closers, func() { a.LMS.Close(); _ = srv.Close() })
		cfg.LMSURL = "http://" + ln.Addr().String()
		a.Log.Info("LMS stand-in running in-process", "url", cfg.LMSURL)
	}
	if cfg.JWTSecret == "" {
		cfg.JWTSecret = "demo-secret"
	}
	if cfg.SandboxSecret == "" {
		cfg.SandboxSecret = "demo-sandbox-secret"
	}
	return nil
}

func newProcessors(cfg *config.Config) (map[string]payment.Processor, error) {
	out := map[string]payment.Processor{}
	for _, name := range cfg.ProcessorNames() {
		switch name {
		case payment.SandboxName:
			out[name] = &payment.Sandbox{Secret: []byte(cfg.SandboxSecret)}
		case stripe.Name:
			p, err := stripe.New(stripe.Config{SecretKey: cfg.StripeKey, WebhookSecret: cfg.StripeWebhook, BackendURL: cfg.StripeBackend})
			if err != nil {
				return nil, err
			}
			out[name] = p
		default:
			return nil, fmt.Errorf("unknown payment processor %q", name)
		}
	}
	return out, nil
}

// rollout is the incremental-rollout setting, nil when everything is sold here.
func rollout(cfg *config.Config) *catalog.Rollout {
	courses, skus := config.List(cfg.SoldCourses), config.List(cfg.UnsoldSKUs)
	if len(courses) == 0 && len(skus) == 0 {
		return nil
	}
	return &catalog.Rollout{Courses: courses, UnsoldSKUs: skus}
}

// LMSClient is the LMS client cfg describes: the Enrollment API with
// X-Edx-Api-Key, and the commerce, credit and entitlements APIs with the
// OAuth client's JWT when one is configured (else the API key too).
func LMSClient(cfg *config.Config) *lms.Client {
	return lms.NewClient(cfg.LMSURL, cfg.LMSAPIKey, cfg.LMSTimeout, lms.WithOAuth(lms.OAuth{
		TokenURL: cfg.LMSOAuthURL, ClientID: cfg.LMSOAuthClientID, ClientSecret: cfg.LMSOAuthClientSecret}))
}

// publisher publishes saved courses to the LMS, unless turned off.
func publisher(cfg *config.Config, client *lms.Client) catalog.Publisher {
	if !cfg.PublishCourses || cfg.LMSURL == "" {
		return nil
	}
	return client
}

// Run runs the background work until ctx ends: the retry worker, the
// refund worker and the payment reconciler. It returns when all of them
// have stopped.
func (a *App) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { a.Worker.Run(ctx) })
	wg.Go(func() { a.Refunds.RunWorker(ctx, a.Config.WorkerPoll) })
	wg.Go(func() { a.Checkout.RunReconciler(ctx, 5*time.Second) })
	wg.Wait()
}

// Close releases what New opened, newest first.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// DemoCourse is the course the demo seeds.
func DemoCourse() catalog.Course {
	p := func(s string) money.Amount { a, _ := money.Parse(s, "USD"); return a }
	return catalog.Course{ID: "course-v1:edX+DemoX+Demo_Course", Name: "edX Demonstration Course", Seats: []catalog.Seat{
		{CertificateType: "", Price: p("0")},
		{CertificateType: "verified", IDVerificationRequired: true, Price: p("49")},
		{CertificateType: "professional", IDVerificationRequired: false, Price: p("100")},
	}}
}

// withRequestID names every request: the caller's X-Request-Id when it is
// a sane token, else a new random one. The id goes back in the answer's
// header, into the context for error answers, and into logs.
func withRequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneID(id) {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", id)
		h.ServeHTTP(w, r.WithContext(apperr.WithRequestID(r.Context(), id)))
	})
}

func saneID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// recoverer turns a panic anywhere into a logged 500 instead of a dropped
// connection; the JSON API answers its own panics with problem+json first.
func recoverer(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				id := apperr.RequestID(r.Context())
				log.Error("panic", "path", r.URL.Path, "request_id", id, "panic", fmt.Sprint(v))
				http.Error(w, "internal error; request id "+id, http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// dbURL is the store's URL with the pool flags, for PostgreSQL, and
// --sqlite-synchronous, for SQLite, as the query options the store reads
// (flags win over the URL's own).
func dbURL(cfg *config.Config) string {
	if rest, ok := strings.CutPrefix(cfg.DB, "sqlite:"); ok && cfg.SQLiteSynchronous != "" {
		path, query, _ := strings.Cut(rest, "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			return cfg.DB // the store reports the bad URL
		}
		q.Set("synchronous", cfg.SQLiteSynchronous)
		return "sqlite:" + path + "?" + q.Encode()
	}
	if (cfg.DBMaxOpenConns <= 0 && cfg.DBMaxIdleConns <= 0) || !strings.HasPrefix(cfg.DB, "postgres") {
		return cfg.DB
	}
	u, err := url.Parse(cfg.DB)
	if err != nil {
		return cfg.DB // the store reports the bad URL
	}
	q := u.Query()
	if cfg.DBMaxOpenConns > 0 {
		q.Set("max_open_conns", strconv.Itoa(cfg.DBMaxOpenConns))
	}
	if cfg.DBMaxIdleConns > 0 {
		q.Set("max_idle_conns", strconv.Itoa(cfg.DBMaxIdleConns))
	}
	u.RawQuery = q.Encode()
	return u.String()
}
