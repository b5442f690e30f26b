package sqlstore_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/lease"
	"fulfill/internal/order"
	"fulfill/internal/refund"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// sfSetup seeds the demo course and returns its SKUs by mode.
func sfSetup(t *testing.T, db *sqlstore.DB) map[string]string {
	t.Helper()
	c, err := db.PutCourse(context.Background(), demoCourse(t))
	require.NoError(t, err)
	skus := map[string]string{}
	for _, s := range c.Seats {
		skus[s.Mode()] = s.SKU
	}
	return skus
}

// sfOpenBasket stores an Open basket of the SKUs for user.
func sfOpenBasket(t *testing.T, db *sqlstore.DB, user string, skus ...string) int64 {
	t.Helper()
	ctx := context.Background()
	ps, err := db.ProductsBySKU(ctx, skus)
	require.NoError(t, err)
	b, err := basket.Build(order.User{Username: user, Email: user + "@example.com"}, skus, ps, time.Now())
	require.NoError(t, err)
	id, err := db.CreateBasket(ctx, b)
	require.NoError(t, err)
	return id
}

// sfComplete records every line of o as delivered.
func sfComplete(t *testing.T, db *sqlstore.DB, o order.Order, owner string) {
	t.Helper()
	now := time.Now()
	out := fulfillment.Outcome{OrderID: o.ID, Owner: owner, Actor: "test", Now: now}
	for _, l := range o.Lines {
		out.Changes = append(out.Changes, fulfillment.LineChange{LineID: l.ID, From: order.LineOpen, To: order.LineComplete,
			Attempt: &order.Attempt{LineID: l.ID, Number: 1, Module: "enrollment", Outcome: fulfillment.OutcomeSuccess, StartedAt: now}})
	}
	done, err := db.RecordOutcome(context.Background(), out)
	require.NoError(t, err)
	require.Equal(t, order.StatusComplete, done.Status)
}

func TestStorefrontBaskets(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		skus := sfSetup(t, db)
		until := time.Now().Add(time.Minute)

		_, err := db.GetBasket(ctx, 999)
		require.ErrorIs(t, err, order.ErrNotFound)
		_, err = db.SubmitOpenBasket(ctx, 999, "ann", lease.Lease{Owner: "o", Until: until})
		require.ErrorIs(t, err, order.ErrNotFound)
		require.ErrorIs(t, db.FreezeOpenBasket(ctx, 999, "sandbox"), order.ErrNotFound)

		// A free basket: read back with its lines and owner, then placed once.
		id := sfOpenBasket(t, db, "ann", skus["audit"], skus["verified"])
		b, err := db.GetBasket(ctx, id)
		require.NoError(t, err)
		require.Equal(t, basket.Status("Open"), b.Status)
		require.Equal(t, "ann", b.Owner.Username)
		require.Len(t, b.Lines, 2)
		require.Equal(t, skus["audit"], b.Lines[0].Product.Stock.SKU)
		require.Equal(t, catalog.ClassSeat, b.Lines[0].Product.Class)
		require.Equal(t, "verified", catalog.SeatMode(b.Lines[1].Product.Attributes))
		require.True(t, b.Free())
		require.Equal(t, "USD", b.Currency)
		require.Empty(t, b.OrderNumber)

		require.ErrorIs(t, db.FreezeOpenBasket(ctx, id, "sandbox"), basket.ErrInvalid, "a free basket needs no payment")

		o, err := db.SubmitOpenBasket(ctx, id, "ann", lease.Lease{Owner: "sf-1", Until: until})
		require.NoError(t, err)
		require.Equal(t, order.StatusOpen, o.Status)
		require.Equal(t, id, o.BasketID)
		require.Equal(t, "ann", o.User.Username)
		require.Len(t, o.Lines, 2)
		require.NotZero(t, o.Lines[0].ID)
		got, err := db.GetOrder(ctx, o.Number)
		require.NoError(t, err)
		require.Len(t, got.Lines, 2)
		hist, err := db.History(ctx, o.ID)
		require.NoError(t, err)
		require.Equal(t, "ann", hist[0].Actor)

		b, err = db.GetBasket(ctx, id)
		require.NoError(t, err)
		require.Equal(t, basket.Status("Submitted"), b.Status)
		require.Equal(t, o.Number, b.OrderNumber)

		// Placing it again is refused and places nothing.
		_, err = db.SubmitOpenBasket(ctx, id, "ann", lease.Lease{Owner: "sf-2", Until: until})
		require.ErrorIs(t, err, basket.ErrNotOpen)
		require.ErrorIs(t, db.FreezeOpenBasket(ctx, id, "sandbox"), basket.ErrNotOpen)
		list, err := db.ListOrders(ctx, order.Filter{Username: "ann"})
		require.NoError(t, err)
		require.Len(t, list, 1)

		// The lines are leased by the submitter: the worker cannot take them.
		due, err := db.ClaimDue(ctx, "worker", time.Now(), time.Now().Add(time.Minute), 10, nil)
		require.NoError(t, err)
		require.Empty(t, due)

		// A paid basket is not placed without payment; it is frozen instead.
		paid := sfOpenBasket(t, db, "bob", skus["no-id-professional"])
		_, err = db.SubmitOpenBasket(ctx, paid, "bob", lease.Lease{Owner: "sf-3", Until: until})
		require.ErrorIs(t, err, basket.ErrNotFree)
		require.NoError(t, db.FreezeOpenBasket(ctx, paid, "sandbox"))
		require.NoError(t, db.FreezeOpenBasket(ctx, paid, "sandbox"), "freezing again for the same processor is a no-op")
		require.ErrorIs(t, db.FreezeOpenBasket(ctx, paid, "stripe"), basket.ErrNotOpen)
		pb, err := db.BasketPayment(ctx, paid)
		require.NoError(t, err)
		require.Equal(t, basket.Status("Frozen"), pb.Status)
		require.Equal(t, "sandbox", pb.Processor)
		require.Equal(t, "100.00", pb.Total.String())
		require.Equal(t, "USD", pb.Total.Currency)
		_, err = db.SubmitOpenBasket(ctx, paid, "bob", lease.Lease{Owner: "sf-4", Until: until})
		require.ErrorIs(t, err, basket.ErrNotOpen)
	})
}

func TestStorefrontSubmitRace(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		skus := sfSetup(t, db)
		id := sfOpenBasket(t, db, "ann", skus["audit"])
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = db.SubmitOpenBasket(ctx, id, "ann", lease.Lease{Owner: "racer", Until: time.Now().Add(time.Minute)})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				require.ErrorIs(t, err, basket.ErrNotOpen)
			}
		}
		require.Equal(t, 1, ok, "a double click places one order")
	})
}

func TestStorefrontPurchasedSKUs(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		skus := sfSetup(t, db)
		all := []string{skus["audit"], skus["verified"], skus["no-id-professional"], "NOSUCH"}

		got, err := db.PurchasedSKUs(ctx, "ann", all)
		require.NoError(t, err)
		require.Empty(t, got)
		got, err = db.PurchasedSKUs(ctx, "ann", nil)
		require.NoError(t, err)
		require.Empty(t, got)

		// Placed (even before it is fulfilled) counts as bought.
		o, err := db.SubmitOpenBasket(ctx, sfOpenBasket(t, db, "ann", skus["audit"]), "ann", lease.Lease{Owner: "sf", Until: time.Now().Add(time.Minute)})
		require.NoError(t, err)
		got, err = db.PurchasedSKUs(ctx, "ann", all)
		require.NoError(t, err)
		require.Equal(t, map[string]bool{skus["audit"]: true}, got)
		other, err := db.PurchasedSKUs(ctx, "bob", all)
		require.NoError(t, err)
		require.Empty(t, other, "another learner's purchase is not ann's")

		// An open basket or a frozen one is not a purchase.
		require.NoError(t, db.FreezeOpenBasket(ctx, sfOpenBasket(t, db, "ann", skus["no-id-professional"]), "sandbox"))
		got, err = db.PurchasedSKUs(ctx, "ann", all)
		require.NoError(t, err)
		require.Equal(t, map[string]bool{skus["audit"]: true}, got)

		// A refund that is open or denied leaves it bought; a complete one
		// gives it back.
		sfComplete(t, db, o, "sf")
		ids, err := db.CreateRefunds(ctx, refund.Selection{OrderNumber: o.Number}, "staff")
		require.NoError(t, err)
		require.Len(t, ids, 1)
		got, err = db.PurchasedSKUs(ctx, "ann", all)
		require.NoError(t, err)
		require.True(t, got[skus["audit"]], "an open refund is not a refund yet")
		_, err = db.DenyRefund(ctx, ids[0], "staff")
		require.NoError(t, err)
		got, err = db.PurchasedSKUs(ctx, "ann", all)
		require.NoError(t, err)
		require.True(t, got[skus["audit"]], "a denied refund gives nothing back")

		svc := &refund.Service{Store: db, Lease: time.Minute, WaitForLease: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		ids, err = svc.Create(ctx, refund.Selection{OrderNumber: o.Number}, "staff")
		require.NoError(t, err)
		require.Len(t, ids, 1)
		r, err := db.GetRefund(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, refund.StatusComplete, r.Status, "a $0 refund completes at once")
		got, err = db.PurchasedSKUs(ctx, "ann", all)
		require.NoError(t, err)
		require.Empty(t, got, "refunded: it may be bought again")

		// Bought again after the refund: bought.
		_, err = db.SubmitOpenBasket(ctx, sfOpenBasket(t, db, "ann", skus["audit"]), "ann", lease.Lease{Owner: "sf2", Until: time.Now().Add(time.Minute)})
		require.NoError(t, err)
		got, err = db.PurchasedSKUs(ctx, "ann", all)
		require.NoError(t, err)
		require.Equal(t, map[string]bool{skus["audit"]: true}, got)
	})
}

func TestStorefrontUserByName(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		_, err := db.UserByName(ctx, "ann")
		require.ErrorIs(t, err, order.ErrNotFound)
		_, err = db.UpsertUser(ctx, order.User{Username: "ann", Email: "ann@example.org", FullName: "Ann Lee"})
		require.NoError(t, err)
		u, err := db.UserByName(ctx, "ann")
		require.NoError(t, err)
		require.Equal(t, "Ann Lee", u.FullName)
		require.Equal(t, "ann@example.org", u.Email)
	})
}
