package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/app"
	"fulfill/internal/apptest"
	"fulfill/internal/config"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore"
	"fulfill/internal/voucher"
)

const course = "course-v1:edX+Race+Run"

// TestNoDoublePurchase sends the same learner's purchase of one seat from
// the three front ends that place orders, at the same instant: the JSON
// API, the storefront's checkout of a basket filled before, and the
// redemption of an enrollment code for that seat. One wins; every other
// answer is a 409, and the losing redemptions keep their codes.
func TestNoDoublePurchase(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := apptest.New(t, engine, apptest.Options{})
		ctx := context.Background()
		skus := e.Course(course, "Race", []map[string]any{
			{"certificate_type": "verified", "id_verification_required": true, "price": "0.00", "currency": "USD"},
		})
		seat, bulk := skus["verified"], skus["bulk verified"]
		require.NotEmpty(t, seat)
		require.NotEmpty(t, bulk, "the seat has an enrollment-code product: %v", skus)

		// A buyer's enrollment codes for the seat.
		const apis, shops, codes = 7, 7, 6
		var bought apptest.Basket
		e.Do("POST", "/api/v2/baskets/", e.Token("buyer", false), map[string]any{
			"products": []map[string]any{{"sku": bulk, "quantity": codes}}, "checkout": true}, http.StatusOK, &bought)
		require.Equal(t, "Complete", bought.Order.Status)
		issued := orderCodes(t, e, bought.Order.Number)
		require.Len(t, issued, codes)

		// Baskets the learner filled in several tabs, before any order.
		learner := e.Token("ann", false)
		baskets := make([]int64, shops)
		for i := range baskets {
			baskets[i] = addToBasket(t, e, learner, seat)
		}

		type answer struct {
			via    string
			status int
		}
		answers := make(chan answer, apis+shops+codes)
		start := make(chan struct{})
		var wg sync.WaitGroup
		send := func(via string, req *http.Request) {
			wg.Go(func() {
				<-start
				res, err := noRedirect.Do(req)
				if err != nil {
					answers <- answer{via, -1}
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				answers <- answer{via, res.StatusCode}
			})
		}
		for range apis {
			req, _ := http.NewRequest("POST", e.URL+"/api/v2/baskets/",
				strings.NewReader(`{"products":[{"sku":"`+seat+`"}],"checkout":true}`))
			req.Header.Set("Authorization", "JWT "+learner)
			req.Header.Set("Content-Type", "application/json")
			send("api", req)
		}
		for _, id := range baskets {
			req, _ := http.NewRequest("POST", e.URL+"/basket/checkout/",
				strings.NewReader(url.Values{"basket_id": {strconv.FormatInt(id, 10)}}.Encode()))
			req.Header.Set("Authorization", "JWT "+learner)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			send("storefront", req)
		}
		for _, c := range issued {
			req, _ := http.NewRequest("GET", e.URL+"/coupons/redeem/?code="+c.Code, nil)
			req.Header.Set("Authorization", "JWT "+learner)
			req.Header.Set("Accept", "application/json")
			send("redeem", req)
		}
		close(start)
		wg.Wait()
		close(answers)

		won := 0
		for a := range answers {
			switch {
			case a.status == http.StatusOK && a.via != "storefront", a.status == http.StatusSeeOther && a.via == "storefront":
				won++
			case a.status == http.StatusConflict:
			default:
				t.Errorf("%s answered %d; want a success or 409", a.via, a.status)
			}
		}
		require.Equal(t, 1, won, "exactly one purchase wins")

		// One live order of the seat, one enrollment.
		mine, err := e.DB.ListOrders(ctx, order.Filter{Username: "ann", SKU: seat})
		require.NoError(t, err)
		require.Len(t, mine, 1)
		require.Equal(t, order.StatusComplete, mine[0].Status)
		require.Equal(t, 1, e.LMS.Stats().Activations, "one enrollment call that activated")
		redeemed := 0
		for _, c := range orderCodes(t, e, bought.Order.Number) {
			if c.Status == voucher.StatusRedeemed {
				redeemed++
			}
		}
		require.LessOrEqual(t, redeemed, 1, "a redemption that lost keeps its code")
	})
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// addToBasket follows the storefront's purchase link and returns the new
// basket's id.
func addToBasket(t *testing.T, e *apptest.Env, token, sku string) int64 {
	t.Helper()
	req, _ := http.NewRequest("GET", e.URL+"/basket/add/?sku="+sku, nil)
	req.Header.Set("Authorization", "JWT "+token)
	res, err := noRedirect.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	loc, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	id, err := strconv.ParseInt(loc.Query().Get("id"), 10, 64)
	require.NoError(t, err)
	return id
}

func orderCodes(t *testing.T, e *apptest.Env, number string) []voucher.EnrollmentCode {
	t.Helper()
	o, err := e.DB.GetOrder(context.Background(), number)
	require.NoError(t, err)
	codes, err := e.DB.CodesForOrder(context.Background(), o.ID)
	require.NoError(t, err)
	var out []voucher.EnrollmentCode
	for _, l := range o.Lines {
		out = append(out, codes[l.ID]...)
	}
	return out
}

// TestBadTextNever500: text PostgreSQL would refuse (a NUL, invalid UTF-8),
// oversized lists and values, in every place a request can carry them, get
// a 4xx on both engines, never a 5xx.
func TestBadTextNever500(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := apptest.New(t, engine, apptest.Options{})
		staff := e.Staff
		learner := e.Token("ann", false)
		many := make([]map[string]string, 70000)
		for i := range many {
			many[i] = map[string]string{"sku": strconv.Itoa(i)}
		}
		manyBody, _ := json.Marshal(map[string]any{"products": many, "checkout": true})
		type req struct {
			method, path, token, ctype, body string
		}
		reqs := []req{}
		for _, bad := range []string{"%00", "%ff", "a%00b", "%c3%28"} {
			reqs = append(reqs,
				req{"GET", "/api/v2/orders/EDX-" + bad + "/", staff, "", ""},
				req{"PUT", "/api/v2/orders/EDX-" + bad + "/fulfill/", staff, "", ""},
				req{"GET", "/api/v2/courses/course-v1:x+" + bad + "/", staff, "", ""},
				req{"PUT", "/api/v2/courses/course-v1:x+" + bad + "/", staff, "application/json", `{"name":"x","modes":[]}`},
				req{"GET", "/api/v2/products/?sku=" + bad, staff, "", ""},
				req{"GET", "/api/v2/orders/?username=" + bad, staff, "", ""},
				req{"GET", "/api/v2/orders/?sku=" + bad, staff, "", ""},
				req{"GET", "/basket/add/?sku=" + bad, learner, "", ""},
				req{"GET", "/checkout/receipt/?order_number=" + bad, learner, "", ""},
				req{"GET", "/coupons/redeem/?code=" + bad, learner, "", ""},
				req{"GET", "/dashboard/orders/" + bad, staff, "", ""},
				req{"GET", "/dashboard/?user=" + bad, staff, "", ""},
				req{"GET", "/static/storefront/" + bad, "", "", ""},
				req{"GET", "/dashboard/static/" + bad, "", "", ""},
				req{"POST", "/basket/checkout/", learner, "application/x-www-form-urlencoded", "basket_id=" + bad},
			)
		}
		reqs = append(reqs,
			req{"POST", "/api/v2/baskets/", learner, "application/json", `{"products":[{"sku":"a\u0000b"}],"checkout":true}`},
			req{"POST", "/api/v2/baskets/", learner, "application/json", "{\"products\":[{\"sku\":\"a\xffb\"}],\"checkout\":true}"},
			req{"POST", "/api/v2/baskets/", learner, "application/json", string(manyBody)},
			req{"GET", "/api/v2/orders/?sku=" + strings.Repeat("x", 5000), staff, "", ""},
			req{"POST", "/payment/sandbox/notify/", "", "application/json", "{\"basket_id\":1,\"reference\":\"r\xff\"}"},
		)
		for _, rq := range reqs {
			r, err := http.NewRequest(rq.method, e.URL+rq.path, strings.NewReader(rq.body))
			require.NoError(t, err)
			if rq.token != "" {
				r.Header.Set("Authorization", "JWT "+rq.token)
			}
			if rq.ctype != "" {
				r.Header.Set("Content-Type", rq.ctype)
			}
			res, err := noRedirect.Do(r)
			require.NoError(t, err)
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			require.Less(t, res.StatusCode, 500, "%s %s: %d %s", rq.method, rq.path, res.StatusCode, body)
			require.NotContains(t, string(body), "SQLSTATE", "%s %s", rq.method, rq.path)
			require.NotContains(t, string(body), "invalid byte sequence", "%s %s", rq.method, rq.path)
		}
	})
}

// TestBuyingForALearnerKeepsTheirProfile: staff buying for a learner never
// overwrites what the learner's own token told the service.
func TestBuyingForALearnerKeepsTheirProfile(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := apptest.New(t, engine, apptest.Options{})
		ctx := context.Background()
		skus := e.Course(course, "Race", []map[string]any{
			{"certificate_type": "", "price": "0.00", "currency": "USD"},
			{"certificate_type": "verified", "id_verification_required": true, "price": "0.00", "currency": "USD"},
		})
		_, err := e.DB.UpsertUser(ctx, order.User{Username: "lea", Email: "lea@example.com", FullName: "Lea Learner"})
		require.NoError(t, err)
		var out apptest.Basket
		e.Do("POST", "/api/v2/baskets/", e.Staff, map[string]any{"products": []map[string]string{{"sku": skus["audit"]}},
			"checkout": true, "username": "lea"}, http.StatusOK, &out)
		require.Equal(t, "Complete", out.Order.Status)
		u, err := e.DB.UserByName(ctx, "lea")
		require.NoError(t, err)
		require.Equal(t, "lea@example.com", u.Email)
		require.Equal(t, "Lea Learner", u.FullName)
		o, err := e.DB.GetOrder(ctx, out.Order.Number)
		require.NoError(t, err)
		require.Equal(t, "lea", o.User.Username)
		require.Equal(t, "lea@example.com", o.User.Email)

		// A learner nobody knows yet is created by name alone.
		e.Do("POST", "/api/v2/baskets/", e.Staff, map[string]any{"products": []map[string]string{{"sku": skus["verified"]}},
			"checkout": true, "username": "newcomer"}, http.StatusOK, &out)
		u, err = e.DB.UserByName(ctx, "newcomer")
		require.NoError(t, err)
		require.Empty(t, u.Email)
	})
}

// TestPoolFlags: --db-max-open-conns and --db-max-idle-conns reach a
// PostgreSQL store as its pool bounds, and leave SQLite's URL alone.
func TestPoolFlags(t *testing.T) {
	for _, tc := range []struct {
		db         string
		open, idle int
		want       string
	}{
		{"sqlite:/tmp/x.db", 5, 2, "sqlite:/tmp/x.db"},
		{"postgres://u@h/db", 0, 0, "postgres://u@h/db"},
		{"postgres://u@h/db?sslmode=disable", 20, 5, "postgres://u@h/db?max_idle_conns=5&max_open_conns=20&sslmode=disable"},
		{"postgres://u@h/db?max_open_conns=99", 30, 0, "postgres://u@h/db?max_open_conns=30"},
	} {
		cfg := &config.Config{DB: tc.db, DBMaxOpenConns: tc.open, DBMaxIdleConns: tc.idle}
		require.Equal(t, tc.want, app.DBURL(cfg), tc.db)
	}
}

// TestSQLiteSynchronousFlag: --sqlite-synchronous reaches a SQLite store's
// URL (winning over the URL's own) and a bad value fails at start.
func TestSQLiteSynchronousFlag(t *testing.T) {
	for _, tc := range []struct{ db, sync, want string }{
		{"sqlite:/tmp/x.db", "", "sqlite:/tmp/x.db"},
		{"sqlite:/tmp/x.db", "full", "sqlite:/tmp/x.db?synchronous=full"},
		{"sqlite:x.db?synchronous=full", "normal", "sqlite:x.db?synchronous=normal"},
		{"postgres://u@h/db", "full", "postgres://u@h/db"},
	} {
		require.Equal(t, tc.want, app.DBURL(&config.Config{DB: tc.db, SQLiteSynchronous: tc.sync}), tc.db)
	}
	_, err := sqlstore.Open(context.Background(), app.DBURL(&config.Config{DB: "sqlite:" + t.TempDir() + "/x.db", SQLiteSynchronous: "off"}))
	require.ErrorContains(t, err, "want normal or full")
}
