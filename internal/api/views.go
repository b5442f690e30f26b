package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"time"
	"unicode/utf8"

	"fulfill/internal/catalog"
	"fulfill/internal/money"
	"fulfill/internal/order"
)

// decode reads a JSON body of at most 1 MiB into v.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: the request body could not be read (at most 1 MiB)", errBadRequest)
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

type attributeView struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

type productView struct {
	ID              int64           `json:"id"`
	Title           string          `json:"title"`
	ProductClass    string          `json:"product_class"`
	SKU             string          `json:"sku"`
	AttributeValues []attributeView `json:"attribute_values"`
}

type lineView struct {
	ID               int64       `json:"id"`
	Title            string      `json:"title"`
	Quantity         int         `json:"quantity"`
	Status           string      `json:"status"`
	SKU              string      `json:"sku"`
	UnitPriceExclTax string      `json:"unit_price_excl_tax"`
	LinePriceExclTax string      `json:"line_price_excl_tax"`
	Product          productView `json:"product"`
	Attempts         int         `json:"fulfillment_attempts"`
	LastErrorClass   string      `json:"last_error_class,omitempty"`
	LastHTTPStatus   int         `json:"last_http_status,omitempty"`
	LastError        string      `json:"last_error,omitempty"`
	NextAttemptAt    *time.Time  `json:"next_attempt_at"`
	FulfilledAt      *time.Time  `json:"fulfilled_at"`
	RefundStatus     *string     `json:"refund_status"`
	EnrollmentCodes  []codeView  `json:"enrollment_codes,omitempty"`
}

type noteView struct {
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	LineID  int64     `json:"line_id,omitempty"`
	Created time.Time `json:"created"`
}

type orderView struct {
	Number         string     `json:"number"`
	BasketID       int64      `json:"basket_id"`
	Status         string     `json:"status"`
	DatePlaced     time.Time  `json:"date_placed"`
	UpdatedAt      time.Time  `json:"updated_at"`
	TotalExclTax   string     `json:"total_excl_tax"`
	TotalInclTax   string     `json:"total_incl_tax"`
	Currency       string     `json:"currency"`
	User           userView   `json:"user"`
	Lines          []lineView `json:"lines"`
	NeedsAttention bool       `json:"needs_attention"`
	Attempts       int        `json:"fulfillment_attempts"`
	LastError      string     `json:"last_error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	Notes          []noteView `json:"notes"`
}

func attributesView(a catalog.Attributes) []attributeView {
	out := make([]attributeView, 0, len(a))
	for k, v := range a {
		out = append(out, attributeView{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func viewOrder(o order.Order) orderView {
	total := money.Format(o.TotalMinor, o.Currency)
	v := orderView{Number: o.Number, BasketID: o.BasketID, Status: string(o.Status), DatePlaced: o.DatePlaced, UpdatedAt: o.UpdatedAt,
		TotalExclTax: total, TotalInclTax: total, Currency: o.Currency, User: userView{Username: o.User.Username, Email: o.User.Email},
		NeedsAttention: o.NeedsAttention, Attempts: o.Attempts, LastError: o.LastError, NextAttemptAt: o.NextAttemptAt,
		Lines: []lineView{}, Notes: []noteView{}}
	for _, l := range o.Lines {
		v.Lines = append(v.Lines, lineView{ID: l.ID, Title: l.Title, Quantity: l.Quantity, Status: string(l.Status), SKU: l.SKU,
			UnitPriceExclTax: money.Format(l.UnitPriceMinor, o.Currency), LinePriceExclTax: money.Format(l.LinePriceMinor, o.Currency),
			Product:  productView{ID: l.ProductID, Title: l.Title, ProductClass: string(l.Class), SKU: l.SKU, AttributeValues: attributesView(l.Attributes)},
			Attempts: l.Attempts, LastErrorClass: l.LastErrorClass, LastHTTPStatus: l.LastHTTPStatus, LastError: l.LastError,
			NextAttemptAt: l.NextAttemptAt, FulfilledAt: l.FulfilledAt, RefundStatus: refundStatus(l.RefundStatus)})
	}
	for _, n := range o.Notes {
		v.Notes = append(v.Notes, noteView{Kind: n.Kind, Message: n.Message, LineID: n.LineID, Created: n.CreatedAt})
	}
	return v
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
