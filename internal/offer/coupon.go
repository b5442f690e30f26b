package offer

import (
	"crypto/rand"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/money"
)

// Coupon is a batch of vouchers sharing one offer, with Otto's coupon
// fields. Otto also makes a Coupon product, a basket and an invoice order
// for it; fulfill keeps the coupon on its own.
type Coupon struct {
	ID       int64
	Title    string
	Category string
	Client   string
	// Price is what the client pays for the batch (reporting only).
	Price       money.Amount
	Note        string
	NotifyEmail string
	// Inactive only changes the reported status, as in Otto.
	Inactive bool
	// Usage is the usage of every voucher of the coupon.
	Usage VoucherUsage
	// Start and End are the vouchers' dates.
	Start, End time.Time
	// Offer is the offer every voucher unlocks: a Count ≥ 1 condition over
	// the coupon's range, the benefit with MaxAffectedItems 1, MaxUses as
	// MaxGlobalApplications, the e-mail domains.
	Offer Offer
	// Quantity is the number of vouchers.
	Quantity int
	// Vouchers are the coupon's codes (with their uses when loaded); a
	// list may carry only the first.
	Vouchers  []Voucher
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CouponPriority is the priority of voucher offers in Otto.
const CouponPriority = 20

// MaxQuantity bounds the codes of one coupon.
const MaxQuantity = 10000

// Kind is Otto's coupon_type: "Enrollment code" for a 100 % coupon,
// otherwise "Discount code".
func (c Coupon) Kind() string {
	if c.Offer.Benefit.Type == BenefitPercentage && c.Offer.Benefit.Value == 10000 {
		return "Enrollment code"
	}
	return "Discount code"
}

// CodeStatus is Otto's code_status at now: EXPIRED, INACTIVE or ACTIVE.
func (c Coupon) CodeStatus(now time.Time) string {
	switch {
	case now.After(c.End):
		return "EXPIRED"
	case c.Inactive:
		return "INACTIVE"
	}
	return "ACTIVE"
}

// Categories are Otto's coupon categories (the children of "Coupons"),
// in the order their ids follow.
func Categories() []string {
	return []string{"Affiliate Promotion", "Bulk Enrollment", "Bulk Enrollment - Prepay", "Bulk Enrollment - Upon Redemption",
		"Bulk Enrollment - Integration", "ConnectEd", "Course Promotion", "Customer Service", "Financial Assistance",
		"Geography Promotion", "Marketing Partner Promotion", "Marketing-Other", "Paid Cohort", "Other", "Retention Promotion",
		"Services-Other", "Support-Other", "Upsell Promotion", "Partner No Rev - Prepay", "Partner No Rev - Upon Redemption",
		"On-Campus Learners", "Security Disclosure Reward", "edX Employee Request"}
}

// CategoryID is the id of a category (1-based), or 0 if unknown.
func CategoryID(name string) int {
	return slices.Index(Categories(), name) + 1
}

// codeAlphabet is base32's, as Otto's generated codes.
const codeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// CodeLength is Otto's VOUCHER_CODE_LENGTH.
const CodeLength = 16

// NewCode returns a random code of CodeLength base32 characters.
func NewCode() string {
	b := make([]byte, CodeLength)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return string(b)
}

// RangeSpec is a coupon's range as staff give it: Otto's stock_record_ids,
// or lists of SKUs, course keys and product classes, optionally narrowed
// to seat types (Otto's course_seat_types).
type RangeSpec struct {
	StockRecordIDs []int64
	SKUs           []string
	CourseKeys     []string
	Classes        []string
	SeatTypes      []string
}

// CouponSpec is a coupon as staff create or change it, in Otto's fields.
// On an update, nil fields are left as they are.
type CouponSpec struct {
	Title, Category, Client *string
	// Price is a decimal in Currency.
	Price, Currency    *string
	Note, NotifyEmail  *string
	Inactive           *bool
	Quantity           *int
	Code               *string
	VoucherType        *string
	BenefitType        *string
	BenefitValue       *string
	MaxUses            *int
	Start, End         *time.Time
	EmailDomains       *string
	Range              *RangeSpec
	EnterpriseCustomer bool
}

// couponSeatTypes are the certificate types a coupon may discount: not
// audit or honor (Otto's BLACK_LIST_COUPON_COURSE_MODES).
var couponSeatTypes = []string{catalog.CertVerified, catalog.CertProfessional, catalog.CertCredit}

// Build applies s to c (a zero Coupon when creating) and checks the
// result. stock resolves s.Range.StockRecordIDs to their products (the
// caller looks them up); an id missing from it is unknown. The error is
// a *FieldsError (ErrInvalid) naming every problem, or ErrCategoryNotFound.
// Build does not make codes: the caller adds Quantity vouchers (Code, or
// NewCode) when creating.
func (s CouponSpec) Build(c *Coupon, creating bool, stock map[int64]catalog.Product) error {
	p := problems{}
	if s.EnterpriseCustomer {
		p.add("enterprise_customer", "Enterprise coupons can no longer be created or updated from this endpoint.")
		return p.err()
	}
	if creating {
		c.Offer = Offer{Type: TypeVoucher, Status: StatusOpen, Priority: CouponPriority, Exclusive: true,
			Condition: Condition{Type: ConditionCount, Value: 1}, Benefit: Benefit{MaxAffectedItems: 1}}
		c.Quantity = 1
		if c.Price.Currency == "" {
			c.Price.Currency = "USD"
		}
	}
	str := func(field string, v *string, dst *string, maxLen int, required bool) {
		if v == nil {
			if required && creating {
				p.add(field, "is required")
			}
			return
		}
		t := strings.TrimSpace(*v)
		if required && t == "" {
			p.add(field, "must not be empty")
			return
		}
		if len(t) > maxLen {
			p.add(field, fmt.Sprintf("must be at most %d characters", maxLen))
			return
		}
		*dst = t
	}
	str("title", s.Title, &c.Title, 255, true)
	str("client", s.Client, &c.Client, 255, false)
	str("note", s.Note, &c.Note, 1000, false)
	str("notify_email", s.NotifyEmail, &c.NotifyEmail, 254, false)
	if s.NotifyEmail != nil && c.NotifyEmail != "" {
		if a, err := mail.ParseAddress(c.NotifyEmail); err != nil || a.Address != c.NotifyEmail {
			p.add("notify_email", fmt.Sprintf("%q is not a valid e-mail address", c.NotifyEmail))
		}
	}
	if s.Inactive != nil {
		c.Inactive = *s.Inactive
	}
	if s.Currency != nil {
		cur := strings.ToUpper(strings.TrimSpace(*s.Currency))
		switch {
		case !money.ValidCurrency(cur):
			p.add("currency", fmt.Sprintf("%q is not an ISO 4217 currency", *s.Currency))
		case !creating && cur != c.Price.Currency:
			p.add("currency", "cannot be changed")
		default:
			c.Price.Currency = cur
		}
	}
	if s.Price != nil {
		a, err := money.Parse(*s.Price, c.Price.Currency)
		if err != nil {
			p.add("price", fmt.Sprintf("%q is not a price in %s", *s.Price, c.Price.Currency))
		} else {
			c.Price = a
		}
	}
	if s.VoucherType != nil {
		u := VoucherUsage(strings.TrimSpace(*s.VoucherType))
		switch {
		case !slices.Contains(Usages(), u):
			p.add("voucher_type", fmt.Sprintf("must be Single use, Multi-use or Once per customer, not %q", *s.VoucherType))
		case !creating && u != c.Usage:
			p.add("voucher_type", "cannot be changed")
		default:
			c.Usage = u
		}
	} else if creating {
		p.add("voucher_type", "is required")
	}
	if s.BenefitType != nil {
		t := BenefitType(strings.TrimSpace(*s.BenefitType))
		switch {
		case t != BenefitPercentage && t != BenefitAbsolute:
			p.add("benefit_type", fmt.Sprintf("must be Percentage or Absolute, not %q", *s.BenefitType))
		case !creating && t != c.Offer.Benefit.Type:
			p.add("benefit_type", "cannot be changed")
		default:
			c.Offer.Benefit.Type = t
		}
	} else if creating {
		p.add("benefit_type", "is required")
	}
	if s.BenefitValue != nil {
		if v, why := benefitValue(c.Offer.Benefit.Type, *s.BenefitValue, c.Price.Currency); why != "" {
			p.add("benefit_value", why)
		} else {
			c.Offer.Benefit.Value = v
		}
	} else if creating {
		p.add("benefit_value", "is required")
	}
	if c.Offer.Benefit.Type == BenefitAbsolute {
		c.Offer.Currency = c.Price.Currency
	} else {
		c.Offer.Currency = ""
	}
	if s.MaxUses != nil {
		switch {
		case c.Usage == UsageSingle:
			p.add("max_uses", "is not allowed for Single use vouchers")
		case *s.MaxUses < 1:
			p.add("max_uses", "must be a positive whole number")
		default:
			c.Offer.MaxGlobalApplications = *s.MaxUses
		}
	}
	if s.Start != nil {
		c.Start = s.Start.UTC()
	} else if creating {
		p.add("start_datetime", "is required")
	}
	if s.End != nil {
		c.End = s.End.UTC()
	} else if creating {
		p.add("end_datetime", "is required")
	}
	if !c.Start.IsZero() && !c.End.IsZero() && !c.End.After(c.Start) {
		p.add("end_datetime", "must be after start_datetime")
	}
	if s.EmailDomains != nil {
		d, why := ParseDomains(*s.EmailDomains)
		if why != "" {
			p.add("email_domains", why)
		} else {
			c.Offer.EmailDomains = d
		}
	}
	if s.Range != nil {
		r, field, why := buildRange(*s.Range, stock)
		if why != "" {
			p.add(field, why)
		} else {
			c.Offer.Condition.Range = r
		}
	} else if creating {
		p.add("stock_record_ids", "a coupon needs stock_record_ids, skus, course_keys or product_classes")
	}
	if creating {
		if s.Quantity != nil {
			if *s.Quantity < 1 || *s.Quantity > MaxQuantity {
				p.add("quantity", fmt.Sprintf("must be 1 to %d", MaxQuantity))
			} else {
				c.Quantity = *s.Quantity
			}
		}
		if s.Code != nil && strings.TrimSpace(*s.Code) != "" {
			code := NormalizeCode(*s.Code)
			switch {
			case !ValidCode(code):
				p.add("code", "must be 1 to 128 letters and digits")
			case c.Quantity != 1:
				p.add("code", "a custom code is only allowed with quantity 1")
			case c.Kind() == "Enrollment code":
				p.add("code", "an enrollment code (a 100% Percentage coupon) cannot have a custom code")
			default:
				c.Vouchers = []Voucher{{Code: code}}
			}
		}
	} else {
		if s.Quantity != nil && *s.Quantity != c.Quantity {
			p.add("quantity", "cannot be changed")
		}
		if s.Code != nil && (len(c.Vouchers) != 1 || NormalizeCode(*s.Code) != c.Vouchers[0].Code) {
			p.add("code", "cannot be changed")
		}
	}
	if s.Category != nil {
		cat := strings.TrimSpace(*s.Category)
		if cat != "" && CategoryID(cat) == 0 {
			if len(p) == 0 {
				return fmt.Errorf("%w: %q", ErrCategoryNotFound, cat)
			}
			p.add("category", fmt.Sprintf("unknown category %q", cat))
		}
		c.Category = cat
	}
	if err := p.err(); err != nil {
		return err
	}
	if c.Offer.Name == "" {
		c.Offer.Name = "Coupon" // the store names it after the coupon's id
	}
	return c.Offer.Validate()
}

// benefitValue reads a benefit value: a percentage with at most two
// decimals (basis points), or an amount in currency (minor units).
func benefitValue(t BenefitType, s, currency string) (int64, string) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return 0, "must not be negative"
	}
	if t == BenefitPercentage {
		a, err := money.Parse(s, "USD") // two decimals
		if err != nil {
			return 0, fmt.Sprintf("%q is not a percentage with at most two decimals", s)
		}
		if a.Minor <= 0 || a.Minor > 10000 {
			return 0, "a percentage must be more than 0 and at most 100"
		}
		return a.Minor, ""
	}
	a, err := money.Parse(s, currency)
	if err != nil {
		return 0, fmt.Sprintf("%q is not an amount in %s", s, currency)
	}
	return a.Minor, ""
}

// FormatBenefit writes a benefit value as Otto shows it: a percentage or
// an amount in major units, trailing zeros dropped ("10", "12.5").
func FormatBenefit(b Benefit, currency string) string {
	var s string
	if b.Type == BenefitPercentage {
		s = money.Format(b.Value, "USD")
	} else {
		s = money.Format(b.Value, currency)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func buildRange(rs RangeSpec, stock map[int64]catalog.Product) (Range, string, string) {
	var r Range
	for _, id := range rs.StockRecordIDs {
		p, ok := stock[id]
		if !ok || p.Stock == nil {
			return r, "stock_record_ids", "unknown stock record " + strconv.FormatInt(id, 10)
		}
		if p.Class == catalog.ClassSeat && !slices.Contains(couponSeatTypes, p.Attributes.String("certificate_type")) {
			return r, "stock_record_ids", "Course mode not supported"
		}
		if !slices.Contains(r.SKUs, p.Stock.SKU) {
			r.SKUs = append(r.SKUs, p.Stock.SKU)
		}
	}
	for _, s := range rs.SKUs {
		s = strings.TrimSpace(s)
		if s == "" {
			return r, "skus", "must not hold an empty SKU"
		}
		if !slices.Contains(r.SKUs, s) {
			r.SKUs = append(r.SKUs, s)
		}
	}
	for _, k := range rs.CourseKeys {
		k = strings.TrimSpace(k)
		if !catalog.ValidCourseID(k) {
			return r, "course_keys", fmt.Sprintf("%q is not a course key", k)
		}
		if !slices.Contains(r.CourseKeys, k) {
			r.CourseKeys = append(r.CourseKeys, k)
		}
	}
	for _, c := range rs.Classes {
		cl := catalog.Class(strings.TrimSpace(c))
		if _, ok := catalog.ClassDefs()[cl]; !ok || cl == catalog.ClassCoupon {
			return r, "product_classes", fmt.Sprintf("%q is not a product class a coupon can discount", c)
		}
		if !slices.Contains(r.Classes, cl) {
			r.Classes = append(r.Classes, cl)
		}
	}
	for _, t := range rs.SeatTypes {
		t = strings.ToLower(strings.TrimSpace(t))
		if !slices.Contains(couponSeatTypes, t) {
			return r, "course_seat_types", fmt.Sprintf("%q is not one of verified, professional, credit", t)
		}
		if !slices.Contains(r.SeatTypes, t) {
			r.SeatTypes = append(r.SeatTypes, t)
		}
	}
	if slices.Contains(r.SeatTypes, catalog.CertCredit) && len(r.SeatTypes) > 1 {
		return r, "course_seat_types", "credit cannot be combined with other seat types"
	}
	if r.Empty() {
		return r, "stock_record_ids", "a coupon needs stock_record_ids, skus, course_keys or product_classes"
	}
	return r, "", ""
}
