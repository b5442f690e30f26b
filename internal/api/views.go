package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment"
	"fulfill/internal/money"
	"fulfill/internal/order"
)

// decode reads a body of at most 1 MiB into v: JSON, or a form
// (urlencoded or multipart) as DRF parses them (form.go).
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: the request body could not be read (at most 1 MiB)", errBadRequest)
	}
	return decodeBody(r.Header.Get("Content-Type"), body, v)
}

// decodeBody decodes a body already read, as its Content-Type says.
func decodeBody(contentType string, body []byte, v any) error {
	if isForm(contentType, body) {
		raw, err := formJSON(contentType, body, reflect.TypeOf(v))
		if err != nil {
			return err
		}
		body = raw
	}
	return decodeBytes(body, v)
}

func decodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: the request body is empty; a JSON object is expected", errBadRequest)
	}
	// No text the service stores or looks up may hold invalid UTF-8 or a
	// NUL (PostgreSQL refuses both): refuse them here, for every body.
	if !utf8.Valid(body) {
		return fmt.Errorf("%w: the body is not valid UTF-8", errBadRequest)
	}
	if bytes.Contains(body, []byte(`\u0000`)) {
		return fmt.Errorf("%w: the body holds a NUL character (\\u0000)", errBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s", errBadRequest, jsonProblem(err))
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", errBadRequest)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decimal accepts a price as a JSON string ("49.00") or number (49).
type decimal string

func (d *decimal) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*d = decimal(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("price must be a decimal string or number")
	}
	*d = decimal(s)
	return nil
}

type userView struct {
	Username string `json:"username"`
	Email    string `json:"email"`
}

// apiTime is a timestamp as Otto writes every one, and as the LMS parses
// date_placed (strptime '%Y-%m-%dT%H:%M:%SZ'): UTC, whole seconds. Every
// time in a JSON answer is one.
type apiTime time.Time

// apiTimeLayout is Otto's ISO_8601_FORMAT.
const apiTimeLayout = "2006-01-02T15:04:05Z"

// MarshalJSON writes the time in apiTimeLayout, its fraction cut off.
func (t apiTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(apiTimeLayout) + `"`), nil
}

// apiTimePtr is t as an apiTime, nil (JSON null) for nil.
func apiTimePtr(t *time.Time) *apiTime {
	if t == nil {
		return nil
	}
	v := apiTime(*t)
	return &v
}

// viewer is what views need besides their data: the service's base URL
// for the links they carry, the time (availability), and the LMS
// dashboard the order links to.
type viewer struct {
	base      string
	now       time.Time
	dashboard string
}

func newViewer(d Deps, r *http.Request) viewer {
	return viewer{base: baseURL(d, r), now: d.Now(), dashboard: d.DashboardURL}
}

// baseURL is the service's public base URL (--public-url), else the one
// the request was sent to.
func baseURL(d Deps, r *http.Request) string {
	if d.PublicURL != "" {
		return strings.TrimRight(d.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// attributeView is Otto's ProductAttributeValueSerializer: our attribute
// names are Otto's codes, and its names too (course_key, credit_provider,
// which the LMS receipt matches on).
type attributeView struct {
	Name  string `json:"name"`
	Code  string `json:"code"`
	Value any    `json:"value"`
}

// stockView is Otto's StockRecordSerializer, plus expires.
type stockView struct {
	ID            int64    `json:"id"`
	Product       int64    `json:"product"`
	Partner       string   `json:"partner"`
	PartnerSKU    string   `json:"partner_sku"`
	PriceCurrency string   `json:"price_currency"`
	PriceExclTax  string   `json:"price_excl_tax"`
	Expires       *apiTime `json:"expires"`
}

// productView is Otto's ProductSerializer, plus sku, course_id and
// currency. Price is null for a parent, which is not sold.
type productView struct {
	ID                      int64           `json:"id"`
	URL                     string          `json:"url"`
	Structure               string          `json:"structure"`
	ProductClass            string          `json:"product_class"`
	Title                   string          `json:"title"`
	Price                   *string         `json:"price"`
	Expires                 *apiTime        `json:"expires"`
	AttributeValues         []attributeView `json:"attribute_values"`
	IsAvailableToBuy        bool            `json:"is_available_to_buy"`
	IsEnrollmentCodeProduct bool            `json:"is_enrollment_code_product"`
	StockRecords            []stockView     `json:"stockrecords"`
	SKU                     string          `json:"sku"`
	CourseID                string          `json:"course_id,omitempty"`
	Currency                string          `json:"currency"`
}

// structure is Oscar's product structure of p.
func structure(p catalog.Product) string {
	switch {
	case p.ParentID != 0:
		return "child"
	case p.Class == catalog.ClassSeat && p.Stock == nil:
		return "parent"
	}
	return "standalone"
}

func (v viewer) productURL(id int64) string { return fmt.Sprintf("%s/api/v2/products/%d/", v.base, id) }

func (v viewer) product(p catalog.Product) productView {
	out := productView{ID: p.ID, URL: v.productURL(p.ID), Structure: structure(p), ProductClass: string(p.Class), Title: p.Title,
		AttributeValues: attributesView(p.Attributes), IsAvailableToBuy: p.Buyable(v.now),
		IsEnrollmentCodeProduct: p.Class == catalog.ClassEnrollmentCode, StockRecords: []stockView{}, CourseID: p.CourseID}
	if st := p.Stock; st != nil {
		price := st.Price.String()
		out.Price, out.Expires, out.SKU, out.Currency = &price, apiTimePtr(st.Expires), st.SKU, st.Price.Currency
		out.StockRecords = append(out.StockRecords, stockView{ID: st.ID, Product: p.ID, Partner: st.Partner, PartnerSKU: st.SKU,
			PriceCurrency: st.Price.Currency, PriceExclTax: price, Expires: apiTimePtr(st.Expires)})
	}
	return out
}

// billingAddressView is Otto's BillingAddressSerializer. No order has a
// billing address here (no processor collects one), so it is always null.
type billingAddressView struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Line1     string `json:"line1"`
	Line2     string `json:"line2"`
	Postcode  string `json:"postcode"`
	State     string `json:"state"`
	Country   string `json:"country"`
	City      string `json:"city"`
}

// lineView is Otto's LineSerializer, plus the line's id, SKU, retry
// state, refund status and enrollment codes.
type lineView struct {
	ID                 int64       `json:"id"`
	Title              string      `json:"title"`
	Quantity           int         `json:"quantity"`
	Description        string      `json:"description"`
	CourseOrganization *string     `json:"course_organization"`
	Status             string      `json:"status"`
	SKU                string      `json:"sku"`
	UnitPriceExclTax   string      `json:"unit_price_excl_tax"`
	LinePriceExclTax   string      `json:"line_price_excl_tax"`
	Product            productView `json:"product"`
	Attempts           int         `json:"fulfillment_attempts"`
	LastErrorClass     string      `json:"last_error_class,omitempty"`
	LastHTTPStatus     int         `json:"last_http_status,omitempty"`
	LastError          string      `json:"last_error,omitempty"`
	// Waiting says why the line waits while its module's breaker is open.
	Waiting         string     `json:"waiting,omitempty"`
	NextAttemptAt   *apiTime   `json:"next_attempt_at"`
	FulfilledAt     *apiTime   `json:"fulfilled_at"`
	RefundStatus    *string    `json:"refund_status"`
	EnrollmentCodes []codeView `json:"enrollment_codes,omitempty"`
}

type noteView struct {
	Kind    string  `json:"kind"`
	Message string  `json:"message"`
	LineID  int64   `json:"line_id,omitempty"`
	Created apiTime `json:"created"`
}

// orderView is Otto's OrderSerializer (all 20 keys: the values we have,
// and Otto's empty ones for discounts, vouchers, addresses, enterprise and
// tracking, which this service has none of), plus the order's basket,
// retry state and notes.
type orderView struct {
	BasketDiscounts             []basketDiscountView `json:"basket_discounts"`
	BillingAddress              *billingAddressView  `json:"billing_address"`
	ContainsCreditSeat          bool                 `json:"contains_credit_seat"`
	Currency                    string               `json:"currency"`
	DatePlaced                  apiTime              `json:"date_placed"`
	DashboardURL                *string              `json:"dashboard_url"`
	Discount                    string               `json:"discount"`
	EnableHoistOrderHistory     bool                 `json:"enable_hoist_order_history"`
	EnterpriseLearnerPortalURL  *string              `json:"enterprise_learner_portal_url"`
	Lines                       []lineView           `json:"lines"`
	Number                      string               `json:"number"`
	OrderProductIDs             string               `json:"order_product_ids"`
	PaymentProcessor            *string              `json:"payment_processor"`
	PaymentMethod               *string              `json:"payment_method"`
	ProductTracking             any                  `json:"product_tracking"`
	Status                      string               `json:"status"`
	TotalBeforeDiscountsInclTax string               `json:"total_before_discounts_incl_tax"`
	TotalExclTax                string               `json:"total_excl_tax"`
	User                        userView             `json:"user"`
	Vouchers                    []voucherView        `json:"vouchers"`

	BasketID       int64      `json:"basket_id"`
	UpdatedAt      apiTime    `json:"updated_at"`
	TotalInclTax   string     `json:"total_incl_tax"`
	NeedsAttention bool       `json:"needs_attention"`
	Attempts       int        `json:"fulfillment_attempts"`
	LastError      string     `json:"last_error"`
	NextAttemptAt  *apiTime   `json:"next_attempt_at"`
	Notes          []noteView `json:"notes"`
}

func attributesView(a catalog.Attributes) []attributeView {
	out := make([]attributeView, 0, len(a))
	for k, v := range a {
		out = append(out, attributeView{Name: k, Code: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// orderData is what order views show beyond the orders themselves: the
// products of their lines as the catalog has them now, and the processor
// that took each order's payment.
type orderData struct {
	viewer
	products   map[string]catalog.Product
	processors map[int64]string
	service    *fulfillment.Service
}

// waiting is why a line waits on an open breaker, or "".
func (x orderData) waiting(l order.Line) string {
	if x.service == nil {
		return ""
	}
	return x.service.Waiting(l)
}

// loadOrderData reads the order data of os in two queries, whatever their
// number.
func loadOrderData(ctx context.Context, d Deps, r *http.Request, os ...order.Order) (orderData, error) {
	x := orderData{viewer: newViewer(d, r), service: d.Service}
	var skus []string
	ids := make([]int64, 0, len(os))
	seen := map[string]bool{}
	for _, o := range os {
		ids = append(ids, o.ID)
		for _, l := range o.Lines {
			if !seen[l.SKU] {
				seen[l.SKU] = true
				skus = append(skus, l.SKU)
			}
		}
	}
	var err error
	if x.products, err = d.Store.ProductsBySKU(ctx, skus); err != nil {
		return x, err
	}
	x.processors, err = d.Store.PaymentProcessors(ctx, ids)
	return x, err
}

// courseOrganization is the organization of a course key
// (course-v1:ORG+NUM+RUN or ORG/NUM/RUN), as Otto's CourseKey.org.
func courseOrganization(key string) *string {
	org := ""
	if rest, ok := strings.CutPrefix(key, "course-v1:"); ok {
		org, _, _ = strings.Cut(rest, "+")
	} else if strings.Count(key, "/") == 2 {
		org, _, _ = strings.Cut(key, "/")
	}
	if org == "" {
		return nil
	}
	return &org
}

func viewOrder(o order.Order, x orderData) orderView {
	total := money.Format(o.TotalMinor, o.Currency)
	v := orderView{BasketDiscounts: []basketDiscountView{}, Currency: o.Currency, DatePlaced: apiTime(o.DatePlaced), Discount: "0", Number: o.Number,
		Status: string(o.Status), TotalBeforeDiscountsInclTax: money.Format(o.TotalBeforeDiscounts(), o.Currency), TotalExclTax: total,
		Vouchers: []voucherView{},
		User:     userView{Username: o.User.Username, Email: o.User.Email},
		BasketID: o.BasketID, UpdatedAt: apiTime(o.UpdatedAt), TotalInclTax: total, NeedsAttention: o.NeedsAttention,
		Attempts: o.Attempts, LastError: o.LastError, NextAttemptAt: apiTimePtr(o.NextAttemptAt), Lines: []lineView{}, Notes: []noteView{}}
	if x.dashboard != "" {
		v.DashboardURL = &x.dashboard
	}
	if p, ok := x.processors[o.ID]; ok {
		v.PaymentProcessor, v.PaymentMethod = &p, &p
	}
	ids := make([]string, 0, len(o.Lines))
	for _, l := range o.Lines {
		ids = append(ids, strconv.FormatInt(l.ProductID, 10))
		if l.Class == catalog.ClassSeat && l.Attributes.String("certificate_type") == catalog.CertCredit {
			v.ContainsCreditSeat = true
		}
		v.Lines = append(v.Lines, lineView{ID: l.ID, Title: l.Title, Quantity: l.Quantity, Description: l.Title,
			CourseOrganization: courseOrganization(l.Attributes.String("course_key")), Status: string(l.Status), SKU: l.SKU,
			UnitPriceExclTax: money.Format(l.UnitPriceMinor, o.Currency), LinePriceExclTax: money.Format(l.LinePriceMinor, o.Currency),
			Product:  x.lineProduct(l, o.Currency),
			Attempts: l.Attempts, LastErrorClass: l.LastErrorClass, LastHTTPStatus: l.LastHTTPStatus, LastError: l.LastError,
			NextAttemptAt: apiTimePtr(l.NextAttemptAt), FulfilledAt: apiTimePtr(l.FulfilledAt), RefundStatus: refundStatus(l.RefundStatus),
			Waiting: x.waiting(l)})
	}
	v.OrderProductIDs = strings.Join(ids, ",")
	v.BasketDiscounts, v.Vouchers, v.Discount = x.discounts(o)
	for _, n := range o.Notes {
		v.Notes = append(v.Notes, noteView{Kind: n.Kind, Message: n.Message, LineID: n.LineID, Created: apiTime(n.CreatedAt)})
	}
	return v
}

// lineProduct is the product of a line: as the catalog has it now, with
// the attributes the line was bought with (the receipt's course_key), or
// from the line alone when the catalog no longer has it.
func (x orderData) lineProduct(l order.Line, currency string) productView {
	if p, ok := x.products[l.SKU]; ok && p.ID == l.ProductID {
		v := x.product(p)
		v.AttributeValues = attributesView(l.Attributes)
		return v
	}
	price := money.Format(l.UnitPriceMinor, currency)
	s := "standalone"
	if l.Class == catalog.ClassSeat {
		s = "child"
	}
	return productView{ID: l.ProductID, URL: x.productURL(l.ProductID), Structure: s, ProductClass: string(l.Class), Title: l.Title,
		Price: &price, AttributeValues: attributesView(l.Attributes), IsEnrollmentCodeProduct: l.Class == catalog.ClassEnrollmentCode,
		StockRecords: []stockView{}, SKU: l.SKU, Currency: currency}
}

func refundStatus(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// jsonProblem says what is wrong with a JSON body in the client's terms,
// without the decoder's Go type names.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON body at byte %d", syn.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("field %q must be a JSON %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("the body must be a JSON %s, not %s", jsonKind(typ.Type), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the JSON body ends too early"
	}
	var me *http.MaxBytesError
	if errors.As(err, &me) {
		return "the request body is too large"
	}
	return "the JSON body does not match the expected fields"
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16,
		reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "value"
}
