package sqlstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

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
