package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"fulfill/internal/catalog"
)

// PutCourse creates or updates a course, its parent Seat product and one
// child Seat with a stock record per mode. A seat is found by its SKU, else
// by its defining fields; seats not named are left as they are.
func (db *DB) PutCourse(ctx context.Context, c catalog.Course) (catalog.Course, error) {
	defer db.products.clear() // after the write: no lookup keeps the old product
	if err := c.Validate(db.Partner); err != nil {
		return c, err
	}
	now := db.clock()
	err := db.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO courses (id, name, verification_deadline, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, verification_deadline = excluded.verification_deadline, updated_at = excluded.updated_at`,
			c.ID, c.Name, db.tsp(c.VerificationDeadline), db.ts(now)); err != nil {
			return fmt.Errorf("upsert course: %w", err)
		}
		var parentID int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM products WHERE course_id = $1 AND parent_id IS NULL AND product_class = 'Seat'`, c.ID).Scan(&parentID)
		parentAttrs, _ := json.Marshal(catalog.Attributes{"course_key": c.ID})
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := tx.QueryRowContext(ctx, `INSERT INTO products (parent_id, product_class, title, course_id, attributes, created_at, updated_at)
				VALUES (NULL, 'Seat', $1, $2, $3, $4, $4) RETURNING id`, "Seat in "+c.Name, c.ID, string(parentAttrs), db.ts(now)).Scan(&parentID); err != nil {
				return fmt.Errorf("insert parent seat: %w", err)
			}
		case err != nil:
			return fmt.Errorf("find parent seat: %w", err)
		default:
			if _, err := tx.ExecContext(ctx, `UPDATE products SET title = $1, updated_at = $2 WHERE id = $3`, "Seat in "+c.Name, db.ts(now), parentID); err != nil {
				return fmt.Errorf("update parent seat: %w", err)
			}
		}
		existing, err := db.courseSeats(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		for i := range c.Seats {
			s := &c.Seats[i]
			attrs := s.Attributes(c.ID)
			if err := catalog.ClassSeat.Validate(attrs); err != nil {
				return err
			}
			raw, _ := json.Marshal(attrs)
			var match *catalog.Seat
			for j := range existing {
				if existing[j].SKU == s.SKU {
					match = &existing[j]
					break
				}
			}
			if match == nil {
				for j := range existing {
					e := existing[j]
					if e.Mode() == s.Mode() && e.CreditProvider == s.CreditProvider {
						match = &existing[j]
						break
					}
				}
			}
			if s.HasEnrollmentCode() {
				if err := db.putEnrollmentCode(ctx, tx, c, *s, now); err != nil {
					return err
				}
			}
			if match == nil {
				if err := tx.QueryRowContext(ctx, `INSERT INTO products (parent_id, product_class, title, course_id, attributes, created_at, updated_at)
					VALUES ($1, 'Seat', $2, $3, $4, $5, $5) RETURNING id`, parentID, s.Title, c.ID, string(raw), db.ts(now)).Scan(&s.ProductID); err != nil {
					return fmt.Errorf("insert seat: %w", err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO stock_records (product_id, partner, sku, price_minor, currency, expires, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, s.ProductID, db.Partner, s.SKU, s.Price.Minor, s.Price.Currency, db.tsp(s.Expires), db.ts(now)); err != nil {
					return skuConflict(err, s.SKU)
				}
				continue
			}
			s.ProductID = match.ProductID
			if _, err := tx.ExecContext(ctx, `UPDATE products SET title = $1, attributes = $2, updated_at = $3 WHERE id = $4`,
				s.Title, string(raw), db.ts(now), s.ProductID); err != nil {
				return fmt.Errorf("update seat: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE stock_records SET sku = $1, price_minor = $2, currency = $3, expires = $4, updated_at = $5 WHERE product_id = $6`,
				s.SKU, s.Price.Minor, s.Price.Currency, db.tsp(s.Expires), db.ts(now), s.ProductID); err != nil {
				return skuConflict(err, s.SKU)
			}
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	return db.GetCourse(ctx, c.ID)
}

// putEnrollmentCode creates or updates the Enrollment Code product that
// sells seat s in bulk, at the seat's price.
func (db *DB) putEnrollmentCode(ctx context.Context, tx *Tx, c catalog.Course, s catalog.Seat, now time.Time) error {
	sku := catalog.EnrollmentCodeSKU(db.Partner, c.ID, s)
	attrs := s.EnrollmentCodeAttributes(c.ID)
	if err := catalog.ClassEnrollmentCode.Validate(attrs); err != nil {
		return err
	}
	raw, _ := json.Marshal(attrs)
	title := fmt.Sprintf("Enrollment code for %s seat in %s", s.Mode(), c.Name)
	var pid int64
	err := tx.QueryRowContext(ctx, `SELECT product_id FROM stock_records WHERE sku = $1`, sku).Scan(&pid)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := tx.QueryRowContext(ctx, `INSERT INTO products (parent_id, product_class, title, course_id, attributes, created_at, updated_at)
			VALUES (NULL, 'Enrollment Code', $1, $2, $3, $4, $4) RETURNING id`, title, c.ID, string(raw), db.ts(now)).Scan(&pid); err != nil {
			return fmt.Errorf("insert enrollment code product: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO stock_records (product_id, partner, sku, price_minor, currency, expires, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, pid, db.Partner, sku, s.Price.Minor, s.Price.Currency, db.tsp(s.Expires), db.ts(now))
		if err != nil {
			return skuConflict(err, sku)
		}
		return nil
	case err != nil:
		return fmt.Errorf("find enrollment code product: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE products SET title = $1, attributes = $2, updated_at = $3 WHERE id = $4`, title, string(raw), db.ts(now), pid); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE stock_records SET price_minor = $1, currency = $2, expires = $3, updated_at = $4 WHERE product_id = $5`,
		s.Price.Minor, s.Price.Currency, db.tsp(s.Expires), db.ts(now), pid)
	return err
}

func skuConflict(err error, sku string) error {
	if strings.Contains(strings.ToLower(err.Error()), "unique") {
		return fmt.Errorf("%w: sku %q is already used by another product", catalog.ErrInvalid, sku)
	}
	return fmt.Errorf("write stock record: %w", err)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (db *DB) courseSeats(ctx context.Context, q querier, courseID string) ([]catalog.Seat, error) {
	rows, err := q.QueryContext(ctx, `SELECT p.id, p.title, p.attributes, s.sku, s.price_minor, s.currency, s.expires
		FROM products p JOIN stock_records s ON s.product_id = p.id
		WHERE p.course_id = $1 AND p.parent_id IS NOT NULL AND p.product_class = 'Seat' ORDER BY p.id`, courseID)
	if err != nil {
		return nil, fmt.Errorf("course seats: %w", err)
	}
	defer rows.Close()
	var seats []catalog.Seat
	for rows.Next() {
		var s catalog.Seat
		var raw string
		var exp nullTime
		if err := rows.Scan(&s.ProductID, &s.Title, &raw, &s.SKU, &s.Price.Minor, &s.Price.Currency, &exp); err != nil {
			return nil, err
		}
		var a catalog.Attributes
		if err := json.Unmarshal([]byte(raw), &a); err != nil {
			return nil, fmt.Errorf("seat %d attributes: %w", s.ProductID, err)
		}
		s.CertificateType = a.String("certificate_type")
		s.IDVerificationRequired = a.Bool("id_verification_required")
		s.CreditProvider = a.String("credit_provider")
		s.Expires = exp.ptr()
		seats = append(seats, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	bulk, err := q.QueryContext(ctx, `SELECT p.attributes, s.sku FROM products p JOIN stock_records s ON s.product_id = p.id
		WHERE p.course_id = $1 AND p.product_class = 'Enrollment Code'`, courseID)
	if err != nil {
		return nil, fmt.Errorf("enrollment codes: %w", err)
	}
	defer bulk.Close()
	for bulk.Next() {
		var raw, sku string
		if err := bulk.Scan(&raw, &sku); err != nil {
			return nil, err
		}
		var a catalog.Attributes
		if json.Unmarshal([]byte(raw), &a) != nil {
			continue
		}
		for i := range seats {
			if seats[i].SKU == a.String("seat_sku") {
				seats[i].BulkSKU = sku
			}
		}
	}
	return seats, bulk.Err()
}

// GetCourse returns a course with its seats; catalog.ErrNotFound.
func (db *DB) GetCourse(ctx context.Context, id string) (catalog.Course, error) {
	c := catalog.Course{ID: id}
	var dl, created, updated nullTime
	err := db.rd.QueryRowContext(ctx, `SELECT name, verification_deadline, created_at, updated_at FROM courses WHERE id = $1`, id).
		Scan(&c.Name, &dl, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("course %q: %w", id, catalog.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("get course: %w", err)
	}
	c.VerificationDeadline, c.CreatedAt, c.UpdatedAt = dl.ptr(), created.Time, updated.Time
	c.Seats, err = db.courseSeats(ctx, db.rd, id)
	return c, err
}

// ListCourses returns every course with its seats, by id.
func (db *DB) ListCourses(ctx context.Context) ([]catalog.Course, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT id FROM courses ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list courses: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]catalog.Course, 0, len(ids))
	for _, id := range ids {
		c, err := db.GetCourse(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ProductsBySKU returns the sellable products with the given SKUs, keyed by
// SKU. Unknown SKUs are simply absent.
func (db *DB) ProductsBySKU(ctx context.Context, skus []string) (map[string]catalog.Product, error) {
	return db.cachedProductsBySKU(ctx, skus)
}

func (db *DB) productsBySKU(ctx context.Context, q querier, skus []string) (map[string]catalog.Product, error) {
	out := map[string]catalog.Product{}
	if len(skus) == 0 {
		return out, nil
	}
	args := make([]any, len(skus))
	for i, s := range skus {
		args[i] = s
	}
	rows, err := q.QueryContext(ctx, `SELECT p.id, COALESCE(p.parent_id, 0), p.product_class, p.title, COALESCE(p.course_id, ''), p.attributes,
			s.id, s.partner, s.sku, s.price_minor, s.currency, s.expires
		FROM stock_records s JOIN products p ON p.id = s.product_id
		WHERE s.sku IN (`+inList(len(skus), 0)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("products by sku: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p catalog.Product
		var st catalog.StockRecord
		var raw string
		var exp nullTime
		if err := rows.Scan(&p.ID, &p.ParentID, &p.Class, &p.Title, &p.CourseID, &raw,
			&st.ID, &st.Partner, &st.SKU, &st.Price.Minor, &st.Price.Currency, &exp); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(raw), &p.Attributes); err != nil {
			return nil, fmt.Errorf("product %d attributes: %w", p.ID, err)
		}
		st.ProductID, st.Expires = p.ID, exp.ptr()
		p.Stock = &st
		out[st.SKU] = p
	}
	return out, rows.Err()
}

// PutProduct creates or updates a stand-alone product (Course Entitlement,
// Donation, Coupon) by its SKU. Seats and enrollment codes come from
// PutCourse instead.
func (db *DB) PutProduct(ctx context.Context, p catalog.Product) (catalog.Product, error) {
	defer db.products.clear() // after the write: no lookup keeps the old product
	switch {
	case p.Stock == nil || p.Stock.SKU == "":
		return p, fmt.Errorf("%w: a product needs a SKU", catalog.ErrInvalid)
	case p.Class == catalog.ClassSeat || p.Class == catalog.ClassEnrollmentCode:
		return p, fmt.Errorf("%w: %s products are made by PUT /api/v2/courses/{id}/", catalog.ErrInvalid, p.Class)
	case strings.TrimSpace(p.Title) == "":
		return p, fmt.Errorf("%w: title is required", catalog.ErrInvalid)
	}
	if p.Attributes == nil {
		p.Attributes = catalog.Attributes{}
	}
	if err := p.Class.Validate(p.Attributes); err != nil {
		return p, err
	}
	raw, _ := json.Marshal(p.Attributes)
	now := db.clock()
	st := p.Stock
	err := db.tx(ctx, func(tx *Tx) error {
		var pid int64
		var class catalog.Class
		err := tx.QueryRowContext(ctx, `SELECT p.id, p.product_class FROM stock_records s JOIN products p ON p.id = s.product_id WHERE s.sku = $1`, st.SKU).Scan(&pid, &class)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := tx.QueryRowContext(ctx, `INSERT INTO products (parent_id, product_class, title, course_id, attributes, created_at, updated_at)
				VALUES (NULL, $1, $2, NULL, $3, $4, $4) RETURNING id`, p.Class, p.Title, string(raw), db.ts(now)).Scan(&pid); err != nil {
				return fmt.Errorf("insert product: %w", err)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO stock_records (product_id, partner, sku, price_minor, currency, expires, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, pid, db.Partner, st.SKU, st.Price.Minor, st.Price.Currency, db.tsp(st.Expires), db.ts(now))
			return err
		case err != nil:
			return err
		case class != p.Class:
			return fmt.Errorf("%w: SKU %s is a %s, not a %s", catalog.ErrInvalid, st.SKU, class, p.Class)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE products SET title = $1, attributes = $2, updated_at = $3 WHERE id = $4`, p.Title, string(raw), db.ts(now), pid); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE stock_records SET price_minor = $1, currency = $2, expires = $3, updated_at = $4 WHERE product_id = $5`,
			st.Price.Minor, st.Price.Currency, db.tsp(st.Expires), db.ts(now), pid)
		return err
	})
	if err != nil {
		return p, err
	}
	ps, err := db.ProductsBySKU(ctx, []string{st.SKU})
	if err != nil {
		return p, err
	}
	return ps[st.SKU], nil
}
