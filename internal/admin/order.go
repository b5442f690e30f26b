package admin

import (
	"errors"
	"fmt"
	"net/http"

	"fulfill/internal/catalog"
	"fulfill/internal/order"
	"fulfill/internal/payment"
	"fulfill/internal/refund"
)

type lineView struct {
	order.Line
	Mode       string
	Course     string
	Attempts   []order.Attempt
	Refundable bool
}

type refundLineView struct {
	refund.Line
	SKU, Title string
}

type refundView struct {
	refund.Refund
	Lines      []refundLineView
	CanApprove bool
	CanDeny    bool
	CSRF, Back string // for the action forms
}

type historyView struct {
	order.HistoryEntry
	Subject string // "order" or "line 12 (SKU)"
}

type orderPage struct {
	pageBase
	Order           order.Order
	Lines           []lineView
	Payments        []payment.Event
	Refunds         []refundView
	History         []historyView
	CanRetry        bool
	CanMarkComplete bool
	CanRefund       bool // some line may be refunded
	RefundsEnabled  bool
}

func lineLabel(o order.Order, id int64) string {
	for _, l := range o.Lines {
		if l.ID == id {
			return fmt.Sprintf("line %d (%s)", id, l.SKU)
		}
	}
	return fmt.Sprintf("line %d", id)
}

func viewRefunds(o order.Order, rs []refund.Refund, csrf, back string) []refundView {
	out := make([]refundView, 0, len(rs))
	for _, r := range rs {
		v := refundView{Refund: r, CSRF: csrf, Back: back,
			CanApprove: r.Status == refund.StatusOpen || r.Status == refund.StatusPaymentRefundError ||
				r.Status == refund.StatusPaymentRefunded || r.Status == refund.StatusRevocationError,
			CanDeny: r.Status == refund.StatusOpen}
		for _, l := range r.Lines {
			lv := refundLineView{Line: l}
			for _, ol := range o.Lines {
				if ol.ID == l.OrderLineID {
					lv.SKU, lv.Title = ol.SKU, ol.Title
				}
			}
			v.Lines = append(v.Lines, lv)
		}
		out = append(out, v)
	}
	return out
}

// handleOrder shows one order: its lines with the attempts of each, notes,
// payment events, refunds and status history, and the actions on it.
func handleOrder(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		number := r.PathValue("number")
		o, err := a.Store.GetOrder(ctx, number)
		if errors.Is(err, order.ErrNotFound) {
			a.renderError(w, r, http.StatusNotFound, "Order not found", "There is no order "+number+".")
			return
		}
		if err != nil {
			a.serverError(w, r, "read order", err)
			return
		}
		p := orderPage{pageBase: a.base(r, "Order "+o.Number, "orders"), Order: o, RefundsEnabled: a.Refunds != nil,
			CanRetry: o.Status.Fulfillable(), CanMarkComplete: o.Status == order.StatusFulfillmentError}
		attempts, err := a.Store.Attempts(ctx, o.ID)
		if err != nil {
			a.serverError(w, r, "read attempts", err)
			return
		}
		for _, l := range o.Lines {
			lv := lineView{Line: l, Course: l.Attributes.String("course_key"),
				Refundable: o.Status == order.StatusComplete && l.Status == order.LineComplete && (l.RefundStatus == "" || l.RefundStatus == string(refund.LineDenied))}
			if l.Class == catalog.ClassSeat {
				lv.Mode = catalog.SeatMode(l.Attributes)
			}
			for _, at := range attempts {
				if at.LineID == l.ID {
					lv.Attempts = append(lv.Attempts, at)
				}
			}
			lv.Refundable = lv.Refundable && a.Refunds != nil
			p.CanRefund = p.CanRefund || lv.Refundable
			p.Lines = append(p.Lines, lv)
		}
		if p.Payments, err = a.Store.PaymentEvents(ctx, o.ID); err != nil {
			a.serverError(w, r, "read payment events", err)
			return
		}
		rs, err := a.Store.ListRefunds(ctx, "", o.ID, 0, 1000)
		if err != nil {
			a.serverError(w, r, "read refunds", err)
			return
		}
		p.Refunds = viewRefunds(o, rs, p.CSRF, p.Self)
		hist, err := a.Store.History(ctx, o.ID)
		if err != nil {
			a.serverError(w, r, "read history", err)
			return
		}
		for _, h := range hist {
			hv := historyView{HistoryEntry: h, Subject: "order"}
			if h.LineID != 0 {
				hv.Subject = lineLabel(o, h.LineID)
			}
			p.History = append(p.History, hv)
		}
		a.render(w, r, "order", &p)
	})
}
