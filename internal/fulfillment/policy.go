package fulfillment

import (
	"math/rand/v2"
	"time"
)

// Policy is the automatic retry schedule of failed lines.
type Policy struct {
	Base     time.Duration // delay after the first failure
	Cap      time.Duration // longest delay between two attempts
	Attempts int           // attempts in all, the first included
	// RetryAfterMax bounds how long a remote side's Retry-After may delay
	// a line (0: one hour); beyond it the line is retried at the bound.
	RetryAfterMax time.Duration
}

// DefaultPolicy keeps trying for more than a day: 2 s doubling to an hour,
// 48 attempts (about 38 hours; at least 30 with the jitter).
func DefaultPolicy() Policy { return Policy{Base: 2 * time.Second, Cap: time.Hour, Attempts: 48} }

// Delay is the wait before the attempt that follows failed attempt number
// attempt (1-based): min(cap, base·2^(attempt-1)), ±20 % jitter so that a
// crowd of orders failed by one outage does not come back at one instant,
// and never sooner than the remote side's Retry-After, itself bounded by
// RetryAfterMax (a year-long Retry-After would park a paid seat for good).
func (p Policy) Delay(attempt int, retryAfter time.Duration) time.Duration {
	d := p.Base
	for i := 1; i < attempt && d < p.Cap; i++ {
		d *= 2
	}
	if d > p.Cap {
		d = p.Cap
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	limit := p.RetryAfterMax
	if limit <= 0 {
		limit = time.Hour
	}
	if retryAfter > limit {
		retryAfter = limit
	}
	if d < retryAfter {
		d = retryAfter
	}
	return d
}

// Exhausted reports whether no attempt is left after attempt number attempt.
func (p Policy) Exhausted(attempt int) bool { return attempt >= p.Attempts }
