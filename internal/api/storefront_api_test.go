package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
	"fulfill/internal/fulfillment/webhook"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/payment"
	"fulfill/internal/sqlstore/sqlstoretest"
)

func TestCoursePublishedToLMS(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{publish: true})
			pc, ok := e.lms.PublishedCourse(course)
			require.True(t, ok, "saving a course publishes it")
			require.Equal(t, course, pc.ID)
			byName := map[string]string{}
			var bulk *string
			for _, m := range pc.Modes {
				byName[m.Name] = m.SKU
				if m.Name == "verified" {
					bulk = m.BulkSKU
					require.Zero(t, m.Price)
				}
			}
			require.Equal(t, e.skus["verified"], byName["verified"])
			require.Equal(t, e.skus["audit"], byName["audit"])
			require.Equal(t, e.skus["no-id-professional"], byName["no-id-professional"])
			require.NotNil(t, bulk)
			require.Equal(t, e.skus["bulk verified"], *bulk)

			// The LMS refuses: the caller hears its message; the course is saved.
			e.lms.SetFaults(lmstest.Faults{FailRate: 1, FailStatus: 400})
			raw := e.do("PUT", "/api/v2/courses/course-v1:edX+New+Run/", e.staff, map[string]any{"name": "New", "modes": []map[string]any{
				{"certificate_type": "verified", "id_verification_required": true, "price": "10"}}}, http.StatusBadGateway, nil)
			require.Contains(t, string(raw), "Simulated LMS failure")
			require.Contains(t, string(raw), "fulfill courses publish")
			e.do("GET", "/api/v2/courses/course-v1:edX+New+Run/", e.staff, nil, http.StatusOK, nil)
			_, ok = e.lms.PublishedCourse("course-v1:edX+New+Run")
			require.False(t, ok)
		})
	}
}

func TestRolloutAndThirdParty(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{serviceUsers: []string{"ecommerce_worker"}})
			// Rollout: set after the env's courses exist, since SKUs are needed.
			e2 := newEnv(t, engine, envOpts{rollout: &catalog.Rollout{Courses: []string{course}, UnsoldSKUs: []string{"NOT-YET"}}})
			raw := e2.do("POST", "/api/v2/baskets/", e2.token("ann", false), map[string]any{"products": []map[string]string{{"sku": e2.skus["course2 audit"]}},
				"checkout": true}, http.StatusBadRequest, nil)
			require.Contains(t, string(raw), "not sold by this service")
			require.Equal(t, "Complete", e2.buy("ann", e2.skus["audit"]).Order.Status)

			// Staff and service users buy for another learner; the learner is enrolled; the history names who acted.
			for _, actor := range []string{"staff", "ecommerce_worker"} {
				learner := "learner-of-" + actor
				var ans basketAnswer
				e.do("POST", "/api/v2/baskets/", e.token(actor, actor == "staff"), map[string]any{"products": []map[string]string{{"sku": e.skus["verified"]}},
					"checkout": true, "username": learner}, http.StatusOK, &ans)
				require.Equal(t, "Complete", ans.Order.Status)
				en, ok := e.lms.Enrollment(learner, course)
				require.True(t, ok)
				require.True(t, en.IsActive)
				o, err := e.db.GetOrder(context.Background(), ans.Order.Number)
				require.NoError(t, err)
				require.Equal(t, learner, o.User.Username)
				hist, err := e.db.History(context.Background(), o.ID)
				require.NoError(t, err)
				require.Equal(t, actor, hist[0].Actor)
			}
			e.do("POST", "/api/v2/baskets/", e.token("mallory", false), map[string]any{"products": []map[string]string{{"sku": e.skus["verified"]}},
				"checkout": true, "username": "victim"}, http.StatusForbidden, nil)
		})
	}
}

type codeOut struct {
	Code, Status string
	RedeemedBy   string `json:"redeemed_by"`
}

func TestEnrollmentCodes(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{})
			ctx := context.Background()
			bulk := e.skus["bulk no-id-professional"]
			require.NotEmpty(t, bulk)
			// Buy 3 codes for the $100 professional seat, paid through the sandbox.
			var b paidBasket
			e.do("POST", "/api/v2/baskets/", e.token("buyer", false), map[string]any{"products": []map[string]any{{"sku": bulk, "quantity": 3}},
				"checkout": true, "payment_processor_name": "sandbox"}, http.StatusOK, &b)
			require.Equal(t, "300.00", b.PaymentData.FormData["amount"])
			code, out := e.notify(payment.SandboxNotification{BasketID: b.ID, Reference: "txn-bulk", Amount: "300.00", Currency: "USD", Decision: payment.Accept}, []byte(sandboxSecret))
			require.Equal(t, http.StatusOK, code, out)
			number := out["order_number"].(string)
			require.Equal(t, "Complete", out["order_status"])

			var o struct {
				Lines []struct {
					ID    int64
					Codes []codeOut `json:"enrollment_codes"`
				}
			}
			e.do("GET", "/api/v2/orders/"+number+"/", e.token("buyer", false), nil, http.StatusOK, &o)
			require.Len(t, o.Lines[0].Codes, 3)
			// Issuing again (a retried line) issues nothing more.
			require.NoError(t, e.db.IssueCodes(ctx, o.Lines[0].ID, 3, e.skus["no-id-professional"]))
			codes, err := e.db.CodesForOrder(ctx, orderID(t, e, number))
			require.NoError(t, err)
			require.Len(t, codes[o.Lines[0].ID], 3)

			// The buyer downloads them as CSV; nobody else can.
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v2/orders/"+number+"/enrollment_codes.csv", nil)
			req.Header.Set("Authorization", "JWT "+e.token("buyer", false))
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			csv, _ := io.ReadAll(res.Body)
			res.Body.Close()
			require.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
			require.Len(t, strings.Split(strings.TrimSpace(string(csv)), "\n"), 4)
			e.do("GET", "/api/v2/orders/"+number+"/enrollment_codes.csv", e.token("other", false), nil, http.StatusNotFound, nil)

			// A learner redeems one: a $0 order, enrolled in the seat's mode.
			var redeemed orderOut
			e.do("GET", "/coupons/redeem/?code="+o.Lines[0].Codes[0].Code, e.token("learner1", false), nil, http.StatusOK, &redeemed)
			require.Equal(t, "Complete", redeemed.Status)
			require.Equal(t, "0.00", redeemed.TotalExclTax)
			en, ok := e.lms.Enrollment("learner1", course)
			require.True(t, ok)
			require.Equal(t, "no-id-professional", en.Mode)
			e.do("GET", "/coupons/redeem/?code="+o.Lines[0].Codes[0].Code, e.token("learner2", false), nil, http.StatusConflict, nil)
			e.do("GET", "/coupons/redeem/?code=NOSUCHCODE", e.token("learner2", false), nil, http.StatusNotFound, nil)
			e.do("GET", "/coupons/redeem/?code="+o.Lines[0].Codes[1].Code, "", nil, http.StatusUnauthorized, nil)

			// Two learners at the same instant: one wins.
			var wg sync.WaitGroup
			var wins atomic.Int32
			for i := range 2 {
				wg.Go(func() {
					req, _ := http.NewRequest("GET", e.srv.URL+"/coupons/redeem/?code="+o.Lines[0].Codes[1].Code, nil)
					req.Header.Set("Authorization", "JWT "+e.token(fmt.Sprintf("racer%d", i), false))
					res, err := http.DefaultClient.Do(req)
					if err == nil {
						if res.StatusCode == http.StatusOK {
							wins.Add(1)
						}
						res.Body.Close()
					}
				})
			}
			wg.Wait()
			require.EqualValues(t, 1, wins.Load())

			// Refunding the purchase revokes the unused code; used ones stay.
			var ids []int64
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{"order_number": number}, http.StatusCreated, &ids)
			var r refundOut
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "approve"}, http.StatusOK, &r)
			require.Equal(t, "Complete", r.Status)
			e.do("GET", "/api/v2/orders/"+number+"/", e.token("buyer", false), nil, http.StatusOK, &o)
			statuses := map[string]int{}
			for _, c := range o.Lines[0].Codes {
				statuses[c.Status]++
			}
			require.Equal(t, map[string]int{"redeemed": 2, "revoked": 1}, statuses)
			e.do("GET", "/coupons/redeem/?code="+o.Lines[0].Codes[2].Code, e.token("late", false), nil, http.StatusConflict, nil)
		})
	}
}

func TestEntitlementModule(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine, envOpts{worker: true, policy: fastPolicy()})
			e.do("PUT", "/api/v2/products/ENT-1/", e.staff, map[string]any{"product_class": "Course Entitlement", "title": "Entitlement to Demo",
				"price": "100", "currency": "USD", "attributes": map[string]any{"UUID": "c0ffee", "certificate_type": "verified"}}, http.StatusOK, nil)
			e.do("PUT", "/api/v2/products/ENT-BAD/", e.staff, map[string]any{"product_class": "Course Entitlement", "title": "x", "price": "1"}, http.StatusBadRequest, nil)
			// The LMS fails the first grant: the queue retries it.
			e.lms.SetFaults(lmstest.Faults{FailRate: 1})
			b := e.startPaid("ann", "ENT-1")
			code, out := e.notify(payment.SandboxNotification{BasketID: b.ID, Reference: "txn-ent", Amount: "100.00", Currency: "USD", Decision: payment.Accept}, []byte(sandboxSecret))
			require.Equal(t, http.StatusOK, code, out)
			number := out["order_number"].(string)
			require.Equal(t, "Fulfillment Error", out["order_status"])
			e.lms.SetFaults(lmstest.Faults{})
			eventually(t, 10*time.Second, func() bool { return e.order(number).Status == "Complete" }, "entitlement granted by the retry")
			ents := e.lms.Entitlements()
			require.Len(t, ents, 1)
			require.Equal(t, "ann", ents[0].User)
			require.Equal(t, "c0ffee", ents[0].CourseUUID)
			require.Equal(t, number, ents[0].OrderNumber)
			o, err := e.db.GetOrder(context.Background(), number)
			require.NoError(t, err)
			require.Equal(t, ents[0].UUID, o.Lines[0].FulfillmentData["entitlement_uuid"])

			var ids []int64
			e.do("POST", "/api/v2/refunds/", e.staff, map[string]any{"order_number": number}, http.StatusCreated, &ids)
			var r refundOut
			e.do("PUT", fmt.Sprintf("/api/v2/refunds/%d/process/", ids[0]), e.staff, map[string]string{"action": "approve"}, http.StatusOK, &r)
			require.Equal(t, "Complete", r.Status)
			require.NotNil(t, e.lms.Entitlements()[0].ExpiredAt, "the entitlement is revoked")
		})
	}
}

func TestWebhookModule(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []webhook.Event
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(webhook.SignatureHeader) != webhook.Sign([]byte(webhookSecret), body) {
			http.Error(w, `{"message":"bad signature"}`, http.StatusUnauthorized)
			return
		}
		if calls.Add(1) == 1 {
			http.Error(w, `{"message":"warming up"}`, http.StatusServiceUnavailable)
			return
		}
		var ev webhook.Event
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			e := newEnv(t, engine, envOpts{worker: true, policy: fastPolicy(), webhookURL: hook.URL})
			calls.Store(0)
			mu.Lock()
			events = nil
			mu.Unlock()
			e.do("PUT", "/api/v2/products/GIVE-5/", e.staff, map[string]any{"product_class": "Donation", "title": "Donate", "price": "0"}, http.StatusOK, nil)
			ans := e.buy("ann", "GIVE-5")
			require.Equal(t, "Fulfillment Error", ans.Order.Status, "the first call answered 503")
			eventually(t, 10*time.Second, func() bool { return e.order(ans.Order.Number).Status == "Complete" }, "retried until 2xx")
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, events, 1)
			require.Equal(t, "fulfill", events[0].Event)
			require.Equal(t, "GIVE-5", events[0].SKU)
			require.Equal(t, "ann", events[0].Username)
			require.Equal(t, ans.Order.Number, events[0].OrderNumber)
		})
	}
}
