// Package payment holds the payment processor interface, as Otto's: build
// the parameters of the payment page from a basket, read the processor's
// notification, and issue a credit. Processors are enabled by configuration.
package payment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"fulfill/internal/apperr"
	"fulfill/internal/money"
)

// Errors.
var (
	// ErrBadSignature: the notification is not signed by the processor.
	ErrBadSignature = apperr.New(apperr.Forbidden, "payment notification signature is invalid")
	// ErrIgnored: a genuine notification of a kind that needs no action.
	ErrIgnored = errors.New("payment notification needs no action")
	// ErrInvalid: a notification or request that cannot be read.
	ErrInvalid = apperr.New(apperr.Invalid, "invalid payment notification")
	// ErrAmountMismatch: the amount or currency paid is not the basket's.
	ErrAmountMismatch = apperr.New(apperr.Invalid, "paid amount does not match the basket")
	// ErrUnknownProcessor: no enabled processor has that name.
	ErrUnknownProcessor = apperr.New(apperr.Invalid, "unknown payment processor")
	// ErrCredit: the processor refused or failed a credit.
	ErrCredit = errors.New("credit failed")
)

// Decision is the processor's verdict on a payment.
type Decision string

// Decisions.
const (
	Accept  Decision = "accept"
	Decline Decision = "decline"
)

// Notification is a processor's word that a basket was paid or declined.
type Notification struct {
	Processor string
	// EventID is the processor's id of this notification, the key that a
	// redelivery repeats (Stripe's event id). A decline and a later accept
	// of the same payment are two events.
	EventID   string
	Reference string // the processor's id of the payment (transaction, PaymentIntent)
	BasketID  int64
	Amount    money.Amount
	Decision  Decision
	Raw       []byte
}

// Basket is what a processor needs to know of a frozen basket.
type Basket struct {
	ID       int64
	Username string
	Email    string
	Total    money.Amount
	// Lines are what the learner buys, for a hosted page that lists them.
	Lines []Line
}

// Line is one product of a basket as a payment page shows it.
type Line struct {
	Title    string
	Quantity int
	Unit     money.Amount
}

// HostedPage is a processor whose own site hosts the payment (Stripe
// Checkout): Page returns where to send the learner, who comes back to
// successURL once paid or to cancelURL.
type HostedPage interface {
	Page(ctx context.Context, b Basket, successURL, cancelURL string) (string, error)
}

// Data is the payment_data of Otto's basket API answer.
type Data struct {
	ProcessorName string            `json:"payment_processor_name"`
	FormData      map[string]string `json:"payment_form_data"`
	PageURL       string            `json:"payment_page_url"`
}

// Processor is a payment gateway.
type Processor interface {
	// Name is the name used in configuration and in payment_processor_name.
	Name() string
	// PaymentData prepares the payment of a frozen basket; baseURL is the
	// service's own public URL, for pages and return links.
	PaymentData(ctx context.Context, b Basket, baseURL string) (Data, error)
	// ParseNotification verifies a notification (ErrBadSignature) and reads it.
	ParseNotification(ctx context.Context, header http.Header, body []byte) (Notification, error)
	// IssueCredit gives amount back on the payment reference and returns the
	// credit's own reference. key is stable per refund so that a retried
	// credit is not paid twice by processors that de-duplicate.
	IssueCredit(ctx context.Context, orderNumber, reference string, amount money.Amount, key string) (string, error)
}

// Event is a recorded payment or credit of an order.
type Event struct {
	Type      string
	Processor string
	Amount    money.Amount
	Reference string
	RefundID  int64
	CreatedAt time.Time
}

// MaxReference bounds a processor's reference: far above any processor's
// ids, and below what an index entry can hold.
const MaxReference = 255

// Valid checks what the store keeps of a notification: a reference of
// sane length, and a raw body that is valid UTF-8 text without NUL.
func (n Notification) Valid() error {
	switch {
	case n.EventID == "" || len(n.EventID) > MaxReference || !utf8.ValidString(n.EventID) || strings.IndexByte(n.EventID, 0) >= 0:
		return fmt.Errorf("%w: the event id must be 1 to %d characters of text", ErrInvalid, MaxReference)
	case n.Reference == "" || len(n.Reference) > MaxReference || !utf8.ValidString(n.Reference) || strings.IndexByte(n.Reference, 0) >= 0:
		return fmt.Errorf("%w: the reference must be 1 to %d characters of text", ErrInvalid, MaxReference)
	case !utf8.Valid(n.Raw) || bytes.IndexByte(n.Raw, 0) >= 0:
		return fmt.Errorf("%w: the notification body is not UTF-8 text", ErrInvalid)
	}
	return nil
}
