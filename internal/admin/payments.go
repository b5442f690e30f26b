package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"fulfill/internal/payment"
)

// Payments acts on payments of the ledger that need a person.
type Payments interface {
	RefundPayment(ctx context.Context, id int64, actor string) (payment.Payment, error)
	PlacePayment(ctx context.Context, id int64, actor string) (payment.Payment, error)
}

type paymentsPage struct {
	pageBase
	State    string
	States   []payment.State
	Payments []payment.Payment
	Next     string
	Error    string
}

// handlePayments lists the payment ledger by state, newest first; by
// default the payments needing attention, each with its cause and the
// one-click refund and place actions.
func handlePayments(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := paymentsPage{pageBase: a.base(r, "Payments", "payments"), State: q.Get("state"),
			States: []payment.State{payment.StateAttention, payment.StateRefundDue, payment.StateReceived, payment.StateRefunded,
				payment.StatePlaced, payment.StateReplayed, payment.StateDeclined}}
		if !q.Has("state") {
			p.State = string(payment.StateAttention)
		}
		st := payment.State(p.State)
		if st != "" && !payment.States.Valid(st) {
			p.Error = "unknown state " + strconv.Quote(p.State)
			a.renderStatus(w, r, http.StatusUnprocessableEntity, "payments", &p)
			return
		}
		var after int64
		if c := q.Get("cursor"); c != "" {
			var err error
			if after, err = strconv.ParseInt(c, 10, 64); err != nil || after <= 0 {
				p.Error = "bad cursor"
				a.renderStatus(w, r, http.StatusUnprocessableEntity, "payments", &p)
				return
			}
		}
		ps, err := a.Store.ListPayments(r.Context(), st, after, a.PageSize)
		if err != nil {
			a.serverError(w, r, "list payments", err)
			return
		}
		p.Payments = ps
		if len(ps) == a.PageSize {
			p.Next = Prefix + "payments/?" + url.Values{"state": {p.State}, "cursor": {strconv.FormatInt(ps[len(ps)-1].ID, 10)}}.Encode()
		}
		a.render(w, r, "payments", &p)
	})
}

// handlePaymentAction is the one-click refund (action=refund) or place
// (action=place) of a payment needing attention.
func handlePaymentAction(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := back(r, Prefix+"payments/")
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 || a.Payments == nil {
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Bad payment id."}, to)
			return
		}
		actor := sessionFrom(r.Context()).User.Username
		var p payment.Payment
		switch action := r.PostFormValue("action"); action {
		case "refund":
			p, err = a.Payments.RefundPayment(r.Context(), id, actor)
		case "place":
			p, err = a.Payments.PlacePayment(r.Context(), id, actor)
		default:
			a.finish(w, r, http.StatusUnprocessableEntity, Flash{Kind: "error", Message: "Choose Refund or Place order."}, to)
			return
		}
		var f Flash
		switch {
		case err != nil:
			f = a.flashError(r, fmt.Sprintf("Payment #%d", id), err)
		case p.State == payment.StateRefunded:
			f = Flash{Kind: "ok", Message: fmt.Sprintf("Payment #%d refunded (%s %s).", id, p.Amount, p.Amount.Currency)}
		case p.State == payment.StatePlaced:
			f = Flash{Kind: "ok", Message: fmt.Sprintf("Payment #%d placed order %s.", id, p.OrderNumber)}
		default:
			f = Flash{Kind: "error", Message: fmt.Sprintf("Payment #%d is %s: %s", id, p.State, p.Cause)}
		}
		a.Log.Info("dashboard: payment action", "payment", id, "actor", actor, "state", p.State, "error", err)
		a.finish(w, r, http.StatusOK, f, to)
	})
}
