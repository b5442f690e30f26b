package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/offer"
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

// RecordNotification keeps a verified notification in the payment ledger
// before anything acts on it. An accept is written received, under the
// handler's lease l and due when that lease ends, so that a handler killed
// before it placed the order leaves work for the reconciler. A
// notification seen before (same processor and event id) returns the row
// as it stands with duplicate = true and changes nothing.
func (db *DB) RecordNotification(ctx context.Context, n payment.Notification, l lease.Lease) (p payment.Payment, duplicate bool, err error) {
	now := db.clock()
	state, next, owner, until := payment.StateDeclined, any(nil), any(nil), any(nil)
	if n.Decision == payment.Accept {
		state, next, owner, until = payment.StateReceived, db.ts(l.Until), l.Owner, db.ts(l.Until)
	}
	err = db.tx(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `INSERT INTO payments (processor, event_id, reference, basket_id, decision, amount_minor, currency,
			raw, state, next_attempt_at, lease_owner, lease_until, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
			ON CONFLICT (processor, event_id) DO NOTHING RETURNING `+paymentCols, n.Processor, n.EventID, n.Reference, n.BasketID,
			string(n.Decision), n.Amount.Minor, n.Amount.Currency, string(n.Raw), state, next, owner, until, db.ts(now))
		if err != nil {
			return fmt.Errorf("record notification: %w", err)
		}
		ps, err := scanPayments(rows)
		if err != nil {
			return err
		}
		if len(ps) == 1 {
			p = ps[0]
			return nil
		}
		duplicate = true
		p, err = db.paymentBy(ctx, tx, `processor = $1 AND event_id = $2`, n.Processor, n.EventID)
		return err
	})
	return p, duplicate, err
}

const paymentCols = `id, processor, event_id, reference, basket_id, decision, amount_minor, currency, raw, state, cause, order_number,
	credit_reference, attempts, next_attempt_at, created_at, updated_at`

func scanPayments(rows *sql.Rows) ([]payment.Payment, error) {
	defer rows.Close()
	var out []payment.Payment
	for rows.Next() {
		var p payment.Payment
		var raw string
		var next, created, updated nullTime
		if err := rows.Scan(&p.ID, &p.Processor, &p.EventID, &p.Reference, &p.BasketID, &p.Decision, &p.Amount.Minor, &p.Amount.Currency,
			&raw, &p.State, &p.Cause, &p.OrderNumber, &p.CreditReference, &p.Attempts, &next, &created, &updated); err != nil {
			return nil, err
		}
		p.Raw, p.NextAttemptAt, p.CreatedAt, p.UpdatedAt = []byte(raw), next.ptr(), created.Time, updated.Time
		out = append(out, p)
	}
	return out, rows.Err()
}

func (db *DB) paymentBy(ctx context.Context, q querier, where string, args ...any) (payment.Payment, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+paymentCols+` FROM payments WHERE `+where, args...)
	if err != nil {
		return payment.Payment{}, fmt.Errorf("read payment: %w", err)
	}
	ps, err := scanPayments(rows)
	if err != nil {
		return payment.Payment{}, err
	}
	if len(ps) == 0 {
		return payment.Payment{}, fmt.Errorf("payment: %w", payment.ErrNotFound)
	}
	return ps[0], nil
}

// GetPayment returns a payment of the ledger; payment.ErrNotFound.
func (db *DB) GetPayment(ctx context.Context, id int64) (payment.Payment, error) {
	return db.paymentBy(ctx, db.rd, `id = $1`, id)
}

// ListPayments returns payments in state (all states when empty), newest
// first, with keyset paging by id.
func (db *DB) ListPayments(ctx context.Context, state payment.State, afterID int64, limit int) ([]payment.Payment, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	where, args := `1 = 1`, []any{}
	if state != "" {
		args = append(args, state)
		where += fmt.Sprintf(" AND state = $%d", len(args))
	}
	if afterID > 0 {
		args = append(args, afterID)
		where += fmt.Sprintf(" AND id < $%d", len(args))
	}
	rows, err := db.rd.QueryContext(ctx, `SELECT `+paymentCols+` FROM payments WHERE `+where+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	return scanPayments(rows)
}

// PaymentsNeedingAttention counts the payments a person must act on.
func (db *DB) PaymentsNeedingAttention(ctx context.Context) (int64, error) {
	var n int64
	err := db.rd.QueryRowContext(ctx, `SELECT COUNT(*) FROM payments WHERE state = $1`, payment.StateAttention).Scan(&n)
	return n, err
}

// MovePayment moves a payment from one state to another through the
// ledger's table, with compare-and-set on its state and, when owner is
// set, on its lease. The move writes cause, credit reference and the next
// attempt (nil: not scheduled; the lease is released) and counts an
// attempt when attempt is set. A Refunded payment of an order's basket
// leaves a Refunded event on that order. payment.ErrConflict when another
// actor moved it first.
func (db *DB) MovePayment(ctx context.Context, m payment.Move) error {
	if err := payment.States.Check(m.From, m.To); err != nil {
		return err
	}
	now := db.clock()
	return db.tx(ctx, func(tx *Tx) error {
		return db.movePayment(ctx, tx, m, now)
	})
}

func (db *DB) movePayment(ctx context.Context, tx *Tx, m payment.Move, now time.Time) error {
	inc := 0
	if m.Attempt {
		inc = 1
	}
	owner, until := any(nil), any(nil)
	if m.Lease != nil {
		owner, until = m.Lease.Owner, db.ts(m.Lease.Until)
	}
	args := []any{m.To, m.Cause, m.CreditReference, inc, db.tsp(m.Next), owner, until, db.ts(now), m.ID, m.From}
	where := `id = $9 AND state = $10`
	if m.Owner != "" {
		args = append(args, m.Owner)
		where += ` AND lease_owner = $11`
	}
	var p payment.Payment
	rows, err := tx.QueryContext(ctx, `UPDATE payments SET state = $1, cause = CASE WHEN $2 = '' THEN cause ELSE $2 END,
		credit_reference = CASE WHEN $3 = '' THEN credit_reference ELSE $3 END, attempts = attempts + $4,
		next_attempt_at = $5, lease_owner = $6, lease_until = $7, updated_at = $8,
		order_number = CASE WHEN order_number = '' THEN `+fmt.Sprintf("$%d", len(args)+1)+` ELSE order_number END
		WHERE `+where+` RETURNING `+paymentCols, append(args, m.OrderNumber)...)
	if err != nil {
		return fmt.Errorf("move payment %d: %w", m.ID, err)
	}
	ps, err := scanPayments(rows)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return fmt.Errorf("payment %d (%s → %s): %w", m.ID, m.From, m.To, payment.ErrConflict)
	}
	p = ps[0]
	if m.To != payment.StateRefunded || p.OrderNumber == "" {
		return nil
	}
	// The credit is on the order's record too, where support looks.
	_, err = tx.ExecContext(ctx, `INSERT INTO payment_events (order_id, processor, event_type, amount_minor, currency, reference, created_at)
		SELECT id, $1, 'Refunded', $2, $3, $4, $5 FROM orders WHERE number = $6`,
		p.Processor, p.Amount.Minor, p.Amount.Currency, p.CreditReference, db.ts(now), p.OrderNumber)
	if err != nil {
		return fmt.Errorf("record automatic refund: %w", err)
	}
	return nil
}

// ClaimDuePayments leases, for owner until until, the payments whose next
// attempt is due (received ones whose handler died or failed, refunds due),
// soonest first.
func (db *DB) ClaimDuePayments(ctx context.Context, owner string, now, until time.Time, limit int) ([]payment.Payment, error) {
	var out []payment.Payment
	err := db.tx(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE payments SET lease_owner = $1, lease_until = $2
			WHERE id IN (SELECT id FROM payments WHERE next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3)
				ORDER BY next_attempt_at LIMIT $4`+db.skipLocked()+`)
			RETURNING `+paymentCols, owner, db.ts(until), db.ts(now), limit)
		if err != nil {
			return fmt.Errorf("claim due payments: %w", err)
		}
		out, err = scanPayments(rows)
		return err
	})
	return out, err
}

// frozenBasket locks a basket row and reads what placing it needs.
func (db *DB) lockBasket(ctx context.Context, tx *Tx, id int64) (status string, b basket.Basket, processor string, err error) {
	var discounts string
	err = tx.QueryRowContext(ctx, `SELECT b.status, b.payment_processor, b.total_minor, b.currency, u.id, u.username, u.email, u.full_name, u.is_staff,
			b.voucher_code, b.discounts
		FROM baskets b JOIN users u ON u.id = b.owner_id WHERE b.id = $1`+db.forUpdate(), id).
		Scan(&status, &processor, &b.Total, &b.Currency, &b.Owner.ID, &b.Owner.Username, &b.Owner.Email, &b.Owner.FullName, &b.Owner.IsStaff,
			&b.Code, &discounts)
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
	if err := rows.Err(); err != nil {
		return "", b, "", err
	}
	// The discounts it was priced with; callers sum Total again.
	b.Discounts, err = parseDiscounts(discounts)
	return status, b, processor, err
}

// PlacePaidOrder acts on an accepted payment of the ledger (state
// received, leased by l.Owner) in one transaction, under the basket's row
// lock: checkout.Decide says what it does. Placed: the order and its lines
// (leased by l, due when it ends), payment source, "Paid" event, basket
// Submitted, payment placed. Replayed: the payment is marked so and the
// order returned. Refund: the payment is refund_due, still leased by l so
// that its handler credits it now and the worker only if the handler dies.
// A seat the learner already holds is a refund too (the holder index
// refused the order), and so is a discount used up meanwhile (the
// redemption recorded with the order refused it).
func (db *DB) PlacePaidOrder(ctx context.Context, p payment.Payment, actor string, l lease.Lease) (checkout.Paid, error) {
	now := db.clock()
	var out checkout.Paid
	err := db.tx(ctx, func(tx *Tx) error {
		out = checkout.Paid{}
		f, b, err := db.basketFacts(ctx, tx, p)
		if err != nil {
			return err
		}
		out.Disposition = checkout.Decide(f, p)
		switch {
		case out.Replay:
			out.Order.Number = f.OrderNumber
			return db.movePayment(ctx, tx, payment.Move{ID: p.ID, From: payment.StateReceived, To: payment.StateReplayed, Owner: l.Owner,
				OrderNumber: f.OrderNumber}, now)
		case out.Refund != "":
			out.Order.Number = f.OrderNumber
			return db.movePayment(ctx, tx, payment.Move{ID: p.ID, From: payment.StateReceived, To: payment.StateRefundDue, Owner: l.Owner,
				Cause: out.Refund, OrderNumber: f.OrderNumber, Next: &l.Until, Lease: &l}, now)
		}
		o := order.Order{User: b.Owner, BasketID: b.ID, Status: order.StatusOpen, Currency: b.Currency, TotalMinor: b.Total, DatePlaced: now, UpdatedAt: now}
		if err := db.insertOrder(ctx, tx, &o, b, actor, l, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payment_sources (order_id, processor, reference, amount_debited_minor, currency, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, o.ID, p.Processor, p.Reference, p.Amount.Minor, p.Amount.Currency, db.ts(now)); err != nil {
			return fmt.Errorf("insert payment source: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payment_events (order_id, processor, event_type, amount_minor, currency, reference, created_at)
			VALUES ($1, $2, 'Paid', $3, $4, $5, $6)`, o.ID, p.Processor, p.Amount.Minor, p.Amount.Currency, p.Reference, db.ts(now)); err != nil {
			return fmt.Errorf("insert payment event: %w", err)
		}
		if err := db.moveBasket(ctx, tx, b.ID, f.Status, basket.StatusSubmitted, now, ""); err != nil {
			return err
		}
		out.Order = o
		return db.movePayment(ctx, tx, payment.Move{ID: p.ID, From: payment.StateReceived, To: payment.StatePlaced, Owner: l.Owner,
			OrderNumber: o.Number}, now)
	})
	if errors.Is(err, order.ErrAlreadyPurchased) || errors.Is(err, offer.ErrLimitReached) || errors.Is(err, offer.ErrVoucherUnavailable) {
		cause := checkout.CauseHeld
		if !errors.Is(err, order.ErrAlreadyPurchased) {
			cause = checkout.CauseDiscountGone
		}
		out = checkout.Paid{Disposition: checkout.Disposition{Refund: cause}}
		err = db.MovePayment(ctx, payment.Move{ID: p.ID, From: payment.StateReceived, To: payment.StateRefundDue, Owner: l.Owner,
			Cause: out.Refund, Next: &l.Until, Lease: &l})
	}
	if err != nil {
		return checkout.Paid{}, err
	}
	if out.Replay {
		o, err := db.GetOrder(ctx, out.Order.Number)
		out.Order = o
		return out, err
	}
	return out, nil
}

// basketFacts locks the payment's basket and reads what checkout.Decide
// needs, and the basket itself with its total summed from its lines less
// the discounts it was frozen with.
func (db *DB) basketFacts(ctx context.Context, tx *Tx, p payment.Payment) (checkout.BasketFacts, basket.Basket, error) {
	status, b, _, err := db.lockBasket(ctx, tx, p.BasketID)
	if errors.Is(err, payment.ErrInvalid) {
		return checkout.BasketFacts{}, b, nil // no such basket
	}
	if err != nil {
		return checkout.BasketFacts{}, b, err
	}
	f := checkout.BasketFacts{Exists: true, Status: basket.Status(status)}
	if f.Status == basket.StatusSubmitted {
		err := tx.QueryRowContext(ctx, `SELECT o.number, EXISTS (SELECT 1 FROM payment_sources ps WHERE ps.order_id = o.id
			AND ps.processor = $2 AND ps.reference = $3) FROM orders o WHERE o.basket_id = $1`, p.BasketID, p.Processor, p.Reference).
			Scan(&f.OrderNumber, &f.PaidBySame)
		if err != nil {
			return f, b, fmt.Errorf("order of basket %d: %w", p.BasketID, err)
		}
		return f, b, nil
	}
	b.Total, b.Currency, err = linesTotal(b.Lines)
	if err != nil {
		return f, b, err
	}
	// The total the processor was asked for: after the discounts the
	// basket was frozen with.
	b = b.WithDiscounts(b.Code, b.Discounts)
	f.Total = money.Amount{Minor: b.Total, Currency: b.Currency}
	return f, b, nil
}

// DeclineBasket thaws a frozen basket after a declined payment; a basket
// in any other status stays as it is.
func (db *DB) DeclineBasket(ctx context.Context, n payment.Notification) error {
	now := db.clock()
	return db.tx(ctx, func(tx *Tx) error {
		status, _, _, err := db.lockBasket(ctx, tx, n.BasketID)
		if errors.Is(err, payment.ErrInvalid) {
			return nil // a decline of nothing we know: nothing to thaw
		}
		if err != nil || basket.Status(status) != basket.StatusFrozen {
			return err
		}
		return db.moveBasket(ctx, tx, n.BasketID, basket.StatusFrozen, basket.StatusOpen, now, "frozen_at = NULL")
	})
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
