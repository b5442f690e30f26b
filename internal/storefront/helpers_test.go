package storefront_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
	"fulfill/internal/catalog"
	"fulfill/internal/config"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/money"
	"fulfill/internal/payment"
	"fulfill/internal/sqlstore"
)

const (
	secret        = apptest.Secret
	course        = "course-v1:edX+DemoX+Demo"
	course2       = "course-v1:edX+Second+Run"
	sandboxSecret = apptest.SandboxSecret
)

// env is the service as apptest starts it, with the storefront tests'
// names for its parts and two seeded courses.
type env struct {
	t       *testing.T
	db      *sqlstore.DB
	srv     struct{ URL string }
	lms     *lmstest.Server
	lmsSrv  struct{ URL string }
	sandbox *payment.Sandbox
	// skus maps "mode" (first course) or "course2 mode" to the seat's SKU.
	skus map[string]string
	app  *apptest.Env
}

type envOpts struct {
	notDemo     bool
	loginURL    string
	registerURL string
	rollout     *catalog.Rollout
}

// forEngines runs fn as a parallel subtest on every engine.
func forEngines(t *testing.T, fn func(t *testing.T, engine sqlstore.Engine)) {
	apptest.ForEngines(t, fn)
}

func newEnv(t *testing.T, engine sqlstore.Engine, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	a := apptest.New(t, engine, apptest.Options{Configure: func(cfg *config.Config) {
		cfg.Modules = map[catalog.Class]string{catalog.ClassSeat: "enrollment"}
		cfg.Demo = !o.notDemo
		cfg.Processors, cfg.SandboxAllowProduction = "sandbox", true
		cfg.LMSLoginURL, cfg.LMSRegisterURL = o.loginURL, o.registerURL
		if o.rollout != nil {
			cfg.SoldCourses, cfg.UnsoldSKUs = strings.Join(o.rollout.Courses, ","), strings.Join(o.rollout.UnsoldSKUs, ",")
		}
	}})
	e := &env{t: t, db: a.DB, lms: a.LMS, skus: map[string]string{}, app: a}
	e.srv.URL, e.lmsSrv.URL = a.URL, a.LMSURL
	e.sandbox = a.App.Checkout.Processors[payment.SandboxName].(*payment.Sandbox)
	usd := func(s string) money.Amount { a, err := money.Parse(s, "USD"); require.NoError(t, err); return a }
	for _, c := range []struct{ id, prefix string }{{course, ""}, {course2, "course2 "}} {
		saved, err := e.db.PutCourse(ctx, catalog.Course{ID: c.id, Name: "Demo " + c.prefix + "Course", Seats: []catalog.Seat{
			{Price: usd("0")},
			{CertificateType: "verified", IDVerificationRequired: true, Price: usd("49")},
			{CertificateType: "professional", Price: usd("100")},
		}})
		require.NoError(t, err)
		for _, s := range saved.Seats {
			e.skus[c.prefix+s.Mode()] = s.SKU
		}
	}
	return e
}

func (e *env) token(user string, staff bool) string { return e.app.Token(user, staff) }

// page is one answer, not followed if it redirects.
type page struct {
	Status   int
	Location string
	Body     string
	// Text is Body with HTML entities decoded ("+" is escaped in text).
	Text    string
	Header  http.Header
	Cookies []*http.Cookie
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send makes a request as user ("" for a signed-out visitor), with form as
// an urlencoded body when not nil.
func (e *env) send(method, path, user string, form url.Values, header ...string) page {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	require.NoError(e.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.Header.Set("Authorization", "JWT "+e.token(user, user == "staff"))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := noFollow.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return page{Status: res.StatusCode, Location: res.Header.Get("Location"), Body: string(raw), Text: html.UnescapeString(string(raw)), Header: res.Header, Cookies: res.Cookies()}
}

func (e *env) get(path, user string) page { return e.send("GET", path, user, nil) }

// add follows a purchase link as user and returns the new basket's id; the
// link must lead to a basket.
func (e *env) add(user string, query string) (int64, page) {
	e.t.Helper()
	p := e.get("/basket/add/?"+query, user)
	require.Equal(e.t, http.StatusSeeOther, p.Status, p.Body)
	require.True(e.t, strings.HasPrefix(p.Location, "/basket/?"), p.Location)
	u, err := url.Parse(p.Location)
	require.NoError(e.t, err)
	id, err := strconv.ParseInt(u.Query().Get("id"), 10, 64)
	require.NoError(e.t, err)
	return id, p
}

// checkout posts the basket's checkout form.
func (e *env) checkout(user string, id int64, processor string) page {
	e.t.Helper()
	form := url.Values{"basket_id": {strconv.FormatInt(id, 10)}}
	if processor != "" {
		form.Set("processor", processor)
	}
	return e.send("POST", "/basket/checkout/", user, form)
}

// buyFree adds the SKUs and places the free order; it returns the number.
func (e *env) buyFree(user string, skus ...string) string {
	e.t.Helper()
	q := url.Values{"sku": skus}
	id, _ := e.add(user, q.Encode())
	p := e.checkout(user, id, "")
	require.Equal(e.t, http.StatusSeeOther, p.Status, p.Body)
	const prefix = "/checkout/receipt/?order_number="
	require.True(e.t, strings.HasPrefix(p.Location, prefix), p.Location)
	n, err := url.QueryUnescape(strings.TrimPrefix(p.Location, prefix))
	require.NoError(e.t, err)
	return n
}
