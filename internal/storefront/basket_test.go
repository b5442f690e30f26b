package storefront_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore"
)

func TestSignedOutIsSentToSignIn(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		link := "/basket/add/?sku=A&sku=B&code=X%26Y"
		p := e.get(link, "")
		require.Equal(t, http.StatusFound, p.Status)
		require.Equal(t, "/login?next="+url.QueryEscape(link), p.Location)

		// The sign-in form carries next back.
		form := e.get(p.Location, "")
		require.Equal(t, http.StatusOK, form.Status)
		require.Contains(t, form.Body, `name="next" value="/basket/add/?sku=A&amp;sku=B&amp;code=X%26Y"`)

		// The other pages too; an invalid or expired token is signed out.
		for _, path := range []string{"/basket/?id=1", "/checkout/receipt/?order_number=EDX-100001"} {
			p := e.get(path, "")
			require.Equal(t, http.StatusFound, p.Status, path)
			require.Equal(t, "/login?next="+url.QueryEscape(path), p.Location)
		}
		p = e.send("GET", link, "", nil, "Authorization", "JWT not-a-token")
		require.Equal(t, http.StatusFound, p.Status)
		p = e.send("POST", "/basket/checkout/", "", url.Values{"basket_id": {"7"}})
		require.Equal(t, http.StatusSeeOther, p.Status)
		require.Equal(t, "/login?next="+url.QueryEscape("/basket/?id=7"), p.Location)
	})
}

func TestSignInAtTheLMS(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		// Outside demo mode, the LMS signs learners in and registers them.
		e := newEnv(t, engine, envOpts{notDemo: true, loginURL: "https://lms.example.com/login?lang=en"})
		link := "/basket/add/?sku=A"
		p := e.get(link, "")
		require.Equal(t, http.StatusFound, p.Status)
		u, err := url.Parse(p.Location)
		require.NoError(t, err)
		require.Equal(t, "lms.example.com", u.Host)
		require.Equal(t, "/login", u.Path)
		require.Equal(t, "en", u.Query().Get("lang"))
		require.Equal(t, e.srv.URL+link, u.Query().Get("next"), "the LMS sends the learner back to the link")

		p = e.get("/login?next="+url.QueryEscape(link), "")
		require.Equal(t, http.StatusFound, p.Status)
		require.True(t, strings.HasPrefix(p.Location, "https://lms.example.com/login?"), p.Location)
		p = e.get("/register?next="+url.QueryEscape(link), "")
		require.Equal(t, http.StatusFound, p.Status)
		require.Equal(t, e.lmsSrv.URL+"/register?next="+url.QueryEscape(e.srv.URL+link), p.Location, "default: {lms}/register")

		// No demo form, and no way to mint a session here.
		p = e.send("POST", "/login", "", url.Values{"username": {"ann"}})
		require.Equal(t, http.StatusNotFound, p.Status)
		require.Empty(t, p.Cookies)

		// The LMS's own JWT cookie pair is accepted.
		tok := e.token("ann", false)
		dot := strings.LastIndexByte(tok, '.')
		req, err := http.NewRequest("GET", e.srv.URL+"/basket/add/?sku="+e.skus["audit"], nil)
		require.NoError(t, err)
		req.AddCookie(&http.Cookie{Name: "edx-jwt-cookie-header-payload", Value: tok[:dot]})
		req.AddCookie(&http.Cookie{Name: "edx-jwt-cookie-signature", Value: tok[dot+1:]})
		res, err := noFollow.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
	})
}

func TestPurchaseLink(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		ctx := context.Background()
		audit := e.skus["audit"]

		// Unknown SKUs are dropped, a SKU given twice is added once, the code
		// is passed on to the redeem link.
		id, p := e.add("ann", "sku="+audit+"&sku=NOSUCH&sku="+audit+"&code=BULK-42")
		b, err := e.db.GetBasket(ctx, id)
		require.NoError(t, err)
		require.Equal(t, basket.Status("Open"), b.Status)
		require.Equal(t, "ann", b.Owner.Username)
		require.Len(t, b.Lines, 1, "a double click adds once")
		require.Equal(t, audit, b.Lines[0].Product.Stock.SKU)

		page := e.get(p.Location, "ann")
		require.Equal(t, http.StatusOK, page.Status)
		require.Contains(t, page.Body, "Seat in Demo Course")
		require.Contains(t, page.Body, "0.00 USD")
		require.Contains(t, page.Body, ">Place order</button>")
		require.NotContains(t, page.Body, "Pay with")
		require.Contains(t, page.Body, "SKU NOSUCH is not a product sold here")
		require.Contains(t, page.Body, `href="/coupons/redeem/?code=BULK-42"`)
		require.Contains(t, page.Body, "Signed in as <strong>ann</strong>")
		require.Equal(t, "text/html; charset=utf-8", page.Header.Get("Content-Type"))
		require.Equal(t, "no-store", page.Header.Get("Cache-Control"))

		// Nothing left: a 400 page that says why.
		p = e.get("/basket/add/?sku=NOSUCH&sku=OTHER", "ann")
		require.Equal(t, http.StatusBadRequest, p.Status)
		require.Contains(t, p.Body, "Nothing was added to your basket")
		require.Contains(t, p.Body, "SKU NOSUCH is not a product sold here")
		require.Contains(t, p.Body, "SKU OTHER is not a product sold here")
		p = e.get("/basket/add/", "ann")
		require.Equal(t, http.StatusBadRequest, p.Status)
		require.Contains(t, p.Body, "names no product")

		// Paid and free products together in one basket.
		id, _ = e.add("ann", url.Values{"sku": {audit, e.skus["verified"]}}.Encode())
		page = e.get("/basket/?id="+strconv.FormatInt(id, 10), "ann")
		require.Contains(t, page.Body, `id="basket-total">49.00 USD`)
		require.Contains(t, page.Body, "Pay with Sandbox")

		// An empty /basket/ is a page, not an error.
		page = e.get("/basket/", "ann")
		require.Equal(t, http.StatusOK, page.Status)
		require.Contains(t, page.Body, "Your basket is empty")
	})
}

func TestAlreadyPurchasedIsRefused(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		audit, pro := e.skus["audit"], e.skus["no-id-professional"]
		e.buyFree("ann", audit)

		p := e.get("/basket/add/?sku="+audit, "ann")
		require.Equal(t, http.StatusBadRequest, p.Status)
		require.Contains(t, p.Body, "You have already purchased these products")
		require.Contains(t, p.Body, "You have already purchased Seat in Demo Course (SKU "+audit+")")

		// With something else: that is added, the seat is not, and the page
		// says so.
		id, add := e.add("ann", "sku="+audit+"&sku="+pro)
		b, err := e.db.GetBasket(context.Background(), id)
		require.NoError(t, err)
		require.Len(t, b.Lines, 1)
		require.Equal(t, pro, b.Lines[0].Product.Stock.SKU)
		page := e.get(add.Location, "ann")
		require.Contains(t, page.Body, "You have already purchased Seat in Demo Course (SKU "+audit+")")

		// Another learner may buy it.
		e.add("bob", "sku="+audit)

		// Bought in another tab since the basket was made: refused at checkout.
		first, _ := e.add("carl", "sku="+audit)
		e.buyFree("carl", audit)
		p = e.checkout("carl", first, "")
		require.Equal(t, http.StatusConflict, p.Status)
		require.Contains(t, p.Body, "You have already purchased")
		orders, err := e.db.ListOrders(context.Background(), order.Filter{Username: "carl"})
		require.NoError(t, err)
		require.Len(t, orders, 1)
	})
}

func TestRolloutRefusal(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		// SKUs are the same in every database, so the setting can name one.
		unsold := catalog.SeatSKU("EDX", course, catalog.Seat{CertificateType: "verified", IDVerificationRequired: true})
		e := newEnv(t, engine, envOpts{rollout: &catalog.Rollout{Courses: []string{course}, UnsoldSKUs: []string{unsold}}})
		require.Equal(t, unsold, e.skus["verified"])

		// A SKU kept on the old order workflow is refused with the reason.
		p := e.get("/basket/add/?sku="+unsold, "ann")
		require.Equal(t, http.StatusBadRequest, p.Status)
		require.Contains(t, p.Body, "SKU "+unsold+" is not sold by this service yet.")

		// So is a course not yet sold here; the rest of the link is added.
		p = e.get("/basket/add/?sku="+e.skus["course2 audit"], "ann")
		require.Equal(t, http.StatusBadRequest, p.Status)
		require.Contains(t, p.Text, "Course "+course2+" is not sold by this service yet.")
		id, add := e.add("ann", url.Values{"sku": {e.skus["course2 audit"], unsold, e.skus["audit"]}}.Encode())
		page := e.get(add.Location, "ann")
		require.Contains(t, page.Text, "Course "+course2+" is not sold by this service yet.")
		require.Contains(t, page.Body, "SKU "+unsold+" is not sold by this service yet.")
		b, err := e.db.GetBasket(context.Background(), id)
		require.NoError(t, err)
		require.Len(t, b.Lines, 1)
		require.Equal(t, e.skus["audit"], b.Lines[0].Product.Stock.SKU)
	})
}
