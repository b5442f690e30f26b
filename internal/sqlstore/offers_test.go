package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/offer"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
	"fulfill/internal/statemachine"
)

func siteOffer(name string, bp int64) offer.Offer {
	return offer.Offer{Name: name, Type: offer.TypeSite, Status: offer.StatusOpen, Exclusive: true,
		Condition: offer.Condition{Type: offer.ConditionCount, Range: offer.Range{All: true}, Value: 1},
		Benefit:   offer.Benefit{Type: offer.BenefitPercentage, Value: bp}}
}

// newCoupon stores a coupon of the given usage with codes.
func newCoupon(t *testing.T, db *sqlstore.DB, usage offer.VoucherUsage, maxUses int, codes ...string) offer.Coupon {
	t.Helper()
	start := time.Now().Add(-time.Hour).UTC()
	end := start.Add(30 * 24 * time.Hour)
	u, title, value, btype := string(usage), "Coupon "+codes[0], "10", "Percentage"
	q := len(codes)
	sp := offer.CouponSpec{Title: &title, VoucherType: &u, BenefitType: &btype, BenefitValue: &value, Start: &start, End: &end,
		Quantity: &q, Range: &offer.RangeSpec{SKUs: []string{"ABC1234"}, CourseKeys: []string{"course-v1:edX+DemoX+Demo"}}}
	if maxUses > 0 {
		sp.MaxUses = &maxUses
	}
	var c offer.Coupon
	require.NoError(t, sp.Build(&c, true, nil))
	for _, code := range codes {
		c.Vouchers = append(c.Vouchers, offer.Voucher{Code: code})
	}
	out, err := db.CreateCoupon(context.Background(), c)
	require.NoError(t, err)
	return out
}

func TestOffersCRUD(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		o := siteOffer("Spring sale", 1500)
		o.Priority, o.EmailDomains, o.MaxUserApplications = 3, []string{"example.com", "example.org"}, 2
		o.Condition.Range = offer.Range{SKUs: []string{"A"}, CourseKeys: []string{"course-v1:a+b+c"}, SeatTypes: []string{"verified"}}
		o.End = new(now.Add(time.Hour).Truncate(time.Microsecond))
		got, err := db.CreateOffer(ctx, o)
		require.NoError(t, err)
		require.NotZero(t, got.ID)
		o.ID = got.ID
		require.Equal(t, o, got)

		_, err = db.CreateOffer(ctx, o)
		require.ErrorIs(t, err, offer.ErrInvalid, "names are unique")
		bad := siteOffer("bad", 20000)
		_, err = db.CreateOffer(ctx, bad)
		require.ErrorIs(t, err, offer.ErrInvalid)

		ended := siteOffer("Ended", 100)
		ended.Start, ended.End = new(now.Add(-2*time.Hour)), new(now.Add(-time.Hour))
		_, err = db.CreateOffer(ctx, ended)
		require.NoError(t, err)
		later := siteOffer("Later", 100)
		later.Start = new(now.Add(time.Hour))
		later, err = db.CreateOffer(ctx, later)
		require.NoError(t, err)
		suspended, err := db.CreateOffer(ctx, siteOffer("Suspended", 100))
		require.NoError(t, err)
		require.NoError(t, db.SetOfferStatus(ctx, suspended.ID, offer.StatusSuspended))
		require.ErrorIs(t, db.SetOfferStatus(ctx, suspended.ID, offer.StatusConsumed), statemachine.ErrInvalidTransition)
		newCoupon(t, db, offer.UsageMulti, 0, "VOUCHERONLY")

		site, err := db.SiteOffers(ctx, now)
		require.NoError(t, err)
		var names []string
		for _, s := range site {
			names = append(names, s.Name)
		}
		require.Equal(t, []string{"Spring sale", "Later"}, names, "open site offers not ended, by priority")
		require.Equal(t, later.Start.Truncate(time.Microsecond), site[1].Start.UTC())

		_, err = db.GetOffer(ctx, 9999)
		require.ErrorIs(t, err, offer.ErrNotFound)
	})
}

func TestCouponsCRUD(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		c := newCoupon(t, db, offer.UsageMulti, 10, "SAVE10", "save11", "SAVE12")
		require.NotZero(t, c.ID)
		require.Equal(t, 3, c.Quantity)
		require.Len(t, c.Vouchers, 3)
		require.Equal(t, "SAVE11", c.Vouchers[1].Code, "stored upper-case")
		require.Equal(t, offer.UsageMulti, c.Usage)
		require.Equal(t, fmt.Sprintf("Coupon [%d]-Percentage-10", c.ID), c.Offer.Name)
		require.Equal(t, offer.TypeVoucher, c.Offer.Type)
		require.Equal(t, 10, c.Offer.MaxGlobalApplications)
		require.Equal(t, []string{"ABC1234"}, c.Offer.Condition.Range.SKUs)

		for _, code := range []string{"save10", "SAVE10", " Save10 "} {
			v, err := db.VoucherByCode(ctx, code)
			require.NoError(t, err, code)
			require.Equal(t, "SAVE10", v.Code)
			require.Len(t, v.Offers, 1)
			require.Equal(t, c.Offer.ID, v.Offers[0].ID)
		}
		_, err := db.VoucherByCode(ctx, "NOPE")
		require.ErrorIs(t, err, offer.ErrVoucherNotFound)

		// A code exists already, whatever its case.
		var dup offer.Coupon
		title, u, bt, bv := "Dup", "Single use", "Percentage", "5"
		start, end := c.Start, c.End
		require.NoError(t, offer.CouponSpec{Title: &title, VoucherType: &u, BenefitType: &bt, BenefitValue: &bv, Start: &start, End: &end,
			Range: &offer.RangeSpec{SKUs: []string{"X"}}}.Build(&dup, true, nil))
		dup.Vouchers = []offer.Voucher{{Code: "Save12"}}
		_, err = db.CreateCoupon(ctx, dup)
		require.ErrorIs(t, err, offer.ErrCodeExists)
		require.ErrorContains(t, err, "A coupon with code SAVE12 already exists")

		second := newCoupon(t, db, offer.UsageSingle, 0, "ONLYONE")
		list, total, err := db.ListCoupons(ctx, 0, 20)
		require.NoError(t, err)
		require.Equal(t, 2, total)
		require.Equal(t, []int64{second.ID, c.ID}, []int64{list[0].ID, list[1].ID}, "newest first")
		require.Equal(t, 1, list[0].Quantity)
		require.Equal(t, "ONLYONE", list[0].Vouchers[0].Code)
		page, _, err := db.ListCoupons(ctx, 1, 20)
		require.NoError(t, err)
		require.Len(t, page, 1)

		// Update: fields, the offer, the vouchers' dates.
		v2, max2, newTitle := "20", 2, "Renamed"
		newEnd := c.End.Add(24 * time.Hour)
		require.NoError(t, offer.CouponSpec{Title: &newTitle, BenefitValue: &v2, MaxUses: &max2, End: &newEnd}.Build(&c, false, nil))
		up, err := db.UpdateCoupon(ctx, c)
		require.NoError(t, err)
		require.Equal(t, "Renamed", up.Title)
		require.Equal(t, int64(2000), up.Offer.Benefit.Value)
		require.Equal(t, fmt.Sprintf("Coupon [%d]-Percentage-20", c.ID), up.Offer.Name)
		require.True(t, newEnd.Equal(up.End))
		for _, v := range up.Vouchers {
			require.True(t, newEnd.Equal(v.End))
		}
		// A limit below the uses consumes the offer; raising it re-opens it.
		for i := range 2 {
			require.NoError(t, db.RecordOfferUse(ctx, offer.OfferUse{OfferID: c.Offer.ID, Applications: 1}, "ann", fmt.Sprintf("EDX-%d", i)))
		}
		got, err := db.GetOffer(ctx, c.Offer.ID)
		require.NoError(t, err)
		require.Equal(t, offer.StatusConsumed, got.Status)
		max5 := 5
		require.NoError(t, offer.CouponSpec{MaxUses: &max5}.Build(&up, false, nil))
		up, err = db.UpdateCoupon(ctx, up)
		require.NoError(t, err)
		require.Equal(t, offer.StatusOpen, up.Offer.Status)
		require.Equal(t, 2, up.Offer.NumApplications)

		_, err = db.RedeemVoucher(ctx, "save10", offer.User{Username: "ann"}, "EDX-1")
		require.NoError(t, err)
		apps, err := db.CouponApplications(ctx, c.ID)
		require.NoError(t, err)
		require.Len(t, apps, 1)
		require.Equal(t, "SAVE10", apps[0].Code)
		require.Equal(t, "EDX-1", apps[0].OrderNumber)

		require.NoError(t, db.DeleteCoupon(ctx, c.ID))
		_, err = db.GetCoupon(ctx, c.ID)
		require.ErrorIs(t, err, offer.ErrCouponNotFound)
		require.ErrorIs(t, db.DeleteCoupon(ctx, c.ID), offer.ErrCouponNotFound)
		_, err = db.VoucherByCode(ctx, "SAVE10")
		require.ErrorIs(t, err, offer.ErrVoucherNotFound)
		_, err = db.GetOffer(ctx, c.Offer.ID)
		require.ErrorIs(t, err, offer.ErrNotFound)
		_, err = db.UpdateCoupon(ctx, c)
		require.ErrorIs(t, err, offer.ErrCouponNotFound)
	})
}

// TestSingleUseRace: 20 learners redeem one single-use code at once; one
// gets it.
func TestSingleUseRace(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		newCoupon(t, db, offer.UsageSingle, 0, "ONCE")
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = db.RedeemVoucher(ctx, "once", offer.User{Username: fmt.Sprintf("learner%d", i)}, fmt.Sprintf("EDX-%d", 100+i))
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			require.ErrorIs(t, err, offer.ErrVoucherUnavailable)
			require.ErrorContains(t, err, "This coupon has already been used.")
		}
		require.Equal(t, 1, ok)
		v, err := db.VoucherByCode(ctx, "ONCE")
		require.NoError(t, err)
		require.Equal(t, 1, v.Uses)
		u, err := db.OfferUsage(ctx, "learner0", v.ID, nil)
		require.NoError(t, err)
		require.Equal(t, 1, u.VoucherUses)

		// A full refund gives the code back; recording again is a replay.
		var winner string
		apps, err := db.CouponApplications(ctx, v.CouponID)
		require.NoError(t, err)
		winner = apps[0].OrderNumber
		_, err = db.RedeemVoucher(ctx, "ONCE", offer.User{Username: apps[0].Username}, winner)
		require.NoError(t, err, "the same order again does nothing")
		released, err := db.ReleaseVoucherUse(ctx, winner)
		require.NoError(t, err)
		require.Equal(t, 1, released)
		released, err = db.ReleaseVoucherUse(ctx, winner)
		require.NoError(t, err)
		require.Zero(t, released)
		_, err = db.RedeemVoucher(ctx, "ONCE", offer.User{Username: "late"}, "EDX-999")
		require.NoError(t, err)
	})
}

// TestOfferTotalLimitRace: an offer limited to 5 applications, used by 20
// orders at once, is used 5 times and becomes Consumed.
func TestOfferTotalLimitRace(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		o := siteOffer("Five", 1000)
		o.MaxGlobalApplications = 5
		o, err := db.CreateOffer(ctx, o)
		require.NoError(t, err)
		before, err := db.PricingVersion(ctx)
		require.NoError(t, err)
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = db.RecordOfferUse(ctx, offer.OfferUse{OfferID: o.ID, Applications: 1, Discount: 100},
					fmt.Sprintf("learner%d", i), fmt.Sprintf("EDX-%d", 100+i))
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				require.ErrorIs(t, err, offer.ErrLimitReached)
			}
		}
		require.Equal(t, 5, ok)
		got, err := db.GetOffer(ctx, o.ID)
		require.NoError(t, err)
		require.Equal(t, 5, got.NumApplications)
		require.Equal(t, 5, got.NumOrders)
		require.Equal(t, offer.StatusConsumed, got.Status)
		after, err := db.PricingVersion(ctx)
		require.NoError(t, err)
		require.Greater(t, after, before, "consuming an offer changes prices")
		site, err := db.SiteOffers(ctx, time.Now())
		require.NoError(t, err)
		require.Empty(t, site)

		// A full refund of one order re-opens it.
		var winner string
		for i, err := range errs {
			if err == nil {
				winner = fmt.Sprintf("EDX-%d", 100+i)
				break
			}
		}
		released, err := db.ReleaseVoucherUse(ctx, winner)
		require.NoError(t, err)
		require.Equal(t, 1, released)
		got, err = db.GetOffer(ctx, o.ID)
		require.NoError(t, err)
		require.Equal(t, 4, got.NumApplications)
		require.Equal(t, offer.StatusOpen, got.Status)
	})
}

func TestVoucherUsageModes(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		c := newCoupon(t, db, offer.UsageOncePerCustomer, 0, "ONCEEACH")
		ann := offer.User{Username: "ann"}
		_, err := db.RedeemVoucher(ctx, "onceeach", ann, "EDX-1")
		require.NoError(t, err)
		_, err = db.RedeemVoucher(ctx, "onceeach", ann, "EDX-2")
		require.ErrorIs(t, err, offer.ErrVoucherUnavailable)
		require.ErrorContains(t, err, "You have already used this coupon in a previous order.")
		_, err = db.RedeemVoucher(ctx, "onceeach", offer.User{}, "EDX-3")
		require.ErrorIs(t, err, offer.ErrVoucherUnavailable, "signed-in users only")
		_, err = db.RedeemVoucher(ctx, "onceeach", offer.User{Username: "bob"}, "EDX-4")
		require.NoError(t, err)
		u, err := db.OfferUsage(ctx, "ann", c.Vouchers[0].ID, []int64{c.Offer.ID})
		require.NoError(t, err)
		require.Equal(t, 2, u.VoucherUses)
		require.Equal(t, 1, u.VoucherUsesByUser)

		multi := newCoupon(t, db, offer.UsageMulti, 0, "MANY")
		for i := range 3 {
			_, err := db.RedeemVoucher(ctx, "MANY", ann, fmt.Sprintf("EDX-M%d", i))
			require.NoError(t, err)
		}
		_, err = db.RedeemVoucher(ctx, "MISSING", ann, "EDX-9")
		require.ErrorIs(t, err, offer.ErrVoucherNotFound)

		// A redemption is all or nothing: an offer over its per-user limit
		// leaves the voucher unused.
		site := siteOffer("Once each", 500)
		site.MaxUserApplications = 1
		site, err = db.CreateOffer(ctx, site)
		require.NoError(t, err)
		require.NoError(t, db.RecordRedemption(ctx, offer.Redemption{OrderNumber: "EDX-R1", Username: "ann", VoucherID: multi.Vouchers[0].ID,
			Offers: []offer.OfferUse{{OfferID: site.ID, Applications: 1}, {OfferID: multi.Offer.ID, Applications: 1}}}))
		err = db.RecordRedemption(ctx, offer.Redemption{OrderNumber: "EDX-R2", Username: "ann", VoucherID: multi.Vouchers[0].ID,
			Offers: []offer.OfferUse{{OfferID: site.ID, Applications: 1}}})
		require.ErrorIs(t, err, offer.ErrLimitReached)
		v, err := db.VoucherByCode(ctx, "MANY")
		require.NoError(t, err)
		require.Equal(t, 4, v.Uses, "the failed redemption recorded nothing")
		u, err = db.OfferUsage(ctx, "ann", 0, []int64{site.ID, multi.Offer.ID})
		require.NoError(t, err)
		require.Equal(t, map[int64]int{site.ID: 1, multi.Offer.ID: 1}, u.ByUser)
		u, err = db.OfferUsage(ctx, "", 0, []int64{site.ID})
		require.NoError(t, err)
		require.Empty(t, u.ByUser)
	})
}

func TestPricingVersion(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		version := func() int64 {
			v, err := db.PricingVersion(ctx)
			require.NoError(t, err)
			return v
		}
		v0 := version()
		course := demoCourse(t)
		course, err := db.PutCourse(ctx, course)
		require.NoError(t, err)
		v1 := version()
		require.Greater(t, v1, v0, "new stock records")
		_, err = db.PutCourse(ctx, course)
		require.NoError(t, err)
		require.Equal(t, v1, version(), "the same prices again change nothing")
		course.Seats[2].Price = usd(t, "90")
		_, err = db.PutCourse(ctx, course)
		require.NoError(t, err)
		v2 := version()
		require.Greater(t, v2, v1, "a price changed")
		c := newCoupon(t, db, offer.UsageMulti, 0, "V")
		v3 := version()
		require.Greater(t, v3, v2, "a coupon")
		_, err = db.RedeemVoucher(ctx, "V", offer.User{Username: "ann"}, "EDX-1")
		require.NoError(t, err)
		require.Equal(t, v3, version(), "a use below the limit changes no price")
		require.NoError(t, db.DeleteCoupon(ctx, c.ID))
		require.Greater(t, version(), v3)

		ps, err := db.ProductsBySKU(ctx, []string{course.Seats[2].SKU})
		require.NoError(t, err)
		st := ps[course.Seats[2].SKU].Stock
		byID, err := db.ProductsByStockRecordIDs(ctx, []int64{st.ID, 99999})
		require.NoError(t, err)
		require.Len(t, byID, 1)
		require.Equal(t, course.Seats[2].SKU, byID[st.ID].Stock.SKU)
	})
}
