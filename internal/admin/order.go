package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

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
	// Waiting says why the line waits while its module's breaker is open.
	Waiting string
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
	Notes           []noteView
	CanRetry        bool
	CanMarkComplete bool
	CanRefund       bool // some line may be refunded
	RefundsEnabled  bool
}

// noteView is a run of identical notes of one line (or of the order),
// shown once with its count and its first and last time: a line retried
// 48 times against the same LMS answer has one note, "× 48".
type noteView struct {
	Kind, Message string
	LineID        int64
	Count         int
	First, Last   time.Time
}

// groupNotes folds each note into the previous note of the same line when
// both say the same thing; notes of other lines in between (two lines
// failing in the same rounds) do not break a run. Runs keep the order of
// their first note.
func groupNotes(ns []order.Note) []noteView {
	var out []noteView
	last := map[int64]int{} // line id → index in out of its latest run
	for _, n := range ns {
		if i, ok := last[n.LineID]; ok && out[i].Kind == n.Kind && out[i].Message == n.Message {
			out[i].Count++
			out[i].Last = n.CreatedAt
			continue
		}
		last[n.LineID] = len(out)
		out = append(out, noteView{Kind: n.Kind, Message: n.Message, LineID: n.LineID, Count: 1, First: n.CreatedAt, Last: n.CreatedAt})
	}
	return out
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
		// A line that failed and is being refunded is delivered no more:
		// with only such lines left, there is nothing to retry or mark.
		undelivered := false
		for _, l := range o.Lines {
			undelivered = undelivered || (l.Status != order.LineComplete && !l.InRefund())
		}
		p := orderPage{pageBase: a.base(r, "Order "+o.Number, "orders"), Order: o, RefundsEnabled: a.Refunds != nil,
			CanRetry: o.Status.Fulfillable() && undelivered, CanMarkComplete: o.Status == order.StatusFulfillmentError && undelivered,
			Notes: groupNotes(o.Notes)}
		attempts, err := a.Store.Attempts(ctx, o.ID)
		if err != nil {
			a.serverError(w, r, "read attempts", err)
			return
		}
		for _, l := range o.Lines {
			lv := lineView{Line: l, Course: l.Attributes.String("course_key"), Refundable: refund.Refundable(o, l), Waiting: a.Fulfill.Waiting(l)}
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
