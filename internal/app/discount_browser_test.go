package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
	"fulfill/internal/config"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore"
)

// TestBrowserCouponCheckout: staff create the coupon SAVE20 (20 % off)
// through the API; a learner follows a purchase link with the code, sees
// the discount on the basket page, pays the discounted amount on the
// sandbox's page and lands on the receipt; the order shows the voucher;
// staff refund it and the code's use is given back.
func TestBrowserCouponCheckout(t *testing.T) {
	t.Parallel()
	ctx := apptest.Browser(t)
	e := apptest.New(t, sqlstore.SQLite, apptest.Options{Configure: func(cfg *config.Config) {
		cfg.Demo = true
		cfg.Processors, cfg.SandboxAllowProduction = "sandbox", true
	}})
	skus := e.Course(course, "Coupon", []map[string]any{
		{"certificate_type": "professional", "price": "100.00", "currency": "USD"},
	})
	sku := skus["no-id-professional"]
	if sku == "" {
		for _, s := range skus {
			sku = s
		}
	}
	e.Do("POST", "/api/v2/coupons/", e.Staff, map[string]any{"title": "Spring sale", "category": map[string]string{"name": "Course Promotion"},
		"code": "SAVE20", "voucher_type": "Single use", "benefit_type": "Percentage", "benefit_value": "20",
		"start_datetime": "2020-01-01T00:00:00Z", "end_datetime": "2099-12-31T23:59:59Z", "course_keys": []string{course}}, http.StatusOK, nil)

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(c, actions...), what)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(sel)))
		require.NoError(t, err, sel)
		return strings.TrimSpace(s)
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		return loc
	}

	step("follow the purchase link with the code and sign in",
		chromedp.Navigate(e.URL+"/basket/add/?sku="+sku+"&code=SAVE20"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "ann"),
		chromedp.Click(chromedp.CSS(`form.stack button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("basket-total")))
	require.True(t, strings.HasPrefix(location(), e.URL+"/basket/?"), location())
	require.Equal(t, "100.00 USD", text("basket-subtotal"))
	require.Equal(t, "−20.00 USD", text("basket-discount"))
	require.Equal(t, "80.00 USD", text("basket-total"))
	require.Equal(t, "SAVE20", text("applied-code"))

	step("pay with the sandbox", chromedp.Click(chromedp.CSS(`button[name="processor"][value="sandbox"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button.accept`)))
	require.Contains(t, location(), "/payment/sandbox/pay/?basket_id=")
	pay, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`button.accept`)))
	require.NoError(t, err)
	require.Equal(t, "Pay 80.00 USD", strings.TrimSpace(pay), "the processor is asked for the discounted total")
	step("pay", chromedp.Click(chromedp.CSS(`button.accept`)), chromedp.WaitVisible(chromedp.ID("order-status")))
	require.Contains(t, location(), "/checkout/receipt/?order_number=EDX-", "back on the receipt")

	orders, err := e.DB.ListOrders(t.Context(), order.Filter{Username: "ann"})
	require.NoError(t, err)
	require.Len(t, orders, 1)
	require.Equal(t, order.StatusComplete, orders[0].Status)
	require.EqualValues(t, 8000, orders[0].TotalMinor)
	number := orders[0].Number

	var o struct {
		Discount string `json:"discount"`
		Total    string `json:"total_excl_tax"`
		Vouchers []struct {
			Code string `json:"code"`
		} `json:"vouchers"`
	}
	e.Do("GET", "/api/v2/orders/"+number+"/", e.Staff, nil, http.StatusOK, &o)
	require.Len(t, o.Vouchers, 1)
	require.Equal(t, "SAVE20", o.Vouchers[0].Code)
	require.Equal(t, "20.00", o.Discount)
	require.Equal(t, "80.00", o.Total)

	v, err := e.DB.VoucherByCode(t.Context(), "SAVE20")
	require.NoError(t, err)
	uses := func() int {
		u, err := e.DB.OfferUsage(t.Context(), "", v.ID, nil)
		require.NoError(t, err)
		return u.VoucherUses
	}
	require.Equal(t, 1, uses())

	var ids []int64
	e.Do("POST", "/api/v2/refunds/", e.Staff, map[string]string{"order_number": number}, http.StatusCreated, &ids)
	require.Len(t, ids, 1)
	e.Do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.Staff, map[string]string{"action": "approve"}, http.StatusOK, nil)
	require.Equal(t, 0, uses(), "the full refund gives the code's use back")
}
