package api

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/offer"
)

// Otto's coupon administration (/api/v2/coupons/, staff only; otto-
// discounts.md §3). A coupon is a batch of vouchers sharing one offer.
// Errors are problem+json: a field that breaks a rule is a 400 naming
// every such field, an unknown category a 404 (both as Otto answers).

// couponIn is the body of POST and PUT/PATCH, in Otto's fields. On an
// update, a field left out stays as it is, and the range (stock_record_ids,
// skus, course_keys, product_classes, course_seat_types) is replaced as a
// whole when any of it is given.
type couponIn struct {
	Title           *string         `json:"title"`
	Client          *string         `json:"client"`
	Category        *categoryIn     `json:"category"`
	Price           *decimal        `json:"price"`
	Currency        *string         `json:"currency"`
	Quantity        *int            `json:"quantity"`
	Code            *string         `json:"code"`
	VoucherType     *string         `json:"voucher_type"`
	BenefitType     *string         `json:"benefit_type"`
	BenefitValue    *decimal        `json:"benefit_value"`
	MaxUses         *int            `json:"max_uses"`
	StartDatetime   *string         `json:"start_datetime"`
	EndDatetime     *string         `json:"end_datetime"`
	EmailDomains    *string         `json:"email_domains"`
	StockRecordIDs  []int64         `json:"stock_record_ids"`
	SKUs            []string        `json:"skus"`
	CourseKeys      []string        `json:"course_keys"`
	ProductClasses  []string        `json:"product_classes"`
	CourseSeatTypes *seatTypesIn    `json:"course_seat_types"`
	Note            *string         `json:"note"`
	NotifyEmail     *string         `json:"notify_email"`
	Inactive        *bool           `json:"inactive"`
	Enterprise      json.RawMessage `json:"enterprise_customer"`
}

// categoryIn is Otto's {"name": …} (an {"id": …} of Categories, or a bare
// name, also do).
type categoryIn struct{ Name string }

func (c *categoryIn) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		c.Name = s
		return nil
	}
	var o struct {
		Name string `json:"name"`
		ID   int    `json:"id"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("category must be {\"name\": …}")
	}
	c.Name = o.Name
	if c.Name == "" && o.ID > 0 && o.ID <= len(offer.Categories()) {
		c.Name = offer.Categories()[o.ID-1]
	}
	return nil
}

// seatTypesIn is a list, or Otto's comma-separated string.
type seatTypesIn []string

func (s *seatTypesIn) UnmarshalJSON(b []byte) error {
	var str string
	if json.Unmarshal(b, &str) == nil {
		*s = nil
		for _, t := range strings.Split(str, ",") {
			if t = strings.TrimSpace(t); t != "" {
				*s = append(*s, t)
			}
		}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("course_seat_types must be a list or a comma-separated string")
	}
	*s = list
	return nil
}

// couponTimeLayouts are the datetimes DRF's DateTimeField reads; a time
// without a zone is UTC.
var couponTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02"}

func parseCouponTime(s string) (time.Time, bool) {
	for _, l := range couponTimeLayouts {
		if t, err := time.Parse(l, strings.TrimSpace(s)); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// spec turns the body into the domain's CouponSpec; the error names the
// fields it could not read.
func (in couponIn) spec() (offer.CouponSpec, error) {
	sp := offer.CouponSpec{Title: in.Title, Client: in.Client, Currency: in.Currency, Quantity: in.Quantity, Code: in.Code,
		VoucherType: in.VoucherType, BenefitType: in.BenefitType, MaxUses: in.MaxUses, EmailDomains: in.EmailDomains,
		Note: in.Note, NotifyEmail: in.NotifyEmail, Inactive: in.Inactive,
		EnterpriseCustomer: len(in.Enterprise) > 0 && string(in.Enterprise) != "null"}
	if in.Category != nil {
		sp.Category = &in.Category.Name
	}
	if in.Price != nil {
		p := string(*in.Price)
		sp.Price = &p
	}
	if in.BenefitValue != nil {
		v := string(*in.BenefitValue)
		sp.BenefitValue = &v
	}
	bad := map[string]string{}
	for name, src := range map[string]*string{"start_datetime": in.StartDatetime, "end_datetime": in.EndDatetime} {
		if src == nil {
			continue
		}
		t, ok := parseCouponTime(*src)
		if !ok {
			bad[name] = fmt.Sprintf("%q is not a datetime (YYYY-MM-DDThh:mm:ssZ)", *src)
			continue
		}
		if name == "start_datetime" {
			sp.Start = &t
		} else {
			sp.End = &t
		}
	}
	if in.StockRecordIDs != nil || in.SKUs != nil || in.CourseKeys != nil || in.ProductClasses != nil || in.CourseSeatTypes != nil {
		sp.Range = &offer.RangeSpec{StockRecordIDs: in.StockRecordIDs, SKUs: in.SKUs, CourseKeys: in.CourseKeys, Classes: in.ProductClasses}
		if in.CourseSeatTypes != nil {
			sp.Range.SeatTypes = *in.CourseSeatTypes
		}
	}
	if len(bad) > 0 {
		return sp, &offer.FieldsError{Fields: bad}
	}
	return sp, nil
}

type categoryView struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

func viewCategory(name string) *categoryView {
	if name == "" {
		return nil
	}
	return &categoryView{ID: offer.CategoryID(name), Name: name}
}

// couponListItem is an item of Otto's coupon list.
type couponListItem struct {
	ID          int64         `json:"id"`
	Title       string        `json:"title"`
	Category    *categoryView `json:"category"`
	Client      string        `json:"client"`
	Code        *string       `json:"code"`
	DateCreated apiTime       `json:"date_created"`
}

// couponView is Otto's CouponSerializer, the fields fulfill keeps.
type couponView struct {
	ID              int64         `json:"id"`
	Title           string        `json:"title"`
	Price           string        `json:"price"`
	Currency        string        `json:"currency"`
	Category        *categoryView `json:"category"`
	Client          string        `json:"client"`
	Code            *string       `json:"code"`
	CodeStatus      string        `json:"code_status"`
	CouponType      string        `json:"coupon_type"`
	BenefitType     string        `json:"benefit_type"`
	BenefitValue    json.Number   `json:"benefit_value"`
	CatalogQuery    *string       `json:"catalog_query"`
	CourseCatalog   *int          `json:"course_catalog"`
	CourseSeatTypes []string      `json:"course_seat_types"`
	SKUs            []string      `json:"skus"`
	CourseKeys      []string      `json:"course_keys"`
	ProductClasses  []string      `json:"product_classes"`
	EmailDomains    *string       `json:"email_domains"`
	StartDate       apiTime       `json:"start_date"`
	EndDate         apiTime       `json:"end_date"`
	MaxUses         *int          `json:"max_uses"`
	NumUses         int           `json:"num_uses"`
	Quantity        int           `json:"quantity"`
	VoucherType     string        `json:"voucher_type"`
	Note            *string       `json:"note"`
	NotifyEmail     *string       `json:"notify_email"`
	Inactive        bool          `json:"inactive"`
	LastEdited      [2]*apiTime   `json:"last_edited"`
	ProgramUUID     *string       `json:"program_uuid"`
	OfferID         int64         `json:"offer_id"`
	DateCreated     apiTime       `json:"date_created"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// soleCode is the code Otto shows for a coupon of one voucher.
func soleCode(c offer.Coupon) *string {
	if c.Quantity == 1 && len(c.Vouchers) == 1 {
		return &c.Vouchers[0].Code
	}
	return nil
}

func viewCoupon(c offer.Coupon, now time.Time) couponView {
	o := c.Offer
	edited := apiTime(c.UpdatedAt)
	v := couponView{ID: c.ID, Title: c.Title, Price: c.Price.String(), Currency: c.Price.Currency, Category: viewCategory(c.Category),
		Client: c.Client, Code: soleCode(c), CodeStatus: c.CodeStatus(now), CouponType: c.Kind(), BenefitType: string(o.Benefit.Type),
		BenefitValue: json.Number(offer.FormatBenefit(o.Benefit, c.Price.Currency)), CourseSeatTypes: o.Condition.Range.SeatTypes,
		SKUs: o.Condition.Range.SKUs, CourseKeys: o.Condition.Range.CourseKeys, EmailDomains: optional(strings.Join(o.EmailDomains, ",")),
		StartDate: apiTime(c.Start), EndDate: apiTime(c.End), NumUses: o.NumApplications, Quantity: c.Quantity,
		VoucherType: string(c.Usage), Note: optional(c.Note), NotifyEmail: optional(c.NotifyEmail), Inactive: c.Inactive,
		LastEdited: [2]*apiTime{nil, &edited}, OfferID: o.ID, DateCreated: apiTime(c.CreatedAt)}
	for _, cl := range o.Condition.Range.Classes {
		v.ProductClasses = append(v.ProductClasses, string(cl))
	}
	for _, l := range []*[]string{&v.CourseSeatTypes, &v.SKUs, &v.CourseKeys, &v.ProductClasses} {
		if *l == nil {
			*l = []string{}
		}
	}
	if o.MaxGlobalApplications > 0 {
		v.MaxUses = &o.MaxGlobalApplications
	}
	return v
}

func couponID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("coupon %q: %w", r.PathValue("id"), offer.ErrCouponNotFound)
	}
	return id, nil
}

// handleCouponCreate is POST /api/v2/coupons/. Otto also places an invoice
// order for the coupon and answers its basket and order; fulfill makes no
// order, so id and order are null.
func handleCouponCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in couponIn
		if err := decode(r, &in); err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		sp, err := in.spec()
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		c, err := d.Checkout.CreateCoupon(r.Context(), userFrom(r.Context()).Username, sp)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"coupon_id": c.ID, "id": nil, "order": nil,
			"payment_data": map[string]string{"payment_processor_name": "Invoice"}})
	})
}

// handleCouponList is GET /api/v2/coupons/: DRF pages, newest first.
func handleCouponList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var coupons []offer.Coupon
		page, size, count, err := fetchPage(r.URL.Query(), func(offset, limit int) (int, error) {
			var n int
			var err error
			coupons, n, err = d.Checkout.Coupons(r.Context(), offset, limit)
			return n, err
		})
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		results := make([]couponListItem, 0, len(coupons))
		for _, c := range coupons {
			item := couponListItem{ID: c.ID, Title: c.Title, Category: viewCategory(c.Category), Client: c.Client, DateCreated: apiTime(c.CreatedAt)}
			if c.Kind() != "Enrollment code" {
				item.Code = soleCode(c)
			}
			results = append(results, item)
		}
		next, previous := pageLinks(d, r, page, size, count)
		writeJSON(w, http.StatusOK, map[string]any{"count": count, "next": next, "previous": previous, "results": results})
	})
}

// handleCouponGet is GET /api/v2/coupons/{id}/.
func handleCouponGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := couponID(r)
		if err == nil {
			var c offer.Coupon
			if c, err = d.Checkout.Coupon(r.Context(), id); err == nil {
				writeJSON(w, http.StatusOK, viewCoupon(c, d.Now()))
				return
			}
		}
		writeError(w, r, logFrom(r), err)
	})
}

// handleCouponUpdate is PUT (and PATCH) /api/v2/coupons/{id}/: the fields
// given change, and the answer is the whole coupon.
func handleCouponUpdate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := couponID(r)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		var in couponIn
		if err := decode(r, &in); err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		sp, err := in.spec()
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		c, err := d.Checkout.UpdateCoupon(r.Context(), userFrom(r.Context()).Username, id, sp)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		writeJSON(w, http.StatusOK, viewCoupon(c, d.Now()))
	})
}

// handleCouponDelete is DELETE /api/v2/coupons/{id}/: 204.
func handleCouponDelete(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := couponID(r)
		if err == nil {
			if err = d.Checkout.DeleteCoupon(r.Context(), userFrom(r.Context()).Username, id); err == nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		writeError(w, r, logFrom(r), err)
	})
}

// handleCouponCodesCSV is GET /api/v2/coupons/{id}/codes.csv: every code
// of the coupon and each of its uses, in the columns of Otto's coupon
// report that fulfill has (one row per use; a code never used has one).
func handleCouponCodesCSV(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := couponID(r)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		c, apps, err := d.Checkout.CouponCodes(r.Context(), id)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		byVoucher := map[int64][]offer.VoucherApplication{}
		for _, a := range apps {
			byVoucher[a.VoucherID] = append(byVoucher[a.VoucherID], a)
		}
		maxUses := ""
		switch {
		case c.Usage == offer.UsageSingle:
			maxUses = "1"
		case c.Offer.MaxGlobalApplications > 0:
			maxUses = strconv.Itoa(c.Offer.MaxGlobalApplications)
		}
		value := offer.FormatBenefit(c.Offer.Benefit, c.Price.Currency)
		if c.Offer.Benefit.Type == offer.BenefitPercentage {
			value += "%"
		} else {
			value += " " + c.Price.Currency
		}
		day := func(t time.Time) string { return t.UTC().Format(apiTimeLayout) }
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="coupon-%d-codes.csv"`, c.ID))
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"Code", "Coupon Name", "Maximum Coupon Usage", "Redemption Count", "Coupon Type", "Discount", "URL",
			"Status", "Order Number", "Redeemed By Username", "Create Date", "Coupon Start Date", "Coupon Expiry Date",
			"Email Domains", "Released Date"})
		status := c.CodeStatus(d.Now())
		for _, v := range c.Vouchers {
			base := []string{v.Code, csvText(c.Title), maxUses, strconv.Itoa(v.Uses), c.Kind(), value,
				baseURL(d, r) + "/coupons/offer/?code=" + v.Code, status}
			tail := []string{day(v.CreatedAt), day(c.Start), day(c.End), strings.Join(c.Offer.EmailDomains, ",")}
			uses := byVoucher[v.ID]
			if len(uses) == 0 {
				_ = cw.Write(append(append(append(base, "", ""), tail...), ""))
				continue
			}
			for _, a := range uses {
				released := ""
				if a.ReleasedAt != nil {
					released = day(*a.ReleasedAt)
				}
				_ = cw.Write(append(append(append(base, a.OrderNumber, csvText(a.Username)), tail...), released))
			}
		}
		cw.Flush()
	})
}

// csvText keeps a spreadsheet from reading text as a formula.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
