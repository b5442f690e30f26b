package storefront

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// maxSKUs bounds one purchase link; more SKUs than this are ignored.
const maxSKUs = 20

// Why a SKU of a purchase link was left out of the basket. The values are
// the query parameters that carry them to the basket page.
const (
	dropUnavailable = "unavailable"
	dropUnsold      = "unsold"
	dropPurchased   = "purchased"
)

var dropKinds = []string{dropUnavailable, dropUnsold, dropPurchased}

type drop struct{ Kind, SKU string }

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

// sellable reports whether p can be put in a basket at now: a product with
// a stock record that has not expired, and not a course's parent seat.
func sellable(p catalog.Product, now time.Time) bool {
	return p.Stock != nil && p.Stock.Available(now) && !(p.ParentID == 0 && p.Class == catalog.ClassSeat)
}

// repeatable reports whether a product may be bought again by the same
// learner: enrollment codes are bought in bulk, as often as wanted (Otto).
func repeatable(p catalog.Product) bool { return p.Class == catalog.ClassEnrollmentCode }

// split splits the SKUs into those that can be bought by u now and those
// left out, with why.
func (a *app) split(ctx context.Context, u string, skus []string, products map[string]catalog.Product, now time.Time) (keep []string, drops []drop, err error) {
	bought, err := a.d.Store.PurchasedSKUs(ctx, u, skus)
	if err != nil {
		return nil, nil, err
	}
	for _, sku := range skus {
		p, ok := products[sku]
		switch {
		case !ok || !sellable(p, now):
			drops = append(drops, drop{dropUnavailable, sku})
		case a.d.Rollout.Sold(p) != nil:
			drops = append(drops, drop{dropUnsold, sku})
		case bought[sku] && !repeatable(p):
			drops = append(drops, drop{dropPurchased, sku})
		default:
			keep = append(keep, sku)
		}
	}
	return keep, drops, nil
}

// explain says in words why each SKU was left out.
func (a *app) explain(drops []drop, products map[string]catalog.Product) []string {
	var out []string
	for _, d := range drops {
		p, known := products[d.SKU]
		name := "SKU " + d.SKU
		if known {
			name = fmt.Sprintf("%s (SKU %s)", p.Title, d.SKU)
		}
		switch d.Kind {
		case dropUnavailable:
			out = append(out, fmt.Sprintf("SKU %s is not a product sold here, or it is no longer available.", d.SKU))
		case dropUnsold:
			reason := fmt.Sprintf("SKU %s is not sold by this service", d.SKU)
			if known {
				if err := a.d.Rollout.Sold(p); err != nil {
					reason = strings.TrimPrefix(err.Error(), catalog.ErrNotSoldHere.Error()+": ")
				}
			}
			out = append(out, capitalize(reason)+".")
		case dropPurchased:
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
		products, err := a.d.Store.ProductsBySKU(ctx, skus)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		now := a.d.Now()
		keep, drops, err := a.split(ctx, u.Username, skus, products, now)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if len(keep) == 0 {
			msg := "None of the products of this link can be bought here:"
			if allPurchased(drops) {
				msg = "You have already purchased these products:"
			}
			a.render(w, r, http.StatusBadRequest, "message", &messageView{page: page{Title: "Nothing was added to your basket"},
				Heading: "Nothing was added to your basket", Message: msg, Reasons: a.explain(drops, products),
				Links: []link{{Text: "Go to your dashboard", URL: a.d.DashboardURL}}})
			return
		}
		b, err := basket.Build(u, keep, products, now)
		if errors.Is(err, basket.ErrInvalid) || errors.Is(err, basket.ErrUnavailable) {
			a.message(w, r, http.StatusBadRequest, "Nothing was added to your basket", strings.TrimPrefix(err.Error(), basket.ErrInvalid.Error()+": ")+".")
			return
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		id, err := a.d.Store.CreateBasket(ctx, b)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		a.d.Log.Info("basket_created", "basket", id, "user", u.Username, "skus", keep, "dropped", len(drops))
		next := url.Values{"id": {strconv.FormatInt(id, 10)}}
		for _, d := range drops {
			next.Add(d.Kind, d.SKU)
		}
		if code := strings.TrimSpace(q.Get("code")); code != "" && len(code) <= 128 {
			next.Set("code", code)
		}
		http.Redirect(w, r, "/basket/?"+next.Encode(), http.StatusSeeOther)
	})
}

func allPurchased(drops []drop) bool {
	for _, d := range drops {
		if d.Kind != dropPurchased {
			return false
		}
	}
	return len(drops) > 0
}

type lineView struct {
	Title, Course, Mode, SKU, Price, Status string
	Quantity                                int
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
		Total: money.Format(sb.Total, sb.Currency) + " " + sb.Currency, Processor: sb.Processor}
	for _, l := range sb.Lines {
		p := l.Product
		course := p.CourseID
		if course == "" {
			course = p.Attributes.String("course_key")
		}
		v.Lines = append(v.Lines, lineView{Title: p.Title, Course: course, Mode: seatMode(p.Class, p.Attributes), SKU: p.Stock.SKU,
			Quantity: l.Quantity, Price: money.Format(p.Stock.Price.Minor*int64(l.Quantity), p.Stock.Price.Currency) + " " + p.Stock.Price.Currency})
	}
	if a.d.Checkout != nil {
		names := make([]string, 0, len(a.d.Checkout.Processors))
		for name := range a.d.Checkout.Processors {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, n := range names {
			v.Processors = append(v.Processors, processorView{Name: n, Label: capitalize(n)})
		}
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
		if sb.Status == "Submitted" && sb.OrderNumber != "" {
			http.Redirect(w, r, receiptPath(sb.OrderNumber), http.StatusSeeOther)
			return
		}
		v := a.basketView(u, sb)
		var drops []drop
		var skus []string
		for _, kind := range dropKinds {
			for _, sku := range uniqueSKUs(q[kind]) {
				drops = append(drops, drop{kind, sku})
				skus = append(skus, sku)
			}
		}
		if len(drops) > 0 {
			products, err := a.d.Store.ProductsBySKU(r.Context(), skus)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			v.Notices = a.explain(drops, products)
		}
		if code := strings.TrimSpace(q.Get("code")); code != "" && len(code) <= 128 {
			v.Code, v.RedeemURL = code, "/coupons/redeem/?code="+url.QueryEscape(code)
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
		sb, err = a.d.Store.GetBasket(r.Context(), n)
	} else {
		err = order.ErrNotFound
	}
	if err == nil && sb.Owner.Username != u.Username {
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

// recheck says what of a basket can no longer be bought as it is: a
// product that expired or left the rollout since it was added, a seat
// bought since in another basket (two tabs), or a price that changed.
func (a *app) recheck(ctx context.Context, u order.User, sb basket.Stored) ([]string, error) {
	skus := make([]string, 0, len(sb.Lines))
	for _, l := range sb.Lines {
		skus = append(skus, l.Product.Stock.SKU)
	}
	products, err := a.d.Store.ProductsBySKU(ctx, skus)
	if err != nil {
		return nil, err
	}
	_, drops, err := a.split(ctx, u.Username, skus, products, a.d.Now())
	if err != nil {
		return nil, err
	}
	problems := a.explain(drops, products)
	for _, l := range sb.Lines {
		was := l.Product.Stock.Price
		if p, ok := products[l.Product.Stock.SKU]; ok && p.Stock != nil && p.Stock.Price != was {
			problems = append(problems, fmt.Sprintf("The price of %s changed from %s %s to %s %s since you added it; follow the course's link again to buy it.",
				l.Product.Title, was, was.Currency, p.Stock.Price, p.Stock.Price.Currency))
		}
	}
	return problems, nil
}

// handleCheckout is POST /basket/checkout/ (basket_id, processor): a free
// basket becomes an order, fulfilled before the answer, then 303 to the
// receipt; a paid one is frozen and the learner is sent (303) to the
// processor's payment page.
func handleCheckout(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		id := r.PostFormValue("basket_id")
		u, ok := a.requireUser(w, r, "/basket/?id="+url.QueryEscape(id))
		if !ok {
			return
		}
		ctx := r.Context()
		sb, ok := a.ownBasket(w, r, u, id)
		if !ok {
			return
		}
		if sb.Status == "Submitted" && sb.OrderNumber != "" {
			http.Redirect(w, r, receiptPath(sb.OrderNumber), http.StatusSeeOther)
			return
		}
		problems, err := a.recheck(ctx, u, sb)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if len(problems) > 0 {
			v := a.basketView(u, sb)
			v.Errors = problems
			a.render(w, r, http.StatusConflict, "basket", v)
			return
		}
		if sb.Free() {
			a.placeFree(w, r, u, sb)
			return
		}
		a.startPayment(w, r, u, sb, r.PostFormValue("processor"))
	})
}

func (a *app) placeFree(w http.ResponseWriter, r *http.Request, u order.User, sb basket.Stored) {
	ctx := r.Context()
	owner := a.leaseOwner()
	o, err := a.d.Store.SubmitOpenBasket(ctx, sb.ID, u.Username, owner, a.d.Now().Add(a.d.Service.Lease))
	if errors.Is(err, basket.ErrNotOpen) {
		// A second click that lost the race: show what the first one placed.
		if again, gerr := a.d.Store.GetBasket(ctx, sb.ID); gerr == nil && again.OrderNumber != "" {
			http.Redirect(w, r, receiptPath(again.OrderNumber), http.StatusSeeOther)
			return
		}
		a.message(w, r, http.StatusConflict, "This basket is being paid for", "Its payment is under way; it cannot be placed as a free order.")
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.d.Log.Info("order_placed", "order", o.Number, "basket", sb.ID, "user", u.Username, "via", "storefront")
	// The order is committed; a failure from here on only delays it: its
	// lines stay due for the retry worker.
	if _, err := a.d.Service.Run(ctx, fulfillment.Claim{Order: o, Lines: o.Lines}, owner, u.Username); err != nil {
		a.d.Log.Error("fulfill after checkout", "order", o.Number, "error", err)
	}
	http.Redirect(w, r, receiptPath(o.Number), http.StatusSeeOther)
}

func (a *app) startPayment(w http.ResponseWriter, r *http.Request, u order.User, sb basket.Stored, processor string) {
	ctx := r.Context()
	refuse := func(status int, msg string) {
		v := a.basketView(u, sb)
		v.Errors = []string{msg}
		a.render(w, r, status, "basket", v)
	}
	if a.d.Checkout == nil || len(a.d.Checkout.Processors) == 0 {
		refuse(http.StatusServiceUnavailable, "Paid checkout is not available on this site.")
		return
	}
	if processor == "" {
		refuse(http.StatusBadRequest, "Choose how you want to pay.")
		return
	}
	p, err := a.d.Checkout.Processor(processor)
	if errors.Is(err, payment.ErrUnknownProcessor) {
		refuse(http.StatusBadRequest, "That payment method is not available; choose another one.")
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	err = a.d.Store.FreezeOpenBasket(ctx, sb.ID, p.Name())
	if errors.Is(err, basket.ErrNotOpen) {
		refuse(http.StatusConflict, fmt.Sprintf("A payment of this basket through %s is already under way; finish it or wait until it is declined.", capitalize(sb.Processor)))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	data, err := p.PaymentData(ctx, payment.Basket{ID: sb.ID, Username: sb.Owner.Username, Email: sb.Owner.Email,
		Total: money.Amount{Minor: sb.Total, Currency: sb.Currency}}, a.d.PublicURL)
	if err == nil && data.PageURL == "" {
		err = fmt.Errorf("processor %s gave no payment page", p.Name())
	}
	if err != nil {
		a.d.Log.Error("payment data", "basket", sb.ID, "processor", p.Name(), "error", err)
		a.message(w, r, http.StatusBadGateway, "The payment service did not answer",
			"Nothing was charged. Go back to your basket and press the payment button again.")
		return
	}
	a.d.Log.Info("payment_started", "basket", sb.ID, "user", u.Username, "processor", p.Name())
	http.Redirect(w, r, data.PageURL, http.StatusSeeOther)
}
