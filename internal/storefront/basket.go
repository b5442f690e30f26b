package storefront

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/money"
	"fulfill/internal/offer"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// maxSKUs bounds one purchase link; more SKUs than this are ignored.
const maxSKUs = 20

// uniqueSKUs trims the SKUs of a link and keeps the first of each (a
// double click, or a link naming a seat twice, adds it once).
func uniqueSKUs(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" || len(s) > 64 || seen[s] || len(out) == maxSKUs {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// explain says in words why each SKU was left out.
func explain(refused []basket.Refused, products map[string]catalog.Product) []string {
	var out []string
	for _, d := range refused {
		p, known := products[d.SKU]
		name := "SKU " + d.SKU
		if known {
			name = fmt.Sprintf("%s (SKU %s)", p.Title, d.SKU)
		}
		switch d.Reason {
		case basket.RefusedUnavailable:
			out = append(out, fmt.Sprintf("SKU %s is not a product sold here, or it is no longer available.", d.SKU))
		case basket.RefusedUnsold:
			reason := fmt.Sprintf("SKU %s is not sold by this service", d.SKU)
			if known && d.Why != "" {
				reason = d.Why
			}
			out = append(out, capitalize(reason)+".")
		case basket.RefusedPurchased:
			out = append(out, fmt.Sprintf("You have already purchased %s.", name))
		}
	}
	return out
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// handleBasketAdd is Otto's purchase link, GET /basket/add/?sku=A&sku=B
// [&code=V]: a fresh basket of the products that can be bought, then 303 to
// the basket page. A signed-out visitor signs in first and comes back here.
func handleBasketAdd(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := a.requireUser(w, r, r.URL.RequestURI())
		if !ok {
			return
		}
		ctx := r.Context()
		q := r.URL.Query()
		skus := uniqueSKUs(q["sku"])
		if len(skus) == 0 {
			a.message(w, r, http.StatusBadRequest, "Nothing to add",
				"This purchase link names no product. Links look like /basket/add/?sku=SKU; go back to the course page and try its link again.")
			return
		}
		code := strings.TrimSpace(q.Get("code"))
		if len(code) > 128 {
			code = ""
		}
		added, err := a.d.Checkout.Add(ctx, u, skus, code)
		if errors.Is(err, basket.ErrInvalid) || errors.Is(err, basket.ErrUnavailable) {
			a.message(w, r, http.StatusBadRequest, "Nothing was added to your basket", strings.TrimPrefix(err.Error(), basket.ErrInvalid.Error()+": ")+".")
			return
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if added.BasketID == 0 {
			msg := "None of the products of this link can be bought here:"
			if allPurchased(added.Refused) {
				msg = "You have already purchased these products:"
			}
			a.render(w, r, http.StatusBadRequest, "message", &messageView{page: page{Title: "Nothing was added to your basket"},
				Heading: "Nothing was added to your basket", Message: msg, Reasons: explain(added.Refused, added.Products),
				Links: []link{{Text: "Go to your dashboard", URL: a.d.DashboardURL}}})
			return
		}
		a.d.Log.Info("basket_created", "basket", added.BasketID, "user", u.Username, "skus", skus, "dropped", len(added.Refused))
		next := url.Values{"id": {strconv.FormatInt(added.BasketID, 10)}}
		for _, d := range added.Refused {
			next.Add(string(d.Reason), d.SKU)
		}
		if code != "" {
			next.Set("code", code)
		}
		// The marketing site's campaign parameters follow the learner to
		// the basket page, as Otto's redirect keeps them for analytics.
		for k, vs := range q {
			if strings.HasPrefix(k, "utm_") {
				next[k] = vs
			}
		}
		http.Redirect(w, r, "/basket/?"+next.Encode(), http.StatusSeeOther)
	})
}

func allPurchased(refused []basket.Refused) bool {
	for _, d := range refused {
		if d.Reason != basket.RefusedPurchased {
			return false
		}
	}
	return len(refused) > 0
}

type lineView struct {
	Title, Course, Mode, SKU, Price, Status string
	Quantity                                int
	// Was is the price before discount, when the line is discounted.
	Was string
}

type processorView struct{ Name, Label string }

type basketView struct {
	page
	ID         int64
	Status     string
	Lines      []lineView
	Total      string
	Free       bool
	Processors []processorView
	Processor  string // the processor a frozen basket waits on
	Notices    []string
	Errors     []string
	Code       string
	RedeemURL  string
	// Open tells that the basket's code can still be changed.
	Open bool
	// Applied is the voucher code applied to the basket, Subtotal and
	// Discount the totals before and taken off ("" when none).
	Applied, Subtotal, Discount string
	// CodeInfo and CodeError say what became of a code given.
	CodeInfo, CodeError string
}

func seatMode(class catalog.Class, attrs catalog.Attributes) string {
	switch class {
	case catalog.ClassSeat:
		return catalog.SeatMode(attrs)
	case catalog.ClassEnrollmentCode:
		return attrs.String("seat_type")
	}
	return attrs.String("certificate_type")
}

func (a *app) basketView(u order.User, sb basket.Stored) *basketView {
	v := &basketView{page: page{Title: "Your basket", User: &u}, ID: sb.ID, Status: string(sb.Status), Free: sb.Free(),
		Total: money.Format(sb.Total, sb.Currency) + " " + sb.Currency, Processor: sb.Processor, Open: sb.Status == basket.StatusOpen,
		Applied: sb.Code}
	amount := func(minor int64) string { return money.Format(minor, sb.Currency) + " " + sb.Currency }
	for i, l := range sb.Lines {
		p := l.Product
		course := p.CourseID
		if course == "" {
			course = p.Attributes.String("course_key")
		}
		lv := lineView{Title: p.Title, Course: course, Mode: seatMode(p.Class, p.Attributes), SKU: p.Stock.SKU,
			Quantity: l.Quantity, Price: amount(sb.LinePrice(i))}
		if before := sb.LineBefore(i); before != sb.LinePrice(i) {
			lv.Was = amount(before)
		}
		v.Lines = append(v.Lines, lv)
	}
	if before := sb.Before(); before != sb.Total {
		v.Subtotal, v.Discount = amount(before), amount(before-sb.Total)
	}
	for _, n := range a.d.Checkout.ProcessorNames() {
		v.Processors = append(v.Processors, processorView{Name: n, Label: capitalize(n)})
	}
	return v
}

// handleBasketShow is the basket page, GET /basket/?id=N: the items, the
// total, and "Place order" (free) or the payment choices (paid). Only its
// owner sees it; anyone else gets a 404.
func handleBasketShow(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := a.requireUser(w, r, r.URL.RequestURI())
		if !ok {
			return
		}
		q := r.URL.Query()
		if q.Get("id") == "" {
			a.render(w, r, http.StatusOK, "message", &messageView{page: page{Title: "Your basket"}, Heading: "Your basket is empty",
				Message: "Choose a course on the course catalog and follow its enrollment link to buy it."})
			return
		}
		sb, ok := a.ownBasket(w, r, u, q.Get("id"))
		if !ok {
			return
		}
		if sb.Status == basket.StatusSubmitted && sb.OrderNumber != "" {
			http.Redirect(w, r, receiptPath(sb.OrderNumber), http.StatusSeeOther)
			return
		}
		v := a.basketView(u, sb)
		var refused []basket.Refused
		var skus []string
		for _, reason := range basket.Refusals() {
			for _, sku := range uniqueSKUs(q[string(reason)]) {
				refused = append(refused, basket.Refused{SKU: sku, Reason: reason})
				skus = append(skus, sku)
			}
		}
		if len(refused) > 0 {
			products, err := a.d.Checkout.Products(r.Context(), skus)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			for i, d := range refused {
				if d.Reason == basket.RefusedUnsold {
					if _, why := basket.Sellable(products[d.SKU], true, a.d.Checkout.Rollout, false, a.d.Now()); why != nil {
						refused[i].Why = strings.TrimPrefix(why.Error(), catalog.ErrNotSoldHere.Error()+": ")
					}
				}
			}
			v.Notices = explain(refused, products)
		}
		if code := strings.TrimSpace(q.Get("code")); code != "" && len(code) <= 128 {
			switch {
			case strings.EqualFold(code, sb.Code):
				v.CodeInfo = fmt.Sprintf("Coupon code '%s' added to basket.", sb.Code)
			case sb.Status != basket.StatusOpen:
			default:
				problem, unknown, err := a.d.Checkout.CodeProblem(r.Context(), sb, code)
				if err != nil {
					a.fail(w, r, err)
					return
				}
				if unknown {
					// Perhaps an enrollment code: redeeming it enrolls.
					v.Code, v.RedeemURL = code, "/coupons/redeem/?code="+url.QueryEscape(code)
				} else {
					v.CodeError = problem
				}
			}
		}
		a.render(w, r, http.StatusOK, "basket", v)
	})
}

// ownBasket loads the learner's basket named by id; another learner's
// basket, or none, is a 404 page.
func (a *app) ownBasket(w http.ResponseWriter, r *http.Request, u order.User, id string) (basket.Stored, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	var sb basket.Stored
	if err == nil && n > 0 {
		sb, err = a.d.Checkout.Basket(r.Context(), u, n)
	} else {
		err = order.ErrNotFound
	}
	switch {
	case errors.Is(err, order.ErrNotFound):
		a.message(w, r, http.StatusNotFound, "Basket not found", "There is no basket of yours at this address.")
		return sb, false
	case err != nil:
		a.fail(w, r, err)
		return sb, false
	}
	return sb, true
}

// handleBasketCode is POST /basket/code/ (basket_id, code, and remove to
// take the code off): the basket's one voucher code is replaced and the
// basket priced with it, then 303 back to the basket page; a code that
// does not apply is a 400 basket page that says why, the basket unchanged.
func handleBasketCode(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, sb, ok := a.postedBasket(w, r)
		if !ok {
			return
		}
		code := strings.TrimSpace(r.PostFormValue("code"))
		if r.PostFormValue("remove") != "" {
			code = ""
		}
		if len(code) > 128 {
			code = code[:128]
		}
		got, err := a.d.Checkout.ApplyCode(r.Context(), u, sb.ID, code)
		switch {
		case err == nil:
			next := url.Values{"id": {strconv.FormatInt(sb.ID, 10)}}
			if got.Code != "" {
				next.Set("code", got.Code)
			}
			a.d.Log.Info("basket_code", "basket", sb.ID, "user", u.Username, "code", got.Code)
			http.Redirect(w, r, "/basket/?"+next.Encode(), http.StatusSeeOther)
		case errors.Is(err, checkout.ErrCoupon):
			v := a.basketView(u, sb)
			v.CodeError = strings.TrimPrefix(err.Error(), checkout.ErrCoupon.Error()+": ")
			a.render(w, r, http.StatusBadRequest, "basket", v)
		case errors.Is(err, basket.ErrNotOpen):
			v := a.basketView(u, sb)
			v.CodeError = "The code of a basket whose payment is under way cannot be changed."
			a.render(w, r, http.StatusConflict, "basket", v)
		default:
			a.fail(w, r, err)
		}
	})
}

// changed says in words what of a basket cannot be bought as it is.
func changed(ce *checkout.ChangedError) []string {
	problems := explain(ce.Refused, ce.Products)
	for _, p := range ce.Repriced {
		problems = append(problems, fmt.Sprintf("The price of %s changed from %s %s to %s %s since you added it; follow the course's link again to buy it.",
			p.Title, p.Was, p.Was.Currency, p.Now, p.Now.Currency))
	}
	return problems
}

// postedBasket reads the learner and their basket named by a posted
// basket_id (a signed-out visitor is sent to sign in, back to that basket;
// anyone else's basket is a 404 page). ok is false when the answer was
// written.
func (a *app) postedBasket(w http.ResponseWriter, r *http.Request) (order.User, basket.Stored, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	id := r.PostFormValue("basket_id")
	u, ok := a.requireUser(w, r, "/basket/?id="+url.QueryEscape(id))
	if !ok {
		return u, basket.Stored{}, false
	}
	sb, ok := a.ownBasket(w, r, u, id)
	return u, sb, ok
}

// handleCheckout is POST /basket/checkout/ (basket_id, processor): a free
// basket becomes an order, fulfilled before the answer, then 303 to the
// receipt; a paid one is frozen and the learner is sent (303) to the
// processor's payment page.
func handleCheckout(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, sb, ok := a.postedBasket(w, r)
		if !ok {
			return
		}
		got, err := a.d.Checkout.CheckoutBasket(r.Context(), u, sb.ID, r.PostFormValue("processor"))
		refuse := func(status int, msg ...string) {
			v := a.basketView(u, sb)
			v.Errors = msg
			a.render(w, r, status, "basket", v)
		}
		var ce *checkout.ChangedError
		switch {
		case err == nil && got.Order != nil:
			a.d.Log.Info("order_placed", "order", got.Order.Number, "basket", sb.ID, "user", u.Username, "via", "storefront")
			http.Redirect(w, r, receiptPath(got.Order.Number), http.StatusSeeOther)
		case err == nil && got.Payment != nil:
			http.Redirect(w, r, got.Payment.PageURL, http.StatusSeeOther)
		case errors.As(err, &ce):
			refuse(http.StatusConflict, changed(ce)...)
		case errors.Is(err, checkout.ErrCoupon):
			refuse(http.StatusBadRequest, strings.TrimPrefix(err.Error(), checkout.ErrCoupon.Error()+": ")+" Remove the code to buy without it.")
		case errors.Is(err, offer.ErrVoucherUnavailable), errors.Is(err, offer.ErrLimitReached):
			refuse(http.StatusConflict, "The coupon code of this basket is no longer available; remove it to buy without it.")
		case errors.Is(err, basket.ErrNotOpen) && sb.Status == basket.StatusFrozen:
			refuse(http.StatusConflict, fmt.Sprintf("A payment of this basket through %s is already under way; finish it or wait until it is declined.", capitalize(sb.Processor)))
		case errors.Is(err, basket.ErrNotOpen):
			a.message(w, r, http.StatusConflict, "This basket is being paid for", "Its payment is under way; it cannot be placed as a free order.")
		case errors.Is(err, order.ErrAlreadyPurchased):
			refuse(http.StatusConflict, "You have already purchased a product of this basket.")
		case errors.Is(err, basket.ErrNotFree) && len(a.d.Checkout.Processors) == 0:
			refuse(http.StatusServiceUnavailable, "Paid checkout is not available on this site.")
		case errors.Is(err, basket.ErrNotFree):
			refuse(http.StatusBadRequest, "Choose how you want to pay.")
		case errors.Is(err, payment.ErrUnknownProcessor):
			refuse(http.StatusBadRequest, "That payment method is not available; choose another one.")
		case errors.Is(err, checkout.ErrPaymentPage):
			a.message(w, r, http.StatusBadGateway, "The payment service did not answer",
				"Nothing was charged. Go back to your basket and press the payment button again.")
		default:
			a.fail(w, r, err)
		}
	})
}
