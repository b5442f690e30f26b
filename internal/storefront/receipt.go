package storefront

import (
	"errors"
	"net/http"

	"fulfill/internal/money"
	"fulfill/internal/order"
)

type receiptView struct {
	page
	Number       string
	Status       string
	Placed       string
	PlacedISO    string
	Buyer        string
	Lines        []lineView
	Total        string
	DashboardURL string
	// Pending: not every line is delivered yet, but it will be retried.
	Pending bool
	// Failed: a line failed for good; support has to look at it.
	Failed bool
}

// handleReceipt is GET /checkout/receipt/?order_number=…: the order, its
// lines and status, and the way back to the LMS dashboard. Its owner and
// staff see it; anyone else gets a 404.
func handleReceipt(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := a.requireUser(w, r, r.URL.RequestURI())
		if !ok {
			return
		}
		number := r.URL.Query().Get("order_number")
		var o order.Order
		err := order.ErrNotFound
		if number != "" && len(number) <= 128 {
			o, err = a.d.Store.GetOrder(r.Context(), number)
		}
		if err == nil && o.User.Username != u.Username && !u.IsStaff {
			err = order.ErrNotFound
		}
		switch {
		case errors.Is(err, order.ErrNotFound):
			a.message(w, r, http.StatusNotFound, "Order not found", "There is no order of yours with this number.")
			return
		case err != nil:
			a.fail(w, r, err)
			return
		}
		v := &receiptView{page: page{Title: "Receipt for order " + o.Number, User: &u}, Number: o.Number, Status: string(o.Status),
			Placed: o.DatePlaced.UTC().Format("2 January 2006, 15:04 UTC"), PlacedISO: o.DatePlaced.UTC().Format("2006-01-02T15:04:05Z"),
			Buyer: o.User.Username, Total: money.Format(o.TotalMinor, o.Currency) + " " + o.Currency, DashboardURL: a.d.DashboardURL,
			Pending: o.Status == order.StatusOpen || (o.Status == order.StatusFulfillmentError && !o.NeedsAttention),
			Failed:  o.Status == order.StatusFulfillmentError && o.NeedsAttention}
		for _, l := range o.Lines {
			course := l.Attributes.String("course_key")
			status := string(l.Status)
			if l.RefundStatus != "" && l.RefundStatus != "Denied" {
				status += " (refund " + l.RefundStatus + ")"
			}
			v.Lines = append(v.Lines, lineView{Title: l.Title, Course: course, Mode: seatMode(l.Class, l.Attributes), SKU: l.SKU,
				Quantity: l.Quantity, Price: money.Format(l.LinePriceMinor, o.Currency) + " " + o.Currency, Status: status})
		}
		a.render(w, r, http.StatusOK, "receipt", v)
	})
}
