package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"fulfill/internal/fulfillment"
	"fulfill/internal/order"
)

// handleRetry retries one order, from its page or its row in the list.
func handleRetry(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		number := r.PathValue("number")
		actor := sessionFrom(r.Context()).User.Username
		res := a.Fulfill.ResubmitMany(r.Context(), []string{number}, actor, 1)[0]
		a.Log.Info("dashboard: retry", "order", number, "actor", actor, "status", res.Order.Status, "error", res.Err)
		var f Flash
		switch {
		case res.Complete():
			f = Flash{Kind: "ok", Message: fmt.Sprintf("Order %s retried: Complete.", number)}
		case errors.Is(res.Err, order.ErrNotFound):
			f = Flash{Kind: "error", Message: fmt.Sprintf("There is no order %s.", number)}
		case errors.Is(res.Err, order.ErrNotFulfillable):
			f = Flash{Kind: "info", Message: fmt.Sprintf("Order %s is %s: there is nothing to retry.", number, res.Order.Status)}
		default:
			f = a.flashError(r, fmt.Sprintf("Order %s retried", number), res.Err)
		}
		a.finish(w, r, http.StatusOK, f, back(r, orderURL(number)))
	})
}

// handleRetryMany retries the selected orders (scope=selected, the number
// fields) or every order matching the filter (scope=all, the filter
// fields; Fulfillment Error orders when no status is chosen), at most
// MaxBulk, RetryConcurrency at a time.
func handleRetryMany(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Unreadable form."}, back(r, Prefix))
			return
		}
		ctx := r.Context()
		actor := sessionFrom(ctx).User.Username
		var numbers []string
		truncated := false
		switch scope := r.PostForm.Get("scope"); scope {
		case "", "selected":
			numbers = r.PostForm["number"]
			if len(numbers) == 0 {
				a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Select at least one order to retry."}, back(r, Prefix))
				return
			}
			if len(numbers) > a.MaxBulk {
				numbers, truncated = numbers[:a.MaxBulk], true
			}
		case "all":
			f, _, err := parseFilter(r.PostForm)
			if err != nil {
				a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: err.Error()}, back(r, Prefix))
				return
			}
			numbers, truncated, err = a.Fulfill.Matching(ctx, f, a.MaxBulk)
			if errors.Is(err, order.ErrNotFulfillable) {
				a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: capitalize(strings.TrimPrefix(err.Error(), order.ErrNotFulfillable.Error()+": ")) + "."}, back(r, Prefix))
				return
			}
			if err != nil {
				a.serverError(w, r, "list orders to retry", err)
				return
			}
		default:
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Unknown scope " + scope + "."}, back(r, Prefix))
			return
		}
		results := a.Fulfill.ResubmitMany(ctx, numbers, actor, a.RetryConcurrency)
		a.Log.Info("dashboard: bulk retry", "actor", actor, "orders", len(numbers))
		a.finish(w, r, http.StatusOK, summarize(results, truncated, a.MaxBulk), back(r, Prefix))
	})
}

func summarize(rs []fulfillment.Resubmission, truncated bool, max int) Flash {
	var complete, failed, skipped int
	var items []string
	for _, r := range rs {
		switch {
		case r.Complete():
			complete++
		case r.Skipped():
			skipped++
		default:
			failed++
			if len(items) < 20 {
				items = append(items, fmt.Sprintf("%s: %v", r.Number, r.Err))
			}
		}
	}
	f := Flash{Kind: "ok", Items: items}
	if failed > 0 {
		f.Kind = "error"
	}
	f.Message = fmt.Sprintf("Retried %d orders: %d Complete, %d still failing, %d not retryable.", complete+failed, complete, failed, skipped)
	if len(rs) == 0 {
		f.Kind, f.Message = "info", "No order matches: nothing to retry."
	}
	if truncated {
		f.Message += fmt.Sprintf(" Only the first %d were retried; retry again for the rest.", max)
	}
	return f
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
