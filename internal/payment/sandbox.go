package payment

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"fulfill/internal/money"
)

// SandboxName is the sandbox processor's name.
const SandboxName = "sandbox"

// Sandbox behaves like a hosted payment page: the service shows the page
// (demo mode), the person accepts or declines, and the "gateway" posts a
// JSON notification signed with HMAC-SHA256 under a shared secret. Anyone
// holding the secret can act as the gateway, which is what tests and load
// tools need.
type Sandbox struct {
	Secret []byte

	mu         sync.Mutex
	creditFail error
	credited   map[string]bool // by key: a retried credit is paid once, as gateways de-duplicate
	credits    []string
}

// SandboxNotification is the body of POST /payment/sandbox/notify/.
type SandboxNotification struct {
	BasketID int64 `json:"basket_id"`
	// EventID names this notification; redeliveries repeat it (default:
	// reference and decision).
	EventID   string   `json:"event_id,omitempty"`
	Reference string   `json:"reference"`
	Amount    string   `json:"amount"`
	Currency  string   `json:"currency"`
	Decision  Decision `json:"decision"`
}

// SignatureHeader carries the hex HMAC-SHA256 of the raw body.
const SignatureHeader = "X-Sandbox-Signature"

// Sign returns the signature of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Name implements Processor.
func (s *Sandbox) Name() string { return SandboxName }

// PaymentData implements Processor.
func (s *Sandbox) PaymentData(_ context.Context, b Basket, baseURL string) (Data, error) {
	return Data{
		ProcessorName: SandboxName,
		FormData: map[string]string{
			"basket_id": strconv.FormatInt(b.ID, 10),
			"amount":    b.Total.String(),
			"currency":  b.Total.Currency,
		},
		PageURL: fmt.Sprintf("%s/payment/sandbox/pay/?basket_id=%d", baseURL, b.ID),
	}, nil
}

// ParseNotification implements Processor.
func (s *Sandbox) ParseNotification(_ context.Context, h http.Header, body []byte) (Notification, error) {
	sig, err := hex.DecodeString(h.Get(SignatureHeader))
	if err != nil || len(s.Secret) == 0 || !hmac.Equal(sig, mustHex(Sign(s.Secret, body))) {
		return Notification{}, ErrBadSignature
	}
	var in SandboxNotification
	if err := json.Unmarshal(body, &in); err != nil {
		return Notification{}, fmt.Errorf("%w: the body is not a JSON sandbox notification", ErrInvalid)
	}
	if in.BasketID <= 0 || in.Reference == "" || (in.Decision != Accept && in.Decision != Decline) {
		return Notification{}, fmt.Errorf("%w: basket_id, reference and decision (accept or decline) are required", ErrInvalid)
	}
	amt, err := money.Parse(in.Amount, in.Currency)
	if err != nil {
		return Notification{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	event := in.EventID
	if event == "" {
		event = in.Reference + ":" + string(in.Decision)
	}
	return Notification{Processor: SandboxName, EventID: event, Reference: in.Reference, BasketID: in.BasketID, Amount: amt,
		Decision: in.Decision, Raw: body}, nil
}

func mustHex(s string) []byte { b, _ := hex.DecodeString(s); return b }

// IssueCredit implements Processor. The sandbox's credits always succeed
// unless a failure was injected with FailCredits.
func (s *Sandbox) IssueCredit(_ context.Context, orderNumber, reference string, amount money.Amount, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.creditFail != nil {
		return "", fmt.Errorf("%w: %v", ErrCredit, s.creditFail)
	}
	if !s.credited[key] {
		if s.credited == nil {
			s.credited = map[string]bool{}
		}
		s.credited[key] = true
		s.credits = append(s.credits, amount.String()+" "+amount.Currency)
	}
	return "credit-" + key, nil
}

// Credits lists the amounts the sandbox gateway gave back, in order
// ("49.00 USD"), once per credit key.
func (s *Sandbox) Credits() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.credits...)
}

// FailCredits makes the sandbox gateway refuse credits with err (nil heals),
// as a real gateway does when it is down.
func (s *Sandbox) FailCredits(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creditFail = err
}
