package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"fulfill/internal/auth"
	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/checkout"
	"fulfill/internal/money"
	"fulfill/internal/offer"
	"fulfill/internal/order"
	"fulfill/internal/payment/stripe"
)

// The payment MFE's backend (Otto's ecommerce/bff/payment): the basket
// payload, its coupon and quantity, the Stripe capture context, the
// checkout and the CSRF token its unsafe cookie requests carry. Every
// answer is Otto's JSON, never problem+json: a 400 carries the whole
// basket payload with the reason in messages[].

// csrfCookie holds the token of GET /csrf/api/v1/token (double submit).
const csrfCookie = "fulfill_csrftoken"

// csrfHeader carries it back on unsafe requests (Django's).
const csrfHeader = "X-CSRFToken"

// handleCSRFToken is GET /csrf/api/v1/token: {"csrfToken": …}, the token
// also set in a cookie, and the same token again while the cookie lasts.
func handleCSRFToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := ""
		if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 64 {
			if _, err := hex.DecodeString(c.Value); err == nil {
				tok = c.Value
			}
		}
		if tok == "" {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			tok = hex.EncodeToString(b)
		}
		secure := r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
		c := &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true, Secure: secure,
			SameSite: http.SameSiteLaxMode}
		if secure {
			c.SameSite = http.SameSiteNoneMode // the MFE may be another site
		}
		http.SetCookie(w, c)
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]string{"csrfToken": tok})
	})
}

// bffDetail is DRF's error body: {"detail": …}.
func bffDetail(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"detail": detail})
}

// bffUser authenticates as Otto's JwtAuthentication: the Authorization
// header, or the LMS's JWT cookie pair, which for an unsafe method also
// needs a same-origin request and the CSRF token of GET
// /csrf/api/v1/token in X-CSRFToken. Failures are DRF's {"detail"}.
func bffUser(d Deps, h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, fromCookies := auth.TokenFrom(r)
		u, err := d.Verifier.User(raw)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `JWT realm="api"`)
			bffDetail(w, http.StatusUnauthorized, "Authentication credentials were not provided or are invalid.")
			return
		}
		if fromCookies && !sameOrigin(cop, r) {
			bffDetail(w, http.StatusForbidden, "CSRF Failed: Origin checking failed.")
			return
		}
		if fromCookies && !safeMethod(r.Method) {
			c, err := r.Cookie(csrfCookie)
			got := r.Header.Get(csrfHeader)
			if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(got)) != 1 {
				bffDetail(w, http.StatusForbidden, "CSRF Failed: CSRF token missing or incorrect.")
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, u)))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

type bffProduct struct {
	CourseKey       *string `json:"course_key"`
	SKU             string  `json:"sku"`
	Title           *string `json:"title"`
	ProductType     string  `json:"product_type"`
	ImageURL        *string `json:"image_url"`
	CertificateType *string `json:"certificate_type"`
	Subject         *string `json:"subject"`
}

type bffCoupon struct {
	ID           int64       `json:"id"`
	Code         string      `json:"code"`
	BenefitType  string      `json:"benefit_type"`
	BenefitValue json.Number `json:"benefit_value"`
}

type bffOffer struct {
	Provider     *string     `json:"provider"`
	Name         string      `json:"name"`
	BenefitType  string      `json:"benefit_type"`
	BenefitValue json.Number `json:"benefit_value"`
}

type bffMessage struct {
	MessageType string         `json:"message_type"`
	UserMessage string         `json:"user_message,omitempty"`
	Code        string         `json:"code,omitempty"`
	Data        map[string]any `json:"data,omitempty"`
}

// bffBasket is Otto's PaymentApiLogicMixin payload.
type bffBasket struct {
	BasketID         *int64       `json:"basket_id"`
	IsFreeBasket     bool         `json:"is_free_basket"`
	Currency         *string      `json:"currency"`
	Products         []bffProduct `json:"products"`
	SummaryPrice     json.Number  `json:"summary_price"`
	SummaryDiscounts json.Number  `json:"summary_discounts"`
	OrderTotal       json.Number  `json:"order_total"`
	SummaryQuantity  *int         `json:"summary_quantity,omitempty"`
	SummarySubtotal  *json.Number `json:"summary_subtotal,omitempty"`
	Offers           []bffOffer   `json:"offers"`
	Coupons          []bffCoupon  `json:"coupons"`
	ShowCouponForm   bool         `json:"show_coupon_form"`
	Messages         []bffMessage `json:"messages"`
	EnableStripe     bool         `json:"enable_stripe_payment_processor"`
}

func bffOptional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func number(minor int64, currency string) json.Number {
	if currency == "" {
		return "0"
	}
	return json.Number(money.Format(minor, currency))
}

// benefitValue is a benefit as Otto shows it: percent, or the amount, with
// trailing zeros dropped.
func benefitValue(typ string, value int64, currency string) json.Number {
	if typ == string(offer.BenefitPercentage) {
		return json.Number(strconv.FormatFloat(float64(value)/100, 'f', -1, 64))
	}
	f, err := strconv.ParseFloat(money.Format(value, currency), 64)
	if err != nil {
		return "0"
	}
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64))
}

// bffView is the payload of sb (ok false: the caller has no basket).
func bffView(d Deps, sb basket.Stored, ok bool, msgs ...bffMessage) bffBasket {
	_, stripeOn := d.Checkout.Processors[stripe.Name]
	v := bffBasket{IsFreeBasket: true, Products: []bffProduct{}, SummaryPrice: "0", SummaryDiscounts: "0", OrderTotal: "0",
		Offers: []bffOffer{}, Coupons: []bffCoupon{}, Messages: append([]bffMessage{}, msgs...), EnableStripe: stripeOn}
	if !ok {
		return v
	}
	id := sb.ID
	v.BasketID = &id
	if len(sb.Lines) == 0 {
		return v
	}
	cur := sb.Currency
	v.Currency = &cur
	before := sb.Before()
	v.IsFreeBasket = sb.Free()
	v.SummaryPrice, v.SummaryDiscounts, v.OrderTotal = number(before, cur), number(before-sb.Total, cur), number(sb.Total, cur)
	v.ShowCouponForm = true
	for _, l := range sb.Lines {
		p := l.Product
		course := p.CourseID
		if course == "" {
			course = p.Attributes.String("course_key")
		}
		cert := p.Attributes.String("certificate_type")
		if p.Class == catalog.ClassEnrollmentCode {
			cert = p.Attributes.String("seat_type")
			v.ShowCouponForm = false
		}
		title := p.Title
		v.Products = append(v.Products, bffProduct{CourseKey: bffOptional(course), SKU: p.Stock.SKU, Title: bffOptional(title),
			ProductType: string(p.Class), CertificateType: bffOptional(cert)})
	}
	if first := sb.Lines[0]; first.Product.Class == catalog.ClassEnrollmentCode {
		q := first.Quantity
		sub := v.SummaryPrice
		v.SummaryQuantity, v.SummarySubtotal = &q, &sub
		v.SummaryPrice = number(first.Product.Stock.Price.Minor, cur)
	}
	for _, dsc := range sb.Discounts {
		val := benefitValue(dsc.BenefitType, dsc.BenefitValue, dsc.Currency)
		switch {
		case dsc.VoucherID != 0 && v.ShowCouponForm:
			v.Coupons = append(v.Coupons, bffCoupon{ID: dsc.VoucherID, Code: dsc.Code, BenefitType: dsc.BenefitType, BenefitValue: val})
		case dsc.VoucherID == 0:
			v.Offers = append(v.Offers, bffOffer{Name: dsc.OfferName, BenefitType: dsc.BenefitType, BenefitValue: val})
		}
	}
	return v
}

// writeBFF answers the payload: 400 when a message is an error.
func writeBFF(w http.ResponseWriter, v bffBasket) {
	status := http.StatusOK
	for _, m := range v.Messages {
		if m.MessageType == "error" {
			status = http.StatusBadRequest
		}
	}
	writeBFFStatus(w, status, v)
}

func writeBFFStatus(w http.ResponseWriter, status int, v bffBasket) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, v)
}

func msg(typ, text string) bffMessage { return bffMessage{MessageType: typ, UserMessage: text} }

// bffFail answers an unexpected error as the payload with an error
// message (the MFE keeps the basket), logged as any internal error.
func bffFail(w http.ResponseWriter, r *http.Request, d Deps, sb basket.Stored, ok bool, err error) {
	logFrom(r).Error("bff request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	writeBFFStatus(w, http.StatusInternalServerError, bffView(d, sb, ok, msg("error", "Something went wrong; try again.")))
}

// readJSON decodes a small JSON body into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// handleBFFPayment is GET /bff/payment/v0/payment/: the caller's basket.
func handleBFFPayment(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb, ok, err := d.Checkout.CurrentBasket(r.Context(), userFrom(r.Context()))
		if err != nil {
			bffFail(w, r, d, sb, ok, err)
			return
		}
		writeBFF(w, bffView(d, sb, ok))
	})
}

// handleBFFVoucherAdd is POST /bff/payment/v0/vouchers/ {code}: the
// basket's one code replaced, in Otto's words.
func handleBFFVoucherAdd(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, u := r.Context(), userFrom(r.Context())
		sb, ok, err := d.Checkout.CurrentBasket(ctx, u)
		if err != nil {
			bffFail(w, r, d, sb, ok, err)
			return
		}
		var in struct {
			Code string `json:"code"`
		}
		if err := readJSON(w, r, &in); err != nil {
			writeBFF(w, bffView(d, sb, ok, msg("error", "The request could not be read: send JSON {\"code\": …}.")))
			return
		}
		code := offer.NormalizeCode(strings.TrimSpace(in.Code))
		switch {
		case !ok || len(sb.Lines) == 0:
			writeBFFStatus(w, http.StatusBadRequest, bffView(d, sb, ok))
			return
		case code == "" || len(code) > 128:
			writeBFF(w, bffView(d, sb, ok, msg("error", "Please enter a coupon code.")))
			return
		case strings.EqualFold(code, sb.Code):
			writeBFF(w, bffView(d, sb, ok, msg("error", fmt.Sprintf("You have already added coupon code '%s' to your basket.", code))))
			return
		case sb.Status != basket.StatusOpen:
			writeBFF(w, bffView(d, sb, ok, msg("error", "The coupon code of a basket whose payment is under way cannot be changed.")))
			return
		}
		problem, unknown, err := d.Checkout.CodeProblem(ctx, sb, code)
		if err != nil {
			bffFail(w, r, d, sb, ok, err)
			return
		}
		if unknown {
			writeBFF(w, bffView(d, sb, ok, msg("error", fmt.Sprintf("Coupon code '%s' does not exist.", code))))
			return
		}
		if problem == "" {
			got, err := d.Checkout.ApplyCode(ctx, u, sb.ID, code)
			if err == nil {
				writeBFF(w, bffView(d, got, true, msg("info", fmt.Sprintf("Coupon code '%s' added to basket.", got.Code))))
				return
			}
			if !errors.Is(err, checkout.ErrCoupon) {
				bffFail(w, r, d, sb, ok, err)
				return
			}
			problem = strings.TrimPrefix(err.Error(), checkout.ErrCoupon.Error()+": ")
		}
		// Otto clears the basket's vouchers before it validates the new one.
		if sb.Code != "" {
			if cleared, err := d.Checkout.ApplyCode(ctx, u, sb.ID, ""); err == nil {
				sb = cleared
			}
		}
		typ := "error"
		if strings.HasPrefix(problem, "Basket does not qualify for coupon code") {
			typ = "warning"
		}
		writeBFF(w, bffView(d, sb, ok, msg(typ, problem)))
	})
}

// handleBFFVoucherRemove is DELETE /bff/payment/v0/vouchers/{id}.
func handleBFFVoucherRemove(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, u := r.Context(), userFrom(r.Context())
		sb, ok, err := d.Checkout.CurrentBasket(ctx, u)
		if err != nil {
			bffFail(w, r, d, sb, ok, err)
			return
		}
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if !ok || id <= 0 || sb.VoucherID() != id {
			writeBFF(w, bffView(d, sb, ok, msg("error", fmt.Sprintf("No coupon found with id '%s'", r.PathValue("id")))))
			return
		}
		code := sb.Code
		got, err := d.Checkout.ApplyCode(ctx, u, sb.ID, "")
		switch {
		case errors.Is(err, basket.ErrNotOpen):
			writeBFF(w, bffView(d, sb, ok, msg("error", "The coupon code of a basket whose payment is under way cannot be changed.")))
		case err != nil:
			bffFail(w, r, d, sb, ok, err)
		default:
			writeBFF(w, bffView(d, got, true, msg("info", fmt.Sprintf("Coupon code '%s' was removed from your basket.", code))))
		}
	})
}

// handleBFFQuantity is POST /bff/payment/v0/quantity/ {quantity}: an
// enrollment-code basket's quantity.
func handleBFFQuantity(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, u := r.Context(), userFrom(r.Context())
		sb, ok, err := d.Checkout.CurrentBasket(ctx, u)
		if err != nil {
			bffFail(w, r, d, sb, ok, err)
			return
		}
		if !ok || len(sb.Lines) == 0 || sb.Lines[0].Product.Class != catalog.ClassEnrollmentCode {
			writeBFFStatus(w, http.StatusBadRequest, bffView(d, sb, ok))
			return
		}
		var in struct {
			Quantity json.Number `json:"quantity"`
		}
		n := 0
		if err := readJSON(w, r, &in); err == nil {
			if v, err := strconv.Atoi(in.Quantity.String()); err == nil {
				n = v
			}
		}
		invalid := func(why string) {
			writeBFFStatus(w, http.StatusBadRequest, bffView(d, sb, ok,
				msg("warning", "Your basket couldn't be updated. Please correct any validation errors below."), msg("error", why)))
		}
		if n < 1 || n > basket.MaxQuantity {
			invalid(fmt.Sprintf("Ensure the quantity is a whole number from 1 to %d.", basket.MaxQuantity))
			return
		}
		got, err := d.Checkout.SetQuantity(ctx, u, sb.ID, n)
		switch {
		case errors.Is(err, basket.ErrNotOpen):
			invalid("The quantity of a basket whose payment is under way cannot be changed.")
		case errors.Is(err, basket.ErrInvalid):
			invalid(strings.TrimPrefix(err.Error(), basket.ErrInvalid.Error()+": "))
		case err != nil:
			bffFail(w, r, d, sb, ok, err)
		default:
			writeBFF(w, bffView(d, got, true, bffMessage{MessageType: "info", Code: "quantity-update-success-message"}))
		}
	})
}

// handleBFFCaptureContext is GET /bff/payment/v0/capture-context[/]:
// Stripe's PaymentIntent client secret for the caller's basket, as
// {capture_context: {key_id, order_id}}; 400 {} without Stripe or a
// basket to pay.
func handleBFFCaptureContext(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if _, on := d.Checkout.Processors[stripe.Name]; !on {
			writeJSON(w, http.StatusBadRequest, map[string]any{})
			return
		}
		sb, ok, err := d.Checkout.CurrentBasket(r.Context(), userFrom(r.Context()))
		if err != nil || !ok || len(sb.Lines) == 0 || sb.Free() {
			if err != nil {
				logFrom(r).Error("capture context", "error", err)
			}
			writeJSON(w, http.StatusBadRequest, map[string]any{})
			return
		}
		data, err := d.Checkout.ClientPayment(r.Context(), sb, stripe.Name)
		if err != nil || data.FormData["client_secret"] == "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{})
			return
		}
		number := fmt.Sprintf("%s-%d", sb.Lines[0].Product.Stock.Partner, sb.ID+100000)
		writeJSON(w, http.StatusOK, map[string]any{"capture_context": map[string]string{
			"key_id": data.FormData["client_secret"], "order_id": number}})
	})
}

// handleBFFCheckout is Otto's POST /api/v2/checkout/ {basket_id,
// payment_processor}: the caller's basket frozen for the processor, and
// its payment page.
func handleBFFCheckout(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, u := r.Context(), userFrom(r.Context())
		var in struct {
			BasketID  json.Number `json:"basket_id"`
			Processor string      `json:"payment_processor"`
		}
		text := func(status int, s string) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, s)
		}
		if err := readJSON(w, r, &in); err != nil {
			text(http.StatusBadRequest, "The request could not be read: send JSON {\"basket_id\", \"payment_processor\"}.")
			return
		}
		id, _ := strconv.ParseInt(in.BasketID.String(), 10, 64)
		if _, err := d.Checkout.Basket(ctx, u, id); id <= 0 || errors.Is(err, order.ErrNotFound) {
			text(http.StatusBadRequest, fmt.Sprintf("Basket [%s] not found.", in.BasketID))
			return
		}
		if _, err := d.Checkout.Processor(in.Processor); err != nil {
			text(http.StatusBadRequest, fmt.Sprintf("Payment processor [%s] not found.", in.Processor))
			return
		}
		got, err := d.Checkout.CheckoutBasket(ctx, u, id, in.Processor)
		switch {
		case err == nil && got.Payment != nil:
			form := got.Payment.FormData
			if form == nil {
				form = map[string]string{}
			}
			writeJSON(w, http.StatusOK, map[string]any{"payment_form_data": form, "payment_page_url": got.Payment.PageURL,
				"payment_processor": got.Payment.ProcessorName})
		case err == nil:
			text(http.StatusBadRequest, fmt.Sprintf("Basket [%d] is free or placed already; it needs no payment.", id))
		case errors.Is(err, basket.ErrNotOpen), errors.Is(err, checkout.ErrChanged), errors.Is(err, checkout.ErrCoupon),
			errors.Is(err, basket.ErrInvalid), errors.Is(err, basket.ErrNotFree), errors.Is(err, order.ErrAlreadyPurchased):
			text(http.StatusBadRequest, err.Error())
		default:
			logFrom(r).Error("bff checkout", "basket", id, "error", err)
			text(http.StatusInternalServerError, "The payment could not be started; nothing was charged. Try again.")
		}
	})
}

// handleFreeCheckout is Otto's GET /checkout/free-checkout/: the caller's
// free basket placed, then 302 to its receipt; an empty basket goes to
// /basket/, one that is not free is a 400 page.
func handleFreeCheckout(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := d.Verifier.User(auth.Token(r))
		if err != nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
			return
		}
		ctx := r.Context()
		sb, ok, err := d.Checkout.CurrentBasket(ctx, u)
		page := func(status int, s string) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, s+"\n")
		}
		switch {
		case err != nil:
			logFrom(r).Error("free checkout", "error", err)
			page(http.StatusInternalServerError, "Your order could not be placed; try again.")
			return
		case !ok || len(sb.Lines) == 0:
			http.Redirect(w, r, "/basket/", http.StatusFound)
			return
		case !sb.Free():
			page(http.StatusBadRequest, "Your basket is not free: go back to the payment page to pay for it.")
			return
		}
		got, err := d.Checkout.CheckoutBasket(ctx, u, sb.ID, "")
		if err != nil || got.Order == nil {
			logFrom(r).Warn("free checkout refused", "basket", sb.ID, "error", err)
			page(http.StatusBadRequest, "Your basket could not be placed as a free order: go back to the payment page.")
			return
		}
		http.Redirect(w, r, "/checkout/receipt/?order_number="+url.QueryEscape(got.Order.Number)+"&disable_back_button=1", http.StatusFound)
	})
}

// handleStripeCheckout is the MFE's POST /payment/stripe/checkout/ (form
// payment_intent_id, skus). The PaymentIntent is confirmed in the page;
// its payment_intent.succeeded webhook places the order. This answers 201
// {receipt_page_url} once that basket was placed, 400 {sku_error: true}
// when the SKUs are not the basket's, and 400 {} otherwise (not paid yet,
// or not the caller's).
func handleStripeCheckout(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		ctx, u := r.Context(), userFrom(r.Context())
		pi := strings.TrimSpace(r.PostFormValue("payment_intent_id"))
		sb, err := d.Checkout.PaidBasket(ctx, u, stripe.Name, pi)
		if err != nil {
			var ok bool
			if sb, ok, err = d.Checkout.CurrentBasket(ctx, u); err != nil || !ok {
				writeJSON(w, http.StatusBadRequest, map[string]any{})
				return
			}
		}
		want := map[string]bool{}
		for _, l := range sb.Lines {
			want[l.Product.Stock.SKU] = true
		}
		got := map[string]bool{}
		for _, s := range strings.Split(r.PostFormValue("skus"), ",") {
			if s = strings.TrimSpace(s); s != "" {
				got[s] = true
			}
		}
		same := len(got) == len(want)
		for s := range got {
			same = same && want[s]
		}
		switch {
		case !same:
			writeJSON(w, http.StatusBadRequest, map[string]any{"sku_error": true})
		case sb.Status == basket.StatusSubmitted && sb.OrderNumber != "":
			receipt := strings.TrimRight(d.PublicURL, "/") + "/checkout/receipt/?order_number=" + url.QueryEscape(sb.OrderNumber)
			writeJSON(w, http.StatusCreated, map[string]string{"receipt_page_url": receipt})
		default:
			writeJSON(w, http.StatusBadRequest, map[string]any{})
		}
	})
}

// addBFFRoutes serves the payment MFE's backend.
func addBFFRoutes(mux *http.ServeMux, d Deps) {
	user := func(h http.Handler) http.Handler { return bffUser(d, h) }
	mux.Handle("GET /csrf/api/v1/token", handleCSRFToken())
	mux.Handle("GET /bff/payment/v0/payment/{$}", user(handleBFFPayment(d)))
	mux.Handle("POST /bff/payment/v0/vouchers/{$}", user(handleBFFVoucherAdd(d)))
	mux.Handle("DELETE /bff/payment/v0/vouchers/{id}", user(handleBFFVoucherRemove(d)))
	mux.Handle("DELETE /bff/payment/v0/vouchers/{id}/{$}", user(handleBFFVoucherRemove(d)))
	mux.Handle("POST /bff/payment/v0/quantity/{$}", user(handleBFFQuantity(d)))
	mux.Handle("GET /bff/payment/v0/capture-context", user(handleBFFCaptureContext(d)))
	mux.Handle("GET /bff/payment/v0/capture-context/{$}", user(handleBFFCaptureContext(d)))
	mux.Handle("POST /api/v2/checkout/{$}", user(handleBFFCheckout(d)))
	mux.Handle("GET /checkout/free-checkout/{$}", handleFreeCheckout(d))
	mux.Handle("POST /payment/stripe/checkout/{$}", user(handleStripeCheckout(d)))
}
