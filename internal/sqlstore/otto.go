package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"fulfill/internal/catalog"
	"fulfill/internal/order"
)

// The queries behind Otto's page-number lists (DRF's PageNumberPagination:
// a count of the whole filter and one page of it at an offset) and the
// extra data Otto's serializers show.

// CountOrders returns how many orders match f (its cursor and limit
// ignored), for the count of a page-number listing.
func (db *DB) CountOrders(ctx context.Context, f order.Filter) (int, error) {
	f.AfterID = 0
	where, args := db.orderWhere(f)
	q := `SELECT COUNT(*) FROM orders o`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int
	if err := db.rd.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count orders: %w", err)
	}
	return n, nil
}

// ListOrdersPage returns the orders matching f, newest first, after
// skipping offset of them: at most f.Limit (1 to 1000, default 50). Its
// cursor is ignored; this is page-number paging.
func (db *DB) ListOrdersPage(ctx context.Context, f order.Filter, offset int) ([]order.Order, error) {
	f.AfterID = 0
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	if offset < 0 {
		offset = 0
	}
	f.Limit = limit
	q, args := db.listOrdersSQL(f) // ordered as ListOrders, so that a date bound is one index range
	q += fmt.Sprintf(" OFFSET %d", offset)
	var out []order.Order
	err := db.read(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("list orders: %w", err)
		}
		ids, err := scanIDs(rows)
		if err != nil {
			return err
		}
		out, err = db.loadOrders(ctx, tx, ids)
		return err
	})
	return out, err
}

// PaymentProcessors returns the processor of each order's first payment
// source, by order id; free orders are absent.
func (db *DB) PaymentProcessors(ctx context.Context, orderIDs []int64) (map[int64]string, error) {
	out := map[int64]string{}
	if len(orderIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(orderIDs))
	for i, id := range orderIDs {
		args[i] = id
	}
	rows, err := db.rd.QueryContext(ctx, `SELECT order_id, processor FROM payment_sources
		WHERE order_id IN (`+inList(len(orderIDs), 0)+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("payment processors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var p string
		if err := rows.Scan(&id, &p); err != nil {
			return nil, err
		}
		if _, ok := out[id]; !ok {
			out[id] = p
		}
	}
	return out, rows.Err()
}

// productCols are the columns scanProducts reads: a product and its stock
// record, if any (parents have none).
const productCols = `p.id, COALESCE(p.parent_id, 0), p.product_class, p.title, COALESCE(p.course_id, ''), p.attributes,
	s.id, s.partner, s.sku, s.price_minor, s.currency, s.expires`

func scanProducts(rows *sql.Rows) ([]catalog.Product, error) {
	defer rows.Close()
	var out []catalog.Product
	for rows.Next() {
		var p catalog.Product
		var raw string
		var sid, price sql.NullInt64
		var partner, sku, cur sql.NullString
		var exp nullTime
		if err := rows.Scan(&p.ID, &p.ParentID, &p.Class, &p.Title, &p.CourseID, &raw, &sid, &partner, &sku, &price, &cur, &exp); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(raw), &p.Attributes); err != nil {
			return nil, fmt.Errorf("product %d attributes: %w", p.ID, err)
		}
		if sid.Valid {
			p.Stock = &catalog.StockRecord{ID: sid.Int64, ProductID: p.ID, Partner: partner.String, SKU: sku.String, Expires: exp.ptr()}
			p.Stock.Price.Minor, p.Stock.Price.Currency = price.Int64, cur.String
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ListProducts returns the products of class (every class when ""), by
// id, after skipping offset of them, at most limit (1 to 1000, default
// 50), and how many there are in all. Parents are listed too, without a
// stock record, as Otto's product list shows them.
func (db *DB) ListProducts(ctx context.Context, class catalog.Class, offset, limit int) ([]catalog.Product, int, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	if offset < 0 {
		offset = 0
	}
	where, args := "", []any{}
	if class != "" {
		where, args = ` WHERE p.product_class = $1`, append(args, string(class))
	}
	var out []catalog.Product
	var n int
	err := db.read(ctx, func(tx *Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM products p`+where, args...).Scan(&n); err != nil {
			return fmt.Errorf("count products: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+productCols+` FROM products p LEFT JOIN stock_records s ON s.product_id = p.id`+
			where+fmt.Sprintf(` ORDER BY p.id LIMIT %d OFFSET %d`, limit, offset), args...)
		if err != nil {
			return fmt.Errorf("list products: %w", err)
		}
		out, err = scanProducts(rows)
		return err
	})
	return out, n, err
}

// ProductByID returns one product with its stock record, if any;
// catalog.ErrNotFound.
func (db *DB) ProductByID(ctx context.Context, id int64) (catalog.Product, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT `+productCols+` FROM products p LEFT JOIN stock_records s ON s.product_id = p.id
		WHERE p.id = $1`, id)
	if err != nil {
		return catalog.Product{}, fmt.Errorf("product by id: %w", err)
	}
	ps, err := scanProducts(rows)
	if err != nil {
		return catalog.Product{}, err
	}
	if len(ps) == 0 {
		return catalog.Product{}, fmt.Errorf("product %d: %w", id, catalog.ErrNotFound)
	}
	return ps[0], nil
}

// CourseProducts returns every product of the given courses (parent
// seat, seats, enrollment codes), by course id, each course's by product
// id.
func (db *DB) CourseProducts(ctx context.Context, courseIDs []string) (map[string][]catalog.Product, error) {
	out := map[string][]catalog.Product{}
	if len(courseIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(courseIDs))
	for i, id := range courseIDs {
		args[i] = id
	}
	rows, err := db.rd.QueryContext(ctx, `SELECT `+productCols+` FROM products p LEFT JOIN stock_records s ON s.product_id = p.id
		WHERE p.course_id IN (`+inList(len(courseIDs), 0)+`) ORDER BY p.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("course products: %w", err)
	}
	ps, err := scanProducts(rows)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		out[p.CourseID] = append(out[p.CourseID], p)
	}
	return out, nil
}

// ListCoursesPage returns the courses by id, with their seats, after
// skipping offset of them, at most limit (1 to 1000, default 50), and how
// many there are in all.
func (db *DB) ListCoursesPage(ctx context.Context, offset, limit int) ([]catalog.Course, int, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	if offset < 0 {
		offset = 0
	}
	var n int
	if err := db.rd.QueryRowContext(ctx, `SELECT COUNT(*) FROM courses`).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("count courses: %w", err)
	}
	rows, err := db.rd.QueryContext(ctx, fmt.Sprintf(`SELECT id FROM courses ORDER BY id LIMIT %d OFFSET %d`, limit, offset))
	if err != nil {
		return nil, 0, fmt.Errorf("list courses: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	out := make([]catalog.Course, 0, len(ids))
	for _, id := range ids {
		c, err := db.GetCourse(ctx, id)
		if errors.Is(err, catalog.ErrNotFound) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, n, nil
}
