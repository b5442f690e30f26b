package admin_test

import (
	"context"
	"fmt"
	"net/http"
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

// The browser tests drive Debian's chromium, headless, through chromedp.
// They skip where no chromium is installed, unless FULFILL_REQUIRE_BROWSER=1
// (CI), where they fail instead. FULFILL_SCREENSHOTS=DIR keeps the
// screenshots they take (docs/ holds the README's copies), and with
// FULFILL_SCREENSHOTS_EXTRA=1 phone-sized ones and the other pages too.

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("FULFILL_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FULFILL_REQUIRE_BROWSER") == "1" {
		t.Fatal("FULFILL_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
	}
	t.Skip("no chromium installed; the browser tests need Debian's chromium (apt-get install chromium)")
	return ""
}

// chrome starts a headless chromium with a fresh profile and returns a tab.
func chrome(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	profile := t.TempDir()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Env("TZ=America/New_York"),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return ctx
}

// tab runs browser steps with a deadline, failing the test on an error.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func (b tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, steps...), what)
}

func run[T any](b tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(b.t, err, what)
	return v
}

func (b tab) text(sel string) string {
	b.t.Helper()
	return run(b, "text of "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
}

// waitFor polls a JavaScript condition.
func (b tab) waitFor(what, js string) {
	b.t.Helper()
	run(b, what, chromedp.Poll[bool](js, chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
}

// follow runs steps that load another page (a link, a form without htmx)
// and waits for it to load.
func (b tab) follow(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, steps...)
	require.NoError(b.t, err, what)
	require.Less(b.t, res.Status, int64(500), what)
}

// mark sets a variable in the page: it survives only if the page is not
// reloaded.
func (b tab) mark() {
	b.t.Helper()
	b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.__notReloaded = "yes"`))
}

func (b tab) marked() bool {
	b.t.Helper()
	return run(b, "read the mark", chromedp.Evaluate[string](`String(window.__notReloaded)`)) == "yes"
}

func (b tab) screenshot(name string) {
	b.t.Helper()
	png := run(b, "screenshot "+name, chromedp.FullScreenshot(100))
	dir := os.Getenv("FULFILL_SCREENSHOTS")
	if dir == "" {
		dir = b.t.TempDir()
	}
	require.NoError(b.t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	ctx := chrome(t)
	e := newEnv(t, sqlstore.SQLite, envOpts{})
	b := tab{t: t, ctx: ctx}
	base := e.srv.URL

	// Sign in: the dashboard sends us to the sign-in page; demo staff.
	b.follow("open the dashboard", chromedp.Navigate(base+"/dashboard/"))
	b.follow("sign in as demo staff", chromedp.Click(chromedp.CSS("#demo-login")))
	b.do("the orders page", chromedp.WaitVisible(chromedp.CSS("section.counts")))
	require.Contains(t, b.text("header .who"), "demo-staff")

	// With the LMS failing, orders fail: one free, one paid.
	e.fail(http.StatusServiceUnavailable)
	free := e.buy("ann", e.skus["audit"])
	paid := e.buyPaid("bea", e.skus["no-id-professional"], "100.00")
	require.Equal(t, "Fulfillment Error", e.order(paid).Status)

	b.do("reload the orders", chromedp.Navigate(base+"/dashboard/"), chromedp.WaitVisible(chromedp.CSS("#order-"+paid)))
	require.Equal(t, "2", b.text(`a[data-status="Fulfillment Error"] .n`))
	b.follow("filter by Fulfillment Error", chromedp.Click(chromedp.CSS(`a[data-status="Fulfillment Error"]`)))
	b.waitFor("the filtered page", `document.querySelector("select[name=status]").value === "Fulfillment Error"`)
	row := b.text("#order-" + paid)
	require.Contains(t, row, "Fulfillment Error")
	require.Contains(t, row, "Simulated LMS failure", "the LMS's message is on the page")
	require.Contains(t, b.text("#order-"+free), "Fulfillment Error")

	// The order's page: the LMS's answer in the attempt history; heal the
	// LMS, retry, and see Complete without a reload.
	b.follow("open the paid order", chromedp.Click(chromedp.CSS("#order-"+paid+" a")))
	b.do("the order page", chromedp.WaitVisible(chromedp.CSS("#retry")))
	require.Contains(t, b.text("#last-error"), "Simulated LMS failure")
	require.Contains(t, b.text("table.attempts"), "503")
	require.Contains(t, b.text("#order-status"), "Fulfillment Error")
	e.heal()
	b.mark()
	b.do("click Retry", chromedp.Click(chromedp.CSS("#retry")))
	b.waitFor("the order turns Complete", `document.querySelector("#order-status").textContent.includes("Complete")`)
	require.True(t, b.marked(), "the page was not reloaded")
	require.Contains(t, b.text(".flash-ok"), "retried: Complete")
	require.Equal(t, "Complete", e.order(paid).Status)

	// Refund the line and approve: the learner is unenrolled.
	en, ok := e.lms.Enrollment("bea", course)
	require.True(t, ok)
	require.True(t, en.IsActive)
	line := e.order(paid).LineID
	b.do("select the line and create a refund",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#line-%d input[name=line]`, line))),
		chromedp.Click(chromedp.CSS("#create-refund")),
		chromedp.WaitVisible(chromedp.CSS(`button[data-action="approve"]`)))
	require.True(t, b.marked(), "the page was not reloaded")
	require.Contains(t, b.text(".flash-ok"), "created")
	require.Contains(t, b.text("article.refund .refund-state"), "Open")
	b.do("scroll up", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	b.waitFor("times are local", `document.querySelectorAll("time[datetime]:not([data-local])").length === 0`)
	require.Regexp(t, `\d:\d\d:\d\d`, b.text("table.attempts time"), "attempt times to the second, in the viewer's zone")
	require.Contains(t, run(b, "the exact time", chromedp.AttributeValue(chromedp.CSS("table.attempts time"), "title")).Value, " UTC")
	b.screenshot("dashboard-order.png")
	b.do("approve the refund", chromedp.Click(chromedp.CSS(`button[data-action="approve"]`)))
	b.waitFor("the refund completes", `(document.querySelector("article.refund .refund-state") || {textContent: ""}).textContent.includes("Complete")`)
	require.True(t, b.marked(), "the page was not reloaded")
	require.Contains(t, b.text(fmt.Sprintf("#line-%d .refund-status", line)), "Complete", "the line is revoked")
	require.Contains(t, b.text(".flash-ok"), "approved: Complete")
	en, ok = e.lms.Enrollment("bea", course)
	require.True(t, ok)
	require.False(t, en.IsActive, "the learner is unenrolled")
	require.Contains(t, b.text("#payments"), "Refunded")

	// Retry from a row of the list.
	b.do("back to the failed orders", chromedp.Navigate(base+"/dashboard/?status=Fulfillment+Error"),
		chromedp.WaitVisible(chromedp.CSS(`button[data-retry="`+free+`"]`)))
	b.mark()
	b.do("retry from the row", chromedp.Click(chromedp.CSS(`button[data-retry="`+free+`"]`)))
	b.waitFor("the flash says so", `(document.querySelector(".flash-ok") || {textContent: ""}).textContent.includes("`+free+` retried: Complete")`)
	require.True(t, b.marked())
	require.Equal(t, "Complete", e.order(free).Status)

	// The orders list at laptop width, with a few more orders for company.
	e.buyPaid("carol", e.skus["course2 no-id-professional"], "100.00")
	e.fail(http.StatusBadRequest)
	e.buy("dave", e.skus["course2 audit"])
	e.fail(http.StatusServiceUnavailable)
	scheduled := e.buyPaid("erin", e.skus["no-id-professional"], "100.00")
	e.heal()
	e.buy("frank", e.skus["course2 audit"])
	b.follow("the orders list", chromedp.Navigate(base+"/dashboard/"))
	b.waitFor("times are local", `document.querySelectorAll("time[datetime]:not([data-local])").length === 0`)
	require.NotContains(t, b.text("table.orders"), " UTC", "times are shown in the viewer's zone")
	b.screenshot("dashboard-orders.png")
	if os.Getenv("FULFILL_SCREENSHOTS_EXTRA") == "1" {
		b.do("a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		b.screenshot("dashboard-orders-phone.png")
		b.follow("the order on a phone", chromedp.Navigate(base+"/dashboard/orders/"+paid+"/"))
		b.screenshot("dashboard-order-phone.png")
		b.do("a laptop's screen", chromedp.EmulateViewport(1280, 900))
	}

	// The other pages.
	for _, pg := range []struct{ path, heading, shows string }{
		{"/dashboard/refunds/", "Refunds", paid},
		{"/dashboard/catalog/", "Catalog", "/basket/add/?sku=" + e.skus["no-id-professional"]},
		{"/dashboard/queue/", "Retry queue", scheduled},
	} {
		b.follow("open "+pg.path, chromedp.Navigate(base+pg.path))
		require.Equal(t, pg.heading, b.text("main h1"))
		require.Contains(t, run(b, "page", chromedp.Evaluate[string](`document.querySelector("main").innerText`)), pg.shows)
		if os.Getenv("FULFILL_SCREENSHOTS_EXTRA") == "1" {
			b.screenshot("dashboard-" + strings.Trim(strings.TrimPrefix(pg.path, "/dashboard/"), "/") + ".png")
		}
	}

	// Sign out; a learner is turned away.
	b.follow("sign out", chromedp.Click(chromedp.CSS("header .who button")))
	b.do("the sign-in page", chromedp.WaitVisible(chromedp.CSS("#token")))
	l := b
	l.do("type a learner's token", chromedp.SendKeys(chromedp.CSS("#token"), e.token("ann", false)))
	l.follow("sign in with it", chromedp.Click(chromedp.CSS("#token-login")))
	require.Contains(t, l.text("#login-error"), "User ann is not staff")
	// With the learner's cookies set by the LMS, the dashboard says no.
	tok := e.token("ann", false)
	i := strings.LastIndexByte(tok, '.')
	l.do("set the learner's edX cookies", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`document.cookie = "edx-jwt-cookie-header-payload=%s; path=/"; document.cookie = "edx-jwt-cookie-signature=%s; path=/"`, tok[:i], tok[i+1:])))
	l.follow("open the dashboard again", chromedp.Navigate(base+"/dashboard/"))
	require.Equal(t, "Staff only", l.text("section.card h1"))
	require.NotContains(t, run(l, "page", chromedp.Evaluate[string](`document.body.innerText`)), free)
}
