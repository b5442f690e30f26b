package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/order"
)

// filterForm is the orders filter as typed in the form.
type filterForm struct {
	Status         string
	NeedsAttention string // "", "true" or "false"
	Username       string
	SKU            string
	Course         string
	From, To       string // dates (UTC days, To inclusive) or RFC 3339 times
}

// Active reports whether any filter is set.
func (f filterForm) Active() bool { return f != filterForm{} }

// Fields lists the filter's set fields as name/value pairs, in form order.
func (f filterForm) Fields() [][2]string {
	var out [][2]string
	for _, kv := range [][2]string{{"status", f.Status}, {"needs_attention", f.NeedsAttention}, {"username", f.Username},
		{"sku", f.SKU}, {"course", f.Course}, {"from", f.From}, {"to", f.To}} {
		if kv[1] != "" {
			out = append(out, kv)
		}
	}
	return out
}

// Values encodes the filter as query parameters.
func (f filterForm) Values() url.Values {
	v := url.Values{}
	for _, kv := range f.Fields() {
		v.Set(kv[0], kv[1])
	}
	return v
}

var errBadFilter = errors.New("bad filter")

// parseFilter reads the orders filter from a query or a form. Each
// filter is served by an index: status by orders (status, id), needs
// attention by the partial index on flagged orders, username by orders
// (user_id, id), SKU and course by order_lines (sku, order_id) and
// (course_key, order_id), the dates by orders (date_placed, id), in whose
// order a date-bounded listing is sorted and paged (sqlstore.ListOrders).
func parseFilter(v url.Values) (order.Filter, filterForm, error) {
	ff := filterForm{
		Status: strings.TrimSpace(v.Get("status")), NeedsAttention: v.Get("needs_attention"),
		Username: strings.TrimSpace(v.Get("username")), SKU: strings.TrimSpace(v.Get("sku")),
		Course: strings.TrimSpace(v.Get("course")), From: strings.TrimSpace(v.Get("from")), To: strings.TrimSpace(v.Get("to")),
	}
	f := order.Filter{Username: ff.Username, SKU: ff.SKU, CourseID: ff.Course}
	if ff.Status != "" {
		f.Status = order.Status(ff.Status)
		if !f.Status.Valid() {
			return f, ff, fmt.Errorf("%w: unknown status %q", errBadFilter, ff.Status)
		}
	}
	switch ff.NeedsAttention {
	case "":
	case "true", "1", "on":
		ff.NeedsAttention = "true"
		b := true
		f.NeedsAttention = &b
	case "false", "0":
		ff.NeedsAttention = "false"
		b := false
		f.NeedsAttention = &b
	default:
		return f, ff, fmt.Errorf("%w: needs_attention must be true or false", errBadFilter)
	}
	var err error
	if f.PlacedAfter, err = parseDay(ff.From, false); err != nil {
		return f, ff, fmt.Errorf("%w: from: %v", errBadFilter, err)
	}
	if f.PlacedBefore, err = parseDay(ff.To, true); err != nil {
		return f, ff, fmt.Errorf("%w: to: %v", errBadFilter, err)
	}
	return f, ff, nil
}

// parseDay reads a date (a UTC day; the end of it when end) or an RFC 3339
// time.
func parseDay(s string, end bool) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return &t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return &t, nil
}

type ordersPage struct {
	pageBase
	Counts   order.Counts
	Filter   filterForm
	Statuses []order.Status
	Orders   []order.Order
	Error    string
	Next     string // the next (older) page, "" on the last
	First    string // the first page, "" on it
	CountCap int
}

// handleOrders lists orders newest first, 50 a page, with keyset paging:
// the cursor is the last id shown, so a page costs the same at any depth.
func handleOrders(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := ordersPage{pageBase: a.base(r, "Orders", "orders"), Statuses: order.Statuses(), CountCap: order.CountCap}
		counts, err := a.Store.OrderCounts(r.Context())
		if err != nil {
			a.serverError(w, r, "count orders", err)
			return
		}
		p.Counts = counts
		f, ff, err := parseFilter(q)
		p.Filter = ff
		if err != nil {
			p.Error = err.Error()
			a.renderStatus(w, r, http.StatusUnprocessableEntity, "orders", &p)
			return
		}
		if c := q.Get("cursor"); c != "" {
			if f.AfterID, err = strconv.ParseInt(c, 10, 64); err != nil || f.AfterID <= 0 {
				p.Error = "bad cursor"
				a.renderStatus(w, r, http.StatusUnprocessableEntity, "orders", &p)
				return
			}
			first := ff.Values()
			p.First = Prefix + "?" + first.Encode()
		}
		f.Limit = a.PageSize
		if p.Orders, err = a.Store.ListOrders(r.Context(), f); err != nil {
			a.serverError(w, r, "list orders", err)
			return
		}
		if len(p.Orders) == f.Limit {
			next := ff.Values()
			next.Set("cursor", strconv.FormatInt(p.Orders[len(p.Orders)-1].ID, 10))
			p.Next = Prefix + "?" + next.Encode()
		}
		a.render(w, r, "orders", &p)
	})
}
