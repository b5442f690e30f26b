// Package admin is the operators' dashboard: server-rendered pages under
// /dashboard/ for support staff to find failed orders, see why they failed,
// retry them, mark them complete, and refund them; a catalog page; and a
// view of the durable retry queue. Pages are html/template, styles and
// scripts are embedded (htmx 2 vendored, no build step), every action works
// as a plain form post (post, redirect, get with a flash message) and, with
// htmx, in place without reloading the page.
package admin

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"fulfill/internal/auth"
	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/order"
	"fulfill/internal/payment"
	"fulfill/internal/refund"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store is what the dashboard reads and writes.
type Store interface {
	ListOrders(ctx context.Context, f order.Filter) ([]order.Order, error)
	GetOrder(ctx context.Context, number string) (order.Order, error)
	History(ctx context.Context, orderID int64) ([]order.HistoryEntry, error)
	Attempts(ctx context.Context, orderID int64) ([]order.Attempt, error)
	PaymentEvents(ctx context.Context, orderID int64) ([]payment.Event, error)
	ListRefunds(ctx context.Context, status refund.Status, orderID, afterID int64, limit int) ([]refund.Refund, error)
	GetRefund(ctx context.Context, id int64) (refund.Refund, error)
	ListCourses(ctx context.Context) ([]catalog.Course, error)
	MarkComplete(ctx context.Context, number, actor, reason string) (order.Order, error)
	QueueStats(ctx context.Context, now time.Time) (due int64, oldest time.Duration, attention int64, err error)
	OrderCounts(ctx context.Context) (order.Counts, error)
	ScheduledLines(ctx context.Context, limit int) ([]order.ScheduledLine, error)
	ScheduledRefunds(ctx context.Context, limit int) ([]refund.Refund, error)
	ListPayments(ctx context.Context, state payment.State, afterID int64, limit int) ([]payment.Payment, error)
}

// Deps are the dashboard's dependencies.
type Deps struct {
	Log      *slog.Logger
	Store    Store
	Fulfill  *fulfillment.Service
	Refunds  *refund.Service // nil: no refund actions
	Payments Payments        // nil: no payment actions
	Verifier *auth.Verifier
	// Secret is the JWT secret: it signs the demo sign-in's token and keys
	// the CSRF tokens and flash cookies (so every replica agrees on them).
	Secret string
	// Demo offers a one-click sign-in as a demo staff user.
	Demo bool
	// RetryConcurrency bounds the resubmissions of one bulk retry (default 8).
	RetryConcurrency int
	// MaxBulk bounds the orders one "retry all matching" resubmits (default 10000).
	MaxBulk int
	// PageSize is the number of orders per page (default 50).
	PageSize int
	Now      func() time.Time
}

// app is the dashboard's state: its dependencies and parsed templates.
type app struct {
	Deps
	pages   map[string]*template.Template
	keys    keys
	mux     *http.ServeMux
	static  fs.FS
	staticV string
}

// New returns the dashboard's handler, to be mounted at /dashboard/. It
// parses every template now, so a broken template fails at start-up.
func New(d Deps) (http.Handler, error) {
	if d.Store == nil || d.Fulfill == nil || d.Verifier == nil {
		return nil, errors.New("admin: Store, Fulfill and Verifier are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.RetryConcurrency <= 0 {
		d.RetryConcurrency = 8
	}
	if d.MaxBulk <= 0 {
		d.MaxBulk = 10000
	}
	if d.PageSize <= 0 {
		d.PageSize = 50
	}
	a := &app{Deps: d, keys: deriveKeys(d.Secret), staticV: staticVersion()}
	var err error
	if a.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if a.static, err = fs.Sub(staticFS, "static"); err != nil {
		return nil, fmt.Errorf("admin: static files: %w", err)
	}
	a.mux = http.NewServeMux()
	addRoutes(a.mux, a)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Log.Warn("dashboard: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		a.renderError(w, r, http.StatusForbidden, "Cross-origin request refused",
			"This form was sent from another site. Open the dashboard and try again from there.")
	}))
	return securityHeaders(cop.Handler(a.mux)), nil
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}
