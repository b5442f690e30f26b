package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/payment"
	"fulfill/internal/sqlstore/sqlstoretest"
)

type paymentOut struct {
	ID          int64  `json:"id"`
	State       string `json:"state"`
	Cause       string `json:"cause"`
	OrderNumber string `json:"order_number"`
	Amount      string `json:"amount"`
}

func (e *env) payments(state string) []paymentOut {
	e.t.Helper()
	var out struct{ Results []paymentOut }
	e.do("GET", "/api/v2/payments/?state="+state, e.staff, nil, http.StatusOK, &out)
	return out.Results
}

func (e *env) ordersOf(user string) []orderOut {
	e.t.Helper()
	var list struct{ Results []orderOut }
	e.do("GET", "/api/v2/orders/", e.token(user, false), nil, http.StatusOK, &list)
	return list.Results
}

// TestDeclineThenAccept: a learner's card is declined, they retry it on the
// same payment and it goes through: one order (the success is its own
// event, not a duplicate of the failure).
func TestDeclineThenAccept(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			key := []byte(sandboxSecret)
			b := e.startPaid("ann", e.skus["no-id-professional"])
			n := payment.SandboxNotification{BasketID: b.ID, EventID: "evt-failed", Reference: "pi-1", Amount: "100.00", Currency: "USD",
				Decision: payment.Decline}
			code, out := e.notify(n, key)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "declined", out["status"])
			require.Equal(t, "Open", e.basketStatus(b.ID))
			n.EventID, n.Decision = "evt-succeeded", payment.Accept
			code, out = e.notify(n, key)
			require.Equal(t, http.StatusOK, code, out)
			require.Equal(t, "accepted", out["status"])
			require.Equal(t, "Complete", out["order_status"])
			code, out = e.notify(n, key)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, true, out["replayed"], "a redelivered event does nothing twice")
			require.Len(t, e.ordersOf("ann"), 1)
			require.Empty(t, e.sandbox.Credits())
			require.Empty(t, e.payments("attention"))
		})
	}
}

// TestConcurrentAcceptsOneOrder: 20 accepted payments of one basket with
// different references, at once: one order, 19 automatic refunds.
func TestConcurrentAcceptsOneOrder(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			key := []byte(sandboxSecret)
			b := e.startPaid("ann", e.skus["no-id-professional"])
			const n = 20
			statuses := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					code, out := e.notify(payment.SandboxNotification{BasketID: b.ID, Reference: fmt.Sprintf("txn-%d", i), Amount: "100.00",
						Currency: "USD", Decision: payment.Accept}, key)
					if code != http.StatusOK {
						statuses[i] = fmt.Sprintf("HTTP %d", code)
						return
					}
					statuses[i], _ = out["status"].(string)
				})
			}
			wg.Wait()
			count := map[string]int{}
			for _, s := range statuses {
				count[s]++
			}
			require.Equal(t, map[string]int{"accepted": 1, "refunded": n - 1}, count)
			require.Len(t, e.ordersOf("ann"), 1)
			require.Len(t, e.sandbox.Credits(), n-1)
			require.Len(t, e.payments("refunded"), n-1)
			require.Len(t, e.payments("placed"), 1)
			o := e.ordersOf("ann")[0]
			require.Len(t, e.credits(o.Number), n-1, "the refunds show on the order")
		})
	}
}

// TestTwoTabsOneSeat: the same seat in two baskets (two tabs), both paid:
// one order, the other payment refunded.
func TestTwoTabsOneSeat(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			key := []byte(sandboxSecret)
			b1 := e.startPaid("ann", e.skus["no-id-professional"])
			b2 := e.startPaid("ann", e.skus["no-id-professional"])
			var wg sync.WaitGroup
			outs := make([]map[string]any, 2)
			for i, b := range []paidBasket{b1, b2} {
				wg.Go(func() {
					_, outs[i] = e.notify(payment.SandboxNotification{BasketID: b.ID, Reference: fmt.Sprintf("tab-%d", i), Amount: "100.00",
						Currency: "USD", Decision: payment.Accept}, key)
				})
			}
			wg.Wait()
			got := []string{outs[0]["status"].(string), outs[1]["status"].(string)}
			require.ElementsMatch(t, []string{"accepted", "refunded"}, got)
			require.Len(t, e.ordersOf("ann"), 1)
			require.Equal(t, []string{"100.00 USD"}, e.sandbox.Credits())
			refunded := e.payments("refunded")
			require.Len(t, refunded, 1)
			require.Contains(t, refunded[0].Cause, "already holds")
			// Support finds it with the refunds.
			page := e.rtCall("GET", "/dashboard/refunds/", e.staff, nil, nil)
			require.Equal(t, http.StatusOK, page.Status)
			require.Contains(t, string(page.Body), fmt.Sprintf(`id="auto-refund-%d"`, refunded[0].ID), "the refunds page lists automatic refunds")
		})
	}
}

// TestFailedRefundNeedsAttention: when the automatic refund itself fails
// and keeps failing, the payment is shown to staff (API, dashboard,
// metric), and a person's one-click refund settles it.
func TestFailedRefundNeedsAttention(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			e.App.Checkout.PaymentTries = 1
			key := []byte(sandboxSecret)
			number := e.paidOrder("ann", e.skus["no-id-professional"])
			b := e.order(number)
			e.sandbox.FailCredits(errors.New("gateway down"))
			basketID := orderBasket(t, e, number)
			code, out := e.notify(payment.SandboxNotification{BasketID: basketID, Reference: "txn-again", Amount: "100.00", Currency: "USD",
				Decision: payment.Accept}, key)
			require.Equal(t, http.StatusOK, code, "never a 4xx for money taken")
			require.Equal(t, "refund_pending", out["status"])
			att := e.payments("attention")
			require.Len(t, att, 1)
			require.Contains(t, att[0].Cause, "second payment")
			require.Contains(t, att[0].Cause, "refund failed")
			require.Equal(t, b.Number, att[0].OrderNumber)
			require.Contains(t, e.rtMetrics(), "fulfill_payments_needing_attention 1")

			// The dashboard lists it with its cause and the actions.
			page := e.rtCall("GET", "/dashboard/payments/", e.staff, nil, nil)
			require.Equal(t, http.StatusOK, page.Status)
			require.Contains(t, string(page.Body), fmt.Sprintf(`id="payment-%d"`, att[0].ID))
			require.Contains(t, string(page.Body), `data-action="refund"`)

			// Healed, a person refunds it.
			e.sandbox.FailCredits(nil)
			var p paymentOut
			e.do("POST", fmt.Sprintf("/api/v2/payments/%d/refund/", att[0].ID), e.staff, nil, http.StatusOK, &p)
			require.Equal(t, "refunded", p.State)
			require.Empty(t, e.payments("attention"))
			require.Equal(t, []string{"100.00 USD"}, e.sandbox.Credits())
			e.do("POST", fmt.Sprintf("/api/v2/payments/%d/refund/", att[0].ID), e.staff, nil, http.StatusConflict, nil)
			e.do("GET", "/api/v2/payments/", e.token("ann", false), nil, http.StatusForbidden, nil)
			require.True(t, strings.HasPrefix(b.Number, "EDX-"))
		})
	}
}

func orderBasket(t *testing.T, e *env, number string) int64 {
	t.Helper()
	o, err := e.db.GetOrder(t.Context(), number)
	require.NoError(t, err)
	return o.BasketID
}
