// Package order holds orders, their lines and the two state machines that
// move them. Statuses are persisted with their wire names, the same strings
// Otto uses, so that reports and clients written for Otto keep working.
package order

import (
	"fulfill/internal/apperr"
	"fulfill/internal/statemachine"
)

// ErrInvalidTransition is returned when a status change is not in the table.
var ErrInvalidTransition = statemachine.ErrInvalidTransition

// ErrNotFound is returned when an order (or one of its lines) does not exist
// or is not visible to the caller.
var ErrNotFound = apperr.New(apperr.NotFound, "order not found")

// ErrConflict is returned when a compare-and-set found the row in another
// status than expected: another actor moved it first.
var ErrConflict = apperr.New(apperr.Conflict, "order changed concurrently")

// ErrNotFulfillable is returned when fulfillment is asked of an order that is
// neither Open nor Fulfillment Error (Otto answers 406).
var ErrNotFulfillable = apperr.New(apperr.NotFulfillable, "order is not fulfillable")

// ErrNotDelivered is returned by a resubmission that ran but left the
// order short of Complete; its message carries the status and last error.
var ErrNotDelivered = apperr.New(apperr.BadGateway, "not delivered")

// ErrAlreadyPurchased is returned when a learner would hold a second live
// order line of a product that is bought once (a seat): the database
// refuses it, whichever front end or replica asked.
var ErrAlreadyPurchased = apperr.New(apperr.Conflict, "already purchased")

// Status is the status of an order.
type Status string

const (
	// StatusPending: placed, waiting for the payment processor. Payment moves it.
	StatusPending Status = "Pending"
	// StatusPaymentError: payment failed. Terminal.
	StatusPaymentError Status = "Payment Error"
	// StatusOpen: placed and paid (or free); fulfillment moves it on.
	StatusOpen Status = "Open"
	// StatusFulfillmentError: at least one line failed; the retry queue, a
	// manual resubmission or a mark-complete moves it on.
	StatusFulfillmentError Status = "Fulfillment Error"
	// StatusComplete: every line delivered. Terminal.
	StatusComplete Status = "Complete"
)

// Statuses lists every order status.
func Statuses() []Status {
	return []Status{StatusPending, StatusPaymentError, StatusOpen, StatusFulfillmentError, StatusComplete}
}

// Orders is Otto's OSCAR_ORDER_STATUS_PIPELINE.
var Orders = statemachine.Table[Status]{Name: "order", SameIsNoop: true, Moves: map[Status][]Status{
	StatusPending:          {StatusOpen, StatusPaymentError},
	StatusPaymentError:     {},
	StatusOpen:             {StatusComplete, StatusFulfillmentError},
	StatusFulfillmentError: {StatusComplete},
	StatusComplete:         {},
}}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return Orders.Valid(s) }

// Fulfillable reports whether fulfillment may run on an order in s.
func (s Status) Fulfillable() bool { return s == StatusOpen || s == StatusFulfillmentError }

// Transition checks that an order may move from one status to another. Moving
// to the same status is allowed and is a no-op, as in Oscar.
func Transition(from, to Status) error { return Orders.Check(from, to) }

// Outcome is what one fulfillment attempt of a line did: success, or the
// class of its failure. It is the one failure vocabulary from the remote
// call (the LMS client's error classes are Outcomes) through the module's
// result to the line status.
type Outcome string

// Outcomes. They follow Otto's mapping of requests exceptions:
// ConnectionError/ConnectTimeout → network, Timeout → timeout, an HTTP
// answer that is not 2xx → server, missing settings → configuration.
const (
	OutcomeSuccess       Outcome = "success"
	OutcomeConfiguration Outcome = "configuration"
	OutcomeNetwork       Outcome = "network"
	OutcomeTimeout       Outcome = "timeout"
	OutcomeServer        Outcome = "server"
)

// LineStatus is the line status an attempt with this outcome leads to, ""
// for an outcome that is no attempt (a call skipped).
func (o Outcome) LineStatus() LineStatus {
	switch o {
	case OutcomeSuccess:
		return LineComplete
	case OutcomeConfiguration:
		return LineConfigurationError
	case OutcomeNetwork:
		return LineNetworkError
	case OutcomeTimeout:
		return LineTimeoutError
	case OutcomeServer:
		return LineServerError
	}
	return ""
}

// LineStatus is the status of an order line.
type LineStatus string

const (
	// LineOpen: not yet delivered. Fulfillment moves it.
	LineOpen LineStatus = "Open"
	// LineComplete: delivered. Terminal; never fulfilled again.
	LineComplete LineStatus = "Complete"
	// LineConfigurationError: no module claims the line, or its product or
	// the service is misconfigured. Permanent until an operator acts.
	LineConfigurationError LineStatus = "Fulfillment Configuration Error"
	// LineNetworkError: the remote system could not be reached. Retried.
	LineNetworkError LineStatus = "Fulfillment Network Error"
	// LineTimeoutError: the remote system did not answer in time. Retried.
	LineTimeoutError LineStatus = "Fulfillment Timeout Error"
	// LineServerError: the remote system answered with an error. Retried when
	// the answer is transient (5xx, 408, 429).
	LineServerError LineStatus = "Fulfillment Server Error"
)

// LineStatuses lists every line status.
func LineStatuses() []LineStatus {
	return []LineStatus{LineOpen, LineComplete, LineConfigurationError, LineNetworkError, LineTimeoutError, LineServerError}
}

var lineErrors = []LineStatus{LineConfigurationError, LineNetworkError, LineTimeoutError, LineServerError}

// Lines is Otto's OSCAR_LINE_STATUS_PIPELINE with one change: an error may
// become another error. Otto refuses that, so a retry failing differently
// kept the stale error (edx-otto.md 1.5).
var Lines = func() statemachine.Table[LineStatus] {
	m := map[LineStatus][]LineStatus{
		LineOpen:     append([]LineStatus{LineComplete}, lineErrors...),
		LineComplete: {},
	}
	for _, e := range lineErrors {
		m[e] = append([]LineStatus{LineComplete}, lineErrors...)
	}
	return statemachine.Table[LineStatus]{Name: "line", SameIsNoop: true, Moves: m}
}()

// Valid reports whether s is a known line status.
func (s LineStatus) Valid() bool { return Lines.Valid(s) }

// IsError reports whether s is one of the fulfillment error statuses.
func (s LineStatus) IsError() bool {
	for _, e := range lineErrors {
		if s == e {
			return true
		}
	}
	return false
}

// LineTransition checks that a line may move from one status to another;
// the same status is a no-op.
func LineTransition(from, to LineStatus) error { return Lines.Check(from, to) }

// Rollup derives an order's status after fulfillment from its lines: all
// Complete → Complete; any line in error → Fulfillment Error. Lines still
// Open (not attempted yet, for instance while the LMS breaker is open) leave
// the order where it is.
func Rollup(current Status, lines []LineStatus) Status {
	complete := true
	for _, l := range lines {
		if l.IsError() {
			return StatusFulfillmentError
		}
		if l != LineComplete {
			complete = false
		}
	}
	if complete {
		return StatusComplete
	}
	return current
}
