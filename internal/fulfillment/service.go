package fulfillment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/lease"
	"fulfill/internal/order"
)

// Claim is an order and the lines an actor holds the lease on, as Owner.
type Claim struct {
	Order order.Order
	Lines []order.Line
	Owner string
}

// LineChange is what one attempt (or skip) does to one leased line.
type LineChange struct {
	LineID         int64
	From, To       order.LineStatus
	Attempt        *order.Attempt // nil when no call was made
	NextAttemptAt  *time.Time     // nil: nothing scheduled
	NeedsAttention bool
	Note           string            // kept as an order note when not empty
	Data           map[string]string // replaces the line's fulfillment data when not nil
}

// LineSkipped is the move of a line no call was made for (its module's
// breaker is open): it keeps its status and last error, due again at next.
func LineSkipped(l order.Line, next time.Time) LineChange {
	return LineChange{LineID: l.ID, From: l.Status, To: l.Status, NextAttemptAt: &next}
}

// LineFulfilled is the move of a line delivered by attempt a, keeping what
// the module got back (data) for its revocation.
func LineFulfilled(l order.Line, a order.Attempt, data map[string]string) (LineChange, error) {
	ch := LineChange{LineID: l.ID, From: l.Status, To: order.LineComplete, Attempt: &a, Data: data}
	return ch, order.LineTransition(ch.From, ch.To)
}

// LineFailed is the move of a line whose attempt a failed with its
// outcome's class: retried at next, or, when next is nil (a permanent
// failure, or retries exhausted), flagged for a person. The remote
// system's message becomes an order note.
func LineFailed(l order.Line, a order.Attempt, next *time.Time) (LineChange, error) {
	ch := LineChange{LineID: l.ID, From: l.Status, To: a.Outcome.LineStatus(), Attempt: &a, NextAttemptAt: next,
		NeedsAttention: next == nil, Note: fmt.Sprintf("Fulfillment of line %d (%s) failed: %s", l.ID, l.SKU, a.Message)}
	if ch.To == "" || ch.To == order.LineComplete {
		return ch, fmt.Errorf("%w: %q is no failure", order.ErrInvalidTransition, a.Outcome)
	}
	return ch, order.LineTransition(ch.From, ch.To)
}

// Failure is the last-error fields the change writes: the attempt's class,
// HTTP status and message for a failed attempt, none otherwise.
func (ch LineChange) Failure() (class order.Outcome, status int, message string) {
	if a := ch.Attempt; a != nil && a.Outcome != OutcomeSuccess {
		return a.Outcome, a.HTTPStatus, a.Message
	}
	return "", 0, ""
}

// Outcome is the result of one fulfillment round of one order, for the
// store to write in one transaction, under the lease held by Owner.
type Outcome struct {
	OrderID int64
	// Order is the order as claimed; when set, the store returns it
	// brought up to date instead of reading it again.
	Order   order.Order
	Owner   string
	Actor   string
	Now     time.Time
	Changes []LineChange
}

// Store is what fulfillment needs from storage.
type Store interface {
	// ClaimOrder leases, for owner until until, the lines of the order that
	// are not Complete, have no refund that is not Denied, and are not
	// leased by a live holder. It returns the order
	// with all its lines and the lines it leased. ErrNotFulfillable when the
	// order is not Open or Fulfillment Error; order.ErrNotFound.
	ClaimOrder(ctx context.Context, number, owner string, now, until time.Time) (Claim, error)
	// ClaimDue leases up to limit lines whose next attempt is due, in due
	// order, grouped by order, none of a product class in skip.
	ClaimDue(ctx context.Context, owner string, now, until time.Time, limit int, skip []catalog.Class) ([]Claim, error)
	// RecordOutcome applies the changes with compare-and-set on status and
	// lease, releases the leases, rolls the order status up and returns the
	// order as it now is.
	RecordOutcome(ctx context.Context, out Outcome) (order.Order, error)
	// GetOrder returns an order with its lines.
	GetOrder(ctx context.Context, number string) (order.Order, error)
	// ListOrders returns orders matching f, newest first.
	ListOrders(ctx context.Context, f order.Filter) ([]order.Order, error)
}

// Observer is told what fulfillment does, for metrics and alerts.
type Observer interface {
	Attempt(module, outcome string, d time.Duration)
	NeedsAttention(o order.Order, reason string)
}

// Service runs fulfillment rounds: it calls modules with no lock held and
// records what happened.
type Service struct {
	Store    Store
	Registry *Registry
	Policy   Policy
	// Lease is how long a holder may work on a line before another actor
	// may take it over; it must exceed the longest module call.
	Lease time.Duration
	// WaitForLease bounds how long a manual resubmission waits for another
	// actor's lease on the same lines to end.
	WaitForLease time.Duration
	// BreakerDelay is when a line skipped by an open breaker is tried again.
	BreakerDelay time.Duration
	Observer     Observer
	// Owners names the holders of the leases this service takes.
	Owners *lease.Owners
	Log    *slog.Logger
	Now    func() time.Time
}

// Waiting says why a line not yet delivered waits, when its module's
// circuit breaker holds it back ("" otherwise): shown beside the line's
// own last error, on the dashboard and in the API, so that support sees
// the cause while the paused worker writes nothing.
func (s *Service) Waiting(l order.Line) string {
	if l.Status == order.LineComplete || s.Registry == nil {
		return ""
	}
	m := s.Registry.moduleFor(l)
	if m == nil {
		return ""
	}
	b := s.Registry.breakers[m.Name()]
	if b == nil {
		return ""
	}
	since, open := b.OpenedAt()
	if !open {
		return ""
	}
	return fmt.Sprintf("waiting: the %s module's circuit is open since %s (its remote system kept failing); retried when it closes",
		m.Name(), since.UTC().Format(time.RFC3339))
}

// NewLease returns a lease for a new actor of kind ("checkout"), lasting
// Lease from now: the lease under which new lines are written, so that the
// retry worker takes them over only if their writer dies.
func (s *Service) NewLease(kind string) lease.Lease {
	return s.owners().For(kind, s.now(), s.Lease)
}

func (s *Service) owners() *lease.Owners {
	if s.Owners == nil {
		s.Owners = lease.NewOwners("")
	}
	return s.Owners
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Run fulfills the claimed lines and records the outcome under the
// claim's lease. The module calls are detached from ctx's cancellation
// (a client that hangs up must not turn a delivery into a network error),
// but not from its values.
func (s *Service) Run(ctx context.Context, c Claim, actor string) (order.Order, error) {
	return s.run(ctx, c, actor, false)
}

// run is Run; byPerson makes the module calls even through an open
// breaker: a person asked for them now.
func (s *Service) run(ctx context.Context, c Claim, actor string, byPerson bool) (order.Order, error) {
	if len(c.Lines) == 0 {
		return c.Order, nil
	}
	ctx = context.WithoutCancel(ctx)
	fulfill := s.Registry.Fulfill
	if byPerson {
		fulfill = s.Registry.FulfillNow
	}
	results := fulfill(ctx, c.Order, c.Lines)
	out := Outcome{OrderID: c.Order.ID, Order: c.Order, Owner: c.Owner, Actor: actor, Now: s.now()}
	for i, l := range c.Lines {
		ch, err := s.change(c.Order, l, results[i], actor, out.Now)
		if err != nil {
			return c.Order, fmt.Errorf("fulfillment of %s: %w", c.Order.Number, err)
		}
		out.Changes = append(out.Changes, ch)
	}
	o, err := s.Store.RecordOutcome(ctx, out)
	if err != nil {
		return o, fmt.Errorf("record fulfillment of %s: %w", c.Order.Number, err)
	}
	for _, ch := range out.Changes {
		if ch.NeedsAttention {
			reason := "permanent failure"
			if ch.Attempt != nil && ch.Attempt.Outcome != OutcomeConfiguration && l(o, ch.LineID).Attempts >= s.Policy.Attempts {
				reason = "retries exhausted"
			}
			s.Log.Error("order needs attention", "order", o.Number, "line", ch.LineID, "status", ch.To, "reason", reason, "error", ch.Note)
			if s.Observer != nil {
				s.Observer.NeedsAttention(o, reason)
			}
		}
	}
	return o, nil
}

func l(o order.Order, id int64) order.Line {
	for _, x := range o.Lines {
		if x.ID == id {
			return x
		}
	}
	return order.Line{}
}

// change turns a module result into the named move of the line to record.
func (s *Service) change(o order.Order, ln order.Line, r Result, actor string, now time.Time) (LineChange, error) {
	if r.Outcome == OutcomeSkipped {
		return LineSkipped(ln, now.Add(s.BreakerDelay)), nil
	}
	if s.Observer != nil {
		s.Observer.Attempt(r.Module, string(r.Outcome), r.Duration)
	}
	a := order.Attempt{LineID: ln.ID, Number: ln.Attempts + 1, Actor: actor, Module: r.Module,
		StartedAt: r.StartedAt, Duration: r.Duration, Outcome: r.Outcome, HTTPStatus: r.HTTPStatus, Message: r.Message}
	if r.Outcome == OutcomeSuccess {
		s.Log.Info("line_fulfilled", "order", o.Number, "line", ln.ID, "sku", ln.SKU, "module", r.Module, "attempt", a.Number)
		return LineFulfilled(ln, a, r.Data)
	}
	s.Log.Warn("line fulfillment failed", "order", o.Number, "line", ln.ID, "module", r.Module,
		"outcome", r.Outcome, "http_status", r.HTTPStatus, "attempt", a.Number, "message", r.Message)
	var next *time.Time
	if r.Retryable && !s.Policy.Exhausted(a.Number) {
		t := now.Add(s.Policy.Delay(a.Number, r.RetryAfter))
		next = &t
	}
	return LineFailed(ln, a, next)
}

// Resubmit is a manual retry of every line of the order that is not
// Complete, whatever its schedule. Lines leased by another actor are waited
// for (up to WaitForLease) rather than called twice. ErrNotFulfillable when
// the order is not Open or Fulfillment Error.
func (s *Service) Resubmit(ctx context.Context, number, actor string) (order.Order, error) {
	owner := s.owners().Next("resubmit")
	deadline := s.now().Add(s.WaitForLease)
	for waited := false; ; waited = true {
		now := s.now()
		c, err := s.Store.ClaimOrder(ctx, number, owner, now, now.Add(s.Lease))
		if errors.Is(err, order.ErrNotFulfillable) && waited && c.Order.Status == order.StatusComplete {
			return c.Order, nil // the actor we waited for completed it
		}
		if err != nil {
			return c.Order, err
		}
		if len(c.Lines) > 0 {
			return s.run(ctx, c, actor, true)
		}
		pending := false
		for _, ln := range c.Order.Lines {
			if ln.Status != order.LineComplete && !ln.InRefund() {
				pending = true
			}
		}
		if !pending || !now.Before(deadline) {
			return c.Order, nil
		}
		select {
		case <-ctx.Done():
			return c.Order, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Resubmission is what resubmitting one order did.
type Resubmission struct {
	Number string
	Order  order.Order
	Err    error
}

// Skipped reports an order there was nothing to resubmit for (not
// fulfillable, or unknown).
func (r Resubmission) Skipped() bool {
	return errors.Is(r.Err, order.ErrNotFulfillable) || errors.Is(r.Err, order.ErrNotFound)
}

// Complete reports an order that is Complete after its resubmission.
func (r Resubmission) Complete() bool { return r.Err == nil && r.Order.Status == order.StatusComplete }

// ResubmitMany resubmits orders, at most concurrency at a time (each on its
// own goroutine), and returns one result per number, in order. The API's
// bulk fulfill, the dashboard's bulk retry and the CLI all call it.
func (s *Service) ResubmitMany(ctx context.Context, numbers []string, actor string, concurrency int) []Resubmission {
	out := make([]Resubmission, len(numbers))
	sem := make(chan struct{}, max(1, concurrency))
	var wg sync.WaitGroup
	for i, n := range numbers {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			o, err := s.Resubmit(ctx, n, actor)
			if err == nil && o.Status != order.StatusComplete {
				err = fmt.Errorf("%w: still %s: %s", order.ErrNotDelivered, o.Status, o.LastError)
			}
			out[i] = Resubmission{Number: n, Order: o, Err: err}
		})
	}
	wg.Wait()
	return out
}

// Matching returns the numbers of the orders matching f that a bulk
// resubmission would take, newest first, at most limit; truncated says
// more matched. f.Status defaults to Fulfillment Error and must be a
// fulfillable status.
func (s *Service) Matching(ctx context.Context, f order.Filter, limit int) (numbers []string, truncated bool, err error) {
	if f.Status == "" {
		f.Status = order.StatusFulfillmentError
	}
	if !f.Status.Fulfillable() {
		return nil, false, fmt.Errorf("%w: %s orders cannot be retried: only Open and Fulfillment Error orders can", order.ErrNotFulfillable, f.Status)
	}
	f.Limit = 1000
	for {
		page, err := s.Store.ListOrders(ctx, f)
		if err != nil {
			return nil, false, err
		}
		for _, o := range page {
			if len(numbers) == limit {
				return numbers, true, nil
			}
			numbers = append(numbers, o.Number)
		}
		if len(page) < f.Limit {
			return numbers, false, nil
		}
		f.AfterID = page[len(page)-1].ID
	}
}

// Worker runs due retries until ctx ends.
type Worker struct {
	Service *Service
	Owner   string
	// Poll is the pause between two looks for due lines when none was found.
	Poll time.Duration
	// Batch is how many lines one look may lease.
	Batch int
	// MaxInFlight bounds the orders being fulfilled at once by this worker;
	// each waits on its own goroutine.
	MaxInFlight int
}

// probeLines is how many lines of a module the worker claims as its
// breaker's probe.
const probeLines = 1

// Run polls for due lines and fulfills them until ctx is cancelled; it
// waits for the rounds it started before returning.
//
// A module whose breaker is open pauses its lines instead of rewriting
// them: until the cooldown ends the worker claims none of them (they stay
// due, unwritten); then it claims probeLines of them, one probe at a time,
// while its other lines still wait; once the probe closes the breaker they
// are claimed in batches in due order again.
func (w *Worker) Run(ctx context.Context) {
	s := w.Service
	sem := make(chan struct{}, max(1, w.MaxInFlight))
	defer func() { // wait for rounds in flight
		for range cap(sem) {
			sem <- struct{}{}
		}
	}()
	var mu sync.Mutex
	probing := map[string]bool{} // modules whose probe this worker is running
	start := func(c Claim, probe string) {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if probe != "" {
				defer func() {
					mu.Lock()
					delete(probing, probe)
					mu.Unlock()
				}()
			}
			if _, err := s.Run(ctx, c, "retry-worker"); err != nil {
				s.Log.Error("retry fulfillment", "order", c.Order.Number, "error", err)
			}
		}()
	}
	claim := func(now time.Time, limit int, skip []catalog.Class) []Claim {
		claims, err := s.Store.ClaimDue(ctx, w.Owner, now, now.Add(s.Lease), limit, skip)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.Log.Error("claim due lines", "error", err)
		}
		return claims
	}
	for {
		free := cap(sem) - len(sem)
		want := min(free, w.Batch)
		n := 0
		if free > 0 {
			now := s.now()
			skip, probes := s.Registry.PausedClasses()
			for module, others := range probes {
				mu.Lock()
				busy := probing[module]
				mu.Unlock()
				if busy || n+probeLines > want {
					continue
				}
				for _, c := range claim(now, probeLines, others) {
					n += len(c.Lines)
					mu.Lock()
					probing[module] = true
					mu.Unlock()
					start(c, module)
				}
			}
			if n < want {
				for _, c := range claim(now, want-n, skip) {
					n += len(c.Lines)
					start(c, "")
				}
			}
		}
		if n > 0 && n >= want {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.Poll):
		}
	}
}
