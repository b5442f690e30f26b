package sqlstore

import (
	"context"
	"sync"
	"time"

	"fulfill/internal/catalog"
)

// productTTL is how long a product read by SKU is served from memory: a
// checkout looks its products up first, and at a course launch thousands a
// second ask for the same few SKUs. This process's own catalog writes
// clear the cache at once; another replica's are seen within productTTL.
const productTTL = time.Second

// productCache holds recent product lookups by SKU, misses included (a
// SKU that names nothing stays nothing for productTTL).
type productCache struct {
	mu sync.Mutex
	m  map[string]cachedProduct
	// gen changes on every clear, so that a lookup that started before a
	// write does not put the old product back.
	gen uint64
}

type cachedProduct struct {
	p     catalog.Product
	found bool
	until time.Time
}

func (c *productCache) clear() {
	c.mu.Lock()
	c.m, c.gen = nil, c.gen+1
	c.mu.Unlock()
}

// cachedProductsBySKU is ProductsBySKU served from the cache where it can,
// reading the rest in one query.
func (db *DB) cachedProductsBySKU(ctx context.Context, skus []string) (map[string]catalog.Product, error) {
	now := time.Now()
	c := &db.products
	out := make(map[string]catalog.Product, len(skus))
	var missing []string
	c.mu.Lock()
	gen := c.gen
	for _, sku := range skus {
		e, ok := c.m[sku]
		switch {
		case !ok || now.After(e.until):
			missing = append(missing, sku)
		case e.found:
			out[sku] = e.p
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	got, err := db.productsBySKU(ctx, db.rd, missing)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		if c.m == nil || len(c.m) > 10000 {
			c.m = map[string]cachedProduct{}
		}
		for _, sku := range missing {
			p, found := got[sku]
			c.m[sku] = cachedProduct{p: p, found: found, until: now.Add(productTTL)}
		}
	}
	for sku, p := range got {
		out[sku] = p
	}
	return out, nil
}

// emptyCache remembers for productTTL that a lookup found nothing, for the
// lookups every checkout makes that nearly always find nothing: the site
// offers (most sites have none; every checkout prices its basket). Only
// emptiness is kept: what is found is read every time, as its counters
// (an offer's applications) must be fresh. The lookup is of things in
// force at a time; none at one time is none at any later one until a write
// (an offer that had ended has ended since), so the emptiness found for a
// time answers for later times only. This process's writes clear it;
// another replica's are seen within productTTL.
type emptyCache struct {
	mu    sync.Mutex
	until time.Time // wall clock
	since time.Time // the time the lookup was for
	gen   uint64
}

func (c *emptyCache) clear() {
	c.mu.Lock()
	c.until, c.gen = time.Time{}, c.gen+1
	c.mu.Unlock()
}

// empty reports whether the lookup for at is known to find nothing at wall
// clock time wall, and the generation to give found.
func (c *emptyCache) empty(at, wall time.Time) (bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return wall.Before(c.until) && !at.Before(c.since), c.gen
}

// found records that a lookup for at, begun at generation gen and wall
// clock time wall, found n things.
func (c *emptyCache) found(n int, gen uint64, at, wall time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.until = time.Time{}
		if n == 0 {
			c.until, c.since = wall.Add(productTTL), at
		}
	}
}
