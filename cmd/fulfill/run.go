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
	"time"

	"fulfill/internal/app"
	"fulfill/internal/auth"
	"fulfill/internal/catalog"
	"fulfill/internal/config"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/loadtest"
	"fulfill/internal/sqlstore"
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
// Asking a command for its usage (--help, -h) is not an error: the flag
// package prints it and run returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// isHelp reports whether arg asks for the usage.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
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
		return loadtest.Run(ctx, args[1:], getenv, stdout, stderr)
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// parse parses a subcommand's flags and fills unset ones from
// FULFILL_<FLAG>, as config does for serve.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return config.LoadEnv(fs, getenv)
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
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	log.Info("starting", "config", cfg.String())
	if cfg.Demo {
		c, err := a.DB.PutCourse(ctx, app.DemoCourse())
		if err != nil {
			return fmt.Errorf("seed demo course: %w", err)
		}
		// As long as the service accepts (--jwt-max-lifetime, a day by default).
		ttl := 30 * 24 * time.Hour
		if cfg.JWTMaxLifetime > 0 {
			ttl = min(ttl, cfg.JWTMaxLifetime)
		}
		tok, err := auth.Sign(cfg.JWTSecret, "demo-staff", true, ttl, time.Now())
		if err != nil {
			return err
		}
		printDemo(stdout, ln.Addr().String(), tok, ttl, c)
	}
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: cfg.ReadHeaderTimeout, ReadTimeout: cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout}
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan struct{})
	go func() {
		a.Run(workerCtx)
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

func printDemo(w io.Writer, addr, token string, ttl time.Duration, c catalog.Course) {
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
	fmt.Fprintf(w, "\nStaff token (valid %s):\n  export TOKEN=%s\n", ttl, token)
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
