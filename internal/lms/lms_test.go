package lms_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
)

const testKey = "secret-key"

// seen is what a fake LMS observed of one request.
type seen struct {
	method, path, rawPath string
	header                http.Header
	body                  string
}

// recorder is a fake LMS answering every request with a fixed status, headers
// and body, and remembering the last request.
func recorder(t *testing.T, status int, header map[string]string, body string) (*httptest.Server, func() seen, *atomic.Int64) {
	t.Helper()
	var (
		mu    sync.Mutex
		last  seen
		calls atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = seen{method: r.Method, path: r.URL.Path, rawPath: r.URL.EscapedPath(), header: r.Header.Clone(), body: string(b)}
		mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() seen { mu.Lock(); defer mu.Unlock(); return last }, &calls
}

func TestEnrollSuccess(t *testing.T) {
	tests := []struct {
		name     string
		req      lms.EnrollmentRequest
		idemKey  string
		answer   string
		trailing bool
		wantBody string
	}{
		{
			name: "verified seat with idempotency key",
			req: lms.EnrollmentRequest{
				User: "alice", IsActive: true, Mode: "verified",
				CourseDetails: lms.CourseDetails{CourseID: "course-v1:edX+DemoX+2024"},
			},
			idemKey:  "order-42-line-1",
			answer:   `{"created":"2024-05-01T12:00:00.123456Z","mode":"verified","is_active":true,"course_details":{"course_id":"course-v1:edX+DemoX+2024","course_name":"Demo"},"user":"alice"}`,
			wantBody: `{"user":"alice","is_active":true,"mode":"verified","course_details":{"course_id":"course-v1:edX+DemoX+2024"}}`,
		},
		{
			name: "credit seat with attributes, trailing slash base URL, no key",
			req: lms.EnrollmentRequest{
				User: "bob", IsActive: true, Mode: "credit",
				CourseDetails:        lms.CourseDetails{CourseID: "course-v1:edX+DemoX+2024"},
				EnrollmentAttributes: []lms.Attribute{{Namespace: "credit", Name: "provider_id", Value: "hogwarts"}},
			},
			trailing: true,
			answer:   `{"created":"2024-05-01T12:00:00.123456Z","mode":"credit","is_active":true,"course_details":{"course_id":"course-v1:edX+DemoX+2024"},"user":"bob"}`,
			wantBody: `{"user":"bob","is_active":true,"mode":"credit","course_details":{"course_id":"course-v1:edX+DemoX+2024"},"enrollment_attributes":[{"namespace":"credit","name":"provider_id","value":"hogwarts"}]}`,
		},
		{
			name: "undecodable 2xx body still succeeds",
			req: lms.EnrollmentRequest{
				User: "carol", IsActive: true, Mode: "audit",
				CourseDetails: lms.CourseDetails{CourseID: "edX/Demo/2013"},
			},
			answer:   `<html>ok</html>`,
			wantBody: `{"user":"carol","is_active":true,"mode":"audit","course_details":{"course_id":"edX/Demo/2013"}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, last, calls := recorder(t, http.StatusOK, nil, tc.answer)
			base := srv.URL
			if tc.trailing {
				base += "/"
			}
			c := lms.NewClient(base, testKey, time.Second)

			require.NoError(t, c.Enroll(context.Background(), tc.req, tc.idemKey))

			require.EqualValues(t, 1, calls.Load())
			s := last()
			require.Equal(t, http.MethodPost, s.method)
			require.Equal(t, "/api/enrollment/v1/enrollment", s.path)
			require.JSONEq(t, tc.wantBody, s.body)
			require.Equal(t, tc.wantBody, s.body, "exact bytes posted")
			require.Equal(t, "application/json", s.header.Get("Content-Type"))
			require.Equal(t, testKey, s.header.Get("X-Edx-Api-Key"))
			require.Equal(t, tc.idemKey, s.header.Get("Idempotency-Key"))
			_, hasIdem := s.header["Idempotency-Key"]
			require.Equal(t, tc.idemKey != "", hasIdem)
		})
	}
}

func TestEnrollErrors(t *testing.T) {
	req := lms.EnrollmentRequest{
		User: "alice", IsActive: true, Mode: "verified",
		CourseDetails: lms.CourseDetails{CourseID: "course-v1:edX+DemoX+2024"},
	}
	answer := func(status int, header map[string]string, body string) func(t *testing.T) (string, *atomic.Int64) {
		return func(t *testing.T) (string, *atomic.Int64) {
			srv, _, calls := recorder(t, status, header, body)
			return srv.URL, calls
		}
	}
	tests := []struct {
		name           string
		setup          func(t *testing.T) (baseURL string, calls *atomic.Int64)
		apiKey         string
		timeout        time.Duration
		wantClass      lms.Class
		wantStatus     int
		wantMessage    string // exact when non-empty
		wantRetryable  bool
		wantRetryAfter time.Duration
		wantCalls      int64 // checked when calls is non-nil
		wantIs         error
	}{
		{
			name:          "500 with message",
			setup:         answer(500, nil, `{"message":"Database is on fire"}`),
			wantClass:     lms.ClassServer,
			wantStatus:    500,
			wantMessage:   "Database is on fire",
			wantRetryable: true,
			wantCalls:     1,
		},
		{
			name:        "400 is not retryable",
			setup:       answer(400, nil, `{"message":"No course 'x' found for enrollment"}`),
			wantClass:   lms.ClassServer,
			wantStatus:  400,
			wantMessage: "No course 'x' found for enrollment",
			wantCalls:   1,
		},
		{
			name:        "403 detail",
			setup:       answer(403, nil, `{"detail":"You do not have permission to perform this action."}`),
			wantClass:   lms.ClassServer,
			wantStatus:  403,
			wantMessage: "You do not have permission to perform this action.",
			wantCalls:   1,
		},
		{
			name:           "429 with Retry-After seconds",
			setup:          answer(429, map[string]string{"Retry-After": "7"}, `{"detail":"Request was throttled."}`),
			wantClass:      lms.ClassServer,
			wantStatus:     429,
			wantMessage:    "Request was throttled.",
			wantRetryable:  true,
			wantRetryAfter: 7 * time.Second,
			wantCalls:      1,
		},
		{
			name:          "408 is retryable",
			setup:         answer(408, nil, ``),
			wantClass:     lms.ClassServer,
			wantStatus:    408,
			wantMessage:   "(No detail provided.)",
			wantRetryable: true,
			wantCalls:     1,
		},
		{
			name:          "502 html page",
			setup:         answer(502, map[string]string{"Content-Type": "text/html"}, "  <html>Bad Gateway</html>\n"),
			wantClass:     lms.ClassServer,
			wantStatus:    502,
			wantMessage:   "<html>Bad Gateway</html>",
			wantRetryable: true,
			wantCalls:     1,
		},
		{
			name:          "503 with empty body",
			setup:         answer(503, nil, ""),
			wantClass:     lms.ClassServer,
			wantStatus:    503,
			wantMessage:   "(No detail provided.)",
			wantRetryable: true,
			wantCalls:     1,
		},
		{
			name: "timeout",
			setup: func(t *testing.T) (string, *atomic.Int64) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// Reading the body lets net/http notice the client leaving.
					_, _ = io.Copy(io.Discard, r.Body)
					select {
					case <-r.Context().Done():
					case <-time.After(3 * time.Second):
					}
				}))
				t.Cleanup(srv.Close)
				return srv.URL, nil
			},
			timeout:       100 * time.Millisecond,
			wantClass:     lms.ClassTimeout,
			wantRetryable: true,
			wantIs:        context.DeadlineExceeded,
		},
		{
			name: "connection refused",
			setup: func(t *testing.T) (string, *atomic.Int64) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				addr := l.Addr().String()
				require.NoError(t, l.Close())
				return "http://" + addr, nil
			},
			wantClass:     lms.ClassNetwork,
			wantRetryable: true,
		},
		{
			// The LMS is never reached, as with a dial timeout: Otto maps
			// connect timeouts to network errors.
			name: "timeout while connecting",
			setup: func(t *testing.T) (string, *atomic.Int64) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				var (
					mu    sync.Mutex
					conns []net.Conn
				)
				t.Cleanup(func() {
					_ = l.Close()
					mu.Lock()
					defer mu.Unlock()
					for _, c := range conns {
						_ = c.Close()
					}
				})
				// Accept and stay silent, so the TLS handshake never ends.
				go func() {
					for {
						conn, err := l.Accept()
						if err != nil {
							return
						}
						mu.Lock()
						conns = append(conns, conn)
						mu.Unlock()
					}
				}()
				return "https://" + l.Addr().String(), nil
			},
			timeout:       100 * time.Millisecond,
			wantClass:     lms.ClassNetwork,
			wantRetryable: true,
		},
		{
			name: "connection reset",
			setup: func(t *testing.T) (string, *atomic.Int64) {
				srv := httptest.NewServer(lmstest.New(lmstest.Options{APIKey: testKey, Seed: 1, Faults: lmstest.Faults{ResetRate: 1}}))
				t.Cleanup(srv.Close)
				return srv.URL, nil
			},
			wantClass:     lms.ClassNetwork,
			wantRetryable: true,
		},
		{
			name:        "empty api key makes no call",
			setup:       answer(200, nil, `{}`),
			apiKey:      "-",
			wantClass:   lms.ClassConfiguration,
			wantMessage: "LMS API key is not configured",
			wantCalls:   0,
		},
		{
			name:        "empty base URL",
			setup:       func(t *testing.T) (string, *atomic.Int64) { return "", nil },
			wantClass:   lms.ClassConfiguration,
			wantMessage: "LMS base URL is not configured",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, calls := tc.setup(t)
			key := testKey
			if tc.apiKey == "-" {
				key = ""
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			c := lms.NewClient(base, key, timeout)

			start := time.Now()
			err := c.Enroll(context.Background(), req, "k1")
			require.Error(t, err)
			require.Less(t, time.Since(start), 2*time.Second)

			var lmsErr *lms.Error
			require.ErrorAs(t, err, &lmsErr)
			require.Equal(t, tc.wantClass, lmsErr.Class, "error: %v", err)
			require.Equal(t, tc.wantStatus, lmsErr.StatusCode)
			require.Equal(t, tc.wantRetryable, lmsErr.Retryable())
			require.Equal(t, tc.wantRetryAfter, lmsErr.RetryAfter)
			require.NotEmpty(t, lmsErr.Message)
			if tc.wantMessage != "" {
				require.Equal(t, tc.wantMessage, lmsErr.Message)
			}
			require.Contains(t, err.Error(), string(tc.wantClass))
			if base != "" {
				require.Contains(t, err.Error(), base)
			}
			if calls != nil {
				require.Equal(t, tc.wantCalls, calls.Load())
			}
			if tc.wantIs != nil {
				require.ErrorIs(t, err, tc.wantIs)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	e := &lms.Error{Class: lms.ClassServer, StatusCode: 503, Message: "down", URL: "http://lms/api"}
	require.Equal(t, "lms: server error calling http://lms/api: HTTP 503: down", e.Error())
	e = &lms.Error{Class: lms.ClassNetwork, Message: "connection refused", URL: "http://lms/api"}
	require.Equal(t, "lms: network error calling http://lms/api: connection refused", e.Error())
}

func TestRetryAfterHTTPDate(t *testing.T) {
	at := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	srv, _, _ := recorder(t, 503, map[string]string{"Retry-After": at}, `{"message":"maintenance"}`)
	c := lms.NewClient(srv.URL, testKey, time.Second)

	err := c.Enroll(context.Background(), lms.EnrollmentRequest{User: "u", Mode: "audit"}, "")
	var lmsErr *lms.Error
	require.ErrorAs(t, err, &lmsErr)
	require.Greater(t, lmsErr.RetryAfter, 80*time.Second)
	require.LessOrEqual(t, lmsErr.RetryAfter, 90*time.Second)
}

func TestCallerCancellationIsNetwork(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	c := lms.NewClient(srv.URL, testKey, 5*time.Second)

	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
	}{
		{
			name: "cancelled",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			},
			wantErr: context.Canceled,
		},
		{
			name: "caller deadline shorter than ours",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			wantErr: context.DeadlineExceeded,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			err := c.Enroll(ctx, lms.EnrollmentRequest{User: "u", Mode: "audit"}, "")
			var lmsErr *lms.Error
			require.ErrorAs(t, err, &lmsErr)
			require.Equal(t, lms.ClassNetwork, lmsErr.Class)
			require.ErrorIs(t, err, tc.wantErr)
		})
	}
}

func TestUnenroll(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		answer    string
		wantErr   bool
		wantClass lms.Class
	}{
		{name: "deactivated", status: 200, answer: `{"mode":"verified","is_active":false}`},
		{
			name:   "mode mismatch counts as revoked",
			status: 400,
			answer: `{"message":"Enrollment mode mismatch: active mode=audit, requested mode=verified. Won't deactivate."}`,
		},
		{name: "other 400 fails", status: 400, answer: `{"message":"No course 'x' found for enrollment"}`, wantErr: true, wantClass: lms.ClassServer},
		{name: "500 fails", status: 500, answer: `{"message":"Enrollment mode mismatch"}`, wantErr: true, wantClass: lms.ClassServer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, last, _ := recorder(t, tc.status, nil, tc.answer)
			c := lms.NewClient(srv.URL, testKey, time.Second)

			err := c.Unenroll(context.Background(), "alice", "verified", "course-v1:edX+DemoX+2024", "refund-7")
			if tc.wantErr {
				var lmsErr *lms.Error
				require.ErrorAs(t, err, &lmsErr)
				require.Equal(t, tc.wantClass, lmsErr.Class)
			} else {
				require.NoError(t, err)
			}
			s := last()
			require.Equal(t, `{"user":"alice","is_active":false,"mode":"verified","course_details":{"course_id":"course-v1:edX+DemoX+2024"}}`, s.body)
			require.Equal(t, "refund-7", s.header.Get("Idempotency-Key"))
		})
	}
}

func TestUnenrollAgainstStandIn(t *testing.T) {
	stand := lmstest.New(lmstest.Options{APIKey: testKey, Seed: 1})
	srv := httptest.NewServer(stand)
	t.Cleanup(srv.Close)
	c := lms.NewClient(srv.URL, testKey, time.Second)
	ctx := context.Background()
	const course = "course-v1:edX+DemoX+2024"

	err := c.Enroll(ctx, lms.EnrollmentRequest{User: "alice", IsActive: true, Mode: "audit", CourseDetails: lms.CourseDetails{CourseID: course}}, "")
	require.NoError(t, err)
	// The learner holds audit, revoking verified is a no-op that succeeds.
	require.NoError(t, c.Unenroll(ctx, "alice", "verified", course, ""))
	e, ok := stand.Enrollment("alice", course)
	require.True(t, ok)
	require.True(t, e.IsActive)

	require.NoError(t, c.Unenroll(ctx, "alice", "audit", course, ""))
	e, ok = stand.Enrollment("alice", course)
	require.True(t, ok)
	require.False(t, e.IsActive)
}

func TestGetEnrollment(t *testing.T) {
	stand := lmstest.New(lmstest.Options{APIKey: testKey, Seed: 1})
	srv := httptest.NewServer(stand)
	t.Cleanup(srv.Close)
	c := lms.NewClient(srv.URL, testKey, time.Second)
	ctx := context.Background()

	for _, enr := range []lms.EnrollmentRequest{
		{User: "alice", IsActive: true, Mode: "verified", CourseDetails: lms.CourseDetails{CourseID: "course-v1:edX+DemoX+2024"}},
		{User: "bob.b+1@x", IsActive: true, Mode: "honor", CourseDetails: lms.CourseDetails{CourseID: "edX/Demo/2013"}},
	} {
		err := c.Enroll(ctx, enr, "")
		require.NoError(t, err)
	}

	tests := []struct {
		name, user, course string
		wantMode           string
		wantNotFound       bool
	}{
		{name: "new-style course key", user: "alice", course: "course-v1:edX+DemoX+2024", wantMode: "verified"},
		{name: "old-style key and odd username", user: "bob.b+1@x", course: "edX/Demo/2013", wantMode: "honor"},
		{name: "missing enrollment", user: "carol", course: "course-v1:edX+DemoX+2024", wantNotFound: true},
		{name: "plus is not a space", user: "alice", course: "course-v1:edX DemoX 2024", wantNotFound: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.GetEnrollment(ctx, tc.user, tc.course)
			if tc.wantNotFound {
				require.ErrorIs(t, err, lms.ErrNotFound)
				var lmsErr *lms.Error
				require.ErrorAs(t, err, &lmsErr)
				require.False(t, lmsErr.Retryable())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.user, got.User)
			require.Equal(t, tc.course, got.CourseDetails.CourseID)
			require.Equal(t, tc.wantMode, got.Mode)
			require.True(t, got.IsActive)
			require.False(t, got.Created.IsZero())
		})
	}
}

func TestGetEnrollmentRequest(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		answer       string
		wantPath     string
		wantNotFound bool
	}{
		{
			name:     "found",
			status:   200,
			answer:   `{"user":"a,b","mode":"audit","is_active":true,"course_details":{"course_id":"course-v1:edX+DemoX+2024"}}`,
			wantPath: "/api/enrollment/v1/enrollment/a%2Cb,course-v1:edX+DemoX+2024",
		},
		{name: "404", status: 404, answer: `{"detail":"Not found."}`, wantNotFound: true},
		{name: "null body", status: 200, answer: `null`, wantNotFound: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, last, _ := recorder(t, tc.status, nil, tc.answer)
			c := lms.NewClient(srv.URL, testKey, time.Second)
			_, err := c.GetEnrollment(context.Background(), "a,b", "course-v1:edX+DemoX+2024")
			if tc.wantNotFound {
				require.ErrorIs(t, err, lms.ErrNotFound)
			} else {
				require.NoError(t, err)
			}
			s := last()
			require.Equal(t, http.MethodGet, s.method)
			require.Equal(t, testKey, s.header.Get("X-Edx-Api-Key"))
			if tc.wantPath != "" {
				require.Equal(t, tc.wantPath, s.rawPath)
			}
		})
	}
}

func TestGetEnrollmentConfiguration(t *testing.T) {
	c := lms.NewClient("http://127.0.0.1:1", "", time.Second)
	_, err := c.GetEnrollment(context.Background(), "alice", "course-v1:a+b+c")
	var lmsErr *lms.Error
	require.ErrorAs(t, err, &lmsErr)
	require.Equal(t, lms.ClassConfiguration, lmsErr.Class)
	require.False(t, errors.Is(err, lms.ErrNotFound))
	require.False(t, lmsErr.Retryable())
	require.True(t, strings.HasPrefix(err.Error(), "lms: configuration error"))
}
