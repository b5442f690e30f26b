package admin

import (
	"net/http"
	"time"

	"fulfill/internal/order"
	"fulfill/internal/refund"
)

type queuePage struct {
	pageBase
	Now            time.Time
	Due            int64
	OldestDue      time.Duration
	NeedsAttention int64
	Lines          []order.ScheduledLine
	Refunds        []refund.Refund
}

// handleQueue shows the durable retry queue, which is the lease and
// next_attempt_at columns of order_lines and refunds (no job system):
// how many lines are due, how long the oldest has waited, the next
// scheduled lines and the refunds waiting for a retry.
func handleQueue(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		now := a.Now().UTC()
		p := queuePage{pageBase: a.base(r, "Queue", "queue"), Now: now}
		var err error
		if p.Due, p.OldestDue, p.NeedsAttention, err = a.Store.QueueStats(ctx, now); err != nil {
			a.serverError(w, r, "read queue stats", err)
			return
		}
		if p.Lines, err = a.Store.ScheduledLines(ctx, 100); err != nil {
			a.serverError(w, r, "read scheduled lines", err)
			return
		}
		if p.Refunds, err = a.Store.ScheduledRefunds(ctx, 100); err != nil {
			a.serverError(w, r, "read scheduled refunds", err)
			return
		}
		a.render(w, r, "queue", &p)
	})
}
