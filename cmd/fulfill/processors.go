package main

import (
	"fmt"

	"fulfill/internal/config"
	"fulfill/internal/payment"
)

// newProcessor builds a configured payment processor other than the sandbox.
func newProcessor(name string, cfg *config.Config) (payment.Processor, error) {
	return nil, fmt.Errorf("payment processor %q is not available in this build", name)
}
