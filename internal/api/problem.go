package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"fulfill/internal/apperr"
	"fulfill/internal/basket"
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
	// RequestID names the request in the service's logs (internal errors).
	RequestID string `json:"request_id,omitempty"`
}

// WriteProblem answers with p as problem+json, for the service's own
// middleware in front of every front end.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) { writeProblem(w, r, p) }

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

// writeError maps an error to its answer, once for the whole API, through
// the vocabulary's one table. An internal error is a 500 whose detail says
// nothing internal but the request id; the error is logged with it.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	k, internal := apperr.Describe(err)
	p := Problem{Status: k.Status, Title: k.Title, Detail: apperr.Public(err)}
	var ue *basket.UnavailableError
	if errors.As(err, &ue) {
		p.SKUs = ue.SKUs
	}
	if internal {
		id := apperr.RequestID(r.Context())
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "error", err)
		p.Detail = "The server could not complete the request; it has been logged."
		if id != "" {
			p.Detail += " Request id: " + id + "."
		}
		p.RequestID = id
	}
	writeProblem(w, r, p)
}

var errBadRequest = apperr.New(apperr.Invalid, "bad request")

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
