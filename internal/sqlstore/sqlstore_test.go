package sqlstore_test

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

func TestMigrationsInLockstep(t *testing.T) {
	t.Parallel()
	names := func(dir string) []string {
		es, err := os.ReadDir(dir)
		require.NoError(t, err)
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		sort.Strings(out)
		return out
	}
	pg, lite := names("migrations/postgres"), names("migrations/sqlite")
	require.NotEmpty(t, pg)
	require.Equal(t, pg, lite, "both engines must have the same migration steps")
}

func usd(t *testing.T, s string) money.Amount {
	a, err := money.Parse(s, "USD")
	require.NoError(t, err)
	return a
}

func demoCourse(t *testing.T) catalog.Course {
	return catalog.Course{ID: "course-v1:edX+DemoX+Demo", Name: "Demo", Seats: []catalog.Seat{
		{Price: usd(t, "0")},
		{CertificateType: "verified", IDVerificationRequired: true, Price: usd(t, "0")},
		{CertificateType: "professional", Price: usd(t, "100")},
	}}
}

func place(t *testing.T, db *sqlstore.DB, user string, owner string, until time.Time, skus ...string) order.Order {
	ctx := context.Background()
	ps, err := db.ProductsBySKU(ctx, skus)
	require.NoError(t, err)
	b, err := basket.Build(order.User{Username: user, Email: user + "@example.com"}, skus, ps, time.Now())
	require.NoError(t, err)
	o, err := db.PlaceOrder(ctx, b, user, lease.Lease{Owner: owner, Until: until})
	require.NoError(t, err)
	return o
}

func TestStore(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		c, err := db.PutCourse(ctx, demoCourse(t))
		require.NoError(t, err)
		require.Len(t, c.Seats, 3)
		skus := map[string]string{}
		for _, s := range c.Seats {
			skus[s.Mode()] = s.SKU
		}
		require.Len(t, skus["verified"], 7)
		require.Contains(t, skus, "no-id-professional")

		// Updating keeps the SKUs and the products.
		again := demoCourse(t)
		again.Seats[2].Price = usd(t, "120")
		c2, err := db.PutCourse(ctx, again)
		require.NoError(t, err)
		require.Len(t, c2.Seats, 3)
		require.Equal(t, c.Seats[2].ProductID, c2.Seats[2].ProductID)
		require.EqualValues(t, 12000, c2.Seats[2].Price.Minor)

		_, err = db.GetCourse(ctx, "course-v1:x+y+z")
		require.ErrorIs(t, err, catalog.ErrNotFound)

		now := time.Now().UTC()
		until := now.Add(time.Minute)
		o := place(t, db, "ann", "req-1", until, skus["audit"], skus["verified"])
		require.Equal(t, "EDX-100001", o.Number)
		require.Equal(t, order.StatusOpen, o.Status)
		require.Len(t, o.Lines, 2)

		got, err := db.GetOrder(ctx, o.Number)
		require.NoError(t, err)
		require.Equal(t, "ann", got.User.Username)
		require.Equal(t, "course-v1:edX+DemoX+Demo", got.Lines[0].Attributes.String("course_key"))
		require.WithinDuration(t, until, *got.Lines[0].NextAttemptAt, time.Millisecond)

		// The checkout holds the lease: neither a manual claim nor the
		// worker may take the lines.
		cl, err := db.ClaimOrder(ctx, o.Number, "other", now, now.Add(time.Minute))
		require.NoError(t, err)
		require.Empty(t, cl.Lines)
		due, err := db.ClaimDue(ctx, "worker", now.Add(30*time.Second), now.Add(2*time.Minute), 10, nil)
		require.NoError(t, err)
		require.Empty(t, due)

		// One line delivered, one failed and scheduled.
		next := now.Add(10 * time.Second)
		out := fulfillment.Outcome{OrderID: o.ID, Owner: "req-1", Actor: "ann", Now: now, Changes: []fulfillment.LineChange{
			{LineID: o.Lines[0].ID, From: order.LineOpen, To: order.LineComplete,
				Attempt: &order.Attempt{LineID: o.Lines[0].ID, Number: 1, Module: "enrollment", Outcome: "success", StartedAt: now}},
			{LineID: o.Lines[1].ID, From: order.LineOpen, To: order.LineServerError, NextAttemptAt: &next, Note: "LMS said no",
				Attempt: &order.Attempt{LineID: o.Lines[1].ID, Number: 1, Module: "enrollment", Outcome: "server", HTTPStatus: 503, Message: "LMS said no", StartedAt: now}},
		}}
		o2, err := db.RecordOutcome(ctx, out)
		require.NoError(t, err)
		require.Equal(t, order.StatusFulfillmentError, o2.Status)
		require.Equal(t, 1, o2.Attempts)
		require.Equal(t, "LMS said no", o2.LastError)
		require.WithinDuration(t, next, *o2.NextAttemptAt, time.Millisecond)
		require.Equal(t, order.LineComplete, o2.Lines[0].Status)
		require.Equal(t, order.LineServerError, o2.Lines[1].Status)
		require.Equal(t, 503, o2.Lines[1].LastHTTPStatus)
		require.Len(t, o2.Notes, 1)
		shipped, err := db.ShippedLines(ctx, o.ID)
		require.NoError(t, err)
		require.Equal(t, []int64{o.Lines[0].ID}, shipped)

		// Replaying the same outcome changes nothing: the lease is gone.
		_, err = db.RecordOutcome(ctx, out)
		require.NoError(t, err)
		as, err := db.Attempts(ctx, o.ID)
		require.NoError(t, err)
		require.Len(t, as, 4, "attempts are logged even when the lease was lost")

		// Not due yet, then due: only the failed line is claimed.
		due, err = db.ClaimDue(ctx, "worker", now.Add(5*time.Second), now.Add(time.Minute), 10, nil)
		require.NoError(t, err)
		require.Empty(t, due)
		due, err = db.ClaimDue(ctx, "worker", now.Add(11*time.Second), now.Add(time.Minute), 10, nil)
		require.NoError(t, err)
		require.Len(t, due, 1)
		require.Len(t, due[0].Lines, 1)
		require.Equal(t, o.Lines[1].ID, due[0].Lines[0].ID)
		// A second worker finds nothing while the lease lives.
		due2, err := db.ClaimDue(ctx, "worker2", now.Add(12*time.Second), now.Add(time.Minute), 10, nil)
		require.NoError(t, err)
		require.Empty(t, due2)

		// An illegal transition is an error and writes nothing.
		_, err = db.RecordOutcome(ctx, fulfillment.Outcome{OrderID: o.ID, Owner: "worker", Now: now, Changes: []fulfillment.LineChange{
			{LineID: o.Lines[1].ID, From: order.LineServerError, To: order.LineOpen}}})
		require.ErrorIs(t, err, order.ErrInvalidTransition)

		// Mark complete refuses while the worker holds the lease.
		_, err = db.MarkComplete(ctx, o.Number, "staff", "fixed by hand")
		require.ErrorIs(t, err, order.ErrConflict)
		o3, err := db.RecordOutcome(ctx, fulfillment.Outcome{OrderID: o.ID, Owner: "worker", Actor: "retry-worker", Now: now, Changes: []fulfillment.LineChange{
			{LineID: o.Lines[1].ID, From: order.LineServerError, To: order.LineNetworkError, NeedsAttention: true,
				Attempt: &order.Attempt{LineID: o.Lines[1].ID, Number: 2, Module: "enrollment", Outcome: "network", StartedAt: now}}}})
		require.NoError(t, err)
		require.True(t, o3.NeedsAttention)
		require.Nil(t, o3.NextAttemptAt)
		require.Equal(t, order.LineNetworkError, o3.Lines[1].Status, "an error may become another error")

		attention := true
		list, err := db.ListOrders(ctx, order.Filter{NeedsAttention: &attention})
		require.NoError(t, err)
		require.Len(t, list, 1)

		done, err := db.MarkComplete(ctx, o.Number, "staff", "fixed by hand")
		require.NoError(t, err)
		require.Equal(t, order.StatusComplete, done.Status)
		require.False(t, done.NeedsAttention)
		hist, err := db.History(ctx, o.ID)
		require.NoError(t, err)
		last := hist[len(hist)-1]
		require.Equal(t, "staff", last.Actor)
		require.Equal(t, "fixed by hand", last.Reason)
		_, err = db.MarkComplete(ctx, o.Number, "staff", "again")
		require.ErrorIs(t, err, order.ErrNotFulfillable)
		_, err = db.ClaimOrder(ctx, o.Number, "x", now, now)
		require.ErrorIs(t, err, order.ErrNotFulfillable)
		_, err = db.GetOrder(ctx, "EDX-999")
		require.ErrorIs(t, err, order.ErrNotFound)

		// With the claimed order given, the store returns it up to date
		// without reading it again: the same as a fresh read.
		o4 := place(t, db, "cat", "req-4", until, skus["audit"], skus["verified"])
		next4 := now.Add(time.Minute)
		got4, err := db.RecordOutcome(ctx, fulfillment.Outcome{OrderID: o4.ID, Order: o4, Owner: "req-4", Actor: "cat", Now: now, Changes: []fulfillment.LineChange{
			{LineID: o4.Lines[0].ID, From: order.LineOpen, To: order.LineComplete, Data: map[string]string{"k": "v"},
				Attempt: &order.Attempt{LineID: o4.Lines[0].ID, Number: 1, Module: "enrollment", Outcome: "success", StartedAt: now}},
			{LineID: o4.Lines[1].ID, From: order.LineOpen, To: order.LineTimeoutError, NextAttemptAt: &next4, Note: "slow",
				Attempt: &order.Attempt{LineID: o4.Lines[1].ID, Number: 1, Module: "enrollment", Outcome: "timeout", Message: "slow", StartedAt: now}},
		}})
		require.NoError(t, err)
		read4, err := db.GetOrder(ctx, o4.Number)
		require.NoError(t, err)
		require.Equal(t, read4.Status, got4.Status)
		require.Equal(t, read4.Attempts, got4.Attempts)
		require.Equal(t, read4.LastError, got4.LastError)
		require.WithinDuration(t, *read4.NextAttemptAt, *got4.NextAttemptAt, time.Microsecond)
		require.Len(t, got4.Notes, len(read4.Notes))
		for i := range read4.Lines {
			r, g := read4.Lines[i], got4.Lines[i]
			require.Equal(t, r.Status, g.Status)
			require.Equal(t, r.Attempts, g.Attempts)
			require.Equal(t, r.LastError, g.LastError)
			require.Equal(t, r.LastErrorClass, g.LastErrorClass)
			require.Equal(t, r.FulfillmentData, g.FulfillmentData)
			require.Equal(t, r.NextAttemptAt == nil, g.NextAttemptAt == nil)
			require.Equal(t, r.FulfilledAt == nil, g.FulfilledAt == nil)
		}
		require.Equal(t, "v", read4.Lines[0].FulfillmentData["k"])

		// Listing and keyset paging: three orders of bob's, each a seat he
		// holds once.
		for _, sku := range skus {
			place(t, db, "bob", "req", until, sku)
		}
		page1, err := db.ListOrders(ctx, order.Filter{Username: "bob", Limit: 2})
		require.NoError(t, err)
		require.Len(t, page1, 2)
		page2, err := db.ListOrders(ctx, order.Filter{Username: "bob", Limit: 2, AfterID: page1[1].ID})
		require.NoError(t, err)
		require.Len(t, page2, 1)
		require.True(t, strings.HasPrefix(page2[0].Number, "EDX-"))
		require.NoError(t, db.Ready(ctx))
	})
}
