package api

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/auth"
	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/money"
)

type codeView struct {
	Code          string `json:"code"`
	Status        string `json:"status"`
	RedeemedBy    string `json:"redeemed_by,omitempty"`
	RedeemedOrder string `json:"redeemed_order,omitempty"`
	RedeemURL     string `json:"redeem_url"`
}

// handleCodesCSV lets the buyer (or staff) download an order's enrollment
// codes.
func handleCodesCSV(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := visibleOrder(r.Context(), store, r.PathValue("number"))
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		codes, err := store.CodesForOrder(r.Context(), o.ID)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-enrollment-codes.csv"`, o.Number))
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"code", "course", "seat_sku", "status", "redeemed_by", "redeem_url"})
		for _, l := range o.Lines {
			for _, c := range codes[l.ID] {
				_ = cw.Write([]string{c.Code, l.Attributes.String("course_key"), c.SeatSKU, string(c.Status), c.RedeemedBy, "/coupons/redeem/?code=" + c.Code})
			}
		}
		cw.Flush()
	})
}

// handleRedeem is GET /coupons/redeem/?code=…[&sku=…]: a signed-in learner
// uses an enrollment code, which places a $0 order for its seat and
// fulfills it, or a coupon's voucher code for the product sku, which
// places the order at once when the code makes it free (to the receipt)
// and otherwise leads to the basket page with the code applied. A
// signed-out visitor is sent to sign in first.
func handleRedeem(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		code := strings.TrimSpace(r.URL.Query().Get("code"))
		if code == "" {
			writeError(w, r, log, fmt.Errorf("%w: ?code= is required", errBadRequest))
			return
		}
		u, err := d.Verifier.User(auth.Token(r))
		if err != nil {
			if d.Storefront && !wantsJSON(r) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			writeError(w, r, log, err)
			return
		}
		got, err := d.Checkout.Redeem(r.Context(), u, code, r.URL.Query().Get("sku"))
		browser := d.Storefront && !wantsJSON(r)
		switch {
		case err != nil && browser && got.BasketID != 0 && errors.Is(err, checkout.ErrCoupon):
			// The basket page says why the code did not apply.
			http.Redirect(w, r, "/basket/?"+url.Values{"id": {strconv.FormatInt(got.BasketID, 10)}, "code": {code}}.Encode(), http.StatusSeeOther)
		case err != nil:
			writeError(w, r, log, err)
		case got.Order == nil && browser:
			// Not free after the discount: to the basket, code applied.
			http.Redirect(w, r, "/basket/?"+url.Values{"id": {strconv.FormatInt(got.BasketID, 10)}, "code": {code}}.Encode(), http.StatusSeeOther)
		case got.Order == nil:
			writeError(w, r, log, fmt.Errorf("%w: basket %d, with coupon code %s applied, needs a payment", basket.ErrNotFree, got.BasketID, code))
		case browser:
			http.Redirect(w, r, "/checkout/receipt/?order_number="+url.QueryEscape(got.Order.Number), http.StatusSeeOther)
		default:
			writeOrder(w, r, d, *got.Order)
		}
	})
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json") || r.Header.Get("Authorization") != ""
}

type productIn struct {
	ProductClass string             `json:"product_class"`
	Title        string             `json:"title"`
	Price        *decimal           `json:"price"`
	Currency     string             `json:"currency"`
	Expires      *time.Time         `json:"expires"`
	Attributes   catalog.Attributes `json:"attributes"`
}

// handleProductPut creates or updates a stand-alone product by SKU.
func handleProductPut(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		var in productIn
		if err := decode(r, &in); err != nil {
			writeError(w, r, log, err)
			return
		}
		if in.Price == nil {
			writeError(w, r, log, fmt.Errorf("%w: price is required", errBadRequest))
			return
		}
		cur := in.Currency
		if cur == "" {
			cur = "USD"
		}
		price, err := money.Parse(string(*in.Price), cur)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		p, err := store.PutProduct(r.Context(), catalog.Product{Class: catalog.Class(in.ProductClass), Title: in.Title, Attributes: in.Attributes,
			Stock: &catalog.StockRecord{SKU: r.PathValue("sku"), Price: price, Expires: in.Expires}})
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": p.ID, "sku": p.Stock.SKU, "product_class": p.Class, "title": p.Title,
			"price": p.Stock.Price.String(), "currency": p.Stock.Price.Currency, "attribute_values": attributesView(p.Attributes)})
	})
}
