package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"fulfill/internal/refund"
)

func done(a refund.Action) string {
	switch a {
	case refund.ActionApprovePaymentOnly:
		return "approved (credit only)"
	case refund.ActionDeny:
		return "denied"
	}
	return "approved"
}

// handleRefundProcess approves (credit, then revoke the lines), approves
// the credit only, or denies a refund.
func handleRefundProcess(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := back(r, Prefix+"refunds/")
		if a.Refunds == nil {
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Refunds are not enabled on this service."}, to)
			return
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Bad refund id."}, to)
			return
		}
		action := refund.Action(r.PostFormValue("action"))
		if !action.Valid() {
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error",
				Message: "Choose Approve, Approve credit only or Deny."}, to)
			return
		}
		actor := sessionFrom(r.Context()).User.Username
		rf, err := a.Refunds.Process(r.Context(), id, action, actor)
		var f Flash
		switch {
		case errors.Is(err, refund.ErrNotFound):
			f = Flash{Kind: "error", Message: fmt.Sprintf("There is no refund #%d.", id)}
		case err != nil:
			f = a.flashError(r, fmt.Sprintf("Refund #%d not %s", id, done(action)), err)
		case rf.Status == refund.StatusComplete || rf.Status == refund.StatusDenied:
			a.Log.Info("dashboard: refund processed", "refund", id, "action", action, "actor", actor, "status", rf.Status)
			f = Flash{Kind: "ok", Message: fmt.Sprintf("Refund #%d %s: %s.", id, done(action), rf.Status)}
		default:
			f = Flash{Kind: "error", Message: fmt.Sprintf("Refund #%d is %s: %s. It will be retried by the queue.", id, rf.Status, rf.LastError)}
		}
		a.finish(w, r, http.StatusOK, f, to)
	})
}
