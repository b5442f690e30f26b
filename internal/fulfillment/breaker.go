package fulfillment

import (
	"sync"
	"time"
)

// BreakerState is the state of a circuit breaker.
type BreakerState string

// Breaker states.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half-open"
)

// Breaker stops calls to a failing remote system: after Threshold failures
// in a row it opens for Cooldown, then lets one probe through (half-open);
// the probe's result closes or re-opens it. While open, new orders skip the
// synchronous call and the retry queue takes them.
type Breaker struct {
	Threshold int
	Cooldown  time.Duration
	// OnChange is told of every state change (logs and metrics).
	OnChange func(from, to BreakerState)

	mu       sync.Mutex
	state    BreakerState
	failures int
	openedAt time.Time
	probing  bool
	now      func() time.Time
}

// NewBreaker returns a closed breaker.
func NewBreaker(threshold int, cooldown time.Duration, onChange func(from, to BreakerState)) *Breaker {
	return &Breaker{Threshold: threshold, Cooldown: cooldown, OnChange: onChange, state: BreakerClosed, now: time.Now}
}

// OpenedAt returns when the breaker last opened, and whether it is open
// (or half-open) now.
func (b *Breaker) OpenedAt() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.openedAt, b.state != BreakerClosed
}

// State returns the current state.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && b.now().Sub(b.openedAt) >= b.Cooldown {
		return BreakerHalfOpen
	}
	return b.state
}

// Hold says how the breaker holds the retry worker back now, read at one
// instant. paused: it refuses every call and will until something happens
// (open before the end of its cooldown, or half-open with its one probe in
// flight), so the worker claims none of the module's lines. probe: the
// next call would be the probe (cooldown over, no probe in flight), so the
// worker claims one small batch of the module's lines and leaves the rest
// alone. Neither: closed.
func (b *Breaker) Hold() (paused, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerOpen:
		paused = b.now().Sub(b.openedAt) < b.Cooldown
	case BreakerHalfOpen:
		paused = b.probing
	default:
		return false, false
	}
	return paused, !paused
}

// SetClock pins the breaker's clock (tests).
func (b *Breaker) SetClock(now func() time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = now
}

// Allow reports whether a call may go out now.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if b.now().Sub(b.openedAt) < b.Cooldown {
			return false
		}
		b.set(BreakerHalfOpen)
		b.probing = true
		return true
	default: // half-open: one probe at a time
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
}

// Record reports the result of an allowed call.
func (b *Breaker) Record(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.failures = 0
		b.probing = false
		if b.state != BreakerClosed {
			b.set(BreakerClosed)
		}
		return
	}
	b.failures++
	if b.state == BreakerHalfOpen || b.failures >= b.Threshold {
		b.probing = false
		b.openedAt = b.now()
		if b.state != BreakerOpen {
			b.set(BreakerOpen)
		}
	}
}

func (b *Breaker) set(to BreakerState) {
	from := b.state
	b.state = to
	if b.OnChange != nil && from != to {
		b.OnChange(from, to)
	}
}
