package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"fulfill/internal/admin"
	"fulfill/internal/api"
	"fulfill/internal/auth"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/config"
	"fulfill/internal/fulfillment"
	"fulfill/internal/fulfillment/enrollment"
	"fulfill/internal/fulfillment/enrollmentcode"
	"fulfill/internal/fulfillment/entitlement"
	"fulfill/internal/fulfillment/webhook"
	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/money"
	"fulfill/internal/payment"
	"fulfill/internal/refund"
	"fulfill/internal/sqlstore"
	"fulfill/internal/storefront"
)

const usage = `usage: fulfill <command> [flags]

commands:
  serve      run the service (--demo for the embedded demo)
  migrate    apply database migrations (--db)
  token      print a signed JWT for development
  lms-stub   run the LMS stand-in alone
  orders     retry or mark-complete orders from the command line
  courses    publish courses' modes and SKUs to the LMS again
  loadtest   drive a service with virtual learners and verify the result
`

// run is the whole program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		return cmdToken(args[1:], getenv, stdout, stderr)
	case "lms-stub":
		return cmdLMSStub(ctx, args[1:], getenv, stdout, stderr)
	case "orders":
		return cmdOrders(ctx, args[1:], getenv, stdout, stderr)
	case "courses":
		return cmdCourses(ctx, args[1:], getenv, stdout, stderr)
	case "loadtest":
		return cmdLoadtest(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// parse parses flags and fills unset ones from FULFILL_<FLAG>.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "FULFILL_" + envName(f.Name)
		if v := getenv(env); v != "" && !set[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	b := []byte(flagName)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// stack is the wired service.
type stack struct {
	db       *sqlstore.DB
	service  *fulfillment.Service
	handler  http.Handler
	metrics  *api.Metrics
	worker   *fulfillment.Worker
	checkout *checkout.Service
	refunds  *refund.Service
	replica  string
	lms      *lmstest.Server // the in-process stand-in in demo mode
	lmsSrv   *http.Server
}

func (s *stack) close() {
	if s.lmsSrv != nil {
		s.lms.Close()
		_ = s.lmsSrv.Close()
	}
	if s.db != nil {
		_ = s.db.Close()
	}
}

// build opens the database, migrates it and wires every part.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) (*stack, error) {
	st := &stack{}
	db, err := sqlstore.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	st.db = db
	db.Partner = cfg.Partner
	if err := db.Migrate(ctx); err != nil {
		st.close()
		return nil, err
	}
	if cfg.Demo && cfg.LMSURL == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			st.close()
			return nil, fmt.Errorf("demo LMS: %w", err)
		}
		if cfg.LMSAPIKey == "" {
			cfg.LMSAPIKey = "demo-lms-key"
		}
		st.lms = lmstest.New(lmstest.Options{APIKey: cfg.LMSAPIKey})
		st.lmsSrv = &http.Server{Handler: st.lms, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = st.lmsSrv.Serve(ln) }()
		cfg.LMSURL = "http://" + ln.Addr().String()
		log.Info("LMS stand-in running in-process", "url", cfg.LMSURL)
	}
	if cfg.JWTSecret == "" && cfg.Demo {
		cfg.JWTSecret = "demo-secret"
	}
	if cfg.SandboxSecret == "" && cfg.Demo {
		cfg.SandboxSecret = "demo-sandbox-secret"
	}
	processors := map[string]payment.Processor{}
	for _, name := range cfg.ProcessorNames() {
		switch name {
		case payment.SandboxName:
			processors[name] = &payment.Sandbox{Secret: []byte(cfg.SandboxSecret)}
		default:
			p, err := newProcessor(name, cfg)
			if err != nil {
				st.close()
				return nil, err
			}
			processors[name] = p
		}
	}
	st.metrics = api.NewMetrics(db)
	client := lms.NewClient(cfg.LMSURL, cfg.LMSAPIKey, cfg.LMSTimeout)
	// Every module the binary has; configuration maps product classes to them.
	modules := []fulfillment.Module{
		&enrollment.Module{LMS: client},
		&enrollmentcode.Module{Codes: db},
		&entitlement.Module{LMS: client},
		&webhook.Module{URL: cfg.WebhookURL, Secret: []byte(cfg.WebhookSecret), Client: lms.NewClient("", "", cfg.LMSTimeout)},
	}
	registry, err := fulfillment.NewRegistry(cfg.Modules, modules,
		func(module string) *fulfillment.Breaker {
			return fulfillment.NewBreaker(cfg.BreakerThreshold, cfg.BreakerCooldown, func(from, to fulfillment.BreakerState) {
				log.Warn("circuit breaker", "module", module, "from", from, "to", to)
				st.metrics.BreakerChanged(module, to)
			})
		})
	if err != nil {
		st.close()
		return nil, err
	}
	st.service = &fulfillment.Service{
		Store: db, Registry: registry, Lease: cfg.Lease, WaitForLease: cfg.Lease, BreakerDelay: cfg.BreakerCooldown,
		Policy:   fulfillment.Policy{Base: cfg.RetryBase, Cap: cfg.RetryCap, Attempts: cfg.RetryAttempts},
		Observer: st.metrics, Log: log,
	}
	st.checkout = &checkout.Service{Store: db, Fulfill: st.service, Processors: processors, Log: log}
	st.refunds = &refund.Service{Store: db, Revoker: registry, Processors: processors, Policy: st.service.Policy,
		Lease: cfg.Lease, WaitForLease: cfg.Lease, Log: log}
	host, _ := os.Hostname()
	replica := fmt.Sprintf("%s-%d", host, os.Getpid())
	st.worker = &fulfillment.Worker{Service: st.service, Owner: "worker-" + replica, Poll: cfg.WorkerPoll, Batch: 200, MaxInFlight: 2000}
	st.replica = replica
	dashboard, err := admin.New(admin.Deps{Log: log, Store: db, Fulfill: st.service, Refunds: st.refunds,
		Verifier: auth.NewVerifier(cfg.JWTSecret), Secret: cfg.JWTSecret, Demo: cfg.Demo, Replica: replica})
	if err != nil {
		st.close()
		return nil, err
	}
	// The learner's pages: purchase links, basket, receipt and sign-in.
	sf := storefront.New(storefront.Deps{Log: log, Store: db, Service: st.service, Verifier: auth.NewVerifier(cfg.JWTSecret),
		Checkout: st.checkout, Rollout: rollout(cfg), JWTSecret: cfg.JWTSecret, Demo: cfg.Demo, LMSURL: cfg.LMSURL,
		LoginURL: cfg.LMSLoginURL, RegisterURL: cfg.LMSRegisterURL, DashboardURL: cfg.LMSDashboardURL, PublicURL: cfg.PublicURL,
		Replica: replica})
	st.handler = api.NewServer(api.Deps{Storefront: sf, Log: log, Store: db, Service: st.service, Verifier: auth.NewVerifier(cfg.JWTSecret),
		Metrics: st.metrics, Replica: replica, Checkout: st.checkout, Refunds: st.refunds, PublicURL: cfg.PublicURL, Demo: cfg.Demo,
		Rollout: rollout(cfg), ServiceUsers: config.List(cfg.ServiceUsers), Publisher: publisher(cfg, client),
		Dashboard: dashboard})
	return st, nil
}

// demoCourse is the course the demo seeds.
func demoCourse() catalog.Course {
	p := func(s string) money.Amount { a, _ := money.Parse(s, "USD"); return a }
	return catalog.Course{ID: "course-v1:edX+DemoX+Demo_Course", Name: "edX Demonstration Course", Seats: []catalog.Seat{
		{CertificateType: "", Price: p("0")},
		{CertificateType: "verified", IDVerificationRequired: true, Price: p("49")},
		{CertificateType: "professional", IDVerificationRequired: false, Price: p("100")},
	}}
}

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := config.Load(fs, cfg, getenv); err != nil {
		return err
	}
	log := newLogger(stderr)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	st, err := build(ctx, cfg, log, stdout)
	if err != nil {
		ln.Close()
		return err
	}
	defer st.close()
	log.Info("starting", "config", cfg.String())
	if cfg.Demo {
		c, err := st.db.PutCourse(ctx, demoCourse())
		if err != nil {
			return fmt.Errorf("seed demo course: %w", err)
		}
		tok, err := auth.Sign(cfg.JWTSecret, "demo-staff", true, 30*24*time.Hour, time.Now())
		if err != nil {
			return err
		}
		printDemo(stdout, ln.Addr().String(), tok, c)
	}
	srv := &http.Server{Handler: st.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		wg.Go(func() { st.worker.Run(workerCtx) })
		wg.Go(func() { st.refunds.RunWorker(workerCtx, "refunds-"+st.replica, cfg.WorkerPoll) })
		wg.Go(func() { st.checkout.RunReconciler(workerCtx, "reconciler-"+st.replica, 10*time.Second, time.Minute) })
		wg.Wait()
		close(workerDone)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "fulfill listening on http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		stopWorker()
		<-workerDone
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	stopWorker()
	<-workerDone
	return err
}

func printDemo(w io.Writer, addr, token string, c catalog.Course) {
	fmt.Fprintf(w, "\nDemo course %s:\n", c.ID)
	var free, paid string
	for _, s := range c.Seats {
		fmt.Fprintf(w, "  %-20s SKU %s  %s %s\n", s.Mode(), s.SKU, s.Price, s.Price.Currency)
		if s.Price.Minor == 0 && free == "" {
			free = s.SKU
		}
		if s.Price.Minor > 0 && paid == "" {
			paid = s.SKU
		}
	}
	fmt.Fprintf(w, "\nStaff token (30 days):\n  export TOKEN=%s\n", token)
	fmt.Fprintf(w, "\nBuy the free seat:\n  curl -s -X POST http://%s/api/v2/baskets/ -H \"Authorization: JWT $TOKEN\" -H 'Content-Type: application/json' -d '{\"products\":[{\"sku\":\"%s\"}],\"checkout\":true}'\n", addr, free)
	fmt.Fprintf(w, "\nSee the order:\n  curl -s http://%s/api/v2/orders/ -H \"Authorization: JWT $TOKEN\"\n", addr)
	if paid != "" {
		fmt.Fprintf(w, "\nBuy a paid seat through the sandbox processor (open payment_data.payment_page_url in a browser to pay):\n")
		fmt.Fprintf(w, "  curl -s -X POST http://%s/api/v2/baskets/ -H \"Authorization: JWT $TOKEN\" -H 'Content-Type: application/json' -d '{\"products\":[{\"sku\":\"%s\"}],\"checkout\":true,\"payment_processor_name\":\"sandbox\"}'\n", addr, paid)
	}
	fmt.Fprintf(w, "\nOr in a browser: the marketing-site link http://%s/basket/add/?sku=%s (sign in with any name),\n", addr, free)
	fmt.Fprintf(w, "and the operators' dashboard http://%s/dashboard/ (\"Sign in as demo staff\").\n\n", addr)
}

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	dbURL := fs.String("db", "sqlite:fulfill.db", "database URL")
	if err := parse(fs, args, getenv, stderr); err != nil {
		return err
	}
	db, err := sqlstore.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func cmdToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	user := fs.String("user", "", "username (required)")
	staff := fs.Bool("staff", false, "make a staff (administrator) token")
	secret := fs.String("jwt-secret", "demo-secret", "HS256 secret")
	ttl := fs.Duration("ttl", time.Hour, "validity")
	if err := parse(fs, args, getenv, stderr); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("token: --user is required")
	}
	tok, err := auth.Sign(*secret, *user, *staff, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func cmdLMSStub(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lms-stub", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:18000", "listen address")
	key := fs.String("api-key", "", "required X-Edx-Api-Key (empty: none)")
	latency := fs.Duration("latency", 0, "added latency per call")
	failRate := fs.Float64("fail-rate", 0, "fraction of calls answered 503")
	timeoutRate := fs.Float64("timeout-rate", 0, "fraction of calls that hang until the client gives up")
	resetRate := fs.Float64("reset-rate", 0, "fraction of calls whose connection is reset")
	if err := parse(fs, args, getenv, stderr); err != nil {
		return err
	}
	stub := lmstest.New(lmstest.Options{APIKey: *key, Faults: lmstest.Faults{Latency: *latency, FailRate: *failRate, TimeoutRate: *timeoutRate, ResetRate: *resetRate}})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: stub, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "LMS stand-in listening on http://%s\n", ln.Addr())
	go func() { <-ctx.Done(); stub.Close(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// rollout is the incremental-rollout setting, nil when everything is sold here.
func rollout(cfg *config.Config) *catalog.Rollout {
	courses, skus := config.List(cfg.SoldCourses), config.List(cfg.UnsoldSKUs)
	if len(courses) == 0 && len(skus) == 0 {
		return nil
	}
	return &catalog.Rollout{Courses: courses, UnsoldSKUs: skus}
}

// publisher publishes saved courses to the LMS, unless turned off.
func publisher(cfg *config.Config, client *lms.Client) api.Publisher {
	if !cfg.PublishCourses || cfg.LMSURL == "" {
		return nil
	}
	return client
}
