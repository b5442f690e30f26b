package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"fulfill/internal/apperr"
	"fulfill/internal/auth"
	"fulfill/internal/basket"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// handlePaymentNotify receives a processor's notification: verified by its
// signature (a bad one is refused and changes nothing), recorded, then
// acted on. A replay answers success and places nothing twice.
func handlePaymentNotify(d Deps, processor string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		p, err := d.Checkout.Processor(processor)
		if err != nil {
			writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: err.Error()})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			writeError(w, r, log, fmt.Errorf("%w: the request body could not be read (at most 1 MiB)", errBadRequest))
			return
		}
		n, err := p.ParseNotification(r.Context(), r.Header, body)
		if errors.Is(err, payment.ErrIgnored) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ignored"})
			return
		}
		if err != nil {
			if errors.Is(err, payment.ErrBadSignature) {
				log.Warn("payment notification refused: bad signature", "processor", processor, "remote", r.RemoteAddr)
			}
			writeError(w, r, log, err)
			return
		}
		res, err := d.Checkout.Handle(r.Context(), n)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		out := map[string]any{"basket_id": n.BasketID, "reference": n.Reference, "replayed": res.Replayed, "payment_id": res.Payment.ID}
		switch {
		case res.Declined:
			out["status"] = "declined"
		case res.Refunded:
			out["status"] = "refunded"
		case res.RefundPending:
			out["status"] = "refund_pending"
		default:
			out["status"] = "accepted"
		}
		if res.Order != nil {
			out["order_number"] = res.Order.Number
			if res.Order.Status != "" {
				out["order_status"] = string(res.Order.Status)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
}

var sandboxPage = template.Must(template.New("pay").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox payment</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
.card{border:1px solid #ddd;border-radius:.5rem;padding:1.5rem}button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem;border-radius:.3rem;border:1px solid #888;cursor:pointer}
.accept{background:#1a7f37;color:#fff;border-color:#1a7f37}.decline{background:#fff}</style></head>
<body><div class="card"><h1>Sandbox payment</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{else}}
<p>Basket {{.ID}} for <strong>{{.Username}}</strong>: <strong>{{.Amount}} {{.Currency}}</strong></p>
{{if eq .Status "Frozen"}}
<form method="post" action="/payment/sandbox/pay/"><input type="hidden" name="basket_id" value="{{.ID}}">
<button class="accept" name="decision" value="accept">Pay {{.Amount}} {{.Currency}}</button>
<button class="decline" name="decision" value="decline">Decline</button></form>
{{else}}<p>This basket is {{.Status}}.</p>{{end}}{{end}}
{{if .Result}}<p role="status">{{.Result}}</p>{{end}}
</div></body></html>`))

type sandboxView struct {
	ID                                        int64
	Username, Amount, Currency, Status, Error string
	Result                                    string
}

// sandboxBasket reads the basket a sandbox page is for, for its owner
// only: a signed-out visitor is sent to sign in (or answered 401), anyone
// else sees no such basket. ok is false when the answer was written.
func sandboxBasket(d Deps, w http.ResponseWriter, r *http.Request, rawID string) (basket.Payable, bool) {
	u, err := d.Verifier.User(auth.Token(r))
	if err != nil {
		if d.Storefront && r.Method == http.MethodGet {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return basket.Payable{}, false
		}
		writeError(w, r, logFrom(r), err)
		return basket.Payable{}, false
	}
	id, err := strconv.ParseInt(rawID, 10, 64)
	var b basket.Payable
	if err == nil {
		b, err = d.Store.BasketPayment(r.Context(), id)
	}
	if err == nil && b.Username != u.Username {
		err = order.ErrNotFound
	}
	if err != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_ = sandboxPage.Execute(w, sandboxView{Error: "No such basket of yours."})
		return b, false
	}
	return b, true
}

// handleSandboxPost is a POST to the sandbox's page: with a decision, the
// person's Pay or Decline, refused from another origin; without one, the
// LMS's payment step posting payment_form_data from its own page, which
// shows the page as a GET does.
func handleSandboxPost(d Deps) http.Handler {
	decide := http.NewCrossOriginProtection().Handler(handleSandboxDecide(d))
	page := handleSandboxPage(d)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("decision") == "" {
			page.ServeHTTP(w, r)
			return
		}
		decide.ServeHTTP(w, r)
	})
}

// handleSandboxPage is the sandbox gateway's hosted payment page, for the
// basket's owner.
func handleSandboxPage(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := sandboxBasket(d, w, r, r.FormValue("basket_id"))
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = sandboxPage.Execute(w, sandboxView{ID: b.ID, Username: b.Username, Amount: b.Total.String(), Currency: b.Total.Currency,
			Status: string(b.Status)})
	})
}

// handleSandboxDecide plays the gateway: it signs the person's decision as
// the sandbox processor would and hands it to the same notification path.
func handleSandboxDecide(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		decision := payment.Decision(r.FormValue("decision"))
		if decision != payment.Accept && decision != payment.Decline {
			writeError(w, r, log, fmt.Errorf("%w: basket_id and decision (accept or decline) are required", errBadRequest))
			return
		}
		b, ok := sandboxBasket(d, w, r, r.FormValue("basket_id"))
		if !ok {
			return
		}
		id := b.ID
		p, err := d.Checkout.Processor(payment.SandboxName)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		sb, ok := p.(*payment.Sandbox)
		if !ok {
			writeError(w, r, log, errors.New("sandbox processor misconfigured"))
			return
		}
		ref := make([]byte, 8)
		_, _ = rand.Read(ref)
		body, _ := json.Marshal(payment.SandboxNotification{BasketID: id, Reference: "txn-" + hex.EncodeToString(ref),
			Amount: b.Total.String(), Currency: b.Total.Currency, Decision: decision})
		h := http.Header{}
		h.Set(payment.SignatureHeader, payment.Sign(sb.Secret, body))
		n, err := p.ParseNotification(r.Context(), h, body)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		res, err := d.Checkout.Handle(r.Context(), n)
		v := sandboxView{ID: id, Username: b.Username, Amount: b.Total.String(), Currency: b.Total.Currency, Status: "Submitted"}
		switch {
		case err != nil:
			v.Error = apperr.Public(err)
			if v.Error == "" {
				log.Error("sandbox payment", "basket", id, "request_id", apperr.RequestID(r.Context()), "error", err)
				v.Error = "The payment could not be recorded; it has been logged."
			}
		case res.Refunded || res.RefundPending:
			v.Result = "Paid, but this basket cannot be bought with it (" + res.Payment.Cause + "); the payment is refunded."
		case res.Declined && d.Storefront:
			// Back to the basket, where the learner can pay again.
			http.Redirect(w, r, "/basket/?id="+strconv.FormatInt(id, 10), http.StatusSeeOther)
			return
		case res.Declined:
			v.Status, v.Result = "Open", "Payment declined; the basket is open again."
		case d.Storefront && res.Order != nil:
			// The learner lands on their receipt, as after a real gateway.
			http.Redirect(w, r, "/checkout/receipt/?order_number="+url.QueryEscape(res.Order.Number), http.StatusSeeOther)
			return
		default:
			v.Result = fmt.Sprintf("Paid. Order %s is %s.", res.Order.Number, res.Order.Status)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = sandboxPage.Execute(w, v)
	})
}

type paymentView struct {
	ID              int64      `json:"id"`
	Processor       string     `json:"processor"`
	EventID         string     `json:"event_id"`
	Reference       string     `json:"reference"`
	BasketID        int64      `json:"basket_id"`
	Decision        string     `json:"decision"`
	Amount          string     `json:"amount"`
	Currency        string     `json:"currency"`
	State           string     `json:"state"`
	Cause           string     `json:"cause"`
	OrderNumber     string     `json:"order_number"`
	CreditReference string     `json:"credit_reference"`
	Attempts        int        `json:"attempts"`
	NextAttemptAt   *time.Time `json:"next_attempt_at"`
	Created         time.Time  `json:"created"`
	Modified        time.Time  `json:"modified"`
}

func viewPayment(p payment.Payment) paymentView {
	return paymentView{ID: p.ID, Processor: p.Processor, EventID: p.EventID, Reference: p.Reference, BasketID: p.BasketID,
		Decision: string(p.Decision), Amount: p.Amount.String(), Currency: p.Amount.Currency, State: string(p.State), Cause: p.Cause,
		OrderNumber: p.OrderNumber, CreditReference: p.CreditReference, Attempts: p.Attempts, NextAttemptAt: p.NextAttemptAt,
		Created: p.CreatedAt, Modified: p.UpdatedAt}
}

// handlePaymentList is GET /api/v2/payments/?state=attention (staff): the
// payment ledger, newest first, with keyset paging by ?cursor=.
func handlePaymentList(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		st := payment.State(q.Get("state"))
		if st != "" && !payment.States.Valid(st) {
			writeError(w, r, logFrom(r), fmt.Errorf("%w: unknown state %q", errBadRequest, st))
			return
		}
		var after int64
		if c := q.Get("cursor"); c != "" {
			var err error
			if after, err = strconv.ParseInt(c, 10, 64); err != nil || after <= 0 {
				writeError(w, r, logFrom(r), fmt.Errorf("%w: bad cursor", errBadRequest))
				return
			}
		}
		ps, err := store.ListPayments(r.Context(), st, after, 50)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		out := struct {
			Count   int           `json:"count"`
			Results []paymentView `json:"results"`
		}{Results: []paymentView{}}
		for _, p := range ps {
			out.Results = append(out.Results, viewPayment(p))
		}
		out.Count = len(out.Results)
		writeJSON(w, http.StatusOK, out)
	})
}

// handlePaymentGet is GET /api/v2/payments/{id}/ (staff).
func handlePaymentGet(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			writeError(w, r, logFrom(r), payment.ErrNotFound)
			return
		}
		p, err := store.GetPayment(r.Context(), id)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		writeJSON(w, http.StatusOK, viewPayment(p))
	})
}

// handlePaymentAct is POST /api/v2/payments/{id}/refund/ and …/place/
// (staff): a person's refund, or placing of the order, of a payment
// needing attention.
func handlePaymentAct(d Deps, place bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			writeError(w, r, logFrom(r), payment.ErrNotFound)
			return
		}
		act := d.Checkout.RefundPayment
		if place {
			act = d.Checkout.PlacePayment
		}
		p, err := act(r.Context(), id, userFrom(r.Context()).Username)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		writeJSON(w, http.StatusOK, viewPayment(p))
	})
}

// handleHostedPay is GET /payment/{processor}/pay/?basket_id=N for a
// processor with a hosted page (Stripe Checkout): the basket's owner is
// sent (303) to the processor's page, or to the receipt when the basket
// was placed already. A signed-out visitor signs in first.
func handleHostedPay(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		processor := r.PathValue("processor")
		u, err := d.Verifier.User(auth.Token(r))
		if err != nil {
			if d.Storefront {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			writeError(w, r, logFrom(r), err)
			return
		}
		id, err := strconv.ParseInt(r.FormValue("basket_id"), 10, 64)
		if err != nil || id <= 0 {
			writeError(w, r, logFrom(r), fmt.Errorf("basket: %w", order.ErrNotFound))
			return
		}
		page, number, err := d.Checkout.HostedPage(r.Context(), u, id, processor)
		switch {
		case err != nil:
			writeError(w, r, logFrom(r), err)
		case number != "":
			http.Redirect(w, r, "/checkout/receipt/?order_number="+url.QueryEscape(number), http.StatusSeeOther)
		default:
			http.Redirect(w, r, page, http.StatusSeeOther)
		}
	})
}
