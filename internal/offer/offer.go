// Package offer is the discount domain, after Oscar and Otto: an offer is a
// condition on the basket plus a benefit plus limits; a voucher is a code
// that unlocks offers of type Voucher; a coupon is a batch of vouchers that
// share one offer. Apply is the one applicator: a pure function from a
// basket, a user, the offers in force, at most one voucher and its usage
// counts to each line's discounts, the totals and the reasons an offer or
// the voucher did not apply. Storage lives in sqlstore; nothing here does
// I/O.
package offer

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"fulfill/internal/apperr"
	"fulfill/internal/catalog"
	"fulfill/internal/money"
	"fulfill/internal/statemachine"
)

// Errors of offers, vouchers and coupons.
var (
	// ErrInvalid: an offer, voucher or coupon breaks a rule.
	ErrInvalid = apperr.New(apperr.Invalid, "invalid discount")
	// ErrNotFound: no such offer.
	ErrNotFound = apperr.New(apperr.NotFound, "offer not found")
	// ErrCouponNotFound: no such coupon.
	ErrCouponNotFound = apperr.New(apperr.NotFound, "coupon not found")
	// ErrVoucherNotFound: no voucher has this code.
	ErrVoucherNotFound = apperr.New(apperr.NotFound, "coupon code not found")
	// ErrCategoryNotFound: the coupon category is not one of Categories()
	// (Otto answers 404).
	ErrCategoryNotFound = apperr.New(apperr.NotFound, "coupon category not found")
	// ErrCodeExists: a voucher with this code exists already (Otto
	// answers 400 "A coupon with code X already exists.").
	ErrCodeExists = apperr.New(apperr.Invalid, "duplicate coupon code")
	// ErrVoucherUnavailable: the voucher cannot be used now (used up,
	// not active, expired, or not for this user); the wrapped words say why.
	ErrVoucherUnavailable = apperr.New(apperr.Conflict, "coupon code not available")
	// ErrLimitReached: recording a use would pass an offer's limit, or
	// the offer is no longer Open.
	ErrLimitReached = apperr.New(apperr.Conflict, "offer no longer available")
)

// Type says who may get an offer.
type Type string

// Offer types (Oscar's offer_type).
const (
	// TypeSite: everyone; applied to every basket it matches.
	TypeSite Type = "Site"
	// TypeVoucher: only through a voucher's code.
	TypeVoucher Type = "Voucher"
	// TypeUser: one user (Otto's manual enrolment orders); never applied
	// by Apply unless given as a site offer would be.
	TypeUser Type = "User"
)

// Types lists every offer type.
func Types() []Type { return []Type{TypeSite, TypeVoucher, TypeUser} }

// Status is the status of an offer.
type Status string

// Offer statuses (Oscar's).
const (
	// StatusOpen: applies when its dates and limits allow.
	StatusOpen Status = "Open"
	// StatusSuspended: switched off by a person, who may re-open it.
	StatusSuspended Status = "Suspended"
	// StatusConsumed: its total limit is reached; the store moves it here
	// when a use reaches the limit, and back to Open when a release (a
	// full refund) or a raised limit makes room again.
	StatusConsumed Status = "Consumed"
)

// Statuses is the offer state machine.
var Statuses = statemachine.Table[Status]{Name: "offer", SameIsNoop: true, Moves: map[Status][]Status{
	StatusOpen:      {StatusSuspended, StatusConsumed},
	StatusSuspended: {StatusOpen},
	StatusConsumed:  {StatusOpen, StatusSuspended},
}}

// ConditionType is what a condition counts.
type ConditionType string

// Condition types (Oscar's).
const (
	// ConditionCount: at least Value items in range.
	ConditionCount ConditionType = "Count"
	// ConditionValue: items in range worth at least Value (minor units).
	ConditionValue ConditionType = "Value"
	// ConditionCoverage: at least Value distinct products in range.
	ConditionCoverage ConditionType = "Coverage"
)

// BenefitType is how a benefit discounts.
type BenefitType string

// Benefit types (Oscar's wire values).
const (
	// BenefitPercentage: Value basis points off each affected item.
	BenefitPercentage BenefitType = "Percentage"
	// BenefitAbsolute: Value minor units off the affected items together,
	// split in proportion to their prices.
	BenefitAbsolute BenefitType = "Absolute"
	// BenefitFixedPrice: the condition's items cost Value in total.
	BenefitFixedPrice BenefitType = "Fixed price"
)

// Range is the set of products an offer's condition and benefit look at.
// A line is in range when All is set, or its SKU, its course key or its
// product class is listed; SeatTypes, when given, narrows every match to
// seats (and entitlements) of those certificate types (Otto's
// course_seat_types).
type Range struct {
	All        bool            `json:"all,omitempty"`
	SKUs       []string        `json:"skus,omitempty"`
	CourseKeys []string        `json:"course_keys,omitempty"`
	Classes    []catalog.Class `json:"classes,omitempty"`
	SeatTypes  []string        `json:"seat_types,omitempty"`
}

// Empty reports whether the range matches nothing.
func (r Range) Empty() bool {
	return !r.All && len(r.SKUs) == 0 && len(r.CourseKeys) == 0 && len(r.Classes) == 0
}

// Contains reports whether l is in the range.
func (r Range) Contains(l Line) bool {
	in := r.All || slices.Contains(r.SKUs, l.SKU) || (l.CourseKey != "" && slices.Contains(r.CourseKeys, l.CourseKey)) ||
		slices.Contains(r.Classes, l.Class)
	if !in {
		return false
	}
	return len(r.SeatTypes) == 0 || slices.Contains(r.SeatTypes, l.SeatType)
}

// Condition is what the basket must hold for the offer to apply.
type Condition struct {
	Type  ConditionType
	Range Range
	// Value is a number of items (Count), of distinct products (Coverage),
	// or minor units of the offer's currency (Value).
	Value int64
}

// Benefit is the discount. It takes its items from the condition's range
// (Otto's coupons use one range for both).
type Benefit struct {
	Type BenefitType
	// Value is the size of the discount: basis points for Percentage
	// (1050 is 10.5 %, at most 10000); minor units of the offer's
	// currency for Absolute and Fixed price.
	Value int64
	// MaxAffectedItems bounds the items one application discounts (0: no
	// bound). Otto's coupons use 1, so a coupon is applied once per item.
	MaxAffectedItems int
}

// Offer is a condition, a benefit and limits (Oscar's ConditionalOffer).
type Offer struct {
	ID   int64
	Name string
	Type Type
	// Status is the offer's status; see Statuses.
	Status Status
	// Priority orders application: higher first (Otto: voucher 20, site 0).
	Priority int
	// Exclusive: an exclusive offer discounts an item no other offer
	// discounts; non-exclusive offers combine with each other.
	Exclusive bool
	// Start and End bound when the offer applies (nil: unbounded); End is
	// exclusive. A voucher's own dates govern its offers as well.
	Start, End *time.Time
	// ProgramUUID makes a site offer a program (bundle) offer: it applies
	// only to a basket priced for that bundle, and then the ordinary site
	// offers do not (Otto).
	ProgramUUID string
	Condition   Condition
	Benefit     Benefit
	// Currency is the currency of money values (a Value condition, an
	// Absolute or Fixed price benefit); "" when there are none.
	Currency string
	// Limits; 0 is no limit. MaxBasketApplications bounds applications in
	// one basket, MaxUserApplications those of one user over all orders,
	// MaxGlobalApplications those of everyone (Otto's coupon max_uses).
	MaxBasketApplications int
	MaxUserApplications   int
	MaxGlobalApplications int
	// EmailDomains restricts the offer to users whose e-mail is in one of
	// these domains (Otto's rule: see EmailAllowed).
	EmailDomains []string
	// NumApplications and NumOrders are the live usage counters: what
	// orders recorded, minus what full refunds released.
	NumApplications int
	NumOrders       int
}

// MoneyValued reports whether the offer's condition or benefit is an
// amount of money, which then needs Currency.
func (o Offer) MoneyValued() bool {
	return o.Condition.Type == ConditionValue || o.Benefit.Type == BenefitAbsolute || o.Benefit.Type == BenefitFixedPrice
}

// maxNameLen is Oscar's bound on names and codes.
const maxNameLen = 128

// Validate checks the offer's rules; the error wraps ErrInvalid and names
// every problem.
func (o Offer) Validate() error {
	p := problems{}
	if strings.TrimSpace(o.Name) == "" || len(o.Name) > maxNameLen {
		p.add("name", "must be 1 to 128 characters")
	}
	if !slices.Contains(Types(), o.Type) {
		p.add("offer_type", fmt.Sprintf("must be one of Site, Voucher, User, not %q", o.Type))
	}
	if !Statuses.Valid(o.Status) {
		p.add("status", fmt.Sprintf("must be Open, Suspended or Consumed, not %q", o.Status))
	}
	switch o.Condition.Type {
	case ConditionCount, ConditionCoverage:
		if o.Condition.Value < 1 {
			p.add("condition_value", "must be at least 1 item")
		}
	case ConditionValue:
		if o.Condition.Value < 0 {
			p.add("condition_value", "must not be negative")
		}
	default:
		p.add("condition_type", fmt.Sprintf("must be Count, Value or Coverage, not %q", o.Condition.Type))
	}
	if o.Condition.Range.Empty() {
		p.add("range", "must name products, courses or product classes")
	}
	for _, c := range o.Condition.Range.Classes {
		if _, ok := catalog.ClassDefs()[c]; !ok {
			p.add("product_classes", fmt.Sprintf("unknown product class %q", c))
		}
	}
	switch o.Benefit.Type {
	case BenefitPercentage:
		if o.Benefit.Value <= 0 || o.Benefit.Value > 10000 {
			p.add("benefit_value", "a percentage must be more than 0 and at most 100")
		}
	case BenefitAbsolute, BenefitFixedPrice:
		if o.Benefit.Value < 0 || o.Benefit.Value > money.MaxMinor {
			p.add("benefit_value", "must be an amount from 0 up to the price ceiling")
		}
		if o.Benefit.Type == BenefitFixedPrice && o.Condition.Type == ConditionValue {
			p.add("benefit_type", "a Fixed price benefit cannot go with a Value condition")
		}
	default:
		p.add("benefit_type", fmt.Sprintf("must be Percentage, Absolute or Fixed price, not %q", o.Benefit.Type))
	}
	if o.MoneyValued() && !money.ValidCurrency(o.Currency) {
		p.add("currency", fmt.Sprintf("%q is not an ISO 4217 currency", o.Currency))
	}
	if o.Benefit.MaxAffectedItems < 0 || o.MaxBasketApplications < 0 || o.MaxUserApplications < 0 || o.MaxGlobalApplications < 0 {
		p.add("max_uses", "limits must not be negative")
	}
	if o.Start != nil && o.End != nil && !o.End.After(*o.Start) {
		p.add("end_datetime", "must be after start_datetime")
	}
	if err := ValidDomains(o.EmailDomains); err != "" {
		p.add("email_domains", err)
	}
	return p.err()
}

// Line is one basket line as the applicator sees it.
type Line struct {
	SKU       string
	CourseKey string
	Class     catalog.Class
	// SeatType is the certificate type of a seat, an entitlement or the
	// seat of an enrollment code ("" for audit and other products).
	SeatType string
	// UnitPrice is in minor units of the basket's currency.
	UnitPrice int64
	Quantity  int
}

// LineOf describes a product bought in quantity.
func LineOf(p catalog.Product, quantity int) Line {
	l := Line{Class: p.Class, Quantity: quantity, CourseKey: p.CourseID}
	if l.CourseKey == "" {
		l.CourseKey = p.Attributes.String("course_key")
	}
	l.SeatType = p.Attributes.String("certificate_type")
	if p.Class == catalog.ClassEnrollmentCode {
		l.SeatType = p.Attributes.String("seat_type")
	}
	if p.Stock != nil {
		l.SKU, l.UnitPrice = p.Stock.SKU, p.Stock.Price.Minor
	}
	return l
}

// User is whom a basket is priced for.
type User struct {
	Username string
	Email    string
}

// SignedIn reports whether the user is known (not an anonymous visitor).
func (u User) SignedIn() bool { return u.Username != "" }

// VoucherUsage is how often a voucher may be used.
type VoucherUsage string

// Voucher usages (Oscar's wire values).
const (
	// UsageSingle: one use in all (no live application may exist).
	UsageSingle VoucherUsage = "Single use"
	// UsageMulti: any number of uses; the offer's limits bound them.
	UsageMulti VoucherUsage = "Multi-use"
	// UsageOncePerCustomer: signed-in users only, once each.
	UsageOncePerCustomer VoucherUsage = "Once per customer"
)

// Usages lists every voucher usage.
func Usages() []VoucherUsage { return []VoucherUsage{UsageSingle, UsageMulti, UsageOncePerCustomer} }

// Voucher is a code that unlocks its offers.
type Voucher struct {
	ID int64
	// Code is stored upper-case and matched case-insensitively.
	Code  string
	Usage VoucherUsage
	// Start and End bound when the code works; both inclusive (Oscar's
	// is_active).
	Start, End time.Time
	CouponID   int64
	// Offers are the offers the code unlocks.
	Offers    []Offer
	CreatedAt time.Time
	// Uses counts the live uses (for reports; Usage counts are what Apply
	// reads).
	Uses int
}

// codeRE is what a code may hold: Otto requires alphanumerics; ASCII only,
// so that upper-casing is the same in Go, SQLite and PostgreSQL.
var codeRE = regexp.MustCompile(`^[A-Z0-9]{1,128}$`)

// NormalizeCode is the stored form of a code: trimmed and upper-case.
func NormalizeCode(code string) string { return strings.ToUpper(strings.TrimSpace(code)) }

// ValidCode reports whether code, normalized, may be stored.
func ValidCode(code string) bool { return codeRE.MatchString(NormalizeCode(code)) }

// Active reports whether the voucher works at now.
func (v Voucher) Active(now time.Time) bool { return !now.Before(v.Start) && !now.After(v.End) }

// Usage is what the applicator needs to know of past orders: the live uses
// (recorded and not released) of the voucher and of each offer.
type Usage struct {
	// VoucherUses counts the voucher's uses by anyone.
	VoucherUses int
	// VoucherUsesByUser counts those of the user being priced.
	VoucherUsesByUser int
	// ByUser is the user's applications of each offer, by offer id.
	ByUser map[int64]int
}

// EmailAllowed is Otto's is_email_valid: with no domains every e-mail is
// allowed; otherwise the e-mail's domain must match one of them, where a
// bare domain ("example.com") also matches its subdomains
// ("mail.example.com") and a domain with a subdomain
// ("mail.example.com") matches only itself. Case does not matter.
func EmailAllowed(domains []string, email string) bool {
	if len(domains) == 0 {
		return true
	}
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false
	}
	domain := strings.ToLower(email[at+1:])
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" {
			continue
		}
		if domain == d {
			return true
		}
		if strings.Count(d, ".") == 1 && strings.HasSuffix(domain, "."+d) {
			return true
		}
	}
	return false
}

var domainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)

// ValidDomains returns what is wrong with a list of e-mail domains, or "".
func ValidDomains(domains []string) string {
	for _, d := range domains {
		if !domainRE.MatchString(strings.ToLower(d)) {
			return fmt.Sprintf("%q is not a domain", d)
		}
	}
	return ""
}

// ParseDomains splits Otto's comma-separated email_domains ("a.org,b.com";
// no trailing comma), lower-cased; the error names a bad domain.
func ParseDomains(s string) ([]string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ""
	}
	var out []string
	for _, d := range strings.Split(s, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" {
			return nil, "must be domains separated by commas, with no empty entry or trailing comma"
		}
		out = append(out, d)
	}
	return out, ValidDomains(out)
}

// problems collects field problems into one ErrInvalid.
type problems map[string]string

func (p problems) add(field, problem string) {
	if _, ok := p[field]; !ok {
		p[field] = problem
	}
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &FieldsError{Fields: p}
}

// FieldsError names the fields of a coupon or offer that break a rule and
// why; it wraps ErrInvalid.
type FieldsError struct{ Fields map[string]string }

func (e *FieldsError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldsError) Unwrap() error { return ErrInvalid }

// VoucherApplication is one use of a voucher by an order.
type VoucherApplication struct {
	VoucherID   int64
	Code        string
	Username    string
	OrderNumber string
	CreatedAt   time.Time
	// ReleasedAt is set when a full refund gave the use back.
	ReleasedAt *time.Time
}
