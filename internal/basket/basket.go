// Package basket builds a basket from SKUs and decides how it is checked
// out: a free basket bypasses payment.
package basket

import (
	"fmt"
	"strings"
	"time"

	"fulfill/internal/apperr"
	"fulfill/internal/catalog"
	"fulfill/internal/money"
	"fulfill/internal/order"
)

// ErrUnavailable is returned when a SKU is unknown or cannot be bought.
var ErrUnavailable = apperr.New(apperr.Unavailable, "product unavailable")

// ErrNotFree is returned when a basket that needs payment is checked out
// without a payment processor able to take it.
var ErrNotFree = apperr.New(apperr.PaymentRequired, "basket is not free")

// ErrInvalid is returned for a basket that breaks a rule (empty, mixed
// currencies).
var ErrInvalid = apperr.New(apperr.Invalid, "invalid basket")

// Line is one product in a basket.
type Line struct {
	Product  catalog.Product
	Quantity int
}

// Basket is what a user is about to buy.
type Basket struct {
	ID       int64
	Owner    order.User
	Lines    []Line
	Currency string
	// Total is in minor units: after Discounts, when it carries any.
	Total int64
	// Code is the voucher code the basket carries ("" for none): at most
	// one, as in Otto.
	Code string
	// Discounts are what offers take off its lines (WithDiscounts).
	Discounts []Discount
}

// Free reports whether the basket costs nothing and so skips payment.
func (b Basket) Free() bool { return b.Total == 0 }

// UnavailableError names the SKUs that cannot be bought.
type UnavailableError struct{ SKUs []string }

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("product unavailable: %s", strings.Join(e.SKUs, ", "))
}

// Unwrap makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Unwrap() error { return ErrUnavailable }

// Item is a SKU and how many of it to buy.
type Item struct {
	SKU      string
	Quantity int
}

// MaxQuantity bounds one line (enrollment codes bought in bulk).
const MaxQuantity = 10000

// MaxLines bounds the products of one basket: far above any real basket,
// and far below the bind limits of either engine.
const MaxLines = 100

// Build makes a basket of one of each of the given SKUs; see BuildItems.
func Build(owner order.User, skus []string, products map[string]catalog.Product, now time.Time) (Basket, error) {
	items := make([]Item, len(skus))
	for i, s := range skus {
		items[i] = Item{SKU: s, Quantity: 1}
	}
	return BuildItems(owner, items, products, now)
}

// BuildItems makes a basket of the given items from the products found for
// them. A SKU given twice is bought once (a double click; a seat cannot be
// bought twice in one order). Only enrollment codes are bought by the
// dozen. Unknown or expired SKUs fail with an *UnavailableError naming all
// of them.
func BuildItems(owner order.User, items []Item, products map[string]catalog.Product, now time.Time) (Basket, error) {
	b := Basket{Owner: owner}
	if len(items) == 0 {
		return b, fmt.Errorf("%w: no products", ErrInvalid)
	}
	if len(items) > MaxLines {
		return b, fmt.Errorf("%w: at most %d products per basket", ErrInvalid, MaxLines)
	}
	seen := map[string]bool{}
	var missing []string
	for _, it := range items {
		sku := it.SKU
		if seen[sku] {
			continue
		}
		seen[sku] = true
		p, ok := products[sku]
		if !ok || !p.Buyable(now) {
			missing = append(missing, sku)
			continue
		}
		qty := it.Quantity
		if qty == 0 {
			qty = 1
		}
		if qty < 1 || qty > MaxQuantity {
			return b, fmt.Errorf("%w: quantity of %s must be 1 to %d", ErrInvalid, sku, MaxQuantity)
		}
		if qty > 1 && p.Class != catalog.ClassEnrollmentCode {
			return b, fmt.Errorf("%w: only enrollment codes can be bought more than once; %s is a %s", ErrInvalid, sku, p.Class)
		}
		if b.Currency == "" {
			b.Currency = p.Stock.Price.Currency
		} else if b.Currency != p.Stock.Price.Currency {
			return b, fmt.Errorf("%w: products in %s and %s cannot share a basket", ErrInvalid, b.Currency, p.Stock.Price.Currency)
		}
		line, err := money.Mul(p.Stock.Price.Minor, qty)
		if err == nil {
			b.Total, err = money.Add(b.Total, line)
		}
		if err != nil {
			return b, fmt.Errorf("%w: the basket's total is out of range", ErrInvalid)
		}
		b.Lines = append(b.Lines, Line{Product: p, Quantity: qty})
	}
	if len(missing) > 0 {
		return b, &UnavailableError{SKUs: missing}
	}
	return b, nil
}

// Discount is what one offer took off a basket, as checkout priced it with
// the offer package's applicator (the one used by calculate too): the
// amount off each line, by position in Basket.Lines. The offer's and the
// voucher's names and benefit are a snapshot, kept on the order.
type Discount struct {
	OfferID   int64  `json:"offer_id"`
	OfferName string `json:"offer_name"`
	OfferType string `json:"offer_type"`
	// VoucherID and Code name the voucher that unlocked the offer (0 and
	// "" for a site offer).
	VoucherID int64  `json:"voucher_id,omitempty"`
	Code      string `json:"code,omitempty"`
	// BenefitType and BenefitValue are the offer's benefit (basis points
	// for a Percentage, minor units of Currency otherwise).
	BenefitType  string `json:"benefit_type"`
	BenefitValue int64  `json:"benefit_value"`
	Currency     string `json:"currency,omitempty"`
	// Applications is how often the offer applied in the basket (Oscar's
	// frequency): what its usage limits count.
	Applications int `json:"applications"`
	// Lines is the amount off each line, in minor units.
	Lines []int64 `json:"lines"`
}

// Amount is the total the offer took off.
func (d Discount) Amount() int64 {
	var n int64
	for _, a := range d.Lines {
		n += a
	}
	return n
}

// Before is the basket's total before discounts.
func (b Basket) Before() int64 {
	var n int64
	for i := range b.Lines {
		n += b.LineBefore(i)
	}
	return n
}

// After is the basket's total after discounts: the sum of its line
// prices, what its order costs.
func (b Basket) After() int64 {
	var n int64
	for i := range b.Lines {
		n += b.LinePrice(i)
	}
	return n
}

// LineBefore is line i's price before discounts (unit price × quantity).
func (b Basket) LineBefore(i int) int64 {
	v, err := money.Mul(b.Lines[i].Product.Stock.Price.Minor, b.Lines[i].Quantity)
	if err != nil {
		return 0
	}
	return v
}

// LinePrice is line i's price after its discounts, never below zero.
func (b Basket) LinePrice(i int) int64 {
	p := b.LineBefore(i)
	for _, d := range b.Discounts {
		if i < len(d.Lines) {
			p -= d.Lines[i]
		}
	}
	return max(p, 0)
}

// WithDiscounts returns b carrying code and the discounts ds, its Total
// the total after them. Discounts that do not describe b's lines (a
// basket changed since it was priced) are dropped.
func (b Basket) WithDiscounts(code string, ds []Discount) Basket {
	b.Code, b.Discounts = code, nil
	for _, d := range ds {
		if len(d.Lines) == len(b.Lines) && d.Amount() > 0 {
			b.Discounts = append(b.Discounts, d)
		}
	}
	b.Total = b.After()
	return b
}

// VoucherID is the voucher whose offers discount the basket, or 0.
func (b Basket) VoucherID() int64 {
	for _, d := range b.Discounts {
		if d.VoucherID != 0 {
			return d.VoucherID
		}
	}
	return 0
}
