package sqlstore

import (
	"context"
	"fmt"

	"fulfill/internal/order"
	"fulfill/internal/refund"
)

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
// order.CountCap.
func (db *DB) OrderCounts(ctx context.Context) (order.Counts, error) {
	var out order.Counts
	count := func(where string, args ...any) (order.Count, error) {
		var n int64
		err := db.rd.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM (SELECT 1 FROM orders WHERE %s LIMIT %d) c`, where, order.CountCap), args...).Scan(&n)
		return order.Count{N: n, AtLeast: n >= order.CountCap}, err
	}
	for _, s := range order.Statuses() {
		c, err := count(`status = $1`, string(s))
		if err != nil {
			return out, fmt.Errorf("count %s orders: %w", s, err)
		}
		out.ByStatus = append(out.ByStatus, order.StatusCount{Status: s, Count: c})
	}
	c, err := count(db.attentionCond(""))
	if err != nil {
		return out, fmt.Errorf("count orders needing attention: %w", err)
	}
	out.NeedsAttention = c
	return out, nil
}

// ScheduledLines returns the lines with a next attempt scheduled, soonest
// first (index order_lines_due), at most limit.
func (db *DB) ScheduledLines(ctx context.Context, limit int) ([]order.ScheduledLine, error) {
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
	var out []order.ScheduledLine
	for rows.Next() {
		var s order.ScheduledLine
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
