package admin

import (
	"errors"
	"net/http"
	"strconv"

	"fulfill/internal/order"
	"fulfill/internal/refund"
)

type refundPage struct {
	pageBase
	Refund refundView
	// OrderFound is false when the refund's order could not be read; the
	// lines then show without their SKU and title.
	OrderFound bool
}

// handleRefund shows one refund: its order, credit, lines and retry state,
// and the same actions as its row in the refunds list. The LMS links
// support here ({ECOMMERCE}/dashboard/refunds/{id}/) when an automatic
// approval failed.
func handleRefund(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			a.renderError(w, r, http.StatusNotFound, "Refund not found", "There is no refund "+r.PathValue("id")+".")
			return
		}
		rf, err := a.Store.GetRefund(ctx, id)
		if errors.Is(err, refund.ErrNotFound) {
			a.renderError(w, r, http.StatusNotFound, "Refund not found", "There is no refund #"+strconv.FormatInt(id, 10)+".")
			return
		}
		if err != nil {
			a.serverError(w, r, "read refund", err)
			return
		}
		p := refundPage{pageBase: a.base(r, "Refund #"+strconv.FormatInt(id, 10), "refunds")}
		o, err := a.Store.GetOrder(ctx, rf.OrderNumber)
		switch {
		case err == nil:
			p.OrderFound = true
		case errors.Is(err, order.ErrNotFound):
			o = order.Order{}
		default:
			a.serverError(w, r, "read the refund's order", err)
			return
		}
		p.Refund = viewRefunds(o, []refund.Refund{rf}, p.CSRF, p.Self)[0]
		a.render(w, r, "refund", &p)
	})
}
