package api

import (
	"strconv"

	"fulfill/internal/money"
	"fulfill/internal/offer"
	"fulfill/internal/order"
)

// basketDiscountView is one of Otto's OrderSerializer basket_discounts: an
// offer's discount on the whole order (its lines' shares summed).
type basketDiscountView struct {
	Amount                 float64  `json:"amount"`
	BenefitValue           *float64 `json:"benefit_value"`
	Code                   *string  `json:"code"`
	ConditionName          *string  `json:"condition_name"`
	ContainsOffer          bool     `json:"contains_offer"`
	Currency               string   `json:"currency"`
	EnterpriseCustomerName *string  `json:"enterprise_customer_name"`
	OfferType              string   `json:"offer_type"`
}

type voucherBenefitView struct {
	Type  string  `json:"type"`
	Value float64 `json:"value"`
}

// voucherView is Otto's VoucherSerializer.
type voucherView struct {
	ID                 int64              `json:"id"`
	Name               string             `json:"name"`
	Code               string             `json:"code"`
	RedeemURL          string             `json:"redeem_url"`
	Usage              string             `json:"usage"`
	StartDatetime      apiTime            `json:"start_datetime"`
	EndDatetime        apiTime            `json:"end_datetime"`
	NumBasketAdditions int                `json:"num_basket_additions"`
	NumOrders          int                `json:"num_orders"`
	TotalDiscount      string             `json:"total_discount"`
	DateCreated        apiTime            `json:"date_created"`
	Offers             []int64            `json:"offers"`
	IsAvailableToUser  []any              `json:"is_available_to_user"`
	Benefit            voucherBenefitView `json:"benefit"`
	IsPublic           bool               `json:"is_public"`
}

// benefitNumber is a benefit value as a number: percent for a Percentage,
// major units of currency otherwise.
func benefitNumber(benefitType string, value int64, currency string) float64 {
	if benefitType == string(offer.BenefitPercentage) || currency == "" {
		return float64(value) / 100
	}
	return majorUnits(value, currency)
}

func majorUnits(minor int64, currency string) float64 {
	f, _ := strconv.ParseFloat(money.Format(minor, currency), 64)
	return f
}

// discounts are an order's basket_discounts (one per offer, in the order
// first recorded), vouchers and discount: the total taken off, as a string
// (Otto gives its first discount's amount, which is the total whenever one
// offer applied, as with a coupon).
func (x orderData) discounts(o order.Order) ([]basketDiscountView, []voucherView, string) {
	bds := []basketDiscountView{}
	byOffer := map[int64]int{}
	var minor []int64
	var total int64
	for _, d := range o.Discounts {
		total += d.Amount
		if i, ok := byOffer[d.OfferID]; ok {
			minor[i] += d.Amount
			bds[i].Amount = majorUnits(minor[i], o.Currency)
			continue
		}
		bd := basketDiscountView{Amount: majorUnits(d.Amount, o.Currency), Currency: o.Currency, OfferType: d.OfferType,
			ContainsOffer: d.VoucherID == 0}
		if d.VoucherID != 0 {
			code, value := d.Code, benefitNumber(d.BenefitType, d.BenefitValue, d.Currency)
			bd.Code, bd.BenefitValue = &code, &value
		} else {
			name := d.OfferName
			bd.ConditionName = &name
		}
		byOffer[d.OfferID] = len(bds)
		bds = append(bds, bd)
		minor = append(minor, d.Amount)
	}
	vs := []voucherView{}
	for _, v := range o.Vouchers {
		vv := voucherView{ID: v.ID, Name: v.Name, Code: v.Code, RedeemURL: x.base + "/coupons/offer/?code=" + v.Code, Usage: v.Usage,
			StartDatetime: apiTime(v.Start), EndDatetime: apiTime(v.End), NumOrders: v.NumOrders,
			TotalDiscount: money.Format(v.TotalDiscount, o.Currency), DateCreated: apiTime(v.CreatedAt), Offers: v.OfferIDs,
			IsAvailableToUser: []any{true, ""}}
		if vv.Offers == nil {
			vv.Offers = []int64{}
		}
		switch {
		case x.now.After(v.End):
			vv.IsAvailableToUser = []any{false, "This coupon has expired."}
		case v.Usage == string(offer.UsageSingle) && v.NumOrders > 0:
			vv.IsAvailableToUser = []any{false, "This coupon has already been used."}
		}
		for _, d := range o.Discounts {
			if d.VoucherID == v.ID {
				vv.Benefit = voucherBenefitView{Type: d.BenefitType, Value: benefitNumber(d.BenefitType, d.BenefitValue, d.Currency)}
				break
			}
		}
		vs = append(vs, vv)
	}
	discount := "0"
	if total > 0 {
		discount = money.Format(total, o.Currency)
	}
	return bds, vs, discount
}
