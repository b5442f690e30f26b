// Package entitlement is the fulfillment module of Course Entitlement
// products: it grants the entitlement through the LMS Entitlements API,
// keeps the returned uuid on the line, and revokes by deleting it.
package entitlement

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
const Name = "entitlement"

// DataUUID is the line's fulfillment-data key holding the entitlement uuid.
const DataUUID = "entitlement_uuid"

// LMS is the part of the LMS client the module uses.
type LMS interface {
	CreateEntitlement(ctx context.Context, req lms.EntitlementRequest, idempotencyKey string) (lms.Entitlement, error)
	DeleteEntitlement(ctx context.Context, uuid, idempotencyKey string) error
}

// Module grants course entitlements.
type Module struct{ LMS LMS }

// Name implements fulfillment.Module.
func (m *Module) Name() string { return Name }

// Supports claims Course Entitlement lines.
func (m *Module) Supports(l order.Line) bool { return l.Class == catalog.ClassCourseEntitlement }

// Fulfill implements fulfillment.Module. The idempotency key makes a retry
// after a lost answer return the entitlement granted the first time.
func (m *Module) Fulfill(ctx context.Context, o order.Order, l order.Line, key string) fulfillment.Result {
	start := time.Now()
	uuid := l.Attributes.String("UUID")
	if uuid == "" {
		return remote.Configuration("course entitlement has no UUID attribute", start)
	}
	mode := l.Attributes.String("certificate_type")
	if mode == "" {
		mode = "verified"
	}
	e, err := m.LMS.CreateEntitlement(ctx, lms.EntitlementRequest{User: o.User.Username, CourseUUID: uuid, Mode: mode, OrderNumber: o.Number}, key)
	r := remote.Result(err, start, time.Now())
	if err == nil {
		r.Data = map[string]string{DataUUID: e.UUID}
	}
	return r
}

// Revoke implements fulfillment.Module.
func (m *Module) Revoke(ctx context.Context, o order.Order, l order.Line, key string) fulfillment.Result {
	start := time.Now()
	uuid := l.FulfillmentData[DataUUID]
	if uuid == "" {
		return remote.Configuration("the line holds no entitlement uuid to revoke", start)
	}
	return remote.Result(m.LMS.DeleteEntitlement(ctx, uuid, key+":revoke"), start, time.Now())
}
