package api_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
	"fulfill/internal/offer"
	"fulfill/internal/sqlstore"
)

type couponOut struct {
	ID       int64
	Title    string
	Price    string
	Category *struct {
		ID   int
		Name string
	}
	Client          string
	Code            *string
	CodeStatus      string   `json:"code_status"`
	CouponType      string   `json:"coupon_type"`
	BenefitType     string   `json:"benefit_type"`
	BenefitValue    float64  `json:"benefit_value"`
	CourseSeatTypes []string `json:"course_seat_types"`
	SKUs            []string `json:"skus"`
	CourseKeys      []string `json:"course_keys"`
	EmailDomains    *string  `json:"email_domains"`
	StartDate       string   `json:"start_date"`
	EndDate         string   `json:"end_date"`
	MaxUses         *int     `json:"max_uses"`
	NumUses         int      `json:"num_uses"`
	Quantity        int
	VoucherType     string `json:"voucher_type"`
	OfferID         int64  `json:"offer_id"`
}

func newCouponBody(extra map[string]any) map[string]any {
	body := map[string]any{"title": "Spring promo", "category": map[string]string{"name": "Course Promotion"}, "client": "Acme",
		"voucher_type": "Multi-use", "benefit_type": "Percentage", "benefit_value": "12.5", "max_uses": 10,
		"start_datetime": "2020-01-01T00:00:00Z", "end_datetime": "2099-12-31T23:59:59Z", "course_keys": []string{course},
		"course_seat_types": "verified,professional", "email_domains": "example.com", "price": "100.00"}
	for k, v := range extra {
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
	}
	return body
}

func TestCouponsAPI(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		ctx := context.Background()

		e.do("POST", "/api/v2/coupons/", e.token("ann", false), newCouponBody(nil), http.StatusForbidden, nil)
		e.do("GET", "/api/v2/coupons/", "", nil, http.StatusUnauthorized, nil)

		var created struct {
			CouponID    int64 `json:"coupon_id"`
			PaymentData struct {
				Name string `json:"payment_processor_name"`
			} `json:"payment_data"`
		}
		e.do("POST", "/api/v2/coupons/", e.staff, newCouponBody(map[string]any{"code": "spring25"}), http.StatusOK, &created)
		require.NotZero(t, created.CouponID)
		require.Equal(t, "Invoice", created.PaymentData.Name)

		var c couponOut
		e.do("GET", fmt.Sprintf("/api/v2/coupons/%d/", created.CouponID), e.staff, nil, http.StatusOK, &c)
		require.Equal(t, "Spring promo", c.Title)
		require.Equal(t, "100.00", c.Price)
		require.Equal(t, "Course Promotion", c.Category.Name)
		require.Equal(t, 7, c.Category.ID)
		require.Equal(t, "Acme", c.Client)
		require.Equal(t, "SPRING25", *c.Code)
		require.Equal(t, "ACTIVE", c.CodeStatus)
		require.Equal(t, "Discount code", c.CouponType)
		require.Equal(t, "Percentage", c.BenefitType)
		require.Equal(t, 12.5, c.BenefitValue)
		require.Equal(t, []string{"verified", "professional"}, c.CourseSeatTypes)
		require.Equal(t, []string{course}, c.CourseKeys)
		require.Equal(t, "example.com", *c.EmailDomains)
		require.Equal(t, "2020-01-01T00:00:00Z", c.StartDate)
		require.Equal(t, "2099-12-31T23:59:59Z", c.EndDate)
		require.Equal(t, 10, *c.MaxUses)
		require.Equal(t, 1, c.Quantity)
		require.Equal(t, "Multi-use", c.VoucherType)

		// Looked up case-insensitively.
		v, err := e.db.VoucherByCode(ctx, "Spring25")
		require.NoError(t, err)
		require.Equal(t, c.OfferID, v.Offers[0].ID)

		// Generated codes, from stock records.
		ps, err := e.db.ProductsBySKU(ctx, []string{e.skus["verified"], e.skus["audit"]})
		require.NoError(t, err)
		verified, audit := ps[e.skus["verified"]].Stock.ID, ps[e.skus["audit"]].Stock.ID
		var bulk struct {
			CouponID int64 `json:"coupon_id"`
		}
		e.do("POST", "/api/v2/coupons/", e.staff, newCouponBody(map[string]any{"title": "Free seats", "quantity": 3,
			"voucher_type": "Single use", "max_uses": nil, "benefit_value": 100, "course_keys": nil, "course_seat_types": nil,
			"email_domains": nil, "stock_record_ids": []int64{verified}}), http.StatusOK, &bulk)
		e.do("GET", fmt.Sprintf("/api/v2/coupons/%d/", bulk.CouponID), e.staff, nil, http.StatusOK, &c)
		require.Equal(t, "Enrollment code", c.CouponType)
		require.Equal(t, 3, c.Quantity)
		require.Nil(t, c.Code)
		require.Nil(t, c.MaxUses)
		require.Equal(t, []string{e.skus["verified"]}, c.SKUs)

		var list struct {
			Count   int
			Next    *string
			Results []struct {
				ID    int64
				Title string
				Code  *string
			}
		}
		e.do("GET", "/api/v2/coupons/", e.staff, nil, http.StatusOK, &list)
		require.Equal(t, 2, list.Count)
		require.Nil(t, list.Next)
		require.Equal(t, bulk.CouponID, list.Results[0].ID)
		require.Nil(t, list.Results[0].Code)
		require.Equal(t, "SPRING25", *list.Results[1].Code)
		e.do("GET", "/api/v2/coupons/?page=1&page_size=1", e.staff, nil, http.StatusOK, &list)
		require.Len(t, list.Results, 1)
		require.NotNil(t, list.Next)

		// Validation, as Otto answers it.
		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			detail string
		}{
			{"benefit type", map[string]any{"benefit_type": "Fixed price"}, http.StatusBadRequest, "benefit_type"},
			{"negative", map[string]any{"benefit_value": -5}, http.StatusBadRequest, "benefit_value: must not be negative"},
			{"max_uses on single use", map[string]any{"voucher_type": "Single use"}, http.StatusBadRequest, "max_uses"},
			{"no end", map[string]any{"end_datetime": nil}, http.StatusBadRequest, "end_datetime: is required"},
			{"bad date", map[string]any{"start_datetime": "yesterday"}, http.StatusBadRequest, "start_datetime"},
			{"email domains", map[string]any{"email_domains": "example.com,"}, http.StatusBadRequest, "email_domains"},
			{"no range", map[string]any{"course_keys": nil, "course_seat_types": nil}, http.StatusBadRequest, "stock_record_ids"},
			{"audit seat", map[string]any{"course_keys": nil, "course_seat_types": nil, "stock_record_ids": []int64{audit}},
				http.StatusBadRequest, "Course mode not supported"},
			{"duplicate code", map[string]any{"code": "SPRING25"}, http.StatusBadRequest, "A coupon with code SPRING25 already exists"},
			{"unknown category", map[string]any{"category": map[string]string{"name": "Nope"}}, http.StatusNotFound, "category"},
			{"enterprise", map[string]any{"enterprise_customer": map[string]string{"id": "x"}}, http.StatusBadRequest,
				"Enterprise coupons can no longer be created or updated from this endpoint."},
		} {
			var p struct{ Detail string }
			e.do("POST", "/api/v2/coupons/", e.staff, newCouponBody(tc.body), tc.status, &p)
			require.Contains(t, p.Detail, tc.detail, tc.name)
		}

		// Update: given fields change; benefit_type cannot.
		path := fmt.Sprintf("/api/v2/coupons/%d/", created.CouponID)
		e.do("PUT", path, e.staff, map[string]any{"benefit_value": 20, "max_uses": 3, "title": "Renamed",
			"end_datetime": "2098-01-01T00:00:00Z", "email_domains": ""}, http.StatusOK, &c)
		require.Equal(t, "Renamed", c.Title)
		require.Equal(t, 20.0, c.BenefitValue)
		require.Equal(t, 3, *c.MaxUses)
		require.Equal(t, "2098-01-01T00:00:00Z", c.EndDate)
		require.Nil(t, c.EmailDomains)
		require.Equal(t, []string{course}, c.CourseKeys, "the range stays when not given")
		var p struct{ Detail string }
		e.do("PATCH", path, e.staff, map[string]any{"benefit_type": "Absolute"}, http.StatusBadRequest, &p)
		require.Contains(t, p.Detail, "benefit_type: cannot be changed")

		// The codes and their uses.
		var coupon offer.Coupon
		coupon, err = e.db.GetCoupon(ctx, bulk.CouponID)
		require.NoError(t, err)
		_, err = e.db.RedeemVoucher(ctx, coupon.Vouchers[1].Code, offer.User{Username: "=ann"}, "EDX-100042")
		require.NoError(t, err)
		raw := e.do("GET", fmt.Sprintf("/api/v2/coupons/%d/codes.csv", bulk.CouponID), e.staff, nil, http.StatusOK, nil)
		rows, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 4)
		require.Equal(t, []string{"Code", "Coupon Name", "Maximum Coupon Usage", "Redemption Count", "Coupon Type", "Discount", "URL",
			"Status", "Order Number", "Redeemed By Username", "Create Date", "Coupon Start Date", "Coupon Expiry Date", "Email Domains",
			"Released Date"}, rows[0])
		used := rows[2]
		require.Equal(t, coupon.Vouchers[1].Code, used[0])
		require.Equal(t, []string{"1", "1", "Enrollment code", "100%"}, used[2:6])
		require.Equal(t, e.srv.URL+"/coupons/offer/?code="+used[0], used[6])
		require.Equal(t, []string{"ACTIVE", "EDX-100042", "'=ann"}, used[7:10])
		require.Equal(t, "", rows[1][8], "an unused code has no order")

		// Delete.
		e.do("DELETE", path, e.token("ann", false), nil, http.StatusForbidden, nil)
		e.do("DELETE", path, e.staff, nil, http.StatusNoContent, nil)
		e.do("GET", path, e.staff, nil, http.StatusNotFound, nil)
		e.do("DELETE", path, e.staff, nil, http.StatusNotFound, nil)
		e.do("GET", "/api/v2/coupons/abc/", e.staff, nil, http.StatusNotFound, nil)
		e.do("GET", "/api/v2/coupons/999/codes.csv", e.staff, nil, http.StatusNotFound, nil)
		_, err = e.db.VoucherByCode(ctx, "SPRING25")
		require.ErrorIs(t, err, offer.ErrVoucherNotFound)
	})
}
