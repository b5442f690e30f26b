package refund

import (
	"context"
	"errors"
	"fmt"
	"fulfill/internal/apperr"
	"fulfill/internal/lease"
	"log/slog"
	"time"

	"fulfill/internal/fulfillment"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// ErrNoPayment is returned by a store when an order has no payment source.
var ErrNoPayment = apperr.New(apperr.Conflict, "order has no payment source")

// Selection names the lines to refund: a learner's lines of one course, or
// lines of one order (all of them when LineIDs is empty).
type Selection struct {
	Username    string
	CourseID    string
	OrderNumber string
	LineIDs     []int64
}

// Credit is a credit issued by a processor, recorded as a "Refunded"
// payment event.
type Credit struct {
	Processor string
	Amount    money.Amount
	Reference string
}

// LineChange is the new status of one refund line.
type LineChange struct {
	ID       int64
	From, To LineStatus
	Error    string
}

// Outcome is what one processing round did, for the store to write in one
// transaction under the lease held by Owner.
type Outcome struct {
	ID     int64
	Owner  string
	Actor  string
	Action Action
	// Path is the statuses passed through, first the current one.
	Path           []Status
	Lines          []LineChange
	Credit         *Credit
	Attempted      bool
	LastError      string
	NextAttemptAt  *time.Time
	NeedsAttention bool
	Now            time.Time
}

// Store is what refunds need from storage.
type Store interface {
	CreateRefunds(ctx context.Context, sel Selection, actor string) ([]int64, error)
	GetRefund(ctx context.Context, id int64) (Refund, error)
	// ClaimRefund leases a refund that is not Denied or Complete; ok is false
	// when another actor holds it.
	ClaimRefund(ctx context.Context, id int64, owner string, now, until time.Time) (r Refund, ok bool, err error)
	ClaimDueRefunds(ctx context.Context, owner string, now, until time.Time, limit int) ([]int64, error)
	SaveRefund(ctx context.Context, out Outcome) (Refund, error)
	DenyRefund(ctx context.Context, id int64, actor string) (Refund, error)
	GetOrder(ctx context.Context, number string) (order.Order, error)
	PaymentSource(ctx context.Context, orderID int64) (processor, reference string, err error)
}

// Revoker takes delivered lines back (the fulfillment API's Refund).
type Revoker interface {
	Refund(ctx context.Context, o order.Order, lines []order.Line) []fulfillment.Result
}

// Service creates and approves refunds.
type Service struct {
	Store        Store
	Revoker      Revoker
	Processors   map[string]payment.Processor
	Policy       fulfillment.Policy
	Lease        time.Duration
	WaitForLease time.Duration
	// Owners names the holders of the refund leases this service takes.
	Owners *lease.Owners
	Log    *slog.Logger
	Now    func() time.Time
}

func (s *Service) owner(kind string) string {
	if s.Owners == nil {
		s.Owners = lease.NewOwners("")
	}
	return s.Owners.Next(kind)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Create makes refunds for the selected lines that are Refundable, one per
// order, and returns their ids. A $0 refund is approved at once, as Otto
// does. A failed line given a refund is retried no more.
func (s *Service) Create(ctx context.Context, sel Selection, actor string) ([]int64, error) {
	ids, err := s.Store.CreateRefunds(ctx, sel, actor)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		r, err := s.Store.GetRefund(ctx, id)
		if err != nil {
			return ids, err
		}
		s.Log.Info("refund_created", "refund", id, "order", r.OrderNumber, "total", money.Format(r.TotalCreditMinor, r.Currency), "actor", actor)
		if r.TotalCreditMinor == 0 {
			if _, err := s.Process(ctx, id, ActionApprove, actor); err != nil {
				s.Log.Error("auto-approve $0 refund", "refund", id, "error", err)
			}
		}
	}
	return ids, nil
}

// Process applies an action to a refund. Approval credits the payment
// through the processor that took it, then revokes each delivered line
// through its fulfillment module (approve_payment_only skips revocation; a
// $0 refund skips both; a line that failed had nothing delivered, and its
// revocation succeeds without a call). A step already done is never done again; a failed step
// leaves the refund in its error status, scheduled for a retry.
func (s *Service) Process(ctx context.Context, id int64, action Action, actor string) (Refund, error) {
	if !action.Valid() {
		return Refund{}, fmt.Errorf("%w: unknown action %q", ErrInvalid, action)
	}
	if action == ActionDeny {
		return s.Store.DenyRefund(ctx, id, actor)
	}
	owner := s.owner("refund")
	deadline := s.now().Add(s.WaitForLease)
	for {
		now := s.now()
		r, ok, err := s.Store.ClaimRefund(ctx, id, owner, now, now.Add(s.Lease))
		if err != nil {
			return r, err
		}
		if ok {
			return s.run(context.WithoutCancel(ctx), r, action, actor, owner)
		}
		if r.Status == StatusComplete || r.Status == StatusDenied {
			if r.Status == StatusDenied {
				return r, fmt.Errorf("%w: refund %d is Denied", ErrInvalidTransition, id)
			}
			return r, nil
		}
		if !now.Before(deadline) {
			return r, fmt.Errorf("refund %d is being processed by another actor: %w", id, ErrConflict)
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Service) run(ctx context.Context, r Refund, action Action, actor, owner string) (Refund, error) {
	out := Outcome{ID: r.ID, Owner: owner, Actor: actor, Action: action, Path: []Status{r.Status}, Now: s.now()}
	status := r.Status
	fail := func(msg string, retryable bool) {
		out.LastError = msg
		attempt := r.Attempts + 1
		if retryable && !s.Policy.Exhausted(attempt) {
			next := out.Now.Add(s.Policy.Delay(attempt, 0))
			out.NextAttemptAt = &next
		} else {
			out.NeedsAttention = true
			s.Log.Error("refund needs attention", "refund", r.ID, "order", r.OrderNumber, "error", msg)
		}
	}
	o, err := s.Store.GetOrder(ctx, r.OrderNumber)
	if err != nil {
		return r, err
	}
	if status == StatusOpen || status == StatusPaymentRefundError {
		out.Attempted = true
		if r.TotalCreditMinor == 0 {
			status = StatusPaymentRefunded
		} else if credit, err := s.credit(ctx, r, o); err != nil {
			status = StatusPaymentRefundError
			fail(err.Error(), true)
		} else {
			out.Credit = credit
			status = StatusPaymentRefunded
		}
		out.Path = append(out.Path, status)
	}
	if status == StatusPaymentRefunded || status == StatusRevocationError {
		out.Attempted = true
		status = s.revoke(ctx, r, o, action, &out, fail)
		out.Path = append(out.Path, status)
	}
	saved, err := s.Store.SaveRefund(ctx, out)
	if err != nil {
		return saved, err
	}
	return saved, nil
}

func (s *Service) credit(ctx context.Context, r Refund, o order.Order) (*Credit, error) {
	name, ref, err := s.Store.PaymentSource(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	p, ok := s.Processors[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q took the payment but is not enabled", payment.ErrUnknownProcessor, name)
	}
	amt := money.Amount{Minor: r.TotalCreditMinor, Currency: r.Currency}
	creditRef, err := p.IssueCredit(ctx, o.Number, ref, amt, fmt.Sprintf("refund-%d", r.ID))
	if err != nil {
		return nil, err
	}
	s.Log.Info("refund credited", "refund", r.ID, "order", o.Number, "processor", name, "amount", amt.String(), "reference", creditRef)
	return &Credit{Processor: name, Amount: amt, Reference: creditRef}, nil
}

// revoke finishes the refund's lines and returns the refund's new status.
func (s *Service) revoke(ctx context.Context, r Refund, o order.Order, action Action, out *Outcome, fail func(string, bool)) Status {
	byID := map[int64]order.Line{}
	for _, l := range o.Lines {
		byID[l.ID] = l
	}
	var todo []Line
	for _, l := range r.Lines {
		if l.Status != LineComplete {
			todo = append(todo, l)
		}
	}
	if action == ActionApprovePaymentOnly || r.TotalCreditMinor == 0 {
		for _, l := range todo {
			out.Lines = append(out.Lines, LineChange{ID: l.ID, From: l.Status, To: LineComplete})
		}
		return StatusComplete
	}
	// A line that was never delivered (it failed) has nothing to revoke:
	// its revocation is done at once, without calling its module. Only the
	// delivered lines go to the modules.
	var delivered []Line
	lines := make([]order.Line, 0, len(todo))
	for _, l := range todo {
		ol := byID[l.OrderLineID]
		if ol.Status != order.LineComplete {
			out.Lines = append(out.Lines, LineChange{ID: l.ID, From: l.Status, To: LineComplete})
			s.Log.Info("line_not_revoked", "refund", r.ID, "order", o.Number, "line", l.OrderLineID, "status", ol.Status,
				"reason", "never delivered: nothing to revoke")
			continue
		}
		// The registry skips Complete lines (it never re-fulfills); for a
		// revocation the delivered line is exactly the one to act on.
		ol.Status = order.LineOpen
		lines = append(lines, ol)
		delivered = append(delivered, l)
	}
	status, retryable, msg := StatusComplete, true, ""
	if len(lines) == 0 {
		return status
	}
	results := s.Revoker.Refund(ctx, o, lines)
	for i, l := range delivered {
		res := results[i]
		if res.Outcome == fulfillment.OutcomeSuccess {
			out.Lines = append(out.Lines, LineChange{ID: l.ID, From: l.Status, To: LineComplete})
			s.Log.Info("line_revoked", "refund", r.ID, "order", o.Number, "line", l.OrderLineID)
			continue
		}
		status = StatusRevocationError
		retryable = retryable && res.Retryable
		msg = fmt.Sprintf("revoking line %d: %s", l.OrderLineID, res.Message)
		out.Lines = append(out.Lines, LineChange{ID: l.ID, From: l.Status, To: LineRevocationError, Error: res.Message})
	}
	if status == StatusRevocationError {
		fail(msg, retryable)
	}
	return status
}

// RunWorker retries due refunds until ctx ends.
func (s *Service) RunWorker(ctx context.Context, poll time.Duration) {
	owner := s.owner("refund-worker")
	for {
		now := s.now()
		ids, err := s.Store.ClaimDueRefunds(ctx, owner, now, now.Add(s.Lease), 50)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.Log.Error("claim due refunds", "error", err)
		}
		for _, id := range ids {
			r, err := s.Store.GetRefund(ctx, id)
			if err == nil {
				action := r.Action
				if !action.Valid() || action == ActionDeny {
					action = ActionApprove
				}
				_, err = s.run(context.WithoutCancel(ctx), r, action, "retry-worker", owner)
			}
			if err != nil {
				s.Log.Error("retry refund", "refund", id, "error", err)
			}
		}
		if len(ids) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(poll):
		}
	}
}
