// Package api is fulfill's HTTP JSON API: Otto's v2 routes for courses,
// products, baskets and orders, health and metrics. Every error answer is
// an RFC 9457 problem+json document.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"fulfill/internal/auth"
	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/fulfillment"
	"fulfill/internal/order"
	"fulfill/internal/payment"
	"fulfill/internal/refund"
	"fulfill/internal/voucher"
)

// Store is what the API needs from storage.
type Store interface {
	PutCourse(ctx context.Context, c catalog.Course) (catalog.Course, error)
	GetCourse(ctx context.Context, id string) (catalog.Course, error)
	ProductsBySKU(ctx context.Context, skus []string) (map[string]catalog.Product, error)
	GetOrder(ctx context.Context, number string) (order.Order, error)
	ListOrders(ctx context.Context, f order.Filter) ([]order.Order, error)
	Attempts(ctx context.Context, orderID int64) ([]order.Attempt, error)
	History(ctx context.Context, orderID int64) ([]order.HistoryEntry, error)
	BeginIdempotent(ctx context.Context, username, key, hash string, stale time.Duration) (checkout.Idempotency, error)
	FinishIdempotent(ctx context.Context, username, key string, status int, body []byte) error
	AbandonIdempotent(ctx context.Context, username, key string) error
	Ready(ctx context.Context) error
	ListRefunds(ctx context.Context, status refund.Status, orderID, afterID int64, limit int) ([]refund.Refund, error)
	GetRefund(ctx context.Context, id int64) (refund.Refund, error)
	BasketPayment(ctx context.Context, id int64) (basket.Payable, error)
	ListPayments(ctx context.Context, state payment.State, afterID int64, limit int) ([]payment.Payment, error)
	GetPayment(ctx context.Context, id int64) (payment.Payment, error)
	PutProduct(ctx context.Context, p catalog.Product) (catalog.Product, error)
	CodesForOrder(ctx context.Context, orderID int64) (map[int64][]voucher.EnrollmentCode, error)
	// The page-number lists and serializer data of Otto's API.
	CountOrders(ctx context.Context, f order.Filter) (int, error)
	ListOrdersPage(ctx context.Context, f order.Filter, offset int) ([]order.Order, error)
	PaymentProcessors(ctx context.Context, orderIDs []int64) (map[int64]string, error)
	ListProducts(ctx context.Context, class catalog.Class, offset, limit int) ([]catalog.Product, int, error)
	ProductByID(ctx context.Context, id int64) (catalog.Product, error)
	CourseProducts(ctx context.Context, courseIDs []string) (map[string][]catalog.Product, error)
	ListCoursesPage(ctx context.Context, offset, limit int) ([]catalog.Course, int, error)
}

// Deps are the server's dependencies.
type Deps struct {
	Log      *slog.Logger
	Store    Store
	Service  *fulfillment.Service
	Verifier *auth.Verifier
	Metrics  *Metrics
	// Checkout makes every order: baskets, codes, payments.
	Checkout *checkout.Service
	// Refunds creates and processes refunds; nil disables the refund API.
	Refunds *refund.Service
	// PublicURL is the service's own base URL, for payment pages.
	PublicURL string
	// Demo serves the sandbox processor's payment page.
	Demo bool
	// Storefront says the learner's pages are served beside the API, so
	// that a browser redeeming a code is sent to them.
	Storefront bool
	// Publisher, when set, publishes every saved course to the LMS.
	Publisher catalog.Publisher
	// DashboardURL is the learner's LMS dashboard, the dashboard_url of
	// every order ("" shows null).
	DashboardURL string
	Now          func() time.Time
}

// NewServer returns the API's handler.
func NewServer(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	mux := http.NewServeMux()
	addRoutes(mux, d)
	return withLogger(d.Log, recoverer(d.Log, observe(d.Metrics, mux, problemForMux(mux))))
}
