package basket

import (
	"fmt"
	"strings"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/order"
)

// Refusal says why a learner cannot buy a product now.
type Refusal string

// Refusals. The values are also the query parameters that carry them to
// the storefront's basket page.
const (
	// RefusedUnavailable: unknown SKU, expired, or not a product to buy.
	RefusedUnavailable Refusal = "unavailable"
	// RefusedUnsold: the incremental rollout keeps it on the old service.
	RefusedUnsold Refusal = "unsold"
	// RefusedPurchased: the learner holds it already (and did not get it
	// refunded), and it is bought once.
	RefusedPurchased Refusal = "purchased"
)

// Refusals lists every refusal.
func Refusals() []Refusal { return []Refusal{RefusedUnavailable, RefusedUnsold, RefusedPurchased} }

// Refused is one SKU that cannot be bought, and why.
type Refused struct {
	SKU    string
	Reason Refusal
	// Why is the rollout's explanation, for RefusedUnsold.
	Why string
}

// Sellable is the one rule of what a learner may buy, called by every way
// an order is made: p (found tells whether the SKU named a product at all)
// must be buyable now, sold by this service, and, when bought once, not
// held already (purchased). It returns "" when p may be bought.
func Sellable(p catalog.Product, found bool, rollout *catalog.Rollout, purchased bool, now time.Time) (Refusal, error) {
	switch {
	case !found || !p.Buyable(now):
		return RefusedUnavailable, nil
	case rollout.Sold(p) != nil:
		return RefusedUnsold, rollout.Sold(p)
	case purchased && p.Class.OncePerLearner():
		return RefusedPurchased, nil
	}
	return "", nil
}

// Screen splits skus into those the learner may buy and those refused,
// keeping the order given.
func Screen(skus []string, products map[string]catalog.Product, purchased map[string]bool, rollout *catalog.Rollout, now time.Time) (keep []string, refused []Refused) {
	for _, sku := range skus {
		p, ok := products[sku]
		reason, why := Sellable(p, ok, rollout, purchased[sku], now)
		if reason == "" {
			keep = append(keep, sku)
			continue
		}
		r := Refused{SKU: sku, Reason: reason}
		if why != nil {
			r.Why = strings.TrimPrefix(why.Error(), catalog.ErrNotSoldHere.Error()+": ")
		}
		refused = append(refused, r)
	}
	return keep, refused
}

// RefusedError turns refusals into the error of a request that cannot be
// served in part: unknown or expired SKUs first (*UnavailableError), then
// rollout (catalog.ErrNotSoldHere), then purchases already held
// (order.ErrAlreadyPurchased). nil when nothing was refused.
func RefusedError(refused []Refused) error {
	var unavailable, purchased []string
	for _, r := range refused {
		switch r.Reason {
		case RefusedUnavailable:
			unavailable = append(unavailable, r.SKU)
		case RefusedPurchased:
			purchased = append(purchased, r.SKU)
		}
	}
	if len(unavailable) > 0 {
		return &UnavailableError{SKUs: unavailable}
	}
	for _, r := range refused {
		if r.Reason == RefusedUnsold {
			return fmt.Errorf("%w: %s", catalog.ErrNotSoldHere, r.Why)
		}
	}
	if len(purchased) > 0 {
		return fmt.Errorf("%w: the learner already holds %s", order.ErrAlreadyPurchased, strings.Join(purchased, ", "))
	}
	return nil
}
