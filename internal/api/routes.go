package api

import (
	"fulfill/internal/payment"
	"net/http"
)

func addRoutes(mux *http.ServeMux, d Deps) {
	user := func(staffOnly bool, h http.Handler) http.Handler { return authenticate(d, staffOnly, h) }

	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(d.Store))
	mux.Handle("GET /health/{$}", handleHealth(d.Store)) // Otto's path and shape
	addDocRoutes(mux)                                    // GET /api/v2/schema/ (OpenAPI) and /api-docs/
	if d.Metrics != nil {
		mux.Handle("GET /metrics", d.Metrics.Handler())
	}

	mux.Handle("PUT /api/v2/courses/{course_id}/{$}", user(true, handleCoursePut(d)))
	mux.Handle("PUT /api/v2/products/{sku}/{$}", user(true, handleProductPut(d.Store)))
	mux.Handle("GET /api/v2/courses/{$}", user(false, handleCourseList(d)))
	mux.Handle("GET /api/v2/courses/{course_id}/{$}", user(false, handleCourseGet(d)))
	mux.Handle("GET /api/v2/products/{$}", user(false, handleProducts(d)))
	mux.Handle("GET /api/v2/products/{id}/{$}", user(false, handleProductGet(d)))

	mux.Handle("POST /api/v2/baskets/{$}", user(false, handleBasketCreate(d)))
	mux.Handle("GET /api/v2/baskets/{id}/order/{$}", user(false, handleBasketOrder(d)))
	// Discounts: the side-effect-free price preview and the coupon admin.
	mux.Handle("GET /api/v2/baskets/calculate/{$}", user(false, handleCalculate(d)))
	mux.Handle("POST /api/v2/coupons/{$}", user(true, handleCouponCreate(d)))
	mux.Handle("GET /api/v2/coupons/{$}", user(true, handleCouponList(d)))
	mux.Handle("GET /api/v2/coupons/{id}/{$}", user(true, handleCouponGet(d)))
	mux.Handle("PUT /api/v2/coupons/{id}/{$}", user(true, handleCouponUpdate(d)))
	mux.Handle("PATCH /api/v2/coupons/{id}/{$}", user(true, handleCouponUpdate(d)))
	mux.Handle("DELETE /api/v2/coupons/{id}/{$}", user(true, handleCouponDelete(d)))
	mux.Handle("GET /api/v2/coupons/{id}/codes.csv", user(true, handleCouponCodesCSV(d)))
	mux.Handle("GET /api/v2/payment/processors/{$}", user(false, handlePaymentProcessors(d)))
	addBFFRoutes(mux, d) // the payment MFE's backend (bff.go)

	mux.Handle("GET /api/v2/orders/{$}", user(false, handleOrderList(d)))
	mux.Handle("GET /api/v2/orders/{number}/{$}", user(false, handleOrderGet(d)))
	mux.Handle("GET /api/v2/orders/{number}/enrollment_codes.csv", user(false, handleCodesCSV(d.Store)))
	mux.Handle("GET /coupons/redeem/{$}", handleRedeem(d))
	mux.Handle("PUT /api/v2/orders/{number}/fulfill/{$}", user(false, handleOrderFulfill(d)))
	mux.Handle("PATCH /api/v2/orders/{number}/fulfill/{$}", user(false, handleOrderFulfill(d)))
	mux.Handle("POST /api/v2/orders/fulfill/{$}", user(true, handleOrdersFulfill(d)))

	if d.Refunds != nil {
		mux.Handle("POST /api/v2/refunds/{$}", user(true, handleRefundCreate(d)))
		mux.Handle("GET /api/v2/refunds/{$}", user(true, handleRefundList(d.Store)))
		mux.Handle("GET /api/v2/refunds/{id}/{$}", user(true, handleRefundGet(d.Store)))
		mux.Handle("PUT /api/v2/refunds/{id}/process/{$}", user(true, handleRefundProcess(d)))
	}
	mux.Handle("GET /api/v2/payments/{$}", user(true, handlePaymentList(d.Store)))
	mux.Handle("GET /api/v2/payments/{id}/{$}", user(true, handlePaymentGet(d.Store)))
	mux.Handle("POST /api/v2/payments/{id}/refund/{$}", user(true, handlePaymentAct(d, false)))
	mux.Handle("POST /api/v2/payments/{id}/place/{$}", user(true, handlePaymentAct(d, true)))

	// Processors authenticate their notifications with signatures, not JWTs.
	mux.Handle("POST /payment/sandbox/notify/{$}", handlePaymentNotify(d, "sandbox"))
	mux.Handle("POST /payment/stripe/webhook/{$}", handlePaymentNotify(d, "stripe"))
	// Processors with a hosted page of their own (Stripe Checkout).
	mux.Handle("GET /payment/{processor}/pay/{$}", handleHostedPay(d))
	// The LMS's payment step POSTs payment_form_data, as a form, to
	// payment_page_url (Otto's pages take it): the same as a GET.
	mux.Handle("POST /payment/{processor}/pay/{$}", handleHostedPay(d))
	// The sandbox's hosted page, wherever the sandbox is enabled (the demo,
	// or --sandbox-allow-production); cross-origin posts are refused.
	if _, err := d.Checkout.Processor(payment.SandboxName); err == nil {
		mux.Handle("GET /payment/sandbox/pay/{$}", handleSandboxPage(d))
		mux.Handle("POST /payment/sandbox/pay/{$}", handleSandboxPost(d))
	}
}
