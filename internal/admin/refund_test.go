package admin_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// The dashboard URLs the LMS links to: the orders list
// (get_order_dashboard_url), an order, and a refund (the support ticket
// of a failed automatic approval).
func TestOttoDashboardURLs(t *testing.T) {
	forEngine(t, envOpts{}, func(t *testing.T, e *env) {
		b := e.browser(e.staff)
		paid := e.buyPaid("ann", e.skus["no-id-professional"], "100.00")
		var ids []int64
		e.api("POST", "/api/v2/refunds/", e.staff, map[string]any{"order_number": paid}, http.StatusCreated, &ids)
		require.Len(t, ids, 1)
		id := itoa(ids[0])

		p := b.get("/dashboard/orders/")
		require.Equal(t, http.StatusOK, p.status)
		require.Contains(t, p.text(), paid)
		require.Equal(t, http.StatusOK, b.get("/dashboard/orders/"+paid+"/").status)

		// The refunds list links each refund to its page.
		p = b.get("/dashboard/refunds/")
		require.Contains(t, p.body, `href="/dashboard/refunds/`+id+`/"`)

		p = b.get("/dashboard/refunds/" + id + "/")
		require.Equal(t, http.StatusOK, p.status)
		require.Contains(t, p.text(), "Refund #"+id)
		require.Contains(t, p.text(), "100.00 USD")
		require.Contains(t, p.body, `href="/dashboard/orders/`+paid+`/"`)
		require.Contains(t, p.body, `<code>`+e.skus["no-id-professional"]+`</code>`, "its lines, with their SKU")
		require.Contains(t, p.body, `data-action="approve"`)
		require.Contains(t, p.body, `data-action="deny"`)

		// Its actions come back to it.
		p = b.post("/dashboard/refunds/"+id+"/process", b.form("action", "approve", "back", "/dashboard/refunds/"+id+"/"))
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "/dashboard/refunds/"+id+"/", p.header.Get("Location"))
		p = b.get("/dashboard/refunds/" + id + "/")
		require.Contains(t, p.text(), "approved: Complete")
		require.NotContains(t, p.body, `data-action="approve"`)
		require.Contains(t, p.text(), "Nothing left to do")

		require.Equal(t, http.StatusNotFound, b.get("/dashboard/refunds/999999/").status)
		require.Equal(t, http.StatusNotFound, b.get("/dashboard/refunds/x/").status)
		// Staff only, as every dashboard page.
		p = e.browser(e.token("ann", false)).get("/dashboard/refunds/" + id + "/")
		require.NotEqual(t, http.StatusOK, p.status)
	})
}
