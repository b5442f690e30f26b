// Package webhook is a generic fulfillment module: it POSTs a signed JSON
// description of the line to a configured URL and counts any 2xx as done,
// so a seller can plug any system in without writing Go. Failures have the
// same classes, retries and revocation as every other module.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/fulfillment/remote"
	"fulfill/internal/lms"
	"fulfill/internal/money"
	"fulfill/internal/order"
)

// Name is the module's name in configuration.
const Name = "webhook"

// SignatureHeader carries the hex HMAC-SHA256 of the body under the secret.
const SignatureHeader = "X-Fulfill-Signature"

// Event is the JSON body posted for a line.
type Event struct {
	Event          string             `json:"event"` // "fulfill" or "revoke"
	OrderNumber    string             `json:"order_number"`
	DatePlaced     time.Time          `json:"date_placed"`
	LineID         int64              `json:"line_id"`
	ProductClass   string             `json:"product_class"`
	SKU            string             `json:"sku"`
	Title          string             `json:"title"`
	Quantity       int                `json:"quantity"`
	Price          string             `json:"price"`
	Currency       string             `json:"currency"`
	Attributes     catalog.Attributes `json:"attributes"`
	Username       string             `json:"username"`
	Email          string             `json:"email"`
	IdempotencyKey string             `json:"idempotency_key"`
}

// Sender makes the HTTP call (an lms.Client with its timeout and error
// classes).
type Sender interface {
	Send(ctx context.Context, method, url string, body []byte, header http.Header, idempotencyKey string) (int, []byte, error)
}

// Module posts lines to URL.
type Module struct {
	URL    string
	Secret []byte
	Client Sender
}

// Name implements fulfillment.Module.
func (m *Module) Name() string { return Name }

// Supports claims every line: the mapping in configuration decides which
// product classes come here.
func (m *Module) Supports(order.Line) bool { return true }

// Fulfill implements fulfillment.Module.
func (m *Module) Fulfill(ctx context.Context, o order.Order, l order.Line, key string) fulfillment.Result {
	return m.post(ctx, "fulfill", o, l, key)
}

// Revoke implements fulfillment.Module.
func (m *Module) Revoke(ctx context.Context, o order.Order, l order.Line, key string) fulfillment.Result {
	return m.post(ctx, "revoke", o, l, key+":revoke")
}

func (m *Module) post(ctx context.Context, event string, o order.Order, l order.Line, key string) fulfillment.Result {
	start := time.Now()
	if m.URL == "" {
		return remote.Configuration("the webhook module has no URL configured (--webhook-url)", start)
	}
	body, err := json.Marshal(Event{Event: event, OrderNumber: o.Number, DatePlaced: o.DatePlaced, LineID: l.ID, ProductClass: string(l.Class),
		SKU: l.SKU, Title: l.Title, Quantity: l.Quantity, Price: money.Format(l.LinePriceMinor, o.Currency), Currency: o.Currency,
		Attributes: l.Attributes, Username: o.User.Username, Email: o.User.Email, IdempotencyKey: key})
	if err != nil {
		return remote.Configuration("encode webhook event: "+err.Error(), start)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SignatureHeader, Sign(m.Secret, body))
	_, _, err = m.Client.Send(ctx, http.MethodPost, m.URL, body, h, key)
	return remote.Result(err, start, time.Now())
}

// Sign returns the hex HMAC-SHA256 of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

var _ Sender = (*lms.Client)(nil)
