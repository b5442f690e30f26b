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

// authenticate requires a valid JWT, and staff rights when staffOnly. A
// token from the LMS's cookie pair authenticates an unsafe method only for
// a same-origin request: the browser attaches the cookies to requests other
// sites make it send, and an Authorization header it never adds on its own.
func authenticate(d Deps, staffOnly bool, h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, fromCookies := auth.TokenFrom(r)
		if fromCookies && !sameOrigin(cop, r) {
			logFrom(r).Warn("api: cross-site request with the JWT cookies refused", "method", r.Method, "path", r.URL.Path,
				"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			writeError(w, r, d.Log, auth.ErrCrossSite)
			return
		}
		u, err := d.Verifier.User(raw)
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

// sameOrigin reports whether r may act on the JWT cookies: a safe method
// always; an unsafe one when net/http's CrossOriginProtection finds it
// same-origin (Sec-Fetch-Site same-origin or none, or else an Origin whose
// host is the request's), and only on that positive evidence: a request
// with neither header, which CrossOriginProtection lets through as not
// coming from a browser, is refused, since such a client can send
// Authorization instead.
func sameOrigin(cop *http.CrossOriginProtection, r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if r.Header.Get("Sec-Fetch-Site") == "" && r.Header.Get("Origin") == "" {
		return false
	}
	return cop.Check(r) == nil
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
