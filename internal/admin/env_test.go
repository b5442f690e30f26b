package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/admin"
	"fulfill/internal/api"
	"fulfill/internal/auth"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/fulfillment"
	"fulfill/internal/fulfillment/enrollment"
	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/payment"
	"fulfill/internal/refund"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

const (
	secret        = "test-secret"
	lmsKey        = "lms-key"
	course        = "course-v1:edX+DemoX+Demo"
	course2       = "course-v1:edX+Second+Run"
	sandboxSecret = "sandbox-secret"
)

// env is the whole service over real HTTP, as in the API's tests, with the
// dashboard mounted: a real database, the LMS stand-in behind a socket.
type env struct {
	t      *testing.T
	db     *sqlstore.DB
	srv    *httptest.Server
	lms    *lmstest.Server
	svc    *fulfillment.Service
	skus   map[string]string // "audit", "professional", "course2 audit", …
	staff  string            // a staff token
	client *http.Client      // no cookies, does not follow redirects
}

type envOpts struct {
	pageSize int
}

func newEnv(t *testing.T, engine sqlstore.Engine, o envOpts) *env {
	t.Helper()
	e := &env{t: t, db: sqlstoretest.Open(t, engine), skus: map[string]string{}}
	e.lms = lmstest.New(lmstest.Options{APIKey: lmsKey, Seed: 1})
	lmsSrv := httptest.NewServer(e.lms)
	t.Cleanup(func() { e.lms.Close(); lmsSrv.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Far apart retries: a test sees the first state until it acts.
	policy := fulfillment.Policy{Base: time.Hour, Cap: time.Hour, Attempts: 10}
	reg, err := fulfillment.NewRegistry(map[catalog.Class]string{catalog.ClassSeat: enrollment.Name},
		[]fulfillment.Module{&enrollment.Module{LMS: lms.NewClient(lmsSrv.URL, lmsKey, 2*time.Second)}},
		func(string) *fulfillment.Breaker { return fulfillment.NewBreaker(1000, time.Second, nil) })
	require.NoError(t, err)
	e.svc = &fulfillment.Service{Store: e.db, Registry: reg, Policy: policy, Lease: 5 * time.Second,
		WaitForLease: 10 * time.Second, BreakerDelay: time.Second, Log: log}
	processors := map[string]payment.Processor{payment.SandboxName: &payment.Sandbox{Secret: []byte(sandboxSecret)}}
	co := &checkout.Service{Store: e.db, Fulfill: e.svc, Processors: processors, Log: log}
	refunds := &refund.Service{Store: e.db, Revoker: reg, Processors: processors, Policy: policy, Lease: e.svc.Lease,
		WaitForLease: 10 * time.Second, Log: log}
	verifier := auth.NewVerifier(secret)
	dash, err := admin.New(admin.Deps{Log: log, Store: e.db, Fulfill: e.svc, Refunds: refunds, Verifier: verifier,
		Secret: secret, Demo: true, Replica: "test", PageSize: o.pageSize})
	require.NoError(t, err)
	var handler http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	handler = api.NewServer(api.Deps{Log: log, Store: e.db, Service: e.svc, Verifier: verifier, Checkout: co, Refunds: refunds,
		PublicURL: e.srv.URL, Demo: true, Dashboard: dash})
	e.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	e.staff = e.token("staff", true)
	for _, c := range []struct{ id, prefix string }{{course, ""}, {course2, "course2 "}} {
		var out struct {
			Modes []struct{ Name, SKU string }
		}
		e.api("PUT", "/api/v2/courses/"+c.id+"/", e.staff, map[string]any{"name": "Demo " + c.prefix, "modes": []map[string]any{
			{"certificate_type": "", "price": "0.00", "currency": "USD"},
			{"certificate_type": "professional", "price": "100.00", "currency": "USD"},
		}}, http.StatusOK, &out)
		for _, m := range out.Modes {
			e.skus[c.prefix+m.Name] = m.SKU
		}
	}
	return e
}

func (e *env) token(user string, staff bool) string {
	tok, err := auth.Sign(secret, user, staff, time.Hour, time.Now())
	require.NoError(e.t, err)
	return tok
}

// api sends a JSON request to the API and checks the status.
func (e *env) api(method, path, token string, body any, want int, out any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(e.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "JWT "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	require.Equal(e.t, want, res.StatusCode, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoError(e.t, json.Unmarshal(raw, out), string(raw))
	}
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
