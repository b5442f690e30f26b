// Package lms is a client for the Open edX LMS APIs Otto calls: the
// Enrollment API (/api/enrollment/v1/enrollment), the synchronous call
// Otto's enrollment fulfillment module makes for every seat it fulfils or
// revokes, authenticated with the shared X-Edx-Api-Key; and the commerce,
// credit and entitlements APIs (commerce.go), authenticated with an OAuth2
// client-credentials JWT when an OAuth client is configured (oauth.go), else
// with the API key.
//
// Every failure is reported as an *Error carrying a Class, so that callers can
// decide between retrying (network, timeout, 5xx, 408, 429) and giving up
// (configuration, other 4xx) without inspecting transport details.
package lms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"fulfill/internal/order"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// EnrollmentPath is the LMS endpoint used for creating, updating and reading
// enrollments. It is exported so that stand-ins can mount the same route.
const EnrollmentPath = "/api/enrollment/v1/enrollment"

// maxResponseBytes bounds how much of an answer we read: enrollment answers are
// a few hundred bytes, and a misbehaving proxy must not make us buffer an
// arbitrarily large error page.
const maxResponseBytes = 1 << 20

// noDetail mirrors the text Otto logs when the LMS gave no reason.
const noDetail = "(No detail provided.)"

// ErrNotFound is wrapped by GetEnrollment's error when the LMS has no
// enrollment for the user and course.
var ErrNotFound = errors.New("lms: enrollment not found")

// Attribute is one enrollment attribute, e.g. the credit provider for a credit
// seat (namespace "credit", name "provider_id").
type Attribute struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Value     string `json:"value"`
}

// CourseDetails identifies the course run of an enrollment.
type CourseDetails struct {
	CourseID string `json:"course_id"`
}

// EnrollmentRequest is the exact body Otto posts, and the analytics
// headers that go with it.
type EnrollmentRequest struct {
	User                 string        `json:"user"`
	IsActive             bool          `json:"is_active"`
	Mode                 string        `json:"mode"`
	CourseDetails        CourseDetails `json:"course_details"`
	EnrollmentAttributes []Attribute   `json:"enrollment_attributes,omitempty"`
	// Tracking is sent as headers, never in the body.
	Tracking Tracking `json:"-"`
}

// Tracking is what Otto forwards from the learner's tracking_context with
// an enrollment (parse_tracking_context): ga_client_id as
// X-Edx-Ga-Client-Id and lms_ip as X-Forwarded-For. Empty values, and
// values no HTTP header can hold, are not sent.
type Tracking struct {
	GAClientID string
	IP         string
}

// Enrollment is the subset of the LMS's enrollment representation we use.
type Enrollment struct {
	User          string        `json:"user"`
	Mode          string        `json:"mode"`
	IsActive      bool          `json:"is_active"`
	CourseDetails CourseDetails `json:"course_details"`
	Created       time.Time     `json:"created"`
}

// Class is the coarse category of a failure, which decides whether it is
// worth retrying: the order package's attempt outcomes, so that a failure
// keeps one name from this client to the line status.
type Class = order.Outcome

// Failure classes (see order.Outcome for Otto's mapping).
const (
	ClassNetwork       = order.OutcomeNetwork
	ClassTimeout       = order.OutcomeTimeout
	ClassServer        = order.OutcomeServer
	ClassConfiguration = order.OutcomeConfiguration
)

// Error is every failure of the client.
type Error struct {
	Class Class
	// StatusCode is the HTTP status of the answer, 0 when there was none.
	StatusCode int
	// Message is the LMS's "message" field (or "detail"), else
	// "(No detail provided.)" for an HTTP answer, else the transport error text.
	Message string
	// RetryAfter is parsed from a Retry-After header (seconds or HTTP date),
	// 0 if absent.
	RetryAfter time.Duration
	URL        string
	Err        error
}

// Error names class, URL, status and message.
func (e *Error) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("lms: %s error calling %s: %s", e.Class, e.URL, e.Message)
	}
	return fmt.Sprintf("lms: %s error calling %s: HTTP %d: %s", e.Class, e.URL, e.StatusCode, e.Message)
}

// Unwrap exposes the underlying transport or context error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same call may succeed later: network
// failures, timeouts, 5xx, 408 and 429 are transient; configuration errors
// and other 4xx answers will fail the same way again.
func (e *Error) Retryable() bool {
	switch e.Class {
	case ClassNetwork, ClassTimeout:
		return true
	case ClassServer:
		return e.StatusCode >= 500 ||
			e.StatusCode == http.StatusRequestTimeout ||
			e.StatusCode == http.StatusTooManyRequests
	default:
		return false
	}
}

// Client calls the LMS. It is safe for concurrent use.
type Client struct {
	baseURL string
	apiKey  string
	timeout time.Duration
	http    *http.Client
	// oauth, when set, authenticates the commerce, credit and entitlements
	// calls instead of the API key.
	oauth *tokenSource
}

// Option configures a Client.
type Option func(*Client)

// errCallTimeout is wrapped by the cancellation cause of our per-call
// deadline; it lets classify tell our own timeout apart from the caller
// giving up.
var errCallTimeout = errors.New("lms: no answer within the per-call timeout")

// NewClient returns a client for the LMS at baseURL (e.g.
// "http://127.0.0.1:18000"; a trailing slash is tolerated), authenticating with
// apiKey as X-Edx-Api-Key. timeout bounds each call including reading the
// answer (Otto uses 7s); 0 or less means no per-call bound beyond the caller's
// context.
//
// Configuration problems (empty baseURL or apiKey) are not reported here but
// by each call, as Otto does, so that a misconfigured deployment still starts
// and fails the fulfillments it cannot do with a clear, non-retryable error.
func NewClient(baseURL, apiKey string, timeout time.Duration, opts ...Option) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Thousands of concurrent enrollments go to the same LMS host; the default
	// of 2 idle connections per host would make almost every call dial anew
	// and leave sockets in TIME_WAIT.
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 1024
	tr.IdleConnTimeout = 90 * time.Second
	c := &Client{
		baseURL: strings.TrimRight(baseURL, "/"),
		apiKey:  apiKey,
		timeout: timeout,
		// No http.Client.Timeout: the deadline is set per call through the
		// context so that its expiry can be told apart from the caller's.
		http: &http.Client{Transport: tr},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Enroll creates or updates an enrollment as described by req. Any 2xx
// answer is success, whatever its body (Otto reads none of it): the body is
// not decoded, and an unparsable one cannot turn a successful enrollment
// into a failure that would be retried.
func (c *Client) Enroll(ctx context.Context, req EnrollmentRequest, idempotencyKey string) error {
	_, err := c.postEnrollment(ctx, req, idempotencyKey)
	return err
}

// Unenroll deactivates the user's enrollment in courseID with the given mode.
// The LMS refuses to deactivate when the active enrollment has another mode
// ("Enrollment mode mismatch"); the seat being revoked is then not the one
// the learner holds, so there is nothing to revoke and that counts as success.
func (c *Client) Unenroll(ctx context.Context, user, mode, courseID, idempotencyKey string) error {
	req := EnrollmentRequest{
		User:          user,
		IsActive:      false,
		Mode:          mode,
		CourseDetails: CourseDetails{CourseID: courseID},
	}
	_, err := c.postEnrollment(ctx, req, idempotencyKey)
	var lmsErr *Error
	if errors.As(err, &lmsErr) && lmsErr.StatusCode == http.StatusBadRequest &&
		strings.Contains(lmsErr.Message, "Enrollment mode mismatch") {
		return nil
	}
	return err
}

// GetEnrollment reads the user's enrollment in courseID. The LMS answers a
// missing enrollment with 200 and an empty body (or 404 behind some proxies);
// both yield an error wrapping ErrNotFound.
func (c *Client) GetEnrollment(ctx context.Context, user, courseID string) (Enrollment, error) {
	if err := c.checkConfig(); err != nil {
		return Enrollment{}, err
	}
	// Both parts are escaped separately so that the comma separating them
	// stays the only literal comma in the segment.
	u := c.baseURL + EnrollmentPath + "/" + url.PathEscape(user) + "," + url.PathEscape(courseID)
	resp, err := c.doWith(ctx, call{method: http.MethodGet, url: u, apiKey: true})
	if err != nil {
		var lmsErr *Error
		if errors.As(err, &lmsErr) && lmsErr.StatusCode == http.StatusNotFound {
			lmsErr.Err = ErrNotFound
		}
		return Enrollment{}, err
	}
	body := bytes.TrimSpace(resp.body)
	if len(body) == 0 || bytes.Equal(body, []byte("null")) {
		return Enrollment{}, &Error{
			Class:      ClassServer,
			StatusCode: resp.status,
			Message:    "no enrollment",
			URL:        u,
			Err:        ErrNotFound,
		}
	}
	var enr Enrollment
	if err := json.Unmarshal(body, &enr); err != nil {
		return Enrollment{}, &Error{
			Class:      ClassServer,
			StatusCode: resp.status,
			Message:    "undecodable enrollment: " + snippet(body),
			URL:        u,
			Err:        fmt.Errorf("decode enrollment: %w", err),
		}
	}
	return enr, nil
}

// response is a successful (2xx) answer.
type response struct {
	status int
	body   []byte
}

func (c *Client) checkConfig() error {
	switch {
	case c.baseURL == "":
		return &Error{Class: ClassConfiguration, Message: "LMS base URL is not configured", URL: EnrollmentPath}
	case c.apiKey == "":
		return &Error{Class: ClassConfiguration, Message: "LMS API key is not configured", URL: c.baseURL + EnrollmentPath}
	}
	return nil
}

func (c *Client) postEnrollment(ctx context.Context, req EnrollmentRequest, idempotencyKey string) (response, error) {
	if err := c.checkConfig(); err != nil {
		return response{}, err
	}
	u := c.baseURL + EnrollmentPath
	body, err := json.Marshal(req)
	if err != nil {
		return response{}, &Error{Class: ClassConfiguration, Message: err.Error(), URL: u, Err: fmt.Errorf("encode enrollment request: %w", err)}
	}
	var extra http.Header
	for name, v := range map[string]string{"X-Edx-Ga-Client-Id": req.Tracking.GAClientID, "X-Forwarded-For": req.Tracking.IP} {
		if v != "" && validHeaderValue(v) {
			if extra == nil {
				extra = http.Header{}
			}
			extra.Set(name, v)
		}
	}
	return c.doWith(ctx, call{method: http.MethodPost, url: u, body: body, idempotencyKey: idempotencyKey, header: extra, apiKey: true})
}

// validHeaderValue reports whether v can be sent as a header value as it
// is: a tracking value that cannot must not turn into a failed enrollment.
func validHeaderValue(v string) bool {
	if len(v) > 1024 || strings.TrimSpace(v) != v {
		return false
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b == 0x7f {
			return false
		}
	}
	return true
}

// call is one request for doWith to make.
type call struct {
	method, url string
	body        []byte
	// contentType is the body's; application/json when empty.
	contentType    string
	idempotencyKey string
	// header holds extra headers (tracking, a webhook's signature).
	header http.Header
	// apiKey sends the client's X-Edx-Api-Key, when it has one.
	apiKey bool
	// authorization, when set, is sent as the Authorization header.
	authorization string
}

// Send makes one call to any URL with the client's timeout and error
// classes (it is also the HTTP caller of the webhook fulfillment module):
// a 2xx answer's status and body, or an *Error.
func (c *Client) Send(ctx context.Context, method, u string, body []byte, header http.Header, idempotencyKey string) (int, []byte, error) {
	r, err := c.doWith(ctx, call{method: method, url: u, body: body, idempotencyKey: idempotencyKey, header: header, apiKey: true})
	return r.status, r.body, err
}

// doWith performs one call bounded by the per-call timeout and returns the
// answer if it is 2xx, or an *Error otherwise.
func (c *Client) doWith(ctx context.Context, cl call) (response, error) {
	method, u, body, idempotencyKey := cl.method, cl.url, cl.body, cl.idempotencyKey
	callCtx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		// The cause also wraps DeadlineExceeded so that callers testing for it
		// with errors.Is keep working.
		cause := fmt.Errorf("%w (%s): %w", errCallTimeout, c.timeout, context.DeadlineExceeded)
		callCtx, cancel = context.WithTimeoutCause(ctx, c.timeout, cause)
		defer cancel()
	}

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// Whether a connection was obtained tells a connect timeout (network,
	// the LMS was never reached) from a read timeout (the LMS may have acted).
	var connected atomic.Bool
	callCtx = httptrace.WithClientTrace(callCtx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	req, err := http.NewRequestWithContext(callCtx, method, u, rd)
	if err != nil {
		// Only a malformed base URL gets here.
		return response{}, &Error{Class: ClassConfiguration, Message: err.Error(), URL: u, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Accept", "application/json")
	if cl.apiKey && c.apiKey != "" {
		req.Header.Set("X-Edx-Api-Key", c.apiKey)
	}
	if cl.authorization != "" {
		req.Header.Set("Authorization", cl.authorization)
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	if body != nil {
		ct := cl.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if idempotencyKey != "" {
		// Besides telling the LMS (or a proxy) that a retry is a retry, this
		// header makes net/http treat the POST as replayable: it is resent
		// once, transparently, if a reused keep-alive connection turns out to
		// be dead before any answer arrived.
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, classify(ctx, callCtx, connected.Load(), u, err)
	}
	defer resp.Body.Close()
	// The deadline covers reading the answer too: an LMS that sends headers
	// and then stalls is as much a timeout as one that never answers.
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return response{}, classify(ctx, callCtx, true, u, fmt.Errorf("read answer (HTTP %d): %w", resp.StatusCode, err))
	}

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return response{status: resp.StatusCode, body: data}, nil
	}
	return response{}, &Error{
		Class:      ClassServer,
		StatusCode: resp.StatusCode,
		Message:    errorMessage(data),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		URL:        u,
	}
}

// classify turns a transport error into an *Error. ctx is the caller's
// context and callCtx the one bounded by our per-call timeout; connected
// reports whether a connection to the LMS had been obtained.
func classify(ctx, callCtx context.Context, connected bool, u string, err error) *Error {
	// *url.Error repeats method and URL, which Error() already names.
	msg := err.Error()
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	e := &Error{Class: ClassNetwork, Message: msg, URL: u, Err: err}

	ourTimeout := errors.Is(context.Cause(callCtx), errCallTimeout)
	if !ourTimeout && ctx.Err() != nil {
		// The caller gave up (shutdown, its own deadline): not the LMS's
		// fault, and the caller needs to see its own context error.
		e.Err = fmt.Errorf("%w (transport: %v)", ctx.Err(), err)
		return e
	}

	// A timeout while connecting never reached the LMS; Otto maps requests'
	// ConnectTimeout to a network error, so do we. Checked before timeouts
	// because a dial cut short by our deadline also looks like one.
	var opErr *net.OpError
	if !connected || (errors.As(err, &opErr) && opErr.Op == "dial") {
		return e
	}

	var netErr net.Error
	if ourTimeout || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout()) {
		e.Class = ClassTimeout
	}
	return e
}

// errorMessage extracts the reason from an error answer: DRF puts it in
// "detail" (authentication, throttling), the enrollment views in "message",
// an OAuth2 token endpoint in "error_description" or "error", and a DRF
// validation error under the names of the fields it refuses.
func errorMessage(body []byte) string {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return noDetail
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err == nil {
		for _, key := range []string{"message", "detail", "error_description", "error"} {
			raw, ok := fields[key]
			if !ok {
				continue
			}
			var s string
			if err := json.Unmarshal(raw, &s); err == nil {
				if s != "" {
					return s
				}
				continue
			}
			// Some views put a structure in "message"; keep it verbatim
			// rather than losing it.
			return snippet(raw)
		}
		if msg := validationMessage("", trimmed); msg != "" {
			return msg
		}
	}
	return snippet(trimmed)
}

// validationMessage finds the first message of a DRF validation error,
// e.g. {"modes":[{},{"price":["A valid integer is required."]}]}, and
// names the field it is about: "modes[1].price: A valid integer is
// required.". "" when v holds no string.
func validationMessage(path string, v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s == "" {
			return ""
		}
		if path == "" {
			return s
		}
		return path + ": " + s
	}
	var list []json.RawMessage
	if json.Unmarshal(v, &list) == nil {
		for i, item := range list {
			p := path
			var probe string
			if json.Unmarshal(item, &probe) != nil {
				// A list of messages names its field; a list of objects
				// (one per item of a nested list) names the item.
				p = fmt.Sprintf("%s[%d]", path, i)
			}
			if msg := validationMessage(p, item); msg != "" {
				return msg
			}
		}
		return ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) != nil {
		return ""
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := k
		if path != "" {
			p = path + "." + k
		}
		if k == "non_field_errors" {
			p = path
		}
		if msg := validationMessage(p, obj[k]); msg != "" {
			return msg
		}
	}
	return ""
}

// snippet returns at most the first 200 bytes of b, trimmed, for use in
// messages (error pages from proxies can be long HTML documents).
func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
	if s == "" {
		return noDetail
	}
	return s
}

// parseRetryAfter understands both forms of RFC 9110's Retry-After: a number
// of seconds or an HTTP date. Anything else, or a date in the past, gives 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 || secs > int64(365*24*time.Hour/time.Second) {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
