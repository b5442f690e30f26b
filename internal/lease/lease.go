// Package lease is the claim/lease kit of the service's durable queues:
// a row that needs work (an order line, a refund) carries next_attempt_at
// and a lease (owner, until) written with compare-and-set, so that one
// actor at a time works on it and a dead actor's work is taken over when
// its lease ends. This package names the holders; the stores write the
// leases.
package lease

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"time"
)

// Lease is the right to work on rows until a time, held by one owner.
type Lease struct {
	Owner string
	Until time.Time
}

// Owners names lease holders: every name is unique across processes (the
// replica's random id) and within one (a counter), so that a lost lease is
// always detected by compare-and-set, whoever took it over.
type Owners struct {
	replica string
	n       atomic.Int64
}

// NewOwners returns the lease-owner names of one replica. An empty replica
// gets a random id.
func NewOwners(replica string) *Owners {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	if replica == "" {
		replica = "r"
	}
	return &Owners{replica: replica + "-" + hex.EncodeToString(b)}
}

// Replica returns the name this process leases under.
func (o *Owners) Replica() string { return o.replica }

// Next returns a new owner name for one actor of kind ("checkout",
// "resubmit", "refund", "worker").
func (o *Owners) Next(kind string) string {
	return kind + "-" + o.replica + "-" + strconv.FormatInt(o.n.Add(1), 10)
}

// For returns a lease for a new owner of kind, lasting d from now.
func (o *Owners) For(kind string, now time.Time, d time.Duration) Lease {
	return Lease{Owner: o.Next(kind), Until: now.Add(d)}
}
