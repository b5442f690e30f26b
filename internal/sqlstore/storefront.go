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
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// GetBasket returns a basket with its owner and lines; order.ErrNotFound.
// Total and Currency are summed from the lines, less the discounts the
// basket was last priced with. A basket placed in the request that wrote
// it (PlaceOrder, RedeemCode) has no lines of its own: its order
// (OrderNumber) has them.
func (db *DB) GetBasket(ctx context.Context, id int64) (basket.Stored, error) {
	var sb basket.Stored
	var code, discounts string
	err := db.read(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT b.status, b.payment_processor, COALESCE(o.number, ''),
				u.id, u.username, u.email, u.full_name, u.is_staff, b.voucher_code, b.discounts
			FROM baskets b JOIN users u ON u.id = b.owner_id LEFT JOIN orders o ON o.basket_id = b.id
			WHERE b.id = $1`, id).
			Scan(&sb.Status, &sb.Processor, &sb.OrderNumber, &sb.Owner.ID, &sb.Owner.Username, &sb.Owner.Email, &sb.Owner.FullName, &sb.Owner.IsStaff,
				&code, &discounts)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("basket %d: %w", id, order.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get basket: %w", err)
		}
		sb.ID = id
		sb.Lines, err = db.basketLines(ctx, tx, id)
		return err
	})
	if err != nil {
		return basket.Stored{}, err
	}
	sb.Total, sb.Currency, err = linesTotal(sb.Lines)
	if err != nil {
		return sb, err
	}
	sb.Basket, err = withStoredDiscounts(sb.Basket, code, discounts)
	return sb, err
}

// basketLines reads a basket's lines with their products; each line's stock
// record carries the price the line was added at.
func (db *DB) basketLines(ctx context.Context, q querier, id int64) ([]basket.Line, error) {
	rows, err := q.QueryContext(ctx, `SELECT bl.quantity, bl.price_minor, bl.currency, p.id, COALESCE(p.parent_id, 0), p.product_class, p.title,
			COALESCE(p.course_id, ''), p.attributes, s.id, s.partner, s.sku, s.expires
		FROM basket_lines bl JOIN products p ON p.id = bl.product_id JOIN stock_records s ON s.product_id = p.id
		WHERE bl.basket_id = $1 ORDER BY bl.id`, id)
	if err != nil {
		return nil, fmt.Errorf("basket lines: %w", err)
	}
	defer rows.Close()
	var out []basket.Line
	for rows.Next() {
		var l basket.Line
		p := catalog.Product{Stock: &catalog.StockRecord{}}
		var raw string
		var exp nullTime
		if err := rows.Scan(&l.Quantity, &p.Stock.Price.Minor, &p.Stock.Price.Currency, &p.ID, &p.ParentID, &p.Class, &p.Title,
			&p.CourseID, &raw, &p.Stock.ID, &p.Stock.Partner, &p.Stock.SKU, &exp); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(raw), &p.Attributes); err != nil {
			return nil, fmt.Errorf("product %d attributes: %w", p.ID, err)
		}
		p.Stock.ProductID, p.Stock.Expires = p.ID, exp.ptr()
		l.Product = p
		out = append(out, l)
	}
	return out, rows.Err()
}

// linesTotal sums the lines of one basket, which share one currency.
func linesTotal(lines []basket.Line) (int64, string, error) {
	var total int64
	var currency string
	for _, l := range lines {
		c := l.Product.Stock.Price.Currency
		if currency == "" {
			currency = c
		} else if c != currency {
			return 0, "", fmt.Errorf("%w: products in %s and %s cannot share a basket", basket.ErrInvalid, currency, c)
		}
		line, err := money.Mul(l.Product.Stock.Price.Minor, l.Quantity)
		if err == nil {
			total, err = money.Add(total, line)
		}
		if err != nil {
			return 0, "", fmt.Errorf("%w: the basket's total is out of range", basket.ErrInvalid)
		}
	}
	return total, currency, nil
}

// lockOpenBasket locks a basket and returns it with its total summed from
// its lines. order.ErrNotFound when it does not exist.
func (db *DB) lockOpenBasket(ctx context.Context, tx *Tx, id int64) (string, basket.Basket, string, error) {
	status, b, processor, err := db.lockBasket(ctx, tx, id)
	if errors.Is(err, payment.ErrInvalid) {
		return "", b, "", fmt.Errorf("basket %d: %w", id, order.ErrNotFound)
	}
	if err != nil {
		return "", b, "", err
	}
	if len(b.Lines) == 0 {
		return status, b, processor, fmt.Errorf("%w: basket %d is empty", basket.ErrInvalid, id)
	}
	b.Total, b.Currency, err = linesTotal(b.Lines)
	if err == nil {
		b = b.WithDiscounts(b.Code, b.Discounts)
	}
	return status, b, processor, err
}

// SubmitOpenBasket places the order of an existing free Open basket in one
// transaction: the basket is locked and moved Open → Submitted, and the
// order, its lines (leased by owner until leaseUntil and due then) and its
// history are written, numbered like every order (<partner>-<basket id +
// 100000>). It returns basket.ErrNotOpen when the basket is frozen or
// already submitted, basket.ErrNotFree when it costs something (a paid
// basket is placed by its payment), order.ErrNotFound.
func (db *DB) SubmitOpenBasket(ctx context.Context, basketID int64, actor string, l lease.Lease) (order.Order, error) {
	now := db.clock()
	var o order.Order
	err := db.tx(ctx, func(tx *Tx) error {
		status, b, _, err := db.lockOpenBasket(ctx, tx, basketID)
		if err != nil {
			return err
		}
		if status != "Open" {
			return fmt.Errorf("%w: basket %d is %s", basket.ErrNotOpen, basketID, status)
		}
		if !b.Free() {
			return fmt.Errorf("%w: basket %d costs %s %s", basket.ErrNotFree, basketID, money.Format(b.Total, b.Currency), b.Currency)
		}
		o = order.Order{User: b.Owner, BasketID: b.ID, Status: order.StatusOpen, Currency: b.Currency, TotalMinor: b.Total, DatePlaced: now, UpdatedAt: now}
		if err := db.insertOrder(ctx, tx, &o, b, actor, l, now); err != nil {
			return err
		}
		return db.moveBasket(ctx, tx, b.ID, basket.StatusOpen, basket.StatusSubmitted, now, `total_minor = $5, currency = $6`, b.Total, b.Currency)
	})
	if err != nil {
		return order.Order{}, err
	}
	return o, nil
}

// FreezeOpenBasket freezes an existing Open basket while its payment goes
// through processor: its total and currency are fixed for the payment
// notification to match. Freezing again for the same processor is a no-op
// (the learner went back and pressed pay again); a basket frozen for
// another processor, or submitted, gives basket.ErrNotOpen; a free basket
// gives basket.ErrInvalid (it is placed without payment); order.ErrNotFound.
func (db *DB) FreezeOpenBasket(ctx context.Context, basketID int64, processor string) error {
	now := db.clock()
	return db.tx(ctx, func(tx *Tx) error {
		status, b, current, err := db.lockOpenBasket(ctx, tx, basketID)
		if err != nil {
			return err
		}
		switch {
		case status == "Frozen" && current == processor:
			return nil
		case status == "Frozen":
			return fmt.Errorf("%w: basket %d is waiting for a payment through %s", basket.ErrNotOpen, basketID, current)
		case status != "Open":
			return fmt.Errorf("%w: basket %d is %s", basket.ErrNotOpen, basketID, status)
		case b.Free():
			return fmt.Errorf("%w: basket %d is free and needs no payment", basket.ErrInvalid, basketID)
		}
		return db.moveBasket(ctx, tx, basketID, basket.StatusOpen, basket.StatusFrozen, now,
			`payment_processor = $5, total_minor = $6, currency = $7, frozen_at = $3`, processor, b.Total, b.Currency)
	})
}

// moveBasket moves a basket from one status to another through the
// basket table, with compare-and-set on its status; set names more
// columns to write, as $5… of args ($3 is now). basket.ErrNotOpen when
// another actor moved it first.
func (db *DB) moveBasket(ctx context.Context, tx *Tx, id int64, from, to basket.Status, now time.Time, set string, args ...any) error {
	if err := basket.Statuses.Check(from, to); err != nil {
		return err
	}
	if set != "" {
		set = ", " + set
	}
	res, err := tx.ExecContext(ctx, `UPDATE baskets SET status = $1, updated_at = $3`+set+` WHERE id = $2 AND status = $4`,
		append([]any{to, id, db.ts(now), from}, args...)...)
	if err != nil {
		return fmt.Errorf("basket %d %s → %s: %w", id, from, to, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: basket %d changed concurrently", basket.ErrNotOpen, id)
	}
	return nil
}

// PurchasedSKUs returns which of skus the user already bought and did not
// get back: SKUs of the user's order lines in placed orders (any status but
// Payment Error) that have no Complete refund line.
func (db *DB) PurchasedSKUs(ctx context.Context, username string, skus []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(skus) == 0 {
		return out, nil
	}
	args := []any{username}
	for _, s := range skus {
		args = append(args, s)
	}
	rows, err := db.rd.QueryContext(ctx, `SELECT DISTINCT ol.sku FROM order_lines ol
		JOIN orders o ON o.id = ol.order_id JOIN users u ON u.id = o.user_id
		WHERE u.username = $1 AND o.status <> 'Payment Error' AND ol.sku IN (`+inList(len(skus), 1)+`)
		AND NOT EXISTS (SELECT 1 FROM refund_lines rl WHERE rl.order_line_id = ol.id AND rl.status = 'Complete')`, args...)
	if err != nil {
		return nil, fmt.Errorf("purchased skus: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sku string
		if err := rows.Scan(&sku); err != nil {
			return nil, err
		}
		out[sku] = true
	}
	return out, rows.Err()
}

// UserByName returns a known user; order.ErrNotFound.
func (db *DB) UserByName(ctx context.Context, username string) (order.User, error) {
	var u order.User
	err := db.rd.QueryRowContext(ctx, `SELECT id, username, email, full_name, is_staff FROM users WHERE username = $1`, username).
		Scan(&u.ID, &u.Username, &u.Email, &u.FullName, &u.IsStaff)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %q: %w", username, order.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("user by name: %w", err)
	}
	return u, nil
}
