package checkout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"fulfill/internal/apperr"
	"fulfill/internal/auth"
	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/offer"
	"fulfill/internal/order"
)

// OfferStore is what pricing and the coupon use cases need from storage
// (sqlstore's offers.go).
type OfferStore interface {
	// SiteOffers returns the Open site offers not ended at now.
	SiteOffers(ctx context.Context, now time.Time) ([]offer.Offer, error)
	// VoucherByCode finds a voucher case-insensitively, with its offers;
	// offer.ErrVoucherNotFound.
	VoucherByCode(ctx context.Context, code string) (offer.Voucher, error)
	// OfferUsage returns the live uses Apply needs for username.
	OfferUsage(ctx context.Context, username string, voucherID int64, offerIDs []int64) (offer.Usage, error)
	// PricingVersion changes whenever a price may change (offers,
	// vouchers, stock records), on any replica.
	PricingVersion(ctx context.Context) (int64, error)

	CreateCoupon(ctx context.Context, c offer.Coupon) (offer.Coupon, error)
	UpdateCoupon(ctx context.Context, c offer.Coupon) (offer.Coupon, error)
	DeleteCoupon(ctx context.Context, id int64) error
	GetCoupon(ctx context.Context, id int64) (offer.Coupon, error)
	ListCoupons(ctx context.Context, offset, limit int) ([]offer.Coupon, int, error)
	CouponApplications(ctx context.Context, couponID int64) ([]offer.VoucherApplication, error)
	ProductsByStockRecordIDs(ctx context.Context, ids []int64) (map[int64]catalog.Product, error)
}

// MarketingUser is the marketing site's service user, whose calculations
// are always anonymous (Otto's BasketCalculateView.MARKETING_USER).
const MarketingUser = "marketing_site_worker"

// PriceRequest is a would-be basket to price (Otto's
// GET /api/v2/baskets/calculate/).
type PriceRequest struct {
	// SKUs are bought one each; unknown ones are left out unless none is
	// known.
	SKUs []string
	// Code is a voucher code, ignored for an anonymous basket and when no
	// voucher has it.
	Code string
	// Username names whose basket it is ("" or the caller: the caller's;
	// another user: staff and service users only). Anonymous prices it for
	// nobody; the two exclude each other.
	Username  string
	Anonymous bool
	// Bundle is a program UUID: the program's offers apply instead of the
	// ordinary site offers.
	Bundle string
}

// Priced is a basket priced with the offers in force.
type Priced struct {
	offer.Result
	// Anonymous tells that nobody's offers or code were used.
	Anonymous bool
	// Cached tells that the answer came from the anonymous price cache,
	// whose Result is shared: read it, never change it.
	Cached bool
}

// Price prices a would-be basket for the caller, another user, or nobody,
// with the same applicator orders will use, and writes nothing.
// Anonymous answers are cached in memory under the store's pricing
// version, until it changes, an offer starts or ends, or an hour passes.
// Errors: basket.ErrInvalid (no SKUs, username with is_anonymous, mixed
// currencies), *basket.UnavailableError (no SKU known), auth.ErrForbidden
// (another user's basket, unless staff or a service user).
func (s *Service) Price(ctx context.Context, caller order.User, in PriceRequest) (Priced, error) {
	skus := make([]string, 0, len(in.SKUs))
	for _, sku := range in.SKUs {
		if sku = strings.TrimSpace(sku); sku != "" && !slices.Contains(skus, sku) {
			skus = append(skus, sku)
		}
	}
	slices.Sort(skus)
	switch {
	case len(skus) == 0:
		return Priced{}, fmt.Errorf("%w: No SKUs provided", basket.ErrInvalid)
	case len(skus) > basket.MaxLines:
		return Priced{}, fmt.Errorf("%w: at most %d products per basket", basket.ErrInvalid, basket.MaxLines)
	case in.Username != "" && in.Anonymous:
		return Priced{}, fmt.Errorf("%w: Provide username or is_anonymous query param, but not both", basket.ErrInvalid)
	}
	user, anonymous, err := s.pricedFor(ctx, caller, in)
	if err != nil {
		return Priced{}, err
	}
	now := s.now()
	code, bundle := offer.NormalizeCode(in.Code), strings.TrimSpace(in.Bundle)
	key := strings.Join(skus, "\x00") + "\x01" + code + "\x01" + bundle
	var version int64
	if anonymous && s.Offers != nil {
		if version, err = s.Offers.PricingVersion(ctx); err != nil {
			return Priced{}, err
		}
		if r, ok := s.prices.get(key, version, now); ok {
			return Priced{Result: r, Anonymous: true, Cached: true}, nil
		}
	}
	products, err := s.Store.ProductsBySKU(ctx, skus)
	if err != nil {
		return Priced{}, err
	}
	var keep, missing []string
	for _, sku := range skus {
		if p, ok := products[sku]; ok && p.Buyable(now) {
			keep = append(keep, sku)
		} else {
			missing = append(missing, sku)
		}
	}
	if len(keep) == 0 {
		return Priced{}, &basket.UnavailableError{SKUs: missing}
	}
	b, err := basket.Build(order.User{Username: user.Username, Email: user.Email}, keep, products, now)
	if err != nil {
		return Priced{}, err
	}
	if anonymous {
		code = "" // Otto's anonymous calculation ignores the code
	}
	ap, err := s.apply(ctx, b, user, code, bundle, now)
	if err != nil {
		return Priced{}, err
	}
	r := ap.Result // Otto ignores an unknown code here
	if anonymous && s.Offers != nil {
		until := now.Add(PriceCacheTTL)
		if !r.NextChange.IsZero() && r.NextChange.Before(until) {
			until = r.NextChange
		}
		for _, l := range b.Lines {
			if e := l.Product.Stock.Expires; e != nil && e.After(now) && e.Before(until) {
				until = *e
			}
		}
		s.prices.put(key, version, r, until)
	}
	return Priced{Result: r, Anonymous: anonymous}, nil
}

// applied is a basket priced by apply.
type applied struct {
	offer.Result
	// Offers are the offers that could apply (in force, and the voucher's),
	// by id.
	Offers map[int64]offer.Offer
	// UnknownCode tells that no voucher has the code given.
	UnknownCode bool
}

// apply prices b for user with the offers in force for bundle and the
// voucher of code ("" for none; an anonymous user gets none), through the
// one applicator: calculate, baskets and orders all price here.
func (s *Service) apply(ctx context.Context, b basket.Basket, user offer.User, code, bundle string, now time.Time) (applied, error) {
	out := applied{Offers: map[int64]offer.Offer{}}
	var offers []offer.Offer
	var v *offer.Voucher
	var usage offer.Usage
	if s.Offers != nil {
		site, err := s.Offers.SiteOffers(ctx, now)
		if err != nil {
			return out, err
		}
		offers = offer.InForce(site, bundle)
		if user.SignedIn() && code != "" {
			found, err := s.Offers.VoucherByCode(ctx, code)
			switch {
			case errors.Is(err, offer.ErrVoucherNotFound):
				out.UnknownCode = true
			case err != nil:
				return out, err
			default:
				v = &found
			}
		}
		if user.SignedIn() {
			var ids []int64
			var vid int64
			for _, o := range offers {
				ids = append(ids, o.ID)
			}
			if v != nil {
				vid = v.ID
				for _, o := range v.Offers {
					ids = append(ids, o.ID)
				}
			}
			if usage, err = s.Offers.OfferUsage(ctx, user.Username, vid, ids); err != nil {
				return out, err
			}
		}
	} else if code != "" {
		out.UnknownCode = true
	}
	for _, o := range offers {
		out.Offers[o.ID] = o
	}
	if v != nil {
		for _, o := range v.Offers {
			out.Offers[o.ID] = o
		}
	}
	out.Result = offer.Apply(offer.FromBasket(b), user, offers, v, usage, now)
	return out, nil
}

// ErrCoupon is returned when a basket's voucher code cannot be used: no
// voucher has it, or it does not apply to the basket (Otto's words say
// why). Nothing is placed.
var ErrCoupon = apperr.New(apperr.Invalid, "coupon code not applied")

// errCouponUnknown marks the ErrCoupon of a code no voucher has.
var errCouponUnknown = fmt.Errorf("%w", ErrCoupon)

// discount prices b (built for its owner) with the offers in force and the
// voucher of code, as an order placed from it will record them: the
// basket returned carries the code and its discounts, its Total the
// discounted total. A code that is unknown, or gives nothing off, is
// ErrCoupon with Otto's words.
func (s *Service) discount(ctx context.Context, b basket.Basket, code string) (basket.Basket, error) {
	code = offer.NormalizeCode(code)
	user := offer.User{Username: b.Owner.Username, Email: b.Owner.Email}
	if s.Offers == nil && code == "" {
		return b.WithDiscounts("", nil), nil
	}
	ap, err := s.apply(ctx, b, user, code, "", s.now())
	if err != nil {
		return b, err
	}
	if code != "" {
		if ap.UnknownCode {
			return b, fmt.Errorf("%w: %s", errCouponUnknown, fmt.Sprintf("Coupon code '%s' does not exist.", code))
		}
		if ap.Voucher == nil {
			return b, fmt.Errorf("%w: %s", ErrCoupon, couponRefusal(ap.Result, code))
		}
	}
	return b.WithDiscounts(code, discountsOf(ap)), nil
}

// couponRefusal is the sentence that says why the voucher of code did not
// apply: the voucher's own reason, else its offers' (eligibility, limits,
// dates), else that the basket does not qualify.
func couponRefusal(r offer.Result, code string) string {
	for _, f := range r.Refusals {
		if f.OfferID == 0 && f.Code != "" && f.Reason != offer.ReasonNoDiscount {
			return f.Words
		}
	}
	for _, f := range r.Refusals {
		switch f.Reason {
		case offer.ReasonEmailDomain, offer.ReasonConsumed, offer.ReasonUserLimit, offer.ReasonEnded, offer.ReasonNotStarted,
			offer.ReasonSuspended, offer.ReasonCurrency:
			if f.Code != "" {
				return f.Words
			}
		}
	}
	return fmt.Sprintf("Basket does not qualify for coupon code %s.", code)
}

// discountsOf turns the applicator's answer into the basket's discounts,
// one per offer applied, with each line's share.
func discountsOf(ap applied) []basket.Discount {
	var out []basket.Discount
	for _, a := range ap.Applications {
		o := ap.Offers[a.OfferID]
		d := basket.Discount{OfferID: a.OfferID, OfferName: a.OfferName, OfferType: string(o.Type), VoucherID: a.VoucherID,
			Code: a.VoucherCode, BenefitType: string(o.Benefit.Type), BenefitValue: o.Benefit.Value, Currency: o.Currency,
			Applications: a.Applications, Lines: make([]int64, len(ap.Lines))}
		for i, l := range ap.Lines {
			for _, ld := range l.Discounts {
				if ld.OfferID == a.OfferID {
					d.Lines[i] += ld.Amount
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// pricedFor is whose basket a calculation prices, as Otto decides it: the
// marketing site's user and is_anonymous price for nobody; no username, or
// the caller's own (in any case), for the caller; another user only for
// staff and service users, and a user never seen is priced anonymously.
func (s *Service) pricedFor(ctx context.Context, caller order.User, in PriceRequest) (offer.User, bool, error) {
	switch {
	case caller.Username == MarketingUser || in.Anonymous:
		return offer.User{}, true, nil
	case in.Username == "" || strings.EqualFold(in.Username, caller.Username):
		return offer.User{Username: caller.Username, Email: caller.Email}, false, nil
	case !caller.IsStaff && !slices.Contains(s.ServiceUsers, caller.Username):
		return offer.User{}, false, fmt.Errorf("%w: Unauthorized user credentials", auth.ErrForbidden)
	}
	u, err := s.Store.UserByName(ctx, in.Username)
	if errors.Is(err, order.ErrNotFound) {
		return offer.User{}, true, nil
	}
	if err != nil {
		return offer.User{}, false, err
	}
	return offer.User{Username: u.Username, Email: u.Email}, false, nil
}

// PriceCacheTTL bounds how long an anonymous price is kept (Otto's
// ANONYMOUS_BASKET_CALCULATE_CACHE_TIMEOUT).
const PriceCacheTTL = time.Hour

// maxCachedPrices bounds the anonymous price cache; when full it starts
// over.
const maxCachedPrices = 10000

// priceCache keeps anonymous prices under one pricing version. The zero
// value is ready.
type priceCache struct {
	mu      sync.Mutex
	version int64
	entries map[string]cachedPrice
}

type cachedPrice struct {
	r     offer.Result
	until time.Time
}

func (c *priceCache) get(key string, version int64, now time.Time) (offer.Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		c.version, c.entries = version, nil
		return offer.Result{}, false
	}
	e, ok := c.entries[key]
	if !ok || !now.Before(e.until) {
		return offer.Result{}, false
	}
	return e.r, true
}

func (c *priceCache) put(key string, version int64, r offer.Result, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		if version < c.version {
			return // priced under an older version than the cache holds
		}
		c.version, c.entries = version, nil
	}
	if c.entries == nil || len(c.entries) >= maxCachedPrices {
		c.entries = map[string]cachedPrice{}
	}
	c.entries[key] = cachedPrice{r: r, until: until}
}
