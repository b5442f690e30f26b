package storefront_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"fulfill/internal/lms/lmstest"
	"fulfill/internal/sqlstore"
)

// TestBrowserReceiptFollowsTheOrder: the receipt of an order being retried
// reloads itself, so the learner sees it turn Complete without doing
// anything; then it stops reloading.
func TestBrowserReceiptFollowsTheOrder(t *testing.T) {
	t.Parallel()
	ctx := browser(t, 60*time.Second)
	e := newEnv(t, sqlstore.SQLite, envOpts{})
	e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: http.StatusServiceUnavailable})
	number := e.buyFree("ann", e.skus["audit"])
	e.lms.SetFaults(lmstest.Faults{})

	status := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("order-status")))
		require.NoError(t, err)
		return strings.TrimSpace(s)
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/login?next="+url.QueryEscape("/checkout/receipt/?order_number="+number)),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "ann"),
		chromedp.Click(chromedp.CSS(`form.stack button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("order-status")),
	))
	require.Equal(t, "Not complete yet", status())
	detail, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("order-detail")))
	require.NoError(t, err)
	require.Contains(t, detail, "we are retrying")
	shot(t, ctx, "receipt-retrying")

	// The retry succeeds; the open page follows by itself.
	_, err = e.app.App.Fulfill.Resubmit(t.Context(), number, "retry-worker")
	require.NoError(t, err)
	// Each look may meet the page reloading, which is the point: look again.
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("order-status") || {textContent: ""}).textContent.trim()`))
		if err == nil && s == "Complete" {
			break
		}
		require.True(t, time.Now().Before(deadline), "the receipt did not reload itself: %q, %v", s, err)
		time.Sleep(200 * time.Millisecond)
	}
	refreshes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('meta[http-equiv="refresh"]').length`))
	require.NoError(t, err)
	require.Zero(t, refreshes, "a final receipt stays put")
}
