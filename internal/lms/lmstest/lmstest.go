// Package lmstest is an in-memory stand-in for the Open edX LMS APIs the
// service calls. The Enrollment API follows edx-platform's
// EnrollmentListView/EnrollmentView contract for an API-key caller,
// including its error answers, and can inject faults (latency, error
// answers, hangs, connection resets) so that fulfillment can be exercised
// against an unreliable LMS in tests, the demo mode and the standalone
// command. The commerce course, credit course and entitlements APIs, and
// the OAuth2 token endpoint that authenticates them, are in commerce.go and
// oauth.go.
package lmstest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"fulfill/internal/lms"
)

const (
	// DefaultMaxRequests is how many enrollment POSTs Requests remembers by
	// default; load tests send far more and must not grow memory unboundedly.
	DefaultMaxRequests = 100_000
	// DefaultHangMax bounds a simulated hang when Faults.HangMax is 0.
	DefaultHangMax = 30 * time.Second
	// DefaultTokenTTL is the lifetime of issued tokens when
	// Options.TokenTTL is 0 (the LMS's OAUTH2 JWT default is an hour).
	DefaultTokenTTL = time.Hour

	maxBodyBytes = 1 << 20
)

// Options configures a Server.
type Options struct {
	// APIKey, if non-empty, must be sent in X-Edx-Api-Key to the
	// Enrollment API, and to the commerce, credit and entitlements APIs
	// when no OAuth client is configured.
	APIKey string
	// OAuthClientID and OAuthClientSecret, if set, are the one OAuth2
	// client /oauth2/access_token issues JWTs to; the commerce, credit and
	// entitlements APIs then require "Authorization: JWT <token>" and
	// answer 401 otherwise. (The real commerce API would also take the API
	// key; the stand-in insists, so that tests see which one is sent.)
	OAuthClientID     string
	OAuthClientSecret string
	// TokenTTL is the lifetime of an issued token (expires_in);
	// DefaultTokenTTL when 0.
	TokenTTL time.Duration
	Faults   Faults
	// Seed seeds the fault RNG so that fault patterns are reproducible;
	// 0 means time-based.
	Seed int64
	// MaxRequests bounds the Requests log (drop-oldest); 0 means
	// DefaultMaxRequests.
	MaxRequests int
}

// Faults describes injected misbehaviour. Rates are fractions of enrollment
// POSTs; one random draw per POST picks reset, then timeout, then failure, so
// each rate is the share of POSTs getting that fault (as long as they sum to
// at most 1).
type Faults struct {
	// Latency is added to every enrollment call (POST and GET) before it is
	// answered; the wait ends early if the client gives up.
	Latency time.Duration
	// FailRate is the fraction of POSTs answered FailStatus with a
	// {"message": ...} body and no state change.
	FailRate float64
	// FailStatus is the status of failed answers; 503 when 0.
	FailStatus int
	// RetryAfter, if positive, is sent as Retry-After (whole seconds, rounded
	// up) on failed answers.
	RetryAfter time.Duration
	// TimeoutRate is the fraction of POSTs that hang until the client gives
	// up or HangMax passes (then 504); no state change.
	TimeoutRate float64
	// ResetRate is the fraction of POSTs whose connection is closed without
	// an answer; no state change.
	ResetRate float64
	// Courses, if non-empty, restricts all faults (including Latency) to
	// requests for these course ids.
	Courses []string
	// HangMax bounds a simulated hang; DefaultHangMax when 0.
	HangMax time.Duration
}

// Request is one enrollment POST as received.
type Request struct {
	Method         string
	Path           string
	APIKey         string
	IdempotencyKey string
	// GAClientID and ForwardedFor are the X-Edx-Ga-Client-Id and
	// X-Forwarded-For headers ("" when absent).
	GAClientID   string
	ForwardedFor string
	// Body is the body decoded as far as it could be; RawBody is verbatim.
	Body    lms.EnrollmentRequest
	RawBody []byte
	At      time.Time
	// Faulted is true when a reset, hang or failure was injected.
	Faulted bool
}

// Stats are counters over the server's lifetime.
type Stats struct {
	// Posts counts every enrollment POST, including rejected and faulted ones.
	Posts int
	// Faulted counts POSTs that got a reset, hang or failure.
	Faulted int
	// Activations counts transitions from no or an inactive enrollment to an
	// active one; re-posting an active enrollment is not an activation.
	Activations int
	// Deactivations counts transitions from active to inactive.
	Deactivations int
	// TokensIssued counts tokens issued by /oauth2/access_token.
	TokensIssued int
}

type enrollmentKey struct{ user, courseID string }

// Server is the stand-in LMS. It is an http.Handler, safe for concurrent use.
type Server struct {
	apiKey string
	oauth  oauthClient
	mux    *http.ServeMux
	// done is closed by Close to release handlers that are sleeping or
	// hanging, so that a shutting-down server does not wait HangMax.
	done      chan struct{}
	closeOnce sync.Once

	// mu guards everything below. It is never held while sleeping or doing
	// I/O: thousands of requests go through it concurrently.
	mu          sync.Mutex
	faults      Faults
	rng         *rand.Rand
	enrollments map[enrollmentKey]lms.Enrollment
	courses     map[string]lms.PublishedCourse
	ents        map[string]lms.Entitlement // by uuid
	entsByKey   map[string]string          // idempotency key → uuid
	credits     map[string]lms.CreditCourse
	requests    []Request // ring buffer of at most maxRequests entries
	next        int       // index of the oldest entry once the ring is full
	calls       []Call    // the other APIs' calls, at most maxRequests
	maxRequests int
	stats       Stats
	signingKey  []byte // of issued tokens; RevokeTokens replaces it
}

// New returns a Server configured by opts.
func New(opts Options) *Server {
	seed := opts.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	maxRequests := opts.MaxRequests
	if maxRequests <= 0 {
		maxRequests = DefaultMaxRequests
	}
	s := &Server{
		apiKey:      opts.APIKey,
		oauth:       newOAuthClient(opts),
		mux:         http.NewServeMux(),
		done:        make(chan struct{}),
		faults:      cloneFaults(opts.Faults),
		rng:         rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		enrollments: make(map[enrollmentKey]lms.Enrollment),
		courses:     make(map[string]lms.PublishedCourse),
		ents:        make(map[string]lms.Entitlement),
		entsByKey:   make(map[string]string),
		credits:     make(map[string]lms.CreditCourse),
		maxRequests: maxRequests,
		signingKey:  newSigningKey(),
	}
	s.mux.HandleFunc("POST "+lms.EnrollmentPath, s.handlePost)
	s.mux.HandleFunc("POST "+lms.EnrollmentPath+"/{$}", s.handlePost)
	// {rest...} rather than a single segment: old-style course ids
	// (ORG/NUM/RUN) are often sent with literal slashes, as the LMS's URL
	// pattern allows.
	s.mux.HandleFunc("GET "+lms.EnrollmentPath+"/{rest...}", s.handleGet)
	s.mux.Handle("PUT "+lms.CommerceCoursesPath+"{id}/{$}", s.logged(s.handleCoursePut))
	s.mux.Handle("GET "+lms.CommerceCoursesPath+"{id}/{$}", s.logged(s.handleCourseGet))
	s.mux.Handle("PUT "+lms.CreditCoursesPath+"{id}/{$}", s.logged(s.handleCreditPut))
	s.mux.Handle("GET "+lms.CreditCoursesPath+"{id}/{$}", s.logged(s.handleCreditGet))
	s.mux.Handle("POST "+lms.EntitlementsPath+"{$}", s.logged(s.handleEntitlementPost))
	s.mux.Handle("GET "+lms.EntitlementsPath+"{uuid}/{$}", s.logged(s.handleEntitlementGet))
	s.mux.Handle("DELETE "+lms.EntitlementsPath+"{uuid}/{$}", s.logged(s.handleEntitlementDelete))
	s.mux.Handle("POST "+lms.TokenPath, s.logged(s.handleToken))
	s.mux.Handle("POST "+lms.TokenPath+"/{$}", s.logged(s.handleToken))
	s.mux.HandleFunc("GET /dashboard", s.handleDashboard) // the receipt's "Go to your dashboard"
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Close releases handlers that are sleeping (Latency) or hanging
// (TimeoutRate); they answer 503. The Server keeps serving afterwards but
// without waiting. Close is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

// SetFaults replaces the fault configuration; SetFaults(Faults{}) heals.
func (s *Server) SetFaults(f Faults) {
	f = cloneFaults(f)
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Enrollment returns the stored enrollment, active or not.
func (s *Server) Enrollment(user, courseID string) (lms.Enrollment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.enrollments[enrollmentKey{user, courseID}]
	return e, ok
}

// ActiveEnrollments counts active enrollments.
func (s *Server) ActiveEnrollments() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.enrollments {
		if e.IsActive {
			n++
		}
	}
	return n
}

// Requests returns the most recent enrollment POSTs (at most MaxRequests),
// oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, 0, len(s.requests))
	out = append(out, s.requests[s.next:]...)
	return append(out, s.requests[:s.next]...)
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

type fault int

const (
	faultNone fault = iota
	faultReset
	faultTimeout
	faultFail
)

func (s *Server) handlePost(w http.ResponseWriter, r *http.Request) {
	raw, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	rec := Request{
		Method:         r.Method,
		Path:           r.URL.Path,
		APIKey:         r.Header.Get("X-Edx-Api-Key"),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		GAClientID:     r.Header.Get("X-Edx-Ga-Client-Id"),
		ForwardedFor:   r.Header.Get("X-Forwarded-For"),
		RawBody:        raw,
		At:             time.Now(),
	}
	// Best effort: Body is for inspection in tests, validation below works on
	// the raw JSON to reproduce the LMS's messages.
	_ = json.Unmarshal(raw, &rec.Body)
	authStatus, authBody := s.authenticate(r)

	// One critical section records the request and decides its fault, so
	// that the Requests log and the RNG sequence follow arrival order.
	s.mu.Lock()
	faults := s.faults
	f := faultNone
	if authStatus == 0 && readErr == nil && faults.applies(rec.Body.CourseDetails.CourseID) {
		f = faults.pick(s.rng.Float64())
	}
	rec.Faulted = f != faultNone
	s.stats.Posts++
	if rec.Faulted {
		s.stats.Faulted++
	}
	s.record(rec)
	s.mu.Unlock()

	if authStatus != 0 {
		writeJSON(w, authStatus, authBody)
		return
	}
	if readErr != nil {
		writeMessage(w, http.StatusBadRequest, "Could not read request body: "+readErr.Error())
		return
	}
	if faults.applies(rec.Body.CourseDetails.CourseID) && !s.sleep(r.Context(), faults.Latency) {
		abandon(w)
		return
	}

	switch f {
	case faultReset:
		resetConnection(w)
		return
	case faultTimeout:
		hangMax := faults.HangMax
		if hangMax <= 0 {
			hangMax = DefaultHangMax
		}
		if !s.sleep(r.Context(), hangMax) {
			abandon(w)
			return
		}
		writeMessage(w, http.StatusGatewayTimeout, "Simulated LMS hang (fault injection).")
		return
	case faultFail:
		if faults.RetryAfter > 0 {
			secs := int64(math.Ceil(faults.RetryAfter.Seconds()))
			w.Header().Set("Retry-After", fmt.Sprint(secs))
		}
		status := faults.FailStatus
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		writeMessage(w, status, "Simulated LMS failure (fault injection).")
		return
	}

	status, body := s.enroll(raw)
	writeJSON(w, status, body)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	if status, body := s.authenticate(r); status != 0 {
		writeJSON(w, status, body)
		return
	}
	// Split the escaped path so that an escaped comma inside the username
	// cannot be mistaken for the separator, then unescape each part ('+' and
	// ':' in course ids are kept as they are).
	rest := strings.TrimPrefix(r.URL.EscapedPath(), lms.EnrollmentPath+"/")
	rawUser, rawCourse, ok := strings.Cut(rest, ",")
	user, errUser := url.PathUnescape(rawUser)
	courseID, errCourse := url.PathUnescape(rawCourse)
	if !ok || user == "" || courseID == "" || errUser != nil || errCourse != nil {
		writeMessage(w, http.StatusBadRequest, "Username and course ID must be given as {username},{course_id}.")
		return
	}

	s.mu.Lock()
	faults := s.faults
	s.mu.Unlock()
	if faults.applies(courseID) && !s.sleep(r.Context(), faults.Latency) {
		abandon(w)
		return
	}

	e, found := s.Enrollment(user, courseID)
	if !found {
		// The LMS answers a missing enrollment with 200 and an empty body
		// (DRF renders None as nothing).
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// authenticate returns a non-zero status and DRF-style body when the API key
// is missing or wrong.
func (s *Server) authenticate(r *http.Request) (int, any) {
	if s.apiKey == "" {
		return 0, nil
	}
	key := r.Header.Get("X-Edx-Api-Key")
	switch {
	case key == "":
		return http.StatusUnauthorized, map[string]string{"detail": "Authentication credentials were not provided."}
	case key != s.apiKey:
		return http.StatusForbidden, map[string]string{"detail": "You do not have permission to perform this action."}
	}
	return 0, nil
}

var (
	// Course keys as opaque-keys parses them: course-v1:ORG+NUM+RUN, or the
	// deprecated slash-separated ORG/NUM/RUN.
	courseKeyV1  = regexp.MustCompile(`^course-v1:[A-Za-z0-9_.~%-]+\+[A-Za-z0-9_.~%-]+\+[A-Za-z0-9_.~%-]+$`)
	courseKeyOld = regexp.MustCompile(`^[A-Za-z0-9_.~%-]+/[A-Za-z0-9_.~%-]+/[A-Za-z0-9_.~%-]+$`)
)

// validMode reports whether the LMS knows the course mode. The stand-in has
// no catalog, so every course offers every standard mode.
func validMode(mode string) bool {
	switch mode {
	case "audit", "honor", "verified", "professional", "no-id-professional",
		"credit", "masters", "executive-education":
		return true
	}
	return false
}

// enroll validates an enrollment POST body and applies it, mirroring
// EnrollmentListView.post for a caller with API-key permissions.
func (s *Server) enroll(raw []byte) (int, any) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil || body == nil {
		return badRequest("Request body must be a JSON object.")
	}

	var user string
	if v, ok := body["user"]; !ok || json.Unmarshal(v, &user) != nil || user == "" {
		return badRequest("User must be specified to create a new enrollment.")
	}

	var details struct {
		CourseID string `json:"course_id"`
	}
	if v, ok := body["course_details"]; ok {
		_ = json.Unmarshal(v, &details)
	}
	courseID := details.CourseID
	if courseID == "" {
		return badRequest("Course ID must be specified to create a new enrollment.")
	}
	if !courseKeyV1.MatchString(courseID) && !courseKeyOld.MatchString(courseID) {
		return badRequest(fmt.Sprintf("No course '%s' found for enrollment", courseID))
	}

	isActive := true
	if v, ok := body["is_active"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &isActive); err != nil {
			return badRequest(fmt.Sprintf("'%s' is an invalid enrollment activation status.", pyString(v)))
		}
	}

	mode := "audit"
	if v, ok := body["mode"]; ok && string(v) != "null" {
		var m string
		if err := json.Unmarshal(v, &m); err != nil {
			m = pyString(v)
		}
		if m != "" {
			mode = m
		}
	}
	if !validMode(mode) {
		return badRequest(fmt.Sprintf(
			"The [%s] course mode is expired or otherwise unavailable for course run [%s].", mode, courseID))
	}

	var attrs []lms.Attribute
	if v, ok := body["enrollment_attributes"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &attrs); err != nil {
			return badRequest("Invalid enrollment attributes.")
		}
	}
	if mode == "credit" && !slices.ContainsFunc(attrs, func(a lms.Attribute) bool {
		return a.Namespace == "credit" && a.Name == "provider_id" && a.Value != ""
	}) {
		return badRequest("Credit provider ID required for credit mode enrollment.")
	}

	return s.apply(user, courseID, mode, isActive)
}

// apply performs the state transition for a validated request.
func (s *Server) apply(user, courseID, mode string, isActive bool) (int, any) {
	key := enrollmentKey{user, courseID}
	now := time.Now().UTC().Truncate(time.Microsecond) // Django's precision

	s.mu.Lock()
	defer s.mu.Unlock()
	cur, exists := s.enrollments[key]
	if !exists {
		cur = lms.Enrollment{
			User:          user,
			CourseDetails: lms.CourseDetails{CourseID: courseID},
			Created:       now,
		}
	}
	switch {
	case isActive:
		if !cur.IsActive {
			s.stats.Activations++
		}
	case cur.IsActive && cur.Mode != mode:
		// The requester wanted to deactivate a seat the learner does not
		// hold: the LMS assumes outdated information and refuses.
		return badRequest(fmt.Sprintf(
			"Enrollment mode mismatch: active mode=%s, requested mode=%s. Won't deactivate.", cur.Mode, mode))
	case cur.IsActive:
		s.stats.Deactivations++
	}
	// Deactivating a missing enrollment stores an inactive one, and
	// deactivating an inactive one updates its mode, as the LMS does.
	cur.Mode = mode
	cur.IsActive = isActive
	s.enrollments[key] = cur
	return http.StatusOK, cur
}

// record appends to the Requests ring; s.mu must be held.
func (s *Server) record(r Request) {
	if len(s.requests) < s.maxRequests {
		s.requests = append(s.requests, r)
		return
	}
	s.requests[s.next] = r
	s.next = (s.next + 1) % s.maxRequests
}

// sleep waits d and reports whether it elapsed; false means the client gave
// up or the server is closing.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

func (f Faults) applies(courseID string) bool {
	return len(f.Courses) == 0 || slices.Contains(f.Courses, courseID)
}

// pick maps one uniform draw u in [0,1) to a fault, in the order reset,
// timeout, failure.
func (f Faults) pick(u float64) fault {
	switch {
	case u < f.ResetRate:
		return faultReset
	case u < f.ResetRate+f.TimeoutRate:
		return faultTimeout
	case u < f.ResetRate+f.TimeoutRate+f.FailRate:
		return faultFail
	}
	return faultNone
}

// cloneFaults copies Courses so that a caller mutating its slice later cannot
// race with handlers reading it.
func cloneFaults(f Faults) Faults {
	f.Courses = slices.Clone(f.Courses)
	return f
}

// resetConnection closes the client's connection without answering. Go's
// transport may transparently resend a POST carrying an Idempotency-Key once
// when a reused connection dies this way, so a single client call can show
// up as two faulted requests.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 or a wrapped writer: aborting the handler resets the
		// stream / closes the connection without a response.
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		// Linger 0 makes Close send RST, i.e. "connection reset by peer",
		// rather than an orderly EOF.
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// abandon answers a request whose wait was cut short. The client has usually
// gone already, but returning without writing would send an implicit 200,
// which must never happen for a request that changed nothing.
func abandon(w http.ResponseWriter) {
	writeMessage(w, http.StatusServiceUnavailable, "Request abandoned before completion.")
}

func badRequest(msg string) (int, any) {
	return http.StatusBadRequest, map[string]string{"message": msg}
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		// Only our own types are marshalled; this is a programming error.
		panic(fmt.Errorf("lmstest: marshal answer: %w", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// pyString renders a JSON value the way the LMS's str.format would: strings
// without quotes, everything else as JSON text.
func pyString(v json.RawMessage) string {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s
	}
	return string(v)
}
