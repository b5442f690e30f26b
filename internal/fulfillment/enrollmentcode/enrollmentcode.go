// Package enrollmentcode is the fulfillment module of Enrollment Code
// products (Otto's bulk purchase): a line of quantity N issues N single-use
// codes for the seat, exactly once per line; revoking it revokes the codes
// not yet used.
package enrollmentcode

import (
	"context"
	"fmt"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/fulfillment/remote"
	"fulfill/internal/order"
)

// Name is the module's name in configuration.
const Name = "enrollment_code"

// Codes is where codes are kept.
type Codes interface {
	// IssueCodes makes sure the line has n codes (idempotent per line).
	IssueCodes(ctx context.Context, lineID int64, n int, seatSKU string) error
	// RevokeCodes revokes the line's unused codes.
	RevokeCodes(ctx context.Context, lineID int64) (int, error)
}

// Module issues enrollment codes.
type Module struct{ Codes Codes }

// Name implements fulfillment.Module.
func (m *Module) Name() string { return Name }

// Supports claims Enrollment Code lines.
func (m *Module) Supports(l order.Line) bool { return l.Class == catalog.ClassEnrollmentCode }

// Fulfill implements fulfillment.Module.
func (m *Module) Fulfill(ctx context.Context, _ order.Order, l order.Line, _ string) fulfillment.Result {
	start := time.Now()
	seat := l.Attributes.String("seat_sku")
	if seat == "" {
		return remote.Configuration("enrollment code product has no seat_sku attribute", start)
	}
	if err := m.Codes.IssueCodes(ctx, l.ID, l.Quantity, seat); err != nil {
		return fulfillment.Result{Outcome: fulfillment.OutcomeServer, Retryable: true, StartedAt: start, Duration: time.Since(start),
			Message: fmt.Sprintf("issuing codes: %v", err)}
	}
	return fulfillment.Result{Outcome: fulfillment.OutcomeSuccess, StartedAt: start, Duration: time.Since(start)}
}

// Revoke implements fulfillment.Module: codes already redeemed stay with
// their learners; the rest can no longer be used.
func (m *Module) Revoke(ctx context.Context, _ order.Order, l order.Line, _ string) fulfillment.Result {
	start := time.Now()
	if _, err := m.Codes.RevokeCodes(ctx, l.ID); err != nil {
		return fulfillment.Result{Outcome: fulfillment.OutcomeServer, Retryable: true, StartedAt: start, Message: err.Error()}
	}
	return fulfillment.Result{Outcome: fulfillment.OutcomeSuccess, StartedAt: start, Duration: time.Since(start)}
}
