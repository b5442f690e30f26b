package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// FreezeBasket stores a basket that is waiting for payment through
// processor. A frozen basket cannot change; payment places it or a decline
// thaws it.
func (db *DB) FreezeBasket(ctx context.Context, b basket.Basket, processor string) (int64, error) {
	now := db.clock()
	var id int64
	err := db.tx(ctx, func(tx *Tx) error {
		uid, err := db.upsertUser(ctx, tx, b.Owner, now)
		if err != nil {
			return err
		}
		id, err = db.insertBasket(ctx, tx, uid, b, "Frozen", processor, now)
		return err
	})
	return id, err
}

// RecordNotification keeps a processor's notification before anything acts
// on it. A notification seen before (same processor and reference) returns
// duplicate = true and changes nothing.
func (db *DB) RecordNotification(ctx context.Context, n payment.Notification) (duplicate bool, err error) {
	res, err := db.wr.ExecContext(ctx, `INSERT INTO payment_notifications (processor, reference, basket_id, decision, amount_minor, currency, raw, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (processor, reference) DO NOTHING`,
		n.Processor, n.Reference, n.BasketID, string(n.Decision), n.Amount.Minor, n.Amount.Currency, string(n.Raw), db.ts(db.clock()))
	if err != nil {
		if isForeignKey(err) {
			return false, fmt.Errorf("%w: basket %d does not exist", payment.ErrInvalid, n.BasketID)
		}
		return false, fmt.Errorf("record notification: %w", err)
	}
	rows, _ := res.RowsAffected()
	return rows == 0, nil
}

func isForeignKey(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "foreign key")
}

func (db *DB) markNotification(ctx context.Context, tx *Tx, n payment.Notification, outcome string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE payment_notifications SET handled_at = $1, outcome = $2 WHERE processor = $3 AND reference = $4`,
		db.ts(now), outcome, n.Processor, n.Reference)
	return err
}

// frozenBasket locks a basket row and reads what placing it needs.
func (db *DB) lockBasket(ctx context.Context, tx *Tx, id int64) (status string, b basket.Basket, processor string, err error) {
	err = tx.QueryRowContext(ctx, `SELECT b.status, b.payment_processor, b.total_minor, b.currency, u.id, u.username, u.email, u.full_name, u.is_staff
		FROM baskets b JOIN users u ON u.id = b.owner_id WHERE b.id = $1`+db.forUpdate(), id).
		Scan(&status, &processor, &b.Total, &b.Currency, &b.Owner.ID, &b.Owner.Username, &b.Owner.Email, &b.Owner.FullName, &b.Owner.IsStaff)
	if errors.Is(err, sql.ErrNoRows) {
		return "", b, "", fmt.Errorf("%w: basket %d does not exist", payment.ErrInvalid, id)
	}
	if err != nil {
		return "", b, "", fmt.Errorf("lock basket: %w", err)
	}
	b.ID = id
	rows, err := tx.QueryContext(ctx, `SELECT bl.quantity, bl.price_minor, bl.currency, p.id, COALESCE(p.parent_id, 0), p.product_class, p.title,
			COALESCE(p.course_id, ''), p.attributes, s.id, s.partner, s.sku
		FROM basket_lines bl JOIN products p ON p.id = bl.product_id JOIN stock_records s ON s.product_id = p.id
		WHERE bl.basket_id = $1 ORDER BY bl.id`, id)
	if err != nil {
		return "", b, "", fmt.Errorf("basket lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l basket.Line
		p := catalog.Product{Stock: &catalog.StockRecord{}}
		var raw string
		if err := rows.Scan(&l.Quantity, &p.Stock.Price.Minor, &p.Stock.Price.Currency, &p.ID, &p.ParentID, &p.Class, &p.Title,
			&p.CourseID, &raw, &p.Stock.ID, &p.Stock.Partner, &p.Stock.SKU); err != nil {
			return "", b, "", err
		}
		if err := json.Unmarshal([]byte(raw), &p.Attributes); err != nil {
			return "", b, "", err
		}
		p.Stock.ProductID = p.ID
		l.Product = p
		b.Lines = append(b.Lines, l)
	}
	return status, b, processor, rows.Err()
}

// PlacePaidOrder places the order of a frozen basket whose payment was
// accepted: payment source and "Paid" event, the order and its lines
// (leased by owner, due at leaseUntil), the basket submitted, the
// notification marked handled, all in one transaction. If the basket was
// already placed it returns that order with placed = false: a replayed
// notification places nothing twice.
func (db *DB) PlacePaidOrder(ctx context.Context, n payment.Notification, actor string, l lease.Lease) (o order.Order, placed bool, err error) {
	now := db.clock()
	var existing string
	err = db.tx(ctx, func(tx *Tx) error {
		status, b, processor, err := db.lockBasket(ctx, tx, n.BasketID)
		if err != nil {
			return err
		}
		if status == "Submitted" {
			if err := tx.QueryRowContext(ctx, `SELECT number FROM orders WHERE basket_id = $1`, n.BasketID).Scan(&existing); err != nil {
				return fmt.Errorf("order of basket %d: %w", n.BasketID, err)
			}
			return db.markNotification(ctx, tx, n, "duplicate: order "+existing, now)
		}
		if status != "Frozen" || processor != n.Processor {
			return fmt.Errorf("%w: basket %d is %s (processor %q)", basket.ErrNotFrozen, n.BasketID, status, processor)
		}
		if n.Amount.Minor != b.Total || n.Amount.Currency != b.Currency {
			if err := db.markNotification(ctx, tx, n, "refused: amount mismatch", now); err != nil {
				return err
			}
			return fmt.Errorf("%w: paid %s %s, basket %d costs %s %s", payment.ErrAmountMismatch, n.Amount, n.Amount.Currency,
				n.BasketID, money.Format(b.Total, b.Currency), b.Currency)
		}
		o = order.Order{User: b.Owner, BasketID: b.ID, Status: order.StatusOpen, Currency: b.Currency, TotalMinor: b.Total, DatePlaced: now, UpdatedAt: now}
		if err := db.insertOrder(ctx, tx, &o, b, actor, l, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payment_sources (order_id, processor, reference, amount_debited_minor, currency, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, o.ID, n.Processor, n.Reference, n.Amount.Minor, n.Amount.Currency, db.ts(now)); err != nil {
			return fmt.Errorf("insert payment source: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payment_events (order_id, processor, event_type, amount_minor, currency, reference, created_at)
			VALUES ($1, $2, 'Paid', $3, $4, $5, $6)`, o.ID, n.Processor, n.Amount.Minor, n.Amount.Currency, n.Reference, db.ts(now)); err != nil {
			return fmt.Errorf("insert payment event: %w", err)
		}
		if err := db.moveBasket(ctx, tx, b.ID, basket.StatusFrozen, basket.StatusSubmitted, now, ""); err != nil {
			return err
		}
		placed = true
		return db.markNotification(ctx, tx, n, "order placed: "+o.Number, now)
	})
	if err != nil {
		// The refusal itself is recorded; only the order is not placed. A
		// payment for a seat already held stays on record for a refund.
		outcome := ""
		switch {
		case errors.Is(err, payment.ErrAmountMismatch):
			outcome = "refused: amount mismatch"
		case errors.Is(err, order.ErrAlreadyPurchased):
			outcome = "needs attention: paid for a seat the learner already holds; refund it"
		}
		if outcome != "" {
			_, _ = db.wr.ExecContext(ctx, `UPDATE payment_notifications SET handled_at = $1, outcome = $2 WHERE processor = $3 AND reference = $4`,
				db.ts(now), outcome, n.Processor, n.Reference)
		}
		return o, false, err
	}
	if existing != "" {
		o, err = db.GetOrder(ctx, existing)
		return o, false, err
	}
	return o, placed, nil
}

// DeclineBasket thaws a frozen basket after a declined payment.
func (db *DB) DeclineBasket(ctx context.Context, n payment.Notification) error {
	now := db.clock()
	return db.tx(ctx, func(tx *Tx) error {
		status, _, _, err := db.lockBasket(ctx, tx, n.BasketID)
		if err != nil {
			return err
		}
		outcome := "declined: basket thawed"
		if status == "Frozen" {
			if err := db.moveBasket(ctx, tx, n.BasketID, basket.StatusFrozen, basket.StatusOpen, now, "frozen_at = NULL"); err != nil {
				return err
			}
		} else {
			outcome = "declined: basket was " + status
		}
		return db.markNotification(ctx, tx, n, outcome, now)
	})
}

// UnhandledAccepted returns accepted notifications recorded before
// olderThan that were never acted on: paid, but no order (a crash between
// the two). The reconciler places their orders.
func (db *DB) UnhandledAccepted(ctx context.Context, olderThan time.Time, limit int) ([]payment.Notification, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT processor, reference, basket_id, amount_minor, currency, raw FROM payment_notifications
		WHERE handled_at IS NULL AND decision = 'accept' AND created_at < $1 ORDER BY created_at LIMIT $2`, db.ts(olderThan), limit)
	if err != nil {
		return nil, fmt.Errorf("unhandled notifications: %w", err)
	}
	defer rows.Close()
	var out []payment.Notification
	for rows.Next() {
		var n payment.Notification
		var raw string
		if err := rows.Scan(&n.Processor, &n.Reference, &n.BasketID, &n.Amount.Minor, &n.Amount.Currency, &raw); err != nil {
			return nil, err
		}
		n.Decision, n.Raw = payment.Accept, []byte(raw)
		out = append(out, n)
	}
	return out, rows.Err()
}

// PaymentEvents returns the payment events of an order, oldest first.
func (db *DB) PaymentEvents(ctx context.Context, orderID int64) ([]payment.Event, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT event_type, processor, amount_minor, currency, reference, COALESCE(refund_id, 0), created_at
		FROM payment_events WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("payment events: %w", err)
	}
	defer rows.Close()
	var out []payment.Event
	for rows.Next() {
		var e payment.Event
		var at nullTime
		if err := rows.Scan(&e.Type, &e.Processor, &e.Amount.Minor, &e.Amount.Currency, &e.Reference, &e.RefundID, &at); err != nil {
			return nil, err
		}
		e.CreatedAt = at.Time
		out = append(out, e)
	}
	return out, rows.Err()
}

// BasketStatus returns a basket's status ("Open", "Frozen", "Submitted").
func (db *DB) BasketStatus(ctx context.Context, id int64) (string, error) {
	var s string
	err := db.rd.QueryRowContext(ctx, `SELECT status FROM baskets WHERE id = $1`, id).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: basket %d", order.ErrNotFound, id)
	}
	return s, err
}

// BasketPayment reads a basket for its payment page.
func (db *DB) BasketPayment(ctx context.Context, id int64) (basket.Payable, error) {
	b := basket.Payable{ID: id}
	err := db.rd.QueryRowContext(ctx, `SELECT b.status, b.payment_processor, b.total_minor, b.currency, u.username
		FROM baskets b JOIN users u ON u.id = b.owner_id WHERE b.id = $1`, id).Scan(&b.Status, &b.Processor, &b.Total.Minor, &b.Total.Currency, &b.Username)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("basket %d: %w", id, order.ErrNotFound)
	}
	return b, err
}
