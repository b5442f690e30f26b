package fulfillment

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
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

func TestBreakerHold(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	b := NewBreaker(1, time.Minute, nil)
	b.SetClock(func() time.Time { return now })
	hold := func() [2]bool { p, q := b.Hold(); return [2]bool{p, q} }
	require.Equal(t, [2]bool{false, false}, hold(), "closed")
	require.True(t, b.Allow())
	b.Record(false)
	require.Equal(t, [2]bool{true, false}, hold(), "open: paused")
	now = now.Add(time.Minute)
	require.Equal(t, [2]bool{false, true}, hold(), "cooldown over: the next call is the probe")
	require.True(t, b.Allow())
	require.Equal(t, [2]bool{true, false}, hold(), "probe in flight: paused")
	b.Record(false)
	require.Equal(t, [2]bool{true, false}, hold(), "failed probe: open again")
	now = now.Add(time.Minute)
	require.True(t, b.Allow())
	b.Record(true)
	require.Equal(t, [2]bool{false, false}, hold(), "closed again")
}

func TestRegistryPausedClasses(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	lms, hook := &namedModule{name: "lms"}, &namedModule{name: "hook"}
	r, err := NewRegistry(map[catalog.Class]string{catalog.ClassSeat: "lms", catalog.ClassCourseEntitlement: "lms",
		catalog.ClassDonation: "hook"}, []Module{lms, hook}, func(string) *Breaker {
		b := NewBreaker(1, time.Minute, nil)
		b.SetClock(func() time.Time { return now })
		return b
	})
	require.NoError(t, err)
	skip, probes := r.PausedClasses()
	require.Empty(t, skip, "all closed")
	require.Empty(t, probes)

	b := r.Breakers()["lms"]
	require.True(t, b.Allow())
	b.Record(false)
	skip, probes = r.PausedClasses()
	require.Equal(t, []catalog.Class{catalog.ClassCourseEntitlement, catalog.ClassSeat}, skip)
	require.Empty(t, probes, "no probe before the cooldown ends")

	now = now.Add(time.Minute)
	skip, probes = r.PausedClasses()
	require.Equal(t, []catalog.Class{catalog.ClassCourseEntitlement, catalog.ClassSeat}, skip, "batches still skip them")
	require.Equal(t, map[string][]catalog.Class{"lms": {catalog.ClassCoupon, catalog.ClassDonation, catalog.ClassEnrollmentCode}},
		probes, "the probe's claim skips every class but lms's")
}

type namedModule struct {
	name string
	fakeModule
}

func (m *namedModule) Name() string { return m.name }

// memStore is a Store over lines in memory, one line per order, for the
// worker's tests; it logs every claim.
type memStore struct {
	mu      sync.Mutex
	lines   []*memLine
	claims  []memClaim
	records atomic.Int64
}

type memLine struct {
	line  order.Line
	owner string
	until time.Time
}

type memClaim struct {
	limit int
	skip  []catalog.Class
	got   int
}

func (s *memStore) add(class catalog.Class, due time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := int64(len(s.lines) + 1)
	s.lines = append(s.lines, &memLine{line: order.Line{ID: id, OrderID: id, Class: class, Status: order.LineOpen, NextAttemptAt: &due}})
}

func (s *memStore) order(ml *memLine) order.Order {
	return order.Order{ID: ml.line.OrderID, Number: fmt.Sprint("EDX-", ml.line.OrderID), Status: order.StatusOpen, Lines: []order.Line{ml.line}}
}

func (s *memStore) ClaimDue(_ context.Context, owner string, now, until time.Time, limit int, skip []catalog.Class) ([]Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*memLine
	for _, ml := range s.lines {
		l := ml.line
		if l.NextAttemptAt != nil && !l.NextAttemptAt.After(now) && ml.until.Before(now) && !slices.Contains(skip, l.Class) {
			due = append(due, ml)
		}
	}
	slices.SortStableFunc(due, func(a, b *memLine) int { return a.line.NextAttemptAt.Compare(*b.line.NextAttemptAt) })
	due = due[:min(len(due), limit)]
	var out []Claim
	for _, ml := range due {
		ml.owner, ml.until = owner, until
		out = append(out, Claim{Order: s.order(ml), Lines: []order.Line{ml.line}, Owner: owner})
	}
	s.claims = append(s.claims, memClaim{limit: limit, skip: skip, got: len(out)})
	return out, nil
}

func (s *memStore) RecordOutcome(_ context.Context, out Outcome) (order.Order, error) {
	s.records.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	ml := s.lines[out.OrderID-1]
	for _, ch := range out.Changes {
		if ml.owner != out.Owner || ml.line.Status != ch.From {
			continue
		}
		ml.line.Status, ml.line.NextAttemptAt, ml.owner, ml.until = ch.To, ch.NextAttemptAt, "", time.Time{}
		if ch.Attempt != nil {
			ml.line.Attempts++
		}
	}
	return s.order(ml), nil
}

// count returns how many lines of class are in status, and how many of
// them are leased now.
func (s *memStore) count(class catalog.Class, status order.LineStatus) (n, leased int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ml := range s.lines {
		if ml.line.Class == class && ml.line.Status == status {
			n++
			if ml.owner != "" {
				leased++
			}
		}
	}
	return n, leased
}

func (s *memStore) ClaimOrder(context.Context, string, string, time.Time, time.Time) (Claim, error) {
	return Claim{}, order.ErrNotFound
}
func (s *memStore) GetOrder(context.Context, string) (order.Order, error) {
	return order.Order{}, order.ErrNotFound
}
func (s *memStore) ListOrders(context.Context, order.Filter) ([]order.Order, error) { return nil, nil }

// gateModule answers from a switch, and can hold its calls until released.
type gateModule struct {
	name   string
	ok     atomic.Bool
	calls  atomic.Int64
	hold   atomic.Bool
	holdCh chan struct{}
}

func (m *gateModule) Name() string               { return m.name }
func (m *gateModule) Supports(l order.Line) bool { return true }
func (m *gateModule) Fulfill(context.Context, order.Order, order.Line, string) Result {
	m.calls.Add(1)
	if m.hold.Load() {
		<-m.holdCh
	}
	if m.ok.Load() {
		return Result{Outcome: OutcomeSuccess}
	}
	return Result{Outcome: OutcomeServer, HTTPStatus: 503, Retryable: true, Message: "down"}
}
func (m *gateModule) Revoke(context.Context, order.Order, order.Line, string) Result {
	return Result{Outcome: OutcomeSuccess}
}

// TestWorkerPausesOpenBreaker: while the LMS's breaker is open the worker
// claims and writes none of its lines (a healthy module's lines still
// flow); when the cooldown ends it claims one line as the probe and no
// other while the probe is in flight; a failed probe pauses them again; a
// successful one lets the rest through, each called once.
func TestWorkerPausesOpenBreaker(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64 // the breakers' and the service's clock
	clock.Store(time.Unix(1e9, 0).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	lms := &gateModule{name: "lms", holdCh: make(chan struct{})}
	hook := &gateModule{name: "hook"}
	hook.ok.Store(true)
	r, err := NewRegistry(map[catalog.Class]string{catalog.ClassSeat: "lms", catalog.ClassDonation: "hook"},
		[]Module{lms, hook}, func(string) *Breaker {
			b := NewBreaker(1, time.Minute, nil)
			b.SetClock(now)
			return b
		})
	require.NoError(t, err)
	st := &memStore{}
	const seats, donations = 40, 5
	for i := range seats {
		st.add(catalog.ClassSeat, now().Add(-time.Duration(seats-i)*time.Second))
	}
	for range donations {
		st.add(catalog.ClassDonation, now().Add(-time.Second))
	}
	br := r.Breakers()["lms"]
	require.True(t, br.Allow())
	br.Record(false) // the LMS is down: open

	svc := &Service{Store: st, Registry: r, Lease: 30 * time.Second, BreakerDelay: time.Minute, Now: now,
		Policy: Policy{Base: time.Second, Cap: time.Second, Attempts: 10}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := &Worker{Service: svc, Owner: "worker", Poll: 2 * time.Millisecond, Batch: 200, MaxInFlight: 100}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); w.Run(ctx) }()
	defer func() { cancel(); <-stopped }()

	complete := func(class catalog.Class) int { n, _ := st.count(class, order.LineComplete); return n }
	require.Eventually(t, func() bool { return complete(catalog.ClassDonation) == donations }, 5*time.Second, time.Millisecond,
		"the other module's lines flow")
	time.Sleep(100 * time.Millisecond) // dozens of polls
	require.Zero(t, lms.calls.Load())
	require.EqualValues(t, donations, st.records.Load(), "nothing written for the paused lines")
	open, leased := st.count(catalog.ClassSeat, order.LineOpen)
	require.Equal(t, [2]int{seats, 0}, [2]int{open, leased})

	// Cooldown over, LMS still down: one probe, held in flight for a while.
	lms.hold.Store(true)
	advance(time.Minute)
	require.Eventually(t, func() bool { return lms.calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	_, leased = st.count(catalog.ClassSeat, order.LineOpen)
	require.Equal(t, 1, leased, "only the probe's line is claimed while it is in flight")
	require.EqualValues(t, 1, lms.calls.Load())
	lms.hold.Store(false)
	close(lms.holdCh)
	failed := func() int { n, _ := st.count(catalog.ClassSeat, order.LineServerError); return n }
	require.Eventually(t, func() bool { return failed() == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, BreakerOpen, br.State(), "the failed probe re-opens the breaker")
	time.Sleep(50 * time.Millisecond)
	require.EqualValues(t, 1, lms.calls.Load(), "paused again")
	require.EqualValues(t, donations+1, st.records.Load(), "the probe's attempt is the one write")

	// The LMS is back: a probe closes the breaker, then the rest in batches.
	lms.ok.Store(true)
	advance(time.Minute)
	require.Eventually(t, func() bool { return complete(catalog.ClassSeat) == seats }, 5*time.Second, time.Millisecond)
	require.Equal(t, BreakerClosed, br.State())
	require.EqualValues(t, seats+1, lms.calls.Load(), "each line called once, the failed probe's twice")
	require.EqualValues(t, donations+seats+1, st.records.Load(), "nothing was rescheduled without a call")
	st.mu.Lock()
	defer st.mu.Unlock()
	probes := 0
	for _, c := range st.claims {
		if !slices.Contains(c.skip, catalog.ClassSeat) && c.got > 0 {
			if c.limit == probeLines {
				probes++
			}
			require.Contains(t, c.skip, catalog.ClassDonation, "a probe claims the probed module's lines only")
			if probes == 2 {
				break // closed: from here on batches take seats again
			}
		}
	}
	require.Equal(t, 2, probes, "one probe per cooldown")
}
