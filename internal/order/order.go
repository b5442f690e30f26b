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
	// GAClientID and IP are the ga_client_id and lms_ip of the token's
	// tracking_context, sent to the LMS with the enrollments of an order
	// this request places (X-Edx-Ga-Client-Id, X-Forwarded-For), as Otto
	// sends them. They live only as long as the request: the database
	// keeps no copy, so an order read back (by the retry worker, say)
	// carries none.
	GAClientID string
	IP         string
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
	// Discounts are what offers took off its lines, one per line and
	// offer; Vouchers the vouchers that unlocked them (at most one).
	Discounts []Discount
	Vouchers  []Voucher
}

// TotalBeforeDiscounts is the order's total before its discounts.
func (o Order) TotalBeforeDiscounts() int64 {
	t := o.TotalMinor
	for _, d := range o.Discounts {
		t += d.Amount
	}
	return t
}

// Discount is one offer's discount on one line of an order (Oscar's
// OrderDiscount, per line), a snapshot taken when the order was placed.
type Discount struct {
	LineID    int64
	OfferID   int64
	OfferName string
	OfferType string
	VoucherID int64
	Code      string
	// BenefitType and BenefitValue are the offer's benefit (basis points
	// for a Percentage, minor units of Currency otherwise).
	BenefitType  string
	BenefitValue int64
	Currency     string
	// Applications is how often the offer applied in the whole order.
	Applications int
	Amount       int64
}

// Voucher is a voucher an order used, as it stands now.
type Voucher struct {
	ID   int64
	Code string
	// Name is Otto's voucher name: its coupon's title and the code.
	Name      string
	Usage     string
	Start     time.Time
	End       time.Time
	CreatedAt time.Time
	OfferIDs  []int64
	// NumOrders counts the live (not released) orders that used it, and
	// TotalDiscount what those took off.
	NumOrders     int
	TotalDiscount int64
	// Released tells that this order's use was given back (a full refund).
	Released bool
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

// InRefund reports whether the line has a refund that is not Denied: it
// is being given back, or was, and is refunded and fulfilled no more.
func (l Line) InRefund() bool { return l.RefundStatus != "" && l.RefundStatus != "Denied" }

// What an order's refunds add up to (Order.RefundState).
const (
	RefundPending = "Refund pending"
	RefundPartly  = "Partly refunded"
	RefundFull    = "Refunded"
)

// RefundState sums up the refunds of the order's lines: "" when no line
// has one (Denied ones do not count), RefundPending while one is not
// finished, RefundFull when every line was refunded, else RefundPartly.
func (o Order) RefundState() string {
	done, pending := 0, 0
	for _, l := range o.Lines {
		switch {
		case !l.InRefund():
		case l.RefundStatus == "Complete":
			done++
		default: // Open, Revocation Error
			pending++
		}
	}
	switch {
	case pending > 0:
		return RefundPending
	case done == 0:
		return ""
	case done == len(o.Lines):
		return RefundFull
	}
	return RefundPartly
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
	// AfterID is the keyset cursor, the id of the last order of the page
	// before: the orders after it in the listing's order, by id or, when
	// PlacedBefore or PlacedAfter is set, by (date placed, id), newest
	// first. The store reads the cursor order's date itself, so callers
	// page by id either way (and an id is all a client's cursor holds).
	AfterID int64
	Limit   int
}
