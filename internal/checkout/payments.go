package checkout

import (
	"fmt"

	"fulfill/internal/basket"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// BasketFacts is what a paid basket looks like, under its row lock, when
// an accepted payment for it arrives.
type BasketFacts struct {
	Exists bool
	Status basket.Status
	// Total is what the basket costs now: its lines' prices less the
	// discounts it was frozen with.
	Total money.Amount
	// OrderNumber is the order the basket became, once Submitted.
	OrderNumber string
	// PaidBySame reports whether that order was paid by this very payment
	// (same processor and reference).
	PaidBySame bool
}

// Disposition is what an accepted payment leads to.
type Disposition struct {
	Place  bool // place the basket's order with it
	Replay bool // another notice of the payment that placed the order
	// Refund, when not empty, says why the money goes back.
	Refund string
}

// Decide is the one rule of what an accepted payment does. An accept for
// a basket waiting for it (Frozen), or thawed by an earlier decline and
// paid again (Open, the learner retried the card), places the order when
// the amount is the basket's. Anything else the processor took is given
// back: a second payment of a basket already placed, a payment for a
// basket that does not exist, or of another amount.
func Decide(f BasketFacts, p payment.Payment) Disposition {
	switch {
	case !f.Exists:
		return Disposition{Refund: fmt.Sprintf("paid for basket %d, which does not exist", p.BasketID)}
	case f.Status == basket.StatusSubmitted && f.PaidBySame:
		return Disposition{Replay: true}
	case f.Status == basket.StatusSubmitted:
		return Disposition{Refund: fmt.Sprintf("a second payment of basket %d, already paid by order %s", p.BasketID, f.OrderNumber)}
	case p.Amount != f.Total:
		return Disposition{Refund: fmt.Sprintf("paid %s %s, but basket %d costs %s %s", p.Amount, p.Amount.Currency, p.BasketID,
			f.Total, f.Total.Currency)}
	}
	return Disposition{Place: true}
}

// Paid is what the store did with an accepted payment.
type Paid struct {
	Order order.Order
	Disposition
}

// CauseHeld is why a payment for a seat the learner holds goes back.
const CauseHeld = "the learner already holds a product of this basket"

// CauseDiscountGone is why a payment of a discounted basket goes back when
// its voucher or offer was used up by other orders meanwhile (a single-use
// code used elsewhere): the order is not placed at a price it no longer has.
const CauseDiscountGone = "the basket's coupon code or offer is no longer available"
