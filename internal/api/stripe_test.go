package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v85/webhook"

	"fulfill/internal/payment/stripe/stripemock"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// deliver plays Stripe's webhook delivery of a payment_intent event
// (stripe-mock sends none), signed with secret.
func (e *env) deliver(typ, intent string, basketID, amount int64, secret string) (int, map[string]any) {
	e.t.Helper()
	return e.deliverSigned("evt_"+intent, typ, map[string]any{"id": intent, "object": "payment_intent", "amount": amount,
		"amount_received": amount, "currency": "usd", "metadata": map[string]string{"basket_id": fmt.Sprint(basketID)}}, secret)
}

func TestStripeCheckoutAndRefund(t *testing.T) {
	t.Parallel()
	mock := stripemock.Start(t)
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{stripeBackend: mock})
			var b paidBasket
			e.do("POST", "/api/v2/baskets/", e.token("ann", false), map[string]any{"products": []map[string]string{{"sku": e.skus["no-id-professional"]}},
				"checkout": true, "payment_processor_name": "stripe"}, http.StatusOK, &b)
			require.Equal(t, "stripe", b.PaymentData.ProcessorName)
			intent := b.PaymentData.FormData["payment_intent_id"]
			require.NotEmpty(t, intent)
			require.NotEmpty(t, b.PaymentData.FormData["client_secret"])
			require.Equal(t, "Frozen", e.basketStatus(b.ID))

			code, _ := e.deliver("payment_intent.succeeded", intent, b.ID, 10000, "whsec_forged")
			require.Equal(t, http.StatusForbidden, code, "a forged webhook is refused")
			require.Equal(t, "Frozen", e.basketStatus(b.ID))
			code, out := e.deliver("payment_intent.created", intent, b.ID, 10000, stripeWebhookSecret)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "ignored", out["status"])

			code, out = e.deliver("payment_intent.succeeded", intent, b.ID, 10000, stripeWebhookSecret)
			require.Equal(t, http.StatusOK, code, out)
			require.Equal(t, "Complete", out["order_status"])
			number := out["order_number"].(string)
			code, out = e.deliver("payment_intent.succeeded", intent, b.ID, 10000, stripeWebhookSecret)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, true, out["replayed"])
			en, ok := e.lms.Enrollment("ann", course)
			require.True(t, ok)
			require.True(t, en.IsActive)

			// The refund's credit goes through Stripe (stripe-mock).
			var ids []int64
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{"order_number": number}, http.StatusCreated, &ids)
			var r refundOut
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "approve"}, http.StatusOK, &r)
			require.Equal(t, "Complete", r.Status)
			require.Equal(t, []string{"100.00"}, e.credits(number))
			en, _ = e.lms.Enrollment("ann", course)
			require.False(t, en.IsActive)

			// A failed payment thaws the basket.
			var d paidBasket
			e.do("POST", "/api/v2/baskets/", e.token("bob", false), map[string]any{"products": []map[string]string{{"sku": e.skus["no-id-professional"]}},
				"checkout": true, "payment_processor_name": "stripe"}, http.StatusOK, &d)
			code, out = e.deliver("payment_intent.payment_failed", "pi_failed_"+fmt.Sprint(d.ID), d.ID, 10000, stripeWebhookSecret)
			require.Equal(t, http.StatusOK, code, out)
			require.Equal(t, "declined", out["status"])
			require.Equal(t, "Open", e.basketStatus(d.ID))
		})
	}
}

// deliverEvent posts a Stripe event with the given id, type and
// data.object, signed with the endpoint's secret.
func (e *env) deliverEvent(id, typ string, object map[string]any) (int, map[string]any) {
	e.t.Helper()
	return e.deliverSigned(id, typ, object, stripeWebhookSecret)
}

// deliverSigned posts an event signed with secret, as Stripe delivers it.
func (e *env) deliverSigned(id, typ string, object map[string]any, secret string) (int, map[string]any) {
	e.t.Helper()
	payload, err := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2025-01-01",
		"created": time.Now().Unix(), "data": map[string]any{"object": object}})
	require.NoError(e.t, err)
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: time.Now()})
	req, _ := http.NewRequest("POST", e.srv.URL+"/payment/stripe/webhook/", bytes.NewReader(signed.Payload))
	req.Header.Set("Stripe-Signature", signed.Header)
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

func session(basketID int64, intent, paymentStatus string) map[string]any {
	return map[string]any{"id": "cs_test_" + fmt.Sprint(basketID), "object": "checkout.session", "mode": "payment",
		"client_reference_id": fmt.Sprint(basketID), "amount_total": 10000, "currency": "usd", "payment_status": paymentStatus,
		"payment_intent": intent}
}

// TestStripeHostedCheckout: the payment page is Stripe Checkout (a session
// created through stripe-mock), and its webhooks place the order: a card
// declined then retried places one order, the session's and the payment
// intent's notices of one payment are one payment, a redelivered event
// does nothing twice, and a delayed payment waits for its outcome.
func TestStripeHostedCheckout(t *testing.T) {
	t.Parallel()
	mock := stripemock.Start(t)
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{stripeBackend: mock})
			var b paidBasket
			e.do("POST", "/api/v2/baskets/", e.token("ann", false), map[string]any{"products": []map[string]string{{"sku": e.skus["no-id-professional"]}},
				"checkout": true, "payment_processor_name": "stripe"}, http.StatusOK, &b)
			require.Equal(t, fmt.Sprintf("%s/payment/stripe/pay/?basket_id=%d", e.srv.URL, b.ID), b.PaymentData.PageURL)

			// The owner is sent to Stripe Checkout; anyone else is not.
			page := func(token string) *http.Response {
				req, _ := http.NewRequest("GET", b.PaymentData.PageURL, nil)
				if token != "" {
					req.Header.Set("Authorization", "JWT "+token)
				}
				req.Header.Set("Accept", "application/json")
				res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
				require.NoError(t, err)
				res.Body.Close()
				return res
			}
			res := page(e.token("ann", false))
			require.Equal(t, http.StatusSeeOther, res.StatusCode)
			require.NotEmpty(t, res.Header.Get("Location"), "the Checkout Session's url")
			require.Equal(t, http.StatusNotFound, page(e.token("mallory", false)).StatusCode)

			// Declined, then the learner retries the card and Checkout completes.
			intent := fmt.Sprintf("pi_hosted_%d", b.ID)
			code, out := e.deliverEvent("evt_failed_1", "payment_intent.payment_failed", map[string]any{"id": intent, "object": "payment_intent",
				"amount": 10000, "currency": "usd", "metadata": map[string]string{"basket_id": fmt.Sprint(b.ID)}})
			require.Equal(t, http.StatusOK, code, out)
			require.Equal(t, "declined", out["status"])
			require.Equal(t, "Open", e.basketStatus(b.ID))
			code, out = e.deliverEvent("evt_completed_1", "checkout.session.completed", session(b.ID, intent, "paid"))
			require.Equal(t, http.StatusOK, code, out)
			require.Equal(t, "accepted", out["status"])
			require.Equal(t, "Complete", out["order_status"])
			number := out["order_number"].(string)
			// The payment intent's own notice of the same payment, and a redelivery.
			code, out = e.deliverEvent("evt_pi_succeeded_1", "payment_intent.succeeded", map[string]any{"id": intent, "object": "payment_intent",
				"amount": 10000, "amount_received": 10000, "currency": "usd", "metadata": map[string]string{"basket_id": fmt.Sprint(b.ID)}})
			require.Equal(t, http.StatusOK, code, out)
			require.Equal(t, true, out["replayed"])
			code, out = e.deliverEvent("evt_completed_1", "checkout.session.completed", session(b.ID, intent, "paid"))
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, true, out["replayed"])
			require.Len(t, e.ordersOf("ann"), 1)
			require.Empty(t, e.payments("refund_due"))
			require.Empty(t, e.payments("refunded"), "one payment, no refund")
			// Back from Checkout, the page leads to the receipt.
			res = page(e.token("ann", false))
			require.Equal(t, http.StatusSeeOther, res.StatusCode)
			require.Equal(t, "/checkout/receipt/?order_number="+number, res.Header.Get("Location"))

			// A delayed payment method: completed unpaid waits; its failure thaws.
			var d paidBasket
			e.do("POST", "/api/v2/baskets/", e.token("bob", false), map[string]any{"products": []map[string]string{{"sku": e.skus["no-id-professional"]}},
				"checkout": true, "payment_processor_name": "stripe"}, http.StatusOK, &d)
			code, out = e.deliverEvent("evt_completed_2", "checkout.session.completed", session(d.ID, "pi_delayed", "unpaid"))
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "ignored", out["status"])
			require.Equal(t, "Frozen", e.basketStatus(d.ID))
			code, out = e.deliverEvent("evt_async_failed_2", "checkout.session.async_payment_failed", session(d.ID, "pi_delayed", "unpaid"))
			require.Equal(t, http.StatusOK, code, out)
			require.Equal(t, "declined", out["status"])
			require.Equal(t, "Open", e.basketStatus(d.ID))
		})
	}
}
