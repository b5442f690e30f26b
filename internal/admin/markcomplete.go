package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"fulfill/internal/order"
)

// handleMarkComplete forces a Fulfillment Error order to Complete without
// calling any module (Otto's mark_orders_status_complete). The reason is
// mandatory: it is recorded with the staff member's name in the history.
func handleMarkComplete(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		number := r.PathValue("number")
		to := back(r, orderURL(number))
		reason := strings.TrimSpace(r.PostFormValue("reason"))
		if reason == "" {
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error",
				Message: "A reason is required to mark an order complete: say what was done outside this service."}, to)
			return
		}
		actor := sessionFrom(r.Context()).User.Username
		o, err := a.Store.MarkComplete(r.Context(), number, actor, reason)
		var f Flash
		switch {
		case err == nil:
			a.Log.Info("dashboard: marked complete", "order", number, "actor", actor, "reason", reason)
			f = Flash{Kind: "ok", Message: fmt.Sprintf("Order %s marked %s.", number, o.Status)}
		case errors.Is(err, order.ErrNotFound):
			f = Flash{Kind: "error", Message: fmt.Sprintf("There is no order %s.", number)}
		default:
			f = a.flashError(r, "Not marked complete", err)
		}
		a.finish(w, r, http.StatusOK, f, to)
	})
}
