package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"fulfill/internal/basket"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// Discounts on baskets and orders (issue "Discounts", phase 2; migration
// 00008). Checkout prices a basket with the offer applicator; the store
// keeps what it priced on the basket (voucher_code, discounts), places
// exactly that on the order (insertOrder: line prices, order_discounts,
// recordRedemption in the same transaction), and gives the uses back when
// the whole order is refunded (SaveRefund).

// discountsJSON is the stored form of a basket's discounts ("" for none).
func discountsJSON(ds []basket.Discount) (string, error) {
	if len(ds) == 0 {
		return "", nil
	}
	raw, err := json.Marshal(ds)
	if err != nil {
		return "", fmt.Errorf("basket discounts: %w", err)
	}
	return string(raw), nil
}

func parseDiscounts(s string) ([]basket.Discount, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ds []basket.Discount
	if err := json.Unmarshal([]byte(s), &ds); err != nil {
		return nil, fmt.Errorf("basket discounts: %w", err)
	}
	return ds, nil
}

// withStoredDiscounts gives b (its lines read) the code and discounts
// stored on its row.
func withStoredDiscounts(b basket.Basket, code, discounts string) (basket.Basket, error) {
	ds, err := parseDiscounts(discounts)
	if err != nil {
		return b, err
	}
	return b.WithDiscounts(code, ds), nil
}

// PriceOpenBasket stores on an Open basket the voucher code it carries
// ("" for none; at most one, so a new code replaces the old) and the
// discounts checkout priced it with (b, as GetBasket returned it, after
// basket.WithDiscounts). basket.ErrNotOpen when it is frozen or
// submitted; order.ErrNotFound.
func (db *DB) PriceOpenBasket(ctx context.Context, b basket.Basket) error {
	discounts, err := discountsJSON(b.Discounts)
	if err != nil {
		return err
	}
	now := db.clock()
	return db.tx(ctx, func(tx *Tx) error {
		status, _, _, err := db.lockBasket(ctx, tx, b.ID)
		if errors.Is(err, payment.ErrInvalid) {
			return fmt.Errorf("basket %d: %w", b.ID, order.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if basket.Status(status) != basket.StatusOpen {
			return fmt.Errorf("%w: basket %d is %s", basket.ErrNotOpen, b.ID, status)
		}
		_, err = tx.ExecContext(ctx, `UPDATE baskets SET voucher_code = $1, discounts = $2, total_minor = $3, updated_at = $4
			WHERE id = $5 AND status = 'Open'`, b.Code, discounts, b.Total, db.ts(now), b.ID)
		if err != nil {
			return fmt.Errorf("price basket: %w", err)
		}
		return nil
	})
}

// loadOrderDiscounts fills the discounts and vouchers of orders (by id).
func (db *DB) loadOrderDiscounts(ctx context.Context, q querier, byID map[int64]*order.Order, in string, args []any) error {
	rows, err := q.QueryContext(ctx, `SELECT order_id, line_id, offer_id, offer_name, offer_type, voucher_id, voucher_code, benefit_type,
			benefit_value, currency, applications, amount_minor
		FROM order_discounts WHERE order_id IN (`+in+`) ORDER BY id`, args...)
	if err != nil {
		return fmt.Errorf("load order discounts: %w", err)
	}
	vouchers := map[int64][]int64{} // voucher id → order ids
	for rows.Next() {
		var oid int64
		var d order.Discount
		if err := rows.Scan(&oid, &d.LineID, &d.OfferID, &d.OfferName, &d.OfferType, &d.VoucherID, &d.Code, &d.BenefitType,
			&d.BenefitValue, &d.Currency, &d.Applications, &d.Amount); err != nil {
			rows.Close()
			return err
		}
		o := byID[oid]
		if o == nil {
			continue
		}
		o.Discounts = append(o.Discounts, d)
		if d.VoucherID != 0 {
			seen := false
			for _, id := range vouchers[d.VoucherID] {
				seen = seen || id == oid
			}
			if !seen {
				vouchers[d.VoucherID] = append(vouchers[d.VoucherID], oid)
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for vid, oids := range vouchers {
		v := order.Voucher{ID: vid}
		var start, end, created nullTime
		var title string
		err := q.QueryRowContext(ctx, `SELECT COALESCE((SELECT c.title FROM coupons c WHERE c.id = v.coupon_id), ''), v.code, v.voucher_usage, v.start_at, v.end_at, v.created_at,
				(SELECT COUNT(*) FROM voucher_applications a WHERE a.voucher_id = v.id AND a.released_at IS NULL),
				(SELECT COALESCE(SUM(d.amount_minor), 0) FROM order_discounts d WHERE d.voucher_id = v.id
					AND EXISTS (SELECT 1 FROM voucher_applications a JOIN orders o ON o.number = a.order_number
						WHERE a.voucher_id = v.id AND a.released_at IS NULL AND o.id = d.order_id))
			FROM vouchers v WHERE v.id = $1`, vid).Scan(&title, &v.Code, &v.Usage, &start, &end, &created, &v.NumOrders, &v.TotalDiscount)
		if err != nil {
			// The voucher was deleted with its coupon: the order keeps what
			// its discounts recorded.
			for _, oid := range oids {
				o := byID[oid]
				for _, d := range o.Discounts {
					if d.VoucherID == vid {
						o.Vouchers = append(o.Vouchers, order.Voucher{ID: vid, Code: d.Code, Name: d.Code, OfferIDs: []int64{d.OfferID}, Released: true})
						break
					}
				}
			}
			continue
		}
		v.Start, v.End, v.CreatedAt = start.Time, end.Time, created.Time
		v.Name = strings.TrimSpace(title + " " + v.Code)
		offers, err := q.QueryContext(ctx, `SELECT offer_id FROM voucher_offers WHERE voucher_id = $1 ORDER BY offer_id`, vid)
		if err != nil {
			return fmt.Errorf("voucher offers: %w", err)
		}
		v.OfferIDs, err = scanIDs(offers)
		if err != nil {
			return err
		}
		for _, oid := range oids {
			o := byID[oid]
			ov := v
			var live int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM voucher_applications WHERE voucher_id = $1 AND order_number = $2
				AND released_at IS NULL`, vid, o.Number).Scan(&live); err != nil {
				return fmt.Errorf("voucher use: %w", err)
			}
			ov.Released = live == 0
			o.Vouchers = append(o.Vouchers, ov)
		}
	}
	return nil
}

// releaseIfFullyRefunded gives back the voucher use and offer counters of
// the order (releaseVoucherUse) once every one of its lines has a Complete
// refund line, in the transaction that completed the last one. Otto never
// releases them; a refunded single-use code can be used again here.
func (db *DB) releaseIfFullyRefunded(ctx context.Context, tx *Tx, orderID int64) error {
	var number string
	var left int
	if err := tx.QueryRowContext(ctx, `SELECT o.number, (SELECT COUNT(*) FROM order_lines ol WHERE ol.order_id = o.id
			AND NOT EXISTS (SELECT 1 FROM refund_lines rl WHERE rl.order_line_id = ol.id AND rl.status = 'Complete'))
		FROM orders o WHERE o.id = $1`, orderID).Scan(&number, &left); err != nil {
		return fmt.Errorf("order refunded in full: %w", err)
	}
	if left > 0 {
		return nil
	}
	_, err := db.releaseVoucherUse(ctx, tx, number)
	return err
}
