// Package storefront is the learner's side of fulfill in the browser: the
// purchase links a marketing site or the LMS builds from SKUs
// (/basket/add/?sku=…), the basket page with "Place order" or the payment
// choices, the receipt, and sign-in. The learner's identity is the LMS's
// JWT (header or the edX JWT cookie pair); in demo mode the service offers
// its own simple sign-in and registration forms that set that cookie pair.
//
// Pages are server-rendered with html/template, need no JavaScript, and
// every unsafe method is refused when it comes from another origin
// (net/http's CrossOriginProtection).
package storefront

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"fulfill/internal/apperr"
	"fulfill/internal/auth"
	"fulfill/internal/checkout"
	"fulfill/internal/order"
)

//go:embed templates
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store is what the learner's pages need from storage.
type Store interface {
	GetOrder(ctx context.Context, number string) (order.Order, error)
	UserByName(ctx context.Context, username string) (order.User, error)
	UpsertUser(ctx context.Context, u order.User) (order.User, error)
}

// Deps are the storefront's dependencies and settings.
type Deps struct {
	Log      *slog.Logger
	Store    Store
	Verifier *auth.Verifier
	// Checkout makes the learner's baskets and orders.
	Checkout *checkout.Service
	// JWTSecret signs the tokens of the demo sign-in.
	JWTSecret string
	// Demo offers the service's own sign-in and registration forms where no
	// LMS URL for them is configured.
	Demo bool
	// LMSURL is the LMS root; the defaults of the three URLs below hang off it.
	LMSURL string
	// LoginURL is where a signed-out learner signs in (default
	// {LMSURL}/login, or the demo form in demo mode).
	LoginURL string
	// RegisterURL is where a new learner registers (default
	// {LMSURL}/register, or the demo form in demo mode).
	RegisterURL string
	// DashboardURL is the learner's LMS dashboard, linked from the receipt
	// (default {LMSURL}/dashboard).
	DashboardURL string
	// PublicURL is the service's own base URL: the LMS sends the learner
	// back to it after sign-in, and payment pages hang off it.
	PublicURL string
	// SessionTTL is how long a demo sign-in lasts (default 8h).
	SessionTTL time.Duration
	Now        func() time.Time
}

// app is the storefront's shared state: its settings, parsed pages and the
// lease-owner counter.
type app struct {
	d           Deps
	pages       map[string]*template.Template
	ownLogin    bool
	ownRegister bool
}

// New returns the storefront's handler. It panics if a template does not
// parse, which the tests catch.
func New(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.SessionTTL <= 0 {
		d.SessionTTL = 8 * time.Hour
	}
	lms := strings.TrimRight(d.LMSURL, "/")
	a := &app{d: d, ownLogin: d.Demo && d.LoginURL == "", ownRegister: d.Demo && d.RegisterURL == ""}
	if a.d.LoginURL == "" {
		a.d.LoginURL = lms + "/login"
	}
	if a.d.RegisterURL == "" {
		a.d.RegisterURL = lms + "/register"
	}
	if a.d.DashboardURL == "" {
		a.d.DashboardURL = lms + "/dashboard"
	}
	a.d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	a.pages = parsePages()

	mux := http.NewServeMux()
	addRoutes(mux, a)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.message(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site, so it was refused. Go back to the page, reload it and try again.")
	}))
	return cop.Handler(mux)
}

func addRoutes(mux *http.ServeMux, a *app) {
	mux.Handle("GET /basket/add/{$}", handleBasketAdd(a))
	mux.Handle("GET /basket/{$}", handleBasketShow(a))
	mux.Handle("POST /basket/checkout/{$}", handleCheckout(a))
	mux.Handle("POST /basket/code/{$}", handleBasketCode(a))
	mux.Handle("GET /checkout/receipt/{$}", handleReceipt(a))
	mux.Handle("GET /login", handleSignInPage(a, false))
	mux.Handle("POST /login", handleSignIn(a, false))
	mux.Handle("GET /register", handleSignInPage(a, true))
	mux.Handle("POST /register", handleSignIn(a, true))
	mux.Handle("POST /logout", handleSignOut(a))
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/storefront/", http.FileServerFS(static))
	mux.Handle("GET /static/storefront/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.message(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
	}))
}

// parsePages parses every page with the shared layout.
func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"message", "basket", "receipt", "signin"} {
		out[name] = template.Must(template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}

// page is what the layout needs of every page.
type page struct {
	Title string
	// User is the signed-in learner, nil when signed out.
	User *order.User
	// SignInURL and RegisterURL come back to the current page.
	SignInURL   string
	RegisterURL string
	// Refresh, when not 0, reloads the page every so many seconds (a
	// receipt of an order still being delivered).
	Refresh int
}

func (p *page) base() *page { return p }

type view interface{ base() *page }

// render writes a page. The page is executed into a buffer first so that a
// template error is a clean 500, never half a page.
func (a *app) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	p := v.base()
	if p.User == nil {
		if u, ok := a.user(r); ok {
			p.User = &u
		} else if p.SignInURL == "" {
			next := r.URL.RequestURI()
			if r.Method != http.MethodGet {
				next = "/basket/"
			}
			p.SignInURL, p.RegisterURL = a.signInURL(next), a.registerURL(next)
		}
	}
	var buf bytes.Buffer
	if err := a.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		a.d.Log.Error("render page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	// No form-action: the payment step redirects a form post to the
	// processor's page, which may live elsewhere.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type messageView struct {
	page
	Heading string
	Message string
	Reasons []string
	Links   []link
}

type link struct{ Text, URL string }

// message renders a page that says one thing, with an HTTP status.
func (a *app) message(w http.ResponseWriter, r *http.Request, status int, heading, msg string, reasons ...string) {
	a.render(w, r, status, "message", &messageView{page: page{Title: heading}, Heading: heading, Message: msg, Reasons: reasons})
}

// fail answers an error through the vocabulary's table in words for a
// learner. An internal error is logged with the request id, which the page
// shows so that support can find it; nothing of the error itself is shown.
func (a *app) fail(w http.ResponseWriter, r *http.Request, err error) {
	k, internal := apperr.Describe(err)
	if !internal {
		a.message(w, r, k.Status, "That did not work", k.Learner)
		return
	}
	id := apperr.RequestID(r.Context())
	a.d.Log.Error("storefront", "path", r.URL.Path, "request_id", id, "error", err)
	a.message(w, r, http.StatusInternalServerError, "Something went wrong",
		"We could not complete this request. Nothing was charged; please try again in a moment.",
		"Reference for support: "+id+".")
}

// user returns the signed-in learner from the LMS's JWT.
func (a *app) user(r *http.Request) (order.User, bool) {
	if a.d.Verifier == nil {
		return order.User{}, false
	}
	u, err := a.d.Verifier.User(auth.Token(r))
	return u, err == nil
}

// signInURL is where a signed-out learner goes to sign in, coming back to
// the local path next afterwards.
func (a *app) signInURL(next string) string {
	if a.ownLogin {
		return "/login?next=" + url.QueryEscape(next)
	}
	return withNext(a.d.LoginURL, a.d.PublicURL+next)
}

// registerURL is where a new learner registers, coming back to next.
func (a *app) registerURL(next string) string {
	if a.ownRegister {
		return "/register?next=" + url.QueryEscape(next)
	}
	return withNext(a.d.RegisterURL, a.d.PublicURL+next)
}

// withNext adds next to base's query.
func withNext(base, next string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	q.Set("next", next)
	u.RawQuery = q.Encode()
	return u.String()
}

// requireUser returns the signed-in learner, or sends the visitor to sign
// in and come back to next.
func (a *app) requireUser(w http.ResponseWriter, r *http.Request, next string) (order.User, bool) {
	u, ok := a.user(r)
	if !ok {
		code := http.StatusFound
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			code = http.StatusSeeOther
		}
		http.Redirect(w, r, a.signInURL(next), code)
	}
	return u, ok
}

// localPath reports whether next is a path on this site, and so safe to
// redirect to after sign-in: it must start with one "/", and carry no
// scheme, host, backslash or control character (browsers read "/\evil" and
// "/\t/evil" as another host).
func localPath(next string) bool {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || len(next) > 2048 {
		return false
	}
	for _, c := range []byte(next) {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(next)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

func receiptPath(number string) string {
	return "/checkout/receipt/?order_number=" + url.QueryEscape(number)
}
