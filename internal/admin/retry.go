package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"fulfill/internal/order"
)

// retryOutcome is what one resubmission did.
type retryOutcome struct {
	Number string
	Status order.Status
	Err    error
}

func (o retryOutcome) skipped() bool {
	return errors.Is(o.Err, order.ErrNotFulfillable) || errors.Is(o.Err, order.ErrNotFound)
}

func (o retryOutcome) complete() bool { return o.Err == nil && o.Status == order.StatusComplete }

// resubmit retries one order through the fulfillment service: every line
// not Complete is called again now, whatever its schedule.
func (a *app) resubmit(ctx context.Context, number, actor string) retryOutcome {
	o, err := a.Fulfill.Resubmit(ctx, number, a.owner(), actor)
	out := retryOutcome{Number: number, Status: o.Status, Err: err}
	if err == nil && o.Status != order.StatusComplete {
		out.Err = fmt.Errorf("still %s: %s", o.Status, o.LastError)
	}
	if err != nil && !out.skipped() {
		a.Log.Error("dashboard: retry fulfillment", "order", number, "actor", actor, "error", err)
	}
	return out
}

// handleRetry retries one order, from its page or its row in the list.
func handleRetry(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		number := r.PathValue("number")
		actor := sessionFrom(r.Context()).User.Username
		res := a.resubmit(r.Context(), number, actor)
		a.Log.Info("dashboard: retry", "order", number, "actor", actor, "status", res.Status, "error", res.Err)
		var f Flash
		switch {
		case res.complete():
			f = Flash{Kind: "ok", Message: fmt.Sprintf("Order %s retried: Complete.", number)}
		case errors.Is(res.Err, order.ErrNotFound):
			f = Flash{Kind: "error", Message: fmt.Sprintf("There is no order %s.", number)}
		case errors.Is(res.Err, order.ErrNotFulfillable):
			f = Flash{Kind: "info", Message: fmt.Sprintf("Order %s is %s: there is nothing to retry.", number, res.Status)}
		default:
			f = Flash{Kind: "error", Message: fmt.Sprintf("Order %s retried, %v", number, res.Err)}
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
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Unreadable form: " + err.Error()}, back(r, Prefix))
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
			if f.Status == "" {
				f.Status = order.StatusFulfillmentError
			}
			if !f.Status.Fulfillable() {
				a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error",
					Message: fmt.Sprintf("%s orders cannot be retried: only Open and Fulfillment Error orders can.", f.Status)}, back(r, Prefix))
				return
			}
			f.Limit = 1000
			for len(numbers) <= a.MaxBulk {
				page, err := a.Store.ListOrders(ctx, f)
				if err != nil {
					a.serverError(w, r, "list orders to retry", err)
					return
				}
				for _, o := range page {
					numbers = append(numbers, o.Number)
				}
				if len(page) < f.Limit {
					break
				}
				f.AfterID = page[len(page)-1].ID
			}
			if len(numbers) > a.MaxBulk {
				numbers, truncated = numbers[:a.MaxBulk], true
			}
		default:
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Unknown scope " + scope + "."}, back(r, Prefix))
			return
		}
		results := a.resubmitMany(ctx, numbers, actor)
		a.finish(w, r, http.StatusOK, summarize(results, truncated, a.MaxBulk), back(r, Prefix))
	})
}

// resubmitMany retries orders with at most RetryConcurrency at once.
func (a *app) resubmitMany(ctx context.Context, numbers []string, actor string) []retryOutcome {
	out := make([]retryOutcome, len(numbers))
	sem := make(chan struct{}, a.RetryConcurrency)
	var wg sync.WaitGroup
	for i, n := range numbers {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = a.resubmit(ctx, n, actor)
		})
	}
	wg.Wait()
	a.Log.Info("dashboard: bulk retry", "actor", actor, "orders", len(numbers))
	return out
}

func summarize(rs []retryOutcome, truncated bool, max int) Flash {
	var complete, failed, skipped int
	var items []string
	for _, r := range rs {
		switch {
		case r.complete():
			complete++
		case r.skipped():
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
