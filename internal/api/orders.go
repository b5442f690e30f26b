package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

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

func handleOrderGet(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := visibleOrder(r.Context(), store, r.PathValue("number"))
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		v := viewOrder(o)
		var codes map[int64][]voucher.EnrollmentCode
		for i, l := range o.Lines {
			if l.Class != catalog.ClassEnrollmentCode {
				continue
			}
			if codes == nil {
				if codes, err = store.CodesForOrder(r.Context(), o.ID); err != nil {
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
	})
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
	if s := q.Get("cursor"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return f, fmt.Errorf("%w: bad cursor", errBadRequest)
		}
		f.AfterID = id
	}
	if s := q.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return f, fmt.Errorf("%w: page_size must be 1 to 1000", errBadRequest)
		}
		f.Limit = n
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	f.Username = q.Get("username")
	return f, nil
}

// handleOrderList lists the caller's orders, newest first; staff may list
// anyone's and filter by username and status. Paging is by keyset (cursor).
func handleOrderList(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := parseFilter(r)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		u := userFrom(r.Context())
		if !u.IsStaff {
			f.Username = u.Username
		}
		os, err := store.ListOrders(r.Context(), f)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		results := make([]orderView, 0, len(os))
		for _, o := range os {
			results = append(results, viewOrder(o))
		}
		var next any
		if len(os) == f.Limit {
			q := r.URL.Query()
			q.Set("cursor", strconv.FormatInt(os[len(os)-1].ID, 10))
			next = r.URL.Path + "?" + q.Encode()
		}
		writeJSON(w, http.StatusOK, map[string]any{"next": next, "previous": nil, "results": results})
	})
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
		writeJSON(w, status, viewOrder(o))
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
