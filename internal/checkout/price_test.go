package checkout_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/auth"
	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/money"
	"fulfill/internal/offer"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

type priceBundle struct {
	db       *sqlstore.DB
	svc      *checkout.Service
	now      time.Time
	verified string // 49.00
	pro      string // 100.00
	course   catalog.Course
}

func usd(t *testing.T, s string) money.Amount {
	a, err := money.Parse(s, "USD")
	require.NoError(t, err)
	return a
}

func setupPrice(t *testing.T, db *sqlstore.DB) *priceBundle {
	t.Helper()
	ctx := context.Background()
	b := &priceBundle{db: db, now: time.Now().UTC().Truncate(time.Second)}
	b.svc = &checkout.Service{Store: db, Offers: db, ServiceUsers: []string{"ecommerce_worker"}, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return b.now }}
	c, err := db.PutCourse(ctx, catalog.Course{ID: "course-v1:edX+Price+1T", Name: "Price", Seats: []catalog.Seat{
		{Price: usd(t, "0")},
		{CertificateType: "verified", IDVerificationRequired: true, Price: usd(t, "49")},
		{CertificateType: "professional", Price: usd(t, "100")},
	}})
	require.NoError(t, err)
	b.course = c
	for _, s := range c.Seats {
		switch s.CertificateType {
		case "verified":
			b.verified = s.SKU
		case "professional":
			b.pro = s.SKU
		}
	}
	return b
}

func (b *priceBundle) coupon(t *testing.T, code, percent string, domains string) offer.Coupon {
	t.Helper()
	start, end := b.now.Add(-time.Hour), b.now.Add(24*time.Hour)
	u, bt, title := "Multi-use", "Percentage", "Coupon "+code
	sp := offer.CouponSpec{Title: &title, VoucherType: &u, BenefitType: &bt, BenefitValue: &percent, Start: &start, End: &end,
		Code: &code, Range: &offer.RangeSpec{CourseKeys: []string{b.course.ID}}}
	if domains != "" {
		sp.EmailDomains = &domains
	}
	c, err := b.svc.CreateCoupon(context.Background(), "staff", sp)
	require.NoError(t, err)
	return c
}

func siteOffer(name string, bp int64) offer.Offer {
	return offer.Offer{Name: name, Type: offer.TypeSite, Status: offer.StatusOpen, Exclusive: true,
		Condition: offer.Condition{Type: offer.ConditionCount, Range: offer.Range{All: true}, Value: 1},
		Benefit:   offer.Benefit{Type: offer.BenefitPercentage, Value: bp}}
}

var ann = order.User{Username: "ann", Email: "ann@example.com"}

func TestPriceAnonymousCache(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		b := setupPrice(t, db)
		anon := checkout.PriceRequest{SKUs: []string{b.pro, b.verified}, Anonymous: true}
		p, err := b.svc.Price(ctx, ann, anon)
		require.NoError(t, err)
		require.False(t, p.Cached)
		require.True(t, p.Anonymous)
		require.Equal(t, int64(14900), p.Before)
		require.Equal(t, int64(14900), p.After)
		require.Equal(t, "USD", p.Currency)

		again, err := b.svc.Price(ctx, ann, checkout.PriceRequest{SKUs: []string{b.verified, b.pro, b.pro}, Anonymous: true})
		require.NoError(t, err)
		require.True(t, again.Cached, "sorted SKUs are one key")
		require.Equal(t, p.Result, again.Result)

		// A site offer invalidates the cache.
		_, err = db.CreateOffer(ctx, siteOffer("Ten off", 1000))
		require.NoError(t, err)
		p, err = b.svc.Price(ctx, ann, anon)
		require.NoError(t, err)
		require.False(t, p.Cached)
		require.Equal(t, int64(14900-1490), p.After)

		// So does a price.
		course := b.course
		for i := range course.Seats {
			if course.Seats[i].CertificateType == "professional" {
				course.Seats[i].Price = usd(t, "80")
			}
		}
		_, err = db.PutCourse(ctx, course)
		require.NoError(t, err)
		p, err = b.svc.Price(ctx, ann, anon)
		require.NoError(t, err)
		require.False(t, p.Cached)
		require.Equal(t, int64(12900), p.Before)
		require.Equal(t, int64(12900-1290), p.After)

		// Signed-in answers are never cached.
		for range 2 {
			p, err = b.svc.Price(ctx, ann, checkout.PriceRequest{SKUs: []string{b.pro}})
			require.NoError(t, err)
			require.False(t, p.Cached)
		}
	})
}

func TestPriceOfferStartsLater(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		b := setupPrice(t, db)
		o := siteOffer("Tomorrow", 5000)
		o.Start = new(b.now.Add(time.Hour))
		_, err := db.CreateOffer(ctx, o)
		require.NoError(t, err)
		anon := checkout.PriceRequest{SKUs: []string{b.pro}, Anonymous: true}
		p, err := b.svc.Price(ctx, ann, anon)
		require.NoError(t, err)
		require.Equal(t, int64(10000), p.After)
		p, err = b.svc.Price(ctx, ann, anon)
		require.NoError(t, err)
		require.True(t, p.Cached)
		b.now = b.now.Add(time.Hour)
		p, err = b.svc.Price(ctx, ann, anon)
		require.NoError(t, err)
		require.False(t, p.Cached, "the cached answer ends when the offer starts")
		require.Equal(t, int64(5000), p.After)
	})
}

func TestPriceWhoseBasket(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		b := setupPrice(t, db)
		b.coupon(t, "ORGONLY", "25", "example.org")
		_, err := db.UpsertUser(ctx, order.User{Username: "olga", Email: "olga@example.org"})
		require.NoError(t, err)
		req := func(username string) checkout.PriceRequest {
			return checkout.PriceRequest{SKUs: []string{b.pro}, Code: "orgonly", Username: username}
		}
		// Ann (example.com) is not eligible; Olga (example.org) is.
		p, err := b.svc.Price(ctx, ann, req(""))
		require.NoError(t, err)
		require.Equal(t, int64(10000), p.After)
		require.Equal(t, offer.ReasonEmailDomain, p.Refusals[0].Reason)
		p, err = b.svc.Price(ctx, ann, req("ANN"))
		require.NoError(t, err, "one's own name in any case")
		require.False(t, p.Anonymous)

		_, err = b.svc.Price(ctx, ann, req("olga"))
		require.ErrorIs(t, err, auth.ErrForbidden)
		require.ErrorContains(t, err, "Unauthorized user credentials")
		for _, caller := range []order.User{{Username: "staff", IsStaff: true}, {Username: "ecommerce_worker"}} {
			p, err = b.svc.Price(ctx, caller, req("olga"))
			require.NoError(t, err)
			require.Equal(t, int64(7500), p.After, caller.Username)
			p, err = b.svc.Price(ctx, caller, req("nobody-known"))
			require.NoError(t, err)
			require.True(t, p.Anonymous, "an unknown user is priced anonymously")
			require.Equal(t, int64(10000), p.After)
		}
		p, err = b.svc.Price(ctx, order.User{Username: checkout.MarketingUser}, req(""))
		require.NoError(t, err)
		require.True(t, p.Anonymous)
		require.Equal(t, int64(10000), p.After, "the marketing site is always anonymous")

		// Anonymous ignores the code.
		b.coupon(t, "ALL10", "10", "")
		p, err = b.svc.Price(ctx, ann, checkout.PriceRequest{SKUs: []string{b.pro}, Code: "ALL10", Anonymous: true})
		require.NoError(t, err)
		require.Equal(t, int64(10000), p.After)
		p, err = b.svc.Price(ctx, ann, checkout.PriceRequest{SKUs: []string{b.pro}, Code: "all10"})
		require.NoError(t, err)
		require.Equal(t, int64(9000), p.After)
		// An unknown code is ignored.
		p, err = b.svc.Price(ctx, ann, checkout.PriceRequest{SKUs: []string{b.pro}, Code: "NOSUCH"})
		require.NoError(t, err)
		require.Equal(t, int64(10000), p.After)

		// Pricing writes nothing.
		v, err := db.VoucherByCode(ctx, "ALL10")
		require.NoError(t, err)
		require.Zero(t, v.Uses)
	})
}

func TestPriceErrors(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		b := setupPrice(t, db)
		_, err := b.svc.Price(ctx, ann, checkout.PriceRequest{SKUs: []string{" "}})
		require.ErrorIs(t, err, basket.ErrInvalid)
		require.ErrorContains(t, err, "No SKUs provided")
		_, err = b.svc.Price(ctx, ann, checkout.PriceRequest{SKUs: []string{b.pro}, Username: "ann", Anonymous: true})
		require.ErrorIs(t, err, basket.ErrInvalid)
		_, err = b.svc.Price(ctx, ann, checkout.PriceRequest{SKUs: []string{"NOPE1", "NOPE2"}})
		var ue *basket.UnavailableError
		require.ErrorAs(t, err, &ue)
		require.Equal(t, []string{"NOPE1", "NOPE2"}, ue.SKUs)
		p, err := b.svc.Price(ctx, ann, checkout.PriceRequest{SKUs: []string{"NOPE1", b.verified}})
		require.NoError(t, err, "unknown SKUs are dropped when one is known")
		require.Equal(t, int64(4900), p.Before)
	})
}
