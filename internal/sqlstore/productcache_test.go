package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/offer"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// TestProductCache: a lookup by SKU is served from memory briefly, and
// this process's catalog writes are seen at once.
func TestProductCache(t *testing.T) {
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		c, err := db.PutCourse(ctx, demoCourse(t))
		require.NoError(t, err)
		sku := c.Seats[2].SKU
		got, err := db.ProductsBySKU(ctx, []string{sku, "NOSUCH"})
		require.NoError(t, err)
		require.EqualValues(t, 10000, got[sku].Stock.Price.Minor)
		_, found := got["NOSUCH"]
		require.False(t, found)

		// A price change through this store is seen by the next lookup.
		c.Seats[2].Price = usd(t, "80")
		_, err = db.PutCourse(ctx, c)
		require.NoError(t, err)
		got, err = db.ProductsBySKU(ctx, []string{sku})
		require.NoError(t, err)
		require.EqualValues(t, 8000, got[sku].Stock.Price.Minor, "no stale price after a write")
		again, err := db.ProductsBySKU(ctx, []string{sku})
		require.NoError(t, err)
		require.Equal(t, got[sku], again[sku], "served again, the same")
	})
}

// TestNoSiteOffersCache: that there are no site offers is remembered
// briefly, but this process's offer writes are seen at once, and the
// emptiness found for one time never answers for an earlier one.
func TestNoSiteOffersCache(t *testing.T) {
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		got, err := db.SiteOffers(ctx, now)
		require.NoError(t, err)
		require.Empty(t, got)

		o := siteOffer("Launch", 1000)
		end := now.Add(time.Hour)
		o.End = &end
		created, err := db.CreateOffer(ctx, o)
		require.NoError(t, err)
		got, err = db.SiteOffers(ctx, now)
		require.NoError(t, err)
		require.Len(t, got, 1, "the offer is seen at once after this store wrote it")

		// After its end there is none, and that is remembered; asked for
		// before its end again, the offer is there.
		got, err = db.SiteOffers(ctx, end.Add(time.Minute))
		require.NoError(t, err)
		require.Empty(t, got)
		got, err = db.SiteOffers(ctx, now)
		require.NoError(t, err)
		require.Len(t, got, 1, "none later is not none earlier")

		require.NoError(t, db.SetOfferStatus(ctx, created.ID, offer.StatusSuspended))
		got, err = db.SiteOffers(ctx, now)
		require.NoError(t, err)
		require.Empty(t, got)
		require.NoError(t, db.SetOfferStatus(ctx, created.ID, offer.StatusOpen))
		got, err = db.SiteOffers(ctx, now)
		require.NoError(t, err)
		require.Len(t, got, 1, "reopened: seen at once")
	})
}
