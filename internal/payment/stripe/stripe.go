// Package stripe is the Stripe payment processor: a PaymentIntent per frozen
// basket (paid on the service's own page with Stripe's Payment Element),
// payment_intent.* webhooks as notifications, and Refunds as credits.
//
// Each Processor owns its own stripe-go client and backends; nothing here
// touches stripe-go's package-level key or backends, so several processors
// (live and test keys, or a test pointed at stripe-mock) can coexist.
package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	stripego "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"fulfill/internal/money"
	"fulfill/internal/payment"
)

// Name is the processor's name in configuration and payment_processor_name.
const Name = "stripe"

// SignatureHeader is the header Stripe signs webhooks in.
const SignatureHeader = "Stripe-Signature"

// Metadata keys set on PaymentIntents (basket) and Refunds (order).
const (
	MetaBasketID    = "basket_id"
	MetaUsername    = "username"
	MetaOrderNumber = "order_number"
)

// Config configures a Processor.
type Config struct {
	// SecretKey is the API secret key (sk_live_…, sk_test_… or rk_…).
	SecretKey string
	// WebhookSecret is the endpoint's signing secret (whsec_…).
	WebhookSecret string
	// PublishableKey (pk_…) is handed to the payment page in FormData when
	// set; it is not secret.
	PublishableKey string
	// BackendURL replaces https://api.stripe.com when set (stripe-mock in
	// tests).
	BackendURL string
	// HTTPClient is used for API calls; nil means stripe-go's default (80 s
	// timeout).
	HTTPClient *http.Client
}

// Processor implements payment.Processor with Stripe.
type Processor struct {
	client         *stripego.Client
	webhookSecret  string
	publishableKey string
}

var _ payment.Processor = (*Processor)(nil)

// New builds a Processor with its own stripe-go client.
func New(cfg Config) (*Processor, error) {
	if strings.TrimSpace(cfg.SecretKey) == "" {
		return nil, errors.New("stripe: secret key is required")
	}
	if strings.TrimSpace(cfg.WebhookSecret) == "" {
		return nil, errors.New("stripe: webhook signing secret is required")
	}
	bc := &stripego.BackendConfig{
		HTTPClient: cfg.HTTPClient,
		// Errors are returned to the caller, who logs them; the SDK's own
		// stderr logger would only duplicate them outside the service's log.
		LeveledLogger: &stripego.LeveledLogger{Level: stripego.LevelNull},
	}
	if cfg.BackendURL != "" {
		bc.URL = stripego.String(cfg.BackendURL)
	}
	return &Processor{
		client:         stripego.NewClient(cfg.SecretKey, stripego.WithBackends(stripego.NewBackendsWithConfig(bc))),
		webhookSecret:  cfg.WebhookSecret,
		publishableKey: cfg.PublishableKey,
	}, nil
}

// Name implements payment.Processor.
func (p *Processor) Name() string { return Name }

// PaymentData implements payment.Processor: it creates (or, within Stripe's
// 24 h idempotency window, finds again) the basket's PaymentIntent.
func (p *Processor) PaymentData(ctx context.Context, b payment.Basket, baseURL string) (payment.Data, error) {
	if b.ID <= 0 {
		return payment.Data{}, fmt.Errorf("stripe: basket id %d is invalid", b.ID)
	}
	if b.Total.Minor <= 0 || !money.ValidCurrency(b.Total.Currency) {
		return payment.Data{}, fmt.Errorf("stripe: basket %d total %s %q cannot be paid", b.ID, b.Total, b.Total.Currency)
	}
	id := strconv.FormatInt(b.ID, 10)
	params := &stripego.PaymentIntentCreateParams{
		Amount:   stripego.Int64(b.Total.Minor),
		Currency: stripego.String(strings.ToLower(b.Total.Currency)),
		AutomaticPaymentMethods: &stripego.PaymentIntentCreateAutomaticPaymentMethodsParams{
			Enabled: stripego.Bool(true),
		},
		Metadata: map[string]string{MetaBasketID: id, MetaUsername: b.Username},
	}
	// The amount is in the key: a basket repriced (a code added) gets its own
	// PaymentIntent instead of Stripe refusing the new amount for the old key.
	params.SetIdempotencyKey("basket-" + id + "-" + strconv.FormatInt(b.Total.Minor, 10) + b.Total.Currency)
	pi, err := p.client.V1PaymentIntents.Create(ctx, params)
	if err != nil {
		return payment.Data{}, fmt.Errorf("stripe: create payment intent for basket %d: %w", b.ID, apiError(err))
	}
	form := map[string]string{
		"client_secret":     pi.ClientSecret,
		"payment_intent_id": pi.ID,
	}
	if p.publishableKey != "" {
		form["publishable_key"] = p.publishableKey
	}
	return payment.Data{
		ProcessorName: Name,
		FormData:      form,
		PageURL:       strings.TrimRight(baseURL, "/") + "/payment/stripe/pay/?basket_id=" + id,
	}, nil
}

// ParseNotification implements payment.Processor for Stripe webhook events.
// payment_intent.succeeded is an Accept, payment_intent.payment_failed a
// Decline; every other event type is payment.ErrIgnored.
func (p *Processor) ParseNotification(_ context.Context, h http.Header, body []byte) (payment.Notification, error) {
	sig := h.Get(SignatureHeader)
	// Signature and timestamp (default 5 min tolerance) first: anything that
	// fails here is not Stripe's word.
	if err := webhook.ValidatePayload(body, sig, p.webhookSecret); err != nil {
		return payment.Notification{}, fmt.Errorf("%w: %v", payment.ErrBadSignature, err)
	}
	// A genuine payload: what fails from here on is unreadable, not forged.
	// The event's API version is not required to match the SDK's: only the
	// few PaymentIntent fields read below are used.
	ev, err := webhook.ConstructEventWithOptions(body, sig, p.webhookSecret, webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		return payment.Notification{}, fmt.Errorf("%w: the body is not a Stripe event", payment.ErrInvalid)
	}
	var decision payment.Decision
	switch ev.Type {
	case stripego.EventTypePaymentIntentSucceeded:
		decision = payment.Accept
	case stripego.EventTypePaymentIntentPaymentFailed:
		decision = payment.Decline
	case stripego.EventTypeCheckoutSessionCompleted, stripego.EventTypeCheckoutSessionAsyncPaymentSucceeded,
		stripego.EventTypeCheckoutSessionAsyncPaymentFailed:
		return sessionNotification(ev, body)
	default:
		return payment.Notification{}, fmt.Errorf("%w: stripe event %s", payment.ErrIgnored, ev.Type)
	}
	if ev.Data == nil || len(ev.Data.Raw) == 0 {
		return payment.Notification{}, fmt.Errorf("%w: stripe event %s has no data.object", payment.ErrInvalid, ev.ID)
	}
	var pi stripego.PaymentIntent
	if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
		return payment.Notification{}, fmt.Errorf("%w: stripe event %s: data.object is not a PaymentIntent", payment.ErrInvalid, ev.ID)
	}
	if pi.ID == "" {
		return payment.Notification{}, fmt.Errorf("%w: stripe event %s: payment intent has no id", payment.ErrInvalid, ev.ID)
	}
	basketID, err := strconv.ParseInt(pi.Metadata[MetaBasketID], 10, 64)
	if err != nil || basketID <= 0 {
		return payment.Notification{}, fmt.Errorf("%w: stripe payment intent %s: metadata %s %q is not a basket id", payment.ErrInvalid, pi.ID, MetaBasketID, pi.Metadata[MetaBasketID])
	}
	currency := strings.ToUpper(string(pi.Currency))
	if !money.ValidCurrency(currency) {
		return payment.Notification{}, fmt.Errorf("%w: stripe payment intent %s: currency %q", payment.ErrInvalid, pi.ID, pi.Currency)
	}
	minor := pi.AmountReceived
	if minor == 0 {
		minor = pi.Amount
	}
	if minor < 0 {
		return payment.Notification{}, fmt.Errorf("%w: stripe payment intent %s: amount %d", payment.ErrInvalid, pi.ID, minor)
	}
	return payment.Notification{
		Processor: Name,
		EventID:   ev.ID,
		Reference: pi.ID,
		BasketID:  basketID,
		Amount:    money.Amount{Minor: minor, Currency: currency},
		Decision:  decision,
		Raw:       body,
	}, nil
}

// sessionNotification reads a Checkout Session event: completed and paid,
// or its delayed payment succeeded, is an Accept; its delayed payment
// failed a Decline; completed but not yet paid (a delayed method) waits
// for the async event. The payment's reference is the session's
// PaymentIntent, the same that payment_intent.* events name, so that both
// notices of one payment are one payment.
func sessionNotification(ev stripego.Event, body []byte) (payment.Notification, error) {
	if ev.Data == nil || len(ev.Data.Raw) == 0 {
		return payment.Notification{}, fmt.Errorf("%w: stripe event %s has no data.object", payment.ErrInvalid, ev.ID)
	}
	var cs stripego.CheckoutSession
	if err := json.Unmarshal(ev.Data.Raw, &cs); err != nil || cs.ID == "" {
		return payment.Notification{}, fmt.Errorf("%w: stripe event %s: data.object is not a Checkout Session", payment.ErrInvalid, ev.ID)
	}
	decision := payment.Accept
	switch {
	case ev.Type == stripego.EventTypeCheckoutSessionAsyncPaymentFailed:
		decision = payment.Decline
	case ev.Type == stripego.EventTypeCheckoutSessionCompleted && cs.PaymentStatus != stripego.CheckoutSessionPaymentStatusPaid &&
		cs.PaymentStatus != stripego.CheckoutSessionPaymentStatusNoPaymentRequired:
		return payment.Notification{}, fmt.Errorf("%w: checkout session %s is %s: its delayed payment will tell", payment.ErrIgnored, cs.ID, cs.PaymentStatus)
	}
	basketID, err := strconv.ParseInt(cs.ClientReferenceID, 10, 64)
	if err != nil || basketID <= 0 {
		return payment.Notification{}, fmt.Errorf("%w: checkout session %s: client_reference_id %q is not a basket id", payment.ErrInvalid, cs.ID, cs.ClientReferenceID)
	}
	currency := strings.ToUpper(string(cs.Currency))
	if !money.ValidCurrency(currency) || cs.AmountTotal < 0 {
		return payment.Notification{}, fmt.Errorf("%w: checkout session %s: amount %d %q", payment.ErrInvalid, cs.ID, cs.AmountTotal, cs.Currency)
	}
	ref := cs.ID
	if cs.PaymentIntent != nil && cs.PaymentIntent.ID != "" {
		ref = cs.PaymentIntent.ID
	}
	return payment.Notification{Processor: Name, EventID: ev.ID, Reference: ref, BasketID: basketID,
		Amount: money.Amount{Minor: cs.AmountTotal, Currency: currency}, Decision: decision, Raw: body}, nil
}

var _ payment.HostedPage = (*Processor)(nil)

// Page implements payment.HostedPage with Stripe Checkout: a Checkout
// Session in payment mode listing the basket's lines, its basket as
// client_reference_id (and on its PaymentIntent's metadata), created once
// per basket within Stripe's 24 h idempotency window; it returns the
// session's url.
func (p *Processor) Page(ctx context.Context, b payment.Basket, successURL, cancelURL string) (string, error) {
	if b.ID <= 0 || b.Total.Minor <= 0 || !money.ValidCurrency(b.Total.Currency) {
		return "", fmt.Errorf("stripe: basket %d total %s %q cannot be paid", b.ID, b.Total, b.Total.Currency)
	}
	id := strconv.FormatInt(b.ID, 10)
	cur := strings.ToLower(b.Total.Currency)
	params := &stripego.CheckoutSessionCreateParams{
		Mode:              stripego.String(string(stripego.CheckoutSessionModePayment)),
		ClientReferenceID: stripego.String(id),
		SuccessURL:        stripego.String(successURL),
		CancelURL:         stripego.String(cancelURL),
		Metadata:          map[string]string{MetaBasketID: id, MetaUsername: b.Username},
		PaymentIntentData: &stripego.CheckoutSessionCreatePaymentIntentDataParams{
			Metadata: map[string]string{MetaBasketID: id, MetaUsername: b.Username},
		},
	}
	if b.Email != "" {
		params.CustomerEmail = stripego.String(b.Email)
	}
	lines := b.Lines
	if len(lines) == 0 {
		lines = []payment.Line{{Title: "Basket " + id, Quantity: 1, Unit: b.Total}}
	}
	for _, l := range lines {
		params.LineItems = append(params.LineItems, &stripego.CheckoutSessionCreateLineItemParams{
			Quantity: stripego.Int64(int64(l.Quantity)),
			PriceData: &stripego.CheckoutSessionCreateLineItemPriceDataParams{
				Currency: stripego.String(cur), UnitAmount: stripego.Int64(l.Unit.Minor),
				ProductData: &stripego.CheckoutSessionCreateLineItemPriceDataProductDataParams{Name: stripego.String(l.Title)},
			},
		})
	}
	params.SetIdempotencyKey("checkout-basket-" + id + "-" + strconv.FormatInt(b.Total.Minor, 10) + b.Total.Currency)
	cs, err := p.client.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return "", fmt.Errorf("stripe: create checkout session for basket %d: %w", b.ID, apiError(err))
	}
	if cs.URL == "" {
		return "", fmt.Errorf("stripe: checkout session %s has no url", cs.ID)
	}
	return cs.URL, nil
}

// IssueCredit implements payment.Processor: a Refund of amount on the
// PaymentIntent reference, de-duplicated by Stripe on key.
func (p *Processor) IssueCredit(ctx context.Context, orderNumber, reference string, amount money.Amount, key string) (string, error) {
	if reference == "" {
		return "", fmt.Errorf("%w: stripe: no payment intent to refund", payment.ErrCredit)
	}
	if amount.Minor <= 0 {
		return "", fmt.Errorf("%w: stripe: refund amount %s must be positive", payment.ErrCredit, amount)
	}
	params := &stripego.RefundCreateParams{
		PaymentIntent: stripego.String(reference),
		Amount:        stripego.Int64(amount.Minor),
	}
	if orderNumber != "" {
		params.Metadata = map[string]string{MetaOrderNumber: orderNumber}
	}
	if key != "" {
		params.SetIdempotencyKey(key)
	}
	r, err := p.client.V1Refunds.Create(ctx, params)
	if err != nil {
		return "", fmt.Errorf("%w: stripe refund of %s: %w", payment.ErrCredit, reference, apiError(err))
	}
	if r.ID == "" {
		return "", fmt.Errorf("%w: stripe refund of %s: no refund id in the answer", payment.ErrCredit, reference)
	}
	return r.ID, nil
}

// stripeError gives a *stripego.Error a readable message (its own Error() is
// the whole JSON object) while keeping it reachable with errors.As.
type stripeError struct{ err *stripego.Error }

func (e stripeError) Error() string {
	var b strings.Builder
	b.WriteString("stripe ")
	if e.err.Type != "" {
		b.WriteString(string(e.err.Type))
	} else {
		b.WriteString("error")
	}
	if e.err.Code != "" {
		b.WriteString(" (" + string(e.err.Code) + ")")
	}
	if e.err.Msg != "" {
		b.WriteString(": " + e.err.Msg)
	}
	if e.err.HTTPStatusCode != 0 {
		b.WriteString(" [HTTP " + strconv.Itoa(e.err.HTTPStatusCode) + "]")
	}
	return b.String()
}

func (e stripeError) Unwrap() error { return e.err }

func apiError(err error) error {
	var se *stripego.Error
	if errors.As(err, &se) {
		return stripeError{se}
	}
	return err
}
