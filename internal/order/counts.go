package order

import "time"

// CountCap bounds each count of Counts: past it a count is reported as "at
// least CountCap", so that the dashboard's header costs at most a bounded
// index range scan per status however many orders there are.
const CountCap = 100_000

// Count is a number of orders, exact unless AtLeast.
type Count struct {
	N       int64
	AtLeast bool // there are CountCap or more
}

// StatusCount is the number of orders in one status.
type StatusCount struct {
	Status Status
	Count
}

// Counts are the dashboard's header numbers.
type Counts struct {
	ByStatus       []StatusCount // every order status, in Statuses() order
	NeedsAttention Count
}

// ScheduledLine is an order line waiting in the retry queue.
type ScheduledLine struct {
	OrderNumber   string
	LineID        int64
	SKU           string
	Status        LineStatus
	Attempts      int
	LastError     string
	NextAttemptAt time.Time
	LeaseOwner    string
	LeaseUntil    *time.Time
}
