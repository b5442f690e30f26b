// Package api is fulfill's HTTP JSON API: Otto's v2 routes for courses,
// products, baskets and orders, health and metrics. Every error answer is
// an RFC 9457 problem+json document.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"fulfill/internal/auth"
	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/fulfillment"
	"fulfill/internal/lms"
	"fulfill/internal/order"
	"fulfill/internal/refund"
	"fulfill/internal/voucher"
)

// Store is what the API needs from storage.
type Store interface {
	PutCourse(ctx context.Context, c catalog.Course) (catalog.Course, error)
	GetCourse(ctx context.Context, id string) (catalog.Course, error)
	ProductsBySKU(ctx context.Context, skus []string) (map[string]catalog.Product, error)
	CreateBasket(ctx context.Context, b basket.Basket) (int64, error)
	PlaceOrder(ctx context.Context, b basket.Basket, actor, owner string, leaseUntil time.Time) (order.Order, error)
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
	BasketPayment(ctx context.Context, id int64) (BasketPayment, error)
	PutProduct(ctx context.Context, p catalog.Product) (catalog.Product, error)
	CodesForOrder(ctx context.Context, orderID int64) (map[int64][]voucher.EnrollmentCode, error)
	RedeemCode(ctx context.Context, code string, user order.User, owner string, leaseUntil time.Time) (order.Order, error)
}

// Publisher sends a course's modes and SKUs to the LMS.
type Publisher interface {
	PublishCourse(ctx context.Context, pc lms.PublishedCourse) error
}

// BasketPayment is what the sandbox payment page shows of a basket.
type BasketPayment = basket.Payable

// Deps are the server's dependencies.
type Deps struct {
	Log      *slog.Logger
	Store    Store
	Service  *fulfillment.Service
	Verifier *auth.Verifier
	Metrics  *Metrics
	// Checkout runs paid checkouts; nil disables them.
	Checkout *checkout.Service
	// Refunds creates and processes refunds; nil disables the refund API.
	Refunds *refund.Service
	// PublicURL is the service's own base URL, for payment pages.
	PublicURL string
	// Demo serves the sandbox processor's payment page.
	Demo bool
	// Dashboard is the operators' pages, mounted under /dashboard/ (nil: none).
	Dashboard http.Handler
	// Storefront is the learner's pages: /basket/…, /checkout/…, sign-in
	// and registration (nil: none).
	Storefront http.Handler
	// Rollout says which SKUs and courses are sold here (nil: all).
	Rollout *catalog.Rollout
	// ServiceUsers may act for other users, as staff may.
	ServiceUsers []string
	// Publisher, when set, publishes every saved course to the LMS.
	Publisher Publisher
	// Replica names this process in lease owners and logs.
	Replica string
	Now     func() time.Time
}

// NewServer returns the API's handler.
func NewServer(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Replica == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		d.Replica = hex.EncodeToString(b)
	}
	mux := http.NewServeMux()
	addRoutes(mux, d)
	return withLogger(d.Log, recoverer(d.Log, observe(d.Metrics, mux, problemForMux(mux))))
}

// owners hands out lease-owner names unique to one request.
type owners struct {
	prefix string
	n      atomic.Int64
}

func (o *owners) next() string {
	return o.prefix + "-" + itoa(o.n.Add(1))
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}
