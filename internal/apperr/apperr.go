// Package apperr is the service's small error vocabulary. Domain packages
// declare their sentinels with New (order.ErrNotFound is a NotFound, a
// used enrollment code a Conflict), wrap them with %w for context, and
// every front end maps the Code once, through Describe: the JSON API to a
// status and problem+json, the dashboard to a flash message, the
// storefront to words a learner understands. An error with no Code is
// internal: it is logged with the request id and never shown.
package apperr

import (
	"context"
	"errors"
	"net/http"
)

// Code classifies an error for every front end.
type Code string

// The codes. Each says what the caller can do about it.
const (
	// Invalid: the request breaks a rule; fix it and send it again.
	Invalid Code = "invalid"
	// Unauthenticated: no valid credentials; sign in.
	Unauthenticated Code = "unauthenticated"
	// Forbidden: signed in, but not allowed.
	Forbidden Code = "forbidden"
	// NotFound: no such thing, or not visible to the caller.
	NotFound Code = "not_found"
	// Conflict: the thing is in a state that refuses the request (already
	// used, already purchased, changed concurrently).
	Conflict Code = "conflict"
	// NotFulfillable: fulfillment was asked of an order that cannot be
	// fulfilled (Otto answers 406).
	NotFulfillable Code = "not_fulfillable"
	// PaymentRequired: the basket costs money and no way to pay was given.
	PaymentRequired Code = "payment_required"
	// Unavailable: a product cannot be bought (unknown, expired, not sold
	// here).
	Unavailable Code = "unavailable"
	// Unprocessable: the request is well formed but cannot be applied as
	// sent (Idempotency-Key reused with another body).
	Unprocessable Code = "unprocessable"
	// BadGateway: a system we depend on refused or failed.
	BadGateway Code = "bad_gateway"
)

// Error is a sentinel of the vocabulary: a code and a message that is safe
// to show. Wrap it with fmt.Errorf("%w: …") to add detail.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// New returns a sentinel error of code c.
func New(c Code, message string) error { return &Error{Code: c, Message: message} }

// CodeOf returns the code of the first vocabulary error in err's chain,
// or "" for an internal error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Kind describes how each front end answers an error of one code.
type Kind struct {
	// Status and Title are the JSON API's answer (problem+json).
	Status int
	Title  string
	// Flash is the dashboard's message prefix.
	Flash string
	// Learner is what the storefront tells a learner.
	Learner string
}

// kinds is the one table from code to answer.
var kinds = map[Code]Kind{
	Invalid:         {http.StatusBadRequest, "Bad Request", "Not done", "That request could not be understood."},
	Unauthenticated: {http.StatusUnauthorized, "Unauthorized", "Sign in again", "Please sign in to continue."},
	Forbidden:       {http.StatusForbidden, "Forbidden", "Not allowed", "You are not allowed to do that."},
	NotFound:        {http.StatusNotFound, "Not Found", "Not found", "We could not find that."},
	Conflict:        {http.StatusConflict, "Conflict", "Not done", "That cannot be done any more."},
	NotFulfillable:  {http.StatusNotAcceptable, "Not Acceptable", "Not fulfillable", "That order cannot be fulfilled now."},
	PaymentRequired: {http.StatusBadRequest, "Payment required", "Payment required", "This basket needs a payment."},
	Unavailable:     {http.StatusBadRequest, "Product unavailable", "Unavailable", "That product cannot be bought here."},
	Unprocessable:   {http.StatusUnprocessableEntity, "Unprocessable Content", "Not done", "That request cannot be applied."},
	BadGateway:      {http.StatusBadGateway, "Bad Gateway", "Another system failed", "A service we rely on did not answer; please try again."},
}

// internal is the answer to an error outside the vocabulary.
var internal = Kind{http.StatusInternalServerError, "Internal Server Error", "Something went wrong",
	"Something went wrong on our side. Please try again in a moment."}

// Describe returns how front ends answer err, and whether err is internal
// (then nothing of err may be shown, and it must be logged).
func Describe(err error) (Kind, bool) {
	if k, ok := kinds[CodeOf(err)]; ok {
		return k, false
	}
	return internal, true
}

// Public returns the text of err that may be shown: the message of a
// vocabulary error with its wrapped detail, or "" for an internal one.
// Domain code builds these messages from its own words and the request's
// values; an internal cause is never wrapped into a vocabulary error.
func Public(err error) string {
	if CodeOf(err) == "" {
		return ""
	}
	return err.Error()
}

type ctxKey struct{}

// WithRequestID returns ctx carrying the id of the request it serves; the
// root handler sets it, and every front end puts it in error answers and
// logs so that a person can find one in the other.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}
