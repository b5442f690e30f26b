package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"fulfill/internal/basket"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// CurrentBasket returns the id of username's newest Open or Frozen basket
// (the payment MFE's basket); order.ErrNotFound when there is none.
func (db *DB) CurrentBasket(ctx context.Context, username string) (int64, error) {
	var id int64
	err := db.read(ctx, func(tx *Tx) error {
		return tx.QueryRowContext(ctx, `SELECT b.id FROM baskets b JOIN users u ON u.id = b.owner_id
			WHERE u.username = $1 AND b.status IN ('Open', 'Frozen') ORDER BY b.id DESC LIMIT 1`, username).Scan(&id)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("current basket of %s: %w", username, order.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("current basket: %w", err)
	}
	return id, nil
}

// SetLineQuantity sets the quantity of the first line of an Open basket;
// basket.ErrNotOpen, order.ErrNotFound. The caller prices it again.
func (db *DB) SetLineQuantity(ctx context.Context, basketID int64, quantity int) error {
	if quantity <= 0 {
		return fmt.Errorf("%w: the quantity must be at least 1", basket.ErrInvalid)
	}
	now := db.clock()
	return db.tx(ctx, func(tx *Tx) error {
		status, _, _, err := db.lockOpenBasket(ctx, tx, basketID)
		if err != nil {
			return err
		}
		if status != "Open" {
			return fmt.Errorf("%w: basket %d is %s", basket.ErrNotOpen, basketID, status)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE basket_lines SET quantity = $1
			WHERE id = (SELECT MIN(id) FROM basket_lines WHERE basket_id = $2)`, quantity, basketID); err != nil {
			return fmt.Errorf("set quantity: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE baskets SET updated_at = $1 WHERE id = $2`, now, basketID)
		return err
	})
}

// PaymentByReference returns the newest payment recorded with that
// processor reference (a Stripe PaymentIntent id); payment.ErrNotFound.
func (db *DB) PaymentByReference(ctx context.Context, processor, reference string) (payment.Payment, error) {
	var p payment.Payment
	err := db.read(ctx, func(tx *Tx) error {
		var err error
		p, err = db.paymentBy(ctx, tx, `processor = $1 AND reference = $2 ORDER BY id DESC LIMIT 1`, processor, reference)
		return err
	})
	return p, err
}
