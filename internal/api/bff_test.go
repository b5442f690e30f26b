package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/apptest"
	"fulfill/internal/auth"
	"fulfill/internal/payment/stripe/stripemock"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// mfe is the payment MFE as frontend-platform's authenticated client
// sends its requests: the LMS's JWT cookie pair, USE-JWT-COOKIE: true, the
// MFE's Origin, and on unsafe methods X-CSRFToken from GET
// /csrf/api/v1/token with the cookie it set.
type mfe struct {
	e          *env
	user       string
	csrf       string
	csrfCookie *http.Cookie
	origin     string // the Origin sent ("": the service's own)
}

func (e *env) mfe(user string) *mfe { return &mfe{e: e, user: user} }

type mfeAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a mfeAnswer) basket(t *testing.T) bffBasketOut {
	t.Helper()
	var b bffBasketOut
	require.NoError(t, json.Unmarshal(a.body, &b), string(a.body))
	return b
}

// send sends method path with body (JSON, or a form when form), as the
// MFE does; noCSRF leaves the token out.
func (m *mfe) send(method, path, body string, form, noCSRF bool) mfeAnswer {
	m.e.t.Helper()
	req := m.e.NewRequest(method, path, body)
	tok := m.e.token(m.user, false)
	cut := strings.LastIndexByte(tok, '.')
	req.AddCookie(&http.Cookie{Name: auth.CookieHeaderPayload, Value: tok[:cut]})
	req.AddCookie(&http.Cookie{Name: auth.CookieSignature, Value: tok[cut+1:]})
	req.Header.Set("USE-JWT-COOKIE", "true")
	req.Header.Set("Origin", m.e.URL)
	if m.origin != "" {
		req.Header.Set("Origin", m.origin)
	}
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		if form {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if method != http.MethodGet && !noCSRF {
		if m.csrf == "" {
			res, raw := m.e.Send(m.e.NewRequest("GET", "/csrf/api/v1/token", ""))
			require.Equal(m.e.t, http.StatusOK, res.StatusCode)
			var out struct {
				CSRFToken string `json:"csrfToken"`
			}
			require.NoError(m.e.t, json.Unmarshal(raw, &out))
			require.NotEmpty(m.e.t, out.CSRFToken)
			m.csrf = out.CSRFToken
			for _, c := range res.Cookies() {
				if c.Name == "fulfill_csrftoken" {
					m.csrfCookie = c
				}
			}
			require.NotNil(m.e.t, m.csrfCookie, "the token's cookie is set")
			require.Equal(m.e.t, m.csrf, m.csrfCookie.Value)
		}
		req.AddCookie(&http.Cookie{Name: m.csrfCookie.Name, Value: m.csrfCookie.Value})
		req.Header.Set("X-CSRFToken", m.csrf)
	}
	res, raw := m.e.Send(req)
	if strings.HasPrefix(path, "/bff/") {
		require.NotEqual(m.e.t, "application/problem+json", res.Header.Get("Content-Type"), "never problem+json: %s", raw)
	}
	return mfeAnswer{status: res.StatusCode, header: res.Header, body: raw}
}

type bffBasketOut struct {
	BasketID     *int64  `json:"basket_id"`
	IsFreeBasket bool    `json:"is_free_basket"`
	Currency     *string `json:"currency"`
	Products     []struct {
		CourseKey       *string `json:"course_key"`
		SKU             string  `json:"sku"`
		Title           *string `json:"title"`
		ProductType     string  `json:"product_type"`
		CertificateType *string `json:"certificate_type"`
	} `json:"products"`
	SummaryPrice     json.Number  `json:"summary_price"`
	SummaryDiscounts json.Number  `json:"summary_discounts"`
	OrderTotal       json.Number  `json:"order_total"`
	SummaryQuantity  *int         `json:"summary_quantity"`
	SummarySubtotal  *json.Number `json:"summary_subtotal"`
	Offers           []any        `json:"offers"`
	Coupons          []struct {
		ID           int64       `json:"id"`
		Code         string      `json:"code"`
		BenefitType  string      `json:"benefit_type"`
		BenefitValue json.Number `json:"benefit_value"`
	} `json:"coupons"`
	ShowCouponForm bool `json:"show_coupon_form"`
	Messages       []struct {
		MessageType string `json:"message_type"`
		UserMessage string `json:"user_message"`
		Code        string `json:"code"`
	} `json:"messages"`
	EnableStripe bool `json:"enable_stripe_payment_processor"`
}

// openBasket stores an Open basket of skus for user (the MFE's basket).
func (e *env) openBasket(user string, skus ...string) int64 {
	e.t.Helper()
	var products []map[string]string
	for _, s := range skus {
		products = append(products, map[string]string{"sku": s})
	}
	var b basketAnswer
	e.do("POST", "/api/v2/baskets/", e.token(user, false), map[string]any{"products": products}, http.StatusOK, &b)
	return b.ID
}

func TestBFFPaymentMFE(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		pro := e.skus["no-id-professional"]
		ann := e.mfe("ann")

		// No basket: the empty payload.
		got := ann.send("GET", "/bff/payment/v0/payment/", "", false, false)
		require.Equal(t, http.StatusOK, got.status, string(got.body))
		b := got.basket(t)
		require.Nil(t, b.Currency)
		require.Nil(t, b.BasketID)
		require.True(t, b.IsFreeBasket)
		require.Empty(t, b.Products)
		require.False(t, b.EnableStripe)
		require.Contains(t, string(got.body), `"messages":[]`)

		// No credentials: DRF's 401 {detail}.
		res, raw := e.Send(e.NewRequest("GET", "/bff/payment/v0/payment/", ""))
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		require.Equal(t, "application/json", res.Header.Get("Content-Type"))
		require.Contains(t, string(raw), `"detail"`)

		id := e.openBasket("ann", pro)
		got = ann.send("GET", "/bff/payment/v0/payment/", "", false, false)
		require.Equal(t, http.StatusOK, got.status)
		b = got.basket(t)
		require.Equal(t, id, *b.BasketID)
		require.Equal(t, "USD", *b.Currency)
		require.False(t, b.IsFreeBasket)
		require.Len(t, b.Products, 1)
		require.Equal(t, pro, b.Products[0].SKU)
		require.Equal(t, course, *b.Products[0].CourseKey)
		require.Equal(t, "Seat", b.Products[0].ProductType)
		require.Equal(t, "professional", *b.Products[0].CertificateType)
		require.Contains(t, string(got.body), `"summary_price":100.00`, "money is a JSON number")
		require.Equal(t, json.Number("0.00"), b.SummaryDiscounts)
		require.Equal(t, json.Number("100.00"), b.OrderTotal)
		require.True(t, b.ShowCouponForm)

		// CSRF: a cookie request of an unsafe method needs X-CSRFToken.
		got = ann.send("POST", "/bff/payment/v0/vouchers/", `{"code":"NOPE"}`, false, true)
		require.Equal(t, http.StatusForbidden, got.status, string(got.body))
		require.Contains(t, string(got.body), "CSRF")
		// The Authorization header needs none.
		res, raw = e.Send(func() *http.Request {
			req := e.NewRequest("POST", "/bff/payment/v0/vouchers/", `{"code":"NOPE"}`)
			req.Header.Set("Authorization", "JWT "+e.token("ann", false))
			req.Header.Set("Content-Type", "application/json")
			return req
		}())
		require.Equal(t, http.StatusBadRequest, res.StatusCode)
		require.Contains(t, string(raw), "Coupon code 'NOPE' does not exist.")

		// Unknown code: error, 400, with the whole basket.
		got = ann.send("POST", "/bff/payment/v0/vouchers/", `{"code":" nope "}`, false, false)
		require.Equal(t, http.StatusBadRequest, got.status)
		require.Equal(t, "application/json", got.header.Get("Content-Type"))
		b = got.basket(t)
		require.Equal(t, id, *b.BasketID, "the 400 carries the basket")
		require.Len(t, b.Products, 1)
		require.Equal(t, "error", b.Messages[0].MessageType)
		require.Equal(t, "Coupon code 'NOPE' does not exist.", b.Messages[0].UserMessage)

		ann.csrf = "0" + ann.csrf[1:] + "x"
		got = ann.send("POST", "/bff/payment/v0/vouchers/", `{"code":"NOPE"}`, false, false)
		require.Equal(t, http.StatusForbidden, got.status, "a token that is not the cookie's")
		ann.csrf = ann.csrfCookie.Value
		evil := &mfe{e: e, user: "ann", origin: "https://evil.example"}
		got = evil.send("POST", "/bff/payment/v0/vouchers/", `{"code":"NOPE"}`, false, false)
		require.Equal(t, http.StatusForbidden, got.status, "a cookie request from another site")
		require.Equal(t, http.StatusOK, evil.send("GET", "/bff/payment/v0/payment/", "", false, false).status, "safe methods may")
		save := e.coupon(map[string]any{"code": "SAVE20", "benefit_value": "20"})
		other := e.coupon(map[string]any{"code": "ELSEWHERE", "course_keys": []string{course2}})
		got = ann.send("POST", "/bff/payment/v0/vouchers/", `{"code":"save20"}`, false, false)
		require.Equal(t, http.StatusOK, got.status, string(got.body))
		b = got.basket(t)
		require.Equal(t, "info", b.Messages[0].MessageType)
		require.Equal(t, "Coupon code 'SAVE20' added to basket.", b.Messages[0].UserMessage)
		require.Equal(t, json.Number("80.00"), b.OrderTotal)
		require.Equal(t, json.Number("20.00"), b.SummaryDiscounts)
		require.Equal(t, json.Number("100.00"), b.SummaryPrice)
		require.Len(t, b.Coupons, 1)
		require.Equal(t, save, b.Coupons[0].Code)
		require.Equal(t, "Percentage", b.Coupons[0].BenefitType)
		require.Equal(t, json.Number("20"), b.Coupons[0].BenefitValue)
		voucherID := b.Coupons[0].ID
		require.Equal(t, json.Number("80.00"), ann.send("GET", "/bff/payment/v0/payment/", "", false, false).basket(t).OrderTotal, "stored")

		got = ann.send("POST", "/bff/payment/v0/vouchers/", `{"code":"SAVE20"}`, false, false)
		require.Equal(t, http.StatusBadRequest, got.status)
		require.Equal(t, "You have already added coupon code 'SAVE20' to your basket.", got.basket(t).Messages[0].UserMessage)

		// A code that gives nothing off: a warning with a 200, and the
		// basket keeps no code.
		got = ann.send("POST", "/bff/payment/v0/vouchers/", fmt.Sprintf(`{"code":%q}`, other), false, false)
		require.Equal(t, http.StatusOK, got.status, string(got.body))
		b = got.basket(t)
		require.Equal(t, "warning", b.Messages[0].MessageType)
		require.Equal(t, "Basket does not qualify for coupon code ELSEWHERE.", b.Messages[0].UserMessage)
		require.Empty(t, b.Coupons)
		require.Equal(t, json.Number("100.00"), b.OrderTotal)

		// Remove: DELETE …/vouchers/{id}, no trailing slash.
		require.Equal(t, http.StatusOK, ann.send("POST", "/bff/payment/v0/vouchers/", `{"code":"SAVE20"}`, false, false).status)
		got = ann.send("DELETE", fmt.Sprintf("/bff/payment/v0/vouchers/%d", voucherID), "", false, false)
		require.Equal(t, http.StatusOK, got.status, string(got.body))
		b = got.basket(t)
		require.Equal(t, "Coupon code 'SAVE20' was removed from your basket.", b.Messages[0].UserMessage)
		require.Empty(t, b.Coupons)
		require.Equal(t, json.Number("100.00"), b.OrderTotal)
		got = ann.send("DELETE", fmt.Sprintf("/bff/payment/v0/vouchers/%d", voucherID), "", false, false)
		require.Equal(t, http.StatusBadRequest, got.status)
		require.Equal(t, fmt.Sprintf("No coupon found with id '%d'", voucherID), got.basket(t).Messages[0].UserMessage)

		// Quantity: only for an enrollment-code basket.
		got = ann.send("POST", "/bff/payment/v0/quantity/", `{"quantity":2}`, false, false)
		require.Equal(t, http.StatusBadRequest, got.status)
		require.Equal(t, id, *got.basket(t).BasketID)

		// Capture context: 400 {} without Stripe, both spellings.
		for _, p := range []string{"/bff/payment/v0/capture-context", "/bff/payment/v0/capture-context/"} {
			got = ann.send("GET", p, "", false, false)
			require.Equal(t, http.StatusBadRequest, got.status)
			require.JSONEq(t, `{}`, string(got.body))
		}

		// Checkout: another's basket is Otto's text 400; one's own is
		// frozen and its payment page answered.
		bob := e.openBasket("bob", pro)
		got = ann.send("POST", "/api/v2/checkout/", fmt.Sprintf(`{"basket_id":%d,"payment_processor":"sandbox"}`, bob), false, false)
		require.Equal(t, http.StatusBadRequest, got.status)
		require.Equal(t, fmt.Sprintf("Basket [%d] not found.", bob), string(got.body))
		got = ann.send("POST", "/api/v2/checkout/", fmt.Sprintf(`{"basket_id":%d,"payment_processor":"nope"}`, id), false, false)
		require.Equal(t, http.StatusBadRequest, got.status)
		got = ann.send("POST", "/api/v2/checkout/", fmt.Sprintf(`{"basket_id":%d,"payment_processor":"sandbox"}`, id), false, false)
		require.Equal(t, http.StatusOK, got.status, string(got.body))
		var co struct {
			Form      map[string]string `json:"payment_form_data"`
			PageURL   string            `json:"payment_page_url"`
			Processor string            `json:"payment_processor"`
		}
		require.NoError(t, json.Unmarshal(got.body, &co))
		require.Equal(t, "sandbox", co.Processor)
		require.NotEmpty(t, co.PageURL)
		require.Equal(t, "Frozen", e.basketStatus(id))
		// A Frozen basket is still the learner's; its code is fixed.
		got = ann.send("POST", "/bff/payment/v0/vouchers/", `{"code":"SAVE20"}`, false, false)
		require.Equal(t, http.StatusBadRequest, got.status)
		require.Equal(t, id, *got.basket(t).BasketID)
	})
}

func TestBFFQuantityAndFreeCheckout(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		bulk := e.skus["bulk no-id-professional"]
		require.NotEmpty(t, bulk)
		bo := e.mfe("bo")
		id := e.openBasket("bo", bulk)
		got := bo.send("POST", "/bff/payment/v0/quantity/", `{"quantity":3}`, false, false)
		require.Equal(t, http.StatusOK, got.status, string(got.body))
		b := got.basket(t)
		require.Equal(t, id, *b.BasketID)
		require.Equal(t, "Enrollment Code", b.Products[0].ProductType)
		require.False(t, b.ShowCouponForm)
		require.Equal(t, 3, *b.SummaryQuantity)
		require.Equal(t, json.Number("100.00"), b.SummaryPrice, "the unit price")
		require.Equal(t, json.Number("300.00"), *b.SummarySubtotal)
		require.Equal(t, json.Number("300.00"), b.OrderTotal)
		require.Equal(t, "quantity-update-success-message", b.Messages[0].Code)
		got = bo.send("POST", "/bff/payment/v0/quantity/", `{"quantity":0}`, false, false)
		require.Equal(t, http.StatusBadRequest, got.status)
		b = got.basket(t)
		require.Equal(t, "warning", b.Messages[0].MessageType)
		require.Equal(t, "error", b.Messages[1].MessageType)
		require.Equal(t, 3, *b.SummaryQuantity, "unchanged")

		// Free checkout: a browser link with the cookies.
		cy := e.mfe("cy")
		got = cy.send("GET", "/checkout/free-checkout/", "", false, false)
		require.Equal(t, http.StatusFound, got.status)
		require.Equal(t, "/basket/", got.header.Get("Location"), "no basket")
		e.openBasket("cy", e.skus["no-id-professional"])
		got = cy.send("GET", "/checkout/free-checkout/", "", false, false)
		require.Equal(t, http.StatusBadRequest, got.status, "not free")
		free := e.openBasket("cy", e.skus["audit"])
		require.True(t, cy.send("GET", "/bff/payment/v0/payment/", "", false, false).basket(t).IsFreeBasket)
		got = cy.send("GET", "/checkout/free-checkout/", "", false, false)
		require.Equal(t, http.StatusFound, got.status, string(got.body))
		loc, err := url.Parse(got.header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, "/checkout/receipt/", loc.Path)
		require.Equal(t, "1", loc.Query().Get("disable_back_button"))
		require.Equal(t, "Complete", e.order(loc.Query().Get("order_number")).Status)
		require.Equal(t, "Submitted", e.basketStatus(free))
		res, _ := e.Send(e.NewRequest("GET", "/checkout/free-checkout/", ""))
		require.Equal(t, http.StatusFound, res.StatusCode, "signed out: to sign in")
	})
}

func TestBFFStripe(t *testing.T) {
	t.Parallel()
	mock := stripemock.Start(t)
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{stripeBackend: mock})
			pro := e.skus["no-id-professional"]
			dee := e.mfe("dee")
			id := e.openBasket("dee", pro)
			require.True(t, dee.send("GET", "/bff/payment/v0/payment/", "", false, false).basket(t).EnableStripe)
			var key string
			for _, p := range []string{"/bff/payment/v0/capture-context", "/bff/payment/v0/capture-context/"} {
				got := dee.send("GET", p, "", false, false)
				require.Equal(t, http.StatusOK, got.status, string(got.body))
				var cc struct {
					CC struct {
						KeyID   string `json:"key_id"`
						OrderID string `json:"order_id"`
					} `json:"capture_context"`
				}
				require.NoError(t, json.Unmarshal(got.body, &cc))
				require.NotEmpty(t, cc.CC.KeyID)
				require.True(t, strings.HasSuffix(cc.CC.OrderID, fmt.Sprint(id+100000)), cc.CC.OrderID)
				key = cc.CC.KeyID
			}
			require.Equal(t, "Open", e.basketStatus(id), "the coupon form stays usable")
			intent, _, _ := strings.Cut(key, "_secret_")

			form := func(skus string) string {
				return url.Values{"payment_intent_id": {intent}, "skus": {skus}}.Encode()
			}
			got := dee.send("POST", "/payment/stripe/checkout/", form(pro), true, false)
			require.Equal(t, http.StatusBadRequest, got.status, "not paid yet")
			require.JSONEq(t, `{}`, string(got.body))
			got = dee.send("POST", "/payment/stripe/checkout/", form(pro+",OTHER"), true, false)
			require.Equal(t, http.StatusBadRequest, got.status)
			require.JSONEq(t, `{"sku_error":true}`, string(got.body))

			code, out := e.deliver("payment_intent.succeeded", intent, id, 10000, stripeWebhookSecret)
			require.Equal(t, http.StatusOK, code, out)
			got = dee.send("POST", "/payment/stripe/checkout/", form(pro), true, false)
			require.Equal(t, http.StatusCreated, got.status, string(got.body))
			var rc struct {
				URL string `json:"receipt_page_url"`
			}
			require.NoError(t, json.Unmarshal(got.body, &rc))
			require.Contains(t, rc.URL, "/checkout/receipt/?order_number="+out["order_number"].(string))
			// Another learner cannot read it.
			got = e.mfe("eve").send("POST", "/payment/stripe/checkout/", form(pro), true, false)
			require.Equal(t, http.StatusBadRequest, got.status)
		})
	}
}
