package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"fulfill/internal/checkout"
	"fulfill/internal/money"
)

// calculateView is Otto's answer to GET /api/v2/baskets/calculate/: the
// totals as JSON numbers (DRF renders a bare Decimal as a float; the LMS
// subtracts them).
type calculateView struct {
	TotalExclDiscounts json.Number `json:"total_incl_tax_excl_discounts"`
	Total              json.Number `json:"total_incl_tax"`
	Currency           string      `json:"currency"`
}

// handleCalculate is Otto's BasketCalculateView: the price of a would-be
// basket of ?sku=… (repeated) for the caller, for ?username= (someone
// else's: staff and service users only) or for nobody (?is_anonymous=true,
// and always for the marketing site's user), with ?code= and ?bundle=. It
// writes nothing; anonymous answers are cached until a price or an offer
// changes. Otto charges no tax, so the incl. tax totals are the totals.
func handleCalculate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		in := checkout.PriceRequest{SKUs: q["sku"], Code: q.Get("code"), Username: strings.TrimSpace(q.Get("username")),
			Anonymous: strings.EqualFold(q.Get("is_anonymous"), "true"), Bundle: q.Get("bundle")}
		p, err := d.Checkout.Price(r.Context(), userFrom(r.Context()), in)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		writeJSON(w, http.StatusOK, calculateView{TotalExclDiscounts: json.Number(money.Format(p.Before, p.Currency)),
			Total: json.Number(money.Format(p.After, p.Currency)), Currency: p.Currency})
	})
}
