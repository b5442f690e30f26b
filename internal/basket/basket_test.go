package basket

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
	"fulfill/internal/money"
	"fulfill/internal/order"
)

func TestBuild(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	past := now.Add(-time.Hour)
	seat := func(sku, price, cur string, exp *time.Time) catalog.Product {
		a, err := money.Parse(price, cur)
		require.NoError(t, err)
		return catalog.Product{ID: 2, ParentID: 1, Class: catalog.ClassSeat, Stock: &catalog.StockRecord{SKU: sku, Price: a, Expires: exp}}
	}
	products := map[string]catalog.Product{
		"FREE":   seat("FREE", "0", "USD", nil),
		"PAID":   seat("PAID", "49", "USD", nil),
		"EUR":    seat("EUR", "10", "EUR", nil),
		"OLD":    seat("OLD", "0", "USD", &past),
		"PARENT": {ID: 1, Class: catalog.ClassSeat, Stock: &catalog.StockRecord{SKU: "PARENT"}},
	}
	u := order.User{Username: "ann"}

	b, err := Build(u, []string{"FREE", "FREE"}, products, now)
	require.NoError(t, err)
	require.Len(t, b.Lines, 1)
	require.True(t, b.Free())

	b, err = Build(u, []string{"FREE", "PAID"}, products, now)
	require.NoError(t, err)
	require.EqualValues(t, 4900, b.Total)
	require.False(t, b.Free())

	_, err = Build(u, []string{"FREE", "NOPE", "OLD", "PARENT"}, products, now)
	var ue *UnavailableError
	require.ErrorAs(t, err, &ue)
	require.ErrorIs(t, err, ErrUnavailable)
	require.Equal(t, []string{"NOPE", "OLD", "PARENT"}, ue.SKUs)

	_, err = Build(u, []string{"PAID", "EUR"}, products, now)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = Build(u, nil, products, now)
	require.ErrorIs(t, err, ErrInvalid)

	code := seat("CODE", "49", "USD", nil)
	code.Class, code.ParentID = catalog.ClassEnrollmentCode, 0
	products["CODE"] = code
	b, err = BuildItems(u, []Item{{SKU: "CODE", Quantity: 5}}, products, now)
	require.NoError(t, err)
	require.EqualValues(t, 5*4900, b.Total)
	require.Equal(t, 5, b.Lines[0].Quantity)
	_, err = BuildItems(u, []Item{{SKU: "PAID", Quantity: 2}}, products, now)
	require.ErrorIs(t, err, ErrInvalid, "a seat is bought once")
	_, err = BuildItems(u, []Item{{SKU: "CODE", Quantity: -1}}, products, now)
	require.ErrorIs(t, err, ErrInvalid)
}
