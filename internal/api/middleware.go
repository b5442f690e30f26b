package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"fulfill/internal/auth"
	"fulfill/internal/order"
)

type ctxKey int

const userKey ctxKey = 1

// userFrom returns the authenticated caller.
func userFrom(ctx context.Context) order.User {
	u, _ := ctx.Value(userKey).(order.User)
	return u
}

// authenticate requires a valid JWT, and staff rights when staffOnly.
func authenticate(d Deps, staffOnly bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := d.Verifier.User(auth.Token(r))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `JWT realm="api"`)
			writeError(w, r, d.Log, err)
			return
		}
		if staffOnly && !u.IsStaff {
			writeError(w, r, d.Log, auth.ErrForbidden)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, u)))
	})
}

// recoverer turns a panic into a logged 500 problem instead of a dropped
// connection.
func recoverer(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeError(w, r, log, fmt.Errorf("panic: %v", v))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observe counts requests by route pattern and status, with latency.
func observe(m *Metrics, mux *http.ServeMux, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		_, pattern := mux.Handler(r)
		if pattern == "" {
			pattern = "unmatched"
		}
		m.observeHTTP(pattern, sw.status, time.Since(start))
	})
}

const logKey ctxKey = 2

func withLogger(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), logKey, log)))
	})
}

func logFromCtx(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(logKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

func logFrom(r *http.Request) *slog.Logger { return logFromCtx(r.Context()) }
