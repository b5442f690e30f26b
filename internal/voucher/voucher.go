// Package voucher holds the codes a learner redeems for a product. Today
// these are Otto's enrollment codes: single-use codes bought in bulk, each
// worth one seat.
package voucher

import (
	"fulfill/internal/apperr"
	"fulfill/internal/statemachine"
)

// Errors of codes.
var (
	ErrNotFound = apperr.New(apperr.NotFound, "enrollment code not found")
	ErrUsed     = apperr.New(apperr.Conflict, "enrollment code already used or revoked")
)

// Status is the status of an enrollment code.
type Status string

const (
	// StatusAvailable: issued and not used; redemption or a refund of the
	// line that bought it moves it.
	StatusAvailable Status = "available"
	// StatusRedeemed: used by a learner for one seat. Terminal.
	StatusRedeemed Status = "redeemed"
	// StatusRevoked: its line was refunded before it was used. Terminal.
	StatusRevoked Status = "revoked"
)

// Statuses is the code state machine.
var Statuses = statemachine.Table[Status]{Name: "enrollment code", Moves: map[Status][]Status{
	StatusAvailable: {StatusRedeemed, StatusRevoked},
	StatusRedeemed:  {},
	StatusRevoked:   {},
}}

// EnrollmentCode is one single-use code issued by an Enrollment Code line.
type EnrollmentCode struct {
	Code          string
	LineID        int64
	SeatSKU       string
	Status        Status
	RedeemedBy    string
	RedeemedOrder string
}
