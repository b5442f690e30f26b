package order

import "time"

// Summary is what an order shows of its lines: the status they roll up to,
// whether any needs a person, the soonest next attempt and the first last
// error of a line not yet delivered.
type Summary struct {
	Status         Status
	NeedsAttention bool
	NextAttemptAt  *time.Time
	LastError      string
}

// Summarize rolls an order now in status current up from all its lines as
// committed (not only the ones one actor held), and checks the move
// against the order table.
func Summarize(current Status, lines []Line) (Summary, error) {
	var s Summary
	statuses := make([]LineStatus, len(lines))
	for i, l := range lines {
		statuses[i] = l.Status
		s.NeedsAttention = s.NeedsAttention || l.NeedsAttention
		if l.NextAttemptAt != nil && (s.NextAttemptAt == nil || l.NextAttemptAt.Before(*s.NextAttemptAt)) {
			t := *l.NextAttemptAt
			s.NextAttemptAt = &t
		}
		if l.Status != LineComplete && l.LastError != "" && s.LastError == "" {
			s.LastError = l.LastError
		}
	}
	s.Status = Rollup(current, statuses)
	return s, Transition(current, s.Status)
}

// Refresh brings o up to date with a summary written at, its attempt
// count, and the fresh state of some of its lines (by id), so that a
// writer can hand back the order as committed without reading it again.
func (o *Order) Refresh(s Summary, attempts int, at time.Time, fresh map[int64]Line) {
	o.Status, o.NeedsAttention, o.NextAttemptAt, o.LastError, o.Attempts, o.UpdatedAt =
		s.Status, s.NeedsAttention, s.NextAttemptAt, s.LastError, attempts, at
	lines := make([]Line, len(o.Lines))
	for i, l := range o.Lines {
		if f, ok := fresh[l.ID]; ok {
			l.Status, l.NextAttemptAt, l.LastError, l.Attempts = f.Status, f.NextAttemptAt, f.LastError, f.Attempts
			l.LastErrorClass, l.LastHTTPStatus, l.FulfilledAt, l.FulfillmentData = f.LastErrorClass, f.LastHTTPStatus, f.FulfilledAt, f.FulfillmentData
			l.NeedsAttention = f.NeedsAttention
		}
		lines[i] = l
	}
	o.Lines = lines
}
