package admin

import (
	"net/http"
	"net/url"
	"strconv"

	"fulfill/internal/order"
	"fulfill/internal/payment"
	"fulfill/internal/refund"
)

type refundsPage struct {
	pageBase
	Status   string
	Statuses []refund.Status
	Refunds  []refundView
	Next     string
	First    string
	Error    string
	// Automatic are the payments the service gave back on its own (a
	// second payment, a seat already held…), newest first, on the first
	// page: they have no refund request, only a ledger row.
	Automatic []payment.Payment
}

// handleRefunds lists refunds newest first, by status, with keyset paging
// (index refunds (status, id), or the primary key).
func handleRefunds(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := refundsPage{pageBase: a.base(r, "Refunds", "refunds"), Status: q.Get("status"), Statuses: refund.Statuses()}
		st := refund.Status(p.Status)
		if st != "" && !st.Valid() {
			p.Error = "unknown status " + strconv.Quote(p.Status)
			a.renderStatus(w, r, http.StatusUnprocessableEntity, "refunds", &p)
			return
		}
		var after int64
		if c := q.Get("cursor"); c != "" {
			var err error
			if after, err = strconv.ParseInt(c, 10, 64); err != nil || after <= 0 {
				p.Error = "bad cursor"
				a.renderStatus(w, r, http.StatusUnprocessableEntity, "refunds", &p)
				return
			}
			p.First = Prefix + "refunds/?" + url.Values{"status": {p.Status}}.Encode()
		}
		rs, err := a.Store.ListRefunds(r.Context(), st, 0, after, a.PageSize)
		if err != nil {
			a.serverError(w, r, "list refunds", err)
			return
		}
		p.Refunds = viewRefunds(order.Order{}, rs, p.CSRF, p.Self)
		if after == 0 {
			if p.Automatic, err = a.Store.ListPayments(r.Context(), payment.StateRefunded, 0, 20); err != nil {
				a.serverError(w, r, "list automatic refunds", err)
				return
			}
		}
		if len(rs) == a.PageSize {
			p.Next = Prefix + "refunds/?" + url.Values{"status": {p.Status}, "cursor": {strconv.FormatInt(rs[len(rs)-1].ID, 10)}}.Encode()
		}
		a.render(w, r, "refunds", &p)
	})
}
