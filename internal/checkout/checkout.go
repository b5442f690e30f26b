// Package checkout owns every way an order is made: a basket bought from
// the JSON API (for oneself, or by staff for a learner), a stored basket
// checked out from the storefront, an enrollment code redeemed, and a
// payment accepted by a processor. Each use case decides sellability
// through basket.Sellable, names its own lease, calls the store once to
// place the order, then fulfills it; front ends only decode, call one
// method and encode.
package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/apperr"
	"fulfill/internal/auth"
	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/offer"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// Store is what checkout needs from storage. Each method that places an
// order writes it, its lines (leased by the given lease, due when it ends)
// and its history in one transaction.
type Store interface {
	ProductsBySKU(ctx context.Context, skus []string) (map[string]catalog.Product, error)
	// PurchasedSKUs returns which of skus the user holds and did not get
	// back.
	PurchasedSKUs(ctx context.Context, username string, skus []string) (map[string]bool, error)
	UserByName(ctx context.Context, username string) (order.User, error)
	CreateBasket(ctx context.Context, b basket.Basket) (int64, error)
	GetBasket(ctx context.Context, id int64) (basket.Stored, error)
	// PlaceOrder places a new basket, submitted at once.
	PlaceOrder(ctx context.Context, b basket.Basket, actor string, l lease.Lease) (order.Order, error)
	// SubmitOpenBasket places a stored free basket; basket.ErrNotOpen.
	SubmitOpenBasket(ctx context.Context, basketID int64, actor string, l lease.Lease) (order.Order, error)
	// RedeemCode uses an enrollment code and places a $0 order of its seat.
	RedeemCode(ctx context.Context, code string, user order.User, l lease.Lease) (order.Order, error)
	FreezeBasket(ctx context.Context, b basket.Basket, processor string) (int64, error)
	FreezeOpenBasket(ctx context.Context, basketID int64, processor string) error
	// PriceOpenBasket stores on an Open basket its code and the discounts
	// it was priced with; basket.ErrNotOpen.
	PriceOpenBasket(ctx context.Context, b basket.Basket) error
	// RecordNotification keeps a verified notification in the payment
	// ledger, an accept under lease l (see sqlstore).
	RecordNotification(ctx context.Context, n payment.Notification, l lease.Lease) (payment.Payment, bool, error)
	// PlacePaidOrder acts on an accepted payment as Decide says, in one
	// transaction.
	PlacePaidOrder(ctx context.Context, p payment.Payment, actor string, l lease.Lease) (Paid, error)
	DeclineBasket(ctx context.Context, n payment.Notification) error
	MovePayment(ctx context.Context, m payment.Move) error
	ClaimDuePayments(ctx context.Context, owner string, now, until time.Time, limit int) ([]payment.Payment, error)
	GetPayment(ctx context.Context, id int64) (payment.Payment, error)
}

// Observer is told of payments that need a person.
type Observer interface {
	PaymentNeedsAttention(p payment.Payment)
}

// ErrChanged is returned when a stored basket cannot be checked out as it
// is; the *ChangedError says what changed.
var ErrChanged = apperr.New(apperr.Conflict, "the basket changed since it was filled")

// Service runs every checkout.
type Service struct {
	Store      Store
	Fulfill    *fulfillment.Service
	Processors map[string]payment.Processor
	// DefaultProcessor pays a basket bought without naming a processor,
	// as Otto pays with its first processor (""; the first enabled, by
	// name).
	DefaultProcessor string
	// Rollout says which products are sold here (nil: all).
	Rollout *catalog.Rollout
	// ServiceUsers may buy for other learners, as staff may.
	ServiceUsers []string
	// PublicURL is the service's own base URL, for payment pages.
	PublicURL string
	Observer  Observer
	// PaymentTries bounds how often one payment is tried (placed, or
	// credited back) before it needs a person (0: MaxPaymentTries).
	PaymentTries int
	Log          *slog.Logger
	Now          func() time.Time
	// Offers holds the offers, vouchers and coupons (price.go); nil
	// prices without discounts.
	Offers OfferStore
	// prices caches anonymous prices (price.go).
	prices priceCache
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Processor returns the enabled processor of that name.
func (s *Service) Processor(name string) (payment.Processor, error) {
	p, ok := s.Processors[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not enabled", payment.ErrUnknownProcessor, name)
	}
	return p, nil
}

// ProcessorNames lists the enabled processors, sorted.
func (s *Service) ProcessorNames() []string {
	names := make([]string, 0, len(s.Processors))
	for n := range s.Processors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// DefaultProcessorName is the processor that pays when none is named:
// DefaultProcessor when it is enabled, else the first enabled by name,
// else "" (no processor).
func (s *Service) DefaultProcessorName() string {
	if _, ok := s.Processors[s.DefaultProcessor]; ok {
		return s.DefaultProcessor
	}
	if names := s.ProcessorNames(); len(names) > 0 {
		return names[0]
	}
	return ""
}

// Purchase is a basket bought through the JSON API.
type Purchase struct {
	Items []basket.Item
	// For names the learner bought for (staff and service users only).
	For string
	// Checkout places the order (free) or starts the payment (paid); without
	// it the basket is only stored.
	Checkout  bool
	Processor string
	// Code is a voucher code to apply (at most one per basket); a code
	// that does not apply is ErrCoupon and nothing is stored or placed.
	Code string
}

// Bought is what a purchase led to: a stored basket, an order placed (and
// fulfilled as far as it went), or a payment started.
type Bought struct {
	BasketID int64
	Order    *order.Order
	Payment  *payment.Data
}

// Buy is Otto's POST /api/v2/baskets/. The already-purchased rule of a
// free basket checked out at once is left to the store's unique holder
// index, which decides it under any race without a read first; every other
// path screens the learner's purchases before it stores or charges.
func (s *Service) Buy(ctx context.Context, caller order.User, in Purchase) (Bought, error) {
	if len(in.Items) > basket.MaxLines {
		return Bought{}, fmt.Errorf("%w: at most %d products per basket", basket.ErrInvalid, basket.MaxLines)
	}
	buyer, err := s.buyer(ctx, caller, in.For)
	if err != nil {
		return Bought{}, err
	}
	skus := make([]string, len(in.Items))
	for i, it := range in.Items {
		skus[i] = it.SKU
	}
	products, err := s.Store.ProductsBySKU(ctx, skus)
	if err != nil {
		return Bought{}, err
	}
	now := s.now()
	if _, refused := basket.Screen(skus, products, nil, s.Rollout, now); len(refused) > 0 {
		return Bought{}, basket.RefusedError(refused)
	}
	b, err := basket.BuildItems(buyer, in.Items, products, now)
	if err != nil {
		return Bought{}, err
	}
	if b, err = s.discount(ctx, b, in.Code); err != nil {
		return Bought{}, err
	}
	if in.Checkout && b.Free() {
		o, err := s.place(ctx, caller.Username, func(l lease.Lease) (order.Order, error) {
			return s.Store.PlaceOrder(ctx, b, caller.Username, l)
		})
		return Bought{BasketID: o.BasketID, Order: &o}, err
	}
	if err := s.screenPurchased(ctx, buyer, skus, products, now); err != nil {
		return Bought{}, err
	}
	if !in.Checkout {
		id, err := s.Store.CreateBasket(ctx, b)
		return Bought{BasketID: id}, err
	}
	name := in.Processor
	if name == "" {
		name = s.DefaultProcessorName()
	}
	if name == "" {
		return Bought{}, fmt.Errorf("%w: the basket costs %s %s; name a payment_processor_name", basket.ErrNotFree,
			money.Format(b.Total, b.Currency), b.Currency)
	}
	p, err := s.Processor(name)
	if err != nil {
		return Bought{}, err
	}
	id, err := s.Store.FreezeBasket(ctx, b, p.Name())
	if err != nil {
		return Bought{}, err
	}
	data, err := s.paymentData(ctx, p, id, b)
	return Bought{BasketID: id, Payment: &data}, err
}

// buyer is whom a purchase is for: the caller, or the learner named by
// staff or a service user. A learner already known keeps the profile
// their own token gave; buying for them never overwrites it.
func (s *Service) buyer(ctx context.Context, caller order.User, username string) (order.User, error) {
	if username == "" || username == caller.Username {
		return caller, nil
	}
	if !caller.IsStaff && !slices.Contains(s.ServiceUsers, caller.Username) {
		return order.User{}, fmt.Errorf("%w: only staff and service users may create a basket for another user", auth.ErrForbidden)
	}
	u, err := s.Store.UserByName(ctx, username)
	if errors.Is(err, order.ErrNotFound) {
		return order.User{Username: username}, nil
	}
	return u, err
}

// screenPurchased refuses products the buyer holds already.
func (s *Service) screenPurchased(ctx context.Context, buyer order.User, skus []string, products map[string]catalog.Product, now time.Time) error {
	bought, err := s.Store.PurchasedSKUs(ctx, buyer.Username, skus)
	if err != nil {
		return err
	}
	_, refused := basket.Screen(skus, products, bought, s.Rollout, now)
	return basket.RefusedError(refused)
}

// Added is what a purchase link put in a new basket, and what it left out.
type Added struct {
	BasketID int64
	Refused  []basket.Refused
	// Products are the products the link named, found.
	Products map[string]catalog.Product
	// Code is the voucher code applied to the basket; CodeProblem says
	// why the code given was not (Otto's words), "" when it was or none
	// was given; CodeUnknown tells that no voucher has it (it may be an
	// enrollment code, which /coupons/redeem/ takes).
	Code, CodeProblem string
	CodeUnknown       bool
}

// Add is the storefront's purchase link (/basket/add/?sku=…[&code=…]): a
// new basket of what the learner may buy, and the rest refused with why,
// with the voucher code applied when it applies. Nothing is stored when
// nothing can be bought.
func (s *Service) Add(ctx context.Context, u order.User, skus []string, code string) (Added, error) {
	products, err := s.Store.ProductsBySKU(ctx, skus)
	if err != nil {
		return Added{}, err
	}
	bought, err := s.Store.PurchasedSKUs(ctx, u.Username, skus)
	if err != nil {
		return Added{}, err
	}
	keep, refused := basket.Screen(skus, products, bought, s.Rollout, s.now())
	out := Added{Refused: refused, Products: products}
	if len(keep) == 0 {
		return out, nil
	}
	b, err := basket.Build(u, keep, products, s.now())
	if err != nil {
		return out, err
	}
	priced, err := s.discount(ctx, b, code)
	switch {
	case errors.Is(err, ErrCoupon):
		out.CodeProblem, out.CodeUnknown = couponWords(err), errors.Is(err, errCouponUnknown)
		if priced, err = s.discount(ctx, b, ""); err != nil {
			return out, err
		}
	case err != nil:
		return out, err
	}
	out.Code = priced.Code
	out.BasketID, err = s.Store.CreateBasket(ctx, priced)
	return out, err
}

// couponWords is the learner's sentence of an ErrCoupon.
func couponWords(err error) string {
	return strings.TrimPrefix(err.Error(), ErrCoupon.Error()+": ")
}

// ApplyCode puts the voucher code on u's Open basket id, replacing the one
// it carried ("" takes it off), and prices the basket with it. ErrCoupon
// (Otto's words) when the code is unknown or gives nothing off, and then
// the basket is left as it was; basket.ErrNotOpen; order.ErrNotFound.
func (s *Service) ApplyCode(ctx context.Context, u order.User, id int64, code string) (basket.Stored, error) {
	sb, err := s.Basket(ctx, u, id)
	if err != nil {
		return sb, err
	}
	if sb.Status != basket.StatusOpen {
		return sb, fmt.Errorf("%w: basket %d is %s", basket.ErrNotOpen, id, sb.Status)
	}
	priced, err := s.discount(ctx, sb.Basket, code)
	if err != nil {
		return sb, err
	}
	if err := s.Store.PriceOpenBasket(ctx, priced); err != nil {
		return sb, err
	}
	sb.Basket = priced
	return sb, nil
}

// CodeProblem says why code does not apply to the stored basket sb (Otto's
// words), or "" when it does; unknown tells that no voucher has the code.
func (s *Service) CodeProblem(ctx context.Context, sb basket.Stored, code string) (problem string, unknown bool, err error) {
	_, err = s.discount(ctx, sb.Basket, code)
	if errors.Is(err, ErrCoupon) {
		return couponWords(err), errors.Is(err, errCouponUnknown), nil
	}
	return "", false, err
}

// reprice prices a stored Open basket again with its code, as its order
// will record it, and stores the discounts when they changed (an offer
// started or ended since). ErrCoupon when its code no longer applies.
func (s *Service) reprice(ctx context.Context, sb basket.Stored) (basket.Stored, error) {
	if sb.Status != basket.StatusOpen || (s.Offers == nil && sb.Code == "" && len(sb.Discounts) == 0) {
		return sb, nil
	}
	priced, err := s.discount(ctx, sb.Basket, sb.Code)
	if err != nil {
		return sb, err
	}
	if priced.Total != sb.Total || !sameDiscounts(priced.Discounts, sb.Discounts) {
		if err := s.Store.PriceOpenBasket(ctx, priced); err != nil {
			return sb, err
		}
	}
	sb.Basket = priced
	return sb, nil
}

func sameDiscounts(a, b []basket.Discount) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].OfferID != b[i].OfferID || a[i].VoucherID != b[i].VoucherID || a[i].Applications != b[i].Applications ||
			!slices.Equal(a[i].Lines, b[i].Lines) {
			return false
		}
	}
	return true
}

// Products returns the products of skus that exist.
func (s *Service) Products(ctx context.Context, skus []string) (map[string]catalog.Product, error) {
	return s.Store.ProductsBySKU(ctx, skus)
}

// Basket returns u's stored basket; order.ErrNotFound for anyone else's.
func (s *Service) Basket(ctx context.Context, u order.User, id int64) (basket.Stored, error) {
	sb, err := s.Store.GetBasket(ctx, id)
	if err == nil && sb.Owner.Username != u.Username {
		err = fmt.Errorf("basket %d: %w", id, order.ErrNotFound)
	}
	return sb, err
}

// Repriced is a product whose price changed since it was put in a basket.
type Repriced struct {
	Title    string
	Was, Now money.Amount
}

// ChangedError says what of a stored basket cannot be bought as it is.
type ChangedError struct {
	Refused  []basket.Refused
	Repriced []Repriced
	Products map[string]catalog.Product
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("%s: %d products refused, %d repriced", ErrChanged, len(e.Refused), len(e.Repriced))
}

// Unwrap makes errors.Is(err, ErrChanged) true.
func (e *ChangedError) Unwrap() error { return ErrChanged }

// recheck says what of a stored basket can no longer be bought as it is: a
// product that expired or left the rollout since it was added, a seat
// bought since in another basket (two tabs), or a price that changed.
func (s *Service) recheck(ctx context.Context, sb basket.Stored) error {
	skus := make([]string, 0, len(sb.Lines))
	for _, l := range sb.Lines {
		skus = append(skus, l.Product.Stock.SKU)
	}
	products, err := s.Store.ProductsBySKU(ctx, skus)
	if err != nil {
		return err
	}
	bought, err := s.Store.PurchasedSKUs(ctx, sb.Owner.Username, skus)
	if err != nil {
		return err
	}
	_, refused := basket.Screen(skus, products, bought, s.Rollout, s.now())
	ce := &ChangedError{Refused: refused, Products: products}
	for _, l := range sb.Lines {
		was := l.Product.Stock.Price
		if p, ok := products[l.Product.Stock.SKU]; ok && p.Stock != nil && p.Stock.Price != was {
			ce.Repriced = append(ce.Repriced, Repriced{Title: l.Product.Title, Was: was, Now: p.Stock.Price})
		}
	}
	if len(ce.Refused) > 0 || len(ce.Repriced) > 0 {
		return ce
	}
	return nil
}

// CheckoutBasket checks out u's stored basket: a free one becomes an order,
// fulfilled before the answer; a paid one is frozen and the payment page's
// parameters returned. A basket placed before returns its order (a second
// click); *ChangedError when it cannot be bought as it is;
// basket.ErrNotOpen when its payment is under way.
func (s *Service) CheckoutBasket(ctx context.Context, u order.User, id int64, processor string) (Bought, error) {
	sb, err := s.Basket(ctx, u, id)
	if err != nil {
		return Bought{}, err
	}
	if placed, ok := placedOrder(sb); ok {
		return placed, nil
	}
	if err := s.recheck(ctx, sb); err != nil {
		return Bought{BasketID: id}, err
	}
	if sb, err = s.reprice(ctx, sb); err != nil {
		return Bought{BasketID: id}, err
	}
	if sb.Free() {
		o, err := s.place(ctx, u.Username, func(l lease.Lease) (order.Order, error) {
			return s.Store.SubmitOpenBasket(ctx, id, u.Username, l)
		})
		if errors.Is(err, basket.ErrNotOpen) {
			// A second click that lost the race: show what the first placed.
			if again, gerr := s.Store.GetBasket(ctx, id); gerr == nil {
				if placed, ok := placedOrder(again); ok {
					return placed, nil
				}
			}
		}
		return Bought{BasketID: id, Order: &o}, err
	}
	if len(s.Processors) == 0 {
		return Bought{BasketID: id}, fmt.Errorf("%w: paid checkout is not available on this site", basket.ErrNotFree)
	}
	if processor == "" {
		return Bought{BasketID: id}, fmt.Errorf("%w: choose how to pay", basket.ErrNotFree)
	}
	p, err := s.Processor(processor)
	if err != nil {
		return Bought{BasketID: id}, err
	}
	if err := s.Store.FreezeOpenBasket(ctx, id, p.Name()); err != nil {
		return Bought{BasketID: id}, err
	}
	if _, ok := p.(payment.HostedPage); ok {
		// The processor's own page takes it from here (HostedPage); no
		// payment of ours to prepare.
		page := strings.TrimRight(s.PublicURL, "/") + "/payment/" + p.Name() + "/pay/?basket_id=" + strconv.FormatInt(id, 10)
		return Bought{BasketID: id, Payment: &payment.Data{ProcessorName: p.Name(), PageURL: page}}, nil
	}
	data, err := s.paymentData(ctx, p, id, sb.Basket)
	return Bought{BasketID: id, Payment: &data}, err
}

func placedOrder(sb basket.Stored) (Bought, bool) {
	if sb.Status == basket.StatusSubmitted && sb.OrderNumber != "" {
		return Bought{BasketID: sb.ID, Order: &order.Order{Number: sb.OrderNumber, BasketID: sb.ID}}, true
	}
	return Bought{}, false
}

// ErrPaymentPage is returned when a processor gives no payment page.
var ErrPaymentPage = apperr.New(apperr.BadGateway, "the payment service did not answer")

func (s *Service) paymentData(ctx context.Context, p payment.Processor, id int64, b basket.Basket) (payment.Data, error) {
	data, err := p.PaymentData(ctx, payment.Basket{ID: id, Username: b.Owner.Username, Email: b.Owner.Email,
		Total: money.Amount{Minor: b.Total, Currency: b.Currency}}, s.PublicURL)
	if err == nil && data.PageURL == "" {
		err = fmt.Errorf("processor %s gave no payment page", p.Name())
	}
	if err != nil {
		s.Log.Error("payment data", "basket", id, "processor", p.Name(), "error", err)
		return data, fmt.Errorf("%w: nothing was charged; try again", ErrPaymentPage)
	}
	s.Log.Info("payment_started", "basket", id, "user", b.Owner.Username, "processor", p.Name())
	return data, nil
}

// Redeemed is what a redeemed code led to: an order placed (an enrollment
// code, or a voucher code that made the basket free), or a basket with the
// voucher code applied that still needs payment.
type Redeemed struct {
	Order    *order.Order
	BasketID int64
}

// Redeem is /coupons/redeem/?code=&sku=, one path for both kinds of code.
// A voucher code (a coupon's) with a sku makes a basket of that product
// with the code applied: free after its discount, it is placed and
// fulfilled at once; otherwise the basket is answered, to be paid. Any
// other code is an enrollment code: one transaction takes it and places a
// $0 order of its seat, then the order is fulfilled; a learner who holds
// the seat already keeps the code unused (order.ErrAlreadyPurchased).
// ErrCoupon when a voucher code does not apply to the product.
func (s *Service) Redeem(ctx context.Context, u order.User, code, sku string) (Redeemed, error) {
	code, sku = strings.TrimSpace(code), strings.TrimSpace(sku)
	if code == "" {
		return Redeemed{}, fmt.Errorf("%w: a code is required", basket.ErrInvalid)
	}
	if s.Offers != nil && offer.ValidCode(code) {
		_, err := s.Offers.VoucherByCode(ctx, code)
		switch {
		case err == nil:
			return s.redeemVoucher(ctx, u, code, sku)
		case !errors.Is(err, offer.ErrVoucherNotFound):
			return Redeemed{}, err
		}
	}
	o, err := s.place(ctx, u.Username, func(l lease.Lease) (order.Order, error) {
		return s.Store.RedeemCode(ctx, code, u, l)
	})
	if err != nil {
		return Redeemed{}, err
	}
	return Redeemed{Order: &o, BasketID: o.BasketID}, nil
}

// redeemVoucher is Redeem of a voucher code, as Otto's CouponRedeemView.
func (s *Service) redeemVoucher(ctx context.Context, u order.User, code, sku string) (Redeemed, error) {
	if sku == "" {
		return Redeemed{}, fmt.Errorf("%w: ?sku= is required to redeem coupon code %s", basket.ErrInvalid, offer.NormalizeCode(code))
	}
	added, err := s.Add(ctx, u, []string{sku}, code)
	switch {
	case err != nil:
		return Redeemed{}, err
	case added.BasketID == 0:
		return Redeemed{}, basket.RefusedError(added.Refused)
	case added.CodeProblem != "":
		return Redeemed{BasketID: added.BasketID}, fmt.Errorf("%w: %s", ErrCoupon, added.CodeProblem)
	}
	sb, err := s.Basket(ctx, u, added.BasketID)
	if err != nil || !sb.Free() {
		return Redeemed{BasketID: added.BasketID}, err
	}
	got, err := s.CheckoutBasket(ctx, u, added.BasketID, "")
	return Redeemed{Order: got.Order, BasketID: added.BasketID}, err
}

// place runs one store call that places an order under a new lease, then
// fulfills the order's lines under that lease. Once the order is committed
// a failure only delays it: its lines stay due for the retry worker.
func (s *Service) place(ctx context.Context, actor string, write func(lease.Lease) (order.Order, error)) (order.Order, error) {
	l := s.Fulfill.NewLease("checkout")
	o, err := write(l)
	if err != nil {
		return o, err
	}
	s.Log.Info("order_placed", "order", o.Number, "basket", o.BasketID, "user", o.User.Username, "actor", actor)
	done, err := s.Fulfill.Run(ctx, fulfillment.Claim{Order: o, Lines: o.Lines, Owner: l.Owner}, actor)
	if err != nil {
		s.Log.Error("fulfill after checkout", "order", o.Number, "error", err)
		return o, nil
	}
	return done, nil
}

// Result is what a notification led to.
type Result struct {
	Payment  payment.Payment
	Order    *order.Order // the order placed (or placed before, for a replay or a second payment)
	Declined bool
	// Replayed: the notification, or the payment it tells of, was seen
	// before; nothing was done twice.
	Replayed bool
	// Refunded: the money was given back (RefundPending: it will be, by the
	// worker, or a person if that keeps failing).
	Refunded, RefundPending bool
}

// MaxPaymentTries bounds how often the reconciler tries to place, or the
// refund worker to credit, one payment before it needs a person.
const MaxPaymentTries = 8

// Handle acts on a verified notification. It is recorded first, in the
// payment ledger, so that a crash before the order is placed leaves work
// for the reconciler; every accepted amount then ends in its order, an
// automatic refund, or a payment needing attention. A redelivery does
// nothing twice. No money taken is ever answered with an error of the
// request: the gateway would redeliver for days.
func (s *Service) Handle(ctx context.Context, n payment.Notification) (Result, error) {
	if err := n.Valid(); err != nil {
		return Result{}, err
	}
	l := s.Fulfill.NewLease("payment")
	p, dup, err := s.Store.RecordNotification(ctx, n, l)
	if err != nil {
		return Result{}, err
	}
	if dup {
		r := Result{Payment: p, Replayed: true, Declined: p.State == payment.StateDeclined}
		if p.OrderNumber != "" {
			r.Order = &order.Order{Number: p.OrderNumber}
		}
		return r, nil
	}
	if n.Decision == payment.Decline {
		s.Log.Info("payment declined", "processor", n.Processor, "basket", n.BasketID, "reference", n.Reference)
		return Result{Payment: p, Declined: true}, s.Store.DeclineBasket(ctx, n)
	}
	return s.settle(ctx, p, l)
}

// settle acts on an accepted payment held under l: place its order, or
// give it back.
func (s *Service) settle(ctx context.Context, p payment.Payment, l lease.Lease) (Result, error) {
	actor := "processor:" + p.Processor
	paid, err := s.Store.PlacePaidOrder(ctx, p, actor, l)
	if err != nil {
		return Result{Payment: p}, err
	}
	switch {
	case paid.Replay:
		return Result{Payment: p, Order: &paid.Order, Replayed: true}, nil
	case paid.Refund != "":
		p.State, p.Cause = payment.StateRefundDue, paid.Refund
		if p.OrderNumber == "" {
			p.OrderNumber = paid.Order.Number
		}
		s.Log.Warn("payment refunded automatically", "processor", p.Processor, "basket", p.BasketID, "reference", p.Reference,
			"amount", p.Amount.String(), "currency", p.Amount.Currency, "cause", paid.Refund)
		r := s.refund(ctx, p, l.Owner)
		if paid.Order.Number != "" {
			r.Order = &paid.Order
		}
		return r, nil
	}
	o := paid.Order
	s.Log.Info("order_placed", "order", o.Number, "processor", p.Processor, "reference", p.Reference)
	done, err := s.Fulfill.Run(ctx, fulfillment.Claim{Order: o, Lines: o.Lines, Owner: l.Owner}, actor)
	if err != nil {
		s.Log.Error("fulfill after payment", "order", o.Number, "error", err)
		done = o
	}
	return Result{Payment: p, Order: &done}, nil
}

// refund credits a refund_due payment held by owner back through its
// processor. A failure is retried with backoff by the payment worker, and
// after MaxPaymentTries the payment needs a person.
func (s *Service) refund(ctx context.Context, p payment.Payment, owner string) Result {
	var ref string
	proc, err := s.Processor(p.Processor)
	if err == nil {
		ref, err = proc.IssueCredit(context.WithoutCancel(ctx), p.OrderNumber, p.Reference, p.Amount, fmt.Sprintf("payment-%d", p.ID))
	}
	if err == nil {
		err = s.Store.MovePayment(ctx, payment.Move{ID: p.ID, From: payment.StateRefundDue, To: payment.StateRefunded, Owner: owner,
			CreditReference: ref, Attempt: true})
		if err == nil {
			return Result{Payment: p, Refunded: true}
		}
	}
	s.retryLater(ctx, p, owner, fmt.Sprintf("%s; the refund failed: %v", p.Cause, err))
	return Result{Payment: p, RefundPending: true}
}

// retryLater schedules another try of a payment held by owner, or, when
// its tries are spent, hands it to a person.
func (s *Service) retryLater(ctx context.Context, p payment.Payment, owner, cause string) {
	m := payment.Move{ID: p.ID, From: p.State, To: p.State, Owner: owner, Attempt: true}
	tries := s.PaymentTries
	if tries <= 0 {
		tries = MaxPaymentTries
	}
	if p.Attempts+1 >= tries {
		m.To, m.Cause = payment.StateAttention, cause
		s.Log.Error("payment needs attention", "payment", p.ID, "processor", p.Processor, "reference", p.Reference,
			"amount", p.Amount.String(), "currency", p.Amount.Currency, "cause", cause)
		if s.Observer != nil {
			s.Observer.PaymentNeedsAttention(p)
		}
	} else {
		next := s.now().Add(s.Fulfill.Policy.Delay(p.Attempts+1, 0))
		m.Next = &next
	}
	if err := s.Store.MovePayment(ctx, m); err != nil {
		s.Log.Error("schedule payment", "payment", p.ID, "error", err)
	}
}

// Reconcile works the payments that are due: accepted payments whose
// handler died or failed before it placed them, and refunds that failed
// before. It returns how many it settled.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	now := s.now()
	l := s.Fulfill.NewLease("reconciler")
	due, err := s.Store.ClaimDuePayments(ctx, l.Owner, now, l.Until, 100)
	if err != nil {
		return 0, err
	}
	settled := 0
	for _, p := range due {
		switch p.State {
		case payment.StateReceived:
			r, err := s.settle(ctx, p, l)
			if err != nil {
				s.Log.Error("reconcile payment", "payment", p.ID, "processor", p.Processor, "reference", p.Reference, "error", err)
				s.retryLater(ctx, p, l.Owner, fmt.Sprintf("the order could not be placed: %v", err))
				continue
			}
			settled++
			if r.Order != nil && !r.Replayed {
				s.Log.Warn("reconciled a payment that had no order", "order", r.Order.Number, "reference", p.Reference)
			}
		case payment.StateRefundDue:
			if r := s.refund(ctx, p, l.Owner); r.Refunded {
				settled++
			}
		}
	}
	return settled, nil
}

// RunReconciler reconciles every interval until ctx ends.
func (s *Service) RunReconciler(ctx context.Context, interval time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if _, err := s.Reconcile(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.Log.Error("reconcile", "error", err)
		}
	}
}

// RefundPayment is a person's one-click refund of a payment needing
// attention.
func (s *Service) RefundPayment(ctx context.Context, id int64, actor string) (payment.Payment, error) {
	l := s.Fulfill.NewLease("staff-refund")
	p, err := s.takeAttention(ctx, id, payment.StateRefundDue, l, "refund asked by "+actor)
	if err != nil {
		return p, err
	}
	s.refund(ctx, p, l.Owner)
	return s.Store.GetPayment(ctx, id)
}

// PlacePayment is a person's one-click "place the order" of a payment
// needing attention (after they fixed what stopped it).
func (s *Service) PlacePayment(ctx context.Context, id int64, actor string) (payment.Payment, error) {
	l := s.Fulfill.NewLease("staff-place")
	p, err := s.takeAttention(ctx, id, payment.StateReceived, l, "")
	if err != nil {
		return p, err
	}
	if _, err := s.settle(ctx, p, l); err != nil {
		s.retryLater(ctx, p, l.Owner, fmt.Sprintf("the order could not be placed: %v", err))
	}
	return s.Store.GetPayment(ctx, id)
}

// takeAttention moves a payment needing attention to state to, held by l.
func (s *Service) takeAttention(ctx context.Context, id int64, to payment.State, l lease.Lease, cause string) (payment.Payment, error) {
	p, err := s.Store.GetPayment(ctx, id)
	if err != nil {
		return p, err
	}
	if p.State != payment.StateAttention {
		return p, fmt.Errorf("%w: payment %d is %s", payment.ErrNotActionable, id, p.State)
	}
	if err := s.Store.MovePayment(ctx, payment.Move{ID: id, From: payment.StateAttention, To: to, Cause: cause, Next: &l.Until, Lease: &l}); err != nil {
		return p, err
	}
	p.State, p.Attempts = to, 0
	return p, nil
}

// HostedPage sends u to the hosted payment page of processor for u's
// basket id (Stripe Checkout): a basket still Open is frozen for it first;
// the learner comes back to the basket page, which leads to the receipt
// once the payment's notification placed the order. A basket already
// placed answers its order's number instead of a page.
func (s *Service) HostedPage(ctx context.Context, u order.User, id int64, processor string) (page, orderNumber string, err error) {
	p, err := s.Processor(processor)
	if err != nil {
		return "", "", err
	}
	hosted, ok := p.(payment.HostedPage)
	if !ok {
		return "", "", fmt.Errorf("%w: %s has no hosted payment page", payment.ErrUnknownProcessor, processor)
	}
	sb, err := s.Basket(ctx, u, id)
	if err != nil {
		return "", "", err
	}
	if placed, ok := placedOrder(sb); ok {
		return "", placed.Order.Number, nil
	}
	if sb.Free() {
		return "", "", fmt.Errorf("%w: basket %d is free and needs no payment", basket.ErrInvalid, id)
	}
	if sb.Status != basket.StatusFrozen || sb.Processor != p.Name() {
		if sb, err = s.reprice(ctx, sb); err != nil {
			return "", "", err
		}
		if sb.Free() {
			return "", "", fmt.Errorf("%w: basket %d is free and needs no payment", basket.ErrInvalid, id)
		}
		if err := s.Store.FreezeOpenBasket(ctx, id, p.Name()); err != nil {
			return "", "", err
		}
	}
	pb := payment.Basket{ID: id, Username: sb.Owner.Username, Email: sb.Owner.Email,
		Total: money.Amount{Minor: sb.Total, Currency: sb.Currency}}
	for i, l := range sb.Lines {
		if len(sb.Discounts) > 0 {
			// A discounted line is charged at its price after discount.
			title := l.Product.Title
			if l.Quantity > 1 {
				title = fmt.Sprintf("%s × %d", title, l.Quantity)
			}
			pb.Lines = append(pb.Lines, payment.Line{Title: title, Quantity: 1, Unit: money.Amount{Minor: sb.LinePrice(i), Currency: sb.Currency}})
			continue
		}
		pb.Lines = append(pb.Lines, payment.Line{Title: l.Product.Title, Quantity: l.Quantity, Unit: l.Product.Stock.Price})
	}
	back := strings.TrimRight(s.PublicURL, "/") + "/basket/?id=" + strconv.FormatInt(id, 10)
	page, err = hosted.Page(ctx, pb, back, back)
	if err != nil {
		s.Log.Error("hosted payment page", "basket", id, "processor", p.Name(), "error", err)
		return "", "", fmt.Errorf("%w: nothing was charged; try again", ErrPaymentPage)
	}
	s.Log.Info("payment_started", "basket", id, "user", u.Username, "processor", p.Name(), "hosted", true)
	return page, "", nil
}
