package storefront

import (
	"errors"
	"net/http"

	"fulfill/internal/catalog"
	"fulfill/internal/money"
	"fulfill/internal/order"
)

type receiptView struct {
	page
	Number       string
	Status       words
	Placed       string
	PlacedISO    string
	Buyer        string
	Lines        []receiptLine
	Total        string
	DashboardURL string
}

// receiptLine is a line of the receipt, its status in the learner's words.
type receiptLine struct {
	lineView
	Tone string
}

// refreshSeconds is how often the receipt of an order still on its way
// reloads itself.
const refreshSeconds = 5

// words is a status as a learner reads it: Text is short (the headline,
// the status column), Detail says what happens next, Tone is its colour
// ("ok", "wait", "bad", "muted"), and Final says nothing more happens by
// itself, so the receipt need not refresh.
type words struct {
	Text, Detail, Tone string
	Final              bool
}

// learnerWords is the one place that puts a status in a learner's words:
// the order's when l is nil, else the status of its line l. No wire name
// ("Fulfillment Configuration Error") reaches a learner; the test holds
// every order.Status and order.LineStatus to having words here.
func learnerWords(o order.Order, l *order.Line) words {
	if l != nil {
		done, doing, notYet := "Delivered", "Being delivered…", "Not delivered yet"
		if l.Class == catalog.ClassSeat {
			done, doing, notYet = "Enrolled", "Enrolling you…", "Not enrolled yet"
		}
		switch {
		case l.InRefund() && l.RefundStatus == "Complete":
			return words{Text: "Refunded", Tone: "muted", Final: true}
		case l.InRefund():
			return words{Text: "Being refunded", Tone: "wait", Final: true}
		case l.Status == order.LineComplete:
			return words{Text: done, Tone: "ok", Final: true}
		case l.Status == order.LineOpen:
			return words{Text: doing, Tone: "wait"}
		case l.Status.IsError() && l.NextAttemptAt != nil:
			return words{Text: notYet + "; we are retrying", Tone: "wait"}
		case l.Status.IsError():
			return words{Text: notYet + "; support has been told", Tone: "bad", Final: true}
		}
		return words{Text: "Processing", Tone: "wait"}
	}
	doing, enroll, enrolling, enrolled := "Being delivered", "deliver your order", "We are delivering your order…",
		"Everything in this order has been delivered."
	for _, l := range o.Lines {
		if l.Class == catalog.ClassSeat {
			doing, enroll, enrolling, enrolled = "Enrolling you", "enroll you", "We are enrolling you…",
				"You are enrolled: go to your dashboard to start learning."
			break
		}
	}
	switch o.Status {
	case order.StatusPending:
		return words{Text: "Waiting for your payment", Tone: "wait",
			Detail: "We are waiting for the payment service to confirm your payment. This page updates by itself."}
	case order.StatusPaymentError:
		return words{Text: "Payment not completed", Tone: "bad", Final: true,
			Detail: "Your payment did not go through, so this order was not placed. You can buy again from the course page."}
	case order.StatusOpen:
		return words{Text: doing, Tone: "wait", Detail: enrolling + " This page updates by itself."}
	case order.StatusFulfillmentError:
		switch {
		case o.NeedsAttention:
			return words{Text: "Not complete yet", Tone: "bad", Final: true,
				Detail: "We could not " + enroll + " yet; our support team has been told and will fix it. You do not need to buy again."}
		case o.NextAttemptAt != nil:
			return words{Text: "Not complete yet", Tone: "wait",
				Detail: "We could not " + enroll + " yet; we are retrying and support has been told. This page updates by itself."}
		case o.RefundState() == order.RefundPending:
			return words{Text: "Being refunded", Tone: "wait", Final: true,
				Detail: "We could not deliver part of this order, so it is being refunded to you."}
		}
		return words{Text: "Refunded in part", Tone: "muted", Final: true,
			Detail: "We could not deliver part of this order, so it was refunded to you."}
	case order.StatusComplete:
		switch o.RefundState() {
		case order.RefundFull:
			return words{Text: "Refunded", Tone: "muted", Final: true, Detail: "This order was refunded to you."}
		case order.RefundPartly:
			return words{Text: "Complete", Tone: "ok", Final: true, Detail: "Part of this order was refunded to you."}
		case order.RefundPending:
			return words{Text: "Complete", Tone: "ok", Final: true, Detail: "A refund of this order is being processed."}
		}
		return words{Text: "Complete", Tone: "ok", Final: true, Detail: enrolled}
	}
	return words{Text: "Being processed", Tone: "wait", Detail: "This page updates by itself."}
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
		v := &receiptView{page: page{Title: "Receipt for order " + o.Number, User: &u}, Number: o.Number, Status: learnerWords(o, nil),
			Placed: o.DatePlaced.UTC().Format("2 January 2006, 15:04 UTC"), PlacedISO: o.DatePlaced.UTC().Format("2006-01-02T15:04:05Z"),
			Buyer: o.User.Username, Total: money.Format(o.TotalMinor, o.Currency) + " " + o.Currency, DashboardURL: a.d.DashboardURL}
		if !v.Status.Final {
			v.Refresh = refreshSeconds // still on its way: the page follows it
		}
		for _, l := range o.Lines {
			w := learnerWords(o, &l)
			v.Lines = append(v.Lines, receiptLine{Tone: w.Tone, lineView: lineView{Title: l.Title, Course: l.Attributes.String("course_key"),
				Mode: seatMode(l.Class, l.Attributes), SKU: l.SKU, Quantity: l.Quantity,
				Price: money.Format(l.LinePriceMinor, o.Currency) + " " + o.Currency, Status: w.Text}})
		}
		a.render(w, r, http.StatusOK, "receipt", v)
	})
}
