package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
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
