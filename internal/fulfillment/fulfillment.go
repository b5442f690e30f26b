// Package fulfillment is the fulfillment API of the seed: Fulfill(order) and
// Refund(order) hand each line to the module configured for its product
// class and report, per line, success or the exact class of failure.
package fulfillment

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/order"
)

// Outcome classes of one attempt, as recorded and counted: the order
// package's, plus skipped.
const (
	OutcomeSuccess       = order.OutcomeSuccess
	OutcomeConfiguration = order.OutcomeConfiguration
	OutcomeNetwork       = order.OutcomeNetwork
	OutcomeTimeout       = order.OutcomeTimeout
	OutcomeServer        = order.OutcomeServer
	// OutcomeSkipped means no call was made (the module's breaker is open);
	// it does not count as an attempt.
	OutcomeSkipped order.Outcome = "skipped"
)

// Result is what a module did with one line.
type Result struct {
	LineID     int64
	Module     string
	Outcome    order.Outcome
	HTTPStatus int
	Message    string
	// Retryable says whether trying again later may succeed (network,
	// timeout, 5xx, 408, 429); configuration errors and other 4xx are not.
	Retryable  bool
	RetryAfter time.Duration
	// Data is what the remote side returned that revocation will need
	// (an entitlement's uuid); it is kept on the line.
	Data      map[string]string
	StartedAt time.Time
	Duration  time.Duration
}

// LineStatus is the line status the result leads to ("" when skipped:
// unchanged).
func (r Result) LineStatus() order.LineStatus { return r.Outcome.LineStatus() }

// Module fulfills and revokes the lines of the product classes it serves.
// Implementations must be safe for concurrent use: lines are fulfilled in
// parallel, each on its own goroutine.
type Module interface {
	// Name is the name used in configuration and in the attempt log.
	Name() string
	// Supports reports whether the module can fulfill and revoke the line.
	Supports(l order.Line) bool
	// Fulfill delivers one line. key is stable for the line across attempts
	// so the remote system can de-duplicate.
	Fulfill(ctx context.Context, o order.Order, l order.Line, key string) Result
	// Revoke takes back one delivered line (for a refund).
	Revoke(ctx context.Context, o order.Order, l order.Line, key string) Result
}

// IdempotencyKey is the stable key of a line, sent to remote systems.
func IdempotencyKey(o order.Order, l order.Line) string {
	return fmt.Sprintf("%s:%d", o.Number, l.ID)
}

// Registry maps product classes to modules, as Otto's FULFILLMENT_MODULES
// setting does; the mapping comes from configuration.
type Registry struct {
	byClass  map[catalog.Class]Module
	breakers map[string]*Breaker
	now      func() time.Time
}

// NewRegistry builds a registry from a class → module-name mapping and the
// available modules. Every module gets its own circuit breaker built by
// newBreaker (nil: no breaker). A mapping naming an unknown module is an error.
func NewRegistry(mapping map[catalog.Class]string, modules []Module, newBreaker func(module string) *Breaker) (*Registry, error) {
	byName := map[string]Module{}
	for _, m := range modules {
		byName[m.Name()] = m
	}
	r := &Registry{byClass: map[catalog.Class]Module{}, breakers: map[string]*Breaker{}, now: time.Now}
	for class, name := range mapping {
		if _, ok := catalog.ClassDefs()[class]; !ok {
			return nil, fmt.Errorf("fulfillment mapping: unknown product class %q", class)
		}
		m, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("fulfillment mapping: product class %q names unknown module %q", class, name)
		}
		r.byClass[class] = m
		if newBreaker != nil && r.breakers[name] == nil {
			r.breakers[name] = newBreaker(name)
		}
	}
	return r, nil
}

// Breakers returns the breakers by module name, for status reporting.
func (r *Registry) Breakers() map[string]*Breaker { return r.breakers }

// PausedClasses says which lines the retry worker may claim now, by product
// class, from the modules' breakers. skip lists the classes of every module
// whose breaker is not closed: the worker's batches claim none of their
// lines, so that an outage costs no writes. probes maps each module whose
// next call would be its breaker's probe (cooldown over, no probe in
// flight) to the classes a claim of that probe must skip: every class but
// the module's. Both are sorted.
func (r *Registry) PausedClasses() (skip []catalog.Class, probes map[string][]catalog.Class) {
	held := map[string]bool{} // module → whether a probe may go
	for name, b := range r.breakers {
		if paused, probe := b.Hold(); paused || probe {
			held[name] = probe
		}
	}
	if len(held) == 0 {
		return nil, nil
	}
	all := make([]catalog.Class, 0, len(catalog.ClassDefs()))
	for c := range catalog.ClassDefs() {
		all = append(all, c)
	}
	slices.Sort(all)
	for _, c := range all {
		if m := r.byClass[c]; m != nil {
			if _, ok := held[m.Name()]; ok {
				skip = append(skip, c)
			}
		}
	}
	for name, probe := range held {
		if !probe {
			continue
		}
		if probes == nil {
			probes = map[string][]catalog.Class{}
		}
		others := []catalog.Class{}
		for _, c := range all {
			if m := r.byClass[c]; m == nil || m.Name() != name {
				others = append(others, c)
			}
		}
		probes[name] = others
	}
	return skip, probes
}

// moduleFor returns the module that claims the line, or nil.
func (r *Registry) moduleFor(l order.Line) Module {
	m := r.byClass[l.Class]
	if m == nil || !m.Supports(l) {
		return nil
	}
	return m
}

// Fulfill runs every given line through its module, concurrently, and
// returns one result per line in the same order. Lines already Complete are
// never fulfilled again. It holds no lock and touches no database.
func (r *Registry) Fulfill(ctx context.Context, o order.Order, lines []order.Line) []Result {
	return r.each(ctx, o, lines, false, func(m Module, l order.Line) Result {
		return m.Fulfill(ctx, o, l, IdempotencyKey(o, l))
	})
}

// FulfillNow is Fulfill for a person's explicit retry: the call is made
// even when the module's breaker is open (it is the probe), and its answer
// counts for the breaker like any other.
func (r *Registry) FulfillNow(ctx context.Context, o order.Order, lines []order.Line) []Result {
	return r.each(ctx, o, lines, true, func(m Module, l order.Line) Result {
		return m.Fulfill(ctx, o, l, IdempotencyKey(o, l))
	})
}

// Refund revokes the given delivered lines through their modules.
func (r *Registry) Refund(ctx context.Context, o order.Order, lines []order.Line) []Result {
	return r.each(ctx, o, lines, false, func(m Module, l order.Line) Result {
		return m.Revoke(ctx, o, l, IdempotencyKey(o, l))
	})
}

func (r *Registry) each(ctx context.Context, o order.Order, lines []order.Line, force bool, call func(Module, order.Line) Result) []Result {
	out := make([]Result, len(lines))
	var wg sync.WaitGroup
	for i, l := range lines {
		if l.Status == order.LineComplete {
			out[i] = Result{LineID: l.ID, Outcome: OutcomeSkipped, Message: "already complete"}
			continue
		}
		m := r.moduleFor(l)
		if m == nil {
			out[i] = Result{LineID: l.ID, Outcome: OutcomeConfiguration, StartedAt: r.now(),
				Message: fmt.Sprintf("no fulfillment module is configured for product class %q", l.Class)}
			continue
		}
		b := r.breakers[m.Name()]
		if b != nil && !b.Allow() && !force {
			out[i] = Result{LineID: l.ID, Module: m.Name(), Outcome: OutcomeSkipped, Message: "circuit breaker open"}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := call(m, l)
			res.LineID, res.Module = l.ID, m.Name()
			if b != nil {
				// Only failures that say the remote side is unwell trip the
				// breaker; a permanent 4xx is about this request alone.
				b.Record(res.Outcome == OutcomeSuccess || !res.Retryable)
			}
			out[i] = res
		}()
	}
	wg.Wait()
	return out
}
