package main

import (
	"fmt"

	"fulfill/internal/config"
	"fulfill/internal/payment"
	"fulfill/internal/payment/stripe"
)

// newProcessor builds a configured payment processor other than the sandbox.
func newProcessor(name string, cfg *config.Config) (payment.Processor, error) {
	switch name {
	case stripe.Name:
		return stripe.New(stripe.Config{SecretKey: cfg.StripeKey, WebhookSecret: cfg.StripeWebhook, BackendURL: cfg.StripeBackend})
	}
	return nil, fmt.Errorf("unknown payment processor %q", name)
}
