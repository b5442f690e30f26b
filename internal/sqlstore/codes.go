package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"fulfill/internal/basket"
	"fulfill/internal/lease"
	"fulfill/internal/order"
	"fulfill/internal/voucher"
)

// codeAlphabet leaves out look-alikes (0/O, 1/I) since people type codes.
const codeAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

func newCode() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return string(b)
}

// IssueCodes makes sure line lineID has n codes for seatSKU. Codes are
// numbered 1..n per line and inserted with ON CONFLICT DO NOTHING, so a
// retried line issues the same n codes, never more.
func (db *DB) IssueCodes(ctx context.Context, lineID int64, n int, seatSKU string) error {
	if n <= 0 {
		return nil
	}
	now := db.clock()
	args := make([]any, 0, 6*n)
	for seq := 1; seq <= n; seq++ {
		args = append(args, newCode(), lineID, seq, seatSKU, voucher.StatusAvailable, db.ts(now))
	}
	_, err := db.wr.ExecContext(ctx, `INSERT INTO enrollment_codes (code, order_line_id, seq, seat_sku, status, created_at) VALUES `+
		placeholders(n, 6, 0)+` ON CONFLICT (order_line_id, seq) DO NOTHING`, args...)
	if err != nil {
		return fmt.Errorf("issue enrollment codes: %w", err)
	}
	return nil
}

// RevokeCodes revokes the line's codes not yet redeemed and returns how many.
func (db *DB) RevokeCodes(ctx context.Context, lineID int64) (int, error) {
	if err := voucher.Statuses.Check(voucher.StatusAvailable, voucher.StatusRevoked); err != nil {
		return 0, err
	}
	res, err := db.wr.ExecContext(ctx, `UPDATE enrollment_codes SET status = $1 WHERE order_line_id = $2 AND status = $3`,
		voucher.StatusRevoked, lineID, voucher.StatusAvailable)
	if err != nil {
		return 0, fmt.Errorf("revoke enrollment codes: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// CodesForOrder returns the codes issued by an order's lines, by line id.
func (db *DB) CodesForOrder(ctx context.Context, orderID int64) (map[int64][]voucher.EnrollmentCode, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT c.code, c.order_line_id, c.seat_sku, c.status, c.redeemed_by, c.redeemed_order
		FROM enrollment_codes c JOIN order_lines l ON l.id = c.order_line_id WHERE l.order_id = $1 ORDER BY c.order_line_id, c.seq`, orderID)
	if err != nil {
		return nil, fmt.Errorf("codes: %w", err)
	}
	defer rows.Close()
	out := map[int64][]voucher.EnrollmentCode{}
	for rows.Next() {
		var c voucher.EnrollmentCode
		if err := rows.Scan(&c.Code, &c.LineID, &c.SeatSKU, &c.Status, &c.RedeemedBy, &c.RedeemedOrder); err != nil {
			return nil, err
		}
		out[c.LineID] = append(out[c.LineID], c)
	}
	return out, rows.Err()
}

// RedeemCode uses a code for user: in one transaction it takes the code
// (compare-and-set on its status, so two learners at the same instant
// cannot both use it) and places a $0 order for its seat, leased by owner.
// The caller fulfills the order.
func (db *DB) RedeemCode(ctx context.Context, code string, user order.User, l lease.Lease) (order.Order, error) {
	now := db.clock()
	code = strings.ToUpper(strings.TrimSpace(code))
	var o order.Order
	err := db.tx(ctx, func(tx *Tx) error {
		var seatSKU string
		if err := voucher.Statuses.Check(voucher.StatusAvailable, voucher.StatusRedeemed); err != nil {
			return err
		}
		// Compare-and-set: of two learners at the same instant, one wins.
		err := tx.QueryRowContext(ctx, `UPDATE enrollment_codes SET status = $4, redeemed_by = $1, redeemed_at = $2
			WHERE code = $3 AND status = $5 RETURNING seat_sku`, user.Username, db.ts(now), code,
			voucher.StatusRedeemed, voucher.StatusAvailable).Scan(&seatSKU)
		if errors.Is(err, sql.ErrNoRows) {
			var status string
			if err := tx.QueryRowContext(ctx, `SELECT status FROM enrollment_codes WHERE code = $1`, code).Scan(&status); errors.Is(err, sql.ErrNoRows) {
				return voucher.ErrNotFound
			}
			return fmt.Errorf("%w (%s)", voucher.ErrUsed, status)
		}
		if err != nil {
			return fmt.Errorf("redeem code: %w", err)
		}
		ps, err := db.productsBySKU(ctx, tx, []string{seatSKU})
		if err != nil {
			return err
		}
		p, ok := ps[seatSKU]
		if !ok {
			return fmt.Errorf("%w: the seat %s of this code no longer exists", voucher.ErrNotFound, seatSKU)
		}
		p.Stock.Price.Minor = 0 // the code paid for it
		b := basket.Basket{Owner: user, Currency: p.Stock.Price.Currency, Lines: []basket.Line{{Product: p, Quantity: 1}}}
		if o.User.ID, err = db.upsertUser(ctx, tx, user, now); err != nil {
			return err
		}
		b.Owner.ID = o.User.ID
		if o.BasketID, err = db.insertBasket(ctx, tx, o.User.ID, b, "Submitted", "", now); err != nil {
			return err
		}
		o.User, o.Status, o.Currency, o.DatePlaced, o.UpdatedAt = b.Owner, order.StatusOpen, b.Currency, now, now
		if err := db.insertOrder(ctx, tx, &o, b, user.Username, l, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE enrollment_codes SET redeemed_order = $1 WHERE code = $2`, o.Number, code)
		return err
	})
	return o, err
}
