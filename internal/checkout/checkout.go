// Package checkout turns paid baskets into orders: it freezes a basket
// while its payment is under way, acts on the processor's notification
// (place and fulfill, or thaw), and reconciles payments accepted whose
// order was never placed ("charged but no order").
package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"fulfill/internal/basket"
	"fulfill/internal/fulfillment"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// Store is what checkout needs from storage.
type Store interface {
	FreezeBasket(ctx context.Context, b basket.Basket, processor string) (int64, error)
	RecordNotification(ctx context.Context, n payment.Notification) (duplicate bool, err error)
	PlacePaidOrder(ctx context.Context, n payment.Notification, actor, owner string, leaseUntil time.Time) (order.Order, bool, error)
	DeclineBasket(ctx context.Context, n payment.Notification) error
	UnhandledAccepted(ctx context.Context, olderThan time.Time, limit int) ([]payment.Notification, error)
}

// Service runs paid checkouts.
type Service struct {
	Store      Store
	Fulfill    *fulfillment.Service
	Processors map[string]payment.Processor
	Log        *slog.Logger
	Now        func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Processor returns the enabled processor of that name.
func (s *Service) Processor(name string) (payment.Processor, error) {
	p, ok := s.Processors[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not enabled", payment.ErrUnknownProcessor, name)
	}
	return p, nil
}

// StartPayment freezes a non-free basket and asks the processor for the
// payment page's parameters.
func (s *Service) StartPayment(ctx context.Context, b basket.Basket, processor, baseURL string) (int64, payment.Data, error) {
	p, err := s.Processor(processor)
	if err != nil {
		return 0, payment.Data{}, err
	}
	id, err := s.Store.FreezeBasket(ctx, b, p.Name())
	if err != nil {
		return 0, payment.Data{}, err
	}
	data, err := p.PaymentData(ctx, payment.Basket{ID: id, Username: b.Owner.Username, Email: b.Owner.Email,
		Total: money.Amount{Minor: b.Total, Currency: b.Currency}}, baseURL)
	return id, data, err
}

// Result is what a notification led to.
type Result struct {
	Order    *order.Order // the order placed (or placed before, for a replay)
	Declined bool
	Replayed bool
}

// Handle acts on a verified notification. The notification is recorded
// first, so a crash before the order is placed leaves evidence for the
// reconciler. A replay places nothing twice and reports the order.
func (s *Service) Handle(ctx context.Context, n payment.Notification, owner string) (Result, error) {
	dup, err := s.Store.RecordNotification(ctx, n)
	if err != nil {
		return Result{}, err
	}
	if n.Decision == payment.Decline {
		if dup {
			return Result{Declined: true, Replayed: true}, nil
		}
		s.Log.Info("payment declined", "processor", n.Processor, "basket", n.BasketID, "reference", n.Reference)
		return Result{Declined: true}, s.Store.DeclineBasket(ctx, n)
	}
	return s.accept(ctx, n, owner, dup)
}

func (s *Service) accept(ctx context.Context, n payment.Notification, owner string, dup bool) (Result, error) {
	o, placed, err := s.Store.PlacePaidOrder(ctx, n, "processor:"+n.Processor, owner, s.now().Add(s.Fulfill.Lease))
	if err != nil {
		if errors.Is(err, payment.ErrAmountMismatch) {
			s.Log.Error("payment refused: amount mismatch", "processor", n.Processor, "basket", n.BasketID, "reference", n.Reference, "error", err)
		}
		return Result{}, err
	}
	if !placed {
		return Result{Order: &o, Replayed: true}, nil
	}
	s.Log.Info("order_placed", "order", o.Number, "processor", n.Processor, "reference", n.Reference, "duplicate_notification", dup)
	done, err := s.Fulfill.Run(ctx, fulfillment.Claim{Order: o, Lines: o.Lines}, owner, o.User.Username)
	if err != nil {
		s.Log.Error("fulfill after payment", "order", o.Number, "error", err)
		done = o
	}
	return Result{Order: &done}, nil
}

// Reconcile places the orders of accepted payments recorded before
// olderThan that no order followed, and returns how many it placed.
func (s *Service) Reconcile(ctx context.Context, owner string, olderThan time.Time) (int, error) {
	ns, err := s.Store.UnhandledAccepted(ctx, olderThan, 100)
	if err != nil {
		return 0, err
	}
	placed := 0
	for _, n := range ns {
		r, err := s.accept(ctx, n, owner, true)
		if err != nil {
			s.Log.Error("reconcile payment", "processor", n.Processor, "reference", n.Reference, "basket", n.BasketID, "error", err)
			continue
		}
		if !r.Replayed {
			placed++
			s.Log.Warn("reconciled a payment that had no order", "order", r.Order.Number, "reference", n.Reference)
		}
	}
	return placed, nil
}

// RunReconciler reconciles every interval until ctx ends; a notification
// is left alone for grace after it arrived, the time its own request needs.
func (s *Service) RunReconciler(ctx context.Context, owner string, interval, grace time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if _, err := s.Reconcile(ctx, owner, s.now().Add(-grace)); err != nil && !errors.Is(err, context.Canceled) {
			s.Log.Error("reconcile", "error", err)
		}
	}
}
