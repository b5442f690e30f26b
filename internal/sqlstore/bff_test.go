package sqlstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/order"
	"fulfill/internal/payment"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// TestBFFStore: the payment MFE's current basket (newest Open or Frozen),
// a basket's first line quantity, and a payment found by reference.
func TestBFFStore(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		skus := sfSetup(t, db)
		_, err := db.CurrentBasket(ctx, "bea")
		require.ErrorIs(t, err, order.ErrNotFound)

		first := sfOpenBasket(t, db, "bea", skus["no-id-professional"])
		second := sfOpenBasket(t, db, "bea", skus["no-id-professional"])
		sfOpenBasket(t, db, "cid", skus["no-id-professional"])
		got, err := db.CurrentBasket(ctx, "bea")
		require.NoError(t, err)
		require.Equal(t, second, got, "the newest")
		require.NoError(t, db.FreezeOpenBasket(ctx, second, "sandbox"))
		got, err = db.CurrentBasket(ctx, "bea")
		require.NoError(t, err)
		require.Equal(t, second, got, "a Frozen basket is still current")

		require.NoError(t, db.SetLineQuantity(ctx, first, 3))
		sb, err := db.GetBasket(ctx, first)
		require.NoError(t, err)
		require.Equal(t, 3, sb.Lines[0].Quantity)
		require.ErrorIs(t, db.SetLineQuantity(ctx, second, 2), basket.ErrNotOpen)
		require.ErrorIs(t, db.SetLineQuantity(ctx, first, 0), basket.ErrInvalid)
		require.ErrorIs(t, db.SetLineQuantity(ctx, 99999, 2), order.ErrNotFound)

		_, err = db.PaymentByReference(ctx, "stripe", "pi_none")
		require.ErrorIs(t, err, payment.ErrNotFound)
	})
}
