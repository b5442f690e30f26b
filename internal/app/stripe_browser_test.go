package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
	"fulfill/internal/config"
	"fulfill/internal/order"
	"fulfill/internal/payment/stripe/stripetest"
	"fulfill/internal/sqlstore"
)

// TestBrowserStripeCheckout: a learner buys a paid seat from the basket
// page with "Pay with Stripe", pays on the hosted Checkout page (a local
// stand-in for Stripe's), whose webhook places the order, and lands on
// the receipt; enrolled once.
func TestBrowserStripeCheckout(t *testing.T) {
	t.Parallel()
	ctx := apptest.Browser(t)
	hosted := stripetest.New(t, apptest.StripeWebhookSecret)
	e := apptest.New(t, sqlstore.SQLite, apptest.Options{Configure: func(cfg *config.Config) {
		cfg.Processors, cfg.StripeKey, cfg.StripeBackend = "stripe", "sk_test_standin", hosted.URL
	}})
	hosted.WebhookURL = e.URL + "/payment/stripe/webhook/"
	skus := e.Course(course, "Race", []map[string]any{
		{"certificate_type": "verified", "id_verification_required": true, "price": "49.00", "currency": "USD"},
	})
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(c, actions...), what)
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		return loc
	}

	step("follow the purchase link and sign in",
		chromedp.Navigate(e.URL+"/basket/add/?sku="+skus["verified"]),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "ann"),
		chromedp.Click(chromedp.CSS(`form.stack button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("basket-total")))
	require.True(t, strings.HasPrefix(location(), e.URL+"/basket/?id="), location())
	step("pay with Stripe", chromedp.Click(chromedp.CSS(`button[name="processor"][value="stripe"]`)), chromedp.WaitVisible(chromedp.ID("pay")))
	require.True(t, strings.HasPrefix(location(), hosted.URL+"/pay/cs_test_"), "on the hosted page: %s", location())
	amount, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("amount")))
	require.NoError(t, err)
	require.Equal(t, "4900 usd", amount, "the session bills the basket's total")
	step("pay", chromedp.Click(chromedp.ID("pay")), chromedp.WaitVisible(chromedp.ID("order-status")))
	require.Contains(t, location(), "/checkout/receipt/?order_number=EDX-", "back on the receipt")

	orders, err := e.DB.ListOrders(t.Context(), order.Filter{Username: "ann"})
	require.NoError(t, err)
	require.Len(t, orders, 1)
	require.Equal(t, order.StatusComplete, orders[0].Status)
	require.EqualValues(t, 4900, orders[0].TotalMinor)
	require.Equal(t, 1, e.LMS.Stats().Activations)
}
