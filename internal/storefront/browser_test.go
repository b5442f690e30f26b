package storefront_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"fulfill/internal/sqlstore"
)

// chromium finds Debian's chromium, or skips the test; with
// FULFILL_REQUIRE_BROWSER=1 (CI) a missing browser fails it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("FULFILL_REQUIRE_BROWSER") == "1" {
		t.Fatal("FULFILL_REQUIRE_BROWSER=1 but no chromium was found (apt-get install -y chromium)")
	}
	t.Skip("no chromium: apt-get install -y chromium")
	return ""
}

// browser starts a headless chromium with a fresh profile, closed when the
// test ends, or after limit whatever happens.
func browser(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(420, 900), // a phone
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	watchdog := time.AfterFunc(limit, func() { cancel(); cancelAlloc() })
	t.Cleanup(func() { watchdog.Stop(); cancel(); cancelAlloc() })
	return ctx
}

// shot saves a screenshot of the page under FULFILL_SCREENSHOTS, when set.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("FULFILL_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "storefront-"+name+".png"), png, 0o644))
}

// TestBrowserPurchase follows a purchase link signed out, signs in on the
// demo form, lands on the basket, places the free order and lands on the
// receipt with the order Complete, in a real browser and without any
// JavaScript of ours.
func TestBrowserPurchase(t *testing.T) {
	t.Parallel()
	ctx := browser(t, 60*time.Second)
	e := newEnv(t, sqlstore.SQLite, envOpts{})
	link := e.srv.URL + "/basket/add/?sku=" + e.skus["audit"] + "&sku=NOSUCH"

	// Signed out: the link leads to the sign-in form, next to the link.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("username"))))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc, e.srv.URL+"/login?next="), loc)
	shot(t, ctx, "signin")

	// Sign in: back to the link, which makes the basket.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), "ann"),
		chromedp.Click(chromedp.CSS(`form.stack button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("basket-total")),
	))
	loc, err = chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc, e.srv.URL+"/basket/?id="), loc)
	total, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("basket-total")))
	require.NoError(t, err)
	require.Equal(t, "0.00 USD", strings.TrimSpace(total))
	notice, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.alert-info`)))
	require.NoError(t, err)
	require.Contains(t, notice, "SKU NOSUCH is not a product sold here")
	shot(t, ctx, "basket")

	// Place the free order: the receipt shows it Complete.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`section.checkout form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("order-status")),
	))
	loc, err = chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Contains(t, loc, "/checkout/receipt/?order_number=EDX-")
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("order-status")))
	require.NoError(t, err)
	require.Equal(t, "Complete", strings.TrimSpace(status))
	shot(t, ctx, "receipt")

	en, ok := e.lms.Enrollment("ann", course)
	require.True(t, ok, "the LMS stand-in enrolled the learner")
	require.Equal(t, "audit", en.Mode)
}
