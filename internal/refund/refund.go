// Package refund holds refunds of order lines and their two state machines,
// with Otto's status names and transitions, and the service that approves
// them: credit through the payment processor, then revocation through the
// fulfillment modules.
package refund

import (
	"time"

	"fulfill/internal/apperr"
	"fulfill/internal/order"
	"fulfill/internal/statemachine"
)

// Errors.
var (
	ErrInvalidTransition = statemachine.ErrInvalidTransition
	ErrNotFound          = apperr.New(apperr.NotFound, "refund not found")
	ErrConflict          = apperr.New(apperr.Conflict, "refund changed concurrently")
	ErrInvalid           = apperr.New(apperr.Invalid, "invalid refund request")
)

// Status is the status of a refund.
type Status string

// Refund statuses (Otto's REFUND pipeline).
const (
	// StatusOpen: created, waiting for approval or denial.
	StatusOpen Status = "Open"
	// StatusDenied: refused. Terminal.
	StatusDenied Status = "Denied"
	// StatusPaymentRefundError: the credit failed; retried by the queue.
	StatusPaymentRefundError Status = "Payment Refund Error"
	// StatusPaymentRefunded: credited; revocation follows.
	StatusPaymentRefunded Status = "Payment Refunded"
	// StatusRevocationError: a line could not be revoked; retried.
	StatusRevocationError Status = "Revocation Error"
	// StatusComplete: credited and revoked. Terminal.
	StatusComplete Status = "Complete"
)

// Statuses lists every refund status.
func Statuses() []Status {
	return []Status{StatusOpen, StatusDenied, StatusPaymentRefundError, StatusPaymentRefunded, StatusRevocationError, StatusComplete}
}

// Refunds is Otto's REFUND pipeline. Unlike orders, moving to the same
// status is only allowed where the table lists a self-loop (Otto).
var Refunds = statemachine.Table[Status]{Name: "refund", Moves: map[Status][]Status{
	StatusOpen:               {StatusDenied, StatusPaymentRefundError, StatusPaymentRefunded},
	StatusPaymentRefundError: {StatusPaymentRefunded, StatusPaymentRefundError},
	StatusPaymentRefunded:    {StatusRevocationError, StatusComplete},
	StatusRevocationError:    {StatusRevocationError, StatusComplete},
	StatusDenied:             {},
	StatusComplete:           {},
}}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return Refunds.Valid(s) }

// Transition checks a refund status change.
func Transition(from, to Status) error { return Refunds.Check(from, to) }

// LineStatus is the status of a refund line.
type LineStatus string

// Refund line statuses (Otto's REFUND_LINE pipeline).
const (
	LineOpen            LineStatus = "Open"
	LineRevocationError LineStatus = "Revocation Error"
	LineDenied          LineStatus = "Denied"
	LineComplete        LineStatus = "Complete"
)

// LineStatuses lists every refund line status.
func LineStatuses() []LineStatus {
	return []LineStatus{LineOpen, LineRevocationError, LineDenied, LineComplete}
}

// Lines is Otto's REFUND_LINE pipeline.
var Lines = statemachine.Table[LineStatus]{Name: "refund line", Moves: map[LineStatus][]LineStatus{
	LineOpen:            {LineDenied, LineRevocationError, LineComplete},
	LineRevocationError: {LineRevocationError, LineComplete},
	LineDenied:          {},
	LineComplete:        {},
}}

// LineTransition checks a refund line status change.
func LineTransition(from, to LineStatus) error { return Lines.Check(from, to) }

// Action is what an approver asks of a refund.
type Action string

// Actions of PUT /api/v2/refunds/{id}/process/.
const (
	ActionApprove            Action = "approve"
	ActionApprovePaymentOnly Action = "approve_payment_only"
	ActionDeny               Action = "deny"
)

// Valid reports whether a is a known action.
func (a Action) Valid() bool {
	return a == ActionApprove || a == ActionApprovePaymentOnly || a == ActionDeny
}

// Refundable reports whether line l of order o may be refunded: Otto's
// rule, a Complete line of a Complete order, and also a paid line that
// failed (a fulfillment error status), so that support can give back what
// could not be delivered. An Open line is still being delivered; a line
// with a refund that is not Denied is refunded once only. The store's
// CreateRefunds applies the same rule in SQL.
func Refundable(o order.Order, l order.Line) bool {
	switch {
	case l.InRefund():
		return false
	case l.Status == order.LineComplete:
		return o.Status == order.StatusComplete
	case l.Status.IsError():
		return l.LinePriceMinor > 0
	}
	return false
}

// Refund is a request to give money back for some lines of one order.
type Refund struct {
	ID               int64
	OrderID          int64
	OrderNumber      string
	Username         string
	Status           Status
	Action           Action
	TotalCreditMinor int64
	Currency         string
	Attempts         int
	LastError        string
	NeedsAttention   bool
	NextAttemptAt    *time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	Lines            []Line
}

// Line is one refunded order line.
type Line struct {
	ID              int64
	OrderLineID     int64
	LineCreditMinor int64
	Quantity        int
	Status          LineStatus
	LastError       string
}
