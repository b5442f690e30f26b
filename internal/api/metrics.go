package api

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fulfill/internal/fulfillment"
	"fulfill/internal/order"
	"fulfill/internal/payment"
)

// Metrics holds the service's Prometheus metrics in a registry of its own
// (no global state).
type Metrics struct {
	reg          *prometheus.Registry
	httpRequests *prometheus.CounterVec
	httpLatency  *prometheus.HistogramVec
	attempts     *prometheus.CounterVec
	callLatency  *prometheus.HistogramVec
	attention    *prometheus.CounterVec
	breaker      *prometheus.GaugeVec
	payments     prometheus.Counter
}

// QueueStats reports the retry queue at scrape time.
type QueueStats interface {
	QueueStats(ctx context.Context, now time.Time) (due int64, oldestDue time.Duration, needsAttention int64, err error)
}

// NewMetrics registers every metric. stats may be nil.
func NewMetrics(stats QueueStats) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulfill_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fulfill_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulfill_fulfillment_attempts_total", Help: "Fulfillment attempts by module and outcome class.",
		}, []string{"module", "outcome"}),
		callLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fulfill_module_call_duration_seconds", Help: "Latency of fulfillment module calls (the LMS for enrollment).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 7.5, 10},
		}, []string{"module"}),
		attention: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fulfill_orders_flagged_total", Help: "Orders flagged as needing attention, by reason.",
		}, []string{"reason"}),
		payments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fulfill_payments_flagged_total", Help: "Accepted payments that neither placed an order nor could be refunded, handed to a person.",
		}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fulfill_breaker_state", Help: "Circuit breaker state per module: 0 closed, 1 half-open, 2 open.",
		}, []string{"module"}),
	}
	m.reg.MustRegister(m.httpRequests, m.httpLatency, m.attempts, m.callLatency, m.attention, m.breaker, m.payments,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if stats != nil {
		m.reg.MustRegister(&queueCollector{stats: stats})
	}
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *Metrics) observeHTTP(route string, code int, d time.Duration) {
	m.httpRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.httpLatency.WithLabelValues(route).Observe(d.Seconds())
}

// Attempt implements fulfillment.Observer.
func (m *Metrics) Attempt(module, outcome string, d time.Duration) {
	m.attempts.WithLabelValues(module, outcome).Inc()
	m.callLatency.WithLabelValues(module).Observe(d.Seconds())
}

// NeedsAttention implements fulfillment.Observer.
func (m *Metrics) NeedsAttention(_ order.Order, reason string) {
	m.attention.WithLabelValues(reason).Inc()
}

// PaymentNeedsAttention implements checkout.Observer.
func (m *Metrics) PaymentNeedsAttention(payment.Payment) { m.payments.Inc() }

// BreakerChanged records a breaker's new state.
func (m *Metrics) BreakerChanged(module string, to fulfillment.BreakerState) {
	v := map[fulfillment.BreakerState]float64{fulfillment.BreakerClosed: 0, fulfillment.BreakerHalfOpen: 1, fulfillment.BreakerOpen: 2}[to]
	m.breaker.WithLabelValues(module).Set(v)
}

var _ fulfillment.Observer = (*Metrics)(nil)

type queueCollector struct{ stats QueueStats }

var (
	descDue       = prometheus.NewDesc("fulfill_queue_due_lines", "Order lines whose next fulfillment attempt is due.", nil, nil)
	descOldest    = prometheus.NewDesc("fulfill_queue_oldest_due_seconds", "How long the oldest due line has waited.", nil, nil)
	descAttention = prometheus.NewDesc("fulfill_orders_needing_attention", "Orders flagged as needing attention now.", nil, nil)
	descPayments  = prometheus.NewDesc("fulfill_payments_needing_attention", "Accepted payments needing a person now.", nil, nil)
)

// PaymentStats reports the payments needing a person at scrape time.
type PaymentStats interface {
	PaymentsNeedingAttention(ctx context.Context) (int64, error)
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDue
	ch <- descOldest
	ch <- descAttention
	if _, ok := c.stats.(PaymentStats); ok {
		ch <- descPayments
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	due, oldest, attention, err := c.stats.QueueStats(ctx, time.Now())
	if err != nil && err != sql.ErrNoRows {
		ch <- prometheus.NewInvalidMetric(descDue, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descDue, prometheus.GaugeValue, float64(due))
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, oldest.Seconds())
	ch <- prometheus.MustNewConstMetric(descAttention, prometheus.GaugeValue, float64(attention))
	if ps, ok := c.stats.(PaymentStats); ok {
		n, err := ps.PaymentsNeedingAttention(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descPayments, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(descPayments, prometheus.GaugeValue, float64(n))
	}
}
