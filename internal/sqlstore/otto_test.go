package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/payment"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// ottoCourse saves a course with a free audit seat and a paid verified one
// (which also sells enrollment codes) and returns its SKUs by mode.
func ottoCourse(t *testing.T, db *sqlstore.DB, id string) map[string]string {
	t.Helper()
	price := func(s string) money.Amount {
		a, err := money.Parse(s, "USD")
		require.NoError(t, err)
		return a
	}
	c, err := db.PutCourse(context.Background(), catalog.Course{ID: id, Name: "Course " + id, Seats: []catalog.Seat{
		{Price: price("0")}, {CertificateType: "verified", IDVerificationRequired: true, Price: price("49")}}})
	require.NoError(t, err)
	out := map[string]string{}
	for _, s := range c.Seats {
		out[s.Mode()] = s.SKU
		if s.BulkSKU != "" {
			out["bulk "+s.Mode()] = s.BulkSKU
		}
	}
	return out
}

// ottoBasket builds user's basket of skus.
func ottoBasket(t *testing.T, db *sqlstore.DB, user string, skus ...string) basket.Basket {
	t.Helper()
	ps, err := db.ProductsBySKU(context.Background(), skus)
	require.NoError(t, err)
	b, err := basket.Build(order.User{Username: user, Email: user + "@example.com"}, skus, ps, time.Now())
	require.NoError(t, err)
	return b
}

func TestOttoOrderPages(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		skus := ottoCourse(t, db, "course-v1:edX+Pages+1")
		until := lease.Lease{Owner: "test", Until: time.Now().Add(time.Minute)}
		var ann []string // newest last
		for range 7 {
			o, err := db.PlaceOrder(ctx, ottoBasket(t, db, "ann", skus["bulk verified"]), "ann", until)
			require.NoError(t, err)
			ann = append(ann, o.Number)
		}
		_, err := db.PlaceOrder(ctx, ottoBasket(t, db, "bob", skus["audit"]), "bob", until)
		require.NoError(t, err)

		n, err := db.CountOrders(ctx, order.Filter{Username: "ann"})
		require.NoError(t, err)
		require.Equal(t, 7, n)
		n, err = db.CountOrders(ctx, order.Filter{})
		require.NoError(t, err)
		require.Equal(t, 8, n)
		n, err = db.CountOrders(ctx, order.Filter{SKU: skus["audit"], AfterID: 1, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, 1, n, "the cursor and limit do not bound the count")
		n, err = db.CountOrders(ctx, order.Filter{Username: "nobody"})
		require.NoError(t, err)
		require.Zero(t, n)

		numbers := func(os []order.Order) []string {
			out := []string{}
			for _, o := range os {
				out = append(out, o.Number)
			}
			return out
		}
		page, err := db.ListOrdersPage(ctx, order.Filter{Username: "ann", Limit: 3}, 0)
		require.NoError(t, err)
		require.Equal(t, []string{ann[6], ann[5], ann[4]}, numbers(page), "newest first")
		require.Len(t, page[0].Lines, 1, "with their lines")
		page, err = db.ListOrdersPage(ctx, order.Filter{Username: "ann", Limit: 3}, 6)
		require.NoError(t, err)
		require.Equal(t, []string{ann[0]}, numbers(page))
		page, err = db.ListOrdersPage(ctx, order.Filter{Username: "ann", Limit: 3}, 9)
		require.NoError(t, err)
		require.Empty(t, page)
		page, err = db.ListOrdersPage(ctx, order.Filter{Username: "ann", Limit: 3, AfterID: 1}, 3)
		require.NoError(t, err)
		require.Equal(t, []string{ann[3], ann[2], ann[1]}, numbers(page), "the cursor is ignored")
	})
}

func TestOttoPaymentProcessors(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		skus := ottoCourse(t, db, "course-v1:edX+Pay+1")
		l := lease.Lease{Owner: "checkout", Until: time.Now().Add(time.Minute)}
		free, err := db.PlaceOrder(ctx, ottoBasket(t, db, "ann", skus["audit"]), "ann", l)
		require.NoError(t, err)
		b := ottoBasket(t, db, "ann", skus["verified"])
		id, err := db.FreezeBasket(ctx, b, "sandbox")
		require.NoError(t, err)
		p, _, err := db.RecordNotification(ctx, payment.Notification{Processor: "sandbox", EventID: "ev-1", Reference: "txn-1", BasketID: id,
			Amount: money.Amount{Minor: b.Total, Currency: b.Currency}, Decision: payment.Accept, Raw: []byte(`{}`)}, l)
		require.NoError(t, err)
		paid, err := db.PlacePaidOrder(ctx, p, "ann", l)
		require.NoError(t, err)
		require.True(t, paid.Place)

		got, err := db.PaymentProcessors(ctx, []int64{free.ID, paid.Order.ID, 999999})
		require.NoError(t, err)
		require.Equal(t, map[int64]string{paid.Order.ID: "sandbox"}, got, "free orders and unknown ids are absent")
		got, err = db.PaymentProcessors(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, got)
	})
}

func TestOttoCatalogLists(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		a := ottoCourse(t, db, "course-v1:edX+A+1")
		ottoCourse(t, db, "course-v1:edX+B+1")
		ottoCourse(t, db, "course-v1:edX+C+1")
		for _, sku := range []string{"ENT-1", "ENT-2"} {
			_, err := db.PutProduct(ctx, catalog.Product{Class: catalog.ClassCourseEntitlement, Title: "Entitlement " + sku,
				Attributes: catalog.Attributes{"UUID": "u-" + sku, "certificate_type": "verified"},
				Stock:      &catalog.StockRecord{SKU: sku, Price: money.Amount{Minor: 1000, Currency: "USD"}}})
			require.NoError(t, err)
		}

		// Courses by id, a page at an offset, and the count.
		cs, n, err := db.ListCoursesPage(ctx, 1, 1)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.Len(t, cs, 1)
		require.Equal(t, "course-v1:edX+B+1", cs[0].ID)
		require.Len(t, cs[0].Seats, 2, "with their seats")
		cs, n, err = db.ListCoursesPage(ctx, 3, 10)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.Empty(t, cs)

		// Every product of a course: the parent (no stock record), the
		// seats and the enrollment code.
		byCourse, err := db.CourseProducts(ctx, []string{"course-v1:edX+A+1", "course-v1:edX+C+1", "course-v1:no+such+course"})
		require.NoError(t, err)
		require.Len(t, byCourse, 2)
		ps := byCourse["course-v1:edX+A+1"]
		require.Len(t, ps, 4)
		require.Equal(t, catalog.ClassSeat, ps[0].Class)
		require.Zero(t, ps[0].ParentID)
		require.Nil(t, ps[0].Stock, "the parent is not sold")
		skus := map[string]bool{}
		for _, p := range ps[1:] {
			require.NotNil(t, p.Stock)
			require.Equal(t, p.ID, p.Stock.ProductID)
			skus[p.Stock.SKU] = true
		}
		require.Equal(t, map[string]bool{a["audit"]: true, a["verified"]: true, a["bulk verified"]: true}, skus)

		// Products by class, paged by id; every class with "".
		ents, n, err := db.ListProducts(ctx, catalog.ClassCourseEntitlement, 0, 1)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Len(t, ents, 1)
		require.Equal(t, "ENT-1", ents[0].Stock.SKU)
		require.Equal(t, "u-ENT-1", ents[0].Attributes.String("UUID"))
		ents, _, err = db.ListProducts(ctx, catalog.ClassCourseEntitlement, 1, 1)
		require.NoError(t, err)
		require.Equal(t, "ENT-2", ents[0].Stock.SKU)
		seats, n, err := db.ListProducts(ctx, catalog.ClassSeat, 0, 100)
		require.NoError(t, err)
		require.Equal(t, 9, n, "three parents and six seats")
		require.Len(t, seats, 9)
		_, n, err = db.ListProducts(ctx, "", 0, 1)
		require.NoError(t, err)
		require.Equal(t, 14, n, "nine seats, three enrollment codes, two entitlements")
		_, n, err = db.ListProducts(ctx, catalog.ClassDonation, 0, 10)
		require.NoError(t, err)
		require.Zero(t, n)

		// One product by id, with its stock record or without.
		p, err := db.ProductByID(ctx, ents[0].ID)
		require.NoError(t, err)
		require.Equal(t, "ENT-2", p.Stock.SKU)
		require.Equal(t, int64(1000), p.Stock.Price.Minor)
		p, err = db.ProductByID(ctx, ps[0].ID)
		require.NoError(t, err)
		require.Nil(t, p.Stock)
		_, err = db.ProductByID(ctx, 999999)
		require.ErrorIs(t, err, catalog.ErrNotFound)
	})
}
