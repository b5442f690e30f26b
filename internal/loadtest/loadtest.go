// Package loadtest is the load tool behind `fulfill loadtest`: it drives a
// running service (--url) or one it starts in-process (--db) with virtual
// learners buying a free seat, or with --paid a paid one through the
// sandbox payment processor, then verifies that every acknowledged order
// became Complete and that the LMS holds one active enrollment per seat
// (and with --paid, that the payment ledger balances with the orders and
// the refunds). See BENCHMARKS.md.
package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"fulfill/internal/app"
	"fulfill/internal/auth"
	"fulfill/internal/config"
	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/money"
	"fulfill/internal/payment"
)

// Bounds of a load run: everything the tool does is limited by count and
// time, and it only ever talks to loopback or the URLs it was given.
const (
	loadMaxConcurrency = 4096
	loadMaxOrders      = 10_000_000
	loadMaxDuration    = 10 * time.Minute
	loadVerifyWorkers  = 32
	loadLMSCheckers    = 128
	// The paid seat the tool adds to its course with --paid.
	loadPaidPrice    = "49.00"
	loadPaidCurrency = "USD"
	loadPaidCertType = "professional" // with ID verification: LMS mode "professional"
	// A gateway redelivers a notification that failed (transport error or
	// 5xx): at most this many deliveries of one notification.
	loadNotifyAttempts = 3
)

type loadOptions struct {
	url, db, jwtSecret string
	concurrency        int
	duration           time.Duration
	durationSet        bool
	orders             int
	rate               float64
	paid               bool
	paidDuplicates     float64
	sandboxSecret      string
	lmsLatency         time.Duration
	lmsFailRate        float64
	lmsOutage          bool
	lmsOutageHold      time.Duration
	lmsURL, lmsAPIKey  string
	settle             time.Duration
	jsonOut            bool
	retryBase          time.Duration
	retryCap           time.Duration
	retryAttempts      int
	timeout            time.Duration
	course             string
	serverPID          int
	serverLog          string
	cpuProfile         string
	anyHost            bool
	warmup             time.Duration
	progress           time.Duration
}

// loadReport is what a run measured and verified; --json prints it as is.
type loadReport struct {
	Mode           string           `json:"mode"` // "in-process" or "remote"
	URL            string           `json:"url"`
	Engine         string           `json:"engine,omitempty"`
	CourseID       string           `json:"course_id"`
	SKU            string           `json:"sku"`
	Concurrency    int              `json:"concurrency"`
	TargetRate     float64          `json:"target_rate,omitempty"`
	Stopped        string           `json:"stopped"` // "orders", "duration" or "interrupted"
	LMS            loadLMSSetup     `json:"lms"`
	Retry          *loadRetrySetup  `json:"retry,omitempty"`
	Notes          []string         `json:"notes,omitempty"`
	Sent           int64            `json:"sent"`
	Acknowledged   int64            `json:"acknowledged"`
	Errors         map[string]int64 `json:"errors"`
	ErrorSamples   []string         `json:"error_samples,omitempty"`
	AnsweredStatus map[string]int64 `json:"answered_status"`
	ElapsedSeconds float64          `json:"elapsed_seconds"`
	// With --warmup, OrdersPerSec and Latency count only orders started
	// after it; the *All fields count every order.
	WarmupSeconds   float64           `json:"warmup_seconds,omitempty"`
	OrdersPerSec    float64           `json:"orders_per_second"`
	Latency         loadLatency       `json:"latency_ms"`
	OrdersPerSecAll float64           `json:"orders_per_second_all,omitempty"`
	LatencyAll      *loadLatency      `json:"latency_ms_all,omitempty"`
	Outage          *loadOutageReport `json:"outage,omitempty"`
	// OpenLoop is set with --rate: the latency measured from each order's
	// scheduled send time.
	OpenLoop *loadOpenLoop    `json:"open_loop,omitempty"`
	Paid     *loadPaidReport  `json:"paid,omitempty"`
	Settle   loadSettleReport `json:"settle"`
	LMSCheck loadLMSCheck     `json:"lms_check"`
	CPU      *loadCPU         `json:"cpu,omitempty"`
	Memory   *loadMemory      `json:"memory,omitempty"`
	Verified bool             `json:"verified"`
	Failures []string         `json:"failures,omitempty"`
}

type loadLMSSetup struct {
	Source    string  `json:"source"` // "in-process stand-in", "remote" or "service's own (unknown)"
	URL       string  `json:"url,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	FailRate  float64 `json:"fail_rate"`
	Outage    bool    `json:"outage"`
}

type loadRetrySetup struct {
	Base            string `json:"base"`
	Cap             string `json:"cap"`
	Attempts        int    `json:"attempts"`
	WorkerPoll      string `json:"worker_poll"`
	BreakerCooldown string `json:"breaker_cooldown"`
}

type loadLatency struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

type loadOutageReport struct {
	// NotCompleteAtHeal counts acknowledged orders answered other than
	// Complete (they waited for the LMS to come back).
	NotCompleteAtHeal int64 `json:"not_complete_at_heal"`
	// RecoverySeconds is the time from healing the LMS to every
	// acknowledged order being Complete; -1 when that did not happen
	// within --settle.
	RecoverySeconds float64 `json:"recovery_seconds"`
	// With --lms-outage-hold: how long the LMS stayed down after the
	// last order, and the database commits per second meanwhile (no
	// orders were placed: all of them are background work, the waiting
	// lines' included).
	HoldSeconds          float64 `json:"hold_seconds,omitempty"`
	HoldCommitsPerSecond float64 `json:"hold_commits_per_second,omitempty"`
	// IdleCommitsPerSecond is the same rate measured before the load,
	// with nothing waiting: the workers' polls alone. The waiting lines'
	// share is the difference.
	IdleCommitsPerSecond float64 `json:"idle_commits_per_second,omitempty"`
}

type loadSettleReport struct {
	WaitedSeconds  float64          `json:"waited_seconds"`
	Checked        int              `json:"checked"`
	Complete       int              `json:"complete"`
	NotComplete    map[string]int   `json:"not_complete,omitempty"`
	NeedsAttention int              `json:"needs_attention"`
	Missing        int              `json:"missing"`
	CheckErrors    int              `json:"check_errors"`
	Samples        []string         `json:"samples,omitempty"`
	Attempts       map[string]int64 `json:"line_attempts,omitempty"` // attempts per line → lines
}

type loadLMSCheck struct {
	Method            string `json:"method"` // "in-process", "remote" or "skipped"
	Activations       int    `json:"activations,omitempty"`
	ActiveEnrollments int    `json:"active_enrollments,omitempty"`
	Checked           int    `json:"checked"`
	Active            int    `json:"active"`
	NotActive         int    `json:"not_active"`
	Errors            int    `json:"errors"`
}

// loadCPU is CPU use during the load phase, in cores (CPU seconds per
// second), from /proc: the machine is shared, so a run is only comparable
// with another when "others" is small.
type loadCPU struct {
	Cores   int     `json:"cores"`
	Machine float64 `json:"machine_busy"`
	// Steal is CPU time the hypervisor gave to other guests.
	Steal          float64 `json:"steal"`
	ThisProcess    float64 `json:"this_process"`
	ServiceProcess float64 `json:"service_process,omitempty"`
	Postgres       float64 `json:"postgres"`
	OtherFulfill   float64 `json:"other_fulfill_processes"` // e.g. a `fulfill lms-stub`
	Others         float64 `json:"others"`
}

type loadMemory struct {
	Of      string  `json:"of"`
	VmHWMMB float64 `json:"vm_hwm_mb"`
	VmRSSMB float64 `json:"vm_rss_mb"`
}

// Run is `fulfill loadtest`: args are the flags after the command name.
// It drives a service with virtual learners buying a free seat (--paid: a
// paid one, through the sandbox processor), then verifies that every
// acknowledged order became Complete and that the LMS holds one active
// enrollment per seat (--paid: and that the payments balance). --help
// prints the flags on stderr and returns nil. See BENCHMARKS.md.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseLoadFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.paid && o.url != "" && o.sandboxSecret == "" {
		o.sandboxSecret = getenv("FULFILL_SANDBOX_SECRET")
		if o.sandboxSecret == "" {
			return errors.New("loadtest: --paid with --url needs the service's --sandbox-secret (or FULFILL_SANDBOX_SECRET) to sign the gateway's notifications")
		}
	}
	lt := &loadTest{o: o, stderr: stderr, rep: &loadReport{Errors: map[string]int64{}, AnsweredStatus: map[string]int64{}}}
	lt.client = &http.Client{Timeout: o.timeout, Transport: loadTransport(o.concurrency + loadVerifyWorkers + 64)}
	defer lt.client.CloseIdleConnections()
	if err := lt.setup(ctx); err != nil {
		lt.teardown()
		return err
	}
	err = lt.run(ctx)
	lt.teardown()
	if err != nil {
		return err
	}
	rep := lt.rep
	human := stdout
	if o.jsonOut {
		human = stderr
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	printLoadReport(human, rep)
	if ctx.Err() != nil {
		return fmt.Errorf("loadtest: interrupted")
	}
	if !rep.Verified {
		return fmt.Errorf("loadtest: verification failed: %s", strings.Join(rep.Failures, "; "))
	}
	return nil
}

func parseLoadFlags(args []string, stderr io.Writer) (loadOptions, error) {
	var o loadOptions
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "base URL of a running service (e.g. http://127.0.0.1:8080); or use --db")
	fs.StringVar(&o.db, "db", "", "start the service in-process on this database (sqlite:PATH or postgres://…)")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "demo-secret", "HS256 secret to sign learner and staff tokens (the service's --jwt-secret)")
	fs.IntVar(&o.concurrency, "concurrency", 16, "virtual learners buying at once")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long to place orders (with --orders: an upper bound, default 10m)")
	fs.IntVar(&o.orders, "orders", 0, "stop after this many orders (0: run for --duration)")
	fs.Float64Var(&o.rate, "rate", 0, "target orders per second, open loop; latency counts from each order's scheduled start (0: as fast as the learners go)")
	fs.BoolVar(&o.paid, "paid", false, "buy a paid seat ("+loadPaidPrice+" "+loadPaidCurrency+") through the sandbox payment processor: the basket, then the gateway's signed accept notification")
	fs.Float64Var(&o.paidDuplicates, "paid-duplicates", 0, "with --paid: fraction (0 to 1) of baskets paid a second time (another accept, another reference), which the service must refund")
	fs.StringVar(&o.sandboxSecret, "sandbox-secret", "", "with --paid: the sandbox processor's secret to sign notifications with (--url: the service's --sandbox-secret, default $FULFILL_SANDBOX_SECRET; in-process: random unless given)")
	fs.DurationVar(&o.lmsLatency, "lms-latency", 0, "latency of the LMS stand-in started in-process")
	fs.Float64Var(&o.lmsFailRate, "lms-fail-rate", 0, "fraction of enrollment calls the in-process LMS stand-in answers 503")
	fs.BoolVar(&o.lmsOutage, "lms-outage", false, "the in-process LMS stand-in fails every enrollment until all orders are placed, then heals; measures the time to all Complete")
	fs.DurationVar(&o.lmsOutageHold, "lms-outage-hold", 0, "with --lms-outage: keep the LMS down this much longer after the last order, reporting the database's commits per second meanwhile")
	fs.StringVar(&o.lmsURL, "lms-url", "", "LMS (e.g. a 'fulfill lms-stub') to verify enrollments against; in-process, the service uses it instead of its own stand-in")
	fs.StringVar(&o.lmsAPIKey, "lms-api-key", "", "X-Edx-Api-Key of --lms-url")
	fs.DurationVar(&o.settle, "settle", 2*time.Minute, "how long to wait for acknowledged orders to become Complete")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON on stdout (the text report goes to stderr)")
	fs.DurationVar(&o.retryBase, "retry-base", 0, "in-process: the service's --retry-base (default 2s; 100ms with --lms-fail-rate or --lms-outage)")
	fs.DurationVar(&o.retryCap, "retry-cap", 0, "in-process: the service's --retry-cap (default 1h; 1s with --lms-fail-rate or --lms-outage)")
	fs.IntVar(&o.retryAttempts, "retry-attempts", 0, "in-process: the service's --retry-attempts (0: its default)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of one HTTP request")
	fs.StringVar(&o.course, "course", "", "course id to create (default: a new course-v1:Load+T<unix><random>+Run)")
	fs.IntVar(&o.serverPID, "server-pid", 0, "pid of the service process (on this machine) to report its peak RSS (VmHWM) and CPU use")
	fs.StringVar(&o.serverLog, "server-log", "", "in-process: write the service's log to this file (default: discarded)")
	fs.DurationVar(&o.warmup, "warmup", 0, "leave the orders started in this first part of the run out of the throughput and latency figures (they are still verified)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process during the load phase (in-process: service and load generator together)")
	fs.DurationVar(&o.progress, "progress", time.Second, "interval of the progress line on stderr (0: none)")
	fs.BoolVar(&o.anyHost, "allow-non-loopback", false, "allow --url and --lms-url on other hosts than this one (a load test is normally run on loopback)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("loadtest: unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "duration" {
			o.durationSet = true
		}
	})
	if o.orders > 0 && !o.durationSet {
		o.duration = loadMaxDuration
	}
	switch {
	case (o.url == "") == (o.db == ""):
		return o, errors.New("loadtest: give either --url of a running service or --db to start one in-process")
	case o.concurrency < 1 || o.concurrency > loadMaxConcurrency:
		return o, fmt.Errorf("loadtest: --concurrency must be 1 to %d", loadMaxConcurrency)
	case o.orders < 0 || o.orders > loadMaxOrders:
		return o, fmt.Errorf("loadtest: --orders must be 0 to %d", loadMaxOrders)
	case o.duration <= 0 || o.duration > loadMaxDuration:
		return o, fmt.Errorf("loadtest: --duration must be positive and at most %s", loadMaxDuration)
	case o.settle < 0 || o.settle > 30*time.Minute:
		return o, errors.New("loadtest: --settle must be 0 to 30m")
	case o.rate < 0 || o.rate > 1e6:
		return o, errors.New("loadtest: --rate must be 0 to 1000000")
	case o.lmsFailRate < 0 || o.lmsFailRate > 1:
		return o, errors.New("loadtest: --lms-fail-rate must be between 0 and 1")
	case o.paidDuplicates < 0 || o.paidDuplicates > 1 || math.IsNaN(o.paidDuplicates):
		return o, errors.New("loadtest: --paid-duplicates must be between 0 and 1")
	case o.paidDuplicates > 0 && !o.paid:
		return o, errors.New("loadtest: --paid-duplicates needs --paid")
	case o.lmsOutageHold < 0 || o.lmsOutageHold > time.Hour:
		return o, errors.New("loadtest: --lms-outage-hold must be 0 to 1h")
	case o.lmsOutageHold > 0 && !o.lmsOutage:
		return o, errors.New("loadtest: --lms-outage-hold needs --lms-outage")
	case o.lmsLatency < 0 || o.lmsLatency > time.Minute:
		return o, errors.New("loadtest: --lms-latency must be 0 to 1m")
	case o.warmup < 0 || o.warmup >= o.duration:
		return o, errors.New("loadtest: --warmup must be shorter than --duration")
	case o.timeout <= 0:
		return o, errors.New("loadtest: --timeout must be positive")
	case o.url != "" && !strings.HasPrefix(o.url, "http://") && !strings.HasPrefix(o.url, "https://"):
		return o, errors.New("loadtest: --url must start with http:// or https://")
	}
	o.url = strings.TrimRight(o.url, "/")
	for _, u := range []string{o.url, o.lmsURL} {
		if u != "" && !o.anyHost && !loopback(u) {
			return o, fmt.Errorf("loadtest: %s is not on this machine; load tests run on loopback (--allow-non-loopback to override)", u)
		}
	}
	return o, nil
}

// newLogger is the service's logger, as `fulfill serve` makes it.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// loopback reports whether the URL's host is this machine.
func loopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func loadTransport(conns int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	tr.IdleConnTimeout = 90 * time.Second
	tr.DisableCompression = true
	return tr
}

// loadTest is one run.
type loadTest struct {
	o      loadOptions
	stderr io.Writer
	client *http.Client
	rep    *loadReport

	base    string // service base URL
	runID   string
	courseI string
	sku     string // the seat bought
	mode    string // its LMS mode
	staff   string // staff token

	// --paid
	price         money.Amount // of the paid seat
	sandboxSecret []byte
	paidBody      []byte
	ledgerFloor   int64     // the newest payment id before the run: this run's are above it
	paid          paidTally // merged from the learners

	// in-process
	app        *app.App
	srv        *http.Server
	stopWorker context.CancelFunc
	workerDone chan struct{}
	stub       *lmstest.Server
	stubSrv    *http.Server
	logFile    *os.File

	lmsClient *lms.Client // remote LMS verification

	acked []loadAck
}

type loadAck struct {
	number, user, status string
}

func (lt *loadTest) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	lt.rep.Notes = append(lt.rep.Notes, msg)
	fmt.Fprintln(lt.stderr, "loadtest:", msg)
}

func (lt *loadTest) setup(ctx context.Context) error {
	o := lt.o
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	lt.runID = strconv.FormatInt(time.Now().Unix(), 10) + hex.EncodeToString(b)
	lt.courseI = o.course
	if lt.courseI == "" {
		lt.courseI = "course-v1:Load+T" + lt.runID + "+Run"
	}
	rep := lt.rep
	rep.CourseID = lt.courseI
	rep.Concurrency = o.concurrency
	rep.TargetRate = o.rate
	rep.LMS = loadLMSSetup{LatencyMS: ms(o.lmsLatency), FailRate: o.lmsFailRate, Outage: o.lmsOutage}
	if o.lmsURL != "" {
		lt.lmsClient = lms.NewClient(o.lmsURL, o.lmsAPIKey, 10*time.Second)
	}
	if o.url != "" {
		rep.Mode = "remote"
		lt.base = o.url
		if o.lmsLatency != 0 || o.lmsFailRate != 0 || o.lmsOutage {
			lt.note("cannot reconfigure a remote service's LMS: --lms-latency, --lms-fail-rate and --lms-outage are ignored; " +
				"start `fulfill lms-stub --latency … --fail-rate …`, point the service at it and pass --lms-url/--lms-api-key here to verify")
			rep.LMS = loadLMSSetup{}
		}
		if o.retryBase != 0 || o.retryCap != 0 || o.retryAttempts != 0 || o.serverLog != "" {
			lt.note("--retry-*, --server-log only apply in-process; ignored with --url")
		}
		if o.lmsURL != "" {
			rep.LMS.Source, rep.LMS.URL = "remote", o.lmsURL
		} else {
			rep.LMS.Source = "service's own (not verified: no --lms-url)"
		}
	} else if err := lt.startInProcess(ctx); err != nil {
		return err
	}
	rep.URL = lt.base
	tok, err := auth.Sign(o.jwtSecret, "loadtest-staff", true, lt.tokenTTL(), time.Now())
	if err != nil {
		return err
	}
	lt.staff = tok
	return lt.createCourse(ctx)
}

func (lt *loadTest) tokenTTL() time.Duration { return lt.o.duration + lt.o.settle + 30*time.Minute }

// startInProcess wires the service as `fulfill serve` does, with the LMS stand-in.
func (lt *loadTest) startInProcess(ctx context.Context) error {
	o := lt.o
	rep := lt.rep
	rep.Mode = "in-process"
	lmsURL, lmsKey := o.lmsURL, o.lmsAPIKey
	if lmsURL == "" {
		lmsKey = "loadtest-lms-key"
		lt.stub = lmstest.New(lmstest.Options{APIKey: lmsKey})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("LMS stand-in: %w", err)
		}
		lt.stubSrv = &http.Server{Handler: lt.stub, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = lt.stubSrv.Serve(ln) }()
		lmsURL = "http://" + ln.Addr().String()
		rep.LMS.Source, rep.LMS.URL = "in-process stand-in", lmsURL
	} else {
		rep.LMS.Source, rep.LMS.URL = "remote", lmsURL
		if o.lmsLatency != 0 || o.lmsFailRate != 0 || o.lmsOutage {
			lt.note("--lms-url given: the in-process service uses that LMS, so --lms-latency, --lms-fail-rate and --lms-outage are ignored")
			rep.LMS.LatencyMS, rep.LMS.FailRate, rep.LMS.Outage = 0, 0, false
		}
	}

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := config.Flags(fs)
	secret := o.sandboxSecret
	if secret == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		secret = hex.EncodeToString(b)
	}
	lt.sandboxSecret = []byte(secret)
	set := map[string]string{
		"db": o.db, "jwt-secret": o.jwtSecret, "lms-url": lmsURL, "lms-api-key": lmsKey,
		"sandbox-secret": secret, "addr": "127.0.0.1:0",
	}
	if o.paid {
		// The sandbox gateway, outside --demo (which would seed a course).
		set["payment-processors"], set["sandbox-allow-production"] = payment.SandboxName, "true"
	}
	faulty := lt.stub != nil && (o.lmsFailRate > 0 || o.lmsOutage)
	if faulty {
		set["retry-base"], set["retry-cap"] = "100ms", "1s"
	}
	if o.retryBase > 0 {
		set["retry-base"] = o.retryBase.String()
	}
	if o.retryCap > 0 {
		set["retry-cap"] = o.retryCap.String()
	}
	if o.retryAttempts > 0 {
		set["retry-attempts"] = strconv.Itoa(o.retryAttempts)
	}
	for k, v := range set {
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("in-process service: --%s: %w", k, err)
		}
	}
	// No environment: the run is configured by the flags above only.
	if err := config.Load(fs, cfg, func(string) string { return "" }); err != nil {
		return fmt.Errorf("in-process service: %w", err)
	}
	rep.Retry = &loadRetrySetup{Base: cfg.RetryBase.String(), Cap: cfg.RetryCap.String(), Attempts: cfg.RetryAttempts,
		WorkerPoll: cfg.WorkerPoll.String(), BreakerCooldown: cfg.BreakerCooldown.String()}
	if faulty {
		lt.note("in-process service uses short retry settings: --retry-base %s --retry-cap %s --retry-attempts %d (the production defaults are 2s, 1h, 48)",
			cfg.RetryBase, cfg.RetryCap, cfg.RetryAttempts)
	}

	var logw io.Writer = io.Discard
	if o.serverLog != "" {
		f, err := os.Create(o.serverLog)
		if err != nil {
			return err
		}
		lt.logFile, logw = f, f
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cfg.PublicURL = "http://" + ln.Addr().String()
	a, err := app.New(ctx, cfg, newLogger(logw))
	if err != nil {
		ln.Close()
		return err
	}
	lt.app = a
	rep.Engine = string(a.DB.Engine)
	lt.srv = &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = lt.srv.Serve(ln) }()
	// The retry worker, as `fulfill serve` runs it; refunds and the payment
	// reconciler have nothing to do with free orders, so they run only with
	// --paid (then all three, as `fulfill serve` does).
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	lt.stopWorker, lt.workerDone = stop, make(chan struct{})
	go func() {
		defer close(lt.workerDone)
		if o.paid {
			a.Run(wctx)
		} else {
			a.Worker.Run(wctx)
		}
	}()
	lt.base = "http://" + ln.Addr().String()
	return nil
}

func (lt *loadTest) teardown() {
	if lt.srv != nil {
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = lt.srv.Shutdown(shut)
		cancel()
	}
	if lt.stopWorker != nil {
		lt.stopWorker()
		<-lt.workerDone
	}
	if lt.stub != nil {
		lt.stub.Close()
		_ = lt.stubSrv.Close()
	}
	if lt.app != nil {
		lt.app.Close()
	}
	if lt.logFile != nil {
		_ = lt.logFile.Close()
	}
}

// do sends one request as the holder of token and reads the whole answer.
func (lt *loadTest) do(ctx context.Context, method, path, token string, body []byte) (int, []byte, error) {
	h := http.Header{}
	h.Set("Authorization", "JWT "+token)
	return lt.doHeader(ctx, method, path, h, body)
}

// doHeader sends one request with these headers and reads the whole answer.
func (lt *loadTest) doHeader(ctx context.Context, method, path string, h http.Header, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, lt.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := lt.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	return res.StatusCode, raw, err
}

// createCourse creates the course with a free verified seat and, with
// --paid, a paid professional seat; the learners buy the one of their kind.
func (lt *loadTest) createCourse(ctx context.Context) error {
	modes := []map[string]any{{"certificate_type": "verified", "id_verification_required": false,
		"price": "0", "currency": "USD"}}
	want := "verified"
	if lt.o.paid {
		modes = append(modes, map[string]any{"certificate_type": loadPaidCertType, "id_verification_required": true,
			"price": loadPaidPrice, "currency": loadPaidCurrency})
		want = loadPaidCertType
	}
	body, _ := json.Marshal(map[string]any{"name": "Load test " + lt.runID, "modes": modes})
	// PUT is idempotent: when the service answers 5xx (it may publish the
	// course to a flaky LMS), try again a few times.
	var status int
	var raw []byte
	var err error
	for attempt := 1; ; attempt++ {
		status, raw, err = lt.do(ctx, http.MethodPut, "/api/v2/courses/"+url.PathEscape(lt.courseI)+"/", lt.staff, body)
		retry := err == nil && status >= 500 && attempt < 20 && ctx.Err() == nil
		if !retry {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("loadtest: create course: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("loadtest: create course: HTTP %d: %s", status, snippetOf(raw))
	}
	var c struct {
		Modes []struct {
			Name            string `json:"name"`
			CertificateType string `json:"certificate_type"`
			SKU             string `json:"sku"`
			Price           string `json:"price"`
			Currency        string `json:"currency"`
		} `json:"modes"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("loadtest: create course: %w", err)
	}
	for _, m := range c.Modes {
		if m.CertificateType == want && m.SKU != "" {
			lt.sku, lt.mode = m.SKU, m.Name
			if lt.o.paid {
				if lt.price, err = money.Parse(m.Price, m.Currency); err != nil || lt.price.Minor <= 0 {
					return fmt.Errorf("loadtest: create course: the paid seat costs %q %q", m.Price, m.Currency)
				}
			}
		}
	}
	if lt.sku == "" || lt.mode == "" {
		return fmt.Errorf("loadtest: create course: no SKU for the %s mode in %s", want, snippetOf(raw))
	}
	lt.rep.SKU = lt.sku
	if lt.o.paid {
		return lt.setupPaid(ctx)
	}
	return nil
}

// applyFaults configures the in-process stand-in for the load phase.
func (lt *loadTest) applyFaults(outage bool) {
	if lt.stub == nil {
		return
	}
	f := lmstest.Faults{Latency: lt.o.lmsLatency, FailRate: lt.o.lmsFailRate, Courses: []string{lt.courseI}}
	if outage {
		f.FailRate = 1
	}
	lt.stub.SetFaults(f)
}

// run is the load phase, the settling and the verification.
func (lt *loadTest) run(ctx context.Context) error {
	o, rep := lt.o, lt.rep
	lt.applyFaults(o.lmsOutage)
	var idle float64
	if o.lmsOutage && o.lmsOutageHold > 0 {
		idle = lt.commitRate(ctx, min(o.lmsOutageHold, loadIdleWindow))
	}
	runStart := time.Now()
	lt.load(ctx)
	if o.lmsOutage && lt.stub != nil {
		rep.Outage = &loadOutageReport{RecoverySeconds: -1, IdleCommitsPerSecond: idle}
		if o.lmsOutageHold > 0 {
			fmt.Fprintf(lt.stderr, "holding the LMS outage for %s\n", o.lmsOutageHold)
			start := time.Now()
			rep.Outage.HoldCommitsPerSecond = lt.commitRate(ctx, o.lmsOutageHold)
			rep.Outage.HoldSeconds = time.Since(start).Seconds()
		}
		lt.applyFaults(false)
		healed := time.Now()
		for _, a := range lt.acked {
			if a.status != "Complete" {
				rep.Outage.NotCompleteAtHeal++
			}
		}
		fmt.Fprintf(lt.stderr, "LMS healed; waiting for %d orders to become Complete\n", rep.Outage.NotCompleteAtHeal)
		if lt.waitSettled(ctx, runStart, healed.Add(o.settle)) {
			rep.Outage.RecoverySeconds = time.Since(healed).Seconds()
		}
	}
	if ctx.Err() != nil {
		rep.Failures = append(rep.Failures, "interrupted before verification")
		return nil
	}
	lt.verify(ctx, runStart)
	lt.memory()
	return nil
}

// loadIdleWindow is how long --lms-outage-hold measures the commit rate
// before the load, with nothing waiting.
const loadIdleWindow = 10 * time.Second

// commitRate waits d (or until ctx ends) and returns the database's
// commits per second meanwhile (in-process only: it reads the store's
// counter; 0 otherwise).
func (lt *loadTest) commitRate(ctx context.Context, d time.Duration) float64 {
	if lt.app == nil {
		return 0
	}
	c0, err := lt.app.DB.Commits(ctx)
	if err != nil {
		lt.note("no commit count: %v", err)
		return 0
	}
	start := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	c1, err := lt.app.DB.Commits(ctx)
	if err != nil {
		lt.note("no commit count: %v", err)
		return 0
	}
	return float64(c1-c0) / time.Since(start).Seconds()
}

// load places orders with o.concurrency virtual learners.
func (lt *loadTest) load(ctx context.Context) {
	o, rep := lt.o, lt.rep
	lctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var (
		next, sent, acked, failed atomic.Int64
		h                         loadHist
		mu                        sync.Mutex
		lat                       []loadSample
	)
	reqBody, _ := json.Marshal(map[string]any{"products": []map[string]string{{"sku": lt.sku}}, "checkout": true})
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			lt.note("no CPU profile: %v", err)
		} else {
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	cpu0 := lt.cpuSample()
	start := time.Now()
	stopProgress := lt.progressLoop(start, &acked, &failed, &h)
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			var mine []loadSample
			var acks []loadAck
			var tally paidTally
			errs := map[string]int64{}
			statuses := map[string]int64{}
			var samples []string
			for lctx.Err() == nil {
				i := next.Add(1) - 1
				if o.orders > 0 && i >= int64(o.orders) {
					break
				}
				t0 := time.Now()
				if o.rate > 0 {
					t0 = start.Add(time.Duration(float64(i) / o.rate * float64(time.Second)))
					if d := time.Until(t0); d > 0 {
						select {
						case <-time.After(d):
						case <-lctx.Done():
						}
						if lctx.Err() != nil {
							break
						}
					}
				}
				user := fmt.Sprintf("ld%s-%d", lt.runID, i)
				tok, err := auth.Sign(o.jwtSecret, user, false, lt.tokenTTL(), time.Now())
				if err != nil {
					errs["token: "+err.Error()]++
					failed.Add(1)
					continue
				}
				sent.Add(1)
				sendAt := time.Now()
				// The requests are not cut short by the end of the run (lctx):
				// an order placed but never acknowledged would still enroll.
				var out checkoutOutcome
				if o.paid {
					out = lt.buyPaid(ctx, i, tok, lt.duplicate(i), &tally)
				} else {
					out = lt.buyFree(ctx, tok, reqBody)
				}
				d := out.done.Sub(t0)
				for _, e := range out.errs {
					errs[e.class]++
					if len(samples) < 3 {
						samples = append(samples, e.sample)
					}
				}
				if out.number == "" {
					failed.Add(1)
					continue
				}
				acked.Add(1)
				h.add(d)
				mine = append(mine, loadSample{at: t0.Sub(start), d: d, lag: max(0, sendAt.Sub(t0)), basket: out.basket, notify: out.notify})
				statuses[out.status]++
				acks = append(acks, loadAck{number: out.number, user: user, status: out.status})
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			lt.acked = append(lt.acked, acks...)
			lt.paid.merge(&tally)
			for k, v := range errs {
				rep.Errors[k] += v
			}
			for k, v := range statuses {
				rep.AnsweredStatus[k] += v
			}
			for _, s := range samples {
				if len(rep.ErrorSamples) < 10 {
					rep.ErrorSamples = append(rep.ErrorSamples, s)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	rep.CPU = lt.cpuUse(cpu0, lt.cpuSample(), elapsed)
	stopProgress()
	switch {
	case ctx.Err() != nil:
		rep.Stopped = "interrupted"
	case o.orders > 0 && next.Load() >= int64(o.orders):
		rep.Stopped = "orders"
	default:
		rep.Stopped = "duration"
	}
	rep.Sent, rep.Acknowledged = sent.Load(), acked.Load()
	rep.ElapsedSeconds = elapsed.Seconds()
	all := make([]time.Duration, 0, len(lat))
	var steady []time.Duration
	var steadySamples []loadSample
	for _, x := range lat {
		all = append(all, x.d)
		if x.at >= o.warmup {
			steady = append(steady, x.d)
			steadySamples = append(steadySamples, x)
		}
	}
	if o.warmup <= 0 || elapsed <= o.warmup {
		steadySamples = lat
	}
	picked := next.Load()
	if o.orders > 0 {
		picked = min(picked, int64(o.orders))
	}
	lt.openLoop(steadySamples, elapsed, picked)
	if o.paid {
		lt.paidLatency(steadySamples)
	}
	if elapsed > 0 {
		rep.OrdersPerSec = float64(len(all)) / elapsed.Seconds()
	}
	rep.Latency = summarize(all)
	if o.warmup > 0 && elapsed > o.warmup {
		rep.WarmupSeconds = o.warmup.Seconds()
		everything := rep.Latency
		rep.OrdersPerSecAll, rep.LatencyAll = rep.OrdersPerSec, &everything
		rep.OrdersPerSec = float64(len(steady)) / (elapsed - o.warmup).Seconds()
		rep.Latency = summarize(steady)
	}
}

// loadSample is one acknowledged order: when it started (from the start
// of the run; with --rate, when it was due) and how long it took; with
// --rate, how late it was sent (lag, included in d); with --paid, the two
// requests it took (basket and accept, their sum is d-lag).
type loadSample struct{ at, d, lag, basket, notify time.Duration }

// progressLoop prints one refreshing line on stderr until stopped.
func (lt *loadTest) progressLoop(start time.Time, acked, failed *atomic.Int64, h *loadHist) func() {
	if lt.o.progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(lt.o.progress)
		defer t.Stop()
		var prev [loadHistBuckets]int64
		prevN, prevT := int64(0), start
		for {
			select {
			case <-done:
				fmt.Fprintln(lt.stderr)
				return
			case now := <-t.C:
				var cur [loadHistBuckets]int64
				h.snapshot(&cur)
				var win [loadHistBuckets]int64
				for i := range cur {
					win[i] = cur[i] - prev[i]
				}
				prev = cur
				n := acked.Load()
				rate := float64(n-prevN) / now.Sub(prevT).Seconds()
				prevN, prevT = n, now
				fmt.Fprintf(lt.stderr, "\r%6.1fs  %8d orders  %7.0f orders/s  errors %-5d  p50 %-8s p99 %-8s",
					now.Sub(start).Seconds(), n, rate, failed.Load(), fmtMS(histQuantile(&win, 0.50)), fmtMS(histQuantile(&win, 0.99)))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// checkoutOutcome is what one learner's checkout led to: the order (none
// when it failed) and the errors met on the way.
type checkoutOutcome struct {
	number, status string // the order acknowledged, and its status as answered
	done           time.Time
	basket, notify time.Duration // --paid: the basket request; the accept notification, with redeliveries
	errs           []loadError
}

type loadError struct{ class, sample string }

func newLoadError(class string, raw []byte, err error) loadError {
	if err != nil {
		return loadError{class, class + ": " + err.Error()}
	}
	return loadError{class, class + ": " + snippetOf(raw)}
}

// buyFree is one free checkout: POST /api/v2/baskets/.
func (lt *loadTest) buyFree(ctx context.Context, tok string, body []byte) checkoutOutcome {
	status, raw, err := lt.do(ctx, http.MethodPost, "/api/v2/baskets/", tok, body)
	out := checkoutOutcome{done: time.Now()}
	class, number, ostatus := classifyCheckout(status, raw, err)
	if class != "" {
		out.errs = append(out.errs, newLoadError(class, raw, err))
		return out
	}
	out.number, out.status = number, ostatus
	return out
}

// classifyCheckout returns "" and the order for an acknowledged checkout,
// else the error class.
func classifyCheckout(status int, raw []byte, err error) (class, number, orderStatus string) {
	if err != nil {
		return "transport: " + transportKind(err), "", ""
	}
	if status != http.StatusOK {
		return fmt.Sprintf("HTTP %d", status), "", ""
	}
	var v struct {
		Order *struct {
			Number string `json:"number"`
			Status string `json:"status"`
		} `json:"order"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return "HTTP 200 with an undecodable body", "", ""
	}
	if v.Order == nil || v.Order.Number == "" {
		return "HTTP 200 without an order", "", ""
	}
	return "", v.Order.Number, v.Order.Status
}

func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no local port available"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}

// waitSettled polls the order list (cheap, one page of one order) until no
// order placed since since is Open or in a retryable Fulfillment Error, or
// until deadline. It reports whether the orders settled.
func (lt *loadTest) waitSettled(ctx context.Context, since, deadline time.Time) bool {
	after := url.QueryEscape(since.UTC().Format(time.RFC3339Nano))
	queries := []string{
		"/api/v2/orders/?page_size=1&status=Open&placed_after=" + after,
		"/api/v2/orders/?page_size=1&status=" + url.QueryEscape("Fulfillment Error") + "&needs_attention=false&placed_after=" + after,
	}
	for {
		pending := false
		for _, q := range queries {
			status, raw, err := lt.do(ctx, http.MethodGet, q, lt.staff, nil)
			var page struct {
				Results []json.RawMessage `json:"results"`
			}
			if err != nil || status != http.StatusOK || json.Unmarshal(raw, &page) != nil || len(page.Results) > 0 {
				pending = true
				break
			}
		}
		if !pending {
			return true
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// verify waits for the acknowledged orders to settle, checks each one, and
// checks the LMS.
func (lt *loadTest) verify(ctx context.Context, runStart time.Time) {
	o, rep := lt.o, lt.rep
	settleStart := time.Now()
	deadline := settleStart.Add(o.settle)
	if len(lt.acked) > 0 {
		lt.waitSettled(ctx, runStart, deadline)
	}
	if o.paid {
		lt.waitPayments(ctx, deadline)
	}
	pending := slices.Clone(lt.acked)
	var final map[string]orderCheck
	for {
		res := lt.checkOrders(ctx, pending)
		if final == nil {
			final = map[string]orderCheck{}
		}
		var still []loadAck
		for _, a := range pending {
			c := res[a.number]
			final[a.number] = c
			if c.status != "Complete" && c.err == "" && c.status != "" && !c.attention {
				still = append(still, a)
			}
		}
		pending = still
		if len(pending) == 0 || ctx.Err() != nil || !time.Now().Before(deadline) {
			break
		}
		fmt.Fprintf(lt.stderr, "\rsettling: %d orders not Complete yet   ", len(pending))
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	s := &rep.Settle
	s.WaitedSeconds = time.Since(settleStart).Seconds()
	s.NotComplete = map[string]int{}
	s.Attempts = map[string]int64{}
	for _, a := range lt.acked {
		c := final[a.number]
		s.Checked++
		switch {
		case c.err != "":
			s.CheckErrors++
			if len(s.Samples) < 5 {
				s.Samples = append(s.Samples, a.number+": "+c.err)
			}
		case c.missing:
			s.Missing++
			if len(s.Samples) < 5 {
				s.Samples = append(s.Samples, a.number+": not found")
			}
		case c.status == "Complete":
			s.Complete++
		default:
			s.NotComplete[c.status]++
			if len(s.Samples) < 5 {
				s.Samples = append(s.Samples, fmt.Sprintf("%s: %s %s", a.number, c.status, c.lastError))
			}
		}
		if c.attention {
			s.NeedsAttention++
		}
		if c.status != "" {
			s.Attempts[strconv.Itoa(c.attempts)]++
		}
	}
	if len(s.NotComplete) == 0 {
		s.NotComplete = nil
	}
	lt.checkLMS(ctx)

	acked := int(rep.Acknowledged)
	fail := func(format string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...)) }
	if acked == 0 {
		fail("no order was acknowledged")
	}
	if s.Complete != acked {
		fail("%d of %d acknowledged orders are Complete (not complete: %v, missing %d, check errors %d) after %.1fs",
			s.Complete, acked, s.NotComplete, s.Missing, s.CheckErrors, s.WaitedSeconds)
	}
	c := rep.LMSCheck
	switch c.Method {
	case "in-process":
		if c.Activations != acked {
			fail("the LMS stand-in counted %d activations for %d acknowledged orders", c.Activations, acked)
		}
		if c.ActiveEnrollments != acked {
			fail("the LMS stand-in holds %d active enrollments for %d acknowledged orders", c.ActiveEnrollments, acked)
		}
		if c.Active != acked {
			fail("%d of %d learners are actively enrolled in the LMS stand-in", c.Active, acked)
		}
	case "remote":
		if c.Active != acked {
			fail("%d of %d learners are actively enrolled at %s (not active %d, errors %d)", c.Active, acked, lt.o.lmsURL, c.NotActive, c.Errors)
		}
	}
	if o.paid {
		lt.verifyLedger(ctx, runStart, fail)
	}
	rep.Verified = len(rep.Failures) == 0
}

type orderCheck struct {
	status, lastError string
	attempts          int
	attention         bool
	missing           bool
	err               string
}

// checkOrders GETs each order as staff.
func (lt *loadTest) checkOrders(ctx context.Context, acks []loadAck) map[string]orderCheck {
	out := make(map[string]orderCheck, len(acks))
	var mu sync.Mutex
	work := make(chan loadAck)
	var wg sync.WaitGroup
	for range min(loadVerifyWorkers, max(1, len(acks))) {
		wg.Go(func() {
			for a := range work {
				c := lt.checkOrder(ctx, a)
				mu.Lock()
				out[a.number] = c
				mu.Unlock()
			}
		})
	}
	for _, a := range acks {
		if ctx.Err() != nil {
			break
		}
		work <- a
	}
	close(work)
	wg.Wait()
	return out
}

func (lt *loadTest) checkOrder(ctx context.Context, a loadAck) orderCheck {
	var c orderCheck
	status, raw, err := lt.do(ctx, http.MethodGet, "/api/v2/orders/"+url.PathEscape(a.number)+"/", lt.staff, nil)
	switch {
	case err != nil:
		c.err = err.Error()
		return c
	case status == http.StatusNotFound:
		c.missing = true
		return c
	case status != http.StatusOK:
		c.err = fmt.Sprintf("HTTP %d: %s", status, snippetOf(raw))
		return c
	}
	var v struct {
		Status         string `json:"status"`
		NeedsAttention bool   `json:"needs_attention"`
		LastError      string `json:"last_error"`
		User           struct {
			Username string `json:"username"`
		} `json:"user"`
		Lines []struct {
			Status   string `json:"status"`
			SKU      string `json:"sku"`
			Attempts int    `json:"fulfillment_attempts"`
		} `json:"lines"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		c.err = "undecodable order: " + err.Error()
		return c
	}
	c.status, c.attention, c.lastError = v.Status, v.NeedsAttention, v.LastError
	for _, l := range v.Lines {
		c.attempts += l.Attempts
	}
	switch {
	case v.User.Username != a.user:
		c.err = fmt.Sprintf("order belongs to %q, not %q", v.User.Username, a.user)
	case len(v.Lines) != 1 || v.Lines[0].SKU != lt.sku:
		c.err = fmt.Sprintf("order has %d lines, want one of SKU %s", len(v.Lines), lt.sku)
	case v.Status == "Complete" && v.Lines[0].Status != "Complete":
		c.err = "order is Complete but its line is " + v.Lines[0].Status
	}
	return c
}

// checkLMS checks one active enrollment per acknowledged order.
func (lt *loadTest) checkLMS(ctx context.Context) {
	c := &lt.rep.LMSCheck
	switch {
	case lt.stub != nil:
		c.Method = "in-process"
		st := lt.stub.Stats()
		c.Activations = st.Activations
		c.ActiveEnrollments = lt.stub.ActiveEnrollments()
		for _, a := range lt.acked {
			c.Checked++
			if e, ok := lt.stub.Enrollment(a.user, lt.courseI); ok && e.IsActive && e.Mode == lt.mode {
				c.Active++
			} else {
				c.NotActive++
			}
		}
	case lt.lmsClient != nil:
		c.Method = "remote"
		var mu sync.Mutex
		work := make(chan loadAck)
		var wg sync.WaitGroup
		for range min(loadLMSCheckers, max(1, len(lt.acked))) {
			wg.Go(func() {
				for a := range work {
					e, err := lt.lmsClient.GetEnrollment(ctx, a.user, lt.courseI)
					mu.Lock()
					c.Checked++
					switch {
					case errors.Is(err, lms.ErrNotFound):
						c.NotActive++
					case err != nil:
						c.Errors++
					case e.IsActive && e.Mode == lt.mode:
						c.Active++
					default:
						c.NotActive++
					}
					mu.Unlock()
				}
			})
		}
		for _, a := range lt.acked {
			if ctx.Err() != nil {
				break
			}
			work <- a
		}
		close(work)
		wg.Wait()
	default:
		c.Method = "skipped"
	}
}

type cpuSample struct {
	machineBusy float64             // seconds
	steal       float64             // seconds
	procs       map[int]procCPUTime // every process
	ok          bool
}

type procCPUTime struct {
	comm string
	sec  float64
}

func (lt *loadTest) cpuSample() cpuSample {
	var s cpuSample
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return s
	}
	var total, idle float64
	for i, x := range f[1:] {
		v, _ := strconv.ParseFloat(x, 64)
		if i >= 8 { // guest time is already counted in user time
			break
		}
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
		if i == 7 {
			s.steal = v / 100
		}
	}
	const hz = 100 // USER_HZ
	s.machineBusy = (total - idle) / hz
	s.procs = map[int]procCPUTime{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, sec, ok := procCPU(pid); ok {
			s.procs[pid] = procCPUTime{comm, sec}
		}
	}
	s.ok = true
	return s
}

// procCPU returns the command name and user+system CPU seconds of a
// process, with those of its children that exited (and were waited for):
// PostgreSQL's postmaster thus counts the backends of connections closed
// during the run, which no sample sees alive.
func procCPU(pid int) (string, float64, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	open, i := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || i < open {
		return "", 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 15 {
		return "", 0, false
	}
	var sec float64
	for _, x := range f[11:15] { // utime, stime, cutime, cstime
		v, _ := strconv.ParseFloat(x, 64)
		sec += v
	}
	return string(raw[open+1 : i]), sec / 100, true
}

// cpuUse splits the machine's CPU use between b and a: this process, the
// service (--server-pid), PostgreSQL, other fulfill processes (an LMS
// stand-in) and everything else.
func (lt *loadTest) cpuUse(a, b cpuSample, d time.Duration) *loadCPU {
	if !a.ok || !b.ok || d <= 0 {
		return nil
	}
	sec := d.Seconds()
	c := &loadCPU{Cores: runtime.NumCPU(), Machine: (b.machineBusy - a.machineBusy) / sec, Steal: (b.steal - a.steal) / sec}
	self := os.Getpid()
	for pid, p := range b.procs {
		used := p.sec - a.procs[pid].sec // a process started since counts whole
		if q, ok := a.procs[pid]; ok && q.comm != p.comm {
			used = p.sec
		}
		used /= sec
		switch {
		case pid == self:
			c.ThisProcess += used
		case pid == lt.o.serverPID:
			c.ServiceProcess += used
		case p.comm == "postgres":
			c.Postgres += used
		case p.comm == "fulfill":
			c.OtherFulfill += used
		}
	}
	c.Others = max(0, c.Machine-c.ThisProcess-c.ServiceProcess-c.Postgres-c.OtherFulfill)
	round := func(x *float64) { *x = math.Round(*x*100) / 100 }
	c.Others = max(0, c.Others-c.Steal)
	for _, x := range []*float64{&c.Machine, &c.Steal, &c.ThisProcess, &c.ServiceProcess, &c.Postgres, &c.OtherFulfill, &c.Others} {
		round(x)
	}
	return c
}

// memory reads the peak RSS of the service process.
func (lt *loadTest) memory() {
	pid, of := lt.o.serverPID, ""
	switch {
	case pid > 0:
		of = fmt.Sprintf("service (pid %d)", pid)
	case lt.app != nil:
		pid, of = os.Getpid(), "this process: in-process service, LMS stand-in and load generator together"
	default:
		return
	}
	hwm, rss, err := procMemory(pid)
	if err != nil {
		lt.note("cannot read the memory of pid %d: %v", pid, err)
		return
	}
	lt.rep.Memory = &loadMemory{Of: of, VmHWMMB: hwm, VmRSSMB: rss}
}

// procMemory returns VmHWM and VmRSS in MB (2^20 bytes) from /proc.
func procMemory(pid int) (hwm, rss float64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 1 {
			continue
		}
		kb, perr := strconv.ParseFloat(f[0], 64)
		if perr != nil {
			continue
		}
		switch k {
		case "VmHWM":
			hwm = kb / 1024
		case "VmRSS":
			rss = kb / 1024
		}
	}
	if hwm == 0 {
		return 0, 0, errors.New("no VmHWM in /proc status")
	}
	return hwm, rss, nil
}

func printLoadReport(w io.Writer, r *loadReport) {
	fmt.Fprintf(w, "\nfulfill loadtest (%s) %s", r.Mode, r.URL)
	if r.Engine != "" {
		fmt.Fprintf(w, " on %s", r.Engine)
	}
	fmt.Fprintf(w, "\n  course %s, SKU %s, %d learners at once", r.CourseID, r.SKU, r.Concurrency)
	if r.TargetRate > 0 {
		fmt.Fprintf(w, ", target %.0f orders/s", r.TargetRate)
	}
	fmt.Fprintf(w, "\n  LMS: %s", r.LMS.Source)
	if r.LMS.URL != "" {
		fmt.Fprintf(w, " %s", r.LMS.URL)
	}
	fmt.Fprintf(w, ", latency %.0f ms, fail rate %.0f %%", r.LMS.LatencyMS, r.LMS.FailRate*100)
	if r.LMS.Outage {
		fmt.Fprint(w, ", outage during the load phase")
	}
	fmt.Fprintln(w)
	if r.Retry != nil {
		fmt.Fprintf(w, "  retries: base %s, cap %s, %d attempts, worker poll %s, breaker cooldown %s\n",
			r.Retry.Base, r.Retry.Cap, r.Retry.Attempts, r.Retry.WorkerPoll, r.Retry.BreakerCooldown)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	fmt.Fprintf(w, "\nLoad (stopped by %s)\n", r.Stopped)
	if r.LatencyAll != nil {
		a := r.LatencyAll
		fmt.Fprintf(w, "  sent %d, acknowledged %d in %.2fs: %.1f orders/s; latency (ms) p50 %.2f  p99 %.2f  max %.2f\n",
			r.Sent, r.Acknowledged, r.ElapsedSeconds, r.OrdersPerSecAll, a.P50, a.P99, a.Max)
		fmt.Fprintf(w, "  after the %.1fs warm-up: %.1f orders/s\n", r.WarmupSeconds, r.OrdersPerSec)
	} else {
		fmt.Fprintf(w, "  sent %d, acknowledged %d in %.2fs: %.1f orders/s\n", r.Sent, r.Acknowledged, r.ElapsedSeconds, r.OrdersPerSec)
	}
	what := "acknowledged orders"
	if r.Paid != nil {
		what = "acknowledged paid checkouts, basket + accept notification"
	}
	fmt.Fprintf(w, "  latency of %s (ms): p50 %.2f  p95 %.2f  p99 %.2f  max %.2f  mean %.2f\n",
		what, r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.Max, r.Latency.Mean)
	if p := r.Paid; p != nil {
		fmt.Fprintf(w, "    basket POST (ms):         p50 %.2f  p95 %.2f  p99 %.2f  max %.2f  mean %.2f\n",
			p.Basket.P50, p.Basket.P95, p.Basket.P99, p.Basket.Max, p.Basket.Mean)
		fmt.Fprintf(w, "    accept notification (ms): p50 %.2f  p95 %.2f  p99 %.2f  max %.2f  mean %.2f\n",
			p.Notify.P50, p.Notify.P95, p.Notify.P99, p.Notify.Max, p.Notify.Mean)
	}
	printOpenLoop(w, r)
	fmt.Fprintf(w, "  answered: %s\n", fmtCounts(r.AnsweredStatus))
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "  errors: none")
	} else {
		fmt.Fprintf(w, "  errors: %s\n", fmtCounts(r.Errors))
		for _, s := range r.ErrorSamples {
			fmt.Fprintf(w, "    e.g. %s\n", s)
		}
	}
	if r.Outage != nil {
		if r.Outage.HoldSeconds > 0 {
			fmt.Fprintf(w, "\nOutage held %.0fs after the last order: %.2f database commits/s meanwhile (%.2f/s idle before the load)\n",
				r.Outage.HoldSeconds, r.Outage.HoldCommitsPerSecond, r.Outage.IdleCommitsPerSecond)
		}
		if r.Outage.RecoverySeconds >= 0 {
			fmt.Fprintf(w, "\nOutage: %d orders not Complete when the LMS healed; all Complete %.2fs after healing\n",
				r.Outage.NotCompleteAtHeal, r.Outage.RecoverySeconds)
		} else {
			fmt.Fprintf(w, "\nOutage: %d orders not Complete when the LMS healed; NOT all Complete within --settle\n", r.Outage.NotCompleteAtHeal)
		}
	}
	s := r.Settle
	fmt.Fprintf(w, "\nVerification (waited %.2fs)\n", s.WaitedSeconds)
	fmt.Fprintf(w, "  orders: %d checked, %d Complete", s.Checked, s.Complete)
	if len(s.NotComplete) > 0 {
		fmt.Fprintf(w, ", not complete %v", s.NotComplete)
	}
	fmt.Fprintf(w, ", %d missing, %d check errors, %d need attention\n", s.Missing, s.CheckErrors, s.NeedsAttention)
	if len(s.Attempts) > 0 {
		keys := make([]string, 0, len(s.Attempts))
		for k := range s.Attempts {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { a, _ := strconv.Atoi(keys[i]); b, _ := strconv.Atoi(keys[j]); return a < b })
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %d", k, s.Attempts[k]))
		}
		fmt.Fprintf(w, "  LMS attempts per order: %s\n", strings.Join(parts, ", "))
	}
	for _, x := range s.Samples {
		fmt.Fprintf(w, "    e.g. %s\n", x)
	}
	c := r.LMSCheck
	switch c.Method {
	case "in-process":
		fmt.Fprintf(w, "  LMS stand-in: %d activations, %d active enrollments; %d of %d learners actively enrolled\n",
			c.Activations, c.ActiveEnrollments, c.Active, c.Checked)
	case "remote":
		fmt.Fprintf(w, "  LMS: %d of %d learners actively enrolled (%d not active, %d errors)\n", c.Active, c.Checked, c.NotActive, c.Errors)
	default:
		fmt.Fprintln(w, "  LMS: not checked (give --lms-url to check a remote LMS)")
	}
	if c := r.CPU; c != nil {
		fmt.Fprintf(w, "  CPU during the load (cores of %d): machine %.2f, this process %.2f", c.Cores, c.Machine, c.ThisProcess)
		if c.ServiceProcess > 0 {
			fmt.Fprintf(w, ", service %.2f", c.ServiceProcess)
		}
		fmt.Fprintf(w, ", PostgreSQL %.2f, other fulfill processes %.2f, everything else %.2f, stolen by the hypervisor %.2f\n",
			c.Postgres, c.OtherFulfill, c.Others, c.Steal)
	}
	if r.Memory != nil {
		fmt.Fprintf(w, "  memory of %s: peak RSS (VmHWM) %.1f MB, RSS now %.1f MB\n", r.Memory.Of, r.Memory.VmHWMMB, r.Memory.VmRSSMB)
	}
	printPaid(w, r.Paid)
	switch {
	case r.Verified && r.Paid != nil:
		fmt.Fprintln(w, "\nVERIFIED: every acknowledged order is Complete and enrolled once; the payments balance "+
			"(accepted = orders + refunds) and none is left received or needing attention")
	case r.Verified:
		fmt.Fprintln(w, "\nVERIFIED: every acknowledged order is Complete and enrolled once")
	default:
		fmt.Fprintln(w, "\nVERIFICATION FAILED:")
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  - %s\n", f)
		}
	}
}

func fmtCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func snippetOf(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMS(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return strconv.FormatFloat(ms(d), 'f', 1, 64) + "ms"
}

// summarize computes exact percentiles (nearest rank).
func summarize(lat []time.Duration) loadLatency {
	if len(lat) == 0 {
		return loadLatency{}
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		return ms(lat[min(max(i, 0), len(lat)-1)])
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return loadLatency{Count: len(lat), Mean: ms(sum / time.Duration(len(lat))), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(lat[len(lat)-1])}
}

// loadHist is a concurrent log-linear histogram of microseconds (about 3 %
// precision) for the progress line.
const (
	loadHistSub     = 32
	loadHistBuckets = 40 * loadHistSub
)

type loadHist struct{ b [loadHistBuckets]atomic.Int64 }

func loadHistIndex(us int64) int {
	if us < loadHistSub {
		return int(max(us, 0))
	}
	k := bits.Len64(uint64(us)) - 1 // us in [2^k, 2^(k+1)), k ≥ 5
	shift := k - 5
	i := (k-4)*loadHistSub + int(us>>shift) - loadHistSub
	return min(i, loadHistBuckets-1)
}

func loadHistValue(i int) int64 {
	if i < loadHistSub {
		return int64(i)
	}
	g := i / loadHistSub
	return int64(i%loadHistSub+loadHistSub) << (g - 1)
}

func (h *loadHist) add(d time.Duration) { h.b[loadHistIndex(d.Microseconds())].Add(1) }

func (h *loadHist) snapshot(out *[loadHistBuckets]int64) {
	for i := range h.b {
		out[i] = h.b[i].Load()
	}
}

func histQuantile(c *[loadHistBuckets]int64, q float64) time.Duration {
	var n int64
	for _, v := range c {
		n += v
	}
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var cum int64
	for i, v := range c {
		cum += v
		if cum >= rank {
			return time.Duration(loadHistValue(i)) * time.Microsecond
		}
	}
	return 0
}
