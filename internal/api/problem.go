package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"fulfill/internal/auth"
	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/money"
	"fulfill/internal/order"
	"fulfill/internal/payment"
	"fulfill/internal/refund"
	"fulfill/internal/voucher"
)

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   map[string]any `json:"errors,omitempty"`
	// SKUs names unavailable products.
	SKUs []string `json:"skus,omitempty"`
}

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if r != nil {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeError maps a domain error to its answer, once for the whole API.
// Anything unknown is a 500 that says nothing internal; the error is logged.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := Problem{Detail: err.Error()}
	var ue *basket.UnavailableError
	switch {
	case errors.As(err, &ue):
		p.Status, p.Title, p.SKUs = http.StatusBadRequest, "Product unavailable", ue.SKUs
	case errors.Is(err, auth.ErrUnauthenticated):
		p.Status = http.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		p.Status = http.StatusForbidden
	case errors.Is(err, order.ErrNotFound), errors.Is(err, catalog.ErrNotFound):
		p.Status = http.StatusNotFound
	case errors.Is(err, order.ErrNotFulfillable):
		p.Status = http.StatusNotAcceptable
	case errors.Is(err, order.ErrConflict):
		p.Status = http.StatusConflict
	case errors.Is(err, refund.ErrNotFound):
		p.Status = http.StatusNotFound
	case errors.Is(err, refund.ErrInvalidTransition), errors.Is(err, refund.ErrConflict):
		p.Status = http.StatusConflict
	case errors.Is(err, refund.ErrInvalid), errors.Is(err, payment.ErrInvalid), errors.Is(err, payment.ErrUnknownProcessor):
		p.Status = http.StatusBadRequest
	case errors.Is(err, payment.ErrBadSignature):
		p.Status = http.StatusForbidden
	case errors.Is(err, payment.ErrAmountMismatch), errors.Is(err, basket.ErrNotFrozen):
		p.Status = http.StatusBadRequest
	case errors.Is(err, catalog.ErrNotSoldHere):
		p.Status, p.Title = http.StatusBadRequest, "Not sold here"
	case errors.Is(err, voucher.ErrNotFound):
		p.Status = http.StatusNotFound
	case errors.Is(err, voucher.ErrUsed):
		p.Status, p.Title = http.StatusConflict, "Code already used"
	case errors.Is(err, basket.ErrNotFree):
		p.Status, p.Title = http.StatusBadRequest, "Payment required"
	case errors.Is(err, basket.ErrInvalid), errors.Is(err, catalog.ErrInvalid), errors.Is(err, money.ErrInvalid), errors.Is(err, errBadRequest):
		p.Status = http.StatusBadRequest
	default:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		p.Status, p.Detail = http.StatusInternalServerError, "The server could not complete the request; it has been logged."
	}
	writeProblem(w, r, p)
}

var errBadRequest = errors.New("bad request")

// problemForMux answers requests the mux has no route for (404, 405) with
// problem+json instead of the mux's plain text.
func problemForMux(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // sets the path values, which Handler does not
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		if allow := rec.Header().Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		p := Problem{Status: rec.Code}
		if rec.Code == http.StatusNotFound {
			p.Detail = "No route matches " + r.Method + " " + r.URL.Path + "."
		} else if rec.Code == http.StatusMethodNotAllowed {
			p.Detail = "Method " + r.Method + " is not allowed here."
		}
		writeProblem(w, r, p)
	})
}
