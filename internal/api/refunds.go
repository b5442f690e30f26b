package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"fulfill/internal/money"
	"fulfill/internal/refund"
)

type refundLineView struct {
	ID                int64  `json:"id"`
	OrderLineID       int64  `json:"order_line_id"`
	LineCreditExclTax string `json:"line_credit_excl_tax"`
	Quantity          int    `json:"quantity"`
	Status            string `json:"status"`
	LastError         string `json:"last_error,omitempty"`
}

type refundView struct {
	ID                 int64            `json:"id"`
	Order              string           `json:"order"`
	User               string           `json:"user"`
	Status             string           `json:"status"`
	TotalCreditExclTax string           `json:"total_credit_excl_tax"`
	Currency           string           `json:"currency"`
	Lines              []refundLineView `json:"lines"`
	Attempts           int              `json:"attempts"`
	LastError          string           `json:"last_error"`
	NeedsAttention     bool             `json:"needs_attention"`
	NextAttemptAt      *apiTime         `json:"next_attempt_at"`
	Created            apiTime          `json:"created"`
	Modified           apiTime          `json:"modified"`
}

func viewRefund(r refund.Refund) refundView {
	v := refundView{ID: r.ID, Order: r.OrderNumber, User: r.Username, Status: string(r.Status),
		TotalCreditExclTax: money.Format(r.TotalCreditMinor, r.Currency), Currency: r.Currency, Lines: []refundLineView{},
		Attempts: r.Attempts, LastError: r.LastError, NeedsAttention: r.NeedsAttention, NextAttemptAt: apiTimePtr(r.NextAttemptAt),
		Created: apiTime(r.CreatedAt), Modified: apiTime(r.UpdatedAt)}
	for _, l := range r.Lines {
		v.Lines = append(v.Lines, refundLineView{ID: l.ID, OrderLineID: l.OrderLineID, LineCreditExclTax: money.Format(l.LineCreditMinor, r.Currency),
			Quantity: l.Quantity, Status: string(l.Status), LastError: l.LastError})
	}
	return v
}

type refundIn struct {
	Username    string  `json:"username"`
	CourseID    string  `json:"course_id"`
	OrderNumber string  `json:"order_number"`
	LineIDs     []int64 `json:"line_ids"`
	// EntitlementUUID refunds the one line of the order that granted this
	// entitlement (the LMS's refund_entitlement).
	EntitlementUUID string `json:"entitlement_uuid"`
}

// entitlementUUIDKey is the fulfillment-data key of an entitlement line's
// uuid (entitlement.DataUUID; the api does not import the module, which
// imports the LMS client).
const entitlementUUIDKey = "entitlement_uuid"

// handleRefundCreate is Otto's POST /api/v2/refunds/: 201 with the new
// refund ids, 200 with [] when nothing is refundable. It takes
// {username, course_id}, {order_number, line_ids} or {order_number,
// entitlement_uuid} (with the username the LMS adds), as JSON or a form.
func handleRefundCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		var in refundIn
		if err := decode(r, &in); err != nil {
			writeError(w, r, log, err)
			return
		}
		byCourse := in.Username != "" && in.CourseID != ""
		if byCourse == (in.OrderNumber != "") || (in.EntitlementUUID != "" && in.OrderNumber == "") {
			writeError(w, r, log, fmt.Errorf("%w: give {username, course_id}, {order_number, line_ids} or {order_number, entitlement_uuid}", errBadRequest))
			return
		}
		sel := refund.Selection{Username: in.Username, CourseID: in.CourseID, OrderNumber: in.OrderNumber, LineIDs: in.LineIDs}
		if in.EntitlementUUID != "" {
			line, err := entitlementLine(r.Context(), d.Store, in)
			if err != nil {
				writeError(w, r, log, err)
				return
			}
			if line == 0 {
				writeJSON(w, http.StatusOK, []int64{})
				return
			}
			sel.LineIDs = []int64{line}
		}
		ids, err := d.Refunds.Create(r.Context(), sel, userFrom(r.Context()).Username)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if len(ids) == 0 {
			writeJSON(w, http.StatusOK, []int64{})
			return
		}
		writeJSON(w, http.StatusCreated, ids)
	})
}

// entitlementLine is the id of the line of in's order that granted in's
// entitlement, 0 when none did. The order must be the named user's.
func entitlementLine(ctx context.Context, store Store, in refundIn) (int64, error) {
	o, err := store.GetOrder(ctx, in.OrderNumber)
	if err != nil {
		return 0, err
	}
	if in.Username != "" && o.User.Username != in.Username {
		return 0, fmt.Errorf("%w: order %s is not %s's", errBadRequest, o.Number, in.Username)
	}
	for _, l := range o.Lines {
		if l.FulfillmentData[entitlementUUIDKey] == in.EntitlementUUID {
			return l.ID, nil
		}
	}
	return 0, nil
}

func refundID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: refund id must be a positive integer", errBadRequest)
	}
	return id, nil
}

func handleRefundGet(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := refundID(r)
		if err == nil {
			var rf refund.Refund
			if rf, err = store.GetRefund(r.Context(), id); err == nil {
				writeJSON(w, http.StatusOK, viewRefund(rf))
				return
			}
		}
		writeError(w, r, logFrom(r), err)
	})
}

func handleRefundList(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		status := refund.Status(q.Get("status"))
		if status != "" && !status.Valid() {
			writeError(w, r, logFrom(r), fmt.Errorf("%w: unknown refund status %q", errBadRequest, status))
			return
		}
		var after int64
		if c := q.Get("cursor"); c != "" {
			var err error
			if after, err = strconv.ParseInt(c, 10, 64); err != nil {
				writeError(w, r, logFrom(r), fmt.Errorf("%w: bad cursor", errBadRequest))
				return
			}
		}
		rs, err := store.ListRefunds(r.Context(), status, 0, after, 50)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		results := make([]refundView, 0, len(rs))
		for _, rf := range rs {
			results = append(results, viewRefund(rf))
		}
		var next any
		if len(rs) == 50 {
			qq := r.URL.Query()
			qq.Set("cursor", strconv.FormatInt(rs[len(rs)-1].ID, 10))
			next = r.URL.Path + "?" + qq.Encode()
		}
		writeJSON(w, http.StatusOK, map[string]any{"next": next, "previous": nil, "results": results})
	})
}

// handleRefundProcess is Otto's PUT /api/v2/refunds/{id}/process/: 200 with
// the refund, or 500 with the refund when approval did not complete (it is
// then scheduled for a retry).
func handleRefundProcess(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		id, err := refundID(r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		var in struct {
			Action refund.Action `json:"action"`
		}
		if err := decode(r, &in); err != nil {
			writeError(w, r, log, err)
			return
		}
		// Otto compares the action case-insensitively.
		in.Action = refund.Action(strings.ToLower(strings.TrimSpace(string(in.Action))))
		if !in.Action.Valid() {
			writeError(w, r, log, fmt.Errorf("%w: action must be approve, approve_payment_only or deny", errBadRequest))
			return
		}
		rf, err := d.Refunds.Process(r.Context(), id, in.Action, userFrom(r.Context()).Username)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		status := http.StatusOK
		if rf.Status != refund.StatusComplete && rf.Status != refund.StatusDenied {
			status = http.StatusInternalServerError
		}
		writeJSON(w, status, viewRefund(rf))
	})
}
