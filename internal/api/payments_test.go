package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/lease"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/money"
	"fulfill/internal/payment"
	"fulfill/internal/sqlstore/sqlstoretest"
)

type paidBasket struct {
	ID          int64 `json:"id"`
	Order       any   `json:"order"`
	PaymentData struct {
		ProcessorName string            `json:"payment_processor_name"`
		FormData      map[string]string `json:"payment_form_data"`
		PageURL       string            `json:"payment_page_url"`
	} `json:"payment_data"`
}

// startPaid puts paid SKUs in a frozen basket paid through the sandbox.
func (e *env) startPaid(user string, skus ...string) paidBasket {
	e.t.Helper()
	products := []map[string]string{}
	for _, s := range skus {
		products = append(products, map[string]string{"sku": s})
	}
	var b paidBasket
	e.do("POST", "/api/v2/baskets/", e.token(user, false), map[string]any{"products": products, "checkout": true,
		"payment_processor_name": "sandbox"}, http.StatusOK, &b)
	return b
}

// notify posts a sandbox notification signed with key (nil: unsigned).
func (e *env) notify(n payment.SandboxNotification, key []byte) (int, map[string]any) {
	e.t.Helper()
	body, err := json.Marshal(n)
	require.NoError(e.t, err)
	req, err := http.NewRequest("POST", e.srv.URL+"/payment/sandbox/notify/", bytes.NewReader(body))
	require.NoError(e.t, err)
	if key != nil {
		req.Header.Set(payment.SignatureHeader, payment.Sign(key, body))
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

func (e *env) basketStatus(id int64) string {
	s, err := e.db.BasketStatus(context.Background(), id)
	require.NoError(e.t, err)
	return s
}

func TestPaidSandboxCheckout(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			key := []byte(sandboxSecret)
			b := e.startPaid("ann", e.skus["no-id-professional"])
			require.Nil(t, b.Order)
			require.Equal(t, "sandbox", b.PaymentData.ProcessorName)
			require.Equal(t, "100.00", b.PaymentData.FormData["amount"])
			require.Equal(t, fmt.Sprintf("%s/payment/sandbox/pay/?basket_id=%d", e.srv.URL, b.ID), b.PaymentData.PageURL)
			require.Equal(t, "Frozen", e.basketStatus(b.ID))

			// The hosted page shows the basket, to its owner.
			req, err := http.NewRequest("GET", b.PaymentData.PageURL, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "JWT "+e.token("ann", false))
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			page, _ := io.ReadAll(res.Body)
			res.Body.Close()
			require.Contains(t, string(page), "100.00 USD")

			good := payment.SandboxNotification{BasketID: b.ID, Reference: "txn-1", Amount: "100.00", Currency: "USD", Decision: payment.Accept}
			// Forged and unsigned notifications change nothing; money taken
			// for the wrong amount places nothing and is given back.
			code, _ := e.notify(good, nil)
			require.Equal(t, http.StatusForbidden, code)
			code, _ = e.notify(good, []byte("not the secret"))
			require.Equal(t, http.StatusForbidden, code)
			cheap := good
			cheap.Reference, cheap.Amount = "txn-cheap", "1.00"
			code, out := e.notify(cheap, key)
			require.Equal(t, http.StatusOK, code, "never a 4xx for money taken")
			require.Equal(t, "refunded", out["status"])
			otherCur := good
			otherCur.Reference, otherCur.Currency = "txn-eur", "EUR"
			code, out = e.notify(otherCur, key)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "refunded", out["status"])
			require.Equal(t, "Frozen", e.basketStatus(b.ID))
			require.Empty(t, e.lms.Requests())
			require.Equal(t, []string{"1.00 USD", "100.00 EUR"}, e.sandbox.Credits(), "both given back")

			code, out = e.notify(good, key)
			require.Equal(t, http.StatusOK, code, out)
			require.Equal(t, "Complete", out["order_status"])
			number := out["order_number"].(string)
			require.Equal(t, fmt.Sprintf("EDX-%d", b.ID+100000), number, "one basket, one order, same numbering")
			en, ok := e.lms.Enrollment("ann", course)
			require.True(t, ok)
			require.Equal(t, "no-id-professional", en.Mode)
			require.Equal(t, "Submitted", e.basketStatus(b.ID))

			// A replay, and a second notification for the same basket, place nothing twice.
			code, out = e.notify(good, key)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, true, out["replayed"])
			require.Equal(t, number, out["order_number"])
			again := good
			again.Reference = "txn-2"
			code, out = e.notify(again, key)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, number, out["order_number"])
			require.Equal(t, "refunded", out["status"], "a second payment of a placed basket goes back")
			require.Len(t, e.lms.Requests(), 1)
			var list struct{ Results []orderOut }
			e.do("GET", "/api/v2/orders/", e.token("ann", false), nil, http.StatusOK, &list)
			require.Len(t, list.Results, 1)
			o := e.order(number)
			require.Equal(t, "100.00", o.TotalExclTax)
			evs, err := e.db.PaymentEvents(context.Background(), orderID(t, e, number))
			require.NoError(t, err)
			require.Len(t, evs, 2)
			require.Equal(t, "Paid", evs[0].Type)
			require.Equal(t, "txn-1", evs[0].Reference)
			require.Equal(t, money.Amount{Minor: 10000, Currency: "USD"}, evs[0].Amount)
			require.Equal(t, "Refunded", evs[1].Type, "the second payment's refund shows on the order")

			// Declined: no order, the basket thaws.
			d := e.startPaid("bob", e.skus["no-id-professional"])
			code, out = e.notify(payment.SandboxNotification{BasketID: d.ID, Reference: "txn-d", Amount: "100.00", Currency: "USD", Decision: payment.Decline}, key)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "declined", out["status"])
			require.Equal(t, "Open", e.basketStatus(d.ID))
			e.do("GET", "/api/v2/orders/", e.token("bob", false), nil, http.StatusOK, &list)
			require.Empty(t, list.Results)

			// No processor named: the default one (the first enabled) is
			// used, as the LMS sends payment_processor_name null. An unknown
			// one: a clear 400.
			var def basketAnswer
			e.do("POST", "/api/v2/baskets/", e.token("cat", false), map[string]any{"products": []map[string]string{{"sku": e.skus["no-id-professional"]}},
				"checkout": true, "payment_processor_name": nil}, http.StatusOK, &def)
			require.Equal(t, "sandbox", def.PaymentData.(map[string]any)["payment_processor_name"])
			e.do("POST", "/api/v2/baskets/", e.token("cat", false), map[string]any{"products": []map[string]string{{"sku": e.skus["no-id-professional"]}},
				"checkout": true, "payment_processor_name": "paypal"}, http.StatusBadRequest, nil)
			code, out = e.notify(payment.SandboxNotification{BasketID: 999999, Reference: "txn-x", Amount: "1.00", Currency: "USD", Decision: payment.Accept}, key)
			require.Equal(t, http.StatusOK, code, "money taken for no basket is given back, not refused")
			require.Equal(t, "refunded", out["status"])
		})
	}
}

func orderID(t testing.TB, e *env, number string) int64 {
	o, err := e.db.GetOrder(context.Background(), number)
	require.NoError(t, err)
	return o.ID
}

func TestSandboxPageAccept(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqlstoretest.Engines(t)[0], envOpts{})
	b := e.startPaid("ann", e.skus["no-id-professional"])
	pay := func(token string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("POST", e.srv.URL+"/payment/sandbox/pay/", strings.NewReader(url.Values{"basket_id": {fmt.Sprint(b.ID)},
			"decision": {"accept"}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if token != "" {
			req.Header.Set("Authorization", "JWT "+token)
		}
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res
	}
	// Nobody but the basket's owner may pay it on the hosted page.
	require.Equal(t, http.StatusUnauthorized, pay("").StatusCode)
	require.Equal(t, http.StatusNotFound, pay(e.token("mallory", false)).StatusCode)
	require.Empty(t, e.ordersOf("ann"))
	// The owner pays and lands on the receipt.
	res := pay(e.token("ann", false))
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, fmt.Sprintf("/checkout/receipt/?order_number=EDX-%d", b.ID+100000), res.Header.Get("Location"))
	o := e.order(fmt.Sprintf("EDX-%d", b.ID+100000))
	require.Equal(t, "Complete", o.Status)
}

func TestReconcileChargedButNoOrder(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			b := e.startPaid("ann", e.skus["no-id-professional"])
			// The process died after recording the payment and before placing
			// the order: only the notification exists.
			n := payment.Notification{Processor: "sandbox", Reference: "txn-crash", BasketID: b.ID, Amount: money.Amount{Minor: 10000, Currency: "USD"},
				Decision: payment.Accept, Raw: []byte("{}")}
			n.EventID = "txn-crash:accept"
			_, dup, err := e.db.RecordNotification(context.Background(), n, lease.Lease{Owner: "died", Until: time.Now().Add(-time.Second)})
			require.NoError(t, err)
			require.False(t, dup)
			co := e.App.Checkout
			placed, err := co.Reconcile(context.Background())
			require.NoError(t, err)
			require.Equal(t, 1, placed)
			o := e.order(fmt.Sprintf("EDX-%d", b.ID+100000))
			require.Equal(t, "Complete", o.Status)
			placed, err = co.Reconcile(context.Background())
			require.NoError(t, err)
			require.Zero(t, placed, "nothing left to reconcile")
		})
	}
}

type refundOut struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Total  string `json:"total_credit_excl_tax"`
	Lines  []struct {
		OrderLineID int64  `json:"order_line_id"`
		Status      string `json:"status"`
	} `json:"lines"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

// paidOrder buys the SKUs through the sandbox and returns the order number.
func (e *env) paidOrder(user string, skus ...string) string {
	e.t.Helper()
	b := e.startPaid(user, skus...)
	total := int64(0)
	for range skus {
		total += 10000
	}
	code, out := e.notify(payment.SandboxNotification{BasketID: b.ID, Reference: fmt.Sprintf("txn-%s-%d", user, b.ID),
		Amount: money.Format(total, "USD"), Currency: "USD", Decision: payment.Accept}, []byte(sandboxSecret))
	require.Equal(e.t, http.StatusOK, code, out)
	require.Equal(e.t, "Complete", out["order_status"])
	return out["order_number"].(string)
}

func (e *env) credits(number string) []string {
	evs, err := e.db.PaymentEvents(context.Background(), orderID(e.t, e, number))
	require.NoError(e.t, err)
	var out []string
	for _, ev := range evs {
		if ev.Type == "Refunded" {
			out = append(out, ev.Amount.String())
		}
	}
	return out
}

func TestRefunds(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine)+"/full refund by course", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			number := e.paidOrder("ann", e.skus["no-id-professional"])
			var ids []int64
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]string{"username": "ann", "course_id": course}, http.StatusCreated, &ids)
			require.Len(t, ids, 1)
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]string{"username": "ann", "course_id": course}, http.StatusOK, &ids)
			require.Empty(t, ids, "a line with a refund is never refunded again")
			var r refundOut
			e.do("GET", "/api/v2/refunds/?status=Open", e.staff, nil, http.StatusOK, &struct{ Results []refundOut }{})
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", refundIDOf(t, e, number)), e.staff, map[string]string{"action": "approve"}, http.StatusOK, &r)
			require.Equal(t, "Complete", r.Status)
			require.Equal(t, "100.00", r.Total)
			require.Equal(t, []string{"100.00"}, e.credits(number))
			en, ok := e.lms.Enrollment("ann", course)
			require.True(t, ok)
			require.False(t, en.IsActive, "the learner is unenrolled")
			o := e.order(number)
			require.Equal(t, "Complete", o.Status, "a refund does not change the order status")
			// Approving again does nothing more.
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", r.ID), e.staff, map[string]string{"action": "approve"}, http.StatusOK, &r)
			require.Equal(t, []string{"100.00"}, e.credits(number))
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", r.ID), e.staff, map[string]string{"action": "deny"}, http.StatusConflict, nil)
		})
		t.Run(string(engine)+"/per line", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			number := e.paidOrder("ann", e.skus["no-id-professional"], e.skus["course2 no-id-professional"])
			o := e.order(number)
			var ids []int64
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{"order_number": number, "line_ids": []int64{o.Lines[1].ID}}, http.StatusCreated, &ids)
			var r refundOut
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "approve"}, http.StatusOK, &r)
			require.Len(t, r.Lines, 1)
			require.Equal(t, []string{"100.00"}, e.credits(number))
			en1, _ := e.lms.Enrollment("ann", course)
			en2, _ := e.lms.Enrollment("ann", course2)
			require.True(t, en1.IsActive)
			require.False(t, en2.IsActive)
			var raw map[string]any
			e.do("GET", "/api/v2/orders/"+number+"/", e.staff, nil, http.StatusOK, &raw)
			lines := raw["lines"].([]any)
			require.Nil(t, lines[0].(map[string]any)["refund_status"])
			require.Equal(t, "Complete", lines[1].(map[string]any)["refund_status"])
		})
		t.Run(string(engine)+"/revocation fails then heals", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{worker: true, policy: fastPolicy()})
			number := e.paidOrder("ann", e.skus["no-id-professional"])
			var ids []int64
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{"order_number": number}, http.StatusCreated, &ids)
			e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: 503})
			var r refundOut
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "approve"}, http.StatusInternalServerError, &r)
			require.Equal(t, "Revocation Error", r.Status)
			require.NotNil(t, r.NextAttemptAt, "scheduled for a retry")
			e.lms.SetFaults(lmstest.Faults{})
			eventually(t, 10*time.Second, func() bool {
				e.do("GET", fmt.Sprintf("/api/v2/refunds/%d/", ids[0]), e.staff, nil, http.StatusOK, &r)
				return r.Status == "Complete"
			}, "the queue completes the refund")
			require.Equal(t, []string{"100.00"}, e.credits(number), "the credit is not issued twice")
			en, _ := e.lms.Enrollment("ann", course)
			require.False(t, en.IsActive)
		})
		t.Run(string(engine)+"/credit fails then retried by hand", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			number := e.paidOrder("ann", e.skus["no-id-professional"])
			var ids []int64
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{"order_number": number}, http.StatusCreated, &ids)
			e.sandbox.FailCredits(errors.New("gateway unavailable"))
			var r refundOut
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "approve"}, http.StatusInternalServerError, &r)
			require.Equal(t, "Payment Refund Error", r.Status)
			require.Empty(t, e.credits(number))
			en, _ := e.lms.Enrollment("ann", course)
			require.True(t, en.IsActive, "no revocation before the credit")
			e.sandbox.FailCredits(nil)
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "approve"}, http.StatusOK, &r)
			require.Equal(t, "Complete", r.Status)
			require.Equal(t, []string{"100.00"}, e.credits(number))
		})
		t.Run(string(engine)+"/deny, payment only, free", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			number := e.paidOrder("ann", e.skus["no-id-professional"])
			var ids []int64
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{"order_number": number}, http.StatusCreated, &ids)
			var r refundOut
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "deny"}, http.StatusOK, &r)
			require.Equal(t, "Denied", r.Status)
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "approve"}, http.StatusConflict, nil)
			// A denied refund does not block a new one.
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{"order_number": number}, http.StatusCreated, &ids)
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "approve_payment_only"}, http.StatusOK, &r)
			require.Equal(t, "Complete", r.Status)
			require.Equal(t, []string{"100.00"}, e.credits(number))
			en, _ := e.lms.Enrollment("ann", course)
			require.True(t, en.IsActive, "approve_payment_only leaves the enrollment")

			// A $0 refund completes at once, with no credit and no LMS call (Otto).
			free := e.buy("bob", e.skus["verified"])
			posts := len(e.lms.Requests())
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{"username": "bob", "course_id": course}, http.StatusCreated, &ids)
			e.do("GET", fmt.Sprintf("/api/v2/refunds/%d/", ids[0]), e.staff, nil, http.StatusOK, &r)
			require.Equal(t, "Complete", r.Status)
			require.Len(t, e.lms.Requests(), posts)
			require.Empty(t, e.credits(free.Order.Number))

			// Bad requests.
			e.do("POST", "/api/v2/refunds/", e.token("ann", false), map[string]any{"order_number": number}, http.StatusForbidden, nil)
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{}, http.StatusBadRequest, nil)
			e.do("PUT", "/api/v2/refunds/999999/process/", e.staff, map[string]string{"action": "approve"}, http.StatusNotFound, nil)
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "refund"}, http.StatusBadRequest, nil)
			e.do("GET", "/api/v2/refunds/?status=Gone", e.staff, nil, http.StatusBadRequest, nil)
		})
		t.Run(string(engine)+"/concurrent creation refunds a line once", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			number := e.paidOrder("ann", e.skus["no-id-professional"])
			var wg sync.WaitGroup
			codes := make(chan int, 10)
			for range 10 {
				wg.Go(func() {
					req, _ := http.NewRequest("POST", e.srv.URL+"/api/v2/refunds/", bytes.NewBufferString(`{"order_number":"`+number+`"}`))
					req.Header.Set("Authorization", "JWT "+e.staff)
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						codes <- 0
						return
					}
					res.Body.Close()
					codes <- res.StatusCode
				})
			}
			wg.Wait()
			close(codes)
			created := 0
			for c := range codes {
				require.Contains(t, []int{http.StatusOK, http.StatusCreated}, c)
				if c == http.StatusCreated {
					created++
				}
			}
			require.Equal(t, 1, created)
		})
	}
}

func fastPolicy() fulfillmentPolicy {
	return fulfillmentPolicy{Base: 20 * time.Millisecond, Cap: 100 * time.Millisecond, Attempts: 1000}
}

func refundIDOf(t *testing.T, e *env, number string) int64 {
	rs, err := e.db.ListRefunds(context.Background(), "", orderID(t, e, number), 0, 10)
	require.NoError(t, err)
	require.NotEmpty(t, rs)
	return rs[0].ID
}
