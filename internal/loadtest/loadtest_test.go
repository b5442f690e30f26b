package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/money"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// runInProcess runs the load tool on engine's fresh database with args
// (after --db, with --json) and returns its report, verified, and its text
// report.
func runInProcess(t *testing.T, engine sqlstore.Engine, args ...string) (loadReport, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := Run(ctx, append(append([]string{"--db", sqlstoretest.URL(t, engine)}, args...), "--json"),
		func(string) string { return "" }, &stdout, &stderr)
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	var rep loadReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), "stdout:\n%s", stdout.String())
	require.True(t, rep.Verified, "failures: %v", rep.Failures)
	require.Empty(t, rep.Failures)
	return rep, stderr.String()
}

// TestLoadtestInProcess runs the load tool against an in-process service
// with an LMS failing 30 % of enrollments, and checks what it verified: every
// acknowledged order Complete and one activation per order. It never
// asserts speed.
func TestLoadtestInProcess(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			rep, text := runInProcess(t, engine, "--orders", "300", "--concurrency", "16", "--lms-fail-rate", "0.3", "--settle", "1m")
			require.Equal(t, "in-process", rep.Mode)
			require.Equal(t, string(engine), rep.Engine)
			require.Equal(t, "orders", rep.Stopped)
			require.EqualValues(t, 300, rep.Sent)
			require.EqualValues(t, 300, rep.Acknowledged)
			require.Empty(t, rep.Errors)
			require.Equal(t, 300, rep.Settle.Checked)
			require.Equal(t, 300, rep.Settle.Complete)
			require.Equal(t, "in-process", rep.LMSCheck.Method)
			require.Equal(t, 300, rep.LMSCheck.Activations)
			require.Equal(t, 300, rep.LMSCheck.ActiveEnrollments)
			require.Equal(t, 300, rep.LMSCheck.Active)
			// With 30 % of calls failing, some orders were answered before
			// they were Complete and had to be retried.
			require.Positive(t, rep.AnsweredStatus["Complete"])
			require.Positive(t, rep.AnsweredStatus["Fulfillment Error"]+rep.AnsweredStatus["Open"])
			require.NotNil(t, rep.Retry)
			require.Equal(t, "100ms", rep.Retry.Base)
			require.Equal(t, "1s", rep.Retry.Cap)
			require.Positive(t, rep.Latency.Count)
			require.LessOrEqual(t, rep.Latency.P50, rep.Latency.P99)
			require.LessOrEqual(t, rep.Latency.P99, rep.Latency.Max)
			// The text report went to stderr, with the retry settings named.
			require.Contains(t, text, "VERIFIED")
			require.Contains(t, text, "short retry settings")
		})
	}
}

// TestLoadtestPaid runs --paid in-process: every learner pays through the
// sandbox (basket, then the gateway's signed accept), a fifth of the
// baskets are paid a second time with another reference, and the tool
// checks that the service refunded those and that the ledger balances
// with the orders. It never asserts speed.
func TestLoadtestPaid(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			rep, text := runInProcess(t, engine, "--paid", "--paid-duplicates", "0.2",
				"--orders", "100", "--concurrency", "8", "--rate", "200", "--settle", "1m")
			require.Empty(t, rep.Errors)
			require.Equal(t, string(engine), rep.Engine)
			require.EqualValues(t, 100, rep.Sent)
			require.EqualValues(t, 100, rep.Acknowledged)
			require.Equal(t, 100, rep.Settle.Complete)
			require.Equal(t, 100, rep.LMSCheck.Activations)
			require.Equal(t, 100, rep.LMSCheck.Active)

			p := rep.Paid
			require.NotNil(t, p)
			require.Equal(t, "sandbox", p.Processor)
			require.Equal(t, "49.00", p.Price)
			require.EqualValues(t, 20, p.Duplicates.Sent)
			require.EqualValues(t, 20, p.Duplicates.Refunded)
			require.Zero(t, p.Duplicates.Failed)
			// Both parts of the checkout were measured, and the whole
			// includes them.
			require.Equal(t, 100, p.Basket.Count)
			require.Equal(t, 100, p.Notify.Count)
			require.Positive(t, p.Basket.P50)
			require.Positive(t, p.Notify.P50)
			require.GreaterOrEqual(t, rep.Latency.Max, p.Notify.Max)

			l := p.Ledger
			require.True(t, l.Balanced)
			require.Equal(t, 120, l.Payments)
			require.Equal(t, map[string]int{"placed": 100, "refunded": 20}, l.ByState)
			require.Equal(t, 100, l.Orders)
			require.Equal(t, 20, l.Refunds)
			require.Equal(t, "USD", l.Currency)
			require.Equal(t, "5880.00", l.AcceptedSum)
			require.Equal(t, "4900.00", l.OrdersSum)
			require.Equal(t, "4900.00", l.PlacedSum)
			require.Equal(t, "980.00", l.RefundSum)
			require.Equal(t, "0.00", l.LeftSum)
			sum := func(s string) int64 {
				a, err := money.Parse(s, l.Currency)
				require.NoError(t, err)
				return a.Minor
			}
			require.Equal(t, sum(l.AcceptedSum), sum(l.OrdersSum)+sum(l.RefundSum))

			// --rate: the open-loop line, from the scheduled send time.
			require.NotNil(t, rep.OpenLoop)
			require.Equal(t, "scheduled send time", rep.OpenLoop.LatencyFrom)
			require.Equal(t, rep.Latency.P99, rep.OpenLoop.P99)
			require.LessOrEqual(t, rep.OpenLoop.P99FromSend, rep.OpenLoop.P99)
			require.EqualValues(t, 100, rep.OpenLoop.Due)
			require.Zero(t, rep.OpenLoop.UnsentDue)

			require.Contains(t, text, "VERIFIED")
			require.Contains(t, text, "accepted 5880.00 USD = orders 4900.00 USD (100 orders; placed payments 4900.00) + refunds 980.00 USD (20)")
			require.Contains(t, text, "measured from each order's scheduled send time")
			require.Contains(t, text, "accept notification (ms)")
		})
	}
}

func TestLoadtestFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", "http://127.0.0.1:1", "--paid"}, "--sandbox-secret"},
		{[]string{"--db", "sqlite:x.db", "--paid", "--paid-duplicates", "1.5"}, "--paid-duplicates"},
		{[]string{"--db", "sqlite:x.db", "--paid-duplicates", "0.1"}, "needs --paid"},
		{[]string{}, "either --url"},
		{[]string{"--db", "sqlite:x.db", "--url", "http://127.0.0.1:1"}, "either --url"},
		{[]string{"--db", "sqlite:x.db", "--concurrency", "0"}, "--concurrency"},
		{[]string{"--db", "sqlite:x.db", "--lms-fail-rate", "1.5"}, "--lms-fail-rate"},
		{[]string{"--url", "127.0.0.1:8080"}, "http://"},
		{[]string{"--db", "sqlite:x.db", "--duration", "5s", "--warmup", "5s"}, "--warmup"},
		{[]string{"--url", "http://example.com:8080"}, "loopback"},
		{[]string{"--db", "sqlite:x.db", "--lms-url", "http://10.0.0.1:18000"}, "loopback"},
	} {
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), tc.args, func(string) string { return "" }, &stdout, &stderr)
		require.Error(t, err, "args %v", tc.args)
		require.Contains(t, err.Error(), tc.want, "args %v", tc.args)
	}
}

// TestLoadtestRemoteUnreachable: a remote run against nothing fails fast
// with the transport error, and says it cannot reconfigure a remote LMS.
func TestLoadtestRemoteUnreachable(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"--url", "http://127.0.0.1:1", "--lms-fail-rate", "0.3", "--orders", "1"},
		func(string) string { return "" }, &stdout, &stderr)
	require.Error(t, err)
	require.Contains(t, err.Error(), "create course")
	require.True(t, strings.Contains(stderr.String(), "cannot reconfigure a remote service's LMS"), stderr.String())
}

func TestLoadHistogram(t *testing.T) {
	t.Parallel()
	var h loadHist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	var c [loadHistBuckets]int64
	h.snapshot(&c)
	for _, q := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := histQuantile(&c, q.q)
		require.InEpsilon(t, float64(q.want), float64(got), 0.04, "q%.2f", q.q)
	}
	for _, us := range []int64{0, 1, 31, 32, 33, 63, 64, 1000, 123456, 1 << 40} {
		i := loadHistIndex(us)
		require.Less(t, i, loadHistBuckets)
		if us < 1<<30 {
			require.LessOrEqual(t, loadHistValue(i), us)
			require.InEpsilon(t, float64(us+1), float64(loadHistValue(i)+1), 0.04, "us %d", us)
		}
	}
	lat := summarize([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})
	require.Equal(t, loadLatency{Count: 3, Mean: 2, P50: 2, P95: 3, P99: 3, Max: 3}, lat)
}

// TestVerifyLedgerUnbalanced: a ledger that does not balance with the
// orders fails the verification, with the sums in the report. The service
// is a stub answering the payment and order lists.
func TestVerifyLedgerUnbalanced(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/v2/payments/" && r.URL.Query().Get("cursor") == "":
			_, _ = w.Write([]byte(`{"count":4,"results":[
				{"id":13,"reference":"lt-r-1","decision":"accept","amount":"49.00","currency":"USD","state":"received"},
				{"id":12,"reference":"lt-r-0-dup","decision":"accept","amount":"49.00","currency":"USD","state":"placed","order_number":"O2"},
				{"id":11,"reference":"lt-r-0","decision":"accept","amount":"49.00","currency":"USD","state":"placed","order_number":"O1"},
				{"id":10,"reference":"lt-other-0","decision":"accept","amount":"49.00","currency":"USD","state":"placed","order_number":"X"}]}`))
		case r.URL.Path == "/api/v2/payments/":
			_, _ = w.Write([]byte(`{"count":0,"results":[]}`))
		case r.URL.Path == "/api/v2/orders/" && r.URL.Query().Get("page") == "":
			// A page-number list whose next link is absolute.
			_, _ = fmt.Fprintf(w, `{"count":3,"next":"http://%s/api/v2/orders/?page=2","results":[
				{"number":"O2","total_excl_tax":"49.00","currency":"USD","user":{"username":"ldr-0"}}]}`, r.Host)
		case r.URL.Path == "/api/v2/orders/":
			_, _ = w.Write([]byte(`{"count":3,"next":null,"results":[
				{"number":"O2","total_excl_tax":"49.00","currency":"USD","user":{"username":"ldr-0"}},
				{"number":"O1","total_excl_tax":"49.00","currency":"USD","user":{"username":"ldr-0"}},
				{"number":"X","total_excl_tax":"49.00","currency":"USD","user":{"username":"someone"}}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	lt := &loadTest{base: srv.URL, client: srv.Client(), runID: "r", stderr: io.Discard,
		price: money.Amount{Minor: 4900, Currency: "USD"}, acked: []loadAck{{number: "O1", user: "ldr-0"}},
		rep: &loadReport{Errors: map[string]int64{}, Paid: &loadPaidReport{}}}
	lt.paid = paidTally{dupSent: 1, dupRefunded: 1}
	var failures []string
	lt.verifyLedger(context.Background(), time.Now(), func(f string, a ...any) { failures = append(failures, fmt.Sprintf(f, a...)) })
	lt.rep.Failures = failures
	l := lt.rep.Paid.Ledger
	require.False(t, l.Balanced)
	require.Equal(t, 3, l.Payments, "another run's payment is not counted")
	require.Equal(t, "147.00", l.AcceptedSum)
	require.Equal(t, "98.00", l.PlacedSum)
	require.Equal(t, "0.00", l.RefundSum)
	require.Equal(t, "49.00", l.LeftSum)
	require.Equal(t, 2, l.Orders)
	require.Equal(t, "98.00", l.OrdersSum)
	all := strings.Join(failures, "\n")
	require.Contains(t, all, "1 payments left received")
	require.Contains(t, all, "accepted payments 147.00 USD ≠ orders 98.00 USD + refunds 0.00 USD")
	require.Contains(t, all, "1 orders of the run were placed but never acknowledged")
	require.Contains(t, all, "0 refunded payments for 1 duplicate accepts")
}

// TestLoadtestOutageHold holds the LMS down after the last order and then
// heals it: the report carries the hold and its commit count, and every
// order still ends Complete with one activation.
func TestLoadtestOutageHold(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			rep, _ := runInProcess(t, engine, "--orders", "100", "--concurrency", "8",
				"--lms-outage", "--lms-outage-hold", "1s", "--settle", "1m", "--progress", "0")
			require.NotNil(t, rep.Outage)
			require.EqualValues(t, 100, rep.Outage.NotCompleteAtHeal, "nothing is delivered while the LMS is down")
			require.GreaterOrEqual(t, rep.Outage.HoldSeconds, 1.0)
			require.GreaterOrEqual(t, rep.Outage.HoldCommitsPerSecond, 0.0)
			require.GreaterOrEqual(t, rep.Outage.RecoverySeconds, 0.0)
			require.Equal(t, 100, rep.LMSCheck.Activations)
		})
	}
	t.Run("NeedsOutage", func(t *testing.T) {
		err := Run(context.Background(), []string{"--db", "sqlite:" + t.TempDir() + "/x.db", "--lms-outage-hold", "1s"},
			func(string) string { return "" }, io.Discard, io.Discard)
		require.ErrorContains(t, err, "--lms-outage-hold needs --lms-outage")
	})
}
