package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"fulfill/internal/apperr"
	"fulfill/internal/auth"
	"fulfill/internal/catalog"
	"fulfill/internal/order"
	"fulfill/internal/voucher"
)

// visibleOrder returns the order if the caller may see it; another user's
// order is "not found", so numbers cannot be probed.
func visibleOrder(ctx context.Context, store Store, number string) (order.Order, error) {
	o, err := store.GetOrder(ctx, number)
	if err != nil {
		return o, err
	}
	u := userFrom(ctx)
	if !u.IsStaff && o.User.Username != u.Username {
		return order.Order{}, fmt.Errorf("order %q: %w", number, order.ErrNotFound)
	}
	return o, nil
}

func handleOrderGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := visibleOrder(r.Context(), d.Store, r.PathValue("number"))
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		writeOrder(w, r, d, o)
	})
}

// writeOrder answers with the whole order, its enrollment codes too.
func writeOrder(w http.ResponseWriter, r *http.Request, d Deps, o order.Order) {
	x, err := loadOrderData(r.Context(), d, r, o)
	if err != nil {
		writeError(w, r, logFrom(r), err)
		return
	}
	v := viewOrder(o, x)
	var codes map[int64][]voucher.EnrollmentCode
	for i, l := range o.Lines {
		if l.Class != catalog.ClassEnrollmentCode {
			continue
		}
		if codes == nil {
			if codes, err = d.Store.CodesForOrder(r.Context(), o.ID); err != nil {
				writeError(w, r, logFrom(r), err)
				return
			}
		}
		for _, c := range codes[l.ID] {
			v.Lines[i].EnrollmentCodes = append(v.Lines[i].EnrollmentCodes, codeView{Code: c.Code, Status: string(c.Status),
				RedeemedBy: c.RedeemedBy, RedeemedOrder: c.RedeemedOrder, RedeemURL: "/coupons/redeem/?code=" + c.Code})
		}
	}
	writeJSON(w, http.StatusOK, v)
}

func parseFilter(r *http.Request) (order.Filter, error) {
	q := r.URL.Query()
	var f order.Filter
	if s := q.Get("status"); s != "" {
		f.Status = order.Status(s)
		if !f.Status.Valid() {
			return f, fmt.Errorf("%w: unknown status %q", errBadRequest, s)
		}
	}
	if s := q.Get("needs_attention"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return f, fmt.Errorf("%w: needs_attention must be true or false", errBadRequest)
		}
		f.NeedsAttention = &b
	}
	for name, dst := range map[string]**time.Time{"placed_before": &f.PlacedBefore, "placed_after": &f.PlacedAfter} {
		if s := q.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return f, fmt.Errorf("%w: %s must be an RFC 3339 time", errBadRequest, name)
			}
			*dst = &t
		}
	}
	f.Username = q.Get("username")
	return f, nil
}

// Otto's lists are DRF page-number pages: page_size defaults to 20 and is
// cut to 100; a page_size that is not a positive number is the default.
const (
	defaultPageSize = 20
	maxPageSize     = 100
)

// errInvalidPage is DRF's answer to a page that does not exist: 404.
var errInvalidPage = apperr.New(apperr.NotFound, "invalid page")

// pageOf reads page and page_size as DRF's PageNumberPagination does; a
// page that is not a positive number (or "last") is not found.
func pageOf(q url.Values) (page, size int, last bool, err error) {
	size = defaultPageSize
	if n, err := strconv.Atoi(q.Get("page_size")); err == nil && n > 0 {
		size = min(n, maxPageSize)
	}
	switch s := q.Get("page"); s {
	case "":
		return 1, size, false, nil
	case "last":
		return 0, size, true, nil
	default:
		if page, err = strconv.Atoi(s); err != nil || page < 1 {
			return 0, size, false, fmt.Errorf("%w %q", errInvalidPage, s)
		}
		return page, size, false, nil
	}
}

// pageNumber turns the page asked for into the one to show of count
// items: the last one for "last", not found past the end (page 1 always
// exists).
func pageNumber(q url.Values, count int) (page, size int, err error) {
	page, size, last, err := pageOf(q)
	if err != nil {
		return 0, 0, err
	}
	pages := pagesOf(count, size)
	if last {
		page = pages
	}
	if page > pages {
		return 0, 0, fmt.Errorf("%w %d: there are %d", errInvalidPage, page, pages)
	}
	return page, size, nil
}

// pagesOf is the number of pages of count items: at least 1.
func pagesOf(count, size int) int { return max(1, (count+size-1)/size) }

// fetchPage runs fetch (which answers the count of all items) for the
// page q asks for; for "last", whose number only the count tells, it
// fetches the last page after the first.
func fetchPage(q url.Values, fetch func(offset, limit int) (count int, err error)) (page, size, count int, err error) {
	page, size, last, err := pageOf(q)
	if err != nil {
		return 0, 0, 0, err
	}
	if last {
		page = 1
	}
	if count, err = fetch((page-1)*size, size); err != nil {
		return 0, 0, 0, err
	}
	pages := pagesOf(count, size)
	if last && pages > 1 {
		page = pages
		if count, err = fetch((page-1)*size, size); err != nil {
			return 0, 0, 0, err
		}
	}
	if page > pages {
		return 0, 0, 0, fmt.Errorf("%w %d: there are %d", errInvalidPage, page, pages)
	}
	return page, size, count, nil
}

// pageLinks are the absolute next and previous URLs of a page, as DRF
// builds them: the request's URL with page replaced (removed for page 1).
func pageLinks(d Deps, r *http.Request, page, size, count int) (next, previous any) {
	link := func(p int) string {
		q := r.URL.Query()
		if p == 1 {
			q.Del("page")
		} else {
			q.Set("page", strconv.Itoa(p))
		}
		u := baseURL(d, r) + r.URL.Path
		if enc := q.Encode(); enc != "" {
			u += "?" + enc
		}
		return u
	}
	if page*size < count {
		next = link(page + 1)
	}
	if page > 1 {
		previous = link(page - 1)
	}
	return next, previous
}

// handleOrderList lists the caller's orders, newest first; staff may list
// anyone's and filter by username and status, and a learner naming anyone
// else is refused. Pages are Otto's (page, page_size: count, next,
// previous, results); with ?cursor= (empty for the first page) they are
// keyset pages instead, which stay fast however deep they go.
func handleOrderList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		f, err := parseFilter(r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		u := userFrom(r.Context())
		if !u.IsStaff {
			if f.Username != "" && f.Username != u.Username {
				writeError(w, r, log, fmt.Errorf("%w: you may list only your own orders", auth.ErrForbidden))
				return
			}
			f.Username = u.Username
		}
		q := r.URL.Query()
		if q.Has("cursor") {
			listOrdersByCursor(w, r, d, f)
			return
		}
		count, err := d.Store.CountOrders(r.Context(), f)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		page, size, err := pageNumber(q, count)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		f.Limit = size
		os, err := d.Store.ListOrdersPage(r.Context(), f, (page-1)*size)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		results, err := viewOrders(r, d, os)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		next, previous := pageLinks(d, r, page, size, count)
		writeJSON(w, http.StatusOK, map[string]any{"count": count, "next": next, "previous": previous, "results": results})
	})
}

// listOrdersByCursor answers a keyset page: page_size 1 to 1000 (default
// 50), next naming the cursor of the page after.
func listOrdersByCursor(w http.ResponseWriter, r *http.Request, d Deps, f order.Filter) {
	q := r.URL.Query()
	if s := q.Get("cursor"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			writeError(w, r, logFrom(r), fmt.Errorf("%w: bad cursor", errBadRequest))
			return
		}
		f.AfterID = id
	}
	f.Limit = 50
	if s := q.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, r, logFrom(r), fmt.Errorf("%w: page_size must be 1 to 1000", errBadRequest))
			return
		}
		f.Limit = n
	}
	os, err := d.Store.ListOrders(r.Context(), f)
	if err != nil {
		writeError(w, r, logFrom(r), err)
		return
	}
	results, err := viewOrders(r, d, os)
	if err != nil {
		writeError(w, r, logFrom(r), err)
		return
	}
	var next any
	if len(os) == f.Limit {
		q.Set("cursor", strconv.FormatInt(os[len(os)-1].ID, 10))
		next = baseURL(d, r) + r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, map[string]any{"next": next, "previous": nil, "results": results})
}

// viewOrders is the views of os, their data read once for all of them.
func viewOrders(r *http.Request, d Deps, os []order.Order) ([]orderView, error) {
	x, err := loadOrderData(r.Context(), d, r, os...)
	if err != nil {
		return nil, err
	}
	out := make([]orderView, 0, len(os))
	for _, o := range os {
		out = append(out, viewOrder(o, x))
	}
	return out, nil
}

// handleOrderFulfill is Otto's PUT /api/v2/orders/{number}/fulfill/: 406
// when the order is not fulfillable, 200 with the order when it is Complete
// afterwards, 500 with the order (lines and errors) when still failing.
func handleOrderFulfill(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		o, err := visibleOrder(r.Context(), d.Store, r.PathValue("number"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if !o.Status.Fulfillable() {
			writeProblem(w, r, Problem{Status: http.StatusNotAcceptable, Title: "Order not fulfillable",
				Detail: fmt.Sprintf("Order %s is %s; only Open and Fulfillment Error orders can be fulfilled.", o.Number, o.Status)})
			return
		}
		u := userFrom(r.Context())
		o, err = d.Service.Resubmit(r.Context(), o.Number, u.Username)
		if errors.Is(err, order.ErrNotFulfillable) {
			writeProblem(w, r, Problem{Status: http.StatusNotAcceptable, Title: "Order not fulfillable", Detail: err.Error()})
			return
		}
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		status := http.StatusOK
		if o.Status.Fulfillable() {
			status = http.StatusInternalServerError
		}
		x, err := loadOrderData(r.Context(), d, r, o)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		writeJSON(w, status, viewOrder(o, x))
	})
}

type bulkFulfillIn struct {
	Numbers []string `json:"numbers"`
	Filter  *struct {
		Status         string     `json:"status"`
		NeedsAttention *bool      `json:"needs_attention"`
		PlacedBefore   *time.Time `json:"placed_before"`
		PlacedAfter    *time.Time `json:"placed_after"`
	} `json:"filter"`
}

// handleOrdersFulfill resubmits many orders: a list of numbers or a filter.
func handleOrdersFulfill(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		var in bulkFulfillIn
		if err := decode(r, &in); err != nil {
			writeError(w, r, log, err)
			return
		}
		if (len(in.Numbers) == 0) == (in.Filter == nil) {
			writeError(w, r, log, fmt.Errorf("%w: give either \"numbers\" or \"filter\"", errBadRequest))
			return
		}
		var numbers []string
		if len(in.Numbers) > 0 {
			if len(in.Numbers) > 10000 {
				writeError(w, r, log, fmt.Errorf("%w: at most 10000 numbers per request", errBadRequest))
				return
			}
			numbers = in.Numbers
		} else {
			f := order.Filter{Status: order.Status(in.Filter.Status), NeedsAttention: in.Filter.NeedsAttention,
				PlacedBefore: in.Filter.PlacedBefore, PlacedAfter: in.Filter.PlacedAfter}
			if f.Status != "" && !f.Status.Valid() {
				writeError(w, r, log, fmt.Errorf("%w: unknown status %q", errBadRequest, f.Status))
				return
			}
			var err error
			if numbers, _, err = d.Service.Matching(r.Context(), f, 10000); err != nil {
				writeError(w, r, log, err)
				return
			}
		}
		res := resubmitMany(r.Context(), d, numbers, userFrom(r.Context()).Username)
		writeJSON(w, http.StatusOK, res)
	})
}

// BulkResult is the answer of a bulk resubmission.
type BulkResult struct {
	Count     int      `json:"count"`
	Completed []string `json:"completed"`
	Failed    []string `json:"failed"`
	Skipped   []string `json:"skipped"`
}

func resubmitMany(ctx context.Context, d Deps, numbers []string, actor string) BulkResult {
	res := BulkResult{Completed: []string{}, Failed: []string{}, Skipped: []string{}}
	for _, r := range d.Service.ResubmitMany(ctx, numbers, actor, 64) {
		switch {
		case r.Skipped():
			res.Skipped = append(res.Skipped, r.Number)
		case r.Complete():
			res.Count++
			res.Completed = append(res.Completed, r.Number)
		default:
			res.Count++
			res.Failed = append(res.Failed, r.Number)
		}
	}
	return res
}
