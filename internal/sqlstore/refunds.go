package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/order"
	"fulfill/internal/refund"
)

var _ refund.Store = (*DB)(nil)

type refundable struct {
	lineID, orderID, price int64
	qty                    int
	currency               string
	userID                 int64
	status                 order.LineStatus
	sku                    string
}

// failedLineStatuses lists the line statuses of a failed delivery.
func failedLineStatuses() []any {
	var out []any
	for _, s := range order.LineStatuses() {
		if s.IsError() {
			out = append(out, string(s))
		}
	}
	return out
}

// CreateRefunds implements refund.Store: one Open refund per order holding
// the selected lines that refund.Refundable allows (Complete lines of a
// Complete order, paid lines in a fulfillment error status) and that have
// no refund that is not Denied. The partial unique index on refund_lines
// makes a second refund of a line impossible even when two requests race;
// the loser skips the line. A failed line is refunded only while no actor
// holds its lease, and in the same transaction it stops being retried (no
// next attempt, no longer needing attention) and its order's summary rolls
// up again: it stays in its status, and nothing will deliver it now.
func (db *DB) CreateRefunds(ctx context.Context, sel refund.Selection, actor string) ([]int64, error) {
	var where string
	args := []any{}
	switch {
	case sel.OrderNumber != "":
		where = `o.number = $1`
		args = append(args, sel.OrderNumber)
	case sel.Username != "" && sel.CourseID != "":
		where = `u.username = $1`
		args = append(args, sel.Username)
	default:
		return nil, fmt.Errorf("%w: give {username, course_id} or {order_number, line_ids}", refund.ErrInvalid)
	}
	now := db.clock()
	failed := failedLineStatuses()
	args = append(args, db.ts(now))
	free := len(args)
	args = append(args, failed...)
	rows, err := db.rd.QueryContext(ctx, `SELECT ol.id, ol.order_id, ol.line_price_minor, ol.quantity, o.currency, o.user_id, ol.attributes,
		ol.status, ol.sku
		FROM order_lines ol JOIN orders o ON o.id = ol.order_id JOIN users u ON u.id = o.user_id
		WHERE `+where+` AND ((o.status = 'Complete' AND ol.status = 'Complete')
			OR (ol.status IN (`+inList(len(failed), free)+`) AND ol.line_price_minor > 0
				AND (ol.lease_until IS NULL OR ol.lease_until < $`+strconv.Itoa(free)+`)))
		AND NOT EXISTS (SELECT 1 FROM refund_lines rl WHERE rl.order_line_id = ol.id AND rl.status <> 'Denied')
		ORDER BY ol.order_id, ol.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("refundable lines: %w", err)
	}
	wanted := map[int64]bool{}
	for _, id := range sel.LineIDs {
		wanted[id] = true
	}
	byOrder := map[int64][]refundable{}
	var orders []int64
	for rows.Next() {
		var r refundable
		var raw string
		if err := rows.Scan(&r.lineID, &r.orderID, &r.price, &r.qty, &r.currency, &r.userID, &raw, &r.status, &r.sku); err != nil {
			rows.Close()
			return nil, err
		}
		if sel.OrderNumber != "" && len(wanted) > 0 && !wanted[r.lineID] {
			continue
		}
		if sel.CourseID != "" {
			var a catalog.Attributes
			if json.Unmarshal([]byte(raw), &a) != nil || a.String("course_key") != sel.CourseID {
				continue
			}
		}
		if _, ok := byOrder[r.orderID]; !ok {
			orders = append(orders, r.orderID)
		}
		byOrder[r.orderID] = append(byOrder[r.orderID], r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var ids []int64
	for _, oid := range orders {
		lines := byOrder[oid]
		var id int64
		err := db.tx(ctx, func(tx *Tx) error {
			// The order first, as fulfillment's RecordOutcome locks it
			// before its lines: a failed line's retry fields change below.
			var from order.Status
			if err := tx.QueryRowContext(ctx, `SELECT status FROM orders WHERE id = $1`+db.forUpdate(), oid).Scan(&from); err != nil {
				return fmt.Errorf("lock order %d: %w", oid, err)
			}
			if err := tx.QueryRowContext(ctx, `INSERT INTO refunds (order_id, user_id, status, total_credit_minor, currency, created_at, updated_at)
				VALUES ($1, $2, 'Open', 0, $3, $4, $4) RETURNING id`, oid, lines[0].userID, lines[0].currency, db.ts(now)).Scan(&id); err != nil {
				return fmt.Errorf("insert refund: %w", err)
			}
			var total int64
			n := 0
			var stopped []refundable
			for _, l := range lines {
				if l.status.IsError() {
					// No retry delivers it now: compare-and-set on its
					// status and on no live lease (a retry that began since
					// the read keeps the line, which is then not refunded).
					res, err := tx.ExecContext(ctx, `UPDATE order_lines SET next_attempt_at = NULL, needs_attention = $1
						WHERE id = $2 AND status = $3 AND (lease_until IS NULL OR lease_until < $4)`, false, l.lineID, string(l.status), db.ts(now))
					if err != nil {
						return fmt.Errorf("stop retrying line %d: %w", l.lineID, err)
					}
					if k, _ := res.RowsAffected(); k != 1 {
						continue
					}
				}
				res, err := tx.ExecContext(ctx, `INSERT INTO refund_lines (refund_id, order_line_id, line_credit_minor, quantity, status, created_at, updated_at)
					VALUES ($1, $2, $3, $4, 'Open', $5, $5) ON CONFLICT (order_line_id) WHERE status <> 'Denied' DO NOTHING`,
					id, l.lineID, l.price, l.qty, db.ts(now))
				if err != nil {
					return fmt.Errorf("insert refund line: %w", err)
				}
				if k, _ := res.RowsAffected(); k == 1 {
					total += l.price
					n++
					if l.status.IsError() {
						stopped = append(stopped, l)
					}
				}
			}
			if n == 0 {
				return errNothingToRefund
			}
			if _, err := tx.ExecContext(ctx, `UPDATE refunds SET total_credit_minor = $1 WHERE id = $2`, total, id); err != nil {
				return err
			}
			if len(stopped) > 0 {
				for _, l := range stopped {
					if _, err := tx.ExecContext(ctx, `INSERT INTO order_notes (order_id, line_id, kind, message, created_at) VALUES ($1, $2, $3, $4, $5)`,
						oid, l.lineID, order.NoteInfo, fmt.Sprintf("Line %d (%s) was not delivered (%s); refund #%d was created for it by %s, and it is retried no more.",
							l.lineID, l.sku, l.status, id, actor), db.ts(now)); err != nil {
						return fmt.Errorf("insert note: %w", err)
					}
				}
				if err := db.resummarize(ctx, tx, oid, from, now); err != nil {
					return err
				}
			}
			return db.insertRefundHistory(ctx, tx, id, []refundHistory{{from: "", to: string(refund.StatusOpen), reason: "refund created", actor: actor}}, now)
		})
		if errors.Is(err, errNothingToRefund) {
			continue
		}
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

var errNothingToRefund = errors.New("nothing to refund")

// resummarize rolls the retry fields of an order (status from, locked by
// tx) up again from its lines as tx sees them, after a refund changed a
// failed line's; the status itself stays (order.Summarize checks it).
func (db *DB) resummarize(ctx context.Context, tx *Tx, orderID int64, from order.Status, now time.Time) error {
	lines, err := db.committedLines(ctx, tx, orderID)
	if err != nil {
		return err
	}
	sum, err := order.Summarize(from, lines)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE orders SET status = $1, needs_attention = $2, next_attempt_at = $3, last_error = $4, updated_at = $5
		WHERE id = $6 AND status = $7`, sum.Status, sum.NeedsAttention, db.tsp(sum.NextAttemptAt), sum.LastError, db.ts(now), orderID, from)
	if err != nil {
		return fmt.Errorf("update order: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("order %d: %w", orderID, order.ErrConflict)
	}
	return nil
}

type refundHistory struct {
	lineID        int64
	from, to      string
	reason, actor string
}

func (db *DB) insertRefundHistory(ctx context.Context, tx *Tx, id int64, hs []refundHistory, now time.Time) error {
	if len(hs) == 0 {
		return nil
	}
	args := make([]any, 0, 7*len(hs))
	for _, h := range hs {
		var line any
		if h.lineID != 0 {
			line = h.lineID
		}
		args = append(args, id, line, h.from, h.to, h.reason, h.actor, db.ts(now))
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO refund_history (refund_id, refund_line_id, from_status, to_status, reason, actor, created_at) VALUES `+
		placeholders(len(hs), 7, 0), args...)
	if err != nil {
		return fmt.Errorf("insert refund history: %w", err)
	}
	return nil
}

const refundCols = `r.id, r.order_id, o.number, u.username, r.status, r.action, r.total_credit_minor, r.currency, r.attempts, r.last_error,
	r.needs_attention, r.next_attempt_at, r.created_at, r.updated_at`

func (db *DB) loadRefunds(ctx context.Context, q querier, where string, args ...any) ([]refund.Refund, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+refundCols+` FROM refunds r JOIN orders o ON o.id = r.order_id JOIN users u ON u.id = r.user_id `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("load refunds: %w", err)
	}
	var out []refund.Refund
	idx := map[int64]int{}
	for rows.Next() {
		var r refund.Refund
		var next, created, updated nullTime
		if err := rows.Scan(&r.ID, &r.OrderID, &r.OrderNumber, &r.Username, &r.Status, &r.Action, &r.TotalCreditMinor, &r.Currency,
			&r.Attempts, &r.LastError, &r.NeedsAttention, &next, &created, &updated); err != nil {
			rows.Close()
			return nil, err
		}
		r.NextAttemptAt, r.CreatedAt, r.UpdatedAt = next.ptr(), created.Time, updated.Time
		idx[r.ID] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]any, 0, len(out))
	for _, r := range out {
		ids = append(ids, r.ID)
	}
	rows, err = q.QueryContext(ctx, `SELECT id, refund_id, order_line_id, line_credit_minor, quantity, status, last_error FROM refund_lines
		WHERE refund_id IN (`+inList(len(ids), 0)+`) ORDER BY id`, ids...)
	if err != nil {
		return nil, fmt.Errorf("load refund lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l refund.Line
		var rid int64
		if err := rows.Scan(&l.ID, &rid, &l.OrderLineID, &l.LineCreditMinor, &l.Quantity, &l.Status, &l.LastError); err != nil {
			return nil, err
		}
		out[idx[rid]].Lines = append(out[idx[rid]].Lines, l)
	}
	return out, rows.Err()
}

// GetRefund implements refund.Store.
func (db *DB) GetRefund(ctx context.Context, id int64) (refund.Refund, error) {
	rs, err := db.loadRefunds(ctx, db.rd, `WHERE r.id = $1`, id)
	if err != nil {
		return refund.Refund{}, err
	}
	if len(rs) == 0 {
		return refund.Refund{}, fmt.Errorf("refund %d: %w", id, refund.ErrNotFound)
	}
	return rs[0], nil
}

// ListRefunds returns refunds, newest first, optionally of one status or
// one order, with keyset paging by id.
func (db *DB) ListRefunds(ctx context.Context, status refund.Status, orderID, afterID int64, limit int) ([]refund.Refund, error) {
	var conds []string
	var args []any
	if status != "" {
		args = append(args, string(status))
		conds = append(conds, fmt.Sprintf("r.status = $%d", len(args)))
	}
	if orderID > 0 {
		args = append(args, orderID)
		conds = append(conds, fmt.Sprintf("r.order_id = $%d", len(args)))
	}
	if afterID > 0 {
		args = append(args, afterID)
		conds = append(conds, fmt.Sprintf("r.id < $%d", len(args)))
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	return db.loadRefunds(ctx, db.rd, where+fmt.Sprintf(" ORDER BY r.id DESC LIMIT %d", limit), args...)
}

// ClaimRefund implements refund.Store.
func (db *DB) ClaimRefund(ctx context.Context, id int64, owner string, now, until time.Time) (refund.Refund, bool, error) {
	res, err := db.wr.ExecContext(ctx, `UPDATE refunds SET lease_owner = $1, lease_until = $2
		WHERE id = $3 AND status NOT IN ('Denied', 'Complete') AND (lease_until IS NULL OR lease_until < $4)`,
		owner, db.ts(until), id, db.ts(now))
	if err != nil {
		return refund.Refund{}, false, fmt.Errorf("claim refund: %w", err)
	}
	n, _ := res.RowsAffected()
	r, err := db.GetRefund(ctx, id)
	return r, n == 1 && err == nil, err
}

// ClaimDueRefunds implements refund.Store.
func (db *DB) ClaimDueRefunds(ctx context.Context, owner string, now, until time.Time, limit int) ([]int64, error) {
	rows, err := db.wr.QueryContext(ctx, `UPDATE refunds SET lease_owner = $1, lease_until = $2
		WHERE id IN (SELECT id FROM refunds WHERE next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3)
			ORDER BY next_attempt_at LIMIT $4`+db.skipLocked()+`) RETURNING id`, owner, db.ts(until), db.ts(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim due refunds: %w", err)
	}
	return scanIDs(rows)
}

// SaveRefund implements refund.Store: compare-and-set on status and lease,
// the credit recorded at most once per refund, history for every hop.
func (db *DB) SaveRefund(ctx context.Context, out refund.Outcome) (refund.Refund, error) {
	if len(out.Path) == 0 {
		return refund.Refund{}, fmt.Errorf("%w: empty path", refund.ErrInvalidTransition)
	}
	from, to := out.Path[0], out.Path[len(out.Path)-1]
	var hist []refundHistory
	for i := 1; i < len(out.Path); i++ {
		if err := refund.Transition(out.Path[i-1], out.Path[i]); err != nil {
			return refund.Refund{}, err
		}
		hist = append(hist, refundHistory{from: string(out.Path[i-1]), to: string(out.Path[i]), reason: string(out.Action), actor: out.Actor})
	}
	for _, l := range out.Lines {
		if err := refund.LineTransition(l.From, l.To); err != nil {
			return refund.Refund{}, err
		}
	}
	err := db.tx(ctx, func(tx *Tx) error {
		var orderID int64
		inc := 0
		if out.Attempted {
			inc = 1
		}
		err := tx.QueryRowContext(ctx, `UPDATE refunds SET status = $1, action = $2, attempts = attempts + $3, last_error = $4, needs_attention = $5,
			next_attempt_at = $6, lease_owner = NULL, lease_until = NULL, updated_at = $7
			WHERE id = $8 AND status = $9 AND lease_owner = $10 RETURNING order_id`,
			to, string(out.Action), inc, out.LastError, out.NeedsAttention, db.tsp(out.NextAttemptAt), db.ts(out.Now),
			out.ID, from, out.Owner).Scan(&orderID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("refund %d: %w", out.ID, refund.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("update refund: %w", err)
		}
		for _, l := range out.Lines {
			res, err := tx.ExecContext(ctx, `UPDATE refund_lines SET status = $1, last_error = $2, updated_at = $3
				WHERE id = $4 AND refund_id = $5 AND status = $6`, l.To, l.Error, db.ts(out.Now), l.ID, out.ID, l.From)
			if err != nil {
				return fmt.Errorf("update refund line: %w", err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("refund line %d: %w", l.ID, refund.ErrConflict)
			}
			if l.To == refund.LineComplete && l.From != l.To {
				// The learner gave it back: they may buy it again.
				if _, err := tx.ExecContext(ctx, `UPDATE order_lines SET holder_id = NULL
					WHERE id = (SELECT order_line_id FROM refund_lines WHERE id = $1)`, l.ID); err != nil {
					return fmt.Errorf("release refunded line: %w", err)
				}
			}
			if l.From != l.To {
				hist = append(hist, refundHistory{lineID: l.ID, from: string(l.From), to: string(l.To), reason: l.Error, actor: out.Actor})
			}
		}
		for _, l := range out.Lines {
			if l.To == refund.LineComplete && l.From != l.To {
				// The last line of the order given back releases its voucher use.
				if err := db.releaseIfFullyRefunded(ctx, tx, orderID); err != nil {
					return err
				}
				break
			}
		}
		if c := out.Credit; c != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO payment_events (order_id, processor, event_type, amount_minor, currency, reference, refund_id, created_at)
				VALUES ($1, $2, 'Refunded', $3, $4, $5, $6, $7)`, orderID, c.Processor, c.Amount.Minor, c.Amount.Currency, c.Reference, out.ID, db.ts(out.Now)); err != nil {
				return fmt.Errorf("record credit: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE payment_sources SET amount_refunded_minor = amount_refunded_minor + $1 WHERE order_id = $2 AND processor = $3`,
				c.Amount.Minor, orderID, c.Processor); err != nil {
				return err
			}
		}
		return db.insertRefundHistory(ctx, tx, out.ID, hist, out.Now)
	})
	if err != nil {
		return refund.Refund{}, err
	}
	return db.GetRefund(ctx, out.ID)
}

// DenyRefund implements refund.Store: only an Open refund can be denied.
func (db *DB) DenyRefund(ctx context.Context, id int64, actor string) (refund.Refund, error) {
	now := db.clock()
	err := db.tx(ctx, func(tx *Tx) error {
		var status refund.Status
		var orderID int64
		err := tx.QueryRowContext(ctx, `SELECT status, order_id FROM refunds WHERE id = $1`+db.forUpdate(), id).Scan(&status, &orderID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("refund %d: %w", id, refund.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := refund.Transition(status, refund.StatusDenied); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE refunds SET status = 'Denied', action = 'deny', next_attempt_at = NULL, updated_at = $1
			WHERE id = $2 AND status = 'Open' AND (lease_until IS NULL OR lease_until < $1)`, db.ts(now), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("refund %d is being processed: %w", id, refund.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refund_lines SET status = 'Denied', updated_at = $1 WHERE refund_id = $2 AND status = 'Open'`, db.ts(now), id); err != nil {
			return err
		}
		// A failed line that this refund stopped retrying is left to a
		// person again: flagged, as it was before the refund.
		var from order.Status
		if err := tx.QueryRowContext(ctx, `SELECT status FROM orders WHERE id = $1`+db.forUpdate(), orderID).Scan(&from); err != nil {
			return fmt.Errorf("lock order %d: %w", orderID, err)
		}
		failed := failedLineStatuses()
		res, err = tx.ExecContext(ctx, `UPDATE order_lines SET needs_attention = $1
			WHERE id IN (SELECT order_line_id FROM refund_lines WHERE refund_id = $2) AND status IN (`+inList(len(failed), 2)+`)
			AND next_attempt_at IS NULL`, append([]any{true, id}, failed...)...)
		if err != nil {
			return fmt.Errorf("flag failed lines: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			if err := db.resummarize(ctx, tx, orderID, from, now); err != nil {
				return err
			}
		}
		return db.insertRefundHistory(ctx, tx, id, []refundHistory{{from: string(status), to: string(refund.StatusDenied), reason: "deny", actor: actor}}, now)
	})
	if err != nil {
		return refund.Refund{}, err
	}
	return db.GetRefund(ctx, id)
}

// PaymentSource implements refund.Store.
func (db *DB) PaymentSource(ctx context.Context, orderID int64) (string, string, error) {
	var p, ref string
	err := db.rd.QueryRowContext(ctx, `SELECT processor, reference FROM payment_sources WHERE order_id = $1 ORDER BY id LIMIT 1`, orderID).Scan(&p, &ref)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("order %d: %w", orderID, refund.ErrNoPayment)
	}
	return p, ref, err
}
