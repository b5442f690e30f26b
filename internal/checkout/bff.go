package checkout

import (
	"context"
	"errors"
	"fmt"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// bffStore is what the payment MFE's backend needs beyond Store
// (sqlstore's bff.go).
type bffStore interface {
	CurrentBasket(ctx context.Context, username string) (int64, error)
	SetLineQuantity(ctx context.Context, basketID int64, quantity int) error
	PaymentByReference(ctx context.Context, processor, reference string) (payment.Payment, error)
}

var errNoBFFStore = errors.New("checkout: the store does not serve the payment MFE")

func (s *Service) bff() (bffStore, error) {
	b, ok := s.Store.(bffStore)
	if !ok {
		return nil, errNoBFFStore
	}
	return b, nil
}

// CurrentBasket is the payment MFE's basket of u: the newest Open or
// Frozen one, an Open one priced again with its code; ok is false when u
// has none.
func (s *Service) CurrentBasket(ctx context.Context, u order.User) (sb basket.Stored, ok bool, err error) {
	st, err := s.bff()
	if err != nil {
		return sb, false, err
	}
	id, err := st.CurrentBasket(ctx, u.Username)
	if errors.Is(err, order.ErrNotFound) {
		return sb, false, nil
	}
	if err != nil {
		return sb, false, err
	}
	if sb, err = s.Basket(ctx, u, id); err != nil {
		return sb, false, err
	}
	if again, err := s.reprice(ctx, sb); err == nil {
		sb = again
	} else if !errors.Is(err, ErrCoupon) {
		return sb, false, err
	}
	return sb, true, nil
}

// SetQuantity sets the quantity of u's Open enrollment-code basket id and
// prices it again; basket.ErrInvalid for any other basket.
func (s *Service) SetQuantity(ctx context.Context, u order.User, id int64, quantity int) (basket.Stored, error) {
	st, err := s.bff()
	if err != nil {
		return basket.Stored{}, err
	}
	sb, err := s.Basket(ctx, u, id)
	if err != nil {
		return sb, err
	}
	if len(sb.Lines) == 0 || sb.Lines[0].Product.Class != catalog.ClassEnrollmentCode {
		return sb, fmt.Errorf("%w: only an enrollment-code basket has a quantity", basket.ErrInvalid)
	}
	if quantity < 1 || quantity > basket.MaxQuantity {
		return sb, fmt.Errorf("%w: the quantity must be 1 to %d", basket.ErrInvalid, basket.MaxQuantity)
	}
	if err := st.SetLineQuantity(ctx, id, quantity); err != nil {
		return sb, err
	}
	if sb, err = s.Basket(ctx, u, id); err != nil {
		return sb, err
	}
	priced, err := s.discount(ctx, sb.Basket, sb.Code)
	if errors.Is(err, ErrCoupon) {
		priced, err = s.discount(ctx, sb.Basket, "")
	}
	if err != nil {
		return sb, err
	}
	if err := s.Store.PriceOpenBasket(ctx, priced); err != nil {
		return sb, err
	}
	sb.Basket = priced
	return sb, nil
}

// ClientPayment prepares the payment of u's basket sb through a
// processor paid in the page (Stripe's PaymentIntent) without freezing
// it: the coupon form stays usable, and a payment whose amount is no
// longer the basket's is given back (Decide).
func (s *Service) ClientPayment(ctx context.Context, sb basket.Stored, processor string) (payment.Data, error) {
	p, err := s.Processor(processor)
	if err != nil {
		return payment.Data{}, err
	}
	if sb.Free() {
		return payment.Data{}, fmt.Errorf("%w: basket %d is free and needs no payment", basket.ErrInvalid, sb.ID)
	}
	return s.paymentData(ctx, p, sb.ID, sb.Basket)
}

// PaidBasket returns the basket of u that the processor's payment
// reference paid (a Stripe PaymentIntent id, once its notification was
// recorded); order.ErrNotFound when none of u's is known.
func (s *Service) PaidBasket(ctx context.Context, u order.User, processor, reference string) (basket.Stored, error) {
	st, err := s.bff()
	if err != nil {
		return basket.Stored{}, err
	}
	p, err := st.PaymentByReference(ctx, processor, reference)
	if errors.Is(err, payment.ErrNotFound) {
		return basket.Stored{}, fmt.Errorf("payment %s: %w", reference, order.ErrNotFound)
	}
	if err != nil {
		return basket.Stored{}, err
	}
	return s.Basket(ctx, u, p.BasketID)
}
