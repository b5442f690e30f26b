package sqlstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/order"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// countingStore counts the outcomes the worker writes.
type countingStore struct {
	*sqlstore.DB
	records atomic.Int64
}

func (s *countingStore) RecordOutcome(ctx context.Context, out fulfillment.Outcome) (order.Order, error) {
	s.records.Add(1)
	return s.DB.RecordOutcome(ctx, out)
}

// outageModule fails (503, retryable) until healed.
type outageModule struct {
	healed atomic.Bool
	calls  atomic.Int64
}

func (m *outageModule) Name() string               { return "lms" }
func (m *outageModule) Supports(l order.Line) bool { return true }
func (m *outageModule) Fulfill(_ context.Context, _ order.Order, _ order.Line, _ string) fulfillment.Result {
	m.calls.Add(1)
	if m.healed.Load() {
		return fulfillment.Result{Outcome: fulfillment.OutcomeSuccess}
	}
	return fulfillment.Result{Outcome: fulfillment.OutcomeServer, HTTPStatus: 503, Retryable: true, Message: "down"}
}
func (m *outageModule) Revoke(context.Context, order.Order, order.Line, string) fulfillment.Result {
	return fulfillment.Result{Outcome: fulfillment.OutcomeSuccess}
}

// TestBreakerPausesWorker: while a module's breaker is open the retry
// worker writes nothing for its due lines (every order, line, schedule and
// history row as it was, no outcome recorded); once the cooldown ends and
// the module answers again, every line completes with one call each.
func TestBreakerPausesWorker(t *testing.T) {
	t.Parallel()
	sqlstoretest.ForEach(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		c, err := db.PutCourse(ctx, demoCourse(t))
		require.NoError(t, err)
		var sku string
		for _, s := range c.Seats {
			if s.Mode() == "verified" {
				sku = s.SKU
			}
		}
		// N orders whose checkout lease has ended: due now.
		const n = 30
		var numbers []string
		for i := range n {
			o := place(t, db, fmt.Sprintf("learner-%d", i), "checkout", time.Now().Add(-time.Second), sku)
			numbers = append(numbers, o.Number)
		}
		snapshot := func() (orders []order.Order, history int) {
			for _, num := range numbers {
				o, err := db.GetOrder(ctx, num)
				require.NoError(t, err)
				h, err := db.History(ctx, o.ID)
				require.NoError(t, err)
				orders, history = append(orders, o), history+len(h)
			}
			return orders, history
		}
		before, historyBefore := snapshot()

		// The module's breaker is open, on a clock of the test's.
		var clock atomic.Int64
		clock.Store(time.Now().UnixNano())
		m := &outageModule{}
		reg, err := fulfillment.NewRegistry(map[catalog.Class]string{catalog.ClassSeat: "lms"}, []fulfillment.Module{m},
			func(string) *fulfillment.Breaker {
				b := fulfillment.NewBreaker(1, time.Minute, nil)
				b.SetClock(func() time.Time { return time.Unix(0, clock.Load()) })
				return b
			})
		require.NoError(t, err)
		br := reg.Breakers()["lms"]
		require.True(t, br.Allow())
		br.Record(false)
		require.Equal(t, fulfillment.BreakerOpen, br.State())

		store := &countingStore{DB: db}
		svc := &fulfillment.Service{Store: store, Registry: reg, Lease: time.Minute, BreakerDelay: time.Minute,
			Policy: fulfillment.Policy{Base: 10 * time.Millisecond, Cap: 10 * time.Millisecond, Attempts: 10},
			Log:    slog.New(slog.NewTextHandler(io.Discard, nil))}
		w := &fulfillment.Worker{Service: svc, Owner: "worker", Poll: 5 * time.Millisecond, Batch: 200, MaxInFlight: 100}
		wctx, stop := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() { defer close(stopped); w.Run(wctx) }()
		t.Cleanup(func() { stop(); <-stopped })

		// Open: dozens of polls, and nothing written.
		time.Sleep(300 * time.Millisecond)
		during, historyDuring := snapshot()
		require.Equal(t, fulfillment.BreakerOpen, br.State(), "still in the cooldown")
		require.Zero(t, store.records.Load(), "no outcome recorded while the breaker is open")
		require.Zero(t, m.calls.Load())
		require.Equal(t, historyBefore, historyDuring, "no history rows")
		require.Equal(t, before, during, "orders and lines untouched: status, schedule, lease, attempts, updated_at")

		// The LMS is back and the cooldown ends: one probe, then the rest.
		m.healed.Store(true)
		clock.Add(int64(time.Minute))
		require.Eventually(t, func() bool {
			for _, num := range numbers {
				o, err := db.GetOrder(ctx, num)
				if err != nil || o.Status != order.StatusComplete {
					return false
				}
			}
			return true
		}, 15*time.Second, 20*time.Millisecond)
		require.Equal(t, fulfillment.BreakerClosed, br.State())
		require.EqualValues(t, n, m.calls.Load(), "one call per line")
		require.EqualValues(t, n, store.records.Load(), "one write per order: nothing rescheduled")
	})
}
