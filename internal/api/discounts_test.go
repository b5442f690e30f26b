package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
	"fulfill/internal/payment"
	"fulfill/internal/sqlstore"
)

// discountOrderOut is what the discount tests read of an order.
type discountOrderOut struct {
	Number          string `json:"number"`
	Status          string `json:"status"`
	TotalExclTax    string `json:"total_excl_tax"`
	TotalBefore     string `json:"total_before_discounts_incl_tax"`
	Discount        string `json:"discount"`
	BasketDiscounts []struct {
		Amount        float64  `json:"amount"`
		BenefitValue  *float64 `json:"benefit_value"`
		Code          *string  `json:"code"`
		ContainsOffer bool     `json:"contains_offer"`
		Currency      string   `json:"currency"`
		OfferType     string   `json:"offer_type"`
	} `json:"basket_discounts"`
	Vouchers []struct {
		ID          int64  `json:"id"`
		Code        string `json:"code"`
		Name        string `json:"name"`
		RedeemURL   string `json:"redeem_url"`
		Usage       string `json:"usage"`
		EndDatetime string `json:"end_datetime"`
		Benefit     struct {
			Type  string  `json:"type"`
			Value float64 `json:"value"`
		} `json:"benefit"`
	} `json:"vouchers"`
	Lines []struct {
		UnitPrice string `json:"unit_price_excl_tax"`
		LinePrice string `json:"line_price_excl_tax"`
	} `json:"lines"`
}

// coupon creates a coupon through the API and returns its first code.
func (e *env) coupon(extra map[string]any) string {
	e.t.Helper()
	body := newCouponBody(map[string]any{"email_domains": nil, "course_seat_types": nil})
	for k, v := range extra {
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
	}
	var created struct {
		CouponID int64 `json:"coupon_id"`
	}
	e.do("POST", "/api/v2/coupons/", e.staff, body, http.StatusOK, &created)
	c, err := e.db.GetCoupon(context.Background(), created.CouponID)
	require.NoError(e.t, err)
	return c.Vouchers[0].Code
}

func (e *env) voucherUses(code string) int {
	e.t.Helper()
	v, err := e.db.VoucherByCode(context.Background(), code)
	require.NoError(e.t, err)
	u, err := e.db.OfferUsage(context.Background(), "", v.ID, nil)
	require.NoError(e.t, err)
	return u.VoucherUses
}

func TestDiscountedOrders(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		pro := e.skus["no-id-professional"]
		save := e.coupon(map[string]any{"code": "SAVE20", "benefit_value": "20", "voucher_type": "Single use", "max_uses": nil})
		require.Equal(t, "SAVE20", save)

		// An unknown code, or one that does not apply, is a 400 with
		// Otto's words, and nothing is stored.
		body := func(code string, sku string) map[string]any {
			return map[string]any{"products": []map[string]string{{"sku": sku}}, "checkout": true,
				"payment_processor_name": "sandbox", "vouchers": []string{code}}
		}
		raw := e.do("POST", "/api/v2/baskets/", e.token("ann", false), body("NOPE", pro), http.StatusBadRequest, nil)
		require.Contains(t, string(raw), "Coupon code 'NOPE' does not exist.")
		raw = e.do("POST", "/api/v2/baskets/", e.token("ann", false), body("save20", e.skus["course2 no-id-professional"]), http.StatusBadRequest, nil)
		require.Contains(t, string(raw), "Basket does not qualify for coupon code SAVE20.")
		e.do("POST", "/api/v2/baskets/", e.token("ann", false), map[string]any{"products": []map[string]string{{"sku": pro}},
			"vouchers": []string{"A1"}, "code": "B2"}, http.StatusBadRequest, nil)

		// A paid basket with the code: the processor is asked for the
		// discounted total, and its payment places the discounted order.
		var b paidBasket
		e.do("POST", "/api/v2/baskets/", e.token("ann", false), body("save20", pro), http.StatusOK, &b)
		require.Equal(t, "80.00", b.PaymentData.FormData["amount"])
		good := payment.SandboxNotification{BasketID: b.ID, Reference: "txn-save", Amount: "80.00", Currency: "USD", Decision: payment.Accept}
		code, out := e.notify(good, []byte(sandboxSecret))
		require.Equal(t, http.StatusOK, code, out)
		require.Equal(t, "Complete", out["order_status"], out)
		number := out["order_number"].(string)

		var o discountOrderOut
		e.do("GET", "/api/v2/orders/"+number+"/", e.staff, nil, http.StatusOK, &o)
		require.Equal(t, "80.00", o.TotalExclTax)
		require.Equal(t, "100.00", o.TotalBefore)
		require.Equal(t, "20.00", o.Discount)
		require.Len(t, o.Lines, 1)
		require.Equal(t, "100.00", o.Lines[0].UnitPrice, "the unit price stays the price before discount")
		require.Equal(t, "80.00", o.Lines[0].LinePrice)
		require.Len(t, o.BasketDiscounts, 1)
		require.InDelta(t, 20.0, o.BasketDiscounts[0].Amount, 0.001)
		require.Equal(t, "SAVE20", *o.BasketDiscounts[0].Code)
		require.InDelta(t, 20.0, *o.BasketDiscounts[0].BenefitValue, 0.001)
		require.Equal(t, "Voucher", o.BasketDiscounts[0].OfferType)
		require.Len(t, o.Vouchers, 1)
		require.Equal(t, "SAVE20", o.Vouchers[0].Code)
		require.Equal(t, "Single use", o.Vouchers[0].Usage)
		require.Equal(t, "2099-12-31T23:59:59Z", o.Vouchers[0].EndDatetime)
		require.Equal(t, "Percentage", o.Vouchers[0].Benefit.Type)
		require.InDelta(t, 20.0, o.Vouchers[0].Benefit.Value, 0.001)
		require.Contains(t, o.Vouchers[0].RedeemURL, "/coupons/offer/?code=SAVE20")
		require.Equal(t, 1, e.voucherUses("SAVE20"))

		// The single-use code is used: another learner is told so.
		raw = e.do("POST", "/api/v2/baskets/", e.token("bob", false), body("SAVE20", pro), http.StatusBadRequest, nil)
		require.Contains(t, string(raw), "This coupon has already been used.")

		// A full refund credits what was paid and gives the code back.
		var ids []int64
		e.do("POST", "/api/v2/refunds/", e.staff, map[string]string{"order_number": number}, http.StatusCreated, &ids)
		require.Len(t, ids, 1)
		e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "approve"}, http.StatusOK, nil)
		require.Equal(t, []string{"80.00"}, e.credits(number))
		require.Equal(t, 0, e.voucherUses("SAVE20"))
		e.do("POST", "/api/v2/baskets/", e.token("bob", false), body("SAVE20", pro), http.StatusOK, &b)
		require.Equal(t, "80.00", b.PaymentData.FormData["amount"], "a released code can be used again")
	})
}

// A 100 % code makes a free basket, placed without payment; a single-use
// one goes to exactly one of many learners racing for it.
func TestFreeWithCodeRace(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		pro := e.skus["no-id-professional"]
		code := e.coupon(map[string]any{"benefit_value": "100", "voucher_type": "Single use", "max_uses": nil})
		const n = 6
		var wg sync.WaitGroup
		ok, refused := 0, 0
		var mu sync.Mutex
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var got struct {
					Order *struct{ Number, Status string } `json:"order"`
				}
				req := e.NewRequest("POST", "/api/v2/baskets/", fmt.Sprintf(`{"products":[{"sku":%q}],"checkout":true,"code":%q}`, pro, code))
				req.Header.Set("Authorization", "JWT "+e.token(fmt.Sprintf("racer%d", i), false))
				req.Header.Set("Content-Type", "application/json")
				res, raw := e.Send(req)
				mu.Lock()
				defer mu.Unlock()
				switch res.StatusCode {
				case http.StatusOK:
					ok++
					require.NoError(t, json.Unmarshal(raw, &got))
					require.NotNil(t, got.Order)
					require.Equal(t, "Complete", got.Order.Status)
					o := e.order(got.Order.Number)
					require.Equal(t, "0.00", o.TotalExclTax)
				case http.StatusBadRequest, http.StatusConflict:
					refused++
				default:
					t.Errorf("status %d: %s", res.StatusCode, raw)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, 1, ok, "a single-use code is used once")
		require.Equal(t, n-1, refused)
		require.Equal(t, 1, e.voucherUses(code))
	})
}
