package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
	"fulfill/internal/auth"
	"fulfill/internal/catalog"
	"fulfill/internal/config"
	"fulfill/internal/fulfillment"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/payment"
	"fulfill/internal/sqlstore"
)

const (
	secret        = apptest.Secret
	course        = "course-v1:edX+DemoX+Demo"
	course2       = "course-v1:edX+Second+Run"
	sandboxSecret = apptest.SandboxSecret
)

// env is the service as apptest starts it, with the dashboard tests' names
// for its parts and two seeded courses.
type env struct {
	t      *testing.T
	db     *sqlstore.DB
	srv    struct{ URL string }
	lms    *lmstest.Server
	svc    *fulfillment.Service
	skus   map[string]string // "audit", "professional", "course2 audit", …
	staff  string            // a staff token
	client *http.Client      // no cookies, does not follow redirects
	app    *apptest.Env
}

type envOpts struct {
	pageSize int
}

func newEnv(t *testing.T, engine sqlstore.Engine, o envOpts) *env {
	t.Helper()
	a := apptest.New(t, engine, apptest.Options{Configure: func(cfg *config.Config) {
		cfg.Modules = map[catalog.Class]string{catalog.ClassSeat: "enrollment"}
		if o.pageSize > 0 {
			cfg.DashboardPage = o.pageSize
		}
	}})
	e := &env{t: t, db: a.DB, lms: a.LMS, svc: a.App.Fulfill, staff: a.Staff, skus: map[string]string{}, app: a}
	e.srv.URL = a.URL
	e.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct{ id, prefix string }{{course, ""}, {course2, "course2 "}} {
		for mode, sku := range a.Course(c.id, "Demo "+c.prefix, []map[string]any{
			{"certificate_type": "", "price": "0.00", "currency": "USD"},
			{"certificate_type": "professional", "price": "100.00", "currency": "USD"},
		}) {
			e.skus[c.prefix+mode] = sku
		}
	}
	return e
}

func (e *env) token(user string, staff bool) string { return e.app.Token(user, staff) }

// api sends a JSON request to the API and checks the status.
func (e *env) api(method, path, token string, body any, want int, out any) {
	e.t.Helper()
	e.app.Do(method, path, token, body, want, out)
}

// buy checks out a free basket of the given SKUs as user; it returns the
// order number.
func (e *env) buy(user string, skus ...string) string {
	e.t.Helper()
	products := []map[string]string{}
	for _, s := range skus {
		products = append(products, map[string]string{"sku": s})
	}
	var out struct {
		Order struct{ Number string }
	}
	e.api("POST", "/api/v2/baskets/", e.token(user, false), map[string]any{"products": products, "checkout": true}, http.StatusOK, &out)
	require.NotEmpty(e.t, out.Order.Number)
	return out.Order.Number
}

// buyPaid checks out a paid SKU through the sandbox processor and posts its
// signed notification as the gateway would; it returns the order number.
func (e *env) buyPaid(user, sku, amount string) string {
	e.t.Helper()
	var b struct{ ID int64 }
	e.api("POST", "/api/v2/baskets/", e.token(user, false), map[string]any{"products": []map[string]string{{"sku": sku}},
		"checkout": true, "payment_processor_name": "sandbox"}, http.StatusOK, &b)
	body, err := json.Marshal(payment.SandboxNotification{BasketID: b.ID, Reference: "txn-" + user + "-" + sku, Amount: amount,
		Currency: "USD", Decision: payment.Accept})
	require.NoError(e.t, err)
	req, err := http.NewRequest("POST", e.srv.URL+"/payment/sandbox/notify/", bytes.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set(payment.SignatureHeader, payment.Sign([]byte(sandboxSecret), body))
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	var out struct {
		OrderNumber string `json:"order_number"`
	}
	raw, _ := io.ReadAll(res.Body)
	require.Equal(e.t, http.StatusOK, res.StatusCode, string(raw))
	require.NoError(e.t, json.Unmarshal(raw, &out))
	return out.OrderNumber
}

// fail makes the LMS answer every enrollment with status and a message.
func (e *env) fail(status int) { e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: status}) }

func (e *env) heal() { e.lms.SetFaults(lmstest.Faults{}) }

// browser is a signed-in (or not) visitor of the dashboard: a cookie jar
// holding the edX JWT cookie pair.
type browser struct {
	e   *env
	jar *cookiejar.Jar
	hc  *http.Client // follows redirects
	raw *http.Client // does not
}

func (e *env) browser(token string) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	b := &browser{e: e, jar: jar, hc: &http.Client{Jar: jar},
		raw: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if token != "" {
		u, _ := url.Parse(e.srv.URL)
		i := strings.LastIndexByte(token, '.')
		jar.SetCookies(u, []*http.Cookie{
			{Name: auth.CookieHeaderPayload, Value: token[:i], Path: "/"},
			{Name: auth.CookieSignature, Value: token[i+1:], Path: "/"},
		})
	}
	return b
}

type page struct {
	status int
	body   string
	header http.Header
	url    string
}

// get fetches a page, following redirects.
func (b *browser) get(path string) page {
	b.e.t.Helper()
	res, err := b.hc.Get(b.e.srv.URL + path)
	require.NoError(b.e.t, err)
	return readPage(b.e.t, res)
}

// post sends a form as a browser would from the dashboard (same origin),
// without following the redirect.
func (b *browser) post(path string, form url.Values, headers ...string) page {
	b.e.t.Helper()
	req, err := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := b.raw.Do(req)
	require.NoError(b.e.t, err)
	return readPage(b.e.t, res)
}

// csrf reads the CSRF token from a dashboard page.
func (b *browser) csrf() string {
	b.e.t.Helper()
	p := b.get("/dashboard/")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(p.body)
	require.NotNil(b.e.t, m, p.body)
	return m[1]
}

// form is a form with the CSRF token and more fields.
func (b *browser) form(kv ...string) url.Values {
	v := url.Values{"csrf": {b.csrf()}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func readPage(t *testing.T, res *http.Response) page {
	t.Helper()
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return page{status: res.StatusCode, body: string(raw), header: res.Header, url: res.Request.URL.String()}
}

var rowRE = regexp.MustCompile(`<tr id="order-([^"]+)"`)

// rows lists the order numbers of an orders page, in order.
func (p page) rows() []string {
	var out []string
	for _, m := range rowRE.FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1])
	}
	return out
}

// text is the page's text with tags removed and entities decoded, for
// looking for what a person reads.
func (p page) text() string {
	s := regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(p.body, " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

// count reads the number shown for a status in the orders page's header.
func (p page) count(status string) string {
	m := regexp.MustCompile(`data-status="` + regexp.QuoteMeta(status) + `">\s*<span class="n">([^<]+)</span>`).FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

func (e *env) order(number string) orderState {
	e.t.Helper()
	o, err := e.db.GetOrder(context.Background(), number)
	require.NoError(e.t, err)
	return orderState{Status: string(o.Status), NeedsAttention: o.NeedsAttention, LineStatus: string(o.Lines[0].Status),
		RefundStatus: o.Lines[0].RefundStatus, LineID: o.Lines[0].ID}
}

type orderState struct {
	Status, LineStatus, RefundStatus string
	NeedsAttention                   bool
	LineID                           int64
}
