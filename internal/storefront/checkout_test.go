package storefront_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore"
)

func TestFreeOrder(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		ctx := context.Background()
		id, _ := e.add("ann", "sku="+e.skus["audit"])
		p := e.checkout("ann", id, "")
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		number := fmt.Sprintf("EDX-%d", id+100000)
		require.Equal(t, "/checkout/receipt/?order_number="+number, p.Location, "one basket, one order, same numbering")

		// Fulfilled before the answer: the LMS enrolled the learner.
		en, ok := e.lms.Enrollment("ann", course)
		require.True(t, ok)
		require.Equal(t, "audit", en.Mode)
		require.True(t, en.IsActive)

		r := e.get(p.Location, "ann")
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, r.Body, `<strong id="order-status" class="status">Complete</strong>`)
		require.Contains(t, r.Body, number)
		require.Contains(t, r.Body, "Seat in Demo Course")
		require.Contains(t, r.Body, `href="`+e.lmsSrv.URL+`/dashboard"`)

		// A second click, or the back button, places nothing twice.
		again := e.checkout("ann", id, "")
		require.Equal(t, http.StatusSeeOther, again.Status)
		require.Equal(t, p.Location, again.Location)
		back := e.get("/basket/?id="+strconv.FormatInt(id, 10), "ann")
		require.Equal(t, http.StatusSeeOther, back.Status)
		require.Equal(t, p.Location, back.Location)
		orders, err := e.db.ListOrders(ctx, order.Filter{Username: "ann"})
		require.NoError(t, err)
		require.Len(t, orders, 1)
		require.Equal(t, order.StatusComplete, orders[0].Status)
		hist, err := e.db.History(ctx, orders[0].ID)
		require.NoError(t, err)
		require.Equal(t, "ann", hist[0].Actor)
	})
}

func TestOwnerOnly(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		id, _ := e.add("ann", "sku="+e.skus["audit"])
		path := "/basket/?id=" + strconv.FormatInt(id, 10)

		// Another learner's basket does not exist for bob, even to check out.
		for _, user := range []string{"bob", "staff"} {
			p := e.get(path, user)
			require.Equal(t, http.StatusNotFound, p.Status, user)
			require.Contains(t, p.Body, "Basket not found")
		}
		p := e.checkout("bob", id, "")
		require.Equal(t, http.StatusNotFound, p.Status)
		for _, bad := range []string{"/basket/?id=99999", "/basket/?id=x", "/basket/?id=-1"} {
			require.Equal(t, http.StatusNotFound, e.get(bad, "ann").Status, bad)
		}
		b, err := e.db.GetBasket(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, basket.Status("Open"), b.Status)
		require.Equal(t, http.StatusOK, e.get(path, "ann").Status)

		// The receipt: its owner and staff.
		number := e.buyFree("ann", e.skus["course2 audit"])
		receipt := "/checkout/receipt/?order_number=" + url.QueryEscape(number)
		require.Equal(t, http.StatusOK, e.get(receipt, "ann").Status)
		require.Equal(t, http.StatusOK, e.get(receipt, "staff").Status)
		p = e.get(receipt, "bob")
		require.Equal(t, http.StatusNotFound, p.Status)
		require.Contains(t, p.Body, "Order not found")
		require.NotContains(t, p.Body, "Seat in")
		require.Equal(t, http.StatusNotFound, e.get("/checkout/receipt/?order_number=EDX-999999", "ann").Status)
		require.Equal(t, http.StatusNotFound, e.get("/checkout/receipt/", "ann").Status)
	})
}

func TestPaidCheckout(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		ctx := context.Background()
		id, add := e.add("ann", "sku="+e.skus["no-id-professional"])
		page := e.get(add.Location, "ann")
		require.Contains(t, page.Body, `id="basket-total">100.00 USD`)
		require.Contains(t, page.Body, `name="processor" value="sandbox"`)
		require.Contains(t, page.Body, "Pay with Sandbox")
		require.NotContains(t, page.Body, "Place order")

		// No processor, or one not enabled: nothing happens.
		p := e.checkout("ann", id, "")
		require.Equal(t, http.StatusBadRequest, p.Status)
		require.Contains(t, p.Body, "Choose how you want to pay")
		p = e.checkout("ann", id, "cybersource")
		require.Equal(t, http.StatusBadRequest, p.Status)
		b, err := e.db.GetBasket(ctx, id)
		require.NoError(t, err)
		require.Equal(t, basket.Status("Open"), b.Status)

		// Pay: frozen, and off to the processor's page.
		p = e.checkout("ann", id, "sandbox")
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.Equal(t, fmt.Sprintf("%s/payment/sandbox/pay/?basket_id=%d", e.srv.URL, id), p.Location)
		b, err = e.db.GetBasket(ctx, id)
		require.NoError(t, err)
		require.Equal(t, basket.Status("Frozen"), b.Status)
		req, err := http.NewRequest("GET", p.Location, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "JWT "+e.token("ann", false))
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		hosted, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, string(hosted), "100.00 USD", "the hosted page shows the basket to its owner")

		// Back on the basket page: the payment is under way and can go on.
		page = e.get(add.Location, "ann")
		require.Contains(t, page.Body, "Payment under way")
		require.Contains(t, page.Body, "Continue to payment")
		again := e.checkout("ann", id, "sandbox")
		require.Equal(t, http.StatusSeeOther, again.Status)
		require.Equal(t, p.Location, again.Location)
		require.Empty(t, e.lms.Requests(), "nothing is enrolled before payment")

		// The gateway accepts: the order is placed and the basket page now
		// leads to the receipt.
		pay := e.send("POST", "/payment/sandbox/pay/", "", url.Values{"basket_id": {strconv.FormatInt(id, 10)}, "decision": {"accept"}})
		require.Equal(t, http.StatusUnauthorized, pay.Status, "only the basket's owner pays it on the hosted page")
		pay = e.send("POST", "/payment/sandbox/pay/", "ann", url.Values{"basket_id": {strconv.FormatInt(id, 10)}, "decision": {"accept"}})
		number := fmt.Sprintf("EDX-%d", id+100000)
		require.Equal(t, http.StatusSeeOther, pay.Status, pay.Body)
		require.Equal(t, "/checkout/receipt/?order_number="+number, pay.Location, "after Pay the learner lands on the receipt")
		back := e.get(add.Location, "ann")
		require.Equal(t, http.StatusSeeOther, back.Status)
		require.Equal(t, "/checkout/receipt/?order_number="+number, back.Location)
		r := e.get(back.Location, "ann")
		require.Contains(t, r.Body, ">Complete</strong>")
		require.Contains(t, r.Body, "100.00 USD")
		en, ok := e.lms.Enrollment("ann", course)
		require.True(t, ok)
		require.Equal(t, "no-id-professional", en.Mode)
	})
}

func TestCrossOriginPostsAreRefused(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		id, _ := e.add("ann", "sku="+e.skus["audit"])
		form := url.Values{"basket_id": {strconv.FormatInt(id, 10)}}
		p := e.send("POST", "/basket/checkout/", "ann", form, "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, p.Status)
		require.Contains(t, p.Body, "sent from another site")
		p = e.send("POST", "/basket/checkout/", "ann", form, "Origin", "https://evil.example")
		require.Equal(t, http.StatusForbidden, p.Status)
		p = e.send("POST", "/login", "", url.Values{"username": {"mallory"}}, "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, p.Status)
		require.Empty(t, p.Cookies, "no login CSRF")
		b, err := e.db.GetBasket(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, basket.Status("Open"), b.Status)

		// The same form from the same site goes through.
		p = e.send("POST", "/basket/checkout/", "ann", form, "Sec-Fetch-Site", "same-origin")
		require.Equal(t, http.StatusSeeOther, p.Status)
	})
}

func TestPriceChangedSinceAdded(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		ctx := context.Background()
		id, _ := e.add("ann", "sku="+e.skus["audit"])
		c, err := e.db.GetCourse(ctx, course)
		require.NoError(t, err)
		for i := range c.Seats {
			if c.Seats[i].SKU == e.skus["audit"] {
				c.Seats[i].Price.Minor = 1500
			}
		}
		_, err = e.db.PutCourse(ctx, c)
		require.NoError(t, err)

		// The free seat is not free any more: no order at the old price.
		p := e.checkout("ann", id, "")
		require.Equal(t, http.StatusConflict, p.Status)
		require.Contains(t, p.Body, "changed from 0.00 USD to 15.00 USD")
		b, err := e.db.GetBasket(ctx, id)
		require.NoError(t, err)
		require.Equal(t, basket.Status("Open"), b.Status)
		_, ok := e.lms.Enrollment("ann", course)
		require.False(t, ok)
	})
}
