package checkout

import (
	"context"
	"errors"
	"fmt"

	"fulfill/internal/catalog"
	"fulfill/internal/offer"
)

// Coupons: the staff's coupon administration (Otto's /api/v2/coupons/).
// A coupon is a batch of vouchers sharing one offer; see offer.Coupon.

// errNoOffers answers coupon calls on a service built without an offer
// store.
var errNoOffers = errors.New("checkout: no offer store configured")

// CreateCoupon makes a coupon from spec: its offer, and Quantity vouchers
// with the given code or generated ones (drawn again on a collision).
// Errors: *offer.FieldsError (offer.ErrInvalid), offer.ErrCategoryNotFound,
// offer.ErrCodeExists.
func (s *Service) CreateCoupon(ctx context.Context, actor string, spec offer.CouponSpec) (offer.Coupon, error) {
	if s.Offers == nil {
		return offer.Coupon{}, errNoOffers
	}
	stock, err := s.couponStock(ctx, spec)
	if err != nil {
		return offer.Coupon{}, err
	}
	var c offer.Coupon
	if err := spec.Build(&c, true, stock); err != nil {
		return c, err
	}
	generated := len(c.Vouchers) == 0
	for try := 0; ; try++ {
		if generated {
			c.Vouchers = newCodes(c.Quantity)
		}
		out, err := s.Offers.CreateCoupon(ctx, c)
		if errors.Is(err, offer.ErrCodeExists) && generated && try < 3 {
			continue
		}
		if err == nil {
			s.Log.Info("coupon_created", "coupon", out.ID, "title", out.Title, "codes", out.Quantity, "actor", actor)
		}
		return out, err
	}
}

// newCodes draws n distinct codes.
func newCodes(n int) []offer.Voucher {
	seen := make(map[string]bool, n)
	out := make([]offer.Voucher, 0, n)
	for len(out) < n {
		c := offer.NewCode()
		if !seen[c] {
			seen[c] = true
			out = append(out, offer.Voucher{Code: c})
		}
	}
	return out
}

// UpdateCoupon changes what spec gives of coupon id (Otto's PUT: fields
// not given stay). Errors as CreateCoupon's, and offer.ErrCouponNotFound.
func (s *Service) UpdateCoupon(ctx context.Context, actor string, id int64, spec offer.CouponSpec) (offer.Coupon, error) {
	if s.Offers == nil {
		return offer.Coupon{}, errNoOffers
	}
	c, err := s.Offers.GetCoupon(ctx, id)
	if err != nil {
		return c, err
	}
	stock, err := s.couponStock(ctx, spec)
	if err != nil {
		return c, err
	}
	if err := spec.Build(&c, false, stock); err != nil {
		return c, err
	}
	out, err := s.Offers.UpdateCoupon(ctx, c)
	if err == nil {
		s.Log.Info("coupon_updated", "coupon", id, "actor", actor)
	}
	return out, err
}

// DeleteCoupon deletes coupon id, its vouchers and its offer;
// offer.ErrCouponNotFound.
func (s *Service) DeleteCoupon(ctx context.Context, actor string, id int64) error {
	if s.Offers == nil {
		return errNoOffers
	}
	err := s.Offers.DeleteCoupon(ctx, id)
	if err == nil {
		s.Log.Info("coupon_deleted", "coupon", id, "actor", actor)
	}
	return err
}

// Coupon returns coupon id with its vouchers; offer.ErrCouponNotFound.
func (s *Service) Coupon(ctx context.Context, id int64) (offer.Coupon, error) {
	if s.Offers == nil {
		return offer.Coupon{}, errNoOffers
	}
	return s.Offers.GetCoupon(ctx, id)
}

// Coupons returns a page of coupons, newest first, and their number.
func (s *Service) Coupons(ctx context.Context, offset, limit int) ([]offer.Coupon, int, error) {
	if s.Offers == nil {
		return nil, 0, errNoOffers
	}
	return s.Offers.ListCoupons(ctx, offset, limit)
}

// CouponCodes returns coupon id with its vouchers, and every use of them.
func (s *Service) CouponCodes(ctx context.Context, id int64) (offer.Coupon, []offer.VoucherApplication, error) {
	c, err := s.Coupon(ctx, id)
	if err != nil {
		return c, nil, err
	}
	apps, err := s.Offers.CouponApplications(ctx, id)
	return c, apps, err
}

// couponStock looks up the stock records a spec names.
func (s *Service) couponStock(ctx context.Context, spec offer.CouponSpec) (map[int64]catalog.Product, error) {
	if spec.Range == nil || len(spec.Range.StockRecordIDs) == 0 {
		return nil, nil
	}
	if len(spec.Range.StockRecordIDs) > offer.MaxQuantity {
		return nil, fmt.Errorf("%w: too many stock_record_ids", offer.ErrInvalid)
	}
	return s.Offers.ProductsByStockRecordIDs(ctx, spec.Range.StockRecordIDs)
}
