// Package storetest is the conformance suite of the store, in the manner of
// River's riverdrivertest: one function, Exercise, that holds the contract
// of *sqlstore.DB directly against a real database, so that every engine
// is held to the same behaviour. Each behaviour is a parallel subtest on a
// fresh database of its own; where engines must differ, the test branches
// on db.Engine explicitly.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/fulfillment"
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/payment"
	"fulfill/internal/refund"
	"fulfill/internal/sqlstore"
	"fulfill/internal/voucher"
)

// courseID is the course every subtest sells.
const courseID = "course-v1:edX+Conformance+2026"

// Seat modes of the course (catalog.Seat.Mode).
const (
	audit        = "audit"              // $0
	verified     = "verified"           // $0, also sold as enrollment codes
	professional = "no-id-professional" // $100, also sold as enrollment codes
)

// fixture is one subtest's store, seeded with the course.
type fixture struct {
	ctx context.Context
	db  *sqlstore.DB
	// seat is the SKU of each seat by mode; bulk the SKU of the seat's
	// enrollment codes (verified and professional only).
	seat, bulk map[string]string
}

func usd(t *testing.T, s string) money.Amount {
	t.Helper()
	a, err := money.Parse(s, "USD")
	require.NoError(t, err)
	return a
}

func newFixture(t *testing.T, db *sqlstore.DB) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), db: db, seat: map[string]string{}, bulk: map[string]string{}}
	c, err := db.PutCourse(f.ctx, catalog.Course{ID: courseID, Name: "Conformance", Seats: []catalog.Seat{
		{Price: usd(t, "0")},
		{CertificateType: catalog.CertVerified, IDVerificationRequired: true, Price: usd(t, "0")},
		{CertificateType: catalog.CertProfessional, Price: usd(t, "100")},
	}})
	require.NoError(t, err)
	require.Len(t, c.Seats, 3)
	for _, s := range c.Seats {
		f.seat[s.Mode()] = s.SKU
		if s.BulkSKU != "" {
			f.bulk[s.Mode()] = s.BulkSKU
		}
	}
	require.Len(t, f.seat, 3)
	require.Len(t, f.bulk, 2, "verified and professional seats are sold as enrollment codes")
	return f
}

func user(name string) order.User {
	return order.User{Username: name, Email: name + "@example.com", FullName: "Learner " + name}
}

// basket builds (does not store) a basket of one of each SKU for username.
func (f *fixture) basket(t *testing.T, username string, skus ...string) basket.Basket {
	t.Helper()
	ps, err := f.db.ProductsBySKU(f.ctx, skus)
	require.NoError(t, err)
	b, err := basket.Build(user(username), skus, ps, time.Now())
	require.NoError(t, err)
	return b
}

// place places an order of skus for username, its lines leased by owner
// until until.
func (f *fixture) place(t *testing.T, username, owner string, until time.Time, skus ...string) order.Order {
	t.Helper()
	o, err := f.db.PlaceOrder(f.ctx, f.basket(t, username, skus...), username, lease.Lease{Owner: owner, Until: until})
	require.NoError(t, err)
	return o
}

// delivered is a successful first enrollment call for a line.
func delivered(lineID int64, at time.Time) *order.Attempt {
	return &order.Attempt{LineID: lineID, Number: 1, Module: "enrollment", Outcome: fulfillment.OutcomeSuccess, StartedAt: at}
}

// refused is a first enrollment call for a line that the LMS failed (5xx).
func refused(lineID int64, at time.Time) *order.Attempt {
	return &order.Attempt{LineID: lineID, Number: 1, Module: "enrollment", Outcome: fulfillment.OutcomeServer, HTTPStatus: 503,
		Message: "LMS said no", StartedAt: at}
}

// complete records every line of o (leased by owner) as delivered.
func (f *fixture) complete(t *testing.T, o order.Order, owner string) order.Order {
	t.Helper()
	now := time.Now().UTC()
	out := fulfillment.Outcome{OrderID: o.ID, Owner: owner, Actor: "test", Now: now}
	for _, l := range o.Lines {
		out.Changes = append(out.Changes, fulfillment.LineChange{LineID: l.ID, From: order.LineOpen, To: order.LineComplete,
			Attempt: delivered(l.ID, now)})
	}
	done, err := f.db.RecordOutcome(f.ctx, out)
	require.NoError(t, err)
	require.Equal(t, order.StatusComplete, done.Status)
	return done
}

// freeze stores a frozen basket of skus for username, waiting for a
// "sandbox" payment, and returns the accepted notification that pays it.
func (f *fixture) freeze(t *testing.T, username, reference string, skus ...string) payment.Notification {
	t.Helper()
	b := f.basket(t, username, skus...)
	id, err := f.db.FreezeBasket(f.ctx, b, "sandbox")
	require.NoError(t, err)
	return payment.Notification{Processor: "sandbox", EventID: reference + ":accept", Reference: reference, BasketID: id,
		Amount: money.Amount{Minor: b.Total, Currency: b.Currency}, Decision: payment.Accept, Raw: []byte(`{"ref":"` + reference + `"}`)}
}

// paid places and completes a paid order of skus for username.
func (f *fixture) paid(t *testing.T, username, reference string, skus ...string) order.Order {
	t.Helper()
	n := f.freeze(t, username, reference, skus...)
	owner := "checkout-" + reference
	l := lease.Lease{Owner: owner, Until: time.Now().Add(time.Minute)}
	p, dup, err := f.db.RecordNotification(f.ctx, n, l)
	require.NoError(t, err)
	require.False(t, dup)
	paid, err := f.db.PlacePaidOrder(f.ctx, p, username, l)
	require.NoError(t, err)
	require.True(t, paid.Place)
	return f.complete(t, paid.Order, owner)
}

// lineIDs returns the ids of ls.
func lineIDs(ls []order.Line) []int64 {
	out := make([]int64, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

// scheduled returns the retry-queue entries of the order's lines, by line id.
func (f *fixture) scheduled(t *testing.T, number string) map[int64]order.ScheduledLine {
	t.Helper()
	all, err := f.db.ScheduledLines(f.ctx, 1000)
	require.NoError(t, err)
	out := map[int64]order.ScheduledLine{}
	for _, s := range all {
		if s.OrderNumber == number {
			out[s.LineID] = s
		}
	}
	return out
}

// opening serializes the opening of databases. On PostgreSQL, Migrate
// takes goose's session lock, one advisory lock for the whole server: two
// subtests migrating their schemas at once make the loser wait goose's
// retry interval (5 s). Taking turns costs a migration's time instead.
var opening sync.Mutex

func openOne(t *testing.T, open func(t *testing.T) *sqlstore.DB) *sqlstore.DB {
	t.Helper()
	opening.Lock()
	defer opening.Unlock()
	return open(t)
}

// Exercise holds the store's contract on databases from open, which must
// return a fresh, migrated store for every call.
func Exercise(t *testing.T, open func(t *testing.T) *sqlstore.DB) {
	t.Helper()

	setup := func(t *testing.T) *fixture {
		t.Helper()
		t.Parallel()
		return newFixture(t, openOne(t, open))
	}

	t.Run("PlaceOrder", func(t *testing.T) {
		f := setup(t)
		until := time.Now().UTC().Add(time.Minute).Truncate(time.Microsecond)
		b := f.basket(t, "ann", f.seat[audit], f.seat[verified])
		o, err := f.db.PlaceOrder(f.ctx, b, "ann-actor", lease.Lease{Owner: "checkout-1", Until: until})
		require.NoError(t, err)

		require.Equal(t, fmt.Sprintf("EDX-%d", o.BasketID+100000), o.Number)
		require.Equal(t, "EDX-100001", o.Number, "the first basket of a fresh database")
		require.Equal(t, order.StatusOpen, o.Status)
		require.Equal(t, "ann", o.User.Username)
		require.NotZero(t, o.User.ID)
		require.Equal(t, "USD", o.Currency)
		require.Zero(t, o.TotalMinor)
		require.Len(t, o.Lines, 2)
		for _, l := range o.Lines {
			require.NotZero(t, l.ID)
			require.Equal(t, o.ID, l.OrderID)
			require.Equal(t, order.LineOpen, l.Status)
			require.Equal(t, catalog.ClassSeat, l.Class)
		}

		got, err := f.db.GetOrder(f.ctx, o.Number)
		require.NoError(t, err)
		require.Equal(t, o.ID, got.ID)
		require.Equal(t, o.Number, got.Number)
		require.Equal(t, o.BasketID, got.BasketID)
		require.Equal(t, order.StatusOpen, got.Status)
		require.Equal(t, user("ann").Email, got.User.Email)
		require.Equal(t, user("ann").FullName, got.User.FullName)
		require.False(t, got.NeedsAttention)
		require.Zero(t, got.Attempts)
		require.Empty(t, got.Notes)
		require.Equal(t, []string{f.seat[audit], f.seat[verified]}, []string{got.Lines[0].SKU, got.Lines[1].SKU})
		require.Equal(t, lineIDs(o.Lines), lineIDs(got.Lines))
		for _, l := range got.Lines {
			require.Equal(t, order.LineOpen, l.Status)
			require.Equal(t, courseID, l.Attributes.String("course_key"))
			require.Equal(t, 1, l.Quantity)
			require.Zero(t, l.Attempts)
			require.Nil(t, l.FulfilledAt)
			require.NotNil(t, l.NextAttemptAt, "due when the checkout's lease ends")
			require.WithinDuration(t, until, *l.NextAttemptAt, time.Microsecond)
		}

		// Leased by the checkout until its lease ends.
		sched := f.scheduled(t, o.Number)
		require.Len(t, sched, 2)
		for _, l := range o.Lines {
			s := sched[l.ID]
			require.Equal(t, "checkout-1", s.LeaseOwner)
			require.NotNil(t, s.LeaseUntil)
			require.WithinDuration(t, until, *s.LeaseUntil, time.Microsecond)
			require.WithinDuration(t, until, s.NextAttemptAt, time.Microsecond)
		}

		hist, err := f.db.History(f.ctx, o.ID)
		require.NoError(t, err)
		require.Len(t, hist, 1)
		require.Equal(t, order.HistoryEntry{From: "", To: string(order.StatusOpen), Reason: "order placed", Actor: "ann-actor",
			CreatedAt: hist[0].CreatedAt}, hist[0])

		// The lease holder may record its outcome.
		done := f.complete(t, o, "checkout-1")
		require.Equal(t, []order.LineStatus{order.LineComplete, order.LineComplete}, done.LineStatuses())

		// A second order gets the next number.
		o2 := f.place(t, "bob", "checkout-2", until, f.seat[audit])
		require.Equal(t, fmt.Sprintf("EDX-%d", o2.BasketID+100000), o2.Number)
		require.NotEqual(t, o.Number, o2.Number)

		_, err = f.db.GetOrder(f.ctx, "EDX-999999")
		require.ErrorIs(t, err, order.ErrNotFound)
		_, err = f.db.PlaceOrder(f.ctx, basket.Basket{Owner: user("ann"), Currency: "USD"}, "ann", lease.Lease{Owner: "x", Until: until})
		require.ErrorIs(t, err, basket.ErrInvalid, "an empty basket is not an order")
	})

	t.Run("ClaimAndLeaseExpiry", func(t *testing.T) {
		f := setup(t)
		base := time.Now().UTC().Truncate(time.Microsecond)
		checkoutEnds := base.Add(time.Minute)
		o := f.place(t, "ann", "checkout-1", checkoutEnds, f.seat[audit], f.seat[verified])
		all := lineIDs(o.Lines)
		const leaseFor = 2 * time.Minute
		workerEnds := checkoutEnds.Add(time.Second).Add(leaseFor)

		// The store takes the time of a claim from its arguments: these
		// steps run at instants in the future, in order.
		steps := []struct {
			name    string
			byOrder bool // ClaimOrder; otherwise ClaimDue
			owner   string
			at      time.Time
			want    []int64
		}{
			{"checkout lease lives: worker finds nothing", false, "worker-1", base.Add(30 * time.Second), nil},
			{"checkout lease lives: manual claim takes nothing", true, "staff-1", base.Add(30 * time.Second), nil},
			{"a lease holds up to its very end", false, "worker-1", checkoutEnds, nil},
			{"checkout lease ended: worker takes every line", false, "worker-1", checkoutEnds.Add(time.Second), all},
			{"worker lease lives: second worker finds nothing", false, "worker-2", checkoutEnds.Add(2 * time.Second), nil},
			{"worker lease lives: manual claim takes nothing", true, "staff-1", checkoutEnds.Add(2 * time.Second), nil},
			{"worker lease ended: manual claim takes every line", true, "staff-2", workerEnds.Add(time.Second), all},
			{"manual lease lives: worker finds nothing", false, "worker-3", workerEnds.Add(2 * time.Second), nil},
		}
		holder := "checkout-1"
		for _, s := range steps {
			var got []int64
			if s.byOrder {
				c, err := f.db.ClaimOrder(f.ctx, o.Number, s.owner, s.at, s.at.Add(leaseFor))
				require.NoError(t, err, s.name)
				require.Equal(t, o.Number, c.Order.Number, s.name)
				require.Len(t, c.Order.Lines, 2, "%s: the claim holds the whole order", s.name)
				require.Equal(t, s.owner, c.Owner, s.name)
				got = lineIDs(c.Lines)
			} else {
				cs, err := f.db.ClaimDue(f.ctx, s.owner, s.at, s.at.Add(leaseFor), 10, nil)
				require.NoError(t, err, s.name)
				if s.want != nil {
					require.Len(t, cs, 1, s.name)
					require.Equal(t, o.Number, cs[0].Order.Number, s.name)
					require.Equal(t, s.owner, cs[0].Owner, s.name)
					got = lineIDs(cs[0].Lines)
				} else {
					require.Empty(t, cs, s.name)
				}
			}
			if s.want == nil {
				require.Empty(t, got, s.name)
			} else {
				require.ElementsMatch(t, s.want, got, s.name)
				holder = s.owner
			}
			for id, l := range f.scheduled(t, o.Number) {
				require.Equal(t, holder, l.LeaseOwner, "%s: line %d", s.name, id)
				require.Equal(t, order.LineOpen, l.Status, s.name)
			}
		}
	})

	t.Run("RecordOutcomeLostLease", func(t *testing.T) {
		t.Parallel()
		// With and without the claimed order given: the store returns the
		// order as committed either way.
		for _, giveOrder := range []bool{false, true} {
			t.Run(fmt.Sprintf("OrderGiven=%v", giveOrder), func(t *testing.T) {
				f := setup(t)
				base := time.Now().UTC().Truncate(time.Microsecond)
				checkoutEnds := base.Add(time.Minute)
				o := f.place(t, "ann", "checkout-1", checkoutEnds, f.seat[audit])
				line := o.Lines[0]

				// The checkout stalls past its lease; the worker takes over.
				takeover := checkoutEnds.Add(time.Second)
				cs, err := f.db.ClaimDue(f.ctx, "worker-1", takeover, takeover.Add(time.Hour), 10, nil)
				require.NoError(t, err)
				require.Len(t, cs, 1)
				require.Equal(t, []int64{line.ID}, lineIDs(cs[0].Lines))

				// The stalled checkout comes back and reports success: a
				// compare-and-set on the lease, so no line changes. It is not
				// an error; the order comes back as it is.
				late := fulfillment.Outcome{OrderID: o.ID, Owner: "checkout-1", Actor: "ann", Now: takeover.Add(time.Second),
					Changes: []fulfillment.LineChange{{LineID: line.ID, From: order.LineOpen, To: order.LineComplete,
						Attempt: delivered(line.ID, takeover)}}}
				if giveOrder {
					late.Order = o
				}
				got, err := f.db.RecordOutcome(f.ctx, late)
				require.NoError(t, err)
				require.Equal(t, o.ID, got.ID)
				require.Equal(t, order.StatusOpen, got.Status)
				require.Len(t, got.Lines, 1)
				require.Equal(t, order.LineOpen, got.Lines[0].Status)
				require.Zero(t, got.Lines[0].Attempts)
				require.Nil(t, got.Lines[0].FulfilledAt)

				read, err := f.db.GetOrder(f.ctx, o.Number)
				require.NoError(t, err)
				require.Equal(t, order.StatusOpen, read.Status)
				require.Equal(t, order.LineOpen, read.Lines[0].Status)
				require.Zero(t, read.Lines[0].Attempts)
				shipped, err := f.db.ShippedLines(f.ctx, o.ID)
				require.NoError(t, err)
				require.Empty(t, shipped, "nothing was delivered by the lost holder")
				hist, err := f.db.History(f.ctx, o.ID)
				require.NoError(t, err)
				require.Len(t, hist, 1, "only the placement: no status changed")
				as, err := f.db.Attempts(f.ctx, o.ID)
				require.NoError(t, err)
				require.Len(t, as, 1, "the call was made, so its attempt is logged")
				// The worker's lease is untouched by the lost write.
				sched := f.scheduled(t, o.Number)
				require.Equal(t, "worker-1", sched[line.ID].LeaseOwner)

				// The new holder decides the line.
				won, err := f.db.RecordOutcome(f.ctx, fulfillment.Outcome{OrderID: o.ID, Owner: "worker-1", Actor: "retry-worker", Now: takeover.Add(2 * time.Second),
					Changes: []fulfillment.LineChange{{LineID: line.ID, From: order.LineOpen, To: order.LineComplete,
						Attempt: delivered(line.ID, takeover)}}})
				require.NoError(t, err)
				require.Equal(t, order.StatusComplete, won.Status)
				require.Equal(t, order.LineComplete, won.Lines[0].Status)
				shipped, err = f.db.ShippedLines(f.ctx, o.ID)
				require.NoError(t, err)
				require.Equal(t, []int64{line.ID}, shipped)
			})
		}
	})

	t.Run("RecordOutcomeGivenOrder", func(t *testing.T) {
		// An outcome of the only line of an order given as claimed is what
		// a checkout records (PostgreSQL writes it in one statement that
		// computes the roll-up up front); the store must write and return
		// exactly what it writes when it reads the order back itself.
		f := setup(t)
		base := time.Now().UTC().Truncate(time.Second)
		retryAt := base.Add(time.Minute)
		cases := []struct {
			name   string
			change func(l order.Line, at time.Time) fulfillment.LineChange
			want   order.Status
		}{
			{"Delivered", func(l order.Line, at time.Time) fulfillment.LineChange {
				ch, err := fulfillment.LineFulfilled(l, *delivered(l.ID, at), map[string]string{"enrollment": "ok"})
				require.NoError(t, err)
				return ch
			}, order.StatusComplete},
			{"RetriedLater", func(l order.Line, at time.Time) fulfillment.LineChange {
				ch, err := fulfillment.LineFailed(l, *refused(l.ID, at), &retryAt)
				require.NoError(t, err)
				return ch
			}, order.StatusFulfillmentError},
			{"Skipped", func(l order.Line, at time.Time) fulfillment.LineChange {
				return fulfillment.LineSkipped(l, retryAt) // the module's breaker is open
			}, order.StatusOpen},
			{"NeedsAPerson", func(l order.Line, at time.Time) fulfillment.LineChange {
				a := refused(l.ID, at)
				a.Outcome, a.HTTPStatus, a.Message = fulfillment.OutcomeConfiguration, 400, "no such course"
				ch, err := fulfillment.LineFailed(l, *a, nil)
				require.NoError(t, err)
				return ch
			}, order.StatusFulfillmentError},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				type written struct {
					o        order.Order
					history  []order.HistoryEntry
					attempts []order.Attempt
					shipped  int
				}
				record := func(username string, give bool) (returned order.Order, w written) {
					o := f.place(t, username, "checkout-"+username, base.Add(time.Minute), f.seat[audit])
					out := fulfillment.Outcome{OrderID: o.ID, Owner: "checkout-" + username, Actor: username, Now: base.Add(time.Second),
						Changes: []fulfillment.LineChange{c.change(o.Lines[0], base)}}
					if give {
						out.Order = o
					}
					got, err := f.db.RecordOutcome(f.ctx, out)
					require.NoError(t, err)
					w.o, err = f.db.GetOrder(f.ctx, o.Number)
					require.NoError(t, err)
					w.history, err = f.db.History(f.ctx, o.ID)
					require.NoError(t, err)
					w.attempts, err = f.db.Attempts(f.ctx, o.ID)
					require.NoError(t, err)
					shipped, err := f.db.ShippedLines(f.ctx, o.ID)
					require.NoError(t, err)
					w.shipped = len(shipped)
					return got, w
				}
				// normal drops what differs between two orders of two learners.
				normal := func(w written) written {
					w.o.ID, w.o.Number, w.o.BasketID, w.o.User = 0, "", 0, order.User{}
					w.o.DatePlaced, w.o.UpdatedAt = time.Time{}, time.Time{}
					lines := append([]order.Line(nil), w.o.Lines...)
					for i := range lines {
						lines[i].ID, lines[i].OrderID = 0, 0
					}
					w.o.Lines = lines
					notes := append([]order.Note(nil), w.o.Notes...)
					for i := range notes {
						notes[i].ID, notes[i].LineID, notes[i].Message = 0, 0, ""
					}
					w.o.Notes = notes
					hist := append([]order.HistoryEntry(nil), w.history...)
					for i := range hist {
						hist[i].LineID, hist[i].Actor = min(hist[i].LineID, 1), ""
						if hist[i].From == "" {
							hist[i].CreatedAt = time.Time{} // placed at the store's clock
						}
					}
					w.history = hist
					as := append([]order.Attempt(nil), w.attempts...)
					for i := range as {
						as[i].LineID, as[i].Actor = 0, ""
					}
					w.attempts = as
					return w
				}
				gotGiven, given := record("given-"+c.name, true)
				_, read := record("read-"+c.name, false)
				require.Equal(t, c.want, given.o.Status)
				require.Equal(t, normal(read), normal(given), "the given order's outcome is written as the read one's")
				returned := written{o: gotGiven, history: given.history, attempts: given.attempts, shipped: given.shipped}
				require.Equal(t, normal(given).o.Lines, normal(returned).o.Lines, "returned as committed")
				require.Equal(t, given.o.Status, gotGiven.Status)
				require.Equal(t, given.o.NeedsAttention, gotGiven.NeedsAttention)
				require.Equal(t, given.o.LastError, gotGiven.LastError)
				require.Equal(t, given.o.Attempts, gotGiven.Attempts)
				require.Equal(t, given.o.NextAttemptAt, gotGiven.NextAttemptAt)
				require.Len(t, gotGiven.Notes, len(given.o.Notes))
			})
		}
	})

	t.Run("MarkComplete", func(t *testing.T) {
		f := setup(t)
		until := time.Now().UTC().Add(time.Minute)
		now := time.Now().UTC()

		// failed places an order of two lines, the second failed for good:
		// the order is in Fulfillment Error with no lease on any line.
		failed := func(username string) order.Order {
			t.Helper()
			o := f.place(t, username, "checkout-"+username, until, f.seat[audit], f.seat[verified])
			fe, err := f.db.RecordOutcome(f.ctx, fulfillment.Outcome{OrderID: o.ID, Owner: "checkout-" + username, Actor: username, Now: now,
				Changes: []fulfillment.LineChange{
					{LineID: o.Lines[0].ID, From: order.LineOpen, To: order.LineComplete, Attempt: delivered(o.Lines[0].ID, now)},
					{LineID: o.Lines[1].ID, From: order.LineOpen, To: order.LineServerError, NeedsAttention: true, Note: "LMS said no",
						Attempt: refused(o.Lines[1].ID, now)},
				}})
			require.NoError(t, err)
			require.Equal(t, order.StatusFulfillmentError, fe.Status)
			require.True(t, fe.NeedsAttention)
			return fe
		}

		o := failed("ann")
		done, err := f.db.MarkComplete(f.ctx, o.Number, "staff", "enrolled by hand")
		require.NoError(t, err)
		require.Equal(t, order.StatusComplete, done.Status)
		require.False(t, done.NeedsAttention)
		require.Nil(t, done.NextAttemptAt)
		for _, l := range done.Lines {
			require.Equal(t, order.LineComplete, l.Status)
			require.NotNil(t, l.FulfilledAt)
			require.Nil(t, l.NextAttemptAt)
		}
		read, err := f.db.GetOrder(f.ctx, o.Number)
		require.NoError(t, err)
		require.Equal(t, order.StatusComplete, read.Status)

		hist, err := f.db.History(f.ctx, o.ID)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(hist), 2)
		lineEntry, orderEntry := hist[len(hist)-2], hist[len(hist)-1]
		require.Equal(t, o.Lines[1].ID, lineEntry.LineID)
		require.Equal(t, string(order.LineServerError), lineEntry.From)
		require.Equal(t, string(order.LineComplete), lineEntry.To)
		require.Equal(t, "staff", lineEntry.Actor)
		require.Equal(t, "enrolled by hand", lineEntry.Reason)
		require.Zero(t, orderEntry.LineID)
		require.Equal(t, string(order.StatusFulfillmentError), orderEntry.From)
		require.Equal(t, string(order.StatusComplete), orderEntry.To)
		require.Equal(t, "staff", orderEntry.Actor)
		require.Equal(t, "enrolled by hand", orderEntry.Reason)
		shipped, err := f.db.ShippedLines(f.ctx, o.ID)
		require.NoError(t, err)
		require.ElementsMatch(t, lineIDs(o.Lines), shipped)

		// Refusals, each leaving the order as it was.
		open := f.place(t, "bob", "checkout-bob", until, f.seat[audit])
		leased := failed("cat")
		c, err := f.db.ClaimOrder(f.ctx, leased.Number, "worker", now, now.Add(time.Hour))
		require.NoError(t, err)
		require.Len(t, c.Lines, 1)
		for _, tc := range []struct {
			name, number string
			want         error
			status       order.Status
		}{
			{"unknown order", "EDX-999999", order.ErrNotFound, ""},
			{"open order", open.Number, order.ErrNotFulfillable, order.StatusOpen},
			{"already complete", o.Number, order.ErrNotFulfillable, order.StatusComplete},
			{"line under a live lease", leased.Number, order.ErrConflict, order.StatusFulfillmentError},
		} {
			_, err := f.db.MarkComplete(f.ctx, tc.number, "staff", "again")
			require.ErrorIs(t, err, tc.want, tc.name)
			if tc.status != "" {
				o, err := f.db.GetOrder(f.ctx, tc.number)
				require.NoError(t, err)
				require.Equal(t, tc.status, o.Status, tc.name)
			}
		}
	})

	t.Run("Refunds", func(t *testing.T) {
		t.Parallel()

		t.Run("OncePerLine", func(t *testing.T) {
			f := setup(t)
			o := f.paid(t, "ann", "pay-ann", f.seat[professional])
			require.EqualValues(t, 10000, o.TotalMinor)
			line := o.Lines[0]
			sel := refund.Selection{OrderNumber: o.Number}

			ids, err := f.db.CreateRefunds(f.ctx, sel, "staff")
			require.NoError(t, err)
			require.Len(t, ids, 1)
			r, err := f.db.GetRefund(f.ctx, ids[0])
			require.NoError(t, err)
			require.Equal(t, refund.StatusOpen, r.Status)
			require.Equal(t, o.ID, r.OrderID)
			require.Equal(t, o.Number, r.OrderNumber)
			require.Equal(t, "ann", r.Username)
			require.EqualValues(t, 10000, r.TotalCreditMinor)
			require.Equal(t, "USD", r.Currency)
			require.Len(t, r.Lines, 1)
			require.Equal(t, line.ID, r.Lines[0].OrderLineID)
			require.EqualValues(t, 10000, r.Lines[0].LineCreditMinor)
			require.Equal(t, 1, r.Lines[0].Quantity)
			require.Equal(t, refund.LineOpen, r.Lines[0].Status)
			got, err := f.db.GetOrder(f.ctx, o.Number)
			require.NoError(t, err)
			require.Equal(t, "Open", got.Lines[0].RefundStatus)
			p, ref, err := f.db.PaymentSource(f.ctx, o.ID)
			require.NoError(t, err)
			require.Equal(t, "sandbox", p)
			require.Equal(t, "pay-ann", ref)

			// The same lines again, by order or by learner and course:
			// nothing more to refund, and not an error.
			for _, again := range []refund.Selection{sel, {OrderNumber: o.Number, LineIDs: []int64{line.ID}}, {Username: "ann", CourseID: courseID}} {
				ids, err := f.db.CreateRefunds(f.ctx, again, "staff")
				require.NoError(t, err)
				require.Empty(t, ids, "%+v", again)
			}
			list, err := f.db.ListRefunds(f.ctx, "", o.ID, 0, 0)
			require.NoError(t, err)
			require.Len(t, list, 1)

			// A denied refund does not hold the line.
			_, err = f.db.DenyRefund(f.ctx, ids[0], "staff")
			require.NoError(t, err)
			ids2, err := f.db.CreateRefunds(f.ctx, sel, "staff")
			require.NoError(t, err)
			require.Len(t, ids2, 1)
			require.NotEqual(t, ids[0], ids2[0])

			// Neither an unfinished order nor a selection of nothing.
			open := f.place(t, "bob", "checkout-bob", time.Now().Add(time.Minute), f.seat[audit])
			none, err := f.db.CreateRefunds(f.ctx, refund.Selection{OrderNumber: open.Number}, "staff")
			require.NoError(t, err)
			require.Empty(t, none, "an Open order has nothing delivered to refund")
			_, err = f.db.CreateRefunds(f.ctx, refund.Selection{}, "staff")
			require.ErrorIs(t, err, refund.ErrInvalid)
		})

		t.Run("ConcurrentCreate", func(t *testing.T) {
			f := setup(t)
			o := f.paid(t, "ann", "pay-ann", f.seat[professional])
			sel := refund.Selection{OrderNumber: o.Number, LineIDs: []int64{o.Lines[0].ID}}
			const n = 10
			ids := make([][]int64, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					ids[i], errs[i] = f.db.CreateRefunds(f.ctx, sel, fmt.Sprintf("staff-%d", i))
				})
			}
			close(start)
			wg.Wait()
			var made []int64
			for i := range n {
				require.NoError(t, errs[i], "racer %d", i)
				made = append(made, ids[i]...)
			}
			require.Len(t, made, 1, "one refund of a line, however many ask at once")
			list, err := f.db.ListRefunds(f.ctx, "", o.ID, 0, 0)
			require.NoError(t, err)
			require.Len(t, list, 1)
			require.Equal(t, made[0], list[0].ID)
			require.Len(t, list[0].Lines, 1)
			require.EqualValues(t, 10000, list[0].TotalCreditMinor)
		})
	})

	t.Run("PaymentLedger", func(t *testing.T) {
		f := setup(t)
		until := time.Now().Add(time.Minute)
		hold := func(owner string) lease.Lease { return lease.Lease{Owner: owner, Until: until} }
		n := f.freeze(t, "ann", "pay-1", f.seat[professional])
		st, err := f.db.BasketStatus(f.ctx, n.BasketID)
		require.NoError(t, err)
		require.Equal(t, "Frozen", st)
		require.EqualValues(t, 10000, n.Amount.Minor)

		// Recorded once per event: a redelivery is a duplicate of the same row.
		var p payment.Payment
		for i, want := range []bool{false, true, true} {
			got, dup, err := f.db.RecordNotification(f.ctx, n, hold("pay-owner-1"))
			require.NoError(t, err)
			require.Equal(t, want, dup, "notification %d", i+1)
			if i == 0 {
				p = got
			}
			require.Equal(t, p.ID, got.ID)
			require.Equal(t, payment.StateReceived, got.State)
		}

		paid, err := f.db.PlacePaidOrder(f.ctx, p, "ann", hold("pay-owner-1"))
		require.NoError(t, err)
		require.True(t, paid.Place)
		o := paid.Order
		require.Equal(t, fmt.Sprintf("EDX-%d", n.BasketID+100000), o.Number)
		require.Equal(t, n.BasketID, o.BasketID)
		require.Equal(t, order.StatusOpen, o.Status)
		require.EqualValues(t, 10000, o.TotalMinor)
		require.Len(t, o.Lines, 1)
		require.Equal(t, f.seat[professional], o.Lines[0].SKU)
		got, err := f.db.GetPayment(f.ctx, p.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatePlaced, got.State)
		require.Equal(t, o.Number, got.OrderNumber)
		require.Nil(t, got.NextAttemptAt, "a placed payment is not scheduled")

		// Another event of the same payment is a replay; a second payment of
		// the placed basket is given back.
		same := n
		same.EventID = "evt-session-completed"
		ps, _, err := f.db.RecordNotification(f.ctx, same, hold("pay-owner-2"))
		require.NoError(t, err)
		paid, err = f.db.PlacePaidOrder(f.ctx, ps, "ann", hold("pay-owner-2"))
		require.NoError(t, err)
		require.True(t, paid.Replay)
		require.Equal(t, o.ID, paid.Order.ID)
		second := payment.Notification{Processor: n.Processor, EventID: "pay-1-retry:accept", Reference: "pay-1-retry", BasketID: n.BasketID,
			Amount: n.Amount, Decision: payment.Accept, Raw: []byte(`{}`)}
		p2, _, err := f.db.RecordNotification(f.ctx, second, hold("pay-owner-3"))
		require.NoError(t, err)
		paid, err = f.db.PlacePaidOrder(f.ctx, p2, "ann", hold("pay-owner-3"))
		require.NoError(t, err)
		require.Contains(t, paid.Refund, "second payment")
		got, err = f.db.GetPayment(f.ctx, p2.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StateRefundDue, got.State)
		require.Equal(t, o.Number, got.OrderNumber)
		list, err := f.db.ListOrders(f.ctx, order.Filter{Username: "ann"})
		require.NoError(t, err)
		require.Len(t, list, 1)
		evs, err := f.db.PaymentEvents(f.ctx, o.ID)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		require.Equal(t, "Paid", evs[0].Type)
		require.Equal(t, "sandbox", evs[0].Processor)
		require.Equal(t, "pay-1", evs[0].Reference)
		require.Equal(t, n.Amount, evs[0].Amount)
		st, err = f.db.BasketStatus(f.ctx, n.BasketID)
		require.NoError(t, err)
		require.Equal(t, "Submitted", st)

		// The refund is credited: the order shows it too.
		require.NoError(t, f.db.MovePayment(f.ctx, payment.Move{ID: p2.ID, From: payment.StateRefundDue, To: payment.StateRefunded,
			Owner: "pay-owner-3", CreditReference: "re_1", Attempt: true}))
		err = f.db.MovePayment(f.ctx, payment.Move{ID: p2.ID, From: payment.StateRefundDue, To: payment.StateRefunded, Owner: "pay-owner-3"})
		require.ErrorIs(t, err, payment.ErrConflict, "moved once")
		evs, err = f.db.PaymentEvents(f.ctx, o.ID)
		require.NoError(t, err)
		require.Len(t, evs, 2)
		require.Equal(t, "Refunded", evs[1].Type)
		require.Equal(t, "re_1", evs[1].Reference)

		// A payment of the wrong amount (or currency) places nothing and goes back.
		for _, tc := range []struct {
			name   string
			amount money.Amount
		}{
			{"short", money.Amount{Minor: 9999, Currency: "USD"}},
			{"other currency", money.Amount{Minor: 10000, Currency: "EUR"}},
		} {
			m := f.freeze(t, "bob", "pay-bob-"+tc.amount.Currency, f.seat[professional])
			m.Amount = tc.amount
			pm, dup, err := f.db.RecordNotification(f.ctx, m, hold("pay-bob"))
			require.NoError(t, err)
			require.False(t, dup)
			paid, err := f.db.PlacePaidOrder(f.ctx, pm, "bob", hold("pay-bob"))
			require.NoError(t, err, tc.name)
			require.False(t, paid.Place, tc.name)
			require.Contains(t, paid.Refund, "costs", tc.name)
			st, err := f.db.BasketStatus(f.ctx, m.BasketID)
			require.NoError(t, err)
			require.Equal(t, "Frozen", st, tc.name)
		}
		list, err = f.db.ListOrders(f.ctx, order.Filter{Username: "bob"})
		require.NoError(t, err)
		require.Empty(t, list)

		// A payment for no basket at all is recorded, and goes back.
		pn, _, err := f.db.RecordNotification(f.ctx, payment.Notification{Processor: "sandbox", EventID: "pay-x:accept", Reference: "pay-x",
			BasketID: 999999, Amount: n.Amount, Decision: payment.Accept, Raw: []byte(`{}`)}, hold("pay-x"))
		require.NoError(t, err)
		paid, err = f.db.PlacePaidOrder(f.ctx, pn, "x", hold("pay-x"))
		require.NoError(t, err)
		require.Contains(t, paid.Refund, "does not exist")

		// Through another processor than the basket waits for (re-frozen):
		// placed. Declined, then accepted (the learner retried the card):
		// placed.
		w := f.freeze(t, "cat", "pay-cat", f.seat[professional])
		w.Processor, w.EventID = "stripe", "evt-cat"
		pw, _, err := f.db.RecordNotification(f.ctx, w, hold("pay-cat"))
		require.NoError(t, err)
		paid, err = f.db.PlacePaidOrder(f.ctx, pw, "cat", hold("pay-cat"))
		require.NoError(t, err)
		require.True(t, paid.Place)
		d := f.freeze(t, "dan", "pi-dan", f.seat[professional])
		dec := d
		dec.Decision, dec.EventID = payment.Decline, "evt-dan-failed"
		pd, _, err := f.db.RecordNotification(f.ctx, dec, hold("pay-dan"))
		require.NoError(t, err)
		require.Equal(t, payment.StateDeclined, pd.State)
		require.Nil(t, pd.NextAttemptAt)
		require.NoError(t, f.db.DeclineBasket(f.ctx, dec))
		st, err = f.db.BasketStatus(f.ctx, d.BasketID)
		require.NoError(t, err)
		require.Equal(t, "Open", st)
		d.EventID = "evt-dan-succeeded"
		pa, dup, err := f.db.RecordNotification(f.ctx, d, hold("pay-dan"))
		require.NoError(t, err)
		require.False(t, dup, "the success shares the payment's reference, not its event id")
		paid, err = f.db.PlacePaidOrder(f.ctx, pa, "dan", hold("pay-dan"))
		require.NoError(t, err)
		require.True(t, paid.Place)

		// What is left for the worker once the handlers' leases end: the
		// refunds not yet credited, and nothing received.
		due, err := f.db.ClaimDuePayments(f.ctx, "worker", time.Now().Add(time.Hour), time.Now().Add(2*time.Hour), 100)
		require.NoError(t, err)
		for _, p := range due {
			require.Equal(t, payment.StateRefundDue, p.State, "payment %d", p.ID)
		}
		require.Len(t, due, 3, "two wrong amounts and the payment for no basket")
		again, err := f.db.ClaimDuePayments(f.ctx, "worker2", time.Now().Add(time.Hour), time.Now().Add(2*time.Hour), 100)
		require.NoError(t, err)
		require.Empty(t, again, "leased by the first worker")
	})

	t.Run("RedeemCodeRace", func(t *testing.T) {
		f := setup(t)
		until := time.Now().Add(time.Minute)
		bought := f.place(t, "buyer", "checkout-buyer", until, f.bulk[verified])
		line := bought.Lines[0]
		require.Equal(t, catalog.ClassEnrollmentCode, line.Class)
		for range 2 { // a retried line issues the same code, never more
			require.NoError(t, f.db.IssueCodes(f.ctx, line.ID, 1, f.seat[verified]))
		}
		codes, err := f.db.CodesForOrder(f.ctx, bought.ID)
		require.NoError(t, err)
		require.Len(t, codes[line.ID], 1)
		code := codes[line.ID][0]
		require.Equal(t, voucher.StatusAvailable, code.Status)
		require.Equal(t, f.seat[verified], code.SeatSKU)

		const n = 20
		orders := make([]order.Order, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				name := fmt.Sprintf("learner-%02d", i)
				orders[i], errs[i] = f.db.RedeemCode(f.ctx, code.Code, user(name), lease.Lease{Owner: "redeem-" + name, Until: until})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, winner, "a second learner redeemed the code: %d and %d", winner, i)
				winner = i
				continue
			}
			require.ErrorIs(t, err, voucher.ErrUsed, "learner %d", i)
		}
		require.NotEqual(t, -1, winner, "nobody redeemed the code")
		name := fmt.Sprintf("learner-%02d", winner)

		won := orders[winner]
		require.Equal(t, name, won.User.Username)
		require.Equal(t, order.StatusOpen, won.Status)
		require.Zero(t, won.TotalMinor, "the code paid for the seat")
		require.Len(t, won.Lines, 1)
		require.Equal(t, f.seat[verified], won.Lines[0].SKU)
		codes, err = f.db.CodesForOrder(f.ctx, bought.ID)
		require.NoError(t, err)
		require.Equal(t, voucher.StatusRedeemed, codes[line.ID][0].Status)
		require.Equal(t, name, codes[line.ID][0].RedeemedBy)
		require.Equal(t, won.Number, codes[line.ID][0].RedeemedOrder)
		for i := range n {
			list, err := f.db.ListOrders(f.ctx, order.Filter{Username: fmt.Sprintf("learner-%02d", i)})
			require.NoError(t, err)
			if i == winner {
				require.Len(t, list, 1)
			} else {
				require.Empty(t, list, "learner %d got an order for a code they did not get", i)
			}
		}

		_, err = f.db.RedeemCode(f.ctx, code.Code, user("late"), lease.Lease{Owner: "late", Until: until})
		require.ErrorIs(t, err, voucher.ErrUsed)
		_, err = f.db.RedeemCode(f.ctx, "NOSUCHCODE234567", user("late"), lease.Lease{Owner: "late", Until: until})
		require.ErrorIs(t, err, voucher.ErrNotFound)
	})

	t.Run("Idempotency", func(t *testing.T) {
		f := setup(t)
		const stale = time.Hour
		proceed := checkout.Idempotency{Proceed: true}
		inFlight := checkout.Idempotency{InFlight: true}
		mismatch := checkout.Idempotency{Mismatch: true}
		replay := checkout.Idempotency{Status: 201, Body: []byte(`{"number":"EDX-100001"}`)}

		steps := []struct {
			name string
			do   func() error // an action before the Begin, or nil
			user string
			key  string
			hash string
			want checkout.Idempotency
		}{
			{name: "new key proceeds", user: "ann", key: "k1", hash: "h1", want: proceed},
			{name: "same request while the first runs", user: "ann", key: "k1", hash: "h1", want: inFlight},
			{name: "other body while the first runs", user: "ann", key: "k1", hash: "h2", want: mismatch},
			{name: "same key of another user is another key", user: "bob", key: "k1", hash: "h9", want: proceed},
			{name: "after finish: replay", do: func() error { return f.db.FinishIdempotent(f.ctx, "ann", "k1", replay.Status, replay.Body) },
				user: "ann", key: "k1", hash: "h1", want: replay},
			{name: "after finish: other body", user: "ann", key: "k1", hash: "h2", want: mismatch},
			{name: "abandoning a finished key keeps it", do: func() error { return f.db.AbandonIdempotent(f.ctx, "ann", "k1") },
				user: "ann", key: "k1", hash: "h1", want: replay},
			{name: "another user's claim is still running", user: "bob", key: "k1", hash: "h9", want: inFlight},
			{name: "an abandoned claim may be tried again", do: func() error { return f.db.AbandonIdempotent(f.ctx, "bob", "k1") },
				user: "bob", key: "k1", hash: "h8", want: proceed},
			{name: "a claim never finished within stale is taken over", do: func() error {
				f.db.SetClock(func() time.Time { return time.Now().Add(2 * stale) })
				return nil
			}, user: "bob", key: "k1", hash: "h8", want: proceed},
			{name: "taken over: running again", user: "bob", key: "k1", hash: "h8", want: inFlight},
			{name: "a finished answer never goes stale", user: "ann", key: "k1", hash: "h1", want: replay},
		}
		for _, s := range steps {
			if s.do != nil {
				require.NoError(t, s.do(), s.name)
			}
			got, err := f.db.BeginIdempotent(f.ctx, s.user, s.key, s.hash, stale)
			require.NoError(t, err, s.name)
			require.Equal(t, s.want, got, s.name)
		}
	})

	t.Run("DoublePurchase", func(t *testing.T) {
		t.Parallel()

		t.Run("SecondOrderRefused", func(t *testing.T) {
			f := setup(t)
			until := time.Now().Add(time.Minute)
			first := f.place(t, "ann", "checkout-1", until, f.seat[verified])
			_, err := f.db.PlaceOrder(f.ctx, f.basket(t, "ann", f.seat[verified]), "ann", lease.Lease{Owner: "checkout-2", Until: until})
			require.ErrorIs(t, err, order.ErrAlreadyPurchased)
			// Also inside a basket with a seat not yet held: the whole
			// order is refused.
			_, err = f.db.PlaceOrder(f.ctx, f.basket(t, "ann", f.seat[audit], f.seat[verified]), "ann", lease.Lease{Owner: "checkout-3", Until: until})
			require.ErrorIs(t, err, order.ErrAlreadyPurchased)
			list, err := f.db.ListOrders(f.ctx, order.Filter{Username: "ann"})
			require.NoError(t, err)
			require.Len(t, list, 1)
			require.Equal(t, first.Number, list[0].Number)
			// Even once it is delivered.
			f.complete(t, first, "checkout-1")
			_, err = f.db.PlaceOrder(f.ctx, f.basket(t, "ann", f.seat[verified]), "ann", lease.Lease{Owner: "checkout-4", Until: until})
			require.ErrorIs(t, err, order.ErrAlreadyPurchased)
			// Another learner may buy the same seat.
			f.place(t, "bob", "checkout-5", until, f.seat[verified])
		})

		t.Run("ConcurrentOrders", func(t *testing.T) {
			f := setup(t)
			until := time.Now().Add(time.Minute)
			b := f.basket(t, "ann", f.seat[verified])
			const n = 20
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					_, errs[i] = f.db.PlaceOrder(f.ctx, b, "ann", lease.Lease{Owner: fmt.Sprintf("checkout-%d", i), Until: until})
				})
			}
			close(start)
			wg.Wait()
			ok, refused := 0, 0
			for i, err := range errs {
				if err == nil {
					ok++
					continue
				}
				require.ErrorIs(t, err, order.ErrAlreadyPurchased, "racer %d", i)
				refused++
			}
			require.Equal(t, 1, ok)
			require.Equal(t, n-1, refused)
			list, err := f.db.ListOrders(f.ctx, order.Filter{Username: "ann"})
			require.NoError(t, err)
			require.Len(t, list, 1)
		})

		t.Run("EnrollmentCodesNotRefused", func(t *testing.T) {
			f := setup(t)
			until := time.Now().Add(time.Minute)
			var numbers []string
			for i := range 3 {
				o := f.place(t, "ann", fmt.Sprintf("checkout-%d", i), until, f.bulk[verified])
				require.Equal(t, catalog.ClassEnrollmentCode, o.Lines[0].Class)
				numbers = append(numbers, o.Number)
			}
			list, err := f.db.ListOrders(f.ctx, order.Filter{Username: "ann"})
			require.NoError(t, err)
			require.Len(t, list, 3)
			require.ElementsMatch(t, numbers, []string{list[0].Number, list[1].Number, list[2].Number})
		})

		t.Run("BuyAgainAfterRefund", func(t *testing.T) {
			f := setup(t)
			until := time.Now().Add(time.Minute)
			sku := f.seat[verified]
			o := f.place(t, "ann", "checkout-1", until, sku)
			f.complete(t, o, "checkout-1")
			again := func() error {
				_, err := f.db.PlaceOrder(f.ctx, f.basket(t, "ann", sku), "ann", lease.Lease{Owner: "checkout-again", Until: until})
				return err
			}
			bought := func() bool {
				got, err := f.db.PurchasedSKUs(f.ctx, "ann", []string{sku})
				require.NoError(t, err)
				return got[sku]
			}

			// A $0 refund through the store calls, as refund.Service does:
			// created, claimed, then saved Open → Payment Refunded →
			// Complete with its line Complete.
			ids, err := f.db.CreateRefunds(f.ctx, refund.Selection{OrderNumber: o.Number}, "staff")
			require.NoError(t, err)
			require.Len(t, ids, 1)
			require.ErrorIs(t, again(), order.ErrAlreadyPurchased, "an Open refund gives nothing back yet")
			require.True(t, bought())

			now := time.Now().UTC()
			r, ok, err := f.db.ClaimRefund(f.ctx, ids[0], "refund-1", now, now.Add(time.Minute))
			require.NoError(t, err)
			require.True(t, ok)
			require.Zero(t, r.TotalCreditMinor)
			require.Len(t, r.Lines, 1)
			_, ok, err = f.db.ClaimRefund(f.ctx, ids[0], "refund-2", now, now.Add(time.Minute))
			require.NoError(t, err)
			require.False(t, ok, "the refund is leased")
			done, err := f.db.SaveRefund(f.ctx, refund.Outcome{ID: r.ID, Owner: "refund-1", Actor: "staff", Action: refund.ActionApprove,
				Path:  []refund.Status{refund.StatusOpen, refund.StatusPaymentRefunded, refund.StatusComplete},
				Lines: []refund.LineChange{{ID: r.Lines[0].ID, From: refund.LineOpen, To: refund.LineComplete}}, Attempted: true, Now: now})
			require.NoError(t, err)
			require.Equal(t, refund.StatusComplete, done.Status)
			require.Equal(t, refund.LineComplete, done.Lines[0].Status)
			require.False(t, bought(), "refunded: given back")

			require.NoError(t, again(), "a refunded seat may be bought again")
			require.True(t, bought())
			require.ErrorIs(t, again(), order.ErrAlreadyPurchased, "and held once again")
			list, err := f.db.ListOrders(f.ctx, order.Filter{Username: "ann"})
			require.NoError(t, err)
			require.Len(t, list, 2)
		})
	})

	t.Run("PurchasedSKUs", func(t *testing.T) {
		f := setup(t)
		until := time.Now().Add(time.Minute)
		f.place(t, "ann", "checkout-ann", until, f.seat[audit], f.seat[verified])
		f.place(t, "bob", "checkout-bob", until, f.seat[professional])
		// An open basket and a frozen one are not purchases.
		_, err := f.db.CreateBasket(f.ctx, f.basket(t, "ann", f.seat[professional]))
		require.NoError(t, err)
		_, err = f.db.FreezeBasket(f.ctx, f.basket(t, "cat", f.seat[professional]), "sandbox")
		require.NoError(t, err)

		all := []string{f.seat[audit], f.seat[verified], f.seat[professional], f.bulk[verified], "NOSUCH"}
		for _, tc := range []struct {
			user string
			skus []string
			want map[string]bool
		}{
			{"ann", all, map[string]bool{f.seat[audit]: true, f.seat[verified]: true}},
			{"ann", []string{f.seat[verified]}, map[string]bool{f.seat[verified]: true}},
			{"ann", []string{f.seat[professional], "NOSUCH"}, map[string]bool{}},
			{"ann", nil, map[string]bool{}},
			{"bob", all, map[string]bool{f.seat[professional]: true}},
			{"bob", []string{f.seat[audit]}, map[string]bool{}},
			{"cat", all, map[string]bool{}},
			{"nobody", all, map[string]bool{}},
		} {
			got, err := f.db.PurchasedSKUs(f.ctx, tc.user, tc.skus)
			require.NoError(t, err)
			require.Equal(t, tc.want, got, "%s %v", tc.user, tc.skus)
		}
	})
}
