// Package config reads fulfill's settings: command-line flags, then
// FULFILL_<FLAG> environment variables, then a YAML file (--config), then
// defaults. Nothing is global; run builds one Config and passes it down.
package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"fulfill/internal/catalog"
)

// Config is every setting of the service.
type Config struct {
	Addr      string
	DB        string
	LMSURL    string
	LMSAPIKey string
	JWTSecret string
	Partner   string
	File      string
	Demo      bool

	// LMSOAuthURL, LMSOAuthClientID and LMSOAuthClientSecret are the
	// OAuth2 client whose client-credentials JWT authenticates the LMS's
	// commerce, credit and entitlements APIs; without a client those get
	// X-Edx-Api-Key. The URL defaults to {lms-url}/oauth2/access_token.
	LMSOAuthURL          string
	LMSOAuthClientID     string
	LMSOAuthClientSecret string

	// JWTJWKSet is the LMS's public JWK set (JSON), which verifies
	// RS256/384/512 and ES256 tokens, such as its RS512 JWT cookie pair.
	JWTJWKSet string
	// JWTIssuers, when set, lists the accepted iss values (comma-separated).
	JWTIssuers string
	// JWTAudience, when set, must match the tokens' aud.
	JWTAudience string
	// JWTMaxLifetime refuses tokens with iat whose exp is further away.
	JWTMaxLifetime time.Duration

	LMSTimeout       time.Duration
	RetryBase        time.Duration
	RetryCap         time.Duration
	RetryAttempts    int
	Lease            time.Duration
	WorkerPoll       time.Duration
	BreakerThreshold int
	BreakerCooldown  time.Duration
	PublicURL        string
	Processors       string
	// DefaultProcessor pays a basket whose buyer names no processor (the
	// LMS may send payment_processor_name null); "" is the first of
	// Processors.
	DefaultProcessor string
	SandboxSecret    string
	StripeKey        string
	StripeWebhook    string
	StripeBackend    string
	LMSLoginURL      string
	LMSRegisterURL   string
	LMSDashboardURL  string
	SoldCourses      string
	UnsoldSKUs       string
	ServiceUsers     string
	WebhookURL       string
	WebhookSecret    string
	PublishCourses   bool
	DashboardPage    int
	RetryAfterMax    time.Duration
	// DBMaxOpenConns and DBMaxIdleConns bound a PostgreSQL pool per
	// process (0: the store's defaults, 40 and 40).
	DBMaxOpenConns, DBMaxIdleConns int
	// SQLiteSynchronous is SQLite's synchronous setting, normal or full
	// ("" keeps the URL's, default normal).
	SQLiteSynchronous string
	// SandboxAllowProduction lets the sandbox processor (anyone with its
	// secret can pay) run outside --demo.
	SandboxAllowProduction bool
	// Server timeouts of the HTTP listener.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// NoLMS is set when --lms-url was given empty on purpose: the service
	// runs, and seats cannot be fulfilled (they wait, flagged).
	NoLMS bool
	// Modules maps product classes to fulfillment module names.
	Modules map[catalog.Class]string
}

// Flags registers the serve settings on fs and returns the config they fill.
func Flags(fs *flag.FlagSet) *Config {
	c := &Config{Modules: map[catalog.Class]string{
		catalog.ClassSeat:              "enrollment",
		catalog.ClassEnrollmentCode:    "enrollment_code",
		catalog.ClassCourseEntitlement: "entitlement",
	}}
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.DB, "db", "sqlite:fulfill.db", "database: sqlite:PATH or postgres://…")
	fs.StringVar(&c.LMSURL, "lms-url", "", "LMS root URL (Enrollment API)")
	fs.StringVar(&c.LMSAPIKey, "lms-api-key", "", "LMS server-to-server key (X-Edx-Api-Key)")
	fs.StringVar(&c.LMSOAuthURL, "lms-oauth-url", "", "LMS OAuth2 token endpoint (default {lms-url}/oauth2/access_token)")
	fs.StringVar(&c.LMSOAuthClientID, "lms-oauth-client-id", "", "OAuth2 client id for the LMS commerce, credit and entitlements APIs (empty: they get X-Edx-Api-Key)")
	fs.StringVar(&c.LMSOAuthClientSecret, "lms-oauth-client-secret", "", "OAuth2 client secret of --lms-oauth-client-id")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 secret of the JWTs")
	fs.StringVar(&c.JWTJWKSet, "jwt-public-signing-jwk-set", "", "the LMS's public JWK set (JSON, JWT_PUBLIC_SIGNING_JWK_SET): verifies RS256/RS384/RS512/ES256 tokens by kid")
	fs.StringVar(&c.JWTIssuers, "jwt-issuers", "", "accepted JWT issuers (iss), comma-separated (empty: any)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", "", "required JWT audience (aud) (empty: any)")
	fs.DurationVar(&c.JWTMaxLifetime, "jwt-max-lifetime", 24*time.Hour, "refuse JWTs whose exp is further than this from their iat (0: no bound)")
	fs.StringVar(&c.Partner, "partner", "EDX", "partner short code, the order-number prefix")
	fs.StringVar(&c.File, "config", "", "YAML file with more settings (flag names as keys, and modules:)")
	fs.BoolVar(&c.Demo, "demo", false, "seed a demo course and, without --lms-url, run the LMS stand-in in-process")
	fs.DurationVar(&c.LMSTimeout, "lms-timeout", 7*time.Second, "timeout of one LMS call")
	fs.DurationVar(&c.RetryBase, "retry-base", 2*time.Second, "delay after the first failed attempt")
	fs.DurationVar(&c.RetryCap, "retry-cap", time.Hour, "longest delay between attempts")
	fs.IntVar(&c.RetryAttempts, "retry-attempts", 48, "attempts per line before it is flagged (the default spans more than a day)")
	fs.DurationVar(&c.Lease, "lease", 30*time.Second, "how long one actor holds a line; must exceed --lms-timeout")
	fs.DurationVar(&c.WorkerPoll, "worker-poll", 250*time.Millisecond, "pause of the retry worker when nothing is due")
	fs.IntVar(&c.BreakerThreshold, "breaker-threshold", 20, "failures in a row that open a module's circuit breaker")
	fs.DurationVar(&c.BreakerCooldown, "breaker-cooldown", 5*time.Second, "how long an open breaker waits before probing")
	fs.StringVar(&c.PublicURL, "public-url", "", "the service's public base URL, for payment pages (default http://<addr>)")
	fs.StringVar(&c.Processors, "payment-processors", "", "enabled payment processors, comma-separated: sandbox, stripe (default: none; sandbox in --demo)")
	fs.StringVar(&c.DefaultProcessor, "default-payment-processor", "", "the processor that pays a basket bought without payment_processor_name (default: the first of --payment-processors)")
	fs.StringVar(&c.SandboxSecret, "sandbox-secret", "", "HMAC secret of the sandbox processor's notifications")
	fs.StringVar(&c.StripeKey, "stripe-secret-key", "", "Stripe secret API key")
	fs.StringVar(&c.StripeWebhook, "stripe-webhook-secret", "", "Stripe webhook signing secret")
	fs.StringVar(&c.StripeBackend, "stripe-backend-url", "", "Stripe API base URL (default Stripe's; stripe-mock in tests)")
	fs.StringVar(&c.LMSLoginURL, "lms-login-url", "", "where signed-out learners sign in (default: the demo form, or {lms-url}/login)")
	fs.StringVar(&c.LMSRegisterURL, "lms-register-url", "", "where new learners register (default: the demo form, or {lms-url}/register)")
	fs.StringVar(&c.LMSDashboardURL, "lms-dashboard-url", "", "the learner's LMS dashboard, linked from the receipt (default {lms-url}/dashboard)")
	fs.StringVar(&c.SoldCourses, "sold-courses", "", "incremental rollout: only these course ids are sold here (comma-separated; empty: all)")
	fs.StringVar(&c.UnsoldSKUs, "unsold-skus", "", "incremental rollout: SKUs not sold here (comma-separated)")
	fs.StringVar(&c.ServiceUsers, "service-users", "", "usernames allowed to act for other users (comma-separated), besides staff")
	fs.StringVar(&c.WebhookURL, "webhook-url", "", "URL the webhook fulfillment module posts lines to")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", "", "HMAC-SHA256 secret signing the webhook module's requests")
	fs.BoolVar(&c.PublishCourses, "publish-courses", true, "publish course modes and SKUs to the LMS when a course is saved")
	fs.IntVar(&c.DashboardPage, "dashboard-page-size", 50, "orders per page of the operators' dashboard")
	fs.BoolVar(&c.SandboxAllowProduction, "sandbox-allow-production", false, "allow the sandbox payment processor outside --demo (anyone holding its secret can pay)")
	fs.IntVar(&c.DBMaxOpenConns, "db-max-open-conns", 0, "PostgreSQL: most connections this process opens (0: 40; two replicas and tools fit the default max_connections=100)")
	fs.IntVar(&c.DBMaxIdleConns, "db-max-idle-conns", 0, "PostgreSQL: idle connections kept (0: as many as open)")
	fs.StringVar(&c.SQLiteSynchronous, "sqlite-synchronous", "", "SQLite: normal (default; a commit survives a crash of the process, the last ones may be lost if the machine loses power) or full (an fsync per group commit: survives power loss)")
	fs.DurationVar(&c.RetryAfterMax, "retry-after-max", time.Hour, "longest LMS Retry-After obeyed; beyond it a line is retried after this")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "HTTP server: time to read a request's headers")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 30*time.Second, "HTTP server: time to read a whole request")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 60*time.Second, "HTTP server: time to write an answer (must exceed --lms-timeout: checkout waits for the LMS)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 2*time.Minute, "HTTP server: how long an idle keep-alive connection stays open")
	return c
}

// Load fills unset flags from the environment and the config file, then
// validates. getenv is os.Getenv in production.
func Load(fs *flag.FlagSet, c *Config, getenv func(string) string) error {
	// Flags given on the command line win over the environment, which wins
	// over the file: the file only fills what neither set.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["lms-url"] && c.LMSURL == "" {
		c.NoLMS = true // asked for on purpose
	}
	if err := LoadEnv(fs, getenv); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || getenv(EnvName(f.Name)) != "" {
			set[f.Name] = true
		}
	})
	if c.File != "" {
		if err := c.readFile(fs, set); err != nil {
			return err
		}
	}
	return c.Validate()
}

// LoadEnv sets every flag of fs not given on the command line from its
// FULFILL_<FLAG> environment variable, when set.
func LoadEnv(fs *flag.FlagSet, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := EnvName(f.Name)
		if v := getenv(env); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

// EnvName is the environment variable of a flag: FULFILL_ and the name in
// capitals with underscores.
func EnvName(flagName string) string {
	return "FULFILL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (c *Config) readFile(fs *flag.FlagSet, set map[string]bool) error {
	f, err := os.Open(c.File)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", c.File, err)
	}
	for k, v := range doc {
		if k == "modules" {
			if err := c.readModules(v); err != nil {
				return err
			}
			continue
		}
		if fs.Lookup(k) == nil {
			return fmt.Errorf("config file: unknown setting %q", k)
		}
		if set[k] {
			continue
		}
		if err := fs.Set(k, fmt.Sprint(v)); err != nil {
			return fmt.Errorf("config file: %s: %w", k, err)
		}
	}
	return nil
}

// readModules applies the file's modules: map to the class → module
// mapping: a class named there gets that module and every other class
// keeps its default, so that mapping Donation does not silently unmap
// enrollment codes and entitlements; an empty value, "none" or no value
// (`Course Entitlement: ""`, `Course Entitlement: none`) leaves the class
// with no module, and its lines become Fulfillment Configuration Error.
func (c *Config) readModules(v any) error {
	m, ok := v.(map[string]any)
	if v != nil && !ok {
		return fmt.Errorf("config file: modules must map product classes to module names")
	}
	out := make(map[catalog.Class]string, len(c.Modules)+len(m))
	for class, name := range c.Modules {
		out[class] = name
	}
	classes := catalog.ClassDefs()
	for class, name := range m {
		if _, known := classes[catalog.Class(class)]; !known {
			return fmt.Errorf("config file: modules: unknown product class %q", class)
		}
		switch s, isString := name.(string); {
		case name == nil, isString && (strings.TrimSpace(s) == "" || strings.EqualFold(strings.TrimSpace(s), "none")):
			delete(out, catalog.Class(class))
		case !isString:
			return fmt.Errorf("config file: modules: %s must name a module, not %v", class, name)
		default:
			out[catalog.Class(class)] = strings.TrimSpace(s)
		}
	}
	c.Modules = out
	return nil
}

// Validate checks the settings.
func (c *Config) Validate() error {
	switch {
	case c.Lease <= c.LMSTimeout:
		return fmt.Errorf("--lease (%s) must be longer than --lms-timeout (%s)", c.Lease, c.LMSTimeout)
	case c.RetryAttempts < 1:
		return fmt.Errorf("--retry-attempts must be at least 1")
	case c.RetryBase <= 0 || c.RetryCap < c.RetryBase:
		return fmt.Errorf("--retry-base must be positive and --retry-cap at least as long")
	case c.JWTSecret == "" && !c.Demo:
		return fmt.Errorf("--jwt-secret (or FULFILL_JWT_SECRET) is required outside --demo")
	case c.Partner == "":
		return fmt.Errorf("--partner must not be empty")
	case !c.Demo && !c.NoLMS && (strings.TrimSpace(c.LMSURL) == "" || strings.TrimSpace(c.LMSAPIKey) == ""):
		return fmt.Errorf("--lms-url and --lms-api-key (or FULFILL_LMS_URL, FULFILL_LMS_API_KEY) are required outside --demo; " +
			"give --lms-url '' to run without an LMS, and seats will wait unfulfilled")
	case c.WriteTimeout > 0 && c.WriteTimeout <= c.LMSTimeout:
		return fmt.Errorf("--write-timeout (%s) must be longer than --lms-timeout (%s): a checkout answers after its LMS call", c.WriteTimeout, c.LMSTimeout)
	case c.RetryAfterMax <= 0:
		return fmt.Errorf("--retry-after-max must be positive")
	}
	for _, p := range c.ProcessorNames() {
		switch {
		case p == "sandbox" && !c.Demo && !c.SandboxAllowProduction:
			return fmt.Errorf("the sandbox processor takes no real money and anyone with its secret can pay: it runs only with --demo, or with --sandbox-allow-production")
		case p == "sandbox" && c.SandboxSecret == "" && !c.Demo:
			return fmt.Errorf("the sandbox processor needs --sandbox-secret (or FULFILL_SANDBOX_SECRET)")
		case p == "stripe" && (c.StripeKey == "" || c.StripeWebhook == ""):
			return fmt.Errorf("the stripe processor needs --stripe-secret-key and --stripe-webhook-secret")
		case p != "sandbox" && p != "stripe":
			return fmt.Errorf("unknown payment processor %q", p)
		}
	}
	if d := strings.TrimSpace(c.DefaultProcessor); d != "" && !slices.Contains(c.ProcessorNames(), d) {
		return fmt.Errorf("--default-payment-processor %q is not one of the enabled processors (--payment-processors)", d)
	}
	return nil
}

// DefaultProcessorName is the processor that pays when the buyer names
// none: --default-payment-processor, else the first enabled one.
func (c Config) DefaultProcessorName() string {
	if d := strings.TrimSpace(c.DefaultProcessor); d != "" {
		return d
	}
	if names := c.ProcessorNames(); len(names) > 0 {
		return names[0]
	}
	return ""
}

// DashboardURL is the learner's LMS dashboard: --lms-dashboard-url, else
// {lms-url}/dashboard.
func (c Config) DashboardURL() string {
	if c.LMSDashboardURL != "" {
		return c.LMSDashboardURL
	}
	if c.LMSURL == "" {
		return ""
	}
	return strings.TrimRight(c.LMSURL, "/") + "/dashboard"
}

// List splits a comma-separated setting.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ProcessorNames lists the enabled payment processors; the demo has the
// sandbox unless told otherwise.
func (c Config) ProcessorNames() []string {
	if strings.TrimSpace(c.Processors) == "" && c.Demo {
		return []string{"sandbox"}
	}
	var out []string
	for _, p := range strings.Split(c.Processors, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// String prints the config with secrets masked.
func (c Config) String() string {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "****"
	}
	return fmt.Sprintf("addr=%s db=%s lms-url=%s lms-api-key=%s jwt-secret=%s partner=%s demo=%t modules=%v processors=%s sandbox-secret=%s stripe-secret-key=%s",
		c.Addr, maskURL(c.DB), c.LMSURL, mask(c.LMSAPIKey), mask(c.JWTSecret), c.Partner, c.Demo, c.Modules, c.Processors,
		mask(c.SandboxSecret), mask(c.StripeKey))
}

func maskURL(u string) string {
	at := strings.Index(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 {
		return u
	}
	if colon := strings.Index(u[scheme+3:at], ":"); colon >= 0 {
		return u[:scheme+3+colon+1] + "****" + u[at:]
	}
	return u
}
