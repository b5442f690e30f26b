package lmstest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
)

const (
	key    = "k3y"
	course = "course-v1:edX+DemoX+2024"
	other  = "course-v1:edX+Other+2024"
)

// answer is one HTTP answer as seen by a client.
type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(a.body), &m), "body %q", a.body)
	return m
}

func start(t *testing.T, opts lmstest.Options) (*lmstest.Server, *httptest.Server) {
	t.Helper()
	s := lmstest.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close) // runs first, releasing hung handlers
	return s, srv
}

func do(t *testing.T, method, url, apiKey, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if apiKey != "" {
		req.Header.Set("X-Edx-Api-Key", apiKey)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func post(t *testing.T, srv *httptest.Server, body string) answer {
	t.Helper()
	return do(t, http.MethodPost, srv.URL+lms.EnrollmentPath, key, body)
}

func enrollBody(user, mode, courseID string, active bool) string {
	return fmt.Sprintf(`{"user":%q,"is_active":%t,"mode":%q,"course_details":{"course_id":%q}}`, user, active, mode, courseID)
}

// TestEnrollmentLifecycle walks one enrollment through the transitions the
// fulfillment module relies on; each step depends on the previous one.
func TestEnrollmentLifecycle(t *testing.T) {
	s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1})

	steps := []struct {
		name          string
		body          string
		wantStatus    int
		wantMode      string
		wantActive    bool
		wantMessage   string
		wantStats     lmstest.Stats
		wantActiveCnt int
	}{
		{
			name:       "new enrollment",
			body:       enrollBody("alice", "audit", course, true),
			wantStatus: 200, wantMode: "audit", wantActive: true,
			wantStats:     lmstest.Stats{Posts: 1, Activations: 1},
			wantActiveCnt: 1,
		},
		{
			name:       "repeat is idempotent, not a new activation",
			body:       enrollBody("alice", "audit", course, true),
			wantStatus: 200, wantMode: "audit", wantActive: true,
			wantStats:     lmstest.Stats{Posts: 2, Activations: 1},
			wantActiveCnt: 1,
		},
		{
			name:       "mode change (upgrade)",
			body:       enrollBody("alice", "verified", course, true),
			wantStatus: 200, wantMode: "verified", wantActive: true,
			wantStats:     lmstest.Stats{Posts: 3, Activations: 1},
			wantActiveCnt: 1,
		},
		{
			name:          "deactivation with wrong mode refused",
			body:          enrollBody("alice", "audit", course, false),
			wantStatus:    400,
			wantMessage:   "Enrollment mode mismatch: active mode=verified, requested mode=audit. Won't deactivate.",
			wantStats:     lmstest.Stats{Posts: 4, Activations: 1},
			wantActiveCnt: 1,
		},
		{
			name:       "deactivation",
			body:       enrollBody("alice", "verified", course, false),
			wantStatus: 200, wantMode: "verified", wantActive: false,
			wantStats:     lmstest.Stats{Posts: 5, Activations: 1, Deactivations: 1},
			wantActiveCnt: 0,
		},
		{
			name:       "deactivating again is a no-op",
			body:       enrollBody("alice", "verified", course, false),
			wantStatus: 200, wantMode: "verified", wantActive: false,
			wantStats:     lmstest.Stats{Posts: 6, Activations: 1, Deactivations: 1},
			wantActiveCnt: 0,
		},
		{
			name:       "reactivation counts",
			body:       `{"user":"alice","mode":"verified","course_details":{"course_id":"` + course + `"}}`,
			wantStatus: 200, wantMode: "verified", wantActive: true,
			wantStats:     lmstest.Stats{Posts: 7, Activations: 2, Deactivations: 1},
			wantActiveCnt: 1,
		},
		{
			name:       "deactivating a missing enrollment stores an inactive one",
			body:       enrollBody("bob", "audit", course, false),
			wantStatus: 200, wantMode: "audit", wantActive: false,
			wantStats:     lmstest.Stats{Posts: 8, Activations: 2, Deactivations: 1},
			wantActiveCnt: 1,
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			a := post(t, srv, st.body)
			require.Equal(t, st.wantStatus, a.status, a.body)
			require.Equal(t, "application/json", a.header.Get("Content-Type"))
			m := a.json(t)
			if st.wantMessage != "" {
				require.Equal(t, map[string]any{"message": st.wantMessage}, m)
			} else {
				require.Equal(t, st.wantMode, m["mode"])
				require.Equal(t, st.wantActive, m["is_active"])
				require.Equal(t, map[string]any{"course_id": course}, m["course_details"])
				created, err := time.Parse(time.RFC3339, m["created"].(string))
				require.NoError(t, err)
				require.WithinDuration(t, time.Now(), created, time.Minute)
			}
			require.Equal(t, st.wantStats, s.Stats())
			require.Equal(t, st.wantActiveCnt, s.ActiveEnrollments())
		})
	}

	e, ok := s.Enrollment("bob", course)
	require.True(t, ok)
	require.False(t, e.IsActive)
	require.Len(t, s.Requests(), len(steps))
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name        string
		path        string
		body        string
		wantStatus  int
		wantMessage string
	}{
		{name: "not JSON", body: `user=alice`, wantStatus: 400, wantMessage: "Request body must be a JSON object."},
		{name: "JSON array", body: `[]`, wantStatus: 400, wantMessage: "Request body must be a JSON object."},
		{name: "missing user", body: `{"mode":"audit","course_details":{"course_id":"` + course + `"}}`, wantStatus: 400, wantMessage: "User must be specified to create a new enrollment."},
		{name: "missing course id", body: `{"user":"alice","mode":"audit"}`, wantStatus: 400, wantMessage: "Course ID must be specified to create a new enrollment."},
		{name: "empty course id", body: enrollBody("alice", "audit", "", true), wantStatus: 400, wantMessage: "Course ID must be specified to create a new enrollment."},
		{name: "invalid course key", body: enrollBody("alice", "audit", "course-v1:edX+DemoX", true), wantStatus: 400, wantMessage: "No course 'course-v1:edX+DemoX' found for enrollment"},
		{name: "invalid activation status", body: `{"user":"alice","is_active":"yes","mode":"audit","course_details":{"course_id":"` + course + `"}}`, wantStatus: 400, wantMessage: "'yes' is an invalid enrollment activation status."},
		{name: "unknown mode", body: enrollBody("alice", "gold", course, true), wantStatus: 400, wantMessage: "The [gold] course mode is expired or otherwise unavailable for course run [" + course + "]."},
		{name: "credit without provider", body: enrollBody("alice", "credit", course, true), wantStatus: 400, wantMessage: "Credit provider ID required for credit mode enrollment."},
		{name: "credit with provider", body: `{"user":"alice","is_active":true,"mode":"credit","course_details":{"course_id":"` + course + `"},"enrollment_attributes":[{"namespace":"credit","name":"provider_id","value":"asu"}]}`, wantStatus: 200},
		{name: "empty mode defaults to audit", body: enrollBody("bob", "", course, true), wantStatus: 200},
		{name: "old-style course key", body: enrollBody("carol", "honor", "edX/Demo/2013", true), wantStatus: 200},
		{name: "trailing slash", path: lms.EnrollmentPath + "/", body: enrollBody("dave", "audit", course, true), wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1})
			path := tc.path
			if path == "" {
				path = lms.EnrollmentPath
			}
			a := do(t, http.MethodPost, srv.URL+path, key, tc.body)
			require.Equal(t, tc.wantStatus, a.status, a.body)
			if tc.wantMessage != "" {
				require.Equal(t, map[string]any{"message": tc.wantMessage}, a.json(t))
				require.Zero(t, s.ActiveEnrollments())
			} else {
				require.Equal(t, 1, s.ActiveEnrollments())
			}
			require.Equal(t, 1, s.Stats().Posts)
		})
	}

	t.Run("empty mode stored as audit", func(t *testing.T) {
		s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1})
		require.Equal(t, 200, post(t, srv, enrollBody("bob", "", course, true)).status)
		e, ok := s.Enrollment("bob", course)
		require.True(t, ok)
		require.Equal(t, "audit", e.Mode)
	})
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		apiKey     string
		wantStatus int
		wantDetail string
	}{
		{name: "POST without key", method: http.MethodPost, path: lms.EnrollmentPath, wantStatus: 401, wantDetail: "Authentication credentials were not provided."},
		{name: "POST with wrong key", method: http.MethodPost, path: lms.EnrollmentPath, apiKey: "nope", wantStatus: 403, wantDetail: "You do not have permission to perform this action."},
		{name: "GET without key", method: http.MethodGet, path: lms.EnrollmentPath + "/alice," + course, wantStatus: 401, wantDetail: "Authentication credentials were not provided."},
		{name: "GET with wrong key", method: http.MethodGet, path: lms.EnrollmentPath + "/alice," + course, apiKey: "nope", wantStatus: 403, wantDetail: "You do not have permission to perform this action."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1})
			a := do(t, tc.method, srv.URL+tc.path, tc.apiKey, enrollBody("alice", "audit", course, true))
			require.Equal(t, tc.wantStatus, a.status)
			require.Equal(t, map[string]any{"detail": tc.wantDetail}, a.json(t))
			require.Zero(t, s.ActiveEnrollments())
		})
	}

	t.Run("rejected POSTs are still recorded", func(t *testing.T) {
		s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1})
		do(t, http.MethodPost, srv.URL+lms.EnrollmentPath, "nope", enrollBody("alice", "audit", course, true))
		reqs := s.Requests()
		require.Len(t, reqs, 1)
		require.Equal(t, "nope", reqs[0].APIKey)
		require.False(t, reqs[0].Faulted)
	})

	t.Run("no key configured accepts anyone", func(t *testing.T) {
		_, srv := start(t, lmstest.Options{Seed: 1})
		a := do(t, http.MethodPost, srv.URL+lms.EnrollmentPath, "", enrollBody("alice", "audit", course, true))
		require.Equal(t, 200, a.status)
	})
}

func TestGet(t *testing.T) {
	_, srv := start(t, lmstest.Options{APIKey: key, Seed: 1})
	require.Equal(t, 200, post(t, srv, enrollBody("alice", "verified", course, true)).status)
	require.Equal(t, 200, post(t, srv, enrollBody("bob", "honor", "edX/Demo/2013", true)).status)

	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantEmpty  bool
		wantUser   string
		wantCourse string
	}{
		{name: "literal", path: "/alice," + course, wantStatus: 200, wantUser: "alice", wantCourse: course},
		{name: "escaped", path: "/alice,course-v1%3AedX%2BDemoX%2B2024", wantStatus: 200, wantUser: "alice", wantCourse: course},
		{name: "old-style key with slashes", path: "/bob,edX/Demo/2013", wantStatus: 200, wantUser: "bob", wantCourse: "edX/Demo/2013"},
		{name: "old-style key escaped", path: "/bob,edX%2FDemo%2F2013", wantStatus: 200, wantUser: "bob", wantCourse: "edX/Demo/2013"},
		{name: "missing is 200 with empty body", path: "/carol," + course, wantStatus: 200, wantEmpty: true},
		{name: "no comma", path: "/alice", wantStatus: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, http.MethodGet, srv.URL+lms.EnrollmentPath+tc.path, key, "")
			require.Equal(t, tc.wantStatus, a.status, a.body)
			switch {
			case tc.wantEmpty:
				require.Empty(t, a.body)
			case tc.wantUser != "":
				var e lms.Enrollment
				require.NoError(t, json.Unmarshal([]byte(a.body), &e))
				require.Equal(t, tc.wantUser, e.User)
				require.Equal(t, tc.wantCourse, e.CourseDetails.CourseID)
				require.True(t, e.IsActive)
			}
		})
	}

	t.Run("healthz", func(t *testing.T) {
		a := do(t, http.MethodGet, srv.URL+"/healthz", "", "")
		require.Equal(t, 200, a.status)
		require.Equal(t, "ok", a.body)
	})
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name           string
		faults         lmstest.Faults
		courseID       string
		wantStatus     int
		wantRetryAfter string
		wantMessage    bool
		wantFaulted    bool
	}{
		{
			name:        "fail everything",
			faults:      lmstest.Faults{FailRate: 1},
			courseID:    course,
			wantStatus:  503,
			wantMessage: true,
			wantFaulted: true,
		},
		{
			name:           "custom status and Retry-After rounded up",
			faults:         lmstest.Faults{FailRate: 1, FailStatus: 500, RetryAfter: 1500 * time.Millisecond},
			courseID:       course,
			wantStatus:     500,
			wantRetryAfter: "2",
			wantMessage:    true,
			wantFaulted:    true,
		},
		{
			name:        "Courses filter hits",
			faults:      lmstest.Faults{FailRate: 1, Courses: []string{course}},
			courseID:    course,
			wantStatus:  503,
			wantMessage: true,
			wantFaulted: true,
		},
		{
			name:       "Courses filter spares other courses",
			faults:     lmstest.Faults{FailRate: 1, Courses: []string{course}},
			courseID:   other,
			wantStatus: 200,
		},
		{
			name:        "hang ends with 504 after HangMax",
			faults:      lmstest.Faults{TimeoutRate: 1, HangMax: 30 * time.Millisecond},
			courseID:    course,
			wantStatus:  504,
			wantMessage: true,
			wantFaulted: true,
		},
		{
			name:       "zero rates never fault",
			faults:     lmstest.Faults{Latency: 10 * time.Millisecond},
			courseID:   course,
			wantStatus: 200,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1, Faults: tc.faults})
			a := post(t, srv, enrollBody("alice", "verified", tc.courseID, true))
			require.Equal(t, tc.wantStatus, a.status, a.body)
			require.Equal(t, tc.wantRetryAfter, a.header.Get("Retry-After"))
			if tc.wantMessage {
				m := a.json(t)
				require.NotEmpty(t, m["message"])
			}

			_, enrolled := s.Enrollment("alice", tc.courseID)
			require.Equal(t, !tc.wantFaulted, enrolled, "faulted requests change nothing")
			st := s.Stats()
			require.Equal(t, 1, st.Posts)
			require.Equal(t, boolInt(tc.wantFaulted), st.Faulted)
			require.Equal(t, boolInt(!tc.wantFaulted), st.Activations)
			reqs := s.Requests()
			require.Len(t, reqs, 1)
			require.Equal(t, tc.wantFaulted, reqs[0].Faulted)
			require.Equal(t, "alice", reqs[0].Body.User)

			// Healing restores normal service.
			s.SetFaults(lmstest.Faults{})
			require.Equal(t, 200, post(t, srv, enrollBody("alice", "verified", tc.courseID, true)).status)
			require.Equal(t, 1, s.ActiveEnrollments())
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestClientGivesUp(t *testing.T) {
	tests := []struct {
		name   string
		faults lmstest.Faults
	}{
		{name: "hang", faults: lmstest.Faults{TimeoutRate: 1}},
		{name: "latency", faults: lmstest.Faults{Latency: 10 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1, Faults: tc.faults})
			c := lms.NewClient(srv.URL, key, 100*time.Millisecond)
			begin := time.Now()
			err := c.Enroll(context.Background(), lms.EnrollmentRequest{
				User: "alice", IsActive: true, Mode: "audit", CourseDetails: lms.CourseDetails{CourseID: course},
			}, "")
			var lmsErr *lms.Error
			require.ErrorAs(t, err, &lmsErr)
			require.Equal(t, lms.ClassTimeout, lmsErr.Class)
			require.Less(t, time.Since(begin), 2*time.Second)
			// The handler notices the client left and changes nothing.
			require.Never(t, func() bool { return s.ActiveEnrollments() > 0 }, 100*time.Millisecond, 10*time.Millisecond)
		})
	}
}

func TestLatency(t *testing.T) {
	const latency = 150 * time.Millisecond
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		courses  []string
		wantSlow bool
	}{
		{name: "POST delayed", method: http.MethodPost, path: lms.EnrollmentPath, body: enrollBody("alice", "audit", course, true), wantSlow: true},
		{name: "GET delayed", method: http.MethodGet, path: lms.EnrollmentPath + "/alice," + course, wantSlow: true},
		{name: "POST other course not delayed", method: http.MethodPost, path: lms.EnrollmentPath, body: enrollBody("alice", "audit", other, true), courses: []string{course}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := start(t, lmstest.Options{APIKey: key, Seed: 1, Faults: lmstest.Faults{Latency: latency, Courses: tc.courses}})
			begin := time.Now()
			a := do(t, tc.method, srv.URL+tc.path, key, tc.body)
			elapsed := time.Since(begin)
			require.Equal(t, 200, a.status)
			if tc.wantSlow {
				require.GreaterOrEqual(t, elapsed, latency)
			} else {
				require.Less(t, elapsed, latency)
			}
		})
	}
}

func TestReset(t *testing.T) {
	s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1, Faults: lmstest.Faults{ResetRate: 1}})
	req, err := http.NewRequest(http.MethodPost, srv.URL+lms.EnrollmentPath, strings.NewReader(enrollBody("alice", "audit", course, true)))
	require.NoError(t, err)
	req.Header.Set("X-Edx-Api-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err)
	require.Zero(t, s.ActiveEnrollments())
	require.Equal(t, 1, s.Stats().Faulted)
}

func TestSeedIsReproducible(t *testing.T) {
	pattern := func(seed int64) []bool {
		s, srv := start(t, lmstest.Options{APIKey: key, Seed: seed, Faults: lmstest.Faults{FailRate: 0.5}})
		var out []bool
		for i := range 40 {
			post(t, srv, enrollBody(fmt.Sprintf("u%d", i), "audit", course, true))
		}
		for _, r := range s.Requests() {
			out = append(out, r.Faulted)
		}
		return out
	}
	a, b := pattern(7), pattern(7)
	require.Equal(t, a, b)
	require.Contains(t, a, true)
	require.Contains(t, a, false)
}

func TestRequestsRing(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		posts     int
		wantUsers []string
	}{
		{name: "under capacity", max: 5, posts: 3, wantUsers: []string{"u0", "u1", "u2"}},
		{name: "exactly full", max: 3, posts: 3, wantUsers: []string{"u0", "u1", "u2"}},
		{name: "drops oldest", max: 3, posts: 7, wantUsers: []string{"u4", "u5", "u6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1, MaxRequests: tc.max})
			for i := range tc.posts {
				req, err := http.NewRequest(http.MethodPost, srv.URL+lms.EnrollmentPath, strings.NewReader(enrollBody(fmt.Sprintf("u%d", i), "audit", course, true)))
				require.NoError(t, err)
				req.Header.Set("X-Edx-Api-Key", key)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("idem-%d", i))
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
			}
			var users []string
			for _, r := range s.Requests() {
				users = append(users, r.Body.User)
				require.Equal(t, "idem-"+strings.TrimPrefix(r.Body.User, "u"), r.IdempotencyKey)
				require.Equal(t, http.MethodPost, r.Method)
				require.Equal(t, lms.EnrollmentPath, r.Path)
				require.Equal(t, key, r.APIKey)
				require.JSONEq(t, enrollBody(r.Body.User, "audit", course, true), string(r.RawBody))
				require.False(t, r.At.IsZero())
			}
			require.Equal(t, tc.wantUsers, users)
			require.Equal(t, tc.posts, s.Stats().Posts)
		})
	}
}

func TestConcurrency(t *testing.T) {
	const n = 200
	s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1, MaxRequests: 50})
	c := lms.NewClient(srv.URL, key, 5*time.Second)

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			user := fmt.Sprintf("user-%d", i)
			req := lms.EnrollmentRequest{User: user, IsActive: true, Mode: "verified", CourseDetails: lms.CourseDetails{CourseID: course}}
			// Each user enrolls twice to exercise the idempotent path under load.
			for range 2 {
				if err := c.Enroll(context.Background(), req, user); err != nil {
					errs <- err
					return
				}
			}
			if _, err := c.GetEnrollment(context.Background(), user, course); err != nil {
				errs <- err
			}
			_ = s.Stats()
			_ = s.Requests()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, n, s.ActiveEnrollments())
	st := s.Stats()
	require.Equal(t, 2*n, st.Posts)
	require.Equal(t, n, st.Activations)
	require.Len(t, s.Requests(), 50)
}
