package payment

import (
	"time"

	"fulfill/internal/apperr"
	"fulfill/internal/lease"
	"fulfill/internal/money"
	"fulfill/internal/statemachine"
)

// State is where one recorded notification stands in the payment ledger.
// Every accepted amount ends in exactly one of: the order it paid for
// (placed, or replayed for a redelivery of that payment), an automatic
// refund through the same processor (refunded), or a person's attention.
type State string

const (
	// StateReceived: an accepted payment recorded and not yet acted on; the
	// handler, or the reconciler after it, places its order.
	StateReceived State = "received"
	// StatePlaced: it paid for the order it placed. Terminal.
	StatePlaced State = "placed"
	// StateReplayed: another notification of a payment already placed (a
	// checkout session and its payment intent). Terminal.
	StateReplayed State = "replayed"
	// StateDeclined: the processor declined; nothing was taken. Terminal.
	StateDeclined State = "declined"
	// StateRefundDue: taken for nothing that can be delivered (a second
	// payment of a placed basket, a seat already held, a basket that cannot
	// be placed); the refund worker credits it back.
	StateRefundDue State = "refund_due"
	// StateRefunded: credited back in full. Terminal.
	StateRefunded State = "refunded"
	// StateAttention: neither placed nor refunded after the tries allowed;
	// a person refunds or places it from the dashboard.
	StateAttention State = "attention"
)

// States is the payment ledger's machine.
var States = statemachine.Table[State]{Name: "payment", Moves: map[State][]State{
	StateReceived:  {StatePlaced, StateReplayed, StateRefundDue, StateAttention, StateReceived},
	StateRefundDue: {StateRefunded, StateRefundDue, StateAttention},
	StateAttention: {StateRefundDue, StateReceived},
	StatePlaced:    {},
	StateReplayed:  {},
	StateDeclined:  {},
	StateRefunded:  {},
}}

// ErrNotActionable is returned when staff act on a payment that does not
// need them.
var ErrNotActionable = apperr.New(apperr.Conflict, "the payment needs no action")

// Payment is one row of the ledger: a verified notification and what
// became of it.
type Payment struct {
	ID              int64
	Processor       string
	EventID         string
	Reference       string
	BasketID        int64
	Decision        Decision
	Amount          money.Amount
	State           State
	Cause           string // why it is refund_due or needs attention
	OrderNumber     string // the order it placed, or the basket's order it duplicated
	CreditReference string
	Attempts        int
	NextAttemptAt   *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Raw             []byte
}

// Notification is the payment as the processor sent it.
func (p Payment) Notification() Notification {
	return Notification{Processor: p.Processor, EventID: p.EventID, Reference: p.Reference, BasketID: p.BasketID,
		Amount: p.Amount, Decision: p.Decision, Raw: p.Raw}
}

// Errors of the ledger.
var (
	ErrNotFound = apperr.New(apperr.NotFound, "payment not found")
	ErrConflict = apperr.New(apperr.Conflict, "payment changed concurrently")
)

// Move is one named move of a payment in the ledger, for the store to
// write with compare-and-set on From (and on the lease of Owner, when
// set).
type Move struct {
	ID       int64
	From, To State
	// Owner is the lease holder making the move ("" for a person's move of
	// a payment nobody holds).
	Owner string
	// Cause says why (refund due, attention); CreditReference is the
	// processor's id of a refund; OrderNumber the order it placed or
	// duplicated. Empty values leave the row's as they are.
	Cause, CreditReference, OrderNumber string
	// Attempt counts one more try.
	Attempt bool
	// Next is when it is due again (nil: not scheduled), under Lease
	// (nil: released).
	Next  *time.Time
	Lease *lease.Lease
}
