package sqlstore

import (
	"context"
	"fmt"
	"time"

	"fulfill/internal/order"
	"fulfill/internal/refund"
)

// CountCap bounds each count of OrderCounts: past it a count is reported
// as "at least CountCap", so that the dashboard's header costs at most a
// bounded index range scan per status however many orders there are.
const CountCap = 100_000

// Count is a number of orders, exact unless AtLeast.
type Count struct {
	N       int64
	AtLeast bool // there are CountCap or more
}

// StatusCount is the number of orders in one status.
type StatusCount struct {
	Status order.Status
	Count
}

// OrderCounts are the dashboard's header numbers.
type OrderCounts struct {
	ByStatus       []StatusCount // every order status, in order.Statuses() order
	NeedsAttention Count
}

// attentionCond selects flagged orders in the form the partial index
// orders_needs_attention is declared with, so that each engine uses it.
func (db *DB) attentionCond(alias string) string {
	if db.Engine == Postgres {
		return alias + "needs_attention"
	}
	return alias + "needs_attention = 1"
}

// OrderCounts counts orders per status (index orders_status) and those
// needing attention (partial index orders_needs_attention), each capped at
// CountCap.
func (db *DB) OrderCounts(ctx context.Context) (OrderCounts, error) {
	var out OrderCounts
	count := func(where string, args ...any) (Count, error) {
		var n int64
		err := db.rd.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM (SELECT 1 FROM orders WHERE %s LIMIT %d) c`, where, CountCap), args...).Scan(&n)
		return Count{N: n, AtLeast: n >= CountCap}, err
	}
	for _, s := range order.Statuses() {
		c, err := count(`status = $1`, string(s))
		if err != nil {
			return out, fmt.Errorf("count %s orders: %w", s, err)
		}
		out.ByStatus = append(out.ByStatus, StatusCount{Status: s, Count: c})
	}
	c, err := count(db.attentionCond(""))
	if err != nil {
		return out, fmt.Errorf("count orders needing attention: %w", err)
	}
	out.NeedsAttention = c
	return out, nil
}

// ScheduledLine is an order line waiting in the retry queue.
type ScheduledLine struct {
	OrderNumber   string
	LineID        int64
	SKU           string
	Status        order.LineStatus
	Attempts      int
	LastError     string
	NextAttemptAt time.Time
	LeaseOwner    string
	LeaseUntil    *time.Time
}

// ScheduledLines returns the lines with a next attempt scheduled, soonest
// first (index order_lines_due), at most limit.
func (db *DB) ScheduledLines(ctx context.Context, limit int) ([]ScheduledLine, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	rows, err := db.rd.QueryContext(ctx, fmt.Sprintf(`SELECT o.number, l.id, l.sku, l.status, l.attempts, l.last_error, l.next_attempt_at,
			COALESCE(l.lease_owner, ''), l.lease_until
		FROM order_lines l JOIN orders o ON o.id = l.order_id
		WHERE l.next_attempt_at IS NOT NULL ORDER BY l.next_attempt_at, l.id LIMIT %d`, limit))
	if err != nil {
		return nil, fmt.Errorf("scheduled lines: %w", err)
	}
	defer rows.Close()
	var out []ScheduledLine
	for rows.Next() {
		var s ScheduledLine
		var next, lease nullTime
		if err := rows.Scan(&s.OrderNumber, &s.LineID, &s.SKU, &s.Status, &s.Attempts, &s.LastError, &next, &s.LeaseOwner, &lease); err != nil {
			return nil, err
		}
		s.NextAttemptAt, s.LeaseUntil = next.Time, lease.ptr()
		out = append(out, s)
	}
	return out, rows.Err()
}

// ScheduledRefunds returns the refunds with a retry scheduled, soonest
// first (index refunds_due), at most limit.
func (db *DB) ScheduledRefunds(ctx context.Context, limit int) ([]refund.Refund, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	return db.loadRefunds(ctx, db.rd, fmt.Sprintf(`WHERE r.next_attempt_at IS NOT NULL ORDER BY r.next_attempt_at, r.id LIMIT %d`, limit))
}
