// Package stripetest is a stand-in for Stripe's hosted Checkout, for tests
// that go through the learner's browser: the part of Stripe's API that
// creates a Checkout Session (POST /v1/checkout/sessions, form-encoded as
// stripe-go sends it, answered with a session object), and the hosted page
// a learner pays on. Paying delivers the signed checkout.session.completed
// event to the webhook URL, as Stripe does, then sends the learner back to
// the session's success_url. stripe-mock checks the API's shapes; it has
// no hosted page and sends no webhooks.
package stripetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"
)

// Server is the stand-in.
type Server struct {
	URL string
	// WebhookURL receives the events, signed with the webhook secret.
	WebhookURL string

	secret   string
	mu       sync.Mutex
	sessions map[string]*session
	n        int
}

type session struct {
	ID, SuccessURL, CancelURL, ClientReferenceID, Currency, PaymentIntent, Name string
	AmountTotal                                                                 int64
	Paid                                                                        bool
}

// New starts the stand-in, signing events with webhookSecret; it stops
// when the test ends.
func New(t testing.TB, webhookSecret string) *Server {
	s := &Server{secret: webhookSecret, sessions: map[string]*session{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/checkout/sessions", s.create)
	mux.HandleFunc("GET /pay/{id}", s.page)
	mux.HandleFunc("POST /pay/{id}", s.pay)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func stripeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"type": "invalid_request_error", "message": msg}})
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") == "" {
		stripeError(w, http.StatusUnauthorized, "You did not provide an API key.")
		return
	}
	if err := r.ParseForm(); err != nil {
		stripeError(w, http.StatusBadRequest, "unreadable form")
		return
	}
	f := r.PostForm
	if f.Get("mode") != "payment" || f.Get("success_url") == "" || f.Get("line_items[0][price_data][currency]") == "" {
		stripeError(w, http.StatusBadRequest, "mode=payment, success_url and line_items are required")
		return
	}
	cs := &session{SuccessURL: f.Get("success_url"), CancelURL: f.Get("cancel_url"), ClientReferenceID: f.Get("client_reference_id"),
		Currency: f.Get("line_items[0][price_data][currency]"), Name: f.Get("line_items[0][price_data][product_data][name]")}
	for i := 0; ; i++ {
		p := fmt.Sprintf("line_items[%d]", i)
		if f.Get(p+"[quantity]") == "" {
			break
		}
		q, err1 := strconv.ParseInt(f.Get(p+"[quantity]"), 10, 64)
		u, err2 := strconv.ParseInt(f.Get(p+"[price_data][unit_amount]"), 10, 64)
		if err1 != nil || err2 != nil {
			stripeError(w, http.StatusBadRequest, "bad line item "+strconv.Itoa(i))
			return
		}
		cs.AmountTotal += q * u
	}
	s.mu.Lock()
	s.n++
	cs.ID, cs.PaymentIntent = fmt.Sprintf("cs_test_%d", s.n), fmt.Sprintf("pi_test_%d", s.n)
	s.sessions[cs.ID] = cs
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.object(cs))
}

func (s *Server) object(cs *session) map[string]any {
	status := "unpaid"
	if cs.Paid {
		status = "paid"
	}
	return map[string]any{"id": cs.ID, "object": "checkout.session", "mode": "payment", "url": s.URL + "/pay/" + cs.ID,
		"client_reference_id": cs.ClientReferenceID, "amount_total": cs.AmountTotal, "currency": cs.Currency,
		"success_url": cs.SuccessURL, "cancel_url": cs.CancelURL, "payment_status": status, "payment_intent": cs.PaymentIntent}
}

var page = template.Must(template.New("pay").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Stripe Checkout (stand-in)</title></head>
<body><h1>Pay {{.Name}}</h1><p id="amount">{{.Amount}}</p>
<form method="post"><button id="pay" type="submit">Pay</button></form>
<p><a id="cancel" href="{{.Cancel}}">Back</a></p></body></html>`))

func (s *Server) session(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	cs := s.session(r.PathValue("id"))
	if cs == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, map[string]string{"Name": cs.Name, "Amount": fmt.Sprintf("%d %s", cs.AmountTotal, cs.Currency), "Cancel": cs.CancelURL})
}

// pay completes the session: the signed webhook first, as Stripe sends it
// before the customer is back, then the redirect to success_url.
func (s *Server) pay(w http.ResponseWriter, r *http.Request) {
	cs := s.session(r.PathValue("id"))
	if cs == nil {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	cs.Paid = true
	obj := s.object(cs)
	s.mu.Unlock()
	payload, _ := json.Marshal(map[string]any{"id": "evt_" + cs.ID, "object": "event", "type": "checkout.session.completed",
		"api_version": "2025-01-01", "created": time.Now().Unix(), "data": map[string]any{"object": obj}})
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: s.secret, Timestamp: time.Now()})
	req, _ := http.NewRequest("POST", s.WebhookURL, bytes.NewReader(signed.Payload))
	req.Header.Set("Stripe-Signature", signed.Header)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, "webhook delivery failed: "+err.Error(), http.StatusBadGateway)
		return
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		http.Error(w, "webhook answered "+res.Status, http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, cs.SuccessURL, http.StatusSeeOther)
}
