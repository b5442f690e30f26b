package basket

import (
	"fulfill/internal/apperr"
	"fulfill/internal/money"
	"fulfill/internal/statemachine"
)

// Status is the status of a stored basket (Oscar's basket statuses).
type Status string

const (
	// StatusOpen: the learner may still check it out; checkout moves it.
	StatusOpen Status = "Open"
	// StatusFrozen: waiting for its payment; the payment's notification
	// submits it, a decline thaws it back to Open.
	StatusFrozen Status = "Frozen"
	// StatusSubmitted: it became an order. Terminal.
	StatusSubmitted Status = "Submitted"
)

// Statuses is the basket state machine. Freezing again for the same
// processor (the learner pressed pay twice) is the Frozen self-loop.
var Statuses = statemachine.Table[Status]{Name: "basket", Moves: map[Status][]Status{
	StatusOpen:      {StatusFrozen, StatusSubmitted},
	StatusFrozen:    {StatusFrozen, StatusOpen, StatusSubmitted},
	StatusSubmitted: {},
}}

// ErrNotOpen is returned when a basket that is frozen for payment or
// already submitted is asked to be checked out again.
var ErrNotOpen = apperr.New(apperr.Conflict, "basket is not open")

// ErrNotFrozen is returned when a payment arrives for a basket that is not
// waiting for one.
var ErrNotFrozen = apperr.New(apperr.Conflict, "basket is not awaiting payment")

// Stored is a basket as the learner's pages show it: its owner and lines
// (prices as they were when the products were added), its status, the
// processor a frozen basket waits on, and the number of the order it
// became, once submitted.
type Stored struct {
	Basket
	Status      Status
	Processor   string
	OrderNumber string
}

// Payable is a basket as a payment page shows it.
type Payable struct {
	ID        int64
	Status    Status
	Processor string
	Total     money.Amount
	Username  string
}
