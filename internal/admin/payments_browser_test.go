package admin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"fulfill/internal/payment"
	"fulfill/internal/sqlstore"
)

// TestBrowserPaymentNeedingAttention: a second payment of a placed basket
// whose automatic refund fails is shown to staff on the dashboard's
// Payments page with its cause; once the gateway is back, one click
// refunds it.
func TestBrowserPaymentNeedingAttention(t *testing.T) {
	t.Parallel()
	ctx := chrome(t)
	e := newEnv(t, sqlstore.SQLite, envOpts{})
	b := tab{t: t, ctx: ctx}
	base := e.srv.URL
	co := e.app.App.Checkout
	co.PaymentTries = 1
	sandbox := co.Processors[payment.SandboxName].(*payment.Sandbox)

	number := e.buyPaid("bea", e.skus["no-id-professional"], "100.00")
	o, err := e.db.GetOrder(t.Context(), number)
	require.NoError(t, err)
	sandbox.FailCredits(errors.New("gateway down"))
	body, err := json.Marshal(payment.SandboxNotification{BasketID: o.BasketID, Reference: "txn-bea-twice", Amount: "100.00",
		Currency: "USD", Decision: payment.Accept})
	require.NoError(t, err)
	req, err := http.NewRequest("POST", base+"/payment/sandbox/notify/", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(payment.SignatureHeader, payment.Sign([]byte(sandboxSecret), body))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "never a 4xx for money taken: %s", raw)
	var out struct {
		Status    string `json:"status"`
		PaymentID int64  `json:"payment_id"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	require.Equal(t, "refund_pending", out.Status)
	row := fmt.Sprintf("#payment-%d", out.PaymentID)

	b.follow("open the dashboard", chromedp.Navigate(base+"/dashboard/"))
	b.follow("sign in as demo staff", chromedp.Click(chromedp.CSS("#demo-login")))
	b.follow("open Payments", chromedp.Click(chromedp.CSS(`nav.nav a[href="/dashboard/payments/"]`)))
	b.do("the payment needing attention", chromedp.WaitVisible(chromedp.CSS(row)))
	text := b.text(row)
	require.Contains(t, text, "second payment")
	require.Contains(t, text, "refund failed")
	require.Contains(t, text, number)
	b.screenshot("dashboard-payments.png")

	sandbox.FailCredits(nil)
	b.follow("click Refund", chromedp.Click(chromedp.CSS(row+` button[data-action="refund"]`)))
	b.do("the flash", chromedp.WaitVisible(chromedp.CSS(".flash-ok")))
	require.Contains(t, b.text(".flash-ok"), "refunded")
	b.waitFor("the row is gone", fmt.Sprintf(`document.querySelector(%q) === null`, row))
	require.Equal(t, []string{"100.00 USD"}, sandbox.Credits())
	p, err := e.db.GetPayment(t.Context(), out.PaymentID)
	require.NoError(t, err)
	require.Equal(t, payment.StateRefunded, p.State)
}
