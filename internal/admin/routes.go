package admin

import (
	"net/http"
	"strings"
)

// Prefix is where the dashboard is mounted.
const Prefix = "/dashboard/"

func addRoutes(mux *http.ServeMux, a *app) {
	staff := a.requireStaff

	mux.Handle("GET /dashboard/static/", handleStatic(a))
	mux.Handle("GET /dashboard/login", handleLoginPage(a))
	mux.Handle("POST /dashboard/login", handleLogin(a))
	mux.Handle("POST /dashboard/logout", staff(handleLogout(a)))

	mux.Handle("GET /dashboard/{$}", staff(handleOrders(a)))
	// Otto's URLs, which the LMS links to (get_order_dashboard_url, the
	// refund notification): the orders list, an order, a refund.
	mux.Handle("GET /dashboard/orders/{$}", staff(handleOrders(a)))
	mux.Handle("GET /dashboard/orders/{number}/{$}", staff(handleOrder(a)))
	mux.Handle("POST /dashboard/orders/retry", staff(handleRetryMany(a)))
	mux.Handle("POST /dashboard/orders/{number}/retry", staff(handleRetry(a)))
	mux.Handle("POST /dashboard/orders/{number}/mark-complete", staff(handleMarkComplete(a)))
	mux.Handle("POST /dashboard/orders/{number}/refunds", staff(handleRefundCreate(a)))
	mux.Handle("GET /dashboard/refunds/{$}", staff(handleRefunds(a)))
	mux.Handle("GET /dashboard/refunds/{id}/{$}", staff(handleRefund(a)))
	mux.Handle("POST /dashboard/refunds/{id}/process", staff(handleRefundProcess(a)))
	mux.Handle("GET /dashboard/catalog/{$}", staff(handleCatalog(a)))
	mux.Handle("GET /dashboard/queue/{$}", staff(handleQueue(a)))
	mux.Handle("GET /dashboard/payments/{$}", staff(handlePayments(a)))
	mux.Handle("POST /dashboard/payments/{id}/action", staff(handlePaymentAction(a)))

	mux.Handle("/dashboard/", staff(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.renderError(w, r, http.StatusNotFound, "Not found", "There is no dashboard page at "+r.URL.Path+".")
	})))
}

func handleStatic(a *app) http.Handler {
	files := http.StripPrefix("/dashboard/static/", http.FileServerFS(a.static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		// Embedded files change only with the binary; the version query in
		// their links changes with it.
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}
