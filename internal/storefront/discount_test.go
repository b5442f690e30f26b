package storefront_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/auth"
	"fulfill/internal/sqlstore"
)

// coupon creates a coupon for the first course through the API and
// returns its code (code "" for a generated one).
func (e *env) coupon(code, percent, usage string) string {
	e.t.Helper()
	body := map[string]any{"title": "Promo " + percent, "category": map[string]string{"name": "Course Promotion"},
		"voucher_type": usage, "benefit_type": "Percentage", "benefit_value": percent,
		"start_datetime": "2020-01-01T00:00:00Z", "end_datetime": "2099-12-31T23:59:59Z", "course_keys": []string{course}}
	if code != "" {
		body["code"] = code
	}
	var created struct {
		CouponID int64 `json:"coupon_id"`
	}
	e.app.Do("POST", "/api/v2/coupons/", e.app.Staff, body, http.StatusOK, &created)
	c, err := e.db.GetCoupon(context.Background(), created.CouponID)
	require.NoError(e.t, err)
	return c.Vouchers[0].Code
}

// browse is a GET as a browser signed in as user sends it: the JWT in the
// LMS's cookie pair, not a header.
func (e *env) browse(path, user string) page {
	e.t.Helper()
	tok := e.token(user, false)
	i := strings.LastIndexByte(tok, '.')
	return e.send("GET", path, "", nil, "Cookie", auth.CookieHeaderPayload+"="+tok[:i]+"; "+auth.CookieSignature+"="+tok[i+1:])
}

func TestBasketCodes(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		pro := e.skus["no-id-professional"]
		require.NotEmpty(t, pro)
		e.coupon("SAVE20", "20", "Multi-use")

		// The purchase link's code is applied: the page shows the discount.
		id, p := e.add("ann", url.Values{"sku": {pro}, "code": {"save20"}}.Encode())
		page := e.get(p.Location, "ann")
		require.Equal(t, http.StatusOK, page.Status)
		require.Contains(t, page.Text, "Coupon code 'SAVE20' added to basket.")
		require.Contains(t, page.Body, `id="basket-subtotal">100.00 USD`)
		require.Contains(t, page.Body, `id="basket-discount">−20.00 USD`)
		require.Contains(t, page.Body, `id="basket-total">80.00 USD`)
		b, err := e.db.GetBasket(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, "SAVE20", b.Code)
		require.EqualValues(t, 8000, b.Total)

		// Removed, then a code that does not exist: a message, the basket
		// unchanged.
		basketID := strconv.FormatInt(id, 10)
		p = e.send("POST", "/basket/code/", "ann", url.Values{"basket_id": {basketID}, "remove": {"1"}})
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.Contains(t, e.get(p.Location, "ann").Body, `id="basket-total">100.00 USD`)
		p = e.send("POST", "/basket/code/", "ann", url.Values{"basket_id": {basketID}, "code": {"NOPE"}})
		require.Equal(t, http.StatusBadRequest, p.Status)
		require.Contains(t, p.Text, "Coupon code 'NOPE' does not exist.")
		p = e.send("POST", "/basket/code/", "ann", url.Values{"basket_id": {basketID}, "code": {"SAVE20"}})
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.Contains(t, e.get(p.Location, "ann").Body, `id="basket-total">80.00 USD`)
		// Another learner cannot touch the basket.
		p = e.send("POST", "/basket/code/", "bob", url.Values{"basket_id": {basketID}, "code": {"SAVE20"}})
		require.Equal(t, http.StatusNotFound, p.Status)

		// A code that does not apply to the product: said on the page.
		_, p = e.add("ann", url.Values{"sku": {e.skus["course2 no-id-professional"]}, "code": {"SAVE20"}}.Encode())
		page = e.get(p.Location, "ann")
		require.Contains(t, page.Text, "Basket does not qualify for coupon code SAVE20.")
		require.Contains(t, page.Body, `id="basket-total">100.00 USD`)
	})
}

// /coupons/redeem/ takes coupons' codes too: free after the discount, the
// order is placed at once; otherwise the basket page, code applied.
func TestRedeemVoucherCode(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		pro := e.skus["no-id-professional"]
		half := e.coupon("HALF", "50", "Multi-use")
		free := e.coupon("", "100", "Single use")

		p := e.browse("/coupons/redeem/?"+url.Values{"code": {half}, "sku": {pro}}.Encode(), "ann")
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.True(t, strings.HasPrefix(p.Location, "/basket/?"), p.Location)
		require.Contains(t, e.get(p.Location, "ann").Body, `id="basket-total">50.00 USD`)

		p = e.browse("/coupons/redeem/?"+url.Values{"code": {free}, "sku": {pro}}.Encode(), "ann")
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.True(t, strings.HasPrefix(p.Location, "/checkout/receipt/?order_number="), p.Location)
		number, err := url.QueryUnescape(strings.TrimPrefix(p.Location, "/checkout/receipt/?order_number="))
		require.NoError(t, err)
		o, err := e.db.GetOrder(context.Background(), number)
		require.NoError(t, err)
		require.EqualValues(t, 0, o.TotalMinor)
		require.EqualValues(t, 10000, o.TotalBeforeDiscounts())
		require.Len(t, o.Vouchers, 1)
		require.Equal(t, free, o.Vouchers[0].Code)
		require.Equal(t, 1, e.lms.Stats().Activations, "fulfilled at once")

		// Used: a second learner lands on the basket page that says why.
		p = e.browse("/coupons/redeem/?"+url.Values{"code": {free}, "sku": {pro}}.Encode(), "bob")
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.Contains(t, e.get(p.Location, "bob").Text, "This coupon has already been used.")
	})
}
