package fulfillment

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
	"fulfill/internal/order"
)

func TestPolicyDelay(t *testing.T) {
	t.Parallel()
	p := Policy{Base: time.Second, Cap: 10 * time.Second, Attempts: 5}
	tests := []struct {
		attempt    int
		retryAfter time.Duration
		nominal    time.Duration
	}{
		{1, 0, time.Second},
		{2, 0, 2 * time.Second},
		{3, 0, 4 * time.Second},
		{4, 0, 8 * time.Second},
		{5, 0, 10 * time.Second},
		{40, 0, 10 * time.Second},
	}
	for _, tt := range tests {
		for range 50 {
			d := p.Delay(tt.attempt, tt.retryAfter)
			require.GreaterOrEqual(t, d, time.Duration(float64(tt.nominal)*0.8), "attempt %d", tt.attempt)
			require.LessOrEqual(t, d, time.Duration(float64(tt.nominal)*1.2), "attempt %d", tt.attempt)
		}
	}
	require.Equal(t, time.Minute, p.Delay(1, time.Minute), "Retry-After is honoured")
	require.Equal(t, time.Hour, p.Delay(1, 365*24*time.Hour), "a Retry-After of a year is capped at an hour by default")
	capped := p
	capped.RetryAfterMax = 10 * time.Minute
	require.Equal(t, 10*time.Minute, capped.Delay(1, 365*24*time.Hour), "--retry-after-max")
	require.False(t, p.Exhausted(4))
	require.True(t, p.Exhausted(5))

	// The default keeps trying for more than a day even at the low end of the jitter.
	d := DefaultPolicy()
	var total time.Duration
	for a := 1; a < d.Attempts; a++ {
		nominal := d.Base << min(a-1, 30)
		total += time.Duration(float64(min(nominal, d.Cap)) * 0.8)
	}
	require.Greater(t, total, 24*time.Hour)
}

func TestBreaker(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	var changes []BreakerState
	b := NewBreaker(3, time.Minute, func(_, to BreakerState) { changes = append(changes, to) })
	b.now = func() time.Time { return now }
	for range 2 {
		require.True(t, b.Allow())
		b.Record(false)
	}
	require.Equal(t, BreakerClosed, b.State())
	require.True(t, b.Allow())
	b.Record(true) // a success resets the count
	for range 3 {
		require.True(t, b.Allow())
		b.Record(false)
	}
	require.Equal(t, BreakerOpen, b.State())
	require.False(t, b.Allow())
	now = now.Add(time.Minute)
	require.True(t, b.Allow(), "one probe after the cooldown")
	require.False(t, b.Allow(), "only one probe at a time")
	b.Record(false)
	require.Equal(t, BreakerOpen, b.State(), "a failed probe re-opens")
	now = now.Add(time.Minute)
	require.True(t, b.Allow())
	b.Record(true)
	require.Equal(t, BreakerClosed, b.State())
	require.True(t, b.Allow())
	require.Equal(t, []BreakerState{BreakerOpen, BreakerHalfOpen, BreakerOpen, BreakerHalfOpen, BreakerClosed}, changes)
}

type fakeModule struct {
	calls atomic.Int64
	res   Result
}

func (m *fakeModule) Name() string               { return "fake" }
func (m *fakeModule) Supports(l order.Line) bool { return l.Title != "unsupported" }
func (m *fakeModule) Fulfill(context.Context, order.Order, order.Line, string) Result {
	m.calls.Add(1)
	return m.res
}
func (m *fakeModule) Revoke(context.Context, order.Order, order.Line, string) Result { return m.res }

func TestRegistry(t *testing.T) {
	t.Parallel()
	_, err := NewRegistry(map[catalog.Class]string{catalog.ClassSeat: "nope"}, nil, nil)
	require.ErrorContains(t, err, "unknown module")
	_, err = NewRegistry(map[catalog.Class]string{"Boat": "fake"}, []Module{&fakeModule{}}, nil)
	require.ErrorContains(t, err, "unknown product class")

	m := &fakeModule{res: Result{Outcome: OutcomeServer, Retryable: true, Message: "boom"}}
	r, err := NewRegistry(map[catalog.Class]string{catalog.ClassSeat: "fake"}, []Module{m},
		func(string) *Breaker { return NewBreaker(2, time.Hour, nil) })
	require.NoError(t, err)
	o := order.Order{Number: "EDX-100001"}
	lines := []order.Line{
		{ID: 1, Class: catalog.ClassSeat, Status: order.LineOpen},
		{ID: 2, Class: catalog.ClassDonation, Status: order.LineOpen},
		{ID: 3, Class: catalog.ClassSeat, Status: order.LineComplete},
		{ID: 4, Class: catalog.ClassSeat, Title: "unsupported", Status: order.LineOpen},
	}
	res := r.Fulfill(context.Background(), o, lines)
	require.Equal(t, OutcomeServer, res[0].Outcome)
	require.Equal(t, "fake", res[0].Module)
	require.Equal(t, int64(1), res[0].LineID)
	require.Equal(t, OutcomeConfiguration, res[1].Outcome, "no module for the class")
	require.Equal(t, order.LineConfigurationError, res[1].LineStatus())
	require.Equal(t, OutcomeSkipped, res[2].Outcome, "a Complete line is never fulfilled again")
	require.Equal(t, OutcomeConfiguration, res[3].Outcome, "the module does not support the line")
	require.EqualValues(t, 1, m.calls.Load())

	r.Fulfill(context.Background(), o, lines[:1]) // second failure opens the breaker
	res = r.Fulfill(context.Background(), o, lines[:1])
	require.Equal(t, OutcomeSkipped, res[0].Outcome)
	require.EqualValues(t, 2, m.calls.Load())
	require.Equal(t, BreakerOpen, r.Breakers()["fake"].State())
	require.Equal(t, "EDX-100001:7", IdempotencyKey(o, order.Line{ID: 7}))
}
