package order

import (
	"time"

	"fulfill/internal/catalog"
)

// User is a learner or staff member as known from the JWT claims.
type User struct {
	ID       int64
	Username string
	Email    string
	FullName string
	IsStaff  bool
}

// Order is a placed order. The retry fields summarise its lines.
type Order struct {
	ID             int64
	Number         string
	BasketID       int64
	User           User
	Status         Status
	Currency       string
	TotalMinor     int64
	DatePlaced     time.Time
	UpdatedAt      time.Time
	NeedsAttention bool
	Attempts       int
	LastError      string
	NextAttemptAt  *time.Time
	Lines          []Line
	Notes          []Note
}

// Line is an order line with a snapshot of the product as it was bought, so
// fulfillment never depends on later catalog edits.
type Line struct {
	ID             int64
	OrderID        int64
	ProductID      int64
	Class          catalog.Class
	Title          string
	SKU            string
	Attributes     catalog.Attributes
	Quantity       int
	UnitPriceMinor int64
	LinePriceMinor int64
	Status         LineStatus
	Attempts       int
	LastErrorClass string
	LastHTTPStatus int
	LastError      string
	NextAttemptAt  *time.Time
	FulfilledAt    *time.Time
	// RefundStatus is the status of the line's refund ("" if none; a
	// Denied refund shows only when no other refund exists).
	RefundStatus string
	// FulfillmentData is what the module got back (e.g. an entitlement uuid).
	FulfillmentData map[string]string
	// NeedsAttention: the line failed for good; a person must act.
	NeedsAttention bool
}

// Note is an order note; fulfillment errors keep the remote system's message
// here so support staff need not read logs (Otto PR #1976).
type Note struct {
	ID        int64
	LineID    int64
	Kind      string
	Message   string
	CreatedAt time.Time
}

// Note kinds.
const (
	NoteError = "Error"
	NoteInfo  = "Info"
)

// HistoryEntry is one recorded status change of an order or a line.
type HistoryEntry struct {
	LineID    int64 // 0 for the order itself
	From, To  string
	Reason    string
	Actor     string
	CreatedAt time.Time
}

// Attempt is one fulfillment attempt of one line.
type Attempt struct {
	LineID     int64
	Number     int
	Actor      string
	Module     string
	StartedAt  time.Time
	Duration   time.Duration
	Outcome    Outcome
	HTTPStatus int
	Message    string
}

// LineStatuses returns the statuses of the order's lines.
func (o Order) LineStatuses() []LineStatus {
	out := make([]LineStatus, len(o.Lines))
	for i, l := range o.Lines {
		out[i] = l.Status
	}
	return out
}

// Filter selects orders in a listing.
type Filter struct {
	Username       string
	Status         Status
	NeedsAttention *bool
	SKU            string // orders with a line of this SKU
	CourseID       string // orders with a line for this course run
	PlacedBefore   *time.Time
	PlacedAfter    *time.Time
	Numbers        []string
	AfterID        int64 // keyset paging: orders with a smaller id (newest first)
	Limit          int
}
