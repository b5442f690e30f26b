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
	"fulfill/internal/offer"
	"fulfill/internal/order"
)

// upsertUser keeps the user row in step with the token's claims.
func (db *DB) upsertUser(ctx context.Context, q querier, u order.User, now time.Time) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `INSERT INTO users (username, email, full_name, is_staff, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT (username) DO UPDATE SET email = excluded.email, full_name = excluded.full_name,
			is_staff = excluded.is_staff, updated_at = excluded.updated_at
		RETURNING id`, u.Username, u.Email, u.FullName, u.IsStaff, db.ts(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("upsert user %q: %w", u.Username, err)
	}
	return id, nil
}

// UpsertUser records a user from token claims and returns it with its id.
func (db *DB) UpsertUser(ctx context.Context, u order.User) (order.User, error) {
	var err error
	u.ID, err = db.upsertUser(ctx, db.w, u, db.clock())
	return u, err
}

// PlaceOrder submits a free (or already paid) basket as an order in one
// transaction: basket, order, lines and history. The lines are created
// leased by owner until leaseUntil and due then: if the process dies before
// fulfilling them, the retry worker picks them up when the lease ends. The
// order number is <partner>-<basket id + 100000>, unique, so one basket can
// never become two orders.
func (db *DB) PlaceOrder(ctx context.Context, b basket.Basket, actor string, l lease.Lease) (order.Order, error) {
	now := db.clock()
	o := order.Order{User: b.Owner, Status: order.StatusOpen, Currency: b.Currency, TotalMinor: b.Total, DatePlaced: now, UpdatedAt: now}
	if len(b.Lines) == 0 {
		return o, fmt.Errorf("%w: no lines", basket.ErrInvalid)
	}
	if db.Engine == Postgres && len(b.Discounts) == 0 {
		err := db.placeOrderAlone(ctx, &o, b, actor, l, now)
		return o, err
	}
	err := db.tx(ctx, func(tx *Tx) error {
		var err error
		if o.User.ID, err = db.upsertUser(ctx, tx, b.Owner, now); err != nil {
			return err
		}
		if o.BasketID, err = db.insertBasket(ctx, tx, o.User.ID, b, "Submitted", "", now); err != nil {
			return err
		}
		return db.insertOrder(ctx, tx, &o, b, actor, l, now)
	})
	return o, err
}

// placeOrderAlone is PlaceOrder on PostgreSQL for a basket without
// discounts (a launch's free seats): user, basket, order, history and
// lines in one statement (placeNewOrderPostgres) sent outside any
// transaction. PostgreSQL runs a lone statement as its own transaction,
// so this is as atomic as BEGIN, three statements and COMMIT, in one round
// trip instead of five: a second live line of a product bought once
// (order_lines_one_holder) fails the whole statement and nothing is left.
// A discounted basket also records its redemption under row locks, which
// needs the transaction (PlaceOrder's other path).
func (db *DB) placeOrderAlone(ctx context.Context, o *order.Order, b basket.Basket, actor string, l lease.Lease, now time.Time) error {
	o.TotalMinor = b.After()
	placed := order.HistoryEntry{From: "", To: string(order.StatusOpen), Reason: "order placed", Actor: actor, CreatedAt: now}
	lineArgs, err := db.orderLineArgs(b, l, 0) // the statement's user CTE holds
	if err != nil {
		return err
	}
	u := b.Owner
	args := append([]any{u.Username, u.Email, u.FullName, u.IsStaff, db.ts(now), o.TotalMinor, o.Currency, b.Code, "",
		db.Partner, o.Status, placed.From, placed.To, placed.Reason, placed.Actor}, lineArgs...)
	rows, err := db.w.QueryContext(ctx, placeNewOrderPostgres(len(b.Lines)), args...)
	if err != nil {
		err = db.orderLinesErr(o, err)
	} else {
		err = db.placedLines(o, b, rows, &o.Number, &o.BasketID, &o.User.ID)
	}
	if err != nil && !errors.Is(err, order.ErrAlreadyPurchased) {
		// The statement writes five tables: say so, whichever failed.
		return fmt.Errorf("place order in one statement (user, basket, order, history, lines): %w", err)
	}
	return err
}

// orderLineArgs are the order_lines columns but order_id of b's lines,
// orderLineCols per line, leased by l.Owner and due when the lease ends.
// The last, holder_id, is on PostgreSQL whether the product is bought once
// per learner (orderLinesPostgres puts the buyer's id in), on SQLite the
// buyer's id, holder, for such a product, else NULL.
func (db *DB) orderLineArgs(b basket.Basket, l lease.Lease, holder int64) ([]any, error) {
	args := make([]any, 0, orderLineCols*len(b.Lines))
	for i, bl := range b.Lines {
		raw, err := json.Marshal(bl.Product.Attributes)
		if err != nil {
			return nil, err
		}
		args = append(args, bl.Product.ID, bl.Product.Class, bl.Product.Title, bl.Product.Stock.SKU, string(raw),
			bl.Quantity, bl.Product.Stock.Price.Minor, b.LinePrice(i), order.LineOpen, db.ts(l.Until), l.Owner, db.ts(l.Until),
			lineCourseKey(bl.Product), nil)
		once := bl.Product.Class.OncePerLearner()
		switch {
		case db.Engine == Postgres:
			args[len(args)-1] = once
		case once:
			args[len(args)-1] = holder
		}
	}
	return args, nil
}

// orderLineCols is the number of orderLineArgs per line.
const orderLineCols = 14

// orderLinesErr names the error of inserting o's lines.
func (db *DB) orderLinesErr(o *order.Order, err error) error {
	if isUniqueViolation(err, "order_lines_one_holder", "order_lines.holder_id, order_lines.sku") {
		return fmt.Errorf("%w: %s already holds one of these products", order.ErrAlreadyPurchased, o.User.Username)
	}
	return fmt.Errorf("insert order lines: %w", err)
}

// placedLines reads the rows of an order_lines insert RETURNING order_id,
// id, sku (then the columns into extra, the same in every row) and gives o
// the lines of b with their ids.
func (db *DB) placedLines(o *order.Order, b basket.Basket, rows *sql.Rows, extra ...any) error {
	ids := make(map[string]int64, len(b.Lines))
	for rows.Next() {
		var id int64
		var sku string
		if err := rows.Scan(append([]any{&o.ID, &id, &sku}, extra...)...); err != nil {
			rows.Close()
			return err
		}
		ids[sku] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return db.orderLinesErr(o, err)
	}
	if len(ids) == 0 {
		return fmt.Errorf("insert order lines: no line returned")
	}
	for i, l := range b.Lines {
		o.Lines = append(o.Lines, order.Line{ID: ids[l.Product.Stock.SKU], OrderID: o.ID, ProductID: l.Product.ID, Class: l.Product.Class,
			Title: l.Product.Title, SKU: l.Product.Stock.SKU, Attributes: l.Product.Attributes, Quantity: l.Quantity,
			UnitPriceMinor: l.Product.Stock.Price.Minor, LinePriceMinor: b.LinePrice(i), Status: order.LineOpen})
	}
	return nil
}

// insertOrder writes the order of basket b (o has its user and basket set),
// its lines leased by l.Owner and due when the lease ends, and the first
// history row: in one statement on PostgreSQL (placeOrderPostgres), three
// on SQLite. A line bought once holds its product for the buyer
// (holder_id): a second live line of it fails with
// order.ErrAlreadyPurchased, on both engines, under any race.
//
// A discounted basket (b.Discounts) records each line's price after its
// discounts (unit_price_minor stays the price before), one order_discounts
// row per line and offer, and the redemption (recordRedemption) in the same
// transaction: a voucher or offer used up meanwhile fails the order with
// offer.ErrVoucherUnavailable or offer.ErrLimitReached, and nothing is
// placed. The order's total is the sum of its line prices.
func (db *DB) insertOrder(ctx context.Context, tx *Tx, o *order.Order, b basket.Basket, actor string, l lease.Lease, now time.Time) error {
	o.Number = fmt.Sprintf("%s-%d", db.Partner, o.BasketID+100000)
	o.TotalMinor = b.After()
	placed := order.HistoryEntry{From: "", To: string(order.StatusOpen), Reason: "order placed", Actor: actor, CreatedAt: now}
	lineArgs, err := db.orderLineArgs(b, l, o.User.ID)
	if err != nil {
		return err
	}
	orderArgs := []any{o.Number, o.BasketID, o.User.ID, o.Status, o.Currency, o.TotalMinor, db.ts(now)}
	var rows *sql.Rows
	if db.Engine == Postgres {
		// Order, history row and lines in one statement (dialect.go).
		args := append(append(orderArgs, placed.From, placed.To, placed.Reason, placed.Actor, db.ts(placed.CreatedAt)), lineArgs...)
		rows, err = tx.QueryContext(ctx, placeOrderPostgres(len(b.Lines)), args...)
	} else {
		if err := tx.QueryRowContext(ctx, `INSERT INTO orders (number, basket_id, user_id, status, currency, total_minor, date_placed, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`, orderArgs...).Scan(&o.ID); err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		args := make([]any, 0, (orderLineCols+1)*len(b.Lines))
		for i := range b.Lines {
			args = append(append(args, o.ID), lineArgs[i*orderLineCols:(i+1)*orderLineCols]...)
		}
		rows, err = tx.QueryContext(ctx, `INSERT INTO order_lines (order_id, product_id, product_class, title, sku, attributes,
			quantity, unit_price_minor, line_price_minor, status, next_attempt_at, lease_owner, lease_until, course_key, holder_id) VALUES `+
			placeholders(len(b.Lines), orderLineCols+1, 0)+` RETURNING order_id, id, sku`, args...)
	}
	if err != nil {
		return db.orderLinesErr(o, err)
	}
	if err := db.placedLines(o, b, rows); err != nil {
		return err
	}
	if err := db.insertDiscounts(ctx, tx, o, b, now); err != nil {
		return err
	}
	if db.Engine == Postgres {
		return nil // the history row went with the order
	}
	return db.insertHistory(ctx, tx, o.ID, []order.HistoryEntry{placed})
}

// insertDiscounts writes what b's offers took off the lines of order o
// and records the redemption under the voucher's and offers' locks.
func (db *DB) insertDiscounts(ctx context.Context, tx *Tx, o *order.Order, b basket.Basket, now time.Time) error {
	if len(b.Discounts) == 0 {
		return nil
	}
	red := offer.Redemption{OrderNumber: o.Number, Username: o.User.Username, VoucherID: b.VoucherID()}
	var args []any
	n := 0
	for _, d := range b.Discounts {
		red.Offers = append(red.Offers, offer.OfferUse{OfferID: d.OfferID, Applications: d.Applications, Discount: d.Amount()})
		for i, amount := range d.Lines {
			if amount <= 0 || i >= len(o.Lines) {
				continue
			}
			args = append(args, o.ID, o.Lines[i].ID, d.OfferID, d.OfferName, d.OfferType, d.VoucherID, d.Code, d.BenefitType,
				d.BenefitValue, d.Currency, d.Applications, amount, db.ts(now))
			o.Discounts = append(o.Discounts, order.Discount{LineID: o.Lines[i].ID, OfferID: d.OfferID, OfferName: d.OfferName,
				OfferType: d.OfferType, VoucherID: d.VoucherID, Code: d.Code, BenefitType: d.BenefitType, BenefitValue: d.BenefitValue,
				Currency: d.Currency, Applications: d.Applications, Amount: amount})
			n++
		}
	}
	if n > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO order_discounts (order_id, line_id, offer_id, offer_name, offer_type, voucher_id,
			voucher_code, benefit_type, benefit_value, currency, applications, amount_minor, created_at) VALUES `+placeholders(n, 13, 0), args...); err != nil {
			return fmt.Errorf("insert order discounts: %w", err)
		}
	}
	return db.recordRedemption(ctx, tx, red)
}

// lineCourseKey is the course run a line is for, kept in order_lines.course_key.
func lineCourseKey(p catalog.Product) string {
	if k := p.Attributes.String("course_key"); k != "" {
		return k
	}
	return p.CourseID
}

func (db *DB) insertHistory(ctx context.Context, tx *Tx, orderID int64, hs []order.HistoryEntry) error {
	s := db.historyRows(orderID, hs).values()
	if s.sql == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.sql, s.args...); err != nil {
		return fmt.Errorf("insert history: %w", err)
	}
	return nil
}

// historyRows are the status_history rows of hs.
func (db *DB) historyRows(orderID int64, hs []order.HistoryEntry) rowsInsert {
	args := make([]any, 0, 7*len(hs))
	for _, h := range hs {
		var line any
		if h.LineID != 0 {
			line = h.LineID
		}
		args = append(args, orderID, line, h.From, h.To, h.Reason, h.Actor, db.ts(h.CreatedAt))
	}
	return rowsInsert{historyTable, args}
}

const orderCols = `o.id, o.number, o.basket_id, o.status, o.currency, o.total_minor, o.needs_attention, o.attempts, o.last_error,
	o.next_attempt_at, o.date_placed, o.updated_at, u.id, u.username, u.email, u.full_name, u.is_staff`

func scanOrder(rows interface{ Scan(...any) error }) (order.Order, error) {
	var o order.Order
	var next, placed, updated nullTime
	err := rows.Scan(&o.ID, &o.Number, &o.BasketID, &o.Status, &o.Currency, &o.TotalMinor, &o.NeedsAttention, &o.Attempts, &o.LastError,
		&next, &placed, &updated, &o.User.ID, &o.User.Username, &o.User.Email, &o.User.FullName, &o.User.IsStaff)
	o.NextAttemptAt, o.DatePlaced, o.UpdatedAt = next.ptr(), placed.Time, updated.Time
	return o, err
}

// loadOrders reads orders by id with their lines, discounts, vouchers and
// notes, in the order of ids; missing ids are skipped.
func (db *DB) loadOrders(ctx context.Context, q querier, ids []int64) ([]order.Order, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	in := inList(len(ids), 0)
	rows, err := q.QueryContext(ctx, `SELECT `+orderCols+` FROM orders o JOIN users u ON u.id = o.user_id WHERE o.id IN (`+in+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("load orders: %w", err)
	}
	byID := map[int64]*order.Order{}
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		byID[o.ID] = &o
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, `SELECT id, order_id, product_id, product_class, title, sku, attributes, quantity, unit_price_minor,
		line_price_minor, status, needs_attention, attempts, last_error_class, last_http_status, last_error, next_attempt_at, fulfilled_at,
		fulfillment_data FROM order_lines WHERE order_id IN (`+in+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("load order lines: %w", err)
	}
	for rows.Next() {
		var l order.Line
		var raw, fdata string
		var next, done nullTime
		if err := rows.Scan(&l.ID, &l.OrderID, &l.ProductID, &l.Class, &l.Title, &l.SKU, &raw, &l.Quantity, &l.UnitPriceMinor,
			&l.LinePriceMinor, &l.Status, &l.NeedsAttention, &l.Attempts, &l.LastErrorClass, &l.LastHTTPStatus, &l.LastError, &next, &done, &fdata); err != nil {
			rows.Close()
			return nil, err
		}
		if fdata != "" && fdata != "{}" {
			_ = json.Unmarshal([]byte(fdata), &l.FulfillmentData)
		}
		if err := json.Unmarshal([]byte(raw), &l.Attributes); err != nil {
			rows.Close()
			return nil, fmt.Errorf("line %d attributes: %w", l.ID, err)
		}
		l.NextAttemptAt, l.FulfilledAt = next.ptr(), done.ptr()
		if o := byID[l.OrderID]; o != nil {
			o.Lines = append(o.Lines, l)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, `SELECT ol.order_id, rl.order_line_id, rl.status FROM refund_lines rl JOIN order_lines ol ON ol.id = rl.order_line_id
		WHERE ol.order_id IN (`+in+`) ORDER BY rl.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("load refund lines: %w", err)
	}
	for rows.Next() {
		var oid, lid int64
		var st string
		if err := rows.Scan(&oid, &lid, &st); err != nil {
			rows.Close()
			return nil, err
		}
		if o := byID[oid]; o != nil {
			for i := range o.Lines {
				if o.Lines[i].ID == lid && (o.Lines[i].RefundStatus == "" || o.Lines[i].RefundStatus == "Denied") {
					o.Lines[i].RefundStatus = st
				}
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := db.loadOrderDiscounts(ctx, q, byID, in, args); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, `SELECT id, order_id, COALESCE(line_id, 0), kind, message, created_at FROM order_notes
		WHERE order_id IN (`+in+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("load order notes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n order.Note
		var orderID int64
		var at nullTime
		if err := rows.Scan(&n.ID, &orderID, &n.LineID, &n.Kind, &n.Message, &at); err != nil {
			return nil, err
		}
		n.CreatedAt = at.Time
		if o := byID[orderID]; o != nil {
			o.Notes = append(o.Notes, n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]order.Order, 0, len(ids))
	for _, id := range ids {
		if o := byID[id]; o != nil {
			out = append(out, *o)
		}
	}
	return out, nil
}

// GetOrder returns an order by number with lines and notes; order.ErrNotFound.
func (db *DB) GetOrder(ctx context.Context, number string) (o order.Order, err error) {
	err = db.read(ctx, func(tx *Tx) error {
		o, err = db.getOrder(ctx, tx, number)
		return err
	})
	return o, err
}

func (db *DB) getOrder(ctx context.Context, q querier, number string) (order.Order, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM orders WHERE number = $1`, number).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return order.Order{}, fmt.Errorf("order %q: %w", number, order.ErrNotFound)
	}
	if err != nil {
		return order.Order{}, fmt.Errorf("get order: %w", err)
	}
	os, err := db.loadOrders(ctx, q, []int64{id})
	if err != nil {
		return order.Order{}, err
	}
	if len(os) == 0 {
		return order.Order{}, fmt.Errorf("order %q: %w", number, order.ErrNotFound)
	}
	return os[0], nil
}

// ListOrders returns orders matching f, newest first, at most f.Limit
// (default 50), with keyset paging after the order f.AfterID: by id, or
// by date placed when f bounds the date (listOrdersSQL).
func (db *DB) ListOrders(ctx context.Context, f order.Filter) ([]order.Order, error) {
	q, args := db.listOrdersSQL(f)
	rows, err := db.rd.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []order.Order
	err = db.read(ctx, func(tx *Tx) error {
		out, err = db.loadOrders(ctx, tx, ids)
		return err
	})
	return out, err
}

// orderWhere is the WHERE conditions (to be joined by AND) and arguments
// that select the orders of f, aliased o, for every listing of orders.
func (db *DB) orderWhere(f order.Filter) ([]string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	// No join: each filter is one index range (see the dashboard's README
	// section), and a join lets SQLite's planner start from users.
	if f.Username != "" {
		add("o.user_id = (SELECT id FROM users WHERE username = ?)", f.Username)
	}
	if f.Status != "" {
		add("o.status = ?", string(f.Status))
	}
	if f.NeedsAttention != nil {
		// A literal, not a parameter: PostgreSQL's generic plan of a
		// prepared statement cannot use the partial index on flagged
		// orders for "needs_attention = $n" (200 ms → 1 ms at 1 M orders).
		if *f.NeedsAttention {
			where = append(where, "o.needs_attention")
		} else {
			where = append(where, "NOT o.needs_attention")
		}
	}
	// Served by order_lines (sku, order_id) and (course_key, order_id),
	// bounded by the cursor too when the listing is by id: by date, the
	// orders after the cursor may have larger ids.
	lineFilter := func(col, v string) {
		args = append(args, v)
		cond := fmt.Sprintf("o.id IN (SELECT order_id FROM order_lines WHERE %s = $%d", col, len(args))
		if f.AfterID > 0 && !listedByDate(f) {
			args = append(args, f.AfterID)
			cond += fmt.Sprintf(" AND order_id < $%d", len(args))
		}
		where = append(where, cond+")")
	}
	if f.SKU != "" {
		lineFilter("sku", f.SKU)
	}
	if f.CourseID != "" {
		lineFilter("course_key", f.CourseID)
	}
	if f.PlacedBefore != nil {
		add("o.date_placed < ?", db.ts(*f.PlacedBefore))
	}
	if f.PlacedAfter != nil {
		add("o.date_placed >= ?", db.ts(*f.PlacedAfter))
	}
	switch {
	case f.AfterID > 0 && listedByDate(f):
		// The cursor stays an order's id, and its date is read from its
		// row: every caller's cursor (the API's, the dashboard's,
		// fulfillment's Matching) keeps working, and the comparison is with
		// the stored value itself, not a time that went through a URL. A
		// cursor naming no order matches nothing (orders are never deleted).
		args = append(args, f.AfterID)
		n := len(args)
		where = append(where, fmt.Sprintf("(o.date_placed, o.id) < ((SELECT date_placed FROM orders WHERE id = $%d), $%d)", n, n))
	case f.AfterID > 0:
		add("o.id < ?", f.AfterID)
	}
	if len(f.Numbers) > 0 {
		ph := make([]string, len(f.Numbers))
		for i, n := range f.Numbers {
			args = append(args, n)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		where = append(where, "o.number IN ("+strings.Join(ph, ", ")+")")
	}
	return where, args
}

// History returns the status history of an order, oldest first.
func (db *DB) History(ctx context.Context, orderID int64) ([]order.HistoryEntry, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT COALESCE(line_id, 0), from_status, to_status, reason, actor, created_at
		FROM status_history WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer rows.Close()
	var out []order.HistoryEntry
	for rows.Next() {
		var h order.HistoryEntry
		var at nullTime
		if err := rows.Scan(&h.LineID, &h.From, &h.To, &h.Reason, &h.Actor, &at); err != nil {
			return nil, err
		}
		h.CreatedAt = at.Time
		out = append(out, h)
	}
	return out, rows.Err()
}

// Attempts returns the fulfillment attempts of an order's lines, oldest first.
func (db *DB) Attempts(ctx context.Context, orderID int64) ([]order.Attempt, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT line_id, number, actor, module, started_at, duration_us, outcome, http_status, message
		FROM fulfillment_attempts WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("attempts: %w", err)
	}
	defer rows.Close()
	var out []order.Attempt
	for rows.Next() {
		var a order.Attempt
		var at nullTime
		var us int64
		if err := rows.Scan(&a.LineID, &a.Number, &a.Actor, &a.Module, &at, &us, &a.Outcome, &a.HTTPStatus, &a.Message); err != nil {
			return nil, err
		}
		a.StartedAt, a.Duration = at.Time, time.Duration(us)*time.Microsecond
		out = append(out, a)
	}
	return out, rows.Err()
}

// ShippedLines returns the ids of the lines delivered: Oscar's
// shipping-event ledger, derived. A line is shipped once, when it moves to
// Complete, a terminal status, and that move alone sets its fulfilled_at;
// the lines of one event (Otto: one per successful attempt, holding the
// lines newly delivered by it) are those of an order sharing a
// fulfilled_at. Writing the ledger as rows cost two inserts per delivered
// line for a table nothing else read (migration 00011).
func (db *DB) ShippedLines(ctx context.Context, orderID int64) ([]int64, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT id FROM order_lines WHERE order_id = $1 AND fulfilled_at IS NOT NULL ORDER BY id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("shipped lines: %w", err)
	}
	return scanIDs(rows)
}

// CreateBasket stores an open basket (one not checked out).
func (db *DB) CreateBasket(ctx context.Context, b basket.Basket) (int64, error) {
	now := db.clock()
	var id int64
	err := db.tx(ctx, func(tx *Tx) error {
		uid, err := db.upsertUser(ctx, tx, b.Owner, now)
		if err != nil {
			return err
		}
		id, err = db.insertBasket(ctx, tx, uid, b, "Open", "", now)
		return err
	})
	return id, err
}

// insertBasket writes a basket in status with its lines at their current
// prices; a Frozen basket also records its processor and total. A basket
// written Submitted (placed in the same request: PlaceOrder, RedeemCode)
// keeps no basket_lines: its order's lines are the record, and every
// reader of a submitted basket goes to its order (GetBasket's callers by
// OrderNumber, lockBasket's by status).
func (db *DB) insertBasket(ctx context.Context, tx *Tx, ownerID int64, b basket.Basket, status, processor string, now time.Time) (int64, error) {
	var id int64
	var frozenAt any
	if status == "Frozen" {
		frozenAt = db.ts(now)
	}
	discounts, err := discountsJSON(b.Discounts)
	if err != nil {
		return 0, err
	}
	if err := tx.QueryRowContext(ctx, `INSERT INTO baskets (owner_id, status, payment_processor, total_minor, currency, frozen_at, created_at, updated_at,
			voucher_code, discounts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) RETURNING id`, ownerID, status, processor, b.Total, b.Currency, frozenAt, db.ts(now),
		b.Code, discounts).Scan(&id); err != nil {
		return 0, fmt.Errorf("insert basket: %w", err)
	}
	if len(b.Lines) == 0 || basket.Status(status) == basket.StatusSubmitted {
		return id, nil
	}
	args := make([]any, 0, 5*len(b.Lines))
	for _, l := range b.Lines {
		args = append(args, id, l.Product.ID, l.Quantity, l.Product.Stock.Price.Minor, l.Product.Stock.Price.Currency)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO basket_lines (basket_id, product_id, quantity, price_minor, currency) VALUES `+
		placeholders(len(b.Lines), 5, 0), args...); err != nil {
		return 0, fmt.Errorf("insert basket lines: %w", err)
	}
	return id, nil
}

// listedByDate reports whether f's listing is ordered by (date_placed,
// id) rather than by id: when f bounds the date, so that
// orders_date_placed_id serves the bound, the order and the cursor as one
// index range. Ordered by id, a bound far in the past walks the primary key
// past every newer order (BENCHMARKS.md, "List pages"). Both orders are
// newest first and total (id breaks ties), which is what keeps keyset
// paging exact; they differ only where ids and dates disagree (orders
// placed on different replicas within their clocks' skew).
func listedByDate(f order.Filter) bool { return f.PlacedBefore != nil || f.PlacedAfter != nil }

// listOrdersSQL is ListOrders' query of the ids of f's page, and its
// arguments.
func (db *DB) listOrdersSQL(f order.Filter) (string, []any) {
	where, args := db.orderWhere(f)
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	q := `SELECT o.id FROM orders o`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	orderBy := "o.id DESC"
	if listedByDate(f) {
		orderBy = "o.date_placed DESC, o.id DESC"
	}
	return q + fmt.Sprintf(" ORDER BY %s LIMIT %d", orderBy, limit), args
}
