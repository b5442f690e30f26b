// Package enrollment is the fulfillment module for Seat products: it
// enrolls the learner through the LMS Enrollment API, synchronously, and
// revokes by deactivating the enrollment.
package enrollment

import (
	"context"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/fulfillment/remote"
	"fulfill/internal/lms"
	"fulfill/internal/order"
)

// Name is the module's name in configuration.
const Name = "enrollment"

// LMS is the part of the LMS client the module uses.
type LMS interface {
	Enroll(ctx context.Context, req lms.EnrollmentRequest, idempotencyKey string) error
	Unenroll(ctx context.Context, user, mode, courseID, idempotencyKey string) error
}

// Module enrolls learners in course seats.
type Module struct {
	LMS LMS
	Now func() time.Time
}

// Name implements fulfillment.Module.
func (m *Module) Name() string { return Name }

// Supports claims Seat lines.
func (m *Module) Supports(l order.Line) bool { return l.Class == catalog.ClassSeat }

// Request builds the exact body Otto posts for a line, with the buyer's
// tracking values as its headers. Only an order this request placed has
// them (they come from the buyer's token); the retry worker's orders come
// from the database and send none.
func Request(o order.Order, l order.Line) lms.EnrollmentRequest {
	attrs := []lms.Attribute{
		{Namespace: "order", Name: "order_number", Value: o.Number},
		{Namespace: "order", Name: "date_placed", Value: o.DatePlaced.UTC().Format("2006-01-02T15:04:05Z")},
		{Namespace: "order", Name: "sku", Value: l.SKU},
	}
	if p := l.Attributes.String("credit_provider"); p != "" {
		attrs = append(attrs, lms.Attribute{Namespace: "credit", Name: "provider_id", Value: p})
	}
	return lms.EnrollmentRequest{
		User:                 o.User.Username,
		IsActive:             true,
		Mode:                 catalog.SeatMode(l.Attributes),
		CourseDetails:        lms.CourseDetails{CourseID: l.Attributes.String("course_key")},
		EnrollmentAttributes: attrs,
		Tracking:             lms.Tracking{GAClientID: o.User.GAClientID, IP: o.User.IP},
	}
}

// Fulfill implements fulfillment.Module.
func (m *Module) Fulfill(ctx context.Context, o order.Order, l order.Line, key string) fulfillment.Result {
	start := m.now()
	if l.Attributes.String("course_key") == "" {
		return fulfillment.Result{Outcome: fulfillment.OutcomeConfiguration, StartedAt: start,
			Message: "seat has no course_key attribute"}
	}
	err := m.LMS.Enroll(ctx, Request(o, l), key)
	return remote.Result(err, start, m.now())
}

// Revoke implements fulfillment.Module: it deactivates the enrollment. The
// client already counts Otto's "Enrollment mode mismatch" 400 as revoked:
// the learner moved to another mode, which a refund must not undo.
func (m *Module) Revoke(ctx context.Context, o order.Order, l order.Line, key string) fulfillment.Result {
	start := m.now()
	course := l.Attributes.String("course_key")
	if course == "" {
		return fulfillment.Result{Outcome: fulfillment.OutcomeConfiguration, StartedAt: start,
			Message: "seat has no course_key attribute"}
	}
	err := m.LMS.Unenroll(ctx, o.User.Username, catalog.SeatMode(l.Attributes), course, key+":revoke")
	return remote.Result(err, start, m.now())
}

func (m *Module) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}
