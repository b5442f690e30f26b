package basket

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
	"fulfill/internal/money"
	"fulfill/internal/order"
)

func TestSellable(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	past := now.Add(-time.Hour)
	stock := func(sku string) *catalog.StockRecord {
		return &catalog.StockRecord{SKU: sku, Price: money.Amount{Minor: 100, Currency: "USD"}}
	}
	seat := catalog.Product{ID: 2, ParentID: 1, Class: catalog.ClassSeat, CourseID: "c1", Stock: stock("S")}
	expired := seat
	expired.Stock = &catalog.StockRecord{SKU: "X", Expires: &past}
	parent := catalog.Product{ID: 1, Class: catalog.ClassSeat, CourseID: "c1", Stock: stock("P")}
	codes := catalog.Product{ID: 3, Class: catalog.ClassEnrollmentCode, Attributes: catalog.Attributes{"course_key": "c1"}, Stock: stock("E")}
	other := catalog.Product{ID: 4, ParentID: 9, Class: catalog.ClassSeat, CourseID: "c2", Stock: stock("O")}
	rollout := &catalog.Rollout{Courses: []string{"c1"}}
	for _, tc := range []struct {
		name      string
		p         catalog.Product
		found     bool
		rollout   *catalog.Rollout
		purchased bool
		want      Refusal
	}{
		{"a seat", seat, true, nil, false, ""},
		{"unknown SKU", catalog.Product{}, false, nil, false, RefusedUnavailable},
		{"expired", expired, true, nil, false, RefusedUnavailable},
		{"parent seat", parent, true, nil, false, RefusedUnavailable},
		{"seat held already", seat, true, nil, true, RefusedPurchased},
		{"codes bought again", codes, true, nil, true, ""},
		{"course not in the rollout", other, true, rollout, false, RefusedUnsold},
		{"course in the rollout", seat, true, rollout, false, ""},
		{"unavailable beats held", expired, true, nil, true, RefusedUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Sellable(tc.p, tc.found, tc.rollout, tc.purchased, now)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.want == RefusedUnsold, why != nil)
		})
	}
}

func TestRefusedError(t *testing.T) {
	require.NoError(t, RefusedError(nil))
	err := RefusedError([]Refused{{SKU: "A", Reason: RefusedPurchased}, {SKU: "B", Reason: RefusedUnavailable}})
	var ue *UnavailableError
	require.True(t, errors.As(err, &ue))
	require.Equal(t, []string{"B"}, ue.SKUs)
	err = RefusedError([]Refused{{SKU: "A", Reason: RefusedPurchased}, {SKU: "C", Reason: RefusedUnsold, Why: "course c2 is not sold"}})
	require.ErrorIs(t, err, catalog.ErrNotSoldHere)
	require.ErrorIs(t, RefusedError([]Refused{{SKU: "A", Reason: RefusedPurchased}}), order.ErrAlreadyPurchased)
}
