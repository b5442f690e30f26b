package storefront_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/lms/lmstest"
	"fulfill/internal/sqlstore"
)

const refresh = `<meta http-equiv="refresh" content="5">`

// buyPaid pays a basket of sku on the sandbox's hosted page as user and
// returns the order number.
func (e *env) buyPaid(user, sku string) string {
	e.t.Helper()
	id, _ := e.add(user, "sku="+sku)
	require.Equal(e.t, http.StatusSeeOther, e.checkout(user, id, "sandbox").Status)
	pay := e.send("POST", "/payment/sandbox/pay/", user, url.Values{"basket_id": {strconv.FormatInt(id, 10)}, "decision": {"accept"}})
	require.Equal(e.t, http.StatusSeeOther, pay.Status, pay.Body)
	return fmt.Sprintf("EDX-%d", id+100000)
}

// TestReceiptInPlainWords: the receipt says where an order is in a
// learner's words, never a status's wire name, and refreshes itself while
// the order is still on its way.
func TestReceiptInPlainWords(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		receipt := func(number string) page {
			t.Helper()
			p := e.get("/checkout/receipt/?order_number="+url.QueryEscape(number), "ann")
			require.Equal(t, http.StatusOK, p.Status)
			require.NotContains(t, p.Text, "Fulfillment", "no wire name reaches the learner")
			require.NotContains(t, p.Text, " is Complete.")
			return p
		}

		// Retried: not enrolled yet, and the page follows the retries.
		e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: http.StatusServiceUnavailable})
		retrying := e.buyFree("ann", e.skus["audit"])
		p := receipt(retrying)
		require.Contains(t, p.Body, `<strong id="order-status" class="status">Not complete yet</strong>`)
		require.Contains(t, p.Text, "We could not enroll you yet; we are retrying and support has been told.")
		require.Contains(t, p.Text, "Not enrolled yet; we are retrying")
		require.Contains(t, p.Body, refresh)
		require.Contains(t, p.Body, `href="`+e.lmsSrv.URL+`/dashboard"`)

		// Failed for good: support has been told; nothing to wait for.
		e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: http.StatusBadRequest})
		stuck := e.buyPaid("ann", e.skus["course2 no-id-professional"])
		p = receipt(stuck)
		require.Contains(t, p.Text, "our support team has been told and will fix it")
		require.Contains(t, p.Text, "Not enrolled yet; support has been told")
		require.NotContains(t, p.Body, refresh)
		require.Contains(t, p.Body, `role="alert"`)

		// Support refunds the line that could not be delivered.
		e.lms.SetFaults(lmstest.Faults{})
		var ids []int64
		e.app.Do("POST", "/api/v2/refunds/", e.app.Staff, map[string]any{"order_number": stuck}, http.StatusCreated, &ids)
		require.Len(t, ids, 1)
		e.app.Do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.app.Staff, map[string]string{"action": "approve"}, http.StatusOK, nil)
		p = receipt(stuck)
		require.Contains(t, p.Text, "so it was refunded to you")
		require.Regexp(t, `class="line-status tone-muted">Refunded<`, p.Body)
		require.NotContains(t, p.Body, refresh)

		// Delivered: enrolled, final.
		done := e.buyFree("ann", e.skus["course2 audit"])
		p = receipt(done)
		require.Contains(t, p.Body, `<strong id="order-status" class="status">Complete</strong>`)
		require.Contains(t, p.Text, "You are enrolled")
		require.Regexp(t, `class="line-status tone-ok">Enrolled<`, p.Body)
		require.NotContains(t, p.Body, refresh)

		// The retried order, once delivered, stops refreshing.
		_, err := e.app.App.Fulfill.Resubmit(t.Context(), retrying, "staff")
		require.NoError(t, err)
		p = receipt(retrying)
		require.Contains(t, p.Text, "Enrolled")
		require.NotContains(t, p.Body, refresh)
	})
}
