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
	Total    int64 // minor units
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
