package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"fulfill/internal/apperr"
	"fulfill/internal/refund"
)

// handleRefundCreate creates a refund for the selected lines of an order
// (fields "line"). It is left Open for approval, except a $0 refund, which
// completes at once.
func handleRefundCreate(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		number := r.PathValue("number")
		to := back(r, orderURL(number))
		if a.Refunds == nil {
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Refunds are not enabled on this service."}, to)
			return
		}
		if err := r.ParseForm(); err != nil {
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Unreadable form."}, to)
			return
		}
		var ids []int64
		for _, s := range r.PostForm["line"] {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil || id <= 0 {
				a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: fmt.Sprintf("%q is not a line id.", s)}, to)
				return
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Select at least one line to refund."}, to)
			return
		}
		actor := sessionFrom(r.Context()).User.Username
		created, err := a.Refunds.Create(r.Context(), refund.Selection{OrderNumber: number, LineIDs: ids}, actor)
		var f Flash
		switch {
		case err != nil && apperr.CodeOf(err) != "":
			a.finish(w, r, http.StatusUnprocessableEntity, a.flashError(r, "No refund created", err), to)
			return
		case err != nil:
			f = a.flashError(r, "No refund created", err)
		case len(created) == 0:
			f = Flash{Kind: "info", Message: "Nothing to refund: the selected lines are neither delivered nor failed, are being retried right now, or are refunded already."}
		default:
			s := make([]string, len(created))
			for i, id := range created {
				s[i] = "#" + strconv.FormatInt(id, 10)
			}
			a.Log.Info("dashboard: refund created", "order", number, "refunds", created, "actor", actor)
			f = Flash{Kind: "ok", Message: fmt.Sprintf("Refund %s created for order %s. Approve or deny it below.", strings.Join(s, ", "), number)}
		}
		a.finish(w, r, http.StatusOK, f, to)
	})
}
