package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/api"
	"fulfill/internal/fulfillment"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// rtFast is a retry policy quick enough for tests and with attempts to spare.
var rtFast = fulfillment.Policy{Base: 20 * time.Millisecond, Cap: 100 * time.Millisecond, Attempts: 1000}

// rtAnswer is a raw HTTP answer.
type rtAnswer struct {
	Status int
	Header http.Header
	Body   []byte
}

// rtSend sends one request and never touches a *testing.T, so that
// goroutines may use it.
func rtSend(base, method, path, token string, body any, header map[string]string) (rtAnswer, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return rtAnswer{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return rtAnswer{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "JWT "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return rtAnswer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return rtAnswer{Status: res.StatusCode, Header: res.Header, Body: raw}, err
}

// rtCall is rtSend for the test goroutine.
func (e *env) rtCall(method, path, token string, body any, header map[string]string) rtAnswer {
	e.t.Helper()
	a, err := rtSend(e.srv.URL, method, path, token, body, header)
	require.NoError(e.t, err)
	return a
}

func rtProblem(t *testing.T, a rtAnswer, status int) api.Problem {
	t.Helper()
	require.Equal(t, status, a.Status, string(a.Body))
	require.Equal(t, "application/problem+json", a.Header.Get("Content-Type"), string(a.Body))
	var p api.Problem
	require.NoError(t, json.Unmarshal(a.Body, &p), string(a.Body))
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.Title)
	return p
}

func rtOrder(t *testing.T, a rtAnswer, status int) orderOut {
	t.Helper()
	require.Equal(t, status, a.Status, string(a.Body))
	require.Equal(t, "application/json", a.Header.Get("Content-Type"), string(a.Body))
	var o orderOut
	require.NoError(t, json.Unmarshal(a.Body, &o), string(a.Body))
	return o
}

func rtFulfillPath(number string) string { return "/api/v2/orders/" + number + "/fulfill/" }

// rtList returns the numbers of the orders listed at path (a staff view).
func (e *env) rtList(query string) []string {
	e.t.Helper()
	var list struct{ Results []orderOut }
	e.do("GET", "/api/v2/orders/"+query, e.staff, nil, http.StatusOK, &list)
	out := []string{}
	for _, o := range list.Results {
		out = append(out, o.Number)
	}
	return out
}

func (e *env) rtMetrics() string {
	e.t.Helper()
	a := e.rtCall("GET", "/metrics", "", nil, nil)
	require.Equal(e.t, http.StatusOK, a.Status, string(a.Body))
	return string(a.Body)
}

// rtPostsFor counts the enrollment POSTs the stand-in saw for a course.
func (e *env) rtPostsFor(courseID string) int {
	n := 0
	for _, r := range e.lms.Requests() {
		if r.Body.CourseDetails.CourseID == courseID {
			n++
		}
	}
	return n
}

func rtLine(t *testing.T, o orderOut, sku string) lineOut {
	t.Helper()
	for _, l := range o.Lines {
		if l.SKU == sku {
			return l
		}
	}
	t.Fatalf("order %s has no line for %s", o.Number, sku)
	return lineOut{}
}

// TestRetryHealsAfterOutage: orders placed during an LMS outage (5xx,
// hangs, resets) are all delivered by the retry worker once the LMS heals,
// with no operator action and nobody enrolled twice.
func TestRetryHealsAfterOutage(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{worker: true, policy: rtFast, lmsTimeout: 300 * time.Millisecond})
			const learners, certain = 30, 3
			users := make([]string, learners)
			numbers := make([]string, learners)
			// The outage begins total, so that the first orders surely fail
			// and are queued; then it turns into a mix of faults.
			e.lms.SetFaults(lmstest.Faults{FailRate: 1})
			for i := range learners {
				if i == certain {
					e.lms.SetFaults(lmstest.Faults{FailRate: 0.4, TimeoutRate: 0.2, ResetRate: 0.2})
				}
				users[i] = fmt.Sprintf("learner%02d", i)
				ans := e.buy(users[i], e.skus["verified"])
				numbers[i] = ans.Order.Number
				if i < certain {
					require.Equal(t, "Fulfillment Error", ans.Order.Status)
					o := e.order(ans.Order.Number)
					require.Equal(t, "Fulfillment Error", o.Status)
					require.False(t, o.NeedsAttention)
					require.NotNil(t, o.NextAttemptAt, "a failed order is queued for a retry")
					require.NotNil(t, o.Lines[0].NextAttemptAt)
					require.NotEmpty(t, o.LastError)
				}
			}
			e.lms.SetFaults(lmstest.Faults{})

			eventually(t, 20*time.Second, func() bool {
				return len(e.rtList("?status=Complete&page_size=1000")) == learners
			}, "every order placed during the outage is Complete after healing")
			for i, n := range numbers {
				o := e.order(n)
				require.Equal(t, "Complete", o.Status, n)
				require.False(t, o.NeedsAttention, n)
				require.Nil(t, o.NextAttemptAt, n)
				require.Equal(t, "Complete", o.Lines[0].Status, n)
				require.Nil(t, o.Lines[0].NextAttemptAt, n)
				if i < certain {
					require.GreaterOrEqual(t, o.Lines[0].Attempts, 2, "%s was delivered by a retry", n)
				}
				en, ok := e.lms.Enrollment(users[i], course)
				require.True(t, ok, users[i])
				require.True(t, en.IsActive, users[i])
				require.Equal(t, "verified", en.Mode)
			}
			require.Empty(t, e.rtList("?needs_attention=true"))
			require.Equal(t, learners, e.lms.ActiveEnrollments())
			require.Equal(t, learners, e.lms.Stats().Activations, "nobody was enrolled twice")

			// Nothing is due any more: the worker leaves the LMS alone.
			posts := e.lms.Stats().Posts
			time.Sleep(300 * time.Millisecond)
			require.Equal(t, posts, e.lms.Stats().Posts, "no call after every order completed")
		})
	}
}

// TestConcurrentResubmissionsCallLMSOncePerFailedLine: many simultaneous
// manual resubmissions of one order make one LMS call per failed line.
func TestConcurrentResubmissionsCallLMSOncePerFailedLine(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: 503})
			ans := e.buy("ann", e.skus["verified"], e.skus["course2 verified"])
			require.Equal(t, "Fulfillment Error", ans.Order.Status)
			o := e.order(ans.Order.Number)
			require.Len(t, o.Lines, 2)
			for _, l := range o.Lines {
				require.Equal(t, "Fulfillment Server Error", l.Status)
			}
			before := len(e.lms.Requests())
			require.Equal(t, 2, before)

			// Healed, but slow: the resubmissions overlap the calls.
			e.lms.SetFaults(lmstest.Faults{Latency: 200 * time.Millisecond})
			const n = 20
			type result struct {
				a   rtAnswer
				err error
			}
			start := make(chan struct{})
			results := make(chan result, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					<-start
					a, err := rtSend(e.srv.URL, "PUT", rtFulfillPath(ans.Order.Number), e.staff, nil, nil)
					results <- result{a, err}
				})
			}
			close(start)
			wg.Wait()
			close(results)

			codes := map[int]int{}
			torn := 0 // see the t.Skip below
			for r := range results {
				require.NoError(t, r.err)
				codes[r.a.Status]++
				switch r.a.Status {
				case http.StatusOK:
					require.Equal(t, "Complete", rtOrder(t, r.a, http.StatusOK).Status)
				case http.StatusNotAcceptable:
					rtProblem(t, r.a, http.StatusNotAcceptable)
				case http.StatusInternalServerError:
					// Only the known torn read is tolerated (skipped below): the
					// order row says Fulfillment Error while every line, read a
					// moment later, is Complete.
					o := rtOrder(t, r.a, http.StatusInternalServerError)
					require.Equal(t, "Fulfillment Error", o.Status, string(r.a.Body))
					for _, l := range o.Lines {
						require.Equal(t, "Complete", l.Status, string(r.a.Body))
					}
					torn++
				default:
					t.Errorf("resubmission answered %d: %s", r.a.Status, r.a.Body)
				}
			}
			t.Logf("answers: %v", codes)
			require.GreaterOrEqual(t, codes[http.StatusOK], 1, "one resubmission completed the order")

			after := e.lms.Requests()[before:]
			require.Len(t, after, 2, "exactly one LMS call per failed line")
			courses := []string{after[0].Body.CourseDetails.CourseID, after[1].Body.CourseDetails.CourseID}
			require.ElementsMatch(t, []string{course, course2}, courses)
			require.NotEqual(t, after[0].IdempotencyKey, after[1].IdempotencyKey)

			o = e.order(ans.Order.Number)
			require.Equal(t, "Complete", o.Status)
			for _, l := range o.Lines {
				require.Equal(t, "Complete", l.Status)
				require.Equal(t, 2, l.Attempts)
			}
			require.Equal(t, 2, e.lms.Stats().Activations)
			require.Zero(t, torn, "no resubmission may answer 500 with an order that is in fact Complete (torn read)")
		})
	}
}

// TestResubmitAnswers: PUT /api/v2/orders/{number}/fulfill/ answers 406,
// 500 with the order, or 200, and only to staff and the order's owner.
func TestResubmitAnswers(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			ann, bob := e.token("ann", false), e.token("bob", false)

			done := e.buy("ann", e.skus["audit"])
			require.Equal(t, "Complete", done.Order.Status)
			for _, method := range []string{"PUT", "PATCH"} {
				p := rtProblem(t, e.rtCall(method, rtFulfillPath(done.Order.Number), e.staff, nil, nil), http.StatusNotAcceptable)
				require.Contains(t, p.Detail, "Complete")
			}
			require.Equal(t, 1, e.lms.Stats().Posts, "a Complete order is not sent again")

			e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: 503})
			failing := e.buy("ann", e.skus["verified"])
			require.Equal(t, "Fulfillment Error", failing.Order.Status)
			path := rtFulfillPath(failing.Order.Number)

			denied := []struct {
				name, token, path string
				want              int
			}{
				{"no token", "", path, http.StatusUnauthorized},
				{"bad token", "not-a-jwt", path, http.StatusUnauthorized},
				{"another learner", bob, path, http.StatusNotFound},
				{"unknown order", e.staff, rtFulfillPath("EDX-999999"), http.StatusNotFound},
			}
			for _, d := range denied {
				rtProblem(t, e.rtCall("PUT", d.path, d.token, nil, nil), d.want)
			}
			require.Equal(t, 2, e.lms.Stats().Posts, "refused resubmissions do not reach the LMS")

			// Still failing: 500 with the order, for staff and for the owner.
			for i, tok := range []string{e.staff, ann} {
				o := rtOrder(t, e.rtCall("PUT", path, tok, nil, nil), http.StatusInternalServerError)
				require.Equal(t, failing.Order.Number, o.Number)
				require.Equal(t, "Fulfillment Error", o.Status)
				require.Equal(t, "ann", o.User.Username)
				require.NotEmpty(t, o.LastError)
				require.NotNil(t, o.NextAttemptAt)
				require.Len(t, o.Lines, 1)
				l := o.Lines[0]
				require.Equal(t, "Fulfillment Server Error", l.Status)
				require.Equal(t, 503, l.LastHTTPStatus)
				require.NotEmpty(t, l.LastError)
				require.Equal(t, "server", l.LastErrorClass)
				require.Equal(t, i+2, l.Attempts)
			}
			require.Equal(t, 4, e.lms.Stats().Posts)

			e.lms.SetFaults(lmstest.Faults{})
			o := rtOrder(t, e.rtCall("PUT", path, ann, nil, nil), http.StatusOK)
			require.Equal(t, "Complete", o.Status)
			require.Equal(t, "Complete", o.Lines[0].Status)
			require.Equal(t, 4, o.Lines[0].Attempts)
			require.Nil(t, o.NextAttemptAt)
			require.False(t, o.NeedsAttention)
			en, ok := e.lms.Enrollment("ann", course)
			require.True(t, ok)
			require.True(t, en.IsActive)

			rtProblem(t, e.rtCall("PUT", path, e.staff, nil, nil), http.StatusNotAcceptable)
			rtProblem(t, e.rtCall("PUT", path, ann, nil, nil), http.StatusNotAcceptable)
			require.Equal(t, 5, e.lms.Stats().Posts)
		})
	}
}

// TestPermanentFailureNotRetried: a 4xx from the LMS flags the order for an
// operator and is never retried automatically.
func TestPermanentFailureNotRetried(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{worker: true, policy: rtFast})
			ok := e.buy("bob", e.skus["verified"])
			require.Equal(t, "Complete", ok.Order.Status)

			e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: 400})
			ans := e.buy("ann", e.skus["verified"])
			require.Equal(t, "Fulfillment Error", ans.Order.Status)
			check := func() {
				t.Helper()
				o := e.order(ans.Order.Number)
				require.Equal(t, "Fulfillment Error", o.Status)
				require.True(t, o.NeedsAttention)
				require.Nil(t, o.NextAttemptAt)
				require.Equal(t, 1, o.Attempts)
				l := o.Lines[0]
				require.Equal(t, "Fulfillment Server Error", l.Status)
				require.Equal(t, 400, l.LastHTTPStatus)
				require.Nil(t, l.NextAttemptAt)
				require.Equal(t, 1, l.Attempts)
			}
			check()
			require.Equal(t, 2, e.lms.Stats().Posts)

			time.Sleep(500 * time.Millisecond)
			require.Equal(t, 2, e.lms.Stats().Posts, "a permanent failure is not retried")
			check()

			require.Equal(t, []string{ans.Order.Number}, e.rtList("?needs_attention=true"))
			require.Equal(t, []string{ok.Order.Number}, e.rtList("?needs_attention=false"))
			m := e.rtMetrics()
			require.Contains(t, m, "fulfill_orders_needing_attention 1\n")
			require.Contains(t, m, `fulfill_orders_flagged_total{reason="permanent failure"} 1`)
		})
	}
}

// TestExhaustedRetriesFlagged: a line that keeps failing is tried exactly
// Policy.Attempts times, then flagged and left alone.
func TestExhaustedRetriesFlagged(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{worker: true,
				policy: fulfillment.Policy{Base: 10 * time.Millisecond, Cap: 20 * time.Millisecond, Attempts: 3}})
			e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: 503})
			ans := e.buy("ann", e.skus["verified"])
			require.Equal(t, "Fulfillment Error", ans.Order.Status)

			var o orderOut
			eventually(t, 10*time.Second, func() bool {
				o = e.order(ans.Order.Number)
				return o.NeedsAttention
			}, "the order is flagged once its retries are exhausted")
			require.Equal(t, "Fulfillment Error", o.Status)
			require.Nil(t, o.NextAttemptAt)
			require.Equal(t, 3, o.Attempts)
			l := o.Lines[0]
			require.Equal(t, 3, l.Attempts)
			require.Equal(t, "Fulfillment Server Error", l.Status)
			require.Equal(t, 503, l.LastHTTPStatus)
			require.Nil(t, l.NextAttemptAt)

			reqs := e.lms.Requests()
			require.Len(t, reqs, 3)
			for _, r := range reqs {
				require.Equal(t, ans.Order.Number+":"+itoa(l.ID), r.IdempotencyKey, "every attempt carries the line's key")
			}
			time.Sleep(300 * time.Millisecond)
			require.Equal(t, 3, e.lms.Stats().Posts, "no attempt after the last one")
			require.Equal(t, []string{ans.Order.Number}, e.rtList("?needs_attention=true"))
			require.Contains(t, e.rtMetrics(), `fulfill_orders_flagged_total{reason="retries exhausted"} 1`)
		})
	}
}

// TestPartialOrderRetriesOnlyFailedLine: of a two-line order whose second
// course is down, only that line is retried; the delivered one is never
// sent again.
func TestPartialOrderRetriesOnlyFailedLine(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{worker: true, policy: rtFast})
			e.lms.SetFaults(lmstest.Faults{FailRate: 1, Courses: []string{course2}})
			ans := e.buy("ann", e.skus["verified"], e.skus["course2 verified"])
			require.Equal(t, "Fulfillment Error", ans.Order.Status)
			o := e.order(ans.Order.Number)
			require.Equal(t, "Fulfillment Error", o.Status)
			require.Equal(t, "Complete", rtLine(t, o, e.skus["verified"]).Status)
			require.Equal(t, "Fulfillment Server Error", rtLine(t, o, e.skus["course2 verified"]).Status)
			require.NotNil(t, rtLine(t, o, e.skus["course2 verified"]).NextAttemptAt)

			eventually(t, 10*time.Second, func() bool { return e.rtPostsFor(course2) >= 3 },
				"the worker retries the failed line")
			require.Equal(t, 1, e.rtPostsFor(course), "the delivered line is not retried")

			e.lms.SetFaults(lmstest.Faults{})
			eventually(t, 10*time.Second, func() bool { return e.order(ans.Order.Number).Status == "Complete" },
				"the order completes once the course heals")
			o = e.order(ans.Order.Number)
			require.Equal(t, 1, rtLine(t, o, e.skus["verified"]).Attempts)
			c2 := rtLine(t, o, e.skus["course2 verified"])
			require.Equal(t, "Complete", c2.Status)
			require.GreaterOrEqual(t, c2.Attempts, 3)
			require.Nil(t, o.NextAttemptAt)
			require.Equal(t, 1, e.rtPostsFor(course), "exactly one POST for the course delivered first")
			for _, c := range []string{course, course2} {
				en, ok := e.lms.Enrollment("ann", c)
				require.True(t, ok, c)
				require.True(t, en.IsActive, c)
			}
			require.Equal(t, 2, e.lms.Stats().Activations)
		})
	}
}

// TestBasketIdempotencyKey: a checkout repeated with the same
// Idempotency-Key is answered from the first, once per user.
func TestBasketIdempotencyKey(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			ann, bob := e.token("ann", false), e.token("bob", false)
			body := map[string]any{"products": []map[string]string{{"sku": e.skus["verified"]}}, "checkout": true}
			k1 := map[string]string{"Idempotency-Key": "k1"}
			decode := func(a rtAnswer) basketAnswer {
				t.Helper()
				require.Equal(t, http.StatusOK, a.Status, string(a.Body))
				var b basketAnswer
				require.NoError(t, json.Unmarshal(a.Body, &b), string(a.Body))
				return b
			}
			ordersOf := func(tok string) []string {
				t.Helper()
				var list struct{ Results []orderOut }
				e.do("GET", "/api/v2/orders/", tok, nil, http.StatusOK, &list)
				var out []string
				for _, o := range list.Results {
					out = append(out, o.Number)
				}
				return out
			}

			a1 := e.rtCall("POST", "/api/v2/baskets/", ann, body, k1)
			first := decode(a1)
			require.Empty(t, a1.Header.Get("Idempotent-Replayed"))
			require.Equal(t, "Complete", first.Order.Status)
			a2 := e.rtCall("POST", "/api/v2/baskets/", ann, body, k1)
			second := decode(a2)
			require.Equal(t, "true", a2.Header.Get("Idempotent-Replayed"))
			require.Equal(t, first.ID, second.ID)
			require.Equal(t, first.Order.Number, second.Order.Number)
			require.Equal(t, first.Order.Status, second.Order.Status)
			require.Equal(t, []string{first.Order.Number}, ordersOf(ann))
			require.Equal(t, 1, e.lms.Stats().Posts)

			other := map[string]any{"products": []map[string]string{{"sku": e.skus["audit"]}}, "checkout": true}
			p := rtProblem(t, e.rtCall("POST", "/api/v2/baskets/", ann, other, k1), http.StatusUnprocessableEntity)
			require.Contains(t, p.Detail, "Idempotency-Key")
			require.Equal(t, []string{first.Order.Number}, ordersOf(ann))
			require.Equal(t, 1, e.lms.Stats().Posts)

			// Keys belong to their user.
			a3 := e.rtCall("POST", "/api/v2/baskets/", bob, body, k1)
			third := decode(a3)
			require.Empty(t, a3.Header.Get("Idempotent-Replayed"))
			require.Equal(t, "Complete", third.Order.Status)
			require.NotEqual(t, first.Order.Number, third.Order.Number)
			require.NotEqual(t, first.ID, third.ID)
			require.Equal(t, []string{third.Order.Number}, ordersOf(bob))
			require.Equal(t, []string{first.Order.Number}, ordersOf(ann))
			require.Equal(t, 2, e.lms.Stats().Posts)
			_, enrolled := e.lms.Enrollment("bob", course)
			require.True(t, enrolled)

			// A refused request is final for its body and is replayed too.
			nope := map[string]any{"products": []map[string]string{{"sku": "NOPE"}}, "checkout": true}
			kBad := map[string]string{"Idempotency-Key": "k-bad"}
			b1 := e.rtCall("POST", "/api/v2/baskets/", ann, nope, kBad)
			rtProblem(t, b1, http.StatusBadRequest)
			b2 := e.rtCall("POST", "/api/v2/baskets/", ann, nope, kBad)
			require.Equal(t, "true", b2.Header.Get("Idempotent-Replayed"))
			require.Equal(t, http.StatusBadRequest, b2.Status)
			require.JSONEq(t, string(b1.Body), string(b2.Body))
			rtProblem(t, b2, http.StatusBadRequest)
		})
	}
}

// TestBreakerSkipsSyncCallWhenOpen: once the LMS breaker opens, checkouts
// stop calling the LMS and leave their lines queued.
func TestBreakerSkipsSyncCallWhenOpen(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{breakerThreshold: 3, breakerCooldown: time.Hour})
			e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: 503})
			for i := range 3 {
				ans := e.buy(fmt.Sprintf("fail%d", i), e.skus["verified"])
				require.Equal(t, "Fulfillment Error", ans.Order.Status)
			}
			require.Equal(t, 3, e.lms.Stats().Posts)
			require.Contains(t, e.rtMetrics(), `fulfill_breaker_state{module="enrollment"} 2`)

			for i := range 2 {
				ans := e.buy(fmt.Sprintf("skip%d", i), e.skus["verified"])
				require.Equal(t, "Open", ans.Order.Status, "the call is skipped while the breaker is open")
				o := e.order(ans.Order.Number)
				require.Equal(t, "Open", o.Status)
				require.False(t, o.NeedsAttention)
				require.Equal(t, 0, o.Attempts)
				require.NotNil(t, o.NextAttemptAt)
				l := o.Lines[0]
				require.Equal(t, "Open", l.Status)
				require.Equal(t, 0, l.Attempts)
				require.NotNil(t, l.NextAttemptAt, "a skipped line stays queued")
				require.True(t, l.NextAttemptAt.After(time.Now()))
				require.Contains(t, l.Waiting, "circuit is open since", "the API says why the line waits")
				page := e.rtCall("GET", "/dashboard/orders/"+ans.Order.Number+"/", e.staff, nil, nil)
				require.Contains(t, string(page.Body), "circuit is open since", "and so does the dashboard")
			}
			require.Equal(t, 3, e.lms.Stats().Posts, "no LMS call while the breaker is open")
			m := e.rtMetrics()
			require.Contains(t, m, `fulfill_breaker_state{module="enrollment"} 2`)
			require.Contains(t, m, `fulfill_fulfillment_attempts_total{module="enrollment",outcome="server"} 3`)
			require.NotContains(t, m, `outcome="skipped"`, "a skipped call is not an attempt")
		})
	}
}

// TestBulkResubmit: POST /api/v2/orders/fulfill/ resubmits a list of orders
// or those matching a filter.
func TestBulkResubmit(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: 503})
			var first []string
			for i := range 3 {
				ans := e.buy(fmt.Sprintf("a%d", i), e.skus["verified"])
				require.Equal(t, "Fulfillment Error", ans.Order.Status)
				first = append(first, ans.Order.Number)
			}
			e.lms.SetFaults(lmstest.Faults{})

			var res api.BulkResult
			e.do("POST", "/api/v2/orders/fulfill/", e.staff, map[string]any{"numbers": append(slices.Clone(first), "EDX-999999")}, http.StatusOK, &res)
			require.Equal(t, 3, res.Count)
			require.ElementsMatch(t, first, res.Completed)
			require.Empty(t, res.Failed)
			require.Equal(t, []string{"EDX-999999"}, res.Skipped)
			for _, n := range first {
				require.Equal(t, "Complete", e.order(n).Status)
			}
			require.Equal(t, 3, e.lms.Stats().Activations)

			// Again: Complete orders are skipped, the LMS is not called.
			posts := e.lms.Stats().Posts
			e.do("POST", "/api/v2/orders/fulfill/", e.staff, map[string]any{"numbers": first}, http.StatusOK, &res)
			require.Equal(t, 0, res.Count)
			require.ElementsMatch(t, first, res.Skipped)
			require.Equal(t, posts, e.lms.Stats().Posts)

			e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: 503})
			var second []string
			for i := range 2 {
				ans := e.buy(fmt.Sprintf("b%d", i), e.skus["verified"])
				require.Equal(t, "Fulfillment Error", ans.Order.Status)
				second = append(second, ans.Order.Number)
			}
			posts = e.lms.Stats().Posts
			e.do("POST", "/api/v2/orders/fulfill/", e.staff, map[string]any{"filter": map[string]any{"status": "Fulfillment Error"}}, http.StatusOK, &res)
			require.Equal(t, 2, res.Count)
			require.ElementsMatch(t, second, res.Failed)
			require.Empty(t, res.Completed)
			require.Empty(t, res.Skipped)
			require.Equal(t, posts+2, e.lms.Stats().Posts, "only the failing orders were resubmitted")
			for _, n := range second {
				o := e.order(n)
				require.Equal(t, "Fulfillment Error", o.Status)
				require.Equal(t, 2, o.Lines[0].Attempts)
			}

			bad := []struct {
				name, token string
				body        any
				want        int
			}{
				{"not staff", e.token("a0", false), map[string]any{"numbers": second}, http.StatusForbidden},
				{"no token", "", map[string]any{"numbers": second}, http.StatusUnauthorized},
				{"neither numbers nor filter", e.staff, `{}`, http.StatusBadRequest},
				{"both numbers and filter", e.staff, map[string]any{"numbers": second, "filter": map[string]any{}}, http.StatusBadRequest},
				{"unknown status", e.staff, map[string]any{"filter": map[string]any{"status": "Shipped"}}, http.StatusBadRequest},
				{"malformed", e.staff, `{`, http.StatusBadRequest},
			}
			for _, b := range bad {
				rtProblem(t, e.rtCall("POST", "/api/v2/orders/fulfill/", b.token, b.body, nil), b.want)
			}
			require.Equal(t, posts+2, e.lms.Stats().Posts, "refused bulk requests do not reach the LMS")
		})
	}
}

// TestHealthReadyMetrics: the unauthenticated operational endpoints.
func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			for path, want := range map[string]string{"/healthz": `{"status":"ok"}`, "/readyz": `{"status":"ready"}`} {
				a := e.rtCall("GET", path, "", nil, nil)
				require.Equal(t, http.StatusOK, a.Status, path)
				require.JSONEq(t, want, string(a.Body), path)
			}
			require.Equal(t, "Complete", e.buy("ann", e.skus["verified"]).Order.Status)
			m := e.rtMetrics()
			for _, s := range []string{
				"fulfill_http_requests_total{",
				`fulfill_http_requests_total{code="200",route="POST /api/v2/baskets/{$}"} 1`,
				`fulfill_fulfillment_attempts_total{module="enrollment",outcome="success"} 1`,
				"fulfill_queue_due_lines 0",
				"fulfill_orders_needing_attention 0",
			} {
				require.Contains(t, m, s)
			}
		})
	}
}

// TestPersonRetryPassesOpenBreaker: after an outage opened the breaker, a
// person's resubmission still calls the LMS (it is the probe) and answers
// with the real cause; once the LMS is back, that retry closes the breaker.
// A line the breaker skipped keeps its last error.
func TestPersonRetryPassesOpenBreaker(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{breakerThreshold: 2, breakerCooldown: time.Hour})
			e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: 503})
			var failed []string
			for i := range 2 {
				ans := e.buy(fmt.Sprintf("out%d", i), e.skus["verified"])
				require.Equal(t, "Fulfillment Error", ans.Order.Status)
				failed = append(failed, ans.Order.Number)
			}
			require.Contains(t, e.rtMetrics(), `fulfill_breaker_state{module="enrollment"} 2`)
			posts := e.lms.Stats().Posts

			// Still down: the person's retry calls the LMS and says why it failed.
			var o orderOut
			e.do("PUT", "/api/v2/orders/"+failed[0]+"/fulfill/", e.staff, nil, http.StatusInternalServerError, &o)
			require.Equal(t, posts+1, e.lms.Stats().Posts, "a person's retry is made through an open breaker")
			require.Equal(t, "Fulfillment Error", o.Status)
			require.NotEmpty(t, o.LastError, "the answer carries the real cause")
			require.NotEmpty(t, o.Lines[0].LastError)

			// Back up: the person's retry is the probe that closes the breaker.
			e.lms.SetFaults(lmstest.Faults{})
			e.do("PUT", "/api/v2/orders/"+failed[1]+"/fulfill/", e.staff, nil, http.StatusOK, &o)
			require.Equal(t, "Complete", o.Status)
			require.Contains(t, e.rtMetrics(), `fulfill_breaker_state{module="enrollment"} 0`)
		})
	}
}
