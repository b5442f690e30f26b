// Package remote turns the answer of a call to a remote system (the LMS, a
// webhook) into a fulfillment result with the exact class of failure, the
// same for every module that calls out.
package remote

import (
	"errors"
	"time"

	"fulfill/internal/fulfillment"
	"fulfill/internal/lms"
	"fulfill/internal/order"
)

// Result classifies err (nil: success) of a call that ran from start to end.
func Result(err error, start, end time.Time) fulfillment.Result {
	r := fulfillment.Result{Outcome: fulfillment.OutcomeSuccess, StartedAt: start, Duration: end.Sub(start)}
	if err == nil {
		return r
	}
	r.Message = err.Error()
	var le *lms.Error
	if !errors.As(err, &le) {
		r.Outcome, r.Retryable = fulfillment.OutcomeNetwork, true
		return r
	}
	r.HTTPStatus, r.RetryAfter, r.Retryable = le.StatusCode, le.RetryAfter, le.Retryable()
	if le.Message != "" {
		r.Message = le.Message
	}
	r.Outcome = le.Class
	if r.Outcome.LineStatus() == "" || r.Outcome == order.OutcomeSuccess {
		r.Outcome = order.OutcomeServer // an error of no known class
	}
	return r
}

// Configuration is a failure found before any call: permanent.
func Configuration(msg string, at time.Time) fulfillment.Result {
	return fulfillment.Result{Outcome: fulfillment.OutcomeConfiguration, StartedAt: at, Message: msg}
}
