package admin_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/auth"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// forEngine runs fn on a fresh environment of every engine, in parallel.
func forEngine(t *testing.T, o envOpts, fn func(t *testing.T, e *env)) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, engine, o))
		})
	}
}

func TestSignIn(t *testing.T) {
	forEngine(t, envOpts{}, func(t *testing.T, e *env) {
		e.buy("ann", e.skus["audit"])

		// No token: the sign-in page, and back here after it.
		anon := e.browser("")
		p := anon.get("/dashboard/?status=Complete")
		require.Equal(t, http.StatusOK, p.status)
		require.Contains(t, p.url, "/dashboard/login?next=%2Fdashboard%2F%3Fstatus%3DComplete")
		require.Contains(t, p.text(), "Sign in to the dashboard")
		require.Contains(t, p.body, `id="demo-login"`)
		res, err := e.client.Get(e.srv.URL + "/dashboard/orders/EDX-100001/")
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusSeeOther, res.StatusCode)

		// A learner's valid token: 403, with no order shown.
		learner := e.browser(e.token("ann", false))
		p = learner.get("/dashboard/")
		require.Equal(t, http.StatusForbidden, p.status)
		require.Contains(t, p.text(), "signed in as ann, who is not staff")
		require.NotContains(t, p.body, "EDX-100001")
		p = learner.get("/dashboard/orders/EDX-100001/")
		require.Equal(t, http.StatusForbidden, p.status)
		p = learner.post("/dashboard/orders/EDX-100001/retry", url.Values{})
		require.Equal(t, http.StatusForbidden, p.status)

		// A forged or expired token is no token.
		forged := e.browser(e.token("staff", true)[:20] + ".x.y")
		p = forged.get("/dashboard/")
		require.Contains(t, p.url, "/dashboard/login")
		old, err := auth.Sign(secret, "staff", true, time.Minute, time.Now().Add(-time.Hour))
		require.NoError(t, err)
		p = e.browser(old).get("/dashboard/")
		require.Contains(t, p.url, "/dashboard/login")

		// Staff: the orders page.
		staff := e.browser(e.staff)
		p = staff.get("/dashboard/")
		require.Equal(t, http.StatusOK, p.status)
		require.Equal(t, []string{"EDX-100001"}, p.rows())
		require.Equal(t, "no-store", p.header.Get("Cache-Control"))
		require.Contains(t, p.header.Get("Content-Security-Policy"), "default-src 'self'")

		// The sign-in form: a pasted staff token sets the edX JWT cookie pair.
		b := e.browser("")
		p = b.post("/dashboard/login", url.Values{"token": {"JWT " + e.staff}, "next": {"/dashboard/catalog/"}})
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "/dashboard/catalog/", p.header.Get("Location"))
		cookies := map[string]*http.Cookie{}
		for _, c := range (&http.Response{Header: p.header}).Cookies() {
			cookies[c.Name] = c
		}
		require.Contains(t, cookies, auth.CookieHeaderPayload)
		require.True(t, cookies[auth.CookieSignature].HttpOnly)
		require.Equal(t, e.staff, cookies[auth.CookieHeaderPayload].Value+"."+cookies[auth.CookieSignature].Value)
		require.Contains(t, b.get("/dashboard/catalog/").text(), "Catalog")
		// Redirects never leave the dashboard.
		p = e.browser("").post("/dashboard/login", url.Values{"token": {e.staff}, "next": {"https://evil.example/"}})
		require.Equal(t, "/dashboard/", p.header.Get("Location"))
		p = e.browser("").post("/dashboard/login", url.Values{"token": {e.staff}, "next": {"//evil.example/dashboard/"}})
		require.Equal(t, "/dashboard/", p.header.Get("Location"))

		// A learner's token or a bad one is refused at the form.
		p = e.browser("").post("/dashboard/login", url.Values{"token": {e.token("ann", false)}})
		require.Equal(t, http.StatusForbidden, p.status)
		require.Contains(t, p.text(), "User ann is not staff")
		require.Empty(t, p.header.Values("Set-Cookie"))
		p = e.browser("").post("/dashboard/login", url.Values{"token": {"nonsense"}})
		require.Equal(t, http.StatusUnauthorized, p.status)

		// Demo mode: one click signs in as the demo staff user.
		demo := e.browser("")
		p = demo.post("/dashboard/login", url.Values{"demo": {"1"}})
		require.Equal(t, http.StatusSeeOther, p.status)
		p = demo.get("/dashboard/")
		require.Equal(t, http.StatusOK, p.status)
		require.Contains(t, p.text(), "demo-staff")

		// Signing out clears the cookies.
		p = demo.post("/dashboard/logout", demo.form())
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Contains(t, demo.get("/dashboard/").url, "/dashboard/login")

		// Static files are served without a session.
		p = anon.get("/dashboard/static/vendor/htmx.min.js")
		require.Equal(t, http.StatusOK, p.status)
		require.Contains(t, p.body, `version:"2.0.11"`)
	})
}

func TestOrdersFiltersAndCounts(t *testing.T) {
	forEngine(t, envOpts{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		// Placed last week: ann's audit seat.
		lastWeek := time.Now().UTC().AddDate(0, 0, -7)
		e.db.SetClock(func() time.Time { return lastWeek })
		old := e.buy("ann", e.skus["audit"])
		e.db.SetClock(time.Now)
		bob := e.buy("bob", e.skus["course2 audit"])
		e.fail(http.StatusServiceUnavailable) // transient: retried later
		transient := e.buy("cat", e.skus["audit"])
		e.fail(http.StatusBadRequest) // permanent: needs attention
		permanent := e.buy("dan", e.skus["course2 audit"])
		e.heal()
		require.Equal(t, "Fulfillment Error", e.order(transient).Status)
		require.True(t, e.order(permanent).NeedsAttention)

		b := e.browser(e.staff)
		p := b.get("/dashboard/")
		require.Equal(t, []string{permanent, transient, bob, old}, p.rows(), "newest first")
		require.Equal(t, "2", p.count("Fulfillment Error"))
		require.Equal(t, "2", p.count("Complete"))
		require.Equal(t, "1", p.count("needs-attention"))
		// The LMS's message is on the page, escaped.
		require.Contains(t, p.text(), "Simulated LMS failure")

		for _, c := range []struct {
			query string
			want  []string
		}{
			{"status=Fulfillment+Error", []string{permanent, transient}},
			{"status=Complete", []string{bob, old}},
			{"needs_attention=true", []string{permanent}},
			{"needs_attention=false", []string{transient, bob, old}},
			{"username=bob", []string{bob}},
			{"username=nobody", nil},
			{"sku=" + e.skus["course2 audit"], []string{permanent, bob}},
			{"course=" + url.QueryEscape(course), []string{transient, old}},
			{"course=" + url.QueryEscape(course2) + "&status=Fulfillment+Error", []string{permanent}},
			{"from=" + time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02"), []string{permanent, transient, bob}},
			{"to=" + lastWeek.Format("2006-01-02"), []string{old}},
			{"from=" + lastWeek.Format("2006-01-02") + "&to=" + lastWeek.Format("2006-01-02") + "&username=ann", []string{old}},
		} {
			p := b.get("/dashboard/?" + c.query)
			require.Equal(t, http.StatusOK, p.status, c.query)
			require.Equal(t, c.want, p.rows(), c.query)
		}
		p = b.get("/dashboard/?status=Lost")
		require.Equal(t, http.StatusUnprocessableEntity, p.status)
		require.Contains(t, p.text(), `unknown status "Lost"`)
		p = b.get("/dashboard/?from=yesterday")
		require.Equal(t, http.StatusUnprocessableEntity, p.status)

		// The order page shows the attempts with the LMS's answer.
		p = b.get("/dashboard/orders/" + permanent + "/")
		require.Equal(t, http.StatusOK, p.status)
		txt := p.text()
		require.Contains(t, txt, "Fulfillment Server Error")
		require.Contains(t, txt, "Needs attention")
		require.Regexp(t, `1 .* server 400 .*Simulated LMS failure`, txt)
		p = b.get("/dashboard/orders/EDX-999999/")
		require.Equal(t, http.StatusNotFound, p.status)

		// Catalog and queue pages.
		p = b.get("/dashboard/catalog/")
		require.Contains(t, p.body, `href="/basket/add/?sku=`+e.skus["no-id-professional"]+`"`)
		require.Contains(t, p.text(), "100.00 USD")
		require.Contains(t, p.text(), "no-id-professional")
		p = b.get("/dashboard/queue/")
		require.Equal(t, http.StatusOK, p.status)
		require.Contains(t, p.body, transient, "the transient failure is scheduled")
		require.NotContains(t, p.body, permanent, "the permanent one is not")
		_ = ctx
	})
}

func TestKeysetPaging(t *testing.T) {
	forEngine(t, envOpts{pageSize: 3}, func(t *testing.T, e *env) {
		var all []string
		for _, u := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7"} {
			all = append([]string{e.buy(u, e.skus["audit"])}, all...)
		}
		b := e.browser(e.staff)
		var seen []string
		p := b.get("/dashboard/")
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5)
			seen = append(seen, p.rows()...)
			next := regexpFind(p.body, `href="([^"]+)" rel="next"`)
			if next == "" {
				break
			}
			require.Contains(t, next, "cursor=")
			p = b.get(next)
			require.Contains(t, p.body, "« Newest")
		}
		require.Equal(t, all, seen, "every order once, newest first")

		// The cursor keeps the filter.
		e.fail(http.StatusServiceUnavailable)
		var failed []string
		for _, u := range []string{"f1", "f2", "f3", "f4"} {
			failed = append([]string{e.buy(u, e.skus["audit"])}, failed...)
		}
		p = b.get("/dashboard/?status=Fulfillment+Error")
		require.Equal(t, failed[:3], p.rows())
		next := regexpFind(p.body, `href="([^"]+)" rel="next"`)
		require.Contains(t, next, "status=Fulfillment+Error")
		require.Equal(t, failed[3:], b.get(next).rows())
	})
}

func TestCrossOriginAndCSRF(t *testing.T) {
	forEngine(t, envOpts{}, func(t *testing.T, e *env) {
		e.fail(http.StatusServiceUnavailable)
		n := e.buy("ann", e.skus["audit"])
		e.heal()
		b := e.browser(e.staff)
		form := b.form()
		path := "/dashboard/orders/" + n + "/retry"

		// Another site's form: the browser says so, and it is refused.
		p := b.post(path, form, "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, p.status)
		require.Contains(t, p.text(), "Cross-origin request refused")
		p = b.post(path, form, "Sec-Fetch-Site", "", "Origin", "https://evil.example")
		require.Equal(t, http.StatusForbidden, p.status)
		// Same origin, but no or a wrong token.
		p = b.post(path, url.Values{})
		require.Equal(t, http.StatusForbidden, p.status)
		require.Contains(t, p.text(), "Form expired")
		p = b.post(path, url.Values{"csrf": {"x"}})
		require.Equal(t, http.StatusForbidden, p.status)
		// Another staff member's token does not fit this session.
		p = e.browser(e.token("other", true)).post(path, form)
		require.Equal(t, http.StatusForbidden, p.status)
		require.Equal(t, "Fulfillment Error", e.order(n).Status, "nothing was done")

		// The header form, as htmx sends it, is accepted.
		p = b.post(path, url.Values{}, "X-CSRF-Token", form.Get("csrf"))
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "Complete", e.order(n).Status)
	})
}

func TestActionsAsPlainForms(t *testing.T) {
	forEngine(t, envOpts{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.browser(e.staff)

		// Retry one order.
		e.fail(http.StatusServiceUnavailable)
		one := e.buy("ann", e.skus["audit"])
		e.heal()
		p := b.post("/dashboard/orders/"+one+"/retry", b.form("back", "/dashboard/orders/"+one+"/"))
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "/dashboard/orders/"+one+"/", p.header.Get("Location"))
		require.Equal(t, "Complete", e.order(one).Status)
		p = b.get("/dashboard/orders/" + one + "/")
		require.Contains(t, p.text(), "Order "+one+" retried: Complete.", "the flash message after the redirect")
		require.NotContains(t, b.get("/dashboard/orders/"+one+"/").text(), "retried: Complete.", "shown once")
		// A redirect target elsewhere is ignored.
		p = b.post("/dashboard/orders/"+one+"/retry", b.form("back", "https://evil.example/"))
		require.Equal(t, "/dashboard/orders/"+one+"/", p.header.Get("Location"))

		// Retry the selected orders, then all matching the filter.
		e.fail(http.StatusServiceUnavailable)
		s1, s2, s3 := e.buy("b1", e.skus["audit"]), e.buy("b2", e.skus["audit"]), e.buy("b3", e.skus["course2 audit"])
		e.heal()
		p = b.post("/dashboard/orders/retry", b.form("scope", "selected", "number", s1, "number", s2, "back", "/dashboard/?status=Fulfillment+Error"))
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "/dashboard/?status=Fulfillment+Error", p.header.Get("Location"))
		require.Equal(t, "Complete", e.order(s1).Status)
		require.Equal(t, "Complete", e.order(s2).Status)
		require.Equal(t, "Fulfillment Error", e.order(s3).Status)
		require.Contains(t, b.get("/dashboard/").text(), "Retried 2 orders: 2 Complete, 0 still failing")
		p = b.post("/dashboard/orders/retry", b.form("scope", "selected"))
		require.Equal(t, http.StatusUnprocessableEntity, p.status)
		require.Contains(t, p.text(), "Select at least one order")
		p = b.post("/dashboard/orders/retry", b.form("scope", "all", "status", "Complete"))
		require.Equal(t, http.StatusUnprocessableEntity, p.status)
		p = b.post("/dashboard/orders/retry", b.form("scope", "all", "course", course2, "back", "/dashboard/"))
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "Complete", e.order(s3).Status)
		require.Contains(t, b.get("/dashboard/").text(), "Retried 1 orders: 1 Complete")

		// Mark complete: the reason is mandatory.
		e.fail(http.StatusBadRequest)
		stuck := e.buy("carl", e.skus["audit"])
		e.heal()
		p = b.post("/dashboard/orders/"+stuck+"/mark-complete", b.form("reason", "   "))
		require.Equal(t, http.StatusUnprocessableEntity, p.status)
		require.Contains(t, p.text(), "A reason is required")
		require.Equal(t, "Fulfillment Error", e.order(stuck).Status)
		p = b.post("/dashboard/orders/"+stuck+"/mark-complete", b.form("reason", "enrolled by hand in the LMS"))
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "Complete", e.order(stuck).Status)
		p = b.get("/dashboard/orders/" + stuck + "/")
		require.Contains(t, p.text(), "marked Complete")
		require.Regexp(t, `Fulfillment Error → ✓?\s*Complete staff enrolled by hand in the LMS`, p.text())
		p = b.post("/dashboard/orders/"+stuck+"/mark-complete", b.form("reason", "again"))
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Contains(t, b.get("/dashboard/orders/"+stuck+"/").text(), "Not marked complete")

		// Refunds of a paid order: create for a line, approve; deny another;
		// approve the credit only of a third.
		paid := e.buyPaid("dora", e.skus["no-id-professional"], "100.00")
		line := e.order(paid).LineID
		p = b.post("/dashboard/orders/"+paid+"/refunds", b.form())
		require.Equal(t, http.StatusUnprocessableEntity, p.status)
		require.Contains(t, p.text(), "Select at least one line")
		p = b.post("/dashboard/orders/"+paid+"/refunds", b.form("line", itoa(line)))
		require.Equal(t, http.StatusSeeOther, p.status)
		rs, err := e.db.ListRefunds(ctx, "", 0, 0, 10)
		require.NoError(t, err)
		require.Len(t, rs, 1)
		require.Equal(t, "Open", string(rs[0].Status))
		p = b.get("/dashboard/orders/" + paid + "/")
		require.Contains(t, p.text(), "Refund #"+itoa(rs[0].ID)+" created")
		require.Contains(t, p.body, `data-action="approve"`)
		p = b.post("/dashboard/orders/"+paid+"/refunds", b.form("line", itoa(line)))
		require.Contains(t, b.get("/dashboard/orders/"+paid+"/").text(), "Nothing to refund")
		p = b.post("/dashboard/refunds/"+itoa(rs[0].ID)+"/process", b.form("action", "approve", "back", "/dashboard/orders/"+paid+"/"))
		require.Equal(t, http.StatusSeeOther, p.status)
		st := e.order(paid)
		require.Equal(t, "Complete", st.RefundStatus)
		en, ok := e.lms.Enrollment("dora", course)
		require.True(t, ok)
		require.False(t, en.IsActive, "revoked in the LMS")
		p = b.get("/dashboard/orders/" + paid + "/")
		require.Contains(t, p.text(), "approved: Complete")
		require.Contains(t, p.text(), "Refunded")

		denied := e.buyPaid("eve", e.skus["no-id-professional"], "100.00")
		require.Equal(t, http.StatusSeeOther, b.post("/dashboard/orders/"+denied+"/refunds", b.form("line", itoa(e.order(denied).LineID))).status)
		rs, err = e.db.ListRefunds(ctx, "Open", 0, 0, 10)
		require.NoError(t, err)
		require.Len(t, rs, 1)
		p = b.post("/dashboard/refunds/"+itoa(rs[0].ID)+"/process", b.form("action", "deny"))
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "/dashboard/refunds/", p.header.Get("Location"))
		require.Contains(t, b.get("/dashboard/refunds/").text(), "denied: Denied")
		require.Equal(t, "Denied", e.order(denied).RefundStatus)
		p = b.post("/dashboard/refunds/"+itoa(rs[0].ID)+"/process", b.form("action", "approve"))
		require.Contains(t, b.get("/dashboard/refunds/").text(), "not approved")
		p = b.post("/dashboard/refunds/"+itoa(rs[0].ID)+"/process", b.form("action", "refund-twice"))
		require.Equal(t, http.StatusUnprocessableEntity, p.status)

		creditOnly := e.buyPaid("fay", e.skus["course2 no-id-professional"], "100.00")
		require.Equal(t, http.StatusSeeOther, b.post("/dashboard/orders/"+creditOnly+"/refunds", b.form("line", itoa(e.order(creditOnly).LineID))).status)
		rs, err = e.db.ListRefunds(ctx, "Open", 0, 0, 10)
		require.NoError(t, err)
		require.Len(t, rs, 1)
		require.Equal(t, http.StatusSeeOther, b.post("/dashboard/refunds/"+itoa(rs[0].ID)+"/process", b.form("action", "approve_payment_only")).status)
		require.Equal(t, "Complete", e.order(creditOnly).RefundStatus)
		en, ok = e.lms.Enrollment("fay", course2)
		require.True(t, ok)
		require.True(t, en.IsActive, "credit only: still enrolled")

		// With htmx, the same action answers the page's content at once.
		e.fail(http.StatusServiceUnavailable)
		hx := e.buy("gus", e.skus["audit"])
		e.heal()
		p = b.post("/dashboard/orders/"+hx+"/retry", b.form("back", "/dashboard/orders/"+hx+"/"), "HX-Request", "true")
		require.Equal(t, http.StatusOK, p.status)
		require.NotContains(t, p.body, "<html")
		require.Contains(t, p.text(), "Order "+hx+" retried: Complete.")
		require.Contains(t, p.body, `<span id="order-status"><span class="badge st-ok">Complete</span>`)
		p = b.post("/dashboard/orders/"+hx+"/mark-complete", b.form("back", "/dashboard/orders/"+hx+"/"), "HX-Request", "true")
		require.Equal(t, http.StatusUnprocessableEntity, p.status)
		require.NotContains(t, p.body, "<html")
		require.Contains(t, p.text(), "A reason is required")
	})
}

func TestPagesEscapeWhatTheyShow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqlstore.SQLite, envOpts{})
	n := e.buy("<b>mallory</b>", e.skus["audit"])
	for _, path := range []string{"/dashboard/", "/dashboard/orders/" + n + "/"} {
		p := e.browser(e.staff).get(path)
		require.Equal(t, http.StatusOK, p.status)
		require.NotContains(t, p.body, "<b>mallory")
		require.Contains(t, p.body, "&lt;b&gt;mallory&lt;/b&gt;")
	}
}

func regexpFind(s, re string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
