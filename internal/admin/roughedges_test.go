package admin_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRefundFailedLine: a paid line that failed can be refunded from the
// order page. The credit is issued, the line is not revoked (it was never
// delivered: no LMS call), it keeps its status, shows its refund and is
// retried no more; a denied refund flags it for a person again.
func TestRefundFailedLine(t *testing.T) {
	forEngine(t, envOpts{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.browser(e.staff)
		e.fail(http.StatusBadRequest) // permanent: needs attention
		stuck := e.buyPaid("ann", e.skus["no-id-professional"], "100.00")
		e.fail(http.StatusServiceUnavailable) // transient: a retry is scheduled
		retrying := e.buyPaid("bob", e.skus["course2 no-id-professional"], "100.00")
		e.heal()
		for _, n := range []string{stuck, retrying} {
			st := e.order(n)
			require.Equal(t, "Fulfillment Error", st.Status, n)
			p := b.get("/dashboard/orders/" + n + "/")
			require.Contains(t, p.body, `name="line" value="`+itoa(st.LineID)+`"`, "the failed line is offered for a refund")
			require.Contains(t, p.body, `id="create-refund"`)
		}
		o, err := e.db.GetOrder(ctx, retrying)
		require.NoError(t, err)
		require.NotNil(t, o.Lines[0].NextAttemptAt, "scheduled before the refund")

		posts := e.lms.Stats().Posts
		for _, n := range []string{stuck, retrying} {
			st := e.order(n)
			p := b.post("/dashboard/orders/"+n+"/refunds", b.form("line", itoa(st.LineID), "back", "/dashboard/orders/"+n+"/"))
			require.Equal(t, http.StatusSeeOther, p.status, p.body)
			require.Contains(t, b.get("/dashboard/orders/"+n+"/").text(), "created for order "+n)
			st = e.order(n)
			require.Equal(t, "Open", st.RefundStatus, n)
			require.Equal(t, "Fulfillment Error", st.Status, "the order stays where it is")
			require.False(t, st.NeedsAttention, "%s: the refund is the person's answer", n)
			o, err := e.db.GetOrder(ctx, n)
			require.NoError(t, err)
			require.Nil(t, o.Lines[0].NextAttemptAt, "%s: no retry is scheduled", n)
			require.Nil(t, o.NextAttemptAt, n)
		}

		// Approve both: credited, nothing revoked, the lines keep their status.
		rs, err := e.db.ListRefunds(ctx, "Open", 0, 0, 10)
		require.NoError(t, err)
		require.Len(t, rs, 2)
		for _, r := range rs {
			p := b.post("/dashboard/refunds/"+itoa(r.ID)+"/process", b.form("action", "approve", "back", "/dashboard/orders/"+r.OrderNumber+"/"))
			require.Equal(t, http.StatusSeeOther, p.status)
			require.Contains(t, b.get("/dashboard/orders/"+r.OrderNumber+"/").text(), "approved: Complete")
		}
		require.Equal(t, posts, e.lms.Stats().Posts, "a line never delivered is not revoked in the LMS")
		_, enrolled := e.lms.Enrollment("ann", course)
		require.False(t, enrolled)
		for _, n := range []string{stuck, retrying} {
			st := e.order(n)
			require.Equal(t, "Complete", st.RefundStatus, n)
			require.Equal(t, "Fulfillment Error", st.Status, n)
			require.NotEqual(t, "Complete", st.LineStatus, n)
			require.True(t, strings.HasPrefix(st.LineStatus, "Fulfillment "), st.LineStatus)
			o, err := e.db.GetOrder(ctx, n)
			require.NoError(t, err)
			events, err := e.db.PaymentEvents(ctx, o.ID)
			require.NoError(t, err)
			require.Len(t, events, 2, "%s: paid, then refunded", n)
			require.Equal(t, "Refunded", events[1].Type)
			require.EqualValues(t, 10000, events[1].Amount.Minor)

			p := b.get("/dashboard/orders/" + n + "/")
			require.NotContains(t, p.body, `id="retry"`, "nothing left to retry")
			require.NotContains(t, p.body, `id="mark-complete"`)
			require.NotContains(t, p.body, `name="line"`, "refunded once only")
			require.Contains(t, p.body, `data-refund-state="Refunded"`)
			require.Contains(t, p.text(), "retried no more")
		}

		// A retry by hand delivers nothing now.
		p := b.post("/dashboard/orders/"+stuck+"/retry", b.form())
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, posts, e.lms.Stats().Posts, "a refunded line is not delivered")
		require.Equal(t, "Complete", e.order(stuck).RefundStatus)

		// The orders list shows the refund next to the status.
		list := b.get("/dashboard/?status=Fulfillment+Error")
		require.Equal(t, []string{retrying, stuck}, list.rows())
		require.Regexp(t, `id="order-`+stuck+`"(?s:.*?)data-refund-state="Refunded"`, list.body)
		require.Equal(t, "0", b.get("/dashboard/").count("needs-attention"))

		// A denied refund of a failed line leaves it to a person again.
		e.fail(http.StatusBadRequest)
		denied := e.buyPaid("cat", e.skus["course2 no-id-professional"], "100.00")
		e.heal()
		require.Equal(t, http.StatusSeeOther, b.post("/dashboard/orders/"+denied+"/refunds", b.form("line", itoa(e.order(denied).LineID))).status)
		require.False(t, e.order(denied).NeedsAttention)
		rs, err = e.db.ListRefunds(ctx, "Open", 0, 0, 10)
		require.NoError(t, err)
		require.Len(t, rs, 1)
		require.Equal(t, http.StatusSeeOther, b.post("/dashboard/refunds/"+itoa(rs[0].ID)+"/process", b.form("action", "deny")).status)
		st := e.order(denied)
		require.Equal(t, "Denied", st.RefundStatus)
		require.True(t, st.NeedsAttention, "flagged again")
		p = b.get("/dashboard/orders/" + denied + "/")
		require.Contains(t, p.body, `id="retry"`)
		require.Contains(t, p.body, `name="line" value="`+itoa(st.LineID)+`"`, "may be refunded again")
		require.NotContains(t, p.body, `data-refund-state=`)
	})
}

// TestOrderPageNotesAndTimes: identical notes of a line show once with
// their count and first and last time; attempt times have seconds; a
// partly refunded order says so in the list.
func TestOrderPageNotesAndTimes(t *testing.T) {
	forEngine(t, envOpts{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.browser(e.staff)
		e.fail(http.StatusServiceUnavailable)
		n := e.buy("ann", e.skus["audit"], e.skus["course2 audit"])
		for range 3 {
			_, err := e.svc.Resubmit(ctx, n, "staff")
			require.NoError(t, err)
		}
		o, err := e.db.GetOrder(ctx, n)
		require.NoError(t, err)
		require.Len(t, o.Notes, 8, "two lines, four failed attempts each")

		p := b.get("/dashboard/orders/" + n + "/")
		notes := regexp.MustCompile(`(?s)<ul class="notes">.*?</ul>`).FindString(p.body)
		require.Equal(t, 2, strings.Count(notes, "<li"), "one note per line: %s", notes)
		require.Equal(t, 2, strings.Count(notes, `data-count="4"`))
		require.Equal(t, 2, strings.Count(notes, "× 4"))
		require.Regexp(t, `UTC</time> – <time `, notes, "the first and last time")
		attempts := regexp.MustCompile(`(?s)<table class="grid attempts".*?</table>`).FindString(p.body)
		require.Regexp(t, `data-precision="s">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>`, attempts, "attempts to the second")
		require.Regexp(t, `title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} UTC"`, attempts, "the exact time on hover")

		// Delivered, then one of the two lines refunded: partly refunded.
		e.heal()
		_, err = e.svc.Resubmit(ctx, n, "staff")
		require.NoError(t, err)
		require.Equal(t, "Complete", e.order(n).Status)
		require.NotContains(t, b.get("/dashboard/").body, `data-refund-state=`)
		o, err = e.db.GetOrder(ctx, n)
		require.NoError(t, err)
		require.Equal(t, http.StatusSeeOther, b.post("/dashboard/orders/"+n+"/refunds", b.form("line", itoa(o.Lines[1].ID))).status)
		require.Equal(t, "Complete", func() string { o, _ := e.db.GetOrder(ctx, n); return o.Lines[1].RefundStatus }(), "a $0 refund completes at once")
		list := b.get("/dashboard/")
		require.Contains(t, list.body, `data-refund-state="Partly refunded"`)
		require.Contains(t, b.get("/dashboard/orders/"+n+"/").body, `data-refund-state="Partly refunded"`)
	})
}
