// Package catalog describes what is sold: product classes with typed
// attributes, products, stock records (SKU, price, currency), and courses
// whose modes are child Seat products, as in Otto.
package catalog

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"fulfill/internal/apperr"
	"regexp"
	"strings"
	"time"

	"fulfill/internal/money"
)

// ErrSKUNotFound is returned when a SKU names no available product.
var ErrSKUNotFound = apperr.New(apperr.NotFound, "sku not found")

// ErrNotFound is returned when a course or product does not exist.
var ErrNotFound = apperr.New(apperr.NotFound, "not found")

// ErrInvalid is returned for a product, course or attribute that breaks a rule.
var ErrInvalid = apperr.New(apperr.Invalid, "invalid catalog data")

// Class is a product class (Oscar's ProductClass, Otto's "product type").
// Its name is the one Otto uses, since fulfillment is configured by it.
type Class string

// The product classes Otto sells.
const (
	ClassSeat              Class = "Seat"
	ClassEnrollmentCode    Class = "Enrollment Code"
	ClassCourseEntitlement Class = "Course Entitlement"
	ClassCoupon            Class = "Coupon"
	ClassDonation          Class = "Donation"
)

// AttrType is the type of a product attribute's value.
type AttrType string

// Attribute value types, as in Oscar's ProductAttribute.
const (
	AttrText    AttrType = "text"
	AttrBoolean AttrType = "boolean"
	AttrInteger AttrType = "integer"
	AttrDate    AttrType = "date"
)

// AttributeDef declares one attribute a product class may carry.
type AttributeDef struct {
	Name     string
	Type     AttrType
	Required bool
}

// ClassDefs returns every product class with its attribute definitions.
func ClassDefs() map[Class][]AttributeDef {
	return map[Class][]AttributeDef{
		ClassSeat: {
			{Name: "course_key", Type: AttrText, Required: true},
			{Name: "certificate_type", Type: AttrText},
			{Name: "id_verification_required", Type: AttrBoolean},
			{Name: "credit_provider", Type: AttrText},
			{Name: "credit_hours", Type: AttrInteger},
		},
		ClassEnrollmentCode: {
			{Name: "course_key", Type: AttrText, Required: true},
			{Name: "seat_type", Type: AttrText, Required: true},
			{Name: "id_verification_required", Type: AttrBoolean},
			{Name: "seat_sku", Type: AttrText},
		},
		ClassCourseEntitlement: {
			{Name: "UUID", Type: AttrText, Required: true},
			{Name: "certificate_type", Type: AttrText},
		},
		ClassCoupon:   {{Name: "coupon_vouchers", Type: AttrText}},
		ClassDonation: {},
	}
}

// Attributes are a product's attribute values by name. Values are string,
// bool, int64 or time.Time according to the class definition; JSON decoding
// yields float64 for numbers, which Validate accepts when integral.
type Attributes map[string]any

// String returns a text attribute, or "".
func (a Attributes) String(name string) string {
	s, _ := a[name].(string)
	return s
}

// Bool returns a boolean attribute, or false.
func (a Attributes) Bool(name string) bool {
	b, _ := a[name].(bool)
	return b
}

// Validate checks attrs against the definitions of class c.
func (c Class) Validate(attrs Attributes) error {
	defs, ok := ClassDefs()[c]
	if !ok {
		return fmt.Errorf("%w: unknown product class %q", ErrInvalid, c)
	}
	known := map[string]AttributeDef{}
	for _, d := range defs {
		known[d.Name] = d
		if _, has := attrs[d.Name]; d.Required && !has {
			return fmt.Errorf("%w: %s needs attribute %q", ErrInvalid, c, d.Name)
		}
	}
	for name, v := range attrs {
		d, ok := known[name]
		if !ok {
			return fmt.Errorf("%w: %s has no attribute %q", ErrInvalid, c, name)
		}
		var good bool
		switch d.Type {
		case AttrText:
			_, good = v.(string)
		case AttrBoolean:
			_, good = v.(bool)
		case AttrInteger:
			switch n := v.(type) {
			case int, int64:
				good = true
			case float64:
				good = n == float64(int64(n))
			}
		case AttrDate:
			switch s := v.(type) {
			case time.Time:
				good = true
			case string:
				_, err := time.Parse(time.RFC3339, s)
				good = err == nil
			}
		}
		if !good {
			return fmt.Errorf("%w: attribute %q of %s must be %s, got %T", ErrInvalid, name, c, d.Type, v)
		}
	}
	return nil
}

// Product is a sellable (or parent) product.
type Product struct {
	ID         int64
	ParentID   int64 // 0 for a parent or stand-alone product
	Class      Class
	Title      string
	CourseID   string
	Attributes Attributes
	Stock      *StockRecord // nil for parents
}

// StockRecord is how a product is sold: its SKU, price and currency.
type StockRecord struct {
	ID        int64
	ProductID int64
	Partner   string
	SKU       string
	Price     money.Amount
	Expires   *time.Time
}

// Available reports whether the stock record can be bought at now.
func (s StockRecord) Available(now time.Time) bool {
	return s.Expires == nil || now.Before(*s.Expires)
}

// Certificate types of course seats.
const (
	CertAudit        = ""
	CertHonor        = "honor"
	CertVerified     = "verified"
	CertProfessional = "professional"
	CertCredit       = "credit"
)

// ModeForProduct is Otto's mode_for_product: the LMS course mode of a seat.
func ModeForProduct(certificateType string, idVerificationRequired bool) string {
	switch {
	case certificateType == "":
		return "audit"
	case certificateType == CertProfessional && !idVerificationRequired:
		return "no-id-professional"
	}
	return certificateType
}

// SeatMode is the LMS mode of a Seat product from its attributes.
func SeatMode(a Attributes) string {
	return ModeForProduct(a.String("certificate_type"), a.Bool("id_verification_required"))
}

// Course is a course run and its seats.
type Course struct {
	ID                   string
	Name                 string
	VerificationDeadline *time.Time
	Seats                []Seat
	CreatedAt, UpdatedAt time.Time
}

// Seat is one course mode sold as a child Seat product.
type Seat struct {
	ProductID              int64
	Title                  string
	CertificateType        string
	IDVerificationRequired bool
	CreditProvider         string
	Price                  money.Amount
	Expires                *time.Time
	SKU                    string
	// BulkSKU sells enrollment codes for this seat (verified and
	// professional seats, as Otto's ENROLLMENT_CODE_SEAT_TYPES); "" if none.
	BulkSKU string
}

// HasEnrollmentCode reports whether the seat is also sold in bulk as
// enrollment codes.
func (s Seat) HasEnrollmentCode() bool {
	return s.CertificateType == CertVerified || s.CertificateType == CertProfessional
}

// EnrollmentCodeAttributes are the attributes of the seat's Enrollment Code
// product.
func (s Seat) EnrollmentCodeAttributes(courseID string) Attributes {
	return Attributes{"course_key": courseID, "seat_type": s.CertificateType, "id_verification_required": s.IDVerificationRequired, "seat_sku": s.SKU}
}

// EnrollmentCodeSKU is the SKU of a seat's enrollment codes, derived like a
// seat's from its defining fields.
func EnrollmentCodeSKU(partner, courseID string, s Seat) string {
	in := strings.ToLower(strings.Join([]string{"enrollment code", s.CertificateType, courseID, fmt.Sprint(s.IDVerificationRequired), partner}, " "))
	sum := md5.Sum([]byte(in))
	h := hex.EncodeToString(sum[:])
	return strings.ToUpper(h[len(h)-7:])
}

// Mode is the LMS course mode of the seat.
func (s Seat) Mode() string { return ModeForProduct(s.CertificateType, s.IDVerificationRequired) }

// Attributes are the seat's product attributes.
func (s Seat) Attributes(courseID string) Attributes {
	a := Attributes{"course_key": courseID, "id_verification_required": s.IDVerificationRequired}
	if s.CertificateType != "" {
		a["certificate_type"] = s.CertificateType
	}
	if s.CreditProvider != "" {
		a["credit_provider"] = s.CreditProvider
	}
	return a
}

// courseKeyRE accepts course-v1:ORG+NUM+RUN and the old ORG/NUM/RUN form.
var courseKeyRE = regexp.MustCompile(`^(course-v1:[\w.~%-]+\+[\w.~%-]+\+[\w.~%-]+|[\w.~%-]+/[\w.~%-]+/[\w.~%-]+)$`)

// ValidCourseID reports whether id is an edX course key.
func ValidCourseID(id string) bool { return courseKeyRE.MatchString(id) }

var certTypes = map[string]bool{CertAudit: true, CertHonor: true, CertVerified: true, CertProfessional: true, CertCredit: true}

// Validate checks a course and its seats, and fills in missing SKUs.
func (c *Course) Validate(partner string) error {
	if !ValidCourseID(c.ID) {
		return fmt.Errorf("%w: %q is not a course key (course-v1:ORG+NUMBER+RUN)", ErrInvalid, c.ID)
	}
	if strings.TrimSpace(c.Name) == "" {
		return fmt.Errorf("%w: course name is required", ErrInvalid)
	}
	if len(c.Seats) == 0 {
		return fmt.Errorf("%w: a course needs at least one mode", ErrInvalid)
	}
	seen := map[string]bool{}
	for i := range c.Seats {
		s := &c.Seats[i]
		if !certTypes[s.CertificateType] {
			return fmt.Errorf("%w: unknown certificate_type %q", ErrInvalid, s.CertificateType)
		}
		if s.CertificateType == CertCredit && s.CreditProvider == "" {
			return fmt.Errorf("%w: a credit seat needs a credit_provider", ErrInvalid)
		}
		if s.CertificateType != CertCredit && s.CreditProvider != "" {
			return fmt.Errorf("%w: credit_provider is only for credit seats", ErrInvalid)
		}
		key := s.Mode() + "|" + s.CreditProvider
		if seen[key] {
			return fmt.Errorf("%w: mode %q appears twice", ErrInvalid, s.Mode())
		}
		seen[key] = true
		if s.SKU == "" {
			s.SKU = SeatSKU(partner, c.ID, *s)
		}
		if !skuRE.MatchString(s.SKU) {
			return fmt.Errorf("%w: sku %q must be 1 to 64 letters, digits, '-' or '_'", ErrInvalid, s.SKU)
		}
		s.Title = SeatTitle(c.Name, *s)
	}
	return nil
}

var skuRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// SeatTitle is Otto's child seat title.
func SeatTitle(courseName string, s Seat) string {
	if s.CertificateType == "" {
		return "Seat in " + courseName
	}
	return fmt.Sprintf("Seat in %s with %s certificate", courseName, s.CertificateType)
}

// SeatSKU is Otto's generate_sku for seats: the last 7 hex characters of the
// MD5 of the seat's defining fields, upper-cased. Otto also hashes the
// product id; we leave it out so that the same seat gets the same SKU in
// every database, which the marketing site relies on to build links.
func SeatSKU(partner, courseID string, s Seat) string {
	in := strings.ToLower(strings.Join([]string{
		s.CertificateType, courseID, fmt.Sprint(s.IDVerificationRequired), s.CreditProvider, partner,
	}, " "))
	sum := md5.Sum([]byte(in))
	h := hex.EncodeToString(sum[:])
	return strings.ToUpper(h[len(h)-7:])
}

// ErrNotSoldHere is returned for a SKU that the incremental rollout keeps
// on the old order workflow.
var ErrNotSoldHere = apperr.New(apperr.Unavailable, "not sold here")

// Rollout says which products are sold by this service during an
// incremental rollout: only the listed courses (when any are listed), and
// never the listed SKUs.
type Rollout struct {
	Courses    []string
	UnsoldSKUs []string
}

// Sold reports whether p may be bought here; the error says why not.
func (r *Rollout) Sold(p Product) error {
	if r == nil {
		return nil
	}
	if p.Stock != nil {
		for _, s := range r.UnsoldSKUs {
			if s == p.Stock.SKU {
				return fmt.Errorf("%w: SKU %s is not sold by this service yet", ErrNotSoldHere, s)
			}
		}
	}
	if len(r.Courses) == 0 {
		return nil
	}
	course := p.CourseID
	if course == "" {
		course = p.Attributes.String("course_key")
	}
	for _, c := range r.Courses {
		if c == course {
			return nil
		}
	}
	return fmt.Errorf("%w: course %s is not sold by this service yet", ErrNotSoldHere, course)
}

// OncePerLearner reports whether a learner may hold only one live purchase
// of a product of class c: a seat or an entitlement. Enrollment codes are
// bought in bulk as often as wanted (Otto), and so are donations and
// coupons. Migration 00005 names the same classes.
func (c Class) OncePerLearner() bool { return c == ClassSeat || c == ClassCourseEntitlement }

// Buyable reports whether p can be put in a basket at now: a product with
// a stock record that has not expired, and not a course's parent seat
// (which only groups the modes).
func (p Product) Buyable(now time.Time) bool {
	return p.Stock != nil && p.Stock.Available(now) && !(p.ParentID == 0 && p.Class == ClassSeat)
}

// ErrNotPublished is returned when the LMS did not take a course's modes.
var ErrNotPublished = apperr.New(apperr.BadGateway, "not published to the LMS")

// PublishError is the LMS's refusal of a course, with the words it said
// (or that it could not be reached), safe to show to staff.
type PublishError struct {
	Message string
	// Cause is the client's error, for the logs.
	Cause error
}

func (e *PublishError) Error() string { return ErrNotPublished.Error() + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrNotPublished) true.
func (e *PublishError) Unwrap() error { return ErrNotPublished }

// Publisher sends a saved course's modes and SKUs to the LMS.
type Publisher interface {
	Publish(ctx context.Context, c Course) error
}
